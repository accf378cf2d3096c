// Simulation bindings: multislice exit waves, HRTEM images of them, kinematic SAED and the
// interface builder. Compute runs with the GIL released; progress_hook() brings Ctrl-C in.
#include <boost/program_options.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>

#include "../apps/imaging_options.hpp"
#include "../apps/thermal_options.hpp"
#include "bindings.hpp"
#include "epitem/debye.hpp"
#include "epitem/error.hpp"
#include "epitem/imaging.hpp"
#include "epitem/interface.hpp"
#include "epitem/interface_options.hpp"
#include "epitem/kinematic.hpp"
#include "epitem/multislice.hpp"
#include "epitem/quantity.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"

namespace epitem::python {

namespace {

namespace po = boost::program_options;

using ComplexArray = py::array_t<std::complex<float>, py::array::c_style | py::array::forcecast>;

AtomicModel model_of(const py::object& model) {
  if (py::isinstance<AtomicModel>(model))
    return model.cast<AtomicModel>();
  if (py::isinstance<py::str>(model) || py::hasattr(model, "__fspath__"))
    return read_model(py::str(model).cast<std::string>());
  throw py::type_error("model must be an epitem.Model or an extxyz path, got " +
                       std::string(py::str(model.get_type().attr("__name__"))));
}

// x or (x, y) [mrad].
std::pair<double, double> pair_of(const py::object& o, const char* what) {
  if (py::isinstance<py::sequence>(o) && !py::isinstance<py::str>(o)) {
    const auto v = o.cast<std::vector<double>>();
    if (v.empty() || v.size() > 2)
      throw py::value_error(std::string(what) + " takes one or two values (x[, y])");
    return {v[0], v.size() > 1 ? v[1] : 0.0};
  }
  return {o.cast<double>(), 0.0};
}

// temperature / debye_temperature keywords → the CLI's --temperature / --debye-temperature.
ThermalSpec thermal_of(const py::object& temperature, const py::object& debye_temperature) {
  py::kwargs kw;
  // A bare number is in K (the CLI insists on a unit: "700C" or "973K").
  const bool number = !temperature.is_none() && !py::isinstance<py::str>(temperature);
  kw["temperature"] = number ? py::str(py::str(py::float_(temperature)).cast<std::string>() + "K") : temperature;
  kw["debye_temperature"] = debye_temperature;
  return cli::resolve_thermal_options(parse_options(cli::thermal_options(), kw, "temperature"));
}

py::object multislice(const py::object& model_in, double energy_eV, const py::object& gpts,
                      double sampling_A, double slice_thickness_A, int slices, const std::string& table,
                      int phonons, std::uint64_t seed, const std::vector<double>& thickness_series_A,
                      const py::object& tilt_mrad, int threads, const py::object& temperature,
                      const py::object& debye_temperature, const py::object& progress, bool dry_run) {
  MultisliceSpec spec;
  spec.energy_eV = energy_eV;
  if (!gpts.is_none()) {
    if (sampling_A > 0)
      throw py::value_error("give either gpts or sampling_A, not both");
    if (py::isinstance<py::str>(gpts)) {
      const auto n = parse_grid_size(gpts.cast<std::string>(), "gpts");
      spec.nx = n[0];
      spec.ny = n.size() > 1 ? n[1] : n[0];
    } else if (py::isinstance<py::sequence>(gpts)) {
      const auto n = gpts.cast<std::vector<int>>();
      if (n.size() != 2)
        throw py::value_error("gpts must be N or (nx, ny)");
      spec.nx = n[0], spec.ny = n[1];
    } else {
      spec.nx = spec.ny = gpts.cast<int>();
    }
  } else if (!(sampling_A > 0)) {
    throw py::value_error("give the grid: gpts=N or (nx, ny), or sampling_A=0.05");
  }
  spec.sampling_A = gpts.is_none() ? sampling_A : 0;
  spec.slice_thickness_A = slice_thickness_A;
  spec.n_slices = slices;
  spec.table = parse_scattering_table(table);
  spec.phonon_configs = phonons;
  spec.seed = seed;
  spec.thickness_series_A = thickness_series_A;
  std::tie(spec.beam_tilt_x_mrad, spec.beam_tilt_y_mrad) = pair_of(tilt_mrad, "tilt_mrad");
  spec.threads = threads;
  spec.validate();
  const ThermalSpec thermal = thermal_of(temperature, debye_temperature);
  AtomicModel model = model_of(model_in);
  apply_temperature(model, thermal);  // U_iso(T) of every atom: the frozen-phonon displacements
  if (thermal.active() && spec.phonon_configs == 0)
    warn_hook()("temperature acts through the atom displacements; with phonons=0 the atoms are static and the "
                "temperature changes nothing");

  const Grid grid = multislice_grid(model, spec);
  const std::size_t n = grid.size();
  const std::size_t n_saved = thickness_series_A.size() + 1;
  if (dry_run) {  // as `epitem multislice --dry-run`: what the run would use, nothing computed
    const Slicing slicing = multislice_slicing(model, spec);
    const double library = estimate_multislice_memory_bytes(model, spec);
    return py::dict(py::arg("grid") = py::make_tuple(grid.nx, grid.ny),
                    py::arg("sampling_A") = py::make_tuple(grid.sampling_x_A(), grid.sampling_y_A()),
                    py::arg("slices") = slicing.n_slices(), py::arg("thickness_A") = slicing.boundaries_A.back(),
                    py::arg("band_limit_mrad") =
                        grid.band_limit_invA() * electron_wavelength_A(spec.energy_eV) * 1e3,
                    py::arg("memory_estimate_bytes") = library,
                    py::arg("output_bytes") = double(n_saved * n * sizeof(cfloat)));
  }
  // The one output buffer: filled in TIFF row order (row 0 = largest y) by the callback and
  // handed to numpy as is.
  std::vector<std::complex<float>> out;
  {
    py::gil_scoped_release release;
    out.resize(n_saved * n);
    const auto on_exit = [&](int config, int ti, double, const Wave& w) {
      if (config != 0)
        return;
      std::complex<float>* dst = out.data() + std::size_t(ti) * n;
      for (int iy = 0; iy < grid.ny; ++iy)
        std::memcpy(dst + std::size_t(grid.ny - 1 - iy) * std::size_t(grid.nx),
                    w.psi.data() + std::size_t(iy) * std::size_t(grid.nx), std::size_t(grid.nx) * sizeof(cfloat));
    };
    run_multislice(model, spec, on_exit, progress_hook(progress), warn_hook());
  }
  if (n_saved == 1)
    return owned_array(std::move(out), {grid.ny, grid.nx});
  return owned_array(std::move(out), {py::ssize_t(n_saved), grid.ny, grid.nx});
}

py::array image(const ComplexArray& wave, const py::object& sampling_A, double energy_eV,
                int multislice_slices, const py::object& progress, const py::kwargs& kwargs) {
  if (wave.ndim() != 2 && wave.ndim() != 3)
    throw py::value_error("wave must be a complex array (ny, nx) or (n, ny, nx), as multislice returns");
  const auto [sx, sy_given] = pair_of(sampling_A, "sampling_A");
  const double sy = sy_given > 0 ? sy_given : sx;
  if (!(sx > 0))
    throw py::value_error("sampling_A must be > 0 Å (the exit wave's pixel), got " + std::to_string(sx));
  const po::variables_map vm = parse_options(cli::imaging_options("1mm"), kwargs, "image");
  cli::ImagingSetup setup = cli::resolve_imaging_options(vm, energy_eV);

  const int ny = int(wave.shape(wave.ndim() - 2)), nx = int(wave.shape(wave.ndim() - 1));
  const std::size_t n_waves = wave.ndim() == 3 ? std::size_t(wave.shape(0)) : 1;
  Grid grid{nx, ny, nx * sx, ny * sy};
  const std::complex<float>* data = wave.data();
  const std::size_t n_pages = n_waves * setup.defocus_series_A.size() * setup.tilts_mrad.size();
  if (multislice_slices < 0)
    throw py::value_error("multislice_slices must be >= 0 (0 = unknown), got " + std::to_string(multislice_slices));
  // --coherence auto (the CLI's default) weighed as `epitem image` does, against the multislice
  // that made the wave (2 FFTs per slice; its sidecar's "slices" there).
  cli::choose_coherence(setup, grid, 2.0 * multislice_slices, double(n_pages), warn_hook());
  std::vector<float> out;
  int out_nx = 0, out_ny = 0;
  const ProgressFn hook = progress_hook(progress);
  {
    py::gil_scoped_release release;
    check_lens_against_grid(setup.lens, grid, warn_hook());
    const double az = setup.tilt_azimuth_deg * units::deg_to_rad;
    std::size_t page = 0;
    for (std::size_t w = 0; w < n_waves; ++w) {
      Wave exit(grid, energy_eV);
      // File rows (row 0 = largest y) → the model frame.
      for (int iy = 0; iy < ny; ++iy)
        std::memcpy(exit.psi.data() + std::size_t(iy) * std::size_t(nx),
                    data + w * grid.size() + std::size_t(ny - 1 - iy) * std::size_t(nx), std::size_t(nx) * sizeof(cfloat));
      ImageFormer former(exit);
      for (double tilt : setup.tilts_mrad)
        for (double df : setup.defocus_series_A) {
          Lens lens = setup.lens;
          lens.aberrations.defocus_A = df;
          const Image im = flipped_rows(apply_detector(
              former.intensity(lens, setup.coherence, tilt * std::cos(az), tilt * std::sin(az)), setup.detector,
              int(page)));
          if (page == 0) {
            out_nx = im.nx, out_ny = im.ny;
            out.reserve(n_pages * im.size());
          }
          out.insert(out.end(), im.pixels.begin(), im.pixels.end());
          ++page;
          hook(page, n_pages, "imaging");
        }
    }
  }
  if (n_pages == 1)
    return owned_array(std::move(out), {out_ny, out_nx});
  return owned_array(std::move(out), {py::ssize_t(n_pages), out_ny, out_nx});
}


Crystal crystal_of(const py::object& o) {
  if (py::isinstance<Crystal>(o))
    return o.cast<Crystal>();
  return read_crystal(py::str(o).cast<std::string>());
}

py::object saed(const py::object& structure, const py::object& zone, const py::object& x,
                const py::object& phases, const py::object& rotate_deg, double energy_eV, double thickness_A,
                double gmax_invA, const py::object& tilt_mrad, int holz, double holz_smax_invA,
                const std::string& shape, const std::string& table, bool double_diffraction, int dd_strongest,
                bool image, int size, double pixel_invA, double spot_sigma, bool log, double direct_beam,
                const py::object& temperature, const py::object& debye_temperature) {
  SaedSpec spec;
  spec.energy_eV = energy_eV;
  spec.thickness_A = thickness_A;
  spec.g_max_invA = gmax_invA;
  std::tie(spec.tilt_x_mrad, spec.tilt_y_mrad) = pair_of(tilt_mrad, "tilt_mrad");
  spec.max_laue_zone = holz;
  spec.holz_s_max_invA = holz_smax_invA;
  if (shape == "sinc")
    spec.shape = RelrodShape::Sinc;
  else if (shape == "envelope")
    spec.shape = RelrodShape::Envelope;
  else
    throw py::value_error("shape must be sinc or envelope, got '" + shape + "'");
  spec.table = parse_scattering_table(table);
  spec.double_diffraction = double_diffraction;
  spec.dd_n_strongest = dd_strongest;
  spec.validate();

  // Phases: (crystal, zone[, x[, rotate_deg]]) tuples, one structure + zone, or the preset.
  std::vector<SaedPhase> list;
  const auto add = [&](const py::object& c, const py::object& z, const py::object& xd, double rot) {
    if (z.is_none())
      throw py::value_error("zone is required for a structure, e.g. zone=(1, 1, 0)");
    SaedPhase p = saed_phase_for_zone(crystal_of(c), to_triple(z, "zone"), xd.is_none() ? Vec3::Zero() : to_triple(xd, "x"));
    if (rot != 0)
      p = saed_phase_with_orientation(p.crystal, rotation_about_axis(Vec3::UnitZ(), rot) * p.orientation);
    list.push_back(p);
  };
  if (!structure.is_none() && !phases.is_none())
    throw py::value_error("give either structure (with zone) or phases, not both");
  if (!structure.is_none()) {
    add(structure, zone, x, rotate_deg.is_none() ? 0.0 : rotate_deg.cast<double>());
  } else if (!phases.is_none()) {
    for (const auto& item : phases.cast<py::sequence>()) {
      const auto t = item.cast<py::tuple>();
      if (t.size() < 2 || t.size() > 4)
        throw py::value_error("phases: each entry is (structure, zone[, x[, rotate_deg]])");
      add(t[0], t[1], t.size() > 2 ? py::object(t[2]) : py::none(), t.size() > 3 ? t[3].cast<double>() : 0.0);
    }
  } else {  // the nife-fe3o4 preset, as `epitem saed` with no structure
    if (!zone.is_none() || !x.is_none())
      throw py::value_error("zone and x need a structure (the preset sets its own)");
    list = nife_fe3o4_phases(read_crystal("NiFe"), read_crystal("Fe3O4"),
                             rotate_deg.is_none() ? 4.2 : rotate_deg.cast<double>());
  }

  // Debye–Waller factors at the temperature (else the structures' own U_iso), as `epitem saed`.
  const ThermalSpec thermal = thermal_of(temperature, debye_temperature);
  for (SaedPhase& p : list)
    apply_temperature(p.crystal, thermal);

  SaedPattern pattern;
  Image rendered;
  SaedRenderSpec render;
  render.size_px = size;
  render.pixel_size_invA = pixel_invA;
  render.spot_sigma_px = spot_sigma;
  render.log_scale = log;
  render.direct_beam_intensity = direct_beam;
  if (image && (size < 16 || size > 8192))
    throw py::value_error("size must be 16-8192 px, got " + std::to_string(size));
  {
    py::gil_scoped_release release;
    pattern = kinematic_saed(list, spec);
    if (image)
      rendered = render_saed_image(pattern, render);
  }
  const std::size_t n = pattern.spots.size();
  std::vector<int> h(n), k(n), l(n), lz(n), dd(n);
  std::vector<double> gx(n), gy(n), g(n), d(n), s(n), I(n), F(n);
  py::list phase, path;
  for (std::size_t i = 0; i < n; ++i) {
    const SaedSpot& sp = pattern.spots[i];
    std::string name = sp.is_direct_beam ? "direct" : pattern.phase_names[std::size_t(sp.phase)];
    if (sp.double_diffraction == DoubleDiffraction::BetweenPhases)
      name += "+" + pattern.phase_names[std::size_t(sp.phase_b)];
    phase.append(name);
    h[i] = sp.hkl[0], k[i] = sp.hkl[1], l[i] = sp.hkl[2];
    gx[i] = sp.g_lab_invA[0], gy[i] = sp.g_lab_invA[1], g[i] = sp.g_invA, d[i] = sp.d_A;
    s[i] = sp.excitation_error_invA, I[i] = sp.intensity, F[i] = sp.F_abs_A;
    lz[i] = sp.laue_zone, dd[i] = int(sp.double_diffraction);
    path.append(sp.dd_path);
  }
  const std::vector<py::ssize_t> shp = {py::ssize_t(n)};
  py::dict spots;
  spots["phase"] = phase;
  spots["h"] = owned_array(std::move(h), shp);
  spots["k"] = owned_array(std::move(k), shp);
  spots["l"] = owned_array(std::move(l), shp);
  // gx, gy, g: deprecated spellings the CSV keeps; gx_inv_A, gy_inv_A, g_inv_A the same arrays.
  const py::array_t<double> gx_a = owned_array(std::move(gx), shp), gy_a = owned_array(std::move(gy), shp),
                            g_a = owned_array(std::move(g), shp);
  spots["gx"] = gx_a;
  spots["gy"] = gy_a;
  spots["g"] = g_a;
  spots["d_A"] = owned_array(std::move(d), shp);
  spots["excitation_error"] = owned_array(std::move(s), shp);
  spots["intensity"] = owned_array(std::move(I), shp);
  spots["F_abs"] = owned_array(std::move(F), shp);
  spots["laue_zone"] = owned_array(std::move(lz), shp);
  spots["double_diffraction"] = owned_array(std::move(dd), shp);
  spots["dd_path"] = path;
  spots["gx_inv_A"] = gx_a;
  spots["gy_inv_A"] = gy_a;
  spots["g_inv_A"] = g_a;
  if (!image)
    return std::move(spots);
  const double px = rendered.pixel_size_invA;
  return py::make_tuple(spots, owned_array(std::move(rendered.pixels), {rendered.ny, rendered.nx}), px);
}

py::tuple interface(const py::object& progress, const py::kwargs& kwargs) {
  const OptionTexts texts = option_texts(kwargs);
  const auto& names = interface_option_names();
  for (const auto& [name, text] : texts)
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      std::string known;
      for (std::string k : names) {
        for (char& c : k)
          if (c == '-')
            c = '_';
        known += (known.empty() ? "" : ", ") + k;
      }
      throw py::type_error("interface() got an unexpected keyword argument '" + name + "' (options: " + known + ")");
    }
  InterfaceSpec spec;
  InterfaceResult result;
  const ProgressFn hook = progress_hook(progress);
  {
    py::gil_scoped_release release;
    spec = interface_spec_from_options(texts);
    result = build_interface(spec, hook);
  }
  const std::string report = interface_report_json(spec, result.report).dump(0);
  return py::make_tuple(std::move(result.model), py::module_::import("json").attr("loads")(report));
}

}  // namespace

void bind_simulation(py::module_& m) {
  m.def("multislice", &multislice, py::arg("model"), py::kw_only(), py::arg("energy_eV") = 200e3,
        py::arg("gpts") = py::none(), py::arg("sampling_A") = 0.0, py::arg("slice_thickness_A") = 2.0,
        py::arg("slices") = 0, py::arg("table") = "kirkland", py::arg("phonons") = 0, py::arg("seed") = 1,
        py::arg("thickness_series_A") = std::vector<double>{}, py::arg("tilt_mrad") = 0.0,
        py::arg("threads") = 0, py::arg("temperature") = py::none(), py::arg("debye_temperature") = py::none(),
        py::arg("progress") = py::none(), py::arg("dry_run") = false,
        "Multislice exit wave of a Model (or extxyz path), as `epitem multislice`.\n\n"
        "energy_eV: beam energy [eV]; gpts: N or (nx, ny) grid points, or sampling_A: largest\n"
        "pixel [Å]; slice_thickness_A [Å] or slices (equal slices); table: kirkland | peng;\n"
        "phonons: frozen-phonon configurations (0 = static; configuration 0 is returned, as the\n"
        "CLI's TIFF); seed; thickness_series_A [Å]: also return these thicknesses; tilt_mrad:\n"
        "beam tilt x or (x, y) [mrad]; threads (0 = $EPITEM_THREADS or all cores);\n"
        "temperature: '700C', '973K' or a number in K (--temperature: U_iso(T) of every atom from\n"
        "the Debye model, docs/temperature.md; acts through the phonons); debye_temperature:\n"
        "'Fe=470K,O=650K' overrides (--debye-temperature); progress:\n"
        "callable(done, total, stage) called after each slice.\n\n"
        "Returns complex64 ψ (ny, nx) — or (n_thicknesses, ny, nx), the full model last — with\n"
        "the TIFF's row convention: row 0 = top = largest y; pixel = box / (nx, ny). The array\n"
        "owns the buffer the run filled (no copy). Ctrl-C interrupts within one slice.\n"
        "dry_run=True computes nothing and returns the grid, sampling_A, slices, thickness_A,\n"
        "band_limit_mrad, memory_estimate_bytes (the library's working set) and output_bytes.");
  m.def("image", &image, py::arg("wave"), py::kw_only(), py::arg("sampling_A"), py::arg("energy_eV") = 200e3,
        py::arg("multislice_slices") = 0, py::arg("progress") = py::none(),
        "HRTEM image of an exit wave (as multislice returns it), as `epitem image`.\n\n"
        "sampling_A: the wave's pixel [Å] (x or (x, y)); energy_eV [eV]. Every other keyword is\n"
        "an `epitem image` option with '-' written '_' and the CLI's units (bare numbers: lengths\n"
        "in Å, cs/c5/cc in mm, angles in mrad/deg as its help says; strings with units work too):\n"
        "defocus (Å or 'scherzer'), scherzer, cs, c5, astigmatism, astigmatism_angle, coma,\n"
        "coma_angle, threefold, threefold_angle, aperture [mrad], coherence (auto | envelope |\n"
        "integrate; default auto as the CLI: integrate unless it costs more than 50x the\n"
        "multislice's FFTs, weighed with multislice_slices = the slices of the run that made the\n"
        "wave, 0 = unknown: at least 10,000 FFTs), focal_spread, focal_spread_kind, cc, energy_spread [eV], convergence [mrad],\n"
        "defocus_nodes, tilt_nodes, mtf, pixel [Å], dose [e/Å²], seed, drift [Å], drift_angle,\n"
        "defocus_series (sequence [Å]), tilt [mrad], tilt_series, tilt_azimuth [deg].\n\n"
        "Returns float32 (ny, nx) — relative intensity (vacuum = 1) or counts with dose — or\n"
        "(pages, ny, nx) for a series (waves × tilts × defoci, defocus fastest); row 0 = top.");
  m.def("saed", &saed, py::arg("structure") = py::none(), py::arg("zone") = py::none(), py::arg("x") = py::none(),
        py::kw_only(), py::arg("phases") = py::none(), py::arg("rotate_deg") = py::none(),
        py::arg("energy_eV") = 200e3, py::arg("thickness_A") = 200.0, py::arg("gmax_invA") = 1.5,
        py::arg("tilt_mrad") = 0.0, py::arg("holz") = 0, py::arg("holz_smax_invA") = 0.02,
        py::arg("shape") = "sinc", py::arg("table") = "kirkland", py::arg("double_diffraction") = true,
        py::arg("dd_strongest") = 4, py::arg("image") = false, py::arg("size") = 512,
        py::arg("pixel_invA") = 0.0, py::arg("spot_sigma") = 1.5, py::arg("log") = false,
        py::arg("direct_beam") = 100.0, py::arg("temperature") = py::none(),
        py::arg("debye_temperature") = py::none(),
        "Kinematic SAED spot pattern, as `epitem saed`.\n\n"
        "structure (Crystal, CIF path or built-in name) with zone (u, v, w) [and x, rotate_deg];\n"
        "or phases = [(structure, zone[, x[, rotate_deg]]), ...]; or nothing: the nife-fe3o4\n"
        "preset (rotate_deg = NiFe rotation, default 4.2). energy_eV [eV], thickness_A [Å] of\n"
        "the shape function, gmax_invA [1/Å], tilt_mrad x or (x, y), holz (Laue zone order),\n"
        "holz_smax_invA [1/Å], shape sinc | envelope, table kirkland | peng; temperature ('700C',\n"
        "'973K' or K) and debye_temperature ('Fe=470K'): Debye–Waller factors from U_iso(T), as\n"
        "--temperature / --debye-temperature (default: the structures' own U_iso).\n\n"
        "Returns the spot table as a dict of arrays with the CSV's columns (phase, h, k, l, gx,\n"
        "gy, g [1/Å], d_A, excitation_error [1/Å], intensity (strongest = 100), F_abs [Å],\n"
        "laue_zone, double_diffraction, dd_path, gx_inv_A, gy_inv_A, g_inv_A); with image=True, (spots, float32 pattern\n"
        "(size, size), direct beam at (size/2, size/2), +y up; its pixel [1/Å]).");
  m.def("interface", &interface, py::kw_only(), py::arg("progress") = py::none(),
        "Epitaxial interface model, as `epitem interface`: keywords are its options with '-'\n"
        "written '_' (preset, substrate, overlayer, plane, direction, zone, view, tilt [deg],\n"
        "tilt_axis, box, keep_box, no_strain, substrate_thickness [Å], vacuum [Å], shape,\n"
        "overlayer_thickness [Å], radius [Å], center_height [Å], facets, ledge_height,\n"
        "terrace_width [Å], seed, cutoff, cutoff_scale, probe [Å], no_voids); values as on the\n"
        "command line ('-1,1,1:-1,1,1', '60x60x40A', '4.2deg') or numbers in the documented unit\n"
        "and sequences ((1, 1, 0)). Returns (Model, report dict as in the JSON sidecar).");
}

}  // namespace epitem::python
