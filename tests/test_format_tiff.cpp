// TIFF back-end of the image-file layer (open_tiff_file) and write_tiff's layout: frames stream
// one at a time, ImageJ single-directory stacks read by offset, vendor calibrations, float16,
// RGB → luminance, and damaged files give one Error instead of a crash or a huge allocation.
#include <tiffio.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "epitem/error.hpp"
#include "epitem/image.hpp"
#include "epitem/image_file.hpp"
#include "testing.hpp"

using namespace epitem;

namespace {

Image ramp(int nx, int ny, float offset) {
  Image im(nx, ny);
  for (int y = 0; y < ny; ++y)
    for (int x = 0; x < nx; ++x)
      im.at(x, y) = offset + 0.25f * float(x) - 1.5f * float(y);
  return im;
}

std::vector<unsigned char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void put_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

std::uint32_t le32(const std::vector<unsigned char>& b, size_t at) {
  return std::uint32_t(b[at]) | std::uint32_t(b[at + 1]) << 8 | std::uint32_t(b[at + 2]) << 16 | std::uint32_t(b[at + 3]) << 24;
}

std::string description_of(const std::string& path) {
  TIFF* t = TIFFOpen(path.c_str(), "r");
  REQUIRE(t);
  char* d = nullptr;
  std::string out = TIFFGetField(t, TIFFTAG_IMAGEDESCRIPTION, &d) && d ? d : "";
  TIFFClose(t);
  return out;
}

void read_all(const std::string& path) {
  auto r = open_image_file(path);
  for (size_t i = 0; i < r->frame_count(); ++i)
    r->frame(i);
}

}  // namespace

TEST_CASE("write_tiff stores pages contiguously, one strip each, IFDs after the data", "[formats][tiff]") {
  testing::TempDir dir("tiff_layout");
  std::vector<Image> pages = {ramp(13, 7, 0), ramp(13, 7, 100), ramp(13, 7, -7)};
  for (auto& p : pages)
    p.pixel_size_A = 0.5;
  const std::string path = dir.file("s.tif");
  write_tiff(path, pages, "{\"json\": 1}");
  const auto bytes = file_bytes(path);
  const size_t page_bytes = 13 * 7 * 4;
  for (size_t i = 0; i < 3; ++i)
    CHECK(std::memcmp(&bytes[8 + i * page_bytes], pages[i].pixels.data(), page_bytes) == 0);
  CHECK(le32(bytes, 4) == 8 + 3 * page_bytes);  // first IFD right after the data

  TIFF* t = TIFFOpen(path.c_str(), "r");
  REQUIRE(t);
  int dirs = 0;
  do {
    CHECK(TIFFNumberOfStrips(t) == 1);
    ++dirs;
  } while (TIFFReadDirectory(t));
  TIFFClose(t);
  CHECK(dirs == 3);

  auto r = open_tiff_file(path);
  CHECK(r->info().format == "TIFF (ImageJ)");
  CHECK(r->info().dtype == "float32");
  CHECK(r->frame_count() == 3);
  CHECK(r->info().pixel_size_A == Approx(0.5));
  for (size_t i = 0; i < 3; ++i)
    CHECK(r->frame(i).pixels == pages[i].pixels);
  CHECK_THROWS_WITH(r->frame(3), Catch::Contains("frame 3 does not exist"));

  // Forced BigTIFF has the same layout with 16-byte header.
  TiffWriteOptions big;
  big.bigtiff = true;
  write_tiff(dir.file("b.tif"), pages, "", big);
  const auto bb = file_bytes(dir.file("b.tif"));
  CHECK(bb[2] == 43);
  CHECK(std::memcmp(&bb[16 + page_bytes], pages[1].pixels.data(), page_bytes) == 0);
  auto rb = open_tiff_file(dir.file("b.tif"));
  CHECK(rb->info().format == "BigTIFF (ImageJ)");
  CHECK(rb->frame(2).pixels == pages[2].pixels);
}

TEST_CASE("ImageJ description: slices vs frames, finterval, spacing, origin", "[formats][tiff]") {
  testing::TempDir dir("tiff_imagej");
  std::vector<Image> pages = {ramp(8, 6, 0), ramp(8, 6, 1)};
  for (auto& p : pages)
    p.pixel_size_invA = 0.01;

  write_tiff(dir.file("focal.tif"), pages);
  const std::string focal = description_of(dir.file("focal.tif"));
  CHECK(focal.find("images=2\nslices=2\n") != std::string::npos);
  CHECK(focal.find("unit=1/A\n") != std::string::npos);
  CHECK(focal.find("frames=") == std::string::npos);

  TiffWriteOptions movie;
  movie.stack = TiffStack::Frames;
  movie.frame_interval_s = 0.04;
  movie.origin_x_px = 4;
  movie.origin_y_px = 2.5;
  write_tiff(dir.file("movie.tif"), pages, "", movie);
  const std::string d = description_of(dir.file("movie.tif"));
  CHECK(d.find("images=2\nframes=2\n") != std::string::npos);
  CHECK(d.find("finterval=0.04\n") != std::string::npos);
  CHECK(d.find("xorigin=4\nyorigin=2.5\n") != std::string::npos);
  auto r = open_tiff_file(dir.file("movie.tif"));
  CHECK(r->info().frame_time_s == Approx(0.04));
  REQUIRE(r->info().axes.size() == 3);
  CHECK(r->info().axes[0].origin_px == 4);
  CHECK(r->info().axes[1].origin_px == 2.5);
  CHECK(r->info().axes[0].unit == "1/A");
  CHECK(r->info().pixel_size_invA == Approx(0.01));
  CHECK(r->frame(1).pixel_size_invA == Approx(0.01));

  Image real = ramp(8, 6, 0);
  real.pixel_size_A = 0.2;
  TiffWriteOptions series;
  series.slice_spacing_A = 50;
  write_tiff(dir.file("thick.tif"), {real, real}, "", series);
  CHECK(description_of(dir.file("thick.tif")).find("spacing=50\n") != std::string::npos);
  auto t = open_tiff_file(dir.file("thick.tif"));
  REQUIRE(t->info().axes.size() == 3);
  CHECK(t->info().axes[2].scale == 50);
  CHECK(t->info().pixel_size_A == Approx(0.2));
}

TEST_CASE("ImageJ stack in one page directory (Fiji, >= 4 GiB) reads frames by offset", "[formats][tiff]") {
  testing::TempDir dir("tiff_ij_single");
  std::vector<Image> pages = {ramp(9, 5, 0), ramp(9, 5, 10), ramp(9, 5, 20), ramp(9, 5, 30)};
  const std::string path = dir.file("one_ifd.tif");
  write_tiff(path, pages);
  // Cut the chain after the first directory: what Fiji writes for huge stacks.
  auto bytes = file_bytes(path);
  const size_t ifd = le32(bytes, 4);
  const size_t entries = size_t(bytes[ifd]) | size_t(bytes[ifd + 1]) << 8;
  std::memset(&bytes[ifd + 2 + 12 * entries], 0, 4);
  put_bytes(path, bytes);

  auto r = open_tiff_file(path);
  REQUIRE(r->frame_count() == 4);
  for (size_t i = 0; i < 4; ++i)
    CHECK(r->frame(i).pixels == pages[i].pixels);

  // Declaring more images than the file holds is an Error, not a read past the end.
  const size_t at = std::string(bytes.begin(), bytes.end()).find("images=4");
  REQUIRE(at != std::string::npos);
  bytes[at + 7] = '9';
  put_bytes(dir.file("short.tif"), bytes);
  CHECK_THROWS_WITH(open_tiff_file(dir.file("short.tif")), Catch::Contains("short.tif") && Catch::Contains("declares"));

  // Big-endian int16 ImageJ stack: one directory whose strip holds three frames.
  const std::string be = dir.file("be.tif");
  TIFF* t = TIFFOpen(be.c_str(), "wb");
  REQUIRE(t);
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, std::uint32_t(4));
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, std::uint32_t(3));
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, std::uint16_t(16));
  TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, std::uint16_t(SAMPLEFORMAT_INT));
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, std::uint16_t(1));
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, std::uint16_t(PHOTOMETRIC_MINISBLACK));
  TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, std::uint32_t(3));
  TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, "ImageJ=1.54f\nimages=3\nframes=3\nfinterval=0.5\n");
  std::vector<unsigned char> raw;
  for (int k = 0; k < 36; ++k) {
    const std::int16_t v = std::int16_t(k * 1000 - 17000);
    raw.push_back(static_cast<unsigned char>(std::uint16_t(v) >> 8));
    raw.push_back(static_cast<unsigned char>(std::uint16_t(v) & 0xff));
  }
  REQUIRE(TIFFWriteRawStrip(t, 0, raw.data(), tmsize_t(raw.size())) >= 0);
  TIFFClose(t);
  auto rb = open_tiff_file(be);
  REQUIRE(rb->frame_count() == 3);
  CHECK(rb->info().dtype == "int16");
  CHECK(rb->info().frame_time_s == 0.5);
  const Image f2 = rb->frame(2);
  CHECK(f2.at(0, 0) == float(24 * 1000 - 17000));
  CHECK(f2.at(3, 2) == float(35 * 1000 - 17000));
}

TEST_CASE("float16, integer and RGB TIFFs: exact values, luminance with a note", "[formats][tiff]") {
  testing::TempDir dir("tiff_types");
  const std::uint16_t halves[] = {0x3C00, 0xC100, 0x7BFF, 0x0001, 0x3555, 0x8000};
  const float expect[] = {1.0f, -2.5f, 65504.0f, std::ldexp(1.0f, -24), 0.333251953125f, -0.0f};
  {
    TIFF* t = TIFFOpen(dir.file("h.tif").c_str(), "w");
    REQUIRE(t);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, std::uint32_t(3));
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, std::uint32_t(2));
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, std::uint16_t(16));
    TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, std::uint16_t(SAMPLEFORMAT_IEEEFP));
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, std::uint16_t(PHOTOMETRIC_MINISBLACK));
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, std::uint32_t(2));
    REQUIRE(TIFFWriteEncodedStrip(t, 0, const_cast<std::uint16_t*>(halves), sizeof halves) >= 0);
    TIFFClose(t);
  }
  auto h = open_tiff_file(dir.file("h.tif"));
  CHECK(h->info().dtype == "float16");
  const Image hi = h->frame(0);
  for (int k = 0; k < 6; ++k)
    CHECK(hi.pixels[size_t(k)] == expect[k]);
  CHECK(std::signbit(hi.pixels[5]));

  const auto write_rgb = [&](const std::string& path, bool equal) {
    TIFF* t = TIFFOpen(path.c_str(), "w");
    REQUIRE(t);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, std::uint32_t(2));
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, std::uint32_t(1));
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, std::uint16_t(8));
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, std::uint16_t(3));
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, std::uint16_t(PHOTOMETRIC_RGB));
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, std::uint16_t(PLANARCONFIG_CONTIG));
    std::uint8_t px[6] = {100, 100, 100, 200, equal ? std::uint8_t(200) : std::uint8_t(0), equal ? std::uint8_t(200) : std::uint8_t(50)};
    REQUIRE(TIFFWriteScanline(t, px, 0, 0) >= 0);
    TIFFClose(t);
  };
  write_rgb(dir.file("gray.tif"), true);
  write_rgb(dir.file("colour.tif"), false);
  auto g = open_tiff_file(dir.file("gray.tif"));
  CHECK(g->info().notes.empty());
  CHECK(g->info().warnings.empty());
  CHECK(g->info().dtype == "rgb8");
  CHECK(g->frame(0).pixels == std::vector<float>{100, 200});
  auto c = open_tiff_file(dir.file("colour.tif"));
  REQUIRE(c->info().warnings.size() == 1);
  CHECK(c->info().warnings[0].find("luminance") != std::string::npos);
  const Image ci = c->frame(0);
  CHECK(ci.pixels[0] == 100);
  CHECK(ci.pixels[1] == Approx(0.299 * 200 + 0.114 * 50));
  CHECK_THROWS_WITH(read_tiff(dir.file("colour.tif")), Catch::Contains("3-channel RGB"));
}

TEST_CASE("FEI/Thermo ini metadata (tag 34682) gives the pixel size and voltage", "[formats][tiff]") {
  testing::TempDir dir("tiff_fei");
  const std::string path = dir.file("fei.tif");
  TIFF* t = TIFFOpen(path.c_str(), "w");
  REQUIRE(t);
  static const TIFFFieldInfo fei_field[] = {{34682, -1, -1, TIFF_ASCII, FIELD_CUSTOM, 1, 0, const_cast<char*>("FEI_HELIOS")}};
  REQUIRE(TIFFMergeFieldInfo(t, fei_field, 1) == 0);
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, std::uint32_t(4));
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, std::uint32_t(2));
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, std::uint16_t(8));
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, std::uint16_t(PHOTOMETRIC_MINISBLACK));
  TIFFSetField(t, 34682, "[User]\r\nDate=01/02/2020\r\n[Beam]\r\nHV=5000\r\n[Scan]\r\nPixelWidth=1.2e-09\r\nPixelHeight=1.3e-09\r\n[Stage]\r\nX=0\r\n");
  std::uint8_t row[4] = {1, 2, 3, 4};
  REQUIRE(TIFFWriteScanline(t, row, 0, 0) >= 0);
  REQUIRE(TIFFWriteScanline(t, row, 1, 0) >= 0);
  TIFFClose(t);
  auto r = open_tiff_file(path);
  CHECK(r->info().format == "TIFF (FEI/Thermo)");
  CHECK(r->info().pixel_size_A == Approx(12.0));
  CHECK(r->info().pixel_size_y_A == Approx(13.0));
  CHECK(r->info().energy_eV == 5000);
  const Image im = r->frame(0);
  CHECK(im.pixel_size_A == Approx(12.0));
  CHECK(im.pixel_y_A() == Approx(13.0));
}

TEST_CASE("vendor TIFFs (JEOL SightX, Gatan DM export, Zeiss RGB) match truth.json", "[formats][tiff]") {
  const std::string root = testing::shared_path("data/formats/tiff");
  if (!std::filesystem::is_directory(root)) {
    WARN("formats folder absent (" << root << "): skipped");
    return;
  }
  {
    auto r = open_image_file(root + "/JEOL-SightX-TEM-mag-dummy.tif");
    const ImageFileInfo& info = r->info();
    CHECK(info.format == "TIFF (JEOL SightX)");
    CHECK(info.dtype == "uint16");
    CHECK(info.nx == 556);
    CHECK(info.ny == 556);
    CHECK(info.n_frames == 1);
    // 0.0254 m / 93 px per inch / 150000 = 1.8207885 nm.
    CHECK(info.pixel_size_A == Approx(18.207885304659497).epsilon(1e-9));
    CHECK(info.pixel_size_y_A == Approx(18.207885304659497).epsilon(1e-9));
    CHECK(info.energy_eV == 200000);
    CHECK(info.exposure_s == Approx(0.1));
    const Image im = r->frame(0);
    double sum = 0;
    for (float v : im.pixels)
      sum += v;
    CHECK(sum == 158586768.0);
  }
  {
    auto r = open_image_file(root + "/test_loading_image_saved_with_DM.tif");
    const ImageFileInfo& info = r->info();
    CHECK(info.format == "TIFF (Gatan DM export)");
    CHECK(info.dtype == "int32");
    REQUIRE(info.axes.size() == 2);
    CHECK(info.axes[0].scale == Approx(0.16867469251155853).epsilon(1e-12));
    CHECK(info.axes[0].origin_px == Approx(-139.6626434326172 / 0.16867469251155853));
    CHECK(info.axes[1].origin_px == Approx(-128.19276428222656 / 0.16867469251155853));
    CHECK(info.pixel_size_A == Approx(1686.7469251155853).epsilon(1e-12));
    const Image im = r->frame(0);
    CHECK(im.at(0, 0) == 3465);
    CHECK(im.at(67, 0) == 3239);
    CHECK(im.at(0, 67) == 3117);
    CHECK(im.at(67, 67) == 3319);
    double sum = 0;
    for (float v : im.pixels)
      sum += v;
    CHECK(sum == 15422830.0);
  }
  {
    auto r = open_image_file(root + "/optical_Zeiss_AxioVision_RGB.tif");
    const ImageFileInfo& info = r->info();
    CHECK(info.dtype == "rgb8");
    CHECK(info.nx == 13);
    CHECK(info.ny == 10);
    CHECK(info.pixel_size_A == 0);  // 150 dpi is not a calibration
    REQUIRE(info.warnings.size() == 1);
    const Image im = r->frame(0);
    CHECK(im.at(0, 0) == Approx(0.299 * 25 + 0.587 * 8 + 0.114 * 16));
  }
}

TEST_CASE("damaged TIFFs: absurd sizes, truncation and byte-flip fuzz give Errors", "[formats][tiff]") {
  testing::TempDir dir("tiff_bad");
  // A hand-made header declaring 30000 x 30000 float32 with 16 bytes of data.
  {
    std::vector<unsigned char> b = {'I', 'I', 42, 0, 8, 0, 0, 0};
    const auto put = [&](std::uint64_t v, int n) {
      for (int k = 0; k < n; ++k)
        b.push_back(static_cast<unsigned char>(v >> (8 * k)));
    };
    const std::uint32_t entries[][3] = {{256, 4, 30000}, {257, 4, 30000}, {258, 3, 32}, {259, 3, 1},
                                        {262, 3, 1},     {273, 4, 0},     {277, 3, 1},  {278, 4, 30000},
                                        {279, 4, 16},    {339, 3, 3}};
    put(10, 2);
    const size_t data_at = 8 + 2 + 10 * 12 + 4;
    for (const auto& e : entries) {
      put(e[0], 2);
      put(e[1], 2);
      put(1, 4);
      put(e[0] == 273 ? data_at : e[2], 4);
    }
    put(0, 4);
    b.resize(b.size() + 16, 0);
    put_bytes(dir.file("huge.tif"), b);
    // (libtiff re-estimates the too-small strip byte count from the declared size.)
    CHECK_THROWS_WITH(open_image_file(dir.file("huge.tif")), Catch::Contains("huge.tif") && Catch::Contains("truncated"));
    CHECK_THROWS_WITH(read_tiff(dir.file("huge.tif")), Catch::Contains("huge.tif"));
  }
  // Truncations of a stack and of an LZW-tiled file.
  std::vector<Image> pages = {ramp(16, 16, 0), ramp(16, 16, 1)};
  write_tiff(dir.file("stack.tif"), pages);
  {
    TIFF* t = TIFFOpen(dir.file("tiled.tif").c_str(), "w");
    REQUIRE(t);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, std::uint32_t(40));
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, std::uint32_t(40));
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, std::uint16_t(16));
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, std::uint16_t(PHOTOMETRIC_MINISBLACK));
    TIFFSetField(t, TIFFTAG_COMPRESSION, std::uint16_t(COMPRESSION_LZW));
    TIFFSetField(t, TIFFTAG_TILEWIDTH, std::uint32_t(16));
    TIFFSetField(t, TIFFTAG_TILELENGTH, std::uint32_t(16));
    std::vector<std::uint16_t> tile(256);
    for (std::uint32_t ty = 0; ty < 40; ty += 16)
      for (std::uint32_t tx = 0; tx < 40; tx += 16) {
        for (size_t k = 0; k < tile.size(); ++k)
          tile[k] = std::uint16_t(k * 37 + tx * 3 + ty);
        REQUIRE(TIFFWriteTile(t, tile.data(), tx, ty, 0, 0) >= 0);
      }
    TIFFClose(t);
  }
  CHECK(open_image_file(dir.file("tiled.tif"))->frame(0).at(17, 1) == float((1 * 16 + 1) * 37 + 16 * 3));
  for (const char* name : {"stack.tif", "tiled.tif"}) {
    const auto good = file_bytes(dir.file(name));
    for (size_t keep : {size_t(5), size_t(9), good.size() / 2, good.size() - 7}) {
      put_bytes(dir.file("cut.tif"), std::vector<unsigned char>(good.begin(), good.begin() + std::ptrdiff_t(keep)));
      CHECK_THROWS_WITH(read_all(dir.file("cut.tif")), Catch::Contains("cut.tif"));
    }
  }
  // Random byte flips: never a crash, a hang or an exception other than Error.
  std::mt19937 rng(12345);
  int errors = 0, runs = 0;
  for (const char* name : {"stack.tif", "tiled.tif"}) {
    const auto good = file_bytes(dir.file(name));
    for (int trial = 0; trial < 200; ++trial) {
      auto b = good;
      const int flips = 1 + int(rng() % 4);
      for (int f = 0; f < flips; ++f) {
        // Half the flips hit the directories (the interesting part), half anywhere.
        const size_t at = trial % 2 ? rng() % b.size() : (le32(good, 4) + rng() % (good.size() - le32(good, 4))) % b.size();
        b[at] = static_cast<unsigned char>(rng());
      }
      // A new name each time: truncating a just-read file is slow on some file systems.
      const std::string path = dir.file("fuzz" + std::to_string(runs) + ".tif");
      put_bytes(path, b);
      ++runs;
      try {
        read_all(path);
      } catch (const Error& e) {
        ++errors;
        CHECK(std::string(e.what()).find(path) != std::string::npos);
      }
      std::filesystem::remove(path);
    }
  }
  CHECK(runs == 400);
  CHECK(errors > 0);
}

TEST_CASE("frames read concurrently from several threads agree", "[formats][tiff]") {
  testing::TempDir dir("tiff_threads");
  std::vector<Image> pages;
  for (int i = 0; i < 8; ++i)
    pages.push_back(ramp(32, 24, float(i * 10)));
  write_tiff(dir.file("m.tif"), pages);
  auto r = open_tiff_file(dir.file("m.tif"));
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep)
        for (size_t i = 0; i < pages.size(); ++i)
          if (r->frame((i + size_t(t)) % pages.size()).pixels != pages[(i + size_t(t)) % pages.size()].pixels)
            ++bad[size_t(t)];
    });
  for (auto& th : threads)
    th.join();
  CHECK(bad == std::vector<int>(4, 0));
}

TEST_CASE("time to read one 4096^2 float32 frame", "[.][perf][tiff]") {
  testing::TempDir dir("tiff_perf");
  Image big = ramp(4096, 4096, 0);
  write_tiff(dir.file("big.tif"), {big, big});
  auto r = open_tiff_file(dir.file("big.tif"));
  r->frame(0);  // page cache warm
  const auto t0 = std::chrono::steady_clock::now();
  const int reps = 5;
  for (int k = 0; k < reps; ++k)
    r->frame(size_t(k % 2));
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
  WARN("open_tiff_file: 4096x4096 float32 frame in " << ms << " ms");
  CHECK(r->frame(1).pixels == big.pixels);
}

TEST_CASE("JEOL SightX diffraction: 1/nm from camera length and wavelength; ImageJ micron", "[formats][tiff]") {
  testing::TempDir dir("tiff_jeol_diff");
  const auto write = [&](const std::string& path, const char* make, const std::string& description, float xres,
                         std::uint16_t res_unit) {
    TIFF* t = TIFFOpen(path.c_str(), "w");
    REQUIRE(t);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, std::uint32_t(4));
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, std::uint32_t(1));
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, std::uint16_t(16));
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, std::uint16_t(PHOTOMETRIC_MINISBLACK));
    if (make)
      TIFFSetField(t, TIFFTAG_MAKE, make);
    TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, description.c_str());
    TIFFSetField(t, TIFFTAG_XRESOLUTION, xres);
    TIFFSetField(t, TIFFTAG_YRESOLUTION, xres);
    TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, res_unit);
    std::uint16_t row[4] = {1, 2, 3, 4};
    REQUIRE(TIFFWriteScanline(t, row, 0, 0) >= 0);
    TIFFClose(t);
  };
  write(dir.file("saed.tif"), "JEOL Ltd.",
        "<?xml version=\"1.0\"?>\r\n<TemReporter>\r\n  <ElectronGun>\r\n    <AccelerationVoltage>200000</AccelerationVoltage>\r\n"
        "  </ElectronGun>\r\n  <Eos>\r\n    <EosMode>eosTEM</EosMode>\r\n  </Eos>\r\n  <ImageFormingSystem>\r\n"
        "    <ModeString>DIFF</ModeString>\r\n    <SelectorValue>50</SelectorValue>\r\n"
        "    <SelectorUnitString>cm</SelectorUnitString>\r\n  </ImageFormingSystem>\r\n</TemReporter>\r\n",
        93, RESUNIT_INCH);
  auto r = open_tiff_file(dir.file("saed.tif"));
  CHECK(r->info().camera_length_m == Approx(0.5));
  // λ(200 kV) = 2.50793e-12 m: 0.0254 m / (0.5 m · λ) per inch, / 93 px per inch, in 1/nm.
  const double per_nm = 0.0254 / (0.5 * 2.50793e-12 * 1e9) / 93;
  CHECK(r->info().axes[0].unit == "1/nm");
  CHECK(r->info().pixel_size_invA == Approx(per_nm / 10).epsilon(1e-5));

  write(dir.file("ij.tif"), nullptr, "ImageJ=1.54f\nunit=micron\n", 2000, RESUNIT_NONE);
  CHECK(open_tiff_file(dir.file("ij.tif"))->info().pixel_size_A == Approx(5.0));  // 1/2000 µm
}
