// Projected potential: gridded structure factors vs direct summation, ∫v_z = 47.8776·f_e(0),
// single-atom v_z vs Kirkland's real-space form, band-limited transmission |t| ≈ 1.
#include <algorithm>
#include <cmath>
#include <random>
#include <tuple>

#include "epitem/potential.hpp"
#include "epitem/units.hpp"
#include "testing.hpp"

using namespace epitem;

namespace {
Grid make_grid(int nx, int ny, double lx, double ly) {
  Grid g;
  g.nx = nx;
  g.ny = ny;
  g.extent_x_A = lx;
  g.extent_y_A = ly;
  return g;
}
}  // namespace

TEST_CASE("gridded structure factors equal the exact phase sum", "[potential]") {
  // Odd and even sizes, atoms anywhere (also outside the cell: periodic).
  for (auto [nx, ny] : {std::pair{64, 48}, std::pair{45, 50}}) {
    const Grid g = make_grid(nx, ny, 7.3, 5.9);
    std::mt19937 rng(3);
    std::uniform_real_distribution<double> u(-2.0, 9.0);
    std::vector<SliceAtom> atoms;
    double total_weight = 0;
    for (int i = 0; i < 40; ++i) {
      atoms.push_back(SliceAtom{26, u(rng), u(rng), 0.5 + 0.5 * (i % 2)});
      total_weight += atoms.back().weight;
    }
    SlicePotential pot(g, {26}, ScatteringTable::Kirkland, 1, FftRigor::Estimate);
    const auto fast = pot.structure_factor(atoms);
    const auto exact = structure_factor_direct(g, atoms);
    double worst = 0;
    for (std::size_t i = 0; i < g.size(); ++i)
      worst = std::max(worst, double(std::abs(fast[i] - exact[i])));
    // Aliasing ≲ 1e-7 plus float32 rounding grown by the deconvolution in the spectrum's corners:
    // measured ≤ 6e-7 of Σ|w|; the requirement is 1e-5 (issue 19).
    CHECK(worst / total_weight < 2e-6);
  }
}

TEST_CASE("a lone atom's structure factor has exact phases to 1e-5 everywhere", "[potential]") {
  // The worst case of gridding: the deconvolution grows float32 rounding most in the spectrum's
  // corners, relative to Σ|w| = 1. Measured ≤ 4.8e-6 there over these seeds, ≤ 4.2e-7 inside the
  // 2/3 band limit; the requirement (issue 19) is 1e-5.
  const Grid g = make_grid(64, 64, 7.3, 7.9);
  SlicePotential pot(g, {26}, ScatteringTable::Kirkland, 1, FftRigor::Estimate);
  double worst = 0, worst_band = 0;
  for (unsigned seed = 1; seed <= 8; ++seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(-2.0, 20.0);
    const std::vector<SliceAtom> atom = {SliceAtom{26, u(rng), u(rng), 1.0}};
    const auto fast = pot.structure_factor(atom);
    const auto exact = structure_factor_direct(g, atom);
    for (int iy = 0; iy < g.ny; ++iy)
      for (int ix = 0; ix < g.nx; ++ix) {
        const std::size_t i = std::size_t(iy) * g.nx + ix;
        const double e = std::abs(fast[i] - exact[i]);
        worst = std::max(worst, e);
        if (std::hypot(g.kx_invA(ix), g.ky_invA(iy)) <= g.band_limit_invA())
          worst_band = std::max(worst_band, e);
      }
  }
  INFO("worst " << worst << ", inside the band limit " << worst_band);
  CHECK(worst < 1e-5);
  CHECK(worst_band < 2e-6);
}

TEST_CASE("integral of v_z is 47.8776 f_e(0) per atom", "[potential]") {
  const Grid g = make_grid(128, 96, 12.0, 10.0);
  for (ScatteringTable table : {ScatteringTable::Kirkland, ScatteringTable::Peng}) {
    for (int Z : {8, 26, 28}) {
      SlicePotential pot(g, {Z}, table, 1, FftRigor::Estimate);
      const auto v = pot.projected_potential_VA({SliceAtom{Z, 3.21, 7.654, 1.0}});
      double sum = 0;
      for (float x : v)
        sum += x;
      const double integral = sum * g.sampling_x_A() * g.sampling_y_A();
      const double expected = POTENTIAL_PREFACTOR_VA2 * scattering_factor_A(Z, 0.0, table);
      INFO("Z = " << Z << " table " << scattering_table_name(table));
      // float32 sum of 12k values: 1e-5; the requirement is 1e-3.
      CHECK(std::abs(integral / expected - 1) < 1e-4);
    }
  }
}

TEST_CASE("single-atom v_z matches Kirkland's analytic form, band-limited to the grid", "[potential]") {
  // Kirkland's v_z(r) and f_e(q) are an exact Hankel pair, so the analytic form band-limited to
  // the grid's k-square is the double-precision Fourier sum (47.8776/A) Σ_k f_e(|k|) cos(2πk·Δr).
  // (The unlimited form differs: its K0 log core has an f_e ∝ 1/k² tail whose truncation at
  // k = 10-25 Å⁻¹ moves v_z by 0.1-5 % at 0.5-2 Å; no finite grid reaches 1e-3 there.)
  const int n = 512;
  const Grid g = make_grid(n, n, 25.6, 25.6);
  const double x0 = 10.0, y0 = 12.0;
  for (int Z : {8, 26}) {
    SlicePotential pot(g, {Z}, ScatteringTable::Kirkland, 1, FftRigor::Estimate);
    const auto v = pot.projected_potential_VA({SliceAtom{Z, x0, y0, 1.0}});
    const double peak = *std::max_element(v.begin(), v.end());
    std::vector<double> f(g.size());
    for (int iy = 0; iy < n; ++iy)
      for (int ix = 0; ix < n; ++ix)
        f[std::size_t(iy) * n + ix] = scattering_factor_A(Z, std::hypot(g.kx_invA(ix), g.ky_invA(iy)));
    for (double r : {0.5, 1.0, 2.0}) {
      const int ix = int(std::lround((x0 + r) / g.sampling_x_A()));
      const int iy = int(std::lround(y0 / g.sampling_y_A()));
      const double dx = ix * g.sampling_x_A() - x0, dy = iy * g.sampling_y_A() - y0;
      double ref = 0;
      for (int ky = 0; ky < n; ++ky)
        for (int kx = 0; kx < n; ++kx)
          ref += f[std::size_t(ky) * n + kx] * std::cos(2 * PI * (g.kx_invA(kx) * dx + g.ky_invA(ky) * dy));
      ref *= POTENTIAL_PREFACTOR_VA2 / (g.extent_x_A * g.extent_y_A);
      const double ours = v[std::size_t(iy) * n + ix];
      const double analytic = kirkland_projected_potential_VA(Z, r);
      INFO("Z = " << Z << " r = " << r << " ours " << ours << " band-limited analytic " << ref
                  << " unlimited analytic " << analytic);
      // float32 FFTs of a grid peaking at ~640 V·Å leave ~1e-8 of the peak (5e-6 V·Å, 2e-4 of
      // the O value at 2 Å): bound by 1e-4 relative plus 2e-8 of the peak.
      CHECK(std::abs(ours - ref) < 1e-4 * std::abs(ref) + 2e-8 * peak);
      // Sanity of the pairing: at 0.05 Å pixels the band limit moves v_z(r ≤ 1 Å) by < 3 %.
      if (r <= 1.0)
        CHECK(std::abs(ref / analytic - 1) < 0.03);
    }
  }
}

TEST_CASE("transmission function is band-limited and nearly unimodular", "[potential]") {
  const Grid g = make_grid(96, 96, 8.4, 8.4);
  SlicePotential pot(g, {8, 26}, ScatteringTable::Kirkland, 1, FftRigor::Estimate);
  AlignedVector<cfloat> t(g.size());
  const double sigma = interaction_sigma_rad_per_VA(200e3);
  pot.transmission({SliceAtom{26, 1.0, 2.0, 1.0}, SliceAtom{8, 5.0, 5.5, 1.0}}, sigma, t.data());
  Fft2D fft(g.nx, g.ny, 1, FftRigor::Estimate);
  AlignedVector<cfloat> spec(g.size());
  fft.forward(t.data(), spec.data());
  const double kb = g.band_limit_invA();
  double outside = 0, mean_abs2 = 0;
  for (int iy = 0; iy < g.ny; ++iy)
    for (int ix = 0; ix < g.nx; ++ix)
      if (std::hypot(g.kx_invA(ix), g.ky_invA(iy)) > kb)
        outside = std::max(outside, double(std::abs(spec[std::size_t(iy) * g.nx + ix])));
  for (const cfloat& x : t)
    mean_abs2 += std::norm(x);
  mean_abs2 /= double(g.size());
  CHECK(outside / double(g.size()) < 1e-6);
  // The cut removes the high-k tail of exp(iσv): a few % at most on this coarse grid.
  CHECK(mean_abs2 < 1.0);
  CHECK(mean_abs2 > 0.95);
}

TEST_CASE("potential of an undeclared element is an error", "[potential]") {
  const Grid g = make_grid(32, 32, 5, 5);
  SlicePotential pot(g, {8}, ScatteringTable::Kirkland, 1, FftRigor::Estimate);
  CHECK_THROWS_WITH(pot.projected_potential_VA({SliceAtom{26, 1, 1, 1}}), Catch::Contains("Z = 26"));
}

TEST_CASE("v_z and t of two species equal the direct Fourier sums on even and odd grids", "[potential]") {
  // Reference in double precision from the definition (physics.md §4): v(r) = Re Σ_k C(k) e^{2πik·r},
  // C = (47.8776/A) Σ_s f_s(|k|) S_s(k) with exact phase sums, over the grid's k (even grids:
  // the Nyquist row and column included); t = exp(iσv) cut at the 2/3 band limit. Covers the
  // two-species packing, the Hermitian half spectrum and the fast sin/cos.
  const double sigma = interaction_sigma_rad_per_VA(200e3);
  // 3-point axes with square pixels put ±1/L exactly on the band edge (both must stay).
  for (auto [nx, ny, lx, ly] : {std::tuple{32, 24, 6.1, 5.3}, std::tuple{27, 30, 6.1, 5.3},
                                std::tuple{5, 3, 10.0, 6.0}, std::tuple{3, 4, 6.0, 8.0}}) {
    const Grid g = make_grid(nx, ny, lx, ly);
    for (unsigned seed : {1u, 2u}) {
      std::mt19937 rng(seed);
      std::uniform_real_distribution<double> u(-1.0, 7.0);
      std::vector<SliceAtom> atoms, fe, o;
      for (int i = 0; i < 12; ++i) {
        atoms.push_back(SliceAtom{i % 3 == 0 ? 26 : 8, u(rng), u(rng), i % 4 == 1 ? 0.5 : 1.0});
        (atoms.back().Z == 26 ? fe : o).push_back(atoms.back());
      }
      const auto s_fe = structure_factor_direct(g, fe), s_o = structure_factor_direct(g, o);
      const double pref = POTENTIAL_PREFACTOR_VA2 / (g.extent_x_A * g.extent_y_A);
      std::vector<std::complex<double>> c(g.size());
      for (int iy = 0; iy < ny; ++iy)
        for (int ix = 0; ix < nx; ++ix) {
          const std::size_t i = std::size_t(iy) * nx + ix;
          const double k = std::hypot(g.kx_invA(ix), g.ky_invA(iy));
          c[i] = pref * (scattering_factor_A(26, k) * std::complex<double>(s_fe[i]) +
                         scattering_factor_A(8, k) * std::complex<double>(s_o[i]));
        }
      // Direct sums use the same grid frequencies as the FFT (kx_invA: −n/2 for even n).
      std::vector<double> v_ref(g.size());
      for (int py = 0; py < ny; ++py)
        for (int px = 0; px < nx; ++px) {
          std::complex<double> acc = 0;
          for (int iy = 0; iy < ny; ++iy)
            for (int ix = 0; ix < nx; ++ix)
              acc += c[std::size_t(iy) * nx + ix] *
                     std::polar(1.0, 2 * PI * (double(ix) * px / nx + double(iy) * py / ny));
          v_ref[std::size_t(py) * nx + px] = acc.real();
        }
      SlicePotential pot(g, {8, 26}, ScatteringTable::Kirkland, 1, FftRigor::Estimate);
      const auto v = pot.projected_potential_VA(atoms);
      const double peak = *std::max_element(v_ref.begin(), v_ref.end());
      double worst_v = 0;
      for (std::size_t i = 0; i < v.size(); ++i)
        worst_v = std::max(worst_v, std::abs(v[i] - v_ref[i]) / peak);
      // t: exp(iσ v_ref), band limit by a double-precision DFT pair.
      std::vector<std::complex<double>> e(g.size()), spec(g.size(), 0.0);
      for (std::size_t i = 0; i < e.size(); ++i)
        e[i] = std::polar(1.0, sigma * v_ref[i]);
      const double kb = g.band_limit_invA();
      for (int iy = 0; iy < ny; ++iy)
        for (int ix = 0; ix < nx; ++ix) {
          if (std::hypot(g.kx_invA(ix), g.ky_invA(iy)) > kb)
            continue;
          std::complex<double> acc = 0;
          for (int py = 0; py < ny; ++py)
            for (int px = 0; px < nx; ++px)
              acc += e[std::size_t(py) * nx + px] *
                     std::polar(1.0, -2 * PI * (double(ix) * px / nx + double(iy) * py / ny));
          spec[std::size_t(iy) * nx + ix] = acc / double(g.size());
        }
      AlignedVector<cfloat> t(g.size());
      pot.transmission(atoms, sigma, t.data());
      double worst_t = 0;
      for (int py = 0; py < ny; ++py)
        for (int px = 0; px < nx; ++px) {
          std::complex<double> acc = 0;
          for (int iy = 0; iy < ny; ++iy)
            for (int ix = 0; ix < nx; ++ix)
              acc += spec[std::size_t(iy) * nx + ix] *
                     std::polar(1.0, 2 * PI * (double(ix) * px / nx + double(iy) * py / ny));
          worst_t = std::max(worst_t, std::abs(std::complex<double>(t[std::size_t(py) * nx + px]) - acc));
        }
      INFO(nx << " x " << ny << " seed " << seed << ": |v − v_ref| / peak " << worst_v << ", |t − t_ref| "
              << worst_t);
      CHECK(worst_v < 2e-6);
      CHECK(worst_t < 2e-6);
    }
  }
}
