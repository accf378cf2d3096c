// `epitem track MOVIE`: in-situ SAED movie → pattern centre, ellipse and calibration, LoG spot
// detection on every frame (rings and diffuse background removed by the azimuthal mean), tracks
// with lifespans, {hkl} labels, a per-covariate-bin summary, a Fig. 3n-style PNG, radial profiles.
// `epitem track --bench 2048` times detection + tracking on synthetic 16-bit frames.
#include <chrono>
#include <cmath>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <random>
#include <sstream>

#include "cli.hpp"
#include "track_options.hpp"
#include "epitem/image_file.hpp"
#include "epitem/error.hpp"
#include "epitem/indexing.hpp"
#include "epitem/movie.hpp"
#include "epitem/output.hpp"
#include "epitem/parallel.hpp"
#include "epitem/pattern_geometry.hpp"
#include "epitem/png.hpp"
#include "epitem/spot_detection.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/track_pipeline.hpp"
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
  auto results = detect_frames(frames.size(), [&](size_t i) { return frames[i]; }, detector, &profiler, true, threads, {});
  auto obs = spot_observations(results, geom, 0);
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
    parallel::start();  // under mpirun: frames are split over the ranks (docs/mpi.md)
    const bool root = parallel::is_root();
    std::string movie_path, out, detections_path, png, profile_path, summary_path;
    int bench = 0, bench_frames_n = 20;
    po::options_description opts("track options");
    opts.add_options()
      ("movie", po::value<std::string>(&movie_path), "movie file (TIFF, DM, SER, EMD, MRC...) or folder of numbered frames; "
       "one frame is fine")
      ("out,o", po::value<std::string>(&out), "tracks CSV (+ OUT_summary.csv and the JSON sidecar)");
    add_track_options(opts);
    opts.add_options()
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
    const int threads = common.threads > 0 ? common.threads : default_thread_count();
    RunRecord rec("track");
    if (bench > 0) {
      const TrackRequest request = resolve_track_options(vm, threads, rec);
      return root ? run_bench(bench, bench_frames_n, request.settings.detection, threads) : EXIT_OK;
    }
    if (movie_path.empty())
      throw po::error("missing MOVIE (a multi-page TIFF or a folder of TIFF frames)");
    if (out.empty())
      throw po::error("missing --out tracks.csv");
    rec.add("movie", movie_path);
    TrackRequest request = resolve_track_options(vm, threads, rec);
    if (common.dry_run) {
      if (!root)
        return EXIT_OK;
      rec.echo(std::cout);
      std::cout << "# dry run: streams the movie (up to 50 + 200 frames read for the geometry, then every "
                   "frame once), ~6 frames of float work space per thread; nothing computed\n";
      return EXIT_OK;
    }
    load_track_phases(request);
    const Movie movie(movie_path);
    const MovieFrames frames(movie);
    const WarnFn warn = root ? warn_to_stderr() : WarnFn([](const std::string&) {});  // rank 0 speaks
    request.settings.split_over_ranks = true;  // a no-op without mpirun
    const bool split = parallel::size() > 1;
    double single_frame_s = 0;
    const FrameTimes times = track_frame_times(request, frames, movie.info().frame_time_s,
                                               movie.info().pixel_size_invA, rec, warn, single_frame_s);
    const TrackSettings& settings = request.settings;
    const int n_frames = int(frames.frame_count());

    TrackRun run;
    find_track_geometry(frames, settings, warn, run);
    for (const auto& [key, value] : run.results)
      rec.result(key, value);
    const size_t n_geometry_results = run.results.size();
    const PatternGeometry& geom = run.geometry;
    if (!common.quiet && root) {
      rec.echo(std::cout);
      std::cout << std::setprecision(5) << "# centre (" << geom.ellipse.cx_px << ", " << geom.ellipse.cy_px
                << ") px from " << run.centre_source << "; distortion a/b = " << geom.ellipse.axis_ratio()
                << ", axis " << geom.ellipse.angle_deg << " deg from " << run.distortion_source
                << (geom.correct_distortion ? " (corrected)" : " (not corrected)") << "\n# pixel size "
                << geom.pixel_size_invA << " 1/Å per px; mask " << run.mask.count() << " px\n";
    }

    // Pass 2: detection on every frame minus its azimuthal median, then tracks.
    ProgressBar bar(common.quiet || !root);
    const auto t0 = std::chrono::steady_clock::now();
    detect_and_link_tracks(frames, settings, bar.callback(), warn, run);
    bar.finish();
    // Rank 0 has every frame's spots now: it links, fits, labels and writes; the others stop.
    const Json mpi_record =
        split ? parallel::run_json(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count())
              : Json();
    if (!root)
      return EXIT_OK;
    finish_tracks(settings, times, single_frame_s, warn, run);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (run.scale_was_fitted && !common.quiet) {
      const ScaleFit& sf = run.scale_fit;
      std::cout << std::setprecision(5) << "# calibration scale " << sf.scale << " (runner-up " << sf.runner_up_scale
                << ", match score " << sf.score << " vs " << sf.runner_up_score << "; " << sf.n_matched << " of "
                << run.tracks.size() << " tracks match): pixel size " << geom.pixel_size_invA << " 1/Å per px\n";
    }
    for (size_t i = n_geometry_results; i < run.results.size(); ++i)
      rec.result(run.results[i].first, run.results[i].second);
    const double pixel_invA = geom.pixel_size_invA;  // after the scale fit
    const double centre_mask = settings.centre_mask_px, tolerance = settings.tolerance_rel;
    const auto& phases = settings.phases;
    const auto& tracks = run.tracks;
    const auto& obs = run.observations;
    const auto& bins = run.bins;
    const std::string& times_csv = request.times_csv;
    const std::string& covariate = request.covariate;
    const std::string& mask_path = settings.mask_path;

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
      const auto& r_px = run.profiler->radius_px();
      std::ostringstream csv;
      csv << "# epitem track: azimuthal mean intensity per frame (rows) vs |g| (columns, 1/Å)\nframe,time_s";
      for (double r : r_px)
        csv << "," << std::setprecision(6) << r * pixel_invA;
      csv << "\n";
      Image img(int(r_px.size()), n_frames);
      std::ostringstream peaks_csv;
      peaks_csv << "frame,g_inv_A,d_A,height,prominence,snr,phase,hkl,index_status\n";
      for (int f = 0; f < n_frames; ++f) {
        const auto& p = run.frames[size_t(f)].profile;
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

    const auto [n_det, n_indexed, n_ambiguous] = record_track_results(run, seconds, rec);
    if (split)
      rec.result("mpi", mpi_record);
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
