// Motion in in-situ TEM movies: whole-frame drift by phase correlation, then dense optical flow
// (Farnebäck 2003, "Two-frame motion estimation based on polynomial expansion", via OpenCV)
// between successive drift-corrected frames; speeds = |displacement| · pixel size / Δt [Å/s].
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "epitem/image.hpp"
#include "epitem/movie.hpp"
#include "epitem/progress.hpp"

namespace epitem {

struct FlowSpec {
  double smooth_px = 1.0;     ///< Gaussian pre-filter σ [px] (shot noise); 0 = none
  bool remove_drift = true;   ///< register each frame pair by phase correlation first
  // Farnebäck parameters (OpenCV names). OpenCV's example uses levels 3, iterations 3; after
  // drift removal the residual motion is a few px, which 2 levels (reach ≈ window·2² px) and
  // 2 iterations resolve as accurately (tests/test_flow.cpp) at 0.7× the cost.
  double pyr_scale = 0.5;     ///< image scale between pyramid levels
  int levels = 2;             ///< pyramid levels above the full-resolution one
  int window_px = 15;         ///< averaging window [px]: larger = smoother, more robust
  int iterations = 2;         ///< iterations per pyramid level
  int poly_n = 5;             ///< pixel neighbourhood of the polynomial expansion
  double poly_sigma = 1.1;    ///< Gaussian σ of that expansion (1.1 for poly_n 5)
};

/// Whole-frame translation [px] of `moving` relative to `reference`:
/// moving(x, y) ≈ reference(x − dx, y − dy). Sub-pixel phase correlation with a Hann window;
/// unambiguous for |shift| below half the shortest lattice period.
struct Shift {
  double dx_px = 0, dy_px = 0;
};
Shift phase_correlation_shift(const Image& reference, const Image& moving);

/// Displacement field between two frames [px per frame pair], drift already removed.
struct FlowField {
  int nx = 0, ny = 0;
  std::vector<float> vx_px, vy_px;  ///< [iy * nx + ix]
  Shift drift;                      ///< translation removed (stage drift of this pair)
  int margin_px = 0;                ///< border excluded from statistics (warp + window edge)
  /// Fraction of flow vectors within 0.3 px of the static mode (quality: ≥ 0.5 = a static
  /// majority was found and set the drift; lower = noise-dominated flow, drift from registration).
  double static_fraction = 0;
  bool drift_from_flow = false;
  float magnitude(size_t i) const;
};

/// Linear intensity map applied to every frame before the flow (float, never quantised):
/// value → 255 · (value − low) / (high − low), low/high = movie-wide 0.5/99.5 percentiles.
struct IntensityMap {
  double low = 0, high = 255;
};
IntensityMap movie_intensity_map(const std::vector<Image>& frames);

/// Dense flow prev → next (both mapped by `map`, smoothed, drift removed).
FlowField dense_flow(const Image& prev, const Image& next, const FlowSpec& spec, const IntensityMap& map);

/// Magnitude statistics [same unit as the field] over mask pixels (mask empty = all) inside
/// the field's margin. Throws Error if no pixel is left.
struct FlowStats {
  double mean = 0, median = 0, p90 = 0, p99 = 0;
  std::size_t pixels = 0;
};
FlowStats flow_stats(const FlowField& field, const std::vector<std::uint8_t>& mask = {});

/// One row per successive frame pair.
struct FlowPair {
  int frame = 0;              ///< pair (frame, frame + 1), 0-based
  double time_s = 0;          ///< midpoint time
  double dt_s = 0;
  double covariate = 0;       ///< midpoint covariate (NaN if none)
  double drift_x_A = 0, drift_y_A = 0;  ///< cumulative stage drift since frame 0 [Å]
  double static_fraction = 0;           ///< FlowField::static_fraction of this pair
  FlowStats speed_A_per_s;    ///< magnitude statistics converted to Å/s
};

/// Runs dense_flow over all successive pairs. Needs ≥ 2 frames of one size and a pixel size.
/// `mask` (nx·ny, nonzero = use) restricts the statistics. If `speed_maps` is not null it
/// receives each pair's speed map [Å/s] (pixel size of the frames).
std::vector<FlowPair> analyze_flow(const std::vector<Image>& frames, const FrameTimes& times,
                                   const FlowSpec& spec, const std::vector<std::uint8_t>& mask = {},
                                   std::vector<Image>* speed_maps = nullptr, const ProgressFn& progress = {});

/// Wall seconds of OpenCV's Farnebäck alone over the movie's successive pairs, threaded as in
/// analyze_flow (no registration, statistics or copies): the floor a benchmark compares with.
double farneback_floor_s(const std::vector<Image>& frames, const FlowSpec& spec);

/// Mean of per-pair mean speeds in covariate bins [k·width, (k+1)·width).
struct CovariateBin {
  double low = 0, high = 0;
  int pairs = 0;
  double mean_speed_A_per_s = 0, std_speed_A_per_s = 0;
};
std::vector<CovariateBin> bin_by_covariate(const std::vector<FlowPair>& pairs, double bin_width);

}  // namespace epitem
