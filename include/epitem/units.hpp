// Physical constants, unit factors and the relativistic electron (docs/formulas.md §1-2).
// Canonical units everywhere in the library: Å, eV, mrad (beam angles), deg (crystal angles), V.
#pragma once
#include <cmath>

namespace epitem {

constexpr double PI = 3.14159265358979323846;
constexpr double HC_EV_A = 12398.4198;                  ///< h·c [eV·Å] (CODATA 2018)
constexpr double ELECTRON_REST_ENERGY_EV = 510998.95;   ///< m₀c² [eV]
/// h²/(2π m₀ e) = 2π a₀ e [V·Å²]: converts f_e [Å] into potential (docs/formulas.md §4).
constexpr double POTENTIAL_PREFACTOR_VA2 = 47.87764;
constexpr double BOHR_RADIUS_TIMES_E_VA = 7.619934;     ///< a₀·e [V·Å] (Kirkland Eq. 5.9)

/// Multiply a value in the named unit to get the canonical unit (Å, eV, mrad, deg).
namespace units {
constexpr double A = 1.0;
constexpr double pm = 0.01;
constexpr double nm = 10.0;
constexpr double um = 1e4;
constexpr double mm = 1e7;
constexpr double eV = 1.0;
constexpr double keV = 1e3;
constexpr double mrad = 1.0;
constexpr double rad = 1e3;          ///< beam angles: rad → mrad
constexpr double deg = 1.0;          ///< crystal angles are canonical in degrees
constexpr double deg_to_rad = PI / 180.0;
constexpr double mrad_to_rad = 1e-3;
}  // namespace units

/// Relativistic electron wavelength λ [Å] for kinetic energy [eV] (docs/formulas.md §2).
inline double electron_wavelength_A(double energy_eV) {
  return HC_EV_A / std::sqrt(energy_eV * (2 * ELECTRON_REST_ENERGY_EV + energy_eV));
}

/// Interaction parameter σ [rad/(V·Å)] (Kirkland Eq. 5.6): t = exp(iσ v_z).
inline double interaction_sigma_rad_per_VA(double energy_eV) {
  const double m0c2 = ELECTRON_REST_ENERGY_EV;
  return 2 * PI / (electron_wavelength_A(energy_eV) * energy_eV) * (m0c2 + energy_eV) /
         (2 * m0c2 + energy_eV);
}

/// Debye–Waller B [Å²] from mean-square displacement U_iso [Å²]: B = 8π²U.
inline double u_to_b_A2(double u_iso_A2) { return 8 * PI * PI * u_iso_A2; }
inline double b_to_u_A2(double b_A2) { return b_A2 / (8 * PI * PI); }

}  // namespace epitem
