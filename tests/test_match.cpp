// `epitem match` (issue 15): an "experiment" is made from a finer simulation of Fe3O4 [110] at a
// known defocus and thickness, rotated, scaled, shifted, MTF-blurred and Poisson-noised; match must
// recover the parameters and its 95 % intervals must cover the truth; a wrong zone axis must
// score clearly worse and be called a poor fit.
#include <cmath>
#include <random>

#include "epitem/detector.hpp"
#include "epitem/fft.hpp"
#include "epitem/interface.hpp"
#include "epitem/match.hpp"
#include "epitem/model.hpp"
#include "epitem/multislice.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"
#include "testing.hpp"

using namespace epitem;

namespace {

constexpr double FE3O4_A = 8.396;  // structures/Fe3O4.cif

// Fe3O4 with x ∥ [1̄10], y ∥ [001], z ∥ [110] (beam).
AtomicModel fe3o4_110(int rx, int ry, int rz) {
  return orient_crystal(read_crystal("Fe3O4"), Vec3(1, 1, 0), Vec3(-1, 1, 0), {rx, ry, rz});
}

Lens test_lens() {
  Lens lens;
  lens.energy_eV = 200e3;
  lens.aberrations.Cs_A = 1.0 * units::mm;
  lens.focal_spread_A = 30;
  lens.convergence_mrad = 0.2;
  return lens;
}

struct Truth {
  double defocus_A = 434, rotation_deg = 3, scale = 1.02, shift_x_px = 3.3, shift_y_px = -5.7;
  int thickness_slice = 12;  // slice boundary index (1-based count of slices)
};

// The "experiment": the image (display frame, rows flipped) of `wave` seen by a camera of stated
// pixel `pixel_A` whose true pixel is truth.scale × that, rotated and shifted (the geometry of
// match.hpp, written out independently here), Gaussian MTF (q0 = 0.5 of the true pixel's Nyquist)
// and Poisson noise at `dose`.
Image make_experiment(const Wave& wave, const Lens& lens, const Truth& t, int n_px, double pixel_A, double dose,
                      std::uint64_t seed) {
  Lens l = lens;
  l.aberrations.defocus_A = t.defocus_A;
  const Image intensity = flipped_rows(form_image(wave, l, CoherenceSpec{}));
  // MTF on the fine simulation, then 2× Fourier upsampling so bilinear sampling is ~exact.
  const int nx = intensity.nx, ny = intensity.ny, ux = 2 * nx, uy = 2 * ny;
  const double ex = wave.grid.extent_x_A, ey = wave.grid.extent_y_A;
  AlignedVector<cfloat> a(intensity.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    a[i] = intensity.pixels[i];
  Fft2D(nx, ny, 1, FftRigor::Estimate).forward(a);
  AlignedVector<cfloat> b(std::size_t(ux) * uy, cfloat(0));
  const double true_pixel = t.scale * pixel_A, k_nyq = 0.5 / true_pixel;
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      const int fx = ix < nx / 2 ? ix : ix - nx, fy = iy < ny / 2 ? iy : iy - ny;
      const double q = std::hypot(fx / ex, fy / ey) / k_nyq;
      const int jx = fx < 0 ? fx + ux : fx, jy = fy < 0 ? fy + uy : fy;
      b[std::size_t(jy) * ux + jx] = a[std::size_t(iy) * nx + ix] * float(std::exp(-0.5 * (q / 0.5) * (q / 0.5)));
    }
  Fft2D(ux, uy, 1, FftRigor::Estimate).inverse(b.data(), false);
  auto fine = [&](int x, int y) { return b[std::size_t((y % uy + uy) % uy) * ux + std::size_t((x % ux + ux) % ux)].real() / float(nx * ny); };
  Image out(n_px, n_px);
  out.pixel_size_A = pixel_A;
  const double th = t.rotation_deg * units::deg_to_rad;
  const double c = 0.5 * (n_px - 1);
  PoissonSampler poisson(seed);
  const double counts_per_intensity = dose * true_pixel * true_pixel;
  for (int y = 0; y < n_px; ++y)
    for (int x = 0; x < n_px; ++x) {
      // Counter-clockwise on screen by θ (y down): sim position = s·p·R(−θ)·(u + shift).
      const double u = x - c + t.shift_x_px, v = y - c + t.shift_y_px;
      const double px = true_pixel * (std::cos(th) * u - std::sin(th) * v);
      const double py = true_pixel * (std::sin(th) * u + std::cos(th) * v);
      const double fx = px / (ex / ux) + 0.5 * ux, fy = py / (ey / uy) + 0.5 * uy;
      const int x0 = int(std::floor(fx)), y0 = int(std::floor(fy));
      const double tx = fx - x0, ty = fy - y0;
      const double value = (1 - ty) * ((1 - tx) * fine(x0, y0) + tx * fine(x0 + 1, y0)) +
                           ty * ((1 - tx) * fine(x0, y0 + 1) + tx * fine(x0 + 1, y0 + 1));
      out.at(x, y) = float(poisson(std::max(0.0, value) * counts_per_intensity));
    }
  return out;
}

// Exit wave of `model` at a slice boundary on a finer grid than match uses (no inverse crime).
Wave truth_wave(const AtomicModel& model, double slice_A, int slice_index, int n) {
  MultisliceSpec spec;
  spec.nx = spec.ny = n;
  spec.slice_thickness_A = slice_A;
  spec.threads = 1;
  const Slicing slicing = multislice_slicing(model, spec);
  spec.thickness_series_A = {slicing.boundaries_A[std::size_t(slice_index)]};
  Wave out;
  run_multislice(model, spec, [&](int, int index, double, const Wave& w) {
    if (index == 0)
      out = w;
  });
  return out;
}

struct Matcher {
  ExitWaveStack stack;
  Slicing slicing;
};

Matcher match_stack(const AtomicModel& model, double slice_A, int n, double t_min_A, double t_max_A) {
  MultisliceSpec spec;
  spec.nx = spec.ny = n;
  spec.slice_thickness_A = slice_A;
  spec.threads = 1;
  Matcher m;
  m.slicing = multislice_slicing(model, spec);
  m.stack = multislice_exit_waves(model, spec, slice_boundaries_within(m.slicing, t_min_A, t_max_A));
  return m;
}

MatchResult run(const Matcher& m, const Image& experiment, const Lens& lens, const std::vector<double>& defocus_A,
                double max_rot, double max_scale, const Roi& roi = {}) {
  Mtf mtf;
  mtf.kind = Mtf::Kind::Gaussian;
  mtf.q0 = 0.5;
  const MatchExperiment exp = prepare_experiment(experiment, roi, mtf, 1000, "experiment");
  const CameraModel camera(m.stack.waves[0][0].grid, experiment.pixel_size_A, mtf);
  StackImager imager(m.stack, CoherenceSpec{}, camera);
  MatchSpec spec;
  spec.defocus_A = defocus_A;
  spec.thickness_A = m.stack.thickness_A;
  spec.max_rotation_deg = max_rot;
  spec.max_scale_change = max_scale;
  return run_match(exp, lens, spec, [&](int, int k, const Lens& l, double pixel_scale) { return imager.image(k, l, pixel_scale); });
}

std::vector<double> range(double a, double b, double step) {
  std::vector<double> v;
  for (double x = a; x <= b + 1e-9; x += step)
    v.push_back(x);
  return v;
}

}  // namespace

TEST_CASE("warp geometry: a positive rotation turns the simulation counter-clockwise on screen", "[match]") {
  // A dot right of the simulation's centre; the experiment rotated by +90° must show it above
  // its centre (smaller row), by −90° below.
  Image sim(64, 64);
  sim.pixel_size_A = 0.1;
  sim.at(32 + 10, 32) = 1;  // centre at pixel 32 (the warp puts the origin at n/2)
  Image e(33, 33, 0.f);
  e.pixel_size_A = 0.1;
  e.at(0, 0) = 1;  // not constant
  const MatchExperiment exp = prepare_experiment(e, {}, Mtf{}, 4, "test");
  for (double rot : {90.0, -90.0}) {
    MatchGeometry g;
    g.rotation_deg = rot;
    const Image w = warp_to_roi(exp, sim, g);
    int bx = 0, by = 0;
    for (int y = 0; y < w.ny; ++y)
      for (int x = 0; x < w.nx; ++x)
        if (w.at(x, y) > w.at(bx, by)) {
          bx = x;
          by = y;
        }
    CHECK(bx == 16);
    CHECK(by == (rot > 0 ? 16 - 10 : 16 + 10));
  }
}

TEST_CASE("noise estimate: white Gaussian noise on a lattice image", "[match]") {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal(0, 0.3);
  Image img(128, 128);
  for (int y = 0; y < 128; ++y)
    for (int x = 0; x < 128; ++x)
      img.at(x, y) = float(std::cos(2 * PI * x / 8.0) + std::cos(2 * PI * y / 5.3) + normal(rng));
  const NoiseEstimate n = estimate_noise(img);
  CHECK(n.variance == Approx(0.09).epsilon(0.1));
  CHECK(n.independent_fraction > 0.9);
}

TEST_CASE("match recovers defocus, thickness, rotation and scale of a simulated Fe3O4 [110] experiment", "[match]") {
  const AtomicModel model = fe3o4_110(2, 3, 6);
  const double slice = FE3O4_A * std::sqrt(2.0) / 4;
  const Lens lens = test_lens();
  const Truth truth;
  const Wave wave = truth_wave(model, slice, truth.thickness_slice, 384);
  const Image experiment = make_experiment(wave, lens, truth, 160, 0.15, 2000, 11);
  const Matcher m = match_stack(model, slice, 256, 15, 60);
  const MatchResult r = run(m, experiment, lens, range(300, 600, 20), 5, 0.03);
  const double t_true = m.slicing.boundaries_A[std::size_t(truth.thickness_slice)];
  INFO("defocus " << r.defocus_A.value << " ± " << r.defocus_A.uncertainty_95 << " Å, thickness " << r.thickness_A.value
                  << " ± " << r.thickness_A.uncertainty_95 << " Å (truth " << t_true << "), rotation "
                  << r.rotation_deg.value << " ± " << r.rotation_deg.uncertainty_95 << ", scale " << r.scale.value
                  << " ± " << r.scale.uncertainty_95 << ", chi2_red " << r.score.chi2_reduced << ", " << r.verdict);
  CHECK(std::abs(r.defocus_A.value - truth.defocus_A) < 20);
  CHECK(std::abs(r.thickness_A.value - t_true) < slice);
  CHECK(std::abs(r.rotation_deg.value - truth.rotation_deg) < 0.2);
  CHECK(std::abs(r.scale.value - truth.scale) < 0.003);
  CHECK_FALSE(r.poor_fit);
  CHECK(r.score.chi2_reduced < 2);
}

TEST_CASE("match: a wrong zone axis (Fe3O4 [111] against a [110] experiment) scores clearly worse and is called poor",
          "[match]") {
  const double slice = FE3O4_A * std::sqrt(2.0) / 4;
  const Lens lens = test_lens();
  const Truth truth;
  const AtomicModel right = fe3o4_110(2, 3, 6);
  const Wave wave = truth_wave(right, slice, truth.thickness_slice, 384);
  const Image experiment = make_experiment(wave, lens, truth, 160, 0.15, 2000, 12);
  const AtomicModel wrong = orient_crystal(read_crystal("Fe3O4"), Vec3(1, 1, 1), Vec3(1, -1, 0), {2, 1, 4});
  const Matcher m_wrong = match_stack(wrong, 2.0, 256, 15, 60);
  const MatchResult w = run(m_wrong, experiment, lens, range(300, 600, 30), 5, 0.03);
  const Matcher m_right = match_stack(right, slice, 256, 15, 60);
  const MatchResult r = run(m_right, experiment, lens, range(300, 600, 30), 5, 0.03);
  INFO("right: NCC " << r.score.ncc << " chi2_red " << r.score.chi2_reduced << "; wrong: NCC " << w.score.ncc
                     << " chi2_red " << w.score.chi2_reduced << " — " << w.verdict);
  CHECK(w.poor_fit);
  CHECK(w.verdict.find("POOR FIT") != std::string::npos);
  CHECK_FALSE(r.poor_fit);
  CHECK(w.score.chi2_reduced > 3 * r.score.chi2_reduced);
  CHECK(w.score.ncc < r.score.ncc - 0.3);
}

TEST_CASE("match statistics over 20 seeds: recovery and 95 % intervals covering the truth", "[match][slow]") {
  const AtomicModel model = fe3o4_110(2, 3, 6);
  const double slice = FE3O4_A * std::sqrt(2.0) / 4;
  const Lens lens = test_lens();
  // Truth waves at every candidate slice boundary, on match's grid as `epitem hrtem` would make
  // them (issue 15); the single-seed test above uses a 1.5× finer grid.
  MultisliceSpec fine;
  fine.nx = fine.ny = 256;
  fine.slice_thickness_A = slice;
  fine.threads = 1;
  const Slicing slicing = multislice_slicing(model, fine);
  const ExitWaveStack truth_stack = multislice_exit_waves(model, fine, slice_boundaries_within(slicing, 25, 48));
  const Matcher m = match_stack(model, slice, 256, 15, 60);
  std::mt19937_64 rng(2026);
  std::uniform_real_distribution<double> uni(0, 1);
  int covered_df = 0, covered_t = 0, covered_rot = 0, covered_scale = 0;
  const int seeds = 20;
  for (int seed = 0; seed < seeds; ++seed) {
    Truth t;
    t.defocus_A = 380 + 140 * uni(rng);
    const int k = int(uni(rng) * double(truth_stack.thickness_A.size()));
    t.rotation_deg = 2 + 2 * uni(rng);
    t.scale = 0.98 + 0.05 * uni(rng);
    t.shift_x_px = -8 + 16 * uni(rng);
    t.shift_y_px = -8 + 16 * uni(rng);
    const Image experiment = make_experiment(truth_stack.waves[std::size_t(k)][0], lens, t, 160, 0.15, 2000, 100 + seed);
    const MatchResult r = run(m, experiment, lens, range(300, 600, 20), 5, 0.04);
    const double t_true = truth_stack.thickness_A[std::size_t(k)];
    INFO("seed " << seed << ": defocus " << r.defocus_A.value << " ± " << r.defocus_A.uncertainty_95 << " (truth "
                 << t.defocus_A << "), thickness " << r.thickness_A.value << " ± " << r.thickness_A.uncertainty_95
                 << " (truth " << t_true << "), rotation " << r.rotation_deg.value << " ± " << r.rotation_deg.uncertainty_95
                 << " (" << t.rotation_deg << "), scale " << r.scale.value << " ± " << r.scale.uncertainty_95 << " ("
                 << t.scale << "), chi2_red " << r.score.chi2_reduced);
    CHECK(std::abs(r.defocus_A.value - t.defocus_A) < 20);
    CHECK(std::abs(r.thickness_A.value - t_true) < slice);
    CHECK(std::abs(r.rotation_deg.value - t.rotation_deg) < 0.2);
    CHECK(std::abs(r.scale.value - t.scale) < 0.003);
    covered_df += std::abs(r.defocus_A.value - t.defocus_A) <= r.defocus_A.uncertainty_95;
    covered_t += std::abs(r.thickness_A.value - t_true) <= r.thickness_A.uncertainty_95;
    covered_rot += std::abs(r.rotation_deg.value - t.rotation_deg) <= r.rotation_deg.uncertainty_95;
    covered_scale += std::abs(r.scale.value - t.scale) <= r.scale.uncertainty_95;
  }
  INFO("covered: defocus " << covered_df << ", thickness " << covered_t << ", rotation " << covered_rot << ", scale "
                           << covered_scale << " of " << seeds);
  // Issue 15 asks ≥ 90 %. (A quadratic over a ±2-grid-step stencil once biased defocus by 1–4 Å,
  // several interval widths: 11/20.)
  CHECK(covered_df >= 18);
  CHECK(covered_t >= 18);
  CHECK(covered_rot >= 18);
  CHECK(covered_scale >= 18);
  WARN("coverage of the 95 % intervals over " << seeds << " seeds: defocus " << covered_df << ", thickness " << covered_t
                                              << ", rotation " << covered_rot << ", scale " << covered_scale);
}

TEST_CASE("match on the NiFe/Fe3O4 preset with the ROI on the interface", "[match][slow]") {
  const AtomicModel model = build_interface(preset_interface("nife-fe3o4")).model;
  const Lens lens = test_lens();
  Truth truth;
  truth.thickness_slice = 20;  // 40 Å of the 50 Å model, 2 Å slices
  const Wave wave = truth_wave(model, 2.0, truth.thickness_slice, 512);
  const Image experiment = make_experiment(wave, lens, truth, 256, 0.2, 2000, 21);
  const Matcher m = match_stack(model, 2.0, 384, 30, 50);
  Roi roi;  // the interface runs along x near the middle row (model y ≈ 30 Å of 64 Å)
  roi.x = 64;
  roi.y = 80;
  roi.w = 128;
  roi.h = 96;
  const MatchResult r = run(m, experiment, lens, range(300, 600, 20), 5, 0.03, roi);
  const double t_true = m.slicing.boundaries_A[std::size_t(truth.thickness_slice)];
  INFO("defocus " << r.defocus_A.value << " ± " << r.defocus_A.uncertainty_95 << ", thickness " << r.thickness_A.value
                  << " ± " << r.thickness_A.uncertainty_95 << " (truth " << t_true << "), rotation "
                  << r.rotation_deg.value << ", scale " << r.scale.value << ", " << r.verdict);
  CHECK(std::abs(r.defocus_A.value - truth.defocus_A) < 20);
  CHECK(std::abs(r.thickness_A.value - t_true) < 2.0);
  CHECK(std::abs(r.rotation_deg.value - truth.rotation_deg) < 0.2);
  CHECK(std::abs(r.scale.value - truth.scale) < 0.003);
  CHECK_FALSE(r.poor_fit);
}
