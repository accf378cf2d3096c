// `epitem saed`: SAED spot pattern of one or more phases, kinematic (zone axis along the beam,
// excitation error, slab shape function, double-diffraction flags) or with intensities from the
// multislice engine (--method multislice, saed_multislice.hpp) → CSV, float TIFF, PNG.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "cli.hpp"
#include "epitem/diffraction_pattern.hpp"
#include "epitem/error.hpp"
#include "epitem/kinematic.hpp"
#include "epitem/model.hpp"
#include "epitem/output.hpp"
#include "epitem/parallel.hpp"
#include "epitem/saed_multislice.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"
#include "thermal_options.hpp"

namespace epitem::cli {

namespace {

const char* PRESET_NAME = "nife-fe3o4";
const char* PRESET_STEM = "nife_fe3o4_saed";

std::string zone_text(const Vec3& uvw) {
  return "[" + miller_label({int(std::lround(uvw[0])), int(std::lround(uvw[1])), int(std::lround(uvw[2]))}) + "]";
}

std::string path_stem(const std::string& path) {
  const std::string ext = file_extension(path);
  return ext.empty() ? path : path.substr(0, path.size() - ext.size() - 1);
}

// --repeat nx,ny (lateral repeats of --method multislice) or "auto" → {0, 0}.
std::array<int, 2> parse_lateral_repeats(const std::string& text) {
  if (text == "auto")
    return {0, 0};
  std::array<int, 2> n{0, 0};
  char tail = 0;
  if (std::sscanf(text.c_str(), "%d,%d%c", &n[0], &n[1], &tail) != 2 || n[0] < 1 || n[1] < 1 ||
      n[0] > 1000 || n[1] > 1000)
    throw po::error("--repeat takes auto or two repeats nx,ny within 1 … 1000 (e.g. 3,4), got '" + text + "'");
  return n;
}

int saed_main(int argc, char** argv) {
  return run_guarded("saed", [&]() {
    parallel::start();  // under mpirun: --method multislice splits its phonon configurations
    po::options_description opts("saed options");
    std::string structure, out, image_path, png_path, preset, shape_name, table_name;
    std::vector<std::string> phases, zones, x_dirs, rotations;
    const SaedSpec spec_defaults;
    const SaedRenderSpec render_defaults;
    int holz = 0, size_px = 0, dd_strongest = 0;
    double spot_sigma_px = 0, direct_beam = 0;
    bool log_scale = false, no_dd = false;
    opts.add_options()
      ("structure", po::value<std::string>(&structure),
       "CIF file, extxyz file or built-in name (Fe3O4, NiFe, Si...) for a one-phase pattern")
      ("phase", po::value<std::vector<std::string>>(&phases)->composing(),
       "a phase of a multi-phase pattern (repeat: --phase NiFe --zone 1,1,0 --phase Fe3O4 "
       "--zone 1,1,0); the i-th --zone/--x/--rotate belong to the i-th --phase")
      ("zone", po::value<std::vector<std::string>>(&zones)->composing(),
       "zone axis [uvw] along the beam, e.g. 1,1,0 (one per phase)")
      ("x", po::value<std::vector<std::string>>(&x_dirs)->composing(),
       "lattice direction [uvw] ⊥ zone along +x of the pattern (default: shortest one)")
      ("rotate", po::value<std::vector<std::string>>(&rotations)->composing(),
       "extra rotation of the phase about the beam [deg] (4.2deg; one per phase)")
      ("preset", po::value<std::string>(&preset),
       "nife-fe3o4 (also the default with no structure): NiFe + Fe3O4 along [110] in the box "
       "frame of `epitem interface --preset nife-fe3o4` (NiFe(−111) ∥ Fe3O4(−111) ∥ +y), NiFe "
       "rotated 4.2° about the beam; outputs default to nife_fe3o4_saed.{csv,tif,png}")
      ("energy", po::value<std::string>()->default_value("200kV"), "beam energy [kV] (200kV, 300keV)")
      ("thickness", po::value<std::string>()->default_value("20nm"),
       "slab thickness t of the shape function sin²(πts)/(πs)² [Å] (20nm, 200A)")
      ("gmax", po::value<std::string>()->default_value("1.5"),
       "largest in-plane |g| listed [1/Å] (1.5, 15/nm)")
      ("tilt", po::value<std::string>()->default_value("0"),
       "incident-beam tilt off the zone axis, x[,y] [mrad] (2mrad or 2,1 or 2mrad,-1mrad)")
      ("holz", po::value<int>(&holz)->default_value(0),
       "highest Laue zone order drawn (0 = zero-order zone only)")
      ("holz-smax", po::value<std::string>()->default_value("0.02"),
       "HOLZ spots only with |excitation error| ≤ this [1/Å]")
      ("shape", po::value<std::string>(&shape_name)->default_value("sinc"),
       "relrod shape: sinc = sin²(πts)/(πs)² (exact slab) | envelope = t²/(1+2(πts)²)")
      ("table", po::value<std::string>(&table_name)->default_value("kirkland"),
       "electron scattering factors: kirkland | peng")
      ("no-double-diffraction", po::bool_switch(&no_dd), "do not add double-diffraction spots")
      ("dd-strongest", po::value<int>(&dd_strongest)->default_value(spec_defaults.dd_n_strongest),
       "between phases: only sums of each phase's N strongest spots (0 = every spot ≥ --dd-min-intensity)")
      ("dd-min-intensity", po::value<double>()->default_value(spec_defaults.dd_min_intensity),
       "double diffraction: g1, g2 need intensity ≥ this (strongest = 100)")
      ("out,o", po::value<std::string>(&out), "spot table CSV (required except with --preset)")
      ("image", po::value<std::string>(&image_path), "float32 TIFF of the pattern (calibrated 1/Å)")
      ("png", po::value<std::string>(&png_path), "PNG preview with hkl labels")
      ("size", po::value<int>(&size_px)->default_value(render_defaults.size_px), "image size [px] (square)")
      ("pixel-size-inv-A", po::value<std::string>()->default_value("0"),
       "reciprocal pixel size [1/Å] (0 = fit ±1.05·gmax)")
      ("pixel", po::value<std::string>(), "deprecated name of --pixel-size-inv-A [1/Å]")
      ("spot-sigma", po::value<double>(&spot_sigma_px)->default_value(render_defaults.spot_sigma_px),
       "Gaussian spot σ [px]; a spot's peak pixel equals its intensity")
      ("log", po::bool_switch(&log_scale), "TIFF pixels log10(1 + I/0.01) instead of I")
      ("direct-beam", po::value<double>(&direct_beam)->default_value(render_defaults.direct_beam_intensity),
       "drawn intensity of the direct beam (strongest spot = 100; kinematics cannot give it)")
      ("method", po::value<std::string>()->default_value("kinematic"),
       "spot intensities: kinematic | multislice (one phase: |FFT ψ_exit|² of the multislice engine, "
       "docs/diffraction.md)")
      ("sampling", po::value<std::string>()->default_value("0.05A"),
       "--method multislice: largest real-space pixel [Å] (0.05 Å: Fe3O4 [110] strong spots within 0.5 % of 0.025 Å)")
      ("slice", po::value<std::string>()->default_value("0.5A"),
       "--method multislice: slice thickness [Å] (0.5 Å: Fe3O4 [110] spots within 1 % of 0.25 Å; 2 Å is 5 % off)")
      ("repeat", po::value<std::string>()->default_value("auto"),
       "--method multislice: lateral repeats nx,ny of the oriented cell (auto: 1,1 for static atoms, "
       "≥ 30 Å with --phonons); the thickness sets the repeats along the beam")
      ("thickness-range", po::value<std::string>(),
       "--method multislice: average over every whole period between two thicknesses tmin,tmax [Å] "
       "(10nm,20nm: a wedge in the selected area), instead of --thickness")
      ("phonons", po::value<int>()->default_value(0),
       "--method multislice: frozen-phonon configurations averaged (0 = static atoms, no Debye–Waller damping)")
      ("phonon-seed", po::value<unsigned long long>()->default_value(1),
       "--method multislice: random seed of the phonon displacements");
    opts.add(thermal_options());
    po::positional_options_description pos;
    pos.add("structure", 1);
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(
            argc, argv,
            "usage: epitem saed STRUCTURE --zone u,v,w [--x u,v,w] [--energy 200kV] "
            "[--thickness 20nm] [--gmax 1.5] [--tilt 2mrad[,0mrad]] --out spots.csv "
            "[--image pattern.tif] [--png pattern.png]\n"
            "       epitem saed --phase A --zone u,v,w [--rotate 4.2deg] --phase B --zone u,v,w [--rotate 0] "
            "--out spots.csv\n"
            "       epitem saed [--preset nife-fe3o4]   (no structure: the preset)\n"
            "Kinematic SAED: spots g of the zero-order (and --holz) Laue zones with excitation "
            "error\ns = −(2k0·g + g²)/(2|k0 + g|) and I ∝ |F/Ω|²·sin²(πts)/(πs)², strongest = 100; "
            "the direct\nbeam is listed and drawn capped at 100. CSV phase,h,k,l,gx,gy,g,d_A,"
            "excitation_error,intensity,\nF_abs,laue_zone,double_diffraction,dd_path,...,moire (g, gx, gy, "
            "s in 1/Å, +x = --x, +y = zone × x;\ndouble_diffraction 1 = forbidden g1+g2 of one "
            "phase, 2 = g1+g2 between phases, every pair of spots ≥ --dd-min-intensity;\nmoire 1 = "
            "g1 − g2 of near-parallel planes of two phases (≤ 10°), e.g. the preset's 12.2 Å\n"
            "moiré of NiFe(−111) and Fe3O4(−222); laue_zone = (h·u+k·v+l·w)/m, m = lattice-centring "
            "period).\n"
            "--method multislice (one phase): the same table and pictures with intensities read at each\n"
            "spot's pixel of the mean multislice diffraction pattern |FFT ψ_exit|²/N² (as `multislice\n"
            "--diffraction`) of the crystal oriented as `multislice --zone`, --thickness rounded to whole\n"
            "periods along the beam, averaged over --phonons; extra columns intensity_kinematic,\n"
            "intensity_fraction (of the incident beam), multislice_pixel (read | beyond_band_limit |\n"
            "off_grid | holz). Needs --sampling/--slice (defaults converge Fe3O4 [110]); docs/diffraction.md.",
            opts, pos, vm, common))
      return EXIT_OK;

    // Phases: positional STRUCTURE, repeated --phase, or the preset (also when none is given,
    // e.g. no arguments at all, like `epitem hrtem`).
    const bool no_phases = structure.empty() && phases.empty() && zones.empty() && x_dirs.empty();
    const bool is_preset = vm.count("preset") > 0 || no_phases;
    if (is_preset && preset.empty())
      preset = PRESET_NAME;
    if (is_preset && preset != PRESET_NAME)
      throw po::error("unknown --preset '" + preset + "' (available: nife-fe3o4)");
    if (is_preset && (!structure.empty() || !phases.empty() || !zones.empty() || !x_dirs.empty()))
      throw po::error("--preset sets the phases and zones; do not combine it with STRUCTURE, "
                      "--phase, --zone or --x");
    if (!structure.empty() && !phases.empty())
      throw po::error("give either STRUCTURE or --phase options, not both");
    if (!structure.empty())
      phases = {structure};
    if (!is_preset) {
      if (phases.empty())
        throw po::error("no structure: give STRUCTURE --zone u,v,w, --phase/--zone pairs or "
                        "--preset nife-fe3o4");
      if (zones.size() != phases.size())
        throw po::error("need one --zone per phase (" + std::to_string(phases.size()) +
                        " phase(s), " + std::to_string(zones.size()) + " --zone)");
      if (!x_dirs.empty() && x_dirs.size() != phases.size())
        throw po::error("give --x for every phase or for none");
      if (out.empty())
        throw po::error("--out spots.csv is required");
    }
    if (!rotations.empty() && rotations.size() != (is_preset ? 1 : phases.size()))
      throw po::error(is_preset ? "with --preset, --rotate sets the NiFe rotation (one value)"
                                : "give --rotate for every phase or for none");
    const std::string method = vm["method"].as<std::string>();
    const bool multislice = method == "multislice";
    if (method != "kinematic" && !multislice)
      throw po::error("--method must be kinematic or multislice, got '" + method + "'");
    if (multislice && (is_preset || phases.size() != 1 || !rotations.empty()))
      throw po::error("--method multislice takes one phase (STRUCTURE --zone u,v,w [--x u,v,w]), "
                      "without --preset, a second --phase or --rotate");
    if (!multislice)
      for (const char* name : {"sampling", "slice", "repeat", "phonons", "phonon-seed", "thickness-range"})
        if (vm.count(name) && !vm[name].defaulted())
          throw po::error(std::string("--") + name + " needs --method multislice");
    if (is_preset) {
      if (out.empty())
        out = std::string(PRESET_STEM) + ".csv";
      if (image_path.empty())
        image_path = path_stem(out) + ".tif";
      if (png_path.empty())
        png_path = path_stem(out) + ".png";
    }

    SaedSpec spec;
    get_quantity(vm, "energy", Dimension::Energy, spec.energy_eV, units::keV);
    get_quantity(vm, "thickness", Dimension::Length, spec.thickness_A);
    get_quantity(vm, "gmax", Dimension::InverseLength, spec.g_max_invA);
    get_quantity(vm, "holz-smax", Dimension::InverseLength, spec.holz_s_max_invA);
    const auto tilt = parse_quantity_list(vm["tilt"].as<std::string>(), Dimension::BeamAngle, "--tilt");
    if (tilt.empty() || tilt.size() > 2)
      throw po::error("--tilt takes one or two angles (x[,y]), got '" + vm["tilt"].as<std::string>() + "'");
    spec.tilt_x_mrad = tilt[0];
    spec.tilt_y_mrad = tilt.size() > 1 ? tilt[1] : 0;
    spec.max_laue_zone = holz;
    if (shape_name == "sinc")
      spec.shape = RelrodShape::Sinc;
    else if (shape_name == "envelope")
      spec.shape = RelrodShape::Envelope;
    else
      throw po::error("--shape must be sinc or envelope, got '" + shape_name + "'");
    spec.table = parse_scattering_table(table_name);
    spec.double_diffraction = !no_dd;
    spec.dd_n_strongest = dd_strongest;
    spec.dd_min_intensity = vm["dd-min-intensity"].as<double>();
    spec.validate();
    const ThermalSpec thermal = resolve_thermal_options(vm);
    SaedMultisliceSpec ms;  // --method multislice: the engine's grid, slices and phonons
    if (multislice) {
      if (spec.tilt_x_mrad != 0 || spec.tilt_y_mrad != 0)
        throw po::error("--method multislice has the beam along the zone axis: drop --tilt");
      ms.multislice.energy_eV = spec.energy_eV;
      get_quantity(vm, "sampling", Dimension::Length, ms.multislice.sampling_A);
      get_quantity(vm, "slice", Dimension::Length, ms.multislice.slice_thickness_A);
      ms.multislice.table = spec.table;
      ms.multislice.phonon_configs = vm["phonons"].as<int>();
      ms.multislice.seed = vm["phonon-seed"].as<unsigned long long>();
      ms.multislice.threads = common.threads;
      ms.multislice.validate();
      ms.thickness_A = spec.thickness_A;
      if (vm.count("thickness-range")) {
        if (!vm["thickness"].defaulted())
          throw po::error("give either --thickness or --thickness-range, not both");
        const auto range = parse_quantity_list(vm["thickness-range"].as<std::string>(), Dimension::Length,
                                               "--thickness-range");
        if (range.size() != 2 || !(range[0] > 0) || !(range[1] > range[0]))
          throw po::error("--thickness-range takes tmin,tmax with 0 < tmin < tmax (10nm,20nm), got '" +
                          vm["thickness-range"].as<std::string>() + "'");
        ms.thickness_min_A = range[0];
        ms.thickness_A = range[1];
      }
      ms.lateral_repeats = parse_lateral_repeats(vm["repeat"].as<std::string>());
    }
    if (!multislice && !parallel::is_root())
      return EXIT_OK;  // nothing to split: rank 0 alone computes and writes
    std::vector<double> rotation_deg;
    for (const auto& r : rotations)
      rotation_deg.push_back(parse_quantity(r, Dimension::CrystalAngle, "--rotate"));
    SaedRenderSpec render;
    render.size_px = size_px;
    get_quantity(vm, renamed_option(vm, "pixel-size-inv-A", "pixel"), Dimension::InverseLength,
                 render.pixel_size_invA);
    render.spot_sigma_px = spot_sigma_px;
    render.log_scale = log_scale;
    render.direct_beam_intensity = direct_beam;
    const bool want_image = !image_path.empty() || !png_path.empty();
    if (want_image && (size_px < 16 || size_px > 8192))
      throw po::error("--size must be 16-8192 px, got " + std::to_string(size_px));

    RunRecord rec("saed");
    if (is_preset)
      rec.add("preset", preset);
    for (size_t i = 0; i < phases.size(); ++i) {
      rec.add("phase" + std::to_string(i + 1), phases[i]);
      rec.add("zone" + std::to_string(i + 1), zones[i]);
      if (!x_dirs.empty())
        rec.add("x" + std::to_string(i + 1), x_dirs[i]);
      if (!rotation_deg.empty())
        rec.add("rotate" + std::to_string(i + 1) + "_deg", rotation_deg[i], "deg");
    }
    if (is_preset) {
      rec.add("phases", std::string("NiFe [110] and Fe3O4 [110], NiFe(-111) // Fe3O4(-111) along +y "
                                    "(box frame of epitem interface --preset nife-fe3o4)"));
      rec.add("nife_rotation_deg", rotation_deg.empty() ? 4.2 : rotation_deg[0], "deg");
    }
    rec.add("energy_eV", spec.energy_eV, "eV");
    rec.add("wavelength_A", electron_wavelength_A(spec.energy_eV), "Å");
    rec.add("thickness_A", spec.thickness_A, "Å");
    rec.add("g_max_invA", spec.g_max_invA, "1/Å");
    rec.add("tilt_x_mrad", spec.tilt_x_mrad, "mrad");
    rec.add("tilt_y_mrad", spec.tilt_y_mrad, "mrad");
    rec.add("max_laue_zone", double(spec.max_laue_zone));
    if (spec.max_laue_zone > 0)
      rec.add("holz_s_max_invA", spec.holz_s_max_invA, "1/Å");
    rec.add("shape", shape_name);
    rec.add("method", method);
    if (multislice) {
      rec.add("sampling_A", ms.multislice.sampling_A, "Å");
      rec.add("slice_thickness_A", ms.multislice.slice_thickness_A, "Å");
      rec.add("repeat", vm["repeat"].as<std::string>());
      rec.add("phonon_configs", ms.multislice.phonon_configs);
      rec.add("phonon_seed", Json(static_cast<unsigned long long>(ms.multislice.seed)));
    }
    rec.add("scattering_table", std::string(scattering_table_name(spec.table)));
    rec.add("double_diffraction", std::string(spec.double_diffraction ? "yes" : "no"));
    if (spec.double_diffraction) {
      rec.add("dd_n_strongest", double(spec.dd_n_strongest));
      rec.add("dd_min_intensity", spec.dd_min_intensity);
      rec.add("coincidence_tol_invA", spec.coincidence_tol_invA, "1/Å");
    }
    rec.add("out", out);
    if (!image_path.empty())
      rec.add("image", image_path);
    if (!png_path.empty())
      rec.add("png", png_path);
    if (want_image) {
      rec.add("size_px", double(size_px));
      rec.add("pixel_size_invA",
              render.pixel_size_invA > 0 ? render.pixel_size_invA : 2 * 1.05 * spec.g_max_invA / size_px,
              "1/Å");
      rec.add("spot_sigma_px", spot_sigma_px, "px");
      rec.add("log_scale", std::string(log_scale ? "yes" : "no"));
      rec.add("direct_beam_intensity", direct_beam);
    }
    if (common.dry_run) {
      if (!parallel::is_root())
        return EXIT_OK;
      rec.echo(std::cout);
      const double image_bytes = want_image ? 3.0 * 4 * double(size_px) * size_px : 0;
      std::cout << "# dry run: memory needed about " << format_bytes(image_bytes + (1 << 20))
                << (multislice ? " plus the multislice engine's (estimated once the structure is read: "
                                 "sidecar results.multislice_memory_estimate_bytes)"
                               : "")
                << "; nothing computed\n";
      return EXIT_OK;
    }

    // Every file this run writes, checked against the inputs before any work.
    if (parallel::is_root())
      plan_outputs({out, sidecar_path(out), image_path, png_path},
                   is_preset ? std::vector<std::string>{} : phases);
    // Build the phases (reads the structures), compute, render; write only when all succeeded.
    std::vector<SaedPhase> saed_phases;
    std::vector<std::string> inputs;
    Vec3 first_x = Vec3::Zero();  // --x of the first phase (multislice orients with it)
    if (is_preset) {
      saed_phases = nife_fe3o4_phases(read_crystal("NiFe"), read_crystal("Fe3O4"),
                                      rotation_deg.empty() ? 4.2 : rotation_deg[0]);
    } else {
      for (size_t i = 0; i < phases.size(); ++i) {
        const Crystal c = read_crystal(phases[i]);
        inputs.push_back(phases[i]);
        const auto z = parse_int_triple(zones[i], "--zone");
        Vec3 x = Vec3::Zero();
        if (!x_dirs.empty()) {
          const auto xi = parse_int_triple(x_dirs[i], "--x");
          x = Vec3(xi[0], xi[1], xi[2]);
        }
        if (i == 0)
          first_x = x;
        SaedPhase p = saed_phase_for_zone(c, Vec3(z[0], z[1], z[2]), x);
        if (!rotation_deg.empty() && rotation_deg[i] != 0)
          p = saed_phase_with_orientation(
              c, rotation_about_axis(Vec3::UnitZ(), rotation_deg[i]) * p.orientation);
        saed_phases.push_back(p);
      }
    }
    // Debye–Waller factors at --temperature (else the structures' own U_iso).
    std::vector<const Crystal*> crystals;
    for (SaedPhase& p : saed_phases) {
      apply_temperature(p.crystal, thermal);
      crystals.push_back(&p.crystal);
    }
    rec.add("thermal", thermal_json(thermal, crystal_u_iso_used(crystals)));
    std::vector<SpotReading> readings;
    SaedPattern kinematic_pattern;
    AtomicModel model;
    MeanDiffraction diffraction;
    Json mpi_record;
    std::array<int, 3> repeats{1, 1, 1};
    if (multislice) {
      model = saed_multislice_model(saed_phases[0], first_x, ms, &repeats);
      ms.multislice.thickness_series_A = saed_thickness_series_A(model, repeats[2], ms);
      // The kinematic columns at the thickness the multislice actually has (whole periods).
      spec.thickness_A = multislice_slicing(model, ms.multislice).boundaries_A.back();
      rec.add("thermal_phonons", thermal_json(thermal, phonon_u_iso_used(model)));
      if (thermal.active() && ms.multislice.phonon_configs == 0 && parallel::is_root())
        std::cerr << "warning: --method multislice with --phonons 0 has static atoms: --temperature "
                     "changes only the intensity_kinematic column\n";
      {  // the engine's memory plus the pattern sum and, under mpirun, this rank's patterns until collected
        const Grid g = multislice_grid(model, ms.multislice);
        const int configs = std::max(1, ms.multislice.phonon_configs);
        const int held = parallel::size() > 1 ? (configs + parallel::size() - 1) / parallel::size() : 0;
        const double one_process = estimate_multislice_memory_bytes(model, ms.multislice) +
                                   DiffractionSum::memory_bytes(g, 2);  // the total and one configuration's
        const double bytes = one_process + held * 8.0 * double(g.size());
        const double avail = available_memory_bytes();
        rec.result("multislice_memory_estimate_bytes", one_process);  // the same on any number of ranks
        if (avail > 0 && bytes > avail)
          fail("saed --method multislice needs about ", format_bytes(bytes), " but only ", format_bytes(avail),
               " is available (MemAvailable): use a coarser --sampling or smaller --repeat");
      }
      ProgressBar bar(common.quiet || !parallel::is_root());
      diffraction = mean_diffraction(model, ms.multislice, bar.callback(),
                                     parallel::is_root() ? warn_to_stderr() : WarnFn());
      bar.finish();
      if (parallel::size() > 1)  // collective: every rank gives its work and communication times
        mpi_record = parallel::run_json(diffraction.report.total_seconds);
      if (!parallel::is_root())
        return EXIT_OK;  // rank 0 writes every output
    }
    SaedPattern pattern = kinematic_saed(saed_phases, spec);
    if (multislice) {
      readings = read_spots(pattern, diffraction.grid, diffraction.mean);
      // The kinematic columns over the same thicknesses (those the multislice saved).
      const auto& saved = diffraction.report.saved_thicknesses_A;
      kinematic_pattern = saved.size() > 1 ? kinematic_thickness_average(pattern, saved, spec.shape) : pattern;
      if (saved.size() > 1)
        rec.result("multislice_thicknesses_A", Json(saved));
      pattern = with_multislice_intensities(kinematic_pattern, readings);
      const Grid& g = diffraction.grid;
      rec.result("multislice_repeats", std::to_string(repeats[0]) + "," + std::to_string(repeats[1]) + "," +
                                           std::to_string(repeats[2]));
      rec.result("multislice_atoms", Json(static_cast<unsigned long>(model.atoms.size())));
      rec.result("multislice_thickness_A", spec.thickness_A);
      rec.result("multislice_grid", std::to_string(g.nx) + "x" + std::to_string(g.ny));
      rec.result("multislice_extent_x_A", g.extent_x_A);
      rec.result("multislice_extent_y_A", g.extent_y_A);
      rec.result("band_limit_invA", g.band_limit_invA());
      Json counts = Json::object();
      for (SpotPixel st : {SpotPixel::Read, SpotPixel::BeyondBandLimit, SpotPixel::OffGrid, SpotPixel::HigherLaueZone})
        counts.set(spot_pixel_name(st), int(std::count_if(readings.begin(), readings.end(),
                                                           [st](const SpotReading& r) { return r.status == st; })));
      rec.result("multislice_pixel_counts", counts);
      rec.result("multislice", diffraction.report.to_json());
      if (parallel::size() > 1)
        rec.result("mpi", mpi_record);
    }
    Image image;
    Canvas canvas(1, 1);
    if (!image_path.empty())
      image = render_saed_image(pattern, render);
    if (!png_path.empty())
      canvas = render_saed_png(pattern, render);

    int n_within = 0, n_between = 0;
    std::vector<int> n_spots(pattern.phase_names.size(), 0);
    for (const auto& s : pattern.spots) {
      if (s.double_diffraction == DoubleDiffraction::WithinPhase)
        ++n_within;
      else if (s.double_diffraction == DoubleDiffraction::BetweenPhases)
        ++n_between;
      else if (!s.is_direct_beam)
        ++n_spots[size_t(s.phase)];
    }
    Json per_phase = Json::object();
    for (size_t p = 0; p < pattern.phase_names.size(); ++p)
      per_phase.set(pattern.phase_names[p], n_spots[p]);
    rec.result("spots_per_phase", per_phase);
    rec.result("double_diffraction_within_phase", n_within);
    rec.result("double_diffraction_between_phases", n_between);
    rec.result("moire_spots", int(std::count_if(pattern.spots.begin(), pattern.spots.end(),
                                                [](const SaedSpot& s) { return s.is_moire; })));

    write_text_file(out, multislice ? saed_multislice_csv(pattern, kinematic_pattern, readings)
                                    : saed_spots_csv(pattern),
                    inputs);
    rec.add_output(out);
    if (!image_path.empty()) {
      write_tiff(image_path, {image}, rec.tiff_description());
      rec.add_output(image_path);
    }
    if (!png_path.empty()) {
      write_png(canvas, png_path);
      rec.add_output(png_path);
    }
    rec.write_sidecar(out);

    if (!common.quiet) {
      rec.echo(std::cout);
      for (size_t p = 0; p < pattern.phase_names.size(); ++p) {
        std::cout << "# " << pattern.phase_names[p] << " " << zone_text(pattern.phase_zones_uvw[p])
                  << ": " << n_spots[p] << " spots; strongest:";
        std::vector<const SaedSpot*> list;
        for (const auto& s : pattern.spots)
          if (s.phase == int(p) && !s.is_direct_beam && s.double_diffraction == DoubleDiffraction::None)
            list.push_back(&s);
        std::stable_sort(list.begin(), list.end(), [](const SaedSpot* a, const SaedSpot* b) {
          return a->intensity > b->intensity;
        });
        for (size_t i = 0; i < std::min<size_t>(list.size(), 6); ++i) {
          char buf[96];
          std::snprintf(buf, sizeof buf, " %s (d %.3f Å, I %.1f)", miller_label(list[i]->hkl).c_str(),
                        list[i]->d_A, list[i]->intensity);
          std::cout << buf << (i + 1 < std::min<size_t>(list.size(), 6) ? "," : "");
        }
        std::cout << "\n";
      }
      std::cout << "# double diffraction: " << n_within << " forbidden spot(s) reached within a phase, "
                << n_between << " extra spot(s) between phases\n";
      std::cout << "# wrote " << out;
      if (!image_path.empty())
        std::cout << ", " << image_path;
      if (!png_path.empty())
        std::cout << ", " << png_path;
      std::cout << " and " << sidecar_path(out) << "\n";
    }
    return EXIT_OK;
  });
}

}  // namespace

EPITEM_COMMAND(saed, 30, "SAED pattern of one or more phases, kinematic or multislice (CSV, TIFF, PNG)", saed_main);

}  // namespace epitem::cli
