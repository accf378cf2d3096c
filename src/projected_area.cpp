#include "epitem/projected_area.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <unordered_set>

#include "epitem/error.hpp"
#include "epitem/neighbor_grid.hpp"

namespace epitem {

namespace {

using Vec2 = Eigen::Vector2d;

double cross(const Vec2& a, const Vec2& b) { return a.x() * b.y() - a.y() * b.x(); }

constexpr double SAME_COLUMN_A = 0.05;  // model columns match bulk positions to round-off

// A phase's bulk projection along z: the 2-D lattice of projected translations (reduced basis
// v1, v2) and the distinct columns of one of its cells, registered on the model's columns.
struct BulkProjection {
  Vec2 v1, v2;
  Eigen::Matrix2d to_frac;  // inverse of [v1 v2]
  std::vector<Vec2> cell_columns;
  Vec2 origin = Vec2::Zero();

  // Nearest bulk column to x [Å] and its distance. For a reduced basis the nearest translate of
  // each cell column lies in the 3 × 3 cells around x's cell.
  std::pair<Vec2, double> nearest(const Vec2& x) const {
    const Vec2 q = x - origin;
    const Vec2 f = to_frac * q;
    const double i0 = std::floor(f.x()), j0 = std::floor(f.y());
    Vec2 best = Vec2::Zero();
    double best_d2 = std::numeric_limits<double>::infinity();
    for (int di = -1; di <= 1; ++di)
      for (int dj = -1; dj <= 1; ++dj) {
        const Vec2 corner = (i0 + di) * v1 + (j0 + dj) * v2;
        for (const Vec2& c : cell_columns) {
          const Vec2 p = corner + c;
          const double d2 = (p - q).squaredNorm();
          if (d2 < best_d2) {
            best_d2 = d2;
            best = p;
          }
        }
      }
    return {best + origin, std::sqrt(best_d2)};
  }
};

// The projected lattice: the shortest projected lattice vector and, of the vectors not parallel
// to it, the one spanning the smallest area (so the pair is a basis), Lagrange-reduced.
BulkProjection bulk_projection(const Crystal& crystal, const Mat3& rotation) {
  const Mat3 a = rotation * crystal.lattice.direct_A();
  std::vector<Vec2> projected;
  bool zone_along_beam = false;
  for (int u = -6; u <= 6; ++u)
    for (int v = -6; v <= 6; ++v)
      for (int w = -6; w <= 6; ++w) {
        if (u == 0 && v == 0 && w == 0)
          continue;
        const Vec3 t = a * Vec3(u, v, w);
        const Vec2 p(t.x(), t.y());
        if (p.norm() < 1e-6)
          zone_along_beam = true;
        else
          projected.push_back(p);
      }
  if (!zone_along_beam)
    fail("projected area of ", crystal.name, ": no lattice direction with indices ≤ 6 lies along the beam; "
         "orient the phase on a zone axis");
  auto shorter = [](const Vec2& p, const Vec2& q) { return p.squaredNorm() < q.squaredNorm(); };
  std::sort(projected.begin(), projected.end(), shorter);
  BulkProjection b;
  b.v1 = projected.front();
  double best_area = std::numeric_limits<double>::infinity();
  for (const Vec2& p : projected) {
    const double area = std::abs(cross(b.v1, p));
    if (area > 1e-6 * p.norm() * b.v1.norm() && area < best_area - 1e-9) {
      best_area = area;
      b.v2 = p;
    }
  }
  for (;;) {
    if (b.v2.squaredNorm() < b.v1.squaredNorm())
      std::swap(b.v1, b.v2);
    const double m = std::round(b.v1.dot(b.v2) / b.v1.squaredNorm());
    if (m == 0)
      break;
    b.v2 -= m * b.v1;
  }
  Eigen::Matrix2d basis;
  basis.col(0) = b.v1;
  basis.col(1) = b.v2;
  b.to_frac = basis.inverse();
  for (const Site& s : crystal.sites) {
    const Vec3 t = a * s.frac;
    Vec2 f = b.to_frac * Vec2(t.x(), t.y());
    f = f.array() - f.array().floor();
    const Vec2 c = basis * f;
    bool known = false;
    for (const Vec2& k : b.cell_columns) {
      Vec2 d = b.to_frac * (c - k);
      d = d.array() - d.array().round();
      known = known || (basis * d).norm() < SAME_COLUMN_A;
    }
    if (!known)
      b.cell_columns.push_back(c);
  }
  return b;
}

// Model columns of one phase: the distinct (x, y) of its atoms, wrapped into the box along
// periodic axes. Atoms of a column agree to round-off; distinct columns can be < 0.1 Å apart
// (Fe3O4 [110]), so the key is 0.001 Å.
std::vector<Vec2> model_columns(const AtomicModel& model, int phase) {
  const Vec3 box = model.box_lengths_A();
  std::unordered_set<std::uint64_t> seen;
  std::vector<Vec2> columns;
  for (const Atom& atom : model.atoms) {
    if (atom.phase != phase || !(atom.occupancy > 0))
      continue;
    Vec2 p(atom.pos_A.x(), atom.pos_A.y());
    for (int a = 0; a < 2; ++a)
      if (model.pbc[size_t(a)])
        p[a] -= box[a] * std::floor(p[a] / box[a]);
    const auto key = (std::uint64_t(std::uint32_t(std::lround(p.x() * 1000))) << 32) |
                     std::uint64_t(std::uint32_t(std::lround(p.y() * 1000)));
    if (seen.insert(key).second)
      columns.push_back(p);
  }
  return columns;
}

// Places the bulk pattern on the model: the registration (one model column on each cell column
// in turn) that puts the most model columns on bulk positions; a sample suffices.
void register_on_model(BulkProjection& bulk, const std::vector<Vec2>& cols, const std::string& name) {
  const size_t stride = std::max<size_t>(1, cols.size() / 400);
  const Vec2 anchor = cols[cols.size() / 2];
  double best_fraction = -1;
  Vec2 best_origin = Vec2::Zero();
  for (const Vec2& c : bulk.cell_columns) {
    bulk.origin = anchor - c;
    size_t on = 0, total = 0;
    for (size_t i = 0; i < cols.size(); i += stride, ++total)
      on += bulk.nearest(cols[i]).second < SAME_COLUMN_A;
    const double fraction = double(on) / double(total);
    if (fraction > best_fraction) {
      best_fraction = fraction;
      best_origin = bulk.origin;
    }
  }
  bulk.origin = best_origin;
  if (best_fraction < 0.5)
    fail("projected area of ", name, ": only ", int(100 * best_fraction),
         " % of its columns sit on its crystal's projected lattice; check the phase's rotation (or strain)");
}

// Squared Euclidean distance transform (Felzenszwalb & Huttenlocher 2012, lower envelope of
// parabolas) along one line: d[q] = min_p (f[p] + (pos_q − pos_p)²), pos = index × step.
void distance_transform_1d(const std::vector<double>& f, double step, std::vector<double>& d) {
  const int n = int(f.size());
  std::vector<int> v(static_cast<size_t>(n));
  std::vector<double> z(static_cast<size_t>(n) + 1);
  auto pos = [&](int q) { return q * step; };
  auto meet = [&](int q, int p) {
    return ((f[size_t(q)] + pos(q) * pos(q)) - (f[size_t(p)] + pos(p) * pos(p))) / (2 * (pos(q) - pos(p)));
  };
  int k = 0;
  v[0] = 0;
  z[0] = -std::numeric_limits<double>::infinity();
  z[1] = std::numeric_limits<double>::infinity();
  for (int q = 1; q < n; ++q) {
    double s = meet(q, v[size_t(k)]);
    while (s <= z[size_t(k)]) {
      --k;
      s = meet(q, v[size_t(k)]);
    }
    ++k;
    v[size_t(k)] = q;
    z[size_t(k)] = s;
    z[size_t(k) + 1] = std::numeric_limits<double>::infinity();
  }
  d.assign(size_t(n), 0);
  k = 0;
  for (int q = 0; q < n; ++q) {
    while (z[size_t(k) + 1] < pos(q))
      ++k;
    const double dq = pos(q) - pos(v[size_t(k)]);
    d[size_t(q)] = dq * dq + f[size_t(v[size_t(k)])];
  }
}

// Squared distance [Å²] from each pixel to the nearest pixel where `member` is true.
std::vector<double> squared_distance_to(const std::vector<bool>& member, int nx, int ny, double sx, double sy) {
  // Finite (the envelope subtracts values) and beyond any distance in the raster.
  const double far = 4 * ((nx * sx) * (nx * sx) + (ny * sy) * (ny * sy)) + 1;
  std::vector<double> out(member.size()), f, d;
  for (int y = 0; y < ny; ++y) {
    f.assign(size_t(nx), far);
    for (int x = 0; x < nx; ++x)
      if (member[size_t(y) * size_t(nx) + size_t(x)])
        f[size_t(x)] = 0;
    distance_transform_1d(f, sx, d);
    std::copy(d.begin(), d.end(), out.begin() + long(size_t(y) * size_t(nx)));
  }
  for (int x = 0; x < nx; ++x) {
    f.resize(size_t(ny));
    for (int y = 0; y < ny; ++y)
      f[size_t(y)] = out[size_t(y) * size_t(nx) + size_t(x)];
    distance_transform_1d(f, sy, d);
    for (int y = 0; y < ny; ++y)
      out[size_t(y) * size_t(nx) + size_t(x)] = d[size_t(y)];
  }
  return out;
}

}  // namespace

ProjectedAreas projected_phase_areas(const AtomicModel& model, const std::vector<PhaseOrientation>& phases,
                                     const ProjectedAreaSpec& spec) {
  if (phases.size() != model.phase_names.size())
    fail("projected area: ", phases.size(), " phase orientations for a model with ", model.phase_names.size(),
         " phases");
  if (!(spec.sampling_A > 0) || !(spec.max_gap_A >= 0))
    fail("projected area: sampling must be > 0 and the largest gap ≥ 0");
  const Vec3 box = model.box_lengths_A();
  const int nx = std::max(1, int(std::lround(box.x() / spec.sampling_A)));
  const int ny = std::max(1, int(std::lround(box.y() / spec.sampling_A)));
  if (double(nx) * double(ny) > 5e7)
    fail("projected area: a ", box.x(), " x ", box.y(), " Å box at ", spec.sampling_A,
         " Å is over 50 M pixels; use a coarser sampling");
  const double sx = box.x() / nx, sy = box.y() / ny;

  std::vector<std::vector<Vec2>> columns_of;
  std::vector<BulkProjection> bulks;
  for (size_t p = 0; p < phases.size(); ++p) {
    columns_of.push_back(model_columns(model, int(p)));
    if (!phases[p].crystal)
      fail("projected area: no crystal given for phase ", model.phase_names[p]);
    bulks.push_back(bulk_projection(*phases[p].crystal, phases[p].rotation));
    if (!columns_of.back().empty())
      register_on_model(bulks.back(), columns_of.back(), model.phase_names[p]);
  }

  // A pixel lies in a phase's union of bulk cells when a model column of the phase is as near
  // as the nearest bulk column (in the bulk, that column itself; beyond a free surface the
  // missing bulk columns are nearer; across a seam the columns of the other side qualify).
  // Where two phases' cells overlap, the nearer column wins.
  const size_t n = size_t(nx) * size_t(ny);
  std::vector<int> label(n, -1);
  std::vector<double> nearest_d2(n, std::numeric_limits<double>::infinity());
  std::array<bool, 3> pbc = model.pbc;
  pbc[2] = false;
  for (size_t p = 0; p < phases.size(); ++p) {
    if (columns_of[p].empty())
      continue;
    std::vector<Vec3> columns;
    for (const Vec2& c : columns_of[p])
      columns.emplace_back(c.x(), c.y(), 0.0);
    // Every point is within the cell circumradius ≤ (|v1| + |v2|)/2 of a bulk column.
    double reach = 0.5 * (bulks[p].v1.norm() + bulks[p].v2.norm()) + SAME_COLUMN_A;
    for (int a = 0; a < 2; ++a)
      if (pbc[size_t(a)])
        reach = std::min(reach, 0.49 * box[a]);
    const NeighborGrid grid(columns, Vec3(box.x(), box.y(), 1.0), pbc, reach);
    for (int y = 0; y < ny; ++y)
      for (int x = 0; x < nx; ++x) {
        const size_t i = size_t(y) * size_t(nx) + size_t(x);
        const Vec3 centre((x + 0.5) * sx, (y + 0.5) * sy, 0.0);
        const double bulk_d = bulks[p].nearest({centre.x(), centre.y()}).second + 1e-6;
        double model_d2 = std::numeric_limits<double>::infinity();
        grid.visit(centre, std::min(bulk_d, reach), [&](std::size_t, const Vec3&, double r2) {
          model_d2 = std::min(model_d2, r2);
          return false;
        });
        if (!std::isfinite(model_d2))
          continue;
        if (model_d2 < nearest_d2[i]) {
          label[i] = int(p);
          nearest_d2[i] = model_d2;
        }
      }
  }

  // The band between two phases: pixels outside every union whose distances to two phases'
  // regions add up to ≤ max_gap_A (a band at most that wide) go to the nearer region. Notches
  // of one phase's own free surface are near that phase only and stay empty.
  std::vector<std::vector<double>> to_phase;
  for (size_t p = 0; p < phases.size(); ++p) {
    std::vector<bool> member(n);
    for (size_t i = 0; i < n; ++i)
      member[i] = label[i] == int(p);
    to_phase.push_back(squared_distance_to(member, nx, ny, sx, sy));
  }
  std::vector<int> filled = label;
  for (size_t i = 0; i < n; ++i) {
    if (label[i] >= 0)
      continue;
    double d1 = std::numeric_limits<double>::infinity(), d2 = d1;
    int p1 = -1;
    for (size_t p = 0; p < phases.size(); ++p) {
      const double d = std::sqrt(to_phase[p][i]);
      if (d < d1) {
        d2 = d1;
        d1 = d;
        p1 = int(p);
      } else if (d < d2) {
        d2 = d;
      }
    }
    if (d1 + d2 <= spec.max_gap_A)
      filled[i] = p1;
  }
  label = std::move(filled);

  ProjectedAreas out;
  out.area_A2.assign(phases.size(), 0.0);
  out.label = Image(nx, ny, -1.f);
  out.label.pixel_size_A = sx;
  if (std::abs(sy - sx) > 1e-9 * sx)
    out.label.pixel_size_y_A = sy;
  for (size_t i = 0; i < n; ++i)
    if (label[i] >= 0) {
      out.area_A2[size_t(label[i])] += sx * sy;
      out.label.pixels[i] = float(label[i]);
    }
  return out;
}

}  // namespace epitem
