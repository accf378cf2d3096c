#include "epitem/lammps_io.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>

#include "epitem/element.hpp"
#include "epitem/error.hpp"
#include "epitem/output.hpp"

namespace epitem {

namespace {

std::vector<std::string> words(const std::string& line) {
  std::istringstream is(line);
  std::vector<std::string> out;
  for (std::string w; is >> w;)
    out.push_back(w);
  return out;
}

double number(const std::string& text, const std::string& path, const std::string& what) {
  try {
    std::size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size() && std::isfinite(v))
      return v;
  } catch (const std::exception&) {
  }
  fail(path, ": ", what, " '", text, "' is not a number; is this a LAMMPS file written by epitem or LAMMPS?");
}

std::ifstream open_input(const std::string& path) {
  register_input(path);
  std::ifstream in(path);
  if (!in)
    fail(path, ": cannot open the file; check the path");
  return in;
}

// LAMMPS cell (a ∥ x, b in xy) for a model cell: rotation R with R·cell lower-triangular-by-columns.
Mat3 lammps_rotation(const Mat3& cell) {
  const Vec3 a = cell.col(0), b = cell.col(1);
  const Vec3 x = a.normalized();
  const Vec3 z = a.cross(b).normalized();
  const Vec3 y = z.cross(x);
  Mat3 r;
  r.row(0) = x.transpose();
  r.row(1) = y.transpose();
  r.row(2) = z.transpose();
  return r;
}

// "# Fe3O4:Fe u_iso=0.0055" → phase name, element, U_iso.
bool parse_type_comment(const std::string& comment, LammpsType& t) {
  const auto w = words(comment);
  if (w.empty())
    return false;
  const auto colon = w[0].rfind(':');
  if (colon == std::string::npos)
    return false;
  t.phase_name = w[0].substr(0, colon);
  t.Z = atomic_number_or_zero(w[0].substr(colon + 1));
  for (std::size_t i = 1; i < w.size(); ++i)
    if (w[i].rfind("u_iso=", 0) == 0)
      t.u_iso_A2 = std::atof(w[i].c_str() + 6);
  return t.Z > 0;
}

int element_of_mass(double mass_u) {
  int best = 1;
  for (int z = 1; z <= MAX_Z; ++z)
    if (std::abs(atomic_mass_u(z) - mass_u) < std::abs(atomic_mass_u(best) - mass_u))
      best = z;
  return best;
}

AtomicModel model_from_types(const std::vector<LammpsType>& types) {
  AtomicModel m;
  m.phase_names.clear();
  int max_phase = -1;
  for (const LammpsType& t : types)
    max_phase = std::max(max_phase, t.phase);
  m.phase_names.assign(std::size_t(max_phase + 1), "");
  for (const LammpsType& t : types)
    m.phase_names[std::size_t(t.phase)] = t.phase_name.empty() ? "phase" + std::to_string(t.phase) : t.phase_name;
  return m;
}

const LammpsType& type_of(const std::vector<LammpsType>& types, int type, const std::string& path) {
  for (const LammpsType& t : types)
    if (t.type == type)
      return t;
  fail(path, ": atom type ", type, " is not in the type map (", types.size(),
       " types); give the data file written with this model (--lammps-types)");
}

}  // namespace

std::vector<LammpsType> lammps_types(const AtomicModel& model) {
  std::map<std::pair<int, int>, std::pair<double, std::size_t>> seen;  // (phase, Z) → ΣU, n
  for (const Atom& a : model.atoms) {
    auto& s = seen[{a.phase, a.Z}];
    s.first += a.u_iso_A2;
    ++s.second;
  }
  std::vector<LammpsType> out;
  for (const auto& [key, s] : seen) {
    LammpsType t;
    t.type = int(out.size()) + 1;
    t.phase = key.first;
    t.Z = key.second;
    t.phase_name = std::size_t(key.first) < model.phase_names.size() ? model.phase_names[std::size_t(key.first)]
                                                                    : "phase" + std::to_string(key.first);
    t.u_iso_A2 = s.first / double(s.second);
    out.push_back(t);
  }
  return out;
}

void write_lammps_data(const AtomicModel& model, const std::string& path) {
  if (model.atoms.empty())
    fail("LAMMPS data ", path, ": the model has no atoms");
  const std::vector<LammpsType> types = lammps_types(model);
  std::map<std::pair<int, int>, int> type_index;
  for (const LammpsType& t : types)
    type_index[{t.phase, t.Z}] = t.type;
  const Mat3 rot = lammps_rotation(model.cell_A);
  const Mat3 cell = rot * model.cell_A;  // columns a = (lx,0,0), b = (xy,ly,0), c = (xz,yz,lz)
  const bool rotated = (rot - Mat3::Identity()).norm() > 1e-12;
  const bool triclinic = std::abs(cell(0, 1)) > 1e-9 || std::abs(cell(0, 2)) > 1e-9 || std::abs(cell(1, 2)) > 1e-9;
  std::ostringstream os;
  os << std::setprecision(10);
  os << "# epitem LAMMPS data file (units metal, atom_style atomic); type map:";
  for (const LammpsType& t : types)
    os << " " << t.type << "=" << t.phase_name << ":" << element_symbol(t.Z);
  os << (rotated ? "; cell rotated into LAMMPS orientation (a along x, b in xy)" : "") << "\n\n";
  os << model.atoms.size() << " atoms\n" << types.size() << " atom types\n\n";
  os << "0 " << cell(0, 0) << " xlo xhi\n0 " << cell(1, 1) << " ylo yhi\n0 " << cell(2, 2) << " zlo zhi\n";
  if (triclinic)
    os << cell(0, 1) << " " << cell(0, 2) << " " << cell(1, 2) << " xy xz yz\n";
  os << "\nMasses\n\n";
  for (const LammpsType& t : types)
    os << t.type << " " << atomic_mass_u(t.Z) << " # " << t.phase_name << ":" << element_symbol(t.Z)
       << " u_iso=" << t.u_iso_A2 << "\n";
  os << "\nAtoms # atomic\n\n";
  std::size_t id = 1;
  for (const Atom& a : model.atoms) {
    const Vec3 p = rot * a.pos_A;
    os << id++ << " " << type_index.at({a.phase, a.Z}) << " " << p[0] << " " << p[1] << " " << p[2] << "\n";
  }
  write_text_file(path, os.str());
}

std::vector<LammpsType> read_lammps_type_map(const std::string& path) {
  std::ifstream in = open_input(path);
  std::string line;
  int n_types = 0;
  while (std::getline(in, line)) {
    const auto w = words(line);
    if (w.size() >= 3 && w[1] == "atom" && w[2] == "types")
      n_types = int(number(w[0], path, "atom types"));
    if (!w.empty() && w[0] == "Masses")
      break;
  }
  if (n_types <= 0 || !in)
    fail(path, ": no 'N atom types' header or Masses section; is this a LAMMPS data file?");
  std::vector<LammpsType> types;
  std::map<std::string, int> phase_of;
  while ((int)types.size() < n_types && std::getline(in, line)) {
    const auto hash = line.find('#');
    const auto w = words(line.substr(0, hash));
    if (w.empty())
      continue;
    if (w.size() < 2)
      fail(path, ": Masses line '", line, "' must be 'type mass'");
    LammpsType t;
    t.type = int(number(w[0], path, "type"));
    const double mass = number(w[1], path, "mass");
    if (hash == std::string::npos || !parse_type_comment(line.substr(hash + 1), t)) {
      t.Z = element_of_mass(mass);
      t.phase_name = "lammps";
    }
    auto it = phase_of.find(t.phase_name);
    if (it == phase_of.end())
      it = phase_of.emplace(t.phase_name, int(phase_of.size())).first;
    t.phase = it->second;
    types.push_back(t);
  }
  if ((int)types.size() != n_types)
    fail(path, ": Masses lists ", types.size(), " of ", n_types, " atom types");
  return types;
}

AtomicModel read_lammps_data(const std::string& path) {
  const std::vector<LammpsType> types = read_lammps_type_map(path);
  AtomicModel m = model_from_types(types);
  std::ifstream in = open_input(path);
  std::string line;
  std::size_t n_atoms = 0;
  double lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0}, tilt[3] = {0, 0, 0};
  while (std::getline(in, line)) {
    const auto w = words(line.substr(0, line.find('#')));
    if (w.size() == 2 && w[1] == "atoms")
      n_atoms = std::size_t(number(w[0], path, "atoms"));
    for (int a = 0; a < 3; ++a)
      if (w.size() == 4 && w[2] == std::string(1, "xyz"[a]) + "lo") {
        lo[a] = number(w[0], path, "box");
        hi[a] = number(w[1], path, "box");
      }
    if (w.size() == 6 && w[3] == "xy")
      for (int k = 0; k < 3; ++k)
        tilt[k] = number(w[std::size_t(k)], path, "tilt");
    if (!w.empty() && w[0] == "Atoms")
      break;
  }
  m.cell_A << hi[0] - lo[0], tilt[0], tilt[1], 0, hi[1] - lo[1], tilt[2], 0, 0, hi[2] - lo[2];
  m.pbc = {true, true, false};
  std::vector<std::pair<long, Atom>> atoms;
  while (atoms.size() < n_atoms && std::getline(in, line)) {
    const auto w = words(line.substr(0, line.find('#')));
    if (w.empty())
      continue;
    if (w.size() < 5)
      fail(path, ": Atoms line '", line, "' must be 'id type x y z' (atom_style atomic)");
    const LammpsType& t = type_of(types, int(number(w[1], path, "type")), path);
    Atom a;
    a.Z = t.Z;
    a.phase = t.phase;
    a.u_iso_A2 = t.u_iso_A2;
    a.pos_A = Vec3(number(w[2], path, "x") - lo[0], number(w[3], path, "y") - lo[1], number(w[4], path, "z") - lo[2]);
    atoms.push_back({long(number(w[0], path, "id")), a});
  }
  if (atoms.size() != n_atoms)
    fail(path, ": Atoms section holds ", atoms.size(), " of the ", n_atoms, " atoms the header announces");
  std::sort(atoms.begin(), atoms.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  for (auto& [id, a] : atoms)
    m.atoms.push_back(a);
  return m;
}

AtomicModel read_lammps_dump(const std::string& path, const std::vector<LammpsType>& types) {
  std::ifstream in = open_input(path);
  // Keep the last complete frame.
  std::string line;
  std::vector<std::string> frame, last;
  while (std::getline(in, line)) {
    if (line.rfind("ITEM: TIMESTEP", 0) == 0 && !frame.empty()) {
      last.swap(frame);
      frame.clear();
    }
    frame.push_back(line);
  }
  if (!frame.empty())
    last.swap(frame);
  std::size_t i = 0;
  const auto find_item = [&](const std::string& item) {
    for (; i < last.size(); ++i)
      if (last[i].rfind("ITEM: " + item, 0) == 0)
        return true;
    fail(path, ": no 'ITEM: ", item, "' in the last frame; is this a LAMMPS text dump (dump custom)?");
  };
  find_item("NUMBER OF ATOMS");
  const std::size_t n = std::size_t(number(words(last.at(++i)).at(0), path, "number of atoms"));
  find_item("BOX BOUNDS");
  const auto flags = words(last[i]);
  const bool triclinic = std::find(flags.begin(), flags.end(), "xy") != flags.end();
  AtomicModel m = model_from_types(types);
  double lo[3], hi[3], t[3] = {0, 0, 0};
  for (int a = 0; a < 3; ++a) {
    const auto w = words(last.at(++i));
    if (w.size() < (triclinic ? 3u : 2u))
      fail(path, ": BOX BOUNDS line '", last[i], "' must be 'lo hi", triclinic ? " tilt'" : "'");
    lo[a] = number(w[0], path, "box");
    hi[a] = number(w[1], path, "box");
    if (triclinic)
      t[a] = number(w[2], path, "tilt");
    // Boundary flags: "ITEM: BOX BOUNDS [xy xz yz] pp pp ff".
    const std::size_t flag = flags.size() - 3 + std::size_t(a);
    m.pbc[std::size_t(a)] = flags.size() >= 6 && flags[flag].size() == 2 ? flags[flag][0] == 'p' : a < 2;
  }
  if (triclinic) {  // bounding box → box (LAMMPS Howto triclinic)
    const double xy = t[0], xz = t[1], yz = t[2];
    lo[0] -= std::min({0.0, xy, xz, xy + xz});
    hi[0] -= std::max({0.0, xy, xz, xy + xz});
    lo[1] -= std::min(0.0, yz);
    hi[1] -= std::max(0.0, yz);
  }
  m.cell_A << hi[0] - lo[0], t[0], t[1], 0, hi[1] - lo[1], t[2], 0, 0, hi[2] - lo[2];
  find_item("ATOMS");
  const auto cols = words(last[i]);
  const auto col = [&](const std::string& name) {
    const auto it = std::find(cols.begin() + 2, cols.end(), name);
    return it == cols.end() ? -1 : int(it - cols.begin()) - 2;
  };
  int cx = col("x"), cy = col("y"), cz = col("z");
  bool scaled = false;
  if (cx < 0 || cy < 0 || cz < 0) {
    cx = col("xu"), cy = col("yu"), cz = col("zu");
  }
  if (cx < 0 || cy < 0 || cz < 0) {
    cx = col("xs"), cy = col("ys"), cz = col("zs");
    scaled = true;
  }
  const int cid = col("id"), ctype = col("type");
  if (cid < 0 || ctype < 0 || cx < 0 || cy < 0 || cz < 0)
    fail(path, ": dump columns '", last[i], "' need id, type and x y z (or xs ys zs, xu yu zu); "
         "use 'dump custom … id type x y z'");
  std::vector<std::pair<long, Atom>> atoms;
  for (std::size_t k = 0; k < n; ++k) {
    if (i + 1 + k >= last.size())
      fail(path, ": the last frame holds ", k, " of its ", n, " atoms (a truncated dump?)");
    const auto w = words(last[i + 1 + k]);
    const int need = std::max({cid, ctype, cx, cy, cz});
    if (int(w.size()) <= need)
      fail(path, ": atom line '", last[i + 1 + k], "' has fewer columns than the ATOMS header");
    const LammpsType& ty = type_of(types, int(number(w[std::size_t(ctype)], path, "type")), path);
    Atom a;
    a.Z = ty.Z;
    a.phase = ty.phase;
    a.u_iso_A2 = ty.u_iso_A2;
    const Vec3 r(number(w[std::size_t(cx)], path, "x"), number(w[std::size_t(cy)], path, "y"),
                 number(w[std::size_t(cz)], path, "z"));
    a.pos_A = scaled ? Vec3(m.cell_A * r) : Vec3(r - Vec3(lo[0], lo[1], lo[2]));
    atoms.push_back({long(number(w[std::size_t(cid)], path, "id")), a});
  }
  std::sort(atoms.begin(), atoms.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  for (auto& [id, a] : atoms)
    m.atoms.push_back(a);
  return m;
}

}  // namespace epitem
