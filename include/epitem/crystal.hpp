// A crystal: lattice, space-group operations and the atoms of the full unit cell (P1-expanded,
// special-position duplicates merged). Mixed sites (NiFe alloy) are several Site entries at
// the same fractional position whose occupancies add up to ≤ 1.
#pragma once
#include <string>
#include <vector>

#include "epitem/lattice.hpp"

namespace epitem {

/// One symmetry operation x' = rot·x + tran in fractional coordinates.
struct SymOp {
  Mat3 rot = Mat3::Identity();
  Vec3 tran = Vec3::Zero();
};

struct Site {
  std::string label;       ///< CIF label ("Fe1"); empty when the source has none
  int Z = 0;               ///< atomic number
  Vec3 frac = Vec3::Zero();///< fractional coordinates in [0, 1)
  double occupancy = 1.0;
  double u_iso_A2 = 0.0;   ///< isotropic mean-square displacement U [Å²]; B = 8π²U
};

struct Crystal {
  std::string name;            ///< phase name ("Fe3O4"), used to label output
  std::string source;          ///< file or built-in it came from
  Lattice lattice;
  std::string spacegroup_hm;   ///< Hermann–Mauguin symbol as read ("F d -3 m :2"); "P 1" if none
  int spacegroup_number = 1;
  std::vector<SymOp> symops;   ///< full list including centring; identity only for P1
  std::vector<Site> sites;     ///< all atoms of the unit cell (already expanded by symmetry)

  /// Sum of occupancies per element → chemical formula of the cell ("Fe24 O32").
  std::string cell_formula() const;
  /// Density [g/cm³] from the sites' occupancies and atomic masses.
  double density_g_cm3() const;
};

/// Reflections equivalent to hkl under the crystal's point group (rotation parts of symops,
/// plus Friedel's law), each listed once.
std::vector<Vec3> equivalent_reflections(const Crystal& crystal, const Vec3& hkl);

}  // namespace epitem
