#include "epitem/potential.hpp"

#include <algorithm>
#include <cmath>

#include "epitem/error.hpp"
#include "epitem/progress.hpp"
#include "epitem/units.hpp"

namespace epitem {

namespace {

// Gridding on a grid oversampled ≥ 1.5 with the kernel φ(d) = exp(β(√(1 − (2d/W)²) − 1)),
// |d| < W/2 fine pixels. Frequencies |u| ≤ u_p = (n/2)/m cycles per fine pixel are kept; their
// aliases start at 1 − u_p. W = 10 and β = 0.97·π·W·(1 − u_p) put the aliases at ≲ 1e-7 of
// Σ|w| (Barnett et al. 2019 §4). The deconvolution 1/ĝ reaches 15 per axis at u_p, so float32
// rounding of the FFT (~1e-8 of Σ|w|) grows to ≲ 2e-6 in the corners of the spectrum. Less
// oversampling trades FFT size for that growth: at 1.25 it is 250 per axis, 6e4 in a corner,
// and single-precision structure factors there would be off by 1e-4. Spreading costs ~100
// flops per atom, nothing next to the FFT.
constexpr double OVERSAMPLING = 1.5;
constexpr int WIDTH = 10;
constexpr int HALF_WIDTH = WIDTH / 2;
constexpr double BETA_FACTOR = 0.97;

int signed_index(int i, int n) { return i < (n + 1) / 2 ? i : i - n; }

// Even (row starts stay aligned for FFTW), FFT-friendly, ≥ 1.5 n and ≥ n + 2 (room for ±n/2).
int fine_size(int n) {
  int m = next_fft_size(std::max(int(std::ceil(OVERSAMPLING * n)), n + 2));
  while (m % 2 != 0)
    m = next_fft_size(m + 1);
  return m;
}

// Row pitch of the fine grid [complex values]. The column transforms step through memory by it,
// and a pitch of a multiple of 4 KiB (1536 values at 1024²) maps a column's values onto the same
// few cache sets: the column pass took 3x the row pass (18 vs 5.4 ms at 1024²; 5.3 ms padded).
// A multiple of 4 values (32 bytes, FFTW's SIMD alignment) plus two cache lines.
int fine_pitch(int m) { return (m + 3) / 4 * 4 + 16; }

struct Kernel {
  double beta = 0;
  double operator()(double d) const {
    const double z = 2 * d / WIDTH;
    return z * z < 1 ? std::exp(beta * (std::sqrt(1 - z * z) - 1)) : 0.0;
  }
  // ĝ(u) = ∫ φ(x) e^{−2πiux} dx for u cycles per fine pixel; trapezoid rule on [0, W/2], which is
  // spectrally accurate here (φ and its derivatives vanish to e^{−β} ≈ 1e-10 at the ends).
  double transform(double u) const {
    constexpr int STEPS = 20 * HALF_WIDTH;
    const double h = double(HALF_WIDTH) / STEPS;
    double sum = 0.5 * (*this)(0.0);
    for (int i = 1; i < STEPS; ++i)
      sum += (*this)(i * h) * std::cos(2 * PI * u * i * h);
    return 2 * h * sum;
  }
};

Kernel make_kernel(int nx, int ny, int mx, int my) {
  const double u_p = std::max(double(nx / 2) / mx, double(ny / 2) / my);
  return Kernel{BETA_FACTOR * PI * WIDTH * (1 - u_p)};
}

// 1/ĝ at |s| = 0 … n/2 (signed grid frequency index s on the fine grid of m points).
std::vector<float> deconvolution(const Kernel& k, int n, int m) {
  std::vector<float> d(std::size_t(n / 2 + 1));
  for (int s = 0; s <= n / 2; ++s)
    d[std::size_t(s)] = float(1.0 / k.transform(double(s) / m));
  return d;
}

// Kernel weights and wrapped fine indices of the WIDTH points around coordinate xi (fine px).
void kernel_1d(const Kernel& k, double xi, int m, float* w, int* idx) {
  xi -= std::floor(xi / m) * m;
  const double c = std::floor(xi);
  const double delta = xi - c;
  const int ci = int(c);
  for (int i = 0; i < WIDTH; ++i) {
    w[i] = float(k(double(i - HALF_WIDTH + 1) - delta));
    int p = (ci - HALF_WIDTH + 1 + i) % m;
    idx[i] = p < 0 ? p + m : p;
  }
}

// sin and cos of x (|x| ≲ 1e4) to ~1e-7: reduction by π/2 in three parts (Cody & Waite) and
// Cephes' minimax polynomials on [−π/4, π/4]. Branch-free, so the loop over a grid vectorises;
// libm's sincosf costs as much as the FFTs of a slice.
inline void sin_cos(float x, float& s, float& c) {
  const float k = (x * 0.63661977236758134f + 12582912.f) - 12582912.f;  // round to nearest
  float r = x - k * 1.5703125f;
  r -= k * 4.837512969970703125e-4f;
  r -= k * 7.54978995489188216e-8f;
  const float z = r * r;
  const float sp = r + r * z * (-1.6666654611e-1f + z * (8.3321608736e-3f + z * -1.9515295891e-4f));
  const float cp = 1.f - 0.5f * z + z * z * (4.166664568298827e-2f + z * (-1.388731625493765e-3f + z * 2.443315711809948e-5f));
  const int q = int(k);
  const float sn = (q & 1) ? cp : sp;
  const float cs = (q & 1) ? sp : cp;
  s = (q & 2) ? -sn : sn;
  c = ((q + 1) & 2) ? -cs : cs;
}

// t[i] = exp(iσ v[i]) for i in [b, e), interleaved (re, im). Also compiled for AVX2 (chosen at
// run time): twice the SSE2 width, same operations and no FMA, so the same bits on any machine.
__attribute__((target_clones("avx2", "default")))
void exp_i_grid(const float* v, float sigma, float* out, std::size_t b, std::size_t e) {
  for (std::size_t i = b; i < e; ++i) {
    float s, c;
    sin_cos(sigma * v[i], s, c);
    out[2 * i] = c;
    out[2 * i + 1] = s;
  }
}

// One row of the Hermitian half spectrum from the transform of two packed species (see
// SlicePotential::potential): for ix in [b, e), with x = row[ix] and xm = conj of the value at
// m[−ix] (the mirrored column), out[ix] (+)= fa·(x + xm)/2 + fb·(x − xm)/2i; fb may be null.
// Plain floats so that it vectorises (the std::complex form did not); AVX2 clone as above.
__attribute__((target_clones("avx2", "default")))
void unpack_row(const float* row, const float* m, const float* fa, const float* fb, float* out, int b, int e,
                bool add) {
  for (int i = b; i < e; ++i) {
    const float xr = row[2 * i], xi = row[2 * i + 1], mr = m[-2 * i], mi = -m[-2 * i + 1];
    const float sa_r = 0.5f * (xr + mr), sa_i = 0.5f * (xi + mi);
    float o_r = fa[i] * sa_r, o_i = fa[i] * sa_i;
    if (fb) {
      const float d_r = 0.5f * (xr - mr), d_i = 0.5f * (xi - mi);
      o_r = o_r + fb[i] * d_i;
      o_i = o_i + fb[i] * -d_r;
    }
    out[2 * i] = add ? out[2 * i] + o_r : o_r;
    out[2 * i + 1] = add ? out[2 * i + 1] + o_i : o_i;
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
      mx_(fine_size(grid.nx)), my_(fine_size(grid.ny)),
      pitch_(fine_pitch(mx_)),
      fine_rows_(mx_, my_, 1, pitch_, threads_, rigor),
      fine_cols_lo_(my_, grid.nx / 2 + 1, pitch_, 1, threads_, rigor),
      fine_cols_hi_(my_, (grid.nx / 2 + 1) / 2 * 2, pitch_, 1, threads_, rigor),
      to_real_(grid.nx, grid.ny, threads_, rigor), band_(make_band_rows(grid)),
      band_fft_(grid, band_, threads_), half_nx_(grid.nx / 2 + 1) {
  std::sort(species_.begin(), species_.end());
  species_.erase(std::unique(species_.begin(), species_.end()), species_.end());
  const int nx = grid.nx, ny = grid.ny;
  const Kernel kernel = make_kernel(nx, ny, mx_, my_);
  deconv_x_ = deconvolution(kernel, nx, mx_);
  deconv_y_ = deconvolution(kernel, ny, my_);
  const double prefactor = POTENTIAL_PREFACTOR_VA2 / (grid.extent_x_A * grid.extent_y_A);
  // f_e depends on |k| only: evaluate on the non-negative quadrant, mirror to negative ky.
  const int hy = ny / 2 + 1;
  std::vector<double> f(std::size_t(half_nx_) * hy);
  for (int Z : species_) {
    for (int j = 0; j < hy; ++j)
      for (int i = 0; i < half_nx_; ++i)
        f[std::size_t(j) * half_nx_ + i] =
            scattering_factor_A(Z, std::hypot(i / grid.extent_x_A, j / grid.extent_y_A), table);
    AlignedVector<float> table_z(std::size_t(half_nx_) * ny);
    for (int iy = 0; iy < ny; ++iy) {
      const int ay = std::abs(signed_index(iy, ny));
      for (int ix = 0; ix < half_nx_; ++ix)
        table_z[std::size_t(iy) * half_nx_ + ix] =
            float(prefactor * f[std::size_t(ay) * half_nx_ + ix] * deconv_x_[ix] * deconv_y_[ay]);
    }
    form_.push_back(std::move(table_z));
  }
  fine_.assign(std::size_t(pitch_) * my_, cfloat(0.f, 0.f));
  half_.assign(std::size_t(half_nx_) * ny, cfloat(0.f, 0.f));
  v_.assign(grid.size(), 0.f);
}

double SlicePotential::memory_bytes(const Grid& grid, int n_species) {
  const double n = double(grid.size());
  const double fine = double(fine_pitch(fine_size(grid.nx))) * fine_size(grid.ny);
  return fine * 8.0 + n * (4.0 + 4.0 + 2.0 * n_species);
}

int SlicePotential::species_index(int Z) const {
  auto it = std::lower_bound(species_.begin(), species_.end(), Z);
  if (it == species_.end() || *it != Z)
    fail("SlicePotential: element Z = ", Z, " was not declared when the potential was set up");
  return int(it - species_.begin());
}

// Spreads atoms of species_a onto the real part and species_b (−1: none) onto the imaginary
// part of the fine grid, then transforms it: all rows (contiguous), then only the columns
// |kx| ≤ nx/2 (strided, the slower kind: 1/3 of them are skipped).
void SlicePotential::spread(const std::vector<SliceAtom>& atoms, int species_a, int species_b) {
  std::fill(fine_.begin(), fine_.end(), cfloat(0.f, 0.f));
  const Kernel kernel = make_kernel(grid_.nx, grid_.ny, mx_, my_);
  float* g = reinterpret_cast<float*>(fine_.data());
  const double hx = grid_.extent_x_A / mx_, hy = grid_.extent_y_A / my_;
  float wx[WIDTH], wy[WIDTH];
  int ix[WIDTH], iy[WIDTH];
  for (const SliceAtom& a : atoms) {
    const int part = a.Z == species_a ? 0 : (a.Z == species_b ? 1 : -1);
    if (part < 0)
      continue;
    kernel_1d(kernel, a.x_A / hx, mx_, wx, ix);
    kernel_1d(kernel, a.y_A / hy, my_, wy, iy);
    for (int j = 0; j < WIDTH; ++j) {
      const float wj = float(a.weight) * wy[j];
      float* row = g + 2 * std::size_t(iy[j]) * pitch_ + part;
      for (int i = 0; i < WIDTH; ++i)
        row[2 * ix[i]] += wj * wx[i];
    }
  }
  fine_rows_.forward(fine_.data());
  fine_cols_lo_.forward(fine_.data());
  // Columns mx − nx/2 … mx − 1, from an even column (FFTW's alignment): maybe one extra.
  fine_cols_hi_.forward(fine_.data() + std::size_t(mx_ - (grid_.nx / 2 + 1) / 2 * 2));
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
    const int sy = signed_index(iy, ny);
    for (int ix = 0; ix < nx; ++ix) {
      const int sx = signed_index(ix, nx);
      out[std::size_t(iy) * nx + ix] = fine_[std::size_t((sy + my_) % my_) * pitch_ + (sx + mx_) % mx_] *
                                       (deconv_x_[std::size_t(std::abs(sx))] * deconv_y_[std::size_t(std::abs(sy))]);
    }
  }
  return out;
}

// v_z = Re Σ_k C(k) e^{+2πi k·r} with C(k) = Σ_s form_s(k)·S_s(k) over the grid's signed k. The
// real part equals the inverse of the Hermitian half H(k) = (C(k) + C*(−k mod n))/2, which is
// C(k) itself except on the Nyquist row/column of an even grid, where −k wraps onto the alias
// at +n/2: there H averages the two (the fine grid has both).
void SlicePotential::potential(const std::vector<SliceAtom>& atoms) {
  std::vector<int> present;
  for (const SliceAtom& a : atoms)
    present.push_back(species_index(a.Z));
  std::sort(present.begin(), present.end());
  present.erase(std::unique(present.begin(), present.end()), present.end());
  if (present.empty())
    std::fill(half_.begin(), half_.end(), cfloat(0.f, 0.f));
  const int nx = grid_.nx, ny = grid_.ny, hx = half_nx_, mx = mx_, my = my_;
  const std::size_t pitch = std::size_t(pitch_);
  const bool nyquist_x = nx % 2 == 0;
  // Two real species share one complex FFT: X = S_a + i S_b with S real-space-real, so
  // S_a(k) = (X(k) + X*(−k))/2 and S_b(k) = (X(k) − X*(−k))/2i.
  for (std::size_t p = 0; p < present.size(); p += 2) {
    const int a = present[p];
    const int b = p + 1 < present.size() ? present[p + 1] : -1;
    const bool add = p > 0;  // the first pair writes, later pairs add
    spread(atoms, species_[a], b >= 0 ? species_[b] : -1);
    const cfloat* fine = fine_.data();
    auto value = [&](int sx, int sy, float fa, float fb) {  // fa·S_a + fb·S_b at signed (sx, sy)
      const cfloat x = fine[std::size_t((sy + my) % my) * pitch + std::size_t((sx + mx) % mx)];
      const cfloat xm = std::conj(fine[std::size_t((my - sy) % my) * pitch + std::size_t((mx - sx) % mx)]);
      const cfloat d = 0.5f * (x - xm);
      return fa * 0.5f * (x + xm) + fb * cfloat(d.imag(), -d.real());
    };
    const float* fa_table = form_[std::size_t(a)].data();
    const float* fb_table = b >= 0 ? form_[std::size_t(b)].data() : nullptr;
    parallel_for(std::size_t(ny), threads_, [&](std::size_t y0, std::size_t y1) {
      for (int iy = int(y0); iy < int(y1); ++iy) {
        const int sy = signed_index(iy, ny);
        const bool nyquist_row = ny % 2 == 0 && sy == -ny / 2;
        const float* fa = fa_table + std::size_t(iy) * hx;
        const float* fb = fb_table ? fb_table + std::size_t(iy) * hx : nullptr;
        cfloat* out = half_.data() + std::size_t(iy) * hx;
        const cfloat* row = fine + std::size_t((sy + my) % my) * pitch;
        const cfloat* mrow = fine + std::size_t((my - sy) % my) * pitch;
        const int plain_end = nyquist_row ? 0 : (nyquist_x ? hx - 1 : hx);
        const float* r = reinterpret_cast<const float*>(row);
        const float* m = reinterpret_cast<const float*>(mrow);
        float* o = reinterpret_cast<float*>(out);
        unpack_row(r, m, fa, fb, o, 0, std::min(1, plain_end), add);  // −0 is column 0 itself
        unpack_row(r, m + 2 * std::size_t(mx), fa, fb, o, 1, plain_end, add);
        for (int ix = plain_end; ix < hx; ++ix) {
          // The grid's own k has −n/2 in a Nyquist component; −(−k mod n) has +n/2 there.
          const int gx = nyquist_x && ix == nx / 2 ? -ix : ix;
          const float wa = fa[ix], wb = fb ? fb[ix] : 0.f;
          const cfloat h = 0.5f * (value(gx, sy, wa, wb) + value(ix, nyquist_row ? -sy : sy, wa, wb));
          out[ix] = add ? out[ix] + h : h;
        }
      }
    });
  }
  to_real_.execute(half_.data(), v_.data());
}

std::vector<float> SlicePotential::projected_potential_VA(const std::vector<SliceAtom>& atoms) {
  potential(atoms);
  return std::vector<float>(v_.begin(), v_.end());
}

void SlicePotential::transmission(const std::vector<SliceAtom>& atoms, double sigma_rad_per_VA, cfloat* t) {
  potential(atoms);
  const float sigma = float(sigma_rad_per_VA);
  const float* v = v_.data();
  parallel_for(grid_.size(), threads_, [&](std::size_t b, std::size_t e) {
    exp_i_grid(v, sigma, reinterpret_cast<float*>(t), b, e);
  });
  band_fft_.forward(t);
  apply_band_limit(t, grid_, band_, 1.f / float(grid_.size()), threads_);
  band_fft_.inverse(t);
}

}  // namespace epitem
