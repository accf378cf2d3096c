// Synthetic HAADF-like lattice movies for the flow and compare tests: Gaussian atomic columns on
// an oblique lattice, a stage drift that moves everything, optionally a particle (its own
// lattice, inside a soft disc) translating over the matrix, a slow illumination gradient and
// Poisson shot noise at a given dose. Rendered analytically at each frame's positions, so the
// true shift of every pixel is known exactly.
#pragma once
#include <cmath>
#include <random>
#include <vector>

#include "epitem/image.hpp"

namespace epitem::testing {

struct LatticeMovie {
  int n = 128, frames = 6;
  double pixel_A = 0.5;
  double a1x = 8.3, a1y = 0.0, a2x = 2.1, a2y = 7.6;  ///< matrix lattice vectors [px]
  double column_sigma_px = 1.4;
  std::vector<double> drift_x_px, drift_y_px;  ///< per-frame stage drift increments (frame 0: 0)
  bool particle = false;
  double particle_vx = 0, particle_vy = 0;     ///< particle velocity [px/frame], in the sample
  double particle_cx = 64, particle_cy = 64, particle_r = 26;
  double dose = 60;                            ///< mean counts per pixel of the brightest column
  unsigned seed = 1;
};

/// Position-dependent intensity (before noise) of the sample at sample coordinates (u, v).
inline double lattice_intensity(const LatticeMovie& m, double u, double v, double px_t, double py_t) {
  auto columns = [](double x, double y, double ax, double ay, double bx, double by, double s) {
    // Fractional coordinates, then the nearest columns (3×3 cells cover a σ ≤ 2 px column).
    const double det = ax * by - ay * bx;
    const double f1 = (x * by - y * bx) / det, f2 = (ax * y - ay * x) / det;
    const double i0 = std::floor(f1), j0 = std::floor(f2);
    double sum = 0;
    for (int di = -1; di <= 2; ++di)
      for (int dj = -1; dj <= 2; ++dj) {
        const double cx = (i0 + di) * ax + (j0 + dj) * bx, cy = (i0 + di) * ay + (j0 + dj) * by;
        const double r2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
        sum += std::exp(-r2 / (2 * s * s));
      }
    return sum;
  };
  double value = 0.15 + columns(u, v, m.a1x, m.a1y, m.a2x, m.a2y, m.column_sigma_px);
  if (m.particle) {
    // The particle: a rotated, denser lattice of brighter columns that moves with it.
    const double pu = u - m.particle_cx - px_t, pv = v - m.particle_cy - py_t;
    const double w = 0.5 * (1 - std::tanh((std::hypot(pu, pv) - m.particle_r) / 2.0));
    const double p = 0.3 + 1.3 * columns(pu, pv, 6.1, 2.3, -1.9, 6.4, 1.2);
    value = (1 - w) * value + w * p;
  }
  return value;
}

/// The movie and, per frame, the cumulative stage drift [px] (frame 0 at 0).
inline std::vector<Image> render_lattice_movie(const LatticeMovie& m, std::vector<double>* cum_x = nullptr,
                                               std::vector<double>* cum_y = nullptr) {
  std::mt19937 rng(m.seed);
  std::vector<Image> movie;
  double dx = 0, dy = 0;
  for (int t = 0; t < m.frames; ++t) {
    if (t > 0 && size_t(t) < m.drift_x_px.size()) {
      dx += m.drift_x_px[size_t(t)];
      dy += m.drift_y_px[size_t(t)];
    }
    if (cum_x) cum_x->push_back(dx);
    if (cum_y) cum_y->push_back(dy);
    Image im(m.n, m.n);
    im.pixel_size_A = m.pixel_A;
    for (int y = 0; y < m.n; ++y)
      for (int x = 0; x < m.n; ++x) {
        const double u = x - dx, v = y - dy;  // sample coordinates
        // Illumination falls off by 20 % across the frame (fixed to the beam, not the sample).
        const double illumination = 1.0 - 0.2 * (x + 0.5 * y) / (1.5 * m.n);
        const double mean = m.dose * illumination * lattice_intensity(m, u, v, m.particle_vx * t, m.particle_vy * t);
        im.at(x, y) = float(std::poisson_distribution<int>(mean)(rng));
      }
    movie.push_back(std::move(im));
  }
  return movie;
}

/// Random per-frame drift increments, uniform in ±max_px on each axis.
inline void random_drift(LatticeMovie& m, double max_px, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(-max_px, max_px);
  m.drift_x_px.assign(size_t(m.frames), 0);
  m.drift_y_px.assign(size_t(m.frames), 0);
  for (int t = 1; t < m.frames; ++t) {
    m.drift_x_px[size_t(t)] = u(rng);
    m.drift_y_px[size_t(t)] = u(rng);
  }
}

}  // namespace epitem::testing
