#include "epitem/kinematic.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <sstream>

#include "epitem/error.hpp"
#include "epitem/limits.hpp"
#include "epitem/interface.hpp"
#include "epitem/model.hpp"
#include "epitem/units.hpp"

namespace epitem {

namespace {

Miller round_miller(const Vec3& v) {
  return {int(std::lround(v[0])), int(std::lround(v[1])), int(std::lround(v[2]))};
}

Miller sub(const Miller& a, const Miller& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }

/// Integer zone axis with coprime indices; throws for a zero or non-integer vector.
Vec3 integer_zone(const Vec3& uvw, const char* what) {
  if (uvw.cwiseAbs().maxCoeff() < 0.5)
    fail(what, ": zone axis [0 0 0] is not a direction; give three integers, at least one non-zero (e.g. 1,1,0)");
  for (int i = 0; i < 3; ++i)
    if (std::abs(uvw[i] - std::round(uvw[i])) > 1e-6)
      fail(what, ": zone axis [", uvw.transpose(), "] must have integer indices");
  return reduce_indices(uvw.array().round().matrix());
}

void require_table_range(double q_invA, ScatteringTable table, const char* what) {
  if (q_invA > scattering_table_q_max_invA(table))
    fail(what, ": |g| = ", q_invA, " 1/Å exceeds the ", scattering_table_name(table),
         " table's range (q ≤ ", scattering_table_q_max_invA(table),
         " 1/Å); use a larger d_min / smaller g_max or the kirkland table");
}

void require_atoms(const Crystal& crystal, const char* what) {
  if (crystal.sites.empty())
    fail(what, ": crystal '", crystal.name, "' has no atoms");
}

/// Per-site Debye–Waller-damped scattering amplitudes occ·f_e(q)·exp(−Bq²/4) at one |g|.
std::vector<double> site_amplitudes(const Crystal& crystal, double q_invA, ScatteringTable table) {
  std::vector<double> amp(crystal.sites.size());
  std::map<int, double> f_by_z;  // f_e depends on Z only: evaluate each element once
  for (size_t i = 0; i < crystal.sites.size(); ++i) {
    const Site& s = crystal.sites[i];
    auto it = f_by_z.find(s.Z);
    if (it == f_by_z.end())
      it = f_by_z.emplace(s.Z, scattering_factor_A(s.Z, q_invA, table)).first;
    amp[i] = s.occupancy * it->second * std::exp(-u_to_b_A2(s.u_iso_A2) * q_invA * q_invA / 4);
  }
  return amp;
}

std::complex<double> sum_structure_factor(const Crystal& crystal, const Miller& hkl,
                                          const std::vector<double>& amp) {
  const Vec3 h = to_vec3(hkl);
  std::complex<double> f = 0;
  for (size_t i = 0; i < crystal.sites.size(); ++i)
    f += amp[i] * std::polar(1.0, 2 * PI * h.dot(crystal.sites[i].frac));
  return f;
}

struct StructureFactorValue {
  double F_abs_A;
  bool is_forbidden;
};

StructureFactorValue evaluate(const Crystal& crystal, const Miller& hkl, ScatteringTable table) {
  const double q = crystal.lattice.g_length_invA(to_vec3(hkl));
  const auto amp = site_amplitudes(crystal, q, table);
  double bound = 0;
  for (double a : amp)
    bound += std::abs(a);
  const double F = std::abs(sum_structure_factor(crystal, hkl, amp));
  return {F, F < FORBIDDEN_F_REL * bound};
}

/// Index bound along one axis: |h| = |g·a| ≤ |g|·|a|.
int index_bound(double g_max_invA, const Vec3& axis_A) {
  return int(std::floor(g_max_invA * axis_A.norm() + 1e-9));
}

/// Refuses an hkl search box that would take hours (a 10⁴ Å cell, thousands of sites): the
/// box holds ∏(2·h_max+1) indices, each costing a structure factor over every site.
void require_hkl_box(const std::string& what, const Lattice& lat, double g_max_invA, double sites) {
  double box = 1;
  for (int i = 0; i < 3; ++i)
    box *= 2 * std::floor(g_max_invA * lat.direct_A().col(i).norm() + 1e-9) + 1;
  require_work(what + " (" + std::to_string(long(sites)) + " sites, |g| up to " +
                   std::to_string(g_max_invA) + " 1/Å)",
               box * (sites + 20), "index × site steps",
               "the cell or the number of sites is too large for this |g| range; raise --dmin, "
               "lower --gmax or --holz, or use a smaller cell", 2e9);
}

}  // namespace

std::string miller_label(const Miller& hkl) {
  const bool compact = std::all_of(hkl.begin(), hkl.end(), [](int i) { return std::abs(i) <= 9; });
  std::ostringstream os;
  for (int i = 0; i < 3; ++i)
    os << (compact || i == 0 ? "" : " ") << hkl[size_t(i)];
  return os.str();
}

std::complex<double> structure_factor_A(const Crystal& crystal, const Miller& hkl,
                                        ScatteringTable table) {
  const double q = crystal.lattice.g_length_invA(to_vec3(hkl));
  return sum_structure_factor(crystal, hkl, site_amplitudes(crystal, q, table));
}

double structure_factor_bound_A(const Crystal& crystal, const Miller& hkl, ScatteringTable table) {
  const double q = crystal.lattice.g_length_invA(to_vec3(hkl));
  double bound = 0;
  for (double a : site_amplitudes(crystal, q, table))
    bound += std::abs(a);
  return bound;
}

bool is_kinematically_forbidden(const Crystal& crystal, const Miller& hkl, ScatteringTable table) {
  return evaluate(crystal, hkl, table).is_forbidden;
}

std::vector<Reflection> list_reflections(const Crystal& crystal, double d_min_A,
                                         ScatteringTable table, const ReflectionOptions& options) {
  if (!(d_min_A > 0))
    fail("reflection list: d_min must be > 0 Å, got ", d_min_A, " Å");
  require_atoms(crystal, "reflection list");
  require_table_range(1 / d_min_A, table, "reflection list");
  Vec3 zone = Vec3::Zero();
  if (options.use_zone)
    zone = integer_zone(options.zone_uvw, "reflection list");
  const Lattice& lat = crystal.lattice;
  const double g_max = 1 / d_min_A;
  require_hkl_box("reflection list", lat, g_max, double(crystal.sites.size()));
  const int hmax = index_bound(g_max, lat.direct_A().col(0));
  const int kmax = index_bound(g_max, lat.direct_A().col(1));
  const int lmax = index_bound(g_max, lat.direct_A().col(2));

  const int period = options.use_zone ? laue_zone_period(crystal, zone) : 1;
  // Every hkl within d_min (and the zone), with its |F|.
  std::map<Miller, StructureFactorValue> candidates;
  for (int h = -hmax; h <= hmax; ++h)
    for (int k = -kmax; k <= kmax; ++k)
      for (int l = -lmax; l <= lmax; ++l) {
        const Miller hkl{h, k, l};
        if (h == 0 && k == 0 && l == 0)
          continue;
        if (options.use_zone && std::lround(to_vec3(hkl).dot(zone)) != options.laue_zone * period)
          continue;
        if (lat.g_length_invA(to_vec3(hkl)) > g_max * (1 + 1e-12))
          continue;
        candidates.emplace(hkl, evaluate(crystal, hkl, table));
      }

  std::vector<Reflection> out;
  std::map<Miller, bool> assigned;
  for (const auto& [hkl, value] : candidates) {
    if (assigned.count(hkl))
      continue;
    std::vector<Miller> members{hkl};
    if (options.merge_families)
      for (const Vec3& e : equivalent_reflections(crystal, to_vec3(hkl))) {
        const Miller m = round_miller(e);
        if (m != hkl && candidates.count(m) && !assigned.count(m))
          members.push_back(m);
      }
    for (const Miller& m : members)
      assigned[m] = true;
    if (value.is_forbidden && !options.include_forbidden)
      continue;
    Reflection r;
    r.hkl = *std::max_element(members.begin(), members.end());
    r.g_invA = lat.g_length_invA(to_vec3(r.hkl));
    r.d_A = 1 / r.g_invA;
    r.multiplicity = int(members.size());
    r.F_abs_A = value.F_abs_A;
    r.is_forbidden = value.is_forbidden;
    out.push_back(r);
  }

  double i_max = 0, p_max = 0;
  for (const auto& r : out) {
    if (r.is_forbidden)
      continue;
    i_max = std::max(i_max, r.F_abs_A * r.F_abs_A);
    p_max = std::max(p_max, r.multiplicity * r.F_abs_A * r.F_abs_A);
  }
  for (auto& r : out) {
    if (r.is_forbidden)
      continue;
    r.intensity = 100 * r.F_abs_A * r.F_abs_A / i_max;
    r.powder_intensity = 100 * r.multiplicity * r.F_abs_A * r.F_abs_A / p_max;
  }
  std::sort(out.begin(), out.end(), [](const Reflection& a, const Reflection& b) {
    if (std::abs(a.d_A - b.d_A) > 1e-9 * a.d_A)
      return a.d_A > b.d_A;
    return a.hkl > b.hkl;
  });
  return out;
}

SaedPhase saed_phase_for_zone(const Crystal& crystal, const Vec3& zone_uvw, const Vec3& x_uvw) {
  require_atoms(crystal, "SAED");
  SaedPhase phase;
  phase.zone_uvw = integer_zone(zone_uvw, ("SAED phase " + crystal.name).c_str());
  phase.crystal = crystal;
  phase.name = crystal.name;
  phase.orientation = zone_rotation(crystal, phase.zone_uvw, x_uvw);
  return phase;
}

SaedPhase saed_phase_with_orientation(const Crystal& crystal, const Mat3& orientation,
                                      int max_index) {
  require_atoms(crystal, "SAED");
  const Mat3& R = orientation;
  if ((R * R.transpose() - Mat3::Identity()).cwiseAbs().maxCoeff() > 1e-6 ||
      std::abs(R.determinant() - 1) > 1e-6)
    fail("SAED phase ", crystal.name, ": orientation matrix is not a proper rotation (RRᵀ = I, det = +1)");
  // Beam (+z in the lab) in the crystal's Cartesian frame, then in lattice coordinates.
  const Vec3 beam = R.transpose() * Vec3::UnitZ();
  const Vec3 uvw = crystal.lattice.reciprocal_invA().transpose() * beam;
  const Vec3 unit = uvw / uvw.cwiseAbs().maxCoeff();
  for (int m = 1; m <= max_index; ++m) {
    const Vec3 candidate = (unit * m).array().round().matrix();
    const Vec3 dir = crystal.lattice.direction_A(candidate);
    // 1e-5 rad: far below any physical misorientation, far above round-off of a rotation.
    if (dir.norm() > 0 && std::acos(std::clamp(dir.normalized().dot(beam), -1.0, 1.0)) < 1e-5) {
      SaedPhase phase;
      phase.crystal = crystal;
      phase.name = crystal.name;
      phase.orientation = R;
      phase.zone_uvw = reduce_indices(candidate);
      return phase;
    }
  }
  fail("SAED phase ", crystal.name, ": the orientation puts no lattice direction with indices ≤ ",
       max_index, " along the beam (beam ∥ [", uvw.transpose(),
       "]); give a zone-axis orientation and use the beam tilt for small misorientations");
}

void SaedSpec::validate() const {
  if (!(energy_eV > 0))
    fail("SAED: energy must be > 0 eV, got ", energy_eV, " eV");
  if (!(thickness_A > 0))
    fail("SAED: thickness must be > 0 Å, got ", thickness_A, " Å (use e.g. --thickness 20nm)");
  if (!(g_max_invA > 0))
    fail("SAED: g_max must be > 0 1/Å, got ", g_max_invA, " 1/Å");
  if (!std::isfinite(tilt_x_mrad) || !std::isfinite(tilt_y_mrad) ||
      std::hypot(tilt_x_mrad, tilt_y_mrad) >= 500)
    fail("SAED: beam tilt (", tilt_x_mrad, ", ", tilt_y_mrad,
         ") mrad must be finite and below 500 mrad (a small tilt off the zone axis)");
  if (max_laue_zone < 0)
    fail("SAED: highest Laue zone order must be ≥ 0, got ", max_laue_zone);
  if (!(holz_s_max_invA > 0))
    fail("SAED: HOLZ excitation-error limit must be > 0 1/Å, got ", holz_s_max_invA);
  if (dd_n_strongest < 0)
    fail("SAED: number of strongest spots for double diffraction must be ≥ 0, got ", dd_n_strongest);
  if (!(coincidence_tol_invA > 0))
    fail("SAED: coincidence tolerance must be > 0 1/Å, got ", coincidence_tol_invA);
}

double relrod_shape(double s_invA, double t_A, RelrodShape shape) {
  const double x = PI * s_invA * t_A;
  if (shape == RelrodShape::Envelope)
    return t_A * t_A / (1 + 2 * x * x);
  if (std::abs(x) < 1e-8)
    return t_A * t_A;
  const double sinc = std::sin(x) / x;
  return t_A * t_A * sinc * sinc;
}

namespace {

/// Excitation error s_g = −(2k0·g + g²)/(2|k0 + g|) (docs/formulas.md §7).
double excitation_error(const Vec3& k0, const Vec3& g) {
  return -(2 * k0.dot(g) + g.squaredNorm()) / (2 * (k0 + g).norm());
}

}  // namespace

std::vector<Vec3> centring_translations(const Crystal& crystal) {
  std::vector<Vec3> out;
  for (const SymOp& op : crystal.symops) {
    if (!op.rot.isApprox(Mat3::Identity(), 1e-9))
      continue;
    Vec3 t = op.tran;
    for (int i = 0; i < 3; ++i)
      t[i] -= std::floor(t[i] + 1e-9);
    if (t.norm() > 1e-6)
      out.push_back(t);
  }
  return out;
}

int laue_zone_period(const Crystal& crystal, const Vec3& zone_uvw) {
  // gcd of n = hkl·uvw over small hkl the centring allows (a basis of the allowed
  // reciprocal lattice has indices ≤ 2 for P, A/B/C, I, F and R centrings).
  const std::vector<Vec3> ts = centring_translations(crystal);
  long m = 0;
  for (int h = -2; h <= 2; ++h)
    for (int k = -2; k <= 2; ++k)
      for (int l = -2; l <= 2; ++l) {
        const Vec3 g(h, k, l);
        bool allowed = true;
        for (const Vec3& t : ts) {
          const double x = g.dot(t);
          allowed = allowed && std::abs(x - std::round(x)) < 1e-6;
        }
        if (allowed)
          m = std::gcd(m, std::labs(std::lround(g.dot(zone_uvw))));
      }
  return m > 0 ? int(m) : 1;
}

int laue_zone_order(const Crystal& crystal, const Miller& hkl, const Vec3& zone_uvw) {
  return int(std::lround(to_vec3(hkl).dot(zone_uvw))) / laue_zone_period(crystal, zone_uvw);
}

namespace {

struct Candidate {
  SaedSpot spot;
  bool is_forbidden;
};

/// The listed Laue zones of one phase: allowed spots and forbidden positions.
std::vector<Candidate> phase_candidates(const SaedPhase& phase, int phase_index,
                                        const SaedSpec& spec, const Vec3& k0) {
  const Crystal& c = phase.crystal;
  const Lattice& lat = c.lattice;
  const Vec3 zone = phase.zone_uvw;
  const int period = laue_zone_period(c, zone);
  // Spacing of the Laue zones the centring allows (m planes of the primitive stack).
  const double layer_invA = period / lat.direction_A(zone).norm();
  // Largest 3-D |g| (in-plane g_max, out-of-plane up to the highest zone, plus tilt slack).
  const double g3_max = std::hypot(spec.g_max_invA, (spec.max_laue_zone + 0.5) * layer_invA);
  require_hkl_box("SAED of " + c.name, lat, g3_max, double(c.sites.size()));
  const int hmax = index_bound(g3_max, lat.direct_A().col(0));
  const int kmax = index_bound(g3_max, lat.direct_A().col(1));
  const int lmax = index_bound(g3_max, lat.direct_A().col(2));
  const double volume = lat.volume_A3();
  std::vector<Candidate> out;
  for (int h = -hmax; h <= hmax; ++h)
    for (int k = -kmax; k <= kmax; ++k)
      for (int l = -lmax; l <= lmax; ++l) {
        if (h == 0 && k == 0 && l == 0)
          continue;
        const Miller hkl{h, k, l};
        const int n_raw = int(std::lround(to_vec3(hkl).dot(zone)));
        if (n_raw % period != 0)  // between the allowed layers: forbidden by the centring
          continue;
        const int n = n_raw / period;
        if (std::abs(n) > spec.max_laue_zone)
          continue;
        const Vec3 g = phase.orientation * lat.g_invA(to_vec3(hkl));
        if (std::hypot(g.x(), g.y()) > spec.g_max_invA)
          continue;
        const double s = excitation_error(k0, g);
        if (n != 0 && std::abs(s) > spec.holz_s_max_invA)
          continue;
        require_table_range(g.norm(), spec.table, "SAED");
        const auto value = evaluate(c, hkl, spec.table);
        Candidate cand;
        cand.is_forbidden = value.is_forbidden;
        SaedSpot& spot = cand.spot;
        spot.phase = phase_index;
        spot.hkl = hkl;
        spot.g_lab_invA = g;
        spot.g_invA = g.norm();
        spot.d_A = 1 / spot.g_invA;
        spot.excitation_error_invA = s;
        spot.F_abs_A = value.F_abs_A;
        spot.laue_zone = n;
        const double F_per_volume = value.F_abs_A / volume;  // phases compare per unit volume
        spot.intensity = value.is_forbidden
                             ? 0
                             : phase.weight * F_per_volume * F_per_volume *
                                   relrod_shape(s, spec.thickness_A, spec.shape);
        out.push_back(cand);
      }
  return out;
}

/// Spots with intensity ≥ min_intensity, capped to the n strongest when n > 0 (ties at the
/// n-th intensity included), 000 excluded.
std::vector<const SaedSpot*> strongest(const std::vector<SaedSpot>& spots, int phase, int n,
                                       double min_intensity) {
  std::vector<const SaedSpot*> list;
  for (const auto& s : spots)
    if (s.phase == phase && !s.is_direct_beam && s.intensity > 0 &&
        s.intensity >= min_intensity && s.double_diffraction == DoubleDiffraction::None)
      list.push_back(&s);
  std::sort(list.begin(), list.end(),
            [](const SaedSpot* a, const SaedSpot* b) { return a->intensity > b->intensity; });
  if (int(list.size()) > n && n > 0) {
    const double cut = list[size_t(n - 1)]->intensity * (1 - 1e-9);
    size_t keep = size_t(n);
    while (keep < list.size() && list[keep]->intensity >= cut)
      ++keep;
    list.resize(keep);
  }
  return list;
}

}  // namespace

SaedPattern kinematic_saed(const std::vector<SaedPhase>& phases, const SaedSpec& spec) {
  spec.validate();
  if (phases.empty())
    fail("SAED: no phase given");
  SaedPattern pattern;
  pattern.wavelength_A = electron_wavelength_A(spec.energy_eV);
  pattern.g_max_invA = spec.g_max_invA;
  const Vec3 k0 = Vec3(std::tan(spec.tilt_x_mrad * units::mrad_to_rad),
                       std::tan(spec.tilt_y_mrad * units::mrad_to_rad), 1)
                      .normalized() /
                  pattern.wavelength_A;

  SaedSpot direct;
  direct.is_direct_beam = true;
  direct.F_abs_A = std::abs(structure_factor_A(phases[0].crystal, {0, 0, 0}, spec.table));
  pattern.spots.push_back(direct);

  std::vector<std::vector<Candidate>> forbidden(phases.size());
  for (size_t p = 0; p < phases.size(); ++p) {
    const SaedPhase& phase = phases[p];
    require_atoms(phase.crystal, "SAED");
    if (!(phase.weight > 0))
      fail("SAED phase ", phase.name, ": weight must be > 0, got ", phase.weight);
    pattern.phase_names.push_back(phase.name.empty() ? phase.crystal.name : phase.name);
    pattern.phase_zones_uvw.push_back(phase.zone_uvw);
    for (auto& cand : phase_candidates(phase, int(p), spec, k0)) {
      if (cand.is_forbidden)
        forbidden[p].push_back(std::move(cand));
      else
        pattern.spots.push_back(std::move(cand.spot));
    }
  }
  double i_max = 0;
  for (const auto& s : pattern.spots)
    if (!s.is_direct_beam)
      i_max = std::max(i_max, s.intensity);
  for (auto& s : pattern.spots)
    s.intensity = s.is_direct_beam ? 100 : (i_max > 0 ? 100 * s.intensity / i_max : 0);

  if (spec.double_diffraction) {
    // Within a phase: forbidden g = g1 + g2 with g1, g2 allowed and visible.
    for (size_t p = 0; p < phases.size(); ++p) {
      std::map<Miller, const SaedSpot*> visible;
      for (const auto& s : pattern.spots)
        if (s.phase == int(p) && !s.is_direct_beam && s.intensity >= spec.dd_min_intensity)
          visible[s.hkl] = &s;
      std::vector<SaedSpot> added;
      for (const auto& cand : forbidden[p]) {
        const SaedSpot* best1 = nullptr;
        const SaedSpot* best2 = nullptr;
        for (const auto& [hkl1, s1] : visible) {
          auto it = visible.find(sub(cand.spot.hkl, hkl1));
          if (it == visible.end())
            continue;
          const SaedSpot* s2 = it->second;
          if (!best1 || s1->intensity * s2->intensity > best1->intensity * best2->intensity) {
            best1 = s1;
            best2 = s2;
          }
        }
        if (!best1)
          continue;
        SaedSpot spot = cand.spot;
        spot.double_diffraction = DoubleDiffraction::WithinPhase;
        spot.dd_path = pattern.phase_names[p] + " " + miller_label(best1->hkl) + " + " +
                       pattern.phase_names[p] + " " + miller_label(best2->hkl);
        added.push_back(spot);
      }
      pattern.spots.insert(pattern.spots.end(), added.begin(), added.end());
    }
    // Between phases: sums of the strongest spots that fall where no kinematic spot is.
    std::vector<SaedSpot> added;
    auto occupied = [&](const Vec3& g) {
      auto near = [&](const SaedSpot& s) {
        return std::hypot(s.g_lab_invA.x() - g.x(), s.g_lab_invA.y() - g.y()) <
               spec.coincidence_tol_invA;
      };
      return std::any_of(pattern.spots.begin(), pattern.spots.end(), near) ||
             std::any_of(added.begin(), added.end(), near);
    };
    for (size_t a = 0; a < phases.size(); ++a)
      for (size_t b = a + 1; b < phases.size(); ++b) {
        const auto sa = strongest(pattern.spots, int(a), spec.dd_n_strongest, spec.dd_min_intensity);
        const auto sb = strongest(pattern.spots, int(b), spec.dd_n_strongest, spec.dd_min_intensity);
        const double cos_moire = std::cos(spec.moire_max_angle_deg * units::deg_to_rad);
        for (const SaedSpot* g1 : sa)
          for (const SaedSpot* g2 : sb) {
            const Vec3 g = g1->g_lab_invA + g2->g_lab_invA;
            if (std::hypot(g.x(), g.y()) > spec.g_max_invA || occupied(g))
              continue;
            SaedSpot spot;
            spot.phase = int(a);
            spot.hkl = g1->hkl;
            spot.phase_b = int(b);
            spot.hkl_b = g2->hkl;
            spot.g_lab_invA = g;
            spot.g_invA = g.norm();
            spot.d_A = 1 / spot.g_invA;
            spot.excitation_error_invA = excitation_error(k0, g);
            spot.laue_zone = g1->laue_zone;
            spot.double_diffraction = DoubleDiffraction::BetweenPhases;
            // g1 + g2 with g2 ≈ −g1 in direction: the difference of two near-parallel plane
            // families, i.e. the moiré of those planes (period 1/|g|).
            spot.is_moire = -g1->g_lab_invA.dot(g2->g_lab_invA) >=
                                cos_moire * g1->g_lab_invA.norm() * g2->g_lab_invA.norm() &&
                            spot.g_invA <= 0.5 * std::min(g1->g_invA, g2->g_invA);
            spot.dd_path = pattern.phase_names[a] + " " + miller_label(g1->hkl) + " + " +
                           pattern.phase_names[b] + " " + miller_label(g2->hkl);
            added.push_back(spot);
          }
      }
    pattern.spots.insert(pattern.spots.end(), added.begin(), added.end());
  }

  std::stable_sort(pattern.spots.begin(), pattern.spots.end(),
                   [](const SaedSpot& x, const SaedSpot& y) {
                     if (x.is_direct_beam != y.is_direct_beam)
                       return x.is_direct_beam;
                     if (x.double_diffraction != y.double_diffraction)
                       return x.double_diffraction < y.double_diffraction;
                     if (x.phase != y.phase)
                       return x.phase < y.phase;
                     if (std::abs(x.g_invA - y.g_invA) > 1e-9)
                       return x.g_invA < y.g_invA;
                     return x.hkl > y.hkl;
                   });
  return pattern;
}

std::vector<SaedPhase> nife_fe3o4_phases(const Crystal& nife, const Crystal& fe3o4,
                                         double nife_rotation_deg) {
  // Orientations from the interface builder itself, so SAED, model and HRTEM share one frame.
  InterfaceSpec spec = preset_interface("nife-fe3o4");
  spec.substrate = fe3o4;
  spec.overlayer = nife;
  spec.tilt_deg = nife_rotation_deg;
  spec.find_voids = false;  // orientations only; the void search changes no rotation
  const InterfaceReport report = build_interface(spec).report;
  return {saed_phase_with_orientation(nife, report.overlayer_rotation),
          saed_phase_with_orientation(fe3o4, report.substrate_rotation)};
}

}  // namespace epitem
