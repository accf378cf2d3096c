// Analysis bindings: lattice peaks of a micrograph's power spectrum (as `epitem fft`) and
// zone-axis indexing of spot vectors (as `epitem index`).
#include <cmath>

#include "bindings.hpp"
#include "epitem/error.hpp"
#include "epitem/indexing.hpp"
#include "epitem/spectrum.hpp"
#include "epitem/structure_io.hpp"

namespace epitem::python {

namespace {

using FloatImage = py::array_t<float, py::array::c_style | py::array::forcecast>;

py::dict fft_peaks(const FloatImage& array, double pixel_size_A, double dmin_A, double dmax_A, double min_snr,
                   int max_peaks, const py::object& roi, int threads) {
  if (array.ndim() != 2)
    throw py::value_error("array must be 2-D (ny, nx), row 0 = top of the image");
  if (!(pixel_size_A > 0))
    throw py::value_error("pixel_size_A must be > 0 Å, got " + std::to_string(pixel_size_A));
  if (max_peaks < 1)
    throw py::value_error("max_peaks must be ≥ 1");
  if (min_snr < 0)
    throw py::value_error("min_snr must be ≥ 0");
  if (dmin_A < 0 || dmax_A < 0)
    throw py::value_error("dmin_A and dmax_A must be ≥ 0 Å (0 = no limit)");
  Image image(int(array.shape(1)), int(array.shape(0)));
  std::copy(array.data(), array.data() + image.size(), image.pixels.begin());
  image.pixel_size_A = pixel_size_A;
  if (!roi.is_none()) {
    const auto r = roi.cast<std::vector<int>>();
    if (r.size() != 4)
      throw py::value_error("roi must be (x, y, w, h) in pixels (x = column, y = row from the top)");
    image = crop(image, Roi{r[0], r[1], r[2], r[3]});
  }
  PeakSpec spec;
  spec.min_snr = min_snr;
  spec.max_peaks = max_peaks;
  spec.d_min_A = dmin_A;
  spec.d_max_A = dmax_A;
  std::vector<Peak> peaks;
  {
    py::gil_scoped_release release;
    peaks = find_peaks(power_spectrum(image, threads), spec);
  }
  const std::size_t n = peaks.size();
  std::vector<double> kx(n), ky(n), g(n), d(n), angle(n), I(n), snr(n), sd(n), sa(n);
  for (std::size_t i = 0; i < n; ++i) {
    const Peak& p = peaks[i];
    kx[i] = p.kx_invA, ky[i] = p.ky_invA, g[i] = p.g_invA, d[i] = p.d_A, angle[i] = p.angle_deg;
    I[i] = p.intensity, snr[i] = p.snr, sd[i] = p.sigma_d_A, sa[i] = p.sigma_angle_deg;
  }
  const std::vector<py::ssize_t> shape = {py::ssize_t(n)};
  py::dict out;
  out["kx"] = owned_array(std::move(kx), shape);
  out["ky"] = owned_array(std::move(ky), shape);
  out["g_inv_A"] = owned_array(std::move(g), shape);
  out["d_A"] = owned_array(std::move(d), shape);
  out["angle_deg"] = owned_array(std::move(angle), shape);
  out["intensity"] = owned_array(std::move(I), shape);
  out["snr"] = owned_array(std::move(snr), shape);
  out["sigma_d_A"] = owned_array(std::move(sd), shape);
  out["sigma_angle_deg"] = owned_array(std::move(sa), shape);
  return out;
}

// Spots from a CSV path, a dict with kx, ky (or gx, gy) [and intensity], or an (n, 2) array.
std::vector<Spot> spots_of(const py::object& o) {
  std::vector<Spot> spots;
  if (py::isinstance<py::str>(o) || py::hasattr(o, "__fspath__"))
    return read_spots_csv(py::str(o).cast<std::string>());
  std::vector<double> x, y, w;
  if (py::isinstance<py::dict>(o)) {
    const auto d = o.cast<py::dict>();
    const char* xs = d.contains("kx") ? "kx" : "gx";
    const char* ys = d.contains("ky") ? "ky" : "gy";
    if (!d.contains(xs) || !d.contains(ys))
      throw py::value_error("spots: a dict needs kx, ky (fft_peaks) or gx, gy (saed) in 1/Å");
    x = d[xs].cast<std::vector<double>>();
    y = d[ys].cast<std::vector<double>>();
    if (d.contains("intensity"))
      w = d["intensity"].cast<std::vector<double>>();
  } else {
    const auto a = o.cast<py::array_t<double, py::array::c_style | py::array::forcecast>>();
    if (a.ndim() != 2 || a.shape(1) < 2)
      throw py::value_error("spots: an array must be (n, 2) kx, ky [1/Å] or (n, 3) with intensity");
    for (py::ssize_t i = 0; i < a.shape(0); ++i) {
      x.push_back(a.at(i, 0));
      y.push_back(a.at(i, 1));
      if (a.shape(1) > 2)
        w.push_back(a.at(i, 2));
    }
  }
  if (x.size() != y.size() || (!w.empty() && w.size() != x.size()))
    throw py::value_error("spots: kx, ky and intensity must have the same length");
  for (std::size_t i = 0; i < x.size(); ++i)
    if (std::hypot(x[i], y[i]) > 0)  // the direct beam is not a lattice spot
      spots.push_back({x[i], y[i], w.empty() ? 1.0 : w[i]});
  return spots;
}

py::list index(const py::object& spots_in, const std::vector<std::string>& phase_names, double dmin_A,
               double tolerance, double angle_tolerance_deg, int max_index, double scale_range,
               bool double_diffraction) {
  if (phase_names.empty())
    throw py::value_error("phases: give at least one built-in name or CIF path");
  if (!(dmin_A >= 0.3))
    throw py::value_error("dmin_A must be ≥ 0.3 Å (e.g. 0.9)");
  if (!(tolerance > 0 && tolerance < 0.3))
    throw py::value_error("tolerance must be a fraction in (0, 0.3), e.g. 0.02");
  if (!(angle_tolerance_deg > 0 && angle_tolerance_deg < 20))
    throw py::value_error("angle_tolerance_deg must be between 0 and 20 deg");
  if (max_index < 1 || max_index > 12)
    throw py::value_error("max_index must be 1..12");
  if (!(scale_range >= 0 && scale_range <= 0.3))
    throw py::value_error("scale_range must be a fraction in [0, 0.3] (0 = trust the calibration)");
  ZoneSpec spec;
  spec.tolerance_rel = tolerance;
  spec.angle_tolerance_deg = angle_tolerance_deg;
  spec.max_index = max_index;
  spec.scale_range = scale_range;
  if (scale_range == 0)
    spec.max_distortion = 0;
  const std::vector<Spot> spots = spots_of(spots_in);
  ZoneIndexing result;
  {
    py::gil_scoped_release release;
    PhaseSpec ps;
    ps.d_min_A = dmin_A;
    ps.double_diffraction = double_diffraction;
    std::vector<Phase> phases;
    for (const auto& n : phase_names)
      phases.push_back(make_phase(read_crystal(n), ps));
    result = index_zone(spots, phases, spec);
  }
  py::list out;
  for (const ZoneSolution& s : result.best) {
    py::list assigned;
    for (const IndexedSpot& is : s.spots)
      assigned.append(py::dict(py::arg("spot") = is.spot,
                               py::arg("hkl") = py::make_tuple(is.hkl[0], is.hkl[1], is.hkl[2]),
                               py::arg("error_rel") = is.error_rel));
    out.append(py::dict(py::arg("phase") = s.phase_name,
                        py::arg("zone_uvw") = py::make_tuple(s.zone_uvw[0], s.zone_uvw[1], s.zone_uvw[2]),
                        py::arg("scale") = s.scale, py::arg("distortion") = s.distortion,
                        py::arg("residual_rel") = s.residual_rel, py::arg("completeness") = s.completeness,
                        py::arg("score") = s.score, py::arg("caveat") = s.caveat, py::arg("spots") = assigned));
  }
  return out;
}

}  // namespace

void bind_analysis(py::module_& m) {
  m.def("fft_peaks", &fft_peaks, py::arg("array"), py::arg("pixel_size_A"), py::kw_only(), py::arg("dmin_A") = 0.0,
        py::arg("dmax_A") = 0.0, py::arg("min_snr") = 0.0, py::arg("max_peaks") = 30, py::arg("roi") = py::none(),
        py::arg("threads") = 0,
        "Lattice peaks of a micrograph's Hann-windowed power spectrum, as `epitem fft`.\n\n"
        "array: 2-D image, row 0 = top; pixel_size_A [Å]; dmin_A/dmax_A [Å] (0 = default);\n"
        "min_snr (0 = automatic); max_peaks; roi (x, y, w, h) px. Returns a dict of arrays with\n"
        "the CSV's columns: kx, ky, g_inv_A [1/Å, y up], d_A [Å], angle_deg [CCW from +x],\n"
        "intensity, snr, sigma_d_A [Å], sigma_angle_deg, strongest first.");
  m.def("index", &index, py::arg("spots"), py::arg("phases"), py::kw_only(), py::arg("dmin_A") = 0.9,
        py::arg("tolerance") = 0.02, py::arg("angle_tolerance_deg") = 2.0, py::arg("max_index") = 5,
        py::arg("scale_range") = 0.05, py::arg("double_diffraction") = false,
        "Zone-axis indexing of spots, as `epitem index SPOTS --phase ...`.\n\n"
        "spots: fft_peaks()/saed() dict (kx, ky or gx, gy [1/Å], intensity), an (n, 2|3) array\n"
        "or a spot CSV path; phases: built-in names or CIF paths. tolerance: relative |g| error;\n"
        "scale_range: calibration search ± (fraction; 0 = trust it). Returns the best solution\n"
        "per phase found: dicts with phase, zone_uvw (toward the viewer), scale, distortion,\n"
        "residual_rel, completeness, score, caveat ('' = reliable) and spots (index, hkl, error).");
}

}  // namespace epitem::python
