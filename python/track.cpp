// epitem.track: the `epitem track` pipeline (src/track_pipeline.cpp) on a movie file or a numpy
// stack, with the CLI's options parsed by the CLI's own code (apps/track_options.cpp). Returns
// the CLI's tables as CSV texts; epitem/__init__.py turns them into dicts of numpy arrays.
#include <chrono>
#include <cstring>

#include "../apps/track_options.hpp"
#include "bindings.hpp"
#include "epitem/error.hpp"
#include "epitem/movie.hpp"
#include "epitem/tracking.hpp"

namespace epitem::python {

namespace {

namespace po = boost::program_options;
using FloatStack = py::array_t<float, py::array::c_style | py::array::forcecast>;

/// A numpy (frames, ny, nx) or (ny, nx) float32 array as the frames of a movie (rows as stored:
/// row 0 = top, as read_image returns them). The array must outlive the source.
class StackFrames : public TrackInput {
public:
  explicit StackFrames(const FloatStack& stack) : stack_(stack) {
    if (stack.ndim() != 2 && stack.ndim() != 3)
      throw py::value_error("movie must be a path or an array (frames, ny, nx) or (ny, nx), got " +
                            std::to_string(stack.ndim()) + " dimensions");
    frames_ = stack.ndim() == 3 ? std::size_t(stack.shape(0)) : 1;
    ny_ = int(stack.shape(stack.ndim() - 2));
    nx_ = int(stack.shape(stack.ndim() - 1));
    data_ = stack.data();
  }
  std::size_t frame_count() const override { return frames_; }
  int nx() const override { return nx_; }
  int ny() const override { return ny_; }
  Image frame(std::size_t i) const override {
    Image im(nx_, ny_);
    std::memcpy(im.pixels.data(), data_ + i * im.size(), im.size() * sizeof(float));
    return im;
  }
  std::string name() const override { return "array"; }

private:
  FloatStack stack_;
  const float* data_ = nullptr;
  std::size_t frames_ = 0;
  int nx_ = 0, ny_ = 0;
};

py::tuple track(const py::object& movie, int threads, const py::object& progress, const py::kwargs& kwargs) {
  // --phase repeats on the command line: a name or a sequence of names here.
  py::kwargs options;
  std::vector<std::string> phase_args;
  for (const auto& [key, value] : kwargs) {
    if (py::str(key).cast<std::string>() == "phase") {
      if (py::isinstance<py::str>(value))
        phase_args.push_back("--phase=" + value.cast<std::string>());
      else if (!value.is_none())
        for (const auto& p : value.cast<py::sequence>())
          phase_args.push_back("--phase=" + py::str(p).cast<std::string>());
    } else {
      options[key] = value;
    }
  }
  po::options_description opts("track options");
  cli::add_track_options(opts);
  const po::variables_map vm = parse_options(opts, options, "track", phase_args);
  const int n_threads = threads > 0 ? threads : default_thread_count();

  const bool is_path = py::isinstance<py::str>(movie) || py::hasattr(movie, "__fspath__");
  const std::string path = is_path ? py::str(movie).cast<std::string>() : std::string();
  FloatStack stack;
  if (!is_path)
    stack = movie.cast<FloatStack>();
  cli::RunRecord rec("track");
  rec.add("movie", is_path ? path : "array (" + std::to_string(stack.ndim() == 3 ? stack.shape(0) : 1) + " frames)");
  cli::TrackRequest request = cli::resolve_track_options(vm, n_threads, rec);
  const ProgressFn hook = progress_hook(progress);
  const WarnFn warn = warn_hook();
  std::string tracks, detections, summary;
  {
    py::gil_scoped_release release;
    cli::load_track_phases(request);
    std::unique_ptr<Movie> file;
    std::unique_ptr<TrackInput> frames;
    double frame_time_s = 0, pixel_size_invA = 0;
    if (is_path) {
      file = std::make_unique<Movie>(path);
      frames = std::make_unique<MovieFrames>(*file);
      frame_time_s = file->info().frame_time_s;
      pixel_size_invA = file->info().pixel_size_invA;
    } else {
      frames = std::make_unique<StackFrames>(stack);
    }
    double single_frame_s = 0;
    const FrameTimes times =
        cli::track_frame_times(request, *frames, frame_time_s, pixel_size_invA, rec, warn, single_frame_s);
    TrackRun run;
    find_track_geometry(*frames, request.settings, warn, run);
    const auto t0 = std::chrono::steady_clock::now();
    detect_and_link_tracks(*frames, request.settings, hook, warn, run);
    finish_tracks(request.settings, times, single_frame_s, warn, run);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (const auto& [key, value] : run.results)
      rec.result(key, value);
    cli::record_track_results(run, seconds, rec);
    tracks = tracks_csv(run.tracks);
    detections = detections_csv(run.observations, times.time_s);
    summary = lifespan_summary_csv(run.bins);
  }
  return py::make_tuple(tracks, detections, summary, rec.to_json().dump(0));
}

}  // namespace

void bind_track(py::module_& m) {
  m.def("_track", &track, py::arg("movie"), py::kw_only(), py::arg("threads") = 0, py::arg("progress") = py::none(),
        "The `epitem track` pipeline: (tracks CSV, detections CSV, summary CSV, sidecar JSON) as texts; "
        "epitem.track() returns them as arrays.");
}

}  // namespace epitem::python
