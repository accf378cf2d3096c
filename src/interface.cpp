#include "epitem/interface.hpp"

#include <gemmi/elem.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <iomanip>
#include <map>
#include <sstream>

#include "epitem/element.hpp"
#include "epitem/error.hpp"
#include "epitem/limits.hpp"
#include "epitem/neighbor_grid.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"
#include "interface_detail.hpp"

namespace epitem {

namespace {

/// Longest pair cutoff accepted [Å]: contacts are < 4 Å; 1e308 Å made every pair a contact.
constexpr double MAX_CONTACT_CUTOFF_A = 10;

constexpr double PARALLEL_TOL = 1e-6;  // |sin| between directions treated as parallel

std::string triple(const Vec3& v) {
  std::ostringstream os;
  os << v[0] << "," << v[1] << "," << v[2];
  return os.str();
}

bool is_zero(const Vec3& v) { return v.norm() < 1e-12; }

// Lattice translation as "1/2[-1 1 -2]" when it is a centring fraction of an integer row.
std::string translation_str(const Vec3& v) {
  for (int n : {1, 2, 3, 4, 6, 8, 12}) {
    const Vec3 m = v * n;
    if ((m - m.array().round().matrix()).norm() < 1e-6) {
      std::ostringstream os;
      if (n > 1)
        os << "1/" << n;
      os << "[" << std::lround(m[0]) << " " << std::lround(m[1]) << " " << std::lround(m[2]) << "]";
      return os.str();
    }
  }
  return "[" + triple(v) + "]";
}

// Normal of (hkl) and direction [uvw] as Cartesian unit vectors of the crystal frame.
Vec3 plane_normal(const Crystal& c, const Vec3& hkl) { return c.lattice.g_invA(hkl).normalized(); }
Vec3 direction(const Crystal& c, const Vec3& uvw) { return c.lattice.direction_A(uvw).normalized(); }

// Orthonormal OR frame (docs/formulas.md §9): columns n, d, n × d.
Mat3 or_frame(const Crystal& c, const Vec3& hkl, const Vec3& uvw) {
  Mat3 f;
  f.col(0) = plane_normal(c, hkl);
  f.col(1) = direction(c, uvw);
  f.col(2) = f.col(0).cross(f.col(1));
  return f;
}

double angle_deg(const Vec3& a, const Vec3& b) {
  return std::atan2(a.cross(b).norm(), a.dot(b)) / units::deg_to_rad;
}

// Integer indices of hkl when they are integers (reduced by their gcd), else hkl itself.
Vec3 reduced(const Vec3& v) { return reduce_indices(v); }

bool all_integer(const Vec3& v) {
  for (int i = 0; i < 3; ++i)
    if (std::abs(v[i] - std::round(v[i])) > 1e-9)
      return false;
  return true;
}

// Sites at one fractional position (a mixed NiFe site has two members).
struct SiteGroup {
  Vec3 frac = Vec3::Zero();
  std::vector<Site> members;
  double total_occupancy = 0;
  bool random = false;  // draw a member per lattice point
};

Vec3 wrap01(Vec3 f) {
  for (int i = 0; i < 3; ++i) {
    f[i] -= std::floor(f[i]);
    if (f[i] >= 1 - 1e-12)
      f[i] = 0;
  }
  return f;
}

double frac_distance(const Vec3& a, const Vec3& b) {
  Vec3 d = a - b;
  for (int i = 0; i < 3; ++i)
    d[i] -= std::round(d[i]);
  return d.cwiseAbs().maxCoeff();
}

std::vector<SiteGroup> site_groups(const Crystal& c) {
  std::vector<SiteGroup> groups;
  for (const Site& s : c.sites) {
    const Vec3 f = wrap01(s.frac);
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const SiteGroup& g) { return frac_distance(g.frac, f) < 1e-4; });
    if (it == groups.end()) {
      groups.push_back({f, {}, 0.0, false});
      it = groups.end() - 1;
    }
    it->members.push_back(s);
    it->total_occupancy += s.occupancy;
  }
  for (SiteGroup& g : groups)
    g.random = g.members.size() > 1 || g.total_occupancy < 1 - 1e-6;
  return groups;
}

// Deterministic uniform [0, 1) from a 64-bit generator (std distributions vary by library).
struct Rng {
  std::uint64_t state;
  explicit Rng(std::uint64_t seed) : state(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}
  double uniform() {  // splitmix64 (Steele, Lea & Flood 2014)
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return double(z >> 11) * 0x1.0p-53;
  }
};

// Shortest lattice translation along the Cartesian unit vector e (crystal frame): the
// shortest integer [uvw] (|index| ≤ 12) parallel to e, shortened by centring translations
// uvw/n that map the atom set onto itself. Length 0 when none exists.
struct Repeat {
  Vec3 uvw = Vec3::Zero();
  double length_A = 0;
};

bool is_symmetry_translation(const Crystal& c, const Vec3& t) {
  for (const Site& s : c.sites) {
    const Vec3 moved = s.frac + t;
    bool found = false;
    for (const Site& o : c.sites)
      if (o.Z == s.Z && std::abs(o.occupancy - s.occupancy) < 1e-3 &&
          frac_distance(o.frac, moved) < 1e-4) {
        found = true;
        break;
      }
    if (!found)
      return false;
  }
  return true;
}

Repeat lattice_repeat(const Crystal& c, const Vec3& e) {
  Repeat best;
  const int m = 12;
  for (int u = -m; u <= m; ++u)
    for (int v = -m; v <= m; ++v)
      for (int w = -m; w <= m; ++w) {
        if (!u && !v && !w)
          continue;
        const Vec3 uvw(u, v, w);
        const Vec3 r = c.lattice.direction_A(uvw);
        const double len = r.norm();
        if (r.dot(e) <= 0 || r.cross(e).norm() > PARALLEL_TOL * len)
          continue;
        if (best.length_A == 0 || len < best.length_A - 1e-9) {
          best.uvw = uvw;
          best.length_A = len;
        }
      }
  if (best.length_A == 0)
    return best;
  for (int n : {12, 8, 6, 4, 3, 2})
    if (is_symmetry_translation(c, best.uvw / n)) {
      best.uvw /= n;
      best.length_A /= n;
      break;
    }
  return best;
}

// Position of the widest gap between atomic layers parallel to (hkl), as an offset along the
// normal in [0, d): cutting there terminates the crystal between layers, never through atoms.
// Gaps within 5 % of the widest tie; the tie goes to the cut whose top layer has the smallest
// atoms (covalent radius): anions in an oxide, which is what a metal overlayer bonds to.
double termination_offset_A(const Crystal& c, const Vec3& hkl_in) {
  const Vec3 hkl = reduced(hkl_in);
  if (!all_integer(hkl) || c.sites.empty())
    return 0;
  const Vec3 n = plane_normal(c, hkl);
  const double d = c.lattice.d_spacing_A(hkl);
  std::vector<std::pair<double, double>> h;  // height mod d, covalent radius
  for (const Site& s : c.sites) {
    const double p = n.dot(c.lattice.frac_to_cart_A(s.frac));
    h.push_back({p - d * std::floor(p / d), covalent_radius_A(s.Z)});
  }
  std::sort(h.begin(), h.end());
  struct Cut {
    double gap, mid, top_radius;
  };
  std::vector<Cut> cuts;
  for (std::size_t i = 0; i < h.size(); ++i) {
    const double lo = h[i].first;
    const double hi = i + 1 < h.size() ? h[i + 1].first : h.front().first + d;
    if (hi - lo > 1e-3)
      cuts.push_back({hi - lo, 0.5 * (lo + hi), h[i].second});
  }
  if (cuts.empty())
    return 0;
  double widest = 0;
  for (const Cut& cut : cuts)
    widest = std::max(widest, cut.gap);
  const Cut* best = nullptr;
  for (const Cut& cut : cuts)
    if (cut.gap >= 0.95 * widest && (!best || cut.top_radius < best->top_radius - 1e-9))
      best = &cut;
  return best->mid - d * std::floor(best->mid / d);
}

// Shortest distance between each pair of species inside the bulk crystal (27 cell images).
std::map<std::pair<int, int>, double> bulk_min_distances(const Crystal& c) {
  std::map<std::pair<int, int>, double> out;
  const auto groups = site_groups(c);
  const Mat3& a = c.lattice.direct_A();
  for (std::size_t i = 0; i < groups.size(); ++i)
    for (std::size_t j = i; j < groups.size(); ++j) {
      double dmin = std::numeric_limits<double>::max();
      for (int u = -1; u <= 1; ++u)
        for (int v = -1; v <= 1; ++v)
          for (int w = -1; w <= 1; ++w) {
            if (i == j && !u && !v && !w)
              continue;
            dmin = std::min(dmin, (a * (groups[j].frac + Vec3(u, v, w) - groups[i].frac)).norm());
          }
      for (const Site& s1 : groups[i].members)
        for (const Site& s2 : groups[j].members) {
          auto key = std::minmax(s1.Z, s2.Z);
          auto it = out.find(key);
          if (it == out.end() || dmin < it->second)
            out[key] = dmin;
        }
    }
  return out;
}

struct Axes {
  int normal, ledge, other;  // box axes: interface normal, terrace direction, the third
};
Axes axes_of(InterfaceView view) {
  return view == InterfaceView::EdgeOn ? Axes{1, 0, 2} : Axes{2, 0, 1};
}

// Wulff facet normals (box frame) with their distances from the particle centre.
struct Facets {
  std::vector<Vec3> normal;
  std::vector<double> distance_A;
};

Facets facets_in_box(const InterfaceSpec& spec, const Mat3& rot) {
  Facets f;
  double gmin = std::numeric_limits<double>::max();
  for (const WulffFacet& w : spec.wulff_facets)
    gmin = std::min(gmin, w.relative_energy);
  for (const WulffFacet& w : spec.wulff_facets)
    for (const Vec3& h : equivalent_reflections(spec.overlayer, w.hkl)) {
      f.normal.push_back(rot * plane_normal(spec.overlayer, h));
      f.distance_A.push_back(spec.particle_radius_A * w.relative_energy / gmin);
    }
  return f;
}

// Extent of the Wulff polyhedron along each box axis: vertices are triple-plane intersections
// satisfying every facet inequality.
std::pair<Vec3, Vec3> polyhedron_extent(const Facets& f) {
  Vec3 lo = Vec3::Constant(std::numeric_limits<double>::max()), hi = -lo;
  const std::size_t n = f.normal.size();
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = i + 1; j < n; ++j)
      for (std::size_t k = j + 1; k < n; ++k) {
        Mat3 m;
        m.row(0) = f.normal[i].transpose();
        m.row(1) = f.normal[j].transpose();
        m.row(2) = f.normal[k].transpose();
        if (std::abs(m.determinant()) < 1e-9)
          continue;
        const Vec3 p = m.inverse() * Vec3(f.distance_A[i], f.distance_A[j], f.distance_A[k]);
        bool inside = true;
        for (std::size_t q = 0; q < n && inside; ++q)
          inside = f.normal[q].dot(p) <= f.distance_A[q] + 1e-6;
        if (inside) {
          lo = lo.cwiseMin(p);
          hi = hi.cwiseMax(p);
        }
      }
  return {lo, hi};
}

// Overlayer shape in the box frame: inside(p, shrink) is true for p at least `shrink` Å
// inside the shape (ignoring the interface, which the caller handles).
struct Shape {
  OverlayerShape kind = OverlayerShape::Slab;
  int normal_axis = 1;
  double slab_top_A = 0;
  Vec3 center_A = Vec3::Zero();
  double radius_A = 0;
  Facets facets;
  Vec3 extent_lo = Vec3::Zero(), extent_hi = Vec3::Zero();  // relative to the centre

  bool inside(const Vec3& p, double shrink) const {
    switch (kind) {
      case OverlayerShape::Slab:
        return p[normal_axis] <= slab_top_A - shrink;
      case OverlayerShape::Cap:
        return (p - center_A).norm() <= radius_A - shrink;
      case OverlayerShape::Wulff:
        for (std::size_t i = 0; i < facets.normal.size(); ++i)
          if (facets.normal[i].dot(p - center_A) > facets.distance_A[i] - shrink)
            return false;
        return true;
    }
    return false;
  }
};

// Fills the sites of crystal c (rotation rot, lattice origin at `origin`) whose positions lie
// in [lo, hi) and satisfy keep(p). Lattice rows are enumerated with an exact k-interval per
// (i, j) column so the work is proportional to the region, not to its rotated bounding box.
template <class Keep>
void fill_crystal(const Crystal& c, const Mat3& rot, const Vec3& origin, const Vec3& lo,
                  const Vec3& hi, int phase, Rng& rng, Keep&& keep, std::vector<Atom>& out,
                  std::size_t& vacancies) {
  const auto groups = site_groups(c);
  const Mat3 m = rot * c.lattice.direct_A();
  const Mat3 minv = m.inverse();
  Vec3 flo = Vec3::Constant(std::numeric_limits<double>::max()), fhi = -flo;
  for (int corner = 0; corner < 8; ++corner) {
    const Vec3 p(corner & 1 ? hi[0] : lo[0], corner & 2 ? hi[1] : lo[1], corner & 4 ? hi[2] : lo[2]);
    const Vec3 f = minv * (p - origin);
    flo = flo.cwiseMin(f);
    fhi = fhi.cwiseMax(f);
  }
  Vec3 off_lo, off_hi;  // range of (M·f)_a over one cell, f ∈ [0, 1]³
  for (int a = 0; a < 3; ++a) {
    off_lo[a] = off_hi[a] = 0;
    for (int col = 0; col < 3; ++col) {
      off_lo[a] += std::min(0.0, m(a, col));
      off_hi[a] += std::max(0.0, m(a, col));
    }
  }
  std::vector<Vec3> site_offset;
  for (const SiteGroup& g : groups)
    site_offset.push_back(m * g.frac);
  const long i0 = long(std::floor(flo[0])) - 1, i1 = long(std::ceil(fhi[0])) + 1;
  const long j0 = long(std::floor(flo[1])) - 1, j1 = long(std::ceil(fhi[1])) + 1;
  for (long i = i0; i <= i1; ++i)
    for (long j = j0; j <= j1; ++j) {
      const Vec3 base = origin + m.col(0) * double(i) + m.col(1) * double(j);
      double kmin = -std::numeric_limits<double>::max(), kmax = std::numeric_limits<double>::max();
      bool empty = false;
      for (int a = 0; a < 3 && !empty; ++a) {
        const double coef = m(a, 2);
        // lo ≤ base + coef·k + off ≤ hi for some off in [off_lo, off_hi]
        const double r0 = lo[a] - base[a] - off_hi[a], r1 = hi[a] - base[a] - off_lo[a];
        if (std::abs(coef) < 1e-12) {
          empty = r0 > 0 || r1 < 0;
          continue;
        }
        const double k0 = std::min(r0 / coef, r1 / coef), k1 = std::max(r0 / coef, r1 / coef);
        kmin = std::max(kmin, k0);
        kmax = std::min(kmax, k1);
      }
      if (empty || kmin > kmax)
        continue;
      for (long k = long(std::floor(kmin)); k <= long(std::ceil(kmax)); ++k) {
        const Vec3 cell = base + m.col(2) * double(k);
        for (std::size_t s = 0; s < groups.size(); ++s) {
          const Vec3 p = cell + site_offset[s];
          if (p[0] < lo[0] || p[0] >= hi[0] || p[1] < lo[1] || p[1] >= hi[1] || p[2] < lo[2] ||
              p[2] >= hi[2] || !keep(p))
            continue;
          const SiteGroup& g = groups[s];
          const Site* site = &g.members.front();
          if (g.random) {
            double x = rng.uniform(), acc = 0;
            site = nullptr;
            for (const Site& mbr : g.members) {
              acc += mbr.occupancy;
              if (x < acc) {
                site = &mbr;
                break;
              }
            }
            if (!site) {
              ++vacancies;
              continue;
            }
          }
          Atom atom;
          atom.Z = site->Z;
          atom.pos_A = p;
          atom.occupancy = g.random ? 1.0 : site->occupancy;
          atom.u_iso_A2 = site->u_iso_A2;
          atom.phase = phase;
          out.push_back(atom);
        }
      }
    }
}

double atoms_per_cell(const Crystal& c) {
  double n = 0;
  for (const Site& s : c.sites)
    n += s.occupancy;
  return n;
}

std::vector<int> species_of(const Crystal& c) {
  std::vector<int> z;
  for (const Site& s : c.sites)
    if (std::find(z.begin(), z.end(), s.Z) == z.end())
      z.push_back(s.Z);
  std::sort(z.begin(), z.end());
  return z;
}

// Cutoffs by (Z1, Z2), looked up in the overlap loop.
struct CutoffLookup {
  std::vector<double> table;
  double max_A = 0;
  explicit CutoffLookup(const std::vector<PairCutoff>& cutoffs)
      : table(std::size_t(MAX_Z + 1) * (MAX_Z + 1), 0.0) {
    for (const PairCutoff& c : cutoffs) {
      table[std::size_t(c.Z1) * (MAX_Z + 1) + c.Z2] = table[std::size_t(c.Z2) * (MAX_Z + 1) + c.Z1] = c.cutoff_A;
      max_A = std::max(max_A, c.cutoff_A);
    }
  }
  double operator()(int z1, int z2) const { return table[std::size_t(z1) * (MAX_Z + 1) + z2]; }
};

// Nonmetals (and metalloids that form anions): the partners of a "metal–nonmetal" pair.
bool is_nonmetal(int Z) {
  static const int nonmetals[] = {1, 2, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 33, 34, 35, 36, 52, 53, 54, 85, 86};
  return std::find(std::begin(nonmetals), std::end(nonmetals), Z) != std::end(nonmetals);
}

// Substrate crystal Cartesian → box frame: edge-on (normal y, zone z), plan view (normal z).
Mat3 substrate_rotation(const InterfaceSpec& spec) {
  const Crystal& sub = spec.substrate;
  const Vec3 n_s = plane_normal(sub, spec.substrate_plane_hkl);
  Mat3 r_sub;
  if (spec.view == InterfaceView::EdgeOn) {
    const Vec3 y = n_s, z = direction(sub, spec.zone_uvw);
    r_sub.row(0) = y.cross(z).transpose();
    r_sub.row(1) = y.transpose();
    r_sub.row(2) = z.transpose();
  } else {
    const Vec3 z = n_s, x = direction(sub, spec.substrate_direction_uvw);
    r_sub.row(0) = x.transpose();
    r_sub.row(1) = z.cross(x).transpose();
    r_sub.row(2) = z.transpose();
  }
  return r_sub;
}

// Box length along the ledge axis as the builder rounds it (whole substrate repeats).
double rounded_ledge_box_A(const InterfaceSpec& spec) {
  const int a = axes_of(spec.view).ledge;
  const double box = spec.box_A[a];
  if (!spec.round_box_to_substrate)
    return box;
  const Repeat rs = lattice_repeat(spec.substrate, substrate_rotation(spec).transpose() * Vec3::Unit(a));
  return rs.length_A > 0 ? std::max(1.0, std::round(box / rs.length_A)) * rs.length_A : box;
}

}  // namespace

double covalent_radius_A(int Z) {
  if (Z < 1 || Z > MAX_Z)
    fail("covalent radius: atomic number ", Z, " outside 1..", MAX_Z);
  return gemmi::covalent_radius(static_cast<gemmi::El>(Z));
}

std::vector<PairCutoff> bulk_pair_minima(const InterfaceSpec& spec) {
  std::map<std::pair<int, int>, PairCutoff> best;
  for (const Crystal* c : {&spec.substrate, &spec.overlayer})
    for (const auto& [pair, d] : bulk_min_distances(*c)) {
      auto it = best.find(pair);
      if (it == best.end() || d < it->second.cutoff_A - 1e-9)
        best[pair] = {pair.first, pair.second, d, c->name};
    }
  std::vector<PairCutoff> out;
  for (const auto& [pair, c] : best)
    out.push_back(c);
  return out;
}

std::vector<PairCutoff> contact_cutoffs(const InterfaceSpec& spec) {
  std::vector<int> zs = species_of(spec.substrate);
  for (int z : species_of(spec.overlayer))
    if (std::find(zs.begin(), zs.end(), z) == zs.end())
      zs.push_back(z);
  std::sort(zs.begin(), zs.end());
  const std::vector<PairCutoff> bulk = spec.cutoff_rule == CutoffRule::Bulk ? bulk_pair_minima(spec)
                                                                            : std::vector<PairCutoff>{};
  const auto fixed = [](double v) {
    std::ostringstream os;
    os << std::fixed << std::setprecision(3) << v;
    return os.str();
  };
  const double margin = spec.bulk_cutoff_margin_A;
  const std::string minus_margin = " - " + fixed(margin) + " A margin";
  std::vector<PairCutoff> out;
  for (std::size_t i = 0; i < zs.size(); ++i)
    for (std::size_t j = i; j < zs.size(); ++j) {
      const int z1 = zs[i], z2 = zs[j];
      const std::string name = std::string(element_symbol(z1)) + "-" + element_symbol(z2);
      PairCutoff c{z1, z2, 0, ""};
      const auto override_it = std::find_if(spec.cutoffs.begin(), spec.cutoffs.end(), [&](const PairCutoff& o) {
        return (o.Z1 == z1 && o.Z2 == z2) || (o.Z1 == z2 && o.Z2 == z1);
      });
      const auto in_bulk = std::find_if(bulk.begin(), bulk.end(),
                                        [&](const PairCutoff& b) { return b.Z1 == z1 && b.Z2 == z2; });
      if (override_it != spec.cutoffs.end()) {
        c.cutoff_A = override_it->cutoff_A;
        c.source = "--cutoff " + name;
      } else if (in_bulk != bulk.end()) {
        c.cutoff_A = in_bulk->cutoff_A - margin;
        c.source = "shortest " + name + " in bulk " + in_bulk->source + " " + fixed(in_bulk->cutoff_A) +
                   " A" + minus_margin;
      } else if (spec.cutoff_rule == CutoffRule::Bulk && is_nonmetal(z1) != is_nonmetal(z2)) {
        // A metal–anion pair neither crystal has: the shortest metal–(same anion) bond in bulk.
        const int anion = is_nonmetal(z1) ? z1 : z2;
        const PairCutoff* shortest = nullptr;
        for (const PairCutoff& b : bulk)
          if ((b.Z1 == anion) != (b.Z2 == anion) && !is_nonmetal(b.Z1 == anion ? b.Z2 : b.Z1) &&
              (!shortest || b.cutoff_A < shortest->cutoff_A))
            shortest = &b;
        if (shortest) {
          c.cutoff_A = shortest->cutoff_A - margin;
          c.source = "no " + name + " in either bulk: shortest metal-" + element_symbol(anion) + " (" +
                     element_symbol(shortest->Z1) + "-" + element_symbol(shortest->Z2) + " in bulk " +
                     shortest->source + " " + fixed(shortest->cutoff_A) + " A)" + minus_margin;
        }
      }
      if (c.source.empty()) {
        c.cutoff_A = spec.cutoff_scale * (covalent_radius_A(z1) + covalent_radius_A(z2));
        c.source = fixed(spec.cutoff_scale) + " x covalent radii sum (Cordero 2008)" +
                   (spec.cutoff_rule == CutoffRule::Bulk ? ": pair in neither bulk" : "");
      }
      out.push_back(c);
    }
  return out;
}

double pair_cutoff_A(const InterfaceSpec& spec, int Z1, int Z2) {
  for (const PairCutoff& c : contact_cutoffs(spec))
    if ((c.Z1 == Z1 && c.Z2 == Z2) || (c.Z1 == Z2 && c.Z2 == Z1))
      return c.cutoff_A;
  for (const PairCutoff& c : spec.cutoffs)  // a species in neither crystal
    if ((c.Z1 == Z1 && c.Z2 == Z2) || (c.Z1 == Z2 && c.Z2 == Z1))
      return c.cutoff_A;
  return spec.cutoff_scale * (covalent_radius_A(Z1) + covalent_radius_A(Z2));
}

std::vector<ShortestPair> shortest_pairs(const AtomicModel& model, double max_A) {
  std::vector<Vec3> pos;
  pos.reserve(model.atoms.size());
  for (const Atom& a : model.atoms)
    pos.push_back(a.pos_A);
  const NeighborGrid grid(pos, model.box_lengths_A(), model.pbc, max_A);
  std::map<std::pair<int, int>, ShortestPair> best;
  for (std::size_t i = 0; i < pos.size(); ++i)
    grid.visit(pos[i], max_A, [&](std::size_t j, const Vec3& d, double r2) {
      if (j <= i)
        return false;
      const Atom &a = model.atoms[i], &b = model.atoms[j];
      const auto key = std::minmax(a.Z, b.Z);
      const double r = std::sqrt(r2);
      auto it = best.find(key);
      if (it == best.end() || r < it->second.distance_A)
        best[key] = {key.first, key.second, r, a.phase != b.phase, pos[i] + 0.5 * d};
      return false;
    });
  std::vector<ShortestPair> out;
  for (const auto& [key, p] : best)
    out.push_back(p);
  return out;
}

Vec3 step_edge_axis(InterfaceView view) {
  const Axes ax = axes_of(view);
  return Vec3::Unit(ax.ledge).cross(Vec3::Unit(ax.normal));
}

double nagai_tilt_deg(double mismatch, double step_A, double terrace_A) {
  return std::atan(mismatch * step_A / terrace_A) / units::deg_to_rad;
}

double nagai_terrace_width_A(double mismatch, double step_A, double tilt_deg) {
  return mismatch * step_A / std::tan(tilt_deg * units::deg_to_rad);
}

double layer_period_A(const Crystal& c, const Vec3& hkl_in) {
  const Vec3 hkl = reduced(hkl_in);
  const double d = c.lattice.d_spacing_A(hkl);
  const Vec3 n = plane_normal(c, hkl);
  struct Layer {
    double h;
    int Z;
    double occ;
  };
  std::vector<Layer> layers;
  for (const Site& s : c.sites) {
    const double p = n.dot(c.lattice.frac_to_cart_A(s.frac));
    layers.push_back({p - d * std::floor(p / d), s.Z, s.occupancy});
  }
  const auto periodic_gap = [d](double a, double b) {
    const double x = std::abs(a - b);
    return std::min(x, d - x);
  };
  for (int div = 12; div > 1; --div) {
    bool maps = true;
    for (const Layer& l : layers) {
      const double shifted = std::fmod(l.h + d / div, d);
      maps = std::any_of(layers.begin(), layers.end(), [&](const Layer& o) {
        return o.Z == l.Z && std::abs(o.occ - l.occ) < 1e-3 && periodic_gap(o.h, shifted) < 1e-4;
      });
      if (!maps)
        break;
    }
    if (maps)
      return d / div;
  }
  return d;
}

namespace {

struct StepMismatch {
  double step_A, d_o_A, d_s_A, mismatch;
  int planes;
};

// The overlayer planes that fill one step of the substrate and their mismatch to it.
StepMismatch step_mismatch(const InterfaceSpec& spec, int layers) {
  StepMismatch m;
  m.step_A = layers * spec.substrate.lattice.d_spacing_A(reduced(spec.substrate_plane_hkl));
  m.d_o_A = layer_period_A(spec.overlayer, spec.overlayer_plane_hkl);
  m.planes = std::max(1, int(std::lround(m.step_A / m.d_o_A)));
  m.d_s_A = m.step_A / m.planes;
  m.mismatch = (m.d_s_A - m.d_o_A) / m.d_o_A;
  return m;
}

}  // namespace

NagaiTilt nagai_tilt(const InterfaceSpec& spec) {
  NagaiTilt t;
  t.step_edge_axis = step_edge_axis(spec.view);
  t.axis_cos = t.step_edge_axis.dot(spec.tilt_axis.normalized());
  const StepMismatch m = step_mismatch(spec, std::max(1, spec.ledge_height_layers));
  t.overlayer_spacing_A = m.d_o_A;
  t.overlayer_planes = m.planes;
  t.substrate_spacing_A = m.d_s_A;
  t.mismatch = m.mismatch;
  if (spec.ledge_height_layers <= 0 || !(spec.terrace_width_A > 0))
    return t;  // flat: no steps, no Nagai tilt
  const double box = rounded_ledge_box_A(spec);
  const int n = std::max(1, int(std::lround(box / spec.terrace_width_A)));
  if (n < 2)
    return t;  // one terrace fills the box: flat
  t.step_height_A = m.step_A;
  t.terrace_width_A = box / n;
  t.vicinal_angle_deg = std::atan(m.step_A / t.terrace_width_A) / units::deg_to_rad;
  t.tilt_deg = nagai_tilt_deg(m.mismatch, m.step_A, t.terrace_width_A);
  t.tilt_about_axis_deg =
      std::atan(std::tan(t.tilt_deg * units::deg_to_rad) * t.axis_cos) / units::deg_to_rad;
  return t;
}

std::string make_ledges_nagai_consistent(InterfaceSpec& spec) {
  if (spec.ledge_height_layers <= 0)
    spec.ledge_height_layers = 1;
  spec.vicinal_ledges = true;
  const StepMismatch m = step_mismatch(spec, spec.ledge_height_layers);
  const double cosphi = step_edge_axis(spec.view).dot(spec.tilt_axis.normalized());
  if (std::abs(cosphi) < 1e-6)
    fail("--ledges auto: the step edges are perpendicular to the tilt axis, so no terrace width "
         "gives a Nagai tilt about it; use --tilt-axis along the step edges");
  if (std::abs(m.mismatch) < 1e-9)
    fail("--ledges auto: the planes meeting across a step have no mismatch, so the Nagai tilt is 0 "
         "for any terrace width; give --terrace-width instead");
  const double tan_edges = std::tan(spec.tilt_deg * units::deg_to_rad) / cosphi;
  const double w = m.mismatch * m.step_A / tan_edges;
  if (!(w > 0) || !std::isfinite(w))
    fail("--ledges auto: a tilt of ", spec.tilt_deg, " deg has the sense opposite to the Nagai "
         "tilt of a ", 100 * m.mismatch, " % mismatch on steps rising along the ledge axis; "
         "give --tilt ", -spec.tilt_deg, "deg or --tilt nagai");
  const int a = axes_of(spec.view).ledge;
  const double request = spec.box_A[a];
  const Repeat rs = lattice_repeat(spec.substrate, substrate_rotation(spec).transpose() * Vec3::Unit(a));
  const double period = spec.round_box_to_substrate && rs.length_A > 0 ? rs.length_A : 0;
  double best_box = 0, best_err = std::numeric_limits<double>::max();
  int best_n = 0;
  if (period > 0) {
    for (int k = std::max(1, int(std::ceil(0.75 * request / period))); k * period <= 1.6 * request; ++k) {
      const double box = k * period;
      const int n = int(std::lround(box / w));
      if (n < 2)
        continue;
      const double err = std::abs(box / n - w);
      if (err < best_err - 1e-6 || (err < best_err + 1e-6 && std::abs(box - request) < std::abs(best_box - request))) {
        best_err = err;
        best_box = box;
        best_n = n;
      }
    }
  } else {
    best_n = std::max(2, int(std::lround(request / w)));
    best_box = best_n * w;
  }
  if (best_n < 2)
    fail("--ledges auto: the Nagai terrace width ", w, " Å for ", spec.tilt_deg,
         " deg needs a box of at least two terraces along the ledge axis; enlarge --box to ",
         std::ceil(2 * w), " Å or more");
  spec.box_A[a] = best_box;
  spec.terrace_width_A = best_box / best_n;
  std::ostringstream note;
  note << "Nagai terrace width " << w << " Å for " << spec.tilt_deg << " deg (h = " << m.step_A
       << " Å, mismatch " << 100 * m.mismatch << " %); built: " << best_n << " vicinal terraces of "
       << spec.terrace_width_A << " Å in a " << best_box << " Å box";
  return note.str();
}

int InterfaceGeometry::pivot_terrace() const { return vicinal ? (n_terraces - 1) / 2 : 0; }
int InterfaceGeometry::top_terrace() const { return vicinal ? n_terraces - 1 : n_terraces / 2; }

double InterfaceGeometry::staircase_origin_A() const {
  return 0.5 * box_ledge_A - (pivot_terrace() + 1) * terrace_width_A;
}

double InterfaceGeometry::height_A(double s) const {
  if (n_terraces <= 1 || step_A == 0)
    return level0_A;
  const double u = s - staircase_origin_A();
  double t = u - box_ledge_A * std::floor(u / box_ledge_A);
  int i = std::min(int(t / terrace_width_A), n_terraces - 1);
  if (vicinal)
    return level0_A + step_A * i;  // closed by one tall step at the staircase origin
  return level0_A + step_A * std::min(i, n_terraces - i);  // periodic staircase up and down
}

std::pair<double, double> InterfaceGeometry::height_range_A(double s0, double s1) const {
  double lo = height_A(s0), hi = lo;
  if (n_terraces > 1 && step_A != 0) {
    const double origin = staircase_origin_A();
    const double first = origin + std::floor((s0 - origin) / terrace_width_A) * terrace_width_A;
    for (double s = first; s <= s1 + terrace_width_A; s += terrace_width_A) {
      const double h = height_A(std::clamp(s + 0.5 * terrace_width_A, s0, s1));
      lo = std::min(lo, h);
      hi = std::max(hi, h);
    }
  }
  const double h1 = height_A(s1);
  return {std::min(lo, h1), std::max(hi, h1)};
}

void InterfaceSpec::validate() const {
  for (const Crystal* c : {&substrate, &overlayer})
    if (c->sites.empty())
      fail("interface: crystal '", c->name, "' has no atoms; check the structure file");
  const std::pair<const char*, const Vec3*> vectors[] = {
      {"substrate plane (--plane)", &substrate_plane_hkl},
      {"overlayer plane (--plane)", &overlayer_plane_hkl},
      {"substrate direction (--direction)", &substrate_direction_uvw},
      {"overlayer direction (--direction)", &overlayer_direction_uvw},
      {"zone axis (--zone)", &zone_uvw}};
  for (const auto& [what, v] : vectors)
    if (is_zero(*v))
      fail("interface: ", what, " is the zero vector 0,0,0; give nonzero indices");
  const auto check_in_plane = [](const Crystal& c, const Vec3& hkl, const Vec3& uvw,
                                 const char* role) {
    const double a = angle_deg(plane_normal(c, hkl), direction(c, uvw));
    if (std::abs(a - 90) > 1e-4)
      fail("interface: ", role, " direction [", triple(uvw), "] is not perpendicular to the plane "
           "normal of (", triple(hkl), ") in ", c.name, " (angle ", a,
           " deg); the OR direction must lie in the interface plane (h·u = 0)");
  };
  check_in_plane(substrate, substrate_plane_hkl, substrate_direction_uvw, "substrate");
  check_in_plane(overlayer, overlayer_plane_hkl, overlayer_direction_uvw, "overlayer");
  const Vec3 n_s = plane_normal(substrate, substrate_plane_hkl);
  const Vec3 z_s = direction(substrate, zone_uvw);
  if (view == InterfaceView::EdgeOn && std::abs(angle_deg(n_s, z_s) - 90) > 1e-4)
    fail("interface: edge-on view needs the zone [", triple(zone_uvw), "] to lie in the substrate "
         "plane (", triple(substrate_plane_hkl), ") (angle to its normal ", angle_deg(n_s, z_s),
         " deg, want 90); choose a zone with h·u = 0 or --view plan");
  if (view == InterfaceView::PlanView && angle_deg(n_s, z_s) > 1e-4)
    fail("interface: plan view needs the zone [", triple(zone_uvw), "] parallel to the normal of (",
         triple(substrate_plane_hkl), ") (angle ", angle_deg(n_s, z_s), " deg)");
  if (!is_zero(overlayer_zone_uvw)) {
    const Mat3 q = or_frame(substrate, substrate_plane_hkl, substrate_direction_uvw) *
                   or_frame(overlayer, overlayer_plane_hkl, overlayer_direction_uvw).transpose();
    const double a = angle_deg(q * direction(overlayer, overlayer_zone_uvw), z_s);
    if (a > 0.05)
      fail("interface: inconsistent OR: the OR maps overlayer zone [", triple(overlayer_zone_uvw),
           "] ", a, " deg away from substrate zone [", triple(zone_uvw),
           "]; drop the overlayer zone or give the one the OR implies");
  }
  const Lattice& ls = substrate.lattice;
  const double cell_max = std::max({ls.a_A(), ls.b_A(), ls.c_A()});
  const char* axis_name[] = {"x", "y", "z"};
  for (int a = 0; a < 3; ++a)
    if (!(box_A[a] >= cell_max))
      fail("interface: box ", axis_name[a], " = ", box_A[a], " Å is smaller than one unit cell of ",
           substrate.name, " (", cell_max, " Å); enlarge --box");
  if (!(substrate_thickness_A > 0))
    fail("interface: substrate thickness must be > 0, got ", substrate_thickness_A, " Å");
  if (!(vacuum_A >= 0))
    fail("interface: vacuum must be >= 0, got ", vacuum_A, " Å");
  if (!std::isfinite(tilt_deg) || std::abs(tilt_deg) >= 90)
    fail("interface: tilt must be within (-90, 90) deg, got ", tilt_deg, " deg");
  if (is_zero(tilt_axis))
    fail("interface: tilt axis is the zero vector; give a direction such as 0,0,1 (the beam)");
  if (ledge_height_layers < 0)
    fail("interface: ledge height must be >= 0 layers, got ", ledge_height_layers);
  const Axes ax = axes_of(view);
  if (ledge_height_layers > 0 && !(terrace_width_A > 0 && terrace_width_A <= box_A[ax.ledge]))
    fail("interface: terrace width must be in (0, box ", axis_name[ax.ledge], " = ",
         box_A[ax.ledge], " Å] with ledges, got ", terrace_width_A, " Å");
  if (!(cutoff_scale > 0))
    fail("interface: cutoff scale must be > 0, got ", cutoff_scale);
  for (const PairCutoff& c : cutoffs)
    if (!(c.cutoff_A > 0 && c.cutoff_A <= MAX_CONTACT_CUTOFF_A))  // a longer one lists every pair
      fail("interface: cutoff ", element_symbol(c.Z1), "-", element_symbol(c.Z2),
           " must be in (0, ", MAX_CONTACT_CUTOFF_A, "] Å (a contact distance), got ", c.cutoff_A, " Å");
  if (!(coherent_strain_depth_A >= 0) || !std::isfinite(coherent_strain_depth_A))
    fail("interface: --coherent-strain depth must be >= 0 Å (0 = off), got ", coherent_strain_depth_A, " Å");
  if (!(bulk_cutoff_margin_A >= 0))
    fail("interface: bulk cutoff margin must be >= 0, got ", bulk_cutoff_margin_A, " Å");
  const CutoffLookup cutoff_of(contact_cutoffs(*this));
  if (!(cutoff_of.max_A + std::min(0.0, interface_cutoff_shift_A) > 0) &&
      interface_cutoff_shift_A < 0)
    fail("interface: interface cutoff shift ", interface_cutoff_shift_A, " Å leaves no cutoff > 0");
  for (const Crystal* c : {&substrate, &overlayer})
    for (const auto& [pair, d] : bulk_min_distances(*c)) {
      const double cut = cutoff_of(pair.first, pair.second);
      if (cut >= d)
        fail("interface: cutoff ", element_symbol(pair.first), "-", element_symbol(pair.second), " ",
             cut, " Å is not below the ", element_symbol(pair.first), "-",
             element_symbol(pair.second), " distance ", d, " Å inside bulk ", c->name,
             "; lower --cutoff / --cutoff-scale");
    }
  if (!(void_grid_A > 0) || !(void_band_A > 0) || void_probe_A < 0)
    fail("interface: void grid and band must be > 0 and probe >= 0, got grid ", void_grid_A,
         " Å, band ", void_band_A, " Å, probe ", void_probe_A, " Å");
  // Every atom paints the grid points within the probe: a probe wider than the box paints the
  // whole grid per atom (hours), and finds no void anyway.
  const double box_min = std::min({box_A[0], box_A[1], box_A[2]});
  if (!(void_probe_A <= 0.5 * box_min))
    fail("interface: void probe ", void_probe_A, " Å is larger than half the smallest box edge (",
         box_min, " Å); give --probe of a few Å (default: largest bulk hole + 0.1 Å) or --no-voids");
  require_work("interface: the void grid", box_A[0] * box_A[1] * box_A[2] / (void_grid_A * void_grid_A * void_grid_A),
               "grid points", "use a coarser void grid or a smaller --box, or --no-voids", 1e11);

  const double level0 = vacuum_A + substrate_thickness_A;
  const double step = ledge_height_layers * substrate.lattice.d_spacing_A(reduced(substrate_plane_hkl));
  InterfaceGeometry stairs;  // terrace count before box rounding: close enough for the checks
  stairs.vicinal = vicinal_ledges;
  stairs.n_terraces =
      ledge_height_layers > 0 ? std::max(1, int(std::lround(box_A[ax.ledge] / terrace_width_A))) : 1;
  const double top_free = box_A[ax.normal] - vacuum_A;
  const double pivot_level = level0 + step * stairs.pivot_terrace();
  if (level0 + step * std::max(1, stairs.top_terrace()) >= top_free)
    fail("interface: substrate (", level0 + step * std::max(1, stairs.top_terrace()),
         " Å with vacuum and ledges) leaves no room for the "
         "overlayer in box ", axis_name[ax.normal], " = ", box_A[ax.normal], " Å; enlarge --box");
  if (shape == OverlayerShape::Slab) {
    const double rise = step * std::max(1, stairs.top_terrace());
    if (!(overlayer_thickness_A > rise))
      fail("interface: overlayer slab thickness must exceed the ledge rise ", rise, " Å, got ",
           overlayer_thickness_A, " Å");
    if (level0 + overlayer_thickness_A > top_free)
      fail("interface: overlayer slab top at ", level0 + overlayer_thickness_A,
           " Å is outside the box ", axis_name[ax.normal], " = ", box_A[ax.normal],
           " Å minus vacuum ", vacuum_A, " Å; enlarge --box or thin the slab");
    return;
  }
  if (!(particle_radius_A > 0))
    fail("interface: particle radius must be > 0, got ", particle_radius_A, " Å");
  if (particle_center_height_A <= -particle_radius_A)
    fail("interface: particle centre height ", particle_center_height_A,
         " Å puts the whole particle below the interface (radius ", particle_radius_A, " Å)");
  Vec3 lo, hi;
  if (shape == OverlayerShape::Cap) {
    lo = Vec3::Constant(-particle_radius_A);
    hi = Vec3::Constant(particle_radius_A);
  } else {
    if (wulff_facets.empty())
      fail("interface: Wulff shape needs facets, e.g. --facets '1,1,1:1.0;1,0,0:1.15'");
    for (const WulffFacet& w : wulff_facets)
      if (is_zero(w.hkl) || !(w.relative_energy > 0))
        fail("interface: Wulff facet {", triple(w.hkl), "} needs nonzero indices and energy > 0, got ",
             w.relative_energy);
    const Mat3 q = or_frame(substrate, substrate_plane_hkl, substrate_direction_uvw) *
                   or_frame(overlayer, overlayer_plane_hkl, overlayer_direction_uvw).transpose();
    const Facets f = facets_in_box(*this, q);
    std::tie(lo, hi) = polyhedron_extent(f);
    if (lo[0] > hi[0])
      fail("interface: Wulff facets do not enclose a particle; add facets that close it ({111} and {100})");
    const double r_out = std::max(lo.cwiseAbs().maxCoeff(), hi.cwiseAbs().maxCoeff());
    lo = Vec3::Constant(-r_out);  // rotation by the OR/tilt: bound by the circumscribed sphere
    hi = Vec3::Constant(r_out);
  }
  const double half = hi[0];
  const double base_half = particle_center_height_A >= 0
                               ? half
                               : std::sqrt(std::max(0.0, half * half - particle_center_height_A *
                                                                          particle_center_height_A));
  for (int a : {ax.ledge, ax.other}) {
    if (view == InterfaceView::EdgeOn && a == 2)
      continue;  // along the beam an edge-on model is a lamella: the particle is cut by it
    if (2 * base_half + 2 * vacuum_A > box_A[a])
      fail("interface: particle (", 2 * base_half, " Å wide plus ", vacuum_A, " Å vacuum each side) "
           "is larger than the box ", axis_name[a], " = ", box_A[a], " Å; shrink --radius or enlarge --box");
  }
  if (pivot_level + particle_center_height_A + half > top_free)
    fail("interface: particle top at ", pivot_level + particle_center_height_A + half,
         " Å is larger than the box ", axis_name[ax.normal], " = ", box_A[ax.normal],
         " Å minus vacuum; shrink --radius or enlarge --box");
}

InterfaceResult build_interface(const InterfaceSpec& spec_in, const ProgressFn& progress) {
  spec_in.validate();
  InterfaceSpec spec = spec_in;
  const Axes ax = axes_of(spec.view);
  const NagaiTilt nagai = nagai_tilt(spec);
  if (spec.tilt_from_nagai)
    spec.tilt_deg = nagai.tilt_about_axis_deg;
  const auto stage = [&](std::size_t done, const char* what) {
    if (progress)
      progress(done, 5, what);
  };
  InterfaceResult result;
  InterfaceReport& rep = result.report;
  rep.seed = spec.seed;
  rep.tilt_deg = spec.tilt_deg;
  rep.nagai = nagai;

  // Orientation: substrate frame from (normal, zone); overlayer by the OR, then tilt.
  const Crystal& sub = spec.substrate;
  const Crystal& ov = spec.overlayer;
  const Mat3 r_sub = substrate_rotation(spec);
  const Mat3 q = or_frame(sub, spec.substrate_plane_hkl, spec.substrate_direction_uvw) *
                 or_frame(ov, spec.overlayer_plane_hkl, spec.overlayer_direction_uvw).transpose();
  const Mat3 r_ov0 = r_sub * q;
  const Mat3 r_tilt = rotation_about_axis(spec.tilt_axis, spec.tilt_deg);
  const Mat3 r_ov = r_tilt * r_ov0;
  rep.substrate_rotation = r_sub;
  rep.overlayer_rotation = r_ov;
  rep.overlayer_zone_uvw = ov.lattice.reciprocal_invA().transpose() * (r_ov.transpose() * Vec3::UnitZ());
  rep.overlayer_zone_uvw /= rep.overlayer_zone_uvw.cwiseAbs().maxCoeff();

  // Box: periodic in-plane axes crossed by the substrate become multiples of its repeat.
  Vec3 box = spec.box_A;
  const char* axis_name[] = {"x", "y", "z"};
  for (int a = 0; a < 3; ++a) {
    if (a == ax.normal)
      continue;
    const Vec3 e = Vec3::Unit(a);
    const Repeat rs = lattice_repeat(sub, r_sub.transpose() * e);
    const Repeat ro = lattice_repeat(ov, r_ov0.transpose() * e);
    InterfaceMismatch mm;
    mm.axis = axis_name[a];
    mm.substrate_uvw = rs.uvw;
    mm.overlayer_uvw = ro.uvw;
    mm.substrate_repeat_A = rs.length_A;
    mm.overlayer_repeat_A = ro.length_A;
    if (rs.length_A > 0 && ro.length_A > 0) {
      mm.n_overlayer = std::max(1, int(std::lround(rs.length_A / ro.length_A)));
      mm.mismatch = (mm.n_overlayer * ro.length_A - rs.length_A) / rs.length_A;
      double best = std::numeric_limits<double>::max();
      for (int m = 1; m <= 6; ++m) {
        const int n = std::max(1, int(std::lround(m * rs.length_A / ro.length_A)));
        const double strain = (n * ro.length_A - m * rs.length_A) / (m * rs.length_A);
        if (std::abs(strain) < best - 1e-9) {
          best = std::abs(strain);
          mm.coincidence_substrate = m;
          mm.coincidence_overlayer = n;
          mm.coincidence_strain = strain;
        }
      }
    }
    rep.mismatch.push_back(mm);
    const bool periodic = a != 2;
    if (!periodic)
      continue;
    if (rs.length_A > 0 && spec.round_box_to_substrate) {
      const double n = std::max(1.0, std::round(box[a] / rs.length_A));
      box[a] = n * rs.length_A;
      rep.boundary_notes.push_back(std::string("box ") + axis_name[a] + " = " + std::to_string(int(n)) +
                                   " substrate repeats " + translation_str(rs.uvw) + " (" +
                                   std::to_string(box[a]) + " A): substrate periodic, no seam");
    } else {
      rep.boundary_notes.push_back(std::string("box ") + axis_name[a] +
                                   ": substrate not commensurate, seam at the boundary (overlaps removed)");
    }
    if (spec.shape != OverlayerShape::Slab) {
      rep.boundary_notes.push_back(std::string("overlayer particle: vacuum to the ") + axis_name[a] +
                                   " boundaries");
    } else if (spec.strain_slab_to_box && spec.tilt_deg == 0 && ro.length_A > 0) {
      // Untilted slab: a homogeneous strain along this axis makes a whole number of
      // overlayer repeats fit the box (reported), so the slab is periodic too.
      const double n = std::max(1.0, std::round(box[a] / ro.length_A));
      rep.overlayer_strain[a] = box[a] / (n * ro.length_A) - 1;
      std::ostringstream note;
      note << "overlayer slab strained by " << 100 * rep.overlayer_strain[a] << " % along "
           << axis_name[a] << " to " << n << " repeats " << translation_str(ro.uvw)
           << ": periodic, no seam";
      rep.boundary_notes.push_back(note.str());
    } else {
      rep.boundary_notes.push_back(std::string("overlayer slab crosses the ") + axis_name[a] +
                                   " boundary incommensurate (tilted or irrational row): seam, "
                                   "overlaps across it removed");
    }
  }
  rep.box_A = box;
  spec.box_A = box;

  // Interface geometry and lattice origins (terminations between atomic layers).
  InterfaceGeometry& geo = rep.geometry;
  geo.normal_axis = ax.normal;
  geo.ledge_axis = ax.ledge;
  geo.level0_A = spec.vacuum_A + spec.substrate_thickness_A;
  geo.box_ledge_A = box[ax.ledge];
  geo.step_A = spec.ledge_height_layers * sub.lattice.d_spacing_A(reduced(spec.substrate_plane_hkl));
  geo.n_terraces = spec.ledge_height_layers > 0
                       ? std::max(1, int(std::lround(box[ax.ledge] / spec.terrace_width_A)))
                       : 1;
  geo.terrace_width_A = box[ax.ledge] / geo.n_terraces;
  geo.vicinal = spec.vicinal_ledges;
  Vec3 pivot;
  pivot[ax.ledge] = 0.5 * box[ax.ledge];
  pivot[ax.other] = 0.5 * box[ax.other];
  pivot[ax.normal] = geo.level0_A + geo.step_A * geo.pivot_terrace();
  rep.pivot_A = pivot;
  const Vec3 e_n = Vec3::Unit(ax.normal);
  const Vec3 o_sub = pivot - termination_offset_A(sub, spec.substrate_plane_hkl) * e_n;
  const Vec3 o_ov0 = pivot - termination_offset_A(ov, spec.overlayer_plane_hkl) * e_n;
  const Mat3 strain = (Vec3::Ones() + rep.overlayer_strain).asDiagonal();
  const Vec3 o_ov = pivot + strain * r_tilt * (o_ov0 - pivot);
  rep.substrate_origin_A = o_sub;
  rep.overlayer_origin_A = o_ov;

  Shape shape;
  shape.kind = spec.shape;
  shape.normal_axis = ax.normal;
  shape.slab_top_A = geo.level0_A + spec.overlayer_thickness_A;
  shape.center_A = pivot + spec.particle_center_height_A * e_n;
  shape.radius_A = spec.particle_radius_A;
  if (spec.shape == OverlayerShape::Wulff) {
    shape.facets = facets_in_box(spec, r_ov);
    std::tie(shape.extent_lo, shape.extent_hi) = polyhedron_extent(shape.facets);
  } else if (spec.shape == OverlayerShape::Cap) {
    shape.extent_lo = Vec3::Constant(-spec.particle_radius_A);
    shape.extent_hi = Vec3::Constant(spec.particle_radius_A);
  }

  // Atoms: substrate below the terraced surface, overlayer above it inside the shape.
  stage(0, "placing atoms");
  AtomicModel& model = result.model;
  model.cell_A = box.asDiagonal();
  model.pbc = {true, true, false};
  const bool same_names = sub.name == ov.name;
  model.phase_names = {same_names ? sub.name + "_substrate" : sub.name,
                       same_names ? ov.name + "_overlayer" : ov.name};
  const double top_level = geo.level0_A + geo.step_A * geo.top_terrace();
  Rng rng(spec.seed);
  // Periodic axes are filled over [−ε, L − ε): a site on the boundary, whatever its rounding,
  // is kept once (at x ≈ 0), never twice; it is then wrapped into [0, L).
  constexpr double EDGE_EPS_A = 1e-6;
  Vec3 periodic_shift = Vec3::Zero();
  for (int a = 0; a < 2; ++a)
    if (a != ax.normal)
      periodic_shift[a] = EDGE_EPS_A;
  {
    Vec3 lo = -periodic_shift, hi = box - periodic_shift;
    lo[ax.normal] = spec.vacuum_A;
    hi[ax.normal] = top_level + 1e-9;
    // One allocation for both phases (growth by doubling would peak at 3× the model).
    const double n_sub = (hi - lo).prod() * atoms_per_cell(sub) / sub.lattice.volume_A3();
    double ov_volume = box.prod();
    if (spec.shape == OverlayerShape::Slab)
      ov_volume *= spec.overlayer_thickness_A / box[ax.normal];
    else
      ov_volume = (shape.extent_hi - shape.extent_lo).prod();
    const double n_ov = ov_volume * atoms_per_cell(ov) / ov.lattice.volume_A3();
    model.atoms.reserve(std::size_t(1.05 * (n_sub + n_ov)));
    fill_crystal(sub, r_sub, o_sub, lo, hi, 0, rng,
                 [&](const Vec3& p) { return p[ax.normal] <= geo.height_A(p[ax.ledge]); },
                 model.atoms, rep.vacancies);
  }
  rep.n_substrate = model.atoms.size();
  {
    Vec3 lo = -periodic_shift, hi = box - periodic_shift;
    lo[ax.normal] = geo.level0_A;
    if (spec.shape == OverlayerShape::Slab) {
      hi[ax.normal] = shape.slab_top_A;
    } else {
      lo = lo.cwiseMax(shape.center_A + shape.extent_lo - Vec3::Constant(1e-6));
      hi = hi.cwiseMin(shape.center_A + shape.extent_hi + Vec3::Constant(1e-6));
    }
    fill_crystal(ov, strain * r_ov, o_ov, lo, hi, 1, rng,
                 [&](const Vec3& p) {
                   return p[ax.normal] > geo.height_A(p[ax.ledge]) && shape.inside(p, 0);
                 },
                 model.atoms, rep.vacancies);
  }
  if (spec.coherent_strain_depth_A > 0) {
    // In-plane strain that makes n overlayer repeats span one substrate repeat, on top of the
    // slab strain already applied; full up to depth D above the local interface, then
    // decaying with length D. Positions scale about the pivot (the particle's centre line).
    for (const InterfaceMismatch& mm : rep.mismatch) {
      const int a = mm.axis[0] - 'x';
      if (mm.n_overlayer > 0 && mm.overlayer_repeat_A > 0)
        rep.coherent_strain[a] = mm.substrate_repeat_A / (mm.n_overlayer * mm.overlayer_repeat_A) /
                                     (1 + rep.overlayer_strain[a]) - 1;
    }
    const double depth = spec.coherent_strain_depth_A;
    for (Atom& atom : model.atoms) {
      if (atom.phase != 1)
        continue;
      const double t = atom.pos_A[ax.normal] - geo.height_A(atom.pos_A[ax.ledge]);
      const double f = t <= depth ? 1.0 : std::exp(-(t - depth) / depth);
      for (int a = 0; a < 3; ++a)
        if (a != ax.normal)
          atom.pos_A[a] = pivot[a] + (1 + f * rep.coherent_strain[a]) * (atom.pos_A[a] - pivot[a]);
    }
    // Along the open (beam) axis of an edge-on lamella a stretched overlayer would leave the
    // box: those atoms are dropped (counted in the note).
    const auto outside = [&](const Atom& atom) {
      for (int a = 0; a < 3; ++a)
        if (a != ax.normal && !model.pbc[std::size_t(a)] && (atom.pos_A[a] < 0 || atom.pos_A[a] >= box[a]))
          return true;
      return false;
    };
    const std::size_t before = model.atoms.size();
    model.atoms.erase(std::remove_if(model.atoms.begin(), model.atoms.end(), outside), model.atoms.end());
    std::ostringstream note;
    if (before != model.atoms.size())
      note << before - model.atoms.size() << " strained overlayer atoms beyond the open box faces dropped; ";
    note << "coherent strain " << 100 * rep.coherent_strain[ax.ledge] << " % along "
         << axis_name[ax.ledge] << ", " << 100 * rep.coherent_strain[ax.other] << " % along "
         << axis_name[ax.other] << " up to " << depth << " A above the interface, decaying above";
    rep.boundary_notes.push_back(note.str());
  }
  for (Atom& atom : model.atoms)
    for (int a = 0; a < 2; ++a) {
      if (atom.pos_A[a] < 0)
        atom.pos_A[a] += box[a];
      else if (atom.pos_A[a] >= box[a] && spec.coherent_strain_depth_A > 0)
        atom.pos_A[a] -= box[a];  // a strained overlayer atom pushed past the periodic face
    }
  stage(1, "removing overlaps");

  // Overlaps: only atoms within one cutoff of the interface or of a periodic face can be
  // closer than a cutoff to an atom of another phase or of another periodic image.
  const std::vector<PairCutoff> cutoffs = contact_cutoffs(spec);
  const CutoffLookup cutoff_of(cutoffs);
  const double shift = spec.interface_cutoff_shift_A;
  const double cmax = cutoff_of.max_A + std::max(0.0, shift);
  std::vector<std::size_t> cand;
  std::vector<Vec3> cand_pos;
  for (std::size_t i = 0; i < model.atoms.size(); ++i) {
    const Vec3& p = model.atoms[i].pos_A;
    bool near = p[ax.normal] >= geo.level0_A - cmax && p[ax.normal] <= top_level + cmax;
    if (near) {
      const auto [hlo, hhi] = geo.height_range_A(p[ax.ledge] - cmax, p[ax.ledge] + cmax);
      near = p[ax.normal] >= hlo - cmax && p[ax.normal] <= hhi + cmax;
    }
    for (int a = 0; a < 2 && !near; ++a)
      near = p[a] < cmax || p[a] > box[a] - cmax;
    if (near) {
      cand.push_back(i);
      cand_pos.push_back(p);
    }
  }
  std::vector<char> removed(model.atoms.size(), 0);
  {
    const NeighborGrid grid(cand_pos, box, model.pbc, cmax);
    for (std::size_t ci = 0; ci < cand.size(); ++ci) {
      const std::size_t i = cand[ci];
      const Atom& ai = model.atoms[i];
      grid.visit(ai.pos_A, cmax, [&](std::size_t cj, const Vec3&, double r2) {
        const std::size_t j = cand[cj];
        if (j >= i || removed[j])
          return false;
        const Atom& aj = model.atoms[j];
        const double c = cutoff_of(ai.Z, aj.Z) + (ai.phase != aj.phase ? shift : 0.0);
        if (r2 >= c * c)
          return false;
        removed[i] = 1;
        if (ai.phase != aj.phase)
          ++rep.removed_interface;
        else
          ++rep.removed_boundary;
        return true;
      });
    }
  }
  std::size_t kept = 0, n_sub_kept = 0;
  for (std::size_t i = 0; i < model.atoms.size(); ++i)
    if (!removed[i]) {
      if (model.atoms[i].phase == 0)
        ++n_sub_kept;
      model.atoms[kept++] = model.atoms[i];
    }
  model.atoms.resize(kept);
  rep.n_substrate = n_sub_kept;
  rep.n_overlayer = kept - n_sub_kept;

  std::vector<int> zs = species_of(sub);
  for (int z : species_of(ov))
    if (std::find(zs.begin(), zs.end(), z) == zs.end())
      zs.push_back(z);
  std::sort(zs.begin(), zs.end());
  rep.cutoffs = cutoffs;
  rep.shortest = shortest_pairs(model);

  // Voids: probe-accessible holes larger than any hole of either bulk crystal.
  stage(3, "searching voids");
  if (spec.find_voids) {
    rep.void_probe_A = spec.void_probe_A > 0
                           ? spec.void_probe_A
                           : std::max(largest_bulk_hole_A(sub), largest_bulk_hole_A(ov)) + 0.1;
    double rmax = 0;
    for (int z : zs)
      rmax = std::max(rmax, covalent_radius_A(z));
    const double margin = rep.void_probe_A + rmax;
    const bool edge_on = spec.view == InterfaceView::EdgeOn;
    const detail::Footprint footprint = [&, margin, edge_on](const Vec3& p) {
      if (edge_on && (p[ax.other] < margin || p[ax.other] > box[ax.other] - margin))
        return false;  // lamella entrance/exit faces
      Vec3 above = p;
      above[ax.normal] = geo.height_A(p[ax.ledge]) + margin;
      return shape.inside(above, margin);
    };
    rep.voids = detail::find_interface_voids(model, geo, footprint, rep.void_probe_A,
                                             spec.void_grid_A, spec.void_band_A);
    for (const InterfaceVoid& v : rep.voids)
      rep.void_volume_A3 += v.volume_A3;
  }
  stage(5, "done");
  return result;
}

std::vector<VoidVsCutoff> void_volume_vs_cutoff(const InterfaceSpec& spec, double shift_A) {
  std::vector<VoidVsCutoff> rows;
  const auto run = [&](const std::string& label, InterfaceSpec s) {
    s.find_voids = true;
    const InterfaceResult r = build_interface(s);
    rows.push_back({label, r.report.removed_interface, r.report.voids.size(), r.report.void_volume_A3});
  };
  std::ostringstream minus, plus;
  minus << "interface cutoffs -" << shift_A << " A";
  plus << "interface cutoffs +" << shift_A << " A";
  run("chosen", spec);
  InterfaceSpec s = spec;
  s.interface_cutoff_shift_A = spec.interface_cutoff_shift_A - shift_A;
  run(minus.str(), s);
  s.interface_cutoff_shift_A = spec.interface_cutoff_shift_A + shift_A;
  run(plus.str(), s);
  s = spec;
  s.cutoff_rule = CutoffRule::Covalent;
  s.cutoffs.clear();
  std::ostringstream cov;
  cov << "covalent " << s.cutoff_scale << " x radii (old default)";
  run(cov.str(), s);
  return rows;
}

std::vector<std::string> interface_preset_names() { return {"nife-fe3o4"}; }

InterfaceSpec preset_interface(const std::string& name) {
  if (name != "nife-fe3o4")
    fail("interface preset '", name, "' is unknown; available: nife-fe3o4");
  // The paper's cross-section: NiFe(−111)//Fe3O4(−111), NiFe[110]//Fe3O4[110], beam ∥ [110],
  // NiFe rotated 4.2° about the beam, a one-layer ledge under the particle. Sized for a quick
  // HRTEM run: 6 Fe3O4 [−1,1,−2]/2 repeats (61.7 Å) × 64 Å × 50 Å thick.
  InterfaceSpec s;
  s.substrate = read_crystal("Fe3O4");
  s.overlayer = read_crystal("NiFe");
  s.substrate_plane_hkl = s.overlayer_plane_hkl = Vec3(-1, 1, 1);
  s.substrate_direction_uvw = s.overlayer_direction_uvw = Vec3(1, 1, 0);
  s.zone_uvw = Vec3(1, 1, 0);
  s.view = InterfaceView::EdgeOn;
  s.tilt_deg = 4.2;
  s.tilt_axis = Vec3::UnitZ();
  s.box_A = Vec3(60, 64, 50);
  s.substrate_thickness_A = 24;
  s.shape = OverlayerShape::Cap;
  s.particle_radius_A = 24;
  s.particle_center_height_A = -4;
  s.ledge_height_layers = 1;
  s.terrace_width_A = 30;
  s.seed = 1;
  return s;
}

}  // namespace epitem
