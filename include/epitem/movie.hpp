// Movies for in-situ TEM: frames from a multi-page TIFF or a folder of numbered TIFFs, their
// acquisition times (fps or a CSV) and an optional per-frame covariate (temperature, dose...).
#pragma once
#include <string>
#include <vector>

#include "epitem/image.hpp"
#include "epitem/image_file.hpp"

namespace epitem {

/// A movie opened for streaming: one multi-frame file (any format open_image_file reads) or a
/// folder of single-frame files taken in the numeric order of the last digit run in their names
/// (frame_2 before frame_10). Only headers are held; frame(i) reads one frame from disk, so a
/// command holds O(threads) frames, not the movie. frame() is safe from several threads.
class Movie {
public:
  explicit Movie(const std::string& path);
  std::size_t frame_count() const { return n_frames_; }
  int nx() const { return info_.nx; }
  int ny() const { return info_.ny; }
  /// Format, calibration and acquisition metadata (frame time...) of the (first) file.
  const ImageFileInfo& info() const { return info_; }
  /// Frame i with the movie's calibration; throws Error (naming the file) if its size differs.
  Image frame(std::size_t i) const;
  const std::string& path() const { return path_; }

private:
  std::string path_;
  ImageFileInfo info_;
  std::size_t n_frames_ = 0;
  std::unique_ptr<ImageFileReader> file_;   ///< a single multi-frame file
  std::vector<std::string> folder_files_;   ///< or one file per frame
};

/// Reads every frame of a Movie into memory (small movies and tests). Every frame must have the
/// same size; the pixel size is the first frame's (others must agree or be 0).
std::vector<Image> read_movie(const std::string& path);

/// Throws Error unless there are at least `min_frames` frames of one size ("what" names the
/// input in the message).
void require_movie(const std::vector<Image>& frames, std::size_t min_frames, const std::string& what);

/// Box-averages `factor`×`factor` pixel blocks (trailing rows/columns that do not fill a block
/// are dropped); the pixel sizes grow by `factor`. factor 1 returns a copy.
Image bin_image(const Image& image, int factor);

/// Per-frame times and an optional covariate sampled at each frame.
struct FrameTimes {
  std::vector<double> time_s;        ///< acquisition time of each frame [s], increasing
  std::string covariate_name;        ///< e.g. "temperature_C"; empty = no covariate
  std::vector<double> covariate;     ///< one value per frame, or empty
};

/// time_s[i] = i / fps_Hz.
FrameTimes frame_times_from_fps(std::size_t n_frames, double fps_Hz);

/// Reads a CSV (header line, comma-separated, '#' comments) with a column "time_s" (or
/// "time_ms"/"time_min") and, if `covariate_column` is not empty, that column. One row per
/// frame, in frame order; rows must match n_frames and times must increase.
FrameTimes read_frame_times_csv(const std::string& path, std::size_t n_frames,
                                const std::string& covariate_column = "");

/// A linear covariate ramp "START:RATE/s" (e.g. "400:1/s", "400:60/min", "25:0.5/ms"):
/// value_i = START + RATE · time_s[i]. Fills covariate (named `name`) in `times`.
void apply_covariate_ramp(FrameTimes& times, const std::string& spec, const std::string& name);

}  // namespace epitem
