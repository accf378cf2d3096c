#include "epitem/lattice.hpp"

#include <cmath>
#include <numeric>

#include "epitem/error.hpp"
#include "epitem/units.hpp"

namespace epitem {

Lattice::Lattice(double a_A, double b_A, double c_A, double alpha_deg, double beta_deg,
                 double gamma_deg)
    : a_(a_A), b_(b_A), c_(c_A), alpha_(alpha_deg), beta_(beta_deg), gamma_(gamma_deg) {
  if (!(a_A > 0 && b_A > 0 && c_A > 0))
    fail("lattice: cell lengths must be > 0 Å, got a=", a_A, " b=", b_A, " c=", c_A);
  if (!(alpha_deg > 0 && alpha_deg < 180 && beta_deg > 0 && beta_deg < 180 && gamma_deg > 0 &&
        gamma_deg < 180))
    fail("lattice: cell angles must be in (0, 180) deg, got ", alpha_deg, ", ", beta_deg, ", ",
         gamma_deg);
  const double d2r = units::deg_to_rad;
  double ca = std::cos(alpha_deg * d2r), cb = std::cos(beta_deg * d2r);
  double cg = std::cos(gamma_deg * d2r), sg = std::sin(gamma_deg * d2r);
  // a ∥ x, b in the xy plane (ITC B §1.1.1; gemmi uses the same frame).
  double cx = c_A * cb;
  double cy = c_A * (ca - cb * cg) / sg;
  double cz2 = c_A * c_A - cx * cx - cy * cy;
  if (cz2 <= 1e-12 * c_A * c_A)
    fail("lattice: angles alpha=", alpha_deg, " beta=", beta_deg, " gamma=", gamma_deg,
         " deg do not form a cell (zero volume)");
  direct_ << a_A, b_A * cg, cx,
             0.0, b_A * sg, cy,
             0.0, 0.0, std::sqrt(cz2);
  reciprocal_ = direct_.inverse().transpose();
}

Lattice Lattice::from_vectors(const Mat3& columns_A) {
  if (std::abs(columns_A.determinant()) < 1e-9)
    fail("lattice: cell vectors are coplanar (zero volume)");
  Lattice lat;
  Vec3 a = columns_A.col(0), b = columns_A.col(1), c = columns_A.col(2);
  auto angle = [](const Vec3& u, const Vec3& v) {
    return std::acos(std::clamp(u.dot(v) / (u.norm() * v.norm()), -1.0, 1.0)) * 180.0 / PI;
  };
  lat.a_ = a.norm();
  lat.b_ = b.norm();
  lat.c_ = c.norm();
  lat.alpha_ = angle(b, c);
  lat.beta_ = angle(a, c);
  lat.gamma_ = angle(a, b);
  lat.direct_ = columns_A;
  lat.reciprocal_ = columns_A.inverse().transpose();
  return lat;
}

bool Lattice::is_orthogonal(double tol_deg) const {
  return std::abs(alpha_ - 90) < tol_deg && std::abs(beta_ - 90) < tol_deg &&
         std::abs(gamma_ - 90) < tol_deg;
}

double Lattice::d_spacing_A(const Vec3& hkl) const {
  double g2 = hkl.dot(reciprocal_metric_invA2() * hkl);
  if (g2 <= 0)
    fail("d-spacing of reflection 000 is undefined");
  return 1.0 / std::sqrt(g2);
}

static double angle_with_metric(const Mat3& metric, const Vec3& u, const Vec3& v) {
  double uu = u.dot(metric * u), vv = v.dot(metric * v);
  if (uu <= 0 || vv <= 0)
    fail("angle with a zero vector is undefined");
  double c = u.dot(metric * v) / std::sqrt(uu * vv);
  return std::acos(std::clamp(c, -1.0, 1.0)) * 180.0 / PI;
}

double Lattice::angle_between_planes_deg(const Vec3& hkl1, const Vec3& hkl2) const {
  return angle_with_metric(reciprocal_metric_invA2(), hkl1, hkl2);
}

double Lattice::angle_between_directions_deg(const Vec3& uvw1, const Vec3& uvw2) const {
  return angle_with_metric(metric_A2(), uvw1, uvw2);
}

Vec3 Lattice::plane_normal_as_direction(const Vec3& hkl) const {
  return reciprocal_metric_invA2() * hkl;
}

Vec3 Lattice::direction_as_plane_normal(const Vec3& uvw) const { return metric_A2() * uvw; }

Mat3 rotation_beam_to_z(const Vec3& beam, const Vec3& x_ref) {
  if (beam.norm() < 1e-12)
    fail("orientation: beam direction is a zero vector");
  Vec3 z = beam.normalized();
  Vec3 x = x_ref - x_ref.dot(z) * z;
  if (x.norm() < 1e-9 * std::max(1.0, x_ref.norm()))
    fail("orientation: in-plane reference direction is zero or parallel to the beam");
  x.normalize();
  Vec3 y = z.cross(x);
  Mat3 r;
  r.row(0) = x.transpose();
  r.row(1) = y.transpose();
  r.row(2) = z.transpose();
  return r;
}

Mat3 rotation_about_axis(const Vec3& axis, double angle_deg) {
  if (axis.norm() < 1e-12)
    fail("rotation axis is a zero vector");
  return Eigen::AngleAxisd(angle_deg * units::deg_to_rad, axis.normalized()).toRotationMatrix();
}

Vec3 reduce_indices(const Vec3& v, double tol) {
  long iv[3];
  for (int i = 0; i < 3; ++i) {
    if (std::abs(v[i] - std::round(v[i])) > tol)
      return v;
    iv[i] = std::lround(v[i]);
  }
  long g = std::gcd(std::gcd(std::labs(iv[0]), std::labs(iv[1])), std::labs(iv[2]));
  if (g <= 1)
    return v;
  return Vec3(double(iv[0] / g), double(iv[1] / g), double(iv[2] / g));
}

}  // namespace epitem
