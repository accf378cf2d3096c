#include "epitem/potential.hpp"

#include <algorithm>
#include <chrono>
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
// rounding of the FFT grows in the spectrum's corners: measured ≤ 5.5e-6 of Σ|w| there (a lone
// atom, the worst case) and ≤ 6e-7 inside the band limit. Less oversampling trades FFT size for
// that growth: 1.25 along one axis measured 3.5e-5 in the corners, over the 1e-5 required, and
// saved 10-20 % of the potential's time. Spreading costs ~100 flops per atom, nothing next to
// the FFT.
constexpr double OVERSAMPLING = 1.5;
constexpr int WIDTH = 10;
constexpr int HALF_WIDTH = WIDTH / 2;
constexpr double BETA_FACTOR = 0.97;

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

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

// Half-spectrum columns are transformed HALF_COLUMNS at a time (with their mirrors) in a
// contiguous buffer, n + 8 apart (even: aligned for FFTW; not a 4 KiB multiple).
constexpr int HALF_COLUMNS = 4;
constexpr std::size_t PREFETCH_ROWS = 12;
int column_dist(int n) { return (n + 1) / 2 * 2 + 8; }

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

Kernel make_kernel(int n, int m) {
  const double u_p = double(n / 2) / m;
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

// C(k) = fa·S_a + fb·S_b for i in [b, e) from the transform of two packed species (see
// spectrum_columns): x = r[i] and xm = conj(m[−i]), the value at the mirrored frequency; fb may
// be null. Plain floats so that it vectorises (the std::complex form did not); AVX2 clone as above.
__attribute__((target_clones("avx2", "default")))
void unpack(const float* r, const float* m, const float* fa, const float* fb, float* out, int b, int e) {
  for (int i = b; i < e; ++i) {
    const float xr = r[2 * i], xi = r[2 * i + 1], mr = m[-2 * i], mi = -m[-2 * i + 1];
    const float sa_r = 0.5f * (xr + mr), sa_i = 0.5f * (xi + mi);
    float o_r = fa[i] * sa_r, o_i = fa[i] * sa_i;
    if (fb) {
      const float d_r = 0.5f * (xr - mr), d_i = 0.5f * (xi - mi);
      o_r = o_r + fb[i] * d_i;
      o_i = o_i + fb[i] * -d_r;
    }
    out[2 * i] = o_r;
    out[2 * i + 1] = o_i;
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
      mx_(fine_size(grid.nx)), my_(fine_size(grid.ny)), pitch_(fine_pitch(mx_)),
      half_nx_(grid.nx / 2 + 1), fine_dist_(column_dist(my_)), half_dist_(column_dist(grid.ny)),
      fine_rows_(mx_, my_, 1, pitch_, threads_, rigor),
      fine_columns_(my_, 2 * HALF_COLUMNS, 1, fine_dist_, 1, rigor),
      half_columns_(grid.ny, HALF_COLUMNS, 1, half_dist_, 1, rigor),
      row_to_real_(grid.nx, 1, 1, rigor), row_fft_(grid.nx, 1, 1, grid.nx, 1, rigor) {
  std::sort(species_.begin(), species_.end());
  species_.erase(std::unique(species_.begin(), species_.end()), species_.end());
  const int nx = grid.nx, ny = grid.ny;
  deconv_x_ = deconvolution(make_kernel(nx, mx_), nx, mx_);
  deconv_y_ = deconvolution(make_kernel(ny, my_), ny, my_);
  const double prefactor = POTENTIAL_PREFACTOR_VA2 / (grid.extent_x_A * grid.extent_y_A);
  // f_e depends on |k| only: evaluate on the non-negative quadrant, mirror to negative ky.
  const int hy = ny / 2 + 1;
  std::vector<double> f(std::size_t(half_nx_) * hy);
  for (int Z : species_) {
    for (int j = 0; j < hy; ++j)
      for (int i = 0; i < half_nx_; ++i)
        f[std::size_t(j) * half_nx_ + i] =
            scattering_factor_A(Z, std::hypot(i / grid.extent_x_A, j / grid.extent_y_A), table);
    // Column-major (the columns stage walks down columns): [ix · ny + iy].
    AlignedVector<float> table_z(std::size_t(half_nx_) * ny);
    for (int ix = 0; ix < half_nx_; ++ix)
      for (int iy = 0; iy < ny; ++iy) {
        const int ay = std::abs(signed_index(iy, ny));
        table_z[std::size_t(ix) * ny + iy] =
            float(prefactor * f[std::size_t(ay) * half_nx_ + ix] * deconv_x_[ix] * deconv_y_[ay]);
      }
    form_.push_back(std::move(table_z));
  }
  // The band limit by columns: column ix keeps rows [0, pos_end) and [neg_begin, ny); the
  // columns with anything inside are the band's run along kx at ky = 0.
  Grid transposed = grid;
  std::swap(transposed.nx, transposed.ny);
  std::swap(transposed.extent_x_A, transposed.extent_y_A);
  band_columns_ = make_band_rows(transposed);
  const BandRows band_rows = make_band_rows(grid);
  band_x_ = {band_rows.pos_end[0], band_rows.neg_begin[0]};
  band_columns_lo_ = ColumnFft(ny, band_x_.pos_end, nx, threads_, rigor);
  band_columns_hi_ = ColumnFft(ny, nx - band_x_.neg_begin, nx, threads_, rigor);
  fine_.assign(std::size_t(pitch_) * my_, cfloat(0.f, 0.f));
  half_.assign(std::size_t(half_nx_) * ny, cfloat(0.f, 0.f));
}

double SlicePotential::memory_bytes(const Grid& grid, int n_species) {
  const double half = double(grid.nx / 2 + 1) * grid.ny;
  const double fine = double(fine_pitch(fine_size(grid.nx))) * fine_size(grid.ny);
  return fine * 8.0 + half * (8.0 + 4.0 * n_species);
}

int SlicePotential::species_index(int Z) const {
  auto it = std::lower_bound(species_.begin(), species_.end(), Z);
  if (it == species_.end() || *it != Z)
    fail("SlicePotential: element Z = ", Z, " was not declared when the potential was set up");
  return int(it - species_.begin());
}

// Spreads atoms of species_a onto the real part and species_b (−1: none) onto the imaginary
// part of the fine grid and transforms its rows (contiguous); the columns follow in
// spectrum_columns, only those it needs.
void SlicePotential::spread_rows(const std::vector<SliceAtom>& atoms, int species_a, int species_b) {
  std::fill(fine_.begin(), fine_.end(), cfloat(0.f, 0.f));
  const Kernel kernel_x = make_kernel(grid_.nx, mx_), kernel_y = make_kernel(grid_.ny, my_);
  float* g = reinterpret_cast<float*>(fine_.data());
  const double hx = grid_.extent_x_A / mx_, hy = grid_.extent_y_A / my_;
  float wx[WIDTH], wy[WIDTH];
  int ix[WIDTH], iy[WIDTH];
  for (const SliceAtom& a : atoms) {
    const int part = a.Z == species_a ? 0 : (a.Z == species_b ? 1 : -1);
    if (part < 0)
      continue;
    kernel_1d(kernel_x, a.x_A / hx, mx_, wx, ix);
    kernel_1d(kernel_y, a.y_A / hy, my_, wy, iy);
    for (int j = 0; j < WIDTH; ++j) {
      const float wj = float(a.weight) * wy[j];
      float* row = g + 2 * std::size_t(iy[j]) * pitch_ + part;
      for (int i = 0; i < WIDTH; ++i)
        row[2 * ix[i]] += wj * wx[i];
    }
  }
  fine_rows_.forward(fine_.data());
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
  spread_rows(atoms, Z, -1);
  ColumnFft(my_, mx_, pitch_, threads_, FftRigor::Estimate).forward(fine_.data());
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

// Columns stage of one species pair: for HALF_COLUMNS half-spectrum columns kx at a time, the
// fine grid's columns kx and −kx are copied into a buffer and transformed (only the nx + 1 of
// mx columns needed), unpacked into C(kx, ky) = form_a·S_a + form_b·S_b over the grid's ky,
// added to the earlier pairs' sum in half_ and, after the last pair, inverse-transformed along
// y. half_ then holds, per row y, the x half spectrum of v_z at that y.
//
// v_z = Re Σ_k C(k) e^{+2πi k·r}, the inverse of the Hermitian half H(k) = (C(k) + C*(−k mod n))/2:
// C(k) itself except on the Nyquist row/column of an even grid, where −k wraps onto the alias at
// +n/2 and H averages the two (the fine grid has both). Two real species share one complex FFT:
// X = S_a + i S_b with S real-space-real, so S_a(k) = (X(k) + X*(−k))/2, S_b(k) = (X(k) − X*(−k))/2i.
void SlicePotential::spectrum_columns(int a, int b, bool first, bool last) {
  const int nx = grid_.nx, ny = grid_.ny, my = my_, mx = mx_, hx = half_nx_;
  const std::size_t pitch = std::size_t(pitch_), fd = std::size_t(fine_dist_), hd = std::size_t(half_dist_);
  const bool nyquist_x = nx % 2 == 0, nyquist_y = ny % 2 == 0;
  const float* form_a = form_[std::size_t(a)].data();
  const float* form_b = b >= 0 ? form_[std::size_t(b)].data() : nullptr;
  const int blocks = (hx + HALF_COLUMNS - 1) / HALF_COLUMNS;
  parallel_for(std::size_t(blocks), threads_, [&](std::size_t b0, std::size_t b1) {
    thread_local AlignedVector<cfloat> fine_buffer, half_buffer;
    if (fine_buffer.size() < fd * 2 * HALF_COLUMNS)
      fine_buffer.assign(fd * 2 * HALF_COLUMNS, cfloat(0.f, 0.f));
    if (half_buffer.size() < hd * HALF_COLUMNS)
      half_buffer.assign(hd * HALF_COLUMNS, cfloat(0.f, 0.f));
    cfloat* fb = fine_buffer.data();
    cfloat* hb = half_buffer.data();
    for (std::size_t blk = b0; blk < b1; ++blk) {
      const int k0 = int(blk) * HALF_COLUMNS;
      const int w = std::min(HALF_COLUMNS, hx - k0);
      // Buffer column 2c: fine column kx = k0 + c; 2c + 1: fine column −kx.
      int cols[2 * HALF_COLUMNS];
      for (int c = 0; c < HALF_COLUMNS; ++c) {
        const int kx = std::min(k0 + c, hx - 1);  // a short last block repeats its last column
        cols[2 * c] = kx;
        cols[2 * c + 1] = (mx - kx) % mx;
      }
      for (int y = 0; y < my; ++y) {
        const cfloat* row = fine_.data() + std::size_t(y) * pitch;
        if (y + int(PREFETCH_ROWS) < my) {  // rows are ≥ 4 KiB apart: the hardware prefetchers stop at those
          __builtin_prefetch(row + PREFETCH_ROWS * pitch + cols[0]);
          __builtin_prefetch(row + PREFETCH_ROWS * pitch + cols[2 * HALF_COLUMNS - 1]);
        }
        for (int c = 0; c < 2 * HALF_COLUMNS; ++c)
          fb[std::size_t(c) * fd + std::size_t(y)] = row[cols[c]];
      }
      fine_columns_.forward(fb);
      for (int c = 0; c < w; ++c) {
        const int kx = k0 + c;
        const cfloat* pos = fb + std::size_t(2 * c) * fd;  // fine column +kx
        const cfloat* neg = fb + std::size_t(2 * c + 1) * fd;  // fine column −kx
        const float* fa = form_a + std::size_t(kx) * ny;
        const float* fbz = form_b ? form_b + std::size_t(kx) * ny : nullptr;
        cfloat* out = hb + std::size_t(c) * hd;
        // fa·S_a + fb·S_b at signed (±kx, sy), P the fine column of the sign taken, Q the other.
        auto value = [&](const cfloat* p, const cfloat* q, int sy, int iy) {
          const cfloat x = p[(sy + my) % my];
          const cfloat xm = std::conj(q[(my - sy) % my]);
          const cfloat d = 0.5f * (x - xm);
          const cfloat sum = fa[iy] * 0.5f * (x + xm);
          return fbz ? sum + fbz[iy] * cfloat(d.imag(), -d.real()) : sum;
        };
        const bool nyquist_column = nyquist_x && kx == nx / 2;
        // Grid row iy ≥ 0 at fine row sy = iy, its mirror at my − iy; negative sy = iy − ny at
        // my − ny + iy, mirror at ny − iy.
        const float* p = reinterpret_cast<const float*>(pos);
        const float* q = reinterpret_cast<const float*>(neg);
        float* o = reinterpret_cast<float*>(out);
        const int half_y = (ny + 1) / 2;
        unpack(p, q, fa, fbz, o, 0, 1);
        unpack(p, q + 2 * std::size_t(my), fa, fbz, o, 1, half_y);
        unpack(p + 2 * std::size_t(my - ny), q + 2 * std::size_t(ny), fa, fbz, o, half_y, ny);
        if (nyquist_column)  // the grid's −nx/2 and its alias +nx/2
          for (int iy = 0; iy < ny; ++iy) {
            const int sy = signed_index(iy, ny);
            const bool ny_row = nyquist_y && sy == -ny / 2;
            out[iy] = 0.5f * (value(neg, pos, sy, iy) + value(pos, neg, ny_row ? -sy : sy, iy));
          }
        else if (nyquist_y) {  // the grid's −ny/2 and its alias +ny/2
          const int iy = ny / 2;
          out[iy] = 0.5f * (value(pos, neg, -ny / 2, iy) + value(pos, neg, ny / 2, iy));
        }
        if (!first)
          for (int iy = 0; iy < ny; ++iy)
            out[iy] += half_[std::size_t(iy) * hx + std::size_t(kx)];
      }
      if (last)
        half_columns_.inverse(hb);
      for (int iy = 0; iy < ny; ++iy) {
        cfloat* row = half_.data() + std::size_t(iy) * hx + std::size_t(k0);
        for (int c = 0; c < w; ++c)
          row[c] = hb[std::size_t(c) * hd + std::size_t(iy)];
      }
    }
  });
}

// v_z by rows from half_ (after spectrum_columns): per row y, the real inverse along x; then
// either v_z into `v`, or t = exp(iσv_z) transformed along x into `t`.
void SlicePotential::real_rows(float* v, float sigma, cfloat* t) {
  const int nx = grid_.nx, hx = half_nx_;
  parallel_for(std::size_t(grid_.ny), threads_, [&](std::size_t y0, std::size_t y1) {
    thread_local AlignedVector<cfloat> half_row, t_row;
    thread_local AlignedVector<float> v_row;
    half_row.resize(std::size_t(hx));
    t_row.resize(std::size_t(nx));
    v_row.resize(std::size_t(nx));
    for (std::size_t iy = y0; iy < y1; ++iy) {
      std::copy_n(half_.data() + iy * std::size_t(hx), hx, half_row.data());  // aligned, and c2r destroys it
      row_to_real_.execute(half_row.data(), v_row.data());
      if (v) {
        std::copy_n(v_row.data(), nx, v + iy * std::size_t(nx));
        continue;
      }
      // Rows of an even-width grid start FFTW-aligned: transform in place, else via the buffer.
      cfloat* out = nx % 2 == 0 ? t + iy * std::size_t(nx) : t_row.data();
      exp_i_grid(v_row.data(), sigma, reinterpret_cast<float*>(out), 0, std::size_t(nx));
      row_fft_.forward(out);
      if (out != t + iy * std::size_t(nx))
        std::copy_n(out, nx, t + iy * std::size_t(nx));
    }
  });
}

// The band limit of t (rows already transformed by real_rows): each column inside the band is
// transformed along y, cut to the band and scaled by 1/N, and transformed back; then every row
// is transformed back along x with the columns outside the band zeroed.
void SlicePotential::band_limit(cfloat* t) {
  const int nx = grid_.nx, ny = grid_.ny;
  const float scale = 1.f / float(grid_.size());
  auto cut = [&](int ix, cfloat* column) {
    const int pos_end = band_columns_.pos_end[std::size_t(ix)], neg_begin = band_columns_.neg_begin[std::size_t(ix)];
    for (int y = 0; y < pos_end; ++y)
      column[y] *= scale;
    std::fill(column + pos_end, column + neg_begin, cfloat(0.f, 0.f));
    for (int y = neg_begin; y < ny; ++y)
      column[y] *= scale;
  };
  band_columns_lo_.filter(t, cut);
  band_columns_hi_.filter(t + band_x_.neg_begin, [&](int c, cfloat* column) { cut(band_x_.neg_begin + c, column); });
  parallel_for(std::size_t(ny), threads_, [&](std::size_t y0, std::size_t y1) {
    thread_local AlignedVector<cfloat> row_buffer;
    row_buffer.resize(std::size_t(nx));
    for (std::size_t y = y0; y < y1; ++y) {
      cfloat* row = t + y * std::size_t(nx);
      cfloat* r = nx % 2 == 0 ? row : row_buffer.data();  // as in real_rows
      if (r != row)
        std::copy_n(row, nx, r);
      std::fill(r + band_x_.pos_end, r + band_x_.neg_begin, cfloat(0.f, 0.f));
      row_fft_.inverse(r);
      if (r != row)
        std::copy_n(r, nx, row);
    }
  });
}

// Species present in a slice, by index, paired for the packed transforms.
void SlicePotential::spectrum(const std::vector<SliceAtom>& atoms) {
  std::vector<int> present;
  for (const SliceAtom& a : atoms)
    present.push_back(species_index(a.Z));
  std::sort(present.begin(), present.end());
  present.erase(std::unique(present.begin(), present.end()), present.end());
  if (present.empty()) {
    std::fill(half_.begin(), half_.end(), cfloat(0.f, 0.f));
    return;
  }
  if (direct_)
    return direct_spectrum(atoms, present);
  for (std::size_t p = 0; p < present.size(); p += 2) {
    const int a = present[p];
    const int b = p + 1 < present.size() ? present[p + 1] : -1;
    const double t0 = seconds_now();
    spread_rows(atoms, species_[std::size_t(a)], b >= 0 ? species_[std::size_t(b)] : -1);
    const double t1 = seconds_now();
    spectrum_columns(a, b, p == 0, p + 2 >= present.size());
    stage_seconds_.spread_rows += t1 - t0;
    stage_seconds_.columns += seconds_now() - t1;
  }
}

// half_ as spectrum_columns leaves it, from exact phase sums: C(k) per species with the
// Hermitian half H(k) = (C(k) + C*(−k mod n))/2 over the grid's k, inverse along y.
void SlicePotential::direct_spectrum(const std::vector<SliceAtom>& atoms, const std::vector<int>& present) {
  const int nx = grid_.nx, ny = grid_.ny, hx = half_nx_;
  std::vector<std::complex<double>> c(grid_.size(), 0.0);
  for (int s : present) {
    std::vector<SliceAtom> of_species;
    for (const SliceAtom& a : atoms)
      if (a.Z == species_[std::size_t(s)])
        of_species.push_back(a);
    const AlignedVector<cfloat> sf = structure_factor_direct(grid_, of_species);
    const float* form = form_[std::size_t(s)].data();
    for (int iy = 0; iy < ny; ++iy)
      for (int ix = 0; ix < nx; ++ix) {
        const int ax = std::abs(signed_index(ix, nx)), ay = std::abs(signed_index(iy, ny));
        const double f = double(form[std::size_t(ax) * ny + iy]) / (double(deconv_x_[ax]) * deconv_y_[ay]);
        c[std::size_t(iy) * nx + ix] += f * std::complex<double>(sf[std::size_t(iy) * nx + ix]);
      }
  }
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < hx; ++ix) {
      const std::size_t mirror = std::size_t((ny - iy) % ny) * nx + std::size_t((nx - ix) % nx);
      half_[std::size_t(iy) * hx + ix] = cfloat(0.5 * (c[std::size_t(iy) * nx + ix] + std::conj(c[mirror])));
    }
  ColumnFft(ny, hx, hx, threads_, FftRigor::Estimate).inverse(half_.data());
}

std::vector<float> SlicePotential::projected_potential_VA(const std::vector<SliceAtom>& atoms) {
  spectrum(atoms);
  std::vector<float> v(grid_.size());
  real_rows(v.data(), 0.f, nullptr);
  return v;
}

void SlicePotential::transmission(const std::vector<SliceAtom>& atoms, double sigma_rad_per_VA, cfloat* t) {
  spectrum(atoms);
  const double t0 = seconds_now();
  real_rows(nullptr, float(sigma_rad_per_VA), t);
  const double t1 = seconds_now();
  band_limit(t);
  stage_seconds_.rows += t1 - t0;
  stage_seconds_.band_limit += seconds_now() - t1;
}

}  // namespace epitem
