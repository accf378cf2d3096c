// `epitem track MOVIE`: in-situ SAED movie → pattern centre, ellipse and calibration, LoG spot
// detection on every frame (rings and diffuse background removed by the azimuthal mean), tracks
// with lifespans, {hkl} labels, a per-covariate-bin summary, a Fig. 3n-style PNG, radial profiles.
// `epitem track --bench 2048` times detection + tracking on synthetic 16-bit frames.
#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>
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

/// Detection (and the radial profile) of every frame on `threads` workers.
std::vector<FrameResult> detect_all(const std::vector<Image>& frames, const SpotDetector& detector,
                                    const RadialProfiler* profiler, bool subtract, int threads,
                                    const ProgressFn& progress) {
  std::vector<FrameResult> results(frames.size());
  std::atomic<size_t> next{0}, done{0};
  std::mutex progress_mutex;
  std::exception_ptr error;
  auto work = [&]() {
    try {
      for (size_t i; (i = next++) < frames.size();) {
        FrameResult& r = results[i];
        if (profiler && subtract)
          r.spots = detector.detect(profiler->subtract_profile(frames[i], &r.profile));
        else {
          r.spots = detector.detect(frames[i]);
          if (profiler)
            r.profile = profiler->profile(frames[i]);
        }
        size_t d = ++done;
        if (progress) {
          std::lock_guard<std::mutex> lock(progress_mutex);
          progress(d, frames.size(), "detecting spots");
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(progress_mutex);
      error = std::current_exception();
      next = frames.size();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t)
    pool.emplace_back(work);
  work();
  for (auto& t : pool)
    t.join();
  if (error)
    std::rethrow_exception(error);
  return results;
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
  auto results = detect_all(frames, detector, &profiler, true, threads, {});
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
        covariate_name, ramp, centre = "auto", beam_stop = "auto", mask_path, calibrant, summary_path;
    std::vector<std::string> phase_names;
    double fps = 0, snr = 6, sigma_min = 1.5, sigma_max = 4, max_step = 3, max_dg = 0.02, tolerance = 0.01,
           bin_width = 0, ring_radius = 0, distortion_threshold = DEFAULT_DISTORTION_THRESHOLD, centre_mask = -1;
    int scales = 4, max_gap = 2, min_frames = 2, bench = 0, bench_frames_n = 20;
    bool no_background = false, no_distortion = false;
    opts.add_options()
      ("movie", po::value<std::string>(&movie_path), "multi-page TIFF (8/16/32-bit) or folder of numbered TIFFs")
      ("out,o", po::value<std::string>(&out), "tracks CSV (+ OUT_summary.csv and the JSON sidecar)")
      ("fps", po::value<double>(&fps), "frame rate [frames/s]")
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
                            "usage: epitem track MOVIE (--fps F | --frame-times t.csv) --out tracks.csv\n"
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
    if (vm.count("fps") == vm.count("frame-times"))
      throw po::error("give exactly one of --fps or --frame-times");
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
    if (pixel_invA > 0)
      rec.add("pixel_size_invA", pixel_invA, "1/Å");
    if (!calibrant.empty())
      rec.add("calibrant", calibrant);
    rec.add("threads", double(threads));
    if (common.dry_run) {
      rec.echo(std::cout);
      std::cout << "# dry run: reads the whole movie as float (4 bytes per pixel per frame) plus ~5 frames "
                   "of work space per thread; nothing computed\n";
      return EXIT_OK;
    }

    // Phases (indexing module: kinematic reflection families).
    std::vector<Phase> phases;
    for (const auto& name : phase_names)
      phases.push_back(make_phase(read_crystal(name)));

    std::vector<Image> frames = read_movie(movie_path);
    require_movie(frames, 2, "track " + movie_path);
    const int nx = frames[0].nx, ny = frames[0].ny, n_frames = int(frames.size());
    std::vector<int> empty_frames;
    for (int f = 0; f < n_frames; ++f) {
      require_finite(frames[size_t(f)], movie_path + " frame " + std::to_string(f));
      auto mm = std::minmax_element(frames[size_t(f)].pixels.begin(), frames[size_t(f)].pixels.end());
      if (*mm.first == *mm.second)
        empty_frames.push_back(f);
    }
    if (int(empty_frames.size()) == n_frames)
      fail(movie_path, ": every frame is constant (all ", frames[0].pixels[0],
           "); nothing to detect — check the file or the export settings");
    const WarnFn warn = warn_to_stderr();
    if (!empty_frames.empty())
      warn(std::to_string(empty_frames.size()) + " constant (e.g. all-zero) frame(s), first " +
           std::to_string(empty_frames.front()) + ": no spots there; tracks bridge them only up to --max-gap");
    if (pixel_invA <= 0 && calibrant.empty() && frames[0].pixel_size_invA > 0)
      pixel_invA = frames[0].pixel_size_invA;

    FrameTimes times = times_csv.empty()
                           ? frame_times_from_fps(frames.size(), fps)
                           : read_frame_times_csv(times_csv, frames.size(),
                                                  covariate.empty() || file_extension(covariate) == "csv" ? "" : covariate);
    if (!ramp.empty())
      apply_covariate_ramp(times, ramp, covariate_name.empty() ? "temperature_C" : covariate_name);
    if (!covariate.empty() && file_extension(covariate) == "csv") {
      std::string col = covariate_column;
      times.covariate = read_covariate_csv(covariate, col, frames.size(), warn);
      times.covariate_name = covariate_name.empty() ? col : covariate_name;
    } else if (!covariate.empty() && !covariate_name.empty()) {
      times.covariate_name = covariate_name;
    }

    // Reference image: mean of the first frames (the beam stop and the rings do not move).
    const int n_ref = std::min(n_frames, 10);
    Image ref(nx, ny);
    for (int f = 0; f < n_ref; ++f)
      for (size_t i = 0; i < ref.size(); ++i)
        ref.pixels[i] += frames[size_t(f)].pixels[i] / float(n_ref);
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
    SpotDetector raw_detector(nx, ny, dspec, mask);

    // Centre.
    Ellipse ellipse{0.5 * nx, 0.5 * ny, 1, 1, 0};
    std::string centre_source;
    std::vector<std::vector<DetectedSpot>> first;
    if (centre == "auto" || centre == "friedel") {
      for (int f = 0; f < n_ref; ++f)
        first.push_back(raw_detector.detect(frames[size_t(f)]));
      try {
        FriedelCentre fc = centre_from_friedel_pairs(first, nx, ny);
        ellipse.cx_px = fc.cx_px;
        ellipse.cy_px = fc.cy_px;
        centre_source = "Friedel pairs (" + std::to_string(fc.n_pairs) + ")";
        rec.result("friedel_pairs", double(fc.n_pairs));
        rec.result("friedel_rms_px", fc.rms_px);
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
    // Ellipse from the strongest ring of the reference image (if there is one).
    PatternGeometry geom;
    geom.ellipse = ellipse;
    bool have_ring = false;
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
        try {
          RingFit ring = fit_ring(ref, mask, ellipse.cx_px, ellipse.cy_px, r_guess);
          have_ring = true;
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
        } catch (const Error& e) {
          if (centre == "ring" || ring_radius > 0)
            throw;
          warn(std::string("distortion not measured: ") + e.what());
        }
      } else if (centre == "ring") {
        fail(movie_path, ": --centre ring but no ring found in the radial profile; give --ring-radius R (px)");
      }
    }
    geom.correct_distortion = have_ring && !no_distortion &&
                              geom.ellipse.axis_ratio() - 1 > distortion_threshold;
    rec.result("centre_px", Json(std::vector<double>{geom.ellipse.cx_px, geom.ellipse.cy_px}));
    rec.result("centre_source", centre_source);
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
    if (!(pixel_invA > 0))
      fail(movie_path, ": no reciprocal calibration; give --pixel-size (e.g. 0.01/A), --camera-length with "
           "--detector-pixel and --energy, or --calibrant Au");
    geom.pixel_size_invA = pixel_invA;
    rec.result("pixel_size_invA", pixel_invA);
    if (!common.quiet) {
      rec.echo(std::cout);
      std::cout << std::setprecision(5) << "# centre (" << geom.ellipse.cx_px << ", " << geom.ellipse.cy_px
                << ") px from " << centre_source;
      if (have_ring)
        std::cout << "; ring ellipse a = " << geom.ellipse.semi_major_px << ", b = " << geom.ellipse.semi_minor_px
                  << " px, a/b = " << geom.ellipse.axis_ratio() << ", axis " << geom.ellipse.angle_deg << " deg"
                  << (geom.correct_distortion ? " (corrected)" : " (below threshold, not corrected)");
      std::cout << "\n# pixel size " << pixel_invA << " 1/Å per px; mask " << mask.count() << " px\n";
    }

    // Detection on every frame, then tracks.
    SpotDetector detector(nx, ny, dspec, mask);
    ProgressBar bar(common.quiet);
    const auto t0 = std::chrono::steady_clock::now();
    auto results = detect_all(frames, detector, &profiler, !no_background, threads, bar.callback());
    auto obs = observations(results, geom, centre_mask);
    auto tracks = link_tracks(obs, tspec);
    bar.finish();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    set_track_times(tracks, times.time_s, times.covariate, n_frames);
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
    std::string tcsv = "# epitem track " + movie_path + ": lifespans in s, |g| in 1/Å, azimuth CCW from +x (y up); covariate = " +
                       cov_header + "\n" + tracks_csv(tracks);
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
      write_tiff(tif, {img}, rec.to_json().dump(0));
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
