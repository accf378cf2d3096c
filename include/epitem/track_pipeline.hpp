// The `epitem track` pipeline as a library: frames of an in-situ SAED movie → pattern centre,
// ellipse and calibration, LoG spots in every frame (minus the azimuthal background), tracks with
// lifespans and {hkl} labels, the per-covariate-bin summary. The CLI (apps/cmd_track.cpp) streams
// the frames from a Movie file, the Python module from a numpy stack; both write the same tables.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "epitem/image.hpp"
#include "epitem/indexing.hpp"
#include "epitem/json.hpp"
#include "epitem/movie.hpp"
#include "epitem/pattern_geometry.hpp"
#include "epitem/progress.hpp"
#include "epitem/spot_detection.hpp"
#include "epitem/tracking.hpp"

namespace epitem {

/// The frames of a movie, read on demand so that a run holds O(threads) frames at a time.
/// frame(i) must be safe to call from several threads.
class TrackInput {
public:
  virtual ~TrackInput() = default;
  virtual std::size_t frame_count() const = 0;
  virtual int nx() const = 0;
  virtual int ny() const = 0;
  virtual Image frame(std::size_t i) const = 0;
  /// Names the input in messages ("movie.tif", "stack").
  virtual std::string name() const = 0;
};

/// A Movie file (or folder of frames) as a TrackInput.
class MovieFrames : public TrackInput {
public:
  explicit MovieFrames(const Movie& movie) : movie_(movie) {}
  std::size_t frame_count() const override { return movie_.frame_count(); }
  int nx() const override { return movie_.nx(); }
  int ny() const override { return movie_.ny(); }
  Image frame(std::size_t i) const override { return movie_.frame(i); }
  std::string name() const override { return movie_.path(); }
  const Movie& movie() const { return movie_; }

private:
  const Movie& movie_;
};

/// Resolved parameters of a track run (the CLI options, in their canonical units).
struct TrackSettings {
  SpotDetectionSpec detection;
  TrackingSpec tracking;
  std::vector<Phase> phases;          ///< index against these (empty: no labels, no scale fit)
  double tolerance_rel = 0.01;        ///< relative |g| tolerance of indexing
  double scale_range = 0.05;          ///< scale fit within 1 ± this (0 = off)
  double pixel_size_invA = 0;         ///< reciprocal pixel size [1/Å]; unused with a calibrant
  std::string calibrant;              ///< fit the pixel size to this phase's rings (CIF or built-in)
  std::string centre = "auto";        ///< auto, friedel, ring, beam or given
  double centre_x_px = 0, centre_y_px = 0;  ///< with centre == "given"
  double ring_radius_px = 0;          ///< ring radius guess (0: strongest ring)
  double distortion_threshold = DEFAULT_DISTORTION_THRESHOLD;
  bool distortion_given = false;      ///< a known a/b and axis angle
  double distortion_ratio = 1, distortion_angle_deg = 0;
  std::string distortion_text;        ///< how it was given, for distortion_source
  bool no_distortion_correction = false;
  bool beam_stop_auto = true;         ///< mask pixels below 20 % of the median (dilated 2 px)
  std::string mask_path;              ///< TIFF, nonzero = excluded (added to the beam-stop mask)
  double centre_mask_px = 16;         ///< ignore spots closer than this to the centre
  bool subtract_background = true;    ///< detect on frame − azimuthal background
  double bin_width = 0;               ///< covariate bin of the summary (0: range/8, rounded)
  int threads = 1;
  /// Under mpirun (parallel.hpp; every rank calls the steps): each rank reads and detects only
  /// the frames it owns (parallel::owns), rank 0 receives their spots in frame order, computes
  /// the geometry from them and sends it to the others, and links the tracks; the run's
  /// frames, observations, tracks and results are on rank 0 only.
  bool split_over_ranks = false;
};

/// Spots and radial profile of one frame.
struct FrameSpots {
  std::vector<DetectedSpot> spots;
  std::vector<double> profile;
};

/// Everything a track run measures. `results` are the sidecar's results in order.
struct TrackRun {
  PatternGeometry geometry;           ///< centre, ellipse, pixel size (after the scale fit)
  DetectorMask mask;
  std::string centre_source, distortion_source;
  std::vector<std::pair<std::string, Json>> results;
  std::shared_ptr<const SpotDetector> detector;
  std::shared_ptr<const RadialProfiler> profiler;
  std::vector<FrameSpots> frames;     ///< one per frame
  std::vector<int> empty_frames;      ///< constant frames, increasing
  std::vector<std::vector<SpotObservation>> observations;  ///< one list per frame
  std::vector<Track> tracks;
  bool scale_was_fitted = false;
  ScaleFit scale_fit;                 ///< valid when scale_was_fitted
  double scale_fitted = 1;
  double bin_width = 0, bin_origin = 0;
  std::vector<LifespanBin> bins;
};

/// Step 1: reference image (mean of up to 50 spread frames), beam-stop mask, centre (Friedel
/// pairs of up to 200 spread frames, direct beam, ring or given), distortion, calibration.
void find_track_geometry(const TrackInput& frames, const TrackSettings& settings, const WarnFn& warn,
                         TrackRun& run);
/// Step 2: spots in every frame (minus its azimuthal background) and tracks.
void detect_and_link_tracks(const TrackInput& frames, const TrackSettings& settings, const ProgressFn& progress,
                            const WarnFn& warn, TrackRun& run);
/// Step 3: calibration scale fitted to the phases' families, lifespans from `times`, labels,
/// summary bins. A one-frame movie lasts single_frame_s (0: unknown).
void finish_tracks(const TrackSettings& settings, const FrameTimes& times, double single_frame_s,
                   const WarnFn& warn, TrackRun& run);
/// The three steps.
TrackRun track_movie(const TrackInput& frames, const TrackSettings& settings, const FrameTimes& times,
                     double single_frame_s, const ProgressFn& progress, const WarnFn& warn);

/// Spots (and the radial profile, when a profiler is given) of frames get(0..n-1) on `threads`
/// workers; with subtract the spots are found on frame − azimuthal background.
std::vector<FrameSpots> detect_frames(std::size_t n, const std::function<Image(std::size_t)>& get,
                                      const SpotDetector& detector, const RadialProfiler* profiler, bool subtract,
                                      int threads, const ProgressFn& progress);
/// Detections as observations in reciprocal space, without those within min_radius_px of the centre.
std::vector<std::vector<SpotObservation>> spot_observations(const std::vector<FrameSpots>& frames,
                                                            const PatternGeometry& geometry, double min_radius_px);
/// Label of an index_spacings match: Indexed when exactly one candidate, else Ambiguous.
SpacingLabel label_from_match(const SpacingMatch& match);

}  // namespace epitem
