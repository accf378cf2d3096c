// `epitem hrtem MODEL`: multislice + imaging in one run (the README's main job). Frozen-phonon
// images are averaged as intensities; thickness, defocus and tilt series go to one TIFF stack.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <map>
#include <mutex>

#include "cli.hpp"
#include "epitem/error.hpp"
#include "epitem/fft.hpp"
#include "epitem/imaging.hpp"
#include "epitem/interface.hpp"
#include "epitem/multislice.hpp"
#include "epitem/output.hpp"
#include "epitem/parallel.hpp"
#include "epitem/rank_collection.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"
#include "imaging_options.hpp"
#include "thermal_options.hpp"

namespace epitem::cli {
namespace {

// Rank 0 receives every rank's per-configuration images and adds them to `averages` in
// configuration order; the per-configuration band-limit loss and the counts are combined too.
void collect_rank_images(std::map<int, std::vector<std::pair<std::array<std::size_t, 3>, Image>>>& rank_images,
                         MultisliceReport& report, std::map<std::array<std::size_t, 3>, ImageAverage>& averages,
                         long& ffts) {
  ffts = long(parallel::sum(ffts));
  collect_configurations(
      report,
      [&](int config, parallel::ByteWriter& w) {
        const auto& images = rank_images[config];
        w.put(std::uint64_t(images.size()));
        for (const auto& [key, image] : images) {
          for (std::size_t k : key)
            w.put(std::uint64_t(k));
          put_image(w, image);
        }
        rank_images.erase(config);
      },
      [&](int, parallel::ByteReader& r) {
        const auto n = r.get<std::uint64_t>();
        for (std::uint64_t i = 0; i < n; ++i) {
          std::array<std::size_t, 3> key;
          for (std::size_t& k : key)
            k = std::size_t(r.get<std::uint64_t>());
          averages[key].add(get_image(r));
        }
      });
}

// A static run under mpirun: rank 0 receives every page (numbered tilt, thickness, defocus) from
// the rank that imaged it; the FFT counts are summed.
void collect_rank_pages(std::map<int, Image>& rank_pages, int n_units, std::size_t n_thick, std::size_t n_def,
                        std::map<std::array<std::size_t, 3>, ImageAverage>& averages, long& ffts) {
  ffts = long(parallel::sum(ffts));
  parallel::collect_in_order(
      n_units, [&](int unit) { return parallel::block_owner(unit, n_units); },
      [&](int unit) {
        parallel::ByteWriter w;
        put_image(w, rank_pages.at(unit));
        rank_pages.erase(unit);
        return w.bytes;
      },
      [&](int unit, const std::vector<char>& bytes) {
        parallel::ByteReader r(bytes);
        const std::size_t u = std::size_t(unit);
        averages[{u / n_def % n_thick, u / n_def / n_thick, u % n_def}].add(get_image(r));
      });
}

int hrtem_main(int argc, char** argv) {
  return run_guarded("hrtem", [&]() -> int {
    parallel::start();  // under mpirun: configurations are split over the ranks (docs/mpi.md)
    const std::string usage =
        "usage: epitem hrtem MODEL.xyz [multislice, lens, coherence, detector, series options] "
        "--out image.tif [--png image.png]\n"
        "       epitem hrtem --preset nife-fe3o4 [options]   (also: epitem hrtem with no arguments)\n\n"
        "Runs the multislice (docs/formulas.md §5) and images every exit wave (§6) in one go. The preset\n"
        "builds the NiFe/Fe3O4 interface (epitem interface --preset nife-fe3o4) and writes\n"
        "nife_fe3o4_hrtem.tif/.png/.json; default lens: 200 kV, Cs 1.0 mm, Cc 1.1 mm, dE 0.8 eV\n"
        "FWHM, convergence 0.2 mrad, Scherzer defocus (typical 200 kV high-resolution pole piece\n"
        "values, JEM-F200-like; not a manufacturer specification).\n\n" +
        std::string(IMAGING_CONVENTIONS);
    po::options_description io("Input and output");
    io.add_options()
      ("model", po::value<std::string>(), "atomic model (extended XYZ; positional)")
      ("preset", po::value<std::string>(), "build a named interface model instead: nife-fe3o4")
      ("out,o", po::value<std::string>(), "output float32 TIFF (one page per series value)")
      ("png", po::value<std::string>(), "PNG preview (auto contrast, scale bar)");
    po::options_description ms("Multislice");
    ms.add_options()
      ("energy", po::value<std::string>()->default_value("200kV"), "beam energy [eV]")
      ("sampling", po::value<std::string>()->default_value("0.08A"), "largest pixel [Å]")
      ("gpts", po::value<std::string>(), "grid points N or NxM instead of --sampling (512, 1024x768), as in multislice")
      ("slice", po::value<std::string>()->default_value("2A"), "slice thickness [Å]")
      ("phonons", po::value<int>()->default_value(0), "frozen-phonon configurations (0 = static atoms)")
      ("phonon-seed", po::value<unsigned long long>()->default_value(1), "seed of the atom displacements")
      ("thickness-series", po::value<std::string>(), "also image at these thicknesses [Å], e.g. 20,40A")
      ("table", po::value<std::string>()->default_value("kirkland"), "scattering factors: kirkland | peng");
    io.add(ms).add(thermal_options()).add(imaging_options("1mm"));
    po::positional_options_description pos;
    pos.add("model", 1);
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(argc, argv, usage, io, pos, vm, common))
      return EXIT_OK;
    if (vm.count("model") && vm.count("preset"))
      throw po::error("give either a model file or --preset, not both");
    // Neither a model nor a preset (e.g. no arguments at all): the README's main job.
    const std::string preset = vm.count("preset") ? vm["preset"].as<std::string>()
                               : vm.count("model") ? "" : "nife-fe3o4";
    std::string model_path, out_path, png_path, preset_summary;
    AtomicModel model;
    std::vector<std::string> inputs;
    if (!preset.empty()) {
      const std::string& name = preset;
      const InterfaceResult built = build_interface(preset_interface(name));
      model = built.model;
      model_path = "preset " + name;
      preset_summary = "substrate " + std::to_string(built.report.n_substrate) + " atoms (" +
                       model.phase_names.at(0) + "), overlayer " +
                       std::to_string(built.report.n_overlayer) + " atoms (" +
                       model.phase_names.at(1) + ") tilted " +
                       std::to_string(built.report.tilt_deg) + " deg about the beam";
      std::string stem = name;
      std::replace(stem.begin(), stem.end(), '-', '_');
      out_path = stem + "_hrtem.tif";
      png_path = stem + "_hrtem.png";
    } else {
      model_path = vm["model"].as<std::string>();
      require_readable(model_path, "model");
      model = read_model(model_path);
      inputs.push_back(model_path);
    }
    const ThermalSpec thermal = resolve_thermal_options(vm);
    apply_temperature(model, thermal);
    if (thermal.active() && vm["phonons"].as<int>() == 0)
      std::cerr << "warning: --temperature acts through the atom displacements; with --phonons 0 "
                   "the atoms are static and the temperature changes nothing\n";
    if (vm.count("out"))
      out_path = vm["out"].as<std::string>();
    if (vm.count("png"))
      png_path = vm["png"].as<std::string>();
    if (out_path.empty())
      throw po::error("missing --out image.tif");

    MultisliceSpec spec;
    get_quantity(vm, "energy", Dimension::Energy, spec.energy_eV);
    if (vm.count("gpts")) {  // the same grid option as `epitem multislice`
      if (!vm["sampling"].defaulted())
        throw po::error("give either --gpts or --sampling, not both");
      const auto n = parse_grid_size(vm["gpts"].as<std::string>(), "--gpts");
      spec.nx = n[0];
      spec.ny = n.size() > 1 ? n[1] : n[0];
    } else {
      get_quantity(vm, "sampling", Dimension::Length, spec.sampling_A);
    }
    get_quantity(vm, "slice", Dimension::Length, spec.slice_thickness_A);
    spec.phonon_configs = vm["phonons"].as<int>();
    spec.seed = vm["phonon-seed"].as<unsigned long long>();
    spec.table = parse_scattering_table(vm["table"].as<std::string>());
    if (vm.count("thickness-series"))
      spec.thickness_series_A = parse_quantity_list(vm["thickness-series"].as<std::string>(),
                                                    Dimension::Length, "--thickness-series");
    spec.threads = common.threads;
    // Under mpirun each rank runs every size()-th configuration (docs/mpi.md); a static run
    // splits its pages instead (below), each rank running the multislice of its pages' tilts.
    if (spec.phonon_configs > 0) {
      spec.config_stride = parallel::size();
      spec.config_offset = parallel::rank();
    }
    spec.validate();
    const Grid grid = multislice_grid(model, spec);
    const Slicing slicing = multislice_slicing(model, spec);
    ImagingSetup setup = resolve_imaging_options(vm, spec.energy_eV);
    {  // --coherence auto: integrate unless its FFTs exceed the factor × the multislice's
      const double runs = double(std::max(spec.phonon_configs, 1)) * double(setup.tilts_mrad.size());
      const double images = runs * double(spec.thickness_series_A.size() + 1) * double(setup.defocus_series_A.size());
      choose_coherence(setup, grid, runs * 2.0 * slicing.n_slices(), images,
                       parallel::is_root() ? warn_to_stderr() : WarnFn());
    }

    RunRecord record("hrtem");
    record.add("model", model_path);
    record.add("atoms", Json(int(model.atoms.size())));
    if (!preset_summary.empty())
      record.add("preset_model", preset_summary);
    record.add("energy_eV", spec.energy_eV, "eV");
    record.add("grid", std::to_string(grid.nx) + "x" + std::to_string(grid.ny) + " at " +
                           std::to_string(grid.sampling_x_A()) + " A");
    record.add("slices", Json(slicing.n_slices()));
    record.add("slice_thickness_A", spec.slice_thickness_A, "Å");
    record.add("phonon_configs", Json(spec.phonon_configs));
    record.add("phonon_seed", Json(static_cast<unsigned long long>(spec.seed)));
    record.add("thermal", thermal_json(thermal, phonon_u_iso_used(model)));
    record.add("scattering_table", std::string(scattering_table_name(spec.table)));
    record_imaging(record, setup, grid);
    const std::size_t n_thick = spec.thickness_series_A.size() + 1;
    const std::size_t n_pages = n_thick * setup.tilts_mrad.size() * setup.defocus_series_A.size();
    parallel::check_point();  // a rank that could not set up (e.g. unreadable model) stops all
    if (parallel::is_root() && (!common.quiet || common.dry_run))
      record.echo(std::cout);
    if (common.dry_run) {
      std::cout << "# memory estimate: "
                << format_bytes(estimate_multislice_memory_bytes(model, spec) +
                                imaging_memory_bytes(grid, n_pages))
                << " (" << n_pages << " page(s))\n";
      return EXIT_OK;
    }
    const WarnFn warn = parallel::is_root() ? warn_to_stderr() : WarnFn();
    if (warn)
      check_lens_against_grid(setup.lens, grid, warn);

    ProgressBar bar(common.quiet || !parallel::is_root());
    const ProgressFn progress = bar.callback();
    const double az = setup.tilt_azimuth_deg * units::deg_to_rad;
    // Averages keyed by (thickness index, tilt index, defocus index).
    using PageKey = std::array<std::size_t, 3>;
    std::map<PageKey, ImageAverage> averages;
    // Under mpirun: this rank's images by configuration, added on rank 0 in configuration order
    // (so the float sums are those of one process).
    const bool split = parallel::size() > 1 && spec.phonon_configs > 0;
    std::map<int, std::vector<std::pair<PageKey, Image>>> rank_images;
    // A static run under mpirun: page (tilt, thickness, defocus), numbered tilt first, is imaged
    // on rank block_owner(page), so a rank's pages share few tilts (multislice runs); every rank
    // repeats the multislice of its tilts rather than receiving the wave (docs/mpi.md).
    const bool split_pages = parallel::size() > 1 && spec.phonon_configs == 0;
    const std::size_t n_def = setup.defocus_series_A.size();
    const int n_units = int(n_pages);
    auto unit_of = [&](const PageKey& k) { return int((k[1] * n_thick + k[0]) * n_def + k[2]); };
    auto mine = [&](const PageKey& k) {
      return !split_pages || parallel::block_owner(unit_of(k), n_units) == parallel::rank();
    };
    std::map<int, Image> rank_pages;  // this rank's pages by unit
    MultisliceReport first_report;
    std::vector<double> thicknesses;
    double imaging_seconds = 0, multislice_seconds = 0;
    long ffts = 0;
    Json multislice_report;
    // Rank 0 measures the FFT plans first and saves them as wisdom, which the other ranks then
    // load: every rank uses the same FFT algorithms, so the same rounding (docs/mpi.md).
    parallel::collective([&] {
      if ((split || split_pages) && parallel::is_root()) {
        prepare_multislice_plans(model, spec);
        Fft2D(grid.nx, grid.ny, default_thread_count()).prepare();  // ImageFormer's
      }
    });
    parallel::collective([&] {  // a rank that fails here stops all ranks with its message
      for (std::size_t it = 0; it < setup.tilts_mrad.size(); ++it) {
        if (split_pages) {  // skip tilts without a page of this rank
          const parallel::Block b = parallel::my_block(n_units);
          const int first = int(it * n_thick * n_def), last = int((it + 1) * n_thick * n_def);
          if (b.last <= first || b.first >= last)
            continue;
        }
        MultisliceSpec s = spec;
        std::map<std::size_t, TransferFunction> transfers;  // by defocus index, for this tilt
        s.beam_tilt_x_mrad = setup.tilts_mrad[it] * std::cos(az);
        s.beam_tilt_y_mrad = setup.tilts_mrad[it] * std::sin(az);
        auto on_exit = [&](int config, int ti, double thickness_A, const Wave& exit) {
          const auto t0 = std::chrono::steady_clock::now();
          if (std::size_t(ti) >= thicknesses.size())
            thicknesses.resize(std::size_t(ti) + 1);
          thicknesses[std::size_t(ti)] = thickness_A;
          bool any = false;
          for (std::size_t id = 0; id < n_def; ++id)
            any = any || mine({std::size_t(ti), it, id});
          if (!any)
            return;
          ImageFormer former(exit);
          // imaging_ffts counts as one process would: the wave's forward FFT once, on the rank
          // of the first defocus page (docs/mpi.md).
          if (!mine({std::size_t(ti), it, 0}))
            --ffts;
          for (std::size_t id = 0; id < setup.defocus_series_A.size(); ++id) {
            Lens lens = setup.lens;
            lens.aberrations.defocus_A = setup.defocus_series_A[id];
            const PageKey key{std::size_t(ti), it, id};
            if (!mine(key))
              continue;
            auto add = [&](Image image) {
              if (split)
                rank_images[config].emplace_back(key, std::move(image));
              else if (split_pages)
                rank_pages[unit_of(key)] = std::move(image);
              else
                averages[key].add(image);
            };
            if (setup.coherence.model == CoherenceModel::Envelope) {
              // One transfer function per (tilt, defocus), reused by every configuration and
              // thickness: each image then costs 2 FFTs and two passes over the pixels.
              auto h = transfers.find(id);
              if (h == transfers.end())
                h = transfers.emplace(id, TransferFunction(lens, exit.grid, s.beam_tilt_x_mrad,
                                                           s.beam_tilt_y_mrad)).first;
              add(former.intensity(h->second));
            } else {
              add(former.intensity(lens, setup.coherence, s.beam_tilt_x_mrad, s.beam_tilt_y_mrad));
            }
          }
          ffts += former.fft_count();
          imaging_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        };
        ProgressFn step;
        if (progress)
          step = [&, it](std::size_t done, std::size_t total, const std::string& stage) {
            progress(it * total + done, setup.tilts_mrad.size() * total, stage);
          };
        const MultisliceReport rep = run_multislice(model, s, on_exit, step, warn);
        multislice_seconds += rep.total_seconds - rep.callback_seconds;
        if (it == 0)  // rank 0 always runs tilt 0
          first_report = rep;
      }
    });
    bar.finish();
    if (split)
      collect_rank_images(rank_images, first_report, averages, ffts);
    if (split_pages)
      collect_rank_pages(rank_pages, n_units, n_thick, n_def, averages, ffts);  // rank 0 ran tilt 0: it knows every thickness
    multislice_report = first_report.to_json();
    const Json mpi_record =
        split || split_pages ? parallel::run_json(multislice_seconds + imaging_seconds) : Json();
    if (!parallel::is_root())
      return EXIT_OK;  // rank 0 writes every output

    std::vector<ImagingPage> pages;
    for (std::size_t ti = 0; ti < thicknesses.size(); ++ti)
      for (std::size_t it = 0; it < setup.tilts_mrad.size(); ++it)
        for (std::size_t id = 0; id < setup.defocus_series_A.size(); ++id) {
          ImagingPage page;
          page.image = averages.at({ti, it, id}).mean();
          page.thickness_A = thicknesses.size() > 1 ? thicknesses[ti] : -1;
          page.defocus_A = setup.defocus_series_A[id];
          page.tilt_x_mrad = setup.tilts_mrad[it] * std::cos(az);
          page.tilt_y_mrad = setup.tilts_mrad[it] * std::sin(az);
          pages.push_back(std::move(page));
        }
    record.result("phonon_images_averaged", Json(averages.begin()->second.count()));
    record.result("imaging_ffts", Json(ffts));
    write_imaging_outputs(std::move(pages), setup, record, out_path, png_path, inputs);
    record.result("multislice", multislice_report);
    record.result("multislice_seconds", multislice_seconds);
    record.result("imaging_seconds", imaging_seconds);
    if (split || split_pages)
      record.result("mpi", mpi_record);
    record.write_sidecar(out_path);
    if (!common.quiet)
      std::cout << "# wrote " << out_path << (png_path.empty() ? "" : " and " + png_path) << " ("
                << n_pages << " page(s)); multislice " << multislice_seconds << " s, imaging "
                << imaging_seconds << " s (" << ffts << " FFTs)\n";
    return EXIT_OK;
  });
}

}  // namespace

EPITEM_COMMAND(hrtem, 45, "HRTEM image of a model: multislice + lens + coherence + detector", hrtem_main);

}  // namespace epitem::cli
