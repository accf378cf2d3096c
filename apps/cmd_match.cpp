// `epitem match EXP MODEL`: finds defocus, thickness, tilt, rotation and scale of an experimental
// HRTEM image by simulating a (tilt, thickness, defocus) map from stored exit waves and scoring
// each cell against the experiment (docs/match.md).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>

#include "analysis_cli.hpp"
#include "cli.hpp"
#include "epitem/error.hpp"
#include "epitem/image_file.hpp"
#include "epitem/interface.hpp"
#include "epitem/match.hpp"
#include "epitem/multislice.hpp"
#include "epitem/output.hpp"
#include "epitem/parallel.hpp"
#include "epitem/png.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"
#include "imaging_options.hpp"

namespace epitem::cli {
namespace {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::stringstream ss(text);
  for (std::string p; std::getline(ss, p, sep);)
    parts.push_back(p);
  return parts;
}

// Unit suffix of "100nm" ("" for a bare number).
std::string unit_of(const std::string& text) {
  try {
    std::size_t used = 0;
    std::stod(text, &used);
    return text.substr(used);
  } catch (const std::exception&) {
    return "";
  }
}

// "START:STOP:STEP", "START:STOP" (step_needed: an error; else returns {start, stop} with
// is_interval set), "a,b,c" or one value. Bare numbers take the unit of the last entry.
std::vector<double> parse_range(const std::string& text, Dimension dim, const std::string& what, double bare,
                                bool step_needed, bool* is_interval = nullptr) {
  if (is_interval)
    *is_interval = false;
  const bool colon = text.find(':') != std::string::npos;
  std::vector<std::string> parts = split(text, colon ? ':' : ',');
  if (parts.empty() || (colon && parts.size() > 3))
    throw po::error(what + " '" + text + "': expected START:STOP:STEP (e.g. 0:100nm:2nm), a list a,b,c or one value");
  std::string unit;
  for (auto it = parts.rbegin(); it != parts.rend() && unit.empty(); ++it)
    unit = unit_of(*it);
  std::vector<double> v;
  for (const std::string& p : parts)
    v.push_back(parse_quantity(unit_of(p).empty() ? p + unit : p, dim, what, bare));
  if (!colon)
    return v;
  if (parts.size() == 2) {
    if (step_needed)
      throw po::error(what + " '" + text + "': give a step, START:STOP:STEP (e.g. 0:100nm:2nm)");
    if (!(v[1] >= v[0]))
      throw po::error(what + " '" + text + "' has no points: give START:STOP with START <= STOP");
    if (is_interval)
      *is_interval = true;
    return v;
  }
  if (!(v[2] > 0) || !(v[1] >= v[0]))
    throw po::error(what + " '" + text + "' has no points: give START:STOP:STEP with START <= STOP and STEP > 0");
  std::vector<double> out;
  const int n = int(std::floor((v[1] - v[0]) / v[2] + 1e-9));
  if (n > 100000)
    throw po::error(what + " '" + text + "': more than 100000 points; use a larger step");
  for (int i = 0; i <= n; ++i)
    out.push_back(v[0] + i * v[2]);
  return out;
}

// "3%" / "3" (bare = %) → fraction.
double parse_percent(const std::string& text, const std::string& what) {
  std::string t = text;
  if (!t.empty() && t.back() == '%')
    t.pop_back();
  double v = 0;
  try {
    std::size_t used = 0;
    v = std::stod(t, &used);
    if (used != t.size())
      throw std::invalid_argument(t);
  } catch (const std::exception&) {
    throw po::error(what + " '" + text + "': expected a percentage, e.g. 3%");
  }
  if (!(v >= 0 && v < 50))
    throw po::error(what + " '" + text + "' must be in [0, 50) %");
  return v / 100;
}

// Page table of an `epitem hrtem` series from its JSON sidecar: (thickness, defocus, tilt x, y).
struct SeriesPage {
  double thickness_A = -1, defocus_A = 0, tilt_x_mrad = 0, tilt_y_mrad = 0;
};
std::vector<SeriesPage> read_series_pages(const std::string& series) {
  const std::string side = sidecar_path(series);
  std::ifstream in(side);
  if (!in)
    fail(series, ": no sidecar ", side, " with the page table (defocus, thickness per page); make the series with "
                 "`epitem hrtem MODEL --defocus-series ... --thickness-series ... --out ", series, "`");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const std::size_t at = text.find("\"pages\"");
  if (at == std::string::npos)
    fail(side, ": no \"pages\" table; is it the sidecar of an `epitem hrtem` series?");
  std::vector<SeriesPage> pages;
  const std::regex object("\\{[^{}]*\\}");
  const std::regex number_field("\"(thickness_A|defocus_A|tilt_x_mrad|tilt_y_mrad)\"\\s*:\\s*(-?[0-9.eE+-]+)");
  const std::string rest = text.substr(at);
  const std::size_t end = rest.find(']');
  const std::string table = rest.substr(0, end);
  for (std::sregex_iterator it(table.begin(), table.end(), object), stop; it != stop; ++it) {
    SeriesPage p;
    const std::string o = it->str();
    for (std::sregex_iterator f(o.begin(), o.end(), number_field); f != stop; ++f) {
      const double v = std::stod((*f)[2].str());
      const std::string k = (*f)[1].str();
      (k == "thickness_A" ? p.thickness_A : k == "defocus_A" ? p.defocus_A : k == "tilt_x_mrad" ? p.tilt_x_mrad : p.tilt_y_mrad) = v;
    }
    pages.push_back(p);
  }
  if (pages.empty())
    fail(side, ": the \"pages\" table is empty");
  return pages;
}

// Panel for the PNG: at most 320 px, upscaled to at least 200 px.
Canvas panel(const Image& img, bool colour) {
  Contrast c;
  c.low_percentile = 1;
  c.high_percentile = 99;
  Canvas out = colour ? colormapped_canvas(img, c) : canvas_from_image(img, c);
  const int zoom = std::max(1, 200 / std::max(img.nx, img.ny));
  return zoom > 1 ? upscale(out, zoom) : out;
}

std::string fmt(double v, int precision = 4) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", precision, v);
  return buf;
}

int match_main(int argc, char** argv) {
  parallel::start();  // under mpirun: the map's rows are split over the ranks (docs/mpi.md)
  return run_guarded("match", [&]() -> int {
    const std::string usage =
        "usage: epitem match EXP MODEL [lens options] --defocus 0:100nm:2nm [--thickness auto|20:200A]\n"
        "         [--tilt-x -1:1mrad:0.5mrad --tilt-y ...] [--rotate 5deg] [--scale-range 3%] [--roi x,y,w,h]\n"
        "         --out match.csv [--png match.png]\n"
        "       epitem match EXP --preset nife-fe3o4 [...]      epitem match EXP --simulated series.tif [...]\n\n"
        "Fits simulations to an experimental HRTEM image (docs/match.md). One multislice run per tilt keeps\n"
        "the exit waves at every candidate thickness (slice boundaries in --thickness); every defocus is\n"
        "imaged from them (lens, coherence, MTF, the experiment's pixel), aligned to the experiment\n"
        "(rotation within --rotate, scale within --scale-range, sub-pixel shift) and scored on the ROI by\n"
        "NCC and chi2 weighted by the noise estimated from the experiment. Then refines at the best cell:\n"
        "rotation/scale, continuous defocus and interpolated thickness (optionally --refine cs,astigmatism).\n"
        "Uncertainties: half-width of the 95 % region (delta chi2 = 3.84 x max(1, reduced chi2)).\n"
        "Geometry: the experiment shows the simulation rotated counter-clockwise on screen by\n"
        "rotation_deg; its true pixel is scale x the stated one. A poor fit is said so (stdout, stderr,\n"
        "sidecar fit_poor). Outputs: map CSV (--out), map TIFF (same name .tif: chi2_reduced then NCC\n"
        "pages, rows = thickness, columns = defocus, one pair per tilt), PNG, JSON sidecar.\n\n" +
        std::string(IMAGING_CONVENTIONS);
    po::options_description io("Input and output");
    io.add_options()
      ("experiment", po::value<std::string>(), "experimental image (any format epitem reads; positional)")
      ("model", po::value<std::string>(), "atomic model (extended XYZ, CIF-derived; positional)")
      ("preset", po::value<std::string>(), "build a named interface model instead: nife-fe3o4")
      ("simulated", po::value<std::string>(), "match against an existing `epitem hrtem` series TIFF (its sidecar gives "
       "each page's defocus and thickness) instead of simulating")
      ("page", po::value<int>()->default_value(0), "page of the experiment file (from 0)")
      ("pixel-size", po::value<std::string>(), "experiment pixel size [Å] (overrides or supplies the file's)")
      ("out,o", po::value<std::string>(), "score map CSV (+ .tif map, + .json sidecar)")
      ("png", po::value<std::string>(), "PNG: experiment | best simulation | difference | chi2 map");
    po::options_description search("Search");
    search.add_options()
      ("thickness", po::value<std::string>()->default_value("auto"),
       "auto (every slice boundary of the model) | MIN:MAX [Å] (boundaries within) | MIN:MAX:STEP")
      ("tilt-x", po::value<std::string>()->default_value("0mrad"), "beam tilt x values [mrad]: one, a,b,c or START:STOP:STEP")
      ("tilt-y", po::value<std::string>()->default_value("0mrad"), "beam tilt y values [mrad]")
      ("rotate", po::value<std::string>()->default_value("0deg"), "search rotations within ±this [deg] (0 = none)")
      ("scale-range", po::value<std::string>()->default_value("0%"), "search scales within ±this [%] (0 = none)")
      ("roi", po::value<std::string>(), "region of the experiment scored, x,y,w,h pixels (default: all)")
      ("max-shift", po::value<std::string>(), "largest shift searched [Å] (default: half the model box, ≤ ROI/2)")
      ("refine", po::value<std::string>()->default_value(""), "also refine: cs, astigmatism (comma list)");
    po::options_description ms("Multislice");
    ms.add_options()
      ("energy", po::value<std::string>()->default_value("200kV"), "beam energy [eV]")
      ("sampling", po::value<std::string>()->default_value("0.08A"), "largest pixel [Å]")
      ("slice", po::value<std::string>()->default_value("2A"), "slice thickness [Å]")
      ("phonons", po::value<int>()->default_value(0), "frozen-phonon configurations (0 = static atoms)")
      ("phonon-seed", po::value<unsigned long long>()->default_value(1), "seed of the atom displacements")
      ("table", po::value<std::string>()->default_value("kirkland"), "scattering factors: kirkland | peng");
    io.add(search).add(ms).add(imaging_options("1mm"));
    po::positional_options_description pos;
    pos.add("experiment", 1).add("model", 1);
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(argc, argv, usage, io, pos, vm, common))
      return EXIT_OK;
    if (!vm.count("experiment"))
      throw po::error("missing the experimental image EXP");
    const int sources = int(vm.count("model")) + int(vm.count("preset")) + int(vm.count("simulated"));
    if (sources != 1)
      throw po::error("give exactly one of MODEL, --preset nife-fe3o4 or --simulated series.tif");
    if (!vm.count("out"))
      throw po::error("missing --out match.csv");
    for (const char* unused : {"defocus-series", "tilt-series", "dose", "pixel", "drift"})
      if (vm.count(unused) && !vm[unused].defaulted())
        throw po::error(std::string("--") + unused + " is not used by match (the experiment sets the pixel and noise; "
                        "series are the --defocus/--thickness/--tilt-x/--tilt-y ranges)");
    if (vm.count("tilt") && !vm["tilt"].defaulted())
      throw po::error("--tilt is not used by match: give beam tilt ranges with --tilt-x and --tilt-y");
    const std::string exp_path = vm["experiment"].as<std::string>();
    const std::string out_path = vm["out"].as<std::string>();
    const std::string png_path = vm.count("png") ? vm["png"].as<std::string>() : "";
    const std::string ext = file_extension(out_path);
    const std::string map_tif = out_path.substr(0, out_path.size() - (ext.empty() ? 0 : ext.size() + 1)) + ".tif";
    if (ext == "tif" || ext == "tiff")
      throw po::error("--out is the map CSV (e.g. match.csv); the map TIFF is written beside it with .tif");
    require_readable(exp_path, "experiment");

    // Lens etc. from the shared imaging options; --defocus is a range here, so it is resolved
    // at a placeholder value and parsed below.
    double energy_eV = 200e3;
    get_quantity(vm, "energy", Dimension::Energy, energy_eV);
    po::variables_map vm_lens = vm;
    vm_lens.erase("defocus");
    vm_lens.insert({"defocus", po::variable_value(boost::any(std::string("0A")), false)});
    ImagingSetup setup = resolve_imaging_options(vm_lens, energy_eV);
    if (setup.coherence_auto)  // match images every trial (defocus, tilt): keeps the cheap model
      setup.coherence_rule = "auto: envelope (match images every trial defocus and tilt; give "
                             "--coherence integrate for the accurate, ~nodes x slower model)";
    const std::string defocus_text = vm["defocus"].as<std::string>();
    std::vector<double> defocus_A;
    std::string defocus_note;
    if (defocus_text == "scherzer") {
      const double df = scherzer_defocus_A(setup.lens.aberrations.Cs_A, energy_eV);
      for (int i = -15; i <= 15; ++i)
        defocus_A.push_back(df + i * 20.0);
      defocus_note = "default: Scherzer " + fmt(df / 10) + " nm +- 30 nm in 2 nm steps";
    } else {
      defocus_A = parse_range(defocus_text, Dimension::Length, "--defocus", 1.0, true);
      defocus_note = "given";
    }
    std::vector<std::pair<double, double>> tilts;
    for (double tx : parse_range(vm["tilt-x"].as<std::string>(), Dimension::BeamAngle, "--tilt-x", 1.0, true))
      for (double ty : parse_range(vm["tilt-y"].as<std::string>(), Dimension::BeamAngle, "--tilt-y", 1.0, true))
        tilts.push_back({tx, ty});
    MatchSpec spec;
    spec.defocus_A = defocus_A;
    spec.tilts_mrad = tilts;
    spec.max_rotation_deg = parse_quantity(vm["rotate"].as<std::string>(), Dimension::CrystalAngle, "--rotate");
    if (spec.max_rotation_deg < 0 || spec.max_rotation_deg > 45)
      throw po::error("--rotate must be in [0, 45] deg");
    spec.max_scale_change = parse_percent(vm["scale-range"].as<std::string>(), "--scale-range");
    for (const std::string& r : split(vm["refine"].as<std::string>(), ',')) {
      if (r == "cs")
        spec.refine_cs = true;
      else if (r == "astigmatism")
        spec.refine_astigmatism = true;
      else if (!r.empty())
        throw po::error("--refine '" + r + "': known are cs, astigmatism");
    }
    Roi roi;
    if (vm.count("roi"))
      roi = parse_roi(vm["roi"].as<std::string>());

    // The experiment.
    const auto file = open_image_file(exp_path);
    const int page = vm["page"].as<int>();
    if (page < 0 || page >= int(file->frame_count()))
      fail(exp_path, ": --page ", page, " does not exist (the file has ", file->frame_count(), " pages, from 0)");
    Image experiment = file->frame(std::size_t(page));
    std::string pixel_source = "file";
    if (vm.count("pixel-size")) {
      experiment.pixel_size_A = parse_quantity(vm["pixel-size"].as<std::string>(), Dimension::Length, "--pixel-size");
      experiment.pixel_size_y_A = 0;
      pixel_source = "--pixel-size";
      if (!(experiment.pixel_size_A > 0))
        fail("--pixel-size must be > 0 Å, got ", experiment.pixel_size_A);
    }
    if (!(experiment.pixel_size_A > 0))
      fail(exp_path, ": no pixel size in the file; give it with --pixel-size (e.g. --pixel-size 0.15A)");

    RunRecord record("match");
    record.add("experiment", exp_path);
    record.add("experiment_page", Json(page));
    record.add("experiment_pixel_A", experiment.pixel_size_A, "Å");
    record.add("experiment_pixel_source", pixel_source);
    record.add("energy_eV", energy_eV, "eV");
    record.add("defocus_range_A", Json(defocus_A));
    record.add("defocus_range_source", defocus_note);
    Json tilt_list = Json::array();
    for (const auto& t : tilts)
      tilt_list.push(Json(std::vector<double>{t.first, t.second}));
    record.add("tilts_mrad", tilt_list);
    record.add("rotation_search_deg", spec.max_rotation_deg, "deg");
    record.add("scale_search_fraction", spec.max_scale_change);
    record.add("refine", vm["refine"].as<std::string>());

    // The source of simulated images.
    AtomicModel model;
    std::string model_desc;
    std::vector<ExitWaveStack> stacks;
    std::vector<Image> series_pages;
    std::vector<SeriesPage> series_table;
    Grid grid;
    double multislice_seconds = 0;
    Json multislice_json;
    MultisliceSpec ms_spec;
    const auto t_start = std::chrono::steady_clock::now();
    bool thickness_interval = false;
    const std::string thickness_text = vm["thickness"].as<std::string>();
    std::vector<double> thickness_range;
    if (thickness_text != "auto")
      thickness_range = parse_range(thickness_text, Dimension::Length, "--thickness", 1.0, false, &thickness_interval);
    if (vm.count("simulated")) {
      const std::string series = vm["simulated"].as<std::string>();
      require_readable(series, "--simulated");
      series_pages = read_image_frames(series);
      series_table = read_series_pages(series);
      if (series_table.size() != series_pages.size())
        fail(series, ": ", series_pages.size(), " pages but the sidecar lists ", series_table.size());
      model_desc = "series " + series;
      record.add("simulated_series", series);
      for (const SeriesPage& p : series_table)
        if (std::find(spec.thickness_A.begin(), spec.thickness_A.end(), p.thickness_A) == spec.thickness_A.end())
          spec.thickness_A.push_back(p.thickness_A);
      std::sort(spec.thickness_A.begin(), spec.thickness_A.end());
      std::vector<double> dfs;
      for (const SeriesPage& p : series_table)
        if (std::find(dfs.begin(), dfs.end(), p.defocus_A) == dfs.end())
          dfs.push_back(p.defocus_A);
      std::sort(dfs.begin(), dfs.end());
      if (vm["defocus"].defaulted())
        spec.defocus_A = dfs;
      else  // keep the requested values the series holds
        spec.defocus_A.erase(std::remove_if(spec.defocus_A.begin(), spec.defocus_A.end(), [&](double d) {
          return std::none_of(dfs.begin(), dfs.end(), [&](double e) { return std::abs(d - e) < 1e-3; });
        }), spec.defocus_A.end());
      if (spec.defocus_A.empty())
        fail("--defocus ", defocus_text, ": none of the series' defocus values lies in the range");
      if (!thickness_range.empty()) {
        const double lo = thickness_range.front(), hi = thickness_range.back();
        spec.thickness_A.erase(std::remove_if(spec.thickness_A.begin(), spec.thickness_A.end(),
                                              [&](double t) { return t < lo - 1e-6 || t > hi + 1e-6; }),
                               spec.thickness_A.end());
        if (spec.thickness_A.empty())
          fail("--thickness ", thickness_text, ": none of the series' thicknesses lies in the range");
      }
      spec.tilts_mrad = {{series_table[0].tilt_x_mrad, series_table[0].tilt_y_mrad}};
      spec.continuous_defocus = false;
      spec.refine_cs = spec.refine_astigmatism = false;
      const Image& p0 = series_pages[0];
      grid.nx = p0.nx;
      grid.ny = p0.ny;
      grid.extent_x_A = p0.nx * p0.pixel_size_A;
      grid.extent_y_A = p0.ny * p0.pixel_y_A();
      if (!(p0.pixel_size_A > 0))
        fail(series, ": the series has no pixel size");
    } else {
      if (vm.count("preset")) {
        const std::string name = vm["preset"].as<std::string>();
        model = build_interface(preset_interface(name)).model;
        model_desc = "preset " + name;
      } else {
        model_desc = vm["model"].as<std::string>();
        require_readable(model_desc, "model");
        model = read_model(model_desc);
      }
      get_quantity(vm, "sampling", Dimension::Length, ms_spec.sampling_A);
      get_quantity(vm, "slice", Dimension::Length, ms_spec.slice_thickness_A);
      ms_spec.energy_eV = energy_eV;
      ms_spec.phonon_configs = vm["phonons"].as<int>();
      ms_spec.seed = vm["phonon-seed"].as<unsigned long long>();
      ms_spec.table = parse_scattering_table(vm["table"].as<std::string>());
      ms_spec.threads = common.threads;
      ms_spec.validate();
      grid = multislice_grid(model, ms_spec);
      const Slicing slicing = multislice_slicing(model, ms_spec);
      const double total = slicing.boundaries_A.back();
      if (thickness_text == "auto")
        spec.thickness_A = slice_boundaries_within(slicing, 0, total);
      else if (thickness_interval)
        spec.thickness_A = slice_boundaries_within(slicing, thickness_range[0], thickness_range[1]);
      else
        for (double t : thickness_range) {  // nearest boundary of each value
          double best = slicing.boundaries_A[1];
          for (double b : slicing.boundaries_A)
            if (b > 0 && std::abs(b - t) < std::abs(best - t))
              best = b;
          if (t > total + 1e-6)
            fail("--thickness ", thickness_text, ": ", t, " Å exceeds the model thickness ", total, " Å");
          if (spec.thickness_A.empty() || best > spec.thickness_A.back() + 1e-9)
            spec.thickness_A.push_back(best);
        }
      if (spec.thickness_A.empty())
        fail("--thickness ", thickness_text, " has no slice boundary of the model (", total, " Å thick in ",
             slicing.n_slices(), " slices of about ", total / slicing.n_slices(), " Å)");
      record.add("model", model_desc);
      record.add("atoms", Json(int(model.atoms.size())));
      record.add("grid", std::to_string(grid.nx) + "x" + std::to_string(grid.ny) + " at " +
                             fmt(grid.sampling_x_A()) + " A");
      record.add("slice_thickness_A", ms_spec.slice_thickness_A, "Å");
      record.add("phonon_configs", Json(ms_spec.phonon_configs));
      const double bytes = double(tilts.size()) * spec.thickness_A.size() * std::max(1, ms_spec.phonon_configs) *
                           double(grid.size()) * sizeof(cfloat);
      record.add("exit_wave_memory_bytes", bytes);
      const double avail = available_memory_bytes();
      if (!common.dry_run && avail > 0 && bytes + estimate_multislice_memory_bytes(model, ms_spec) > 0.8 * avail)
        fail("match: keeping ", tilts.size() * spec.thickness_A.size(), " exit waves needs ", format_bytes(bytes),
             " but ", format_bytes(avail), " is available: fewer --thickness points (MIN:MAX:STEP), tilts or phonons");
    }
    record.add("thicknesses_A", Json(spec.thickness_A));
    record.add_output(out_path);
    record.add_output(map_tif);
    if (!png_path.empty())
      record.add_output(png_path);
    record_imaging(record, setup, grid);
    if (parallel::is_root() && (!common.quiet || common.dry_run))
      record.echo(std::cout);
    if (common.dry_run) {
      std::cout << "# map: " << spec.tilts_mrad.size() << " tilt(s) x " << spec.thickness_A.size() << " thickness(es) x "
                << spec.defocus_A.size() << " defocus values = "
                << spec.tilts_mrad.size() * spec.thickness_A.size() * spec.defocus_A.size() << " cells\n";
      return EXIT_OK;
    }
    double max_shift_A = 0.5 * std::max(grid.extent_x_A, grid.extent_y_A);
    if (vm.count("max-shift"))
      max_shift_A = parse_quantity(vm["max-shift"].as<std::string>(), Dimension::Length, "--max-shift");
    const int max_shift_px = int(std::ceil(max_shift_A / experiment.pixel_size_A));
    // Under mpirun, rank 0 measures the FFT plans first and saves them as wisdom, which the other
    // ranks then load: the same algorithms everywhere, so the same rounding as one process.
    parallel::collective([&] {
      if (parallel::size() > 1 && parallel::is_root()) {
        prepare_experiment(experiment, roi, setup.detector.mtf, max_shift_px, exp_path);
        CameraModel(grid, experiment.pixel_size_A, setup.detector.mtf).from_image(Image(grid.nx, grid.ny));
        Fft2D(grid.nx, grid.ny, default_thread_count()).prepare();  // ImageFormer's
        if (!vm.count("simulated"))
          prepare_multislice_plans(model, ms_spec);
      }
    });
    parallel::check_point();
    const MatchExperiment exp = prepare_experiment(experiment, roi, setup.detector.mtf, max_shift_px, exp_path);
    const CameraModel camera(grid, experiment.pixel_size_A, setup.detector.mtf);
    check_lens_against_grid(setup.lens, grid, parallel::is_root() ? warn_to_stderr() : WarnFn());

    ProgressBar bar(common.quiet || !parallel::is_root());
    const ProgressFn progress = bar.callback();
    CellImageFn image_fn;
    std::vector<std::unique_ptr<StackImager>> imagers;
    if (vm.count("simulated")) {
      image_fn = [&](int, int k, const Lens& lens, double pixel_scale) -> Image {
        for (std::size_t i = 0; i < series_table.size(); ++i)
          if (std::abs(series_table[i].thickness_A - spec.thickness_A[std::size_t(k)]) < 1e-6 &&
              std::abs(series_table[i].defocus_A - lens.aberrations.defocus_A) < 1e-3)
            return camera.from_image(series_pages[i], pixel_scale);  // pages are already in the display frame
        fail("--simulated: the series has no page at thickness ", spec.thickness_A[std::size_t(k)], " Å, defocus ",
             lens.aberrations.defocus_A, " Å");
      };
    } else {
      for (std::size_t it = 0; it < tilts.size(); ++it) {
        MultisliceSpec s = ms_spec;
        s.beam_tilt_x_mrad = tilts[it].first;
        s.beam_tilt_y_mrad = tilts[it].second;
        MultisliceReport rep;
        ProgressFn step;
        if (progress)
          step = [&, it](std::size_t done, std::size_t total, const std::string& stage) {
            progress(it * total + done, tilts.size() * total, "multislice " + stage);
          };
        stacks.push_back(multislice_exit_waves(model, s, spec.thickness_A, step,
                                              parallel::is_root() ? warn_to_stderr() : WarnFn(), &rep));
        multislice_seconds += rep.total_seconds;
        if (it == 0)
          multislice_json = rep.to_json();
      }
      spec.thickness_A = stacks[0].thickness_A;
      for (const ExitWaveStack& s : stacks)
        imagers.push_back(std::make_unique<StackImager>(s, setup.coherence, camera));
      image_fn = [&](int tilt, int k, const Lens& lens, double pixel_scale) {
        return imagers[std::size_t(tilt)]->image(k, lens, pixel_scale);
      };
    }
    const auto t_work = std::chrono::steady_clock::now();
    const MatchResult res = run_match(exp, setup.lens, spec, image_fn, progress);
    bar.finish();
    const Json mpi_json = parallel::size() > 1
        ? parallel::run_json(multislice_seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - t_work).count())
        : Json();
    long ffts = 0;
    for (const auto& im : imagers)
      ffts += im->fft_count();
    ffts = long(parallel::sum(ffts));
    if (!parallel::is_root())
      return EXIT_OK;  // rank 0 writes and prints
    const double total_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();

    // Map CSV and TIFF.
    std::ostringstream csv;
    csv << "tilt_x_mrad,tilt_y_mrad,thickness_A,defocus_A,ncc,chi2,chi2_reduced,rotation_deg,scale,shift_x_px,shift_y_px\n";
    csv.precision(8);
    const int nd = int(spec.defocus_A.size()), nk = int(spec.thickness_A.size());
    std::vector<Image> pages;
    for (std::size_t t = 0; t < spec.tilts_mrad.size(); ++t) {
      Image chi(nd, nk), ncc(nd, nk);
      for (const MatchCell& c : res.map) {
        if (c.tilt != int(t))
          continue;
        const int d = int(std::find(spec.defocus_A.begin(), spec.defocus_A.end(), c.defocus_A) - spec.defocus_A.begin());
        chi.at(d, c.thickness) = float(c.score.chi2_reduced);
        ncc.at(d, c.thickness) = float(c.score.ncc);
        const MatchGeometry& g = c.score.geometry;
        csv << spec.tilts_mrad[t].first << "," << spec.tilts_mrad[t].second << "," << spec.thickness_A[std::size_t(c.thickness)]
            << "," << c.defocus_A << "," << c.score.ncc << "," << c.score.chi2 << "," << c.score.chi2_reduced << ","
            << g.rotation_deg << "," << g.scale << "," << g.shift_x_px << "," << g.shift_y_px << "\n";
      }
      pages.push_back(chi);
      pages.push_back(ncc);
    }

    auto put = [&](const std::string& key, const Estimate& e) {
      Json j = Json::object();
      j.set("value", e.value);
      j.set("uncertainty_95", e.uncertainty_95);
      record.result(key, j);
    };
    put("defocus_A", res.defocus_A);
    put("thickness_A", res.thickness_A);
    put("rotation_deg", res.rotation_deg);
    put("scale", res.scale);
    if (spec.refine_cs)
      put("Cs_A", res.Cs_A);
    if (spec.refine_astigmatism) {
      put("astigmatism_A", res.astigmatism_A);
      put("astigmatism_angle_deg", res.astigmatism_angle_deg);
    }
    record.result("best_tilt_mrad", Json(std::vector<double>{spec.tilts_mrad[std::size_t(res.best_cell.tilt)].first,
                                                              spec.tilts_mrad[std::size_t(res.best_cell.tilt)].second}));
    record.result("shift_px", Json(std::vector<double>{res.geometry.shift_x_px, res.geometry.shift_y_px}));
    record.result("best_grid_cell", Json(std::vector<double>{spec.thickness_A[std::size_t(res.best_cell.thickness)],
                                                              res.best_cell.defocus_A, res.best_cell.score.chi2_reduced,
                                                              res.best_cell.score.ncc}));
    record.result("ncc", res.score.ncc);
    record.result("chi2", res.score.chi2);
    record.result("chi2_reduced", res.score.chi2_reduced);
    record.result("noise_variance", exp.noise.variance);
    record.result("noise_independent_fraction", exp.noise.independent_fraction);
    record.result("explained_signal_fraction", res.explained_signal_fraction);
    record.result("fit_poor", Json(res.poor_fit));
    record.result("verdict", res.verdict);
    record.result("map_cells", Json(int(res.map.size())));
    record.result("images_formed", Json(res.images_formed));
    record.result("imaging_ffts", Json(ffts));
    record.result("multislice_seconds", multislice_seconds);
    record.result("imaging_seconds", res.imaging_seconds);
    record.result("alignment_seconds", res.alignment_seconds);
    record.result("total_seconds", total_seconds);
    if (!multislice_json.is_null())
      record.result("multislice", multislice_json);
    if (!mpi_json.is_null())
      record.result("mpi", mpi_json);

    write_tiff(map_tif, pages, record.tiff_description());
    if (!png_path.empty()) {
      Image diff = exp.roi;
      const double sd = std::sqrt(exp.noise.variance);
      for (std::size_t i = 0; i < diff.size(); ++i)
        diff.pixels[i] = float((exp.roi.pixels[i] - res.simulation_roi.pixels[i]) / sd);
      const Canvas p1 = panel(exp.roi, false), p2 = panel(res.simulation_roi, false), p3 = panel(diff, true);
      const Image& chi_map = pages[std::size_t(2 * res.best_cell.tilt)];
      const int zoom = std::max(1, std::min(p1.height() / std::max(1, chi_map.ny), p1.width() / std::max(1, chi_map.nx)));
      Image log_chi = chi_map;
      for (auto& v : log_chi.pixels)
        v = std::log10(std::max(v, 1e-6f));
      Contrast c;
      c.low_percentile = 0;
      c.high_percentile = 100;
      Canvas p4 = upscale(colormapped_canvas(log_chi, c), zoom);
      const int bd = int(std::find(spec.defocus_A.begin(), spec.defocus_A.end(), res.best_cell.defocus_A) - spec.defocus_A.begin());
      p4.draw_circle((bd + 0.5) * zoom, (res.best_cell.thickness + 0.5) * zoom, std::max(3, zoom / 2 + 2), colors::white, 2);
      const int gap = 4, top = 18, h = std::max(p1.height(), p4.height()) + top + 16;
      Canvas sheet(p1.width() + p2.width() + p3.width() + p4.width() + 3 * gap, h, colors::black);
      int x = 0;
      const std::vector<std::pair<const Canvas*, std::string>> items = {
          {&p1, "experiment (ROI)"}, {&p2, "best simulation"}, {&p3, "difference / noise sd"},
          {&p4, "log chi2: x df, y t"}};
      for (const auto& [canvas, label] : items) {
        sheet.paste(*canvas, x, top);
        sheet.draw_text(x + 2, 4, label, colors::white);
        x += canvas->width() + gap;
      }
      const std::string line = "df " + fmt(res.defocus_A.value / 10) + " nm, t " + fmt(res.thickness_A.value / 10) +
                               " nm, NCC " + fmt(res.score.ncc, 3) + (res.poor_fit ? "  POOR FIT" : "");
      sheet.draw_text(4, h - 12, line, res.poor_fit ? colors::red : colors::white);
      write_png(sheet, png_path);
    }
    record.write_text_output(out_path, csv.str(), {exp_path});

    auto show = [](const char* name, const Estimate& e, double unit, const char* unit_name, int prec) {
      std::printf("%-12s %.*f ± %.*f %s (95 %%)\n", name, prec, e.value / unit, prec, e.uncertainty_95 / unit, unit_name);
    };
    show("defocus", res.defocus_A, units::nm, "nm", 2);
    show("thickness", res.thickness_A, units::nm, "nm", 2);
    show("rotation", res.rotation_deg, 1, "deg", 3);
    show("scale", res.scale, 0.01, "%", 3);
    if (spec.refine_cs)
      show("Cs", res.Cs_A, units::mm, "mm", 4);
    if (spec.refine_astigmatism) {
      show("astigmatism", res.astigmatism_A, units::nm, "nm", 2);
      show("astig. angle", res.astigmatism_angle_deg, 1, "deg", 1);
    }
    std::printf("shift        %.2f, %.2f px; NCC %.4f; reduced chi2 %.3f\n", res.geometry.shift_x_px,
                res.geometry.shift_y_px, res.score.ncc, res.score.chi2_reduced);
    std::printf("%s\n", res.verdict.c_str());
    if (res.poor_fit)
      warn_to_stderr()(res.verdict);
    if (setup.coherence_auto && !vm.count("simulated") && !common.quiet)
      warn_to_stderr()("imaged with the envelope coherence model (fast). A micrograph is partially coherent, and "
                       "against one the envelope can move defocus by ~0.5 nm and thickness by a slice or two with "
                       "intervals that miss the truth (docs/match.md): for final numbers rerun with --coherence "
                       "integrate on a narrow range around this result");
    if (!common.quiet)
      std::printf("# %zu cells; multislice %.2f s, imaging %.2f s (%ld FFTs), alignment %.2f s, total %.2f s\n",
                  res.map.size(), multislice_seconds, res.imaging_seconds, ffts, res.alignment_seconds, total_seconds);
    return EXIT_OK;
  });
}

}  // namespace

EPITEM_COMMAND(match, 64, "fit simulations to an experimental HRTEM image: defocus, thickness, tilt, rotation, scale",
               match_main);

}  // namespace epitem::cli
