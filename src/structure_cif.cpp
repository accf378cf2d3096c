// CIF reader through gemmi (the only file that includes gemmi's CIF parser: it compiles slowly).
// Symmetry: explicit operation loop > Hall symbol > H-M symbol > space-group number > P 1.
#include <cctype>
#include <cmath>
#include <filesystem>
#include <limits>

// Debian's gemmi uses the system stb_sprintf and warns about it; std::snprintf is enough here.
#define USE_STD_SNPRINTF
#include <gemmi/cif.hpp>
#include <gemmi/smcif.hpp>
#include <gemmi/symmetry.hpp>

#include "epitem/element.hpp"
#include "epitem/error.hpp"
#include "epitem/output.hpp"
#include "epitem/structure_io.hpp"

namespace epitem {

namespace {

namespace cif = gemmi::cif;

const std::string* first_value(cif::Block& block, std::initializer_list<const char*> tags) {
  for (const char* tag : tags)
    if (const std::string* v = block.find_value(tag))
      if (!cif::is_null(*v))
        return v;
  return nullptr;
}

SymOp to_symop(const gemmi::Op& op) {
  SymOp s;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j)
      s.rot(i, j) = double(op.rot[i][j]) / gemmi::Op::DEN;
    s.tran[i] = double(op.tran[i]) / gemmi::Op::DEN;
  }
  return s;
}

struct Symmetry {
  std::vector<SymOp> ops;
  std::string hm = "P 1";
  int number = 1;
  /// The origin-choice-2 setting when the file named a group with two origins without saying
  /// which (gemmi then picks origin 1): read_cif keeps the setting with sensible distances.
  const gemmi::SpaceGroup* other_origin = nullptr;
};

std::vector<SymOp> symops_of(const gemmi::SpaceGroup& sg) {
  std::vector<SymOp> out;
  for (const gemmi::Op& op : sg.operations())
    out.push_back(to_symop(op));
  return out;
}

/// ICSD writes the origin choice as a trailing letter: "F d -3 m Z" (origin 2, centre at -3m),
/// "F d -3 m S" (origin 1), "R -3 m H" (hexagonal axes). Rewrite to gemmi's ":2" / ":1" / ":H".
std::string normalize_hm(std::string name) {
  while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back())))
    name.pop_back();
  if (name.size() > 2 && name.find(':') == std::string::npos && name[name.size() - 2] == ' ') {
    char last = name.back();
    const char* ext = last == 'Z' ? "2" : last == 'S' ? "1" : last == 'H' ? "H"
                      : last == 'R' ? "R" : nullptr;
    if (ext)
      name = name.substr(0, name.size() - 1) + ":" + ext;
  }
  return name;
}

Symmetry read_symmetry(cif::Block& block, const std::string& path) {
  Symmetry sym;
  const gemmi::SpaceGroup* sg = nullptr;
  std::vector<gemmi::Op> ops;
  for (const char* tag : {"_space_group_symop_operation_xyz", "_symmetry_equiv_pos_as_xyz"}) {
    cif::Column col = block.find_values(tag);
    if (!col || col.length() == 0)
      continue;
    for (const std::string& item : col) {
      try {
        ops.push_back(gemmi::parse_triplet(cif::as_string(item)));
      } catch (const std::exception& e) {
        fail(path, ": ", tag, ": cannot parse symmetry operation '", cif::as_string(item),
             "' (", e.what(), "); write it as e.g. 'x,y,z' or '-x+1/2,y,-z'");
      }
    }
    break;
  }
  if (!ops.empty()) {
    gemmi::GroupOps gops = gemmi::split_centering_vectors(ops);
    sg = gemmi::find_spacegroup_by_ops(gops);
    for (const gemmi::Op& op : ops)
      sym.ops.push_back(to_symop(op));
  } else {
    if (const std::string* hall =
            first_value(block, {"_space_group_name_Hall", "_symmetry_space_group_name_Hall"})) {
      std::string h = cif::as_string(*hall);
      try {
        sg = gemmi::find_spacegroup_by_ops(gemmi::symops_from_hall(h.c_str()));
      } catch (const std::exception& e) {
        fail(path, ": _space_group_name_Hall '", h, "' is not a valid Hall symbol (", e.what(),
             "); fix it or give _space_group_name_H-M_alt");
      }
      if (!sg)
        fail(path, ": Hall symbol '", h, "' is not one of the 230 space groups in a tabulated "
             "setting; give the symmetry operations as a _space_group_symop_operation_xyz loop");
    }
    if (!sg) {
      if (const std::string* hm = first_value(
              block, {"_space_group_name_H-M_alt", "_symmetry_space_group_name_H-M"})) {
        std::string name = normalize_hm(cif::as_string(*hm));
        const std::string* alpha = block.find_value("_cell_angle_alpha");
        const std::string* gamma = block.find_value("_cell_angle_gamma");
        sg = gemmi::find_spacegroup_by_name(name, alpha ? cif::as_number(*alpha) : 90.,
                                            gamma ? cif::as_number(*gamma) : 90.);
        if (sg && sg->ext == '1' && name.find(':') == std::string::npos)
          sym.other_origin = gemmi::find_spacegroup_by_name(name + ":2");
        if (!sg)
          fail(path, ": unknown space group _space_group_name_H-M_alt '", name,
               "'; use a standard symbol ('F d -3 m :2') or give the symmetry operations loop");
      }
    }
    if (!sg) {
      if (const std::string* num =
              first_value(block, {"_space_group_IT_number", "_symmetry_Int_Tables_number"})) {
        double n = cif::as_number(*num);
        if (!(n >= 1 && n <= 230 && n == std::floor(n)))
          fail(path, ": _space_group_IT_number '", *num, "' must be an integer 1-230");
        sg = gemmi::find_spacegroup_by_number(int(n));
        if (sg && sg->ext == '1')
          sym.other_origin = gemmi::find_spacegroup_by_name(sg->hm + std::string(":2"));
      }
    }
    if (sg)
      sym.ops = symops_of(*sg);
    else
      sym.ops.push_back(SymOp{});  // no symmetry given: the sites are the whole cell (P 1)
  }
  if (sg) {
    sym.hm = sg->xhm();
    sym.number = sg->number;
  } else if (!ops.empty()) {
    sym.hm = "";
    sym.number = 0;
  }
  return sym;
}

Vec3 wrap_frac(Vec3 f) {
  for (int i = 0; i < 3; ++i) {
    f[i] -= std::floor(f[i]);
    if (f[i] >= 1.0 - 1e-12)  // -1e-17 wraps to 1.0 in floating point
      f[i] = 0.0;
  }
  return f;
}

/// Atoms per cell a CIF may expand to (the largest inorganic cells hold a few thousand); the
/// expansion and the other-origin check are quadratic in it.
constexpr double MAX_CELL_ATOMS = 20000;

/// All images of the asymmetric-unit sites under `ops`, with images closer than 0.01 Å (a
/// special position, coordinates rounded in the file) merged. Mixed sites stay separate.
std::vector<Site> expand(const std::vector<Site>& asym, const std::vector<SymOp>& ops,
                         const Lattice& lat) {
  const Mat3 metric = lat.metric_A2();
  const double merge_tol_A = 0.01;
  std::vector<Site> out;
  for (const Site& s : asym) {
    std::vector<Vec3> images;
    for (const SymOp& op : ops) {
      Vec3 f = wrap_frac(op.rot * s.frac + op.tran);
      bool duplicate = false;
      for (const Vec3& g : images) {
        Vec3 d = f - g;
        for (int i = 0; i < 3; ++i)
          d[i] -= std::round(d[i]);
        if (std::sqrt(d.dot(metric * d)) < merge_tol_A) {
          duplicate = true;
          break;
        }
      }
      if (!duplicate)
        images.push_back(f);
    }
    for (const Vec3& f : images) {
      Site site = s;
      site.frac = f;
      out.push_back(site);
    }
  }
  return out;
}

/// Shortest distance between atoms at different positions [Å] (orthogonal cells: minimum image
/// by rounding fractional differences, exact below half the shortest cell edge).
double shortest_contact_A(const std::vector<Site>& sites, const Lattice& lat) {
  double best = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < sites.size(); ++i)
    for (size_t j = i + 1; j < sites.size(); ++j) {
      Vec3 d = sites[i].frac - sites[j].frac;
      for (int k = 0; k < 3; ++k)
        d[k] -= std::round(d[k]);
      double r = lat.direction_A(d).norm();
      if (r > 0.01)  // the other species of a mixed site
        best = std::min(best, r);
    }
  return best;
}

/// U_eq = (1/3) Σij U^ij a*_i a*_j a_i·a_j (Fischer & Tillmanns 1988, Acta Cryst C44, 775).
double u_equivalent(const gemmi::SMat33<double>& u, const Lattice& lat) {
  Mat3 uij;
  uij << u.u11, u.u12, u.u13, u.u12, u.u22, u.u23, u.u13, u.u23, u.u33;
  Mat3 g = lat.metric_A2();
  Vec3 astar = lat.reciprocal_invA().colwise().norm();
  double sum = 0;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      sum += uij(i, j) * astar[i] * astar[j] * g(i, j);
  return sum / 3.0;
}

}  // namespace

Crystal read_cif(const std::string& path) {
  require_readable(path, "CIF");
  cif::Document doc;
  try {
    doc = cif::read_file(path);
  } catch (const std::exception& e) {
    // gemmi's message already carries "file:line:col"; keep it on one line.
    std::string msg = e.what();
    for (char& c : msg)
      if (c == '\n')
        c = ' ';
    if (msg.rfind(path, 0) == 0)
      fail("malformed CIF ", msg, " (fix the syntax at that line)");
    fail("malformed CIF ", path, ": ", msg, " (fix the syntax at that line)");
  }
  if (doc.blocks.empty())
    fail(path, ": no data_ block found; a CIF starts with 'data_<name>'");
  // The first block with atoms (COD/ICSD files have one; some add a global block).
  cif::Block* block = nullptr;
  for (cif::Block& b : doc.blocks)
    if (b.find_values("_atom_site_fract_x")) {
      block = &b;
      break;
    }
  if (!block)
    fail(path, ": no _atom_site_fract_x loop (no atoms); give the sites as a loop with "
         "_atom_site_label, _atom_site_type_symbol, _atom_site_fract_x/y/z");

  for (const char* tag : {"_cell_length_a", "_cell_length_b", "_cell_length_c",
                          "_cell_angle_alpha", "_cell_angle_beta", "_cell_angle_gamma"}) {
    const std::string* v = block->find_value(tag);
    if (!v || cif::is_null(*v))
      fail(path, ": missing cell parameter ", tag, "; add it (lengths in Å, angles in deg)");
    if (std::isnan(cif::as_number(*v)))
      fail(path, ": ", tag, " = '", *v, "' is not a number");
  }
  gemmi::SmallStructure st;
  try {
    st = gemmi::make_small_structure_from_block(*block);
  } catch (const std::exception& e) {
    fail(path, ": cannot read the structure (", e.what(), ")");
  }

  Crystal crystal;
  crystal.source = path;
  crystal.name = std::filesystem::path(path).stem().string();
  try {
    crystal.lattice = Lattice(st.cell.a, st.cell.b, st.cell.c, st.cell.alpha, st.cell.beta,
                              st.cell.gamma);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  Symmetry sym = read_symmetry(*block, path);
  crystal.symops = sym.ops;
  crystal.spacegroup_hm = sym.hm;
  crystal.spacegroup_number = sym.number;

  if (st.sites.empty())
    fail(path, ": the _atom_site loop has no atoms");
  std::vector<Site> asym;
  for (const auto& s : st.sites) {
    std::string symbol = s.type_symbol.empty() ? s.label : s.type_symbol;
    int z = atomic_number_or_zero(symbol);
    if (z == 0)
      fail(path, ": site '", s.label, "': unknown element symbol '", symbol,
           "' in _atom_site_type_symbol; use a chemical symbol such as Fe, O, Ni");
    if (std::isnan(s.fract.x) || std::isnan(s.fract.y) || std::isnan(s.fract.z))
      fail(path, ": site '", s.label, "': _atom_site_fract_x/y/z is missing or not a number");
    if (!(s.occ > 0 && s.occ <= 1.0 + 1e-6))
      fail(path, ": site '", s.label, "': _atom_site_occupancy ", s.occ, " must be in (0, 1]");
    double u = s.u_iso;
    if (std::isnan(u))
      u = 0;
    if (u == 0 && s.aniso.nonzero())
      u = u_equivalent(s.aniso, crystal.lattice);
    if (u < 0)
      fail(path, ": site '", s.label, "': negative U_iso/B_iso ", u,
           " Å²; a displacement must be >= 0");
    Site site;
    site.label = s.label;
    site.Z = z;
    site.frac = Vec3(s.fract.x, s.fract.y, s.fract.z);
    site.occupancy = s.occ;
    site.u_iso_A2 = u;
    asym.push_back(site);
  }
  // Up to sites × operations atoms per cell, and the other-origin check compares all pairs.
  const double cell_atoms = double(asym.size()) * double(crystal.symops.size());
  if (cell_atoms > MAX_CELL_ATOMS)
    fail(path, ": ", asym.size(), " sites × ", crystal.symops.size(),
         " symmetry operations give up to ", cell_atoms, " atoms per cell, more than the ",
         MAX_CELL_ATOMS, " epitem handles as a crystal; give a large structure as an extxyz model");
  crystal.sites = expand(asym, crystal.symops, crystal.lattice);
  if (sym.other_origin) {
    // Coordinates written for the other origin give atoms far too close (or too many images);
    // keep the setting whose shortest interatomic contact is longer.
    std::vector<SymOp> ops2 = symops_of(*sym.other_origin);
    std::vector<Site> sites2 = expand(asym, ops2, crystal.lattice);
    if (shortest_contact_A(sites2, crystal.lattice) >
        shortest_contact_A(crystal.sites, crystal.lattice) + 1e-6) {
      crystal.sites = std::move(sites2);
      crystal.symops = std::move(ops2);
      crystal.spacegroup_hm = sym.other_origin->xhm();
    }
  }
  return crystal;
}

}  // namespace epitem
