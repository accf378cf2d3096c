// Structure I/O: CIF symmetry input variants (operation loop, Hall, number), B/aniso to U,
// extxyz column handling, CIF -> extxyz -> CIF round trip, POSCAR, and bad-input errors.
#include <cmath>
#include <fstream>
#include <iterator>
#include <random>

#include "epitem/error.hpp"
#include "epitem/model.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"
#include "testing.hpp"

using namespace epitem;
using Catch::Matchers::Contains;

namespace {

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

const char* CUBIC_CELL = "_cell_length_a 4\n_cell_length_b 4\n_cell_length_c 4\n"
                         "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n";

}  // namespace

TEST_CASE("CIF symmetry from Hall symbol, number, operation loop; B and aniso to U",
          "[crystal][io]") {
  testing::TempDir dir("cifsym");
  // Diamond Si through its Hall symbol (origin 1): 8 atoms.
  write_file(dir.file("hall.cif"), std::string("data_x\n") + CUBIC_CELL +
             "_space_group_name_Hall 'F 4d 2 3 -1d'\n"
             "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n"
             "_atom_site_fract_y\n_atom_site_fract_z\nSi1 Si 0 0 0\n");
  CHECK(read_cif(dir.file("hall.cif")).sites.size() == 8);
  // fcc by number only, with B_iso: U = B / 8π².
  write_file(dir.file("num.cif"), std::string("data_x\n") + CUBIC_CELL +
             "_space_group_IT_number 225\n"
             "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n"
             "_atom_site_fract_z\n_atom_site_B_iso_or_equiv\nCu1 0 0 0 0.8\n");
  Crystal cu = read_cif(dir.file("num.cif"));
  REQUIRE(cu.sites.size() == 4);
  CHECK(cu.sites[0].Z == 29);  // element from the label when type_symbol is absent
  CHECK(cu.sites[0].u_iso_A2 == Approx(0.8 / (8 * PI * PI)));
  // P -1 by its operation loop: a general position doubles, an inversion centre does not;
  // a near-duplicate within 0.01 Å (rounded coordinates) merges.
  write_file(dir.file("ops.cif"), std::string("data_x\n") + CUBIC_CELL +
             "loop_\n_symmetry_equiv_pos_as_xyz\n'x,y,z'\n'-x,-y,-z'\n"
             "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n"
             "_atom_site_fract_y\n_atom_site_fract_z\n"
             "A1 O 0.1 0.2 0.3\nA2 O 0 0 0\nA3 O 0.5 0.5 0.5001\n");
  Crystal p1bar = read_cif(dir.file("ops.cif"));
  CHECK(p1bar.sites.size() == 4);
  CHECK(p1bar.spacegroup_number == 2);
  // Fd-3m named without its origin choice: the setting with sensible distances wins
  // (magnetite coordinates are for origin 2, diamond Si at 000 for origin 1); ICSD's "Z" suffix.
  std::ifstream fe3o4_file(structures_dir() + "/Fe3O4.cif");
  std::string fe3o4_text((std::istreambuf_iterator<char>(fe3o4_file)), {});
  for (const char* name : {"'F d -3 m'", "'Fd-3m'", "'F d -3 m Z'"}) {
    std::string text = fe3o4_text;
    text.replace(text.find("'F d -3 m :2'"), 13, name);
    write_file(dir.file("fe3o4.cif"), text);
    Crystal c = read_cif(dir.file("fe3o4.cif"));
    CHECK(c.spacegroup_hm == "F d -3 m:2");
    CHECK(c.sites.size() == 56);
  }
  write_file(dir.file("si.cif"), std::string("data_x\n") + CUBIC_CELL +
             "_symmetry_space_group_name_H-M 'F d -3 m'\n"
             "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n"
             "_atom_site_fract_y\n_atom_site_fract_z\nSi1 Si 0 0 0\n");
  Crystal si = read_cif(dir.file("si.cif"));
  CHECK(si.spacegroup_hm == "F d -3 m:1");
  CHECK(si.sites.size() == 8);
  // Anisotropic U only: U_eq = trace/3 in an orthogonal cell.
  write_file(dir.file("aniso.cif"), std::string("data_x\n") + CUBIC_CELL +
             "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n"
             "_atom_site_fract_y\n_atom_site_fract_z\nNi1 Ni 0 0 0\n"
             "loop_\n_atom_site_aniso_label\n_atom_site_aniso_U_11\n_atom_site_aniso_U_22\n"
             "_atom_site_aniso_U_33\n_atom_site_aniso_U_12\n_atom_site_aniso_U_13\n"
             "_atom_site_aniso_U_23\nNi1 0.003 0.006 0.009 0.001 0 0\n");
  CHECK(read_cif(dir.file("aniso.cif")).sites.at(0).u_iso_A2 == Approx(0.006));
}

TEST_CASE("round trip CIF -> extxyz -> CIF keeps cell and sites", "[crystal][io]") {
  testing::TempDir dir("roundtrip");
  const Crystal orig = read_crystal("NiFe2O4");
  AtomicModel m = orient_crystal(orig, {0, 0, 1}, {1, 0, 0}, {1, 1, 1});
  write_extxyz(m, dir.file("m.xyz"));
  AtomicModel m2 = read_extxyz(dir.file("m.xyz"));
  REQUIRE(m2.atoms.size() == m.atoms.size());
  CHECK(m2.phase_names == std::vector<std::string>{"NiFe2O4"});
  CHECK(m2.cell_A.isApprox(m.cell_A, 1e-9));
  CHECK(m2.pbc == m.pbc);
  write_cif(model_as_crystal(m2, "NiFe2O4_p1"), dir.file("back.cif"));
  const Crystal back = read_cif(dir.file("back.cif"));
  CHECK(back.lattice.a_A() == Approx(orig.lattice.a_A()).epsilon(1e-9));
  CHECK(back.lattice.c_A() == Approx(orig.lattice.c_A()).epsilon(1e-9));
  CHECK(back.lattice.beta_deg() == Approx(90).epsilon(1e-9));
  REQUIRE(back.sites.size() == orig.sites.size());
  // Every original site (mixed ones included) is found with its Z, occupancy and U.
  for (const Site& s : orig.sites) {
    int found = 0;
    for (const Site& t : back.sites) {
      Vec3 d = t.frac - s.frac;
      for (int k = 0; k < 3; ++k)
        d[k] -= std::round(d[k]);
      found += t.Z == s.Z && d.norm() < 1e-7 && std::abs(t.occupancy - s.occupancy) < 1e-6 &&
               std::abs(t.u_iso_A2 - s.u_iso_A2) < 1e-6;
    }
    CHECK(found == 1);
  }
  // Model writers by extension; POSCAR refuses partial occupancy (mixed site).
  write_model(orient_crystal(read_crystal("Si"), {0, 0, 1}, {1, 0, 0}, {1, 1, 1}),
              dir.file("si.vasp"));
  std::ifstream pos(dir.file("si.vasp"));
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(pos, line))
    lines.push_back(line);
  REQUIRE(lines.size() == 8 + 8);
  CHECK(lines[5] == " Si");
  CHECK(lines[6] == " 8");
  CHECK(lines[7] == "Cartesian");
  CHECK_THROWS_WITH(write_poscar(m, dir.file("x.vasp")), Contains("occupancy"));
  CHECK_THROWS_WITH(write_model(m, dir.file("x.pdb")), Contains("x.pdb"));
  CHECK_THROWS_WITH(read_model(dir.file("back.cif")), Contains("--zone"));
}

TEST_CASE("extxyz reader accepts any column order and ignores unknown columns", "[crystal][io]") {
  testing::TempDir dir("extxyz");
  write_file(dir.file("a.xyz"),
             "2\nfoo=bar Properties=pos:R:3:force:R:3:species:S:1:phase:S:1 "
             "Lattice=\"3 0 0 0 4 0 0 0 5\" pbc=\"T T F\"\n"
             "1 2 3 9 9 9 Fe metal\n0.5 0.5 0.5 9 9 9 O oxide\n");
  AtomicModel m = read_extxyz(dir.file("a.xyz"));
  REQUIRE(m.atoms.size() == 2);
  CHECK(m.atoms[0].Z == 26);
  CHECK(m.atoms[1].pos_A == Vec3(0.5, 0.5, 0.5));
  CHECK(m.atoms[1].phase == 1);
  CHECK(m.phase_names == std::vector<std::string>{"metal", "oxide"});
  CHECK(m.atoms[0].occupancy == 1.0);
  CHECK(m.box_lengths_A() == Vec3(3, 4, 5));
  CHECK(m.pbc == std::array<bool, 3>{true, true, false});
  CHECK(m.is_orthorhombic());
  write_file(dir.file("bad.xyz"), "1\nLattice=\"3 0 0 0 4 0 0 0 5\"\nQq 0 0 0\n");
  CHECK_THROWS_WITH(read_extxyz(dir.file("bad.xyz")), Contains("bad.xyz") && Contains("Qq"));
  write_file(dir.file("short.xyz"), "3\nLattice=\"3 0 0 0 4 0 0 0 5\"\nFe 0 0 0\n");
  CHECK_THROWS_WITH(read_extxyz(dir.file("short.xyz")), Contains("short.xyz"));
}

TEST_CASE("bad crystal input throws one line naming the file", "[crystal][io]") {
  testing::TempDir dir("badcif");
  const std::string atoms = "loop_\n_atom_site_label\n_atom_site_type_symbol\n"
                            "_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n";
  write_file(dir.file("malformed.cif"), std::string("data_x\n") + CUBIC_CELL +
             "_space_group_name_H-M_alt 'P 1\n" + atoms + "Fe1 Fe 0 0 0\n");
  write_file(dir.file("nocell.cif"), "data_x\n" + atoms + "Fe1 Fe 0 0 0\n");
  write_file(dir.file("element.cif"), std::string("data_x\n") + CUBIC_CELL + atoms +
             "Q1 Qz 0 0 0\n");
  write_file(dir.file("noatoms.cif"), std::string("data_x\n") + CUBIC_CELL);
  write_file(dir.file("badsg.cif"), std::string("data_x\n") + CUBIC_CELL +
             "_space_group_name_H-M_alt 'Q 9 9'\n" + atoms + "Fe1 Fe 0 0 0\n");
  auto one_line_error = [&](const std::string& file, const std::string& detail) {
    try {
      read_crystal(dir.file(file));
      FAIL("no error for " << file);
    } catch (const Error& e) {
      std::string msg = e.what();
      CHECK_THAT(msg, Contains(file) && Contains(detail));
      CHECK(msg.find('\n') == std::string::npos);
    }
  };
  one_line_error("malformed.cif", "line");
  one_line_error("nocell.cif", "_cell_length_a");
  one_line_error("element.cif", "Qz");
  one_line_error("noatoms.cif", "atom");
  one_line_error("badsg.cif", "Q 9 9");
  one_line_error("does_not_exist.cif", "not found");
  CHECK_THROWS_WITH(read_crystal("NoSuchPhase"), Contains("NoSuchPhase") && Contains("Fe3O4"));
}

TEST_CASE("COD-style CIF: esd values, symmetry loop with ids, extra columns", "[crystal][io]") {
  // Rutile TiO2 as COD/VESTA write it (P 42/m n m, No. 136; a = 4.5937, c = 2.9587 Å,
  // O 4f x = 0.3048: Burdett et al., J. Am. Chem. Soc. 109 (1987) 3639).
  testing::TempDir dir("cod");
  write_file(dir.file("rutile.cif"), R"(#------------------------------------------------------
data_9015662
_chemical_name_mineral 'Rutile'
_cell_length_a 4.5937(1)
_cell_length_b 4.5937(1)
_cell_length_c 2.9587(2)
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 42/m n m'
loop_
_space_group_symop_id
_space_group_symop_operation_xyz
1 x,y,z
2 -x,-y,z
3 -y+1/2,x+1/2,z+1/2
4 y+1/2,-x+1/2,z+1/2
5 -x+1/2,y+1/2,-z+1/2
6 x+1/2,-y+1/2,-z+1/2
7 y,x,-z
8 -y,-x,-z
9 -x,-y,-z
10 x,y,-z
11 y+1/2,-x+1/2,-z+1/2
12 -y+1/2,x+1/2,-z+1/2
13 x+1/2,-y+1/2,z+1/2
14 -x+1/2,y+1/2,z+1/2
15 -y,-x,z
16 y,x,z
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_symmetry_multiplicity
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
_atom_site_B_iso_or_equiv
Ti1 Ti4+ 2 0.00000 0.00000 0.00000 1.0 0.42(2)
O1 O2- 4 0.3048(3) 0.3048(3) 0.00000 1.0 0.60(3)
)");
  Crystal r = read_cif(dir.file("rutile.cif"));
  CHECK(r.spacegroup_number == 136);  // gemmi recognises the 16 operations
  CHECK(r.symops.size() == 16);
  CHECK(r.lattice.c_A() == Approx(2.9587));
  REQUIRE(r.sites.size() == 6);
  CHECK(r.cell_formula() == "O4 Ti2");
  CHECK(r.sites[0].u_iso_A2 == Approx(0.42 / (8 * PI * PI)));
  // Shortest contact: the 4 equatorial Ti–O bonds, √(2(a(1/2 − x))² + (c/2)²) = 1.948 Å
  // (the 2 apical ones are x·a·√2 = 1.980 Å).
  double shortest = 1e9;
  for (const Site& s : r.sites)
    for (const Site& t : r.sites) {
      Vec3 d = s.frac - t.frac;
      for (int k = 0; k < 3; ++k)
        d[k] -= std::round(d[k]);
      double len = r.lattice.direction_A(d).norm();
      if (len > 0.01)
        shortest = std::min(shortest, len);
    }
  const double a = 4.5937, c = 2.9587, x = 0.3048;
  CHECK(shortest == Approx(std::sqrt(2 * std::pow(a * (0.5 - x), 2) + c * c / 4)).epsilon(1e-9));
}

TEST_CASE("extxyz writer: exact text (fixed 8-decimal positions, %.6g u_iso/occupancy)",
          "[crystal][io]") {
  testing::TempDir dir("xyzfmt");
  AtomicModel m;
  m.cell_A = Vec3(3, 4, 5.5).asDiagonal();
  m.phase_names = {"Fe3O4", "NiFe"};
  Atom fe;
  fe.Z = 26;
  fe.pos_A = Vec3(-0.0, 1.5, 123.456789012);
  fe.u_iso_A2 = 0.0055;
  Atom o;
  o.Z = 8;
  o.pos_A = Vec3(-1e-9, -2.25, 0);  // rounds to −0: written without the sign
  o.u_iso_A2 = 1.23456789e-5;
  o.occupancy = 0.5;
  o.phase = 1;
  m.atoms = {fe, o};
  write_extxyz(m, dir.file("m.xyz"));
  CHECK(read_file(dir.file("m.xyz")) ==
        "2\nLattice=\"3 0 0 0 4 0 0 0 5.5\" Properties=species:S:1:pos:R:3:phase:S:1:u_iso:R:1:"
        "occupancy:R:1 pbc=\"T T F\"\n"
        "Fe     0.00000000     1.50000000   123.45678901 Fe3O4 0.0055 1\n"
        "O      0.00000000    -2.25000000     0.00000000 NiFe 1.23457e-05 0.5\n");
  m.phase_names[1] = "Ni Fe";
  CHECK_THROWS_WITH(write_extxyz(m, dir.file("bad.xyz")), Contains("Ni Fe"));
  CHECK_FALSE(std::ifstream(dir.file("bad.xyz")).good());  // atomic: nothing half-written
}

TEST_CASE("extxyz streams: a model larger than the 1 MiB I/O chunk round-trips", "[crystal][io]") {
  testing::TempDir dir("xyzbig");
  AtomicModel m;
  m.cell_A = Vec3(200, 200, 100).asDiagonal();
  m.phase_names = {"oxide", "metal"};
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(-50, 250);
  const int zs[] = {8, 26, 28};
  for (int i = 0; i < 40000; ++i) {  // ~64 bytes a line: 2.5 MiB, lines straddle chunk ends
    Atom a;
    a.Z = zs[i % 3];
    a.pos_A = Vec3(u(rng), u(rng), u(rng));
    a.phase = i % 7 == 3;  // atom 0 is oxide: the reader numbers phases in order of appearance
    a.u_iso_A2 = 0.001 * (i % 11);
    m.atoms.push_back(a);
  }
  write_extxyz(m, dir.file("big.xyz"));
  const AtomicModel back = read_extxyz(dir.file("big.xyz"));
  REQUIRE(back.atoms.size() == m.atoms.size());
  CHECK(back.phase_names == std::vector<std::string>{"oxide", "metal"});
  double worst_A = 0;
  for (size_t i = 0; i < m.atoms.size(); ++i) {
    CHECK(back.atoms[i].Z == m.atoms[i].Z);
    CHECK(back.atoms[i].phase == m.atoms[i].phase);
    CHECK(back.atoms[i].u_iso_A2 == Approx(m.atoms[i].u_iso_A2).margin(1e-12));
    worst_A = std::max(worst_A, (back.atoms[i].pos_A - m.atoms[i].pos_A).cwiseAbs().maxCoeff());
  }
  CHECK(worst_A <= 0.5e-8 * (1 + 1e-6));  // 8 decimals: half a unit in the last place
  // Writing what was read reproduces the file byte for byte.
  write_extxyz(back, dir.file("again.xyz"));
  CHECK(read_file(dir.file("again.xyz")) == read_file(dir.file("big.xyz")));
}

TEST_CASE("extxyz reader: CRLF, no final newline, '+' signs; bad numbers name the line",
          "[crystal][io]") {
  testing::TempDir dir("xyzread");
  write_file(dir.file("crlf.xyz"),
             "2\r\nLattice=\"3 0 0 0 4 0 0 0 5\"\r\nFe +1.5 2 3e-1\r\nNi 0 0 -0.25");
  const AtomicModel m = read_extxyz(dir.file("crlf.xyz"));
  REQUIRE(m.atoms.size() == 2);
  CHECK(m.atoms[0].pos_A == Vec3(1.5, 2, 0.3));
  CHECK(m.atoms[1].Z == 28);
  CHECK(m.atoms[1].pos_A == Vec3(0, 0, -0.25));
  write_file(dir.file("num.xyz"), "2\nLattice=\"3 0 0 0 4 0 0 0 5\"\nFe 0 0 0\nO 1 1.2.3 0\n");
  CHECK_THROWS_WITH(read_extxyz(dir.file("num.xyz")),
                    Contains("num.xyz") && Contains("line 4") && Contains("'1.2.3'"));
  write_file(dir.file("inf.xyz"), "1\nLattice=\"3 0 0 0 4 0 0 0 5\"\nFe 0 inf 0\n");
  CHECK_THROWS_WITH(read_extxyz(dir.file("inf.xyz")), Contains("line 3") && Contains("'inf'"));
  write_file(dir.file("count.xyz"), "1e9\nLattice=\"3 0 0 0 4 0 0 0 5\"\nFe 0 0 0\n");
  CHECK_THROWS_WITH(read_extxyz(dir.file("count.xyz")), Contains("after 1 of 1000000000"));
}
