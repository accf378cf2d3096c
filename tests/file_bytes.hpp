// Byte-level helpers for the image-reader tests: read/write whole files, build and patch
// little-endian records, and the reader contract for damaged files (a valid read or an Error).
#pragma once
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "epitem/error.hpp"
#include "epitem/image_file.hpp"

namespace epitem::testing {

inline std::vector<unsigned char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(in), {});
}

/// Replaces the file (truncating an existing one in place is slow on ext4 with discard).
inline void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

/// The bytes of `v` in this machine's (little-endian) order.
template <class T>
std::vector<unsigned char> raw_values(const std::vector<T>& v) {
  std::vector<unsigned char> out(v.size() * sizeof(T));
  if (!out.empty())  // memcpy from an empty vector's null data() is undefined
    std::memcpy(out.data(), v.data(), out.size());
  return out;
}

/// Appends the bytes of one value.
template <class T>
void put(std::vector<unsigned char>& b, T v) {
  unsigned char raw[sizeof(T)];
  std::memcpy(raw, &v, sizeof(T));
  b.insert(b.end(), raw, raw + sizeof(T));
}

/// Overwrites sizeof(T) bytes at `at`, optionally big-endian.
template <class T>
void poke(std::vector<unsigned char>& b, std::size_t at, T v, bool big_endian = false) {
  unsigned char raw[sizeof(T)];
  std::memcpy(raw, &v, sizeof(T));
  if (big_endian)
    std::reverse(raw, raw + sizeof(T));
  std::memcpy(&b[at], raw, sizeof(T));
}

/// Opening and reading every frame either works (true) or throws epitem::Error (false);
/// anything else (another exception, a crash) fails the test.
inline bool reads_or_refuses(const std::string& path) {
  try {
    auto reader = open_image_file(path);
    for (std::size_t i = 0; i < reader->frame_count(); ++i)
      (void)reader->frame(i);
    return true;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace epitem::testing
