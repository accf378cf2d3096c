// Temperature → isotropic mean-square displacement U_iso(T) by the Debye model, per element
// (Debye temperatures from reference/debye/debye_temperatures.csv, overridable):
//   U = 3ħ²/(m k_B Θ) · [Φ(x)/x + 1/4],  x = Θ/T,  Φ(x) = (1/x)∫₀ˣ t/(eᵗ − 1) dt
// (Willis & Pryor, Thermal Vibrations in Crystallography, 1975, Eq. 4.24; the 1/4 is the
// zero-point term, so U(0 K) = 3ħ²/(4 m k_B Θ) > 0; for T ≫ Θ, U → 3ħ²T/(m k_B Θ²)).
// Used for Debye–Waller factors (B = 8π²U) and frozen-phonon displacements N(0, U) per axis.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "epitem/crystal.hpp"
#include "epitem/json.hpp"
#include "epitem/model.hpp"

namespace epitem {

/// Φ(x) = (1/x)∫₀ˣ t/(eᵗ − 1) dt (Debye function of the Debye–Waller factor), x ≥ 0; Φ(0) = 1.
double debye_phi(double x);

/// U_iso [Å²] of an atom of mass mass_u [u] in a Debye solid with Debye temperature theta_K
/// at temperature_K (≥ 0; 0 gives the zero-point value).
double debye_u_iso_A2(double mass_u, double theta_K, double temperature_K);

/// One row of the default table: Debye temperature [K] and its source ("" when Z has none).
struct DebyeTableEntry {
  double theta_K = 0;
  std::string source;
};
/// Default Debye temperature of element Z (theta_K = 0 when the table has no entry).
DebyeTableEntry default_debye_temperature(int Z);

/// "--temperature 700C" and "--debye-temperature Fe=470K,O=650K" resolved.
struct ThermalSpec {
  double temperature_K = -1;             ///< < 0: not set (models keep their own U_iso)
  std::map<int, double> theta_override_K;  ///< per element, from --debye-temperature
  bool active() const { return temperature_K >= 0; }
  /// Θ for Z: override, else the table; throws Error naming --debye-temperature when neither.
  double theta_K(int Z) const;
  std::string theta_source(int Z) const;
  double u_iso_A2(int Z) const;          ///< debye_u_iso_A2(atomic_mass_u(Z), theta_K(Z), T)
};

/// Parses "Fe=470K,O=650K" (a bare number is K) into {Z: Θ}; throws Error naming `what`.
std::map<int, double> parse_debye_temperatures(const std::string& text, const std::string& what);

/// Sets every atom's / site's U_iso to the Debye value at spec.temperature_K (no-op when
/// the spec is not active).
void apply_temperature(AtomicModel& model, const ThermalSpec& spec);
void apply_temperature(Crystal& crystal, const ThermalSpec& spec);

/// Sidecar entry: temperature, model and per element {debye_temperature_K, source, u_iso_A2}
/// for the elements given (when active); always the U_iso range used per element
/// (u_iso_A2: a number when all atoms of the element share it, else [min, max]).
Json thermal_json(const ThermalSpec& spec, const std::map<int, std::vector<double>>& u_used_A2);

}  // namespace epitem
