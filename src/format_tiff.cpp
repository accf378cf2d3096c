// TIFF back-end of the image-file layer, and read_tiff (image.hpp) on top of it. libtiff
// decodes the pages; frames are read one at a time. ImageJ stacks saved as one page directory
// with `images=N` (Fiji does so for stacks ≥ 4 GiB) are read by offset arithmetic, as ImageJ
// and tifffile do. Calibration from ImageJ, Gatan (DM export), JEOL SightX, FEI/Thermo SEM
// metadata, else from plausible resolution tags.
#include <fcntl.h>
#include <tiffio.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>

#include "epitem/error.hpp"
#include "epitem/image_file.hpp"
#include "epitem/output.hpp"

namespace epitem {

namespace {

// libtiff reports through global handlers that print to stderr by default. We silence
// warnings (private tags etc.) and keep the last error text of this thread for the Error message.
thread_local std::string tiff_last_error;

void tiff_error_handler(const char* module, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  tiff_last_error = module ? std::string(module) + ": " + buf : std::string(buf);
}

void install_tiff_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    TIFFSetWarningHandler(nullptr);
    TIFFSetErrorHandler(tiff_error_handler);
  });
}

std::string last_tiff_error() {
  return tiff_last_error.empty() ? std::string("unknown libtiff error") : tiff_last_error;
}

struct TiffCloser {
  void operator()(TIFF* t) const { TIFFClose(t); }
};
using TiffPtr = std::unique_ptr<TIFF, TiffCloser>;

// Compressed strips never expand more than this (deflate ≤ 1032, LZW ≈ 1400, PackBits 128);
// a declared size beyond it is a damaged header, refused before allocating.
constexpr double kMaxCompressionRatio = 4096;

std::string trimmed(std::string s) {
  const char* ws = " \t\r\n";
  const size_t a = s.find_first_not_of(ws);
  if (a == std::string::npos)
    return "";
  return s.substr(a, s.find_last_not_of(ws) - a + 1);
}

// "key=value" line of an ImageJ description or an ini-style block ("" when absent).
std::string key_value(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, key.size() + 1, key + "=") == 0)
      return trimmed(line.substr(key.size() + 1));
  return "";
}

// The `key=` value inside `[section]` of FEI/Thermo's ini-style metadata.
std::string ini_value(const std::string& text, const std::string& section, const std::string& key) {
  const size_t at = text.find("[" + section + "]");
  if (at == std::string::npos)
    return "";
  const size_t end = text.find("\n[", at + 1);
  return key_value(text.substr(at, end == std::string::npos ? std::string::npos : end - at), key);
}

// Text of the first <tag>…</tag> in `xml` (JEOL SightX XML is flat enough for this).
std::string xml_value(const std::string& xml, const std::string& tag) {
  const size_t a = xml.find("<" + tag + ">");
  if (a == std::string::npos)
    return "";
  const size_t b = xml.find("</" + tag + ">", a);
  return b == std::string::npos ? "" : trimmed(xml.substr(a + tag.size() + 2, b - a - tag.size() - 2));
}

double number_or_zero(const std::string& s) {
  try {
    size_t used = 0;
    const double v = std::stod(s, &used);
    return std::isfinite(v) ? v : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

// ImageJ writes "micron" for µm and may escape µ/Å as "\u00B5" / "\u00C5".
std::string imagej_unit(std::string unit) {
  if (unit == "micron" || unit == "microns" || unit == "\\u00B5m")
    return "µm";
  if (unit == "\\u00C5")
    return "A";
  if (unit.compare(0, 2, "1/") == 0)
    return "1/" + imagej_unit(unit.substr(2));
  return unit;
}

// A TIFF tag libtiff does not know (Gatan's 650xx, FEI's 34680/34682): libtiff keeps them as
// anonymous fields with a count. Returns false when the tag is absent.
bool private_tag(TIFF* tif, std::uint32_t tag, std::string* text, double* number) {
  const TIFFField* field = TIFFFindField(tif, tag, TIFF_ANY);
  if (!field)
    return false;
  std::uint32_t count = 0;
  void* data = nullptr;
  if (TIFFFieldPassCount(field)) {
    if (TIFFFieldReadCount(field) == TIFF_VARIABLE2) {
      if (!TIFFGetField(tif, tag, &count, &data))
        return false;
    } else {
      std::uint16_t c16 = 0;
      if (!TIFFGetField(tif, tag, &c16, &data))
        return false;
      count = c16;
    }
  } else {
    return false;
  }
  if (!data || count == 0)
    return false;
  switch (TIFFFieldDataType(field)) {
    case TIFF_ASCII:
    case TIFF_BYTE:
    case TIFF_UNDEFINED:
      if (text) {
        const char* c = static_cast<const char*>(data);
        *text = std::string(c, strnlen(c, count));
      }
      return text != nullptr;
    case TIFF_DOUBLE:
      if (number) std::memcpy(number, data, sizeof(double));
      return number != nullptr;
    case TIFF_FLOAT:
      if (number) { float f; std::memcpy(&f, data, sizeof f); *number = f; }
      return number != nullptr;
    default:
      return false;
  }
}

double private_number(TIFF* tif, std::uint32_t tag) {
  double v = 0;
  return private_tag(tif, tag, nullptr, &v) && std::isfinite(v) ? v : 0;
}

std::string private_text(TIFF* tif, std::uint32_t tag) {
  std::string s;
  return private_tag(tif, tag, &s, nullptr) ? s : "";
}

std::string ascii_tag(TIFF* tif, ttag_t tag) {
  char* s = nullptr;
  return TIFFGetField(tif, tag, &s) && s ? std::string(s) : std::string();
}

double resolution(TIFF* tif, ttag_t tag) {
  float r = 0;
  return TIFFGetField(tif, tag, &r) && r > 0 && std::isfinite(r) ? double(r) : 0;
}

// Exact IEEE half → float (subnormals, ±inf and NaN included).
float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  float out;
  if (exp == 0) {
    out = std::ldexp(float(mant), -24);
    if (sign) out = -out;
    return out;
  }
  const std::uint32_t bits = exp == 31 ? sign | 0x7f800000u | (mant << 13)
                                       : sign | ((exp + 112u) << 23) | (mant << 13);
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

struct Layout {
  std::uint32_t width = 0, height = 0;
  std::uint16_t spp = 1, bits = 8, format = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG;
  std::uint16_t photometric = PHOTOMETRIC_MINISBLACK, compression = COMPRESSION_NONE;
  int colour_channels = 1;  // 1 gray or 3 RGB (alpha ignored)
  size_t bytes() const { return bits / 8; }
};

std::string dtype_name(const Layout& L) {
  const std::string base = L.format == SAMPLEFORMAT_IEEEFP ? "float" : L.format == SAMPLEFORMAT_INT ? "int" : "uint";
  if (L.colour_channels == 3)
    return (L.spp == 4 ? "rgba" : "rgb") + std::to_string(L.bits) + (base == "uint" ? "" : "_" + base);
  return base + std::to_string(L.bits);
}

// `n` samples starting at `src`, `stride` bytes apart, as float.
void convert_samples(const unsigned char* src, size_t n, size_t stride, const Layout& L, float* dst) {
  auto run = [&](auto tag) {
    using T = decltype(tag);
    for (size_t k = 0; k < n; ++k) {
      T v;
      std::memcpy(&v, src + k * stride, sizeof v);
      dst[k] = float(v);
    }
  };
  if (L.format == SAMPLEFORMAT_IEEEFP) {
    if (L.bits == 16) {
      for (size_t k = 0; k < n; ++k) {
        std::uint16_t h;
        std::memcpy(&h, src + k * stride, 2);
        dst[k] = half_to_float(h);
      }
    } else if (L.bits == 32) {
      run(float{});
    } else {
      run(double{});
    }
  } else if (L.format == SAMPLEFORMAT_INT) {
    if (L.bits == 8) run(std::int8_t{});
    else if (L.bits == 16) run(std::int16_t{});
    else run(std::int32_t{});
  } else {
    if (L.bits == 8) run(std::uint8_t{});
    else if (L.bits == 16) run(std::uint16_t{});
    else run(std::uint32_t{});
  }
}

Layout page_layout(TIFF* tif, const std::string& path, size_t page) {
  Layout L;
  TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &L.width);
  TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &L.height);
  if (L.width == 0 || L.height == 0)
    fail(path, ": page ", page + 1, " has zero size (", L.width, "x", L.height, "); the file is damaged");
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &L.spp);
  TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &L.bits);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &L.format);
  TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &L.planar);
  TIFFGetFieldDefaulted(tif, TIFFTAG_PHOTOMETRIC, &L.photometric);
  TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &L.compression);
  if (L.photometric == PHOTOMETRIC_PALETTE)
    fail(path, ": palette-colour TIFF is not supported; convert it to grayscale first (Fiji: Image > Type > 32-bit)");
  if (L.photometric == PHOTOMETRIC_YCBCR || L.photometric == PHOTOMETRIC_SEPARATED ||
      L.photometric == PHOTOMETRIC_CIELAB)
    fail(path, ": YCbCr/CMYK/Lab colour TIFF is not supported; save it as RGB or grayscale TIFF (Fiji: Image > Type > 32-bit)");
  const bool is_int = L.format == SAMPLEFORMAT_UINT || L.format == SAMPLEFORMAT_INT;
  const bool is_float = L.format == SAMPLEFORMAT_IEEEFP;
  if (!((is_int && (L.bits == 8 || L.bits == 16 || L.bits == 32)) ||
        (is_float && (L.bits == 16 || L.bits == 32 || L.bits == 64))))
    fail(path, ": unsupported pixel type (", L.bits, "-bit ", is_float ? "float" : is_int ? "integer" : "complex/other",
         "); supported: 8/16/32-bit integer and 16/32/64-bit float; convert it in Fiji (Image > Type > 32-bit)");
  L.colour_channels = L.spp == 2 ? 1 : L.spp == 4 ? 3 : L.spp;  // alpha ignored
  if (L.colour_channels != 1 && L.colour_channels != 3)
    fail(path, ": ", L.spp, " samples per pixel is not supported; save a single-channel grayscale TIFF");
  return L;
}

// Refuses a page whose declared size the stored strips/tiles cannot hold, before allocating.
void check_page_data(TIFF* tif, const Layout& L, const std::string& path, size_t page, std::uint64_t file_size) {
  const bool tiled = TIFFIsTiled(tif);
  const std::uint32_t chunks = tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
  std::uint64_t* offsets = nullptr;
  std::uint64_t* counts = nullptr;
  if (chunks == 0 || !TIFFGetField(tif, tiled ? TIFFTAG_TILEOFFSETS : TIFFTAG_STRIPOFFSETS, &offsets) ||
      !TIFFGetField(tif, tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS, &counts) || !offsets || !counts)
    fail(path, ": page ", page + 1, " has no pixel data offsets; the file is damaged");
  double stored = 0;
  for (std::uint32_t k = 0; k < chunks; ++k) {
    if (offsets[k] > file_size || counts[k] > file_size - offsets[k])
      fail(path, ": page ", page + 1, " points to pixel data beyond the end of the file (", file_size,
           " bytes); the file is truncated");
    stored += double(counts[k]);
  }
  const double need = double(L.width) * double(L.height) * double(L.spp) * double(L.bytes());
  const double can_hold = L.compression == COMPRESSION_NONE ? stored : stored * kMaxCompressionRatio;
  if (need > can_hold)
    fail(path, ": page ", page + 1, " declares ", L.width, " x ", L.height, " pixels (", need,
         " bytes) but stores only ", stored, " bytes of pixel data; the file is truncated or its header is damaged");
}

constexpr std::uint64_t kNotRaw = ~std::uint64_t(0);

// Offset of the current page's pixels when they are one uncompressed gray block of `first`'s
// type in file order, so frame() can read them with pread (no libtiff, no lock); else kNotRaw.
std::uint64_t raw_block_offset(TIFF* tif, const Layout& first, std::uint64_t file_size) {
  std::uint16_t compression = COMPRESSION_NONE, bits = 8, format = SAMPLEFORMAT_UINT, spp = 1;
  TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &compression);
  TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &format);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
  std::uint64_t* offsets = nullptr;
  std::uint64_t* counts = nullptr;
  const std::uint32_t strips = TIFFNumberOfStrips(tif);
  if (TIFFIsTiled(tif) || compression != COMPRESSION_NONE || bits != first.bits || format != first.format ||
      spp != 1 || first.spp != 1 || strips == 0 || !TIFFGetField(tif, TIFFTAG_STRIPOFFSETS, &offsets) ||
      !TIFFGetField(tif, TIFFTAG_STRIPBYTECOUNTS, &counts) || !offsets || !counts)
    return kNotRaw;
  std::uint64_t stored = counts[0];
  for (std::uint32_t k = 1; k < strips; ++k) {
    if (offsets[k] != offsets[k - 1] + counts[k - 1])
      return kNotRaw;
    stored += counts[k];
  }
  const std::uint64_t frame_bytes = std::uint64_t(first.width) * first.height * first.bytes();
  if (stored < frame_bytes || offsets[0] > file_size || frame_bytes > file_size - offsets[0])
    return kNotRaw;  // libtiff's path reports the damage
  return offsets[0];
}

// One channel of the current directory (strips or tiles, any libtiff codec), as float.
std::vector<float> read_channel(TIFF* tif, const Layout& L, int channel, const std::string& path, size_t page) {
  const size_t bytes = L.bytes();
  const bool separate = L.planar == PLANARCONFIG_SEPARATE;
  const size_t px_stride = separate ? bytes : bytes * L.spp;
  const size_t offset = separate ? 0 : bytes * size_t(channel);
  const std::uint16_t plane = separate ? std::uint16_t(channel) : 0;
  std::vector<float> out(size_t(L.width) * L.height);
  auto bad_read = [&]() {
    fail(path, ": page ", page + 1, " is truncated or corrupt (", last_tiff_error(), ")");
  };
  tiff_last_error.clear();
  if (TIFFIsTiled(tif)) {
    std::uint32_t tw = 0, th = 0;
    TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
    const tmsize_t tile_size = TIFFTileSize(tif);
    if (tw == 0 || th == 0 || tile_size <= 0 || size_t(tile_size) < size_t(tw) * th * px_stride)
      fail(path, ": page ", page + 1, " has an invalid tile size; the file is damaged");
    std::vector<unsigned char> buf(static_cast<size_t>(tile_size));
    for (std::uint32_t ty = 0; ty < L.height; ty += th)
      for (std::uint32_t tx = 0; tx < L.width; tx += tw) {
        if (TIFFReadEncodedTile(tif, TIFFComputeTile(tif, tx, ty, 0, plane), buf.data(), tile_size) < 0)
          bad_read();
        const std::uint32_t w = std::min(tw, L.width - tx);
        for (std::uint32_t y = ty; y < std::min(ty + th, L.height); ++y)
          convert_samples(&buf[size_t(y - ty) * tw * px_stride + offset], w, px_stride, L,
                          &out[size_t(y) * L.width + tx]);
      }
    return out;
  }
  std::uint32_t rps = L.height;
  TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
  rps = std::max<std::uint32_t>(1, std::min(rps, L.height));
  const size_t row_bytes = px_stride * L.width;
  const tmsize_t strip_size = TIFFStripSize(tif);
  if (strip_size <= 0)
    fail(path, ": page ", page + 1, " has an invalid strip size; the file is damaged");
  std::vector<unsigned char> buf(std::max(size_t(strip_size), row_bytes * rps));
  for (std::uint32_t row0 = 0; row0 < L.height; row0 += rps) {
    const std::uint32_t rows = std::min(rps, L.height - row0);
    const tmsize_t got = TIFFReadEncodedStrip(tif, TIFFComputeStrip(tif, row0, plane), buf.data(), tmsize_t(buf.size()));
    if (got < 0 || size_t(got) < row_bytes * rows)
      bad_read();
    for (std::uint32_t r = 0; r < rows; ++r)
      convert_samples(&buf[r * row_bytes + offset], L.width, px_stride, L, &out[size_t(row0 + r) * L.width]);
  }
  return out;
}

// Rec. 601 luma of R, G, B; an equal-channel pixel keeps its value exactly.
float luminance(float r, float g, float b) {
  if (r == g && g == b)
    return r;
  return float(0.299 * r + 0.587 * g + 0.114 * b);
}

constexpr const char* kLuminanceNote = "RGB converted to luminance 0.299 R + 0.587 G + 0.114 B";

class TiffFileReader : public ImageFileReader {
public:
  TiffFileReader(const std::string& path, bool refuse_colour) : refuse_colour_(refuse_colour) {
    install_tiff_handlers();
    info_.path = path;
    std::error_code ec;
    file_size_ = std::filesystem::file_size(path, ec);
    if (ec)
      fail(path, ": cannot read the file size (", ec.message(), ")");
    tiff_last_error.clear();
    tif_.reset(TIFFOpen(path.c_str(), "r"));
    if (!tif_)
      fail(path, ": cannot read TIFF, file truncated or corrupt (", last_tiff_error(), ")");
    TIFF* tif = tif_.get();
    layout_ = page_layout(tif, path, 0);
    check_page_data(tif, layout_, path, 0, file_size_);
    info_.nx = int(layout_.width);
    info_.ny = int(layout_.height);
    read_metadata(tif);
    // The page chain: every full-resolution page is a frame (reduced-resolution thumbnails skipped).
    size_t page = 0;
    do {
      std::uint32_t subfile = 0;
      TIFFGetField(tif, TIFFTAG_SUBFILETYPE, &subfile);
      if (page == 0 || !(subfile & FILETYPE_REDUCEDIMAGE)) {
        std::uint32_t w = 0, h = 0;
        TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
        TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
        if (w != layout_.width || h != layout_.height)
          fail(path, ": page ", page + 1, " is ", w, "x", h, " but page 1 is ", layout_.width, "x", layout_.height,
               "; a stack needs pages of one size (split it, e.g. Fiji Image > Stacks > Stack to Images)");
        ifd_offsets_.push_back(TIFFCurrentDirOffset(tif));
        raw_offsets_.push_back(raw_block_offset(tif, layout_, file_size_));
      }
      ++page;
      tiff_last_error.clear();
    } while (TIFFReadDirectory(tif));
    if (!tiff_last_error.empty())
      fail(path, ": cannot read page ", page + 1, ", file truncated or corrupt (", last_tiff_error(), ")");
    info_.n_frames = ifd_offsets_.size();
    frame_bytes_ = std::uint64_t(layout_.width) * layout_.height * layout_.bytes();
    swap_ = TIFFIsByteSwapped(tif);
    fd_ = ::open(path.c_str(), O_RDONLY);
    if (fd_ < 0)
      fail(path, ": cannot be opened for reading (check its permissions)");
    if (imagej_images_ > ifd_offsets_.size())
      use_imagej_offsets(tif);
    info_.dtype = dtype_name(layout_);
    derive_pixel_sizes(info_);
    if (layout_.colour_channels == 3 && !refuse_colour_) {
      // Gray stored as RGB (equal channels) needs no note; decide from the first frame.
      read_frame(0, nullptr);
      if (colour_)
        info_.warnings.push_back(kLuminanceNote);
    }
  }

  ~TiffFileReader() override {
    if (fd_ >= 0)
      ::close(fd_);
  }

  Image frame(std::size_t i, ComplexPart = ComplexPart::Modulus) const override {
    if (i >= info_.n_frames)
      fail(info_.path, ": frame ", i, " does not exist (", info_.n_frames, " frames, numbered from 0)");
    bool colour = false;
    Image image = read_frame(i, &colour);
    if (colour && refuse_colour_)
      fail(info_.path, ": 3-channel RGB TIFF: convert to grayscale first, e.g. in Fiji Image > Type > 32-bit");
    apply_calibration(info_, image);
    return image;
  }

private:
  void read_metadata(TIFF* tif) {
    const std::string description = ascii_tag(tif, TIFFTAG_IMAGEDESCRIPTION);
    const std::string make = ascii_tag(tif, TIFFTAG_MAKE);
    info_.format = TIFFIsBigTIFF(tif) ? "BigTIFF" : "TIFF";
    const double xres = resolution(tif, TIFFTAG_XRESOLUTION);
    const double yres_tag = resolution(tif, TIFFTAG_YRESOLUTION);
    const double yres = yres_tag > 0 ? yres_tag : xres;
    std::uint16_t res_unit = RESUNIT_INCH;
    TIFFGetFieldDefaulted(tif, TIFFTAG_RESOLUTIONUNIT, &res_unit);
    AxisCalibration x, y;
    std::string fei = private_text(tif, 34682);
    if (fei.empty())
      fei = private_text(tif, 34680);
    if (description.compare(0, 7, "ImageJ=") == 0) {
      info_.format += " (ImageJ)";
      const std::string unit = imagej_unit(key_value(description, "unit"));
      if (!unit.empty() && xres > 0) {
        x.scale = 1 / xres;
        y.scale = 1 / yres;
        x.unit = y.unit = unit;
      }
      x.origin_px = number_or_zero(key_value(description, "xorigin"));
      y.origin_px = number_or_zero(key_value(description, "yorigin"));
      info_.frame_time_s = number_or_zero(key_value(description, "finterval"));
      const double images = number_or_zero(key_value(description, "images"));
      imagej_images_ = images >= 1 && images < 1e15 ? size_t(images) : 0;
      const double spacing = number_or_zero(key_value(description, "spacing"));
      info_.axes = {x, y};
      if (info_.frame_time_s > 0)
        info_.axes.push_back({info_.frame_time_s, 0, "s"});
      else if (spacing > 0)
        info_.axes.push_back({spacing, 0, unit});
      return;
    }
    if (make.compare(0, 4, "JEOL") == 0 && description.find("<TemReporter") != std::string::npos) {
      info_.format += " (JEOL SightX)";
      read_jeol(description, xres, yres, res_unit);
      return;
    }
    if (!fei.empty()) {
      info_.format += " (FEI/Thermo)";
      // [Scan] PixelWidth/PixelHeight in m; [EBeam] HV in V.
      x.scale = number_or_zero(ini_value(fei, "Scan", "PixelWidth"));
      y.scale = number_or_zero(ini_value(fei, "Scan", "PixelHeight"));
      x.unit = y.unit = "m";
      info_.energy_eV = number_or_zero(ini_value(fei, "EBeam", "HV"));
      if (info_.energy_eV == 0)
        info_.energy_eV = number_or_zero(ini_value(fei, "Beam", "HV"));
      info_.axes = {x, y};
      return;
    }
    const double dm_x = private_number(tif, 65009);
    if (dm_x > 0) {
      // Gatan's DM export: 65009/65010 scale, 65003/65004 unit, 65006/65007 physical offset.
      info_.format += " (Gatan DM export)";
      const double dm_y = private_number(tif, 65010);
      x = {dm_x, -private_number(tif, 65006) / dm_x, private_text(tif, 65003)};
      y.scale = dm_y > 0 ? dm_y : dm_x;
      y = {y.scale, -private_number(tif, 65007) / y.scale, private_text(tif, 65004)};
      if (y.unit.empty())
        y.unit = x.unit;
      info_.axes = {x, y};
      return;
    }
    // Without vendor metadata, cm/inch resolution is only trusted when it gives a plausible
    // microscope pixel (0.001 Å … 10 µm); 72/300 dpi defaults of image software are not.
    const double um_per_unit = res_unit == RESUNIT_CENTIMETER ? 1e4 : res_unit == RESUNIT_INCH ? 25400 : 0;
    const auto plausible = [](double um) { return um >= 1e-7 && um <= 10; };
    if (xres > 0 && um_per_unit > 0 && plausible(um_per_unit / xres)) {
      x = {um_per_unit / xres, 0, "µm"};
      y = {plausible(um_per_unit / yres) ? um_per_unit / yres : x.scale, 0, "µm"};
      info_.axes = {x, y};
    } else {
      info_.axes = {AxisCalibration{}, AxisCalibration{}};
    }
  }

  // JEOL SightX: no pixel size is stored; it follows from the print resolution (px per inch/cm)
  // and the magnification, or for diffraction from the camera length and wavelength
  // (rosettasciio _axes_jeol_sightx).
  void read_jeol(const std::string& xml, double xres, double yres, std::uint16_t res_unit) {
    const double metre_per_unit = res_unit == RESUNIT_INCH ? 0.0254 : 0.01;
    const std::string eos = xml_value(xml, "EosMode"), mode = xml_value(xml, "ModeString");
    const double selector = number_or_zero(xml_value(xml, "SelectorValue"));
    const double volts = number_or_zero(xml_value(xml, "AccelerationVoltage"));
    info_.energy_eV = volts;
    const std::string exposure = xml_value(xml, "ExposureTimeString");  // "100.00 msec"
    const double e = number_or_zero(exposure);
    if (exposure.find("msec") != std::string::npos)
      info_.exposure_s = e * 1e-3;
    else if (exposure.find("usec") != std::string::npos)
      info_.exposure_s = e * 1e-6;
    else if (exposure.find("sec") != std::string::npos)
      info_.exposure_s = e;
    AxisCalibration x, y;
    if (eos == "eosTEM" && mode == "MAG" && selector > 0 && xres > 0) {
      x = {metre_per_unit / xres / selector * 1e9, 0, "nm"};
      y = {metre_per_unit / yres / selector * 1e9, 0, "nm"};
    } else if (eos == "eosTEM" && mode == "DIFF" && selector > 0 && volts > 0 && xres > 0) {
      const std::string cl_unit = xml_value(xml, "SelectorUnitString");
      const double camera_m = selector / (cl_unit == "mm" ? 1000 : cl_unit == "cm" ? 100 : 1);
      info_.camera_length_m = camera_m;
      const double m_e = 9.1093837015e-31, e_c = 1.602176634e-19, c = 299792458.0, h = 6.62607015e-34;
      const double lambda_m = h / std::sqrt(2 * m_e * e_c * volts * (1 + e_c * volts / (2 * m_e * c * c)));
      const double per_nm = metre_per_unit / (camera_m * lambda_m * 1e9);
      x = {per_nm / xres, 0, "1/nm"};
      y = {per_nm / yres, 0, "1/nm"};
    }
    info_.axes = {x, y};
  }

  // ImageJ's single-directory stack: frames follow page 1's data contiguously.
  void use_imagej_offsets(TIFF* tif) {
    const std::string& path = info_.path;
    TIFFSetSubDirectory(tif, ifd_offsets_.front());
    std::uint64_t* offsets = nullptr;
    std::uint64_t* counts = nullptr;
    const std::uint32_t strips = TIFFNumberOfStrips(tif);
    if (TIFFIsTiled(tif) || layout_.compression != COMPRESSION_NONE || layout_.colour_channels != 1 ||
        layout_.spp != 1 || !TIFFGetField(tif, TIFFTAG_STRIPOFFSETS, &offsets) ||
        !TIFFGetField(tif, TIFFTAG_STRIPBYTECOUNTS, &counts) || strips == 0)
      fail(path, ": ImageJ description declares ", imagej_images_, " images but the file has ", ifd_offsets_.size(),
           " pages and its pixel data are not one uncompressed block; re-save it in Fiji (File > Save As > Tiff)");
    for (std::uint32_t k = 1; k < strips; ++k)
      if (offsets[k] != offsets[k - 1] + counts[k - 1])
        fail(path, ": ImageJ description declares ", imagej_images_,
             " images but page 1's strips are not contiguous; re-save it in Fiji (File > Save As > Tiff)");
    data_offset_ = offsets[0];
    require_declared_size(path, layout_.width, layout_.height, double(imagej_images_), double(layout_.bytes()),
                          double(file_size_) - double(data_offset_));
    by_offset_ = true;
    info_.n_frames = imagej_images_;
  }

  // One uncompressed frame at byte `at`: straight into the pixels for native float32.
  Image read_raw(std::uint64_t at, size_t i) const {
    Image image(int(layout_.width), int(layout_.height));
    const bool direct = !swap_ && layout_.format == SAMPLEFORMAT_IEEEFP && layout_.bits == 32;
    std::vector<unsigned char> buf(direct ? 0 : frame_bytes_);
    unsigned char* dst = direct ? reinterpret_cast<unsigned char*>(image.pixels.data()) : buf.data();
    for (std::uint64_t done = 0; done < frame_bytes_;) {
      const ssize_t got = ::pread(fd_, dst + done, frame_bytes_ - done, off_t(at + done));
      if (got <= 0)
        fail(info_.path, ": frame ", i, " is truncated (read error at byte ", at + done, ")");
      done += std::uint64_t(got);
    }
    if (!direct) {
      const size_t b = layout_.bytes();
      if (swap_ && b > 1)
        for (size_t k = 0; k < buf.size(); k += b)
          std::reverse(&buf[k], &buf[k] + b);
      convert_samples(buf.data(), image.pixels.size(), b, layout_, image.pixels.data());
    }
    return image;
  }

  Image read_frame(size_t i, bool* colour) const {
    const std::uint64_t raw = by_offset_ ? data_offset_ + frame_bytes_ * i : raw_offsets_[i];
    if (raw != kNotRaw) {
      if (colour)
        *colour = false;
      return read_raw(raw, i);
    }
    Image image;
    image.nx = int(layout_.width);
    image.ny = int(layout_.height);
    std::lock_guard<std::mutex> lock(mutex_);
    TIFF* tif = tif_.get();
    tiff_last_error.clear();
    if (TIFFSetSubDirectory(tif, ifd_offsets_[i]) != 1)
      fail(info_.path, ": cannot read page ", i + 1, " (", last_tiff_error(), ")");
    const Layout L = page_layout(tif, info_.path, i);
    if (L.width != layout_.width || L.height != layout_.height)
      fail(info_.path, ": page ", i + 1, " changed size while reading");
    check_page_data(tif, L, info_.path, i, file_size_);
    image.pixels = read_channel(tif, L, 0, info_.path, i);
    bool is_colour = false;
    if (L.colour_channels == 3) {
      const std::vector<float> g = read_channel(tif, L, 1, info_.path, i);
      const std::vector<float> b = read_channel(tif, L, 2, info_.path, i);
      for (size_t k = 0; k < image.pixels.size(); ++k) {
        is_colour = is_colour || image.pixels[k] != g[k] || g[k] != b[k];
        image.pixels[k] = luminance(image.pixels[k], g[k], b[k]);
      }
    }
    colour_ = colour_ || is_colour;
    if (colour)
      *colour = is_colour;
    return image;
  }

  bool refuse_colour_;
  std::uint64_t file_size_ = 0;
  TiffPtr tif_;
  mutable std::mutex mutex_;
  mutable bool colour_ = false;
  Layout layout_;
  std::vector<std::uint64_t> ifd_offsets_;
  std::vector<std::uint64_t> raw_offsets_;  // per page: pixel block offset or kNotRaw
  size_t imagej_images_ = 0;
  // ImageJ single-directory stacks: frame i at data_offset_ + i·frame_bytes_.
  bool by_offset_ = false;
  bool swap_ = false;
  int fd_ = -1;
  std::uint64_t data_offset_ = 0, frame_bytes_ = 0;
};

bool looks_like_tiff(const std::string& path, std::string& head_hex) {
  std::ifstream in(path, std::ios::binary);
  unsigned char m[4] = {0, 0, 0, 0};
  in.read(reinterpret_cast<char*>(m), 4);
  char hex[16];
  std::snprintf(hex, sizeof hex, "%02X %02X %02X %02X", m[0], m[1], m[2], m[3]);
  head_hex = hex;
  if (in.gcount() < 4)
    return false;
  const bool ii = m[0] == 'I' && m[1] == 'I' && (m[2] == 42 || m[2] == 43) && m[3] == 0;
  const bool mm = m[0] == 'M' && m[1] == 'M' && m[2] == 0 && (m[3] == 42 || m[3] == 43);
  return ii || mm;
}

}  // namespace

std::unique_ptr<ImageFileReader> open_tiff_file(const std::string& path) {
  return std::make_unique<TiffFileReader>(path, /*refuse_colour=*/false);
}

std::vector<Image> read_tiff(const std::string& path) {
  require_readable(path, "TIFF input");
  std::string head;
  if (!looks_like_tiff(path, head))
    fail(path, ": not a TIFF file (first bytes ", head,
         ", expected 49 49 2A 00 or 4D 4D 00 2A); convert it to TIFF first, e.g. in Fiji File > Save As > Tiff");
  const TiffFileReader reader(path, /*refuse_colour=*/true);
  std::vector<Image> pages;
  pages.reserve(reader.frame_count());
  for (size_t i = 0; i < reader.frame_count(); ++i)
    pages.push_back(reader.frame(i));
  return pages;
}

}  // namespace epitem
