#include "epitem/structure_io.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>

#include "epitem/element.hpp"
#include "epitem/error.hpp"
#include "epitem/output.hpp"

namespace fs = std::filesystem;

namespace epitem {

namespace {

bool is_extxyz_ext(const std::string& ext) { return ext == "xyz" || ext == "extxyz"; }

bool is_poscar_name(const std::string& path) {
  std::string ext = file_extension(path);
  std::string stem = fs::path(path).filename().string();
  return ext == "vasp" || ext == "poscar" || stem.rfind("POSCAR", 0) == 0 ||
         stem.rfind("CONTCAR", 0) == 0;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

/// key=value pairs of an extxyz comment line; values may be "quoted" (ASE convention).
std::map<std::string, std::string> parse_comment(const std::string& line, const std::string& path) {
  std::map<std::string, std::string> kv;
  size_t i = 0, n = line.size();
  while (i < n) {
    while (i < n && std::isspace(static_cast<unsigned char>(line[i])))
      ++i;
    if (i >= n)
      break;
    size_t start = i;
    while (i < n && line[i] != '=' && !std::isspace(static_cast<unsigned char>(line[i])))
      ++i;
    std::string key = line.substr(start, i - start);
    std::string value = "T";  // a bare key is a true flag
    if (i < n && line[i] == '=') {
      ++i;
      if (i < n && (line[i] == '"' || line[i] == '\'')) {
        char q = line[i++];
        size_t end = line.find(q, i);
        if (end == std::string::npos)
          fail(path, ": line 2: unterminated quote in the value of ", key);
        value = line.substr(i, end - i);
        i = end + 1;
      } else {
        start = i;
        while (i < n && !std::isspace(static_cast<unsigned char>(line[i])))
          ++i;
        value = line.substr(start, i - start);
      }
    }
    kv[lower(key)] = value;
  }
  return kv;
}

std::vector<std::string> split_ws(const std::string& s) {
  std::istringstream is(s);
  std::vector<std::string> out;
  for (std::string t; is >> t;)
    out.push_back(t);
  return out;
}

double to_number(const std::string& s, const std::string& path, int line, const std::string& what) {
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used == s.size() && std::isfinite(v))
      return v;
  } catch (const std::exception&) {
  }
  fail(path, ": line ", line, ": ", what, " '", s, "' is not a number");
}

std::string fmt(double v, int precision = 8) {
  std::ostringstream os;
  os << std::setprecision(precision) << v;
  std::string s = os.str();
  return s == "-0" ? "0" : s;
}

std::string fixed(double v, int decimals) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(decimals) << v;
  std::string s = os.str();
  if (s.find_first_not_of("-0.") == std::string::npos && s[0] == '-')
    s = s.substr(1);
  return s;
}

}  // namespace

std::string structures_dir() {
  if (const char* env = std::getenv("EPITEM_STRUCTURES"); env && *env)
    return env;
  return EPITEM_STRUCTURES_DIR;
}

Crystal read_crystal(const std::string& path_or_name) {
  std::error_code ec;
  if (fs::exists(path_or_name, ec) && !fs::is_directory(path_or_name, ec)) {
    const std::string ext = file_extension(path_or_name);
    if (is_extxyz_ext(ext)) {
      Crystal c = model_as_crystal(read_extxyz(path_or_name),
                                   fs::path(path_or_name).stem().string());
      c.source = path_or_name;
      return c;
    }
    return read_cif(path_or_name);
  }
  const bool looks_like_name = path_or_name.find('/') == std::string::npos &&
                               path_or_name.find('.') == std::string::npos &&
                               !path_or_name.empty();
  std::vector<std::string> builtins;
  if (fs::is_directory(structures_dir(), ec))
    for (const auto& entry : fs::directory_iterator(structures_dir(), ec))
      if (entry.path().extension() == ".cif")
        builtins.push_back(entry.path().stem().string());
  std::sort(builtins.begin(), builtins.end());
  if (looks_like_name) {
    // Exact name first, then case-insensitive ("fe3o4" → Fe3O4.cif).
    for (int pass = 0; pass < 2; ++pass)
      for (const auto& b : builtins)
        if (pass == 0 ? b == path_or_name : lower(b) == lower(path_or_name)) {
          Crystal c = read_cif(structures_dir() + "/" + b + ".cif");
          c.name = b;
          return c;
        }
  }
  if (!looks_like_name)
    require_readable(path_or_name, "structure");
  std::string list;
  for (const auto& b : builtins)
    list += (list.empty() ? "" : ", ") + b;
  fail("structure '", path_or_name, "': no such file and not a built-in structure (built-ins in ",
       structures_dir(), ": ", list.empty() ? "none found; set EPITEM_STRUCTURES" : list, ")");
}

AtomicModel read_extxyz(const std::string& path) {
  require_readable(path, "extxyz");
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line))
    fail(path, ": empty file; extxyz starts with the number of atoms");
  long natoms = 0;
  {
    auto t = split_ws(line);
    if (t.size() != 1)
      fail(path, ": line 1: expected the number of atoms, got '", line, "'");
    double v = to_number(t[0], path, 1, "number of atoms");
    if (v < 1 || v != std::floor(v))
      fail(path, ": line 1: number of atoms must be a positive integer, got '", t[0], "'");
    natoms = long(v);
  }
  if (!std::getline(in, line))
    fail(path, ": missing comment line 2 with Lattice=\"...\" and Properties=...");
  auto kv = parse_comment(line, path);

  AtomicModel model;
  model.phase_names.clear();
  auto lat = kv.find("lattice");
  if (lat == kv.end())
    fail(path, ": line 2: no Lattice=\"ax ay az bx by bz cx cy cz\" (Å); a model needs its box");
  {
    auto t = split_ws(lat->second);
    if (t.size() != 9)
      fail(path, ": line 2: Lattice needs 9 numbers (Å), got ", t.size());
    for (int c = 0; c < 3; ++c)
      for (int r = 0; r < 3; ++r)
        model.cell_A(r, c) = to_number(t[3 * c + r], path, 2, "Lattice entry");
    if (std::abs(model.cell_A.determinant()) < 1e-6)
      fail(path, ": line 2: Lattice vectors are coplanar (zero volume)");
  }
  if (auto p = kv.find("pbc"); p != kv.end()) {
    auto t = split_ws(p->second);
    if (t.size() != 3)
      fail(path, ": line 2: pbc needs 3 flags (T/F), got '", p->second, "'");
    for (int i = 0; i < 3; ++i) {
      std::string f = lower(t[i]);
      if (f != "t" && f != "f" && f != "true" && f != "false")
        fail(path, ": line 2: pbc flag '", t[i], "' must be T or F");
      model.pbc[i] = f[0] == 't';
    }
  } else {
    model.pbc = {true, true, true};  // ASE: a Lattice without pbc means periodic in 3D
  }

  // Properties=name:type:ncols:...; default species:S:1:pos:R:3.
  struct Column {
    std::string name;
    char type;
    int ncols;
    int first;
  };
  std::vector<Column> columns;
  {
    std::string props = "species:S:1:pos:R:3";
    if (auto p = kv.find("properties"); p != kv.end())
      props = p->second;
    std::vector<std::string> parts;
    std::stringstream ss(props);
    for (std::string part; std::getline(ss, part, ':');)
      parts.push_back(part);
    if (parts.size() % 3 != 0)
      fail(path, ": line 2: Properties '", props, "' must be name:type:count triples");
    int col = 0;
    for (size_t i = 0; i < parts.size(); i += 3) {
      if (parts[i].empty() || parts[i + 1].size() != 1)
        fail(path, ": line 2: Properties '", props,
             "': expected name:type:count with type S, R, I or L");
      Column c{lower(parts[i]), char(std::toupper(static_cast<unsigned char>(parts[i + 1][0]))),
               0, col};
      c.ncols = int(to_number(parts[i + 2], path, 2, "Properties column count"));
      if (c.ncols < 1)
        fail(path, ": line 2: Properties column count must be >= 1 in '", props, "'");
      col += c.ncols;
      columns.push_back(c);
    }
  }
  auto find_col = [&](std::initializer_list<const char*> names, int ncols) -> const Column* {
    for (const char* n : names)
      for (const auto& c : columns)
        if (c.name == n) {
          if (c.ncols != ncols)
            fail(path, ": line 2: column ", c.name, " must have ", ncols, " entries, has ",
                 c.ncols);
          return &c;
        }
    return nullptr;
  };
  const Column* species = find_col({"species", "element", "symbol"}, 1);
  const Column* numbers = find_col({"z", "numbers"}, 1);
  const Column* pos = find_col({"pos", "positions"}, 3);
  const Column* phase = find_col({"phase"}, 1);
  const Column* occ = find_col({"occupancy", "occ"}, 1);
  const Column* uiso = find_col({"u_iso", "uiso"}, 1);
  if (!species && !numbers)
    fail(path, ": line 2: Properties has no species:S:1 column");
  if (!pos)
    fail(path, ": line 2: Properties has no pos:R:3 column");
  int total_cols = columns.back().first + columns.back().ncols;

  std::map<std::string, int> phase_index;
  for (long a = 0; a < natoms; ++a) {
    int lineno = int(a) + 3;
    if (!std::getline(in, line))
      fail(path, ": file ends after ", a, " of ", natoms, " atoms (line 1 promises ", natoms, ")");
    auto t = split_ws(line);
    if (int(t.size()) < total_cols)
      fail(path, ": line ", lineno, ": expected ", total_cols, " columns, got ", t.size());
    Atom atom;
    if (species) {
      atom.Z = atomic_number_or_zero(t[species->first]);
      if (atom.Z == 0)
        fail(path, ": line ", lineno, ": unknown element symbol '", t[species->first],
             "'; use a chemical symbol such as Fe, O, Ni");
    } else {
      double z = to_number(t[numbers->first], path, lineno, "atomic number");
      if (z < 1 || z > MAX_Z || z != std::floor(z))
        fail(path, ": line ", lineno, ": atomic number '", t[numbers->first], "' not in 1-103");
      atom.Z = int(z);
    }
    for (int k = 0; k < 3; ++k)
      atom.pos_A[k] = to_number(t[pos->first + k], path, lineno, "position");
    if (occ) {
      atom.occupancy = to_number(t[occ->first], path, lineno, "occupancy");
      if (!(atom.occupancy > 0 && atom.occupancy <= 1 + 1e-6))
        fail(path, ": line ", lineno, ": occupancy ", atom.occupancy, " must be in (0, 1]");
    }
    if (uiso) {
      atom.u_iso_A2 = to_number(t[uiso->first], path, lineno, "u_iso");
      if (atom.u_iso_A2 < 0)
        fail(path, ": line ", lineno, ": u_iso ", atom.u_iso_A2, " Å² must be >= 0");
    }
    std::string ph = phase ? t[phase->first] : "crystal";
    auto [it, inserted] = phase_index.emplace(ph, int(model.phase_names.size()));
    if (inserted)
      model.phase_names.push_back(ph);
    atom.phase = it->second;
    model.atoms.push_back(atom);
  }
  return model;
}

AtomicModel read_model(const std::string& path) {
  if (is_extxyz_ext(file_extension(path)))
    return read_extxyz(path);
  fail(path, ": a model must be extended XYZ (.xyz/.extxyz); for a crystal (CIF or built-in) ",
       "build one first with `epitem convert ", path, " model.xyz --zone u,v,w`");
}

void write_extxyz(const AtomicModel& model, const std::string& path) {
  std::ostringstream os;
  os << model.atoms.size() << "\n";
  os << "Lattice=\"";
  for (int c = 0; c < 3; ++c)
    for (int r = 0; r < 3; ++r)
      os << (c || r ? " " : "") << fmt(model.cell_A(r, c), 10);
  os << "\" Properties=species:S:1:pos:R:3:phase:S:1:u_iso:R:1:occupancy:R:1 pbc=\"";
  for (int i = 0; i < 3; ++i)
    os << (i ? " " : "") << (model.pbc[i] ? "T" : "F");
  os << "\"\n";
  for (const Atom& a : model.atoms) {
    if (a.phase < 0 || a.phase >= int(model.phase_names.size()))
      fail(path, ": atom phase index ", a.phase, " has no name in phase_names (internal)");
    std::string ph = model.phase_names[a.phase];
    if (ph.empty() || ph.find_first_of(" \t\"'") != std::string::npos)
      fail(path, ": phase name '", ph, "' must be one word without quotes for extxyz");
    os << std::left << std::setw(2) << element_symbol(a.Z) << std::right;
    for (int k = 0; k < 3; ++k)
      os << " " << std::setw(14) << fixed(a.pos_A[k], 8);
    os << " " << ph << " " << fmt(a.u_iso_A2, 6) << " " << fmt(a.occupancy, 6) << "\n";
  }
  write_text_file(path, os.str());
}

void write_cif(const Crystal& crystal, const std::string& path) {
  std::string name = crystal.name.empty() ? "epitem" : crystal.name;
  for (char& c : name)
    if (std::isspace(static_cast<unsigned char>(c)))
      c = '_';
  std::ostringstream os;
  os << "# Written by epitem: P 1 expansion of " << (crystal.source.empty() ? name : crystal.source)
     << " (space group " << (crystal.spacegroup_hm.empty() ? "?" : crystal.spacegroup_hm)
     << ")\n";
  os << "data_" << name << "\n";
  const Lattice& l = crystal.lattice;
  os << "_cell_length_a " << fmt(l.a_A(), 10) << "\n"
     << "_cell_length_b " << fmt(l.b_A(), 10) << "\n"
     << "_cell_length_c " << fmt(l.c_A(), 10) << "\n"
     << "_cell_angle_alpha " << fmt(l.alpha_deg(), 10) << "\n"
     << "_cell_angle_beta " << fmt(l.beta_deg(), 10) << "\n"
     << "_cell_angle_gamma " << fmt(l.gamma_deg(), 10) << "\n";
  os << "_space_group_name_H-M_alt 'P 1'\n_space_group_IT_number 1\n";
  os << "loop_\n_space_group_symop_operation_xyz\n'x, y, z'\n";
  os << "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n"
        "_atom_site_fract_y\n_atom_site_fract_z\n_atom_site_U_iso_or_equiv\n"
        "_atom_site_occupancy\n";
  std::map<int, int> counter;
  for (const Site& s : crystal.sites) {
    const char* sym = element_symbol(s.Z);
    os << sym << ++counter[s.Z] << " " << sym;
    for (int k = 0; k < 3; ++k)
      os << " " << fixed(s.frac[k], 8);
    os << " " << fixed(s.u_iso_A2, 6) << " " << fixed(s.occupancy, 6) << "\n";
  }
  write_text_file(path, os.str());
}

void write_poscar(const AtomicModel& model, const std::string& path) {
  // VASP 5: species line, counts, Cartesian. POSCAR has no occupancy: refuse partial sites.
  std::vector<int> order;
  std::map<int, std::vector<const Atom*>> by_z;
  for (const Atom& a : model.atoms) {
    if (a.occupancy < 1 - 1e-6)
      fail(path, ": POSCAR cannot store partial occupancy (", element_symbol(a.Z), " with ",
           a.occupancy, "); write .xyz (extxyz) or .cif instead");
    if (!by_z.count(a.Z))
      order.push_back(a.Z);
    by_z[a.Z].push_back(&a);
  }
  if (model.atoms.empty())
    fail(path, ": model has no atoms to write");
  std::ostringstream os;
  for (size_t i = 0; i < model.phase_names.size(); ++i)
    os << (i ? "+" : "") << model.phase_names[i];
  os << " (written by epitem)\n1.0\n";
  for (int c = 0; c < 3; ++c) {
    for (int r = 0; r < 3; ++r)
      os << " " << std::setw(18) << fixed(model.cell_A(r, c), 10);
    os << "\n";
  }
  for (int z : order)
    os << " " << element_symbol(z);
  os << "\n";
  for (int z : order)
    os << " " << by_z[z].size();
  os << "\nCartesian\n";
  for (int z : order)
    for (const Atom* a : by_z[z]) {
      for (int k = 0; k < 3; ++k)
        os << " " << std::setw(16) << fixed(a->pos_A[k], 8);
      os << "\n";
    }
  write_text_file(path, os.str());
}

void write_model(const AtomicModel& model, const std::string& path) {
  const std::string ext = file_extension(path);
  if (is_extxyz_ext(ext))
    write_extxyz(model, path);
  else if (ext == "cif")
    write_cif(model_as_crystal(model, fs::path(path).stem().string()), path);
  else if (is_poscar_name(path))
    write_poscar(model, path);
  else
    fail(path, ": unknown model format '.", ext, "'; use .xyz (extxyz), .cif or .vasp/POSCAR");
}

}  // namespace epitem
