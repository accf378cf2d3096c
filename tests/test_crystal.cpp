// Crystal module: bundled structures expanded by symmetry, metric-tensor geometry (docs/formulas.md §7
// numbers, a triclinic cell against the textbook reciprocal-cell formulas), orientation.
#include <cmath>
#include <map>

#include "epitem/error.hpp"
#include "epitem/model.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"
#include "testing.hpp"

using namespace epitem;
using Catch::Matchers::Contains;

namespace {

std::map<int, double> count_by_z(const Crystal& c) {
  std::map<int, double> n;
  for (const auto& s : c.sites)
    n[s.Z] += s.occupancy;
  return n;
}

}  // namespace

TEST_CASE("bundled structures expand to the full conventional cell", "[crystal]") {
  Crystal si = read_crystal("Si");
  CHECK(si.sites.size() == 8);
  CHECK(si.spacegroup_number == 227);

  Crystal fe3o4 = read_crystal("Fe3O4");
  REQUIRE(fe3o4.sites.size() == 56);
  auto n = count_by_z(fe3o4);
  CHECK(n[26] == Approx(24));
  CHECK(n[8] == Approx(32));
  CHECK(fe3o4.cell_formula() == "O32 Fe24");
  CHECK(fe3o4.spacegroup_number == 227);
  CHECK(fe3o4.symops.size() == 192);
  // X-ray density by hand: 8 × 231.53 g/mol / (N_A × 8.396³ Å³) = 5.197 g/cm³.
  CHECK(fe3o4.density_g_cm3() == Approx(5.197).margin(0.001));
  // Silicon: 2.329 g/cm³, the measured density (CRC Handbook), 3 decimals.
  CHECK(si.density_g_cm3() == Approx(2.329).margin(0.0005));

  Crystal nife = read_crystal("NiFe");  // mixed site: 4 positions × (Ni 0.75 + Fe 0.25)
  CHECK(nife.sites.size() == 8);
  auto m = count_by_z(nife);
  CHECK(m[28] == Approx(3.0));
  CHECK(m[26] == Approx(1.0));

  Crystal nfo = read_crystal("NiFe2O4");
  auto k = count_by_z(nfo);
  CHECK(k[26] == Approx(16));
  CHECK(k[28] == Approx(8));
  CHECK(k[8] == Approx(32));

  CHECK(read_crystal("Fe").sites.size() == 2);
  CHECK(read_crystal("Ni").sites.size() == 4);
  CHECK(read_crystal("au").sites.size() == 4);  // built-in names are case-insensitive
}

TEST_CASE("Fe3O4 d-spacings and angles equal docs/formulas.md §7", "[crystal]") {
  const Lattice& lat = read_crystal("Fe3O4").lattice;
  const std::vector<std::pair<Vec3, double>> table = {
      {{1, 1, 1}, 4.8474}, {{2, 2, 0}, 2.9684}, {{3, 1, 1}, 2.5315}, {{2, 2, 2}, 2.4237},
      {{4, 0, 0}, 2.0990}, {{3, 3, 1}, 1.9262}, {{4, 2, 2}, 1.7138}, {{5, 1, 1}, 1.6158},
      {{4, 4, 0}, 1.4842}, {{5, 3, 1}, 1.4192}, {{6, 2, 0}, 1.3275}, {{5, 3, 3}, 1.2804},
      {{4, 4, 4}, 1.2119}};
  for (const auto& [hkl, d] : table)
    CHECK(lat.d_spacing_A(hkl) == Approx(d).margin(1e-4));  // §7 prints 4 decimals
  // §7 prints angles to 0.01°.
  CHECK(lat.angle_between_planes_deg({-1, 1, 1}, {-1, 1, 2}) == Approx(19.47).margin(0.005));
  CHECK(lat.angle_between_planes_deg({-1, 1, 1}, {-1, -1, 1}) == Approx(70.53).margin(0.005));
  CHECK(lat.angle_between_planes_deg({-1, 1, 1}, {0, 0, 2}) == Approx(54.74).margin(0.005));
  CHECK_THROWS_AS(lat.d_spacing_A({0, 0, 0}), Error);
}

TEST_CASE("triclinic interplanar angles and d match the textbook reciprocal-cell formulas",
          "[crystal]") {
  // Independent route (Giacovazzo, Fundamentals of Crystallography, Table 2.1): reciprocal
  // cell constants from a, b, c, α, β, γ through V and the cosine rules, then
  // 1/d² = Σ h_i h_j a*_i a*_j cos(γ*_ij) — no matrices, no Cartesian frame.
  const double a = 5.1, b = 6.3, c = 7.7, al = 78.0, be = 96.5, ga = 107.2;
  const Lattice lat(a, b, c, al, be, ga);
  const double r = PI / 180;
  const double ca = std::cos(al * r), cb = std::cos(be * r), cg = std::cos(ga * r);
  const double sa = std::sin(al * r), sb = std::sin(be * r), sg = std::sin(ga * r);
  const double V = a * b * c * std::sqrt(1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg);
  CHECK(lat.volume_A3() == Approx(V).epsilon(1e-12));
  const double as = b * c * sa / V, bs = a * c * sb / V, cs = a * b * sg / V;
  const double cas = (cb * cg - ca) / (sb * sg), cbs = (ca * cg - cb) / (sa * sg),
               cgs = (ca * cb - cg) / (sa * sb);
  auto dot = [&](const Vec3& h, const Vec3& k) {
    return h[0] * k[0] * as * as + h[1] * k[1] * bs * bs + h[2] * k[2] * cs * cs +
           (h[1] * k[2] + h[2] * k[1]) * bs * cs * cas +
           (h[0] * k[2] + h[2] * k[0]) * as * cs * cbs +
           (h[0] * k[1] + h[1] * k[0]) * as * bs * cgs;
  };
  const std::vector<Vec3> planes = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 1, 0}, {1, -2, 3},
                                    {-2, 1, 1}, {3, 1, -1}};
  for (const auto& h : planes) {
    CHECK(lat.d_spacing_A(h) == Approx(1 / std::sqrt(dot(h, h))).epsilon(1e-12));
    for (const auto& k : planes) {
      if (h == k)
        continue;
      double cosphi = dot(h, k) / std::sqrt(dot(h, h) * dot(k, k));
      double expect = std::acos(std::clamp(cosphi, -1.0, 1.0)) * 180 / PI;
      CHECK(lat.angle_between_planes_deg(h, k) == Approx(expect).margin(1e-9));
    }
  }
}

TEST_CASE("plane <-> direction conversion and the zone-axis law", "[crystal]") {
  const Lattice tri(5.1, 6.3, 7.7, 78.0, 96.5, 107.2);
  for (const Vec3& h : {Vec3(1, 0, 0), Vec3(1, -2, 3), Vec3(2, 1, -1)}) {
    // [uvw] = G*·h is parallel to the Cartesian plane normal g_h, and G·[uvw] returns h.
    Vec3 uvw = tri.plane_normal_as_direction(h);
    Vec3 t = tri.direction_A(uvw), g = tri.g_invA(h);
    CHECK(t.cross(g).norm() < 1e-12 * t.norm() * g.norm());
    CHECK((tri.direction_as_plane_normal(uvw) - h).norm() < 1e-12);
  }
  // Cubic: (hkl) ⊥ [hkl]; hexagonal: [001] is the (001) normal, (100) is not ∥ [100].
  const Lattice cubic(4, 4, 4, 90, 90, 90);
  CHECK((cubic.plane_normal_as_direction({1, 2, 3}) - Vec3(1, 2, 3) / 16.0).norm() < 1e-12);
  const Lattice hex(3, 3, 5, 90, 90, 120);
  Vec3 u100 = hex.plane_normal_as_direction({1, 0, 0});
  CHECK((u100 / u100[1]).isApprox(Vec3(2, 1, 0), 1e-12));
  // Weiss zone law: (1-11) and (1-12) belong to [uvw] = h1 × h2, and [uvw] ⊥ both normals.
  Vec3 h1(1, -1, 1), h2(1, -1, 2);
  Vec3 z = zone_of_planes(h1, h2);
  CHECK(z == Vec3(-1, -1, 0));
  CHECK(plane_in_zone(h1, z));
  CHECK(plane_in_zone(h2, z));
  CHECK_FALSE(plane_in_zone(Vec3(1, 1, 1), z));
  CHECK(tri.g_invA(h1).dot(tri.direction_A(zone_of_planes(h1, h2))) == Approx(0).margin(1e-12));
}

TEST_CASE("orient_crystal: Fe3O4 [110] is a√2 × a × a√2 with [110] along z", "[crystal]") {
  const Crystal fe3o4 = read_crystal("Fe3O4");
  const double a = 8.396;
  AtomicModel m = orient_crystal(fe3o4, {1, 1, 0}, {0, 0, 0}, {1, 1, 1});
  REQUIRE(m.is_orthorhombic());
  Vec3 len = m.box_lengths_A();
  CHECK(len[0] == Approx(a * std::sqrt(2.0)));
  CHECK(len[1] == Approx(a));
  CHECK(len[2] == Approx(a * std::sqrt(2.0)));
  CHECK(m.atoms.size() == 2 * 56);
  CHECK(m.phase_names == std::vector<std::string>{"Fe3O4"});

  // The default frame is x ∥ [-110], y ∥ [001], z ∥ [110] (the project's reference case).
  Mat3 R = zone_rotation(fe3o4, {1, 1, 0}, {0, 0, 0});
  const Lattice& lat = fe3o4.lattice;
  CHECK((R * lat.direction_A({1, 1, 0})).normalized().isApprox(Vec3(0, 0, 1), 1e-12));
  CHECK((R * lat.direction_A({-1, 1, 0})).normalized().isApprox(Vec3(1, 0, 0), 1e-12));
  CHECK((R * lat.direction_A({0, 0, 1})).normalized().isApprox(Vec3(0, 1, 0), 1e-12));

  // From the atoms: the F-centring translation ½[110] must now be (0, 0, a√2/2): every atom
  // has a partner of the same element there (true only if [110] ∥ z).
  auto has_atom = [&](int Z, Vec3 p) {
    for (int k = 0; k < 3; ++k)
      p[k] -= std::floor(p[k] / len[k]) * len[k];
    for (const Atom& at : m.atoms) {
      Vec3 d = at.pos_A - p;
      for (int k = 0; k < 3; ++k)
        d[k] -= std::round(d[k] / len[k]) * len[k];
      if (at.Z == Z && d.norm() < 1e-6)
        return true;
    }
    return false;
  };
  int partners = 0;
  for (const Atom& at : m.atoms) {
    partners += has_atom(at.Z, at.pos_A + Vec3(0, 0, len[2] / 2));
    CHECK(at.pos_A[0] >= 0);
    CHECK(at.pos_A[0] < len[0]);
    CHECK(at.pos_A[1] >= 0);
    CHECK(at.pos_A[1] < len[1]);
    CHECK(at.pos_A[2] >= 0);
    CHECK(at.pos_A[2] < len[2]);
  }
  CHECK(partners == int(m.atoms.size()));
  // ... and every atom maps back onto a crystal site of the same element.
  const Mat3 back = (R * lat.direct_A()).inverse();
  int matched = 0;
  for (const Atom& at : m.atoms) {
    Vec3 f = back * at.pos_A;
    for (const Site& s : fe3o4.sites) {
      Vec3 d = f - s.frac;
      for (int k = 0; k < 3; ++k)
        d[k] -= std::round(d[k]);
      if (s.Z == at.Z && (lat.direct_A() * d).norm() < 1e-6) {
        ++matched;
        break;
      }
    }
  }
  CHECK(matched == int(m.atoms.size()));

  // Repeats tile; occupancy and u_iso are kept (NiFe mixed site).
  AtomicModel big = orient_crystal(read_crystal("NiFe"), {0, 0, 1}, {1, 0, 0}, {2, 3, 4});
  CHECK(big.atoms.size() == 8u * 24u);
  CHECK(big.box_lengths_A()[1] == Approx(3 * 3.5523));
  double occ = 0;
  for (const Atom& at : big.atoms)
    occ += at.occupancy;
  CHECK(occ == Approx(4 * 24));
  CHECK(big.atoms[0].u_iso_A2 == Approx(0.0047));

  // Zone [001] defaults to x ∥ [100]; [111] gives a hexagonal-setting orthorhombic cell.
  CHECK(zone_rotation(fe3o4, {0, 0, 1}, {0, 0, 0}).isApprox(Mat3::Identity(), 1e-12));
  AtomicModel m111 = orient_crystal(read_crystal("Ni"), {1, 1, 1}, {0, 0, 0}, {1, 1, 1});
  Vec3 l111 = m111.box_lengths_A();
  CHECK(l111[2] == Approx(3.5238 * std::sqrt(3.0)));
  CHECK(l111[0] == Approx(3.5238 * std::sqrt(6.0)));  // x ∥ [-12-1]
  CHECK(l111[1] == Approx(3.5238 * std::sqrt(2.0)));  // y ∥ [-101]
  CHECK(m111.atoms.size() == size_t(std::lround(l111.prod() / std::pow(3.5238, 3) * 4)));
  // Hexagonal [001]: the orthohexagonal cell a√3 × a × c with twice the atoms of the cell.
  Crystal hex;
  hex.name = "hex";
  hex.lattice = Lattice(3.0, 3.0, 5.0, 90, 90, 120);
  hex.sites = {Site{"A", 30, Vec3(1. / 3, 2. / 3, 0.25), 1.0, 0.01},
               Site{"B", 30, Vec3(2. / 3, 1. / 3, 0.75), 1.0, 0.01}};
  AtomicModel mh = orient_crystal(hex, {0, 0, 1}, {0, 0, 0}, {1, 1, 1});
  Vec3 lh = mh.box_lengths_A();
  CHECK(lh[0] == Approx(3.0 * std::sqrt(3.0)));
  CHECK(lh[1] == Approx(3.0));
  CHECK(lh[2] == Approx(5.0));
  CHECK(mh.atoms.size() == 4);
}

TEST_CASE("orient_crystal rejects bad zones and x directions", "[crystal]") {
  const Crystal fe3o4 = read_crystal("Fe3O4");
  CHECK_THROWS_WITH(orient_crystal(fe3o4, {0, 0, 0}, {0, 0, 0}, {1, 1, 1}), Contains("0 0 0"));
  CHECK_THROWS_WITH(orient_crystal(fe3o4, {1, 1, 0}, {1, 0, 0}, {1, 1, 1}),
                    Contains("not perpendicular"));
  CHECK_THROWS_WITH(orient_crystal(fe3o4, {1, 1, 0}, {0, 0, 0}, {0, 1, 1}), Contains("repeats"));
  // A monoclinic cell's [010] zone has no orthorhombic repeat in the a-c plane (β ≠ 90°,
  // a/c irrational).
  Crystal mono;
  mono.name = "mono";
  mono.lattice = Lattice(5.0, 6.0, 7.0 * std::sqrt(2.0), 90, 101.3, 90);
  mono.sites.push_back(Site{"A", 8, Vec3::Zero(), 1.0, 0.0});
  CHECK_THROWS_WITH(orient_crystal(mono, {0, 1, 0}, {0, 0, 0}, {1, 1, 1}, 6),
                    Contains("orthorhombic"));
  // zone_rotation still works there, and for a triclinic zone with no lattice vector ⊥ it.
  Mat3 rm = zone_rotation(mono, {0, 1, 0}, {0, 0, 0});
  CHECK((rm * mono.lattice.direction_A({0, 1, 0})).normalized().isApprox(Vec3(0, 0, 1), 1e-12));
  Crystal tri = mono;
  tri.lattice = Lattice(5.1, 6.3, 7.7, 78.0, 96.5, 107.2);
  Mat3 rt = zone_rotation(tri, {1, 2, 3}, {0, 0, 0});
  CHECK((rt * tri.lattice.direction_A({1, 2, 3})).normalized().isApprox(Vec3(0, 0, 1), 1e-12));
  CHECK(rt.determinant() == Approx(1.0));
}
