// `epitem track MOVIE`: in-situ SAED movie → pattern centre, ellipse and calibration, LoG spot
// detection on every frame (rings and diffuse background removed by the azimuthal mean), tracks
// with lifespans, {hkl} labels, a per-covariate-bin summary, a Fig. 3n-style PNG, radial profiles.
// `epitem track --bench 2048` times detection + tracking on synthetic 16-bit frames.
#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "cli.hpp"
#include "epitem/image_file.hpp"
#include "epitem/csv.hpp"
#include "epitem/error.hpp"
#include "epitem/indexing.hpp"
#include "epitem/movie.hpp"
#include "epitem/output.hpp"
#include "epitem/pattern_geometry.hpp"
#include "epitem/png.hpp"
#include "epitem/spot_detection.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/tracking.hpp"
#include "epitem/units.hpp"

namespace epitem::cli {

namespace {

std::string stem_with(const std::string& path, const std::string& suffix) {
  auto dot = path.find_last_of('.');
  auto slash = path.find_last_of('/');
  std::string base = (dot != std::string::npos && (slash == std::string::npos || dot > slash)) ? path.substr(0, dot) : path;
  return base + suffix;
}

std::string fixed(double v, int digits) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << v;
  return os.str();
}

std::string hkl_text(const Vec3& h) {
  std::ostringstream os;
  bool compact = std::abs(h.x()) <= 9 && std::abs(h.y()) <= 9 && std::abs(h.z()) <= 9;
  for (int i = 0; i < 3; ++i)
    os << (i && !compact ? " " : "") << std::lround(h(i));
  return os.str();
}

/// Label from the indexing module: Indexed when exactly one candidate, else Ambiguous.
SpacingLabel label_from_match(const SpacingMatch& m) {
  SpacingLabel label;
  if (!m.matched())
    return label;
  label.error_rel = m.candidates.front().error_rel;
  label.status = m.ambiguous ? LabelStatus::Ambiguous : LabelStatus::Indexed;
  for (size_t i = 0; i < m.candidates.size(); ++i) {
    const auto& c = m.candidates[i];
    if (i && !m.ambiguous)
      break;
    label.phase += (i ? "|" : "") + c.phase_name;
    std::string h;
    for (size_t k = 0; k < c.hkl.size(); ++k)
      h += (k ? "/" : "") + hkl_text(c.hkl[k]);
    label.hkl += (i ? "|" : "") + h;
  }
  return label;
}

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

/// Synthetic 16-bit SAED-like frames: 150 Friedel pairs (σ = 2.5 px) on a diffuse background,
/// Poisson counts. Detection cost depends on the size, not on the content.
std::vector<Image> bench_frames(int n, int frames) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> u(0, 1);
  Image base(n, n);
  const double c = 0.5 * n;
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x)
      base.at(x, y) = float(50 + 2000 * std::exp(-std::hypot(x - c, y - c) / (0.1 * n)));
  std::vector<Image> out;
  for (int f = 0; f < frames; ++f) {
    Image im = base;
    std::mt19937 spot_rng(7);  // the same spots in every frame: tracks span the movie
    for (int k = 0; k < 150; ++k) {
      double r = (0.1 + 0.35 * u(spot_rng)) * n, t = 2 * PI * u(spot_rng);
      for (int s : {-1, 1}) {
        double sx = c + s * r * std::cos(t), sy = c + s * r * std::sin(t);
        for (int y = int(sy) - 8; y <= int(sy) + 8; ++y)
          for (int x = int(sx) - 8; x <= int(sx) + 8; ++x)
            im.at(x, y) += float(300 * std::exp(-0.5 * ((x - sx) * (x - sx) + (y - sy) * (y - sy)) / 6.25));
      }
    }
    for (float& v : im.pixels)
      v = float(std::min(65535, std::poisson_distribution<int>(double(v))(rng)));
    out.push_back(std::move(im));
  }
  return out;
}

struct FrameResult {
  std::vector<DetectedSpot> spots;
  std::vector<double> profile;
};

/// Runs work(k) for k < n on `threads` workers; each worker reads its own frames, so a movie
/// is held O(threads) frames at a time. The first exception is rethrown.
void parallel_for(size_t n, int threads, const std::function<void(size_t)>& work, const ProgressFn& progress,
                  const std::string& what) {
  std::atomic<size_t> next{0}, done{0};
  std::mutex progress_mutex;
  std::exception_ptr error;
  auto worker = [&]() {
    try {
      for (size_t i; (i = next++) < n;) {
        work(i);
        size_t d = ++done;
        if (progress) {
          std::lock_guard<std::mutex> lock(progress_mutex);
          progress(d, n, what);
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(progress_mutex);
      if (!error)
        error = std::current_exception();
      next = n;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads && size_t(t) < n; ++t)
    pool.emplace_back(worker);
  worker();
  for (auto& t : pool)
    t.join();
  if (error)
    std::rethrow_exception(error);
}

/// Detection (and the radial profile) of frames get(0..n-1).
std::vector<FrameResult> detect_all(size_t n, const std::function<Image(size_t)>& get, const SpotDetector& detector,
                                    const RadialProfiler* profiler, bool subtract, int threads,
                                    const ProgressFn& progress) {
  std::vector<FrameResult> results(n);
  parallel_for(n, threads, [&](size_t i) {
    const Image frame = get(i);
    FrameResult& r = results[i];
    if (profiler && subtract)
      r.spots = detector.detect(profiler->subtract_profile(frame, &r.profile));
    else {
      r.spots = detector.detect(frame);
      if (profiler)
        r.profile = profiler->profile(frame);
    }
  }, progress, "detecting spots");
  return results;
}

/// Up to max_n frame indices spread evenly over the movie (all when it has fewer).
std::vector<size_t> spread_frames(size_t n_frames, size_t max_n) {
  std::vector<size_t> idx;
  const size_t n = std::min(n_frames, max_n);
  for (size_t k = 0; k < n; ++k)
    idx.push_back(n == n_frames ? k : k * (n_frames - 1) / std::max<size_t>(1, n - 1));
  return idx;
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

std::vector<std::vector<SpotObservation>> observations(const std::vector<FrameResult>& results,
                                                       const PatternGeometry& geom, double min_radius_px) {
  std::vector<std::vector<SpotObservation>> frames(results.size());
  for (size_t f = 0; f < results.size(); ++f)
    for (const auto& d : results[f].spots) {
      Vec2 u = geom.corrected_offset_px(d.x_px, d.y_px);
      if (u.norm() < min_radius_px)
        continue;  // the direct beam and its halo
      SpotObservation o;
      o.frame = int(f);
      o.x_px = d.x_px;
      o.y_px = d.y_px;
      o.gx_invA = u.x() * geom.pixel_size_invA;
      o.gy_invA = u.y() * geom.pixel_size_invA;
      o.intensity = d.intensity;
      o.snr = d.snr;
      o.sigma_px = d.sigma_px;
      frames[f].push_back(o);
    }
  return frames;
}

int run_bench(int n, int n_frames, const SpotDetectionSpec& spec, int threads) {
  if (n < 64 || n_frames < 2)
    throw po::error("--bench needs a frame size >= 64 and --bench-frames >= 2");
  std::cout << "# track benchmark: " << n_frames << " synthetic 16-bit frames of " << n << "x" << n
            << " px, " << threads << " thread(s), sigma " << spec.sigma_min_px << "-" << spec.sigma_max_px
            << " px in " << spec.n_scales << " scales\n";
  const std::vector<Image> frames = bench_frames(n, n_frames);
  PatternGeometry geom;
  geom.ellipse = {0.5 * n, 0.5 * n, 1, 1, 0};
  geom.pixel_size_invA = 1.0 / n;
  const DetectorMask mask = circle_mask(n, n, 0.5 * n, 0.5 * n, 0.05 * n);
  const auto t0 = std::chrono::steady_clock::now();
  const std::clock_t c0 = std::clock();
  SpotDetector detector(n, n, spec, mask);
  RadialProfiler profiler(n, n, geom, mask, 1.0);
  const auto t1 = std::chrono::steady_clock::now();
  const std::clock_t c1 = std::clock();
  auto results = detect_all(frames.size(), [&](size_t i) { return frames[i]; }, detector, &profiler, true, threads, {});
  auto obs = observations(results, geom, 0);
  auto tracks = link_tracks(obs, TrackingSpec{});
  const auto t2 = std::chrono::steady_clock::now();
  const std::clock_t c2 = std::clock();
  const double setup = std::chrono::duration<double>(t1 - t0).count();
  const double wall = std::chrono::duration<double>(t2 - t1).count();
  const double cpu = double(c2 - c1) / CLOCKS_PER_SEC;
  size_t n_spots = 0;
  for (const auto& r : results)
    n_spots += r.spots.size();
  std::cout << std::setprecision(4) << "# setup (masks, pixel→radius map) " << setup << " s (once per movie), CPU "
            << double(c1 - c0) / CLOCKS_PER_SEC << " s\n"
            << "# detection + tracking: " << wall << " s wall for " << n_frames << " frames = "
            << n_frames / wall << " frames/s; CPU " << cpu / n_frames << " s/frame (all threads)\n"
            << "# " << double(n_spots) / n_frames << " spots/frame, " << tracks.size() << " tracks\n"
            << "# idle-machine estimate: " << threads * n_frames / cpu
            << " frames/s (CPU time spread over the threads; wall time depends on machine load)\n";
  return EXIT_OK;
}

}  // namespace

int track_main(int argc, char** argv) {
  return run_guarded("track", [&]() -> int {
    po::options_description opts("track options");
    std::string movie_path, out, detections_path, png, profile_path, times_csv, covariate, covariate_column,
        covariate_name, ramp, centre = "auto", beam_stop = "auto", mask_path, calibrant, summary_path, distortion;
    std::vector<std::string> phase_names;
    double fps = 0, snr = 6, sigma_min = 1.5, sigma_max = 4, max_step = 3, max_dg = 0.02, tolerance = 0.01,
           bin_width = 0, ring_radius = 0, scale_range = 0.05, distortion_threshold = DEFAULT_DISTORTION_THRESHOLD, centre_mask = -1;
    int scales = 4, max_gap = 2, min_frames = 2, bench = 0, bench_frames_n = 20;
    bool no_background = false, no_distortion = false;
    opts.add_options()
      ("movie", po::value<std::string>(&movie_path), "movie file (TIFF, DM, SER, EMD, MRC...) or folder of numbered frames; "
       "one frame is fine")
      ("out,o", po::value<std::string>(&out), "tracks CSV (+ OUT_summary.csv and the JSON sidecar)")
      ("fps", po::value<double>(&fps), "frame rate [frames/s] (default: the movie's stored frame time)")
      ("frame-times", po::value<std::string>(&times_csv), "CSV with a time_s (or time_ms/time_min) column, one row per frame")
      ("covariate", po::value<std::string>(&covariate),
       "per-frame covariate: a CSV with one row per frame (column --covariate-column, default the last), "
       "or a column name of --frame-times")
      ("covariate-column", po::value<std::string>(&covariate_column), "column of the --covariate CSV")
      ("ramp", po::value<std::string>(&ramp), "linear covariate START:RATE/UNIT, e.g. 400:1/s (400 + 1 per second)")
      ("covariate-name", po::value<std::string>(&covariate_name), "name of the covariate (default: the column, or temperature_C for --ramp)")
      ("bin-width", po::value<double>(&bin_width), "covariate bin of the lifespan summary [covariate unit] (default: range/8, rounded)")
      ("pixel-size", po::value<std::string>(), "reciprocal pixel size, e.g. 0.01/A or 0.1/nm (bare number: 1/Å)")
      ("camera-length", po::value<std::string>(), "camera length L (e.g. 20cm, 200mm) with --detector-pixel and --energy: Δg = pixel/(λL)")
      ("detector-pixel", po::value<std::string>(), "physical detector pixel (e.g. 14um)")
      ("energy", po::value<std::string>(), "beam energy for --camera-length (e.g. 200kV)")
      ("calibrant", po::value<std::string>(&calibrant), "fit the pixel size to the rings of this phase (e.g. Au) in the first frames")
      ("phase", po::value<std::vector<std::string>>(&phase_names), "phase to index against (repeat: --phase Fe3O4 --phase NiFe)")
      ("tolerance", po::value<double>(&tolerance)->default_value(0.01), "relative |g| tolerance of indexing (0.01 = 1 %)")
      ("scale-range", po::value<double>(&scale_range)->default_value(0.05),
       "with --phase: fit a global factor within 1 +- this to the pixel size so the most spots match the "
       "phases' families (calibrations are often 1-5 % off); 0 = trust the pixel size exactly")
      ("sigma-min", po::value<double>(&sigma_min)->default_value(1.5), "smallest spot sigma [px]")
      ("sigma-max", po::value<double>(&sigma_max)->default_value(4), "largest spot sigma [px]")
      ("scales", po::value<int>(&scales)->default_value(4), "number of LoG scales between them")
      ("snr", po::value<double>(&snr)->default_value(6), "detection threshold: LoG response / robust noise")
      ("max-step", po::value<double>(&max_step)->default_value(3), "largest spot move between frames [px]")
      ("max-dg", po::value<double>(&max_dg)->default_value(0.02), "largest relative |g| change between frames")
      ("max-gap", po::value<int>(&max_gap)->default_value(2), "frames a spot may vanish and keep its track")
      ("min-frames", po::value<int>(&min_frames)->default_value(2), "drop tracks detected in fewer frames")
      ("centre", po::value<std::string>(&centre)->default_value("auto"),
       "pattern centre: auto (Friedel pairs, else direct beam), friedel, ring, beam, or X,Y [px]")
      ("ring-radius", po::value<double>(&ring_radius), "radius guess of the ring for the ellipse fit [px] (default: strongest ring)")
      ("distortion-threshold", po::value<double>(&distortion_threshold)->default_value(DEFAULT_DISTORTION_THRESHOLD),
       "correct the ellipticity when a/b - 1 exceeds this")
      ("distortion", po::value<std::string>(&distortion),
       "known elliptical distortion: RATIO,ANGLE_DEG (a/b >= 1, major axis CCW from +x, y up) or the JSON "
       "sidecar of `epitem calibrate --rings` (default: from a ring, else from the spots)")
      ("no-distortion-correction", po::bool_switch(&no_distortion), "never correct the ellipticity (still reported)")
      ("beam-stop", po::value<std::string>(&beam_stop)->default_value("auto"),
       "auto: mask pixels below 20 % of the median (dilated 2 px); none")
      ("mask", po::value<std::string>(&mask_path), "TIFF, nonzero = excluded pixels (added to the beam-stop mask)")
      ("centre-mask", po::value<double>(&centre_mask), "ignore spots closer than this to the centre [px] (default 4 x sigma-max)")
      ("no-background", po::bool_switch(&no_background), "detect on the raw frames (default: minus the azimuthal mean)")
      ("detections", po::value<std::string>(&detections_path), "per-frame detections CSV with track ids")
      ("summary", po::value<std::string>(&summary_path), "lifespan summary CSV (default OUT_summary.csv)")
      ("png", po::value<std::string>(&png), "Fig. 3n-style PNG: covariate vs |g|, colour/size = lifespan")
      ("profile", po::value<std::string>(&profile_path), "radial profiles CSV (+ .tif image frame x |g|, .png, _peaks.csv)")
      ("bench", po::value<int>(&bench), "benchmark: time detection + tracking on synthetic N x N frames, write nothing")
      ("bench-frames", po::value<int>(&bench_frames_n)->default_value(20), "frames for --bench");
    po::positional_options_description pos;
    pos.add("movie", 1);
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(argc, argv,
                            "usage: epitem track MOVIE [--fps F | --frame-times t.csv] --out tracks.csv\n"
                            "         [--covariate temperature.csv | --ramp 400:1/s] [--pixel-size 0.01/A | "
                            "--camera-length 20cm --detector-pixel 14um --energy 200kV | --calibrant Au]\n"
                            "         [--phase Fe3O4 --phase NiFe] [--detections det.csv] [--png lifespans.png] "
                            "[--profile profile.csv]\n"
                            "Spot lifespans in an in-situ SAED movie: centre (Friedel pairs / ring), ellipse, "
                            "LoG detection, tracking, {hkl}.\n"
                            "Benchmark: epitem track --bench 2048 [--bench-frames 20] [--threads 2]",
                            opts, pos, vm, common))
      return EXIT_OK;
    SpotDetectionSpec dspec;
    dspec.sigma_min_px = sigma_min;
    dspec.sigma_max_px = sigma_max;
    dspec.n_scales = scales;
    dspec.snr_threshold = snr;
    dspec.validate();
    TrackingSpec tspec;
    tspec.max_step_px = max_step;
    tspec.max_dg_rel = max_dg;
    tspec.max_gap_frames = max_gap;
    tspec.min_frames = min_frames;
    tspec.validate();
    const int threads = common.threads > 0 ? common.threads : default_thread_count();
    if (bench > 0)
      return run_bench(bench, bench_frames_n, dspec, threads);
    if (movie_path.empty())
      throw po::error("missing MOVIE (a multi-page TIFF or a folder of TIFF frames)");
    if (out.empty())
      throw po::error("missing --out tracks.csv");
    if (vm.count("fps") && vm.count("frame-times"))
      throw po::error("give exactly one of --fps or --frame-times, not both");
    if (vm.count("fps") && !(fps > 0))
      throw po::error("--fps must be > 0");
    if (!covariate.empty() && !ramp.empty())
      throw po::error("give --covariate or --ramp, not both");
    const int n_cal = int(vm.count("pixel-size")) + int(vm.count("camera-length")) + int(!calibrant.empty());
    if (n_cal > 1)
      throw po::error("give one of --pixel-size, --camera-length or --calibrant");
    if (vm.count("camera-length") && (!vm.count("detector-pixel") || !vm.count("energy")))
      throw po::error("--camera-length needs --detector-pixel and --energy");
    if (beam_stop != "auto" && beam_stop != "none")
      throw po::error("--beam-stop must be auto or none, got '" + beam_stop + "'");
    if (!(tolerance > 0 && tolerance < 0.2))
      throw po::error("--tolerance must be in (0, 0.2)");
    if (!(scale_range >= 0 && scale_range < 0.5))
      throw po::error("--scale-range must be in [0, 0.5) (0 = off), got " + std::to_string(scale_range));
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
    if (centre_mask < 0)
      centre_mask = 4 * sigma_max;
    std::pair<double, double> given_distortion{0, 0};
    if (!distortion.empty()) {
      if (no_distortion)
        throw po::error("give --distortion or --no-distortion-correction, not both");
      given_distortion = parse_distortion(distortion);
      distortion_ellipse(0, 0, given_distortion.first, given_distortion.second);  // validates
    }

    RunRecord rec("track");
    rec.add("movie", movie_path);
    if (fps > 0)
      rec.add("fps_Hz", fps, "1/s");
    if (!times_csv.empty())
      rec.add("frame_times", times_csv);
    if (!covariate.empty())
      rec.add("covariate", covariate);
    if (!ramp.empty())
      rec.add("ramp", ramp);
    rec.add("sigma_px", Json(std::vector<double>{sigma_min, sigma_max}));
    rec.add("scales", double(scales));
    rec.add("snr_threshold", snr);
    rec.add("max_step_px", max_step, "px");
    rec.add("max_dg_rel", max_dg);
    rec.add("max_gap_frames", double(max_gap));
    rec.add("min_frames", double(min_frames));
    rec.add("centre_method", centre);
    rec.add("beam_stop", beam_stop);
    rec.add("centre_mask_px", centre_mask, "px");
    rec.add("background", std::string(no_background ? "none" : "azimuthal mean subtracted"));
    rec.add("phases", Json(phase_names));
    rec.add("index_tolerance_rel", tolerance);
    rec.add("scale_range", scale_range);
    if (pixel_invA > 0)
      rec.add("pixel_size_invA", pixel_invA, "1/Å");
    if (!calibrant.empty())
      rec.add("calibrant", calibrant);
    rec.add("threads", double(threads));
    if (common.dry_run) {
      rec.echo(std::cout);
      std::cout << "# dry run: streams the movie (up to 50 + 200 frames read for the geometry, then every "
                   "frame once), ~6 frames of float work space per thread; nothing computed\n";
      return EXIT_OK;
    }

    // Phases (indexing module: kinematic reflection families).
    std::vector<Phase> phases;
    for (const auto& name : phase_names)
      phases.push_back(make_phase(read_crystal(name)));

    const Movie movie(movie_path);
    const int n_frames = int(movie.frame_count());
    if (n_frames < 1)
      fail(movie_path, ": no frames; give a movie file or a folder of numbered frames");
    const int nx = movie.nx(), ny = movie.ny();
    auto read_frame = [&](size_t i) {
      Image im = movie.frame(i);
      require_finite(im, movie_path + " frame " + std::to_string(i));
      return im;
    };
    const WarnFn warn = warn_to_stderr();
    // Frame times: the command line, else the movie's own frame time.
    bool fps_known = times_csv.empty();
    if (!vm.count("fps") && times_csv.empty()) {
      if (movie.info().frame_time_s > 0) {
        fps = 1.0 / movie.info().frame_time_s;
        rec.add("fps_Hz", fps, "1/s");
        rec.add("fps_source", std::string("movie file (frame time ") + std::to_string(movie.info().frame_time_s) + " s)");
      } else if (n_frames == 1) {
        fps = 1;  // one frame: no lifespans to time (0 s)
        fps_known = false;
        rec.add("fps_source", std::string("none needed for a single frame"));
      } else {
        throw po::error("give exactly one of --fps or --frame-times: " + movie_path + " stores no frame time");
      }
    } else if (vm.count("fps")) {
      rec.add("fps_source", std::string("--fps"));
    }
    if (pixel_invA <= 0 && calibrant.empty() && movie.info().pixel_size_invA > 0) {
      pixel_invA = movie.info().pixel_size_invA;
      rec.add("pixel_size_invA", pixel_invA, "1/Å");
      rec.add("pixel_size_source", std::string("movie file calibration"));
    }
    if (!(pixel_invA > 0) && calibrant.empty())
      fail(movie_path, ": no reciprocal calibration; give --pixel-size (e.g. 0.01/A), --camera-length with "
           "--detector-pixel and --energy, or --calibrant Au");
    if (n_frames == 1 && min_frames > 1) {
      tspec.min_frames = 1;  // every spot of a single pattern is kept
      rec.add("min_frames_used", 1.0);
    }

    FrameTimes times = times_csv.empty()
                           ? frame_times_from_fps(size_t(n_frames), fps)
                           : read_frame_times_csv(times_csv, size_t(n_frames),
                                                  covariate.empty() || file_extension(covariate) == "csv" ? "" : covariate);
    if (!ramp.empty())
      apply_covariate_ramp(times, ramp, covariate_name.empty() ? "temperature_C" : covariate_name);
    if (!covariate.empty() && file_extension(covariate) == "csv") {
      std::string col = covariate_column;
      times.covariate = read_covariate_csv(covariate, col, size_t(n_frames), warn);
      times.covariate_name = covariate_name.empty() ? col : covariate_name;
    } else if (!covariate.empty() && !covariate_name.empty()) {
      times.covariate_name = covariate_name;
    }

    // Reference image: mean of up to 50 frames spread over the movie (the beam stop does not
    // move; spread frames see more of the spots than the first ones).
    const std::vector<size_t> ref_frames = spread_frames(size_t(n_frames), 50);
    std::vector<double> ref_sum(size_t(nx) * size_t(ny), 0.0);
    std::mutex ref_mutex;
    std::atomic<int> n_constant{0};
    parallel_for(ref_frames.size(), threads, [&](size_t k) {
      const Image im = read_frame(ref_frames[k]);
      auto mm = std::minmax_element(im.pixels.begin(), im.pixels.end());
      n_constant += *mm.first == *mm.second;
      std::lock_guard<std::mutex> lock(ref_mutex);
      for (size_t i = 0; i < im.size(); ++i)
        ref_sum[i] += im.pixels[i];
    }, {}, "reference frames");
    if (n_constant == int(ref_frames.size())) {  // all sampled frames blank: check every frame
      std::atomic<bool> any{false};
      parallel_for(size_t(n_frames), threads, [&](size_t i) {
        if (any)
          return;
        const Image im = read_frame(i);
        auto mm = std::minmax_element(im.pixels.begin(), im.pixels.end());
        any = any || *mm.first != *mm.second;
      }, {}, "checking frames");
      if (!any)
        fail(movie_path, ": every frame is constant (all ", movie.frame(0).pixels[0],
             "); nothing to detect — check the file or the export settings");
    }
    Image ref(nx, ny);
    for (size_t i = 0; i < ref.size(); ++i)
      ref.pixels[i] = float(ref_sum[i] / double(ref_frames.size()));
    DetectorMask mask;
    if (beam_stop == "auto")
      mask = dark_region_mask(ref, 0.2, 2);
    if (!mask_path.empty()) {
      Image m = read_image_frames(mask_path).at(0);
      if (m.nx != nx || m.ny != ny)
        fail(mask_path, ": mask is ", m.nx, "x", m.ny, " but the frames are ", nx, "x", ny);
      DetectorMask user{nx, ny, std::vector<std::uint8_t>(m.size())};
      for (size_t i = 0; i < m.size(); ++i)
        user.excluded[i] = m.pixels[i] != 0;
      add_to_mask(mask, user);
    }
    if (!mask.empty() && mask.count() > 0.9 * double(nx) * ny)
      fail(movie_path, ": the beam-stop mask covers ", int(100.0 * double(mask.count()) / (double(nx) * ny)),
           " % of the frame; use --beam-stop none or a --mask");
    SpotDetector detector(nx, ny, dspec, mask);

    // Pass 1: raw detections on up to 200 frames spread over the movie. A spot's Friedel mate
    // is often seen only in other frames, and the spots of one family at many azimuths give
    // the distortion, so centre and shape come from all of them together.
    const bool need_spots = centre == "auto" || centre == "friedel" || (distortion.empty() && !no_distortion);
    std::vector<std::vector<DetectedSpot>> pass1;
    if (need_spots) {
      const std::vector<size_t> idx = spread_frames(size_t(n_frames), 200);
      for (auto& r : detect_all(idx.size(), [&](size_t k) { return read_frame(idx[k]); }, detector, nullptr, false,
                                threads, {}))
        pass1.push_back(std::move(r.spots));
    }

    // Centre.
    Ellipse ellipse{0.5 * nx, 0.5 * ny, 1, 1, 0};
    std::string centre_source;
    if (centre == "auto" || centre == "friedel") {
      try {
        FriedelCentre fc = centre_from_friedel_pairs(pass1, nx, ny);
        ellipse.cx_px = fc.cx_px;
        ellipse.cy_px = fc.cy_px;
        centre_source = "Friedel pairs across " + std::to_string(pass1.size()) + " frame(s) (" +
                        std::to_string(fc.n_pairs) + ", radii of " + std::to_string(fc.n_spots) +
                        " spots; +- " + fixed(fc.uncertainty_px, 2) + " px)";
        rec.result("friedel_pairs", double(fc.n_pairs));
        rec.result("friedel_rms_px", fc.rms_px);
        rec.result("centre_uncertainty_px", fc.uncertainty_px);
        if (fc.uncertainty_px > 1)
          warn("the centre is poorly determined (+- " + fixed(fc.uncertainty_px, 2) + " px from " +
               std::to_string(fc.n_spots) + " distinct spots); give --centre X,Y if it is known");
      } catch (const Error& e) {
        if (centre == "friedel")
          throw;
        warn(std::string(e.what()) + "; using the direct beam");
      }
    }
    if (centre_source.empty() && centre != "ring" && centre.find(',') == std::string::npos) {
      if (centre != "auto" && centre != "beam" && centre != "friedel")
        throw po::error("--centre must be auto, friedel, ring, beam or X,Y; got '" + centre + "'");
      Vec2 c = direct_beam_centre_px(ref, mask, 3);
      ellipse.cx_px = c.x();
      ellipse.cy_px = c.y();
      centre_source = "direct beam";
    }
    if (centre.find(',') != std::string::npos) {
      auto xy = parse_quantity_list(centre, Dimension::Dimensionless, "--centre");
      if (xy.size() != 2)
        throw po::error("--centre X,Y needs two numbers in px, got '" + centre + "'");
      ellipse.cx_px = xy[0];
      ellipse.cy_px = xy[1];
      centre_source = "given";
    }
    if (centre == "ring") {
      Vec2 c = direct_beam_centre_px(ref, mask, 3);
      ellipse.cx_px = c.x();
      ellipse.cy_px = c.y();
    }
    // Distortion: given (--distortion), else the strongest ring of the reference image, else
    // same-family spots at different azimuths.
    PatternGeometry geom;
    geom.ellipse = ellipse;
    bool have_ring = false;
    std::string distortion_source = "none";
    {
      RadialProfiler rp0(nx, ny, geom, mask, 1.0);
      double r_guess = ring_radius;
      if (!(r_guess > 0)) {
        auto peaks = find_profile_peaks(rp0.profile(ref), rp0.radius_px(), 8);
        for (const auto& p : peaks)
          if (p.radius_px > std::max(centre_mask, 10.0) && p.radius_px < 0.45 * std::min(nx, ny)) {
            r_guess = p.radius_px;
            break;
          }
      }
      if (r_guess > 0) {
        RingFit ring;
        try {
          ring = fit_ring(ref, mask, ellipse.cx_px, ellipse.cy_px, r_guess);
          const Ellipse& e = ring.ellipse;
          // A fit to the halo, spots or noise instead of a ring: too small, off the guessed
          // radius, far more elliptical than a projector lens makes (a/b ≤ 1.1) or ragged.
          const RingFitSpec ring_spec;
          const double min_radius = std::max(centre_mask, 10.0);
          if (e.semi_minor_px < min_radius || std::abs(e.mean_radius_px() - r_guess) > ring_spec.half_width_px ||
              e.axis_ratio() > 1.1 || ring.rms_residual_px > 1.0) {
            const std::string why = "ring fit near r = " + fixed(r_guess, 1) + " px rejected (semi-axes " +
                                    fixed(e.semi_major_px, 2) + " x " + fixed(e.semi_minor_px, 2) + " px, a/b " +
                                    fixed(e.axis_ratio(), 4) + ", RMS " + fixed(ring.rms_residual_px, 2) +
                                    " px; a ring needs r >= " + fixed(min_radius, 1) +
                                    " px, a/b <= 1.1 and RMS <= 1 px)";
            if (centre == "ring" || ring_radius > 0)
              fail(why, "; give --ring-radius of a real ring or --distortion RATIO,ANGLE_DEG");
            rec.result("ring_fit_rejected", why);
            warn(why + (need_spots ? "; the distortion is taken from the spots" : "; distortion not measured"));
          } else {
            have_ring = true;
          }
        } catch (const Error& e) {
          if (centre == "ring" || ring_radius > 0)
            throw;
          if (!need_spots)
            warn(std::string("distortion not measured: ") + e.what());
        }
        if (have_ring) {
          Ellipse e = ring.ellipse;
          rec.result("ring_centre_px", Json(std::vector<double>{e.cx_px, e.cy_px}));
          rec.result("ring_semi_axes_px", Json(std::vector<double>{e.semi_major_px, e.semi_minor_px}));
          rec.result("ring_angle_deg", e.angle_deg);
          rec.result("ring_axis_ratio", e.axis_ratio());
          rec.result("ring_rms_px", ring.rms_residual_px);
          rec.result("ring_points", double(ring.n_inliers));
          if (centre == "ring" || centre_source == "direct beam") {
            centre_source = "ring fit";
          } else {  // keep the Friedel/given centre, take the shape from the ring
            e.cx_px = ellipse.cx_px;
            e.cy_px = ellipse.cy_px;
          }
          geom.ellipse = e;
          distortion_source = "ring fit";
        }
      } else if (centre == "ring") {
        fail(movie_path, ": --centre ring but no ring found in the radial profile; give --ring-radius R (px)");
      }
    }
    if (!distortion.empty()) {
      geom.ellipse = distortion_ellipse(geom.ellipse.cx_px, geom.ellipse.cy_px, given_distortion.first,
                                        given_distortion.second);
      distortion_source = "given (" + distortion + ")";
    } else if (!have_ring && !no_distortion) {
      try {
        SpotDistortion sd = distortion_from_spots(distinct_spot_positions(pass1), geom.ellipse.cx_px, geom.ellipse.cy_px);
        geom.ellipse = sd.ellipse;
        distortion_source = "spots (" + std::to_string(sd.n_pairs) + " same-family pairs)";
        rec.result("distortion_spot_pairs", double(sd.n_pairs));
        rec.result("distortion_spot_rms_rel", sd.rms_rel);
      } catch (const Error& e) {
        warn(std::string("distortion not measured (no ring): ") + e.what());
      }
    }
    geom.correct_distortion = distortion_source != "none" && !no_distortion &&
                              (!distortion.empty() || geom.ellipse.axis_ratio() - 1 > distortion_threshold);
    rec.result("centre_px", Json(std::vector<double>{geom.ellipse.cx_px, geom.ellipse.cy_px}));
    rec.result("centre_source", centre_source);
    rec.result("distortion_source", distortion_source);
    rec.result("distortion_ratio", geom.ellipse.axis_ratio());
    rec.result("distortion_angle_deg", geom.ellipse.angle_deg);
    rec.result("distortion_corrected", Json(geom.correct_distortion));

    // Calibration.
    RadialProfiler profiler(nx, ny, geom, mask, 1.0);
    if (!calibrant.empty()) {
      Phase cal_phase = make_phase(read_crystal(calibrant));
      std::vector<ReferenceRing> rings;
      for (const auto& fam : cal_phase.families)
        if (fam.kinematic_allowed && fam.intensity_rel > 0.01)
          rings.push_back({cal_phase.name, hkl_text(fam.hkl), 1.0 / fam.d_A});
      std::vector<double> radii, weights;
      for (const auto& p : find_profile_peaks(profiler.profile(ref), profiler.radius_px(), 8))
        if (p.radius_px > centre_mask) {
          radii.push_back(p.radius_px);
          weights.push_back(p.prominence);
        }
      RingCalibration cal = calibrate_from_rings(radii, weights, rings, tolerance);
      pixel_invA = cal.pixel_size_invA;
      Json matches = Json::array();
      for (const auto& m : cal.matches)
        matches.push(Json::object().set("label", m.label).set("radius_px", m.radius_px).set("g_invA", m.g_invA));
      rec.result("calibration_rings", matches);
      rec.result("calibration_rms_rel", cal.rms_relative);
    }
    geom.pixel_size_invA = pixel_invA;
    rec.result("pixel_size_invA", pixel_invA);
    if (!common.quiet) {
      rec.echo(std::cout);
      std::cout << std::setprecision(5) << "# centre (" << geom.ellipse.cx_px << ", " << geom.ellipse.cy_px
                << ") px from " << centre_source << "; distortion a/b = " << geom.ellipse.axis_ratio() << ", axis "
                << geom.ellipse.angle_deg << " deg from " << distortion_source
                << (geom.correct_distortion ? " (corrected)" : " (not corrected)")
                << "\n# pixel size " << pixel_invA << " 1/Å per px; mask " << mask.count() << " px\n";
    }

    // Pass 2: detection on every frame minus its azimuthal median, then tracks.
    ProgressBar bar(common.quiet);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<int> empty_frames;
    std::mutex empty_mutex;
    auto results = detect_all(size_t(n_frames), [&](size_t i) {
      Image im = read_frame(i);
      auto mm = std::minmax_element(im.pixels.begin(), im.pixels.end());
      if (*mm.first == *mm.second) {
        std::lock_guard<std::mutex> lock(empty_mutex);
        empty_frames.push_back(int(i));
      }
      return im;
    }, detector, &profiler, !no_background, threads, bar.callback());
    std::sort(empty_frames.begin(), empty_frames.end());
    if (!empty_frames.empty())
      warn(std::to_string(empty_frames.size()) + " constant (e.g. all-zero) frame(s), first " +
           std::to_string(empty_frames.front()) + ": no spots there; tracks bridge them only up to --max-gap");
    auto obs = observations(results, geom, centre_mask);
    auto tracks = link_tracks(obs, tspec);
    bar.finish();
    // Calibration scale: one |g| per track (a distinct spot), fitted to the phases' families.
    // Linking is scale-free (steps in px, |g| changes relative), so only |g| is rescaled.
    double scale_fitted = 1;
    if (!phases.empty() && scale_range > 0 && calibrant.empty() && !tracks.empty()) {
      std::vector<double> g, family_g;
      for (const auto& t : tracks)
        g.push_back(t.g_invA);
      for (const auto& ph : phases)
        for (const auto& fam : ph.families)
          if (fam.kinematic_allowed)
            family_g.push_back(1.0 / fam.d_A);
      const ScaleFit sf = fit_calibration_scale(g, family_g, scale_range, tolerance);
      rec.result("scale_runner_up", sf.runner_up_scale);
      rec.result("scale_matched_tracks", double(sf.n_matched));
      if (sf.n_matched < 3) {
        warn("calibration scale not fitted: only " + std::to_string(sf.n_matched) +
             " tracks match the phases at any scale within --scale-range; the pixel size is used as given");
      } else {
        scale_fitted = sf.scale;
        if (sf.at_edge)
          warn("calibration scale " + fixed(sf.scale, 4) + " is at the edge of --scale-range " + fixed(scale_range, 3) +
               "; check --pixel-size or widen --scale-range");
        else if (sf.runner_up_score > 0.8 * sf.score)
          warn("calibration scale " + fixed(sf.scale, 4) + " is not clearly better than " +
               fixed(sf.runner_up_scale, 4) + " (match score " + fixed(sf.score, 1) + " vs " +
               fixed(sf.runner_up_score, 1) + "); indexing may be wrong: check --pixel-size or use --scale-range 0");
        if (!common.quiet)
          std::cout << std::setprecision(5) << "# calibration scale " << sf.scale << " (runner-up " << sf.runner_up_scale
                    << ", match score " << sf.score << " vs " << sf.runner_up_score << "; " << sf.n_matched << " of "
                    << tracks.size() << " tracks match): pixel size " << pixel_invA * scale_fitted << " 1/Å per px\n";
        pixel_invA *= scale_fitted;
        geom.pixel_size_invA = pixel_invA;
        for (auto& frame : obs)
          for (auto& o : frame) {
            o.gx_invA *= scale_fitted;
            o.gy_invA *= scale_fitted;
          }
        for (auto& t : tracks)
          t.g_invA *= scale_fitted;
      }
    }
    rec.result("scale_fitted", scale_fitted);
    rec.result("pixel_size_fitted_invA", pixel_invA);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // A one-frame movie lasts one frame interval when the frame rate is known.
    set_track_times(tracks, times.time_s, times.covariate, n_frames, fps_known ? 1.0 / fps : 0.0);
    if (!phases.empty())
      label_tracks(tracks, [&](double g) { return label_from_match(index_spacings({1.0 / g}, phases, tolerance)[0]); });

    // Summary bins: default 8 bins over the covariate range, rounded to 1/2/5 × 10^k.
    double origin = 0;
    if (!times.covariate.empty()) {
      auto mm = std::minmax_element(times.covariate.begin(), times.covariate.end());
      if (!(bin_width > 0) && *mm.second > *mm.first) {
        double raw = (*mm.second - *mm.first) / 8, p10 = std::pow(10.0, std::floor(std::log10(raw)));
        bin_width = raw / p10 < 1.5 ? p10 : raw / p10 < 3.5 ? 2 * p10 : raw / p10 < 7.5 ? 5 * p10 : 10 * p10;
      }
      if (bin_width > 0)
        origin = std::floor(*mm.first / bin_width) * bin_width;
    }
    const auto bins = summarise_lifespans(tracks, bin_width, origin);

    const std::vector<std::string> inputs = {movie_path, times_csv, covariate, mask_path};
    const std::string cov_header = times.covariate.empty() ? "covariate" : times.covariate_name;
    std::string tcsv = "# epitem track " + movie_path + ": lifespans in s, |g| in 1/Å, azimuth CCW from +x (y up); " +
                       (times.covariate.empty() ? std::string("no covariate given") : "covariate = " + cov_header) + "\n" +
                       tracks_csv(tracks);
    write_text_file(out, tcsv, inputs);
    rec.add_output(out);
    if (summary_path.empty())
      summary_path = stem_with(out, "_summary.csv");
    write_text_file(summary_path, "# epitem track: mean lifespan per phase/{hkl} per " + cov_header + " bin\n" +
                                      lifespan_summary_csv(bins), inputs);
    rec.add_output(summary_path);
    if (!detections_path.empty()) {
      write_text_file(detections_path, detections_csv(obs, times.time_s), inputs);
      rec.add_output(detections_path);
    }
    if (!png.empty()) {
      write_png(lifespan_scatter(tracks, times.time_s, times.covariate.empty() ? "birth time (s)" : cov_header), png);
      rec.add_output(png);
    }
    if (!profile_path.empty()) {
      const auto& r_px = profiler.radius_px();
      std::ostringstream csv;
      csv << "# epitem track: azimuthal mean intensity per frame (rows) vs |g| (columns, 1/Å)\nframe,time_s";
      for (double r : r_px)
        csv << "," << std::setprecision(6) << r * pixel_invA;
      csv << "\n";
      Image img(int(r_px.size()), n_frames);
      std::ostringstream peaks_csv;
      peaks_csv << "frame,g_inv_A,d_A,height,prominence,snr,phase,hkl,index_status\n";
      for (int f = 0; f < n_frames; ++f) {
        const auto& p = results[size_t(f)].profile;
        csv << f << "," << times.time_s[size_t(f)];
        for (size_t b = 0; b < p.size(); ++b) {
          csv << ",";
          if (std::isfinite(p[b]))
            csv << std::setprecision(6) << p[b];
          img.at(int(b), f) = std::isfinite(p[b]) ? float(p[b]) : 0.f;
        }
        csv << "\n";
        for (const auto& pk : find_profile_peaks(p, r_px, 8)) {
          double g = pk.radius_px * pixel_invA;
          if (pk.radius_px < centre_mask)
            continue;
          SpacingLabel l = phases.empty() ? SpacingLabel{} : label_from_match(index_spacings({1.0 / g}, phases, tolerance)[0]);
          peaks_csv << f << "," << std::setprecision(6) << g << "," << 1.0 / g << "," << pk.height << ","
                    << pk.prominence << "," << pk.snr << "," << l.phase << "," << l.hkl << ","
                    << label_status_name(l.status) << "\n";
        }
      }
      write_text_file(profile_path, csv.str(), inputs);
      rec.add_output(profile_path);
      std::string peaks_path = stem_with(profile_path, "_peaks.csv");
      write_text_file(peaks_path, peaks_csv.str(), inputs);
      rec.add_output(peaks_path);
      img.pixel_size_invA = pixel_invA;
      std::string tif = stem_with(profile_path, ".tif");
      write_tiff(tif, {img}, rec.tiff_description());
      rec.add_output(tif);
      // Preview: frames stretched to ≥ 200 rows, the direct beam (inside --centre-mask) blanked
      // so that it does not set the contrast.
      const int rep = std::max(1, (200 + n_frames - 1) / n_frames);
      Image view(img.nx, img.ny * rep);
      for (int y = 0; y < view.ny; ++y)
        for (int x = 0; x < view.nx; ++x)
          view.at(x, y) = r_px[size_t(x)] < centre_mask ? 0.f : img.at(x, y / rep);
      Canvas c = colormapped_canvas(view, Contrast{0.5, 99.5, true});
      c.draw_label(4, 4, "radial profile: frame (down) x |g| (right)", colors::white);
      std::string pngp = stem_with(profile_path, ".png");
      write_png(c, pngp);
      rec.add_output(pngp);
    }

    size_t n_det = 0;
    for (const auto& f : obs)
      n_det += f.size();
    int n_indexed = 0, n_ambiguous = 0;
    for (const auto& t : tracks) {
      n_indexed += t.label.status == LabelStatus::Indexed;
      n_ambiguous += t.label.status == LabelStatus::Ambiguous;
    }
    rec.result("frames", double(n_frames));
    rec.result("empty_frames", Json(empty_frames));
    rec.result("detections", double(n_det));
    rec.result("tracks", double(tracks.size()));
    rec.result("tracks_indexed", double(n_indexed));
    rec.result("tracks_ambiguous", double(n_ambiguous));
    rec.result("detection_tracking_s", seconds);
    rec.result("frames_per_s", n_frames / seconds);
    rec.write_sidecar(out);
    if (!common.quiet) {
      std::cout << std::setprecision(4) << "# " << n_frames << " frames, " << n_det << " detections, "
                << tracks.size() << " tracks (" << n_indexed << " indexed, " << n_ambiguous << " ambiguous) in "
                << seconds << " s (" << n_frames / seconds << " frames/s)\n";
      for (const auto& b : bins)
        if (b.phase != "unindexed" && b.phase != "ambiguous")
          std::cout << "# " << b.phase << " {" << b.hkl << "}"
                    << (std::isfinite(b.covariate_lo) ? " " + cov_header + " [" + std::to_string(b.covariate_lo).substr(0, 7) +
                                                            ", " + std::to_string(b.covariate_hi).substr(0, 7) + ")"
                                                      : std::string())
                    << ": " << b.n_tracks << " tracks, mean lifespan " << b.mean_lifespan_s << " s\n";
      std::cout << "# wrote " << out << ", " << summary_path << " and " << sidecar_path(out) << "\n";
    }
    return EXIT_OK;
  });
}

EPITEM_COMMAND(track, 62, "spot lifespans in an in-situ SAED movie (LoG, centre/ellipse, tracks, {hkl})", track_main);

}  // namespace epitem::cli
