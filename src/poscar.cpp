// VASP POSCAR/CONTCAR reader (VASP 5: species line; Direct or Cartesian; optional selective
// dynamics), so `epitem convert` reads back the POSCAR files it writes.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "epitem/element.hpp"
#include "epitem/error.hpp"
#include "epitem/output.hpp"
#include "epitem/structure_io.hpp"

namespace epitem {
namespace {

std::vector<std::string> words(const std::string& line) {
  std::istringstream is(line);
  std::vector<std::string> out;
  for (std::string w; is >> w;)
    out.push_back(w);
  return out;
}

double number(const std::string& path, int line, const std::string& s, const char* what) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != s.size() || !std::isfinite(v))
    fail(path, ": line ", line, ": ", what, " '", s, "' is not a number");
  return v;
}

}  // namespace

bool is_poscar_path(const std::string& path) {
  const std::string ext = file_extension(path);
  const std::string name = std::filesystem::path(path).filename().string();
  return ext == "vasp" || ext == "poscar" || name.rfind("POSCAR", 0) == 0 ||
         name.rfind("CONTCAR", 0) == 0;
}

AtomicModel read_poscar(const std::string& path) {
  require_readable(path, "POSCAR");
  std::ifstream in(path);
  if (!in)
    fail(path, ": cannot open for reading");
  std::error_code ec;
  const auto file_bytes = std::filesystem::file_size(path, ec);
  int line_no = 0;
  std::string line;
  auto next = [&](const char* what) {
    if (!std::getline(in, line))
      fail(path, ": line ", line_no + 1, ": file ends before the ", what);
    ++line_no;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    return words(line);
  };
  next("title line");
  auto t = next("scaling factor");
  if (t.empty())
    fail(path, ": line 2: expected the scaling factor (e.g. 1.0)");
  const double scale = number(path, 2, t[0], "scaling factor");
  AtomicModel model;
  model.pbc = {true, true, true};
  for (int c = 0; c < 3; ++c) {
    t = next("lattice vectors");
    if (t.size() < 3)
      fail(path, ": line ", line_no, ": a lattice vector needs 3 numbers (Å), got ", t.size());
    for (int r = 0; r < 3; ++r)
      model.cell_A(r, c) = number(path, line_no, t[size_t(r)], "lattice vector component");
  }
  const double volume = model.cell_A.determinant();
  if (!(std::abs(volume) > 1e-9))
    fail(path, ": lines 3-5: lattice vectors are coplanar (zero volume)");
  if (scale == 0)
    fail(path, ": line 2: scaling factor must not be 0");
  // A negative factor is the cell volume [Å³]; the factor scales Cartesian positions too.
  const double factor = scale > 0 ? scale : std::cbrt(-scale / std::abs(volume));
  model.cell_A *= factor;

  const auto species = next("species line");
  if (species.empty() || atomic_number_or_zero(species[0]) == 0)
    fail(path, ": line ", line_no, ": expected element symbols (VASP 5, e.g. 'Fe O'); a VASP 4 file "
         "without them needs that line added above the counts");
  std::vector<int> z;
  for (const auto& s : species) {
    const int zi = atomic_number_or_zero(s.substr(0, s.find_first_of("_/")));  // "Fe_pv", "Fe/hash"
    if (zi == 0)
      fail(path, ": line ", line_no, ": unknown element '", s, "'");
    z.push_back(zi);
  }
  t = next("atom counts");
  if (t.size() != z.size())
    fail(path, ": line ", line_no, ": ", z.size(), " species but ", t.size(), " counts");
  std::vector<long> counts;
  long total = 0;
  for (const auto& s : t) {
    const double n = number(path, line_no, s, "atom count");
    // Each atom takes at least 6 bytes ("0 0 0\n"): refuse counts the file cannot hold.
    if (!(n >= 0) || n != std::floor(n) || n > double(file_bytes) / 6)
      fail(path, ": line ", line_no, ": atom count '", s, "' is not a count this file can hold");
    counts.push_back(long(n));
    total += long(n);
  }
  if (total == 0)
    fail(path, ": line ", line_no, ": no atoms");
  t = next("coordinate mode (Direct or Cartesian)");
  if (!t.empty() && (t[0][0] == 'S' || t[0][0] == 's'))  // Selective dynamics
    t = next("coordinate mode (Direct or Cartesian)");
  if (t.empty())
    fail(path, ": line ", line_no, ": expected Direct or Cartesian");
  const char mode = t[0][0];
  const bool cartesian = mode == 'C' || mode == 'c' || mode == 'K' || mode == 'k';
  if (!cartesian && mode != 'D' && mode != 'd')
    fail(path, ": line ", line_no, ": expected Direct or Cartesian, got '", t[0], "'");
  model.atoms.reserve(size_t(total));
  for (size_t s = 0; s < z.size(); ++s)
    for (long i = 0; i < counts[s]; ++i) {
      t = next("atom positions");
      if (t.size() < 3)
        fail(path, ": line ", line_no, ": an atom position needs 3 numbers, got ", t.size());
      Vec3 p;
      for (int k = 0; k < 3; ++k)
        p[k] = number(path, line_no, t[size_t(k)], "coordinate");
      Atom a;
      a.Z = z[s];
      a.pos_A = cartesian ? Vec3(factor * p) : Vec3(model.cell_A * p);
      model.atoms.push_back(a);
    }
  return model;
}

}  // namespace epitem
