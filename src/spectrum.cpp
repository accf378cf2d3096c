#include "epitem/spectrum.hpp"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdio>
#include <mutex>
#include <numeric>

#include "epitem/error.hpp"
#include "epitem/fft.hpp"
#include "epitem/progress.hpp"
#include "epitem/units.hpp"
#include "epitem/wave.hpp"

namespace epitem {

Image crop(const Image& image, const Roi& roi) {
  if (roi.w == 0 && roi.h == 0 && roi.x == 0 && roi.y == 0)
    return image;
  if (roi.w <= 0 || roi.h <= 0 || roi.x < 0 || roi.y < 0 || roi.x + roi.w > image.nx ||
      roi.y + roi.h > image.ny)
    fail("ROI ", roi.x, ",", roi.y, ",", roi.w, ",", roi.h, " (x,y,w,h in pixels) does not fit the ",
         image.nx, "×", image.ny, " image: give 0 ≤ x, x+w ≤ ", image.nx, ", 0 ≤ y, y+h ≤ ", image.ny);
  Image out(roi.w, roi.h);
  out.pixel_size_A = image.pixel_size_A;
  out.pixel_size_invA = image.pixel_size_invA;
  out.pixel_size_y_A = image.pixel_size_y_A;
  out.pixel_size_y_invA = image.pixel_size_y_invA;
  for (int iy = 0; iy < roi.h; ++iy)
    std::copy_n(&image.pixels[size_t(roi.y + iy) * size_t(image.nx) + size_t(roi.x)], roi.w,
                &out.pixels[size_t(iy) * size_t(roi.w)]);
  return out;
}

namespace {

// Position, |g|, d and direction of a peak, taking the Friedel mate with angle in [0°, 180°).
void set_peak_position(Peak& p, double kx_invA, double ky_invA) {
  if (ky_invA < 0 || (ky_invA == 0 && kx_invA < 0)) {
    kx_invA = -kx_invA;
    ky_invA = -ky_invA;
  }
  p.kx_invA = kx_invA;
  p.ky_invA = ky_invA;
  p.g_invA = std::hypot(kx_invA, ky_invA);
  p.d_A = 1.0 / p.g_invA;
  p.angle_deg = std::atan2(ky_invA, kx_invA) / units::deg_to_rad;
  if (p.angle_deg >= 180)
    p.angle_deg -= 180;
}

// FFTW's planner is not thread-safe; the threads library is initialised once per process.
std::mutex& planner_mutex() {
  static std::mutex m;
  return m;
}

void init_fftw_threads() {
  static std::once_flag once;
  std::call_once(once, [] { fftwf_init_threads(); });
}

// Periodic Hann window (DFT-even): its transform has exactly three non-zero bins.
std::vector<float> hann(int n) {
  std::vector<float> w(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    w[size_t(i)] = float(0.5 - 0.5 * std::cos(2 * PI * i / n));
  return w;
}

// Index in a centred array of length n for FFT frequency f (any integer).
inline int centred(int f, int n) { return ((f % n) + n + n / 2) % n; }

}  // namespace

PowerSpectrum power_spectrum(const Image& image, int threads) {
  if (image.nx < 8 || image.ny < 8)
    fail("power spectrum: the image is ", image.nx, "×", image.ny,
         " pixels; need at least 8×8 (crop a larger region or check the file)");
  if (!(image.pixel_size_A > 0))
    fail("power spectrum: the image has no pixel size; give it with --pixel-size (e.g. "
         "--pixel-size 0.05A or 0.005nm) or save the TIFF with its calibration");
  require_finite(image, "power spectrum input");
  const int nx = image.nx, ny = image.ny, nxh = nx / 2 + 1;
  const auto wx = hann(nx), wy = hann(ny);
  if (std::all_of(image.pixels.begin(), image.pixels.end(),
                  [&](float v) { return v == image.pixels[0]; }))
    fail("power spectrum: the image is constant (every pixel = ", image.pixels[0],
         "): it has no lattice fringes and no peaks");
  // Subtracting the window-weighted mean makes the windowed image's DC exactly zero.
  double sum_w = 0, sum_wv = 0;
  for (int iy = 0; iy < ny; ++iy) {
    const float* row = &image.pixels[size_t(iy) * size_t(nx)];
    double r = 0;
    for (int ix = 0; ix < nx; ++ix)
      r += double(wx[size_t(ix)] * row[ix]);
    sum_wv += r * wy[size_t(iy)];
    sum_w += wy[size_t(iy)];
  }
  sum_w *= std::accumulate(wx.begin(), wx.end(), 0.0);
  const float mean = float(sum_wv / sum_w);

  AlignedVector<float> in(size_t(nx) * size_t(ny));
  AlignedVector<cfloat> out(size_t(nxh) * size_t(ny));
  for (int iy = 0; iy < ny; ++iy) {
    const float* row = &image.pixels[size_t(iy) * size_t(nx)];
    float* dst = &in[size_t(iy) * size_t(nx)];
    const float w = wy[size_t(iy)];
    for (int ix = 0; ix < nx; ++ix)
      dst[ix] = (row[ix] - mean) * (wx[size_t(ix)] * w);
  }

  init_fftw_threads();
  fftwf_plan plan;
  {
    std::lock_guard<std::mutex> lock(planner_mutex());
    fftwf_plan_with_nthreads(threads > 0 ? threads : default_thread_count());
    plan = fftwf_plan_dft_r2c_2d(ny, nx, in.data(), reinterpret_cast<fftwf_complex*>(out.data()),
                                 FFTW_ESTIMATE);
  }
  if (!plan)
    fail("power spectrum: FFTW could not plan a ", nx, "×", ny, " transform");
  fftwf_execute(plan);
  {
    std::lock_guard<std::mutex> lock(planner_mutex());
    fftwf_destroy_plan(plan);
  }

  PowerSpectrum s;
  s.windowed.assign(in.begin(), in.end());
  s.nx = nx;
  s.ny = ny;
  s.dkx_invA = 1.0 / (nx * image.pixel_size_A);
  s.dky_invA = 1.0 / (ny * image.pixel_y_A());
  s.power.assign(size_t(nx) * size_t(ny), 0.f);
  // Normalised so a pure cosine's peak does not grow with the image size squared.
  const float norm = float(1.0 / (double(nx) * double(ny)));
  for (int iy = 0; iy < ny; ++iy) {
    // Row frequency fy grows downward, so ky = −fy: a plain fftshift puts +ky at the top.
    const int fy = iy < (ny + 1) / 2 ? iy : iy - ny;
    const int row = centred(fy, ny), mrow = centred(-fy, ny);
    const cfloat* o = &out[size_t(iy) * size_t(nxh)];
    for (int jx = 0; jx < nxh; ++jx) {
      const float p = std::norm(o[jx]) * norm;
      s.power[size_t(row) * size_t(nx) + size_t(centred(jx, nx))] = p;
      s.power[size_t(mrow) * size_t(nx) + size_t(centred(-jx, nx))] = p;  // P(−k) = P(k)
    }
  }
  return s;
}

namespace {

// Smooth background of ln P, evaluated per pixel on demand: radial median of ln P (robust to
// the few peak pixels) plus the anisotropic residual (streaks, astigmatic envelopes) averaged
// over boxes of ±h pixels on a coarse grid. Statistics come from the ky ≥ 0 half (P(−k) = P(k))
// and, far from the centre, from every k-th pixel: enough samples, bounded time.
class Background {
public:
  Background(const PowerSpectrum& s, int last_row, float floor_p)
      : s_(s), cx_(s.nx / 2), cy_(s.ny / 2), floor_(floor_p) {
    const double dk = std::min(s.dkx_invA, s.dky_invA);
    sx_ = s.dkx_invA / dk;
    sy_ = s.dky_invA / dk;
    const int nx = s.nx;
    const int stride = std::max(1, int(std::ceil(std::sqrt(double(nx) * (last_row + 1) / 1e6))));
    const int h = std::max(4, std::min(s.nx, s.ny) / 64);
    cell_ = std::max(stride, h / 2);
    ncx_ = (nx + cell_ - 1) / cell_;
    ncy_ = (last_row + cell_) / cell_;
    const int n_bins = bin(0, 0) + 2;
    const int dense_bins = 64;  // all pixels near the centre, where bins are small
    std::vector<std::pair<int, float>> samples;
    for (int iy = 0; iy <= last_row; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        const int b = bin(ix, iy);
        if (b < dense_bins || (ix % stride == 0 && iy % stride == 0))
          samples.emplace_back(b, log_power(ix, iy));
      }
    // Radial median by counting sort into bins.
    std::vector<size_t> start(size_t(n_bins) + 1, 0);
    for (const auto& sm : samples)
      ++start[size_t(sm.first) + 1];
    for (int b = 0; b < n_bins; ++b)
      start[size_t(b) + 1] += start[size_t(b)];
    std::vector<float> sorted(samples.size());
    {
      std::vector<size_t> fill(start.begin(), start.end() - 1);
      for (const auto& sm : samples)
        sorted[fill[size_t(sm.first)]++] = sm.second;
    }
    radial_.assign(size_t(n_bins), 0.f);
    float last = 0.f;
    for (int b = n_bins - 1; b >= 0; --b) {  // empty bins (corners) take the next outer value
      auto first = sorted.begin() + std::ptrdiff_t(start[size_t(b)]);
      auto end = sorted.begin() + std::ptrdiff_t(start[size_t(b) + 1]);
      if (first != end) {
        auto mid = first + (end - first) / 2;
        std::nth_element(first, mid, end);
        last = *mid;
      }
      radial_[size_t(b)] = last;
    }
    // Residual, clipped so that peaks do not lift their own background, per coarse cell.
    std::vector<double> sum(size_t(ncx_) * size_t(ncy_), 0.0), count(sum.size(), 0.0);
    for (int iy = 0; iy <= last_row; iy += stride)
      for (int ix = 0; ix < nx; ix += stride) {
        const size_t c = size_t(iy / cell_) * size_t(ncx_) + size_t(ix / cell_);
        sum[c] += std::min(log_power(ix, iy) - radial_[size_t(bin(ix, iy))], 2.0f);
        count[c] += 1;
      }
    const int hc = std::max(1, h / cell_);
    coarse_.assign(sum.size(), 0.f);
    for (int cy = 0; cy < ncy_; ++cy)
      for (int cx = 0; cx < ncx_; ++cx) {
        double sw = 0, n = 0;
        for (int y = std::max(0, cy - hc); y <= std::min(ncy_ - 1, cy + hc); ++y)
          for (int x = std::max(0, cx - hc); x <= std::min(ncx_ - 1, cx + hc); ++x) {
            sw += sum[size_t(y) * size_t(ncx_) + size_t(x)];
            n += count[size_t(y) * size_t(ncx_) + size_t(x)];
          }
        coarse_[size_t(cy) * size_t(ncx_) + size_t(cx)] = n > 0 ? float(sw / n) : 0.f;
      }
  }
  /// Radius in units of the finer reciprocal pixel, rounded.
  int bin(int ix, int iy) const {
    return int(std::lround(std::hypot((ix - cx_) * sx_, (iy - cy_) * sy_)));
  }
  float log_power(int ix, int iy) const {
    return std::log(std::max(s_.power[size_t(iy) * size_t(s_.nx) + size_t(ix)], floor_));
  }
  /// ln P − ln(median background) at a pixel (row ≤ last_row).
  float excess(int ix, int iy) const {
    const int b = std::min(bin(ix, iy), int(radial_.size()) - 1);
    const int c = std::min(iy / cell_, ncy_ - 1) * ncx_ + ix / cell_;
    return log_power(ix, iy) - radial_[size_t(b)] - coarse_[size_t(c)];
  }

private:
  const PowerSpectrum& s_;
  int cx_, cy_;
  float floor_;
  double sx_ = 1, sy_ = 1;
  int cell_ = 1, ncx_ = 1, ncy_ = 1;
  std::vector<float> radial_, coarse_;
};

}  // namespace

namespace {

// The transform of the windowed image at a continuous frequency (u, v) in bins (u along x,
// v along image rows, i.e. down), with its first and second derivatives, from direct sums:
// per row, Σx f·e^{−2πiux/nx}·{1, x, x²}, then over rows with e^{−2πivy/ny}·{1, y, y²}.
// Coordinates from the image centre keep the derivative sums well conditioned.
struct Transform {
  std::complex<double> F, Fu, Fv, Fuu, Fvv, Fuv;
};

Transform dft_at(const PowerSpectrum& s, double u, double v) {
  const int nx = s.nx, ny = s.ny;
  std::vector<std::complex<double>> tw(static_cast<size_t>(nx));
  for (int x = 0; x < nx; ++x)
    tw[size_t(x)] = std::polar(1.0, -2 * PI * u * (x - nx / 2) / nx);
  // Row sums in parallel, then combined in a fixed order (the result does not depend on threads).
  std::vector<std::complex<double>> R(3 * size_t(ny));
  parallel_for(size_t(ny), default_thread_count(), [&](size_t begin, size_t end) {
    for (size_t y = begin; y < end; ++y) {
      const float* row = &s.windowed[y * size_t(nx)];
      double r0r = 0, r0i = 0, r1r = 0, r1i = 0, r2r = 0, r2i = 0;
      for (int x = 0; x < nx; ++x) {
        const double f = row[x], xc = x - nx / 2;
        const double tr = f * tw[size_t(x)].real(), ti = f * tw[size_t(x)].imag();
        r0r += tr;
        r0i += ti;
        r1r += xc * tr;
        r1i += xc * ti;
        r2r += xc * xc * tr;
        r2i += xc * xc * ti;
      }
      R[3 * y] = {r0r, r0i};
      R[3 * y + 1] = {r1r, r1i};
      R[3 * y + 2] = {r2r, r2i};
    }
  });
  std::complex<double> S0, S1, S2, Sy0, Syy0, Sy1;
  for (int y = 0; y < ny; ++y) {
    const double yc = y - ny / 2;
    const std::complex<double> e = std::polar(1.0, -2 * PI * v * yc / ny);
    const std::complex<double> R0 = R[3 * size_t(y)], R1 = R[3 * size_t(y) + 1], R2 = R[3 * size_t(y) + 2];
    S0 += e * R0;
    S1 += e * R1;
    S2 += e * R2;
    Sy0 += yc * e * R0;
    Syy0 += yc * yc * e * R0;
    Sy1 += yc * e * R1;
  }
  const std::complex<double> ax(0, -2 * PI / nx), ay(0, -2 * PI / ny);
  return {S0, ax * S1, ay * Sy0, ax * ax * S2, ay * ay * Syy0, ax * ay * Sy1};
}

// Maximum of |F(u, v)|² near (u0, v0) by damped Newton steps; false when it does not converge
// within ±1.5 bins (a neighbouring peak or a flat top), then the start is kept.
bool refine_peak(const PowerSpectrum& s, double& u, double& v, Transform& t) {
  const double u0 = u, v0 = v;
  for (int iter = 0; iter < 12; ++iter) {
    t = dft_at(s, u, v);
    const double gu = 2 * std::real(std::conj(t.F) * t.Fu), gv = 2 * std::real(std::conj(t.F) * t.Fv);
    const double huu = 2 * std::real(std::conj(t.Fu) * t.Fu + std::conj(t.F) * t.Fuu);
    const double hvv = 2 * std::real(std::conj(t.Fv) * t.Fv + std::conj(t.F) * t.Fvv);
    const double huv = 2 * std::real(std::conj(t.Fu) * t.Fv + std::conj(t.F) * t.Fuv);
    const double det = huu * hvv - huv * huv;
    if (!(huu < 0 && det > 0))
      return false;  // not inside a maximum's basin
    double du = -(hvv * gu - huv * gv) / det, dv = -(huu * gv - huv * gu) / det;
    const double step = std::hypot(du, dv);
    if (step > 0.25) {
      du *= 0.25 / step;
      dv *= 0.25 / step;
    }
    u += du;
    v += dv;
    if (std::hypot(u - u0, v - v0) > 1.5)
      return false;
    if (step < 1e-4)  // far below any peak's noise; t (one step back) serves for σ
      return true;
  }
  return false;
}

// Σ w²·{x, x², ...} moments of the periodic Hann window along one axis (coordinates from the
// centre, as dft_at): ⟨x⟩ and ⟨x²⟩ weighted by w².
void window_moments(int n, double& m1, double& m2) {
  double s0 = 0, s1 = 0, s2 = 0;
  for (int i = 0; i < n; ++i) {
    const double w = 0.5 - 0.5 * std::cos(2 * PI * i / n), w2 = w * w, x = i - n / 2;
    s0 += w2;
    s1 += w2 * x;
    s2 += w2 * x * x;
  }
  m1 = s1 / s0;
  m2 = s2 / s0;
}

}  // namespace

std::vector<Peak> find_peaks(const PowerSpectrum& s, const PeakSpec& spec) {
  const int nx = s.nx, ny = s.ny, cx = nx / 2, cy = ny / 2;
  if (nx < 16 || ny < 16 || s.power.size() != size_t(nx) * size_t(ny))
    fail("find_peaks: spectrum is ", nx, "×", ny, "; need at least 16×16");
  const double dk = std::min(s.dkx_invA, s.dky_invA);
  const float pmax = *std::max_element(s.power.begin(), s.power.end());
  if (!(pmax > 0))
    fail("find_peaks: the spectrum is zero everywhere (constant image): no peaks");
  const int sup = 3;     // a peak is the maximum within ±3 px: rejects window leakage
  const int line_r = 5;  // distance of the line test (below)
  const int last_row = std::min(ny - 1, cy + line_r + 2);
  const Background bg(s, last_row, pmax * 1e-30f);

  const double min_snr = spec.min_snr > 0 ? spec.min_snr : std::log(double(nx) * ny / 2 / 0.01);
  const float min_E = float(std::log(min_snr / std::log(2.0)));
  const double r_min = spec.d_max_A > 0 ? 1.0 / (spec.d_max_A * dk) : 4.0;
  const double r_max = spec.d_min_A > 0 ? 1.0 / (spec.d_min_A * dk) : 1e300;

  // Local maxima over (2·sup+1)² by a separable running maximum, ky ≥ 0 half only.
  const int rows = cy + sup + 1;
  std::vector<float> rowmax(size_t(rows) * size_t(nx), 0.f);
  for (int iy = 0; iy < rows; ++iy) {
    const float* p = &s.power[size_t(iy) * size_t(nx)];
    float* r = &rowmax[size_t(iy) * size_t(nx)];
    for (int ix = sup; ix < nx - sup; ++ix) {
      float m = p[ix - sup];
      for (int d = -sup + 1; d <= sup; ++d)
        m = std::max(m, p[ix + d]);
      r[ix] = m;
    }
  }
  // Mean excess over 3×3 (noise averaging for the line test).
  auto mean3 = [&](int ix, int iy) {
    float sum = 0;
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx)
        sum += bg.excess(ix + dx, iy + dy);
    return sum / 9;
  };
  // A lattice peak stands above the background on every line through it; a streak (scan
  // noise, edge leakage) does not: compare with the brightest of four lines at ±line_r px.
  const int dirs[4][2] = {{1, 0}, {0, 1}, {1, 1}, {1, -1}};
  auto line_background = [&](int ix, int iy) {
    float b = 0.f;
    for (const auto& d : dirs) {
      const int x1 = ix + d[0] * line_r, y1 = iy + d[1] * line_r;
      const int x2 = ix - d[0] * line_r, y2 = iy - d[1] * line_r;
      if (std::min({x1, x2, y1, y2}) < 1 || std::max(x1, x2) > nx - 2 || std::max(y1, y2) > last_row - 1)
        continue;
      b = std::max(b, 0.5f * (mean3(x1, y1) + mean3(x2, y2)));
    }
    return b;
  };

  std::vector<Peak> peaks;
  std::vector<double> bg_power;  // mean background power under each peak
  for (int iy = std::max(sup, line_r + 1); iy <= cy; ++iy)
    for (int ix = std::max(sup, line_r + 1); ix < nx - std::max(sup, line_r + 1); ++ix) {
      if (iy == cy && ix <= cx)
        continue;
      const size_t i = size_t(iy) * size_t(nx) + size_t(ix);
      const float pi = s.power[i];
      if (!(pi > 0))
        continue;
      bool is_max = true;
      for (int dy = -sup; dy <= sup && is_max; ++dy)
        is_max = rowmax[size_t(iy + dy) * size_t(nx) + size_t(ix)] <= pi;
      if (!is_max)
        continue;
      const double kx0 = (ix - cx) * s.dkx_invA, ky0 = (cy - iy) * s.dky_invA;
      const double r = std::hypot(kx0, ky0) / dk;
      if (r < r_min || r > r_max)
        continue;
      const float e = bg.excess(ix, iy);
      if (e < min_E || e - line_background(ix, iy) < min_E)
        continue;
      // Three-bin interpolation exact for a Hann-windowed tone (magnitudes |X| = √P):
      // δ = 2(|X₊| − |X₋|)/(|X₋| + 2|X₀| + |X₊|).
      auto offset = [](double pm, double p0, double pp) {
        const double am = std::sqrt(pm), a0 = std::sqrt(p0), ap = std::sqrt(pp);
        return std::clamp(2 * (ap - am) / (am + 2 * a0 + ap), -0.5, 0.5);
      };
      const auto P = [&](size_t j) { return double(s.power[j]); };
      const double fx = ix + offset(P(i - 1), P(i), P(i + 1));
      const double fy = iy + offset(P(i - size_t(nx)), P(i), P(i + size_t(nx)));
      Peak p;
      set_peak_position(p, s.kx_invA(fx), s.ky_invA(fy));
      // Speckle noise: mean = median / ln 2.
      const double bg_mean = double(pi) / std::exp(double(e)) / std::log(2.0);
      p.snr = double(pi) / bg_mean;
      double sum = 0;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx)
          sum += P(size_t(iy + dy) * size_t(nx) + size_t(ix + dx)) - bg_mean;
      p.intensity = sum;
      // A flat top (equal neighbours) is one peak.
      bool duplicate = false;
      for (const auto& q : peaks)
        duplicate |= std::hypot((q.kx_invA - p.kx_invA) / s.dkx_invA, (q.ky_invA - p.ky_invA) / s.dky_invA) < 1.5;
      if (!duplicate) {
        peaks.push_back(p);
        bg_power.push_back(bg_mean);
      }
    }
  std::vector<size_t> order(peaks.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return peaks[a].intensity > peaks[b].intensity; });
  if (spec.max_peaks > 0 && int(order.size()) > spec.max_peaks)
    order.resize(size_t(spec.max_peaks));
  double mx1, mx2, my1, my2;
  window_moments(nx, mx1, mx2);
  window_moments(ny, my1, my2);
  std::vector<Peak> out;
  for (size_t i : order) {
    Peak p = peaks[i];
    // Bins of the peak (kept in [0, 180)); the transform of a real image has |F(−k)| = |F(k)|.
    double u = p.kx_invA / s.dkx_invA, v = -p.ky_invA / s.dky_invA;
    Transform t;
    const bool refined = s.windowed.size() == s.power.size() && refine_peak(s, u, v, t);
    if (!refined) {
      u = p.kx_invA / s.dkx_invA;
      v = -p.ky_invA / s.dky_invA;
      if (s.windowed.size() == s.power.size())
        t = dft_at(s, u, v);
    }
    set_peak_position(p, u * s.dkx_invA, -v * s.dky_invA);  // refinement may cross 0°/180°
    // Uncertainty: background of mean power B per bin (unnormalised |N|² = B·nx·ny) moves the
    // gradient of |F|² by 2·Re(F̄·Z), Z = Σ −2πi(x − x_c)/n·noise, whose variance follows from
    // the window's w² moments about the signal's centroid x_c = −Im(F̄·F_u)·n/(2π|F|²); the
    // position then moves by H⁻¹·(that), H the Hessian of |F|².
    const double F2 = std::norm(t.F);
    if (refined && F2 > 0) {
      const double noise = bg_power[i] * double(nx) * double(ny);
      const double xc = -std::imag(std::conj(t.F) * t.Fu) * nx / (2 * PI * F2);
      const double yc = -std::imag(std::conj(t.F) * t.Fv) * ny / (2 * PI * F2);
      const double sxx = mx2 - 2 * xc * mx1 + xc * xc, syy = my2 - 2 * yc * my1 + yc * yc;
      const double sxy = (mx1 - xc) * (my1 - yc);
      const double a = 2 * F2 * noise * 4 * PI * PI;
      const double Cuu = a * sxx / (double(nx) * nx), Cvv = a * syy / (double(ny) * ny),
                   Cuv = a * sxy / (double(nx) * ny);
      const double huu = 2 * std::real(std::conj(t.Fu) * t.Fu + std::conj(t.F) * t.Fuu);
      const double hvv = 2 * std::real(std::conj(t.Fv) * t.Fv + std::conj(t.F) * t.Fvv);
      const double huv = 2 * std::real(std::conj(t.Fu) * t.Fv + std::conj(t.F) * t.Fuv);
      const double det = huu * hvv - huv * huv;
      // Hinv = [hvv −huv; −huv huu]/det; Σ = Hinv·C·Hinv.
      const double iuu = hvv / det, ivv = huu / det, iuv = -huv / det;
      const double tuu = iuu * Cuu + iuv * Cuv, tuv = iuu * Cuv + iuv * Cvv;
      const double tvu = iuv * Cuu + ivv * Cuv, tvv = iuv * Cuv + ivv * Cvv;
      const double Suu = tuu * iuu + tuv * iuv, Suv = tuu * iuv + tuv * ivv, Svv = tvu * iuv + tvv * ivv;
      // To k (kx = u·dkx, ky = −v·dky), then radial and tangential components.
      const double Kxx = Suu * s.dkx_invA * s.dkx_invA, Kyy = Svv * s.dky_invA * s.dky_invA,
                   Kxy = -Suv * s.dkx_invA * s.dky_invA;
      const double ex = p.kx_invA / p.g_invA, ey = p.ky_invA / p.g_invA;
      const double var_r = ex * ex * Kxx + 2 * ex * ey * Kxy + ey * ey * Kyy;
      const double var_t = ey * ey * Kxx - 2 * ex * ey * Kxy + ex * ex * Kyy;
      p.sigma_g_invA = std::sqrt(std::max(var_r, 0.0));
      p.sigma_d_A = p.sigma_g_invA / (p.g_invA * p.g_invA);
      p.sigma_angle_deg = std::sqrt(std::max(var_t, 0.0)) / p.g_invA / units::deg_to_rad;
    } else {
      // Not refined (flat top, overlapping peaks): half a reciprocal pixel, uniform.
      const double half = 0.5 * std::hypot(s.dkx_invA, s.dky_invA) / std::sqrt(3.0);
      p.sigma_g_invA = half;
      p.sigma_d_A = half / (p.g_invA * p.g_invA);
      p.sigma_angle_deg = half / p.g_invA / units::deg_to_rad;
    }
    out.push_back(p);
  }
  return out;
}

Image log_spectrum_image(const PowerSpectrum& s) {
  std::vector<float> tmp(s.power);
  auto mid = tmp.begin() + std::ptrdiff_t(tmp.size() / 2);
  std::nth_element(tmp.begin(), mid, tmp.end());
  const double median = std::max(double(*mid), 1e-30);
  Image out(s.nx, s.ny);
  out.pixel_size_invA = s.dkx_invA;
  out.pixel_size_y_invA = s.dky_invA;
  for (size_t i = 0; i < s.power.size(); ++i)
    out.pixels[i] = float(std::log1p(double(s.power[i]) / median));
  return out;
}

}  // namespace epitem

namespace epitem {

std::string peaks_csv(const std::vector<Peak>& peaks) {
  std::string out = "kx,ky,g_inv_A,d_A,angle_deg,intensity,snr,sigma_d_A,sigma_angle_deg\n";
  char buf[256];
  for (const auto& p : peaks) {
    std::snprintf(buf, sizeof buf, "%.8g,%.8g,%.8g,%.7g,%.5f,%.6g,%.4g,%.3g,%.3g\n", p.kx_invA, p.ky_invA,
                  p.g_invA, p.d_A, p.angle_deg, p.intensity, p.snr, p.sigma_d_A, p.sigma_angle_deg);
    out += buf;
  }
  return out;
}

Canvas spectrum_canvas(const PowerSpectrum& s, const std::vector<Peak>& peaks) {
  const Image full = log_spectrum_image(s);
  // Show the centre out to 1.3× the farthest peak, in whole pixels, binned to ≤ 1024 px.
  double r_px = std::min(s.nx, s.ny) / 2.0;
  if (!peaks.empty()) {
    double far = 0;
    for (const auto& p : peaks)
      far = std::max({far, std::abs(p.kx_invA) / s.dkx_invA, std::abs(p.ky_invA) / s.dky_invA});
    r_px = std::min(r_px, std::max(32.0, 1.3 * far));
  }
  const int half = int(std::ceil(r_px));
  const int cx = s.nx / 2, cy = s.ny / 2;
  const int x0 = std::max(0, cx - half), y0 = std::max(0, cy - half);
  const int w = std::min(s.nx, cx + half) - x0, h = std::min(s.ny, cy + half) - y0;
  const int bin = std::max(1, (std::max(w, h) + 1023) / 1024);
  Image view(w / bin, h / bin);
  for (int y = 0; y < view.ny; ++y)
    for (int x = 0; x < view.nx; ++x) {
      float m = -1e30f;  // max over the bin keeps sharp peaks visible
      for (int dy = 0; dy < bin; ++dy)
        for (int dx = 0; dx < bin; ++dx)
          m = std::max(m, full.at(x0 + x * bin + dx, y0 + y * bin + dy));
      view.at(x, y) = m;
    }
  Contrast contrast;
  contrast.low_percentile = 1;
  contrast.high_percentile = 99.9;
  Canvas c = canvas_from_image(view, contrast);
  const int zoom = std::max(1, 512 / std::max(view.nx, view.ny));
  if (zoom > 1)
    c = upscale(c, zoom);
  const double px_per_col = double(zoom) / bin;
  char label[64];
  for (size_t i = 0; i < peaks.size(); ++i) {
    const auto& p = peaks[i];
    for (int sign : {1, -1}) {
      const double col = cx + sign * p.kx_invA / s.dkx_invA, row = cy - sign * p.ky_invA / s.dky_invA;
      const double X = (col - x0 + 0.5) * px_per_col, Y = (row - y0 + 0.5) * px_per_col;
      c.draw_circle(X, Y, 7, i < 9 ? colors::yellow : colors::cyan, 1);
      if (sign == 1) {
        std::snprintf(label, sizeof label, "%zu: %.3f A", i + 1, p.d_A);
        c.draw_label(int(X) + 9, int(Y) - 4, label, colors::yellow, 1);
      }
    }
  }
  // Scale bar: 1/nm in display pixels.
  const double px_per_inv_nm = px_per_col / s.dkx_invA / units::nm;
  double bar = 1;
  while (bar * px_per_inv_nm < c.width() / 8.0)
    bar *= 2;
  std::snprintf(label, sizeof label, "%g 1/nm", bar);
  c.draw_scale_bar(px_per_inv_nm, bar, label);
  return c;
}

}  // namespace epitem
