#include "epitem/match.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <chrono>
#include <cstdio>
#include <tuple>
#include <type_traits>
#include <map>

#include "epitem/error.hpp"
#include "epitem/fft.hpp"
#include "epitem/parallel.hpp"
#include "epitem/statistics.hpp"
#include "epitem/units.hpp"

namespace epitem {

namespace {

// Hann-windowed, mean-subtracted power spectrum |F|² of an image (FFT order) and Σw².
std::vector<double> windowed_power(const Image& img, double& window_energy) {
  const int nx = img.nx, ny = img.ny;
  double mean = 0;
  for (float v : img.pixels)
    mean += v;
  mean /= double(img.size());
  AlignedVector<cfloat> a(img.size());
  window_energy = 0;
  for (int y = 0; y < ny; ++y)
    for (int x = 0; x < nx; ++x) {
      const double w = (0.5 - 0.5 * std::cos(2 * PI * (x + 0.5) / nx)) * (0.5 - 0.5 * std::cos(2 * PI * (y + 0.5) / ny));
      window_energy += w * w;
      a[std::size_t(y) * nx + x] = cfloat(float((img.at(x, y) - mean) * w), 0.f);
    }
  Fft2D(nx, ny, 1, FftRigor::Estimate).forward(a);
  std::vector<double> p(a.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    p[i] = std::norm(a[i]);
  return p;
}

int signed_freq(int i, int n) { return i < (n + 1) / 2 ? i : i - n; }

// Noise power per FFT pixel (radial median / ln 2, flat below q = 0.1 cycles/px).
std::vector<double> noise_power(const std::vector<double>& p, int nx, int ny) {
  const int bins = 64;
  std::vector<std::vector<double>> rings(bins);
  auto ring_of = [&](int ix, int iy) {
    const double q = std::hypot(double(signed_freq(ix, nx)) / nx, double(signed_freq(iy, ny)) / ny);
    return std::min(bins - 1, int(std::max(q, 0.1) / (0.5 * std::sqrt(2.0)) * bins));
  };
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix)
      if (ix || iy)
        rings[std::size_t(ring_of(ix, iy))].push_back(p[std::size_t(iy) * nx + ix]);
  std::vector<double> level(bins, 0);
  double last = 0;
  for (int b = 0; b < bins; ++b) {
    if (rings[std::size_t(b)].size() >= 8)
      last = median(rings[std::size_t(b)]) / std::log(2.0);
    level[std::size_t(b)] = last;
  }
  for (int b = bins - 1; b > 0; --b)  // rings below the first filled one take its level
    if (level[std::size_t(b - 1)] == 0)
      level[std::size_t(b - 1)] = level[std::size_t(b)];
  std::vector<double> n(p.size());
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix)
      n[std::size_t(iy) * nx + ix] = level[std::size_t(ring_of(ix, iy))];
  return n;
}

// Bilinear sample of a periodic image at (fx, fy) in pixels.
inline float periodic_bilinear(const Image& s, double fx, double fy) {
  const double gx = std::floor(fx), gy = std::floor(fy);
  const double tx = fx - gx, ty = fy - gy;
  int x0 = int(gx) % s.nx, y0 = int(gy) % s.ny;
  if (x0 < 0)
    x0 += s.nx;
  if (y0 < 0)
    y0 += s.ny;
  const int x1 = x0 + 1 == s.nx ? 0 : x0 + 1, y1 = y0 + 1 == s.ny ? 0 : y0 + 1;
  return float((1 - ty) * ((1 - tx) * s.at(x0, y0) + tx * s.at(x1, y0)) +
               ty * ((1 - tx) * s.at(x0, y1) + tx * s.at(x1, y1)));
}

// Experiment-pixel offsets (u, v from the ROI centre) → simulation pixel coordinates.
struct PixelMap {
  double axx, axy, ayx, ayy, ox, oy;
  PixelMap(const Image& sim, double pixel_x_A, double pixel_y_A, double rotation_deg, double scale) {
    const double th = rotation_deg * units::deg_to_rad, c = std::cos(th), s = std::sin(th);
    const double kx = scale / sim.pixel_size_A, ky = scale / sim.pixel_y_A();
    // p = scale·R(−θ)·diag(pixel)·u with R(−θ) = [[c, −s], [s, c]] in (x right, y down) coordinates.
    axx = kx * c * pixel_x_A;
    axy = -kx * s * pixel_y_A;
    ayx = ky * s * pixel_x_A;
    ayy = ky * c * pixel_y_A;
    ox = 0.5 * sim.nx;
    oy = 0.5 * sim.ny;
  }
  void operator()(double u, double v, double& fx, double& fy) const {
    fx = ox + axx * u + axy * v;
    fy = oy + ayx * u + ayy * v;
  }
};

}  // namespace

NoiseEstimate estimate_noise(const Image& roi) {
  double wsum = 0;
  const std::vector<double> p = windowed_power(roi, wsum);
  const std::vector<double> n = noise_power(p, roi.nx, roi.ny);
  double s = 0, s2 = 0;
  for (double v : n) {
    s += v;
    s2 += v * v;
  }
  NoiseEstimate e;
  e.variance = s / double(n.size()) / wsum;
  e.independent_fraction = s2 > 0 ? std::min(1.0, s * s / (double(n.size()) * s2)) : 1.0;
  double m = 0, m2 = 0;
  for (float v : roi.pixels) {
    m += v;
    m2 += double(v) * v;
  }
  m /= double(roi.size());
  e.signal_variance = std::max(0.0, m2 / double(roi.size()) - m * m - e.variance);
  return e;
}

MatchExperiment prepare_experiment(const Image& experiment, const Roi& roi, const Mtf& mtf,
                                   int max_shift_px, const std::string& what) {
  const Roi r = roi.w == 0 && roi.h == 0 ? Roi{0, 0, experiment.nx, experiment.ny} : roi;
  if (!(experiment.pixel_size_A > 0))
    fail(what, ": no pixel size; give it with --pixel-size (e.g. --pixel-size 0.15A)");
  if (r.w < 16 || r.h < 16 || r.x < 0 || r.y < 0 || r.x + r.w > experiment.nx || r.y + r.h > experiment.ny)
    fail(what, ": --roi ", r.x, ",", r.y, ",", r.w, ",", r.h, " (x,y,w,h in pixels) is not inside the ",
         experiment.nx, "x", experiment.ny, " image or is smaller than 16x16; give x,y >= 0, x+w <= ", experiment.nx,
         ", y+h <= ", experiment.ny);
  MatchExperiment e;
  e.pixel_A = experiment.pixel_size_A;
  e.pixel_y_A = experiment.pixel_y_A();
  e.mtf = mtf;
  e.roi = Image(r.w, r.h);
  e.roi.pixel_size_A = experiment.pixel_size_A;
  for (int y = 0; y < r.h; ++y)
    for (int x = 0; x < r.w; ++x)
      e.roi.at(x, y) = experiment.at(r.x + x, r.y + y);
  require_finite(e.roi, what + " (ROI)");
  e.noise = estimate_noise(e.roi);
  if (!(e.noise.signal_variance > 0) && !(e.noise.variance > 0))
    fail(what, ": the ROI is constant: nothing to match");
  e.margin_px = std::max(1, std::min({max_shift_px, r.w / 2, r.h / 2}));
  e.canvas_nx = next_fft_size(r.w + 2 * e.margin_px);
  e.canvas_ny = next_fft_size(r.h + 2 * e.margin_px);
  double mean = 0;
  for (float v : e.roi.pixels)
    mean += v;
  mean /= double(e.roi.size());
  e.template_spectrum.assign(std::size_t(e.canvas_nx) * e.canvas_ny, cfloat(0));
  double norm2 = 0;
  for (int y = 0; y < r.h; ++y)
    for (int x = 0; x < r.w; ++x) {
      const double z = e.roi.at(x, y) - mean;
      norm2 += z * z;
      e.template_spectrum[std::size_t(y) * e.canvas_nx + x] = cfloat(float(z), 0.f);
    }
  e.template_norm = std::sqrt(norm2);
  Fft2D(e.canvas_nx, e.canvas_ny, 0).forward(e.template_spectrum);
  return e;
}

// ---------------------------------------------------------------------------------------------
CameraModel::CameraModel(const Grid& sim_grid, double experiment_pixel_A, const Mtf& mtf)
    : sim_(sim_grid), pe_(experiment_pixel_A), mtf_(mtf) {
  mx_ = next_fft_size(int(std::ceil(sim_grid.extent_x_A / (0.5 * pe_) - 1e-9)));
  my_ = next_fft_size(int(std::ceil(sim_grid.extent_y_A / (0.5 * pe_) - 1e-9)));
  // A simulation already sampled at ≤ 0.6 experiment pixels is used on its own grid (no padding).
  if (sim_grid.sampling_x_A() <= 0.6 * pe_ && sim_grid.sampling_y_A() <= 0.6 * pe_ && sim_grid.nx < mx_ && sim_grid.ny < my_) {
    mx_ = sim_grid.nx;
    my_ = sim_grid.ny;
  }
  wx_ = sim_grid.extent_x_A / mx_;
  wy_ = sim_grid.extent_y_A / my_;
  // Where each output frequency of the half spectra comes from and its MTF weight, once: a map
  // images every cell through the same camera, and the MTF's exp per pixel cost more than the FFTs.
  const int nx = sim_.nx, ny = sim_.ny, sim_half = nx / 2 + 1, out_half = mx_ / 2 + 1;
  const double k_nyq = 0.5 / pe_;
  for (int jy = 0; jy < my_; ++jy) {
    const int fy = signed_freq(jy, my_);
    if (fy < -(ny / 2) || fy > (ny - 1) / 2)
      continue;
    const int iy = fy < 0 ? fy + ny : fy;
    for (int fx = 0; fx < std::min(out_half, sim_half); ++fx) {
      const double k = std::hypot(fx / sim_.extent_x_A, fy / sim_.extent_y_A);
      taps_.push_back({std::uint32_t(jy * out_half + fx), std::uint32_t(iy * sim_half + fx), k / k_nyq});
    }
  }
}

const std::vector<float>& CameraModel::weights(double pixel_scale) const {
  if (pixel_scale != weights_scale_ || weights_.size() != taps_.size()) {
    // The MTF belongs to the detector's pixels: with a true pixel of pixel_scale × the stated
    // one, a frequency sits at pixel_scale × its stated fraction of Nyquist.
    weights_.resize(taps_.size());
    for (std::size_t i = 0; i < taps_.size(); ++i)
      weights_[i] = float(mtf_.at(taps_[i].q * pixel_scale));
    weights_scale_ = pixel_scale;
  }
  return weights_;
}

Image CameraModel::from_image(const Image& intensity, double pixel_scale) const {
  if (intensity.nx != sim_.nx || intensity.ny != sim_.ny)
    fail("match: simulated image is ", intensity.nx, "x", intensity.ny, ", expected ", sim_.nx, "x", sim_.ny);
  // Real transforms both ways: the intensity and the camera image are real.
  AlignedVector<float> in(intensity.pixels.begin(), intensity.pixels.end());
  const RealForwardFft2D forward(sim_.nx, sim_.ny, 0);
  AlignedVector<cfloat> a(std::size_t(forward.half_nx()) * sim_.ny);
  forward.execute(in.data(), a.data());
  const RealInverseFft2D inverse(mx_, my_, 0);
  AlignedVector<cfloat> b(std::size_t(inverse.half_nx()) * my_, cfloat(0));
  const std::vector<float>& w = weights(pixel_scale);
  for (std::size_t i = 0; i < taps_.size(); ++i)
    b[taps_[i].to] = a[taps_[i].from] * w[i];
  Image out(mx_, my_);
  out.pixel_size_A = wx_;
  out.pixel_size_y_A = wy_;
  AlignedVector<float> real(out.size());
  inverse.execute(b.data(), real.data());
  const float norm = 1.0f / float(sim_.size());
  for (std::size_t i = 0; i < out.size(); ++i)
    out.pixels[i] = real[i] * norm;
  return out;
}

// ---------------------------------------------------------------------------------------------
Image warp_to_roi(const MatchExperiment& exp, const Image& sim, const MatchGeometry& g) {
  const PixelMap map(sim, exp.pixel_A, exp.pixel_y_A, g.rotation_deg, g.scale);
  const int w = exp.roi.nx, h = exp.roi.ny;
  const double cx = 0.5 * (w - 1), cy = 0.5 * (h - 1);
  Image out(w, h);
  out.pixel_size_A = exp.pixel_A;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      double fx, fy;
      map(x - cx + g.shift_x_px, y - cy + g.shift_y_px, fx, fy);
      out.at(x, y) = periodic_bilinear(sim, fx, fy);
    }
  return out;
}

CellScore score_at(const MatchExperiment& exp, const Image& sim, const MatchGeometry& g) {
  const Image s = warp_to_roi(exp, sim, g);
  const Image& e = exp.roi;
  const double n = double(e.size());
  double se = 0, ss = 0, see = 0, sss = 0, ses = 0;
  for (std::size_t i = 0; i < e.size(); ++i) {
    const double u = e.pixels[i], v = s.pixels[i];
    se += u;
    ss += v;
    see += u * u;
    sss += v * v;
    ses += u * v;
  }
  const double vee = see - se * se / n, vss = sss - ss * ss / n, ves = ses - se * ss / n;
  CellScore c;
  c.geometry = g;
  c.ncc = vee > 0 && vss > 0 ? ves / std::sqrt(vee * vss) : 0;
  c.gain = vss > 0 ? ves / vss : 0;
  c.offset = (se - c.gain * ss) / n;
  const double rss = std::max(0.0, vee - c.gain * ves);  // residual sum of squares of the fit
  const double f = exp.noise.independent_fraction;
  c.chi2 = rss / exp.noise.variance * f;
  c.chi2_reduced = c.chi2 / std::max(1.0, n * f - 2);
  return c;
}

CellScore score_simulation(const MatchExperiment& exp, const Image& sim, double rotation_deg, double scale) {
  const PixelMap map(sim, exp.pixel_A, exp.pixel_y_A, rotation_deg, scale);
  const int W = exp.canvas_nx, H = exp.canvas_ny, m = exp.margin_px, w = exp.roi.nx, h = exp.roi.ny;
  const double cx = 0.5 * (w - 1), cy = 0.5 * (h - 1);
  const int used_w = w + 2 * m, used_h = h + 2 * m;
  AlignedVector<cfloat> c(std::size_t(W) * H, cfloat(0));
  // Summed-area tables of the canvas and its square (one extra row and column of zeros).
  std::vector<double> s1(std::size_t(used_w + 1) * (used_h + 1), 0), s2(s1.size(), 0);
  for (int y = 0; y < used_h; ++y) {
    double r1 = 0, r2 = 0;
    for (int x = 0; x < used_w; ++x) {
      double fx, fy;
      map(x - m - cx, y - m - cy, fx, fy);
      const double v = periodic_bilinear(sim, fx, fy);
      c[std::size_t(y) * W + x] = cfloat(float(v), 0.f);
      r1 += v;
      r2 += v * v;
      const std::size_t k = std::size_t(y + 1) * (used_w + 1) + (x + 1);
      s1[k] = s1[k - std::size_t(used_w + 1)] + r1;
      s2[k] = s2[k - std::size_t(used_w + 1)] + r2;
    }
  }
  const Fft2D fft(W, H, 0);
  fft.forward(c);
  for (std::size_t i = 0; i < c.size(); ++i)
    c[i] *= std::conj(exp.template_spectrum[i]);
  fft.inverse(c);
  const double n = double(w) * h;
  auto box = [&](const std::vector<double>& s, int x, int y) {
    const std::size_t stride = std::size_t(used_w + 1);
    return s[std::size_t(y + h) * stride + (x + w)] - s[std::size_t(y) * stride + (x + w)] -
           s[std::size_t(y + h) * stride + x] + s[std::size_t(y) * stride + x];
  };
  std::vector<double> ncc(std::size_t(2 * m + 1) * (2 * m + 1), -1);
  int best_x = m, best_y = m;
  double best = -2;
  for (int ty = 0; ty <= 2 * m; ++ty)
    for (int tx = 0; tx <= 2 * m; ++tx) {
      const double a = box(s1, tx, ty), b = box(s2, tx, ty);
      const double var = b - a * a / n;
      const double v = var > 0 ? c[std::size_t(ty) * W + tx].real() / (exp.template_norm * std::sqrt(var)) : -1;
      ncc[std::size_t(ty) * (2 * m + 1) + tx] = v;
      if (v > best) {
        best = v;
        best_x = tx;
        best_y = ty;
      }
    }
  // Sub-pixel: quadratic through the 3×3 neighbourhood (kept inside the searched square).
  std::vector<double> xs, ys, vs;
  for (int dy = -1; dy <= 1; ++dy)
    for (int dx = -1; dx <= 1; ++dx) {
      const int tx = std::clamp(best_x + dx, 0, 2 * m), ty = std::clamp(best_y + dy, 0, 2 * m);
      xs.push_back(tx);
      ys.push_back(ty);
      vs.push_back(-ncc[std::size_t(ty) * (2 * m + 1) + tx]);
    }
  double sx = best_x, sy = best_y;
  const Quadratic2D q = fit_quadratic_2d(xs, ys, vs);
  if (q.ok && std::abs(q.x0 - best_x) <= 1 && std::abs(q.y0 - best_y) <= 1) {
    sx = q.x0;
    sy = q.y0;
  }
  MatchGeometry g;
  g.rotation_deg = rotation_deg;
  g.scale = scale;
  g.shift_x_px = sx - m;
  g.shift_y_px = sy - m;
  return score_at(exp, sim, g);
}

// ---------------------------------------------------------------------------------------------
std::pair<double, double> search_rotation_scale(const MatchExperiment& exp, const std::vector<Image>& sims,
                                                double max_rotation_deg, double max_scale_change) {
  if (sims.empty())
    fail("match: no simulated image for the rotation/scale search");
  if (max_rotation_deg <= 0 && max_scale_change <= 0)
    return {0.0, 1.0};
  const int w = exp.roi.nx, h = exp.roi.ny;
  // Whitened experimental spectrum: log(power / noise), clipped at 0, smoothed 3×3.
  double wsum = 0;
  const std::vector<double> p = windowed_power(exp.roi, wsum);
  const std::vector<double> noise = noise_power(p, w, h);
  std::vector<double> l(p.size()), ls(p.size());
  for (std::size_t i = 0; i < p.size(); ++i)
    l[i] = noise[i] > 0 ? std::log(std::max(1.0, p[i] / noise[i])) : 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      double s = 0;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx)
          s += l[std::size_t((y + dy + h) % h) * w + std::size_t((x + dx + w) % w)];
      ls[std::size_t(y) * w + x] = s / 9;
    }
  auto lookup = [&](double fx, double fy) {  // fx, fy in FFT bins (signed)
    const double gx = std::floor(fx), gy = std::floor(fy), tx = fx - gx, ty = fy - gy;
    auto at = [&](int x, int y) { return ls[std::size_t(((y % h) + h) % h) * w + std::size_t(((x % w) + w) % w)]; };
    const int x0 = int(gx), y0 = int(gy);
    return (1 - ty) * ((1 - tx) * at(x0, y0) + tx * at(x0 + 1, y0)) + ty * ((1 - tx) * at(x0, y0 + 1) + tx * at(x0 + 1, y0 + 1));
  };
  // Strongest frequencies of the simulations (local maxima of the summed power).
  const int mx = sims[0].nx, my = sims[0].ny;
  const double ex = mx * sims[0].pixel_size_A, ey = my * sims[0].pixel_y_A();
  std::vector<double> power(std::size_t(mx) * my, 0);
  const Fft2D fft(mx, my, 0, FftRigor::Estimate);
  for (const Image& s : sims) {
    AlignedVector<cfloat> a(s.size());
    for (std::size_t i = 0; i < a.size(); ++i)
      a[i] = cfloat(s.pixels[i], 0.f);
    fft.forward(a);
    for (std::size_t i = 0; i < a.size(); ++i)
      power[i] += std::norm(a[i]);
  }
  struct SimPeak {
    double kx, ky, weight;  // cycles/Å
  };
  std::vector<SimPeak> peaks;
  const double k_min = 3.0 / (std::min(w, h) * exp.pixel_A), k_max = 0.45 / exp.pixel_A;
  auto pw = [&](int x, int y) { return power[std::size_t((y + my) % my) * mx + std::size_t((x + mx) % mx)]; };
  for (int iy = 0; iy < my; ++iy)
    for (int ix = 0; ix < mx; ++ix) {
      const double kx = signed_freq(ix, mx) / ex, ky = signed_freq(iy, my) / ey, k = std::hypot(kx, ky);
      if (k < k_min || k > k_max)
        continue;
      const double v = pw(ix, iy);
      bool is_max = true;
      for (int dy = -1; dy <= 1 && is_max; ++dy)
        for (int dx = -1; dx <= 1; ++dx)
          if ((dx || dy) && pw(ix + dx, iy + dy) > v)
            is_max = false;
      if (is_max && v > 0)
        peaks.push_back({kx, ky, std::sqrt(v)});
    }
  std::sort(peaks.begin(), peaks.end(), [](const SimPeak& a, const SimPeak& b) { return a.weight > b.weight; });
  if (peaks.size() > 60)
    peaks.resize(60);
  if (peaks.empty())
    return {0.0, 1.0};
  auto score = [&](double rot, double scale) {
    const double th = rot * units::deg_to_rad, c = std::cos(th), s = std::sin(th), f = scale * exp.pixel_A,
                 fy = exp.pixel_y_A / exp.pixel_A;
    double sum = 0;
    for (const SimPeak& q : peaks) {
      // k_e = scale·diag(pixel)·R(θ)·k_s with R(θ) = [[c, s], [−s, c]] (cycles per experiment pixel).
      const double ux = f * (c * q.kx + s * q.ky), uy = f * fy * (-s * q.kx + c * q.ky);
      sum += q.weight * lookup(ux * w, uy * h);
    }
    return sum;
  };
  const double dr = 0.1, ds = 0.001;
  const int nr = int(std::floor(max_rotation_deg / dr + 1e-9)), ns = int(std::floor(max_scale_change / ds + 1e-9));
  double best = -1, best_r = 0, best_s = 1;
  for (int ir = -nr; ir <= nr; ++ir)
    for (int is = -ns; is <= ns; ++is) {
      const double v = score(ir * dr, 1 + is * ds);
      if (v > best) {
        best = v;
        best_r = ir * dr;
        best_s = 1 + is * ds;
      }
    }
  return {best_r, best_s};
}

// ---------------------------------------------------------------------------------------------
double Quadratic2D::half_width_x(double delta) const {
  const double det = axx * ayy - axy * axy;
  return ok && det > 0 ? std::sqrt(delta * ayy / det) : std::numeric_limits<double>::infinity();
}
double Quadratic2D::half_width_y(double delta) const {
  const double det = axx * ayy - axy * axy;
  return ok && det > 0 ? std::sqrt(delta * axx / det) : std::numeric_limits<double>::infinity();
}

Quadratic2D fit_quadratic_2d(const std::vector<double>& x, const std::vector<double>& y, const std::vector<double>& v) {
  Quadratic2D q;
  const std::size_t n = x.size();
  if (n < 6 || y.size() != n || v.size() != n)
    return q;
  // Centre and scale the coordinates for conditioning.
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < n; ++i) {
    mx += x[i];
    my += y[i];
  }
  mx /= double(n);
  my /= double(n);
  double sx = 0, sy = 0;
  for (std::size_t i = 0; i < n; ++i) {
    sx = std::max(sx, std::abs(x[i] - mx));
    sy = std::max(sy, std::abs(y[i] - my));
  }
  if (!(sx > 0) || !(sy > 0))
    return q;
  Eigen::MatrixXd a(n, 6);
  Eigen::VectorXd b(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double u = (x[i] - mx) / sx, t = (y[i] - my) / sy;
    a.row(Eigen::Index(i)) << 1, u, t, u * u, u * t, t * t;
    b(Eigen::Index(i)) = v[i];
  }
  const Eigen::VectorXd c = a.colPivHouseholderQr().solve(b);
  // In scaled coordinates: v = c0 + g·z + zᵀ M z, M = [[c3, c4/2], [c4/2, c5]].
  const double m11 = c(3), m12 = 0.5 * c(4), m22 = c(5);
  const double det = m11 * m22 - m12 * m12;
  if (!(m11 > 0 && det > 0))
    return q;
  const double zu = -(m22 * c(1) - m12 * c(2)) / (2 * det), zt = -(m11 * c(2) - m12 * c(1)) / (2 * det);
  q.ok = true;
  q.x0 = mx + sx * zu;
  q.y0 = my + sy * zt;
  q.c = c(0) + 0.5 * (c(1) * zu + c(2) * zt);
  q.axx = m11 / (sx * sx);
  q.axy = m12 / (sx * sy);
  q.ayy = m22 / (sy * sy);
  return q;
}

// ---------------------------------------------------------------------------------------------
StackImager::StackImager(const ExitWaveStack& stack, const CoherenceSpec& coherence, const CameraModel& camera)
    : stack_(stack), coherence_(coherence), camera_(camera) {}

Image StackImager::image(int t, const Lens& lens, double pixel_scale) {
  if (t < 0 || t >= int(stack_.waves.size()))
    fail("match: thickness index ", t, " outside the stored exit waves");
  if (t != current_) {
    formers_.clear();
    for (const Wave& w : stack_.waves[std::size_t(t)]) {
      formers_.push_back(std::make_unique<ImageFormer>(w));
      ffts_ += formers_.back()->fft_count();
    }
    current_ = t;
  }
  std::vector<double> sum;
  Image shape;
  for (auto& former : formers_) {
    const long before = former->fft_count();
    Image img;
    if (coherence_.model == CoherenceModel::Envelope) {
      // Transfer functions are kept (up to ~256 MB): a map images every thickness at each defocus.
      const Aberrations& ab = lens.aberrations;
      const std::vector<double> key = {ab.defocus_A, ab.Cs_A, ab.astigmatism_A, ab.astigmatism_angle_deg};
      auto it = transfers_.find(key);
      if (it == transfers_.end()) {
        const double bytes = double(former->grid().size()) * sizeof(cfloat);
        if (double(transfers_.size() + 1) * bytes > 256e6)
          transfers_.clear();
        it = transfers_.emplace(key, TransferFunction(lens, former->grid(), stack_.tilt_x_mrad, stack_.tilt_y_mrad)).first;
      }
      img = former->intensity(it->second);
    } else
      img = former->intensity(lens, coherence_, stack_.tilt_x_mrad, stack_.tilt_y_mrad);
    ffts_ += former->fft_count() - before;
    if (sum.empty()) {
      sum.assign(img.size(), 0);
      shape = img;
    }
    for (std::size_t i = 0; i < img.size(); ++i)
      sum[i] += img.pixels[i];
  }
  for (std::size_t i = 0; i < sum.size(); ++i)
    shape.pixels[i] = float(sum[i] / double(formers_.size()));
  ffts_ += 2;
  return flipped_rows(camera_.from_image(shape, pixel_scale));
}

}  // namespace epitem

// ---------------------------------------------------------------------------------------------
namespace epitem {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Least-squares parabola v = c + a(x − x0)²; ok when a > 0.
struct Parabola {
  bool ok = false;
  double x0 = 0, a = 0, v0 = 0;  ///< v ≈ v0 + a (x − x0)²
};
Parabola fit_parabola(const std::vector<double>& x, const std::vector<double>& v) {
  Parabola p;
  if (x.size() < 3)
    return p;
  double mx = 0;
  for (double u : x)
    mx += u;
  mx /= double(x.size());
  double sx = 0;
  for (double u : x)
    sx = std::max(sx, std::abs(u - mx));
  if (!(sx > 0))
    return p;
  Eigen::MatrixXd a(Eigen::Index(x.size()), 3);
  Eigen::VectorXd b(Eigen::Index(x.size()));
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double u = (x[i] - mx) / sx;
    a.row(Eigen::Index(i)) << 1, u, u * u;
    b(Eigen::Index(i)) = v[i];
  }
  const Eigen::VectorXd c = a.colPivHouseholderQr().solve(b);
  if (!(c(2) > 0))
    return p;
  p.ok = true;
  p.x0 = mx - sx * c(1) / (2 * c(2));
  p.a = c(2) / (sx * sx);
  p.v0 = c(0) - c(1) * c(1) / (4 * c(2));
  return p;
}

}  // namespace

MatchResult run_match(const MatchExperiment& exp, const Lens& base_lens, const MatchSpec& spec_in,
                      const CellImageFn& image, ProgressFn progress) {
  MatchSpec spec = spec_in;
  if (spec.tilts_mrad.empty())
    spec.tilts_mrad = {{0.0, 0.0}};
  if (spec.defocus_A.empty() || spec.thickness_A.empty())
    fail("match: the defocus and thickness ranges need at least one point each");
  const int n_tilt = int(spec.tilts_mrad.size()), n_thick = int(spec.thickness_A.size()),
            n_def = int(spec.defocus_A.size());
  MatchResult r;
  auto lens_with = [&](double defocus_A) {
    Lens l = base_lens;
    l.aberrations.defocus_A = defocus_A;
    return l;
  };
  double pixel_scale = 1;  // the camera's true pixel / stated, set once the geometry is found
  auto form = [&](int tilt, int k, const Lens& l) {
    const auto t0 = Clock::now();
    Image im = image(tilt, k, l, pixel_scale);
    r.imaging_seconds += seconds_since(t0);
    ++r.images_formed;
    return im;
  };
  auto score = [&](const Image& sim, double rot, double scale) {
    const auto t0 = Clock::now();
    const CellScore c = score_simulation(exp, sim, rot, scale);
    r.alignment_seconds += seconds_since(t0);
    return c;
  };
  const double max_rot = spec.max_rotation_deg, max_scale = spec.max_scale_change;
  // Rotation and scale at one image: 3×3 χ² samples, quadratic vertex, shrinking steps.
  struct GeometryFit {
    double rot = 0, scale = 1;
    Quadratic2D q;
    Parabola p;
  };
  auto refine_geometry = [&](const Image& sim, double rot, double scale) {
    GeometryFit g;
    const bool fr = max_rot > 0, fs = max_scale > 0;
    double dr = 0.2, ds = 0.002;
    auto clamp_r = [&](double v) { return std::clamp(v, -max_rot, max_rot); };
    auto clamp_s = [&](double v) { return std::clamp(v, 1 - max_scale, 1 + max_scale); };
    for (int iter = 0; iter < 6 && (fr || fs); ++iter) {
      std::vector<double> xs, ys, vs;
      double best_v = 1e300, best_r = rot, best_s = scale;
      for (int i = fr ? -1 : 0; i <= (fr ? 1 : 0); ++i)
        for (int j = fs ? -1 : 0; j <= (fs ? 1 : 0); ++j) {
          const double ri = rot + i * dr, sj = scale + j * ds;
          const double v = score(sim, ri, sj).chi2;
          xs.push_back(ri);
          ys.push_back(sj);
          vs.push_back(v);
          if (v < best_v) {
            best_v = v;
            best_r = ri;
            best_s = sj;
          }
        }
      bool inside = false;
      if (fr && fs) {
        g.q = fit_quadratic_2d(xs, ys, vs);
        inside = g.q.ok && std::abs(g.q.x0 - rot) <= 1.5 * dr && std::abs(g.q.y0 - scale) <= 1.5 * ds;
        if (inside) {
          rot = clamp_r(g.q.x0);
          scale = clamp_s(g.q.y0);
        }
      } else {
        g.p = fit_parabola(fr ? xs : ys, vs);
        const double centre = fr ? rot : scale, step = fr ? dr : ds;
        inside = g.p.ok && std::abs(g.p.x0 - centre) <= 1.5 * step;
        if (inside)
          (fr ? rot : scale) = fr ? clamp_r(g.p.x0) : clamp_s(g.p.x0);
      }
      if (inside) {
        dr *= 0.5;
        ds *= 0.5;
      } else {
        rot = clamp_r(best_r);
        scale = clamp_s(best_s);
      }
    }
    g.rot = rot;
    g.scale = scale;
    return g;
  };

  // 1. Rotation and scale from a 3×3 sub-grid of cells (contrast differs between cells; the
  // lattice frequencies do not), then in real space at the best of them.
  // Under mpirun rank 0 finds them and tells the others.
  double rot = 0, scale = 1;
  parallel::collective([&] {
    if ((max_rot > 0 || max_scale > 0) && parallel::is_root()) {
      std::vector<std::pair<int, int>> sub;
      for (double a : {0.25, 0.5, 0.75})
        for (double b : {0.25, 0.5, 0.75}) {
          const std::pair<int, int> c{int(std::lround(a * (n_thick - 1))), int(std::lround(b * (n_def - 1)))};
          if (std::find(sub.begin(), sub.end(), c) == sub.end())
            sub.push_back(c);
        }
      std::vector<Image> sims;
      for (const auto& c : sub)
        sims.push_back(form(0, c.first, lens_with(spec.defocus_A[std::size_t(c.second)])));
      std::tie(rot, scale) = search_rotation_scale(exp, sims, max_rot, max_scale);
      std::size_t best = 0;
      double best_chi2 = 1e300;
      for (std::size_t i = 0; i < sims.size(); ++i) {
        const double v = score(sims[i], rot, scale).chi2;
        if (v < best_chi2) {
          best_chi2 = v;
          best = i;
        }
      }
      const GeometryFit g = refine_geometry(sims[best], rot, scale);
      rot = g.rot;
      scale = g.scale;
    }
  });
  if (parallel::size() > 1) {
    parallel::ByteWriter w;
    w.put(rot).put(scale);
    parallel::broadcast(w.bytes);
    parallel::ByteReader in(w.bytes);
    rot = in.get<double>();
    scale = in.get<double>();
  }
  pixel_scale = scale;

  // 2. The map at that geometry. Under mpirun the (tilt, thickness) rows are split in contiguous
  // blocks over the ranks (a row reuses its thickness's exit-wave spectra); rank 0 gathers the
  // scores in row order and alone goes on to the refinement (docs/mpi.md).
  const std::size_t total = std::size_t(n_tilt) * n_thick * n_def;
  const int n_rows = n_tilt * n_thick;
  std::map<int, std::vector<MatchCell>> my_rows;
  parallel::collective([&] {
    const parallel::Block b = parallel::my_block(n_rows);
    for (int row = b.first; row < b.last; ++row) {
      std::vector<MatchCell>& cells = my_rows[row];
      for (int d = 0; d < n_def; ++d) {
        MatchCell c;
        c.tilt = row / n_thick;
        c.thickness = row % n_thick;
        c.defocus_A = spec.defocus_A[std::size_t(d)];
        c.score = score(form(c.tilt, c.thickness, lens_with(c.defocus_A)), rot, scale);
        cells.push_back(c);
        if (progress)  // rank 0's own rows: its share of the map
          progress(std::size_t(row - b.first) * n_def + std::size_t(d) + 1,
                   std::size_t(b.last - b.first) * n_def, "map");
      }
    }
  });
  static_assert(std::is_trivially_copyable_v<MatchCell>);
  parallel::collect_in_order(
      n_rows, [&](int row) { return parallel::block_owner(row, n_rows); },
      [&](int row) {
        parallel::ByteWriter w;
        for (const MatchCell& c : my_rows.at(row))
          w.put(c);
        return w.bytes;
      },
      [&](int, const std::vector<char>& bytes) {
        parallel::ByteReader in(bytes);
        for (int d = 0; d < n_def; ++d)
          r.map.push_back(in.get<MatchCell>());
      });
  r.images_formed = long(parallel::sum(r.images_formed));  // rank 0 alone formed step 1's
  if (!parallel::is_root())
    return r;  // the refinement and every output are rank 0's
  if (r.map.size() != total)
    fail("match: the map has ", r.map.size(), " of ", total, " cells");
  r.best_cell = *std::min_element(r.map.begin(), r.map.end(), [](const MatchCell& a, const MatchCell& b) {
    return a.score.chi2 < b.score.chi2;
  });
  // Profile of the map over defocus for each (tilt, thickness), interpolated by a parabola through
  // the lowest grid point and its neighbours: at high dose χ² is steep in defocus, so the lowest
  // grid cell can sit in another thickness–defocus valley only because its defocus happens to lie
  // nearer a grid point. The refinement starts from the lowest interpolated profile.
  std::vector<double> prof_df(std::size_t(n_tilt) * n_thick, 0), prof_min(std::size_t(n_tilt) * n_thick, 1e300);
  const bool uniform_def = n_def >= 3 && std::abs((spec.defocus_A.back() - spec.defocus_A.front()) / (n_def - 1) -
                                                  (spec.defocus_A[1] - spec.defocus_A[0])) < 1e-6 * (1 + std::abs(spec.defocus_A[1]));
  for (int ti = 0; ti < n_tilt; ++ti)
    for (int k = 0; k < n_thick; ++k) {
      const std::size_t row = (std::size_t(ti) * n_thick + k) * n_def, p = std::size_t(ti) * n_thick + k;
      int j = 0;
      for (int d = 1; d < n_def; ++d)
        if (r.map[row + d].score.chi2 < r.map[row + j].score.chi2)
          j = d;
      prof_df[p] = spec.defocus_A[std::size_t(j)];
      prof_min[p] = r.map[row + j].score.chi2;
      if (uniform_def && j > 0 && j + 1 < n_def) {
        const double a = r.map[row + j - 1].score.chi2, b = prof_min[p], c = r.map[row + j + 1].score.chi2;
        const double curv = a - 2 * b + c, h = spec.defocus_A[1] - spec.defocus_A[0];
        if (curv > 0) {
          prof_df[p] += 0.5 * h * (a - c) / curv;
          prof_min[p] = b - (a - c) * (a - c) / (8 * curv);
        }
      }
    }
  const std::size_t start = std::size_t(std::min_element(prof_min.begin(), prof_min.end()) - prof_min.begin());
  const int tilt = int(start) / n_thick;
  const double chi2_red_grid = r.best_cell.score.chi2_reduced;
  const double delta95 = 3.84 * std::max(1.0, chi2_red_grid);

  // 3. Geometry at the best cell.
  Lens lens = lens_with(spec.continuous_defocus ? prof_df[start] : r.best_cell.defocus_A);
  {
    const Image sim = form(tilt, int(start) % n_thick, lens);
    const GeometryFit g = refine_geometry(sim, rot, scale);
    rot = g.rot;
    scale = g.scale;
    pixel_scale = scale;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    r.rotation_deg = {rot, max_rot > 0 ? (max_scale > 0 ? g.q.half_width_x(delta95) : (g.p.ok ? std::sqrt(delta95 / g.p.a) : nan)) : 0};
    r.scale = {scale, max_scale > 0 ? (max_rot > 0 ? g.q.half_width_y(delta95) : (g.p.ok ? std::sqrt(delta95 / g.p.a) : nan)) : 0};
  }

  // 4. Defocus × thickness, as a profile: at each of three stored thicknesses around the best
  // cell, the χ² minimum over defocus by parabolas on a stencil that shrinks towards the width of
  // the minimum (χ² is parabolic only near it: a ±2-grid-step stencil biased the vertex by several
  // widths); then thickness by a parabola through those minima, and defocus interpolated along the
  // valley of per-thickness minima. Thickness is only simulated at slice boundaries, so it is
  // never resampled.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  int kb = int(start) % n_thick;
  int db_index = int(std::min_element(spec.defocus_A.begin(), spec.defocus_A.end(), [&](double a, double b) {
                       return std::abs(a - prof_df[start]) < std::abs(b - prof_df[start]);
                     }) - spec.defocus_A.begin());
  const double h_def = n_def > 1 ? std::abs(spec.defocus_A[1] - spec.defocus_A[0]) / 2 : 10.0;
  const bool fit_def = spec.continuous_defocus || n_def >= 3, fit_thick = n_thick >= 3;
  struct DefocusMinimum {
    double defocus_A = 0, chi2 = 0, half_width_A = 0;  // half_width: of the 95 % drop (nan: none)
  };
  auto defocus_minimum = [&](int k, double centre) {
    DefocusMinimum m{centre, 1e300, nan};
    if (!spec.continuous_defocus) {  // a precomputed series: its own defocus values only
      const int c = int(std::min_element(spec.defocus_A.begin(), spec.defocus_A.end(), [&](double a, double b) {
                          return std::abs(a - centre) < std::abs(b - centre);
                        }) - spec.defocus_A.begin());
      std::vector<double> xs, vs;
      for (int j = std::max(0, c - 2); j <= std::min(n_def - 1, c + 2); ++j) {
        xs.push_back(spec.defocus_A[std::size_t(j)]);
        vs.push_back(score(form(tilt, k, lens_with(xs.back())), rot, scale).chi2);
        if (vs.back() < m.chi2)
          m = {xs.back(), vs.back(), nan};
      }
      const Parabola p = fit_parabola(xs, vs);
      if (p.ok && p.x0 >= xs.front() && p.x0 <= xs.back())
        m = {p.x0, p.v0, std::sqrt(delta95 / p.a)};
      return m;
    }
    double h = h_def;
    for (int iter = 0; iter < 8; ++iter) {
      std::vector<double> xs, vs;
      double best_x = centre, best_v = 1e300;
      for (int j = -2; j <= 2; ++j) {
        xs.push_back(centre + j * h);
        vs.push_back(score(form(tilt, k, lens_with(xs.back())), rot, scale).chi2);
        if (vs.back() < best_v) {
          best_v = vs.back();
          best_x = xs.back();
        }
      }
      const Parabola p = fit_parabola(xs, vs);
      if (!(p.ok && std::abs(p.x0 - centre) <= 2 * h)) {
        centre = best_x;  // not bracketed: move to the best sample, same stencil
        m = {best_x, best_v, nan};
        continue;
      }
      centre = p.x0;
      m = {p.x0, p.v0, std::sqrt(delta95 / p.a)};
      if (h <= m.half_width_A)
        break;  // the stencil spans about ±2 widths: parabolic there
      h = std::max(0.5 * h, 0.5 * m.half_width_A);
    }
    return m;
  };
  double db = spec.continuous_defocus ? prof_df[start] : spec.defocus_A[std::size_t(db_index)];
  // Every thickness whose interpolated profile lies within the drop of the lowest grid cell has
  // its defocus minimum refined: a defocus grid coarse against a sharp minimum interpolates it
  // poorly (a thin crystal, periodic along the beam, once reported the wrong period with a
  // tenth of the interval). The lowest refined minimum starts the fit; all of them set the reach.
  std::vector<double> refined_chi2(std::size_t(n_thick), nan);
  if (fit_def) {
    double raw_best = 1e300;
    for (const MatchCell& c : r.map)
      if (c.tilt == tilt)
        raw_best = std::min(raw_best, c.score.chi2);
    double lowest = 1e300;
    for (int k = 0; k < n_thick; ++k) {
      const std::size_t p = std::size_t(tilt) * n_thick + std::size_t(k);
      if (prof_min[p] > raw_best + delta95)
        continue;
      const DefocusMinimum m = defocus_minimum(k, prof_df[p]);
      refined_chi2[std::size_t(k)] = m.chi2;
      if (m.chi2 < lowest) {
        lowest = m.chi2;
        kb = k;
        db = m.defocus_A;
      }
    }
  }
  r.defocus_A = {db, nan};
  r.thickness_A = {spec.thickness_A[std::size_t(kb)], nan};
  double valley_slope = 0;  // d(best defocus)/d(thickness) along the valley [Å/Å]
  for (int iter = 0; iter < 4 && fit_def; ++iter) {
    const int k_lo = fit_thick ? std::max(0, std::min(kb - 1, n_thick - 3)) : kb;
    const int k_hi = fit_thick ? std::min(n_thick - 1, k_lo + 2) : kb;
    std::vector<double> ts, df_min, chi2_min, widths;
    for (int k = k_lo; k <= k_hi; ++k) {
      const DefocusMinimum m = defocus_minimum(k, db);
      ts.push_back(spec.thickness_A[std::size_t(k)]);
      df_min.push_back(m.defocus_A);
      chi2_min.push_back(m.chi2);
      widths.push_back(m.half_width_A);
    }
    const int best = int(std::min_element(chi2_min.begin(), chi2_min.end()) - chi2_min.begin());
    r.defocus_A = {df_min[std::size_t(best)], widths[std::size_t(best)]};
    r.thickness_A = {ts[std::size_t(best)], nan};
    if (!fit_thick)
      break;
    const Parabola pt = fit_parabola(ts, chi2_min);
    if (pt.ok && pt.x0 >= ts.front() && pt.x0 <= ts.back()) {
      // Defocus follows the valley to the interpolated thickness (piecewise linear).
      const std::size_t seg = pt.x0 <= ts[1] ? 0 : 1;
      const double f = (pt.x0 - ts[seg]) / (ts[seg + 1] - ts[seg]);
      valley_slope = (df_min[2] - df_min[0]) / (ts[2] - ts[0]);
      const double u_t = std::sqrt(delta95 / pt.a);
      const double w = (1 - f) * widths[seg] + f * widths[seg + 1];
      r.defocus_A = {(1 - f) * df_min[seg] + f * df_min[seg + 1], std::hypot(w, valley_slope * u_t)};
      r.thickness_A = {pt.x0, u_t};
      break;
    }
    // Not bracketed: recentre on the best thickness; at the edge of the range it is the answer.
    const int kb_new = k_lo + best;
    db = df_min[std::size_t(best)];
    if (kb_new == kb)
      break;
    kb = kb_new;
  }
  if (!fit_def && fit_thick) {
    // One defocus value (a single-page series): thickness alone.
    std::vector<double> ts, vs;
    for (int k = std::max(0, kb - 2); k <= std::min(n_thick - 1, kb + 2); ++k) {
      ts.push_back(spec.thickness_A[std::size_t(k)]);
      vs.push_back(score(form(tilt, k, lens_with(db)), rot, scale).chi2);
    }
    const Parabola p = fit_parabola(ts, vs);
    if (p.ok && p.x0 >= ts.front() && p.x0 <= ts.back())
      r.thickness_A = {p.x0, std::sqrt(delta95 / p.a)};
  }
  // The local quadratic only sees its own valley: thickness and defocus trade against each other
  // (other valleys can lie within the noise), so the intervals also span every grid cell of the
  // map whose profile χ² lies within the same drop. Thickness is only simulated at slice
  // boundaries, so its interval also includes half the spacing to the neighbouring boundary.
  {
    std::vector<double> prof_t(std::size_t(n_thick), 1e300), prof_d(std::size_t(n_def), 1e300);
    for (const MatchCell& c : r.map)
      if (c.tilt == tilt) {
        const std::size_t d = std::size_t(std::find(spec.defocus_A.begin(), spec.defocus_A.end(), c.defocus_A) -
                                          spec.defocus_A.begin());
        const double refined = refined_chi2[std::size_t(c.thickness)];
        prof_t[std::size_t(c.thickness)] =
            std::isfinite(refined) ? refined : prof_min[std::size_t(tilt) * n_thick + std::size_t(c.thickness)];
        prof_d[d] = std::min(prof_d[d], c.score.chi2);
      }
    const double floor_chi2 = *std::min_element(prof_t.begin(), prof_t.end());
    const double threshold = floor_chi2 + delta95;
    double reach_t = 0;
    for (int k = 0; k < n_thick; ++k)
      if (prof_t[std::size_t(k)] <= threshold) {
        const double below = k > 0 ? spec.thickness_A[std::size_t(k)] - spec.thickness_A[std::size_t(k - 1)] : 0;
        const double above = k + 1 < n_thick ? spec.thickness_A[std::size_t(k + 1)] - spec.thickness_A[std::size_t(k)] : 0;
        const double t = spec.thickness_A[std::size_t(k)];
        reach_t = std::max({reach_t, std::abs(t - r.thickness_A.value) + 0.5 * std::max(below, above)});
      }
    double reach_d = 0;
    for (int d = 0; d < n_def; ++d)
      if (prof_d[std::size_t(d)] <= threshold) {
        // Linear interpolation to where the profile crosses the threshold on either side.
        double lo = spec.defocus_A[std::size_t(d)], hi = lo;
        if (d > 0 && prof_d[std::size_t(d - 1)] > threshold)
          lo -= (spec.defocus_A[std::size_t(d)] - spec.defocus_A[std::size_t(d - 1)]) *
                (threshold - prof_d[std::size_t(d)]) / (prof_d[std::size_t(d - 1)] - prof_d[std::size_t(d)]);
        if (d + 1 < n_def && prof_d[std::size_t(d + 1)] > threshold)
          hi += (spec.defocus_A[std::size_t(d + 1)] - spec.defocus_A[std::size_t(d)]) *
                (threshold - prof_d[std::size_t(d)]) / (prof_d[std::size_t(d + 1)] - prof_d[std::size_t(d)]);
        reach_d = std::max({reach_d, std::abs(lo - r.defocus_A.value), std::abs(hi - r.defocus_A.value)});
      }
    if (n_thick > 1)
      r.thickness_A.uncertainty_95 = std::isfinite(r.thickness_A.uncertainty_95)
                                         ? std::max(r.thickness_A.uncertainty_95, reach_t) : reach_t;
    if (n_def > 1)
      r.defocus_A.uncertainty_95 = std::isfinite(r.defocus_A.uncertainty_95)
                                       ? std::max(r.defocus_A.uncertainty_95, reach_d) : reach_d;
    // The interpolated thickness can be off by up to half a slice spacing; defocus follows it
    // along the χ² valley.
    int kn = 0;
    for (int k = 1; k < n_thick; ++k)
      if (std::abs(spec.thickness_A[std::size_t(k)] - r.thickness_A.value) <
          std::abs(spec.thickness_A[std::size_t(kn)] - r.thickness_A.value))
        kn = k;
    const double spacing = n_thick > 1 ? std::abs(spec.thickness_A[std::size_t(kn == 0 ? 1 : kn)] -
                                                  spec.thickness_A[std::size_t(kn == 0 ? 0 : kn - 1)]) : 0;
    r.defocus_A.uncertainty_95 = std::hypot(r.defocus_A.uncertainty_95, valley_slope * 0.5 * spacing);
  }
  lens.aberrations.defocus_A = r.defocus_A.value;
  // Nearest stored thickness for the images that follow.
  int k_best = 0;
  for (int k = 1; k < n_thick; ++k)
    if (std::abs(spec.thickness_A[std::size_t(k)] - r.thickness_A.value) <
        std::abs(spec.thickness_A[std::size_t(k_best)] - r.thickness_A.value))
      k_best = k;

  // 5. Optional Cs and two-fold astigmatism: rounds of parabolic line searches, defocus in each.
  r.Cs_A = {lens.aberrations.Cs_A, 0};
  r.astigmatism_A = {lens.aberrations.astigmatism_A, 0};
  r.astigmatism_angle_deg = {lens.aberrations.astigmatism_angle_deg, 0};
  if (spec.continuous_defocus && (spec.refine_cs || spec.refine_astigmatism)) {
    double a1 = lens.aberrations.astigmatism_A * std::cos(2 * lens.aberrations.astigmatism_angle_deg * units::deg_to_rad);
    double a2 = lens.aberrations.astigmatism_A * std::sin(2 * lens.aberrations.astigmatism_angle_deg * units::deg_to_rad);
    auto apply = [&](Lens& l) {
      l.aberrations.astigmatism_A = std::hypot(a1, a2);
      l.aberrations.astigmatism_angle_deg = 0.5 * std::atan2(a2, a1) / units::deg_to_rad;
    };
    double u_cs = nan, u_a1 = nan, u_a2 = nan, u_df = r.defocus_A.uncertainty_95;
    auto line_search = [&](double& value, double step, double& uncertainty, auto&& set) {
      std::vector<double> xs, vs;
      for (int j = -2; j <= 2; ++j) {
        Lens l = lens;
        set(l, value + j * step);
        xs.push_back(value + j * step);
        vs.push_back(score(form(tilt, k_best, l), rot, scale).chi2);
      }
      const Parabola p = fit_parabola(xs, vs);
      if (p.ok && p.x0 >= xs.front() && p.x0 <= xs.back()) {
        value = p.x0;
        uncertainty = std::sqrt(delta95 / p.a);
      } else {
        value = xs[std::size_t(std::min_element(vs.begin(), vs.end()) - vs.begin())];
        uncertainty = nan;
      }
    };
    // Rounds of line searches until every step is within its parameter's 95 % half-width (a
    // parabola over a wider stencil is biased, as for defocus) and no parameter moved by more than
    // that half-width: the parameters are correlated (C12 with defocus), so one or two rounds of
    // coordinate search stopped short of the minimum.
    double step_cs = std::max(0.02 * lens.aberrations.Cs_A, 1e5), step_a1 = 20.0, step_a2 = 20.0, step_df = h_def;
    auto shrink = [](double& step, double uncertainty) {
      if (std::isfinite(uncertainty))
        step = std::max(std::min(step, uncertainty), 0.25 * step);
    };
    auto settled = [](double step, double moved, double uncertainty) {
      return std::isfinite(uncertainty) && step <= 1.01 * uncertainty && std::abs(moved) <= uncertainty;
    };
    for (int round = 0; round < 10; ++round) {
      bool done = true;
      if (spec.refine_cs) {
        const double before = lens.aberrations.Cs_A;
        line_search(lens.aberrations.Cs_A, step_cs, u_cs, [&](Lens& l, double v) { l.aberrations.Cs_A = v; });
        done = done && settled(step_cs, lens.aberrations.Cs_A - before, u_cs);
        shrink(step_cs, u_cs);
      }
      if (spec.refine_astigmatism) {
        double before = a1;
        line_search(a1, step_a1, u_a1, [&](Lens& l, double v) { double s1 = a1; a1 = v; apply(l); a1 = s1; });
        apply(lens);
        done = done && settled(step_a1, a1 - before, u_a1);
        shrink(step_a1, u_a1);
        before = a2;
        line_search(a2, step_a2, u_a2, [&](Lens& l, double v) { double s2 = a2; a2 = v; apply(l); a2 = s2; });
        apply(lens);
        done = done && settled(step_a2, a2 - before, u_a2);
        shrink(step_a2, u_a2);
      }
      const double before = lens.aberrations.defocus_A;
      line_search(lens.aberrations.defocus_A, step_df, u_df, [&](Lens& l, double v) { l.aberrations.defocus_A = v; });
      done = done && settled(step_df, lens.aberrations.defocus_A - before, u_df);
      shrink(step_df, u_df);
      if (done)
        break;
    }
    r.defocus_A = {lens.aberrations.defocus_A, std::isfinite(u_df) ? std::max(u_df, r.defocus_A.uncertainty_95) : u_df};
    if (spec.refine_cs)
      r.Cs_A = {lens.aberrations.Cs_A, u_cs};
    if (spec.refine_astigmatism) {
      const double mag = std::hypot(a1, a2), u = std::max(u_a1, u_a2);
      r.astigmatism_A = {mag, u};
      r.astigmatism_angle_deg = {lens.aberrations.astigmatism_angle_deg,
                                 mag > 0 ? 0.5 * u / mag / units::deg_to_rad : nan};
    }
  }
  r.lens = lens;

  // 6. The refined simulation, its score and the verdict (a series holds only its own defocus values).
  Lens image_lens = lens;
  if (!spec.continuous_defocus)
    image_lens.aberrations.defocus_A = *std::min_element(spec.defocus_A.begin(), spec.defocus_A.end(), [&](double a, double b) {
      return std::abs(a - lens.aberrations.defocus_A) < std::abs(b - lens.aberrations.defocus_A);
    });
  const Image sim = form(tilt, k_best, image_lens);
  r.score = score(sim, rot, scale);
  r.geometry = r.score.geometry;
  r.simulation_roi = warp_to_roi(exp, sim, r.geometry);
  for (auto& v : r.simulation_roi.pixels)
    v = float(r.score.gain * v + r.score.offset);
  double m = 0, m2 = 0;
  for (float v : exp.roi.pixels) {
    m += v;
    m2 += double(v) * v;
  }
  m /= double(exp.roi.size());
  const double total_var = m2 / double(exp.roi.size()) - m * m;
  const double signal_var = std::max(exp.noise.signal_variance, 1e-12 * total_var);
  r.explained_signal_fraction = std::min(1.0, r.score.ncc * std::abs(r.score.ncc) * total_var / signal_var);
  r.poor_fit = r.explained_signal_fraction < 0.5 || r.score.ncc <= 0;
  char buf[400];
  if (r.poor_fit)
    std::snprintf(buf, sizeof buf,
                  "POOR FIT: the best simulation explains %.0f %% of the experiment's structure above the noise "
                  "(NCC %.3f, reduced chi2 %.2f); the model, zone axis or ranges are probably wrong",
                  100 * r.explained_signal_fraction, r.score.ncc, r.score.chi2_reduced);
  else if (r.score.chi2_reduced > 2)
    std::snprintf(buf, sizeof buf,
                  "fit acceptable but imperfect: explains %.0f %% of the structure above the noise, reduced chi2 "
                  "%.2f (uncertainties widened by it)",
                  100 * r.explained_signal_fraction, r.score.chi2_reduced);
  else
    std::snprintf(buf, sizeof buf, "good fit: explains %.0f %% of the structure above the noise, reduced chi2 %.2f",
                  100 * r.explained_signal_fraction, r.score.chi2_reduced);
  r.verdict = buf;
  return r;
}

}  // namespace epitem

// ---------------------------------------------------------------------------------------------
namespace epitem {

std::vector<double> slice_boundaries_within(const Slicing& slicing, double min_A, double max_A, int every) {
  std::vector<double> out;
  const double tol = 1e-6;
  int n = 0;
  for (std::size_t k = 1; k < slicing.boundaries_A.size(); ++k) {
    const double t = slicing.boundaries_A[k];
    if (t >= min_A - tol && t <= max_A + tol && n++ % std::max(1, every) == 0)
      out.push_back(t);
  }
  return out;
}

ExitWaveStack multislice_exit_waves(const AtomicModel& model, MultisliceSpec spec, const std::vector<double>& thickness_A,
                                    ProgressFn progress, WarnFn warn, MultisliceReport* report) {
  if (thickness_A.empty())
    fail("match: no thickness to keep exit waves at");
  const Slicing slicing = multislice_slicing(model, spec);
  const double total = slicing.boundaries_A.back();
  spec.thickness_series_A.clear();
  for (double t : thickness_A)
    if (t < total - 1e-6)
      spec.thickness_series_A.push_back(t);
  const bool keep_last = thickness_A.back() >= total - 1e-6;
  ExitWaveStack stack;
  stack.tilt_x_mrad = spec.beam_tilt_x_mrad;
  stack.tilt_y_mrad = spec.beam_tilt_y_mrad;
  stack.thickness_A = thickness_A;
  stack.waves.resize(thickness_A.size());
  auto on_exit = [&](int config, int index, double, const Wave& wave) {
    if (std::size_t(index) >= thickness_A.size() || (std::size_t(index) == spec.thickness_series_A.size() && !keep_last))
      return;
    auto& slot = stack.waves[std::size_t(index)];
    if (int(slot.size()) <= config)
      slot.resize(std::size_t(config) + 1);
    slot[std::size_t(config)] = wave;
  };
  const MultisliceReport rep = run_multislice(model, spec, on_exit, progress, warn);
  for (std::size_t i = 0; i < thickness_A.size(); ++i)
    stack.thickness_A[i] = rep.saved_thicknesses_A[i];
  if (report)
    *report = rep;
  return stack;
}

}  // namespace epitem
