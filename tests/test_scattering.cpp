// Scattering factors: f_e(0) sanity values from shared/data/README.md, Kirkland vs Peng
// (docs/formulas.md §3: s = q/2 — the classic factor-2 bug), integral of the projected potential.
#include <cmath>

#include "epitem/error.hpp"
#include "epitem/scattering.hpp"
#include "epitem/units.hpp"
#include "testing.hpp"

using namespace epitem;

TEST_CASE("Kirkland f_e(0) matches the table's sanity values", "[scattering]") {
  // shared/data/README.md: Fe 7.163 Å, O 1.990 Å, Ni 6.557 Å (3 decimals printed).
  CHECK(scattering_factor_A(26, 0.0) == Approx(7.163).margin(5e-4));
  CHECK(scattering_factor_A(8, 0.0) == Approx(1.990).margin(5e-4));
  CHECK(scattering_factor_A(28, 0.0) == Approx(6.557).margin(5e-4));
}

TEST_CASE("Kirkland and Peng agree within a few percent for 0.1 < q < 2 1/Å", "[scattering]") {
  for (int Z : {8, 14, 26, 28, 79}) {
    for (double q = 0.1; q < 2.0; q += 0.1) {
      double fk = scattering_factor_A(Z, q, ScatteringTable::Kirkland);
      double fp = scattering_factor_A(Z, q, ScatteringTable::Peng);
      // Different fits of the same Hartree–Fock factors: a few % (docs/formulas.md §3). A q-vs-s
      // mix-up would make them differ by a factor ~2-4 at q = 1.
      CHECK(std::abs(fk - fp) / fk < 0.04);
    }
  }
}

TEST_CASE("projected potential: real-space form integrates to 47.88·f_e(0)", "[scattering]") {
  // ∫ v_z d²r = 2π ∫ v_z(r) r dr = POTENTIAL_PREFACTOR_VA2 · f_e(0) (docs/formulas.md §4).
  for (int Z : {8, 26}) {
    double sum = 0;
    const double dr = 1e-4;
    for (double r = dr / 2; r < 20; r += dr)
      sum += 2 * PI * r * kirkland_projected_potential_VA(Z, r) * dr;
    CHECK(sum == Approx(POTENTIAL_PREFACTOR_VA2 * scattering_factor_A(Z, 0)).epsilon(1e-3));
  }
  CHECK_THROWS_AS(scattering_factor_A(0, 0.5), Error);
  CHECK_THROWS_AS(scattering_factor_A(104, 0.5), Error);
}
