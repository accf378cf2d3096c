// `epitem phasemap IMAGE|MOVIE --phase NAME=gx,gy;...`: Bragg-filtered phase regions per frame,
// projected area of each phase [nm²], centroid trajectory of one phase, colour overlay PNG.
#include <cmath>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>

#include "cli.hpp"
#include "epitem/error.hpp"
#include "epitem/movie.hpp"
#include "epitem/output.hpp"
#include "epitem/parallel.hpp"
#include "epitem/phasemap.hpp"
#include "epitem/plot.hpp"
#include "epitem/png.hpp"

namespace epitem::cli {

namespace {

// One frame's CSV values (per phase), packed to travel from the rank that mapped it to rank 0.
struct FrameRow {
  std::vector<double> area_nm2, centroid_x_nm, centroid_y_nm, fringe_contrast;
  std::vector<char> bytes() const {
    parallel::ByteWriter w;
    for (const auto* v : {&area_nm2, &centroid_x_nm, &centroid_y_nm, &fringe_contrast}) {
      w.put(std::uint64_t(v->size()));
      for (double x : *v)
        w.put(x);
    }
    return w.bytes;
  }
  static FrameRow from(const std::vector<char>& bytes) {
    parallel::ByteReader r(bytes);
    FrameRow row;
    for (auto* v : {&row.area_nm2, &row.centroid_x_nm, &row.centroid_y_nm, &row.fringe_contrast}) {
      v->resize(std::size_t(r.get<std::uint64_t>()));
      for (double& x : *v)
        x = r.get<double>();
    }
    return row;
  }
};

int phasemap_main(int argc, char** argv) {
  return run_guarded("phasemap", [&]() -> int {
    parallel::start();  // under mpirun: frames are split over the ranks (docs/mpi.md)
    po::options_description opts("phasemap options");
    std::string input, out, png, maps_path, times_csv, track;
    std::vector<std::string> phase_texts, peak_texts;
    double fps = 0, threshold = 0;
    int png_frame = -1;
    opts.add_options()
      ("input", po::value<std::string>(&input), "image or movie: any image file epitem reads (TIFF, DM3/DM4, SER, EMD, MRC, PNG...; multi-frame = movie) or a folder of one-frame files")
      ("phase", po::value<std::vector<std::string>>(&phase_texts)->composing(),
       "NAME=gx,gy;gx,gy[@colour]: reflections [1/Å, x right, y up] (Friedel mates added), or "
       "NAME=peaks.csv[:n,m] (rows of an epitem fft/saed/index table); repeat per phase")
      ("phase-peaks", po::value<std::vector<std::string>>(&peak_texts)->composing(),
       "index.csv: the spots of an `epitem index` table, one phase per name in its phase column; "
       "or NAME=peaks.csv[:n,m][@colour] as for --phase")
      ("out,o", po::value<std::string>(&out), "per-frame CSV: areas [nm²] and centroids [nm] (+ JSON sidecar)")
      ("png", po::value<std::string>(&png), "colour overlay of one frame (+ area vs time and trajectory)")
      ("png-frame", po::value<int>(&png_frame), "frame shown in the PNG (0-based; default last)")
      ("maps", po::value<std::string>(&maps_path),
       "float32 TIFF of the PNG frame: per phase its amplitude then its Bragg-filtered image")
      ("pixel-size", po::value<std::string>(), "pixel size [Å] if the TIFF has none (e.g. 0.1A)")
      ("mask-sigma", po::value<std::string>(),
       "Gaussian mask sigma [1/Å] (also 0.5/nm); default 1/4 of the distance from a chosen "
       "reflection to the nearest other spectral peak (frame 0)")
      ("threshold", po::value<double>(&threshold)->default_value(0),
       "region threshold as a fraction of the 99th-percentile amplitude (0 = half the plateau amplitude)")
      ("periodic", po::bool_switch(), "the frames are periodic (simulated images): filter without padding")
      ("track", po::value<std::string>(&track), "phase whose centroid is tracked (default: NiFe if given, else the first)")
      ("fps", po::value<double>(&fps), "frame rate [frames/s] for the time column")
      ("times", po::value<std::string>(&times_csv), "CSV with a time_s column, one row per frame");
    po::positional_options_description pos;
    pos.add("input", 1);
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(argc, argv,
                            "usage: epitem phasemap IMAGE|MOVIE --phase-peaks index.csv | --phase NiFe=gx,gy;gx,gy "
                            "--phase Fe3O4=gx,gy --out areas.csv [--png overlay.png] [--fps F]\n"
                            "Bragg-filtered inverse FFT per phase (soft masks on the reflections and "
                            "their Friedel mates), thresholded into regions: projected areas [nm²] and "
                            "centroid trajectory per frame.",
                            opts, pos, vm, common))
      return EXIT_OK;
    if (input.empty())
      throw po::error("missing IMAGE or MOVIE");
    if (phase_texts.empty() && peak_texts.empty())
      throw po::error("give --phase-peaks index.csv (from epitem index) or --phase NAME=gx,gy (1/Å)");
    if (out.empty())
      throw po::error("missing --out areas.csv");
    if (vm.count("fps") && vm.count("times"))
      throw po::error("give --fps or --times, not both");
    if (threshold < 0 || threshold >= 1)
      throw po::error("--threshold must be in [0, 1)");
    PhaseMapSpec spec;
    spec.threshold_fraction = threshold;
    spec.periodic = vm["periodic"].as<bool>();
    get_quantity(vm, "mask-sigma", Dimension::InverseLength, spec.mask_sigma_invA);
    double pixel_A = 0;
    get_quantity(vm, "pixel-size", Dimension::Length, pixel_A);
    if (vm.count("pixel-size") && !(pixel_A > 0))
      throw po::error("--pixel-size must be > 0");

    const Rgb palette[] = {colors::blue, colors::red, colors::green, colors::yellow, colors::cyan, colors::magenta};
    std::vector<PhaseFilter> phases;
    // The paper's colours by name (NiFe blue, Fe3O4 red), else the palette in order.
    auto add = [&](PhaseFilter p, bool colour_given) {
      if (!colour_given)
        p.color = p.name == "NiFe" ? colors::blue : p.name == "Fe3O4" ? colors::red : palette[phases.size() % 6];
      for (const auto& q : phases)
        if (q.name == p.name)
          throw po::error("phase name '" + p.name + "' given twice");
      phases.push_back(p);
    };
    for (const std::string& text : phase_texts)
      add(parse_phase_filter(text), text.find('@') != std::string::npos);
    for (const std::string& text : peak_texts)
      for (const PhaseFilter& p : phases_from_peaks(text))
        add(p, text.find('@') != std::string::npos);
    // The metal particle by default: the phase named NiFe if there is one, else the first.
    int tracked = 0;
    for (size_t i = 0; i < phases.size(); ++i)
      if (phases[i].name == "NiFe")
        tracked = int(i);
    if (!track.empty()) {
      tracked = -1;
      for (size_t i = 0; i < phases.size(); ++i)
        if (phases[i].name == track)
          tracked = int(i);
      if (tracked < 0)
        throw po::error("--track " + track + " is not one of the --phase names");
    }

    RunRecord rec("phasemap");
    rec.add("input", input);
    Json jphases = Json::array();
    for (const auto& p : phases) {
      Json jp = Json::object();
      jp.set("name", p.name);
      Json refl = Json::array();
      for (const auto& r : p.reflections)
        refl.push(Json(std::vector<double>{r.gx_invA, r.gy_invA}));
      jp.set("g_invA_x_right_y_up", refl);
      jphases.push(jp);
    }
    rec.add("phases", jphases);
    rec.add("mask_sigma_invA", spec.mask_sigma_invA, "1/Å (0 = auto)");
    rec.add("threshold_fraction", threshold, "(0 = half plateau)");
    rec.add("periodic", Json(spec.periodic));
    rec.add("track", phases[size_t(tracked)].name);
    if (common.dry_run) {
      if (parallel::is_root())
        rec.echo(std::cout);
      std::cout << "# dry run: about 16 bytes per pixel per frame plus 8 per pixel per phase; nothing computed\n";
      return EXIT_OK;
    }
    // Streamed: one frame in memory at a time (plus the one shown in the PNG).
    const Movie movie(input);
    const size_t n_frames = movie.frame_count();
    if (n_frames < 1)
      fail(input, ": holds no frames");
    const auto load_frame = [&](size_t f) {
      Image frame = movie.frame(f);
      if (pixel_A > 0) {
        frame.pixel_size_A = pixel_A;
        frame.pixel_size_y_A = 0;
      }
      return frame;
    };
    if (!parallel::is_root())
      common.quiet = true;  // rank 0 prints and writes
    // Frame 0 on rank 0 only: its pixel size, and the automatic mask σ every rank then uses.
    Image frame0;
    parallel::collective([&] {
      if (!parallel::is_root())
        return;
      frame0 = load_frame(0);
      if (!(frame0.pixel_size_A > 0))
        fail(input, ": no pixel size in the file; give --pixel-size (e.g. 0.1A)");
    });
    rec.add("pixel_size_A", frame0.pixel_size_A, "Å");
    rec.add("pixel_size_source", std::string(pixel_A > 0 ? "--pixel-size" : "file"));
    rec.add("frames", double(n_frames));
    FrameTimes times;
    if (fps > 0 || vm.count("fps")) {
      times = frame_times_from_fps(n_frames, fps);
      rec.add("frame_time_source", std::string("--fps"));
    } else if (!times_csv.empty()) {
      times = read_frame_times_csv(times_csv, n_frames);
      rec.add("frame_time_source", std::string("--frame-times"));
    } else if (movie.info().frame_time_s > 0 && n_frames > 1) {
      times = frame_times_from_fps(n_frames, 1 / movie.info().frame_time_s);
      rec.add("frame_time_source", std::string("file"));
      rec.add("frame_time_s", movie.info().frame_time_s, "s");
    }
    if (!common.quiet)
      rec.echo(std::cout);
    const int shown = png_frame >= 0 ? png_frame : int(n_frames) - 1;
    if (shown >= int(n_frames))
      fail("--png-frame ", shown, " is out of range: the input has ", n_frames, " frames (0-based)");

    // One mask for the whole movie, so that areas compare over time: the automatic σ of frame 0.
    if (!(spec.mask_sigma_invA > 0)) {
      parallel::collective([&] {
        if (parallel::is_root())
          spec.mask_sigma_invA = auto_mask_sigma_invA(frame0, phases);
      });
      parallel::ByteWriter w;
      w.put(spec.mask_sigma_invA);
      parallel::broadcast(w.bytes);
      spec.mask_sigma_invA = parallel::ByteReader(w.bytes).get<double>();
      rec.add("mask_sigma_auto_invA", spec.mask_sigma_invA, "1/Å (from frame 0)");
    }
    ProgressBar bar(common.quiet);
    auto progress = bar.callback();
    // Under mpirun frame f is mapped on rank block_owner(f) (a contiguous block of frames per
    // rank), except the frame shown in the PNG/maps: rank 0 maps it and keeps its images.
    const auto owner = [&](int f) { return f == shown ? 0 : parallel::block_owner(f, int(n_frames)); };
    std::map<int, FrameRow> rows;  // this rank's frames
    PhaseMapFrame shown_map;
    Image shown_frame;
    parallel::collective([&] {  // a rank that cannot read or map its frame stops all ranks
      std::size_t done = 0, todo = 0;
      for (int f = 0; f < int(n_frames); ++f)
        todo += owner(f) == parallel::rank();
      for (int f = 0; f < int(n_frames); ++f) {
        if (owner(f) != parallel::rank())
          continue;
        Image frame = f == 0 ? std::move(frame0) : load_frame(std::size_t(f));
        PhaseMapFrame m = phase_map(frame, phases, spec);
        rows[f] = {m.area_nm2, m.centroid_x_nm, m.centroid_y_nm, m.fringe_contrast};
        if (f == shown) {
          shown_map = std::move(m);
          shown_frame = std::move(frame);
        }
        if (progress)
          progress(++done, todo, "phase maps");
      }
    });
    bar.finish();
    std::ostringstream csv;
    csv << "# epitem phasemap " << input << ": projected areas in nm², centroids in nm from the top-left "
           "corner (x right, y down)\nframe,time_s";
    for (const auto& p : phases)
      csv << ",area_" << p.name << "_nm2";
    for (const auto& p : phases)
      csv << ",centroid_x_" << p.name << "_nm,centroid_y_" << p.name << "_nm";
    for (const auto& p : phases)
      csv << ",fringe_contrast_" << p.name;
    csv << "\n" << std::setprecision(6);
    std::vector<double> lowest_contrast(phases.size(), std::numeric_limits<double>::infinity());
    std::vector<std::vector<double>> area(phases.size());
    std::vector<double> time_axis, track_x, track_y;
    // Rank 0 writes the rows in frame order as they arrive.
    parallel::collect_in_order(int(n_frames), owner, [&](int f) { return rows.at(f).bytes(); },
                               [&](int fi, const std::vector<char>& bytes) {
      const FrameRow m = FrameRow::from(bytes);
      const std::size_t f = std::size_t(fi);
      double t = times.time_s.empty() ? double(f) : times.time_s[f];
      time_axis.push_back(t);
      csv << f << ",";
      if (!times.time_s.empty())
        csv << t;
      for (size_t p = 0; p < phases.size(); ++p) {
        csv << "," << m.area_nm2[p];
        area[p].push_back(m.area_nm2[p]);
      }
      for (size_t p = 0; p < phases.size(); ++p) {
        csv << ",";
        if (std::isfinite(m.centroid_x_nm[p]))
          csv << m.centroid_x_nm[p];
        csv << ",";
        if (std::isfinite(m.centroid_y_nm[p]))
          csv << m.centroid_y_nm[p];
      }
      for (size_t p = 0; p < phases.size(); ++p) {
        csv << ",";
        if (std::isfinite(m.fringe_contrast[p])) {
          csv << m.fringe_contrast[p];
          lowest_contrast[p] = std::min(lowest_contrast[p], m.fringe_contrast[p]);
        }
      }
      csv << "\n";
      track_x.push_back(m.centroid_x_nm[size_t(tracked)]);
      track_y.push_back(m.centroid_y_nm[size_t(tracked)]);
    });
    if (!parallel::is_root())
      return EXIT_OK;
    for (size_t p = 0; p < phases.size(); ++p)
      if (lowest_contrast[p] < MIN_FRINGE_CONTRAST) {
        std::ostringstream msg;
        msg << std::setprecision(2) << "phase " << phases[p].name << ": fringe contrast down to " << lowest_contrast[p]
            << " (< " << MIN_FRINGE_CONTRAST << "): its fringes are barely imaged there, so its region and area "
            << "are unreliable; choose stronger reflections or another focus";
        warn_to_stderr()(msg.str());
      }
    const std::vector<std::string> inputs = {input, times_csv};
    write_text_file(out, csv.str(), inputs);
    rec.add_output(out);
    for (size_t p = 0; p < phases.size(); ++p) {
      rec.result("area_" + phases[p].name + "_nm2_first", area[p].front());
      rec.result("area_" + phases[p].name + "_nm2_last", area[p].back());
      rec.result("threshold_" + phases[p].name, shown_map.threshold[p]);
    }
    if (!maps_path.empty()) {
      std::vector<Image> pages;
      for (size_t p = 0; p < phases.size(); ++p) {
        pages.push_back(shown_map.amplitude[p]);
        pages.push_back(shown_map.filtered[p]);
      }
      write_tiff(maps_path, pages, rec.tiff_description());
      rec.add_output(maps_path);
    }
    if (!png.empty()) {
      const Image& frame = shown_frame;
      const int zoom = std::max(1, 400 / std::max(frame.nx, frame.ny));  // small frames: enlarge
      Canvas overlay = upscale(phase_overlay(frame, shown_map, phases), zoom);
      const double px_nm = frame.pixel_size_A / 10 / zoom;  // nm per PNG pixel
      // Trajectory of the tracked phase's centroid (white line, dot at the shown frame).
      for (size_t f = 1; f < track_x.size(); ++f)
        if (std::isfinite(track_x[f - 1]) && std::isfinite(track_x[f]))
          overlay.draw_line(track_x[f - 1] / px_nm, track_y[f - 1] / px_nm, track_x[f] / px_nm, track_y[f] / px_nm,
                            colors::white, 2);
      if (std::isfinite(track_x[size_t(shown)]))
        overlay.fill_circle(track_x[size_t(shown)] / px_nm, track_y[size_t(shown)] / px_nm, 4, colors::white);
      const int scale = std::max(1, overlay.width() / 400);
      int y = 4;
      for (size_t p = 0; p < phases.size(); ++p, y += 14 * scale) {
        std::ostringstream l;
        l << phases[p].name << ": " << std::setprecision(4) << shown_map.area_nm2[p] << " nm2";
        overlay.draw_label(4, y, l.str(), phases[p].color, scale);
      }
      double bar_nm = std::pow(10.0, std::floor(std::log10(overlay.width() * px_nm / 4)));
      std::ostringstream bl;
      bl << bar_nm << " nm";
      overlay.draw_scale_bar(1.0 / px_nm, bar_nm, bl.str());
      Canvas sheet = overlay;
      if (n_frames > 1) {
        std::vector<PlotSeries> series;
        for (size_t p = 0; p < phases.size(); ++p) {
          PlotSeries s;
          s.x = time_axis;
          s.y = area[p];
          s.color = phases[p].color;
          s.label = phases[p].name;
          series.push_back(s);
        }
        Canvas plot = line_plot(series, "projected area per frame", times.time_s.empty() ? "frame" : "time (s)",
                                "area (nm2)", 640, 400);
        sheet = Canvas(overlay.width() + plot.width(), std::max(overlay.height(), plot.height()), colors::white);
        sheet.paste(overlay, 0, 0);
        sheet.paste(plot, overlay.width(), 0);
      }
      write_png(sheet, png);
      rec.add_output(png);
    }
    rec.write_sidecar(out);
    if (!common.quiet) {
      for (size_t p = 0; p < phases.size(); ++p) {
        std::cout << "# " << phases[p].name << ": area " << std::setprecision(5) << area[p].front() << " nm² (frame 0)";
        if (n_frames > 1)
          std::cout << " → " << area[p].back() << " nm² (last frame)";
        std::cout << ", threshold " << shown_map.threshold[p] << "\n";
      }
      std::cout << "# wrote " << out << " and " << sidecar_path(out) << "\n";
    }
    return EXIT_OK;
  });
}

}  // namespace

EPITEM_COMMAND(phasemap, 81, "phase regions from Bragg-filtered fringes: areas, trajectory, overlay",
               phasemap_main);

}  // namespace epitem::cli
