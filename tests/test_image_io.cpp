// TIFF reading/writing (image.hpp): float32 stacks round-trip bit-exactly with their
// calibration; integer TIFFs written directly with libtiff read back; bad files are refused.
#include <tiffio.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>

#include "epitem/error.hpp"
#include "epitem/image.hpp"
#include "testing.hpp"

using namespace epitem;

namespace {

Image ramp_image(int nx, int ny, float offset) {
  Image im(nx, ny);
  for (int y = 0; y < ny; ++y)
    for (int x = 0; x < nx; ++x)
      im.at(x, y) = offset + 0.1f * float(x) - 3.7f * float(y) + 1e-3f * float(x * y);
  return im;
}

// Writes a one-page integer TIFF with libtiff directly (independent of write_tiff).
template <class T>
void write_int_tiff(const std::string& path, int nx, int ny, std::uint16_t format, std::uint16_t spp,
                    const std::vector<T>& data, bool tiled = false) {
  TIFF* t = TIFFOpen(path.c_str(), "w");
  REQUIRE(t);
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, std::uint32_t(nx));
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, std::uint32_t(ny));
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, std::uint16_t(8 * sizeof(T)));
  TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, format);
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, spp);
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, std::uint16_t(spp == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK));
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, std::uint16_t(PLANARCONFIG_CONTIG));
  TIFFSetField(t, TIFFTAG_COMPRESSION, std::uint16_t(tiled ? COMPRESSION_LZW : COMPRESSION_NONE));
  const size_t row = size_t(nx) * spp;
  if (tiled) {
    TIFFSetField(t, TIFFTAG_TILEWIDTH, std::uint32_t(16));
    TIFFSetField(t, TIFFTAG_TILELENGTH, std::uint32_t(16));
    std::vector<T> tile(16 * 16 * spp);
    for (int ty = 0; ty < ny; ty += 16)
      for (int tx = 0; tx < nx; tx += 16) {
        std::fill(tile.begin(), tile.end(), T(0));
        for (int y = ty; y < std::min(ny, ty + 16); ++y)
          for (int x = tx; x < std::min(nx, tx + 16); ++x)
            for (int s = 0; s < spp; ++s)
              tile[(size_t(y - ty) * 16 + size_t(x - tx)) * spp + s] = data[size_t(y) * row + size_t(x) * spp + s];
        REQUIRE(TIFFWriteTile(t, tile.data(), std::uint32_t(tx), std::uint32_t(ty), 0, 0) >= 0);
      }
  } else {
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, std::uint32_t(3));
    for (int y = 0; y < ny; ++y)
      REQUIRE(TIFFWriteScanline(t, const_cast<T*>(&data[size_t(y) * row]), std::uint32_t(y), 0) >= 0);
  }
  TIFFClose(t);
}

}  // namespace

TEST_CASE("float32 multi-page TIFF round-trips exactly with its pixel size", "[image]") {
  testing::TempDir dir("image_roundtrip");
  std::vector<Image> pages = {ramp_image(37, 23, 0.f), ramp_image(37, 23, 1e6f), ramp_image(37, 23, -5.f)};
  pages[1].at(3, 4) = std::numeric_limits<float>::denorm_min();
  for (auto& p : pages)
    p.pixel_size_A = 0.0867462;
  const std::string path = dir.file("stack.tif");
  write_tiff(path, pages, R"({"command": "test", "text": "with\nnewlines"})");
  std::vector<Image> back = read_tiff(path);
  REQUIRE(back.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(back[i].nx == 37);
    CHECK(back[i].ny == 23);
    CHECK(back[i].pixels == pages[i].pixels);  // bit-exact: float32 stored as is
    // Stored as float32 pixels per Å: relative precision 6e-8.
    CHECK(back[i].pixel_size_A == Approx(0.0867462).epsilon(1e-6));
    CHECK(back[i].pixel_size_invA == 0);
  }
}

TEST_CASE("reciprocal pixel size round-trips as ImageJ unit 1/A; none stays unknown", "[image]") {
  testing::TempDir dir("image_recip");
  Image pattern = ramp_image(16, 16, 2.f);
  pattern.pixel_size_invA = 0.010237;
  write_tiff(dir.file("p.tif"), {pattern});
  Image back = read_tiff(dir.file("p.tif")).at(0);
  CHECK(back.pixel_size_invA == Approx(0.010237).epsilon(1e-6));
  CHECK(back.pixel_size_A == 0);

  write_tiff(dir.file("u.tif"), {ramp_image(8, 5, 0.f)});
  Image plain = read_tiff(dir.file("u.tif")).at(0);
  CHECK(plain.pixel_size_A == 0);
  CHECK(plain.pixel_size_invA == 0);
}

TEST_CASE("8- and 16-bit integer TIFFs (strips, tiles, signed) read as their values", "[image]") {
  testing::TempDir dir("image_int");
  const int nx = 21, ny = 19;
  std::vector<std::uint8_t> u8(nx * ny);
  std::vector<std::uint16_t> u16(nx * ny);
  std::vector<std::int16_t> i16(nx * ny);
  for (int k = 0; k < nx * ny; ++k) {
    u8[k] = std::uint8_t(k * 7 % 256);
    u16[k] = std::uint16_t(k * 977 % 65536);
    i16[k] = std::int16_t(k * 131 % 60000 - 30000);
  }
  write_int_tiff(dir.file("u8.tif"), nx, ny, SAMPLEFORMAT_UINT, 1, u8);
  write_int_tiff(dir.file("u16.tif"), nx, ny, SAMPLEFORMAT_UINT, 1, u16, /*tiled=*/true);
  write_int_tiff(dir.file("i16.tif"), nx, ny, SAMPLEFORMAT_INT, 1, i16);
  Image a = read_tiff(dir.file("u8.tif")).at(0);
  Image b = read_tiff(dir.file("u16.tif")).at(0);
  Image c = read_tiff(dir.file("i16.tif")).at(0);
  REQUIRE(a.nx == nx);
  REQUIRE(a.ny == ny);
  REQUIRE(b.size() == size_t(nx * ny));
  REQUIRE(c.size() == size_t(nx * ny));
  for (int k = 0; k < nx * ny; ++k) {
    CHECK(a.pixels[k] == float(u8[k]));
    CHECK(b.pixels[k] == float(u16[k]));
    CHECK(c.pixels[k] == float(i16[k]));
  }
  CHECK(a.pixel_size_A == 0);  // no resolution tags written
}

TEST_CASE("RGB TIFF: equal channels read as gray, colour refused with the fix", "[image]") {
  testing::TempDir dir("image_rgb");
  const int nx = 10, ny = 6;
  std::vector<std::uint8_t> gray(nx * ny * 3), colour(nx * ny * 3);
  for (int k = 0; k < nx * ny; ++k)
    for (int s = 0; s < 3; ++s) {
      gray[k * 3 + s] = std::uint8_t(k);
      colour[k * 3 + s] = std::uint8_t(k + 50 * s);
    }
  write_int_tiff(dir.file("gray.tif"), nx, ny, SAMPLEFORMAT_UINT, 3, gray);
  write_int_tiff(dir.file("colour.tif"), nx, ny, SAMPLEFORMAT_UINT, 3, colour);
  Image g = read_tiff(dir.file("gray.tif")).at(0);
  CHECK(g.at(7, 2) == float(2 * nx + 7));
  CHECK_THROWS_WITH(read_tiff(dir.file("colour.tif")), Catch::Contains("3-channel RGB") && Catch::Contains("Fiji"));
}

TEST_CASE("missing, non-TIFF, truncated and empty files give one-line errors", "[image]") {
  testing::TempDir dir("image_bad");
  CHECK_THROWS_WITH(read_tiff(dir.file("nope.tif")), Catch::Contains("not found") && Catch::Contains("nope.tif"));
  {
    std::ofstream(dir.file("text.tif")) << "this is not a tiff\n";
  }
  CHECK_THROWS_WITH(read_tiff(dir.file("text.tif")), Catch::Contains("not a TIFF") && Catch::Contains("text.tif"));
  {
    std::ofstream(dir.file("empty.tif"));
  }
  CHECK_THROWS_AS(read_tiff(dir.file("empty.tif")), Error);

  // Cut a valid file in the middle of its pixel data, and in its header.
  std::vector<Image> pages = {ramp_image(64, 64, 0.f), ramp_image(64, 64, 1.f)};
  write_tiff(dir.file("full.tif"), pages);
  const auto size = std::filesystem::file_size(dir.file("full.tif"));
  for (auto keep : {size / 3, size_t(6), size - 40}) {
    std::filesystem::copy_file(dir.file("full.tif"), dir.file("cut.tif"),
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::resize_file(dir.file("cut.tif"), keep);
    CHECK_THROWS_WITH(read_tiff(dir.file("cut.tif")), Catch::Contains("cut.tif"));
  }
}

TEST_CASE("write_tiff refuses mixed sizes and empty stacks; require_finite finds NaN", "[image]") {
  testing::TempDir dir("image_write_bad");
  CHECK_THROWS_AS(write_tiff(dir.file("a.tif"), {}), Error);
  CHECK_THROWS_WITH(write_tiff(dir.file("b.tif"), {Image(4, 4), Image(5, 4)}), Catch::Contains("same size"));
  CHECK_FALSE(std::filesystem::exists(dir.file("b.tif")));
  Image im(4, 3, 1.f);
  CHECK_NOTHROW(require_finite(im, "input"));
  im.at(2, 1) = std::nanf("");
  CHECK_THROWS_WITH(require_finite(im, "input"), Catch::Contains("x=2, y=1"));
}

TEST_CASE("real ImageJ TIFFs read with their sizes and calibrations", "[realdata]") {
  const std::string root = testing::shared_path("data/realdata");
  if (!std::filesystem::is_directory(root)) {
    WARN("realdata folder absent (" << root << "): skipped");
    return;
  }
  struct Case {
    const char* file;
    int nx, ny, pages;
    double pixel_A;  // shared/data/realdata/README.md calibration column; 0 = none in the file
  };
  const Case cases[] = {
      {"si110_haadf_ncempy/si110_haadf.tif", 1024, 1024, 1, 0.0867462},
      {"sto001_haadf_80kV_ncempy/sto001_haadf_80kV.tif", 1024, 1024, 1, 0.100127},
      {"sto001_haadf_team05_ncempy/sto001_haadf_team05.tif", 1024, 1024, 1, 0.1224652},
      {"sto110_adf_abf_atomap/sto110_adf.tif", 380, 400, 1, 0.0932627},
      {"sto110_adf_abf_atomap/sto110_abf.tif", 380, 400, 1, 0.0932627},
      {"au_rings_pyxem_demos/au_xgrating_20cm.tif", 256, 256, 1, 0},
      {"ti_insitu_heating_movie_nomelabs/ti_heating_frames1691-1698.tif", 420, 550, 8, 0},
  };
  for (const Case& c : cases) {
    INFO(c.file);
    std::vector<Image> pages = read_tiff(root + "/" + c.file);
    REQUIRE(int(pages.size()) == c.pages);
    CHECK(pages[0].nx == c.nx);
    CHECK(pages[0].ny == c.ny);
    // ImageJ stores pixels per nm as a float32 rational: ~1e-7 relative.
    CHECK(pages[0].pixel_size_A == Approx(c.pixel_A).epsilon(1e-6));
    for (const Image& p : pages)
      CHECK_NOTHROW(require_finite(p, c.file));
  }
}
