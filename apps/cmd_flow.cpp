// `epitem flow MOVIE`: dense optical flow (Farnebäck) between successive drift-corrected frames
// of an in-situ movie; per-pair speed statistics in Å/s, covariate-bin averages, PNG summary.
// `epitem flow --bench 2048` times the flow on synthetic frames (frames/s).
#include <chrono>
#include <cmath>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <malloc.h>
#include <random>
#include <sstream>

#include "cli.hpp"
#include "epitem/image_file.hpp"
#include "epitem/error.hpp"
#include "epitem/flow.hpp"
#include "epitem/movie.hpp"
#include "epitem/output.hpp"
#include "epitem/parallel.hpp"
#include "epitem/plot.hpp"
#include "epitem/png.hpp"

namespace epitem::cli {

namespace {

std::string stem_with(const std::string& path, const std::string& suffix) {
  auto dot = path.find_last_of('.');
  auto slash = path.find_last_of('/');
  std::string base = (dot != std::string::npos && (slash == std::string::npos || dot > slash)) ? path.substr(0, dot) : path;
  return base + suffix;
}

// ROI "x,y,w,h" in pixels → mask.
std::vector<std::uint8_t> roi_mask(const std::string& text, int nx, int ny) {
  std::vector<int> v;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      v.push_back(std::stoi(item, &used));
      if (used != item.size())
        throw std::invalid_argument("");
    } catch (const std::exception&) {
      throw po::error("--roi '" + text + "': expected x,y,w,h in pixels, e.g. 100,200,512,512");
    }
  }
  if (v.size() != 4 || v[2] <= 0 || v[3] <= 0)
    throw po::error("--roi '" + text + "': expected x,y,w,h in pixels with w, h > 0");
  if (v[0] < 0 || v[1] < 0 || v[0] + v[2] > nx || v[1] + v[3] > ny)
    fail("--roi ", text, " lies outside the ", nx, "x", ny, " frames");
  std::vector<std::uint8_t> m(size_t(nx) * size_t(ny), 0);
  for (int y = v[1]; y < v[1] + v[3]; ++y)
    for (int x = v[0]; x < v[0] + v[2]; ++x)
      m[size_t(y) * size_t(nx) + size_t(x)] = 1;
  return m;
}

// Synthetic lattice frames drifting by (0.7, −0.4) px/frame with a moving particle: the flow
// cost does not depend on the content, only on the size.
std::vector<Image> bench_frames(int n, int frames) {
  std::mt19937 rng(1);
  std::normal_distribution<float> noise(0.f, 0.1f);
  std::vector<Image> movie;
  for (int t = 0; t < frames; ++t) {
    Image im(n, n);
    im.pixel_size_A = 0.25;
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x) {
        double u = x - 0.7 * t, v = y + 0.4 * t;
        double r = std::hypot(u - n / 2.0 - t, v - n / 2.0);
        double bg = std::cos(0.7 * u + 0.1 * v) + std::cos(0.75 * v - 0.2 * u);
        im.at(x, y) = float(r < n / 6.0 ? 1.5 * std::cos(0.9 * (u - t) + 0.5 * v) + 0.5 : bg) + noise(rng);
      }
    movie.push_back(std::move(im));
  }
  return movie;
}

int run_bench(int n, int frames, int bin, const FlowSpec& spec) {
  if (n < 64 || frames < 2)
    throw po::error("--bench needs a frame size >= 64 and --bench-frames >= 2");
  std::cout << "# flow benchmark: " << frames << " synthetic frames of " << n << "x" << n << " px, "
            << default_thread_count() << " threads, --bin " << bin << ", Farnebäck levels " << spec.levels
            << ", iterations " << spec.iterations << "\n";
  std::vector<Image> movie = bench_frames(n, frames);
  FrameTimes times = frame_times_from_fps(movie.size(), 10);
  FlowSpec resolved = spec;  // automatic smoothing/window as chosen on the warm-up frames
  {
    // Warm-up, untimed: a movie's first pairs grow the heap that the later pairs reuse (see
    // reuse_freed_memory); a benchmark of a few frames should time that steady state.
    std::vector<Image> head(movie.begin(), movie.begin() + long(std::min<size_t>(3, movie.size())));
    for (auto& f : head)
      f = bin > 1 ? bin_image(f, bin) : f;
    resolved = analyze_flow(head, frame_times_from_fps(head.size(), 10), spec).spec;
  }
  // Best of three alternating runs of the whole analysis and of its floor (Farnebäck alone on
  // the same binned frames, same threads): a shared host's load comes and goes within seconds.
  const std::vector<Image> raw = movie;
  double best_s = 1e300, best_cpu = 0, best_floor_s = 1e300;
  for (int repeat = 0; repeat < 3; ++repeat) {
    movie = raw;
    const auto t0 = std::chrono::steady_clock::now();
    const std::clock_t c0 = std::clock();
    if (bin > 1)
      for (auto& f : movie)
        f = bin_image(f, bin);  // timed: part of the cost of a binned run
    analyze_flow(movie, times, resolved);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s < best_s) {
      best_s = s;
      best_cpu = double(std::clock() - c0) / CLOCKS_PER_SEC;  // all threads of this process
    }
    best_floor_s = std::min(best_floor_s, farneback_floor_s(movie, resolved));
  }
  const int pairs = frames - 1;
  std::cout << std::fixed << std::setprecision(3) << "pairs " << pairs << ", best of 3: wall " << best_s << " s ("
            << best_s / pairs << " s/frame, " << pairs / best_s << " frames/s), CPU " << best_cpu / pairs
            << " s/frame\n"
            << "smoothing " << resolved.smooth_px << " px, window " << resolved.window_px << " px\n"
            << "Farneback alone (same threads, no registration/statistics): " << best_floor_s / pairs << " s/frame, "
            << pairs / best_floor_s << " frames/s; run/floor " << best_s / best_floor_s << "\n"
            << "# wall time depends on machine load (compare run/floor across machines); CPU s/frame divided "
               "by the thread count is the wall time on idle cores\n";
  return EXIT_OK;
}

// Farnebäck allocates and frees ~100 MB of buffers per 2048² frame pair; glibc hands blocks
// that large back to the OS (mmap/munmap, one arena per thread) and each pair page-faults them
// in again: 15 % of the flow's time, measured. One heap that keeps freed memory avoids that.
void reuse_freed_memory() {
#ifdef __GLIBC__
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

int flow_main(int argc, char** argv) {
  reuse_freed_memory();
  return run_guarded("flow", [&]() -> int {
    parallel::start();  // under mpirun: frame pairs are split over the ranks (docs/mpi.md)
    po::options_description opts("flow options");
    std::string movie_path, out, png, field_path, times_csv, covariate, ramp, roi, mask_path;
    double fps = 0, smooth_px = -1, bin_width = 0;
    const FlowSpec defaults;
    int window_px = defaults.window_px, levels = defaults.levels, iterations = defaults.iterations, map_pair = -1, bench = 0, bench_frames_n = 5, bin = 1;
    bool no_drift = false;
    opts.add_options()
      ("movie", po::value<std::string>(&movie_path), "multi-frame image file or folder of numbered frames")
      ("out,o", po::value<std::string>(&out), "per-pair CSV (+ JSON sidecar)")
      ("fps", po::value<double>(&fps), "frame rate [frames/s] (default: the file's frame time, if it has one)")
      ("times", po::value<std::string>(&times_csv),
       "CSV with a time_s (or time_ms, time_min) column, one row per frame (instead of --fps)")
      ("covariate", po::value<std::string>(&covariate),
       "covariate column of --times (e.g. temperature_C), or the name for --ramp")
      ("ramp", po::value<std::string>(&ramp),
       "linear covariate START:RATE/UNIT, e.g. 400:1/s (400 + 1 per second; UNIT s, ms, min, h)")
      ("bin-width", po::value<double>(&bin_width),
       "covariate bin width [covariate unit] for per-bin averages (writes OUT_bins.csv)")
      ("pixel-size", po::value<std::string>(), "pixel size [Å] if the file has none (e.g. 0.25A, 0.025nm)")
      ("smooth", po::value<double>(&smooth_px),
       "Gaussian pre-filter sigma [px] (0 = off; default: chosen from the measured flow noise)")
      ("window", po::value<int>(&window_px),
       "Farnebäck averaging window [px] (default: chosen from the measured flow noise)")
      ("levels", po::value<int>(&levels)->default_value(defaults.levels), "Farnebäck pyramid levels")
      ("iterations", po::value<int>(&iterations)->default_value(defaults.iterations),
       "Farnebäck iterations per pyramid level")
      ("bin", po::value<int>(&bin)->default_value(1),
       "average N×N pixel blocks before the flow (N² fewer pixels; for oversampled 2048² frames)")
      ("no-drift", po::bool_switch(&no_drift), "do not remove the whole-frame drift")
      ("roi", po::value<std::string>(&roi), "statistics only inside x,y,w,h [px]")
      ("mask", po::value<std::string>(&mask_path), "statistics only where this image (e.g. a phase map) is nonzero")
      ("png", po::value<std::string>(&png), "summary PNG: speed vs time (and covariate) + speed map")
      ("map-pair", po::value<int>(&map_pair), "frame pair shown as a speed map (0-based; default middle)")
      ("field", po::value<std::string>(&field_path),
       "speed maps [Å/s] as a float32 TIFF stack (held in memory: 4 bytes per pixel per pair)")
      ("bench", po::value<int>(&bench), "benchmark: time the flow on synthetic N×N frames, write nothing")
      ("bench-frames", po::value<int>(&bench_frames_n)->default_value(5), "frames for --bench");
    po::positional_options_description pos;
    pos.add("movie", 1);
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(argc, argv,
                            "usage: epitem flow MOVIE [--fps F | --times times.csv] --out flow.csv "
                            "[--png flow.png] [--field speed.tif] [--covariate NAME [--ramp 400:1/s]] "
                            "[--bin-width W] [--roi x,y,w,h | --mask mask.tif]\n"
                            "Dense optical flow (Farnebäck) between successive frames after drift removal; "
                            "speeds in Å/s (pixel size × frame rate). Pixels faster than the measured noise "
                            "floor count as moving (moving_fraction, mean_speed_moving_px_per_frame).\n"
                            "Benchmark: epitem flow --bench 2048 [--bench-frames 5]",
                            opts, pos, vm, common))
      return EXIT_OK;
    FlowSpec spec;
    spec.smooth_px = smooth_px;
    spec.window_px = window_px;
    spec.levels = levels;
    spec.iterations = iterations;
    spec.remove_drift = !no_drift;
    if (vm.count("smooth") && smooth_px < 0)
      throw po::error("--smooth must be >= 0 px");
    if ((vm.count("window") && window_px < 3) || levels < 0 || iterations < 1)
      throw po::error("--window must be >= 3 px, --levels >= 0 and --iterations >= 1");
    if (bin < 1)
      throw po::error("--bin must be >= 1");
    if (bench > 0)  // one process (under mpirun rank 0 alone)
      return parallel::is_root() ? run_bench(bench, bench_frames_n, bin, spec) : EXIT_OK;
    if (movie_path.empty())
      throw po::error("missing MOVIE (a multi-frame image file or a folder of frames)");
    if (out.empty())
      throw po::error("missing --out flow.csv");
    if (vm.count("fps") && vm.count("times"))
      throw po::error("give --fps or --times, not both");
    if (!roi.empty() && !mask_path.empty())
      throw po::error("give --roi or --mask, not both");
    if (!ramp.empty() && covariate.empty())
      covariate = "covariate";
    double pixel_A = 0;
    get_quantity(vm, "pixel-size", Dimension::Length, pixel_A);
    if (vm.count("pixel-size") && !(pixel_A > 0))
      throw po::error("--pixel-size must be > 0");

    RunRecord rec("flow");
    rec.add("movie", movie_path);
    if (!times_csv.empty())
      rec.add("times", times_csv);
    if (!covariate.empty())
      rec.add("covariate", covariate);
    if (!ramp.empty())
      rec.add("ramp", ramp);
    rec.add("levels", double(levels));
    rec.add("iterations", double(iterations));
    rec.add("remove_drift", Json(!no_drift));
    rec.add("method", std::string("Farneback dense optical flow (OpenCV 4), float input, linear map of movie-wide "
                      "0.5-99.5 percentiles to 0-255; drift: half-whitened correlation (among lattice-equivalent "
                      "peaks the one nearest the previous pair's shift) + mode of the flow; smoothing and window "
                      "from the measured flow noise unless given; moving pixels: faster than the noise floor "
                      "(flow noise, 1 % false alarms per frame) in regions of at least half a window squared, "
                      "their speed from the region's core (half a window inside)"));
    if (common.dry_run) {
      if (!parallel::is_root())
        return EXIT_OK;
      if (pixel_A > 0)
        rec.add("pixel_size_A", pixel_A, "Å");
      rec.echo(std::cout);
      std::cout << "# dry run: streams the movie (about 5 floats per pixel per frame pair per thread in memory); "
                   "nothing computed\n";
      return EXIT_OK;
    }

    if (!parallel::is_root())
      common.quiet = true;  // rank 0 prints and writes
    const Movie movie(movie_path);
    if (movie.frame_count() < 2)
      fail(movie_path, ": ", movie.frame_count(), " frame(s); flow needs at least 2 frames");
    if (pixel_A > 0 && movie.info().pixel_size_y_A > 0 &&
        std::abs(movie.info().pixel_size_y_A - movie.info().pixel_size_A) > 1e-6 * movie.info().pixel_size_A)
      fail(movie_path, ": non-square pixels in the file; --pixel-size sets one size for both axes: resample first");
    if (!(pixel_A > 0) && !(movie.info().pixel_size_A > 0))
      fail(movie_path, ": no pixel size in the file; give --pixel-size (e.g. 0.25A)");
    if (bin > 1 && (!roi.empty() || !mask_path.empty()))
      throw po::error("--bin cannot be combined with --roi/--mask (give them in binned pixels: bin the movie first)");
    if (bin > 1 && (movie.nx() / bin < 16 || movie.ny() / bin < 16))
      fail("--bin ", bin, " leaves less than 16×16 px of the ", movie.nx(), "x", movie.ny(), " frames; use a smaller --bin");
    // Frames stream from disk: the flow holds O(threads) of them, never the movie.
    FrameSource source{movie.frame_count(), [&movie, pixel_A, bin](std::size_t i) {
                         Image f = movie.frame(i);
                         if (pixel_A > 0) {
                           f.pixel_size_A = pixel_A;
                           f.pixel_size_y_A = 0;
                         }
                         return bin > 1 ? bin_image(f, bin) : f;
                       }};
    source.split_over_ranks = true;  // under mpirun each rank reads and computes a block of pairs
    const int nx = movie.nx() / bin, ny = movie.ny() / bin;
    rec.add("bin", double(bin));
    rec.add("pixel_size_A", (pixel_A > 0 ? pixel_A : movie.info().pixel_size_A) * bin, "Å");
    rec.add("pixel_size_source", std::string(pixel_A > 0 ? "--pixel-size" : "file"));
    rec.add("frames", double(movie.frame_count()));
    // Time base: --times, else --fps, else the file's frame interval.
    std::string time_base;
    if (!times_csv.empty()) {
      time_base = "--times " + times_csv;
    } else if (vm.count("fps")) {
      time_base = "--fps";
    } else if (movie.info().frame_time_s > 0) {
      fps = 1 / movie.info().frame_time_s;
      time_base = "frame time in the file (" + std::to_string(movie.info().frame_time_s) + " s)";
    } else {
      throw po::error("the movie has no frame time; give --fps or --times");
    }
    if (times_csv.empty())
      rec.add("fps_Hz", fps, "1/s");
    rec.add("time_base", time_base);
    FrameTimes times = times_csv.empty() ? frame_times_from_fps(movie.frame_count(), fps)
                                         : read_frame_times_csv(times_csv, movie.frame_count(), ramp.empty() ? covariate : "");
    if (!ramp.empty())
      apply_covariate_ramp(times, ramp, covariate);
    if (bin_width > 0 && times.covariate.empty())
      throw po::error("--bin-width needs a covariate (--covariate with --times, or --ramp)");
    std::vector<std::uint8_t> mask;
    if (!roi.empty())
      mask = roi_mask(roi, nx, ny);
    if (!mask_path.empty()) {
      Image m = open_image_file(mask_path)->frame(0);
      if (m.nx != nx || m.ny != ny)
        fail(mask_path, ": mask is ", m.nx, "x", m.ny, " but the frames are ", nx, "x", ny, "; give a mask of the frame size");
      for (float v : m.pixels)
        mask.push_back(v != 0);
    }
    if (!common.quiet)
      rec.echo(std::cout);

    ProgressBar bar(common.quiet);
    const bool want_maps = !png.empty() || !field_path.empty();
    const size_t n_pairs = movie.frame_count() - 1;
    const int shown_pair = map_pair >= 0 ? map_pair : int(n_pairs) / 2;
    if (!png.empty() && shown_pair >= int(n_pairs))
      fail("--map-pair ", shown_pair, " is out of range: the movie has ", n_pairs, " frame pairs (0-based)");
    std::vector<Image> maps(field_path.empty() ? 0 : n_pairs);
    Image shown_map;
    SpeedMapSink keep_maps = [&](std::size_t pair, Image&& map) {
      if (int(pair) == shown_pair && !png.empty())
        shown_map = map;
      if (!field_path.empty())
        maps[pair] = std::move(map);
    };
    const FlowResult result = analyze_flow(source, times, spec, mask, want_maps ? keep_maps : SpeedMapSink{}, bar.callback());
    bar.finish();
    if (!parallel::is_root())
      return EXIT_OK;  // rank 0 has every pair and writes the outputs
    const std::vector<FlowPair>& pairs = result.pairs;
    rec.add("smooth_px", result.spec.smooth_px, "px");
    rec.add("smooth_from", std::string(vm.count("smooth") ? "--smooth" : "measured flow noise"));
    rec.add("window_px", double(result.spec.window_px), "px");
    rec.add("window_from", std::string(vm.count("window") ? "--window" : "measured flow noise"));

    int noisy = 0;
    for (const FlowPair& p : pairs)
      noisy += spec.remove_drift && p.static_fraction < 0.5;
    if (noisy > 0) {
      // Advice from the settings in use: more smoothing while the lattice survives it, then
      // a larger window or binning.
      std::ostringstream advice;
      if (result.spec.smooth_px < 3)
        advice << "try --smooth " << (result.spec.smooth_px < 2 ? 2 : 3) << " (now " << result.spec.smooth_px
               << " px), --window " << std::max(31, result.spec.window_px + 10) << " or --bin 2";
      else
        advice << "smoothing is already " << result.spec.smooth_px << " px: try --window "
               << result.spec.window_px + 10 << " (now " << result.spec.window_px << " px) or --bin 2";
      warn_to_stderr()(std::to_string(noisy) + " of " + std::to_string(pairs.size()) +
                       " frame pairs have noise-dominated flow (static_fraction < 0.5 in the CSV): drift taken from "
                       "registration and speeds inflated by noise; " + advice.str());
    }
    rec.result("noise_dominated_pairs", double(noisy));
    int ambiguous = 0;
    const FlowPair* most = nullptr;
    for (const FlowPair& p : pairs)
      if (p.registration.ambiguous) {
        ++ambiguous;
        if (!most || p.registration.peak_ratio > most->registration.peak_ratio)
          most = &p;
      }
    if (most) {
      std::ostringstream w;
      w << std::fixed << std::setprecision(2) << "registration ambiguous in " << ambiguous << " of " << pairs.size()
        << " frame pairs (lattice-equivalent correlation peaks; shift_ambiguous in the CSV): the shift nearest the "
        << "previous pair's was taken, e.g. frames " << most->frame << "-" << most->frame + 1 << ": ("
        << most->registration.shift.dx_px << ", " << most->registration.shift.dy_px << ") px, second/best peak "
        << most->registration.peak_ratio << ", alternatives";
      for (size_t k = 0; k < std::min<size_t>(3, most->registration.alternatives.size()); ++k)
        w << " (" << most->registration.alternatives[k].dx_px << ", " << most->registration.alternatives[k].dy_px << ")";
      w << " px";
      warn_to_stderr()(w.str());
    }
    rec.result("ambiguous_registration_pairs", double(ambiguous));
    std::ostringstream csv;
    csv << "# epitem flow " << movie_path << ": speeds in Å/s, drift cumulative since frame 0 in Å; moving = faster "
           "than noise_floor_px_per_frame\n";
    csv << "frame,time_s,dt_s," << (times.covariate.empty() ? "covariate" : times.covariate_name)
        << ",drift_x_A,drift_y_A,static_fraction,mean_A_per_s,median_A_per_s,p90_A_per_s,p99_A_per_s,pixels"
           ",shift_ambiguous,peak_ratio,noise_floor_px_per_frame,moving_fraction,mean_speed_moving_px_per_frame"
           ",mean_speed_moving_A_per_s\n";
    csv << std::setprecision(6);
    double sum_mean = 0, sum_moving = 0;
    for (const FlowPair& p : pairs) {
      csv << p.frame << "," << p.time_s << "," << p.dt_s << ",";
      if (std::isfinite(p.covariate))
        csv << p.covariate;
      csv << "," << p.drift_x_A << "," << p.drift_y_A << "," << p.static_fraction << "," << p.speed_A_per_s.mean << "," << p.speed_A_per_s.median
          << "," << p.speed_A_per_s.p90 << "," << p.speed_A_per_s.p99 << "," << p.speed_A_per_s.pixels << ","
          << int(p.registration.ambiguous) << "," << p.registration.peak_ratio << "," << p.noise_floor_px_per_frame
          << "," << p.speed_A_per_s.moving_fraction << "," << p.mean_speed_moving_px_per_frame << ","
          << p.speed_A_per_s.mean_moving << "\n";
      sum_mean += p.speed_A_per_s.mean;
      sum_moving += p.mean_speed_moving_px_per_frame;
    }
    const std::vector<std::string> inputs = {movie_path, times_csv, mask_path};
    write_text_file(out, csv.str(), inputs);
    rec.add_output(out);
    rec.result("pairs", double(pairs.size()));
    rec.result("mean_speed_A_per_s", sum_mean / double(pairs.size()));
    rec.result("mean_speed_moving_px_per_frame", sum_moving / double(pairs.size()));
    rec.result("total_drift_x_A", pairs.back().drift_x_A);
    rec.result("total_drift_y_A", pairs.back().drift_y_A);

    std::vector<CovariateBin> bins;
    if (bin_width > 0) {
      bins = bin_by_covariate(pairs, bin_width);
      std::ostringstream b;
      b << "# epitem flow: mean of per-pair mean speeds per " << times.covariate_name << " bin\n";
      b << times.covariate_name << "_low," << times.covariate_name << "_high,pairs,mean_A_per_s,std_A_per_s\n";
      for (const auto& cb : bins)
        b << cb.low << "," << cb.high << "," << cb.pairs << "," << cb.mean_speed_A_per_s << ","
          << cb.std_speed_A_per_s << "\n";
      std::string bins_path = stem_with(out, "_bins.csv");
      write_text_file(bins_path, b.str(), inputs);
      rec.add_output(bins_path);
      rec.result("covariate_bins", double(bins.size()));
    }
    if (!field_path.empty()) {
      TiffWriteOptions layout;  // one speed map per frame pair: a time series for ImageJ
      layout.stack = TiffStack::Frames;
      layout.frame_interval_s = times_csv.empty() && fps > 0 ? 1 / fps : 0;
      write_tiff(field_path, maps, rec.tiff_description(), layout);
      rec.add_output(field_path);
    }
    if (!png.empty()) {
      PlotSeries mean_s, median_s, p90_s;
      mean_s.label = "mean";
      median_s.label = "median";
      median_s.color = colors::green;
      p90_s.label = "90th percentile";
      p90_s.color = colors::orange;
      for (const FlowPair& p : pairs) {
        for (PlotSeries* s : {&mean_s, &median_s, &p90_s})
          s->x.push_back(p.time_s);
        mean_s.y.push_back(p.speed_A_per_s.mean);
        median_s.y.push_back(p.speed_A_per_s.median);
        p90_s.y.push_back(p.speed_A_per_s.p90);
      }
      Canvas time_plot = line_plot({mean_s, median_s, p90_s}, "optical-flow speed vs time", "time (s)",
                                   "speed (A/s)", 640, 360);
      const int pair = shown_pair;
      const Image& full = shown_map;
      Image small = bin_image(full, std::max(1, (std::max(full.nx, full.ny) + 359) / 360));
      const int zoom = std::max(1, 360 / std::max(small.nx, small.ny));
      Canvas map = upscale(colormapped_canvas(small, Contrast{0, 99.5, false}), zoom);
      std::ostringstream label;
      label << "speed, pair " << pair << " (t=" << std::setprecision(3) << pairs[size_t(pair)].time_s << " s)";
      map.draw_label(4, 4, label.str(), colors::white);
      double nm = std::pow(10.0, std::floor(std::log10(small.nx * small.pixel_size_A / 10.0 / 4)));
      std::ostringstream bar_label;
      bar_label << nm << " nm";
      map.draw_scale_bar(10.0 * zoom / small.pixel_size_A, nm, bar_label.str());
      int rows = 360 + (times.covariate.empty() ? 0 : 360);
      Canvas sheet(640 + map.width(), std::max(rows, map.height()), colors::white);
      sheet.paste(time_plot, 0, 0);
      if (!times.covariate.empty()) {
        PlotSeries per_pair, per_bin;
        per_pair.label = "per pair (mean)";
        per_pair.lines = false;
        for (const FlowPair& p : pairs) {
          per_pair.x.push_back(p.covariate);
          per_pair.y.push_back(p.speed_A_per_s.mean);
        }
        per_bin.label = "bin average";
        per_bin.color = colors::red;
        for (const auto& b : bins) {
          per_bin.x.push_back(0.5 * (b.low + b.high));
          per_bin.y.push_back(b.mean_speed_A_per_s);
        }
        std::vector<PlotSeries> s = {per_pair};
        if (!bins.empty())
          s.push_back(per_bin);
        sheet.paste(line_plot(s, "speed vs " + times.covariate_name, times.covariate_name, "speed (A/s)", 640, 360),
                    0, 360);
      }
      sheet.paste(map, 640, 0);
      write_png(sheet, png);
      rec.add_output(png);
    }
    rec.write_sidecar(out);
    if (!common.quiet) {
      std::cout << "# pairs " << pairs.size() << ", mean speed " << std::setprecision(4)
                << sum_mean / double(pairs.size()) << " Å/s, total drift (" << pairs.back().drift_x_A << ", "
                << pairs.back().drift_y_A << ") Å\n";
      for (const auto& b : bins)
        std::cout << "# " << times.covariate_name << " [" << b.low << ", " << b.high << "): " << b.pairs
                  << " pairs, mean " << b.mean_speed_A_per_s << " Å/s\n";
      std::cout << "# wrote " << out << " and " << sidecar_path(out) << "\n";
    }
    return EXIT_OK;
  });
}

}  // namespace

EPITEM_COMMAND(flow, 80, "optical-flow speeds in an in-situ movie (Farnebäck, drift removed)", flow_main);

}  // namespace epitem::cli
