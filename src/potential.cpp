#include "epitem/potential.hpp"

#include <algorithm>
#include <cmath>

#include "epitem/error.hpp"
#include "epitem/progress.hpp"
#include "epitem/units.hpp"

namespace epitem {

namespace {

// Gaussian gridding on a grid oversampled R = 2 (Greengard & Lee 2004): the aliased image of
// frequency u (cycles per fine pixel, |u| ≤ 1/4) at u ± 1 is down by exp(−π²s²) = 1e-7 for
// s² = 1.633 fine px²; truncating the kernel at ±8 px leaves exp(−64/(2s²)) = 3e-9.
constexpr int OVERSAMPLING = 2;
constexpr double GAUSS_S2 = 1.633;
constexpr int HALF_WIDTH = 8;
constexpr int WIDTH = 2 * HALF_WIDTH;

// Fourier transform of the kernel exp(−d²/2s²) at u cycles/pixel: s√(2π)·exp(−2π²s²u²).
double kernel_ft(double u) {
  return std::sqrt(2 * PI * GAUSS_S2) * std::exp(-2 * PI * PI * GAUSS_S2 * u * u);
}

int signed_index(int i, int n) { return i < (n + 1) / 2 ? i : i - n; }

// Kernel weights and wrapped fine indices of the WIDTH points around coordinate xi (fine px).
void kernel_1d(double xi, int m, float* w, int* idx) {
  xi -= std::floor(xi / m) * m;
  const double c = std::floor(xi);
  const double delta = xi - c;
  const int ci = int(c);
  for (int i = 0; i < WIDTH; ++i) {
    const double d = double(i - HALF_WIDTH + 1) - delta;
    w[i] = float(std::exp(-d * d / (2 * GAUSS_S2)));
    int p = ci - HALF_WIDTH + 1 + i;
    p %= m;
    idx[i] = p < 0 ? p + m : p;
  }
}

}  // namespace

AlignedVector<cfloat> structure_factor_direct(const Grid& grid, const std::vector<SliceAtom>& atoms) {
  AlignedVector<cfloat> out(grid.size(), cfloat(0.f, 0.f));
  std::vector<std::complex<double>> ex(std::size_t(grid.nx)), ey(std::size_t(grid.ny));
  std::vector<std::complex<double>> acc(grid.size(), 0.0);
  for (const SliceAtom& a : atoms) {
    for (int ix = 0; ix < grid.nx; ++ix)
      ex[ix] = std::polar(1.0, -2 * PI * grid.kx_invA(ix) * a.x_A);
    for (int iy = 0; iy < grid.ny; ++iy)
      ey[iy] = a.weight * std::polar(1.0, -2 * PI * grid.ky_invA(iy) * a.y_A);
    for (int iy = 0; iy < grid.ny; ++iy)
      for (int ix = 0; ix < grid.nx; ++ix)
        acc[std::size_t(iy) * grid.nx + ix] += ey[iy] * ex[ix];
  }
  for (std::size_t i = 0; i < acc.size(); ++i)
    out[i] = cfloat(acc[i]);
  return out;
}

SlicePotential::SlicePotential(const Grid& grid, std::vector<int> species, ScatteringTable table,
                               int threads, FftRigor rigor)
    : grid_(grid), species_(std::move(species)), threads_(threads > 0 ? threads : default_thread_count()),
      mx_(OVERSAMPLING * grid.nx), my_(OVERSAMPLING * grid.ny),
      fine_fft_(mx_, my_, threads_, FftRigor::Estimate), fft_(grid.nx, grid.ny, threads_, rigor) {
  fine_fft_.prepare();
  fft_.prepare();
  std::sort(species_.begin(), species_.end());
  species_.erase(std::unique(species_.begin(), species_.end()), species_.end());
  const int nx = grid.nx, ny = grid.ny;
  gauss_x_.resize(nx);
  gauss_y_.resize(ny);
  for (int ix = 0; ix < nx; ++ix)
    gauss_x_[ix] = float(kernel_ft(double(signed_index(ix, nx)) / mx_));
  for (int iy = 0; iy < ny; ++iy)
    gauss_y_[iy] = float(kernel_ft(double(signed_index(iy, ny)) / my_));
  const double prefactor = POTENTIAL_PREFACTOR_VA2 / (grid.extent_x_A * grid.extent_y_A);
  // f_e depends on |k| only: evaluate on the non-negative quadrant, mirror to the others.
  const int hx = nx / 2 + 1, hy = ny / 2 + 1;
  std::vector<double> f(std::size_t(hx) * hy);
  for (int Z : species_) {
    for (int j = 0; j < hy; ++j)
      for (int i = 0; i < hx; ++i)
        f[std::size_t(j) * hx + i] =
            scattering_factor_A(Z, std::hypot(i / grid.extent_x_A, j / grid.extent_y_A), table);
    AlignedVector<float> table_z(grid.size());
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        const double fz = f[std::size_t(std::abs(signed_index(iy, ny))) * hx + std::abs(signed_index(ix, nx))];
        table_z[std::size_t(iy) * nx + ix] = float(prefactor * fz / (double(gauss_x_[ix]) * gauss_y_[iy]));
      }
    form_.push_back(std::move(table_z));
  }
  const double kb2 = std::pow(grid.band_limit_invA(), 2);
  band_.resize(grid.size());
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      const double k2 = std::pow(grid.kx_invA(ix), 2) + std::pow(grid.ky_invA(iy), 2);
      band_[std::size_t(iy) * nx + ix] = k2 <= kb2 ? 1 : 0;
    }
  fine_.assign(std::size_t(mx_) * my_, cfloat(0.f, 0.f));
  spectrum_.assign(grid.size(), cfloat(0.f, 0.f));
}

double SlicePotential::memory_bytes(const Grid& grid, int n_species) {
  const double n = double(grid.size());
  return n * (OVERSAMPLING * OVERSAMPLING * 8.0 + 8.0 + 1.0 + 4.0 * n_species);
}

int SlicePotential::species_index(int Z) const {
  auto it = std::lower_bound(species_.begin(), species_.end(), Z);
  if (it == species_.end() || *it != Z)
    fail("SlicePotential: element Z = ", Z, " was not declared when the potential was set up");
  return int(it - species_.begin());
}

// Gaussian-spreads atoms of species_a onto the real part and species_b (−1: none) onto the
// imaginary part of the fine grid, then transforms it.
void SlicePotential::spread(const std::vector<SliceAtom>& atoms, int species_a, int species_b) {
  std::fill(fine_.begin(), fine_.end(), cfloat(0.f, 0.f));
  float* g = reinterpret_cast<float*>(fine_.data());
  const double hx = grid_.extent_x_A / mx_, hy = grid_.extent_y_A / my_;
  float wx[WIDTH], wy[WIDTH];
  int ix[WIDTH], iy[WIDTH];
  for (const SliceAtom& a : atoms) {
    const int part = a.Z == species_a ? 0 : (a.Z == species_b ? 1 : -1);
    if (part < 0)
      continue;
    kernel_1d(a.x_A / hx, mx_, wx, ix);
    kernel_1d(a.y_A / hy, my_, wy, iy);
    for (int j = 0; j < WIDTH; ++j) {
      const float wj = float(a.weight) * wy[j];
      float* row = g + 2 * std::size_t(iy[j]) * mx_ + part;
      for (int i = 0; i < WIDTH; ++i)
        row[2 * ix[i]] += wj * wx[i];
    }
  }
  fine_fft_.forward(fine_.data());
}

AlignedVector<cfloat> SlicePotential::structure_factor(const std::vector<SliceAtom>& atoms) {
  AlignedVector<cfloat> out(grid_.size());
  if (atoms.empty()) {
    std::fill(out.begin(), out.end(), cfloat(0.f, 0.f));
    return out;
  }
  const int Z = atoms.front().Z;
  for (const SliceAtom& a : atoms)
    if (a.Z != Z)
      fail("structure_factor: atoms of one species expected");
  spread(atoms, Z, -1);
  const int nx = grid_.nx, ny = grid_.ny;
  for (int iy = 0; iy < ny; ++iy) {
    const int fy = (signed_index(iy, ny) + my_) % my_;
    for (int ix = 0; ix < nx; ++ix) {
      const int fx = (signed_index(ix, nx) + mx_) % mx_;
      out[std::size_t(iy) * nx + ix] = fine_[std::size_t(fy) * mx_ + fx] / (gauss_x_[ix] * gauss_y_[iy]);
    }
  }
  return out;
}

void SlicePotential::potential_spectrum(const std::vector<SliceAtom>& atoms) {
  std::fill(spectrum_.begin(), spectrum_.end(), cfloat(0.f, 0.f));
  std::vector<int> present;
  for (const SliceAtom& a : atoms)
    present.push_back(species_index(a.Z));
  std::sort(present.begin(), present.end());
  present.erase(std::unique(present.begin(), present.end()), present.end());
  const int nx = grid_.nx, ny = grid_.ny;
  // Two real species share one complex FFT: X = S_a + i S_b with S real-space-real, so
  // S_a(k) = (X(k) + X*(−k))/2 and S_b(k) = (X(k) − X*(−k))/2i.
  for (std::size_t p = 0; p < present.size(); p += 2) {
    const int a = present[p];
    const int b = p + 1 < present.size() ? present[p + 1] : -1;
    spread(atoms, species_[a], b >= 0 ? species_[b] : -1);
    const float* fa = form_[a].data();
    const float* fb = b >= 0 ? form_[b].data() : nullptr;
    parallel_for(std::size_t(ny), threads_, [&](std::size_t y0, std::size_t y1) {
      for (int iy = int(y0); iy < int(y1); ++iy) {
        const int sy = signed_index(iy, ny);
        const cfloat* row = fine_.data() + std::size_t((sy + my_) % my_) * mx_;
        const cfloat* mrow = fine_.data() + std::size_t((-sy + my_) % my_) * mx_;
        cfloat* out = spectrum_.data() + std::size_t(iy) * nx;
        const std::size_t base = std::size_t(iy) * nx;
        for (int ix = 0; ix < nx; ++ix) {
          const int sx = signed_index(ix, nx);
          const cfloat x = row[sx >= 0 ? sx : sx + mx_];
          if (!fb) {
            out[ix] += fa[base + ix] * x;
            continue;
          }
          const cfloat xm = std::conj(mrow[sx > 0 ? mx_ - sx : -sx]);
          const cfloat sa = 0.5f * (x + xm);
          const cfloat d = 0.5f * (x - xm);
          const cfloat sb(d.imag(), -d.real());  // d / i
          out[ix] += fa[base + ix] * sa + fb[base + ix] * sb;
        }
      }
    });
  }
  // v_z(r_p) = Σ_k C(k) e^{+2πi k·r_p}: the unnormalised inverse DFT of C.
  fft_.inverse(spectrum_.data(), false);
}

std::vector<float> SlicePotential::projected_potential_VA(const std::vector<SliceAtom>& atoms) {
  potential_spectrum(atoms);
  std::vector<float> v(grid_.size());
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = spectrum_[i].real();
  return v;
}

void SlicePotential::transmission(const std::vector<SliceAtom>& atoms, double sigma_rad_per_VA, cfloat* t) {
  potential_spectrum(atoms);
  const float sigma = float(sigma_rad_per_VA);
  const std::size_t n = grid_.size();
  parallel_for(n, threads_, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) {
      const float phase = sigma * spectrum_[i].real();
      t[i] = cfloat(std::cos(phase), std::sin(phase));
    }
  });
  fft_.forward(t);
  const float inv_n = 1.f / float(n);
  parallel_for(n, threads_, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i)
      t[i] = band_[i] ? t[i] * inv_n : cfloat(0.f, 0.f);
  });
  fft_.inverse(t, false);
}

}  // namespace epitem
