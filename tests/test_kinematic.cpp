// Kinematic diffraction: Fd-3m / fcc / diamond extinctions, F(000) = Σ occ f_e(0), Friedel's
// law, zone law and excitation error limits, symmetry-equivalent zones, double diffraction,
// and regression against reference/saed/ (independent Python generation of the atoms and F).
#include <algorithm>
#include <cmath>
#include <complex>
#include <fstream>
#include <map>
#include <sstream>

#include "epitem/error.hpp"
#include "epitem/interface.hpp"
#include "epitem/kinematic.hpp"
#include "epitem/model.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"
#include "testing.hpp"

using namespace epitem;

namespace {

/// The 48 rotations of m-3m (signed permutation matrices): enough for equivalent_reflections.
std::vector<SymOp> cubic_point_group() {
  std::vector<SymOp> ops;
  const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  for (const auto& p : perms)
    for (int signs = 0; signs < 8; ++signs) {
      SymOp op;
      op.rot = Mat3::Zero();
      for (int i = 0; i < 3; ++i)
        op.rot(i, p[i]) = (signs >> i & 1) ? -1 : 1;
      ops.push_back(op);
    }
  return ops;
}

Crystal cubic_crystal(const std::string& name, double a_A) {
  Crystal c;
  c.name = name;
  c.lattice = Lattice(a_A, a_A, a_A, 90, 90, 90);
  c.symops = cubic_point_group();
  return c;
}

const Vec3 F_CENTRING[4] = {{0, 0, 0}, {0, 0.5, 0.5}, {0.5, 0, 0.5}, {0.5, 0.5, 0}};

void add_centred(Crystal& c, int Z, const Vec3& frac, double occ, double u) {
  for (const auto& t : F_CENTRING) {
    Site s;
    s.Z = Z;
    s.frac = (frac + t).unaryExpr([](double v) { return v - std::floor(v); });
    s.occupancy = occ;
    s.u_iso_A2 = u;
    c.sites.push_back(s);
  }
}

/// Fe3O4 (Fd-3m origin 2, a = 8.396 Å, O x = 0.2549; U as structures/Fe3O4.cif) from the
/// Wyckoff coordinate lists of ITA Vol. A (8a, 16d, 32e), typed here, plus F-centring.
Crystal fe3o4_in_code() {
  Crystal c = cubic_crystal("Fe3O4", 8.396);
  const double x = 0.2549, u_fe = 0.0055, u_o = 0.0070;
  for (Vec3 p : {Vec3(1. / 8, 1. / 8, 1. / 8), Vec3(7. / 8, 3. / 8, 3. / 8)})
    add_centred(c, 26, p, 1, u_fe);
  for (Vec3 p : {Vec3(.5, .5, .5), Vec3(.25, .75, 0), Vec3(.75, 0, .25), Vec3(0, .25, .75)})
    add_centred(c, 26, p, 1, u_fe);
  const Vec3 o32e[8] = {{x, x, x},
                        {-x + .75, -x + .25, x + .5},
                        {-x + .25, x + .5, -x + .75},
                        {x + .5, -x + .75, -x + .25},
                        {x + .75, x + .25, -x + .5},
                        {-x, -x, -x},
                        {x + .25, -x + .5, x + .75},
                        {-x + .5, x + .75, x + .25}};
  for (const auto& p : o32e)
    add_centred(c, 8, p, 1, u_o);
  return c;
}

/// fcc with one (possibly mixed) site at 4a.
Crystal fcc_in_code(const std::string& name, double a_A,
                    const std::vector<std::pair<int, double>>& species, double u) {
  Crystal c = cubic_crystal(name, a_A);
  for (const auto& [Z, occ] : species)
    add_centred(c, Z, Vec3::Zero(), occ, u);
  return c;
}

/// Diamond Si (origin 1, a = 5.43102 Å, U = 0.0059 Å² as structures/Si.cif).
Crystal si_in_code() {
  Crystal c = cubic_crystal("Si", 5.43102);
  add_centred(c, 14, Vec3::Zero(), 1, 0.0059);
  add_centred(c, 14, Vec3(.25, .25, .25), 1, 0.0059);
  return c;
}

Crystal nife_in_code() { return fcc_in_code("NiFe", 3.5523, {{28, 0.75}, {26, 0.25}}, 0.0047); }

/// ITA general reflection conditions of Fd-3m (any origin): F-centring, and for a zero
/// index the other two sum to 4n (d-glide; covers h00: h = 4n).
bool fd3m_allowed(const Miller& m) {
  const int h = m[0], k = m[1], l = m[2];
  const bool same_parity = ((h + k) % 2 == 0) && ((h + l) % 2 == 0);
  if (!same_parity)
    return false;
  for (int i = 0; i < 3; ++i)
    if (m[size_t(i)] == 0 && (m[size_t((i + 1) % 3)] + m[size_t((i + 2) % 3)]) % 4 != 0)
      return false;
  return true;
}

const Reflection& find_family(const std::vector<Reflection>& list, const Miller& hkl) {
  for (const auto& r : list)
    if (r.hkl == hkl)
      return r;
  FAIL("family " << miller_label(hkl) << " not listed");
  return list.front();
}

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::vector<std::vector<std::string>> rows;
  std::string line;
  bool header_seen = false;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#')
      continue;
    if (!header_seen) {
      header_seen = true;
      continue;
    }
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ','))
      cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

std::vector<const SaedSpot*> kinematic_spots(const SaedPattern& p, int phase = -1) {
  std::vector<const SaedSpot*> out;
  for (const auto& s : p.spots)
    if (!s.is_direct_beam && s.double_diffraction == DoubleDiffraction::None &&
        (phase < 0 || s.phase == phase))
      out.push_back(&s);
  return out;
}

}  // namespace

TEST_CASE("Fe3O4 built from Wyckoff lists: 56 atoms, spinel bond lengths", "[kinematic]") {
  const Crystal c = fe3o4_in_code();
  REQUIRE(c.sites.size() == 56);
  // Shortest Fe–O in magnetite: tetrahedral 1.89 Å; O–O ≥ 2.5 Å. A wrong Wyckoff entry would
  // put atoms on top of each other or far off these values.
  double min_feo = 1e9, min_oo = 1e9;
  for (const auto& a : c.sites)
    for (const auto& b : c.sites) {
      if (&a == &b)
        continue;
      Vec3 d = a.frac - b.frac;
      d = d.unaryExpr([](double v) { return v - std::round(v); });
      const double r = c.lattice.frac_to_cart_A(d).norm();
      if (a.Z != b.Z)
        min_feo = std::min(min_feo, r);
      else if (a.Z == 8)
        min_oo = std::min(min_oo, r);
    }
  CHECK(min_feo == Approx(1.89).margin(0.02));
  CHECK(min_oo > 2.5);
}

TEST_CASE("Fd-3m extinctions in Fe3O4 follow the ITA reflection conditions", "[kinematic]") {
  const Crystal c = fe3o4_in_code();
  for (Miller absent : {Miller{0, 0, 2}, Miller{2, 0, 0}, Miller{4, 2, 0}, Miller{0, 2, 4},
                        Miller{1, 0, 0}, Miller{2, 1, 0}})
    CHECK(is_kinematically_forbidden(c, absent));
  for (Miller present : {Miller{1, 1, 1}, Miller{2, 2, 0}, Miller{3, 1, 1}, Miller{4, 0, 0},
                         Miller{2, 2, 2}, Miller{4, 4, 0}, Miller{-1, 1, 1}})
    CHECK_FALSE(is_kinematically_forbidden(c, present));
  // Every hkl out to d = 0.9 Å: forbidden exactly when the general conditions forbid it (the
  // 32e oxygens have no special conditions, so no further absences in magnetite).
  int n_checked = 0;
  for (int h = -9; h <= 9; ++h)
    for (int k = -9; k <= 9; ++k)
      for (int l = -9; l <= 9; ++l) {
        const Miller m{h, k, l};
        if (m == Miller{0, 0, 0} || c.lattice.d_spacing_A(to_vec3(m)) < 0.9)
          continue;
        INFO(miller_label(m));
        CHECK(is_kinematically_forbidden(c, m) == !fd3m_allowed(m));
        ++n_checked;
      }
  CHECK(n_checked > 1000);
}

TEST_CASE("Fe3O4 reflection list: d-spacings of docs/formulas.md §7, families, normalisation",
          "[kinematic]") {
  const Crystal c = fe3o4_in_code();
  const auto list = list_reflections(c, 1.2);
  // docs/formulas.md §7 (a = 8.396 Å), printed to 1e-4 Å.
  const std::map<Miller, double> d_ref = {
      {{1, 1, 1}, 4.8474}, {{2, 2, 0}, 2.9684}, {{3, 1, 1}, 2.5315}, {{2, 2, 2}, 2.4237},
      {{4, 0, 0}, 2.0990}, {{3, 3, 1}, 1.9262}, {{4, 2, 2}, 1.7138}, {{5, 1, 1}, 1.6158},
      {{4, 4, 0}, 1.4842}, {{5, 3, 1}, 1.4192}, {{6, 2, 0}, 1.3275}, {{5, 3, 3}, 1.2804},
      {{4, 4, 4}, 1.2119}};
  for (const auto& [hkl, d] : d_ref)
    CHECK(find_family(list, hkl).d_A == Approx(d).margin(6e-5));  // 4 printed decimals
  // Cubic multiplicities: {111} 8, {220} 12, {311} 24, {400} 6, {531} 48 (ITA).
  CHECK(find_family(list, {1, 1, 1}).multiplicity == 8);
  CHECK(find_family(list, {2, 2, 0}).multiplicity == 12);
  CHECK(find_family(list, {3, 1, 1}).multiplicity == 24);
  CHECK(find_family(list, {4, 0, 0}).multiplicity == 6);
  CHECK(find_family(list, {5, 3, 1}).multiplicity == 48);
  double max_i = 0;
  for (const auto& r : list) {
    CHECK_FALSE(r.is_forbidden);
    CHECK(fd3m_allowed(r.hkl));
    CHECK(r.d_A >= 1.2);
    max_i = std::max(max_i, r.intensity);
  }
  CHECK(max_i == Approx(100));
  // Sorted by decreasing d; 16 allowed families down to 1.2 Å: docs/formulas.md's 13 plus 333 (same
  // d as 511, a different family in m-3m) and the weak 442, 622 that only the 32e oxygens
  // (x ≠ 1/4) and the 16d irons feed.
  CHECK(list.size() == 16);
  CHECK(find_family(list, {3, 3, 3}).multiplicity == 8);
  CHECK(find_family(list, {4, 4, 2}).intensity < 0.01);
  CHECK(std::is_sorted(list.begin(), list.end(),
                       [](const Reflection& a, const Reflection& b) { return a.d_A > b.d_A; }));
  // Forbidden families appear only on request, with zero intensity.
  ReflectionOptions all;
  all.include_forbidden = true;
  const auto with_forbidden = list_reflections(c, 1.2, ScatteringTable::Kirkland, all);
  CHECK(find_family(with_forbidden, {2, 0, 0}).is_forbidden);
  CHECK(find_family(with_forbidden, {2, 0, 0}).intensity == 0);
}

TEST_CASE("Fe3O4 structure factors match the independent Python reference", "[kinematic][reference]") {
  // reference/saed/fe3o4_structure_factors.csv: atoms generated by closure of the Fd-3m
  // generators (not these Wyckoff lists), Kirkland parameters read from shared/data.
  const Crystal c = fe3o4_in_code();
  const auto rows = read_csv(testing::source_path("reference/saed/fe3o4_structure_factors.csv"));
  REQUIRE(rows.size() >= 12);
  std::map<Miller, double> ref_f;
  for (const auto& r : rows) {
    const Miller m{std::stoi(r[0]), std::stoi(r[1]), std::stoi(r[2])};
    const double F_ref = std::stod(r[4]);
    ref_f[m] = F_ref;
    INFO(miller_label(m));
    CHECK(c.lattice.d_spacing_A(to_vec3(m)) == Approx(std::stod(r[3])).epsilon(1e-6));
    if (F_ref < 1e-6) {
      CHECK(is_kinematically_forbidden(c, m));
      continue;
    }
    // 1e-4 relative: the reference prints 9 significant digits; the same formula in double
    // agrees to ~1e-12, so this still catches any table, DW or position error.
    CHECK(std::abs(structure_factor_A(c, m)) == Approx(F_ref).epsilon(1e-4));
  }
  // The 111 : 220 : 311 (: 222 : 400 : 440) intensity ratios, via the reflection list.
  const auto list = list_reflections(c, 1.4);
  const double i311 = find_family(list, {3, 1, 1}).intensity;
  for (Miller m : {Miller{1, 1, 1}, Miller{2, 2, 0}, Miller{2, 2, 2}, Miller{4, 0, 0}, Miller{4, 4, 0}}) {
    const double ratio_ref = ref_f[m] * ref_f[m] / (ref_f[{3, 1, 1}] * ref_f[{3, 1, 1}]);
    CHECK(find_family(list, m).intensity / i311 == Approx(ratio_ref).epsilon(1e-4));
  }
}

TEST_CASE("F(000) = Σ occ·f_e(0) (no Debye–Waller at g = 0)", "[kinematic]") {
  for (const Crystal& c : {fe3o4_in_code(), nife_in_code(), si_in_code()}) {
    double sum = 0;
    for (const auto& s : c.sites)
      sum += s.occupancy * scattering_factor_A(s.Z, 0);
    const auto f000 = structure_factor_A(c, {0, 0, 0});
    CHECK(f000.real() == Approx(sum).epsilon(1e-12));
    CHECK(std::abs(f000.imag()) < 1e-9 * sum);
  }
  // Fe3O4: 24 Fe + 32 O (shared/data/README.md: f_e(0) Fe 7.163, O 1.990 Å) ≈ 235.6 Å.
  CHECK(structure_factor_A(fe3o4_in_code(), {0, 0, 0}).real() == Approx(24 * 7.163 + 32 * 1.990).epsilon(1e-3));
}

TEST_CASE("Friedel's law: F(−h) = F(h)* in a non-centrosymmetric crystal", "[kinematic]") {
  // Zincblende GaAs (F-43m: no inversion), so F is complex and the test is not trivial.
  Crystal c = cubic_crystal("GaAs", 5.6533);
  add_centred(c, 31, Vec3::Zero(), 1, 0.008);
  add_centred(c, 33, Vec3(.25, .25, .25), 1, 0.006);
  bool saw_complex = false;
  for (Miller m : {Miller{1, 1, 1}, Miller{3, 1, 1}, Miller{3, 3, 1}, Miller{-5, 1, 3}, Miller{2, 0, 0}}) {
    const auto f = structure_factor_A(c, m);
    const auto f_bar = structure_factor_A(c, {-m[0], -m[1], -m[2]});
    CHECK(std::abs(f_bar - std::conj(f)) < 1e-10 * std::abs(f));
    saw_complex = saw_complex || std::abs(f.imag()) > 0.1 * std::abs(f);
  }
  CHECK(saw_complex);
  // And in every listed SAED pattern at zone axis: spot g and −g have equal intensity.
  const auto p = kinematic_saed({saed_phase_for_zone(fe3o4_in_code(), {1, 1, 0})}, SaedSpec{});
  std::map<Miller, double> by_hkl;
  for (const SaedSpot* s : kinematic_spots(p))
    by_hkl[s->hkl] = s->intensity;
  REQUIRE(by_hkl.size() > 20);
  for (const auto& [m, i] : by_hkl) {
    REQUIRE(by_hkl.count({-m[0], -m[1], -m[2]}));
    CHECK(by_hkl[{-m[0], -m[1], -m[2]}] == Approx(i).epsilon(1e-9));
  }
}

TEST_CASE("fcc mixed-index reflections absent for Au and NiFe; diamond 200, 222 absent for Si",
          "[kinematic]") {
  for (const Crystal& c : {fcc_in_code("Au", 4.0782, {{79, 1.0}}, 0.0078), nife_in_code()}) {
    const auto list = list_reflections(c, 0.7);
    REQUIRE(list.size() >= 8);
    for (const auto& r : list)
      CHECK(((r.hkl[0] + r.hkl[1]) % 2 == 0 && (r.hkl[0] + r.hkl[2]) % 2 == 0));
    CHECK(is_kinematically_forbidden(c, {1, 0, 0}));
    CHECK(is_kinematically_forbidden(c, {2, 1, 0}));
    CHECK_FALSE(is_kinematically_forbidden(c, {2, 0, 0}));
    CHECK(find_family(list, {1, 1, 1}).intensity == Approx(100));  // lowest order is strongest
  }
  const Crystal si = si_in_code();
  for (Miller absent : {Miller{2, 0, 0}, Miller{2, 2, 2}, Miller{4, 2, 0}, Miller{6, 0, 0}})
    CHECK(is_kinematically_forbidden(si, absent));
  for (Miller present : {Miller{1, 1, 1}, Miller{2, 2, 0}, Miller{3, 1, 1}, Miller{4, 0, 0}})
    CHECK_FALSE(is_kinematically_forbidden(si, present));
}

TEST_CASE("zone law: every listed spot of zone [uvw] has g·[uvw] = 0 and lies in the pattern plane",
          "[kinematic]") {
  const Crystal c = fe3o4_in_code();
  for (Vec3 zone : {Vec3(1, 1, 0), Vec3(0, 0, 1), Vec3(1, 1, 2), Vec3(1, 2, 3), Vec3(-1, 1, 1)}) {
    const auto p = kinematic_saed({saed_phase_for_zone(c, zone)}, SaedSpec{});
    REQUIRE(kinematic_spots(p).size() > 4);
    for (const auto& s : p.spots) {
      if (s.is_direct_beam || s.double_diffraction == DoubleDiffraction::BetweenPhases)
        continue;
      CHECK(to_vec3(s.hkl).dot(zone) == 0);
      CHECK(std::abs(s.g_lab_invA.z()) < 1e-12);
      CHECK(std::hypot(s.g_lab_invA.x(), s.g_lab_invA.y()) <= 1.5);
    }
    ReflectionOptions opt;
    opt.use_zone = true;
    opt.zone_uvw = zone;
    for (const auto& r : list_reflections(c, 1.0, ScatteringTable::Kirkland, opt))
      CHECK(to_vec3(r.hkl).dot(zone) == 0);
  }
  // Within a zone the family multiplicity counts only its members in that zone.
  ReflectionOptions z110;
  z110.use_zone = true;
  z110.zone_uvw = Vec3(1, 1, 0);
  const auto list = list_reflections(c, 1.4, ScatteringTable::Kirkland, z110);
  CHECK(find_family(list, {1, -1, 1}).multiplicity == 4);
  CHECK(find_family(list, {2, -2, 0}).multiplicity == 2);
  CHECK(find_family(list, {0, 0, 4}).multiplicity == 2);
}

TEST_CASE("excitation error: −λg²/2 at exact zone axis, −tilt·g_x to first order in tilt",
          "[kinematic]") {
  const Crystal c = fe3o4_in_code();
  SaedSpec spec;
  spec.energy_eV = 200e3;
  const double lambda = electron_wavelength_A(spec.energy_eV);
  const auto p = kinematic_saed({saed_phase_for_zone(c, {1, 1, 0})}, spec);
  for (const SaedSpot* s : kinematic_spots(p)) {
    const double first_order = -lambda * s->g_invA * s->g_invA / 2;
    // Exact s = −λg²/2 /√(1 + λ²g²): relative deviation λ²g²/2 ≤ 7e-4 at g = 1.5 1/Å.
    CHECK(s->excitation_error_invA == Approx(first_order).epsilon(lambda * lambda * s->g_invA * s->g_invA));
    CHECK(s->excitation_error_invA < 0);  // ZOLZ points lie outside the Ewald sphere
  }
  // A beam tilt θ along +x adds −θ·g_x (Ewald sphere swings through the zero layer).
  spec.tilt_x_mrad = 2;
  const auto tilted = kinematic_saed({saed_phase_for_zone(c, {1, 1, 0})}, spec);
  std::map<Miller, double> s0;
  for (const SaedSpot* s : kinematic_spots(p))
    s0[s->hkl] = s->excitation_error_invA;
  for (const SaedSpot* s : kinematic_spots(tilted)) {
    const double expected = s0[s->hkl] - 2e-3 * s->g_lab_invA.x();
    CHECK(s->excitation_error_invA == Approx(expected).margin(2e-5));  // O(θ², λθg²) terms
  }
}

TEST_CASE("thin-slab limit: SAED intensities ∝ |F|² (shape → t²)", "[kinematic]") {
  const Crystal c = si_in_code();
  SaedSpec spec;
  spec.thickness_A = 0.1;  // π t s ≤ 1e-2: sinc² = 1 within 3e-5
  spec.g_max_invA = 1.0;
  const auto p = kinematic_saed({saed_phase_for_zone(c, {1, 1, 0})}, spec);
  double f_max = 0;
  for (const SaedSpot* s : kinematic_spots(p))
    f_max = std::max(f_max, s->F_abs_A);
  for (const SaedSpot* s : kinematic_spots(p))
    CHECK(s->intensity == Approx(100 * s->F_abs_A * s->F_abs_A / (f_max * f_max)).epsilon(1e-4));
  // A thick slab suppresses the outer spots (|s| grows as g²); the envelope shape keeps the
  // sinc's s = 0 value and never vanishes.
  spec.thickness_A = 500;
  spec.shape = RelrodShape::Envelope;
  const auto thick = kinematic_saed({saed_phase_for_zone(c, {1, 1, 0})}, spec);
  for (const SaedSpot* s : kinematic_spots(thick))
    CHECK(s->intensity > 0);
}

TEST_CASE("symmetry-equivalent zones give the same spot set", "[kinematic]") {
  auto signature = [](const Crystal& c, const Vec3& zone) {
    const auto p = kinematic_saed({saed_phase_for_zone(c, zone)}, SaedSpec{});
    std::vector<std::pair<double, double>> sig;
    for (const SaedSpot* s : kinematic_spots(p))
      sig.emplace_back(std::round(s->g_invA * 1e6), std::round(s->intensity * 1e4));
    std::sort(sig.begin(), sig.end());
    return sig;
  };
  const Crystal fe3o4 = fe3o4_in_code();
  const auto ref110 = signature(fe3o4, {1, 1, 0});
  CHECK(ref110.size() > 20);
  for (Vec3 z : {Vec3(1, -1, 0), Vec3(0, 1, 1), Vec3(-1, 0, -1), Vec3(0, -1, 1)})
    CHECK(signature(fe3o4, z) == ref110);
  const Crystal si = si_in_code();
  const auto ref112 = signature(si, {1, 1, 2});
  for (Vec3 z : {Vec3(2, 1, 1), Vec3(-1, -2, 1), Vec3(1, -1, -2)})
    CHECK(signature(si, z) == ref112);
  CHECK(signature(si, {1, 1, 1}) != ref112);  // the comparison can tell zones apart
}

TEST_CASE("Si [110] spot list matches the independent Python reference", "[kinematic][reference]") {
  const auto rows = read_csv(testing::source_path("reference/saed/si_110_spots.csv"));
  REQUIRE(rows.size() > 20);
  SaedSpec spec;
  spec.g_max_invA = 1.0;
  const auto p = kinematic_saed({saed_phase_for_zone(si_in_code(), {1, 1, 0})}, spec);
  std::map<Miller, const SaedSpot*> spots;
  for (const SaedSpot* s : kinematic_spots(p))
    spots[s->hkl] = s;
  CHECK(spots.size() == rows.size());
  for (const auto& r : rows) {
    const Miller m{std::stoi(r[0]), std::stoi(r[1]), std::stoi(r[2])};
    INFO(miller_label(m));
    REQUIRE(spots.count(m));
    CHECK(spots[m]->d_A == Approx(std::stod(r[3])).epsilon(1e-6));
    const double f2 = spots[m]->F_abs_A * spots[m]->F_abs_A;
    CHECK(f2 == Approx(std::stod(r[4])).epsilon(1e-4));  // 9 printed digits in the reference
  }
}

TEST_CASE("double diffraction: 002 in Si and Fe3O4 [110]; between-phase sums are new positions",
          "[kinematic]") {
  for (const Crystal& c : {si_in_code(), fe3o4_in_code()}) {
    const auto p = kinematic_saed({saed_phase_for_zone(c, {1, 1, 0})}, SaedSpec{});
    bool found_002 = false;
    for (const auto& s : p.spots) {
      if (s.double_diffraction != DoubleDiffraction::WithinPhase)
        continue;
      CHECK(is_kinematically_forbidden(c, s.hkl));
      CHECK(s.intensity == 0);
      CHECK_FALSE(s.dd_path.empty());
      found_002 = found_002 || s.hkl == Miller{0, 0, 2};
    }
    CHECK(found_002);
  }
  // F-centring absences (e.g. 1-10 in the [110] zone) cannot be reached: the sum of two
  // F-lattice vectors is an F-lattice vector.
  const auto p = kinematic_saed({saed_phase_for_zone(fe3o4_in_code(), {1, 1, 0})}, SaedSpec{});
  for (const auto& s : p.spots)
    CHECK_FALSE(s.hkl == Miller{1, -1, 0});

  const auto phases = nife_fe3o4_phases(nife_in_code(), fe3o4_in_code(), 4.2);
  REQUIRE(phases.size() == 2);
  CHECK(reduce_indices(phases[0].zone_uvw).cwiseAbs() == Vec3(1, 1, 0));
  SaedSpec spec;
  const auto two = kinematic_saed(phases, spec);
  int n_between = 0;
  for (const auto& s : two.spots) {
    if (s.double_diffraction != DoubleDiffraction::BetweenPhases)
      continue;
    ++n_between;
    CHECK(s.phase == 0);
    CHECK(s.phase_b == 1);
    const Vec3 g = phases[0].orientation * phases[0].crystal.lattice.g_invA(to_vec3(s.hkl)) +
                   phases[1].orientation * phases[1].crystal.lattice.g_invA(to_vec3(s.hkl_b));
    CHECK((g - s.g_lab_invA).norm() < 1e-12);
    for (const SaedSpot* k : kinematic_spots(two))
      CHECK(std::hypot(k->g_lab_invA.x() - g.x(), k->g_lab_invA.y() - g.y()) >= spec.coincidence_tol_invA);
  }
  CHECK(n_between > 0);
  // Both phases present, each spot keeps its phase.
  CHECK(kinematic_spots(two, 0).size() > 5);
  CHECK(kinematic_spots(two, 1).size() > 20);
}

TEST_CASE("orientation: explicit R equals the zone route; rotation about the beam rotates spots",
          "[kinematic]") {
  const Crystal c = fe3o4_in_code();
  const Vec3 zone(1, 1, 0), x(-1, 1, 1);
  const SaedPhase by_zone = saed_phase_for_zone(c, zone, x);
  const Mat3 R = zone_rotation(c, zone, x);
  CHECK((R * c.lattice.direction_A(zone)).normalized().z() == Approx(1));
  const SaedPhase by_matrix = saed_phase_with_orientation(c, R);
  CHECK(by_matrix.zone_uvw == by_zone.zone_uvw);
  const double angle = 4.2;
  const SaedPhase rotated =
      saed_phase_with_orientation(c, rotation_about_axis(Vec3::UnitZ(), angle) * R);
  const auto p0 = kinematic_saed({by_zone}, SaedSpec{});
  const auto p1 = kinematic_saed({rotated}, SaedSpec{});
  std::map<Miller, Vec3> g0;
  for (const SaedSpot* s : kinematic_spots(p0))
    g0[s->hkl] = s->g_lab_invA;
  const double a = angle * units::deg_to_rad;
  for (const SaedSpot* s : kinematic_spots(p1)) {
    REQUIRE(g0.count(s->hkl));
    const Vec3 expect(std::cos(a) * g0[s->hkl].x() - std::sin(a) * g0[s->hkl].y(),
                      std::sin(a) * g0[s->hkl].x() + std::cos(a) * g0[s->hkl].y(), 0);
    CHECK((s->g_lab_invA - expect).norm() < 1e-12);
  }
  // With --x −1,1,1 the (−111) of Fe3O4 lies along +x.
  const Vec3 g111 = R * c.lattice.g_invA(Vec3(-1, 1, 1));
  CHECK(g111.y() == Approx(0).margin(1e-12));
  CHECK(g111.x() > 0);
  // A tilted orientation with no low-index direction along the beam is refused.
  CHECK_THROWS_AS(saed_phase_with_orientation(c, rotation_about_axis(Vec3::UnitX(), 0.37) * R), Error);
  CHECK_THROWS_AS(saed_phase_with_orientation(c, 2 * R), Error);
}

TEST_CASE("rendered pattern: calibrated, centro-symmetric, peak pixel = spot intensity", "[kinematic]") {
  const Crystal si = si_in_code();
  const auto p = kinematic_saed({saed_phase_for_zone(si, {0, 0, 1}, {1, 0, 0})}, SaedSpec{});
  SaedRenderSpec spec;
  spec.size_px = 256;
  // 1/a = 20 px: every Si [001] spot (h, k even) falls on a pixel centre, ≥ 56 px apart.
  spec.pixel_size_invA = 1 / (si.lattice.a_A() * 20);
  const Image img = render_saed_image(p, spec);
  REQUIRE(img.nx == 256);
  CHECK(img.pixel_size_invA == spec.pixel_size_invA);
  CHECK(img.at(128, 128) == Approx(spec.direct_beam_intensity).epsilon(1e-6));
  int n_checked = 0;
  for (const SaedSpot* s : kinematic_spots(p)) {
    const double x = 128 + s->g_lab_invA.x() / spec.pixel_size_invA;
    const double y = 128 - s->g_lab_invA.y() / spec.pixel_size_invA;
    REQUIRE(std::abs(x - std::round(x)) < 1e-6);
    if (x < 0 || y < 0 || x > 255 || y > 255)
      continue;
    CHECK(img.at(int(std::lround(x)), int(std::lround(y))) == Approx(s->intensity).epsilon(1e-5));
    ++n_checked;
  }
  CHECK(n_checked >= 8);
  // The direct beam sits on (n/2, n/2), so the pattern is point-symmetric about it.
  for (int iy = 1; iy < 256; ++iy)
    for (int ix = 1; ix < 256; ++ix)
      REQUIRE(img.at(ix, iy) == Approx(img.at(256 - ix, 256 - iy)).margin(1e-4));
  // PNG preview: white direct beam at the centre, each phase's strongest spot in its colour.
  const Canvas png = render_saed_png(p, spec);
  CHECK(png.width() == 256);
  const Rgb centre = png.get(128, 128);
  CHECK((centre.r == 255 && centre.g == 255 && centre.b == 255));
  const SaedSpot* strongest_spot = kinematic_spots(p).front();
  for (const SaedSpot* s : kinematic_spots(p))
    if (s->intensity > strongest_spot->intensity)
      strongest_spot = s;
  const Rgb at_spot = png.get(int(std::lround(128 + strongest_spot->g_lab_invA.x() / spec.pixel_size_invA)),
                              int(std::lround(128 - strongest_spot->g_lab_invA.y() / spec.pixel_size_invA)));
  CHECK((at_spot.r == colors::yellow.r && at_spot.g == colors::yellow.g && at_spot.b == colors::yellow.b));
  // Log scale maps the strongest (100) to log10(1 + 100/0.01) = 4.
  spec.log_scale = true;
  const Image log_img = render_saed_image(p, spec);
  CHECK(log_img.at(128, 128) == Approx(std::log10(1 + 100 / SAED_LOG_FLOOR)).epsilon(1e-5));
}

TEST_CASE("Peng/ITC scattering factors give nearly the same F; out of range is refused",
          "[kinematic]") {
  const Crystal c = fe3o4_in_code();
  for (Miller m : {Miller{1, 1, 1}, Miller{2, 2, 0}, Miller{3, 1, 1}, Miller{4, 0, 0}, Miller{4, 4, 0}}) {
    const double fk = std::abs(structure_factor_A(c, m, ScatteringTable::Kirkland));
    const double fp = std::abs(structure_factor_A(c, m, ScatteringTable::Peng));
    // Two fits of the same Hartree–Fock f_e (docs/formulas.md §3): a few %; a q/s mix-up in the
    // Peng route would change high-angle F by far more.
    CHECK(std::abs(fk - fp) / fk < 0.05);
  }
  const Crystal si = si_in_code();  // small cell: a fast list down to 0.2 Å
  CHECK_THROWS_WITH(list_reflections(si, 0.2, ScatteringTable::Peng), Catch::Contains("peng"));
  CHECK_NOTHROW(list_reflections(si, 0.26, ScatteringTable::Peng));
  CHECK_NOTHROW(list_reflections(si, 0.2, ScatteringTable::Kirkland));
}

TEST_CASE("kinematic input errors are clear", "[kinematic]") {
  const Crystal c = fe3o4_in_code();
  CHECK_THROWS_WITH(saed_phase_for_zone(c, Vec3::Zero()), Catch::Contains("[0 0 0]"));
  CHECK_THROWS_AS(list_reflections(c, 0), Error);
  CHECK_THROWS_AS(list_reflections(c, -1), Error);
  CHECK_THROWS_AS(list_reflections(Crystal{}, 1.0), Error);
  SaedSpec spec;
  spec.thickness_A = -10;
  CHECK_THROWS_WITH(kinematic_saed({saed_phase_for_zone(c, {1, 1, 0})}, spec),
                    Catch::Contains("thickness"));
  spec = SaedSpec{};
  spec.energy_eV = 0;
  CHECK_THROWS_AS(spec.validate(), Error);
  CHECK_THROWS_AS(kinematic_saed({}, SaedSpec{}), Error);
}

TEST_CASE("bundled structures through the CIF reader give the same kinematic answers", "[kinematic]") {
  // structures/Fe3O4.cif (gemmi symmetry expansion) vs the Wyckoff-list crystal: same atoms,
  // same U, so F agrees to round-off; and against the Python reference at 1e-4.
  const Crystal cif = read_crystal("Fe3O4");
  const Crystal code = fe3o4_in_code();
  REQUIRE(cif.sites.size() == 56);
  for (Miller m : {Miller{1, 1, 1}, Miller{2, 2, 0}, Miller{3, 1, 1}, Miller{2, 2, 2}, Miller{4, 4, 0},
                   Miller{-5, 3, 1}, Miller{6, 4, 2}})
    CHECK(std::abs(structure_factor_A(cif, m)) ==
          Approx(std::abs(structure_factor_A(code, m))).epsilon(1e-9));
  for (const auto& r : read_csv(testing::source_path("reference/saed/fe3o4_structure_factors.csv"))) {
    const Miller m{std::stoi(r[0]), std::stoi(r[1]), std::stoi(r[2])};
    const double F_ref = std::stod(r[4]);
    INFO(miller_label(m));
    if (F_ref < 1e-6)
      CHECK(is_kinematically_forbidden(cif, m));
    else
      CHECK(std::abs(structure_factor_A(cif, m)) == Approx(F_ref).epsilon(1e-4));
  }
  // The CIF's own symmetry operations merge the same families.
  const auto list = list_reflections(cif, 1.2);
  CHECK(list.size() == 16);
  CHECK(find_family(list, {3, 1, 1}).multiplicity == 24);
  CHECK(find_family(list, {5, 3, 1}).multiplicity == 48);
  // fcc NiFe, Au and diamond Si from their CIFs: the extinction rules hold.
  for (const char* name : {"NiFe", "Au", "Ni"}) {
    const Crystal c = read_crystal(name);
    INFO(name);
    CHECK(is_kinematically_forbidden(c, {1, 0, 0}));
    CHECK(is_kinematically_forbidden(c, {1, 1, 0}));
    CHECK_FALSE(is_kinematically_forbidden(c, {1, 1, 1}));
    CHECK_FALSE(is_kinematically_forbidden(c, {2, 0, 0}));
  }
  const Crystal si = read_crystal("Si");
  CHECK(is_kinematically_forbidden(si, {2, 0, 0}));
  CHECK(is_kinematically_forbidden(si, {2, 2, 2}));
  CHECK_FALSE(is_kinematically_forbidden(si, {4, 0, 0}));
  // The preset's two phases from the bundled files, in the interface box frame: the interface
  // normal (−111) along +y, NiFe's (−111) rotated +4.2° from it.
  const auto phases = nife_fe3o4_phases(read_crystal("NiFe"), cif);
  const Vec3 g = phases[0].orientation * phases[0].crystal.lattice.g_invA(Vec3(-1, 1, 1));
  CHECK(std::atan2(g.y(), g.x()) / units::deg_to_rad == Approx(94.2).epsilon(1e-9));
  const Vec3 g_ox = phases[1].orientation * cif.lattice.g_invA(Vec3(-1, 1, 1));
  CHECK(std::atan2(g_ox.y(), g_ox.x()) / units::deg_to_rad == Approx(90).epsilon(1e-12));
}

TEST_CASE("CSV tables: promised columns, direct beam and between-phase rows", "[kinematic]") {
  const std::string refl = reflections_csv(list_reflections(si_in_code(), 1.5), 200e3);
  CHECK(refl.rfind("h,k,l,d_A,multiplicity,F_abs,intensity,", 0) == 0);
  CHECK(refl.find("\n1,1,1,3.13560,8,") != std::string::npos);
  CHECK(refl.find(",two_theta_mrad,g_inv_A\n") != std::string::npos);  // the vocabulary's |g| name
  // 2θ(111) at 200 kV = 2 asin(λ/2d) = 7.998 mrad (λ = 0.025079 Å, d = 3.1356 Å).
  CHECK(refl.find(",7.998") != std::string::npos);

  const auto phases = nife_fe3o4_phases(nife_in_code(), fe3o4_in_code());
  const std::string csv = saed_spots_csv(kinematic_saed(phases, SaedSpec{}));
  CHECK(csv.rfind("phase,h,k,l,gx,gy,g,d_A,excitation_error,intensity,F_abs,laue_zone,"
                  "double_diffraction,dd_path,gx_inv_A,gy_inv_A,g_inv_A,moire\n", 0) == 0);
  CHECK(csv.find("\ndirect,0,0,0,") != std::string::npos);
  CHECK(csv.find("\nNiFe,1,-1,1,") != std::string::npos);
  CHECK(csv.find("\nFe3O4,0,0,2,") != std::string::npos);     // forbidden, double diffraction
  CHECK(csv.find("\nNiFe+Fe3O4,,,,") != std::string::npos);   // between phases: no single hkl
  CHECK(csv.find(",1,Fe3O4 ") != std::string::npos);
  CHECK(csv.find(",2,NiFe ") != std::string::npos);
}

TEST_CASE("nife-fe3o4 preset: SAED spots are in the interface model's box frame", "[kinematic]") {
  const InterfaceResult built = build_interface(preset_interface("nife-fe3o4"));
  const auto phases = nife_fe3o4_phases(read_crystal("NiFe"), read_crystal("Fe3O4"));
  REQUIRE(phases.size() == 2);
  CHECK((phases[0].orientation - built.report.overlayer_rotation).cwiseAbs().maxCoeff() < 1e-12);
  CHECK((phases[1].orientation - built.report.substrate_rotation).cwiseAbs().maxCoeff() < 1e-12);
  // Independent of the rotation matrices: the model's NiFe atoms (phase 1, fcc sites) scatter in
  // phase at the SAED's NiFe (−111) spot, |Σ exp(2πi g·r)|/N ≈ 1, and not at its mirror image
  // (gx, −gy), where a frame with x or y flipped or the tilt of opposite sign would put it.
  const SaedPattern p = kinematic_saed(phases, SaedSpec{});
  const SaedSpot* spot = nullptr;
  for (const SaedSpot* s : kinematic_spots(p, 0))
    if (s->hkl == Miller{-1, 1, 1})
      spot = s;
  REQUIRE(spot != nullptr);
  const auto order = [&](const Vec3& g) {
    std::complex<double> sum = 0;
    int n = 0;
    for (const Atom& a : built.model.atoms)
      if (a.phase == 1) {
        sum += std::polar(1.0, 2 * PI * g.dot(a.pos_A));
        ++n;
      }
    REQUIRE(n > 500);
    return std::abs(sum) / n;
  };
  const Vec3 g = spot->g_lab_invA;
  CHECK(std::atan2(g.y(), g.x()) / units::deg_to_rad == Approx(94.2).epsilon(1e-9));
  // 0.9 / 0.3: a perfect fcc cap gives 1; a 8.4° misrotation dephases it over the ~50 Å cap.
  CHECK(order(g) > 0.9);
  CHECK(order(Vec3(g.x(), -g.y(), 0)) < 0.3);
  CHECK(order(Vec3(-g.y(), g.x(), 0)) < 0.3);  // a 90° frame rotation (the old SAED frame)
}
