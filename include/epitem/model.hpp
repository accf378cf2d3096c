// An atomic model in a box in Cartesian Å, ready for multislice: beam along +z, box periodic
// laterally (x, y) and open along z. Built from a crystal (orient + tile) or by the interface
// builder; read/written as extended XYZ (structure_io.hpp).
#pragma once
#include <array>
#include <string>
#include <vector>

#include "epitem/crystal.hpp"

namespace epitem {

struct Atom {
  int Z = 0;
  Vec3 pos_A = Vec3::Zero();   ///< Cartesian position [Å], inside the box for x, y
  double occupancy = 1.0;
  double u_iso_A2 = 0.0;       ///< isotropic mean-square displacement [Å²]
  int phase = 0;               ///< index into AtomicModel::phase_names
};

struct AtomicModel {
  /// Columns are the cell vectors [Å]. Multislice needs a ∥ x, b ∥ y, c ∥ z (orthorhombic).
  Mat3 cell_A = Mat3::Identity();
  std::array<bool, 3> pbc = {true, true, false};  ///< periodic along x, y; not along the beam
  std::vector<Atom> atoms;
  std::vector<std::string> phase_names = {"crystal"};

  bool is_orthorhombic(double tol_A = 1e-6) const;
  Vec3 box_lengths_A() const { return {cell_A.col(0).norm(), cell_A.col(1).norm(), cell_A.col(2).norm()}; }
};

/// Orients `crystal` with zone axis [uvw] along +z and the in-plane direction `x_uvw`
/// (a lattice direction perpendicular to [uvw]) along +x, and tiles it into the smallest
/// orthorhombic repeat that is commensurate with the lattice, times `repeats` (nx, ny, nz).
/// x_uvw = 000 picks the cell of smallest area: y = the shortest lattice vector ⊥ [uvw] that has
/// a lattice vector along y × z, and x ∥ y × z (cubic [110]: x ∥ [-110], y ∥ [001]; [001]:
/// x ∥ [100], y ∥ [010]; ties prefer larger w, then v). Throws Error when no orthorhombic
/// repeat with indices ≤ max_index exists (a non-orthogonal zone) — say which in the message.
AtomicModel orient_crystal(const Crystal& crystal, const Vec3& zone_uvw, const Vec3& x_uvw,
                           const std::array<int, 3>& repeats, int max_index = 12);

/// Rotation used by orient_crystal: R·direction_A(zone) ∥ +z, R·direction_A(x_uvw) ∥ +x.
Mat3 zone_rotation(const Crystal& crystal, const Vec3& zone_uvw, const Vec3& x_uvw);

/// A P1 Crystal from a periodic model (lattice = cell; sites = atoms in fractional coordinates).
Crystal model_as_crystal(const AtomicModel& model, const std::string& name);

}  // namespace epitem
