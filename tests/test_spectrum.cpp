// Power spectrum and lattice peaks: synthetic lattices with known spacings/angles, the exact
// Hann interpolation limit, noise without peaks, bad input, and real micrographs.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <random>

#include "epitem/error.hpp"
#include "epitem/spectrum.hpp"
#include "epitem/units.hpp"
#include "testing.hpp"

using namespace epitem;

namespace {

struct Fringe {
  double d_A, angle_deg, amplitude, phase_rad;
};

// Sum of cosines cos(2π g·r + φ) with r = (x, y), y up on screen (row index grows downward).
Image lattice_image(int nx, int ny, double pixel_A, const std::vector<Fringe>& fringes,
                    double noise_sigma, unsigned seed) {
  Image img(nx, ny);
  img.pixel_size_A = pixel_A;
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0.0, 1.0);
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      const double x = ix * pixel_A, y = -iy * pixel_A;
      double v = 100;
      for (const auto& f : fringes) {
        const double a = f.angle_deg * units::deg_to_rad;
        v += f.amplitude * std::cos(2 * PI * (std::cos(a) * x + std::sin(a) * y) / f.d_A + f.phase_rad);
      }
      img.at(ix, iy) = float(v + noise_sigma * noise(rng));
    }
  return img;
}

// Peak nearest to a fringe (angles compared modulo 180°).
const Peak* nearest(const std::vector<Peak>& peaks, const Fringe& f) {
  const Peak* best = nullptr;
  double best_dist = 1e300;
  const double a = f.angle_deg * units::deg_to_rad;
  for (const auto& p : peaks) {
    const double gx = std::cos(a) / f.d_A, gy = std::sin(a) / f.d_A;
    const double dist = std::min(std::hypot(p.kx_invA - gx, p.ky_invA - gy),
                                 std::hypot(p.kx_invA + gx, p.ky_invA + gy));
    if (dist < best_dist) {
      best_dist = dist;
      best = &p;
    }
  }
  return best;
}

double angle_diff_mod180(double a, double b) {
  double d = std::fmod(std::abs(a - b), 180.0);
  return std::min(d, 180.0 - d);
}

}  // namespace

TEST_CASE("noisy synthetic lattice: d within 0.3 %, angles within 0.2 deg", "[spectrum]") {
  // Non-square on purpose (dkx ≠ dky); amplitudes 1 under noise σ = 1 per pixel.
  const std::vector<Fringe> fringes = {
      {2.53, 23.7, 1.0, 0.3}, {3.11, 101.3, 0.8, 1.1}, {1.87, 147.0, 0.6, 2.0}, {4.21, 0.0, 0.7, 0.0}};
  const Image img = lattice_image(600, 512, 0.11, fringes, 1.0, 11);
  const auto peaks = find_peaks(power_spectrum(img, 1));
  REQUIRE(peaks.size() == fringes.size());  // nothing but the four fringes stands out of the noise
  for (const auto& f : fringes) {
    const Peak* p = nearest(peaks, f);
    REQUIRE(p != nullptr);
    INFO("fringe d = " << f.d_A << " Å at " << f.angle_deg << "°: found " << p->d_A << " Å at "
                       << p->angle_deg << "°, snr " << p->snr);
    CHECK(std::abs(p->d_A / f.d_A - 1) < 0.003);               // the accuracy goal
    CHECK(angle_diff_mod180(p->angle_deg, f.angle_deg) < 0.2);
    CHECK(p->angle_deg >= 0);
    CHECK(p->angle_deg < 180);
    CHECK(p->snr > 50);
  }
}

TEST_CASE("noise-free tone between bins: the Hann interpolation is exact", "[spectrum]") {
  // A single tone is W(f − f0) in each axis; the three-bin estimator inverts it exactly.
  const Fringe f{3.37, 38.5, 1.0, 0.7};
  const Image img = lattice_image(256, 256, 0.2, {f}, 0.0, 1);
  PeakSpec spec;
  spec.min_snr = 1e3;
  const auto peaks = find_peaks(power_spectrum(img, 1), spec);
  REQUIRE(!peaks.empty());
  // Float32 pixels and a float FFT limit the agreement to ~1e-5 of a reciprocal pixel.
  CHECK(peaks[0].d_A == Approx(f.d_A).epsilon(2e-5));
  CHECK(peaks[0].angle_deg == Approx(f.angle_deg).margin(1e-3));
}

TEST_CASE("peak positions do not depend on a translation of the lattice", "[spectrum]") {
  const std::vector<Fringe> a = {{2.2, 60.0, 1.0, 0.0}, {2.9, 135.0, 1.0, 0.0}};
  const std::vector<Fringe> b = {{2.2, 60.0, 1.0, 2.4}, {2.9, 135.0, 1.0, -1.3}};
  const auto pa = find_peaks(power_spectrum(lattice_image(256, 256, 0.1, a, 0.5, 3), 1));
  const auto pb = find_peaks(power_spectrum(lattice_image(256, 256, 0.1, b, 0.5, 3), 1));
  REQUIRE(pa.size() == 2);
  REQUIRE(pb.size() == 2);
  for (const auto& f : a) {
    // Phases change the noise/fringe interference only: within the noise-limited 0.1 %.
    CHECK(nearest(pa, f)->d_A == Approx(nearest(pb, f)->d_A).epsilon(1e-3));
    CHECK(nearest(pa, f)->angle_deg == Approx(nearest(pb, f)->angle_deg).margin(0.1));
  }
}

TEST_CASE("white noise gives no peaks; a fringe along x is reported at 0 deg", "[spectrum]") {
  const Image noise = lattice_image(256, 256, 0.1, {}, 1.0, 5);
  CHECK(find_peaks(power_spectrum(noise, 1)).empty());
  const Image x_fringe = lattice_image(256, 256, 0.1, {{2.0, 180.0, 1.0, 0.0}}, 0.3, 6);
  const auto peaks = find_peaks(power_spectrum(x_fringe, 1));
  REQUIRE(peaks.size() == 1);
  CHECK(angle_diff_mod180(peaks[0].angle_deg, 0.0) < 0.05);
  CHECK(peaks[0].ky_invA >= 0);
}

TEST_CASE("ROI crop keeps calibration and rejects regions outside the image", "[spectrum]") {
  const Image img = lattice_image(64, 48, 0.5, {}, 1.0, 2);
  const Image c = crop(img, Roi{10, 5, 20, 30});
  CHECK(c.nx == 20);
  CHECK(c.ny == 30);
  CHECK(c.pixel_size_A == 0.5);
  CHECK(c.at(0, 0) == img.at(10, 5));
  CHECK(c.at(19, 29) == img.at(29, 34));
  CHECK_THROWS_WITH(crop(img, Roi{50, 0, 20, 10}), Catch::Contains("does not fit"));
}

TEST_CASE("bad spectrum input gives a clear error", "[spectrum]") {
  Image one(1, 1, 5.f);
  one.pixel_size_A = 0.1;
  CHECK_THROWS_WITH(power_spectrum(one, 1), Catch::Contains("1×1") && Catch::Contains("at least 8×8"));
  Image flat(64, 64, 3.f);
  flat.pixel_size_A = 0.1;
  CHECK_THROWS_WITH(power_spectrum(flat, 1), Catch::Contains("constant") && Catch::Contains("no peaks"));
  Image nan = lattice_image(64, 64, 0.1, {}, 1.0, 4);
  nan.at(3, 7) = std::nanf("");
  CHECK_THROWS_AS(power_spectrum(nan, 1), Error);
  Image uncal = lattice_image(64, 64, 0.1, {}, 1.0, 4);
  uncal.pixel_size_A = 0;
  CHECK_THROWS_WITH(power_spectrum(uncal, 1), Catch::Contains("--pixel-size"));
}

namespace {

struct Expected {
  std::string reflection;
  double d_A, angle_deg;
};

// reference/analysis/realdata_peaks.csv (the realdata README's "measured" columns).
std::vector<Expected> expected_peaks(const std::string& dataset) {
  std::ifstream in(testing::source_path("reference/analysis/realdata_peaks.csv"));
  REQUIRE(in.good());
  std::vector<Expected> out;
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string name, refl, d, a;
    std::getline(ss, name, ',');
    std::getline(ss, refl, ',');
    std::getline(ss, d, ',');
    std::getline(ss, a, ',');
    if (name == dataset)
      out.push_back({refl, std::stod(d), std::stod(a)});
  }
  REQUIRE(!out.empty());
  return out;
}

// Every expected reflection is found among the peaks: d within 0.5 % and direction within
// 0.5° (the README's values are good to ±0.3 % / ±0.3°; ours add < 0.1 %).
void check_realdata(const std::string& file, const std::string& dataset, const Roi& roi = {}) {
  const std::string path = testing::shared_path("data/realdata/" + file);
  if (!std::filesystem::exists(path)) {
    WARN("realdata absent, skipped: " << path);
    return;
  }
  const Image img = crop(read_tiff(path)[0], roi);
  REQUIRE(img.pixel_size_A > 0);  // calibration read from the TIFF
  const auto peaks = find_peaks(power_spectrum(img, 1));
  for (const auto& e : expected_peaks(dataset)) {
    const Peak* best = nullptr;
    for (const auto& p : peaks)
      if (std::abs(p.d_A / e.d_A - 1) < 0.005 && angle_diff_mod180(p.angle_deg, e.angle_deg) < 0.5)
        best = &p;
    INFO(dataset << " " << e.reflection << ": expected d " << e.d_A << " Å at " << e.angle_deg << "°");
    CHECK(best != nullptr);
  }
}

}  // namespace

TEST_CASE("real Si [110] HAADF: 111, 220, 004, 113 peaks as measured in the README", "[spectrum][realdata]") {
  check_realdata("si110_haadf_ncempy/si110_haadf.tif", "si110");
}

TEST_CASE("real SrTiO3 [001] HAADF (80 kV): 100, 010, 110 peaks", "[spectrum][realdata]") {
  check_realdata("sto001_haadf_80kV_ncempy/sto001_haadf_80kV.tif", "sto001_80kV");
}

TEST_CASE("real SrTiO3 [110] ADF: 001, 1-10, 1-11, 1-12, 002, 2-20 peaks", "[spectrum][realdata]") {
  check_realdata("sto110_adf_abf_atomap/sto110_adf.tif", "sto110_adf");
}
