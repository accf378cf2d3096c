#include "epitem/image.hpp"

#include <tiffio.h>

#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>

#include "epitem/error.hpp"
#include "epitem/output.hpp"

namespace epitem {

namespace {

// libtiff reports through global handlers that print to stderr by default. We silence
// warnings (harmless private tags etc.) and keep the last error text of this thread so it can
// go into the Error message with the file name.
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

// ImageJ description: "ImageJ=1.11a\nimages=N\nunit=nm\n..." (key=value lines).
std::string imagej_value(const std::string& description, const std::string& key) {
  std::istringstream in(description);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size() + 1, key + "=") == 0)
      return line.substr(key.size() + 1);
  }
  return "";
}

// Length of one ImageJ unit in Å; 0 if the unit is not a length we know. ImageJ writes "micron"
// for µm and may store µ/Å as Latin-1 or UTF-8 bytes or as Java "\u00B5" escapes.
double unit_length_A(std::string unit) {
  while (!unit.empty() && (unit.back() == '\r' || unit.back() == ' '))
    unit.pop_back();
  if (unit == "nm" || unit == "nanometer" || unit == "nanometers")
    return 10.0;
  if (unit == "A" || unit == "\xC3\x85" || unit == "\xC5" || unit == "\\u00C5" || unit == "\xE2\x84\xAB" ||
      unit == "angstrom" || unit == "Angstrom")
    return 1.0;
  if (unit == "micron" || unit == "microns" || unit == "um" || unit == "\xC2\xB5m" || unit == "\xB5m" ||
      unit == "\\u00B5m" || unit == "\xCE\xBCm")
    return 1e4;
  if (unit == "pm")
    return 0.01;
  if (unit == "mm")
    return 1e7;
  return 0;
}

// A micrograph or pattern pixel between 0.001 Å and 10 µm is plausible; outside that, the
// resolution tags are the 72/300 dpi defaults of image software, not a calibration.
bool plausible_pixel_A(double px) { return px >= 1e-3 && px <= 1e5; }

struct Calibration {
  double pixel_size_A = 0;
  double pixel_size_invA = 0;
  double pixel_size_y_A = 0;     // 0 = square pixels
  double pixel_size_y_invA = 0;
};

// Pixels per unit along y from YResolution; 0 when absent, invalid or equal to x (square).
double y_px_per_unit(TIFF* tif, double x_px_per_unit) {
  float yres = 0;
  if (!TIFFGetField(tif, TIFFTAG_YRESOLUTION, &yres) || !(yres > 0) || !std::isfinite(yres))
    return 0;
  return std::fabs(double(yres) - x_px_per_unit) > 1e-6 * x_px_per_unit ? double(yres) : 0;
}

Calibration read_calibration(TIFF* tif) {
  Calibration cal;
  float xres = 0;
  if (!TIFFGetField(tif, TIFFTAG_XRESOLUTION, &xres) || !(xres > 0) || !std::isfinite(xres))
    return cal;
  const double px_per_unit = xres;
  const double y_per_unit = y_px_per_unit(tif, px_per_unit);
  char* desc = nullptr;
  std::string description;
  if (TIFFGetField(tif, TIFFTAG_IMAGEDESCRIPTION, &desc) && desc)
    description = desc;
  if (description.compare(0, 7, "ImageJ=") == 0) {
    std::string unit = imagej_value(description, "unit");
    if (unit.compare(0, 2, "1/") == 0) {
      double len = unit_length_A(unit.substr(2));
      if (len > 0) {
        cal.pixel_size_invA = 1.0 / px_per_unit / len;
        if (y_per_unit > 0)
          cal.pixel_size_y_invA = 1.0 / y_per_unit / len;
      }
    } else {
      double len = unit_length_A(unit);
      if (len > 0) {
        cal.pixel_size_A = len / px_per_unit;
        if (y_per_unit > 0)
          cal.pixel_size_y_A = len / y_per_unit;
      }
    }
    return cal;
  }
  std::uint16_t res_unit = RESUNIT_INCH;
  TIFFGetFieldDefaulted(tif, TIFFTAG_RESOLUTIONUNIT, &res_unit);
  // Without ImageJ's description, cm/inch resolution is only trusted when it gives a
  // plausible microscope pixel (DigitalMicrograph/TIA exports do write real calibrations).
  double unit_A = res_unit == RESUNIT_CENTIMETER ? 1e8 : res_unit == RESUNIT_INCH ? 2.54e8 : 0;
  if (unit_A > 0 && plausible_pixel_A(unit_A / px_per_unit)) {
    cal.pixel_size_A = unit_A / px_per_unit;
    if (y_per_unit > 0 && plausible_pixel_A(unit_A / y_per_unit))
      cal.pixel_size_y_A = unit_A / y_per_unit;
  }
  return cal;
}

double sample_value(const unsigned char* p, std::uint16_t format, std::uint16_t bits) {
  switch (format) {
    case SAMPLEFORMAT_UINT:
      if (bits == 8) return *p;
      if (bits == 16) { std::uint16_t v; std::memcpy(&v, p, 2); return v; }
      { std::uint32_t v; std::memcpy(&v, p, 4); return v; }
    case SAMPLEFORMAT_INT:
      if (bits == 8) { std::int8_t v; std::memcpy(&v, p, 1); return v; }
      if (bits == 16) { std::int16_t v; std::memcpy(&v, p, 2); return v; }
      { std::int32_t v; std::memcpy(&v, p, 4); return v; }
    default:
      if (bits == 32) { float v; std::memcpy(&v, p, 4); return v; }
      { double v; std::memcpy(&v, p, 8); return v; }
  }
}

struct PageLayout {
  std::uint32_t width = 0, height = 0;
  std::uint16_t spp = 1, bits = 8, format = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG;
};

// One channel of the current directory, strip or tile organised, any libtiff codec.
std::vector<float> read_channel(TIFF* tif, const PageLayout& L, int channel, const std::string& path,
                                int page) {
  const size_t bytes = L.bits / 8;
  const bool separate = L.planar == PLANARCONFIG_SEPARATE;
  const size_t px_stride = separate ? bytes : bytes * L.spp;
  const size_t offset = separate ? 0 : bytes * size_t(channel);
  const std::uint16_t plane = separate ? std::uint16_t(channel) : 0;
  std::vector<float> out(size_t(L.width) * L.height);
  auto bad_read = [&]() {
    fail(path, ": page ", page + 1, " is truncated or corrupt (", last_tiff_error(), ")");
  };
  if (TIFFIsTiled(tif)) {
    std::uint32_t tw = 0, th = 0;
    TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
    if (tw == 0 || th == 0)
      fail(path, ": page ", page + 1, " has zero tile size");
    std::vector<unsigned char> buf(size_t(TIFFTileSize(tif)));
    for (std::uint32_t ty = 0; ty < L.height; ty += th)
      for (std::uint32_t tx = 0; tx < L.width; tx += tw) {
        ttile_t tile = TIFFComputeTile(tif, tx, ty, 0, plane);
        if (TIFFReadEncodedTile(tif, tile, buf.data(), tmsize_t(buf.size())) < 0)
          bad_read();
        for (std::uint32_t y = ty; y < std::min(ty + th, L.height); ++y)
          for (std::uint32_t x = tx; x < std::min(tx + tw, L.width); ++x) {
            size_t k = (size_t(y - ty) * tw + (x - tx)) * px_stride + offset;
            out[size_t(y) * L.width + x] = float(sample_value(&buf[k], L.format, L.bits));
          }
      }
    return out;
  }
  std::uint32_t rps = L.height;
  TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
  rps = std::max<std::uint32_t>(1, std::min(rps, L.height));
  std::vector<unsigned char> buf(size_t(TIFFStripSize(tif)));
  const size_t row_bytes = px_stride * L.width;
  for (std::uint32_t row0 = 0; row0 < L.height; row0 += rps) {
    std::uint32_t rows = std::min(rps, L.height - row0);
    tstrip_t strip = TIFFComputeStrip(tif, row0, plane);
    tmsize_t got = TIFFReadEncodedStrip(tif, strip, buf.data(), tmsize_t(buf.size()));
    if (got < 0 || size_t(got) < row_bytes * rows)
      bad_read();
    for (std::uint32_t r = 0; r < rows; ++r)
      for (std::uint32_t x = 0; x < L.width; ++x)
        out[size_t(row0 + r) * L.width + x] =
            float(sample_value(&buf[r * row_bytes + x * px_stride + offset], L.format, L.bits));
  }
  return out;
}

Image read_page(TIFF* tif, const std::string& path, int page) {
  PageLayout L;
  TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &L.width);
  TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &L.height);
  if (L.width == 0 || L.height == 0)
    fail(path, ": page ", page + 1, " has zero size (", L.width, "x", L.height, ")");
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &L.spp);
  TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &L.bits);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &L.format);
  TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &L.planar);
  std::uint16_t photometric = PHOTOMETRIC_MINISBLACK;
  TIFFGetFieldDefaulted(tif, TIFFTAG_PHOTOMETRIC, &photometric);
  if (photometric == PHOTOMETRIC_PALETTE)
    fail(path, ": palette-colour TIFF is not supported; convert it to grayscale first (Fiji: Image > Type > 32-bit)");
  const bool is_int = L.format == SAMPLEFORMAT_UINT || L.format == SAMPLEFORMAT_INT;
  const bool is_float = L.format == SAMPLEFORMAT_IEEEFP;
  if (!((is_int && (L.bits == 8 || L.bits == 16 || L.bits == 32)) || (is_float && (L.bits == 32 || L.bits == 64))))
    fail(path, ": unsupported pixel type (", L.bits, "-bit ",
         is_float ? "float" : is_int ? "integer" : "complex/other",
         "); supported: 8/16/32-bit integer and 32/64-bit float grayscale; convert it in Fiji (Image > Type > 32-bit)");
  int channels = L.spp;
  if (L.spp == 2 || L.spp == 4)  // gray + alpha or RGBA: ignore the alpha channel
    --channels;
  if (channels != 1 && channels != 3)
    fail(path, ": ", L.spp, " samples per pixel is not supported; save a single-channel grayscale TIFF");
  Image image(int(L.width), int(L.height));
  image.pixels = read_channel(tif, L, 0, path, page);
  if (channels == 3) {
    for (int c = 1; c < 3; ++c) {
      std::vector<float> other = read_channel(tif, L, c, path, page);
      if (other != image.pixels)
        fail(path, ": 3-channel RGB TIFF: convert to grayscale first, e.g. in Fiji Image > Type > 32-bit");
    }
  }
  return image;
}

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

void write_tiff(const std::string& path, const std::vector<Image>& pages,
                const std::string& description) {
  install_tiff_handlers();
  if (pages.empty())
    fail(path, ": no image to write");
  const Image& first = pages.front();
  for (size_t i = 0; i < pages.size(); ++i) {
    const Image& p = pages[i];
    if (p.nx <= 0 || p.ny <= 0 || p.pixels.size() != size_t(p.nx) * size_t(p.ny))
      fail(path, ": page ", i + 1, " has invalid size ", p.nx, "x", p.ny);
    if (p.nx != first.nx || p.ny != first.ny)
      fail(path, ": page ", i + 1, " is ", p.nx, "x", p.ny, " but page 1 is ", first.nx, "x", first.ny,
           "; all pages of a stack must have the same size");
  }
  // ImageJ reads XResolution as pixels per `unit` (from its description); RESUNIT_NONE keeps
  // other readers from turning it into dpi. Å is written as "A", which ImageJ displays as Å.
  double px_per_unit = 0, y_per_unit = 0;
  std::string unit;
  if (first.pixel_size_A > 0) {
    px_per_unit = 1.0 / first.pixel_size_A;
    y_per_unit = 1.0 / first.pixel_y_A();
    unit = "A";
  } else if (first.pixel_size_invA > 0) {
    px_per_unit = 1.0 / first.pixel_size_invA;
    y_per_unit = 1.0 / first.pixel_y_invA();
    unit = "1/A";
  }
  std::ostringstream ij;
  ij << "ImageJ=1.11a\n";
  if (pages.size() > 1)
    ij << "images=" << pages.size() << "\nslices=" << pages.size() << "\n";
  if (!unit.empty())
    ij << "unit=" << unit << "\n";
  ij << "loop=false\n";
  const std::string ij_description = ij.str();
  // Classic TIFF stops at 4 GiB; larger stacks are written as BigTIFF.
  const double total_bytes = double(first.size()) * 4.0 * double(pages.size());
  const char* mode = total_bytes > 3.9e9 ? "w8" : "w";

  write_atomically(path, [&](const std::string& tmp) {
    tiff_last_error.clear();
    TiffPtr tif(TIFFOpen(tmp.c_str(), mode));
    if (!tif)
      fail(path, ": cannot create TIFF (", last_tiff_error(), ")");
    for (size_t i = 0; i < pages.size(); ++i) {
      const Image& p = pages[i];
      TIFF* t = tif.get();
      TIFFSetField(t, TIFFTAG_IMAGEWIDTH, std::uint32_t(p.nx));
      TIFFSetField(t, TIFFTAG_IMAGELENGTH, std::uint32_t(p.ny));
      TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, std::uint16_t(32));
      TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, std::uint16_t(SAMPLEFORMAT_IEEEFP));
      TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, std::uint16_t(1));
      TIFFSetField(t, TIFFTAG_PHOTOMETRIC, std::uint16_t(PHOTOMETRIC_MINISBLACK));
      TIFFSetField(t, TIFFTAG_PLANARCONFIG, std::uint16_t(PLANARCONFIG_CONTIG));
      TIFFSetField(t, TIFFTAG_COMPRESSION, std::uint16_t(COMPRESSION_NONE));
      TIFFSetField(t, TIFFTAG_ORIENTATION, std::uint16_t(ORIENTATION_TOPLEFT));
      TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, TIFFDefaultStripSize(t, 0));
      if (pages.size() > 1) {
        TIFFSetField(t, TIFFTAG_SUBFILETYPE, std::uint32_t(FILETYPE_PAGE));
        TIFFSetField(t, TIFFTAG_PAGENUMBER, std::uint16_t(i), std::uint16_t(pages.size()));
      }
      if (i == 0) {
        // ImageJ only parses page 1's ImageDescription and requires it to start with
        // "ImageJ="; the free-text description (JSON parameters) goes into DocumentName.
        TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, ij_description.c_str());
        TIFFSetField(t, TIFFTAG_SOFTWARE, "epitem");
        if (!description.empty())
          TIFFSetField(t, TIFFTAG_DOCUMENTNAME, description.c_str());
      }
      if (px_per_unit > 0) {
        TIFFSetField(t, TIFFTAG_XRESOLUTION, float(px_per_unit));
        TIFFSetField(t, TIFFTAG_YRESOLUTION, float(y_per_unit));
        TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, std::uint16_t(RESUNIT_NONE));
      }
      for (int y = 0; y < p.ny; ++y) {
        auto* row = const_cast<float*>(&p.pixels[size_t(y) * size_t(p.nx)]);
        if (TIFFWriteScanline(t, row, std::uint32_t(y), 0) < 0)
          fail(path, ": write failed (", last_tiff_error(), "; disk full?)");
      }
      if (!TIFFWriteDirectory(t))
        fail(path, ": write failed (", last_tiff_error(), "; disk full?)");
    }
    TIFFClose(tif.release());
    if (!tiff_last_error.empty())
      fail(path, ": write failed (", last_tiff_error(), ")");
  });
}

std::vector<Image> read_tiff(const std::string& path) {
  install_tiff_handlers();
  require_readable(path, "TIFF input");
  std::string head;
  if (!looks_like_tiff(path, head))
    fail(path, ": not a TIFF file (first bytes ", head,
         ", expected 49 49 2A 00 or 4D 4D 00 2A); convert it to TIFF first, e.g. in Fiji File > Save As > Tiff");
  tiff_last_error.clear();
  TiffPtr tif(TIFFOpen(path.c_str(), "r"));
  if (!tif)
    fail(path, ": cannot read TIFF, file truncated or corrupt (", last_tiff_error(), ")");
  const Calibration cal = read_calibration(tif.get());
  std::vector<Image> pages;
  int page = 0;
  do {
    Image im = read_page(tif.get(), path, page);
    // ImageJ stores the calibration once, in page 1, for the whole stack.
    im.pixel_size_A = cal.pixel_size_A;
    im.pixel_size_invA = cal.pixel_size_invA;
    im.pixel_size_y_A = cal.pixel_size_y_A;
    im.pixel_size_y_invA = cal.pixel_size_y_invA;
    pages.push_back(std::move(im));
    ++page;
    tiff_last_error.clear();
  } while (TIFFReadDirectory(tif.get()));
  if (!tiff_last_error.empty())
    fail(path, ": cannot read page ", page + 1, ", file truncated or corrupt (", last_tiff_error(), ")");
  return pages;
}

Image flipped_rows(const Image& image) {
  Image out = image;
  const size_t nx = size_t(image.nx);
  for (int iy = 0; iy < image.ny; ++iy)
    std::copy_n(&image.pixels[size_t(iy) * nx], nx, &out.pixels[size_t(image.ny - 1 - iy) * nx]);
  return out;
}

void require_finite(const Image& image, const std::string& what) {
  for (size_t i = 0; i < image.pixels.size(); ++i)
    if (!std::isfinite(image.pixels[i]))
      fail(what, ": pixel (x=", i % size_t(image.nx), ", y=", i / size_t(image.nx), ") is ",
           image.pixels[i], "; replace NaN/Inf pixels (e.g. Fiji Process > Math > Remove NaNs)");
}

}  // namespace epitem
