#include "epitem/image.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "epitem/error.hpp"
#include "epitem/output.hpp"

namespace epitem {

namespace {

// TIFF field types used here.
enum : std::uint16_t { kShort = 3, kLong = 4, kRational = 5, kAscii = 2, kLong8 = 16 };

bool host_is_little_endian() {
  const std::uint16_t one = 1;
  unsigned char first;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

// Little-endian byte buffer.
struct Bytes {
  std::vector<unsigned char> data;
  void put(std::uint64_t v, int n) {
    for (int k = 0; k < n; ++k)
      data.push_back(static_cast<unsigned char>(v >> (8 * k)));
  }
  void pad_to(size_t alignment) {
    while (data.size() % alignment)
      data.push_back(0);
  }
};

// Closest fraction num/den with both ≤ 2^32 − 1 (continued fractions), for TIFF RATIONALs.
std::pair<std::uint32_t, std::uint32_t> rational(double x) {
  const double max = 4294967295.0;
  if (!(x > 0))
    return {0, 1};
  if (x >= max)
    return {std::uint32_t(max), 1};
  double h0 = 0, h1 = 1, k0 = 1, k1 = 0, v = x;
  for (int i = 0; i < 64; ++i) {
    const double a = std::floor(v);
    const double h2 = a * h1 + h0, k2 = a * k1 + k0;
    if (h2 > max || k2 > max)
      break;
    h0 = h1, h1 = h2, k0 = k1, k1 = k2;
    const double frac = v - a;
    if (std::fabs(h1 / k1 - x) <= 1e-16 * x || frac <= 0)
      break;
    v = 1 / frac;
  }
  if (k1 == 0)  // x < 1/max
    return {1, std::uint32_t(max)};
  return {std::uint32_t(h1), std::uint32_t(k1)};
}

// One image file directory under construction: entries sorted by tag, values that do not fit
// in an entry stored right after the directory.
class Ifd {
public:
  explicit Ifd(bool big) : big_(big) {}
  void add(std::uint16_t tag, std::uint16_t type, std::uint64_t count, std::vector<unsigned char> value) {
    entries_.push_back({tag, type, count, std::move(value)});
  }
  void add_ints(std::uint16_t tag, std::uint16_t type, const std::vector<std::uint64_t>& values) {
    const int size = type == kShort ? 2 : type == kLong ? 4 : 8;
    Bytes b;
    for (std::uint64_t v : values)
      b.put(v, size);
    add(tag, type, values.size(), b.data);
  }
  void add_ascii(std::uint16_t tag, const std::string& text) {
    std::vector<unsigned char> v(text.begin(), text.end());
    v.push_back(0);
    const std::uint64_t count = v.size();
    add(tag, kAscii, count, std::move(v));
  }
  void add_rational(std::uint16_t tag, double value) {
    const auto [num, den] = rational(value);
    Bytes b;
    b.put(num, 4);
    b.put(den, 4);
    add(tag, kRational, 1, b.data);
  }
  /// The directory and its out-of-line values as stored at file offset `at`; `next` = offset of
  /// the next directory (0 = last).
  std::vector<unsigned char> bytes(std::uint64_t at, std::uint64_t next) {
    std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) { return a.tag < b.tag; });
    const int word = big_ ? 8 : 4;
    const std::uint64_t head = (big_ ? 8 : 2) + entries_.size() * (big_ ? 20 : 12) + word;
    Bytes dir, extra;
    dir.put(entries_.size(), big_ ? 8 : 2);
    for (const Entry& e : entries_) {
      dir.put(e.tag, 2);
      dir.put(e.type, 2);
      dir.put(e.count, word);
      if (e.value.size() <= size_t(word)) {
        std::vector<unsigned char> inline_value = e.value;
        inline_value.resize(word, 0);
        dir.data.insert(dir.data.end(), inline_value.begin(), inline_value.end());
      } else {
        extra.pad_to(8);
        dir.put(at + head + extra.data.size(), word);
        extra.data.insert(extra.data.end(), e.value.begin(), e.value.end());
      }
    }
    dir.put(next, word);
    dir.data.insert(dir.data.end(), extra.data.begin(), extra.data.end());
    dir.pad_to(8);
    return dir.data;
  }

private:
  struct Entry {
    std::uint16_t tag, type;
    std::uint64_t count;
    std::vector<unsigned char> value;
  };
  bool big_;
  std::vector<Entry> entries_;
};

std::string imagej_number(double v) {
  std::ostringstream os;
  os << std::setprecision(12) << v;
  return os.str();
}

}  // namespace

void write_tiff(const std::string& path, const std::vector<Image>& pages, const std::string& description,
                const TiffWriteOptions& options) {
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
  // ImageJ's own key order (FileSaver.getDescriptionString).
  const size_t n = pages.size();
  std::ostringstream ij;
  ij << "ImageJ=1.11a\n";
  if (n > 1)
    ij << "images=" << n << "\n" << (options.stack == TiffStack::Frames ? "frames=" : "slices=") << n << "\n";
  if (!unit.empty())
    ij << "unit=" << unit << "\n";
  if (n > 1 && options.stack == TiffStack::Frames && options.frame_interval_s > 0)
    ij << "finterval=" << imagej_number(options.frame_interval_s) << "\n";
  if (n > 1 && options.stack == TiffStack::Slices && options.slice_spacing_A > 0 && unit == "A")
    ij << "spacing=" << imagej_number(options.slice_spacing_A) << "\n";
  if (n > 1)
    ij << "loop=false\n";
  if (options.origin_x_px)
    ij << "xorigin=" << imagej_number(*options.origin_x_px) << "\n";
  if (options.origin_y_px)
    ij << "yorigin=" << imagej_number(*options.origin_y_px) << "\n";
  const std::string ij_description = ij.str();

  const std::uint64_t page_bytes = std::uint64_t(first.nx) * std::uint64_t(first.ny) * 4;
  // Classic TIFF addresses 4 GiB; the directories (≈ 300 bytes each, plus the descriptions)
  // follow the data.
  const double estimate = 16.0 + double(page_bytes) * double(n) + 400.0 * double(n) +
                          double(description.size() + ij_description.size());
  const bool big = options.bigtiff || estimate > 4294967295.0 - 65536.0;
  const std::uint64_t data_start = big ? 16 : 8;
  const std::uint64_t data_end = data_start + page_bytes * n;

  write_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    if (!out)
      fail(path, ": cannot create the file (check the folder's permissions)");
    Bytes header;
    header.put('I', 1);
    header.put('I', 1);
    if (big) {
      header.put(43, 2);
      header.put(8, 2);
      header.put(0, 2);
      header.put(data_end, 8);
    } else {
      header.put(42, 2);
      header.put(data_end, 4);
    }
    out.write(reinterpret_cast<const char*>(header.data.data()), std::streamsize(header.data.size()));
    const bool swap = !host_is_little_endian();
    std::vector<float> swapped;
    for (const Image& p : pages) {
      const float* data = p.pixels.data();
      if (swap) {
        swapped = p.pixels;
        for (float& v : swapped) {
          auto* b = reinterpret_cast<unsigned char*>(&v);
          std::reverse(b, b + 4);
        }
        data = swapped.data();
      }
      out.write(reinterpret_cast<const char*>(data), std::streamsize(page_bytes));
    }
    std::uint64_t at = data_end;
    for (size_t i = 0; i < n; ++i) {
      Ifd ifd(big);
      const std::uint16_t word = big ? kLong8 : kLong;
      ifd.add_ints(254, kLong, {0});  // NewSubfileType: full-resolution page
      ifd.add_ints(256, kLong, {std::uint64_t(first.nx)});
      ifd.add_ints(257, kLong, {std::uint64_t(first.ny)});
      ifd.add_ints(258, kShort, {32});
      ifd.add_ints(259, kShort, {1});  // no compression
      ifd.add_ints(262, kShort, {1});  // min-is-black
      ifd.add_ints(273, word, {data_start + page_bytes * i});
      ifd.add_ints(274, kShort, {1});  // row 0 at the top
      ifd.add_ints(277, kShort, {1});
      ifd.add_ints(278, kLong, {std::uint64_t(first.ny)});  // one strip per page
      ifd.add_ints(279, word, {page_bytes});
      ifd.add_ints(284, kShort, {1});
      ifd.add_ints(339, kShort, {3});  // IEEE float
      if (px_per_unit > 0) {
        ifd.add_rational(282, px_per_unit);
        ifd.add_rational(283, y_per_unit);
        ifd.add_ints(296, kShort, {1});  // no absolute unit
      }
      if (n > 1)
        ifd.add_ints(297, kShort, {i, n});
      if (i == 0) {
        // ImageJ only parses page 1's ImageDescription and requires it to start with
        // "ImageJ="; the free-text description (JSON parameters) goes into DocumentName.
        ifd.add_ascii(270, ij_description);
        ifd.add_ascii(305, "epitem");
        if (!description.empty())
          ifd.add_ascii(269, description);
      }
      // Its size does not depend on `next`, so measure with 0 first.
      const std::uint64_t size = ifd.bytes(at, 0).size();
      const std::uint64_t next = i + 1 < n ? at + size : 0;
      const std::vector<unsigned char> bytes = ifd.bytes(at, next);
      if (!big && at + size > 4294967295.0)
        fail(path, ": internal error: classic TIFF over 4 GiB");
      out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
      at += size;
    }
    out.close();
    if (!out)
      fail(path, ": write failed (disk full?)");
  });
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
