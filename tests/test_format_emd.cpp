// EMD (HDF5) readers: Velox, Berkeley EMD v0.2 and HyperSpy files against the formats collection's
// truth.json, synthetic files written here with the HDF5 C API, damaged input, threads, real data.
#include <hdf5.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "epitem/error.hpp"
#include "epitem/image.hpp"
#include "epitem/image_file.hpp"
#include "testing.hpp"

using namespace epitem;
using nlohmann::json;

namespace {

// Minimal HDF5 writer for test files.
struct H5Out {
  hid_t file;
  explicit H5Out(const std::string& path) {
    file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(file >= 0);
  }
  ~H5Out() { H5Fclose(file); }
  H5Out(const H5Out&) = delete;
  H5Out& operator=(const H5Out&) = delete;

  hid_t group(const std::string& path) {  // caller closes
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t g = H5Gcreate2(file, path.c_str(), lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    REQUIRE(g >= 0);
    return g;
  }
  // Writes `data` (C order, `mem_type`) as `path` stored as `file_type`; chunked when `chunk`
  // is given, and left unwritten when data is null.
  void dataset(const std::string& path, hid_t file_type, hid_t mem_type, const std::vector<hsize_t>& dims,
               const void* data, const std::vector<hsize_t>& chunk = {}) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (!chunk.empty())
      H5Pset_chunk(dcpl, int(chunk.size()), chunk.data());
    hid_t space = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
    hid_t ds = H5Dcreate2(file, path.c_str(), file_type, space, lcpl, dcpl, H5P_DEFAULT);
    REQUIRE(ds >= 0);
    if (data)
      REQUIRE(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    H5Dclose(ds);
    H5Sclose(space);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
  }
};

void string_attr(hid_t obj, const char* name, const std::string& value) {
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, value.empty() ? 1 : value.size());
  H5Tset_strpad(type, H5T_STR_NULLPAD);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  const std::string buf = value.empty() ? std::string(1, '\0') : value;
  H5Awrite(a, type, buf.data());
  H5Aclose(a);
  H5Sclose(space);
  H5Tclose(type);
}

void number_attr(hid_t obj, const char* name, hid_t file_type, hid_t mem_type, const void* value) {
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, mem_type, value);
  H5Aclose(a);
  H5Sclose(space);
}
void bool_attr(hid_t obj, const char* name, bool v) {  // as h5py writes numpy bools
  hid_t type = H5Tenum_create(H5T_NATIVE_SCHAR);
  signed char f = 0, t = 1, value = v ? 1 : 0;
  H5Tenum_insert(type, "FALSE", &f);
  H5Tenum_insert(type, "TRUE", &t);
  number_attr(obj, name, type, type, &value);
  H5Tclose(type);
}
void int_attr(hid_t obj, const char* name, int v) { number_attr(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT, &v); }
void double_attr(hid_t obj, const char* name, double v) { number_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v); }

// Velox-style per-frame metadata: uint8 (bytes × frames), one NUL-padded JSON per column.
void velox_metadata(H5Out& out, const std::string& group, const std::vector<std::string>& frames_json) {
  size_t len = 0;
  for (const auto& s : frames_json)
    len = std::max(len, s.size() + 16);
  std::vector<std::uint8_t> bytes(len * frames_json.size(), 0);
  for (size_t j = 0; j < frames_json.size(); ++j)
    for (size_t k = 0; k < frames_json[j].size(); ++k)
      bytes[k * frames_json.size() + j] = std::uint8_t(frames_json[j][k]);
  out.dataset(group + "/Metadata", H5T_STD_U8LE, H5T_NATIVE_UINT8, {len, frames_json.size()}, bytes.data(),
              {len, 1});
}

std::string num(double v) {  // Velox writes numbers as full-precision strings
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

std::string velox_json(const std::string& detector, double pixel_m, double offset_m, double exposure_s,
                       long long timestamp_us, double frame_time_s = 0) {
  json j;
  j["BinaryResult"] = {{"Detector", detector},
                       {"DetectorIndex", "0"},
                       {"PixelSize", {{"width", num(pixel_m)}, {"height", num(2 * pixel_m)}}},
                       {"Offset", {{"x", num(offset_m)}, {"y", "0"}}},
                       {"PixelUnitX", "m"},
                       {"PixelUnitY", "m"}};
  j["Optics"] = {{"AccelerationVoltage", "200000"}, {"CameraLength", "0.25"}};
  j["Detectors"]["Detector-0"] = {{"DetectorName", detector}, {"ExposureTime", num(exposure_s)}};
  j["Scan"]["ScanSize"] = {{"width", "0"}, {"height", "0"}};
  if (frame_time_s > 0)
    j["Scan"] = {{"FrameTime", num(frame_time_s)}, {"DwellTime", "1e-06"},
                 {"ScanSize", {{"width", "64"}, {"height", "48"}}}};
  j["CustomProperties"]["Detectors[" + detector + "].TimeStamp"] = {{"type", "int64"},
                                                                    {"value", std::to_string(timestamp_us)}};
  return j.dump();
}

// uint16 Velox stack, value = 1000·frame + 7·row + col, stored (rows, cols, frames).
void write_velox_stack(const std::string& path, int rows, int cols, int frames, bool second_image = false) {
  H5Out out(path);
  std::vector<std::uint16_t> data(size_t(rows) * size_t(cols) * size_t(frames));
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      for (int f = 0; f < frames; ++f)
        data[(size_t(r) * size_t(cols) + size_t(c)) * size_t(frames) + size_t(f)] = std::uint16_t(1000 * f + 7 * r + c);
  const std::string g = "/Data/Image/0a1b2c3d4e5f60718293a4b5c6d7e8f9";
  out.dataset(g + "/Data", H5T_STD_U16LE, H5T_NATIVE_UINT16,
              {hsize_t(rows), hsize_t(cols), hsize_t(frames)}, data.data(), {hsize_t(rows), hsize_t(cols), 1});
  std::vector<std::string> meta;
  for (int f = 0; f < frames; ++f)
    meta.push_back(velox_json("BM-Ceta", 1e-10, -3e-10, 0.05, 1000000 + 60000LL * f));  // 0.06 s apart
  velox_metadata(out, g, meta);
  if (second_image) {
    const std::string g2 = "/Data/Image/ff00000000000000000000000000000f";
    out.dataset(g2 + "/Data", H5T_STD_U16LE, H5T_NATIVE_UINT16, {hsize_t(rows), hsize_t(cols), 1}, data.data());
    velox_metadata(out, g2, {velox_json("HAADF", 1e-10, 0, 0, 0, 0.5)});
  }
}

bool one_line_naming(const std::string& message, const std::string& path) {
  return message.find(path) != std::string::npos && message.find('\n') == std::string::npos;
}

std::string error_of(const std::string& path) {
  try {
    auto r = open_image_file(path);
    for (size_t i = 0; i < r->frame_count(); ++i)
      r->frame(i);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("EMD files of the formats collection match truth.json", "[formats][emd]") {
  const std::string root = testing::shared_path("data/formats");
  std::ifstream in(root + "/truth.json");
  if (!in) {
    WARN("formats collection absent (" << root << "): skipped");
    return;
  }
  const json truth = json::parse(in);
  int checked = 0;
  for (const json& t : truth["files"]) {
    const std::string file = t["file"];
    if (file.rfind("emd/", 0) != 0)
      continue;
    INFO(file);
    ++checked;
    const json& x = t["extra"];
    auto reader = open_image_file(root + "/" + file);
    const ImageFileInfo& info = reader->info();
    const int rows = t["shape"][0], cols = t["shape"][1];
    const size_t frames = t["shape"].size() > 2 ? size_t(t["shape"][2]) : 1;
    CHECK(info.ny == rows);
    CHECK(info.nx == cols);
    REQUIRE(info.n_frames == frames);
    CHECK(info.dtype == t["dtype"].get<std::string>());

    // Values: exact for these integer files (all below 2^24).
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    std::vector<Image> images;
    for (size_t f = 0; f < frames; ++f) {
      images.push_back(reader->frame(f));
      double frame_sum = 0;
      for (float v : images.back().pixels) {
        frame_sum += v;
        lo = std::min(lo, double(v));
        hi = std::max(hi, double(v));
      }
      if (x.contains("per_frame_sums"))
        CHECK(frame_sum == x["per_frame_sums"][f].get<double>());
      sum += frame_sum;
    }
    CHECK(sum == t["sum"].get<double>());
    CHECK(lo == t["min"].get<double>());
    CHECK(hi == t["max"].get<double>());
    if (x.contains("probe_pixels")) {
      const json& p = x["probe_pixels"];
      CHECK(images[0].at(0, 0) == p["r0c0"].get<float>());
      CHECK(images[0].at(cols - 1, 0) == p["r0c_last"].get<float>());
      CHECK(images[0].at(0, rows - 1) == p["r_last_c0"].get<float>());
      CHECK(images[0].at(cols - 1, rows - 1) == p["r_last_c_last"].get<float>());
    }
    if (x.contains("array")) {
      const json& a = x["array"];  // [row][col], or [frame][row][col] for stacks
      for (size_t f = 0; f < frames; ++f)
        for (int r = 0; r < rows; ++r)
          for (int c = 0; c < cols; ++c)
            CHECK(images[f].at(c, r) == (frames > 1 ? a[f][r][c] : a[r][c]).get<float>());
    }

    // Calibration as stored; Berkeley's "[]" bracket notation is kept without the brackets.
    REQUIRE(info.axes.size() >= 2);
    for (int axis = 0; axis < 2; ++axis) {
      CHECK(info.axes[size_t(axis)].scale == Approx(t["pixel_size"][axis].get<double>()).epsilon(1e-12));
      std::string unit = t["pixel_unit"][axis];
      if (unit == "[]")
        unit.clear();
      CHECK(info.axes[size_t(axis)].unit == unit);
    }
    if (x.contains("BinaryResult")) {  // Velox
      CHECK(info.format == "Velox EMD");
      const double ox = std::stod(x["BinaryResult"]["Offset"]["x"].get<std::string>());
      CHECK(info.axes[0].origin_px == Approx(-ox / t["pixel_size"][0].get<double>()).epsilon(1e-12));
      CHECK(info.pixel_size_A == Approx(t["pixel_size"][0].get<double>() * 1e10).epsilon(1e-12));
      CHECK(info.energy_eV == std::stod(x["AccelerationVoltage_V"].get<std::string>()));
      CHECK(info.camera_length_m == Approx(std::stod(x["CameraLength_m"].get<std::string>())).epsilon(1e-15));
      if (x["Scan"].contains("FrameTime")) {
        CHECK(info.frame_time_s == Approx(std::stod(x["Scan"]["FrameTime"].get<std::string>())).epsilon(1e-15));
      } else {
        CHECK(info.exposure_s == Approx(std::stod(x["detector"]["ExposureTime"].get<std::string>())).epsilon(1e-15));
        if (x.contains("frame_timestamp_differences_s")) {
          CHECK(info.frame_time_s == Approx(x["frame_timestamp_differences_s"][0].get<double>()).epsilon(1e-9));
          REQUIRE(info.axes.size() == 3);
          CHECK(info.axes[2].unit == "s");
        }
      }
    } else {
      CHECK(info.format == "Berkeley EMD v0.2");
      CHECK(info.pixel_size_A == 0);  // unitless
    }
  }
  CHECK(checked == 3);
}

TEST_CASE("Velox EMD: rows × cols × frames with frames fastest, timing, several images", "[formats][emd]") {
  testing::TempDir dir("emd_velox");
  const std::string path = dir.file("stack.emd");
  write_velox_stack(path, 5, 9, 4, true);
  auto reader = open_image_file(path);
  const ImageFileInfo& info = reader->info();
  CHECK(info.format == "Velox EMD");
  CHECK(info.dtype == "uint16");
  CHECK(info.nx == 9);
  CHECK(info.ny == 5);
  REQUIRE(info.n_frames == 4);
  for (size_t f = 0; f < 4; ++f) {
    const Image im = reader->frame(f);
    for (int r = 0; r < 5; ++r)
      for (int c = 0; c < 9; ++c)
        REQUIRE(im.at(c, r) == float(1000 * f + 7 * r + c));
    CHECK(im.pixel_size_A == Approx(1.0));
    CHECK(im.pixel_size_y_A == Approx(2.0));
  }
  CHECK(info.axes[0].origin_px == Approx(3.0));
  CHECK(info.energy_eV == 200000);
  CHECK(info.camera_length_m == 0.25);
  CHECK(info.exposure_s == Approx(0.05));
  CHECK(info.frame_time_s == Approx(0.06).epsilon(1e-12));
  bool others_noted = false;
  for (const std::string& n : info.notes)
    others_noted |= n.find("ff00000000000000000000000000000f (HAADF)") != std::string::npos;
  CHECK(others_noted);
}

TEST_CASE("Berkeley EMD 3-D stack and HyperSpy float16 images", "[formats][emd]") {
  testing::TempDir dir("emd_berkeley");
  SECTION("Berkeley EMD v0.2: (frames, rows, cols), dim vectors and [n_m] units") {
    const std::string path = dir.file("stack.emd");
    {
      H5Out out(path);
      int one = 0, two = 2;
      number_attr(out.file, "version_major", H5T_STD_I32LE, H5T_NATIVE_INT, &one);
      number_attr(out.file, "version_minor", H5T_STD_I32LE, H5T_NATIVE_INT, &two);
      hid_t g = out.group("/data/stack");
      int_attr(g, "emd_group_type", 1);
      std::vector<std::int16_t> data(3 * 4 * 5);
      for (size_t i = 0; i < data.size(); ++i)
        data[i] = std::int16_t(int(i) - 30);
      out.dataset("/data/stack/data", H5T_STD_I16LE, H5T_NATIVE_INT16, {3, 4, 5}, data.data());
      const double t[2] = {0, 0.5}, y[2] = {-0.4, -0.2}, x[5] = {0, 0.1, 0.2, 0.3, 0.4};
      out.dataset("/data/stack/dim1", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {2}, t);
      out.dataset("/data/stack/dim2", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {2}, y);
      out.dataset("/data/stack/dim3", H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, {5}, x);
      const char* names[3] = {"dim1", "dim2", "dim3"};
      const char* units[3] = {"[s]", "[n_m]", "[n_m]"};
      for (int i = 0; i < 3; ++i) {
        hid_t d = H5Dopen2(g, names[i], H5P_DEFAULT);
        string_attr(d, "units", units[i]);
        string_attr(d, "name", i == 0 ? "time" : i == 1 ? "Y" : "X");
        H5Dclose(d);
      }
      hid_t mic = out.group("/microscope");
      double_attr(mic, "high tension", 300000);
      H5Gclose(mic);
      H5Gclose(g);
    }
    auto reader = open_image_file(path);
    const ImageFileInfo& info = reader->info();
    CHECK(info.format == "Berkeley EMD v0.2");
    CHECK(info.dtype == "int16");
    CHECK(info.nx == 5);
    CHECK(info.ny == 4);
    REQUIRE(info.n_frames == 3);
    const Image f2 = reader->frame(2);
    CHECK(f2.at(0, 0) == 40 - 30);
    CHECK(f2.at(4, 3) == 59 - 30);
    CHECK(reader->frame(0).at(1, 2) == 11 - 30);
    CHECK(info.axes[0].unit == "n_m");
    CHECK(info.pixel_size_A == Approx(1.0).epsilon(1e-6));  // float32 dim vector
    CHECK(info.pixel_size_y_A == Approx(2.0).epsilon(1e-12));
    CHECK(info.axes[1].origin_px == Approx(2.0));
    CHECK(info.frame_time_s == 0.5);
    CHECK(info.energy_eV == 300000);
  }
  SECTION("every integer and float width converts to float") {
    struct Type {
      hid_t file_type;
      const char* dtype;
    };
    const Type types[] = {{H5T_STD_U8LE, "uint8"},   {H5T_STD_I8LE, "int8"},   {H5T_STD_U16BE, "uint16"},
                          {H5T_STD_I32LE, "int32"},  {H5T_STD_U32LE, "uint32"}, {H5T_STD_I64LE, "int64"},
                          {H5T_STD_U64LE, "uint64"}, {H5T_IEEE_F64BE, "float64"}};
    std::vector<double> values(3 * 5);
    for (size_t i = 0; i < values.size(); ++i)
      values[i] = double(i) * 8 + 1;
    for (const Type& t : types) {
      INFO(t.dtype);
      const std::string path = dir.file(std::string(t.dtype) + ".emd");
      {
        H5Out out(path);
        hid_t g = out.group("/signals/img");
        int_attr(g, "emd_group_type", 1);
        H5Gclose(g);
        out.dataset("/signals/img/data", t.file_type, H5T_NATIVE_DOUBLE, {3, 5}, values.data());
      }
      auto reader = open_image_file(path);
      CHECK(reader->info().dtype == t.dtype);
      const Image im = reader->frame(0);
      REQUIRE(im.size() == values.size());
      for (size_t i = 0; i < values.size(); ++i)
        CHECK(im.pixels[i] == float(values[i]));
    }
  }
  SECTION("HyperSpy: image stack (navigation axis first) and spectrum image") {
    for (const bool stack : {true, false}) {
      const std::string path = dir.file(stack ? "stack.hspy" : "si.hspy");
      {
        H5Out out(path);
        std::vector<float> v(2 * 3 * 4);
        for (size_t i = 0; i < v.size(); ++i)
          v[i] = float(i);
        out.dataset("/Experiments/movie/data", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {2, 3, 4}, v.data());
        for (int i = 0; i < 3; ++i) {
          hid_t a = out.group("/Experiments/movie/axis-" + std::to_string(i));
          double_attr(a, "scale", i == 0 ? 0.25 : 0.5);
          double_attr(a, "offset", 0.0);
          string_attr(a, "units", i == 0 ? "s" : "Å");
          bool_attr(a, "navigate", stack ? i == 0 : i < 2);
          H5Gclose(a);
        }
      }
      if (!stack) {
        const std::string msg = error_of(path);
        INFO(msg);
        CHECK(one_line_naming(msg, path));
        CHECK(msg.find("spectrum image") != std::string::npos);
        continue;
      }
      auto reader = open_image_file(path);
      const ImageFileInfo& info = reader->info();
      CHECK(info.nx == 4);
      CHECK(info.ny == 3);
      REQUIRE(info.n_frames == 2);
      CHECK(reader->frame(1).at(3, 2) == 23);
      CHECK(info.frame_time_s == 0.25);
      CHECK(info.pixel_size_A == 0.5);
    }
  }
  SECTION("HyperSpy: float16 converts exactly, missing units read as nm") {
    const std::string path = dir.file("image.hspy");
    const std::vector<float> values = {0.5f, -1.25f, 65504.f, 6.103515625e-05f, 5.9604644775390625e-08f,
                                       0.333251953125f, 0.f, -0.f, 2050.f, 1.f, -65504.f, 3.140625f};
    {
      H5Out out(path);
      hid_t f16 = H5Tcopy(H5T_IEEE_F32LE);  // IEEE half as h5py defines it
      H5Tset_fields(f16, 15, 10, 5, 0, 10);
      H5Tset_size(f16, 2);
      H5Tset_ebias(f16, 15);
      out.dataset("/Experiments/__unnamed__/data", f16, H5T_NATIVE_FLOAT, {3, 4}, values.data(), {3, 4});
      H5Tclose(f16);
      for (int i = 0; i < 2; ++i) {
        hid_t a = out.group("/Experiments/__unnamed__/axis-" + std::to_string(i));
        double_attr(a, "scale", i == 0 ? 0.02 : 0.01);
        double_attr(a, "offset", 0.0);
        H5Gclose(a);
      }
    }
    auto reader = open_image_file(path);
    const ImageFileInfo& info = reader->info();
    CHECK(info.format == "HyperSpy HDF5");
    CHECK(info.dtype == "float16");
    CHECK(info.nx == 4);
    CHECK(info.ny == 3);
    const Image im = reader->frame(0);
    for (size_t i = 0; i < values.size(); ++i)
      CHECK(im.pixels[i] == values[i]);
    CHECK(std::signbit(im.pixels[7]));
    CHECK(info.axes[0].unit == "nm");
    bool noted = false;
    for (const std::string& note : info.warnings)
      noted |= note.find("nm assumed") != std::string::npos;
    CHECK(noted);
    CHECK(im.pixel_size_A == Approx(0.1));
    CHECK(im.pixel_size_y_A == Approx(0.2));
  }
}

TEST_CASE("EMD frames can be read from several threads at once", "[formats][emd]") {
  testing::TempDir dir("emd_threads");
  const std::string path = dir.file("stack.emd");
  write_velox_stack(path, 48, 64, 8);
  auto reader = open_image_file(path);
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep)
        for (size_t f = 0; f < 8; ++f) {
          const Image im = reader->frame((f + size_t(t)) % 8);
          const float want = float(1000 * ((f + size_t(t)) % 8) + 7 * 47 + 63);
          bad[size_t(t)] += im.at(63, 47) != want;
        }
    });
  for (auto& th : threads)
    th.join();
  CHECK(bad == std::vector<int>(4, 0));
}

TEST_CASE("damaged or foreign HDF5 files give one clear error", "[formats][emd]") {
  testing::TempDir dir("emd_bad");
  SECTION("truncated EMD") {
    const std::string path = dir.file("cut.emd");
    write_velox_stack(path, 64, 64, 4);
    std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
    const std::string msg = error_of(path);
    INFO(msg);
    CHECK(one_line_naming(msg, path));
    CHECK(msg.find("truncated") != std::string::npos);
  }
  SECTION("truncated real Velox file") {
    const std::string src = testing::shared_path("data/formats/emd/fei_example_tem_stack.emd");
    if (!std::filesystem::exists(src)) {
      WARN("formats collection absent: skipped");
      return;
    }
    const std::string path = dir.file("cut_real.emd");
    std::filesystem::copy_file(src, path);
    std::filesystem::resize_file(path, 100000);
    const std::string msg = error_of(path);
    INFO(msg);
    CHECK(one_line_naming(msg, path));
  }
  SECTION("HDF5 that is not EMD") {
    const std::string path = dir.file("other.h5");
    {
      H5Out out(path);
      const double v[3] = {1, 2, 3};
      out.dataset("/measurements/values", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {3}, v);
    }
    CHECK(image_file_kind(path) == "hdf5");
    const std::string msg = error_of(path);
    INFO(msg);
    CHECK(one_line_naming(msg, path));
    CHECK(msg.find("not EMD/HyperSpy") != std::string::npos);
  }
  SECTION("absurd declared dimensions") {
    const std::string path = dir.file("huge.emd");
    {
      H5Out out(path);
      out.dataset("/Data/Image/00/Data", H5T_STD_U16LE, H5T_NATIVE_UINT16, {200000, 200000, 1}, nullptr);
    }
    const std::string msg = error_of(path);
    INFO(msg);
    CHECK(one_line_naming(msg, path));
    CHECK(msg.find("stores only") != std::string::npos);
  }
  SECTION("4-D data and frame out of range") {
    const std::string path = dir.file("4d.emd");
    {
      H5Out out(path);
      hid_t g = out.group("/signals/s");
      int_attr(g, "emd_group_type", 1);
      H5Gclose(g);
      std::vector<float> v(16, 1.f);
      out.dataset("/signals/s/data", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {2, 2, 2, 2}, v.data());
    }
    const std::string msg = error_of(path);
    INFO(msg);
    CHECK(one_line_naming(msg, path));
    const std::string ok = dir.file("ok.emd");
    write_velox_stack(ok, 4, 4, 2);
    auto reader = open_image_file(ok);
    CHECK_THROWS_AS(reader->frame(2), Error);
  }
}

TEST_CASE("real EMD / HyperSpy files equal their TIFF exports", "[realdata]") {
  const std::string root = testing::shared_path("data/realdata");
  if (!std::filesystem::is_directory(root)) {
    WARN("realdata folder absent (" << root << "): skipped");
    return;
  }
  struct Case {
    const char* hdf5;
    const char* tif;
    const char* format;
    double pixel_A;
  };
  const Case cases[] = {
      {"sto001_haadf_team05_ncempy/Acquisition_18.emd", "sto001_haadf_team05_ncempy/sto001_haadf_team05.tif",
       "Berkeley EMD v0.2", 0.1224652},
      {"sto110_adf_abf_atomap/test_ADF_cropped.hdf5", "sto110_adf_abf_atomap/sto110_adf.tif", "HyperSpy HDF5",
       0.0932627},
  };
  for (const Case& c : cases) {
    INFO(c.hdf5);
    auto reader = open_image_file(root + "/" + c.hdf5);
    CHECK(reader->info().format == c.format);
    REQUIRE(reader->frame_count() == 1);
    const Image emd = reader->frame(0);
    const Image tif = read_tiff(root + "/" + c.tif).at(0);
    REQUIRE(emd.nx == tif.nx);
    REQUIRE(emd.ny == tif.ny);
    CHECK(emd.pixels == tif.pixels);
    CHECK(emd.pixel_size_A == Approx(c.pixel_A).epsilon(1e-6));
    CHECK(emd.pixel_size_A == Approx(tif.pixel_size_A).epsilon(1e-6));
    CHECK(emd.pixel_y_A() == Approx(tif.pixel_y_A()).epsilon(1e-6));
  }
}

// Not run by default: prints the EMD / TIFF read-time ratio for a 4096² frame (uint16 and
// float32 single frames, and a 2-frame uint16 stack chunked Velox-style with frames interleaved).
TEST_CASE("EMD read speed vs uncompressed TIFF", "[.][emd-perf]") {
  testing::TempDir dir("emd_perf");
  const int n = 4096;
  Image image(n, n);
  for (size_t i = 0; i < image.size(); ++i)
    image.pixels[i] = float((i * 2654435761u) % 65536);
  image.pixel_size_A = 0.5;
  const std::string tif = dir.file("big.tif");
  write_tiff(tif, {image});
  const std::vector<std::uint16_t> u16(image.pixels.begin(), image.pixels.end());
  std::vector<std::uint16_t> u16x2(2 * u16.size());
  for (size_t i = 0; i < u16.size(); ++i)
    u16x2[2 * i] = u16x2[2 * i + 1] = u16[i];
  const auto best_of = [](auto&& f) {
    double best = 1e9;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      f();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  };
  const double t_tif = best_of([&] { read_tiff(tif); });
  const hsize_t h = hsize_t(n);
  for (const char* kind : {"uint16", "float32", "uint16 2-frame stack"}) {
    const std::string emd = dir.file(std::string(kind).substr(0, 7) + std::to_string(std::strlen(kind)) + ".emd");
    const std::string g = "/Data/Image/0123456789abcdef0123456789abcdef";
    size_t frames = 1;
    {
      H5Out out(emd);
      if (std::string(kind) == "float32") {
        out.dataset(g + "/Data", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {h, h, 1}, image.pixels.data(), {h, h, 1});
      } else if (std::string(kind) == "uint16") {
        out.dataset(g + "/Data", H5T_STD_U16LE, H5T_NATIVE_UINT16, {h, h, 1}, u16.data(), {h, h, 1});
      } else {
        frames = 2;
        out.dataset(g + "/Data", H5T_STD_U16LE, H5T_NATIVE_UINT16, {h, h, 2}, u16x2.data(), {h, h, 2});
      }
      velox_metadata(out, g, std::vector<std::string>(frames, velox_json("HAADF", 5e-11, 0, 0, 0, 1.0)));
    }
    auto reader = open_image_file(emd);
    Image from_emd;
    const double t_emd = best_of([&] {
      for (size_t f = 0; f < frames; ++f)
        from_emd = reader->frame(f);
    }) / double(frames);
    CHECK(from_emd.pixels == image.pixels);
    WARN(kind << " EMD 4096², per frame: " << t_emd * 1e3 << " ms, float32 TIFF: " << t_tif * 1e3
              << " ms, ratio " << t_emd / t_tif);
  }
}
