#include "track_options.hpp"

#include <fstream>
#include <tuple>
#include <iterator>

#include "epitem/csv.hpp"
#include "epitem/error.hpp"
#include "epitem/output.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"

namespace epitem::cli {

namespace {

/// One value per frame from a CSV: header line, '#' comments, comma-separated; `column` or
/// else the last column. Fewer rows than frames is an error, extra rows are ignored (warned).
std::vector<double> read_covariate_csv(const std::string& path, std::string& column, size_t n_frames,
                                       const WarnFn& warn) {
  const CsvTable table = read_csv_table(path, "--covariate");
  if (column.empty())
    column = table.header.back();
  const int col = table.column(column);
  if (col < 0)
    fail(path, ": no column '", column, "' in the header line");
  std::vector<double> values;
  for (size_t r = 0; r < table.rows.size(); ++r) {
    const int line_no = table.line_numbers[r];
    if (int(table.rows[r].size()) <= col)
      fail(path, " line ", line_no, ": missing the '", column, "' value");
    const std::string& cell = table.rows[r][size_t(col)];
    try {
      values.push_back(std::stod(cell));
    } catch (const std::exception&) {
      fail(path, " line ", line_no, ": '", cell, "' is not a number");
    }
  }
  if (values.size() < n_frames)
    fail(path, ": ", values.size(), " covariate rows for a movie of ", n_frames,
         " frames; give one row per frame (or use --ramp START:RATE/s)");
  if (values.size() > n_frames) {
    warn(path + ": " + std::to_string(values.size()) + " rows for " + std::to_string(n_frames) +
         " frames; the extra rows are ignored");
    values.resize(n_frames);
  }
  return values;
}

/// Distortion a/b and major-axis angle from "RATIO,ANGLE_DEG" or from a JSON sidecar of
/// `epitem calibrate --rings` (keys distortion_ratio, distortion_angle_deg).
std::pair<double, double> parse_distortion(const std::string& text) {
  if (file_extension(text) == "json") {
    std::ifstream in(text);
    if (!in)
      fail(text, ": cannot read the --distortion calibration file");
    const std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto number = [&](const std::string& key) {
      const auto k = json.find("\"" + key + "\"");
      const auto colon = k == std::string::npos ? k : json.find(':', k);
      if (colon == std::string::npos)
        fail(text, ": no \"", key, "\" in this file; run `epitem calibrate --rings` on a ring pattern or give "
             "--distortion RATIO,ANGLE_DEG");
      try {
        return std::stod(json.substr(colon + 1));
      } catch (const std::exception&) {
        fail(text, ": \"", key, "\" is not a number; give --distortion RATIO,ANGLE_DEG");
      }
    };
    return {number("distortion_ratio"), number("distortion_angle_deg")};
  }
  const auto v = parse_quantity_list(text, Dimension::Dimensionless, "--distortion");
  if (v.size() != 2)
    throw po::error("--distortion needs RATIO,ANGLE_DEG (e.g. 1.01,30) or a calibrate .json file, got '" + text + "'");
  return {v[0], v[1]};
}

template <class T>
T value_or(const po::variables_map& vm, const char* name, T fallback) {
  return vm.count(name) ? vm[name].as<T>() : fallback;
}

}  // namespace

void add_track_options(po::options_description& opts) {
  opts.add_options()
    ("fps", po::value<double>(), "frame rate [frames/s] (default: the movie's stored frame time)")
    ("frame-times", po::value<std::string>(), "CSV with a time_s (or time_ms/time_min) column, one row per frame")
    ("covariate", po::value<std::string>(),
     "per-frame covariate: a CSV with one row per frame (column --covariate-column, default the last), "
     "or a column name of --frame-times")
    ("covariate-column", po::value<std::string>(), "column of the --covariate CSV")
    ("ramp", po::value<std::string>(), "linear covariate START:RATE/UNIT, e.g. 400:1/s (400 + 1 per second)")
    ("covariate-name", po::value<std::string>(), "name of the covariate (default: the column, or temperature_C for --ramp)")
    ("bin-width", po::value<double>(), "covariate bin of the lifespan summary [covariate unit] (default: range/8, rounded)")
    ("pixel-size", po::value<std::string>(), "reciprocal pixel size, e.g. 0.01/A or 0.1/nm (bare number: 1/Å)")
    ("camera-length", po::value<std::string>(), "camera length L (e.g. 20cm, 200mm) with --detector-pixel and --energy: Δg = pixel/(λL)")
    ("detector-pixel", po::value<std::string>(), "physical detector pixel (e.g. 14um)")
    ("energy", po::value<std::string>(), "beam energy for --camera-length (e.g. 200kV)")
    ("calibrant", po::value<std::string>(), "fit the pixel size to the rings of this phase (e.g. Au) in the first frames")
    ("phase", po::value<std::vector<std::string>>(), "phase to index against (repeat: --phase Fe3O4 --phase NiFe)")
    ("tolerance", po::value<double>()->default_value(0.01), "relative |g| tolerance of indexing (0.01 = 1 %)")
    ("scale-range", po::value<double>()->default_value(0.05),
     "with --phase: fit a global factor within 1 +- this to the pixel size so the most spots match the "
     "phases' families (calibrations are often 1-5 % off); 0 = trust the pixel size exactly")
    ("sigma-min", po::value<double>()->default_value(1.5), "smallest spot sigma [px]")
    ("sigma-max", po::value<double>()->default_value(4), "largest spot sigma [px]")
    ("scales", po::value<int>()->default_value(4), "number of LoG scales between them")
    ("snr", po::value<double>()->default_value(6), "detection threshold: LoG response / robust noise")
    ("max-step", po::value<double>()->default_value(3), "largest spot move between frames [px]")
    ("max-dg", po::value<double>()->default_value(0.02), "largest relative |g| change between frames")
    ("max-gap", po::value<int>()->default_value(2), "frames a spot may vanish and keep its track")
    ("min-frames", po::value<int>()->default_value(2), "drop tracks detected in fewer frames")
    ("centre", po::value<std::string>()->default_value("auto"),
     "pattern centre: auto (Friedel pairs, else direct beam), friedel, ring, beam, or X,Y [px]")
    ("ring-radius", po::value<double>(), "radius guess of the ring for the ellipse fit [px] (default: strongest ring)")
    ("distortion-threshold", po::value<double>()->default_value(DEFAULT_DISTORTION_THRESHOLD),
     "correct the ellipticity when a/b - 1 exceeds this")
    ("distortion", po::value<std::string>(),
     "known elliptical distortion: RATIO,ANGLE_DEG (a/b >= 1, major axis CCW from +x, y up) or the JSON "
     "sidecar of `epitem calibrate --rings` (default: from a ring, else from the spots)")
    ("no-distortion-correction", po::bool_switch(), "never correct the ellipticity (still reported)")
    ("beam-stop", po::value<std::string>()->default_value("auto"),
     "auto: mask pixels below 20 % of the median (dilated 2 px); none")
    ("mask", po::value<std::string>(), "TIFF, nonzero = excluded pixels (added to the beam-stop mask)")
    ("centre-mask", po::value<double>(), "ignore spots closer than this to the centre [px] (default 4 x sigma-max)")
    ("no-background", po::bool_switch(), "detect on the raw frames (default: minus the azimuthal mean)");
}

TrackRequest resolve_track_options(const po::variables_map& vm, int threads, RunRecord& rec) {
  TrackRequest r;
  TrackSettings& s = r.settings;
  const auto text = [&](const char* name) { return value_or<std::string>(vm, name, ""); };
  SpotDetectionSpec& dspec = s.detection;
  dspec.sigma_min_px = vm["sigma-min"].as<double>();
  dspec.sigma_max_px = vm["sigma-max"].as<double>();
  dspec.n_scales = vm["scales"].as<int>();
  dspec.snr_threshold = vm["snr"].as<double>();
  dspec.validate();
  TrackingSpec& tspec = s.tracking;
  tspec.max_step_px = vm["max-step"].as<double>();
  tspec.max_dg_rel = vm["max-dg"].as<double>();
  tspec.max_gap_frames = vm["max-gap"].as<int>();
  tspec.min_frames = vm["min-frames"].as<int>();
  tspec.validate();
  s.threads = threads;
  r.fps_given = vm.count("fps") > 0;
  r.fps = value_or<double>(vm, "fps", 0);
  r.times_csv = text("frame-times");
  r.covariate = text("covariate");
  r.covariate_column = text("covariate-column");
  r.covariate_name = text("covariate-name");
  r.ramp = text("ramp");
  r.phase_names = value_or<std::vector<std::string>>(vm, "phase", {});
  s.calibrant = text("calibrant");
  s.tolerance_rel = vm["tolerance"].as<double>();
  s.scale_range = vm["scale-range"].as<double>();
  s.bin_width = value_or<double>(vm, "bin-width", 0);
  s.ring_radius_px = value_or<double>(vm, "ring-radius", 0);
  s.distortion_threshold = vm["distortion-threshold"].as<double>();
  s.no_distortion_correction = vm["no-distortion-correction"].as<bool>();
  s.subtract_background = !vm["no-background"].as<bool>();
  s.mask_path = text("mask");
  const std::string centre = vm["centre"].as<std::string>(), beam_stop = vm["beam-stop"].as<std::string>(),
                    distortion = text("distortion");
  if (r.fps_given && vm.count("frame-times"))
    throw po::error("give exactly one of --fps or --frame-times, not both");
  if (r.fps_given && !(r.fps > 0))
    throw po::error("--fps must be > 0");
  if (!r.covariate.empty() && !r.ramp.empty())
    throw po::error("give --covariate or --ramp, not both");
  const int n_cal = int(vm.count("pixel-size")) + int(vm.count("camera-length")) + int(!s.calibrant.empty());
  if (n_cal > 1)
    throw po::error("give one of --pixel-size, --camera-length or --calibrant");
  if (vm.count("camera-length") && (!vm.count("detector-pixel") || !vm.count("energy")))
    throw po::error("--camera-length needs --detector-pixel and --energy");
  if (beam_stop != "auto" && beam_stop != "none")
    throw po::error("--beam-stop must be auto or none, got '" + beam_stop + "'");
  s.beam_stop_auto = beam_stop == "auto";
  if (!(s.tolerance_rel > 0 && s.tolerance_rel < 0.2))
    throw po::error("--tolerance must be in (0, 0.2)");
  if (!(s.scale_range >= 0 && s.scale_range < 0.5))
    throw po::error("--scale-range must be in [0, 0.5) (0 = off), got " + std::to_string(s.scale_range));
  double pixel_invA = 0;
  get_quantity(vm, "pixel-size", Dimension::InverseLength, pixel_invA);
  if (vm.count("pixel-size") && !(pixel_invA > 0))
    throw po::error("--pixel-size must be > 0");
  if (vm.count("camera-length")) {
    double L = 0, pix = 0, energy = 0;
    get_quantity(vm, "camera-length", Dimension::Length, L);
    get_quantity(vm, "detector-pixel", Dimension::Length, pix);
    get_quantity(vm, "energy", Dimension::Energy, energy, units::keV);
    pixel_invA = pixel_size_from_camera_length_invA(electron_wavelength_A(energy), L, pix);
  }
  s.pixel_size_invA = pixel_invA;
  s.centre_mask_px = value_or<double>(vm, "centre-mask", 4 * dspec.sigma_max_px);
  if (!distortion.empty()) {
    if (s.no_distortion_correction)
      throw po::error("give --distortion or --no-distortion-correction, not both");
    std::tie(s.distortion_ratio, s.distortion_angle_deg) = parse_distortion(distortion);
    distortion_ellipse(0, 0, s.distortion_ratio, s.distortion_angle_deg);  // validates
    s.distortion_given = true;
    s.distortion_text = distortion;
  }
  if (centre.find(',') != std::string::npos) {
    auto xy = parse_quantity_list(centre, Dimension::Dimensionless, "--centre");
    if (xy.size() != 2)
      throw po::error("--centre X,Y needs two numbers in px, got '" + centre + "'");
    s.centre = "given";
    s.centre_x_px = xy[0];
    s.centre_y_px = xy[1];
  } else if (centre != "auto" && centre != "friedel" && centre != "ring" && centre != "beam") {
    throw po::error("--centre must be auto, friedel, ring, beam or X,Y; got '" + centre + "'");
  } else {
    s.centre = centre;
  }

  if (r.fps > 0)
    rec.add("fps_Hz", r.fps, "1/s");
  if (!r.times_csv.empty())
    rec.add("frame_times", r.times_csv);
  if (!r.covariate.empty())
    rec.add("covariate", r.covariate);
  if (!r.ramp.empty())
    rec.add("ramp", r.ramp);
  rec.add("sigma_px", Json(std::vector<double>{dspec.sigma_min_px, dspec.sigma_max_px}));
  rec.add("scales", double(dspec.n_scales));
  rec.add("snr_threshold", dspec.snr_threshold);
  rec.add("max_step_px", tspec.max_step_px, "px");
  rec.add("max_dg_rel", tspec.max_dg_rel);
  rec.add("max_gap_frames", double(tspec.max_gap_frames));
  rec.add("min_frames", double(tspec.min_frames));
  rec.add("centre_method", centre);
  rec.add("beam_stop", beam_stop);
  rec.add("centre_mask_px", s.centre_mask_px, "px");
  rec.add("background", std::string(s.subtract_background ? "azimuthal mean subtracted" : "none"));
  rec.add("phases", Json(r.phase_names));
  rec.add("index_tolerance_rel", s.tolerance_rel);
  rec.add("scale_range", s.scale_range);
  if (pixel_invA > 0)
    rec.add("pixel_size_invA", pixel_invA, "1/Å");
  if (!s.calibrant.empty())
    rec.add("calibrant", s.calibrant);
  rec.add("threads", double(threads));
  return r;
}

void load_track_phases(TrackRequest& request) {
  for (const auto& name : request.phase_names)
    request.settings.phases.push_back(make_phase(read_crystal(name)));
}

FrameTimes track_frame_times(TrackRequest& r, const TrackInput& frames, double file_frame_time_s,
                             double file_pixel_size_invA, RunRecord& rec, const WarnFn& warn,
                             double& single_frame_s) {
  TrackSettings& s = r.settings;
  const std::string movie_path = frames.name();
  const int n_frames = int(frames.frame_count());
  if (n_frames < 1)
    fail(movie_path, ": no frames; give a movie file or a folder of numbered frames");
  // Frame times: the command line, else the movie's own frame time.
  double fps = r.fps;
  bool fps_known = r.times_csv.empty();
  if (!r.fps_given && r.times_csv.empty()) {
    if (file_frame_time_s > 0) {
      fps = 1.0 / file_frame_time_s;
      rec.add("fps_Hz", fps, "1/s");
      rec.add("fps_source", std::string("movie file (frame time ") + std::to_string(file_frame_time_s) + " s)");
    } else if (n_frames == 1) {
      fps = 1;  // one frame: no lifespans to time (0 s)
      fps_known = false;
      rec.add("fps_source", std::string("none needed for a single frame"));
    } else {
      throw po::error("give exactly one of --fps or --frame-times: " + movie_path + " stores no frame time");
    }
  } else if (r.fps_given) {
    rec.add("fps_source", std::string("--fps"));
  }
  if (s.pixel_size_invA <= 0 && s.calibrant.empty() && file_pixel_size_invA > 0) {
    s.pixel_size_invA = file_pixel_size_invA;
    rec.add("pixel_size_invA", s.pixel_size_invA, "1/Å");
    rec.add("pixel_size_source", std::string("movie file calibration"));
  }
  if (!(s.pixel_size_invA > 0) && s.calibrant.empty())
    fail(movie_path, ": no reciprocal calibration; give --pixel-size (e.g. 0.01/A), --camera-length with "
         "--detector-pixel and --energy, or --calibrant Au");
  if (n_frames == 1 && s.tracking.min_frames > 1) {
    s.tracking.min_frames = 1;  // every spot of a single pattern is kept
    rec.add("min_frames_used", 1.0);
  }

  FrameTimes times = r.times_csv.empty()
                         ? frame_times_from_fps(size_t(n_frames), fps)
                         : read_frame_times_csv(r.times_csv, size_t(n_frames),
                                                r.covariate.empty() || file_extension(r.covariate) == "csv"
                                                    ? ""
                                                    : r.covariate);
  if (!r.ramp.empty())
    apply_covariate_ramp(times, r.ramp, r.covariate_name.empty() ? "temperature_C" : r.covariate_name);
  if (!r.covariate.empty() && file_extension(r.covariate) == "csv") {
    std::string col = r.covariate_column;
    times.covariate = read_covariate_csv(r.covariate, col, size_t(n_frames), warn);
    times.covariate_name = r.covariate_name.empty() ? col : r.covariate_name;
  } else if (!r.covariate.empty() && !r.covariate_name.empty()) {
    times.covariate_name = r.covariate_name;
  }
  // A one-frame movie lasts one frame interval when the frame rate is known.
  single_frame_s = fps_known ? 1.0 / fps : 0.0;
  return times;
}

std::tuple<std::size_t, int, int> record_track_results(const TrackRun& run, double seconds, RunRecord& rec) {
  const int n_frames = int(run.frames.size());
  size_t n_det = 0;
  for (const auto& f : run.observations)
    n_det += f.size();
  int n_indexed = 0, n_ambiguous = 0;
  for (const auto& t : run.tracks) {
    n_indexed += t.label.status == LabelStatus::Indexed;
    n_ambiguous += t.label.status == LabelStatus::Ambiguous;
  }
  rec.result("frames", double(n_frames));
  rec.result("empty_frames", Json(run.empty_frames));
  rec.result("detections", double(n_det));
  rec.result("tracks", double(run.tracks.size()));
  rec.result("tracks_indexed", double(n_indexed));
  rec.result("tracks_ambiguous", double(n_ambiguous));
  rec.result("detection_tracking_s", seconds);
  rec.result("frames_per_s", n_frames / seconds);
  return {n_det, n_indexed, n_ambiguous};
}

}  // namespace epitem::cli
