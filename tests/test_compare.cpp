// Image comparison: recovery of a known sub-pixel shift, rotation and pixel-size change of an
// analytic test pattern; unrelated images correlate near zero; bad input.
#include <array>
#include <cmath>
#include <random>

#include "epitem/alignment.hpp"
#include "epitem/error.hpp"
#include "epitem/units.hpp"
#include "synthetic_lattice.hpp"
#include "testing.hpp"

using namespace epitem;

namespace {

// Smooth non-periodic pattern: Gaussian blobs plus a fringe, in physical coordinates [Å]
// (x right, y down as rows).
double pattern(double x, double y) {
  static const double blobs[][3] = {{12, 9, 2.0}, {25, 20, 3.0}, {8, 28, 1.5}, {30, 7, 2.5}, {18, 16, 1.2}, {22, 31, 2.2}};
  double v = 0.3 * std::cos(2 * PI * (0.31 * x + 0.17 * y));
  for (const auto& b : blobs)
    v += std::exp(-((x - b[0]) * (x - b[0]) + (y - b[1]) * (y - b[1])) / (2 * b[2] * b[2]));
  return v;
}

// Image of the pattern whose content is displaced by (tx, ty) px and rotated CCW on screen by
// rot_deg about the image centre, sampled with `pixel_A`.
Image render(int nx, int ny, double pixel_A, double tx, double ty, double rot_deg) {
  Image img(nx, ny);
  img.pixel_size_A = pixel_A;
  const double c = std::cos(rot_deg * units::deg_to_rad), s = std::sin(rot_deg * units::deg_to_rad);
  const double cx = 0.5 * (nx - 1), cy = 0.5 * (ny - 1);
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      // Undo the displacement, then the CCW screen rotation ([[c, s], [−s, c]] in column/row).
      const double u = ix - cx - tx, v = iy - cy - ty;
      const double x = c * u - s * v, y = s * u + c * v;
      img.at(ix, iy) = float(pattern((x + cx) * pixel_A * 40.0 / (nx * pixel_A), (y + cy) * pixel_A * 40.0 / (ny * pixel_A)));
    }
  return img;
}

}  // namespace

TEST_CASE("compare recovers a sub-pixel shift with NCC ≈ 1", "[compare]") {
  const Image ref = render(128, 128, 0.3, 0, 0, 0);
  const Image mov = render(128, 128, 0.3, 3.3, -1.7, 0);
  const Alignment a = align_images(ref, mov);
  // Parabolic interpolation of a smooth correlation peak: better than 0.1 px.
  CHECK(a.shift_x_px == Approx(3.3).margin(0.1));
  CHECK(a.shift_y_px == Approx(-1.7).margin(0.1));
  CHECK(a.ncc > 0.99);
  CHECK(a.rms_difference < 0.15);
  CHECK(a.overlap_fraction > 0.9);
}

TEST_CASE("compare finds a rotation on the search grid", "[compare]") {
  const Image ref = render(128, 128, 0.3, 0, 0, 0);
  const Image mov = render(128, 128, 0.3, 0, 0, 2.5);
  AlignSpec spec;
  spec.max_rotation_deg = 4;
  spec.rotation_step_deg = 0.5;
  const Alignment a = align_images(ref, mov, spec);
  CHECK(a.rotation_deg == Approx(2.5).margin(1e-9));
  CHECK(a.ncc > 0.98);
  // Without the search the same pair correlates less.
  CHECK(align_images(ref, mov).ncc < a.ncc);
}

TEST_CASE("compare resamples by the pixel-size ratio", "[compare]") {
  // Same field of view at half the pixel size: twice as many pixels.
  const Image ref = render(96, 96, 0.4, 0, 0, 0);
  const Image fine = render(192, 192, 0.2, 0, 0, 0);
  const Alignment a = align_images(ref, fine);
  CHECK(a.ncc > 0.98);
  // The grids differ by a quarter reference pixel (pixel-centre convention of render()).
  CHECK(std::abs(a.shift_x_px) < 0.35);
  CHECK(std::abs(a.shift_y_px) < 0.35);
}

TEST_CASE("unrelated images correlate weakly; bad input is refused", "[compare]") {
  std::mt19937 rng(9);
  std::normal_distribution<double> n(0, 1);
  Image x(96, 96), y(96, 96);
  for (auto& v : x.pixels) v = float(n(rng));
  for (auto& v : y.pixels) v = float(n(rng));
  CHECK(std::abs(align_images(x, y).ncc) < 0.1);
  Image flat(64, 64, 2.f);
  CHECK_THROWS_WITH(align_images(flat, x), Catch::Contains("constant"));
  Image tiny(4, 4, 1.f);
  CHECK_THROWS_WITH(align_images(tiny, x), Catch::Contains("at least 16×16"));
  Image nan = x;
  nan.at(5, 5) = std::nanf("");
  CHECK_THROWS_AS(align_images(x, nan), Error);
}

// Two frames of a drifting lattice movie (Gaussian columns, Poisson noise at 60 counts, an
// illumination gradient fixed to the beam) shifted by 0.1–0.45 of a lattice period plus a random
// sub-pixel part: every lattice vector added to the shift matches almost as well, so the shift is
// the smallest consistent one and it is flagged ambiguous.
TEST_CASE("compare on a lattice shifted by a fraction of a period: the small shift, flagged ambiguous", "[compare][lattice]") {
  for (unsigned seed : {31u, 32u, 33u, 34u}) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> fraction(0.1, 0.45), jitter(-0.5, 0.5);
    testing::LatticeMovie m;
    m.seed = seed;
    m.n = 160;
    m.frames = 2;
    const double f = fraction(rng);
    m.drift_x_px = {0, f * m.a2x + jitter(rng)};
    m.drift_y_px = {0, f * m.a2y + jitter(rng)};
    const std::vector<Image> frames = testing::render_lattice_movie(m);
    const Alignment a = align_images(frames[0], frames[1]);
    INFO("seed " << seed << ": true (" << m.drift_x_px[1] << ", " << m.drift_y_px[1] << ") px, found ("
                 << a.shift_x_px << ", " << a.shift_y_px << "), peak ratio " << a.peak_ratio);
    CHECK(a.shift_x_px == Approx(m.drift_x_px[1]).margin(0.2));
    CHECK(a.shift_y_px == Approx(m.drift_y_px[1]).margin(0.2));
    CHECK(a.shift_ambiguous);
    CHECK(a.peak_ratio >= 0.8);
    REQUIRE_FALSE(a.alternatives.empty());
    // The alternatives are lattice-equivalent: farther from zero than the chosen shift.
    for (const AlternativeShift& alt : a.alternatives)
      CHECK(std::hypot(alt.shift_x_px, alt.shift_y_px) >= std::hypot(a.shift_x_px, a.shift_y_px));
  }
}

TEST_CASE("compare on a non-periodic pattern is not ambiguous", "[compare]") {
  // Randomly placed nanoparticles (Gaussian blobs), Poisson noise: one clear correlation peak.
  for (unsigned seed : {41u, 42u, 43u}) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> pos(0, 128), size(2, 5);
    std::vector<std::array<double, 3>> blobs(30);
    for (auto& b : blobs)
      b = {pos(rng), pos(rng), size(rng)};
    auto frame = [&](double tx, double ty) {
      Image im(128, 128);
      for (int y = 0; y < 128; ++y)
        for (int x = 0; x < 128; ++x) {
          double v = 0.2;
          for (const auto& b : blobs)
            v += std::exp(-(std::pow(x - tx - b[0], 2) + std::pow(y - ty - b[1], 2)) / (2 * b[2] * b[2]));
          im.at(x, y) = float(std::poisson_distribution<int>(40 * v)(rng));
        }
      return im;
    };
    const Image ref = frame(0, 0), mov = frame(2.4, -1.3);
    const Alignment a = align_images(ref, mov);
    INFO("seed " << seed << ": peak ratio " << a.peak_ratio);
    CHECK(a.shift_x_px == Approx(2.4).margin(0.2));
    CHECK(a.shift_y_px == Approx(-1.3).margin(0.2));
    CHECK_FALSE(a.shift_ambiguous);
    CHECK(a.peak_ratio < consistent_ncc_ratio);
  }
}
