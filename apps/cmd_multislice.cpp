// `epitem multislice`: exit wave(s) of an atomic model by the multislice method (static atoms or
// frozen phonons, thickness series) → float32 TIFF (real/imag pages), optional average
// diffraction pattern, JSON sidecar with every parameter and the slicing report.
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>

#include "cli.hpp"
#include "epitem/diffraction_pattern.hpp"
#include "epitem/error.hpp"
#include "epitem/image.hpp"
#include "epitem/model.hpp"
#include "epitem/multislice.hpp"
#include "epitem/output.hpp"
#include "epitem/parallel.hpp"
#include "epitem/rank_collection.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"
#include "thermal_options.hpp"

namespace epitem::cli {

namespace {

Vec3 triple(const std::vector<int>& v) { return Vec3(v[0], v[1], v[2]); }

// Memory the command adds to the library's: saved exit-wave pages and, with --diffraction, the
// pattern sums per saved thickness.
double cli_memory_bytes(const Grid& g, int n_saved, bool diffraction) {
  return n_saved * double(g.size()) * 8.0 + (diffraction ? DiffractionSum::memory_bytes(g, n_saved) : 0.0);
}

int multislice_main(int argc, char** argv) {
  return run_guarded("multislice", [&]() {
    parallel::start();  // under mpirun: phonon configurations are split over the ranks (docs/mpi.md)
    po::options_description opts("multislice options");
    std::string model_path, out, dp_path, table_name;
    int phonons = 0, n_slices = 0;
    unsigned long long seed = 1;
    opts.add_options()
      ("model", po::value<std::string>(&model_path),
       "extended XYZ model (beam along +z, orthorhombic cell), or a CIF/built-in crystal with --zone")
      ("zone", po::value<std::string>(), "orient a crystal: zone axis [uvw] along the beam (1,1,0)")
      ("x", po::value<std::string>(), "with --zone: lattice direction along +x (-1,1,0; default shortest)")
      ("repeat", po::value<std::string>()->default_value("1,1,1"), "with --zone: repeats of the oriented cell nx,ny,nz")
      ("energy", po::value<std::string>()->default_value("200kV"), "beam energy [kV] (200kV, 300keV)")
      ("gpts", po::value<std::string>(), "grid points N or NxM (512, 1024x768)")
      ("sampling", po::value<std::string>(), "largest pixel [Å] instead of --gpts (0.05A); ≤ 0.5 Å")
      ("slice", po::value<std::string>()->default_value("2A"), "slice thickness [Å] (1.5A)")
      ("slices", po::value<int>(&n_slices)->default_value(0), "number of equal slices instead of --slice")
      ("table", po::value<std::string>(&table_name)->default_value("kirkland"), "scattering factors: kirkland | peng")
      ("phonons", po::value<int>(&phonons)->default_value(0),
       "frozen-phonon configurations (0 = static atoms); displacements N(0, U_iso) per axis")
      ("phonon-seed", po::value<unsigned long long>()->default_value(1), "random seed of the phonon displacements")
      ("seed", po::value<unsigned long long>(&seed)->default_value(1), "deprecated alias of --phonon-seed")
      ("thickness-series", po::value<std::string>(),
       "also save exit waves at these thicknesses [Å] (50,100,150 or 5nm,10nm)")
      ("tilt", po::value<std::string>()->default_value("0"), "beam tilt x[,y] [mrad] (2mrad or 2,1)")
      ("out,o", po::value<std::string>(&out), "exit wave TIFF: pages real, imag per saved thickness")
      ("diffraction", po::value<std::string>(&dp_path),
       "average diffraction intensity TIFF |ψ(k)|²/N², 000 at (nx/2, ny/2), +ky up, one page per thickness");
    opts.add(thermal_options());
    po::positional_options_description pos;
    pos.add("model", 1);
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(
            argc, argv,
            "usage: epitem multislice MODEL --energy 200kV --gpts 512 --slice 1.5A --out exit.tif\n"
            "       [--zone u,v,w [--x u,v,w] --repeat nx,ny,nz] [--phonons N --phonon-seed S]\n"
            "       [--temperature 700C [--debye-temperature Fe=435K]]\n"
            "       [--thickness-series 50,100] [--diffraction dp.tif] [--tilt 1mrad,0]\n"
            "Multislice exit wave ψ(x, y) for a plane wave along +z (docs/formulas.md §5): slices of the\n"
            "model's projected potential (an atom on a slice boundary starts that slice), 2/3 band\n"
            "limit. exit.tif pages: (real, imag) for each saved thickness in increasing order, the\n"
            "full model last; column = x, row 0 = top = largest y (+y up, as displayed by ImageJ);\n"
            "the cell origin is the bottom-left pixel. --diffraction has +ky up too. With --phonons\n"
            "exit.tif holds configuration 0 and --diffraction the average over configurations.",
            opts, pos, vm, common))
      return EXIT_OK;
    if (model_path.empty())
      throw po::error("no MODEL: give an extxyz file, or a CIF/built-in name with --zone");
    if (out.empty() && !common.dry_run)
      throw po::error("--out exit.tif is required");
    if (vm.count("gpts") && vm.count("sampling"))
      throw po::error("give either --gpts or --sampling, not both");
    if (!vm.count("gpts") && !vm.count("sampling"))
      throw po::error("give the grid: --gpts N[xM] or --sampling 0.05A");
    if (!vm["slices"].defaulted() && !vm["slice"].defaulted())
      throw po::error("give either --slice or --slices, not both");
    // Every file this run writes (the sidecar too) against the model, as files (links, ./).
    plan_outputs({out, dp_path, sidecar_path(out)}, {model_path});
    if ((vm.count("x") || !vm["repeat"].defaulted()) && !vm.count("zone"))
      throw po::error("--x and --repeat need --zone (they orient a crystal)");

    MultisliceSpec spec;
    get_quantity(vm, "energy", Dimension::Energy, spec.energy_eV, units::keV);
    if (vm.count("gpts")) {
      const auto n = parse_grid_size(vm["gpts"].as<std::string>(), "--gpts");
      spec.nx = n[0];
      spec.ny = n.size() > 1 ? n[1] : n[0];
    } else {
      get_quantity(vm, "sampling", Dimension::Length, spec.sampling_A);
    }
    get_quantity(vm, "slice", Dimension::Length, spec.slice_thickness_A);
    spec.n_slices = n_slices;
    spec.table = parse_scattering_table(table_name);
    spec.phonon_configs = phonons;
    spec.seed = resolve_phonon_seed(vm, "seed");
    const ThermalSpec thermal = resolve_thermal_options(vm);
    if (vm.count("thickness-series"))
      spec.thickness_series_A =
          parse_quantity_list(vm["thickness-series"].as<std::string>(), Dimension::Length, "--thickness-series");
    const auto tilt = parse_quantity_list(vm["tilt"].as<std::string>(), Dimension::BeamAngle, "--tilt");
    if (tilt.empty() || tilt.size() > 2)
      throw po::error("--tilt takes one or two angles (x[,y]), got '" + vm["tilt"].as<std::string>() + "'");
    spec.beam_tilt_x_mrad = tilt[0];
    spec.beam_tilt_y_mrad = tilt.size() > 1 ? tilt[1] : 0;
    spec.threads = common.threads;
    // Under mpirun each rank runs every size()-th configuration (docs/mpi.md).
    spec.config_stride = parallel::size();
    spec.config_offset = parallel::rank();
    spec.validate();

    AtomicModel model;
    RunRecord rec("multislice");
    rec.add("model", model_path);
    if (vm.count("zone")) {
      const Vec3 zone = triple(parse_int_triple(vm["zone"].as<std::string>(), "--zone"));
      const Vec3 xdir = vm.count("x") ? triple(parse_int_triple(vm["x"].as<std::string>(), "--x")) : Vec3::Zero();
      const auto r = parse_int_triple(vm["repeat"].as<std::string>(), "--repeat");
      for (int v : r)
        if (v < 1 || v > 1000)
          fail("--repeat ", vm["repeat"].as<std::string>(), ": each repeat must be within 1 … 1000");
      model = orient_crystal(read_crystal(model_path), zone, xdir, {r[0], r[1], r[2]});
      rec.add("zone", vm["zone"].as<std::string>());
      rec.add("x", vm.count("x") ? vm["x"].as<std::string>() : std::string("shortest"));
      rec.add("repeat", vm["repeat"].as<std::string>());
    } else {
      model = read_model(model_path);
    }
    apply_temperature(model, thermal);
    if (thermal.active() && spec.phonon_configs == 0 && parallel::is_root())
      std::cerr << "warning: --temperature acts through the atom displacements; with --phonons 0 "
                   "the atoms are static and the temperature changes nothing\n";
    const Grid grid = multislice_grid(model, spec);
    const Slicing slicing = multislice_slicing(model, spec);
    const int n_saved = int(spec.thickness_series_A.size()) + 1;
    const double lib_bytes = estimate_multislice_memory_bytes(model, spec);
    const double bytes = lib_bytes + cli_memory_bytes(grid, n_saved, !dp_path.empty());
    const double avail = available_memory_bytes();
    if (avail > 0 && bytes > avail)
      fail("multislice needs about ", format_bytes(bytes), " but only ", format_bytes(avail),
           " is available (MemAvailable): use fewer grid points (--gpts/--sampling)");

    rec.add("atoms", Json(static_cast<unsigned long>(model.atoms.size())));
    rec.add("energy_eV", spec.energy_eV, "eV");
    rec.add("wavelength_A", electron_wavelength_A(spec.energy_eV), "Å");
    rec.add("grid", std::to_string(grid.nx) + "x" + std::to_string(grid.ny));
    rec.add("extent_x_A", grid.extent_x_A, "Å");
    rec.add("extent_y_A", grid.extent_y_A, "Å");
    rec.add("sampling_x_A", grid.sampling_x_A(), "Å");
    rec.add("sampling_y_A", grid.sampling_y_A(), "Å");
    rec.add("band_limit_invA", grid.band_limit_invA(), "1/Å");
    rec.add("band_limit_mrad", grid.band_limit_invA() * electron_wavelength_A(spec.energy_eV) * 1e3, "mrad");
    rec.add("slices", slicing.n_slices());
    rec.add("slice_thickness_A", slicing.thickness_A(0), "Å");
    rec.add("last_slice_thickness_A", slicing.thickness_A(slicing.n_slices() - 1), "Å");
    rec.add("thickness_A", slicing.boundaries_A.back(), "Å");
    rec.add("table", std::string(scattering_table_name(spec.table)));
    rec.add("phonon_configs", spec.phonon_configs);
    rec.add("phonon_seed", Json(static_cast<unsigned long long>(spec.seed)));
    rec.add("thermal", thermal_json(thermal, phonon_u_iso_used(model)));
    rec.add("thickness_series_A", Json(spec.thickness_series_A));
    rec.add("beam_tilt_x_mrad", spec.beam_tilt_x_mrad, "mrad");
    rec.add("beam_tilt_y_mrad", spec.beam_tilt_y_mrad, "mrad");
    rec.add("threads", spec.threads > 0 ? spec.threads : default_thread_count());
    rec.add("memory_estimate_bytes", bytes, "B");
    parallel::check_point();  // a rank that could not set up (e.g. unreadable model) stops all
    if (!parallel::is_root()) {
      if (common.dry_run)
        return EXIT_OK;
      common.quiet = true;  // rank 0 prints and writes
    }
    if (!common.quiet)
      rec.echo(std::cout);
    if (common.dry_run) {
      std::cout << "dry run: would need about " << format_bytes(bytes) << " (" << format_bytes(avail)
                << " available); nothing computed\n";
      return EXIT_OK;
    }

    const bool split = parallel::size() > 1;
    // Rank 0 measures the FFT plans first and saves them as wisdom, which the other ranks then
    // load: every rank uses the same FFT algorithms, so the same rounding (docs/mpi.md).
    parallel::collective([&] {
      if (split && parallel::is_root()) {
        prepare_multislice_plans(model, spec);
        if (!dp_path.empty())  // its out-of-place plan, made on first use
          DiffractionSum(grid, spec.threads).pattern_of(Wave(grid, spec.energy_eV));
      }
    });
    // Under mpirun: this rank's patterns by configuration (one per saved thickness), added on
    // rank 0 in configuration order (the sums of one process).
    std::map<int, std::vector<std::vector<double>>> rank_patterns;
    std::vector<Image> pages(std::size_t(2 * n_saved));
    // One sum per saved thickness (docs/formulas.md §5; diffraction_pattern.hpp).
    std::vector<DiffractionSum> dp_sum(dp_path.empty() ? 0 : std::size_t(n_saved),
                                       DiffractionSum(grid, spec.threads));
    ProgressBar bar(common.quiet);
    const auto on_exit = [&](int config, int ti, double, const Wave& w) {
      if (config == 0) {
        Image re(grid.nx, grid.ny), im(grid.nx, grid.ny);
        re.pixel_size_A = im.pixel_size_A = grid.sampling_x_A();
        re.pixel_size_y_A = im.pixel_size_y_A = grid.sampling_y_A();
        for (std::size_t i = 0; i < w.psi.size(); ++i) {
          re.pixels[i] = w.psi[i].real();
          im.pixels[i] = w.psi[i].imag();
        }
        pages[std::size_t(2 * ti)] = flipped_rows(re);
        pages[std::size_t(2 * ti + 1)] = flipped_rows(im);
      }
      if (dp_path.empty())
        return;
      if (!split) {
        dp_sum[std::size_t(ti)].add(w);
        return;
      }
      auto& patterns = rank_patterns[config];
      patterns.resize(std::size_t(n_saved));
      patterns[std::size_t(ti)] = dp_sum[std::size_t(ti)].pattern_of(w);
    };
    MultisliceReport rep;
    parallel::collective([&] {  // a rank that fails here stops all ranks with its message
      rep = run_multislice(model, spec, on_exit, bar.callback(), parallel::is_root() ? warn_to_stderr() : WarnFn());
    });
    bar.finish();
    if (split) {
      collect_configurations(
          rep,
          [&](int config, parallel::ByteWriter& w) {
            for (const auto& pattern : rank_patterns[config]) {
              const char* p = reinterpret_cast<const char*>(pattern.data());
              w.bytes.insert(w.bytes.end(), p, p + pattern.size() * sizeof(double));
            }
            rank_patterns.erase(config);
          },
          [&](int, parallel::ByteReader& r) {
            for (int ti = 0; ti < n_saved && !dp_path.empty(); ++ti) {
              std::vector<double> pattern(grid.size());
              for (double& v : pattern)
                v = r.get<double>();
              dp_sum[std::size_t(ti)].add(pattern);
            }
          });
      const Json mpi_record = parallel::run_json(rep.total_seconds);
      if (!parallel::is_root())
        return EXIT_OK;  // rank 0 writes every output
      rec.result("mpi", mpi_record);
    }

    rec.result("report", rep.to_json());
    rec.result("cli_memory_estimate_bytes", bytes);
    const std::string desc = rec.tiff_description();
    write_tiff(out, pages, desc);
    rec.add_output(out);
    if (!dp_path.empty()) {
      std::vector<Image> dps;
      for (const auto& sum : dp_sum)
        dps.push_back(sum.mean_image(rep.phonon_configs));  // +ky up, as the exit wave's +y
      write_tiff(dp_path, dps, desc);
      rec.add_output(dp_path);
    }
    rec.write_sidecar(out);
    if (!common.quiet) {
      std::cout << "slices: " << rep.slicing.n_slices() << " (" << rep.unique_slices
                << " distinct, " << rep.transmission_functions_computed << " transmission functions computed)\n";
      std::cout << "saved thicknesses [Å]:";
      for (double t : rep.saved_thicknesses_A)
        std::cout << " " << t;
      std::cout << "\nband limit " << rep.band_limit_mrad << " mrad, intensity kept " << 1 - rep.band_limit_loss << "\n";
      std::cout << "time: potential " << rep.potential_seconds << " s, propagation " << rep.propagation_seconds
                << " s, total " << rep.total_seconds << " s; memory estimate " << format_bytes(bytes) << ", peak "
                << format_bytes(peak_rss_bytes()) << "\n";
      std::cout << "wrote " << out << (dp_path.empty() ? "" : " and " + dp_path) << "\n";
    }
    return EXIT_OK;
  });
}

}  // namespace

EPITEM_COMMAND(multislice, 40, "multislice exit wave(s) of an atomic model", multislice_main);

}  // namespace epitem::cli
