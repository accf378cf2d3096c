// Options of `epitem track` (everything but the movie, the output paths and --bench), shared by
// the CLI (apps/cmd_track.cpp) and the Python module (`epitem.track(**options)`), so both parse,
// check and record them with the same code.
#pragma once
#include <string>
#include <tuple>
#include <vector>

#include "cli.hpp"
#include "epitem/track_pipeline.hpp"

namespace epitem::cli {

/// Adds the analysis options of `epitem track` (frame times, covariate, calibration, phases,
/// detection, linking, centre, distortion, masks) to `opts`.
void add_track_options(po::options_description& opts);

/// The options resolved before the movie is opened.
struct TrackRequest {
  TrackSettings settings;                ///< phases still empty: load_track_phases()
  std::vector<std::string> phase_names;
  bool fps_given = false;
  double fps = 0;                        ///< [frames/s]
  std::string times_csv, covariate, covariate_column, covariate_name, ramp;
};

/// Checks the options (po::error on usage, Error on bad values) and records them in `rec` (the
/// caller adds "movie" first). `threads` as resolved from --threads.
TrackRequest resolve_track_options(const po::variables_map& vm, int threads, RunRecord& rec);

/// Reads the --phase structures into request.settings.phases.
void load_track_phases(TrackRequest& request);

/// The frame times and covariate of `frames`, with the frame rate and the pixel size taken from
/// the file when the options do not give them (file_frame_time_s, file_pixel_size_invA: 0 =
/// unknown); sets request.settings.pixel_size_invA and single_frame_s (how long a one-frame
/// movie lasts: one frame interval when the frame rate is known, else 0).
FrameTimes track_frame_times(TrackRequest& request, const TrackInput& frames, double file_frame_time_s,
                             double file_pixel_size_invA, RunRecord& rec, const WarnFn& warn,
                             double& single_frame_s);

/// The sidecar's closing results (frames, empty_frames, detections, tracks, tracks_indexed,
/// tracks_ambiguous, detection_tracking_s, frames_per_s); returns {detections, indexed, ambiguous}.
std::tuple<std::size_t, int, int> record_track_results(const TrackRun& run, double seconds, RunRecord& rec);

}  // namespace epitem::cli
