// Movie input (movie.hpp): multi-page TIFF and numbered-folder frames in numeric order, frame
// times from fps or CSV, covariate ramps, binning; each bad input gives an Error.
#include <filesystem>
#include <fstream>

#include "epitem/error.hpp"
#include "epitem/movie.hpp"
#include "testing.hpp"

using namespace epitem;

namespace {
Image constant_frame(int nx, int ny, float value, double pixel_A) {
  Image im(nx, ny, value);
  im.pixel_size_A = pixel_A;
  return im;
}
}  // namespace

TEST_CASE("movie from a folder: numeric frame order, sizes and calibration checked", "[movie]") {
  testing::TempDir dir("movie_folder");
  std::filesystem::create_directories(dir.path / "frames");
  // Lexical order would put frame_10 before frame_2.
  for (int i : {1, 2, 10})
    write_tiff(dir.file("frames/frame_" + std::to_string(i) + ".tif"), {constant_frame(8, 6, float(i), 0.25)});
  std::ofstream(dir.file("frames/notes.txt")) << "ignored";
  std::vector<Image> movie = read_movie(dir.file("frames"));
  REQUIRE(movie.size() == 3);
  CHECK(movie[0].pixels[0] == 1.f);
  CHECK(movie[1].pixels[0] == 2.f);
  CHECK(movie[2].pixels[0] == 10.f);
  CHECK(movie[2].pixel_size_A == Approx(0.25));
  CHECK_NOTHROW(require_movie(movie, 2, "test"));
  CHECK_THROWS_WITH(require_movie({movie[0]}, 2, "test"), Catch::Contains("at least 2 frames"));

  write_tiff(dir.file("frames/frame_11.tif"), {constant_frame(8, 6, 0.f, 0.5)});
  CHECK_THROWS_WITH(read_movie(dir.file("frames")), Catch::Contains("calibration"));
  write_tiff(dir.file("frames/frame_11.tif"), {constant_frame(9, 6, 0.f, 0.25)});
  CHECK_THROWS_WITH(read_movie(dir.file("frames")), Catch::Contains("same size"));
  write_tiff(dir.file("frames/frame_11.tif"), {constant_frame(8, 6, 0.f, 0.25)});
  write_tiff(dir.file("frames/frame_011.tif"), {constant_frame(8, 6, 0.f, 0.25)});
  CHECK_THROWS_WITH(read_movie(dir.file("frames")), Catch::Contains("same number"));
  CHECK_THROWS_WITH(read_movie(dir.file("nothere")), Catch::Contains("not found"));
  std::filesystem::create_directories(dir.path / "empty");
  CHECK_THROWS_WITH(read_movie(dir.file("empty")), Catch::Contains("no image files"));
}

TEST_CASE("movie from a multi-page TIFF keeps page order", "[movie]") {
  testing::TempDir dir("movie_stack");
  write_tiff(dir.file("stack.tif"), {constant_frame(4, 4, 3.f, 1.0), constant_frame(4, 4, 5.f, 1.0)});
  std::vector<Image> movie = read_movie(dir.file("stack.tif"));
  REQUIRE(movie.size() == 2);
  CHECK(movie[1].pixels[15] == 5.f);
}

TEST_CASE("frame times from fps and CSV; covariate column and ramp", "[movie]") {
  testing::TempDir dir("movie_times");
  FrameTimes t = frame_times_from_fps(3, 4.0);
  CHECK(t.time_s == std::vector<double>{0, 0.25, 0.5});
  apply_covariate_ramp(t, "400:60/min", "temperature_C");
  CHECK(t.covariate_name == "temperature_C");
  CHECK(t.covariate[2] == Approx(400.5));  // 1 K/s for 0.5 s
  apply_covariate_ramp(t, "-5:2/s", "x");
  CHECK(t.covariate[1] == Approx(-4.5));
  for (const char* bad : {"400", "400:1", "400:1/K", "a:1/s", "400:x/s"})
    CHECK_THROWS_AS(apply_covariate_ramp(t, bad, "x"), Error);

  std::ofstream(dir.file("times.csv")) << "# from the camera log\nframe,time_ms,temperature_C\n0,0,400\n1,250,410\n2,500,425\n";
  FrameTimes c = read_frame_times_csv(dir.file("times.csv"), 3, "temperature_C");
  CHECK(c.time_s[1] == Approx(0.25));
  CHECK(c.covariate == std::vector<double>{400, 410, 425});
  CHECK_THROWS_WITH(read_frame_times_csv(dir.file("times.csv"), 4), Catch::Contains("3 data rows"));
  CHECK_THROWS_WITH(read_frame_times_csv(dir.file("times.csv"), 3, "pressure"), Catch::Contains("pressure"));
  std::ofstream(dir.file("back.csv")) << "time_s\n0\n1\n0.5\n";
  CHECK_THROWS_WITH(read_frame_times_csv(dir.file("back.csv"), 3), Catch::Contains("does not increase"));
  std::ofstream(dir.file("notime.csv")) << "t\n0\n";
  CHECK_THROWS_WITH(read_frame_times_csv(dir.file("notime.csv"), 1), Catch::Contains("time_s"));
  std::ofstream(dir.file("text.csv")) << "time_s\n0\nabc\n";
  CHECK_THROWS_WITH(read_frame_times_csv(dir.file("text.csv"), 2), Catch::Contains("not a number"));
}

TEST_CASE("binning averages blocks and scales the pixel size", "[movie]") {
  Image im(5, 4);
  im.pixel_size_A = 0.5;
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x)
      im.at(x, y) = float(x + 10 * y);
  Image b = bin_image(im, 2);
  CHECK(b.nx == 2);  // the 5th column does not fill a block
  CHECK(b.ny == 2);
  CHECK(b.at(1, 1) == Approx(27.5));
  CHECK(b.pixel_size_A == 1.0);
  CHECK_THROWS_AS(bin_image(im, 0), Error);
  CHECK_THROWS_AS(bin_image(im, 5), Error);
}
