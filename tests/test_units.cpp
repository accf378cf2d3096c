// Relativistic electron and unit parsing: docs/formulas.md §1-2 table (CODATA formula).
#include "epitem/error.hpp"
#include "epitem/quantity.hpp"
#include "epitem/units.hpp"
#include "testing.hpp"

using namespace epitem;

TEST_CASE("electron wavelength and interaction parameter match docs/formulas.md §2", "[units]") {
  struct Row { double kV, lambda_A, sigma; };
  // Values from docs/formulas.md §2 (5-6 significant digits printed there).
  const Row rows[] = {{80, 0.041757, 1.00871e-3}, {120, 0.033492, 8.63811e-4},
                      {200, 0.025079, 7.28840e-4}, {300, 0.019687, 6.52616e-4}};
  for (const auto& r : rows) {
    // Tolerance: half a unit in the last printed digit.
    CHECK(electron_wavelength_A(r.kV * 1e3) == Approx(r.lambda_A).margin(5e-7));
    CHECK(interaction_sigma_rad_per_VA(r.kV * 1e3) == Approx(r.sigma).margin(r.sigma * 1e-5));
  }
  // Non-relativistic limit: λ → h/sqrt(2 m E) = 12.2643/sqrt(E[eV]) Å at low energy.
  CHECK(electron_wavelength_A(10.0) == Approx(12.2643 / std::sqrt(10.0)).epsilon(1e-4));
}

TEST_CASE("quantities parse with units into canonical units", "[units]") {
  CHECK(parse_quantity("200kV", Dimension::Energy, "--energy") == Approx(200e3));
  CHECK(parse_quantity("1.2mm", Dimension::Length, "--cs") == Approx(1.2e7));
  CHECK(parse_quantity("50nm", Dimension::Length, "--x") == Approx(500));
  CHECK(parse_quantity("0.5mrad", Dimension::BeamAngle, "--x") == Approx(0.5));
  CHECK(parse_quantity("4.2deg", Dimension::CrystalAngle, "--tilt") == Approx(4.2));
  CHECK(parse_quantity("3.37/nm", Dimension::InverseLength, "--g") == Approx(0.337));
  CHECK(parse_quantity("12", Dimension::Length, "--x", units::nm) == Approx(120));
  CHECK(parse_spacing_A("3.37/nm", "--spacings") == Approx(1 / 0.337));
  CHECK(parse_spacing_A("2.97A", "--spacings") == Approx(2.97));
  CHECK_THROWS_AS(parse_quantity("12 parsecs", Dimension::Length, "--x"), Error);
  CHECK_THROWS_AS(parse_quantity("abc", Dimension::Length, "--x"), Error);
  CHECK_THROWS_AS(parse_quantity("200kV", Dimension::Length, "--x"), Error);
  CHECK(parse_int_triple("1,-1,0", "--zone") == std::vector<int>{1, -1, 0});
  CHECK(parse_int_triple("[1-10]", "--zone") == std::vector<int>{1, -1, 0});
  CHECK(parse_grid_size("512x256", "--gpts") == std::vector<int>{512, 256});
  CHECK_THROWS_AS(parse_grid_size("1", "--gpts"), Error);
}
