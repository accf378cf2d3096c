// TIA .ser/.emi reading: every TIA file of ../shared/data/formats/truth.json (shape, values,
// orientation, calibration, metadata), the real STO .ser and Si .emi against their TIFFs, and
// damaged files (truncations, huge declared sizes, offsets past the end, byte-flip fuzz).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "epitem/error.hpp"
#include "epitem/image.hpp"
#include "epitem/image_file.hpp"
#include "file_bytes.hpp"
#include "testing.hpp"

using namespace epitem;
using namespace epitem::testing;
using nlohmann::json;

namespace {





// A TIA SER series of 2-D elements (rows stored bottom-up) built from the spec; `pixels[k]`
// holds frame k's raw stored values, row 0 first as stored.
std::vector<unsigned char> make_ser(std::uint16_t version, std::uint16_t ser_type, std::uint32_t nx, std::uint32_t ny,
                                    const std::vector<std::vector<unsigned char>>& pixels, double delta = 2e-10) {
  const bool wide = version == 0x220;
  std::vector<unsigned char> b;
  put<std::uint16_t>(b, 0x4949);
  put<std::uint16_t>(b, 0x0197);
  put<std::uint16_t>(b, version);
  put<std::uint32_t>(b, 0x4122);
  put<std::uint32_t>(b, 0x4152);
  const auto n = std::uint32_t(pixels.size());
  put<std::uint32_t>(b, n);
  put<std::uint32_t>(b, n);
  const std::size_t oao_at = b.size();
  if (wide)
    put<std::uint64_t>(b, 0);
  else
    put<std::uint32_t>(b, 0);
  put<std::uint32_t>(b, 1);  // one dimension
  put<std::uint32_t>(b, n);
  put<double>(b, 0.0);
  put<double>(b, 0.5);
  put<std::int32_t>(b, 0);
  put<std::uint32_t>(b, 6);
  b.insert(b.end(), {'N', 'u', 'm', 'b', 'e', 'r'});
  put<std::uint32_t>(b, 1);
  b.push_back('s');
  const std::size_t oao = b.size(), entry = wide ? 8 : 4;
  if (wide)
    poke<std::uint64_t>(b, oao_at, oao);
  else
    poke<std::uint32_t>(b, oao_at, std::uint32_t(oao));
  b.resize(b.size() + 2 * n * entry, 0);
  for (std::uint32_t k = 0; k < n; ++k) {
    const std::size_t at = b.size();
    if (wide)
      poke<std::uint64_t>(b, oao + k * entry, at);
    else
      poke<std::uint32_t>(b, oao + k * entry, std::uint32_t(at));
    for (int axis = 0; axis < 2; ++axis) {
      put<double>(b, -10 * delta);
      put<double>(b, delta);
      put<std::int32_t>(b, 0);
    }
    put<std::uint16_t>(b, ser_type);
    put<std::uint32_t>(b, nx);
    put<std::uint32_t>(b, ny);
    b.insert(b.end(), pixels[k].begin(), pixels[k].end());
  }
  for (std::uint32_t k = 0; k < n; ++k) {  // time tags
    const std::size_t at = b.size();
    if (wide)
      poke<std::uint64_t>(b, oao + (n + k) * entry, at);
    else
      poke<std::uint32_t>(b, oao + (n + k) * entry, std::uint32_t(at));
    put<std::uint16_t>(b, 0x4152);
    put<std::uint16_t>(b, 0);
    put<std::uint32_t>(b, 1456073345u + k);
  }
  return b;
}



std::string object_info_key(const std::string& file) {
  // `<base>_<n>.ser` ↔ ObjectInfo[n-1] of `<base>.emi`.
  const auto dot = file.rfind('.'), us = file.rfind('_');
  if (file.compare(dot, 4, ".ser") == 0 && us != std::string::npos)
    return "ObjectInfo[" + std::to_string(std::stoi(file.substr(us + 1, dot - us - 1)) - 1) + "]";
  return "ObjectInfo[0]";
}

const json* truth_entry(const json& truth, const std::string& file) {
  for (const json& f : truth["files"])
    if (f["file"] == file)
      return &f;
  return nullptr;
}

}  // namespace

TEST_CASE("TIA .ser and .emi files match truth.json", "[formats][tia]") {
  const std::string root = testing::shared_path("data/formats");
  if (!std::filesystem::exists(root + "/truth.json")) {
    WARN("formats test data absent (" << root << "): skipped");
    return;
  }
  const json truth = json::parse(std::ifstream(root + "/truth.json"));
  int checked = 0;
  for (const json& t : truth["files"]) {
    const std::string file = t["file"];
    if (file.rfind("tia/", 0) != 0 || file.find(".npy") != std::string::npos)
      continue;
    INFO(file);
    ++checked;
    const bool is_emi = file.find(".emi") != std::string::npos;
    auto reader = open_image_file(root + "/" + file);
    const ImageFileInfo& info = reader->info();
    CHECK(info.format.find(is_emi ? "TIA EMI" : "TIA SER") == 0);
    const int rows = t["shape"][0], cols = t["shape"][1];
    const std::size_t frames = t["shape"].size() > 2 ? std::size_t(t["shape"][2]) : 1;
    REQUIRE(info.nx == cols);
    REQUIRE(info.ny == rows);
    REQUIRE(info.n_frames == frames);
    CHECK(info.dtype == t["dtype"].get<std::string>());
    if (!is_emi)
      CHECK(info.format == (t["extra"]["ser_header"]["series_version"] == 544 ? "TIA SER v0x220" : "TIA SER v0x210"));

    double sum = 0, lo = INFINITY, hi = -INFINITY;
    std::vector<Image> images;
    for (std::size_t k = 0; k < frames; ++k) {
      images.push_back(reader->frame(k));
      double frame_sum = 0;
      for (float v : images.back().pixels) {
        frame_sum += v;
        lo = std::min(lo, double(v));
        hi = std::max(hi, double(v));
      }
      if (t["extra"].contains("per_frame_sums"))
        CHECK(frame_sum == Approx(t["extra"]["per_frame_sums"][k].get<double>()).epsilon(1e-9));
      sum += frame_sum;
    }
    CHECK(sum == Approx(t["sum"].get<double>()).epsilon(1e-9));
    CHECK(lo == t["min"].get<double>());
    CHECK(hi == t["max"].get<double>());
    const Image& f0 = images[0];
    if (t["extra"].contains("probe_pixels")) {  // display orientation: rows flipped
      const json& p = t["extra"]["probe_pixels"];
      CHECK(f0.at(0, 0) == p["r0c0"].get<double>());
      CHECK(f0.at(cols - 1, 0) == p["r0c_last"].get<double>());
      CHECK(f0.at(0, rows - 1) == p["r_last_c0"].get<double>());
      CHECK(f0.at(cols - 1, rows - 1) == p["r_last_c_last"].get<double>());
    }

    // Calibration as stored, and the unit from the mode (an .emi shares its .ser's unit).
    std::string unit;
    const json* ser_truth = &t;
    if (is_emi)
      ser_truth = truth_entry(truth, t["extra"]["embedded_display_copies"][0]["ser"]);
    REQUIRE(ser_truth);
    unit = (*ser_truth)["pixel_unit"][0];
    REQUIRE(info.axes.size() >= 2);
    for (int a = 0; a < 2; ++a) {
      CHECK(info.axes[a].scale == Approx(t["pixel_size"][a].get<double>()).epsilon(1e-12));
      CHECK(info.axes[a].unit == unit);
    }
    const double step = t["pixel_size"][0];
    if (unit == "m") {
      CHECK(info.pixel_size_A == Approx(step * 1e10).epsilon(1e-12));
      CHECK(f0.pixel_size_A == Approx(step * 1e10).epsilon(1e-12));
      CHECK(f0.pixel_size_invA == 0);
    } else {
      CHECK(info.pixel_size_invA == Approx(step * 1e-10).epsilon(1e-12));
      CHECK(f0.pixel_size_invA == Approx(step * 1e-10).epsilon(1e-12));
      CHECK(f0.pixel_size_A == 0);
    }
    if (!is_emi) {
      const json& cal = t["extra"]["element_header"]["calibration_x"];
      // physical = offset + (index − element)·delta = scale·(index − origin_px)
      CHECK(info.axes[0].scale * (0 - info.axes[0].origin_px) == Approx(cal["offset"].get<double>()).epsilon(1e-9));
    }

    // Metadata from the companion .emi's ObjectInfo.
    const json& objects = is_emi ? t["extra"]["object_info"] : t["extra"]["emi_metadata_summary"];
    const json& o = objects[object_info_key(file)];
    CHECK(info.energy_eV == Approx(std::stod(o["ExperimentalConditions/MicroscopeConditions/AcceleratingVoltage"].get<std::string>())));
    if (o.contains("ExpDesc:Camera length"))
      CHECK(info.camera_length_m == Approx(std::stod(o["ExpDesc:Camera length"][0].get<std::string>())));
    else
      CHECK(info.camera_length_m == 0);
    const std::string mode = o["ExpDesc:Mode"][0];
    if (mode.find("STEM") != std::string::npos) {
      CHECK(info.frame_time_s == Approx(std::stod(o["AcquireInfo/FrameTime"].get<std::string>())));
      CHECK(info.exposure_s == info.frame_time_s);
    } else {
      CHECK(info.exposure_s == Approx(std::stod(o["AcquireInfo/DwellTimePath"].get<std::string>())));
      CHECK(info.frame_time_s == 0);
    }

    // An .emi copy equals frame 0 of its .ser, pixel for pixel (same orientation).
    if (is_emi) {
      const std::string ser = t["extra"]["embedded_display_copies"][0]["ser"];
      CHECK(open_image_file(root + "/" + ser)->frame(0).pixels == f0.pixels);
    }
  }
  CHECK(checked == 11);
}

TEST_CASE("TIA .ser equals the .npy ground truth beside it", "[formats][tia]") {
  const std::string dir = testing::shared_path("data/formats/tia");
  if (!std::filesystem::exists(dir + "/64x64_TEM_images_acquire.npy")) {
    WARN("formats test data absent (" << dir << "): skipped");
    return;
  }
  const std::vector<unsigned char> npy = file_bytes(dir + "/64x64_TEM_images_acquire.npy");
  REQUIRE(npy.size() > 10);
  REQUIRE(std::memcmp(npy.data(), "\x93NUMPY\x01\x00", 8) == 0);
  const std::size_t header = 10 + std::size_t(npy[8]) + 256 * std::size_t(npy[9]);
  const std::string dict(npy.begin() + 10, npy.begin() + std::ptrdiff_t(header));
  REQUIRE(dict.find("'<f4'") != std::string::npos);
  REQUIRE(dict.find("(64, 64)") != std::string::npos);
  REQUIRE(npy.size() == header + 64 * 64 * 4);
  std::vector<float> expected(64 * 64);
  std::memcpy(expected.data(), npy.data() + header, expected.size() * 4);
  const Image image = open_image_file(dir + "/64x64_TEM_images_acquire_1.ser")->frame(0);
  CHECK(image.pixels == expected);
}

TEST_CASE("TIA .ser of every data type, both versions, series and complex parts", "[formats][tia]") {
  testing::TempDir dir("tia_types");
  // 3 × 2 frames; stored row 0 is the bottom row of the display.
  const std::vector<std::int16_t> s16 = {1, -2, 3, 4, 5, -6};
  const std::vector<std::uint8_t> u8 = {1, 2, 3, 4, 5, 255};
  const std::vector<double> f64 = {0.5, 1.5, 2.5, 3.5, 4.5, 5.5};
  const std::vector<float> c64 = {3, 4, 0, 1, -1, 0, 6, 8, 0, 0, 5, 12};
  const std::vector<float> display_s16 = {4, 5, -6, 1, -2, 3}, display_u8 = {4, 5, 255, 1, 2, 3};
  for (std::uint16_t version : {std::uint16_t(0x210), std::uint16_t(0x220)}) {
    INFO("version " << version);
    const std::string p16 = dir.file("s16.ser"), p8 = dir.file("u8.ser"), p64 = dir.file("f64.ser"), pc = dir.file("c64.ser");
    write_bytes(p16, make_ser(version, 5, 3, 2, {raw_values(s16), raw_values(s16), raw_values(s16)}));
    write_bytes(p8, make_ser(version, 1, 3, 2, {raw_values(u8)}));
    write_bytes(p64, make_ser(version, 8, 3, 2, {raw_values(f64)}, 5e7));
    write_bytes(pc, make_ser(version, 9, 3, 2, {raw_values(c64)}));
    auto r16 = open_image_file(p16);
    CHECK(r16->info().format == (version == 0x220 ? "TIA SER v0x220" : "TIA SER v0x210"));
    CHECK(r16->info().dtype == "int16");
    REQUIRE(r16->frame_count() == 3);
    CHECK(r16->frame(2).pixels == display_s16);
    REQUIRE(r16->info().axes.size() == 3);
    CHECK(r16->info().axes[2].scale == 0.5);
    CHECK(r16->info().axes[2].unit == "s");
    CHECK(r16->info().pixel_size_A == Approx(2.0));  // 2e-10 m, no .emi: unit guessed "m"
    CHECK_THROWS_AS(r16->frame(3), Error);
    CHECK(open_image_file(p8)->frame(0).pixels == display_u8);
    auto r64 = open_image_file(p64);
    CHECK(r64->info().axes[0].unit == "1/m");  // 5e7 per pixel: reciprocal by magnitude
    CHECK(r64->frame(0).pixel_size_invA == Approx(5e-3));
    CHECK(r64->frame(0).pixels == std::vector<float>{3.5f, 4.5f, 5.5f, 0.5f, 1.5f, 2.5f});
    auto rc = open_image_file(pc);
    CHECK(rc->info().dtype == "complex64");
    CHECK(rc->frame(0).pixels == std::vector<float>{10, 0, 13, 5, 1, 1});
    CHECK(rc->frame(0, ComplexPart::Real).pixels == std::vector<float>{6, 0, 5, 3, 0, -1});
    CHECK(rc->frame(0, ComplexPart::Imaginary).pixels == std::vector<float>{8, 0, 12, 4, 1, 0});
  }
}

TEST_CASE("damaged TIA files are refused with one clear Error", "[formats][tia]") {
  testing::TempDir dir("tia_bad");
  const std::vector<std::int16_t> s16 = {1, -2, 3, 4, 5, -6};
  const std::vector<unsigned char> good = make_ser(0x210, 5, 3, 2, {raw_values(s16), raw_values(s16)});
  const std::string path = dir.file("bad.ser");

  SECTION("an offset array entry past the end") {
    std::vector<unsigned char> b = good;
    const std::uint32_t oao = 30 + 4 + 8 + 8 + 4 + 4 + 6 + 4 + 1;
    poke<std::uint32_t>(b, oao + 4, std::uint32_t(b.size() + 1000));
    write_bytes(path, b);
    try {
      open_image_file(path);
      FAIL("no error");
    } catch (const Error& e) {
      const std::string msg = e.what();
      CHECK(msg.find(path) != std::string::npos);
      CHECK(msg.find("element 1") != std::string::npos);
      CHECK(msg.find("past the end") != std::string::npos);
      CHECK(msg.find('\n') == std::string::npos);
    }
  }
  SECTION("a header declaring 10^6 × 10^6 pixels") {
    write_bytes(path, make_ser(0x220, 7, 1000000, 1000000, {raw_values(s16)}));
    try {
      open_image_file(path);
      FAIL("no error");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("declares") != std::string::npos);
    }
  }
  SECTION("1-D elements are not images") {
    std::vector<unsigned char> b = good;
    poke<std::uint32_t>(b, 6, 0x4120);
    write_bytes(path, b);
    CHECK_THROWS_WITH(open_image_file(path), Catch::Contains("1-D"));
  }
  SECTION("an unknown version and more valid than total elements") {
    std::vector<unsigned char> b = good;
    poke<std::uint16_t>(b, 4, 0x300);
    write_bytes(path, b);
    CHECK_THROWS_WITH(open_image_file(path), Catch::Contains("SeriesVersion"));
    b = good;
    poke<std::uint32_t>(b, 18, 3);
    write_bytes(path, b);
    CHECK_THROWS_AS(open_image_file(path), Error);
  }
  SECTION("truncated at every byte") {
    for (std::size_t cut = 0; cut < good.size(); ++cut) {
      write_bytes(path, std::vector<unsigned char>(good.begin(), good.begin() + std::ptrdiff_t(cut)));
      INFO("cut at " << cut);
      bool ok = true;
      try {
        reads_or_refuses(path);
      } catch (...) {
        ok = false;
      }
      CHECK(ok);
    }
  }
}

TEST_CASE("TIA files survive truncation and byte-flip fuzzing", "[formats][tia]") {
  const std::string src = testing::shared_path("data/formats/tia");
  if (!std::filesystem::exists(src + "/16x16_STEM_BF_DF_acquire.emi")) {
    WARN("formats test data absent (" << src << "): skipped");
    return;
  }
  testing::TempDir dir("tia_fuzz");
  std::mt19937 rng(12345);
  for (const char* name : {"16x16_STEM_BF_DF_acquire_1.ser", "64x64x5_TEM_preview_1.ser",
                           "128x128_TEM_acquire-sum1_1.ser", "16x16_STEM_BF_DF_acquire.emi"}) {
    INFO(name);
    const std::vector<unsigned char> good = file_bytes(src + "/" + name);
    const std::string ext = std::string(name).substr(std::string(name).size() - 4);
    const std::string path = dir.file(std::string("fuzz") + ext);
    int refused = 0, read = 0;
    for (int cut = 0; cut < 40; ++cut) {  // truncations spread over the file, plus the first bytes
      const std::size_t at = cut < 20 ? std::size_t(cut) * 7 : good.size() * std::size_t(cut - 20) / 20;
      write_bytes(path, std::vector<unsigned char>(good.begin(), good.begin() + std::ptrdiff_t(std::min(at, good.size()))));
      reads_or_refuses(path) ? ++read : ++refused;
    }
    for (int trial = 0; trial < 150; ++trial) {
      std::vector<unsigned char> b = good;
      const int flips = 1 + int(rng() % 4);
      // Half the flips hit the first 200 bytes, where the headers are.
      for (int k = 0; k < flips; ++k) {
        const std::size_t at = (rng() % 2) ? rng() % std::min<std::size_t>(200, b.size()) : rng() % b.size();
        b[at] = static_cast<unsigned char>(rng() % 256);
      }
      write_bytes(path, b);
      reads_or_refuses(path) ? ++read : ++refused;
    }
    CHECK(refused > 0);
    CHECK(read > 0);
  }
}

TEST_CASE("real TIA STO .ser and Si .emi equal their TIFF conversions", "[realdata][formats][tia]") {
  const std::string root = testing::shared_path("data/realdata");
  if (!std::filesystem::is_directory(root)) {
    WARN("realdata folder absent (" << root << "): skipped");
    return;
  }
  struct Case {
    const char *tia, *tif;
    double pixel_A, energy_eV;
  };
  const Case cases[] = {
      {"sto001_haadf_80kV_ncempy/16_STOimage_1.ser", "sto001_haadf_80kV_ncempy/sto001_haadf_80kV.tif", 0.100127, 80e3},
      {"si110_haadf_ncempy/01_Si110_5images.emi", "si110_haadf_ncempy/si110_haadf.tif", 0.0867462, 200e3},
  };
  for (const Case& c : cases) {
    INFO(c.tia);
    auto reader = open_image_file(root + "/" + c.tia);
    const Image image = reader->frame(0);
    const std::vector<Image> tif = read_tiff(root + "/" + c.tif);
    REQUIRE(tif.size() == 1);
    REQUIRE(image.nx == tif[0].nx);
    REQUIRE(image.ny == tif[0].ny);
    CHECK(image.pixels == tif[0].pixels);
    CHECK(image.pixel_size_A == Approx(c.pixel_A).epsilon(1e-6));
    CHECK(image.pixel_size_A == Approx(tif[0].pixel_size_A).epsilon(1e-6));
    CHECK(reader->info().energy_eV == Approx(c.energy_eV));
    CHECK(reader->info().dtype == "uint16");
  }
  // ncempy's test asserts pixel (0, 0) = 18024 for the STO series.
  CHECK(open_image_file(root + "/" + cases[0].tia)->frame(0).at(0, 0) == 18024);
}
