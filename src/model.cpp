#include "epitem/model.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "epitem/error.hpp"

namespace epitem {

namespace {

using Index3 = std::array<long, 3>;

Vec3 as_vec(const Index3& t) { return Vec3(double(t[0]), double(t[1]), double(t[2])); }

std::string str(const Vec3& v) {
  std::string s = "[";
  for (int i = 0; i < 3; ++i)
    s += (i ? " " : "") + std::to_string(std::lround(v[i]));
  return s + "]";
}

/// Integer indices reduced by their gcd; throws for zero or non-integer input.
Index3 integer_indices(const Vec3& v, const char* what) {
  Index3 t;
  for (int i = 0; i < 3; ++i) {
    if (std::abs(v[i] - std::round(v[i])) > 1e-6)
      fail(what, " [", v[0], " ", v[1], " ", v[2], "] must have integer indices");
    t[i] = std::lround(v[i]);
  }
  long g = std::gcd(std::gcd(std::labs(t[0]), std::labs(t[1])), std::labs(t[2]));
  if (g == 0)
    fail(what, " [0 0 0] is not a direction; give e.g. 1,1,0");
  for (auto& x : t)
    x /= g;
  return t;
}

/// Primitive lattice vectors ⊥ zone with |indices| ≤ max_index, shortest first; ties go to
/// the larger w, then v, then u (so zone [001] of a cubic cell gives [010] before [100]).
std::vector<Index3> perpendicular_vectors(const Lattice& lat, const Vec3& zone_cart,
                                          int max_index) {
  const Vec3 zhat = zone_cart.normalized();
  std::vector<std::pair<double, Index3>> found;
  for (long u = -max_index; u <= max_index; ++u)
    for (long v = -max_index; v <= max_index; ++v)
      for (long w = -max_index; w <= max_index; ++w) {
        if (std::gcd(std::gcd(std::labs(u), std::labs(v)), std::labs(w)) != 1)
          continue;
        Vec3 t = lat.direction_A(Vec3(double(u), double(v), double(w)));
        if (std::abs(t.dot(zhat)) < 1e-8 * t.norm())
          found.push_back({t.norm(), {u, v, w}});
      }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    if (std::abs(a.first - b.first) > 1e-9 * a.first)
      return a.first < b.first;
    const Index3 &x = a.second, &y = b.second;
    return std::make_tuple(x[2], x[1], x[0]) > std::make_tuple(y[2], y[1], y[0]);
  });
  std::vector<Index3> out;
  for (const auto& f : found)
    out.push_back(f.second);
  return out;
}

/// The shortest lattice vector in `candidates` pointing along `dir` (Cartesian); false if none.
bool lattice_vector_along(const Lattice& lat, const std::vector<Index3>& candidates,
                          const Vec3& dir, Index3& out) {
  const Vec3 dhat = dir.normalized();
  for (const auto& c : candidates) {
    Vec3 t = lat.direction_A(as_vec(c));
    if (t.dot(dhat) > 0 && (t - t.dot(dhat) * dhat).norm() < 1e-8 * t.norm()) {
      out = c;
      return true;
    }
  }
  return false;
}

struct InPlaneAxes {
  Index3 x, y;
  bool orthorhombic;
};

/// In-plane axes for zone `z`: with x_uvw given, x = x_uvw and y = the lattice vector along
/// z × x. Otherwise (x_uvw = 000) the rule is: y = the shortest lattice vector ⊥ zone for which
/// a lattice vector along y × z exists, minimising the area |x||y|; x ∥ y × z. For a cubic
/// [110] zone this gives y = [001], x = [-110]; for [001] it gives x = [100], y = [010].
InPlaneAxes in_plane_axes(const Lattice& lat, const Index3& z, const Vec3& x_uvw, int max_index) {
  const Vec3 zc = lat.direction_A(as_vec(z));
  const auto cands = perpendicular_vectors(lat, zc, max_index);
  InPlaneAxes axes{};
  if (x_uvw.cwiseAbs().maxCoeff() > 1e-9) {
    axes.x = integer_indices(x_uvw, "in-plane direction x");
    Vec3 xc = lat.direction_A(as_vec(axes.x));
    if (std::abs(xc.normalized().dot(zc.normalized())) > 1e-6)
      fail("in-plane direction x ", str(as_vec(axes.x)), " is not perpendicular to the zone axis ",
           str(as_vec(z)), " (angle ", lat.angle_between_directions_deg(as_vec(axes.x), as_vec(z)),
           " deg); pick a direction [uvw] with a Cartesian dot product 0, or 0,0,0 for automatic");
    axes.orthorhombic = lattice_vector_along(lat, cands, zc.cross(xc), axes.y);
    return axes;
  }
  double best_area = 0;
  bool found = false;
  for (const auto& y : cands) {
    Vec3 yc = lat.direction_A(as_vec(y));
    if (found && yc.norm() * yc.norm() > best_area * (1 + 1e-9))
      break;  // any later y is longer than the best cell's x and y together allow
    Index3 x;
    if (!lattice_vector_along(lat, cands, yc.cross(zc), x))
      continue;
    double area = yc.norm() * lat.direction_A(as_vec(x)).norm();
    if (!found || area < best_area * (1 - 1e-9)) {
      axes = {x, y, true};
      best_area = area;
      found = true;
    }
  }
  if (!found && !cands.empty()) {
    axes.x = cands.front();
    axes.orthorhombic = false;
  } else if (!found) {
    fail("zone ", str(as_vec(z)), ": no lattice vector perpendicular to it with indices <= ",
         max_index, "; increase max_index or choose a lower-index zone");
  }
  return axes;
}

}  // namespace

bool AtomicModel::is_orthorhombic(double tol_A) const {
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c)
      if (r != c && std::abs(cell_A(r, c)) > tol_A)
        return false;
  return cell_A(0, 0) > 0 && cell_A(1, 1) > 0 && cell_A(2, 2) > 0;
}

Mat3 zone_rotation(const Crystal& crystal, const Vec3& zone_uvw, const Vec3& x_uvw) {
  const Lattice& lat = crystal.lattice;
  const Index3 z = integer_indices(zone_uvw, "zone axis");
  const Vec3 zc = lat.direction_A(as_vec(z));
  const bool automatic = x_uvw.cwiseAbs().maxCoeff() < 1e-9;
  if (automatic && perpendicular_vectors(lat, zc, 12).empty()) {
    // A general zone of a triclinic cell has no lattice vector ⊥ it: +x is then the
    // projection of the shortest cell edge that is not parallel to the zone.
    std::array<int, 3> order = {0, 1, 2};
    std::sort(order.begin(), order.end(), [&](int i, int j) {
      return lat.direct_A().col(i).norm() < lat.direct_A().col(j).norm();
    });
    for (int i : order) {
      Vec3 e = lat.direct_A().col(i);
      if (e.cross(zc).norm() > 1e-6 * e.norm() * zc.norm())
        return rotation_beam_to_z(zc, e);
    }
  }
  const InPlaneAxes axes = in_plane_axes(lat, z, x_uvw, 12);
  return rotation_beam_to_z(zc, lat.direction_A(as_vec(axes.x)));
}

AtomicModel orient_crystal(const Crystal& crystal, const Vec3& zone_uvw, const Vec3& x_uvw,
                           const std::array<int, 3>& repeats, int max_index) {
  for (int r : repeats)
    if (r < 1)
      fail("repeats ", repeats[0], ",", repeats[1], ",", repeats[2], " must all be >= 1");
  if (crystal.sites.empty())
    fail("crystal '", crystal.name, "' has no atoms to orient");
  const Lattice& lat = crystal.lattice;
  const Index3 z = integer_indices(zone_uvw, "zone axis");
  const InPlaneAxes axes = in_plane_axes(lat, z, x_uvw, max_index);
  if (!axes.orthorhombic)
    fail("zone ", str(as_vec(z)), " of ", crystal.name, ": no lattice vector along z x ",
         str(as_vec(axes.x)), " with indices <= ", max_index,
         ", so no orthorhombic repeat exists (a non-orthogonal zone); choose another x or zone");

  // Supercell: columns are the lattice vectors x, y, z in crystal fractional coordinates.
  Mat3 m;
  m.col(0) = as_vec(axes.x);
  m.col(1) = as_vec(axes.y);
  m.col(2) = as_vec(z);
  const long ncells = std::lround(std::abs(m.determinant()));
  const Mat3 minv = m.inverse();
  const Mat3 rot = rotation_beam_to_z(lat.direction_A(m.col(2)), lat.direction_A(m.col(0)));
  const Mat3 box = rot * lat.direct_A() * m;  // diagonal up to rounding
  const Vec3 len(box.col(0).norm(), box.col(1).norm(), box.col(2).norm());

  // Lattice translations n whose cell can overlap the supercell: the corners' bounding box.
  Vec3 lo = Vec3::Zero(), hi = Vec3::Zero();
  for (int corner = 1; corner < 8; ++corner) {
    Vec3 p = m * Vec3(corner & 1, (corner >> 1) & 1, (corner >> 2) & 1);
    lo = lo.cwiseMin(p);
    hi = hi.cwiseMax(p);
  }
  const double eps = 1e-7;  // atoms on the supercell boundary are counted once
  std::vector<Atom> cell_atoms;
  for (long n0 = long(std::floor(lo[0])) - 1; n0 <= long(std::ceil(hi[0])); ++n0)
    for (long n1 = long(std::floor(lo[1])) - 1; n1 <= long(std::ceil(hi[1])); ++n1)
      for (long n2 = long(std::floor(lo[2])) - 1; n2 <= long(std::ceil(hi[2])); ++n2)
        for (const Site& s : crystal.sites) {
          Vec3 f = minv * (s.frac + Vec3(double(n0), double(n1), double(n2)));
          bool inside = true;
          for (int k = 0; k < 3; ++k) {
            if (f[k] < -eps || f[k] >= 1 - eps) {
              inside = false;
              break;
            }
            f[k] = std::max(f[k], 0.0);
          }
          if (!inside)
            continue;
          Atom a;
          a.Z = s.Z;
          a.occupancy = s.occupancy;
          a.u_iso_A2 = s.u_iso_A2;
          a.pos_A = f.cwiseProduct(len);
          cell_atoms.push_back(a);
        }
  if (long(cell_atoms.size()) != ncells * long(crystal.sites.size()))
    fail("orient_crystal: found ", cell_atoms.size(), " atoms in the repeat instead of ",
         ncells * long(crystal.sites.size()), " (internal error in the supercell search)");

  AtomicModel model;
  model.cell_A = Vec3(len[0] * repeats[0], len[1] * repeats[1], len[2] * repeats[2]).asDiagonal();
  model.phase_names = {crystal.name.empty() ? std::string("crystal") : crystal.name};
  model.atoms.reserve(cell_atoms.size() * size_t(repeats[0]) * size_t(repeats[1]) *
                      size_t(repeats[2]));
  for (int i = 0; i < repeats[0]; ++i)
    for (int j = 0; j < repeats[1]; ++j)
      for (int k = 0; k < repeats[2]; ++k)
        for (Atom a : cell_atoms) {
          a.pos_A += Vec3(i * len[0], j * len[1], k * len[2]);
          model.atoms.push_back(a);
        }
  return model;
}

Crystal model_as_crystal(const AtomicModel& model, const std::string& name) {
  Crystal c;
  c.name = name;
  c.source = name;
  c.lattice = Lattice::from_vectors(model.cell_A);
  c.spacegroup_hm = "P 1";
  c.spacegroup_number = 1;
  c.symops = {SymOp{}};
  for (const Atom& a : model.atoms) {
    Site s;
    s.label = "";
    s.Z = a.Z;
    Vec3 f = c.lattice.cart_to_frac(a.pos_A);
    for (int k = 0; k < 3; ++k) {
      f[k] -= std::floor(f[k]);
      if (f[k] >= 1 - 1e-12)
        f[k] = 0;
    }
    s.frac = f;
    s.occupancy = a.occupancy;
    s.u_iso_A2 = a.u_iso_A2;
    c.sites.push_back(s);
  }
  return c;
}

}  // namespace epitem
