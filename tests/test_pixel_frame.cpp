// Non-square pixels and the raster orientation: TIFF X/Y resolution round trip, the spectrum's
// y frequency from the y pixel, detector dose per dx·dy, and the row flip at the file boundary.
#include <cmath>
#include <random>

#include "epitem/detector.hpp"
#include "epitem/image.hpp"
#include "epitem/imaging.hpp"
#include "epitem/spectrum.hpp"
#include "epitem/units.hpp"
#include "testing.hpp"

using namespace epitem;

TEST_CASE("non-square pixels round-trip through TIFF X/Y resolution; square stays 0", "[image]") {
  testing::TempDir dir("pixel_frame_tiff");
  Image real(12, 7, 1.f);
  real.pixel_size_A = 0.05;
  real.pixel_size_y_A = 0.0537;
  Image recip(12, 7, 1.f);
  recip.pixel_size_invA = 0.011;
  recip.pixel_size_y_invA = 0.0173;
  write_tiff(dir.file("r.tif"), {real});
  write_tiff(dir.file("k.tif"), {recip});
  const Image r = read_tiff(dir.file("r.tif")).at(0), k = read_tiff(dir.file("k.tif")).at(0);
  // Stored as float32 pixels per unit: relative precision 6e-8.
  CHECK(r.pixel_size_A == Approx(0.05).epsilon(1e-6));
  CHECK(r.pixel_y_A() == Approx(0.0537).epsilon(1e-6));
  CHECK(k.pixel_size_invA == Approx(0.011).epsilon(1e-6));
  CHECK(k.pixel_y_invA() == Approx(0.0173).epsilon(1e-6));

  real.pixel_size_y_A = 0;  // square
  write_tiff(dir.file("s.tif"), {real});
  const Image s = read_tiff(dir.file("s.tif")).at(0);
  CHECK(s.pixel_size_y_A == 0);
  CHECK(s.pixel_y_A() == Approx(0.05).epsilon(1e-6));
}

TEST_CASE("spectrum of non-square pixels: fringes along y read at their true spacing", "[spectrum]") {
  // Fe3O4 (004) d = 2.0990 Å along y, (2-20) d = 2.9685 Å along x; dx = 0.05, dy = 0.0537 Å as
  // --sampling gives after rounding x and y to FFT sizes separately.
  const double dx = 0.05, dy = 0.0537, d_y = 2.0990, d_x = 2.9685;
  Image img(256, 240);
  img.pixel_size_A = dx;
  img.pixel_size_y_A = dy;
  for (int iy = 0; iy < img.ny; ++iy)
    for (int ix = 0; ix < img.nx; ++ix)
      img.at(ix, iy) = float(10 + std::cos(2 * PI * iy * dy / d_y) + std::cos(2 * PI * ix * dx / d_x));
  const PowerSpectrum s = power_spectrum(img, 1);
  CHECK(s.dky_invA == Approx(1.0 / (240 * dy)).epsilon(1e-12));
  const auto peaks = find_peaks(s);
  REQUIRE(peaks.size() == 2);
  for (const auto& p : peaks) {
    const bool along_y = std::abs(p.ky_invA) > std::abs(p.kx_invA);
    // Noise-free tones between bins: the Hann interpolation is exact to ~1e-4 (finite window).
    CHECK(1.0 / std::hypot(p.kx_invA, p.ky_invA) == Approx(along_y ? d_y : d_x).epsilon(3e-4));
  }
}

TEST_CASE("detector: counts per pixel = dose·dx·dy; output pixels resampled per axis", "[detector]") {
  Image flat(64, 48, 1.f);
  flat.pixel_size_A = 0.5;
  flat.pixel_size_y_A = 0.8;
  DetectorSpec d;
  d.dose_e_per_A2 = 100;
  d.seed = 3;
  const Image counts = apply_detector(flat, d);
  double sum = 0;
  for (float v : counts.pixels)
    sum += v;
  const double mean = sum / double(counts.size()), expect = 100 * 0.5 * 0.8;
  // Poisson: the mean of 3072 pixels of mean 40 has a standard error of 0.11 (5 sigma).
  CHECK(mean == Approx(expect).margin(5 * std::sqrt(expect / double(counts.size()))));
  DetectorSpec bin;
  bin.output_pixel_A = 1.6;
  const Image b = apply_detector(flat, bin);
  CHECK(b.nx == 20);  // 32 Å / 1.6 Å
  CHECK(b.ny == 24);  // 38.4 Å / 1.6 Å
  CHECK(b.pixel_size_A == Approx(1.6));
  CHECK(b.pixel_y_A() == Approx(1.6));
}

TEST_CASE("file rows: row 0 = largest y; waves_from_pages flips back to the model frame", "[imaging]") {
  Image a(3, 4);
  for (int iy = 0; iy < 4; ++iy)
    for (int ix = 0; ix < 3; ++ix)
      a.at(ix, iy) = float(10 * iy + ix);
  a.pixel_size_A = 0.2;
  a.pixel_size_y_A = 0.3;
  const Image f = flipped_rows(a);
  CHECK(f.at(2, 0) == a.at(2, 3));
  CHECK(f.at(1, 3) == a.at(1, 0));
  CHECK(f.pixel_y_A() == 0.3);
  CHECK(flipped_rows(f).pixels == a.pixels);
  // A file page (row 0 = top) becomes a wave whose index iy grows with +y.
  Image im(3, 4, 0.f);
  im.pixel_size_A = 0.2;
  im.pixel_size_y_A = 0.3;
  const auto waves = waves_from_pages({f, im}, 200e3, 0, "test");
  REQUIRE(waves.size() == 1);
  const Wave& w = waves[0];
  CHECK(w.grid.extent_x_A == Approx(0.6));
  CHECK(w.grid.extent_y_A == Approx(1.2));
  for (int iy = 0; iy < 4; ++iy)
    for (int ix = 0; ix < 3; ++ix)
      CHECK(w.psi[std::size_t(iy) * 3 + std::size_t(ix)].real() == a.at(ix, iy));
}
