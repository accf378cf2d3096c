// Internal helpers for the raw binary image formats (TIA SER/EMI, MRC): positioned reads from one
// open descriptor and conversion of stored numbers to float. pread needs no shared file position,
// so a reader's frame() may run on several threads at once.
#pragma once
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "epitem/error.hpp"
#include "epitem/image_file.hpp"

namespace epitem::binary_io {

class RawFile {
public:
  explicit RawFile(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0)
      fail(path, ": cannot be opened for reading (check that it exists and its permissions)");
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      ::close(fd_);
      fail(path, ": cannot read its size");
    }
    size_ = std::uint64_t(st.st_size);
  }
  ~RawFile() { ::close(fd_); }
  RawFile(const RawFile&) = delete;
  RawFile& operator=(const RawFile&) = delete;

  const std::string& path() const { return path_; }
  std::uint64_t size() const { return size_; }

  /// Reads exactly n bytes at `offset`; throws naming `what` when the file ends first.
  void read(std::uint64_t offset, void* dst, std::size_t n, const char* what) const {
    if (offset > size_ || n > size_ - offset)
      fail(path_, ": ", what, " (", n, " bytes at byte ", offset, ") lies past the end of the ",
           size_, "-byte file; the file is truncated or damaged");
    auto* out = static_cast<char*>(dst);
    std::size_t done = 0;
    while (done < n) {
      const ssize_t got = ::pread(fd_, out + done, n - done, off_t(offset + done));
      if (got <= 0)
        fail(path_, ": reading ", what, " failed at byte ", offset + done, " (file changed or unreadable)");
      done += std::size_t(got);
    }
  }
  std::vector<unsigned char> read(std::uint64_t offset, std::size_t n, const char* what) const {
    std::vector<unsigned char> bytes(n);
    read(offset, bytes.data(), n, what);
    return bytes;
  }

private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

constexpr bool host_is_little_endian() { return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__; }

/// A T stored at p with the given byte order.
template <class T>
T load(const unsigned char* p, bool little_endian = true) {
  unsigned char b[sizeof(T)];
  std::memcpy(b, p, sizeof(T));
  if (little_endian != host_is_little_endian())
    for (std::size_t i = 0; i < sizeof(T) / 2; ++i)
      std::swap(b[i], b[sizeof(T) - 1 - i]);
  T v;
  std::memcpy(&v, b, sizeof(T));
  return v;
}

enum class Stored { U8, I8, U16, I16, U32, I32, F16, F32, F64, CI16, C64, C128 };

inline std::size_t bytes_per_value(Stored t) {
  switch (t) {
    case Stored::U8: case Stored::I8: return 1;
    case Stored::U16: case Stored::I16: case Stored::F16: return 2;
    case Stored::U32: case Stored::I32: case Stored::F32: case Stored::CI16: return 4;
    case Stored::F64: case Stored::C64: return 8;
    case Stored::C128: return 16;
  }
  return 0;
}

inline const char* dtype_name(Stored t) {
  switch (t) {
    case Stored::U8: return "uint8";
    case Stored::I8: return "int8";
    case Stored::U16: return "uint16";
    case Stored::I16: return "int16";
    case Stored::U32: return "uint32";
    case Stored::I32: return "int32";
    case Stored::F16: return "float16";
    case Stored::F32: return "float32";
    case Stored::F64: return "float64";
    case Stored::CI16: return "complex_int16";
    case Stored::C64: return "complex64";
    case Stored::C128: return "complex128";
  }
  return "";
}

inline bool is_complex(Stored t) { return t == Stored::CI16 || t == Stored::C64 || t == Stored::C128; }

inline float half_to_float(std::uint16_t h) {
  const int sign = (h >> 15) & 1, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  float v;
  if (exponent == 0)
    v = std::ldexp(float(mantissa), -24);  // zero or subnormal
  else if (exponent == 31)
    v = mantissa ? NAN : INFINITY;
  else
    v = std::ldexp(float(mantissa | 0x400), exponent - 25);
  return sign ? -v : v;
}

namespace detail {
template <class T, class F>
void convert_loop(const unsigned char* src, std::size_t n, bool little_endian, float* dst, F&& to_float) {
  constexpr std::size_t es = sizeof(T);
  if (little_endian == host_is_little_endian()) {
    for (std::size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, src + i * es, es);
      dst[i] = to_float(v);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i)
      dst[i] = to_float(load<T>(src + i * es, little_endian));
  }
}

template <class T>
void convert_complex(const unsigned char* src, std::size_t n, bool little_endian, float* dst, ComplexPart part) {
  constexpr std::size_t es = sizeof(T);
  for (std::size_t i = 0; i < n; ++i) {
    const double re = double(load<T>(src + 2 * i * es, little_endian));
    const double im = double(load<T>(src + (2 * i + 1) * es, little_endian));
    dst[i] = float(part == ComplexPart::Real ? re : part == ComplexPart::Imaginary ? im : std::hypot(re, im));
  }
}
}  // namespace detail

/// n stored values at src → float (complex → `part`).
inline void convert_to_float(Stored t, const unsigned char* src, std::size_t n, bool little_endian,
                             float* dst, ComplexPart part) {
  using namespace detail;
  const auto as_float = [](auto v) { return float(v); };
  switch (t) {
    case Stored::U8: convert_loop<std::uint8_t>(src, n, little_endian, dst, as_float); return;
    case Stored::I8: convert_loop<std::int8_t>(src, n, little_endian, dst, as_float); return;
    case Stored::U16: convert_loop<std::uint16_t>(src, n, little_endian, dst, as_float); return;
    case Stored::I16: convert_loop<std::int16_t>(src, n, little_endian, dst, as_float); return;
    case Stored::U32: convert_loop<std::uint32_t>(src, n, little_endian, dst, as_float); return;
    case Stored::I32: convert_loop<std::int32_t>(src, n, little_endian, dst, as_float); return;
    case Stored::F16: convert_loop<std::uint16_t>(src, n, little_endian, dst, half_to_float); return;
    case Stored::F32:
      if (little_endian == host_is_little_endian())
        std::memcpy(dst, src, n * sizeof(float));
      else
        convert_loop<float>(src, n, little_endian, dst, as_float);
      return;
    case Stored::F64: convert_loop<double>(src, n, little_endian, dst, as_float); return;
    case Stored::CI16: convert_complex<std::int16_t>(src, n, little_endian, dst, part); return;
    case Stored::C64: convert_complex<float>(src, n, little_endian, dst, part); return;
    case Stored::C128: convert_complex<double>(src, n, little_endian, dst, part); return;
  }
}

inline const char* part_name(ComplexPart part) {
  return part == ComplexPart::Real ? "real part" : part == ComplexPart::Imaginary ? "imaginary part" : "modulus";
}

}  // namespace epitem::binary_io
