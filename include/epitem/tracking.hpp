// Linking diffraction spots across the frames of a movie into tracks: greedy global nearest
// neighbour with gates on detector position and |g|, gap closing for spots that blink; each
// track's lifespan, mean |g|, azimuth and labels; mean lifespan per phase/{hkl} per covariate bin.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "epitem/pattern_geometry.hpp"
#include "epitem/png.hpp"

namespace epitem {

/// One detected spot in one frame, in detector and reciprocal coordinates.
struct SpotObservation {
  int frame = 0;
  double x_px = 0, y_px = 0;          ///< detector position [px]
  double gx_invA = 0, gy_invA = 0;    ///< reciprocal vector [1/Å], y up (PatternGeometry)
  double intensity = 0;               ///< DetectedSpot::intensity
  double snr = 0;
  double sigma_px = 0;
  int track_id = -1;                  ///< set by link_tracks (−1: in no kept track)
  double g_invA() const;
};

struct TrackingSpec {
  double max_step_px = 3.0;   ///< largest move between two observations of one spot [px]
  double max_dg_rel = 0.02;   ///< largest relative change of |g| between two observations
  int max_gap_frames = 2;     ///< frames a spot may vanish and still continue its track
  int min_frames = 2;         ///< tracks detected in fewer frames are dropped (noise)
  void validate() const;      ///< throws Error for negative gates or min_frames < 1
};

enum class LabelStatus { Indexed, Ambiguous, Unindexed };
const char* label_status_name(LabelStatus s);   ///< "indexed", "ambiguous", "unindexed"

/// Phase and {hkl} of a spacing. Ambiguous: phase/hkl list every candidate joined by '|'.
struct SpacingLabel {
  LabelStatus status = LabelStatus::Unindexed;
  std::string phase;
  std::string hkl;
  double error_rel = 0;   ///< (g_measured − g_ref)/g_ref of the best candidate
};
/// Maps a measured |g| [1/Å] to a label; the CLI builds it from the indexing module.
using SpacingLabeler = std::function<SpacingLabel(double g_invA)>;

/// Minimal spacing indexer: every reference ring within tolerance_rel of g_invA is a
/// candidate; one candidate (or several of the same phase and equal |g|) → Indexed.
SpacingLabel label_spacing(double g_invA, const std::vector<ReferenceRing>& references,
                           double tolerance_rel = 0.01);

struct Track {
  int id = 0;
  int first_frame = 0, last_frame = 0;
  std::vector<int> frames;            ///< frames with a detection, increasing
  std::vector<double> intensity;      ///< intensity history, one per detection
  double x_px = 0, y_px = 0;          ///< mean detector position [px]
  double g_invA = 0;                  ///< mean |g| [1/Å]
  double azimuth_deg = 0;             ///< circular mean direction of g, CCW from +x (y up)
  double max_snr = 0;
  double lifespan_s = 0;              ///< Σ frame durations first..last (set_track_times)
  double covariate_mean = 0;          ///< mean covariate over first..last (NaN: none)
  double covariate_first = 0;         ///< covariate at the first frame (NaN: none)
  bool censored = false;              ///< alive in the first or last frame: lifespan is a lower bound
  SpacingLabel label;
  int lifespan_frames() const { return last_frame - first_frame + 1; }
  double d_A() const { return g_invA > 0 ? 1.0 / g_invA : 0.0; }
};

/// Links observations (outer index = frame, in order) into tracks and writes each kept
/// observation's track_id. Tracks are numbered from 0 in order of birth.
std::vector<Track> link_tracks(std::vector<std::vector<SpotObservation>>& frames,
                               const TrackingSpec& spec);

/// Lifespans in seconds and covariates: frame i lasts time_s[i+1] − time_s[i] (the last
/// frame as long as the one before it), so a spot seen in one frame lives one frame interval.
/// A one-frame movie has no interval in time_s: its frame lasts frame_interval_s (e.g. 1/fps;
/// 0 = unknown, lifespans 0). `covariate` is empty or one value per frame.
void set_track_times(std::vector<Track>& tracks, const std::vector<double>& time_s,
                     const std::vector<double>& covariate, int n_frames, double frame_interval_s = 0);

void label_tracks(std::vector<Track>& tracks, const SpacingLabeler& labeler);

struct LifespanBin {
  std::string phase, hkl;            ///< "unindexed"/"ambiguous" tracks are grouped as such
  double covariate_lo = 0, covariate_hi = 0;  ///< bin of the tracks' covariate_mean
  int n_tracks = 0;
  int n_censored = 0;
  double mean_lifespan_s = 0, std_lifespan_s = 0, mean_lifespan_frames = 0;
};

/// Mean lifespan per phase/{hkl} per covariate bin [covariate_origin + k·bin_width, +bin_width).
/// Without a covariate (NaN) every track falls in one bin. bin_width ≤ 0 → one bin.
std::vector<LifespanBin> summarise_lifespans(const std::vector<Track>& tracks,
                                             double bin_width, double covariate_origin = 0);

/// Fig. 3n-style scatter: x = covariate_mean (or the birth time when there is no covariate),
/// y = |g| [1/nm]; marker colour and area grow with the lifespan; phase names at the right edge.
Canvas lifespan_scatter(const std::vector<Track>& tracks, const std::vector<double>& time_s,
                        const std::string& x_label, int width = 800, int height = 560);

/// CSV writers (fixed formats, header line with units in the column names).
std::string tracks_csv(const std::vector<Track>& tracks);
std::string detections_csv(const std::vector<std::vector<SpotObservation>>& frames,
                           const std::vector<double>& time_s);
std::string lifespan_summary_csv(const std::vector<LifespanBin>& bins);

}  // namespace epitem
