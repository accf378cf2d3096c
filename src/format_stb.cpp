// PNG/JPEG back-end of the image-file layer (stb_image): 8- and 16-bit, gray or colour. Colour
// becomes luminance (noted in info().notes unless the channels are equal); alpha is ignored.
// Neither format stores a microscope calibration, so the pixel size stays unknown.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_FAILURE_USERMSG
#include <stb_image.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <vector>

#include "epitem/error.hpp"
#include "epitem/image_file.hpp"

namespace epitem {

namespace {

// PNG (deflate) and JPEG never expand more than this; a larger declared size is a damaged header.
constexpr double kMaxCompressionRatio = 4096;

// stb_image 2.27 (Debian 12) writes past a Huffman table when a JPEG DHT segment's code
// counts add up to more than 256 (fixed upstream in 2.28); such files are refused first.
bool jpeg_huffman_tables_ok(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<unsigned char> b{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const size_t n = b.size();
  size_t i = 2;  // after SOI
  while (i + 1 < n) {
    if (b[i] != 0xFF || b[i + 1] == 0xFF) {  // entropy-coded data, fill bytes
      ++i;
      continue;
    }
    const unsigned marker = b[i + 1];
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // stuffed 0xFF, TEM, RSTn
      i += 2;
      continue;
    }
    if (marker == 0xD9 || i + 4 > n)  // EOI
      break;
    const size_t length = size_t(b[i + 2]) << 8 | b[i + 3];
    if (marker == 0xC4) {  // DHT: tables of (class/id, 16 counts, symbols)
      const size_t end = std::min(n, i + 2 + length);
      for (size_t p = i + 4; p + 17 <= end;) {
        size_t symbols = 0;
        for (size_t k = 1; k <= 16; ++k)
          symbols += b[p + k];
        if (symbols > 256)
          return false;
        p += 17 + symbols;
      }
    }
    i += 2 + length;
  }
  return true;
}

struct StbFree {
  void operator()(void* p) const { stbi_image_free(p); }
};

class StbReader : public ImageFileReader {
public:
  explicit StbReader(const std::string& path) {
    info_.path = path;
    std::error_code ec;
    const double file_bytes = double(std::filesystem::file_size(path, ec));
    if (ec)
      fail(path, ": cannot read the file size (", ec.message(), ")");
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f)
      fail(path, ": cannot be opened for reading (check its permissions)");
    unsigned char magic = 0;
    if (std::fread(&magic, 1, 1, f.get()) != 1 || std::fseek(f.get(), 0, SEEK_SET) != 0)
      fail(path, ": cannot read the file");
    info_.format = magic == 0x89 ? "PNG" : "JPEG";
    if (info_.format == "JPEG" && !jpeg_huffman_tables_ok(path))
      fail(path, ": damaged JPEG (a Huffman table declares more than 256 codes); re-save or re-export it");
    int nx = 0, ny = 0, comp = 0;
    if (!stbi_info_from_file(f.get(), &nx, &ny, &comp))
      fail(path, ": damaged or unsupported ", info_.format, " (", stbi_failure_reason(),
           "); re-save it, e.g. in Fiji File > Save As > Tiff");
    sixteen_bit_ = stbi_is_16_bit_from_file(f.get()) != 0;
    channels_ = comp;
    const double raw = double(nx) * double(ny) * comp * (sixteen_bit_ ? 2 : 1);
    if (nx <= 0 || ny <= 0 || raw > kMaxCompressionRatio * file_bytes)
      fail(path, ": the header declares ", nx, " x ", ny, " pixels, more than ", file_bytes,
           " bytes of compressed data can hold; the file is truncated or damaged");
    info_.nx = nx;
    info_.ny = ny;
    info_.n_frames = 1;
    const std::string depth = sixteen_bit_ ? "16" : "8";
    info_.dtype = comp == 1 ? "uint" + depth : comp == 2 ? "uint" + depth + "+alpha"
                : comp == 3 ? "rgb" + depth : "rgba" + depth;
    info_.axes = {AxisCalibration{}, AxisCalibration{}};
    if (comp >= 3) {
      bool colour = false;
      decode(&colour);
      if (colour)
        info_.warnings.push_back("RGB converted to luminance 0.299 R + 0.587 G + 0.114 B");
    }
  }

  Image frame(std::size_t i, ComplexPart) const override {
    if (i != 0)
      fail(info_.path, ": frame ", i, " does not exist (1 frame, numbered from 0)");
    Image image = decode(nullptr);
    apply_calibration(info_, image);
    return image;
  }

private:
  Image decode(bool* colour) const {
    int nx = 0, ny = 0, comp = 0;
    std::unique_ptr<void, StbFree> data(
        sixteen_bit_ ? static_cast<void*>(stbi_load_16(info_.path.c_str(), &nx, &ny, &comp, 0))
                     : static_cast<void*>(stbi_load(info_.path.c_str(), &nx, &ny, &comp, 0)));
    if (!data)
      fail(info_.path, ": cannot decode the ", info_.format, " (", stbi_failure_reason(), ")");
    if (nx != info_.nx || ny != info_.ny || comp != channels_)
      fail(info_.path, ": the file changed while it was read");
    Image image(nx, ny);
    const size_t n = image.pixels.size();
    const auto sample = [&](size_t k, int c) -> float {
      return sixteen_bit_ ? float(static_cast<const stbi_us*>(data.get())[k * size_t(comp) + size_t(c)])
                          : float(static_cast<const stbi_uc*>(data.get())[k * size_t(comp) + size_t(c)]);
    };
    bool any_colour = false;
    for (size_t k = 0; k < n; ++k) {
      if (comp < 3) {
        image.pixels[k] = sample(k, 0);
        continue;
      }
      const float r = sample(k, 0), g = sample(k, 1), b = sample(k, 2);
      if (r == g && g == b) {
        image.pixels[k] = r;
      } else {
        any_colour = true;
        image.pixels[k] = float(0.299 * r + 0.587 * g + 0.114 * b);  // Rec. 601 luma
      }
    }
    if (colour)
      *colour = any_colour;
    return image;
  }

  bool sixteen_bit_ = false;
  int channels_ = 1;
};

}  // namespace

std::unique_ptr<ImageFileReader> open_stb_file(const std::string& path) { return std::make_unique<StbReader>(path); }

}  // namespace epitem
