// The Python module `epitem._epitem` (re-exported by python/epitem/__init__.py): error
// translation, the progress/interrupt hook, and the structure bindings (Crystal, Model,
// reflection tables, image files). Simulation and analysis live in simulation.cpp, analysis.cpp.
#include <boost/program_options/errors.hpp>
#include <algorithm>
#include <cmath>
#include <sstream>

#include "bindings.hpp"
#include "epitem/crystal.hpp"
#include "epitem/error.hpp"
#include "epitem/image_file.hpp"
#include "epitem/interface_options.hpp"
#include "epitem/kinematic.hpp"
#include "epitem/model.hpp"
#include "epitem/quantity.hpp"
#include "epitem/scattering.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"

namespace epitem::python {

ProgressFn progress_hook(py::handle callback) {
  return [callback](std::size_t done, std::size_t total, const std::string& stage) {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0)  // runs the SIGINT handler: KeyboardInterrupt is now set
      throw py::error_already_set();
    if (callback && !callback.is_none())
      callback(done, total, stage);
  };
}

WarnFn warn_hook() {
  return [](const std::string& message) {
    py::gil_scoped_acquire gil;
    if (PyErr_WarnEx(PyExc_UserWarning, message.c_str(), 1) != 0)
      throw py::error_already_set();  // warnings configured as errors
  };
}

std::map<std::string, std::string> option_texts(const py::kwargs& kwargs) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : kwargs) {
    std::string name = py::str(key);
    for (char& c : name)
      if (c == '_')
        c = '-';
    if (value.is_none())
      continue;
    std::string text;
    if (py::isinstance<py::bool_>(value))
      text = value.cast<bool>() ? "true" : "false";
    else if (py::isinstance<py::str>(value))
      text = value.cast<std::string>();
    else if (py::isinstance<py::sequence>(value)) {
      for (const auto& item : value.cast<py::sequence>())
        text += (text.empty() ? "" : ",") + std::string(py::str(py::repr(item)));
    } else if (py::isinstance<py::int_>(value) || py::isinstance<py::float_>(value) ||
               py::hasattr(value, "__float__"))
      text = py::str(py::repr(py::float_(py::reinterpret_borrow<py::object>(value))));
    else
      throw py::type_error("option " + name + ": expected a number, string or sequence, got " +
                           std::string(py::str(value.get_type().attr("__name__"))));
    if (py::isinstance<py::int_>(value) && !py::isinstance<py::bool_>(value))
      text = py::str(value);  // integers stay integers ("3", not "3.0")
    out[name] = text;
  }
  return out;
}

std::vector<std::string> option_argv(const std::map<std::string, std::string>& texts,
                                     const std::vector<std::string>& switches) {
  std::vector<std::string> argv = {"epitem"};
  for (const auto& [name, text] : texts) {
    if (std::find(switches.begin(), switches.end(), name) != switches.end()) {
      if (text == "true")
        argv.push_back("--" + name);
      else if (text != "false")
        throw py::value_error(name + " is a switch: True or False, got '" + text + "'");
    } else {
      argv.push_back("--" + name + "=" + text);
    }
  }
  return argv;
}

namespace po = boost::program_options;

po::variables_map parse_options(const po::options_description& opts, const py::kwargs& kwargs,
                                const char* function, const std::vector<std::string>& extra_args) {
  const auto texts = option_texts(kwargs);
  std::vector<std::string> switches;
  for (const auto& [name, text] : texts) {
    const po::option_description* d = opts.find_nothrow(name, false);
    if (!d) {
      std::string known;
      for (const auto& o : opts.options())
        known += (known.empty() ? "" : ", ") + o->long_name();
      for (char& c : known)
        if (c == '-')
          c = '_';
      throw py::type_error(std::string(function) + "() got an unexpected keyword argument '" +
                           py::str(py::cast(name)).cast<std::string>() + "' (options: " + known + ")");
    }
    if (d->semantic()->max_tokens() == 0)
      switches.push_back(name);
  }
  auto args = option_argv(texts, switches);
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<const char*> argv;
  for (const auto& a : args)
    argv.push_back(a.c_str());
  po::variables_map vm;
  po::store(po::command_line_parser(int(argv.size()), argv.data()).options(opts).run(), vm);
  po::notify(vm);
  return vm;
}

namespace {

py::array_t<double> matrix(const Mat3& m) {
  py::array_t<double> a({3, 3});
  auto r = a.mutable_unchecked<2>();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      r(i, j) = m(i, j);
  return a;
}

Mat3 to_mat3(const py::array_t<double, py::array::c_style | py::array::forcecast>& a, const char* what) {
  if (a.ndim() != 2 || a.shape(0) != 3 || a.shape(1) != 3)
    throw py::value_error(std::string(what) + " must be a 3×3 array (rows or columns per docstring)");
  Mat3 m;
  auto r = a.unchecked<2>();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      m(i, j) = r(i, j);
  return m;
}


py::dict reflections_dict(const Crystal& crystal, double dmin_A, const py::object& zone, int laue_zone,
                          double energy_eV, const std::string& table, bool all, bool no_merge) {
  if (!(dmin_A >= 0.1))
    fail("dmin_A ", dmin_A, " Å is too small; use a value >= 0.1 Å (e.g. 1.2)");
  if (!(energy_eV > 0))
    fail("energy_eV must be > 0, got ", energy_eV, " eV");
  ReflectionOptions options;
  options.merge_families = !no_merge;
  options.include_forbidden = all;
  if (!zone.is_none()) {
    options.use_zone = true;
    options.zone_uvw = to_triple(zone, "zone");
    options.laue_zone = laue_zone;
  } else if (laue_zone != 0) {
    throw py::value_error("laue_zone needs zone");
  }
  std::vector<Reflection> list;
  {
    py::gil_scoped_release release;
    list = list_reflections(crystal, dmin_A, parse_scattering_table(table), options);
  }
  const std::size_t n = list.size();
  const double lambda = electron_wavelength_A(energy_eV);
  std::vector<int> h(n), k(n), l(n), mult(n);
  std::vector<double> d(n), F(n), I(n), g(n), P(n), tt(n);
  for (std::size_t i = 0; i < n; ++i) {
    const Reflection& r = list[i];
    h[i] = r.hkl[0], k[i] = r.hkl[1], l[i] = r.hkl[2];
    d[i] = r.d_A, mult[i] = r.multiplicity, F[i] = r.F_abs_A, I[i] = r.intensity;
    g[i] = r.g_invA, P[i] = r.powder_intensity;
    tt[i] = 2 * std::asin(lambda * r.g_invA / 2) / units::mrad_to_rad;  // as reflections_csv
  }
  const std::vector<py::ssize_t> shape = {py::ssize_t(n)};
  py::dict out;
  out["h"] = owned_array(std::move(h), shape);
  out["k"] = owned_array(std::move(k), shape);
  out["l"] = owned_array(std::move(l), shape);
  out["d_A"] = owned_array(std::move(d), shape);
  out["multiplicity"] = owned_array(std::move(mult), shape);
  out["F_abs"] = owned_array(std::move(F), shape);
  out["intensity"] = owned_array(std::move(I), shape);
  py::array_t<double> g_array = owned_array(std::move(g), shape);
  out["g_invA"] = g_array;  // deprecated spelling, kept as the CSV keeps it
  out["powder_intensity"] = owned_array(std::move(P), shape);
  out["two_theta_mrad"] = owned_array(std::move(tt), shape);
  out["g_inv_A"] = g_array;
  return out;
}

py::dict sites_dict(const Crystal& c) {
  const std::size_t n = c.sites.size();
  std::vector<int> Z(n);
  std::vector<double> frac(3 * n), occ(n), u(n);
  py::list labels;
  for (std::size_t i = 0; i < n; ++i) {
    const Site& s = c.sites[i];
    Z[i] = s.Z;
    for (int j = 0; j < 3; ++j)
      frac[3 * i + std::size_t(j)] = s.frac[j];
    occ[i] = s.occupancy;
    u[i] = s.u_iso_A2;
    labels.append(s.label);
  }
  py::dict out;
  out["label"] = labels;
  out["Z"] = owned_array(std::move(Z), {py::ssize_t(n)});
  out["frac"] = owned_array(std::move(frac), {py::ssize_t(n), 3});
  out["occupancy"] = owned_array(std::move(occ), {py::ssize_t(n)});
  out["u_iso_A2"] = owned_array(std::move(u), {py::ssize_t(n)});
  return out;
}

template <class T>
py::array_t<T> column(const AtomicModel& m, T (*get)(const Atom&)) {
  std::vector<T> v(m.atoms.size());
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = get(m.atoms[i]);
  return owned_array(std::move(v), {py::ssize_t(v.size())});
}

AtomicModel make_model(const py::array_t<double, py::array::c_style | py::array::forcecast>& cell_A,
                       const py::array_t<int, py::array::c_style | py::array::forcecast>& numbers,
                       const py::array_t<double, py::array::c_style | py::array::forcecast>& positions_A,
                       const py::object& occupancy, const py::object& u_iso_A2, const py::object& phase,
                       const std::vector<std::string>& phase_names, const std::array<bool, 3>& pbc) {
  AtomicModel m;
  m.cell_A = to_mat3(cell_A, "cell_A").transpose();  // rows a, b, c (ASE) → columns
  m.pbc = pbc;
  m.phase_names = phase_names;
  const py::ssize_t n = numbers.size();
  if (positions_A.ndim() != 2 || positions_A.shape(0) != n || positions_A.shape(1) != 3)
    throw py::value_error("positions_A must have shape (len(numbers), 3)");
  const auto optional = [&](const py::object& o, const char* what, double fallback) {
    std::vector<double> v(std::size_t(n), fallback);
    if (!o.is_none()) {
      v = o.cast<std::vector<double>>();
      if (py::ssize_t(v.size()) != n)
        throw py::value_error(std::string(what) + " must have one value per atom");
    }
    return v;
  };
  const auto occ = optional(occupancy, "occupancy", 1.0), u = optional(u_iso_A2, "u_iso_A2", 0.0),
             ph = optional(phase, "phase", 0.0);
  auto z = numbers.unchecked<1>();
  auto p = positions_A.unchecked<2>();
  m.atoms.resize(std::size_t(n));
  for (py::ssize_t i = 0; i < n; ++i) {
    Atom& a = m.atoms[std::size_t(i)];
    a.Z = z(i);
    a.pos_A = Vec3(p(i, 0), p(i, 1), p(i, 2));
    a.occupancy = occ[std::size_t(i)];
    a.u_iso_A2 = u[std::size_t(i)];
    a.phase = int(ph[std::size_t(i)]);
    if (a.phase < 0 || a.phase >= int(m.phase_names.size()))
      throw py::value_error("phase index " + std::to_string(a.phase) + " has no entry in phase_names");
  }
  return m;
}

py::tuple read_image(const std::string& path, const std::string& part) {
  ComplexPart cp = ComplexPart::Modulus;
  if (part == "real")
    cp = ComplexPart::Real;
  else if (part == "imag" || part == "imaginary")
    cp = ComplexPart::Imaginary;
  else if (part != "modulus")
    throw py::value_error("part must be modulus, real or imag, got '" + part + "'");
  std::unique_ptr<ImageFileReader> reader;
  std::vector<float> pixels;
  int nx = 0, ny = 0;
  std::size_t frames = 0;
  {
    py::gil_scoped_release release;
    reader = open_image_file(path);
    frames = reader->frame_count();
    for (std::size_t i = 0; i < frames; ++i) {
      Image im = reader->frame(i, cp);
      if (i == 0) {
        nx = im.nx, ny = im.ny;
        pixels.reserve(frames * im.size());
      }
      pixels.insert(pixels.end(), im.pixels.begin(), im.pixels.end());
    }
  }
  const ImageFileInfo& info = reader->info();
  py::dict cal;
  cal["path"] = info.path;
  cal["format"] = info.format;
  cal["dtype"] = info.dtype;
  cal["frames"] = frames;
  cal["pixel_size_A"] = info.pixel_size_A;
  cal["pixel_size_y_A"] = info.pixel_size_y_A > 0 ? info.pixel_size_y_A : info.pixel_size_A;
  cal["pixel_size_invA"] = info.pixel_size_invA;
  cal["pixel_size_y_invA"] = info.pixel_size_y_invA > 0 ? info.pixel_size_y_invA : info.pixel_size_invA;
  cal["energy_eV"] = info.energy_eV;
  cal["camera_length_m"] = info.camera_length_m;
  cal["exposure_s"] = info.exposure_s;
  cal["frame_time_s"] = info.frame_time_s;
  py::list axes;
  for (const AxisCalibration& a : info.axes)
    axes.append(py::dict(py::arg("scale") = a.scale, py::arg("origin_px") = a.origin_px, py::arg("unit") = a.unit));
  cal["axes"] = axes;
  cal["notes"] = info.notes;
  cal["warnings"] = info.warnings;
  if (frames == 1)
    return py::make_tuple(owned_array(std::move(pixels), {ny, nx}), cal);
  return py::make_tuple(owned_array(std::move(pixels), {py::ssize_t(frames), ny, nx}), cal);
}

}  // namespace

Vec3 to_triple(const py::object& o, const char* what) {
  if (py::isinstance<py::str>(o)) {
    const auto v = parse_int_triple(o.cast<std::string>(), what);
    return Vec3(v[0], v[1], v[2]);
  }
  const auto v = o.cast<std::vector<double>>();
  if (v.size() != 3)
    throw py::value_error(std::string(what) + " must be three indices, e.g. (1, 1, 0)");
  return Vec3(v[0], v[1], v[2]);
}

void bind_structures(py::module_& m) {
  py::class_<Crystal>(m, "Crystal",
                      "A crystal: lattice, space group and every atom of the unit cell (P1-expanded).")
      .def_static("from_cif", &read_cif, py::arg("path"), "Reads a CIF file (gemmi).")
      .def_static(
          "builtin",
          [](const std::string& name) {
            if (name.find('/') != std::string::npos || name.find('.') != std::string::npos)
              throw py::value_error("builtin takes a bundled name such as 'Fe3O4', got '" + name +
                                    "'; use Crystal.from_cif(path) for files");
            return read_crystal(name);
          },
          py::arg("name"), "A bundled crystal by name: Fe3O4, NiFe, NiFe2O4, Ni, Fe, Au, Si ...")
      .def_static("read", &read_crystal, py::arg("path_or_name"),
                  "A CIF or extxyz file (as P1), or a bundled name, as the CLI's STRUCTURE argument.")
      .def_readonly("name", &Crystal::name)
      .def_readonly("source", &Crystal::source)
      .def_readonly("spacegroup", &Crystal::spacegroup_hm)
      .def_readonly("spacegroup_number", &Crystal::spacegroup_number)
      .def_property_readonly("cell_parameters",
                             [](const Crystal& c) {
                               const Lattice& l = c.lattice;
                               return py::dict(py::arg("a_A") = l.a_A(), py::arg("b_A") = l.b_A(),
                                               py::arg("c_A") = l.c_A(), py::arg("alpha_deg") = l.alpha_deg(),
                                               py::arg("beta_deg") = l.beta_deg(),
                                               py::arg("gamma_deg") = l.gamma_deg());
                             },
                             "a, b, c [Å] and α, β, γ [deg]")
      .def_property_readonly("cell_A", [](const Crystal& c) { return matrix(c.lattice.direct_A().transpose()); },
                             "3×3 [Å], rows a, b, c in Cartesian coordinates (ASE convention)")
      .def_property_readonly("sites", &sites_dict,
                             "dict of arrays: label, Z, frac (n, 3), occupancy, u_iso_A2 [Å²]")
      .def_property_readonly("formula", &Crystal::cell_formula)
      .def_property_readonly("density_g_cm3", &Crystal::density_g_cm3)
      .def("reflections", &reflections_dict, py::arg("dmin_A") = 1.2, py::arg("zone") = py::none(),
           py::arg("laue_zone") = 0, py::arg("energy_eV") = 200e3, py::arg("table") = "kirkland",
           py::arg("all") = false, py::arg("no_merge") = false,
           "Kinematic reflection table, as `epitem reflections` (same columns): dict of arrays\n"
           "h, k, l, d_A [Å], multiplicity, F_abs [Å], intensity (strongest = 100), g_invA [1/Å],\n"
           "powder_intensity, two_theta_mrad [mrad at energy_eV], g_inv_A (= g_invA). zone: (u, v, w) or '1,1,0' keeps\n"
           "the Laue zone g·uvw = laue_zone; all: also forbidden families; no_merge: every hkl.")
      .def("orient",
           [](const Crystal& c, const py::object& zone, const py::object& x, std::array<int, 3> repeat) {
             const Vec3 xdir = x.is_none() ? Vec3::Zero() : to_triple(x, "x");
             return orient_crystal(c, to_triple(zone, "zone"), xdir, repeat);
           },
           py::arg("zone"), py::arg("x") = py::none(), py::arg("repeat") = std::array<int, 3>{1, 1, 1},
           "A Model with zone axis [uvw] along the beam (+z) and x (default: shortest lattice\n"
           "direction ⊥ zone) along +x, tiled repeat = (nx, ny, nz) times: as `epitem multislice\n"
           "CRYSTAL --zone u,v,w --x ... --repeat ...`.")
      .def("write_cif", [](const Crystal& c, const std::string& path) { write_cif(c, path); }, py::arg("path"))
      .def("__repr__", [](const Crystal& c) {
        std::ostringstream os;
        os << "<epitem.Crystal " << c.name << " " << c.spacegroup_hm << ", " << c.sites.size() << " sites>";
        return os.str();
      });

  py::class_<AtomicModel>(m, "Model",
                          "Atoms in a box [Å], beam along +z, periodic in x and y (for multislice).")
      .def(py::init(&make_model), py::arg("cell_A"), py::arg("numbers"), py::arg("positions_A"),
           py::arg("occupancy") = py::none(), py::arg("u_iso_A2") = py::none(), py::arg("phase") = py::none(),
           py::arg("phase_names") = std::vector<std::string>{"crystal"},
           py::arg("pbc") = std::array<bool, 3>{true, true, false},
           "cell_A: 3×3 [Å], rows a, b, c (ASE convention); numbers: atomic numbers; positions_A:\n"
           "(n, 3) Cartesian [Å]; occupancy, u_iso_A2 [Å²] and phase (index into phase_names)\n"
           "per atom, optional.")
      .def_static("read", &read_model, py::arg("path"), "Extended XYZ file (ASE convention).")
      .def("write", [](const AtomicModel& mo, const std::string& path) { write_model(mo, path); }, py::arg("path"),
           "extxyz (.xyz/.extxyz) or POSCAR (.vasp/POSCAR), chosen by the name.")
      .def_property_readonly("cell_A", [](const AtomicModel& mo) { return matrix(mo.cell_A.transpose()); },
                             "3×3 [Å], rows a, b, c")
      .def_property_readonly("box_A", [](const AtomicModel& mo) {
        const Vec3 b = mo.box_lengths_A();
        return py::make_tuple(b[0], b[1], b[2]);
      })
      .def_property_readonly("numbers", [](const AtomicModel& mo) { return column<int>(mo, [](const Atom& a) { return a.Z; }); })
      .def_property_readonly("positions_A", [](const AtomicModel& mo) {
        std::vector<double> v(3 * mo.atoms.size());
        for (std::size_t i = 0; i < mo.atoms.size(); ++i)
          for (int j = 0; j < 3; ++j)
            v[3 * i + std::size_t(j)] = mo.atoms[i].pos_A[j];
        return owned_array(std::move(v), {py::ssize_t(mo.atoms.size()), 3});
      })
      .def_property_readonly("occupancy", [](const AtomicModel& mo) { return column<double>(mo, [](const Atom& a) { return a.occupancy; }); })
      .def_property_readonly("u_iso_A2", [](const AtomicModel& mo) { return column<double>(mo, [](const Atom& a) { return a.u_iso_A2; }); })
      .def_property_readonly("phase", [](const AtomicModel& mo) { return column<int>(mo, [](const Atom& a) { return a.phase; }); })
      .def_readonly("phase_names", &AtomicModel::phase_names)
      .def_readonly("pbc", &AtomicModel::pbc)
      .def("__len__", [](const AtomicModel& mo) { return mo.atoms.size(); })
      .def("__repr__", [](const AtomicModel& mo) {
        const Vec3 b = mo.box_lengths_A();
        std::ostringstream os;
        os << "<epitem.Model " << mo.atoms.size() << " atoms, box " << b[0] << " x " << b[1] << " x " << b[2] << " Å>";
        return os.str();
      });

  m.def("read_image", &read_image, py::arg("path"), py::arg("part") = "modulus",
        "Reads any image file the CLI reads (TIFF, DM3/DM4, SER/EMI, Velox/Berkeley EMD, MRC,\n"
        "PNG/JPEG) → (array float32 (ny, nx), or (frames, ny, nx) for a stack; calibration dict).\n"
        "Row 0 is the top of the displayed image. Calibration: pixel_size_A, pixel_size_y_A [Å]\n"
        "(0 = not a length), pixel_size_invA [1/Å] (diffraction), energy_eV, camera_length_m,\n"
        "exposure_s, frame_time_s, axes (as stored), notes, warnings. part: modulus | real | imag\n"
        "for complex data.");
}

}  // namespace epitem::python

PYBIND11_MODULE(_epitem, m) {
  m.doc() = "epitem: HRTEM/SAED simulation and analysis of epitaxial interfaces (C++ library).";
  static py::exception<epitem::Error> error(m, "Error", PyExc_ValueError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p)
        std::rethrow_exception(p);
    } catch (const epitem::Error& e) {
      PyErr_SetString(error.ptr(), e.what());
    } catch (const boost::program_options::error& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  epitem::python::bind_structures(m);
  epitem::python::bind_simulation(m);
  epitem::python::bind_analysis(m);
  epitem::python::bind_track(m);
}
