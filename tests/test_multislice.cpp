// Multislice invariants (docs/formulas.md §5) and the Fe3O4 [110] reference case (issue 4):
// vacuum, norm, forward/backward, slice halving, weak-phase thin slice vs V_g, exactness of
// the periodic potential, beams vs reference/multislice and ../shared/data/reference-beams.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "epitem/fft.hpp"
#include "epitem/kinematic.hpp"
#include "epitem/model.hpp"
#include "epitem/multislice.hpp"
#include "epitem/potential.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"
#include "testing.hpp"

using namespace epitem;

namespace {

constexpr double FE3O4_A = 8.396;  // structures/Fe3O4.cif (= the reference case, README)

// Fe3O4 with x ∥ [1̄10], y ∥ [001], z ∥ [110] (beam), repeats of the a√2 × a × a√2 cell.
AtomicModel fe3o4_110(int rx, int ry, int rz) {
  return orient_crystal(read_crystal("Fe3O4"), Vec3(1, 1, 0), Vec3(-1, 1, 0), {rx, ry, rz});
}

MultisliceSpec reference_spec() {
  MultisliceSpec spec;
  spec.energy_eV = 200e3;
  spec.nx = spec.ny = 512;
  spec.slice_thickness_A = FE3O4_A * std::sqrt(2.0) / 8;
  spec.threads = 1;
  return spec;
}

// |FFT(ψ)|²/N² (sums to mean |ψ|²).
std::vector<double> diffraction(const Wave& w) {
  AlignedVector<cfloat> k(w.psi.begin(), w.psi.end());
  Fft2D(w.grid.nx, w.grid.ny, 1, FftRigor::Estimate).forward(k.data());
  std::vector<double> out(k.size());
  const double n2 = double(w.grid.size()) * double(w.grid.size());
  for (std::size_t i = 0; i < k.size(); ++i)
    out[i] = std::norm(k[i]) / n2;
  return out;
}

double beam(const std::vector<double>& dp, const Grid& g, int ix, int iy) {
  ix = (ix % g.nx + g.nx) % g.nx;
  iy = (iy % g.ny + g.ny) % g.ny;
  return dp[std::size_t(iy) * g.nx + ix];
}

struct RefBeam {
  int h, k, l, ix, iy;
  double i512, i1024, i2048;
};

std::vector<RefBeam> read_beams(const std::string& path) {
  std::ifstream in(path);
  std::vector<RefBeam> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || !(std::isdigit(line[0]) || line[0] == '-'))
      continue;
    std::replace(line.begin(), line.end(), ',', ' ');
    std::istringstream is(line);
    RefBeam b{};
    if (is >> b.h >> b.k >> b.l >> b.ix >> b.iy >> b.i512 >> b.i1024 >> b.i2048)
      out.push_back(b);
  }
  return out;
}

}  // namespace

TEST_CASE("vacuum slices leave a plane wave unchanged", "[multislice]") {
  AtomicModel m;
  m.cell_A = Mat3::Identity() * 10.0;
  m.cell_A(2, 2) = 100.0;
  Atom ghost;  // zero occupancy: a model with no scattering matter
  ghost.Z = 8;
  ghost.occupancy = 0;
  ghost.pos_A = Vec3(1, 2, 3);
  m.atoms.push_back(ghost);
  MultisliceSpec spec;
  spec.nx = spec.ny = 64;
  spec.slice_thickness_A = 2;
  spec.threads = 1;
  spec.beam_tilt_x_mrad = 5;
  double worst = 0;
  run_multislice(m, spec, [&](int, int, double, const Wave& w) {
    for (const cfloat& v : w.psi)
      worst = std::max(worst, double(std::abs(v - cfloat(1, 0))));
  });
  CHECK(worst < 1e-6);
}

TEST_CASE("propagating forward then backward recovers the wave", "[multislice]") {
  Grid g;
  g.nx = 96;
  g.ny = 80;
  g.extent_x_A = g.extent_y_A = 8.0;
  Wave w(g, 200e3);
  std::mt19937 rng(5);
  std::normal_distribution<float> n01;
  for (auto& v : w.psi)
    v = cfloat(n01(rng), n01(rng));
  fresnel_propagate(w, 0.0, 0, 0, 1);  // band-limit once so the comparison is exact
  const Wave start = w;
  fresnel_propagate(w, 75.0, 3, -2, 1);
  fresnel_propagate(w, -75.0, 3, -2, 1);
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < w.psi.size(); ++i) {
    diff += std::norm(w.psi[i] - start.psi[i]);
    norm += std::norm(start.psi[i]);
  }
  CHECK(std::sqrt(diff / norm) < 1e-5);
}

TEST_CASE("slicing rule: boundary atoms start a slice; the report and reuse", "[multislice]") {
  const AtomicModel m = fe3o4_110(1, 1, 2);
  MultisliceSpec spec = reference_spec();
  spec.nx = spec.ny = 64;
  const Slicing s = multislice_slicing(m, spec);
  REQUIRE(s.n_slices() == 16);
  CHECK(s.thickness_A(0) == Approx(FE3O4_A * std::sqrt(2.0) / 8).epsilon(1e-12));
  // Tetrahedral Fe at (1/8,1/8,1/8) sits at z = a√2/8 exactly: it opens slice 1.
  Slicing probe = s;
  AtomicModel one = m;
  one.atoms.clear();
  Atom fe;
  fe.Z = 26;
  fe.pos_A = Vec3(1, 1, s.boundaries_A[1] - 5e-7);  // within tolerance of the boundary
  one.atoms.push_back(fe);
  fe.pos_A.z() = s.boundaries_A[1] - 5e-6;           // clearly below it
  one.atoms.push_back(fe);
  probe = multislice_slicing(one, spec);
  CHECK(probe.atoms_per_slice[0] == 1);
  CHECK(probe.atoms_per_slice[1] == 1);
  // A rounded thickness (6 digits) still gives 16 equal slices.
  spec.slice_thickness_A = 1.484217;
  CHECK(multislice_slicing(m, spec).n_slices() == 16);
  spec.slice_thickness_A = 5.0;  // not a divisor: the last slice is thinner
  const Slicing odd = multislice_slicing(m, spec);
  REQUIRE(odd.n_slices() == 5);
  CHECK(odd.thickness_A(4) == Approx(2 * FE3O4_A * std::sqrt(2.0) - 20.0));
  spec = reference_spec();
  spec.nx = spec.ny = 64;
  const MultisliceReport rep = run_multislice(m, spec, {});
  // Fd-3m along [110]: the F translation (½,½,0) is a pure z shift of 4 slices.
  CHECK(rep.unique_slices == 4);
  CHECK(rep.transmission_functions_computed == 4);
}

TEST_CASE("thin weak slice: exit wave Fourier coefficients equal iσ v_z(g)", "[multislice]") {
  // Occupancy OCC scales v_z down so exp(iσv) is linear to 1e-4; one slice of 0.01 Å.
  const double OCC = 1e-3;
  AtomicModel m = fe3o4_110(1, 1, 1);
  const double dz = FE3O4_A * std::sqrt(2.0) / 8;
  std::vector<Atom> layer;
  for (Atom a : m.atoms)
    if (a.pos_A.z() < dz - 1e-6) {
      a.pos_A.z() = 0;
      a.occupancy = OCC;
      a.u_iso_A2 = 0;  // static atoms: no Debye–Waller damping in either module
      layer.push_back(a);
    }
  m.atoms = layer;
  m.cell_A(2, 2) = 0.01;
  const Crystal layer_cell = model_as_crystal(m, "Fe3O4 [110] layer");
  MultisliceSpec spec;
  spec.nx = 96;
  spec.ny = 72;
  spec.n_slices = 1;
  spec.threads = 1;
  Wave exit;
  run_multislice(m, spec, [&](int, int, double, const Wave& w) { exit = w; });
  const Grid& g = exit.grid;
  AlignedVector<cfloat> k(exit.psi.begin(), exit.psi.end());
  Fft2D(g.nx, g.ny, 1, FftRigor::Estimate).forward(k.data());
  const double sigma = interaction_sigma_rad_per_VA(spec.energy_eV);
  const double lambda = electron_wavelength_A(spec.energy_eV);
  const double area = g.extent_x_A * g.extent_y_A;
  int compared = 0;
  double worst = 0;
  // Reflections of the a√2 × a cell: (ix, iy) multiples of 1 in FFT units of this one-cell box.
  for (int iy = -6; iy <= 6; ++iy)
    for (int ix = -6; ix <= 6; ++ix) {
      if (ix == 0 && iy == 0)
        continue;
      const double kx = ix / g.extent_x_A, ky = iy / g.extent_y_A;
      // SAED module's F_hk0 of the slice as a P1 cell: crystallographic sign e^{+2πi g·r}, so the
      // physics-convention coefficient v_z(g) = (47.8776/A)·conj(F) (f_e real, B = 0).
      std::complex<double> vg = std::conj(structure_factor_A(layer_cell, {ix, iy, 0}));
      vg *= POTENTIAL_PREFACTOR_VA2 / area;
      if (std::abs(vg) < OCC * 2.0)  // weak or absent reflections: float32 noise dominates
        continue;
      const std::complex<double> expected =
          std::complex<double>(0, sigma) * vg * std::polar(1.0, -PI * lambda * 0.01 * (kx * kx + ky * ky));
      const std::complex<double> ours = std::complex<double>(k[std::size_t((iy + g.ny) % g.ny) * g.nx + (ix + g.nx) % g.nx]) /
                                        double(g.size());
      const double err = std::abs(ours - expected) / std::abs(expected);
      if (err > worst)
        UNSCOPED_INFO("g = (" << ix << "," << iy << ") |v_g| = " << std::abs(vg) / OCC << " V·Å (occ 1) error " << err);
      worst = std::max(worst, err);
      ++compared;
    }
  CHECK(compared > 20);
  CHECK(worst < 1e-3);
}

TEST_CASE("Fe3O4 [110] reference case: exactness, norm, beams", "[multislice][slow]") {
  const AtomicModel m = fe3o4_110(3, 4, 10);
  REQUIRE(m.atoms.size() == 13440);
  MultisliceSpec spec = reference_spec();
  spec.thickness_series_A = {59.4};
  std::map<int, Wave> exits;
  std::vector<double> norms;
  const MultisliceReport rep = run_multislice(m, spec, [&](int, int ti, double, const Wave& w) { exits[ti] = w; });
  REQUIRE(exits.size() == 2);
  CHECK(rep.slicing.n_slices() == 80);
  CHECK(rep.saved_thicknesses_A[0] == Approx(40 * FE3O4_A * std::sqrt(2.0) / 8));
  const Grid& g = rep.grid;
  const auto dp = diffraction(exits[1]);
  double total = 0, off = 0;
  for (int iy = 0; iy < g.ny; ++iy)
    for (int ix = 0; ix < g.nx; ++ix) {
      const double v = dp[std::size_t(iy) * g.nx + ix];
      total += v;
      // Signed frequency indices: 512 is not a multiple of 3.
      const int sx = ix < g.nx / 2 ? ix : ix - g.nx, sy = iy < g.ny / 2 ? iy : iy - g.ny;
      if (sx % 3 != 0 || sy % 4 != 0)
        off += v;
    }
  INFO("off-lattice fraction " << off / total << ", total " << total);
  CHECK(off / total < 1e-5);
  // Total intensity after the band limit: the independent exact-potential run gives 0.96852.
  CHECK(total == Approx(0.96852).epsilon(2e-3));

  // Regression: our own values stored with provenance (reference/multislice/README.md), made
  // before the gridded potential of issue 19. Measured ≤ 8.4e-6 (2̄20, 3.4e-4; ≤ 2.5e-6 for the
  // others); tolerance 2e-5 relative:
  // float32 rounding differs with FFTW's plan choice and threads.
  const std::vector<double>* dps[2] = {nullptr, &dp};
  const auto dp_half = diffraction(exits[0]);
  dps[0] = &dp_half;
  std::ifstream stored(testing::source_path("reference/multislice/fe3o4_110_512_beams.csv"));
  REQUIRE(stored.good());
  std::string line;
  int rows = 0;
  while (std::getline(stored, line)) {
    if (line.empty() || line[0] == '#' || line[0] == 'h')
      continue;
    std::replace(line.begin(), line.end(), ',', ' ');
    std::istringstream is(line);
    int h, k, l, ix, iy;
    double i59, i118;
    REQUIRE(bool(is >> h >> k >> l >> ix >> iy >> i59 >> i118));
    INFO("beam " << h << " " << k << " " << l);
    CHECK(beam(*dps[0], g, ix, iy) == Approx(i59).epsilon(2e-5).margin(1e-9));
    CHECK(beam(*dps[1], g, ix, iy) == Approx(i118).epsilon(2e-5).margin(1e-9));
    ++rows;
  }
  CHECK(rows == 6);

  // Independent exact-potential result (abTEM, ../shared/data/reference-beams). Measured
  // deviations are 0.07-0.29 % for beams ≥ 1e-2, ≤ 0.5 % for ≥ 5e-3, 1.4 % for 2̄20 (3e-4):
  // abTEM tapers its 2/3 aperture over 1 % of Nyquist, we cut sharply (total +0.14 %).
  const auto refs = read_beams(testing::shared_path("data/reference-beams/fe3o4_110_abtem_t118.7.csv"));
  if (refs.empty()) {
    WARN("../shared/data/reference-beams not found: independent comparison skipped");
  }
  for (const RefBeam& r : refs) {
    const double ours = beam(dp, g, r.ix, r.iy);
    const double tol = r.i512 >= 1e-2 ? 0.004 : (r.i512 >= 5e-3 ? 0.006 : 0.02);
    INFO("beam " << r.h << " " << r.k << " " << r.l << ": ours " << ours << " reference " << r.i512);
    CHECK(ours == Approx(r.i512).epsilon(tol));
  }
}

TEST_CASE("gridded potential = exact phase sums: reference-case beams to 1e-5", "[multislice][slow]") {
  // Issue 19: the fast (gridded) potential must leave the exit wave unchanged to 1e-5 in beam
  // intensity. The reference is the same run with structure factors by direct summation, so
  // only the potential differs. Beams ≥ 1e-3 must agree to 1e-5 (measured 2.0–3.6e-6 as
  // FFTW plans change; phonons 0.9–1.2e-6); weaker ones carry more float32 rounding for their
  // size (measured 0.8–1.2e-5).
  const AtomicModel m = fe3o4_110(3, 4, 10);
  MultisliceSpec spec = reference_spec();
  spec.thickness_series_A = {59.4};
  std::map<int, Wave> gridded, exact;
  run_multislice(m, spec, [&](int, int ti, double, const Wave& w) { gridded[ti] = w; });
  spec.direct_structure_factors = true;
  run_multislice(m, spec, [&](int, int ti, double, const Wave& w) { exact[ti] = w; });
  REQUIRE(gridded.size() == 2);
  REQUIRE(exact.size() == 2);
  int strong = 0;
  double worst_strong = 0, worst_weak = 0;  // beams ≥ 1e-3 and 1e-4 … 1e-3 of the incident intensity
  for (int ti : {0, 1}) {
    const auto a = diffraction(gridded[ti]), b = diffraction(exact[ti]);
    for (std::size_t i = 0; i < a.size(); ++i) {
      const double d = std::abs(a[i] / b[i] - 1);
      if (b[i] >= 1e-3) {
        ++strong;
        worst_strong = std::max(worst_strong, d);
      } else if (b[i] >= 1e-4) {
        worst_weak = std::max(worst_weak, d);
      }
    }
  }
  INFO(strong << " beams >= 1e-3: worst relative deviation " << worst_strong << "; 1e-4 ... 1e-3: " << worst_weak);
  CHECK(strong > 40);
  CHECK(worst_strong < 1e-5);
  CHECK(worst_weak < 3e-5);

  // Frozen phonons keep their seeds: the same displacements, so the same exit wave as exact sums.
  const AtomicModel small = fe3o4_110(1, 1, 1);
  MultisliceSpec ph = reference_spec();
  ph.nx = ph.ny = 128;
  ph.phonon_configs = 2;
  ph.seed = 7;
  std::vector<Wave> fast, direct;
  run_multislice(small, ph, [&](int, int, double, const Wave& w) { fast.push_back(w); });
  ph.direct_structure_factors = true;
  run_multislice(small, ph, [&](int, int, double, const Wave& w) { direct.push_back(w); });
  REQUIRE(fast.size() == 2);
  double worst_phonon = 0, worst_phonon_weak = 0;
  for (int c : {0, 1}) {
    const auto a = diffraction(fast[std::size_t(c)]), b = diffraction(direct[std::size_t(c)]);
    for (std::size_t i = 0; i < a.size(); ++i) {
      const double d = std::abs(a[i] / b[i] - 1);
      if (b[i] >= 1e-3)
        worst_phonon = std::max(worst_phonon, d);
      else if (b[i] >= 1e-4)
        worst_phonon_weak = std::max(worst_phonon_weak, d);
    }
  }
  INFO("phonon configurations: worst relative deviation " << worst_phonon << "; weak beams " << worst_phonon_weak);
  CHECK(worst_phonon < 1e-5);
  CHECK(worst_phonon_weak < 3e-5);
}

TEST_CASE("halving the slice thickness: 12 nm Fe3O4 [110] beams change < 1 %", "[multislice][slow]") {
  const AtomicModel m = fe3o4_110(3, 4, 10);
  MultisliceSpec spec = reference_spec();
  Wave coarse, fine;
  run_multislice(m, spec, [&](int, int, double, const Wave& w) { coarse = w; });
  spec.slice_thickness_A /= 2;
  const MultisliceReport rep = run_multislice(m, spec, [&](int, int, double, const Wave& w) { fine = w; });
  REQUIRE(rep.slicing.n_slices() == 160);
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < fine.psi.size(); ++i) {
    diff += std::norm(fine.psi[i] - coarse.psi[i]);
    norm += std::norm(fine.psi[i]);
  }
  const double rel = std::sqrt(diff / norm);
  // Measured: complex exit wave 2.6 % (relative L2, phases included); beams ≥ 1e-2 ≤ 0.9 %.
  CHECK(rel < 0.03);
  const auto dc = diffraction(coarse), df = diffraction(fine);
  const Grid& g = rep.grid;
  int strong = 0;
  for (int iy = -32; iy <= 32; iy += 4)
    for (int ix = -30; ix <= 30; ix += 3) {
      const double a = beam(dc, g, ix, iy), b = beam(df, g, ix, iy);
      if (a < 1e-2)
        continue;
      INFO("beam ix " << ix << " iy " << iy << ": " << a << " → " << b);
      CHECK(std::abs(b / a - 1) < 0.01);
      ++strong;
    }
  CHECK(strong >= 10);
}

TEST_CASE("norm is conserved per slice apart from what the band limit removes", "[multislice]") {
  // Every slice: ‖ψ_{n+1}‖² must equal the in-band part of ‖F[t_n ψ_n]‖² (P is unitary there).
  const AtomicModel m = fe3o4_110(1, 1, 1);
  MultisliceSpec spec = reference_spec();
  spec.nx = spec.ny = 48;  // coarse (0.25 Å): the band limit removes a visible share
  const Slicing s = multislice_slicing(m, spec);
  for (int k = 1; k < s.n_slices(); ++k)
    spec.thickness_series_A.push_back(s.boundaries_A[std::size_t(k)]);
  std::vector<Wave> waves;
  const MultisliceReport rep = run_multislice(m, spec, [&](int, int, double, const Wave& w) { waves.push_back(w); });
  REQUIRE(int(waves.size()) == s.n_slices());
  const Grid& g = rep.grid;
  SlicePotential pot(g, {8, 26}, ScatteringTable::Kirkland, 1, FftRigor::Estimate);
  const Fft2D fft(g.nx, g.ny, 1, FftRigor::Estimate);
  const double dz = s.thickness_A(0);
  double worst = 0, removed = 0;
  for (int k = 1; k < s.n_slices(); ++k) {
    std::vector<SliceAtom> atoms;
    for (const Atom& a : m.atoms)
      if (int(std::floor((a.pos_A.z() + 1e-6) / dz)) == k)
        atoms.push_back({a.Z, a.pos_A.x(), a.pos_A.y(), a.occupancy});
    AlignedVector<cfloat> t(g.size()), x(g.size());
    pot.transmission(atoms, rep.sigma_rad_per_VA, t.data());
    for (std::size_t i = 0; i < x.size(); ++i)
      x[i] = waves[std::size_t(k - 1)].psi[i] * t[i];
    fft.forward(x.data());
    double in_band = 0, all = 0;
    for (int iy = 0; iy < g.ny; ++iy)
      for (int ix = 0; ix < g.nx; ++ix) {
        const double v = std::norm(x[std::size_t(iy) * g.nx + ix]) / double(g.size()) / double(g.size());
        all += v;
        if (std::hypot(g.kx_invA(ix), g.ky_invA(iy)) <= g.band_limit_invA())
          in_band += v;
      }
    worst = std::max(worst, std::abs(waves[std::size_t(k)].mean_intensity() - in_band));
    removed += all - in_band;
  }
  INFO("worst per-slice mismatch " << worst << ", removed by the band limit " << removed);
  CHECK(worst < 1e-6);
  // The band limit removed ~1e-4 in all (~1e-5 per slice, 100× the mismatch): not vacuous.
  CHECK(removed > 5e-5);
}

TEST_CASE("frozen phonons: seeded, reproducible, every slice recomputed", "[multislice]") {
  const AtomicModel m = fe3o4_110(1, 1, 1);
  MultisliceSpec spec = reference_spec();
  spec.nx = spec.ny = 64;
  spec.phonon_configs = 2;
  spec.seed = 11;
  std::vector<Wave> a, b, c;
  const MultisliceReport rep = run_multislice(m, spec, [&](int, int, double, const Wave& w) { a.push_back(w); });
  run_multislice(m, spec, [&](int, int, double, const Wave& w) { b.push_back(w); });
  spec.seed = 12;
  run_multislice(m, spec, [&](int, int, double, const Wave& w) { c.push_back(w); });
  REQUIRE(a.size() == 2);
  CHECK(rep.phonon_configs == 2);
  CHECK(rep.transmission_functions_computed == 16);  // 8 non-empty slices × 2 configurations
  auto differ = [](const Wave& x, const Wave& y) {
    double d = 0;
    for (std::size_t i = 0; i < x.psi.size(); ++i)
      d = std::max(d, double(std::abs(x.psi[i] - y.psi[i])));
    return d;
  };
  CHECK(differ(a[0], b[0]) == 0.0);
  CHECK(differ(a[1], b[1]) == 0.0);
  CHECK(differ(a[0], a[1]) > 1e-3);  // configurations differ
  CHECK(differ(a[0], c[0]) > 1e-3);  // seeds differ
}

TEST_CASE("multislice refuses bad input with clear errors", "[multislice]") {
  AtomicModel m = fe3o4_110(1, 1, 1);
  MultisliceSpec spec = reference_spec();
  spec.nx = spec.ny = 64;
  AtomicModel empty = m;
  empty.atoms.clear();
  CHECK_THROWS_WITH(run_multislice(empty, spec, {}), Catch::Contains("no atoms"));
  AtomicModel outside = m;
  outside.atoms[3].pos_A.z() = -0.5;
  CHECK_THROWS_WITH(run_multislice(outside, spec, {}), Catch::Contains("outside the box along the beam"));
  MultisliceSpec coarse = spec;
  coarse.nx = coarse.ny = 16;
  CHECK_THROWS_WITH(run_multislice(m, coarse, {}), Catch::Contains("coarser than 0.5"));
  coarse.nx = coarse.ny = 0;
  coarse.sampling_A = 0.7;
  CHECK_THROWS_WITH(coarse.validate(), Catch::Contains("sampling_A (--sampling)"));
  MultisliceSpec huge = spec;
  huge.nx = huge.ny = 32768;
  const double need = estimate_multislice_memory_bytes(m, huge);
  if (available_memory_bytes() > need) {
    WARN("this machine has " << available_memory_bytes() << " B free, more than a 32768² run needs: skipped");
  } else {
    CHECK_THROWS_WITH(run_multislice(m, huge, {}), Catch::Contains("MemAvailable"));
  }
  MultisliceSpec tilted = spec;
  tilted.beam_tilt_x_mrad = 150;  // beyond the 64² band limit (~ 90 mrad)
  CHECK_THROWS_WITH(run_multislice(m, tilted, {}), Catch::Contains("outside the band limit"));
  MultisliceSpec series = spec;
  series.thickness_series_A = {5, 3};
  CHECK_THROWS_WITH(series.validate(), Catch::Contains("must increase"));
  AtomicModel skew = m;
  skew.cell_A(0, 1) = 1.0;
  CHECK_THROWS_WITH(run_multislice(skew, spec, {}), Catch::Contains("orthorhombic"));
}

TEST_CASE("parallel_for covers every index once and hands a chunk's exception to the caller", "[fft]") {
  std::vector<int> hits(1000, 0);
  parallel_for(hits.size(), 2, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i)
      ++hits[i];
  });
  CHECK(std::count(hits.begin(), hits.end(), 1) == 1000);
  // The second of two chunks fails: the error reaches the caller, and the pool keeps working.
  CHECK_THROWS_WITH(parallel_for(10, 2,
                                 [](std::size_t b, std::size_t) {
                                   if (b > 0)
                                     throw std::runtime_error("chunk failed");
                                 }),
                    "chunk failed");
  std::size_t total = 0;
  std::mutex m;
  parallel_for(100, 2, [&](std::size_t b, std::size_t e) {
    std::lock_guard<std::mutex> lock(m);
    total += e - b;
  });
  CHECK(total == 100);
}
