// Crystal lattice geometry for all seven crystal systems via the metric tensor
// (Giacovazzo, Fundamentals of Crystallography, ch. 2; ITC Vol. B §1.1).
// Cartesian frame (PDB/gemmi convention): a ∥ x, b in the xy plane. Reciprocal vectors carry
// no 2π: |g_hkl| = 1/d_hkl [1/Å].
#pragma once
#include <Eigen/Dense>

namespace epitem {

using Vec3 = Eigen::Vector3d;
using Mat3 = Eigen::Matrix3d;

class Lattice {
public:
  Lattice() = default;
  /// Throws Error for non-positive lengths or angles that do not form a cell.
  Lattice(double a_A, double b_A, double c_A, double alpha_deg, double beta_deg, double gamma_deg);
  /// From a 3×3 matrix whose columns are the lattice vectors a, b, c in Cartesian Å
  /// (the frame is kept as given: used for oriented/super cells).
  static Lattice from_vectors(const Mat3& columns_A);

  double a_A() const { return a_; }
  double b_A() const { return b_; }
  double c_A() const { return c_; }
  double alpha_deg() const { return alpha_; }
  double beta_deg() const { return beta_; }
  double gamma_deg() const { return gamma_; }

  /// Columns are a, b, c in Cartesian Å.
  const Mat3& direct_A() const { return direct_; }
  /// Columns are a*, b*, c* in Cartesian 1/Å (no 2π): direct_Aᵀ · reciprocal = I.
  const Mat3& reciprocal_invA() const { return reciprocal_; }
  /// G = AᵀA [Å²] and G* = G⁻¹ [1/Å²].
  Mat3 metric_A2() const { return direct_.transpose() * direct_; }
  Mat3 reciprocal_metric_invA2() const { return reciprocal_.transpose() * reciprocal_; }
  double volume_A3() const { return std::abs(direct_.determinant()); }
  bool is_orthogonal(double tol_deg = 1e-6) const;

  Vec3 frac_to_cart_A(const Vec3& frac) const { return direct_ * frac; }
  Vec3 cart_to_frac(const Vec3& pos_A) const { return reciprocal_.transpose() * pos_A; }

  /// Cartesian vector of the lattice direction [uvw] [Å].
  Vec3 direction_A(const Vec3& uvw) const { return direct_ * uvw; }
  /// Cartesian reciprocal-lattice vector g_hkl [1/Å], normal to the plane (hkl).
  Vec3 g_invA(const Vec3& hkl) const { return reciprocal_ * hkl; }
  /// |g_hkl| = 1/d [1/Å].
  double g_length_invA(const Vec3& hkl) const { return g_invA(hkl).norm(); }
  /// Interplanar spacing d_hkl = 1/sqrt(hᵀG*h) [Å]; throws for hkl = 000.
  double d_spacing_A(const Vec3& hkl) const;
  /// Angle between plane normals (h1) and (h2), from G* [deg].
  double angle_between_planes_deg(const Vec3& hkl1, const Vec3& hkl2) const;
  /// Angle between directions [u1] and [u2], from G [deg].
  double angle_between_directions_deg(const Vec3& uvw1, const Vec3& uvw2) const;
  /// Direction parallel to the normal of (hkl): uvw = G*·hkl (real-valued, not reduced).
  Vec3 plane_normal_as_direction(const Vec3& hkl) const;
  /// Plane whose normal is parallel to [uvw]: hkl = G·uvw (real-valued, not reduced).
  Vec3 direction_as_plane_normal(const Vec3& uvw) const;

private:
  double a_ = 1, b_ = 1, c_ = 1, alpha_ = 90, beta_ = 90, gamma_ = 90;
  Mat3 direct_ = Mat3::Identity();
  Mat3 reciprocal_ = Mat3::Identity();
};

/// Zone-axis law: the zone [uvw] common to planes (h1) and (h2) is h1 × h2 (integer indices).
inline Vec3 zone_of_planes(const Vec3& hkl1, const Vec3& hkl2) { return hkl1.cross(hkl2); }
/// True when the plane (hkl) belongs to zone [uvw] (h·u = 0, Weiss zone law).
inline bool plane_in_zone(const Vec3& hkl, const Vec3& uvw, double tol = 1e-9) {
  return std::abs(hkl.dot(uvw)) < tol;
}

/// Proper rotation R (det +1) that takes Cartesian `beam` to +z and the component of `x_ref`
/// perpendicular to `beam` to +x. Throws if either is zero or they are parallel.
Mat3 rotation_beam_to_z(const Vec3& beam, const Vec3& x_ref);

/// Rotation by angle_deg about a unit axis (right-handed, Rodrigues).
Mat3 rotation_about_axis(const Vec3& axis, double angle_deg);

/// Integer triple reduced by its greatest common divisor (for printing directions/planes).
Vec3 reduce_indices(const Vec3& v, double tol = 1e-6);

}  // namespace epitem
