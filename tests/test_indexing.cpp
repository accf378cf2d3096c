// Indexing: Fe3O4 reflection table (docs/formulas.md §7), spacing indexing with noise and ambiguity,
// zone axis + in-plane orientation of synthetic spot sets, orientation relationship (the 4.2°
// tilt), calibration from Au rings, and real micrographs (Si [110], SrTiO3 [001]/[110]).
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "epitem/error.hpp"
#include "epitem/image.hpp"
#include "epitem/imaging.hpp"
#include "epitem/indexing.hpp"
#include "epitem/interface.hpp"
#include "epitem/kinematic.hpp"
#include "epitem/multislice.hpp"
#include "epitem/optics.hpp"
#include "epitem/rings.hpp"
#include "epitem/spectrum.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"
#include "testing.hpp"

using namespace epitem;

namespace {

struct RefSpacing {
  Vec3 hkl;
  double d_A;
};

// reference/analysis/fe3o4_spacings.csv: the docs/formulas.md §7 table (a = 8.396 Å).
std::vector<RefSpacing> fe3o4_table() {
  std::ifstream in(testing::source_path("reference/analysis/fe3o4_spacings.csv"));
  REQUIRE(in.good());
  std::vector<RefSpacing> out;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream is(line);
    int h, k, l;
    char c;
    double d;
    is >> h >> c >> k >> c >> l >> c >> d;
    out.push_back({Vec3(h, k, l), d});
  }
  return out;
}

const Phase& phase(const std::string& name) {
  static std::map<std::string, Phase> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    PhaseSpec spec;
    spec.d_min_A = 1.0;
    it = cache.emplace(name, make_phase(read_crystal(name), spec)).first;
  }
  return it->second;
}

bool is_family(const Vec3& v, int a, int b, int c) {
  std::vector<long> x = {std::labs(std::lround(v[0])), std::labs(std::lround(v[1])), std::labs(std::lround(v[2]))};
  std::vector<long> y = {a, b, c};
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  return x == y;
}

// Screen spots of a phase in zone [uvw] (toward the viewer), with g(x_hkl) pointing at
// angle_deg; allowed reflections with d ≥ d_min. Built with lattice.hpp only.
std::vector<Spot> zone_spots(const Phase& p, const Vec3& zone, const Vec3& x_hkl, double angle_deg,
                             double d_min_A, double len_noise, double angle_noise_deg, unsigned seed) {
  const Lattice& L = p.crystal.lattice;
  const Mat3 R = rotation_about_axis(Vec3::UnitZ(), angle_deg) *
                 rotation_beam_to_z(L.direction_A(zone), L.g_invA(x_hkl));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<Spot> spots;
  for (const auto& f : p.families) {
    if (!f.kinematic_allowed || f.d_A < d_min_A)
      continue;
    for (const auto& h : f.members) {
      if (std::abs(h.dot(zone)) > 1e-9)
        continue;
      const Vec3 g = R * L.g_invA(h);
      const double s = 1 + len_noise * u(rng);
      const double a = angle_noise_deg * units::deg_to_rad * u(rng);
      Spot sp;
      sp.kx_invA = s * (std::cos(a) * g[0] - std::sin(a) * g[1]);
      sp.ky_invA = s * (std::sin(a) * g[0] + std::cos(a) * g[1]);
      sp.intensity = f.intensity_rel;
      spots.push_back(sp);
    }
  }
  return spots;
}

}  // namespace

TEST_CASE("Fe3O4 reflection families reproduce the docs/formulas.md table and Fd-3m absences", "[indexing]") {
  const Phase& fe3o4 = phase("Fe3O4");
  const auto table = fe3o4_table();
  REQUIRE(table.size() == 13);
  for (const auto& ref : table) {
    const ReflectionFamily* found = nullptr;
    for (const auto& f : fe3o4.families)
      if (is_family(f.hkl, int(ref.hkl[0]), int(ref.hkl[1]), int(ref.hkl[2])))
        found = &f;
    INFO("Fe3O4 {" << ref.hkl.transpose() << "}");
    REQUIRE(found != nullptr);
    CHECK(found->d_A == Approx(ref.d_A).epsilon(1e-4));  // table printed to 5 significant digits
    CHECK(found->kinematic_allowed);
  }
  // {200} and {420}: all even with h+k+l ≠ 4n are kinematically absent (docs/formulas.md §7).
  for (const auto& f : fe3o4.families) {
    CHECK_FALSE(is_family(f.hkl, 2, 0, 0));
    CHECK_FALSE(is_family(f.hkl, 4, 2, 0));
  }
  // Multiplicities of the cubic point group m-3m: {111} 8, {220} 12, {311} 24.
  for (const auto& f : fe3o4.families) {
    if (is_family(f.hkl, 1, 1, 1)) CHECK(f.members.size() == 8);
    if (is_family(f.hkl, 2, 2, 0)) CHECK(f.members.size() == 12);
    if (is_family(f.hkl, 3, 1, 1)) CHECK(f.members.size() == 24);
  }
}

TEST_CASE("spacing indexing recovers the Fe3O4 table from ±0.5 % noisy spacings", "[indexing]") {
  const auto table = fe3o4_table();
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> u(-0.005, 0.005);
  std::vector<double> d;
  for (const auto& ref : table)
    d.push_back(ref.d_A * (1 + u(rng)));
  // Tolerance 0.6 %: the noise bound plus the table's rounding.
  const auto m = index_spacings(d, {phase("Fe3O4")}, 0.006);
  REQUIRE(m.size() == table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    INFO("d = " << d[i] << " Å, expected {" << table[i].hkl.transpose() << "}");
    REQUIRE(m[i].matched());
    CHECK_FALSE(m[i].ambiguous);
    bool ok = false;
    for (const auto& h : m[i].candidates[0].hkl)
      ok |= is_family(h, int(table[i].hkl[0]), int(table[i].hkl[1]), int(table[i].hkl[2]));
    CHECK(ok);
    CHECK(std::abs(m[i].candidates[0].error_rel) < 0.006);
  }
  // 511 and 333 share d = a/√27: one candidate listing both.
  CHECK(m[7].candidates[0].hkl.size() == 2);
}

TEST_CASE("NiFe 111 vs Fe3O4 400 is reported as ambiguous at a loose tolerance", "[indexing]") {
  const std::vector<Phase> phases = {phase("Fe3O4"), phase("NiFe")};
  const auto loose = index_spacings({2.07}, phases, 0.03);
  REQUIRE(loose[0].candidates.size() >= 2);
  CHECK(loose[0].ambiguous);
  std::set<std::string> names;
  for (const auto& c : loose[0].candidates)
    names.insert(c.phase_name);
  CHECK(names.count("Fe3O4") == 1);
  CHECK(names.count("NiFe") == 1);
  // At 1 % the two are separated (2.05 vs 2.10 Å differ by 2.4 %).
  const auto tight = index_spacings({phase("NiFe").families[0].d_A * 1.002}, phases, 0.01);
  REQUIRE(tight[0].candidates.size() == 1);
  CHECK_FALSE(tight[0].ambiguous);
  CHECK(tight[0].candidates[0].phase_name == "NiFe");
  CHECK(is_family(tight[0].candidates[0].hkl[0], 1, 1, 1));
  const auto none = index_spacings({7.5}, phases, 0.01);
  CHECK_FALSE(none[0].matched());
  CHECK_THROWS_AS(index_spacings({-1.0}, phases, 0.01), Error);
}

TEST_CASE("exact Si [110] spots index to <110> with zero residual", "[indexing]") {
  const Phase& si = phase("Si");
  const auto spots = zone_spots(si, Vec3(1, 1, 0), Vec3(0, 0, 4), 33.0, 1.3, 0, 0, 1);
  REQUIRE(spots.size() >= 8);
  const auto r = index_zone(spots, {si});
  REQUIRE(r.best.size() == 1);
  CHECK(is_family(r.best[0].zone_uvw, 1, 1, 0));
  CHECK(r.best[0].spots.size() == spots.size());
  CHECK(r.best[0].residual_rel < 1e-9);
  CHECK(r.unexplained.empty());
}

TEST_CASE("Fe3O4 [110] + NiFe [110] rotated by 4.2 deg: zones, phases, OR and rotation", "[indexing]") {
  const Phase& fe3o4 = phase("Fe3O4");
  const Phase& nife = phase("NiFe");
  // Noise like a measured FFT: 0.3 % in length, 0.2° in direction.
  auto spots = zone_spots(fe3o4, Vec3(1, 1, 0), Vec3(-1, 1, 1), 50.0, 1.45, 0.003, 0.2, 2);
  const size_t n_fe3o4 = spots.size();
  for (const auto& s : zone_spots(nife, Vec3(1, 1, 0), Vec3(-1, 1, 1), 54.2, 1.2, 0.003, 0.2, 3))
    spots.push_back(s);
  spots.push_back({0.31, -0.07, 0.01});  // a stray spot no phase explains
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = index_zone(spots, {fe3o4, nife});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  WARN("zone search (max index 5, two phases, " << spots.size() << " spots): " << seconds << " s");
  REQUIRE(r.best.size() == 2);
  const ZoneSolution* a = nullptr;
  const ZoneSolution* b = nullptr;
  for (const auto& s : r.best)
    (s.phase_name == "Fe3O4" ? a : b) = &s;
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  CHECK(is_family(a->zone_uvw, 1, 1, 0));
  CHECK(is_family(b->zone_uvw, 1, 1, 0));
  for (const auto& s : a->spots)
    CHECK(size_t(s.spot) < n_fe3o4);
  for (const auto& s : b->spots)
    CHECK(size_t(s.spot) >= n_fe3o4);
  CHECK(a->spots.size() == n_fe3o4);
  REQUIRE(r.unexplained.size() == 1);
  CHECK(size_t(r.unexplained[0]) == spots.size() - 1);
  const auto o = orientation_relationship(*a, fe3o4, *b, nife, spots);
  INFO(o.describe("Fe3O4", "NiFe"));
  CHECK(is_family(o.plane_a, 1, 1, 1));
  CHECK((o.plane_a - o.plane_b).norm() < 1e-9);  // relabelled cube-on-cube: same indices
  CHECK((o.zone_a - o.zone_b).norm() < 1e-9);
  CHECK(o.relative_rotation_deg == Approx(4.2).margin(0.3));  // the issue's accuracy goal
}

TEST_CASE("zone indexing with an unknown scale (miscalibrated image)", "[indexing]") {
  const Phase& si = phase("Si");
  auto spots = zone_spots(si, Vec3(1, 1, 0), Vec3(1, -1, 1), 12.0, 1.3, 0.002, 0.2, 4);
  for (auto& s : spots) {  // a 3 % calibration error, as in the README's STEM data
    s.kx_invA /= 1.03;
    s.ky_invA /= 1.03;
  }
  ZoneSpec spec;
  spec.scale_range = 0.1;
  const auto r = index_zone(spots, {si}, spec);
  REQUIRE(r.best.size() == 1);
  CHECK(is_family(r.best[0].zone_uvw, 1, 1, 0));
  CHECK(r.best[0].scale == Approx(1 / 1.03).epsilon(0.003));
}

TEST_CASE("a best fit of the wrong phase is flagged, not reported as a plain result", "[indexing]") {
  // Defect: Au [110] spots indexed as Fe3O4 [110] (scale pinned at the +5 % search edge,
  // completeness 37 %) or as Si [110] (5 of 15 spots, the strongest unexplained) with no caveat.
  const Phase& au = phase("Au");
  auto spots = zone_spots(au, Vec3(1, 1, 0), Vec3(1, -1, 1), 30.0, 0.8, 0.002, 0.2, 6);
  for (auto& s : spots) {  // calibration 2.7 % off, as in the tester's image
    s.kx_invA /= 1.027;
    s.ky_invA /= 1.027;
  }
  const auto fe3o4 = index_zone(spots, {phase("Fe3O4")});
  REQUIRE(!fe3o4.best.empty());
  CHECK(!fe3o4.best[0].caveat.empty());
  for (const char* wrong : {"Fe3O4", "Si"}) {
    const auto r = index_zone(spots, {phase(wrong)});
    INFO(wrong);
    CHECK((r.best.empty() || !r.best[0].caveat.empty()));
  }
  const auto right = index_zone(spots, {au});
  REQUIRE(right.best.size() == 1);
  CHECK(is_family(right.best[0].zone_uvw, 1, 1, 0));
  CHECK(right.best[0].caveat.empty());
}

TEST_CASE("calibration from Au ring radii", "[indexing]") {
  const Phase& au = phase("Au");
  // Exact radii at 0.0123 1/Å per px are recovered exactly.
  std::vector<double> radii;
  for (int i = 0; i < 4; ++i)
    radii.push_back(1.0 / au.families[size_t(i)].d_A / 0.0123);
  const auto c = calibrate_scale(radii, au);
  CHECK(c.scale == Approx(0.0123).epsilon(1e-9));
  CHECK(c.n_matched == 4);
  // The README's raw ring radii of the pyxem Au pattern (42.2, 69.26, 81.7, 109.3 px; rings
  // 1, 3, 4 are blends) give its 0.01001 1/Å per px within the blends' 1 %.
  const auto readme = calibrate_scale({42.2, 69.26, 81.7, 109.3}, au);
  CHECK(readme.scale == Approx(0.01001).epsilon(0.01));
  CHECK(readme.n_matched >= 3);
}

TEST_CASE("bad indexing input gives clear errors", "[indexing]") {
  CHECK_THROWS_WITH(index_zone({{0.3, 0.1, 1}}, {phase("Si")}), Catch::Contains("at least 2 spots"));
  CHECK_THROWS_WITH(index_zone({{0.3, 0.1, 1}, {0, 0, 1}}, {phase("Si")}), Catch::Contains("non-zero"));
  CHECK_THROWS_WITH(index_spacings({2.0}, {}, 0.01), Catch::Contains("--phase"));
  CHECK_THROWS_WITH(calibrate_scale({}, phase("Au")), Catch::Contains("no measured"));
}

namespace {

// SrTiO3 perovskite, Pm-3m, a = 3.905 Å (no symmetry operations: families are ±hkl only).
Phase srtio3() {
  Crystal c;
  c.name = "SrTiO3";
  c.lattice = Lattice(3.905, 3.905, 3.905, 90, 90, 90);
  c.sites = {{"Sr", 38, Vec3(0, 0, 0), 1, 0.005}, {"Ti", 22, Vec3(0.5, 0.5, 0.5), 1, 0.005},
             {"O", 8, Vec3(0.5, 0.5, 0), 1, 0.005}, {"O", 8, Vec3(0.5, 0, 0.5), 1, 0.005},
             {"O", 8, Vec3(0, 0.5, 0.5), 1, 0.005}};
  PhaseSpec spec;
  spec.d_min_A = 1.0;
  return make_phase(c, spec);
}

// Zone of the FFT peaks of a real micrograph with a fitted scale (nominal STEM calibrations
// are 1-5 % off; the README's anisotropy is up to 1 %, hence 2 % tolerance).
ZoneIndexing index_realdata(const std::string& file, const Phase& p, int max_peaks, double& scale) {
  const Image img = read_tiff(testing::shared_path("data/realdata/" + file))[0];
  PeakSpec ps;
  ps.max_peaks = max_peaks;
  std::vector<Spot> spots;
  for (const auto& q : find_peaks(power_spectrum(img, 1), ps))
    spots.push_back({q.kx_invA, q.ky_invA, q.intensity});
  ZoneSpec zs;
  zs.scale_range = 0.1;
  const auto r = index_zone(spots, {p}, zs);
  REQUIRE(!r.best.empty());
  scale = r.best[0].scale;
  return r;
}

bool realdata_present() {
  if (std::filesystem::exists(testing::shared_path("data/realdata")))
    return true;
  WARN("realdata absent, skipped: " << testing::shared_path("data/realdata"));
  return false;
}

}  // namespace

TEST_CASE("real Si [110] FFT indexes to <110>; calibration +2.7 % as the README says", "[indexing][realdata]") {
  if (!realdata_present())
    return;
  double scale = 0;
  const auto r = index_realdata("si110_haadf_ncempy/si110_haadf.tif", phase("Si"), 10, scale);
  CHECK(is_family(r.best[0].zone_uvw, 1, 1, 0));
  CHECK(r.best[0].caveat.empty());
  CHECK(r.best[0].spots.size() >= 8);
  // README: nominal d read 2-3.6 % large → g scale 0.965-0.98.
  CHECK(scale > 0.96);
  CHECK(scale < 0.985);
}

TEST_CASE("real SrTiO3 [001] and [110] FFTs index to <001> and <110>", "[indexing][realdata]") {
  if (!realdata_present())
    return;
  const Phase sto = srtio3();
  double scale = 0;
  const auto a = index_realdata("sto001_haadf_80kV_ncempy/sto001_haadf_80kV.tif", sto, 6, scale);
  CHECK(is_family(a.best[0].zone_uvw, 0, 0, 1));
  CHECK(a.best[0].caveat.empty());
  CHECK(a.best[0].spots.size() == 6);
  const auto b = index_realdata("sto110_adf_abf_atomap/sto110_adf.tif", sto, 8, scale);
  CHECK(is_family(b.best[0].zone_uvw, 1, 1, 0));
  CHECK(b.best[0].caveat.empty());
  CHECK(b.best[0].spots.size() >= 6);
  CHECK(scale == Approx(1.0).margin(0.01));  // README: the best-calibrated anchor (±0.5 %)
}

TEST_CASE("real Au ring pattern: rings and the README's 0.01001 1/Å per px", "[indexing][realdata]") {
  if (!realdata_present())
    return;
  const Image pattern = read_tiff(testing::shared_path("data/realdata/au_rings_pyxem_demos/au_xgrating_20cm.tif"))[0];
  const RingProfile prof = find_rings(pattern);
  // README: ellipse-fit centre (127.4, 128.2); the direct-beam centroid is within a pixel.
  CHECK(prof.centre_x_px == Approx(127.4).margin(1.0));
  CHECK(prof.centre_y_px == Approx(128.2).margin(1.0));
  std::vector<double> radii;
  for (const auto& ring : prof.rings)
    radii.push_back(ring.radius_px);
  REQUIRE(radii.size() >= 3);
  const auto c = calibrate_scale(radii, phase("Au"));
  CHECK(c.n_matched >= 3);
  CHECK(c.scale == Approx(0.01001).epsilon(0.01));  // rings are 3.5 % elliptical and blended
}

TEST_CASE("kinematic SAED of the NiFe/Fe3O4 preset indexes back to [110]//[110] and 4.2 deg", "[indexing]") {
  // Cross-module: the saed module's pattern (NiFe rotated 4.2° about the common [110] zone,
  // NiFe(−111) // Fe3O4(−111) before the rotation) is the input; nothing here knows the answer.
  const auto phases_saed = nife_fe3o4_phases(read_crystal("NiFe"), read_crystal("Fe3O4"), 4.2);
  SaedSpec spec;
  spec.g_max_invA = 0.8;
  spec.double_diffraction = false;
  const SaedPattern pattern = kinematic_saed(phases_saed, spec);
  std::vector<Spot> spots;
  for (const auto& s : pattern.spots)
    if (!s.is_direct_beam && s.intensity > 0.1)
      spots.push_back({s.g_lab_invA[0], s.g_lab_invA[1], s.intensity});
  REQUIRE(spots.size() > 20);
  const auto r = index_zone(spots, {phase("Fe3O4"), phase("NiFe")});
  REQUIRE(r.best.size() == 2);
  const ZoneSolution& a = r.best[0].phase_name == "Fe3O4" ? r.best[0] : r.best[1];
  const ZoneSolution& b = r.best[0].phase_name == "Fe3O4" ? r.best[1] : r.best[0];
  CHECK(a.phase_name == "Fe3O4");
  CHECK(b.phase_name == "NiFe");
  CHECK(is_family(a.zone_uvw, 1, 1, 0));
  CHECK(is_family(b.zone_uvw, 1, 1, 0));
  CHECK(r.unexplained.empty());
  const auto o = orientation_relationship(a, phase("Fe3O4"), b, phase("NiFe"), spots);
  INFO(o.describe("Fe3O4", "NiFe"));
  CHECK(is_family(o.plane_a, 1, 1, 1));
  CHECK((o.plane_a - o.plane_b).norm() < 1e-9);
  CHECK(std::abs(o.relative_rotation_deg) == Approx(4.2).margin(0.05));  // exact spots: round-off only
}

TEST_CASE("OR rotation weights every measured order of the planes by |g|^2", "[indexing]") {
  // A small crystal's low-g peak is the least precise direction: turn the four Fe3O4 {111}
  // spots (|g| 0.206/Å) by 0.8°, keep 222 and 333 exact. The |g|²-weighted normal of the
  // orders 1-3 is off by 0.8° × 1²/(1² + 2² + 3²) = 0.057°; the 111 spot alone would give 0.8°.
  const Phase& fe3o4 = phase("Fe3O4");
  const Phase& nife = phase("NiFe");
  auto spots = zone_spots(fe3o4, Vec3(1, 1, 0), Vec3(-1, 1, 1), 50.0, 1.45, 0, 0, 1);
  const double g111 = fe3o4.crystal.lattice.g_length_invA(Vec3(1, 1, 1));
  const double turn = 0.8 * units::deg_to_rad;
  int n_turned = 0;
  for (auto& sp : spots)
    if (std::abs(std::hypot(sp.kx_invA, sp.ky_invA) - g111) < 1e-3) {
      const double x = sp.kx_invA, y = sp.ky_invA;
      sp.kx_invA = std::cos(turn) * x - std::sin(turn) * y;
      sp.ky_invA = std::sin(turn) * x + std::cos(turn) * y;
      ++n_turned;
    }
  REQUIRE(n_turned == 4);
  for (const auto& sp : zone_spots(nife, Vec3(1, 1, 0), Vec3(-1, 1, 1), 54.2, 1.2, 0, 0, 2))
    spots.push_back(sp);
  const auto r = index_zone(spots, {fe3o4, nife});
  REQUIRE(r.best.size() == 2);
  const ZoneSolution& a = r.best[0].phase_name == "Fe3O4" ? r.best[0] : r.best[1];
  const ZoneSolution& b = r.best[0].phase_name == "Fe3O4" ? r.best[1] : r.best[0];
  const auto o = orientation_relationship(a, fe3o4, b, nife, spots);
  INFO(o.describe("Fe3O4", "NiFe"));
  REQUIRE(o.from_spots);
  CHECK(is_family(o.plane_a, 1, 1, 1));
  CHECK(o.relative_rotation_deg == Approx(4.2 - 0.8 / 14).margin(0.005));  // exact spots otherwise
}

TEST_CASE("end to end: simulated NiFe/Fe3O4 HRTEM image → FFT → index → the 4.2 deg tilt", "[indexing][slow]") {
  // The interface preset (NiFe tilted 4.2° about the common [110] zone) → multislice (200 kV,
  // 2 Å slices) → image at Scherzer defocus with epitem image's default lens → peaks.
  const InterfaceResult built = build_interface(preset_interface("nife-fe3o4"));
  MultisliceSpec ms;
  // 486 × 504 over the 61.70 × 64 Å box: 0.1270 Å pixels both ways.
  ms.nx = 486;
  ms.ny = 504;
  ms.slice_thickness_A = 2.0;
  ms.threads = 1;
  Wave exit;
  run_multislice(built.model, ms, [&](int, int, double, const Wave& w) { exit = w; });
  Lens lens;
  lens.aberrations.Cs_A = 1 * units::mm;
  lens.aberrations.defocus_A = scherzer_defocus_A(lens.aberrations.Cs_A, lens.energy_eV);
  lens.focal_spread_A = 21.74;  // epitem image's default (Cc 1.1 mm, ΔE 0.8 eV FWHM)
  lens.convergence_mrad = 0.2;
  // Rows flipped as at the file boundary (row 0 = top = largest y): the FFT then has y up like
  // the model and the SAED pattern, so the sign is theirs too.
  const Image image = flipped_rows(form_image(exit, lens, CoherenceSpec{}));
  REQUIRE(image.pixel_size_A > 0);
  PeakSpec ps;
  ps.max_peaks = 20;
  std::vector<Spot> spots;
  for (const auto& p : find_peaks(power_spectrum(image, 1), ps))
    spots.push_back({p.kx_invA, p.ky_invA, p.intensity});
  const auto r = index_zone(spots, {phase("Fe3O4"), phase("NiFe")});
  REQUIRE(r.best.size() == 2);
  const ZoneSolution& a = r.best[0].phase_name == "Fe3O4" ? r.best[0] : r.best[1];
  const ZoneSolution& b = r.best[0].phase_name == "Fe3O4" ? r.best[1] : r.best[0];
  REQUIRE(a.phase_name == "Fe3O4");
  REQUIRE(b.phase_name == "NiFe");
  CHECK(is_family(a.zone_uvw, 1, 1, 0));
  CHECK(is_family(b.zone_uvw, 1, 1, 0));
  const auto o = orientation_relationship(a, phase("Fe3O4"), b, phase("NiFe"), spots);
  INFO(o.describe("Fe3O4", "NiFe"));
  CHECK(is_family(o.plane_a, 1, 1, 1));
  CHECK((o.plane_a - o.plane_b).norm() < 1e-9);
  CHECK(o.from_spots);
  // 0.3° (the issue's): measured +4.29° at 450-540 px samplings of the box; the single Fe3O4
  // 111 spot (13 reciprocal pixels out) alone is 0.4° off, the |g|²-weighted 111+333 orders are not.
  CHECK(o.relative_rotation_deg == Approx(4.2).margin(0.3));
}

namespace {

// Zones equal up to the point group and sign (as the indexing reports them).
bool same_zone(const Phase& p, const Vec3& a, const Vec3& b) {
  const Vec3 an = a / a.norm(), bn = b / b.norm();
  for (const auto& op : p.crystal.symops) {
    Vec3 b2 = op.rot.inverse() * b;
    b2 /= b2.norm();
    if ((b2 - an).norm() < 1e-6 || (b2 + an).norm() < 1e-6)
      return true;
  }
  return (an - bn).norm() < 1e-6 || (an + bn).norm() < 1e-6;
}

// Kinematic SAED spots (the saed module: true spots) of `crystal` in `zone`, turned in-plane by
// a random angle, then what a real pattern does to them: a calibration error of 1–5 % (random
// sign), 1–2 % elliptical distortion along a random axis, 0.3 % position noise, weak spots
// lost (below a random 0.5–3 % of the strongest, and a quarter of the rest below 10 %),
// intensities ±30 %, and three spurious spots.
std::vector<Spot> perturbed_saed(const Crystal& crystal, const Vec3& zone, double g_max_invA, double scale_lo,
                                 double scale_hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> U(0, 1);
  std::normal_distribution<double> N(0, 1);
  SaedPhase ph = saed_phase_for_zone(crystal, zone);
  ph.orientation = rotation_about_axis(Vec3::UnitZ(), 360 * U(rng)) * ph.orientation;
  SaedSpec spec;
  spec.g_max_invA = g_max_invA;
  spec.thickness_A = 60;  // a thin crystal: the zone's first orders are all excited
  spec.double_diffraction = false;
  const SaedPattern pattern = kinematic_saed({ph}, spec);
  const double scale = 1 + (U(rng) < 0.5 ? -1 : 1) * (scale_lo + (scale_hi - scale_lo) * U(rng));
  const double ell = 0.01 + 0.01 * U(rng), axis = PI * U(rng);
  const double c = std::cos(axis), s = std::sin(axis);
  const double floor = 0.5 + 2.5 * U(rng);
  std::vector<Spot> spots;
  for (const auto& sp : pattern.spots) {
    if (sp.is_direct_beam || sp.intensity < floor || (sp.intensity < 10 && U(rng) < 0.25))
      continue;
    const double x = sp.g_lab_invA[0], y = sp.g_lab_invA[1];
    // Stretch by (1 + ell/2) along the axis, (1 − ell/2) across it.
    const double u = c * x + s * y, v = -s * x + c * y;
    const double u2 = u * (1 + ell / 2), v2 = v * (1 - ell / 2);
    const double g = std::hypot(x, y);
    spots.push_back({scale * (c * u2 - s * v2) + 0.003 * g * N(rng), scale * (s * u2 + c * v2) + 0.003 * g * N(rng),
                     sp.intensity * (1 + 0.3 * (U(rng) - 0.5))});
  }
  double g_lo = 1e9, g_hi = 0;
  for (const auto& sp : spots) {
    g_lo = std::min(g_lo, std::hypot(sp.kx_invA, sp.ky_invA));
    g_hi = std::max(g_hi, std::hypot(sp.kx_invA, sp.ky_invA));
  }
  for (int k = 0; k < 3; ++k) {
    const double g = g_lo + (g_hi - g_lo) * U(rng), a = 2 * PI * U(rng);
    spots.push_back({g * std::cos(a), g * std::sin(a), 0.5 + 3 * U(rng)});
  }
  std::shuffle(spots.begin(), spots.end(), rng);
  return spots;
}

struct Rate {
  int right = 0, trials = 0;
  int flagged = 0;  // right zone, but reported as unreliable (ZoneSolution::caveat)
  std::vector<std::string> misses;
};

Rate zone_rate(const Phase& p, const std::vector<Vec3>& zones, double g_max_invA, double scale_lo, double scale_hi,
               int seeds, const ZoneSpec& spec = {}) {
  Rate r;
  for (const auto& zone : zones)
    for (int seed = 1; seed <= seeds; ++seed) {
      const auto spots = perturbed_saed(p.crystal, zone, g_max_invA, scale_lo, scale_hi, unsigned(seed * 7919 + int(zone.sum() * 13)));
      ++r.trials;
      const auto res = index_zone(spots, {p}, spec);
      const bool ok = !res.best.empty() && same_zone(p, res.best[0].zone_uvw, zone);
      r.right += ok;
      if (ok && !res.best[0].caveat.empty()) {
        ++r.flagged;
        UNSCOPED_INFO("flagged: [" << zone.transpose() << "] seed " << seed << ": " << res.best[0].caveat);
      }
      if (!ok) {
        std::ostringstream os;
        os << "[" << zone.transpose() << "] seed " << seed << " → ";
        if (res.best.empty()) {
          os << "nothing;";
          for (const auto& sp : spots) os << " (" << sp.kx_invA << "," << sp.ky_invA << "," << sp.intensity << ")";
        }
        else
          os << "[" << res.best[0].zone_uvw.transpose() << "] scale " << res.best[0].scale;
        r.misses.push_back(os.str());
      }
    }
  return r;
}

const char* kOrthoCif = R"(# Synthetic orthorhombic test phase (P m m m), a = 4.9, b = 5.6, c = 7.3 A.
data_ortho
_cell_length_a 4.9
_cell_length_b 5.6
_cell_length_c 7.3
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_space_group_name_H-M_alt 'P m m m'
_space_group_IT_number 47
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_U_iso_or_equiv
Ba1 Ba 0.5 0.5 0.19 0.006
Cu1 Cu 0 0 0 0.005
Cu2 Cu 0 0 0.35 0.005
O1 O 0.5 0 0.37 0.008
O2 O 0 0.5 0.36 0.008
)";

}  // namespace

TEST_CASE("orthorhombic spot patterns, 1-5 % calibration error, distortion: zone right >= 95 %",
          "[indexing][zone_rate]") {
  testing::TempDir dir("ortho_cif");
  std::ofstream(dir.file("ortho.cif")) << kOrthoCif;
  PhaseSpec ps;
  ps.d_min_A = 0.9;
  const Phase p = make_phase(read_crystal(dir.file("ortho.cif")), ps);
  const std::vector<Vec3> zones = {{0, 0, 1}, {0, 1, 0}, {1, 0, 0}, {1, 1, 0}, {1, 0, 1}, {0, 1, 1}, {1, 1, 1}, {1, 2, 0}};
  const Rate r = zone_rate(p, zones, 0.9, 0.01, 0.05, 10);
  // The old --fit-scale: a scale within ±10 %, no distortion fitted.
  ZoneSpec similarity;
  similarity.scale_range = 0.1;
  similarity.max_distortion = 0;
  const Rate old = zone_rate(p, zones, 0.9, 0.01, 0.05, 10, similarity);
  std::printf("orthorhombic P m m m: zone right in %d of %d trials (%.0f %%, %d of them flagged unreliable); scale "
              "only (old --fit-scale): %d\n", r.right, r.trials, 100.0 * r.right / r.trials, r.flagged, old.right);
  for (const auto& m : r.misses)
    UNSCOPED_INFO("miss: " << m);
  CHECK(r.right >= 0.95 * r.trials);
}

TEST_CASE("fcc spot patterns, many spots and first orders only: zone right in >= 95 %",
          "[indexing][zone_rate]") {
  const Phase& au = phase("Au");
  const std::vector<Vec3> zones = {{0, 0, 1}, {0, 1, 1}, {1, 1, 1}, {1, 1, 2}, {0, 1, 3}};
  const Rate many = zone_rate(au, zones, 1.0, 0.01, 0.05, 10);
  // A small particle's FFT: only the first orders (111, 200, 220), calibration ~1 % off.
  const Rate few = zone_rate(au, {{0, 1, 1}, {0, 0, 1}, {1, 1, 1}}, 0.75, 0.005, 0.015, 12);
  std::printf("fcc Au: zone right in %d of %d trials (many spots; %d flagged unreliable), %d of %d (first orders "
              "only; %d flagged)\n", many.right, many.trials, many.flagged, few.right, few.trials, few.flagged);
  for (const auto& m : many.misses)
    UNSCOPED_INFO("miss (many): " << m);
  for (const auto& m : few.misses)
    UNSCOPED_INFO("miss (few): " << m);
  CHECK(many.right >= 0.95 * many.trials);
  CHECK(few.right >= 0.95 * few.trials);
}

TEST_CASE("without the scale search a 3 % calibration error loses the zone; the runner-up is reported",
          "[indexing][zone_rate]") {
  const Phase& au = phase("Au");
  ZoneSpec fixed;
  fixed.scale_range = 0;
  const Rate off = zone_rate(au, {{0, 1, 1}, {1, 1, 2}}, 1.0, 0.03, 0.03, 4, fixed);
  const Rate on = zone_rate(au, {{0, 1, 1}, {1, 1, 2}}, 1.0, 0.03, 0.03, 4);
  std::printf("fcc Au, 3 %% calibration error: zone right %d/%d with the scale fixed, %d/%d searched\n", off.right,
              off.trials, on.right, on.trials);
  CHECK(on.right > off.right);
  CHECK(on.right == on.trials);
  const auto spots = perturbed_saed(au.crystal, {0, 1, 1}, 1.0, 0.03, 0.03, 5);
  const auto res = index_zone(spots, {au});
  REQUIRE(res.best.size() == 1);
  REQUIRE(res.runner_up.size() == 1);
  if (res.runner_up_found[0]) {
    CHECK(!same_zone(au, res.runner_up[0].zone_uvw, res.best[0].zone_uvw));
    CHECK(res.runner_up[0].score <= res.best[0].score);
    CHECK(!res.runner_up_reason[0].empty());
  }
}
