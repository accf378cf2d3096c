// Parsing of unit-bearing values from the command line and files ("200kV", "1.2mm", "3.37/nm").
// Every parser returns the canonical unit (units.hpp); a bare number is read in `bare_unit`.
#pragma once
#include <string>
#include <vector>

namespace epitem {

enum class Dimension {
  Length,          ///< canonical Å: A, Å, pm, nm, um, mm
  InverseLength,   ///< canonical 1/Å: /A, 1/A, A^-1, /nm, 1/nm, nm^-1
  Energy,          ///< canonical eV: eV, keV, kV (accelerating voltage), V, MeV
  BeamAngle,       ///< canonical mrad: mrad, urad, rad, deg
  CrystalAngle,    ///< canonical deg: deg, °, rad, mrad
  Time,            ///< canonical s: s, ms, us, min
  Dose,            ///< canonical e/Å²: e/A2, e/A^2, e/nm2
  Temperature,     ///< canonical K: K, C, °C, degC (Celsius adds 273.15); a unit is required
  Dimensionless,
};

/// Canonical unit symbol of a dimension, for help texts and echoes ("Å", "1/Å", "eV"...).
const char* canonical_unit_symbol(Dimension dim);

/// Parses "<number>[unit]". `bare_unit` is the factor applied to a number without unit
/// (1.0 = canonical). Throws Error naming `what` on a bad number or a unit of the wrong kind.
double parse_quantity(const std::string& text, Dimension dim, const std::string& what,
                      double bare_unit = 1.0);

/// Comma-separated list of quantities ("50,100,150nm" applies the last unit to bare entries
/// only if they have none: each entry is parsed on its own).
std::vector<double> parse_quantity_list(const std::string& text, Dimension dim,
                                        const std::string& what, double bare_unit = 1.0);

/// A lattice spacing given either as a length ("2.97A", "0.297nm") or as a reciprocal
/// length ("3.37/nm"); returns d [Å]. Bare numbers are Å.
double parse_spacing_A(const std::string& text, const std::string& what);

/// Integer triple "1,-1,0" or "1 -1 0" or "1-10" (single-digit compact form) → {h,k,l}.
std::vector<int> parse_int_triple(const std::string& text, const std::string& what);

/// Grid size "512" or "512x256" → {nx, ny}.
std::vector<int> parse_grid_size(const std::string& text, const std::string& what);

}  // namespace epitem
