#include "epitem/image_file.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "epitem/error.hpp"
#include "epitem/limits.hpp"
#include "epitem/output.hpp"

namespace epitem {

namespace {

std::string lower_ascii(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z')
      c = char(c - 'A' + 'a');
  return s;
}

// Strips spaces and the micro signs µ (U+00B5) / μ (U+03BC) → 'u', "Å" → "a".
std::string normalised_unit(const std::string& unit) {
  std::string out;
  for (size_t i = 0; i < unit.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(unit[i]);
    if (c == ' ')
      continue;
    if (c == 0xC2 && i + 1 < unit.size() && static_cast<unsigned char>(unit[i + 1]) == 0xB5) { out += 'u'; ++i; continue; }
    if (c == 0xCE && i + 1 < unit.size() && static_cast<unsigned char>(unit[i + 1]) == 0xBC) { out += 'u'; ++i; continue; }
    if (c == 0xC3 && i + 1 < unit.size() && static_cast<unsigned char>(unit[i + 1]) == 0x85) { out += 'a'; ++i; continue; }
    if (c == 0xB5) { out += 'u'; continue; }  // Latin-1 µ (DM strings are UTF-16, converted bytewise)
    if (c == 0xC5) { out += 'a'; continue; }  // Latin-1 Å
    out += char(c);
  }
  out = lower_ascii(out);
  if (out == "n_m")  // ncempy writes nm so
    out = "nm";
  return out;
}

double length_factor(const std::string& u) {
  if (u == "a" || u == "angstrom" || u == "angstroms") return 1;
  if (u == "nm" || u == "nanometer" || u == "nanometers" || u == "nanometre" || u == "nanometres") return 10;
  if (u == "pm") return 0.01;
  if (u == "um" || u == "micron" || u == "microns" || u == "micrometer" || u == "micrometre") return 1e4;
  if (u == "mm") return 1e7;
  if (u == "m" || u == "meter" || u == "metre") return 1e10;
  return 0;
}

}  // namespace

double length_unit_in_A(const std::string& unit) { return length_factor(normalised_unit(unit)); }

double reciprocal_unit_in_invA(const std::string& unit) {
  const std::string u = normalised_unit(unit);
  std::string base;
  if (u.rfind("1/", 0) == 0)
    base = u.substr(2);
  else if (u.size() > 3 && u.compare(u.size() - 3, 3, "^-1") == 0)
    base = u.substr(0, u.size() - 3);
  else if (u.size() > 2 && u.compare(u.size() - 2, 2, "-1") == 0)
    base = u.substr(0, u.size() - 2);
  else
    return 0;
  const double f = length_factor(base);
  return f > 0 ? 1 / f : 0;
}

void derive_pixel_sizes(ImageFileInfo& info) {
  info.pixel_size_A = info.pixel_size_y_A = info.pixel_size_invA = info.pixel_size_y_invA = 0;
  for (size_t axis = 0; axis < 2 && axis < info.axes.size(); ++axis) {
    const AxisCalibration& a = info.axes[axis];
    if (!(a.scale > 0))
      continue;
    const double len = length_unit_in_A(a.unit), rec = reciprocal_unit_in_invA(a.unit);
    if (len > 0)
      (axis == 0 ? info.pixel_size_A : info.pixel_size_y_A) = a.scale * len;
    else if (rec > 0)
      (axis == 0 ? info.pixel_size_invA : info.pixel_size_y_invA) = a.scale * rec;
  }
  // One calibrated axis in an image of square pixels (formats that store one value): y = x.
  if (info.axes.size() < 2) {
    info.pixel_size_y_A = info.pixel_size_A;
    info.pixel_size_y_invA = info.pixel_size_invA;
  }
}

void apply_calibration(const ImageFileInfo& info, Image& image) {
  image.pixel_size_A = info.pixel_size_A;
  image.pixel_size_invA = info.pixel_size_invA;
  // Image keeps y only when it differs from x (0 = same as x).
  const auto y_or_zero = [](double x, double y) { return (y > 0 && std::abs(y - x) > 1e-9 * x) ? y : 0.0; };
  image.pixel_size_y_A = y_or_zero(info.pixel_size_A, info.pixel_size_y_A);
  image.pixel_size_y_invA = y_or_zero(info.pixel_size_invA, info.pixel_size_y_invA);
}

void require_declared_size(const std::string& what, double nx, double ny, double n_frames,
                           double bytes_per_value, double available_bytes) {
  if (!(nx >= 1 && ny >= 1 && n_frames >= 1))
    fail(what, ": the header declares ", nx, " × ", ny, " × ", n_frames,
         " values; the file is damaged or not an image");
  const double need = nx * ny * n_frames * bytes_per_value;
  if (need > available_bytes)
    fail(what, ": the header declares ", nx, " × ", ny, " × ", n_frames, " values (", need,
         " bytes) but the file holds only ", available_bytes,
         " bytes of data; the file is truncated or its header is damaged");
  // Frames are read one at a time as float (complex parts and a copy while converting: ×3).
  require_memory(what + ": one " + std::to_string(long(nx)) + " × " + std::to_string(long(ny)) +
                     " frame",
                 nx * ny * 4.0 * 3.0, "the header is damaged, or crop/bin the image first");
}

std::string image_file_kind(const std::string& path) {
  unsigned char magic[1024] = {};
  size_t got = 0;
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    got = std::fread(magic, 1, sizeof magic, f);
    std::fclose(f);
  }
  const auto starts = [&](const char* s, size_t n, size_t at = 0) {
    return got >= at + n && std::memcmp(magic + at, s, n) == 0;
  };
  if (got < 8)
    return "";
  if (starts("II*\0", 4) || starts("MM\0*", 4) || starts("II+\0", 4) || starts("MM\0+", 4))
    return "tiff";
  if (starts("II\x97\x01", 4))
    return "ser";
  if (starts("JK\0\x02", 4))
    return "emi";
  if (starts("\x89HDF\r\n\x1a\n", 8) || starts("\x89HDF\r\n\x1a\n", 8, 512))
    return "hdf5";
  if (starts("\x89PNG", 4) || starts("\xff\xd8\xff", 3))
    return "stb";
  // "MAP" first: a big-endian MRC 3 or 4 columns wide starts like a DM file.
  if (starts("MAP", 3, 208))
    return "mrc";
  if (magic[0] == 0 && magic[1] == 0 && magic[2] == 0 && (magic[3] == 3 || magic[3] == 4))
    return "dm";
  // MRC files older than 2000 have no "MAP" stamp: only their extension tells.
  const std::string ext = lower_ascii(std::filesystem::path(path).extension().string());
  if (got >= 1024 && (ext == ".mrc" || ext == ".mrcs" || ext == ".st" || ext == ".ali"))
    return "mrc";
  return "";
}

std::unique_ptr<ImageFileReader> open_image_file(const std::string& path) {
  register_input(path);  // never overwritten by this run's outputs (output.hpp)
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    fail(path, ": file not found");
  if (std::filesystem::is_directory(path, ec))
    fail(path, ": is a folder; give an image file");
  if (FILE* f = std::fopen(path.c_str(), "rb"))
    std::fclose(f);
  else
    fail(path, ": cannot be opened for reading (check its permissions)");
  const std::string kind = image_file_kind(path);
  if (kind == "tiff") return open_tiff_file(path);
  if (kind == "ser") return open_ser_file(path);
  if (kind == "emi") return open_emi_file(path);
  if (kind == "hdf5") return open_emd_file(path);
  if (kind == "stb") return open_stb_file(path);
  if (kind == "dm") return open_dm_file(path);
  if (kind == "mrc") return open_mrc_file(path);
  fail(path, ": unknown image format (its first bytes match none of TIFF, DM3/DM4, TIA SER/EMI, "
             "EMD/HDF5, MRC, PNG, JPEG); convert it to TIFF, e.g. in Fiji");
}

std::vector<Image> read_image_frames(const std::string& path) {
  auto reader = open_image_file(path);
  std::vector<Image> frames;
  frames.reserve(reader->frame_count());
  for (size_t i = 0; i < reader->frame_count(); ++i)
    frames.push_back(reader->frame(i));
  return frames;
}

}  // namespace epitem
