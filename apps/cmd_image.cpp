// `epitem image exit.tif`: images an existing exit wave (2-page float32 TIFF, real/imag) through
// the objective lens, partial coherence and detector; defocus and illumination-tilt series.
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>

#include "cli.hpp"
#include "epitem/image_file.hpp"
#include "epitem/error.hpp"
#include "epitem/image.hpp"
#include "epitem/output.hpp"
#include "epitem/units.hpp"
#include "imaging_options.hpp"

namespace epitem::cli {
namespace {

std::string read_sidecar(const std::string& tif) {
  std::ifstream in(sidecar_path(tif));
  if (!in)
    return "";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The beam energy from the exit wave's JSON sidecar ("energy_eV": number), if there is one.
bool energy_from_sidecar(const std::string& json, double& energy_eV) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"energy_eV\"\\s*:\\s*([-+0-9.eE]+)")))
    return false;
  energy_eV = std::stod(m[1].str());
  return true;
}

std::string num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// A number from the exit wave's JSON sidecar ("key": number), if there is one.
bool number_from_sidecar(const std::string& json, const std::string& key, double& value) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + key + "\"\\s*:\\s*([-+0-9.eE]+)")))
    return false;
  value = std::stod(m[1].str());
  return true;
}

// The saved thicknesses of a multislice thickness series ("saved_thicknesses_A": [...]).
std::vector<double> thicknesses_from_sidecar(const std::string& json) {
  std::smatch m;
  std::vector<double> t;
  if (!std::regex_search(json, m, std::regex("\"saved_thicknesses_A\"\\s*:\\s*\\[([^\\]]*)\\]")))
    return t;
  std::stringstream ss(m[1].str());
  for (std::string item; std::getline(ss, item, ',');)
    t.push_back(std::stod(item));
  return t;
}

int image_main(int argc, char** argv) {
  return run_guarded("image", [&]() -> int {
    const std::string usage =
        "usage: epitem image EXIT.tif [lens, coherence, detector, series options] --out image.tif "
        "[--png image.png]\n\n"
        "Images an exit wave: a float32 TIFF of (real, imaginary) page pairs, one pair per saved\n"
        "thickness, as written by 'epitem multislice' (a thickness series gives one image each).\n\n" +
        std::string(IMAGING_CONVENTIONS);
    po::options_description opts("Input and output");
    opts.add_options()
      ("exit-wave", po::value<std::string>(), "exit wave TIFF (positional)")
      ("out,o", po::value<std::string>(), "output float32 TIFF (one page per series value)")
      ("png", po::value<std::string>(), "PNG preview (auto contrast, scale bar; contact sheet for series)")
      ("energy", po::value<std::string>(), "beam energy [eV] (e.g. 200kV); default: the exit wave's sidecar, else 200 kV")
      ("sampling", po::value<std::string>(), "exit-wave pixel [Å] when the TIFF has no calibration");
    opts.add(imaging_options("1mm"));
    po::positional_options_description pos;
    pos.add("exit-wave", 1);
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(argc, argv, usage, opts, pos, vm, common))
      return EXIT_OK;
    if (!vm.count("exit-wave"))
      throw po::error("missing the exit wave TIFF (epitem image exit.tif --out image.tif)");
    if (!vm.count("out"))
      throw po::error("missing --out image.tif");
    const std::string in_path = vm["exit-wave"].as<std::string>();
    const std::string out_path = vm["out"].as<std::string>();
    const std::string png_path = vm.count("png") ? vm["png"].as<std::string>() : "";
    plan_outputs({out_path, png_path, sidecar_path(out_path)}, {in_path, sidecar_path(in_path)});
    require_readable(in_path, "exit wave");

    double energy_eV = 200 * units::keV;
    std::string energy_source = "default 200 kV";
    const std::string sidecar = read_sidecar(in_path);
    if (get_quantity(vm, "energy", Dimension::Energy, energy_eV))
      energy_source = "--energy";
    else if (energy_from_sidecar(sidecar, energy_eV))
      energy_source = "sidecar " + sidecar_path(in_path);
    double sampling_A = 0;
    get_quantity(vm, "sampling", Dimension::Length, sampling_A);

    const std::vector<Wave> waves = waves_from_pages(read_image_frames(in_path), energy_eV, sampling_A, in_path);
    std::vector<double> thicknesses = thicknesses_from_sidecar(sidecar);
    if (thicknesses.size() != waves.size())
      thicknesses.assign(waves.size(), -1.0);  // unknown: pages are labelled by index only
    const Grid& grid = waves.front().grid;
    ImagingSetup setup = resolve_imaging_options(vm, energy_eV);
    // The exit wave was computed under the multislice beam tilt: image it under the same tilt
    // unless --tilt/--tilt-series/--tilt-azimuth say otherwise (then warn if they differ).
    double ms_tilt_x_mrad = 0, ms_tilt_y_mrad = 0, ms_phonons = 0;
    number_from_sidecar(sidecar, "beam_tilt_x_mrad", ms_tilt_x_mrad);
    number_from_sidecar(sidecar, "beam_tilt_y_mrad", ms_tilt_y_mrad);
    const double ms_tilt_mrad = std::hypot(ms_tilt_x_mrad, ms_tilt_y_mrad);
    std::string tilt_source = "--tilt";
    if (ms_tilt_mrad > 0) {
      const bool tilt_given =
          !vm["tilt"].defaulted() || vm.count("tilt-series") || !vm["tilt-azimuth"].defaulted();
      const double az = setup.tilt_azimuth_deg * units::deg_to_rad;
      if (!tilt_given) {
        setup.tilts_mrad = {ms_tilt_mrad};
        setup.tilt_azimuth_deg = std::atan2(ms_tilt_y_mrad, ms_tilt_x_mrad) / units::deg_to_rad;
        tilt_source = "sidecar " + sidecar_path(in_path);
      } else if (setup.tilts_mrad.size() > 1 ||
                 std::hypot(setup.tilts_mrad[0] * std::cos(az) - ms_tilt_x_mrad,
                            setup.tilts_mrad[0] * std::sin(az) - ms_tilt_y_mrad) > 1e-6) {
        warn_to_stderr()("the exit wave was computed with beam tilt (" + num(ms_tilt_x_mrad) + ", " +
                         num(ms_tilt_y_mrad) + ") mrad (sidecar " + sidecar_path(in_path) +
                         ") but the imaging tilt differs; omit --tilt to use the multislice tilt");
      }
    }
    if (number_from_sidecar(sidecar, "phonon_configs", ms_phonons) && ms_phonons > 0)
      warn_to_stderr()("the exit wave comes from a frozen-phonon run (" + num(ms_phonons) +
                       " configurations) but its TIFF holds configuration 0 only: this image is "
                       "not phonon-averaged; use 'epitem hrtem --phonons N' for an averaged image");
    // --coherence auto: weighed against the multislice that made the wave (its sidecar's slices).
    double ms_slices = 0;
    number_from_sidecar(sidecar, "slices", ms_slices);
    choose_coherence(setup, grid, 2 * ms_slices,
                     double(waves.size() * setup.defocus_series_A.size() * setup.tilts_mrad.size()),
                     warn_to_stderr());

    RunRecord record("image");
    record.add("exit_wave", in_path);
    record.add("energy_eV", energy_eV, "eV");
    record.add("energy_source", energy_source);
    record.add("grid", std::to_string(grid.nx) + "x" + std::to_string(grid.ny) + " at " +
                           std::to_string(grid.sampling_x_A()) + " x " + std::to_string(grid.sampling_y_A()) + " A");
    record.add("exit_waves", Json(int(waves.size())));
    if (ms_tilt_mrad > 0)
      record.add("tilt_source", tilt_source);
    if (waves.size() > 1)
      record.add("thicknesses_A", Json(thicknesses));
    record_imaging(record, setup, grid);
    const std::size_t n_pages =
        waves.size() * setup.defocus_series_A.size() * setup.tilts_mrad.size();
    if (!common.quiet || common.dry_run)
      record.echo(std::cout);
    if (common.dry_run) {
      std::cout << "# memory estimate: " << format_bytes(imaging_memory_bytes(grid, n_pages))
                << " for " << n_pages << " page(s)\n";
      return EXIT_OK;
    }
    check_lens_against_grid(setup.lens, grid, warn_to_stderr());

    ProgressBar bar(common.quiet);
    ProgressFn progress = bar.callback();
    std::vector<ImagingPage> pages;
    long ffts = 0;
    const auto t0 = std::chrono::steady_clock::now();
    const double az = setup.tilt_azimuth_deg * units::deg_to_rad;
    for (std::size_t w = 0; w < waves.size(); ++w) {
      ImageFormer former(waves[w]);
      for (double tilt : setup.tilts_mrad)
        for (double df : setup.defocus_series_A) {
          Lens lens = setup.lens;
          lens.aberrations.defocus_A = df;
          ImagingPage page;
          page.thickness_A = waves.size() > 1 ? thicknesses[w] : -1;
          page.defocus_A = df;
          page.tilt_x_mrad = tilt * std::cos(az);
          page.tilt_y_mrad = tilt * std::sin(az);
          page.image = former.intensity(lens, setup.coherence, page.tilt_x_mrad, page.tilt_y_mrad);
          pages.push_back(std::move(page));
          if (progress)
            progress(pages.size(), n_pages, "imaging");
        }
      ffts += former.fft_count();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bar.finish();
    record.result("ffts", Json(ffts));
    write_imaging_outputs(std::move(pages), setup, record, out_path, png_path, {in_path});
    record.result("imaging_seconds", seconds);
    record.write_sidecar(out_path);
    if (!common.quiet)
      std::cout << "# wrote " << out_path << (png_path.empty() ? "" : " and " + png_path) << " ("
                << n_pages << " page(s), " << ffts << " FFTs, " << seconds << " s)\n";
    return EXIT_OK;
  });
}

}  // namespace

EPITEM_COMMAND(image, 40, "image an exit wave: lens, partial coherence, detector, series", image_main);

}  // namespace epitem::cli
