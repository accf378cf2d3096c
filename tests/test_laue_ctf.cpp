// Laue-zone labels reduced by the lattice centring, and the two CTF limits (hand values).
#include <cmath>

#include "epitem/kinematic.hpp"
#include "epitem/optics.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"
#include "testing.hpp"

using namespace epitem;

TEST_CASE("Laue-zone period and order reduced by the lattice centring", "[laue]") {
  const Crystal fcc = read_crystal("Ni"), bcc = read_crystal("Fe"), fd3m = read_crystal("Fe3O4");
  // Hand values: allowed hkl of F are all-odd/all-even, of I have h+k+l even; n = h·u+k·v+l·w.
  CHECK(laue_zone_period(fcc, {1, 1, 0}) == 2);   // 111 → 2, 200 → 2, 220 → 4
  CHECK(laue_zone_period(fcc, {0, 0, 1}) == 1);   // 111 → 1
  CHECK(laue_zone_period(fcc, {1, 1, 1}) == 1);   // 1-11 → 1
  CHECK(laue_zone_period(bcc, {1, 1, 1}) == 2);   // 110 → 2, 200 → 2
  CHECK(laue_zone_period(bcc, {0, 0, 1}) == 1);   // 101 → 1
  CHECK(laue_zone_period(bcc, {1, 1, 0}) == 1);   // 101 → 1
  CHECK(laue_zone_period(fd3m, {1, 1, 0}) == 2);  // F centring (the d glide is not a centring)
  CHECK(laue_zone_period(fd3m, {1, 1, 2}) == 2);  // 111 → 4, 1-11 → 2, 002 → 4
  CHECK(laue_zone_period(fd3m, {0, 0, 1}) == 1);
  CHECK(laue_zone_order(fcc, {1, 1, 1}, {1, 1, 0}) == 1);
  CHECK(laue_zone_order(fcc, {-1, -1, 1}, {1, 1, 0}) == -1);
  CHECK(laue_zone_order(fcc, {2, 2, 0}, {1, 1, 0}) == 2);
  CHECK(laue_zone_order(bcc, {1, 1, 0}, {1, 1, 1}) == 1);
  CHECK(laue_zone_order(fd3m, {1, 1, 1}, {1, 1, 2}) == 2);
}

TEST_CASE("SAED labels the fcc [110] first-order Laue zone ±1 and --holz 1 shows it", "[laue]") {
  SaedSpec spec;
  spec.max_laue_zone = 1;
  spec.holz_s_max_invA = 10;  // every HOLZ reflection within g_max, whatever its s
  spec.double_diffraction = false;
  const SaedPattern p = kinematic_saed({saed_phase_for_zone(read_crystal("Ni"), {1, 1, 0})}, spec);
  int folz = 0;
  for (const auto& s : p.spots) {
    if (s.is_direct_beam)
      continue;
    const int n = s.hkl[0] + s.hkl[1];
    CHECK(s.laue_zone * 2 == n);
    CHECK(std::abs(s.laue_zone) <= 1);
    folz += std::abs(s.laue_zone) == 1;
  }
  CHECK(folz > 0);
  // The FOLZ layer lies 2/|[110]| = √2/a above the ZOLZ.
  for (const auto& s : p.spots)
    if (s.laue_zone == 1)
      CHECK(s.g_lab_invA.z() == Approx(std::sqrt(2.0) / read_crystal("Ni").lattice.a_A()).margin(1e-9));
}

TEST_CASE("CTF information limit (temporal) and combined-envelope limit at Scherzer", "[ctf]") {
  // Hand values (200 kV, Cs 1 mm, Cc 1.1 mm, ΔE 0.8 eV FWHM → σ = 21.7432 Å, α = 0.2 mrad,
  // Kirkland Scherzer defocus 613.343 Å): temporal k = √(2/(πλσ)) = 1.080489 1/Å (0.9255 Å);
  // E_t·E_s = e⁻² solved by bisection (python, physics.md §6 formulas): k = 0.730326 1/Å (1.3693 Å).
  const double lam = electron_wavelength_A(200e3);
  const FocalSpread f = focal_spread_from_chromatic(1.1e7, 0.8, 200e3);
  CHECK(f.sigma_A == Approx(21.7432).epsilon(1e-5));
  CHECK(temporal_information_limit_invA(lam, f.sigma_A) == Approx(1.080489).epsilon(1e-6));
  Aberrations ab;
  ab.Cs_A = 1e7;
  ab.defocus_A = scherzer_defocus_A(ab.Cs_A, 200e3);
  CHECK(ab.defocus_A == Approx(613.343).epsilon(1e-6));
  CHECK(combined_envelope_limit_invA(ab, lam, f.sigma_A, 0.2) == Approx(0.730326).margin(5e-5));
  CHECK(temporal_information_limit_invA(lam, 0) == 0);
}
