// TIFF reading/writing (image.hpp): float32 stacks round-trip bit-exactly with their
// calibration; integer TIFFs written directly with libtiff read back; bad files are refused.
// Also PNG/JPEG through the image-file layer and CSV tables as Excel writes them.
#include <tiffio.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>

#include "epitem/csv.hpp"
#include "epitem/error.hpp"
#include "epitem/image.hpp"
#include "epitem/image_file.hpp"
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

// ---- PNG/JPEG (open_stb_file) -----------------------------------------------------------

namespace {

std::uint32_t crc32_of(const unsigned char* p, size_t n, std::uint32_t crc = 0xffffffffu) {
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k)
      crc = crc & 1 ? (crc >> 1) ^ 0xedb88320u : crc >> 1;
  }
  return crc;
}

void put_be32(std::vector<unsigned char>& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8)
    b.push_back(static_cast<unsigned char>(v >> s));
}

void png_chunk(std::vector<unsigned char>& out, const char* type, const std::vector<unsigned char>& data) {
  put_be32(out, std::uint32_t(data.size()));
  std::vector<unsigned char> body(type, type + 4);
  body.insert(body.end(), data.begin(), data.end());
  out.insert(out.end(), body.begin(), body.end());
  put_be32(out, crc32_of(body.data(), body.size()) ^ 0xffffffffu);
}

// A PNG written by hand (stored, uncompressed deflate blocks): `bits` 8 or 16, colour type
// 0 (gray) or 2 (RGB); `samples` row-major, channels interleaved.
void write_png(const std::string& path, std::uint32_t w, std::uint32_t h, int bits, int colour_type,
               const std::vector<std::uint16_t>& samples, std::uint32_t declared_w = 0) {
  const int channels = colour_type == 2 ? 3 : 1;
  std::vector<unsigned char> raw;
  for (std::uint32_t y = 0; y < h; ++y) {
    raw.push_back(0);  // filter: none
    for (std::uint32_t k = 0; k < w * std::uint32_t(channels); ++k) {
      const std::uint16_t v = samples[y * w * std::uint32_t(channels) + k];
      if (bits == 16)
        raw.push_back(static_cast<unsigned char>(v >> 8));
      raw.push_back(static_cast<unsigned char>(v & 0xff));
    }
  }
  std::vector<unsigned char> z = {0x78, 0x01};
  for (size_t at = 0; at < raw.size() || at == 0; at += 65535) {
    const size_t n = std::min<size_t>(65535, raw.size() - at);
    z.push_back(at + n >= raw.size() ? 1 : 0);
    z.push_back(static_cast<unsigned char>(n & 0xff));
    z.push_back(static_cast<unsigned char>(n >> 8));
    z.push_back(static_cast<unsigned char>(~n & 0xff));
    z.push_back(static_cast<unsigned char>((~n >> 8) & 0xff));
    z.insert(z.end(), raw.begin() + std::ptrdiff_t(at), raw.begin() + std::ptrdiff_t(at + n));
    if (n == 0)
      break;
  }
  std::uint32_t a = 1, b = 0;
  for (unsigned char c : raw)
    a = (a + c) % 65521, b = (b + a) % 65521;
  put_be32(z, b << 16 | a);
  std::vector<unsigned char> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<unsigned char> ihdr;
  put_be32(ihdr, declared_w ? declared_w : w);
  put_be32(ihdr, declared_w ? declared_w : h);
  ihdr.insert(ihdr.end(), {static_cast<unsigned char>(bits), static_cast<unsigned char>(colour_type), 0, 0, 0});
  png_chunk(out, "IHDR", ihdr);
  png_chunk(out, "IDAT", z);
  png_chunk(out, "IEND", {});
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(out.data()), std::streamsize(out.size()));
}

}  // namespace

TEST_CASE("PNG 8/16-bit gray and RGB read exactly; colour becomes luminance with a note", "[formats][stb]") {
  testing::TempDir dir("stb_png");
  write_png(dir.file("g16.png"), 5, 3, 16, 0, {0, 1, 255, 256, 65535, 1000, 2000, 3000, 4000, 5000, 7, 8, 9, 10, 11});
  auto r = open_image_file(dir.file("g16.png"));
  CHECK(r->info().format == "PNG");
  CHECK(r->info().dtype == "uint16");
  CHECK(r->info().nx == 5);
  CHECK(r->info().ny == 3);
  CHECK(r->frame_count() == 1);
  CHECK(r->info().warnings.empty());
  const Image g = r->frame(0);
  CHECK(g.at(4, 0) == 65535);
  CHECK(g.at(3, 0) == 256);
  CHECK(g.at(0, 2) == 7);
  CHECK(g.pixel_size_A == 0);
  CHECK_THROWS_WITH(r->frame(1), Catch::Contains("does not exist"));

  write_png(dir.file("gray_rgb.png"), 2, 1, 8, 2, {10, 10, 10, 200, 200, 200});
  auto e = open_image_file(dir.file("gray_rgb.png"));
  CHECK(e->info().dtype == "rgb8");
  CHECK(e->info().warnings.empty());
  CHECK(e->frame(0).pixels == std::vector<float>{10, 200});

  write_png(dir.file("colour.png"), 2, 1, 8, 2, {10, 10, 10, 200, 0, 100});
  auto c = open_image_file(dir.file("colour.png"));
  REQUIRE(c->info().warnings.size() == 1);
  CHECK(c->info().warnings[0].find("luminance") != std::string::npos);
  CHECK(c->frame(0).at(1, 0) == Approx(0.299 * 200 + 0.114 * 100));

  // A header declaring 20000 x 20000 pixels in a few hundred bytes; a cut file.
  write_png(dir.file("huge.png"), 2, 1, 8, 0, {1, 2}, 20000);
  CHECK_THROWS_WITH(open_image_file(dir.file("huge.png")), Catch::Contains("huge.png") && Catch::Contains("declares"));
  write_png(dir.file("ok.png"), 64, 64, 8, 0, std::vector<std::uint16_t>(64 * 64, 9));
  std::filesystem::copy_file(dir.file("ok.png"), dir.file("cut.png"));
  std::filesystem::resize_file(dir.file("cut.png"), std::filesystem::file_size(dir.file("ok.png")) / 2);
  CHECK_THROWS_WITH(open_image_file(dir.file("cut.png"))->frame(0), Catch::Contains("cut.png"));

  // A JPEG Huffman table with 300 codes (stb_image 2.27 would write past its table).
  std::vector<unsigned char> jpeg = {0xFF, 0xD8, 0xFF, 0xC4, 0x01, 0x3F, 0x00};
  for (int k = 0; k < 16; ++k)
    jpeg.push_back(k == 14 ? 45 : k == 15 ? 255 : 0);
  jpeg.resize(jpeg.size() + 300, 0);
  jpeg.insert(jpeg.end(), {0xFF, 0xD9});
  std::ofstream(dir.file("dht.jpg"), std::ios::binary).write(reinterpret_cast<const char*>(jpeg.data()), std::streamsize(jpeg.size()));
  CHECK_THROWS_WITH(open_image_file(dir.file("dht.jpg")), Catch::Contains("dht.jpg") && Catch::Contains("Huffman"));
}

TEST_CASE("JPEG from rosettasciio reads with truth.json's shape and values", "[formats][stb]") {
  const std::string path = testing::shared_path("data/formats/image/jpg_no_exif_tags.jpg");
  if (!std::filesystem::exists(path)) {
    WARN("formats folder absent (" << path << "): skipped");
    return;
  }
  auto r = open_image_file(path);
  CHECK(r->info().format == "JPEG");
  CHECK(r->info().dtype == "rgb8");
  CHECK(r->info().nx == 255);
  CHECK(r->info().ny == 182);
  const Image im = r->frame(0);
  // Lossy: decoders differ by a few grey levels (README); Pillow's per-channel sum 5476868.
  // (truth.json's other corner probes, 187 / 166 / 166, match neither this decode, 166 / 159 /
  // 116, nor the smooth content next to those corners, so only r0c0 is checked.)
  double sum = 0;
  for (float v : im.pixels)
    sum += v;
  CHECK(sum == Approx(5476868).epsilon(0.002));
  CHECK(im.at(0, 0) == Approx(187).margin(3));
  CHECK(r->info().warnings.empty());  // gray content coded as YCbCr decodes to R = G = B
}

// ---- CSV --------------------------------------------------------------------------------

TEST_CASE("CSV: Excel's BOM, CRLF, quoted commas, doubled quotes and line breaks", "[csv]") {
  testing::TempDir dir("csv_excel");
  CHECK(split_csv_line(R"(a, "b, c" ,"say ""hi""",,  d  )") ==
        std::vector<std::string>{"a", "b, c", "say \"hi\"", "", "d"});
  CHECK(split_csv_line("") == std::vector<std::string>{""});
  CHECK(split_csv_line(R"("  spaced  ",x)") == std::vector<std::string>{"  spaced  ", "x"});
  {
    std::ofstream out(dir.file("excel.csv"), std::ios::binary);
    out << "\xEF\xBB\xBF" << "frame,time_s,\"note, free\"\r\n"
        << "# a comment with a stray \" quote\r\n"
        << "\r\n"
        << "0,0.0,\"first \"\"hot\"\" frame\"\r\n"
        << "1,0.5,\"two\r\nlines\"\r\n"
        << "2,1.0,plain\r\n";
  }
  const CsvTable t = read_csv_table(dir.file("excel.csv"), "test CSV");
  CHECK(t.header == std::vector<std::string>{"frame", "time_s", "note, free"});
  CHECK(t.column("frame") == 0);
  REQUIRE(t.rows.size() == 3);
  CHECK(t.rows[0] == std::vector<std::string>{"0", "0.0", "first \"hot\" frame"});
  CHECK(t.rows[1] == std::vector<std::string>{"1", "0.5", "two\nlines"});
  CHECK(t.rows[2] == std::vector<std::string>{"2", "1.0", "plain"});
  CHECK(t.line_numbers == std::vector<int>{4, 5, 7});

  { std::ofstream(dir.file("empty.csv")) << "\xEF\xBB\xBF\r\n# only a comment\r\n"; }
  CHECK_THROWS_WITH(read_csv_table(dir.file("empty.csv"), "test CSV"), Catch::Contains("is empty"));
  // An unclosed quote ends with the file instead of hanging or throwing.
  { std::ofstream(dir.file("open.csv")) << "a,b\n1,\"never closed\n2,3\n"; }
  const CsvTable o = read_csv_table(dir.file("open.csv"), "test CSV");
  REQUIRE(o.rows.size() == 1);
  CHECK(o.rows[0][1] == "never closed\n2,3");
}
