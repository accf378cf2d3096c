// MRC 2014 back-end (Cheng et al., J. Struct. Biol. 192 (2015) 146): 1024-byte header, optional
// extended header of NSYMBT bytes, then nz sections of nx × ny values, read as frames in file
// row order (as mrcfile / rosettasciio do). Pixel size = cella / mx in Å.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "binary_io.hpp"
#include "epitem/error.hpp"
#include "epitem/image_file.hpp"

namespace epitem {

namespace {

using namespace binary_io;

constexpr std::size_t kHeaderBytes = 1024;

bool mode_to_stored(std::int32_t mode, Stored& t) {
  switch (mode) {
    case 0: t = Stored::I8; return true;
    case 1: t = Stored::I16; return true;
    case 2: t = Stored::F32; return true;
    case 3: t = Stored::CI16; return true;
    case 4: t = Stored::C64; return true;
    case 6: t = Stored::U16; return true;
    case 12: t = Stored::F16; return true;
    default: return false;
  }
}

std::string fmt(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

bool plausible_header(const unsigned char* h, bool little) {
  Stored t;
  const std::int32_t nx = load<std::int32_t>(h, little), ny = load<std::int32_t>(h + 4, little);
  return mode_to_stored(load<std::int32_t>(h + 12, little), t) && nx > 0 && ny > 0 && nx < (1 << 24) &&
         ny < (1 << 24);
}

// DE-Server writes `<base>_info.txt` beside `<base>_movie.mrc`: "key   = value" lines.
std::string de_sidecar_path(const std::string& path) {
  std::string base = path;
  if (base.size() > 4) {
    std::string ext = base.substr(base.size() - 4);
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (ext == ".mrc")
      base.resize(base.size() - 4);
  }
  const std::string movie = "_movie";
  if (base.size() > movie.size() && base.compare(base.size() - movie.size(), movie.size(), movie) == 0)
    base.resize(base.size() - movie.size());
  return base + "_info.txt";
}

// Value of `key` in a DE sidecar, NaN when absent or not a number.
double sidecar_number(const std::string& text, const std::string& key) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const auto eq = line.find('=');
    if (eq == std::string::npos)
      continue;
    std::string k = line.substr(0, eq);
    while (!k.empty() && (k.back() == ' ' || k.back() == '\t'))
      k.pop_back();
    if (k != key)
      continue;
    const char* begin = line.c_str() + eq + 1;
    char* end = nullptr;
    const double v = std::strtod(begin, &end);
    return end != begin ? v : NAN;
  }
  return NAN;
}

class MrcReader : public ImageFileReader {
public:
  explicit MrcReader(const std::string& path) : file_(path) {
    info_.path = path;
    if (file_.size() < kHeaderBytes)
      fail(path, ": an MRC header needs 1024 bytes but the file has only ", file_.size(),
           "; the file is truncated");
    const std::vector<unsigned char> hv = file_.read(0, kHeaderBytes, "MRC header");
    const unsigned char* h = hv.data();

    // MACHST: 0x44 0x44/0x41 = little-endian, 0x11 0x11 = big-endian; old writers leave it 0.
    if (h[212] == 0x44)
      little_ = true;
    else if (h[212] == 0x11)
      little_ = false;
    else {
      little_ = plausible_header(h, true) || !plausible_header(h, false);
      info_.warnings.push_back(std::string("machine stamp missing: byte order guessed ") +
                            (little_ ? "little-endian" : "big-endian") + " from the header values");
    }
    const auto i32 = [&](std::size_t at) { return load<std::int32_t>(h + at, little_); };
    const auto f32 = [&](std::size_t at) { return double(load<float>(h + at, little_)); };

    const std::int32_t nx = i32(0), ny = i32(4), nz = i32(8), mode = i32(12);
    if (!mode_to_stored(mode, type_))
      fail(path, ": MRC mode ", mode, " is not supported (supported: 0 int8, 1 int16, 2 float32, "
                 "3 complex int16, 4 complex64, 6 uint16, 12 float16); convert the file to mode 2, "
                 "e.g. with IMOD newstack -mode 2");
    if (nx <= 0 || ny <= 0 || nz <= 0)
      fail(path, ": MRC header declares nx × ny × nz = ", nx, " × ", ny, " × ", nz,
           "; every size must be ≥ 1 (damaged header)");
    const std::int32_t mapc = i32(64), mapr = i32(68), maps = i32(72);
    if (!(mapc == 1 && mapr == 2 && maps == 3) && !(mapc == 0 && mapr == 0 && maps == 0))
      fail(path, ": MRC axis order MAPC/MAPR/MAPS = ", mapc, "/", mapr, "/", maps,
           " is not supported; reorder the file to 1/2/3 (e.g. IMOD clip or mrcfile)");
    const std::int32_t nsymbt = i32(92);
    if (nsymbt < 0 || std::uint64_t(nsymbt) > file_.size() - kHeaderBytes)
      fail(path, ": MRC extended header size NSYMBT = ", nsymbt, " does not fit in the ", file_.size(),
           "-byte file; the header is damaged or the file truncated");
    data_offset_ = kHeaderBytes + std::uint64_t(nsymbt);
    const double bpv = double(bytes_per_value(type_));
    require_declared_size(path, nx, ny, nz, bpv, double(file_.size() - data_offset_));
    frame_bytes_ = std::size_t(nx) * std::size_t(ny) * bytes_per_value(type_);

    // Mode 0 is signed in MRC 2014; IMOD marks old unsigned-byte files by a clear bit 0 in its flags.
    if (type_ == Stored::I8 && i32(152) == 1146047817 && (i32(156) & 1) == 0) {
      type_ = Stored::U8;
      info_.notes.push_back("mode 0 read as unsigned bytes (IMOD flag: bytes not signed)");
    }

    const std::int32_t nversion = i32(108);
    info_.format = nversion >= 20140 && nversion <= 20149 ? "MRC 2014" : "MRC (pre-2014 header)";
    info_.dtype = dtype_name(type_);
    info_.nx = nx;
    info_.ny = ny;
    info_.n_frames = std::size_t(nz);
    if (nsymbt > 0) {
      std::string exttyp(reinterpret_cast<const char*>(h + 104), 4);
      exttyp.erase(std::remove_if(exttyp.begin(), exttyp.end(), [](char c) { return c < 32 || c > 126; }), exttyp.end());
      info_.notes.push_back("extended header of " + std::to_string(nsymbt) + " bytes" +
                            (exttyp.empty() ? std::string() : " (EXTTYP " + exttyp + ")") + " skipped");
    }
    if (is_complex(type_))
      info_.warnings.push_back(std::string("complex data: frames return the chosen part (modulus by default)"));

    // Calibration: cella / mx Å per pixel; physical = origin + (index + nxstart) · step.
    const std::int32_t start[3] = {i32(16), i32(20), i32(24)};
    const std::int32_t m[3] = {i32(28), i32(32), i32(36)};
    const double cella[3] = {f32(40), f32(44), f32(48)};
    const double origin[3] = {f32(196), f32(200), f32(204)};
    const std::int32_t n[3] = {nx, ny, nz};
    const int n_axes = nz > 1 ? 3 : 2;
    bool placeholder = false;
    for (int a = 0; a < n_axes; ++a) {
      AxisCalibration cal;
      const double samples = m[a] > 0 ? m[a] : n[a];
      cal.scale = std::isfinite(cella[a]) ? cella[a] / samples : 0;
      cal.unit = "A";
      cal.origin_px = 0.0 - double(start[a]) - (cal.scale > 0 && std::isfinite(origin[a]) ? origin[a] / cal.scale : 0.0);
      if (a < 2 && cal.scale < 0)
        placeholder = true;
      info_.axes.push_back(cal);
    }
    if (placeholder)
      info_.notes.push_back("cella/mx is negative (" + fmt(info_.axes[0].scale) +
                            " Å per pixel): a placeholder (Direct Electron writes −10 Å), not a "
                            "calibration; pixel size left unknown");
    else if (!(info_.axes[0].scale > 0))
      info_.notes.push_back("no pixel size in the header (cella = 0)");
    derive_pixel_sizes(info_);
    read_de_sidecar();
  }

  Image frame(std::size_t i, ComplexPart part) const override {
    if (i >= info_.n_frames)
      fail(info_.path, ": frame ", i, " does not exist (the file has ", info_.n_frames, " frames)");
    Image image(info_.nx, info_.ny);
    const std::uint64_t at = data_offset_ + std::uint64_t(i) * frame_bytes_;
    if (type_ == Stored::F32 && little_ == host_is_little_endian()) {
      file_.read(at, image.pixels.data(), frame_bytes_, "MRC frame data");
    } else {
      const std::vector<unsigned char> raw = file_.read(at, frame_bytes_, "MRC frame data");
      convert_to_float(type_, raw.data(), image.pixels.size(), little_, image.pixels.data(), part);
    }
    apply_calibration(info_, image);
    return image;
  }

private:
  // Frame time and exposure come only from the DE sidecar; its "Specimen Pixel Size" is the scan
  // step of a 4D-STEM series, not the pixel of a frame, so it is not used as a calibration.
  void read_de_sidecar() {
    const std::string sidecar = de_sidecar_path(info_.path);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(sidecar, ec) || std::filesystem::file_size(sidecar, ec) > (16u << 20))
      return;
    std::ifstream in(sidecar);
    std::stringstream text;
    text << in.rdbuf();
    const double frame_ns = sidecar_number(text.str(), "Frame Time (nanoseconds)");
    const double exposure_ns = sidecar_number(text.str(), "Frame Exposure Time (nanoseconds)");
    const std::string name = std::filesystem::path(sidecar).filename().string();
    if (frame_ns > 0) {
      info_.frame_time_s = frame_ns * 1e-9;
      if (info_.axes.size() > 2 && !(info_.axes[2].scale > 0))
        info_.axes[2] = AxisCalibration{info_.frame_time_s, 0, "s"};
    }
    if (exposure_ns > 0)
      info_.exposure_s = exposure_ns * 1e-9;
    if (frame_ns > 0 || exposure_ns > 0)
      info_.notes.push_back("frame time / exposure read from the DE sidecar " + name);
  }

  RawFile file_;
  Stored type_ = Stored::F32;
  bool little_ = true;
  std::uint64_t data_offset_ = kHeaderBytes;
  std::size_t frame_bytes_ = 0;
};

}  // namespace

std::unique_ptr<ImageFileReader> open_mrc_file(const std::string& path) { return std::make_unique<MrcReader>(path); }

}  // namespace epitem
