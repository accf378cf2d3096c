// LAMMPS exchange: data file written and read back equal; dumps (scaled, unscaled, triclinic,
// several frames) read into the same model; the type map keeps phases apart.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include "epitem/interface.hpp"
#include "epitem/lammps_io.hpp"
#include "testing.hpp"

using namespace epitem;

namespace {

std::string temp_path(const std::string& name) { return "/tmp/epitem_test_lammps_" + name; }

void require_same_atoms(const AtomicModel& a, const AtomicModel& b, double tol_A) {
  REQUIRE(a.atoms.size() == b.atoms.size());
  REQUIRE(a.phase_names == b.phase_names);
  double worst = 0, worst_u = 0;
  std::size_t wrong_species = 0;
  for (std::size_t i = 0; i < a.atoms.size(); ++i) {
    wrong_species += a.atoms[i].Z != b.atoms[i].Z || a.atoms[i].phase != b.atoms[i].phase;
    worst = std::max(worst, (a.atoms[i].pos_A - b.atoms[i].pos_A).norm());
    worst_u = std::max(worst_u, std::abs(a.atoms[i].u_iso_A2 - b.atoms[i].u_iso_A2));
  }
  CHECK(wrong_species == 0);
  CHECK(worst < tol_A);
  CHECK(worst_u < 1e-9);
  CHECK((a.cell_A - b.cell_A).norm() < tol_A);
}

// A dump frame of `m` as LAMMPS writes it: ids shuffled, columns in the given order.
void write_dump_frame(std::ostream& os, const AtomicModel& m, const std::vector<LammpsType>& types,
                      long step, bool scaled, std::mt19937& rng, const Vec3& lo) {
  std::vector<std::size_t> order(m.atoms.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  const Mat3 inv = m.cell_A.inverse();
  os.precision(12);
  os << "ITEM: TIMESTEP\n" << step << "\nITEM: NUMBER OF ATOMS\n" << m.atoms.size() << "\n";
  os << "ITEM: BOX BOUNDS pp pp ff\n";
  for (int a = 0; a < 3; ++a)
    os << lo[a] << " " << lo[a] + m.cell_A(a, a) << "\n";
  os << (scaled ? "ITEM: ATOMS type id xs ys zs\n" : "ITEM: ATOMS id type x y z\n");
  for (std::size_t i : order) {
    const Atom& at = m.atoms[i];
    int type = 0;
    for (const LammpsType& t : types)
      if (t.Z == at.Z && t.phase == at.phase)
        type = t.type;
    if (scaled) {
      const Vec3 s = inv * at.pos_A;
      os << type << " " << i + 1 << " " << s[0] << " " << s[1] << " " << s[2] << "\n";
    } else {
      const Vec3 p = at.pos_A + lo;
      os << i + 1 << " " << type << " " << p[0] << " " << p[1] << " " << p[2] << "\n";
    }
  }
}

}  // namespace

TEST_CASE("LAMMPS data file: preset model written and read back equal, types per element per phase", "[interface][lammps]") {
  InterfaceSpec spec = preset_interface("nife-fe3o4");
  spec.find_voids = false;
  const AtomicModel m = build_interface(spec).model;
  const std::string data = temp_path("preset.lmp");
  write_lammps_data(m, data);
  const std::vector<LammpsType> types = read_lammps_type_map(data);
  REQUIRE(types.size() == 4);  // by phase, then Z: Fe3O4:O, Fe3O4:Fe, NiFe:Fe, NiFe:Ni
  CHECK(types[1].phase_name == "Fe3O4");
  CHECK(types[1].Z == 26);
  CHECK(types[0].Z == 8);
  CHECK(types[2].phase_name == "NiFe");
  CHECK(types[2].Z == 26);  // Fe of the other phase is its own type
  CHECK(types[2].phase != types[1].phase);
  require_same_atoms(read_lammps_data(data), m, 1e-6);
  std::remove(data.c_str());
}

TEST_CASE("LAMMPS dump: last frame, scaled or not, ids shuffled, read into the same model", "[interface][lammps]") {
  InterfaceSpec spec = preset_interface("nife-fe3o4");
  spec.find_voids = false;
  const AtomicModel m = build_interface(spec).model;
  const std::vector<LammpsType> types = lammps_types(m);
  std::mt19937 rng(7);
  for (bool scaled : {false, true}) {
    const std::string dump = temp_path(scaled ? "scaled.lammpstrj" : "plain.lammpstrj");
    {
      std::ofstream os(dump);
      AtomicModel first = m;  // a first frame with other positions: must be ignored
      for (Atom& a : first.atoms)
        a.pos_A += Vec3(0.3, -0.2, 0.1);
      write_dump_frame(os, first, types, 0, scaled, rng, Vec3(-1.5, 2, 0.25));
      write_dump_frame(os, m, types, 100, scaled, rng, Vec3(-1.5, 2, 0.25));
    }
    const AtomicModel back = read_lammps_dump(dump, types);
    CHECK(back.pbc == std::array<bool, 3>{true, true, false});
    require_same_atoms(back, m, 1e-8);
    std::remove(dump.c_str());
  }
}

TEST_CASE("LAMMPS data file: a non-orthorhombic cell becomes a triclinic box, distances kept", "[interface][lammps]") {
  AtomicModel m;
  m.phase_names = {"hex"};
  m.cell_A.col(0) = Vec3(0, 3, 0);  // a along y: rotated into LAMMPS's a ∥ x
  m.cell_A.col(1) = Vec3(0, -1.5, 3 * std::sqrt(0.75));
  m.cell_A.col(2) = Vec3(5, 0, 0);
  for (const Vec3& f : {Vec3(0, 0, 0), Vec3(1.0 / 3, 2.0 / 3, 0.5)}) {
    Atom a;
    a.Z = 30;
    a.pos_A = m.cell_A * f;
    m.atoms.push_back(a);
  }
  const std::string data = temp_path("tri.lmp");
  write_lammps_data(m, data);
  const AtomicModel back = read_lammps_data(data);
  std::remove(data.c_str());
  REQUIRE(back.atoms.size() == 2);
  for (int c = 0; c < 3; ++c)
    CHECK(back.cell_A.col(c).norm() == Approx(m.cell_A.col(c).norm()));
  CHECK(back.cell_A(1, 0) == Approx(0).margin(1e-12));  // lower-triangular: LAMMPS convention
  CHECK(back.cell_A(0, 1) == Approx(-1.5));            // xy tilt
  CHECK((back.atoms[1].pos_A - back.atoms[0].pos_A).norm() ==
        Approx((m.atoms[1].pos_A - m.atoms[0].pos_A).norm()));
}
