// Optical flow (flow.hpp) on a synthetic movie: a lattice-fringed particle translating at a
// known velocity over a static lattice, everything drifting: the particle speed comes back
// within 5 %, the drift is removed (static lattice ≈ 0), speeds scale linearly with velocity.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "epitem/error.hpp"
#include "epitem/flow.hpp"
#include "testing.hpp"

using namespace epitem;

namespace {

constexpr double TWO_PI = 6.283185307179586;

struct Synthetic {
  int n = 192, frames = 6;
  double vx = 0.8, vy = 0.6;             // particle velocity [px/frame]
  double drift_x = 0.7, drift_y = -0.45; // stage drift [px/frame]
  double cx0 = 80, cy0 = 90, radius = 40;
  double pixel_A = 0.5, fps = 10;
};

// Crossed fringes so that the motion is defined in both directions (no aperture problem).
std::vector<Image> make_movie(const Synthetic& s) {
  std::mt19937 rng(42);
  std::normal_distribution<float> noise(0.f, 0.05f);
  std::vector<Image> movie;
  for (int t = 0; t < s.frames; ++t) {
    Image im(s.n, s.n);
    im.pixel_size_A = s.pixel_A;
    double dx = s.drift_x * t, dy = s.drift_y * t;
    double cx = s.cx0 + s.vx * t, cy = s.cy0 + s.vy * t;
    for (int y = 0; y < s.n; ++y)
      for (int x = 0; x < s.n; ++x) {
        double u = x - dx, v = y - dy;  // sample coordinates (undo the stage drift)
        double bg = std::cos(TWO_PI * (u / 9.0 + v * 0.02)) + std::cos(TWO_PI * (-u * 0.03 + v / 8.0));
        double pu = u - cx, pv = v - cy;
        double particle = 0.6 + 1.4 * (std::cos(TWO_PI * (pu * 0.11 + pv * 0.09)) +
                                       std::cos(TWO_PI * (-pu * 0.1 + pv * 0.12)));
        double w = 0.5 * (1 - std::tanh((std::hypot(pu, pv) - s.radius) / 2.0));
        im.at(x, y) = float((1 - w) * bg + w * particle) + noise(rng);
      }
    movie.push_back(std::move(im));
  }
  return movie;
}

// Disk mask (true inside) and its complement beyond `outside_px`, in frame pixel coordinates.
std::vector<std::uint8_t> disk_mask(int n, double cx, double cy, double r, bool inside) {
  std::vector<std::uint8_t> m(size_t(n) * size_t(n));
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x)
      m[size_t(y) * size_t(n) + size_t(x)] = (std::hypot(x - cx, y - cy) <= r) == inside;
  return m;
}

}  // namespace

TEST_CASE("phase correlation measures a whole-frame shift with its sign", "[flow]") {
  Synthetic s;
  s.vx = s.vy = 0;
  std::vector<Image> movie = make_movie(s);
  Shift d = phase_correlation_shift(movie[0], movie[2]);
  // Sub-pixel phase correlation on a noisy lattice: a few hundredths of a pixel.
  CHECK(d.dx_px == Approx(2 * s.drift_x).margin(0.05));
  CHECK(d.dy_px == Approx(2 * s.drift_y).margin(0.05));
}

TEST_CASE("particle speed within 5 %, static lattice ~0 after drift removal", "[flow]") {
  Synthetic s;
  std::vector<Image> movie = make_movie(s);
  FrameTimes times = frame_times_from_fps(movie.size(), s.fps);
  const double mid = 0.5 * (s.frames - 1);
  // Particle centre in frame pixels halfway through the movie (sample position + drift).
  const double cx = s.cx0 + s.vx * mid + s.drift_x * mid, cy = s.cy0 + s.vy * mid + s.drift_y * mid;
  const double v_A_per_s = std::hypot(s.vx, s.vy) * s.pixel_A * s.fps;
  FlowSpec spec;
  auto inside = analyze_flow(movie, times, spec, disk_mask(s.n, cx, cy, s.radius / 2, true));
  auto outside = analyze_flow(movie, times, spec, disk_mask(s.n, cx, cy, s.radius + 20, false));
  REQUIRE(inside.size() == size_t(s.frames - 1));
  for (size_t i = 0; i < inside.size(); ++i) {
    INFO("pair " << i);
    CHECK(inside[i].speed_A_per_s.median == Approx(v_A_per_s).epsilon(0.05));
    CHECK(inside[i].speed_A_per_s.mean == Approx(v_A_per_s).epsilon(0.05));
    // Static lattice: residual motion below 5 % of the particle speed (drift is 0.84 px/frame).
    CHECK(outside[i].speed_A_per_s.median < 0.05 * v_A_per_s);
    CHECK(inside[i].dt_s == Approx(0.1));
    CHECK(inside[i].drift_x_A == Approx(s.drift_x * s.pixel_A * (i + 1)).margin(0.05));
    CHECK(inside[i].drift_y_A == Approx(s.drift_y * s.pixel_A * (i + 1)).margin(0.05));
  }
  // Without drift removal the static lattice appears to move at the drift speed.
  spec.remove_drift = false;
  auto raw = analyze_flow(movie, times, spec, disk_mask(s.n, cx, cy, s.radius + 20, false));
  CHECK(raw[0].speed_A_per_s.median == Approx(std::hypot(s.drift_x, s.drift_y) * s.pixel_A * s.fps).epsilon(0.1));
}

TEST_CASE("flow magnitude scales linearly with the imposed velocity", "[flow]") {
  double previous_ratio = 0;
  for (double speed : {0.5, 1.0, 2.0}) {
    Synthetic s;
    s.frames = 3;
    s.vx = 0.8 * speed;
    s.vy = 0.6 * speed;
    std::vector<Image> movie = make_movie(s);
    FrameTimes times = frame_times_from_fps(movie.size(), s.fps);
    const double cx = s.cx0 + s.vx + s.drift_x, cy = s.cy0 + s.vy + s.drift_y;
    auto pairs = analyze_flow(movie, times, FlowSpec{}, disk_mask(s.n, cx, cy, s.radius / 2, true));
    double ratio = pairs[0].speed_A_per_s.median / (speed * s.pixel_A * s.fps);
    INFO("speed " << speed << " px/frame, measured/imposed " << ratio);
    CHECK(ratio == Approx(1.0).epsilon(0.05));
    if (previous_ratio > 0)
      CHECK(ratio == Approx(previous_ratio).epsilon(0.05));
    previous_ratio = ratio;
  }
}

TEST_CASE("flow statistics equal the order statistics of the sorted magnitudes", "[flow]") {
  // A skewed field (most vectors small, a long tail, ties at 0) with a margin and a mask.
  FlowField f;
  f.nx = 300;
  f.ny = 200;
  f.margin_px = 7;
  std::mt19937 rng(3);
  std::exponential_distribution<float> tail(2.f);
  std::uniform_real_distribution<float> angle(0.f, float(TWO_PI));
  for (int i = 0; i < f.nx * f.ny; ++i) {
    const float r = i % 5 == 0 ? 0.f : tail(rng), a = angle(rng);
    f.vx_px.push_back(r * std::cos(a));
    f.vy_px.push_back(r * std::sin(a));
  }
  std::vector<std::uint8_t> mask(f.vx_px.size());
  for (size_t i = 0; i < mask.size(); ++i)
    mask[i] = (i / 3) % 2;
  std::vector<float> kept;
  double sum = 0;
  for (int y = f.margin_px; y < f.ny - f.margin_px; ++y)
    for (int x = f.margin_px; x < f.nx - f.margin_px; ++x) {
      const size_t i = size_t(y) * size_t(f.nx) + size_t(x);
      if (mask[i]) {
        kept.push_back(f.magnitude(i));
        sum += kept.back();
      }
    }
  std::sort(kept.begin(), kept.end());
  auto sorted_at = [&](double p) { return double(kept[size_t(p / 100 * double(kept.size() - 1))]); };
  const FlowStats s = flow_stats(f, mask);
  CHECK(s.pixels == kept.size());
  CHECK(s.mean == Approx(sum / double(kept.size())).epsilon(1e-12));
  CHECK(s.median == sorted_at(50));
  CHECK(s.p90 == sorted_at(90));
  CHECK(s.p99 == sorted_at(99));
  // A static field: every statistic 0.
  FlowField still = f;
  std::fill(still.vx_px.begin(), still.vx_px.end(), 0.f);
  std::fill(still.vy_px.begin(), still.vy_px.end(), 0.f);
  const FlowStats z = flow_stats(still);
  CHECK((z.mean == 0 && z.median == 0 && z.p99 == 0));
}

TEST_CASE("covariate bins average the per-pair speeds", "[flow]") {
  std::vector<FlowPair> pairs(4);
  const double cov[] = {401, 449, 455, 520}, speed[] = {1, 3, 10, 7};
  for (int i = 0; i < 4; ++i) {
    pairs[i].covariate = cov[i];
    pairs[i].speed_A_per_s.mean = speed[i];
  }
  auto bins = bin_by_covariate(pairs, 50);
  REQUIRE(bins.size() == 3);
  CHECK(bins[0].low == 400);
  CHECK(bins[0].pairs == 2);
  CHECK(bins[0].mean_speed_A_per_s == 2);
  CHECK(bins[0].std_speed_A_per_s == Approx(std::sqrt(2.0)));
  CHECK(bins[1].mean_speed_A_per_s == 10);
  CHECK(bins[2].low == 500);
  CHECK_THROWS_AS(bin_by_covariate(pairs, 0), Error);
}

TEST_CASE("flow refuses one-frame movies, mixed sizes and a missing pixel size", "[flow]") {
  Synthetic s;
  s.frames = 2;
  std::vector<Image> movie = make_movie(s);
  FrameTimes times = frame_times_from_fps(2, 10);
  std::vector<Image> one(movie.begin(), movie.begin() + 1);
  CHECK_THROWS_WITH(analyze_flow(one, frame_times_from_fps(1, 10), FlowSpec{}), Catch::Contains("at least 2 frames"));
  std::vector<Image> mixed = movie;
  mixed[1] = Image(100, 100, 1.f);
  mixed[1].pixel_size_A = s.pixel_A;
  CHECK_THROWS_WITH(analyze_flow(mixed, times, FlowSpec{}), Catch::Contains("same size"));
  std::vector<Image> uncalibrated = movie;
  for (auto& f : uncalibrated)
    f.pixel_size_A = 0;
  CHECK_THROWS_WITH(analyze_flow(uncalibrated, times, FlowSpec{}), Catch::Contains("--pixel-size"));
  CHECK_THROWS_AS(frame_times_from_fps(3, 0), Error);
}

TEST_CASE("real in-situ movie (registered Ti frames): drift ~0, static majority found", "[realdata]") {
  const std::string path =
      testing::shared_path("data/realdata/ti_insitu_heating_movie_nomelabs/ti_heating_frames1691-1698.tif");
  if (!std::filesystem::exists(path)) {
    WARN("realdata movie absent (" << path << "): skipped");
    return;
  }
  std::vector<Image> movie = read_movie(path);
  REQUIRE(movie.size() == 8);
  // README: rows 390-549 are a burned-in annotation panel; 0.258 nm/px from the scale bar.
  for (Image& f : movie) {
    Image crop(f.nx, 390);
    for (int y = 0; y < 390; ++y)
      for (int x = 0; x < f.nx; ++x)
        crop.at(x, y) = f.at(x, y);
    crop.pixel_size_A = 2.58;
    f = crop;
  }
  FlowSpec spec;
  // Noisy 8-bit BF video frames: measured static fraction 0.02-0.15 at σ ≤ 3 px (flow of noise),
  // 0.54-0.82 at σ = 5 px; a static majority is what this test asks for.
  spec.smooth_px = 5;
  auto pairs = analyze_flow(movie, frame_times_from_fps(movie.size(), 1.0), spec);
  for (const FlowPair& p : pairs) {
    INFO("pair " << p.frame);
    // README: the frames are registered (phase-correlation shift 0 px between all frames).
    CHECK(std::abs(p.drift_x_A) < 0.5 * 2.58);
    CHECK(std::abs(p.drift_y_A) < 0.5 * 2.58);
    CHECK(p.static_fraction > 0.5);
  }
}
