// Objective lens: χ(k) conventions, Scherzer defocus, envelopes, focal-spread conversions.
#include "testing.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "epitem/error.hpp"
#include "epitem/optics.hpp"
#include "epitem/units.hpp"

using namespace epitem;

static const double LAMBDA_200KV = electron_wavelength_A(200e3);

TEST_CASE("chi: round lens equals docs/formulas.md §6 formula, positive defocus = underfocus", "[optics]") {
  Aberrations ab;
  ab.defocus_A = 613.3;
  ab.Cs_A = 1.0 * units::mm;
  const double lam = LAMBDA_200KV;
  for (double k : {0.0, 0.1, 0.25, 0.5, 0.8}) {
    const double expected = PI * lam * k * k * (0.5 * ab.Cs_A * lam * lam * k * k - ab.defocus_A);
    // Same χ whatever the azimuth of k (round lens). 1e-12 relative: double round-off only.
    CHECK(chi_rad(ab, lam, k, 0) == Approx(expected).margin(1e-12));
    CHECK(chi_rad(ab, lam, k / std::sqrt(2.0), -k / std::sqrt(2.0)) == Approx(expected).margin(1e-9));
  }
  // Underfocus makes χ negative at low k (sin χ < 0: phase contrast gives dark atoms).
  CHECK(chi_rad(ab, lam, 0.1, 0) < 0);
  ab.C5_A = 5 * units::mm;
  const double k = 0.4;
  CHECK(chi_rad(ab, lam, k, 0) - chi_rad(Aberrations{613.3, 1e7}, lam, k, 0) ==
        Approx(PI / 3 * std::pow(lam, 5) * ab.C5_A * std::pow(k, 6)).epsilon(1e-9));
}

TEST_CASE("chi: polar coefficients follow the Krivanek convention", "[optics]") {
  const double lam = LAMBDA_200KV, k = 0.3;
  Aberrations a2;
  a2.astigmatism_A = 50;
  a2.astigmatism_angle_deg = 30;
  const double phi = 30 * units::deg_to_rad;
  // Along φ12 the two-fold term is +πλC12k², 45° away from it zero, 90° away −πλC12k².
  CHECK(chi_rad(a2, lam, k * std::cos(phi), k * std::sin(phi)) == Approx(PI * lam * 50 * k * k));
  CHECK(chi_rad(a2, lam, k * std::cos(phi + PI / 4), k * std::sin(phi + PI / 4)) ==
        Approx(0).margin(1e-12));
  CHECK(chi_rad(a2, lam, k * std::cos(phi + PI / 2), k * std::sin(phi + PI / 2)) ==
        Approx(-PI * lam * 50 * k * k));
  Aberrations a3;
  a3.threefold_A = 1000;
  a3.threefold_angle_deg = 10;
  const double p3 = 10 * units::deg_to_rad;
  // (2π/λ)·⅓α³C23 along φ23, and the three-fold symmetry: rotating k by 120° changes nothing.
  CHECK(chi_rad(a3, lam, k * std::cos(p3), k * std::sin(p3)) ==
        Approx(2 * PI / 3 * lam * lam * 1000 * k * k * k));
  CHECK(chi_rad(a3, lam, k * std::cos(p3 + 2 * PI / 3), k * std::sin(p3 + 2 * PI / 3)) ==
        Approx(2 * PI / 3 * lam * lam * 1000 * k * k * k));
  Aberrations c;
  c.coma_A = 2000;
  c.coma_angle_deg = 0;
  // Coma is odd in k.
  CHECK(chi_rad(c, lam, k, 0) == Approx(-chi_rad(c, lam, -k, 0)));
  CHECK(chi_rad(c, lam, k, 0) == Approx(2 * PI / 3 * lam * lam * 2000 * k * k * k));
}

TEST_CASE("chi gradient: analytic equals finite differences for every coefficient", "[optics]") {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(-1, 1);
  const double lam = LAMBDA_200KV;
  for (int trial = 0; trial < 20; ++trial) {
    Aberrations ab{300 * u(rng), 1e7 * u(rng), 1e8 * u(rng), 50 * u(rng), 180 * u(rng),
                   1000 * u(rng), 180 * u(rng), 1000 * u(rng), 180 * u(rng)};
    const double kx = 0.6 * u(rng), ky = 0.6 * u(rng), h = 1e-6;
    double gx, gy;
    chi_gradient(ab, lam, kx, ky, gx, gy);
    const double nx = (chi_rad(ab, lam, kx + h, ky) - chi_rad(ab, lam, kx - h, ky)) / (2 * h);
    const double ny = (chi_rad(ab, lam, kx, ky + h) - chi_rad(ab, lam, kx, ky - h)) / (2 * h);
    // Central differences with h = 1e-6: truncation ~h², round-off ~1e-16·|χ|/h.
    CHECK(gx == Approx(nx).epsilon(1e-6).margin(1e-6));
    CHECK(gy == Approx(ny).epsilon(1e-6).margin(1e-6));
  }
}

TEST_CASE("Scherzer defocus: the three definitions, values from docs/formulas.md §6", "[optics]") {
  // Reference numbers: reference/imaging/README.md (λ from the CODATA formula, Python).
  CHECK(scherzer_defocus_A(1 * units::mm, 200e3) == Approx(613.343).epsilon(1e-5));
  CHECK(scherzer_defocus_A(1.3 * units::mm, 200e3) == Approx(699.319).epsilon(1e-5));
  CHECK(scherzer_defocus_A(1 * units::mm, 200e3, ScherzerDefinition::Scherzer1949) ==
        Approx(578.266).epsilon(1e-5));
  CHECK(scherzer_defocus_A(1 * units::mm, 200e3, ScherzerDefinition::Extended) ==
        Approx(600.951).epsilon(1e-5));
  CHECK_THROWS_AS(scherzer_defocus_A(0, 200e3), Error);
}

TEST_CASE("envelopes: 1 at k = 0, monotone, spatial = docs/formulas.md round-lens formula", "[optics]") {
  const double lam = LAMBDA_200KV;
  Aberrations ab{613.3, 1e7};
  const double alpha = 0.5;  // mrad
  CHECK(temporal_envelope(lam, 30, 0) == 1.0);
  CHECK(spatial_envelope(ab, lam, alpha, 0, 0) == 1.0);
  double prev = 1;
  for (double k = 0.05; k < 1.0; k += 0.05) {
    const double et = temporal_envelope(lam, 30, k);
    CHECK(et < prev);
    prev = et;
    CHECK(et == Approx(std::exp(-0.5 * std::pow(PI * lam * 30 * k * k, 2))));
    const double a = alpha * 1e-3;
    const double es = std::exp(-std::pow(PI * a / lam, 2) *
                               std::pow(ab.Cs_A * std::pow(lam, 3) * std::pow(k, 3) - ab.defocus_A * lam * k, 2));
    CHECK(spatial_envelope(ab, lam, alpha, 0, k) == Approx(es).epsilon(1e-10));
  }
}

TEST_CASE("focal spread: explicit kinds and conversions", "[optics]") {
  CHECK(focal_spread_from_width(40, FocalSpreadKind::Sigma).sigma_A == 40);
  CHECK(focal_spread_from_width(40, FocalSpreadKind::HalfWidth1e).sigma_A ==
        Approx(40 / std::sqrt(2.0)));
  CHECK(focal_spread_from_width(40, FocalSpreadKind::Fwhm).sigma_A == Approx(40 / 2.354820045));
  // Cc 1.2 mm, ΔE 0.7 eV FWHM at 200 kV → 20.7549 Å (reference/imaging/README.md).
  const FocalSpread f = focal_spread_from_chromatic(1.2 * units::mm, 0.7, 200e3);
  CHECK(f.sigma_A == Approx(20.7549).epsilon(1e-5));
  CHECK(f.conversion.find("sigma =") != std::string::npos);
  CHECK(focal_spread_from_width(40, FocalSpreadKind::HalfWidth1e).conversion.find("1/e") !=
        std::string::npos);
  CHECK(parse_focal_spread_kind("fwhm") == FocalSpreadKind::Fwhm);
  CHECK_THROWS_AS(parse_focal_spread_kind("rms-ish"), Error);
}

TEST_CASE("lens validation: negative focal spread is an error", "[optics][errors]") {
  CHECK_THROWS_AS(focal_spread_from_width(-10, FocalSpreadKind::Sigma), Error);
  Lens lens;
  lens.focal_spread_A = -5;
  CHECK_THROWS_WITH(lens.validate(), Catch::Contains("focal spread must be ≥ 0"));
  lens.focal_spread_A = 0;
  lens.convergence_mrad = -0.1;
  CHECK_THROWS_AS(lens.validate(), Error);
  lens.convergence_mrad = 0;
  lens.energy_eV = 0;
  CHECK_THROWS_AS(lens.validate(), Error);
  lens.energy_eV = 200e3;
  CHECK_NOTHROW(lens.validate());
  lens.aperture_mrad = 10;
  CHECK(lens.aperture_invA() == Approx(0.01 / LAMBDA_200KV));
}

TEST_CASE("chi and envelopes match the independent Python table", "[optics][reference]") {
  // reference/imaging/ctf_200kV.csv from make_ctf_reference.py (docs/formulas.md formulas, double).
  std::ifstream in(testing::source_path("reference/imaging/ctf_200kV.csv"));
  REQUIRE(in);
  std::string line;
  std::getline(in, line);
  Aberrations ab;
  ab.defocus_A = 500;
  ab.Cs_A = 1.2 * units::mm;
  const double lam = electron_wavelength_A(200e3);
  int rows = 0;
  while (std::getline(in, line)) {
    std::replace(line.begin(), line.end(), ',', ' ');
    std::istringstream is(line);
    double k, chi, et, es;
    is >> k >> chi >> et >> es;
    // 1e-9 relative: both sides are double precision evaluations of the same closed forms.
    CHECK(chi_rad(ab, lam, k, 0) == Approx(chi).epsilon(1e-9).margin(1e-12));
    CHECK(temporal_envelope(lam, 30, k) == Approx(et).epsilon(1e-9).margin(1e-300));
    CHECK(spatial_envelope(ab, lam, 0.3, k / std::sqrt(2.0), k / std::sqrt(2.0)) ==
          Approx(es).epsilon(1e-8).margin(1e-300));
    ++rows;
  }
  CHECK(rows == 41);
}
