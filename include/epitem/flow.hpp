// Motion in in-situ TEM movies: whole-frame drift by phase correlation, then dense optical flow
// (Farnebäck 2003, "Two-frame motion estimation based on polynomial expansion", via OpenCV)
// between successive drift-corrected frames; speeds = |displacement| · pixel size / Δt [Å/s].
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "epitem/image.hpp"
#include "epitem/movie.hpp"
#include "epitem/progress.hpp"

namespace epitem {

struct FlowSpec {
  /// Gaussian pre-filter σ [px] (shot noise); 0 = none; < 0 = choose from the measured noise
  /// (auto_flow_settings).
  double smooth_px = -1;
  bool remove_drift = true;   ///< register each frame pair by phase correlation first
  // Farnebäck parameters (OpenCV names). OpenCV's example uses levels 3, iterations 3; after
  // drift removal the residual motion is a few px, which 2 levels (reach ≈ window·2² px) and
  // 2 iterations resolve as accurately (tests/test_flow.cpp) at 0.7× the cost.
  double pyr_scale = 0.5;     ///< image scale between pyramid levels
  int levels = 2;             ///< pyramid levels above the full-resolution one
  int window_px = -1;         ///< averaging window [px]: larger = smoother, more robust; < 0 = auto
  int iterations = 2;         ///< iterations per pyramid level
  int poly_n = 5;             ///< pixel neighbourhood of the polynomial expansion
  double poly_sigma = 1.1;    ///< Gaussian σ of that expansion (1.1 for poly_n 5)
};

/// Whole-frame translation [px] of `moving` relative to `reference`:
/// moving(x, y) ≈ reference(x − dx, y − dy).
struct Shift {
  double dx_px = 0, dy_px = 0;
};

/// A registration that knows it may be ambiguous: on a lattice every lattice vector added to the
/// true shift is a correlation peak of nearly the same height, so the highest peak can be a whole
/// period off. Among the peaks at least `consistent_peak_ratio` of the highest, the one nearest
/// the predicted shift (the previous frame pair's, or zero) is chosen.
struct Registration {
  Shift shift;
  /// Height of the highest other peak / that of the highest peak (0 = a single clear peak,
  /// ≈ 1 = lattice-equivalent peaks); ≥ consistent_peak_ratio = ambiguous.
  double peak_ratio = 0;
  bool ambiguous = false;
  std::vector<Shift> alternatives;  ///< the other consistent peaks [px], nearest first
};
/// Lattice-equivalent peaks stay above this fraction of the highest while non-periodic content
/// (a particle, an amorphous region) covers up to ~20 % of the frame.
constexpr double consistent_peak_ratio = 0.8;
double distance_px(const Shift& a, const Shift& b);  ///< |a − b| [px]

/// Sub-pixel, half-whitened correlation with a Hann window, constrained to the peak nearest
/// `predicted` among the consistent ones.
Registration register_frames(const Image& reference, const Image& moving, Shift predicted = {});
/// register_frames(...).shift with zero prediction.
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
  /// σ of one flow component about the static mode [px], robust to a moving minority: the
  /// flow noise.
  double noise_sigma_px = 0;
  float magnitude(size_t i) const;
};

/// Linear intensity map applied to every frame before the flow (float, never quantised):
/// value → 255 · (value − low) / (high − low), low/high = movie-wide 0.5/99.5 percentiles.
struct IntensityMap {
  double low = 0, high = 255;
};
IntensityMap movie_intensity_map(const std::vector<Image>& frames);

/// Dense flow prev → next (both mapped by `map`, smoothed, drift removed). The whole-pixel part
/// of the drift comes from register_frames(prev, next, predicted); automatic smoothing/window
/// are chosen on this pair (auto_flow_settings).
FlowField dense_flow(const Image& prev, const Image& next, const FlowSpec& spec, const IntensityMap& map,
                     Shift predicted = {});

/// Speed [px/frame] above which a flow vector is taken as real motion: the magnitude that pure
/// Gaussian flow noise of σ `noise_sigma_px` per component (Rayleigh) exceeds anywhere in a field
/// of `pixels` with probability 1 % (one independent sample per window² pixels), so a static
/// pair has ~no "moving" pixel.
double noise_floor_px(double noise_sigma_px, std::size_t pixels, int window_px);

/// Smoothing σ and window for a movie, from the measured flow noise of one pair (`registered`:
/// its whole-frame shift, register_frames): Farnebäck on the central ≤ 512² px for σ 1–4 px
/// (at most what keeps half the lattice's strongest fringe) and windows 15–31 px, in order of
/// increasing smoothing; the first whose noise_floor_px is ≤ 0.1 px/frame, else the quietest.
/// Fields of `spec` ≥ 0 are kept as given.
FlowSpec auto_flow_settings(const Image& prev, const Image& next, const FlowSpec& spec, const IntensityMap& map,
                            Shift registered);

/// Magnitude statistics [same unit as the field] over mask pixels (mask empty = all) inside
/// the field's margin. Pixels faster than `floor` (> 0) in a connected region of at least
/// `min_region_px` are "moving" (the flow averages over its window, so a smaller region is not
/// resolved motion; analyze_flow uses half a window²). mean_moving is their mean speed at least
/// `core_margin_px` inside the region (analyze_flow: half a window; where the window does not
/// blend in static surroundings), over all of them when no pixel is that deep.
/// Throws Error if no pixel is left.
struct FlowStats {
  double mean = 0, median = 0, p90 = 0, p99 = 0;
  std::size_t pixels = 0;
  double moving_fraction = 0, mean_moving = 0;  ///< mean_moving = 0 when nothing moves
};
FlowStats flow_stats(const FlowField& field, const std::vector<std::uint8_t>& mask = {}, double floor = 0,
                     int min_region_px = 0, int core_margin_px = 0);

/// One row per successive frame pair.
struct FlowPair {
  int frame = 0;              ///< pair (frame, frame + 1), 0-based
  double time_s = 0;          ///< midpoint time
  double dt_s = 0;
  double covariate = 0;       ///< midpoint covariate (NaN if none)
  double drift_x_A = 0, drift_y_A = 0;  ///< cumulative stage drift since frame 0 [Å]
  double static_fraction = 0;           ///< FlowField::static_fraction of this pair
  FlowStats speed_A_per_s;    ///< magnitude statistics converted to Å/s
  Registration registration;  ///< whole-frame registration of this pair [px]
  double noise_floor_px_per_frame = 0;        ///< noise_floor_px of this pair
  double mean_speed_moving_px_per_frame = 0;  ///< speed_A_per_s.mean_moving in px/frame
};

/// Frames on demand, e.g. from a streaming Movie; frame(i) must be safe from several threads.
struct FrameSource {
  std::size_t count = 0;
  std::function<Image(std::size_t)> frame;
  /// Under mpirun (parallel.hpp; every rank calls analyze_flow): each rank computes a contiguous
  /// block of pairs, reading only their frames, and the result's pairs are on rank 0 only.
  bool split_over_ranks = false;
};
FrameSource frames_in_memory(const std::vector<Image>& frames);  ///< refers to `frames`

struct FlowResult {
  std::vector<FlowPair> pairs;
  FlowSpec spec;  ///< the settings used (automatic ones resolved)
};

/// Called once per pair (any order, one call at a time) with its speed map [Å/s].
using SpeedMapSink = std::function<void(std::size_t pair, Image&& speed_map_A_per_s)>;

/// Runs dense_flow over all successive pairs, holding O(threads) frames. Needs ≥ 2 frames of
/// one size and a pixel size. Registration runs first over the whole movie so each pair's
/// whole-pixel shift continues the previous pair's (register_frames). `mask` (nx·ny, nonzero =
/// use) restricts the statistics.
FlowResult analyze_flow(const FrameSource& frames, const FrameTimes& times, const FlowSpec& spec,
                        const std::vector<std::uint8_t>& mask = {}, const SpeedMapSink& speed_maps = {},
                        const ProgressFn& progress = {});
FlowResult analyze_flow(const std::vector<Image>& frames, const FrameTimes& times, const FlowSpec& spec,
                        const std::vector<std::uint8_t>& mask = {}, const SpeedMapSink& speed_maps = {},
                        const ProgressFn& progress = {});

/// Wall seconds of OpenCV's Farnebäck alone over the movie's successive pairs, threaded as in
/// analyze_flow (no registration, statistics or copies): the floor a benchmark compares with.
/// Automatic settings in `spec` must be resolved first.
double farneback_floor_s(const std::vector<Image>& frames, const FlowSpec& spec);

/// Mean of per-pair mean speeds in covariate bins [k·width, (k+1)·width).
struct CovariateBin {
  double low = 0, high = 0;
  int pairs = 0;
  double mean_speed_A_per_s = 0, std_speed_A_per_s = 0;
};
std::vector<CovariateBin> bin_by_covariate(const std::vector<FlowPair>& pairs, double bin_width);

}  // namespace epitem
