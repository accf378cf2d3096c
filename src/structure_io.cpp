#include "epitem/structure_io.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <map>
#include <memory>
#include <sstream>
#include <string_view>

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

// Streaming extxyz I/O: a 7-million-atom model is ~0.5 GB of text, so neither direction holds
// the whole text; numbers go through to_chars/from_chars (locale-free, no allocation).
constexpr size_t CHUNK_BYTES = size_t(1) << 20;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

/// Appends to a 1 MiB buffer and writes it out whenever it fills.
class ChunkWriter {
 public:
  ChunkWriter(const std::string& tmp_path, const std::string& path)
      : file_(std::fopen(tmp_path.c_str(), "wb")), path_(path), buf_(CHUNK_BYTES) {
    if (!file_)
      fail(path, ": cannot open for writing");
  }
  /// Room for at least n more bytes; returns where to write them (then call advance).
  char* room(size_t n) {
    if (used_ + n > buf_.size()) {
      flush();
      if (n > buf_.size())
        buf_.resize(n);
    }
    return buf_.data() + used_;
  }
  void advance(char* end) { used_ = size_t(end - buf_.data()); }
  void put(std::string_view s) {
    char* p = room(s.size());
    advance(std::copy(s.begin(), s.end(), p));
  }
  void close() {
    flush();
    if (std::fclose(file_.release()) != 0)
      fail(path_, ": write failed (disk full?)");
  }

 private:
  void flush() {
    if (used_ && std::fwrite(buf_.data(), 1, used_, file_.get()) != used_)
      fail(path_, ": write failed (disk full?)");
    used_ = 0;
  }
  FilePtr file_;
  std::string path_;
  std::vector<char> buf_;
  size_t used_ = 0;
};

// Longest fixed-notation double: sign + 309 integer digits + point + decimals.
constexpr size_t MAX_FIXED_CHARS = 330;

/// Same text as fixed(v, decimals) right-aligned in `width` (std::setw), written at p.
char* put_fixed(char* p, double v, int decimals, int width) {
  char tmp[MAX_FIXED_CHARS];
  auto r = std::to_chars(tmp, tmp + sizeof tmp, v, std::chars_format::fixed, decimals);
  const char* begin = tmp;
  if (tmp[0] == '-' && std::all_of(tmp + 1, r.ptr, [](char c) { return c == '0' || c == '.'; }))
    ++begin;  // "-0.00000000" → "0.00000000"
  for (long pad = width - long(r.ptr - begin); pad > 0; --pad)
    *p++ = ' ';
  return std::copy(static_cast<const char*>(begin), static_cast<const char*>(r.ptr), p);
}

/// Same text as fmt(v, precision) (%.*g, "-0" → "0"), written at p.
char* put_general(char* p, double v, int precision) {
  char* end = std::to_chars(p, p + 32, v, std::chars_format::general, precision).ptr;
  if (end - p == 2 && p[0] == '-' && p[1] == '0') {
    *p = '0';
    return p + 1;
  }
  return end;
}

/// Lines of a file read in 1 MiB chunks; a line is valid until the next call.
class LineReader {
 public:
  explicit LineReader(const std::string& path)
      : file_(std::fopen(path.c_str(), "rb")), buf_(CHUNK_BYTES) {
    if (!file_)
      fail(path, ": cannot open for reading");
  }
  /// Next line without its '\n'; false at end of file (like std::getline).
  bool next(std::string_view& line) {
    for (;;) {
      const char* nl = static_cast<const char*>(std::memchr(buf_.data() + pos_, '\n', end_ - pos_));
      if (nl) {
        line = std::string_view(buf_.data() + pos_, size_t(nl - (buf_.data() + pos_)));
        pos_ = size_t(nl - buf_.data()) + 1;
        return true;
      }
      if (eof_) {
        if (pos_ == end_)
          return false;
        line = std::string_view(buf_.data() + pos_, end_ - pos_);
        pos_ = end_;
        return true;
      }
      // Keep the partial line, grow for a line longer than the buffer, read more.
      std::copy(buf_.begin() + long(pos_), buf_.begin() + long(end_), buf_.begin());
      end_ -= pos_;
      pos_ = 0;
      if (end_ == buf_.size())
        buf_.resize(2 * buf_.size());
      size_t got = std::fread(buf_.data() + end_, 1, buf_.size() - end_, file_.get());
      end_ += got;
      if (got == 0)
        eof_ = true;
    }
  }

 private:
  FilePtr file_;
  std::vector<char> buf_;
  size_t pos_ = 0, end_ = 0;
  bool eof_ = false;
};

// Columns an extxyz line may declare in all (ASE files have < 20).
constexpr int MAX_PROPERTY_COLUMNS = 10000;

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

/// Whitespace-separated tokens of `line` into `out` (cleared first; views into line).
void split_ws(std::string_view line, std::vector<std::string_view>& out) {
  out.clear();
  size_t i = 0, n = line.size();
  while (i < n) {
    while (i < n && is_space(line[i]))
      ++i;
    size_t start = i;
    while (i < n && !is_space(line[i]))
      ++i;
    if (i > start)
      out.push_back(line.substr(start, i - start));
  }
}

/// A finite decimal number filling the whole token (an optional leading '+' like std::stod).
double token_number(std::string_view s, const std::string& path, long line,
                    const std::string& what) {
  std::string_view digits = s.size() > 1 && s[0] == '+' && s[1] != '-' ? s.substr(1) : s;
  double v = 0;
  auto r = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (r.ec == std::errc() && r.ptr == digits.data() + digits.size() && std::isfinite(v))
    return v;
  fail(path, ": line ", line, ": ", what, " '", s, "' is not a number");
}

}  // namespace

std::string structures_dir() {
  if (const char* env = std::getenv("EPITEM_STRUCTURES"); env && *env)
    return env;
  // An installed binary (`cmake --install`: PREFIX/bin/epitem) finds PREFIX/share/epitem/structures;
  // a binary in the build tree falls back to the source tree's structures/.
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share" / "epitem" / "structures";
    if (fs::is_directory(installed, ec))
      return installed.string();
  }
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
    if (is_poscar_path(path_or_name)) {
      Crystal c = model_as_crystal(read_poscar(path_or_name),
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
  LineReader in(path);
  std::string_view line;
  std::vector<std::string_view> t;
  if (!in.next(line))
    fail(path, ": empty file; extxyz starts with the number of atoms");
  long natoms = 0;
  {
    split_ws(line, t);
    if (t.size() != 1)
      fail(path, ": line 1: expected the number of atoms, got '", line, "'");
    double v = token_number(t[0], path, 1, "number of atoms");
    if (v < 1 || v != std::floor(v))
      fail(path, ": line 1: number of atoms must be a positive integer, got '", t[0], "'");
    // Before the cast, which a count like 1e300 would overflow (a smaller count the file cannot
    // hold ends below with "file ends after ..."; the reservation is capped by the file size).
    if (v > 1e15)
      fail(path, ": line 1: number of atoms ", t[0],
           " is more than any file can hold; the count or the file is wrong");
    natoms = long(v);
  }
  if (!in.next(line))
    fail(path, ": missing comment line 2 with Lattice=\"...\" and Properties=...");
  auto kv = parse_comment(std::string(line), path);

  AtomicModel model;
  model.phase_names.clear();
  auto lat = kv.find("lattice");
  if (lat == kv.end())
    fail(path, ": line 2: no Lattice=\"ax ay az bx by bz cx cy cz\" (Å); a model needs its box");
  {
    split_ws(lat->second, t);
    if (t.size() != 9)
      fail(path, ": line 2: Lattice needs 9 numbers (Å), got ", t.size());
    for (int c = 0; c < 3; ++c)
      for (int r = 0; r < 3; ++r)
        model.cell_A(r, c) = token_number(t[3 * c + r], path, 2, "Lattice entry");
    if (std::abs(model.cell_A.determinant()) < 1e-6)
      fail(path, ": line 2: Lattice vectors are coplanar (zero volume)");
  }
  if (auto p = kv.find("pbc"); p != kv.end()) {
    split_ws(p->second, t);
    if (t.size() != 3)
      fail(path, ": line 2: pbc needs 3 flags (T/F), got '", p->second, "'");
    for (int i = 0; i < 3; ++i) {
      std::string f = lower(std::string(t[i]));
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
      // Bounded before the cast: a count past int (or past any line) would wrap the column
      // offsets and index beyond a line's tokens.
      const double count = token_number(parts[i + 2], path, 2, "Properties column count");
      if (!(count >= 1 && count <= MAX_PROPERTY_COLUMNS) || count != std::floor(count))
        fail(path, ": line 2: Properties column count '", parts[i + 2], "' must be a whole number in 1-",
             MAX_PROPERTY_COLUMNS, " in '", props, "'");
      c.ncols = int(count);
      col += c.ncols;
      if (col > MAX_PROPERTY_COLUMNS)
        fail(path, ": line 2: Properties '", props, "' declares ", col, " columns in all; at most ",
             MAX_PROPERTY_COLUMNS, " are supported");
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

  // Reserve for the atoms the file can hold (a line is >= 8 bytes), not what line 1 claims.
  std::error_code ec;
  const auto file_bytes = fs::file_size(path, ec);
  if (!ec)
    model.atoms.reserve(size_t(std::min<uintmax_t>(uintmax_t(natoms), file_bytes / 8 + 1)));
  // Few distinct symbols and phases: look them up once, not per atom.
  std::map<std::string, int, std::less<>> z_of_symbol, phase_index;
  for (long a = 0; a < natoms; ++a) {
    const long lineno = a + 3;
    if (!in.next(line))
      fail(path, ": file ends after ", a, " of ", natoms, " atoms (line 1 promises ", natoms, ")");
    split_ws(line, t);
    if (int(t.size()) < total_cols)
      fail(path, ": line ", lineno, ": expected ", total_cols, " columns, got ", t.size());
    Atom atom;
    if (species) {
      std::string_view sym = t[species->first];
      auto it = z_of_symbol.find(sym);
      if (it == z_of_symbol.end())
        it = z_of_symbol.emplace(std::string(sym), atomic_number_or_zero(std::string(sym))).first;
      atom.Z = it->second;
      if (atom.Z == 0)
        fail(path, ": line ", lineno, ": unknown element symbol '", sym,
             "'; use a chemical symbol such as Fe, O, Ni");
    } else {
      double z = token_number(t[numbers->first], path, lineno, "atomic number");
      if (z < 1 || z > MAX_Z || z != std::floor(z))
        fail(path, ": line ", lineno, ": atomic number '", t[numbers->first], "' not in 1-103");
      atom.Z = int(z);
    }
    for (int k = 0; k < 3; ++k)
      atom.pos_A[k] = token_number(t[pos->first + k], path, lineno, "position");
    if (occ) {
      atom.occupancy = token_number(t[occ->first], path, lineno, "occupancy");
      if (!(atom.occupancy > 0 && atom.occupancy <= 1 + 1e-6))
        fail(path, ": line ", lineno, ": occupancy ", atom.occupancy, " must be in (0, 1]");
    }
    if (uiso) {
      atom.u_iso_A2 = token_number(t[uiso->first], path, lineno, "u_iso");
      if (atom.u_iso_A2 < 0)
        fail(path, ": line ", lineno, ": u_iso ", atom.u_iso_A2, " Å² must be >= 0");
    }
    std::string_view ph = phase ? t[phase->first] : std::string_view("crystal");
    auto it = phase_index.find(ph);
    if (it == phase_index.end()) {
      it = phase_index.emplace(std::string(ph), int(model.phase_names.size())).first;
      model.phase_names.emplace_back(ph);
    }
    atom.phase = it->second;
    model.atoms.push_back(atom);
  }
  return model;
}

AtomicModel read_model(const std::string& path) {
  if (is_extxyz_ext(file_extension(path)))
    return read_extxyz(path);
  if (is_poscar_path(path))
    return read_poscar(path);
  fail(path, ": a model must be extended XYZ (.xyz/.extxyz) or POSCAR; for a crystal (CIF or built-in) ",
       "build one first with `epitem convert ", path, " model.xyz --zone u,v,w`");
}

void write_extxyz(const AtomicModel& model, const std::string& path) {
  std::ostringstream header;
  header << model.atoms.size() << "\n";
  header << "Lattice=\"";
  for (int c = 0; c < 3; ++c)
    for (int r = 0; r < 3; ++r)
      header << (c || r ? " " : "") << fmt(model.cell_A(r, c), 10);
  header << "\" Properties=species:S:1:pos:R:3:phase:S:1:u_iso:R:1:occupancy:R:1 pbc=\"";
  for (int i = 0; i < 3; ++i)
    header << (i ? " " : "") << (model.pbc[i] ? "T" : "F");
  header << "\"\n";
  std::vector<bool> phase_ok;
  size_t longest_phase = 0;
  for (const auto& ph : model.phase_names) {
    phase_ok.push_back(!ph.empty() && ph.find_first_of(" \t\"'") == std::string::npos);
    longest_phase = std::max(longest_phase, ph.size());
  }
  // symbol(3) + 3 × (space + fixed position) + phase + 2 × (space + %.6g ≤ 13) + newline
  const size_t max_line = 3 + 3 * (1 + MAX_FIXED_CHARS) + 1 + longest_phase + 2 * 16 + 1;
  write_atomically(path, [&](const std::string& tmp) {
    ChunkWriter out(tmp, path);
    out.put(header.str());
    for (const Atom& a : model.atoms) {
      if (a.phase < 0 || a.phase >= int(model.phase_names.size()))
        fail(path, ": atom phase index ", a.phase, " has no name in phase_names (internal)");
      const std::string& ph = model.phase_names[size_t(a.phase)];
      if (!phase_ok[size_t(a.phase)])
        fail(path, ": phase name '", ph, "' must be one word without quotes for extxyz");
      char* p = out.room(max_line);
      const char* sym = element_symbol(a.Z);
      const size_t sym_len = std::strlen(sym);
      p = std::copy(sym, sym + sym_len, p);
      if (sym_len < 2)
        *p++ = ' ';  // species column left-aligned in 2 characters
      for (int k = 0; k < 3; ++k) {
        *p++ = ' ';
        p = put_fixed(p, a.pos_A[k], 8, 14);
      }
      *p++ = ' ';
      p = std::copy(ph.begin(), ph.end(), p);
      *p++ = ' ';
      p = put_general(p, a.u_iso_A2, 6);
      *p++ = ' ';
      p = put_general(p, a.occupancy, 6);
      *p++ = '\n';
      out.advance(p);
    }
    out.close();
  });
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
