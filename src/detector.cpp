#include "epitem/detector.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "epitem/error.hpp"
#include "epitem/fft.hpp"
#include "epitem/units.hpp"

namespace epitem {

double Mtf::at(double q) const {
  switch (kind) {
    case Kind::None: return 1.0;
    case Kind::Gaussian: return std::exp(-0.5 * (q / q0) * (q / q0));
    case Kind::Lorentzian: return (1 - floor) / (1 + (q / q0) * (q / q0)) + floor;
    case Kind::Table: break;
  }
  if (q <= table_q.front())
    return table_mtf.front();
  if (q >= table_q.back())
    return table_mtf.back();
  auto it = std::upper_bound(table_q.begin(), table_q.end(), q);
  const std::size_t j = std::size_t(it - table_q.begin());
  const double t = (q - table_q[j - 1]) / (table_q[j] - table_q[j - 1]);
  return table_mtf[j - 1] + t * (table_mtf[j] - table_mtf[j - 1]);
}

std::string Mtf::describe() const {
  std::ostringstream os;
  os.precision(6);
  switch (kind) {
    case Kind::None: return "none (MTF = 1)";
    case Kind::Gaussian: os << "gaussian exp(-q^2/(2*" << q0 << "^2)), q = k/k_Nyquist"; break;
    case Kind::Lorentzian:
      os << "modified Lorentzian (1-" << floor << ")/(1+(q/" << q0 << ")^2)+" << floor
         << ", q = k/k_Nyquist";
      break;
    case Kind::Table: os << "measured, " << table_q.size() << " points from " << source; break;
  }
  return os.str();
}

static double parse_number(const std::string& text, const std::string& what) {
  try {
    std::size_t used = 0;
    double v = std::stod(text, &used);
    if (used != text.size())
      throw std::invalid_argument(text);
    return v;
  } catch (const std::exception&) {
    fail(what, ": '", text, "' is not a number");
  }
}

Mtf parse_mtf(const std::string& spec, const std::string& what) {
  Mtf m;
  if (spec == "none" || spec.empty())
    return m;
  const auto colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  const std::string args = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (kind == "file")
    return read_mtf_file(args);
  if (kind != "gaussian" && kind != "lorentzian")
    fail(what, ": unknown MTF '", spec,
         "' (use none, gaussian:Q0, lorentzian:Q0[,C] or file:PATH; Q0 in units of Nyquist)");
  const auto comma = args.find(',');
  m.q0 = parse_number(args.substr(0, comma), what);
  if (comma != std::string::npos)
    m.floor = parse_number(args.substr(comma + 1), what);
  m.kind = kind == "gaussian" ? Mtf::Kind::Gaussian : Mtf::Kind::Lorentzian;
  if (!(m.q0 > 0))
    fail(what, ": MTF width Q0 must be > 0 (fraction of Nyquist), got ", m.q0);
  if (!(m.floor >= 0 && m.floor < 1))
    fail(what, ": MTF plateau C must be in [0, 1), got ", m.floor);
  if (m.kind == Mtf::Kind::Gaussian && comma != std::string::npos)
    fail(what, ": gaussian MTF takes one parameter Q0, got '", args, "'");
  return m;
}

Mtf read_mtf_file(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    fail("MTF file not found or unreadable: ", path);
  Mtf m;
  m.kind = Mtf::Kind::Table;
  m.source = path;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#')
      continue;
    std::replace(line.begin(), line.end(), ',', ' ');
    std::istringstream is(line);
    double q, v;
    if (!(is >> q >> v)) {
      if (m.table_q.empty())
        continue;  // a header line
      fail(path, ":", line_no, ": expected two numbers 'q_nyquist_fraction,mtf', got '", line, "'");
    }
    if (!m.table_q.empty() && q <= m.table_q.back())
      fail(path, ":", line_no, ": q must increase strictly, got ", q, " after ", m.table_q.back());
    if (!(v >= 0 && v <= 1.5))
      fail(path, ":", line_no, ": MTF value ", v, " outside [0, 1.5]");
    m.table_q.push_back(q);
    m.table_mtf.push_back(v);
  }
  if (m.table_q.size() < 2)
    fail(path, ": a measured MTF needs at least 2 rows 'q_nyquist_fraction,mtf'");
  return m;
}

void DetectorSpec::validate(bool dose_given) const {
  if (dose_given && !(dose_e_per_A2 > 0))
    fail("detector: dose must be > 0 e/A^2, got ", dose_e_per_A2,
         " (omit --dose for a noise-free image)");
  if (!(dose_e_per_A2 >= 0))
    fail("detector: dose must be >= 0 e/A^2, got ", dose_e_per_A2);
  if (!(output_pixel_A >= 0))
    fail("detector: output pixel size must be > 0 A (0 = simulation pixel), got ", output_pixel_A);
  if (!(drift_A >= 0))
    fail("detector: drift length must be >= 0 A, got ", drift_A);
}

double PoissonSampler::uniform() {
  return double(engine_() >> 11) * 0x1.0p-53;
}

std::uint64_t PoissonSampler::operator()(double mean) {
  if (!(mean > 0))
    return 0;
  if (mean < 10) {
    // Inversion by sequential search (Devroye 1986, X.3.3).
    double p = std::exp(-mean), cdf = p, u = uniform();
    std::uint64_t k = 0;
    while (u > cdf && k < 1000) {
      ++k;
      p *= mean / double(k);
      cdf += p;
    }
    return k;
  }
  // PTRS, transformed rejection with squeeze (Hörmann 1993, Insurance Math. Econom. 12, 39).
  const double slam = std::sqrt(mean), loglam = std::log(mean);
  const double b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
  const double invalpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2);
  for (;;) {
    const double U = uniform() - 0.5, V = uniform();
    const double us = 0.5 - std::fabs(U);
    const double k = std::floor((2 * a / us + b) * U + mean + 0.43);
    if (us >= 0.07 && V <= vr)
      return std::uint64_t(k);
    if (k < 0 || (us < 0.013 && V > us))
      continue;
    if (std::log(V) + std::log(invalpha) - std::log(a / (us * us) + b) <=
        -mean + k * loglam - std::lgamma(k + 1))
      return std::uint64_t(k);
  }
}

static double sinc(double x) { return std::fabs(x) < 1e-12 ? 1.0 : std::sin(PI * x) / (PI * x); }

Image apply_detector(const Image& in, const DetectorSpec& spec, int page) {
  spec.validate();
  if (!(in.pixel_size_A > 0))
    fail("detector: the image has no pixel size");
  const int nx = in.nx, ny = in.ny;
  const double ex = nx * in.pixel_size_A, ey = ny * in.pixel_y_A();
  int mx = nx, my = ny;
  if (spec.output_pixel_A > 0) {
    mx = std::max(1, int(std::lround(ex / spec.output_pixel_A)));
    my = std::max(1, int(std::lround(ey / spec.output_pixel_A)));
  }
  Image out(mx, my);
  out.pixel_size_A = ex / mx;
  out.pixel_size_y_A = ey / my;
  const bool filter = spec.drift_A > 0 || spec.mtf.kind != Mtf::Kind::None || mx != nx || my != ny;
  if (!filter) {
    out.pixels = in.pixels;
  } else {
    // One Fourier pass: blur and MTF are products on the spectrum, resampling crops or pads it.
    const Fft2D fin(nx, ny, 0, FftRigor::Estimate);
    AlignedVector<cfloat> a(in.size());
    for (std::size_t i = 0; i < in.size(); ++i)
      a[i] = in.pixels[i];
    fin.forward(a.data());
    const Fft2D fout(mx, my, 0, FftRigor::Estimate);
    AlignedVector<cfloat> b(std::size_t(mx) * std::size_t(my), cfloat(0));
    const double dx = std::cos(spec.drift_angle_deg * units::deg_to_rad) * spec.drift_A;
    const double dy = std::sin(spec.drift_angle_deg * units::deg_to_rad) * spec.drift_A;
    const double kx_nyq = 0.5 / out.pixel_size_A, ky_nyq = 0.5 / out.pixel_size_y_A;
    auto freq = [](int i, int n) { return i < (n + 1) / 2 ? i : i - n; };
    for (int jy = 0; jy < my; ++jy) {
      const int fy = freq(jy, my);
      if (fy < -(ny / 2) || fy > (ny - 1) / 2)  // not in the input spectrum: zero padding
        continue;
      const int iy = fy < 0 ? fy + ny : fy;
      for (int jx = 0; jx < mx; ++jx) {
        const int fx = freq(jx, mx);
        if (fx < -(nx / 2) || fx > (nx - 1) / 2)
          continue;
        const int ix = fx < 0 ? fx + nx : fx;
        const double kx = fx / ex, ky = fy / ey;
        double f = sinc(kx * dx + ky * dy);  // box blur of a uniform drift
        f *= spec.mtf.at(std::hypot(kx / kx_nyq, ky / ky_nyq));
        b[std::size_t(jy) * std::size_t(mx) + std::size_t(jx)] =
            a[std::size_t(iy) * std::size_t(nx) + std::size_t(ix)] * float(f);
      }
    }
    fout.inverse(b.data(), false);
    const float norm = 1.0f / float(in.size());
    for (std::size_t i = 0; i < out.size(); ++i)
      out.pixels[i] = b[i].real() * norm;
  }
  if (spec.has_noise()) {
    const double per_pixel = spec.dose_e_per_A2 * out.pixel_size_A * out.pixel_size_y_A;
    // splitmix64 of (seed, page): distinct, reproducible streams for the pages of a series.
    std::uint64_t z = spec.seed + 0x9E3779B97F4A7C15ull * std::uint64_t(page + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    PoissonSampler poisson(z ^ (z >> 31));
    for (auto& v : out.pixels)
      v = float(poisson(std::max(0.0, double(v)) * per_pixel));
  }
  return out;
}

}  // namespace epitem
