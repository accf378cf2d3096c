// Writes the generated part of the seed corpus (tests/fuzz/corpus/): a Berkeley EMD, a JPEG,
// a PNG and two small TIFFs; the text seeds and the tiny DM/SER/MRC files are kept as they are.
// Build once by hand (not part of the build; the corpus is committed):
//   g++ -std=c++17 -I/usr/include/stb -I/usr/include/hdf5/serial make_seeds.cpp \
//       -L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5 -o /tmp/make_seeds && /tmp/make_seeds corpus
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <hdf5.h>
#include <stb_image_write.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

void put16(std::string& s, std::uint16_t v) { s.append(reinterpret_cast<const char*>(&v), 2); }
void put32(std::string& s, std::uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }

/// Little-endian baseline TIFF, one strip, with an ImageJ-style description and resolution.
void tiff(const std::string& path, int w, int h, int bits, int format, const std::string& desc) {
  std::string pixels;
  for (int i = 0; i < w * h; ++i) {
    if (bits == 8)
      pixels.push_back(char(i * 7));
    else {
      float f = float(i) * 0.5f - 3;
      pixels.append(reinterpret_cast<const char*>(&f), 4);
    }
  }
  struct Entry { std::uint16_t tag, type; std::uint32_t count, value; };
  const std::uint32_t n_entries = 12;
  const std::uint32_t ifd_at = 8, ifd_bytes = 2 + 12 * n_entries + 4;
  const std::uint32_t desc_at = ifd_at + ifd_bytes, res_at = desc_at + std::uint32_t(desc.size() + 1);
  const std::uint32_t data_at = res_at + 8;
  std::vector<Entry> e = {{256, 3, 1, std::uint32_t(w)}, {257, 3, 1, std::uint32_t(h)},
                          {258, 3, 1, std::uint32_t(bits)}, {259, 3, 1, 1}, {262, 3, 1, 1},
                          {270, 2, std::uint32_t(desc.size() + 1), desc_at}, {273, 4, 1, data_at},
                          {277, 3, 1, 1}, {278, 3, 1, std::uint32_t(h)},
                          {279, 4, 1, std::uint32_t(pixels.size())}, {282, 5, 1, res_at},
                          {339, 3, 1, std::uint32_t(format)}};
  std::string s = "II*";
  s.push_back('\0');
  put32(s, ifd_at);
  put16(s, std::uint16_t(e.size()));
  for (const Entry& x : e) {
    put16(s, x.tag);
    put16(s, x.type);
    put32(s, x.count);
    put32(s, x.value);
  }
  put32(s, 0);
  s += desc;
  s.push_back('\0');
  put32(s, 20);  // 20 pixels per unit
  put32(s, 1);
  s += pixels;
  std::ofstream(path, std::ios::binary) << s;
}

void emd(const std::string& path) {
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  auto int_attr = [](hid_t obj, const char* name, int v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT, &v);
    H5Aclose(a);
    H5Sclose(sp);
  };
  int_attr(file, "version_major", 0);
  int_attr(file, "version_minor", 2);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t g = H5Gcreate2(file, "/data/stack", lcpl, H5P_DEFAULT, H5P_DEFAULT);
  int_attr(g, "emd_group_type", 1);
  auto dataset = [&](const char* name, hid_t type, hid_t mem, std::vector<hsize_t> dims, const void* d) {
    hid_t sp = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
    hid_t ds = H5Dcreate2(g, name, type, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, d);
    H5Dclose(ds);
    H5Sclose(sp);
  };
  std::int16_t data[2 * 3 * 4];
  for (int i = 0; i < 24; ++i)
    data[i] = std::int16_t(i - 10);
  dataset("data", H5T_STD_I16LE, H5T_NATIVE_INT16, {2, 3, 4}, data);
  const double t[2] = {0, 0.5}, y[3] = {0, 0.1, 0.2}, x[4] = {0, 0.1, 0.2, 0.3};
  dataset("dim1", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {2}, t);
  dataset("dim2", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {3}, y);
  dataset("dim3", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {4}, x);
  H5Gclose(g);
  H5Pclose(lcpl);
  H5Fclose(file);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "corpus";
  unsigned char rgb[6 * 5 * 3], grey[7 * 4];
  for (int i = 0; i < int(sizeof rgb); ++i)
    rgb[i] = static_cast<unsigned char>(i * 13);
  for (int i = 0; i < int(sizeof grey); ++i)
    grey[i] = static_cast<unsigned char>(i * 9);
  stbi_write_jpg((dir + "/jpeg/rgb6x5.jpg").c_str(), 6, 5, 3, rgb, 80);
  stbi_write_png((dir + "/png/grey7x4.png").c_str(), 7, 4, 1, grey, 7);
  stbi_write_png((dir + "/png/rgb6x5.png").c_str(), 6, 5, 3, rgb, 18);
  tiff(dir + "/tiff/u8_imagej.tif", 5, 3, 8, 1, "ImageJ=1.54f\nunit=nm\n");
  tiff(dir + "/tiff/f32_imagej.tif", 4, 3, 32, 3, "ImageJ=1.54f\nimages=1\nunit=micron\n");
  emd(dir + "/emd/berkeley_stack.emd");
  return 0;
}
