#include "epitem/indexing.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <complex>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <sstream>
#include <tuple>

#include "epitem/csv.hpp"
#include "epitem/error.hpp"
#include "epitem/kinematic.hpp"
#include "epitem/output.hpp"
#include "epitem/units.hpp"

namespace epitem {

namespace {

using Key = std::tuple<int, int, int>;
Key key_of(const Vec3& h) { return {int(std::lround(h[0])), int(std::lround(h[1])), int(std::lround(h[2]))}; }

std::string hkl_string(const Vec3& h) {
  return miller_label({int(std::lround(h[0])), int(std::lround(h[1])), int(std::lround(h[2]))});
}

// Nicest representative of a set of equivalent index triples: most non-negative entries,
// then lexicographically largest (311 rather than 1-13, 110 rather than 0-1-1).
Vec3 nicest(const std::vector<Vec3>& v) {
  auto rank = [](const Vec3& h) {
    int nonneg = (h[0] >= 0) + (h[1] >= 0) + (h[2] >= 0);
    return std::make_tuple(nonneg, std::lround(h[0]), std::lround(h[1]), std::lround(h[2]));
  };
  return *std::max_element(v.begin(), v.end(), [&](const Vec3& a, const Vec3& b) { return rank(a) < rank(b); });
}

double angle_deg(double x1, double y1, double x2, double y2) {
  return std::atan2(x1 * y2 - y1 * x2, x1 * x2 + y1 * y2) / units::deg_to_rad;
}

}  // namespace

Phase make_phase(const Crystal& crystal, const PhaseSpec& spec) {
  if (!(spec.d_min_A > 0))
    fail("make_phase: d_min_A must be > 0 Å, got ", spec.d_min_A);
  if (crystal.sites.empty())
    fail("make_phase: crystal '", crystal.name, "' has no atoms");
  const Lattice& L = crystal.lattice;
  ReflectionOptions all;
  all.merge_families = false;
  all.include_forbidden = true;
  const auto list = list_reflections(crystal, spec.d_min_A, ScatteringTable::Kirkland, all);
  std::map<Key, double> I;  // intensity, strongest = 1; forbidden = −1
  std::set<Key> allowed;
  for (const auto& r : list) {
    const Key k{r.hkl[0], r.hkl[1], r.hkl[2]};
    I[k] = r.is_forbidden ? -1.0 : r.intensity / 100;
    if (!r.is_forbidden && r.intensity / 100 >= spec.min_intensity_rel)
      allowed.insert(k);
  }
  auto is_dd = [&](const Key& k) {
    for (const auto& a : allowed) {
      const Key b{std::get<0>(k) - std::get<0>(a), std::get<1>(k) - std::get<1>(a), std::get<2>(k) - std::get<2>(a)};
      if (allowed.count(b))
        return true;
    }
    return false;
  };

  Phase phase;
  phase.name = crystal.name;
  phase.crystal = crystal;
  std::set<Key> done;
  for (const auto& [k, v] : I) {
    if (done.count(k))
      continue;
    const Vec3 hkl(std::get<0>(k), std::get<1>(k), std::get<2>(k));
    ReflectionFamily f;
    for (const auto& e : equivalent_reflections(crystal, hkl)) {
      const Key ek = key_of(e);
      if (I.count(ek) && !done.count(ek)) {
        f.members.push_back(e);
        done.insert(ek);
      }
    }
    f.kinematic_allowed = allowed.count(k) > 0;
    if (!f.kinematic_allowed && !(spec.double_diffraction && is_dd(k)))
      continue;
    f.hkl = nicest(f.members);
    f.d_A = L.d_spacing_A(hkl);
    f.intensity_rel = f.kinematic_allowed ? v : 0.0;
    phase.families.push_back(std::move(f));
  }
  std::sort(phase.families.begin(), phase.families.end(), [](const auto& a, const auto& b) {
    return a.d_A != b.d_A ? a.d_A > b.d_A : std::make_tuple(a.hkl[0], a.hkl[1], a.hkl[2]) > std::make_tuple(b.hkl[0], b.hkl[1], b.hkl[2]);
  });
  return phase;
}

// ---------------------------------------------------------------- spacings

std::string SpacingCandidate::label() const {
  std::string s = phase_name + " ";
  for (size_t i = 0; i < hkl.size(); ++i)
    s += (i ? "/" : "") + std::string("{") + hkl_string(hkl[i]) + "}";
  if (!kinematic_allowed)
    s += " (kinematically forbidden)";
  return s;
}

std::vector<SpacingMatch> index_spacings(const std::vector<double>& d_measured_A,
                                         const std::vector<Phase>& phases, double tolerance_rel) {
  if (!(tolerance_rel > 0 && tolerance_rel < 0.5))
    fail("index_spacings: tolerance must be in (0, 50 %), got ", tolerance_rel * 100, " %");
  if (phases.empty())
    fail("index_spacings: no phase given (e.g. --phase Fe3O4)");
  std::vector<SpacingMatch> out;
  for (double d : d_measured_A) {
    if (!(d > 0) || !std::isfinite(d))
      fail("index_spacings: spacing must be a positive length, got ", d, " Å");
    SpacingMatch m;
    m.d_measured_A = d;
    for (size_t p = 0; p < phases.size(); ++p) {
      const auto& fams = phases[p].families;
      for (size_t i = 0; i < fams.size(); ++i) {
        const double err = (d - fams[i].d_A) / fams[i].d_A;
        if (std::abs(err) > tolerance_rel)
          continue;
        // Families with the same d (511/333 in cubic) cannot be told apart: one candidate.
        bool merged = false;
        for (auto& c : m.candidates)
          if (c.phase == int(p) && std::abs(c.d_A - fams[i].d_A) < 1e-6 * c.d_A) {
            c.hkl.push_back(fams[i].hkl);
            c.intensity_rel += fams[i].intensity_rel;
            c.kinematic_allowed = c.kinematic_allowed || fams[i].kinematic_allowed;
            merged = true;
          }
        if (merged)
          continue;
        SpacingCandidate c;
        c.phase = int(p);
        c.phase_name = phases[p].name;
        c.hkl = {fams[i].hkl};
        c.d_A = fams[i].d_A;
        c.error_rel = err;
        c.intensity_rel = fams[i].intensity_rel;
        c.kinematic_allowed = fams[i].kinematic_allowed;
        m.candidates.push_back(c);
      }
    }
    std::sort(m.candidates.begin(), m.candidates.end(),
              [](const auto& a, const auto& b) { return std::abs(a.error_rel) < std::abs(b.error_rel); });
    m.ambiguous = m.candidates.size() > 1;
    out.push_back(std::move(m));
  }
  return out;
}

// ---------------------------------------------------------------- zone axis

double ZoneSolution::direction_deg(const Vec3& hkl) const {
  const Vec3 v = screen_g_invA(hkl);
  return std::atan2(v[1], v[0]) / units::deg_to_rad;
}

namespace {

struct Refl {
  Vec3 hkl;
  Vec3 g;          // Cartesian [1/Å]
  double g_len;
  int family;
  bool allowed;
  double intensity_rel;
};

struct Candidate {
  ZoneSolution sol;
  std::vector<int> explained;
};

// Matches spots to the predicted in-zone reflections of one orientation (2-D screen vectors),
// refines the in-plane angle and scale (weighted 2-D Procrustes) and, with ≥ 4 spots, a
// general 2×2 map (elliptical distortion), then scores it.
struct Evaluator {
  const std::vector<Spot>& spots;
  const std::vector<Refl>& refl;
  const ZoneSpec& spec;
  double g_meas_max;
  double intensity_max;

  // Strong spots weigh up to twice the weakest: a zone must explain the strong low-order ones.
  double weight(const Spot& s) const {
    return 0.5 + 0.5 * std::sqrt(std::clamp(s.intensity / intensity_max, 0.0, 1.0));
  }

  bool evaluate(ZoneSolution& sol, const std::vector<int>& zone_refl) const {
    const bool fit = spec.scale_range > 0;
    std::vector<Eigen::Vector2d> q0(zone_refl.size());  // unscaled, rotated
    std::vector<int> match;
    for (int iter = 0; iter < 5; ++iter) {
      for (size_t r = 0; r < zone_refl.size(); ++r) {
        const Vec3 v = sol.rotation * refl[size_t(zone_refl[r])].g;
        q0[r] = {v[0], v[1]};
      }
      const Eigen::Matrix2d M = sol.scale * sol.distortion_map;
      sol.spots.clear();
      match.clear();
      double sum_e2 = 0;
      for (size_t j = 0; j < spots.size(); ++j) {
        const Eigen::Vector2d p(spots[j].kx_invA, spots[j].ky_invA);
        int best = -1;
        double best_e = 1e300;
        for (size_t r = 0; r < q0.size(); ++r) {
          const Eigen::Vector2d q = M * q0[r];
          const double e = (p - q).norm() / q.norm();
          if (e < best_e) {
            best_e = e;
            best = int(r);
          }
        }
        if (best < 0 || best_e > spec.tolerance_rel)
          continue;
        sol.spots.push_back({int(j), refl[size_t(zone_refl[size_t(best)])].hkl, best_e});
        match.push_back(best);
        sum_e2 += best_e * best_e;
      }
      if (sol.spots.size() < 2)
        return false;
      sol.residual_rel = std::sqrt(sum_e2 / double(sol.spots.size()));
      if (iter == 4)
        break;
      // Weighted (1/|q|²: relative errors) fits in the rotated, unscaled frame.
      double sdot = 0, scross = 0, sq2 = 0;
      Eigen::Matrix2d QQ = Eigen::Matrix2d::Zero(), PQ = Eigen::Matrix2d::Zero();
      for (size_t m = 0; m < sol.spots.size(); ++m) {
        const Spot& sp = spots[size_t(sol.spots[m].spot)];
        const Eigen::Vector2d p(sp.kx_invA, sp.ky_invA), q = q0[size_t(match[m])];
        const double w = weight(sp) / q.squaredNorm();
        sdot += w * q.dot(p);
        scross += w * (q[0] * p[1] - q[1] * p[0]);
        sq2 += w * q.squaredNorm();
        QQ += w * q * q.transpose();
        PQ += w * p * q.transpose();
      }
      const bool affine = fit && spec.max_distortion > 0 && sol.spots.size() >= 4 && std::abs(QQ.determinant()) > 1e-12 * QQ.squaredNorm();
      if (affine) {
        // p ≈ A·q; A = U·Σ·Vᵀ → rotation U·Vᵀ (proper), scale √det, distortion the rest.
        const Eigen::Matrix2d A = PQ * QQ.inverse();
        Eigen::JacobiSVD<Eigen::Matrix2d> svd(A, Eigen::ComputeFullU | Eigen::ComputeFullV);
        const Eigen::Vector2d sv = svd.singularValues();
        if (A.determinant() > 0 && sv[1] > 0 && sv[0] / sv[1] - 1 <= spec.max_distortion) {
          const Eigen::Matrix2d R = svd.matrixU() * svd.matrixV().transpose();
          const double scale = std::sqrt(A.determinant());
          if (std::abs(scale - 1) <= spec.scale_range) {
            const double theta = std::atan2(R(1, 0), R(0, 0)) / units::deg_to_rad;
            sol.rotation = rotation_about_axis(Vec3::UnitZ(), theta) * sol.rotation;
            sol.scale = scale;
            // A = S·R with S symmetric: S = A·Rᵀ; normalised to det 1.
            sol.distortion_map = A * R.transpose() / scale;
            sol.distortion = sv[0] / sv[1] - 1;
            continue;
          }
        }
      }
      const double dtheta = std::atan2(scross, sdot);
      sol.rotation = rotation_about_axis(Vec3::UnitZ(), dtheta / units::deg_to_rad) * sol.rotation;
      sol.distortion_map = Eigen::Matrix2d::Identity();
      sol.distortion = 0;
      if (fit)
        sol.scale = std::clamp(std::hypot(sdot, scross) / sq2, 1 - spec.scale_range, 1 + spec.scale_range);
    }
    // Completeness: allowed in-zone reflections inside the measured range that were seen,
    // weighted by √(kinematic intensity) so that a missing strong reflection counts most.
    std::set<Key> seen;
    for (const auto& sp : sol.spots) {
      seen.insert(key_of(sp.hkl));
      seen.insert(key_of(-sp.hkl));
    }
    double w_pred = 0, w_seen = 0;
    for (size_t r = 0; r < zone_refl.size(); ++r) {
      const Refl& R = refl[size_t(zone_refl[r])];
      if (!R.allowed || R.intensity_rel < 0.01 || R.g_len * sol.scale > g_meas_max * (1 + spec.tolerance_rel))
        continue;
      const double w = std::sqrt(R.intensity_rel);
      w_pred += w;
      w_seen += seen.count(key_of(R.hkl)) ? w : 0.0;
    }
    sol.completeness = w_pred > 0 ? w_seen / w_pred : 0.0;
    sol.explained_weight = 0;
    for (const auto& sp : sol.spots)
      sol.explained_weight += weight(spots[size_t(sp.spot)]);
    sol.score = sol.explained_weight * (0.5 + 0.5 * sol.completeness) - sol.residual_rel / spec.tolerance_rel;
    return true;
  }
};

}  // namespace

namespace {

Vec3 reduced_integer(const Vec3& v) {
  long a = std::labs(std::lround(v[0])), b = std::labs(std::lround(v[1])), c = std::labs(std::lround(v[2]));
  long g = std::gcd(std::gcd(a, b), c);
  return g > 0 ? Vec3(v / double(g)) : v;
}

// Ranked candidate orientations of one phase for a subset of the spots.
std::vector<ZoneSolution> solve_phase(const std::vector<Spot>& all_spots, const std::vector<int>& subset,
                                      const Phase& phase, int phase_index, const ZoneSpec& spec) {
  std::vector<Spot> spots;
  for (int i : subset)
    spots.push_back(all_spots[size_t(i)]);
  std::vector<ZoneSolution> out;
  if (spots.size() < 2)
    return out;
  const Lattice& L = phase.crystal.lattice;
  std::vector<Refl> refl;
  for (size_t f = 0; f < phase.families.size(); ++f)
    for (const auto& h : phase.families[f].members) {
      const Vec3 g = L.g_invA(h);
      refl.push_back({h, g, g.norm(), int(f), phase.families[f].kinematic_allowed, phase.families[f].intensity_rel});
    }
  double g_meas_max = 0, intensity_max = 0;
  for (const auto& s : spots) {
    g_meas_max = std::max(g_meas_max, std::hypot(s.kx_invA, s.ky_invA));
    intensity_max = std::max(intensity_max, s.intensity);
  }
  const Evaluator eval{spots, refl, spec, g_meas_max, intensity_max > 0 ? intensity_max : 1.0};

  std::vector<int> order(spots.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = int(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return spots[size_t(a)].intensity > spots[size_t(b)].intensity; });
  order.resize(std::min(order.size(), size_t(std::max(2, spec.max_basis_spots))));

  const double window = spec.tolerance_rel + spec.scale_range + spec.max_distortion * (spec.scale_range > 0);
  std::map<Key, std::vector<int>> zone_cache;
  std::set<std::tuple<int, int, int, long>> tried;
  std::vector<Candidate> cands;
  for (size_t ia = 0; ia < order.size(); ++ia)
    for (size_t ib = ia + 1; ib < order.size(); ++ib) {
      const Spot& A = spots[size_t(order[ia])];
      const Spot& B = spots[size_t(order[ib])];
      const double ga = std::hypot(A.kx_invA, A.ky_invA), gb = std::hypot(B.kx_invA, B.ky_invA);
      if (!(ga > 0 && gb > 0))
        continue;
      const double ab = angle_deg(A.kx_invA, A.ky_invA, B.kx_invA, B.ky_invA);
      if (std::abs(ab) < 3 || std::abs(ab) > 177)
        continue;  // (anti)parallel spots do not fix a zone
      std::vector<int> H1, H2;
      for (size_t r = 0; r < refl.size(); ++r) {
        if (std::abs(ga - refl[r].g_len) <= window * refl[r].g_len)
          H1.push_back(int(r));
        if (std::abs(gb - refl[r].g_len) <= window * refl[r].g_len)
          H2.push_back(int(r));
      }
      for (int r1 : H1)
        for (int r2 : H2) {
          const Refl& R1 = refl[size_t(r1)];
          const Refl& R2 = refl[size_t(r2)];
          const double c12 = R1.g.dot(R2.g) / (R1.g_len * R2.g_len);
          const double a12 = std::acos(std::clamp(c12, -1.0, 1.0)) / units::deg_to_rad;
          if (std::abs(a12 - std::abs(ab)) > spec.angle_tolerance_deg)
            continue;
          // A common scale cancels in the ratio; distortion and each spot's error do not.
          const double ratio_tol = 2 * spec.tolerance_rel + (spec.scale_range > 0 ? spec.max_distortion : 0.0);
          if (std::abs((ga / gb) / (R1.g_len / R2.g_len) - 1) > ratio_tol)
            continue;
          const double scale0 = std::sqrt((ga / R1.g_len) * (gb / R2.g_len));
          if (std::abs(scale0 - 1) > spec.scale_range + spec.tolerance_rel)
            continue;
          Vec3 zone = reduced_integer(R1.hkl.cross(R2.hkl));
          if (zone.cwiseAbs().maxCoeff() > spec.max_index || zone.norm() < 0.5)
            continue;
          // Handedness: the screen cross product A × B has the sign of the zone toward the viewer.
          const double sgn = ab > 0 ? 1.0 : -1.0;
          zone *= sgn;
          const Vec3 zone_cart = sgn * R1.g.cross(R2.g);
          ZoneSolution sol;
          sol.phase = phase_index;
          sol.phase_name = phase.name;
          sol.zone_uvw = zone;
          sol.reciprocal_invA = L.reciprocal_invA();
          const double theta = std::atan2(A.ky_invA, A.kx_invA) / units::deg_to_rad;
          sol.rotation = rotation_about_axis(Vec3::UnitZ(), theta) * rotation_beam_to_z(zone_cart, R1.g);
          sol.scale = spec.scale_range > 0 ? std::clamp(scale0, 1 - spec.scale_range, 1 + spec.scale_range) : 1.0;
          const auto k = key_of(zone);
          const auto trial = std::make_tuple(std::get<0>(k), std::get<1>(k), std::get<2>(k), std::lround(theta * 2));
          if (!tried.insert(trial).second)
            continue;
          auto& zr = zone_cache[k];
          if (zr.empty())
            for (size_t r = 0; r < refl.size(); ++r)
              if (std::abs(refl[r].hkl.dot(zone)) < 1e-6)
                zr.push_back(int(r));
          if (!eval.evaluate(sol, zr))
            continue;
          // g → −g for every spot (180° about the beam) fits equally: prefer positive labels.
          double sign_sum = 0;
          for (const auto& s : sol.spots)
            sign_sum += s.hkl.sum();
          if (sign_sum < 0) {
            sol.rotation = rotation_about_axis(Vec3::UnitZ(), 180) * sol.rotation;
            for (auto& s : sol.spots)
              s.hkl = -s.hkl;
          }
          for (auto& s : sol.spots)
            s.spot = subset[size_t(s.spot)];
          Candidate c{sol, {}};
          for (const auto& s : sol.spots)
            c.explained.push_back(s.spot);
          std::sort(c.explained.begin(), c.explained.end());
          cands.push_back(std::move(c));
        }
    }
  std::stable_sort(cands.begin(), cands.end(), [](const auto& a, const auto& b) { return a.sol.score > b.sol.score; });
  // Symmetry-equivalent labellings explain the same spots equally well: keep the nicest zone.
  std::vector<Candidate> kept;
  for (auto& c : cands) {
    bool dup = false;
    for (auto& k : kept)
      if (k.explained == c.explained && std::abs(k.sol.residual_rel - c.sol.residual_rel) < 1e-6 &&
          std::abs(k.sol.score - c.sol.score) < 1e-6) {
        if (nicest({k.sol.zone_uvw, c.sol.zone_uvw}) != k.sol.zone_uvw)
          k = c;
        dup = true;
        break;
      }
    if (!dup)
      kept.push_back(c);
    if (int(kept.size()) >= spec.max_solutions && !dup)
      break;
  }
  for (auto& k : kept)
    out.push_back(k.sol);
  return out;
}

}  // namespace

namespace {

// Zones the same up to the point group (and the sign: ±[uvw] is one axis seen from either side).
bool equivalent_zones(const Phase& phase, const Vec3& a, const Vec3& b) {
  for (const auto& op : phase.crystal.symops) {
    const Vec3 b2 = op.rot.inverse() * b;
    if ((b2 - a).norm() < 1e-6 || (b2 + a).norm() < 1e-6)
      return true;
  }
  return (a - b).norm() < 1e-6 || (a + b).norm() < 1e-6;
}

// What the loser lacks compared with the winner, largest difference first.
std::string why_lost(const ZoneSolution& win, const ZoneSolution& lose) {
  std::vector<std::pair<double, std::string>> r;
  char buf[160];
  const int dn = int(win.spots.size()) - int(lose.spots.size());
  if (dn != 0) {
    std::snprintf(buf, sizeof buf, "explains %zu spots vs %zu", lose.spots.size(), win.spots.size());
    r.push_back({std::abs(dn) + 0.0, buf});
  }
  if (dn == 0 && win.explained_weight - lose.explained_weight > 0.25) {
    std::snprintf(buf, sizeof buf, "explains weaker spots (weight %.1f vs %.1f)", lose.explained_weight, win.explained_weight);
    r.push_back({win.explained_weight - lose.explained_weight, buf});
  }
  if (lose.completeness < win.completeness - 0.05) {
    std::snprintf(buf, sizeof buf, "misses predicted strong reflections (completeness %.0f %% vs %.0f %%)",
                  100 * lose.completeness, 100 * win.completeness);
    r.push_back({5 * (win.completeness - lose.completeness), buf});
  }
  if (lose.residual_rel > win.residual_rel * 1.2) {
    std::snprintf(buf, sizeof buf, "larger residual (%.2f %% vs %.2f %%)", 100 * lose.residual_rel, 100 * win.residual_rel);
    r.push_back({(lose.residual_rel - win.residual_rel) * 100, buf});
  }
  if (r.empty())
    return "nearly as good: the assignment is uncertain";
  std::sort(r.begin(), r.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string out = r[0].second;
  for (size_t i = 1; i < r.size(); ++i)
    out += "; " + r[i].second;
  return out;
}

}  // namespace

ZoneIndexing index_zone(const std::vector<Spot>& spots, const std::vector<Phase>& phases, const ZoneSpec& spec) {
  if (phases.empty())
    fail("index_zone: no phase given (e.g. --phase Fe3O4)");
  if (spots.size() < 2)
    fail("index_zone: need at least 2 spots (non-collinear) to find a zone axis, got ", spots.size());
  if (spec.max_index < 1 || spec.max_index > 12)
    fail("index_zone: max index must be in 1..12, got ", spec.max_index);
  if (!(spec.tolerance_rel > 0 && spec.tolerance_rel < 0.3))
    fail("index_zone: tolerance must be in (0, 30 %), got ", spec.tolerance_rel * 100, " %");
  if (!(spec.scale_range >= 0 && spec.scale_range <= 0.3))
    fail("index_zone: scale range must be in [0, 30 %] (e.g. --scale-range 5%), got ", spec.scale_range * 100, " %");
  for (const auto& s : spots)
    if (!std::isfinite(s.kx_invA) || !std::isfinite(s.ky_invA) || std::hypot(s.kx_invA, s.ky_invA) <= 0)
      fail("index_zone: spot (", s.kx_invA, ", ", s.ky_invA, ") 1/Å is not a finite non-zero vector");
  ZoneIndexing result;
  result.ranked.assign(phases.size(), {});
  std::vector<int> remaining(spots.size());
  for (size_t i = 0; i < spots.size(); ++i)
    remaining[i] = int(i);
  std::set<int> open_phases;
  for (size_t p = 0; p < phases.size(); ++p)
    open_phases.insert(int(p));
  // Greedy: the phase whose best orientation scores highest takes its spots; the others are
  // solved again on what is left, so one phase cannot borrow another's spots.
  while (!open_phases.empty() && remaining.size() >= 2) {
    int best_phase = -1;
    double best_score = -1e300;
    for (int p : open_phases) {
      result.ranked[size_t(p)] = solve_phase(spots, remaining, phases[size_t(p)], p, spec);
      const auto& r = result.ranked[size_t(p)];
      if (!r.empty() && r[0].score > best_score) {
        best_score = r[0].score;
        best_phase = p;
      }
    }
    if (best_phase < 0)
      break;
    const ZoneSolution& sol = result.ranked[size_t(best_phase)][0];
    result.best.push_back(sol);
    std::set<int> taken;
    for (const auto& s : sol.spots)
      taken.insert(s.spot);
    remaining.erase(std::remove_if(remaining.begin(), remaining.end(), [&](int i) { return taken.count(i) > 0; }),
                    remaining.end());
    open_phases.erase(best_phase);
  }
  result.unexplained = remaining;
  // A best fit can still be no fit: say why, so that it is not reported as a plain result.
  double total_I = 0, unexplained_I = 0, top_I = 0;
  int top = 0;
  for (size_t i = 0; i < spots.size(); ++i) {
    total_I += std::max(0.0, spots[i].intensity);
    if (spots[i].intensity > top_I) {
      top_I = spots[i].intensity;
      top = int(i);
    }
  }
  for (int i : remaining)
    unexplained_I += std::max(0.0, spots[size_t(i)].intensity);
  const bool top_unexplained = std::find(remaining.begin(), remaining.end(), top) != remaining.end();
  for (auto& sol : result.best) {
    char buf[320];
    std::string c;
    auto add = [&](const char* text) { c += (c.empty() ? "" : "; ") + std::string(text); };
    if (spec.scale_range > 0 && std::abs(sol.scale - 1) >= 0.995 * spec.scale_range) {
      std::snprintf(buf, sizeof buf, "the fitted scale %.4f is at the edge of the ±%.3g %% search, so the true one "
                    "lies outside it or the phase is wrong (check the calibration; --scale-range)", sol.scale,
                    100 * spec.scale_range);
      add(buf);
    }
    if (sol.completeness < spec.min_completeness) {
      std::snprintf(buf, sizeof buf, "only %.0f %% of the strong predicted reflections inside the measured |g| "
                    "range are seen (wrong phase or zone?)", 100 * sol.completeness);
      add(buf);
    }
    if (top_unexplained && total_I > 0 && unexplained_I > 0.5 * total_I) {
      std::snprintf(buf, sizeof buf, "%.0f %% of the spot intensity, the strongest spot (d %.3f Å) included, is "
                    "explained by no phase given (another phase?)", 100 * unexplained_I / total_I,
                    1 / std::hypot(spots[size_t(top)].kx_invA, spots[size_t(top)].ky_invA));
      add(buf);
    }
    sol.caveat = c;
  }
  for (const auto& win : result.best) {
    const Phase& ph = phases[size_t(win.phase)];
    const ZoneSolution* second = nullptr;
    for (const auto& c : result.ranked[size_t(win.phase)])
      if (!equivalent_zones(ph, win.zone_uvw, c.zone_uvw)) {
        second = &c;
        break;
      }
    result.runner_up.push_back(second ? *second : ZoneSolution{});
    result.runner_up_found.push_back(second != nullptr);
    result.runner_up_reason.push_back(second ? why_lost(win, *second) : std::string());
  }
  return result;
}

// ---------------------------------------------------------------- orientation relationship

namespace {

// The phase's in-zone reflections (members), lowest index (largest d) first.
std::vector<Vec3> zone_reflections(const Phase& phase, const Vec3& zone, int max_families) {
  std::vector<Vec3> out;
  int n_fam = 0;
  for (const auto& f : phase.families) {
    if (!f.kinematic_allowed)
      continue;
    bool any = false;
    for (const auto& h : f.members)
      if (std::abs(h.dot(zone)) < 1e-6) {
        out.push_back(h);
        any = true;
      }
    if (any && ++n_fam >= max_families)
      break;
  }
  return out;
}

double wrap90(double a) {
  while (a > 90)
    a -= 180;
  while (a <= -90)
    a += 180;
  return a;
}

}  // namespace

std::string OrientationRelationship::describe(const std::string& name_a, const std::string& name_b) const {
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(2);
  os << "[" << hkl_string(zone_a) << "]_" << name_a << " // [" << hkl_string(zone_b) << "]_" << name_b
     << " (beam), (" << hkl_string(plane_a) << ")_" << name_a << " // (" << hkl_string(plane_b) << ")_"
     << name_b << " rotated by " << relative_rotation_deg << " deg about the beam";
  return os.str();
}

OrientationRelationship orientation_relationship(const ZoneSolution& a, const Phase& phase_a,
                                                 const ZoneSolution& b, const Phase& phase_b,
                                                 const std::vector<Spot>& spots) {
  const auto ra = zone_reflections(phase_a, a.zone_uvw, 3);
  const auto rb = zone_reflections(phase_b, b.zone_uvw, 3);
  if (ra.empty() || rb.empty())
    fail("orientation relationship: no allowed in-zone reflections for ", ra.empty() ? phase_a.name : phase_b.name);
  // The most nearly parallel pair of low-index plane normals on screen (± are the same planes).
  OrientationRelationship o;
  // Σ|g|² over the measured orders ±n·h: how well the spots fix the direction of the planes h.
  auto measured_weight = [&](const ZoneSolution& s, const Vec3& h) {
    double w = 0;
    for (const auto& is : s.spots)
      if (is.hkl.cross(h).norm() < 1e-6 && is.hkl.norm() > 1e-6 && is.spot >= 0 && size_t(is.spot) < spots.size())
        w += std::pow(spots[size_t(is.spot)].kx_invA, 2) + std::pow(spots[size_t(is.spot)].ky_invA, 2);
    return w;
  };
  double best = 1e300, best_weight = -1;
  Vec3 ha, hb;
  for (const auto& x : ra)
    for (const auto& y : rb) {
      const double d = wrap90(b.direction_deg(y) - a.direction_deg(x));
      // Prefer low indices among equally parallel pairs (0.5° ≈ noise of a measured direction).
      const double cost = std::abs(d) + 0.5 * (x.cwiseAbs().sum() + y.cwiseAbs().sum());
      // Symmetry-equivalent pairs tie (one rigid rotation): take the best-measured one.
      const double weight = measured_weight(a, x) + measured_weight(b, y);
      if (cost < best - 1e-6 || (cost < best + 1e-6 && weight > best_weight)) {
        best = std::min(best, cost);
        best_weight = weight;
        ha = x;
        hb = y;
      }
    }
  // Use the same sign for both (g and −g are one plane): the one pointing the same way.
  if (std::abs(b.direction_deg(hb) - a.direction_deg(ha)) > 90 &&
      std::abs(b.direction_deg(hb) - a.direction_deg(ha)) < 270)
    hb = -hb;
  o.zone_a = a.zone_uvw;
  o.zone_b = b.zone_uvw;
  o.plane_a = ha;
  o.plane_b = hb;
  // Relabel b by its point group so that its plane and zone carry a's indices where possible
  // (cube-on-cube reads as (−111) // (−111)); h → Rᵀh, [uvw] → R⁻¹[uvw] keeps h·u = 0.
  for (const auto& op : phase_b.crystal.symops) {
    const Vec3 h2 = op.rot.transpose() * hb;
    const Vec3 z2 = op.rot.inverse() * b.zone_uvw;
    if ((h2 - ha).norm() < 1e-6 && (z2 - a.zone_uvw).norm() < 1e-6 && op.rot.determinant() > 0) {
      o.plane_b = h2;
      o.zone_b = z2;
      break;
    }
  }
  const Vec3 ga = a.screen_g_invA(ha), gb = b.screen_g_invA(hb);
  o.fitted_rotation_deg = angle_deg(ga[0], ga[1], gb[0], gb[1]);
  o.relative_rotation_deg = o.fitted_rotation_deg;
  // The measured normal of the planes h: every measured order ±n·h of the solution, oriented
  // like the fitted g(h), weighted by |g|² (a peak's position error is about the same in 1/Å
  // at any |g|, so its direction error falls as 1/|g|). On a small crystal's image the first
  // order alone can be off by 0.4° (Fe3O4 111 of the nife-fe3o4 preset, 13 reciprocal pixels out).
  auto measured = [&](const ZoneSolution& s, const Vec3& h, const Vec3& g, Eigen::Vector2d& v) {
    v = Eigen::Vector2d::Zero();
    bool any = false;
    for (const auto& is : s.spots) {
      if (is.hkl.cross(h).norm() > 1e-6 || is.hkl.norm() < 1e-6 || is.spot < 0 || size_t(is.spot) >= spots.size())
        continue;
      Eigen::Vector2d u(spots[size_t(is.spot)].kx_invA, spots[size_t(is.spot)].ky_invA);
      if (u.dot(Eigen::Vector2d(g[0], g[1])) < 0)
        u = -u;
      v += u * u.norm();
      any = true;
    }
    return any;
  };
  Eigen::Vector2d va, vb;
  if (measured(a, ha, ga, va) && measured(b, hb, gb, vb)) {
    o.relative_rotation_deg = angle_deg(va[0], va[1], vb[0], vb[1]);
    o.from_spots = true;
  }
  o.plane_angle_deg = std::abs(o.relative_rotation_deg);
  return o;
}

// ---------------------------------------------------------------- calibration

Calibration calibrate_scale(const std::vector<double>& measured, const Phase& reference, double tolerance_rel) {
  if (measured.empty())
    fail("calibration: no measured rings or peaks");
  for (double m : measured)
    if (!(m > 0) || !std::isfinite(m))
      fail("calibration: measured values must be positive, got ", m);
  std::vector<const ReflectionFamily*> fams;
  for (const auto& f : reference.families)
    if (f.kinematic_allowed)
      fams.push_back(&f);
  if (fams.empty())
    fail("calibration: reference phase '", reference.name, "' has no allowed reflections");
  // Try every (measured, reflection) pairing as the scale; keep the one matching most values.
  auto match = [&](double scale, Calibration& c) {
    c = Calibration{};
    c.scale = scale;
    double sum_e2 = 0;
    for (double m : measured) {
      SpacingCandidate best;
      double best_e = 1e300;
      for (const auto* f : fams) {
        const double e = (scale * m - 1.0 / f->d_A) * f->d_A;
        if (std::abs(e) < std::abs(best_e)) {
          best_e = e;
          best.phase_name = reference.name;
          best.hkl = {f->hkl};
          best.d_A = f->d_A;
          best.error_rel = e;
          best.intensity_rel = f->intensity_rel;
        }
      }
      if (std::abs(best_e) <= tolerance_rel) {
        ++c.n_matched;
        sum_e2 += best_e * best_e;
        c.matched.push_back(best);
      } else {
        c.matched.push_back(SpacingCandidate{});
      }
    }
    c.residual_rel = c.n_matched ? std::sqrt(sum_e2 / c.n_matched) : 1e300;
  };
  Calibration best;
  best.n_matched = -1;
  for (double m : measured)
    for (const auto* f : fams) {
      Calibration c;
      match(1.0 / (f->d_A * m), c);
      // Least squares over the matched: minimise Σ (s·m/g − 1)².
      double num = 0, den = 0;
      for (size_t i = 0; i < measured.size(); ++i)
        if (!c.matched[i].hkl.empty()) {
          const double x = measured[i] * c.matched[i].d_A;
          num += x;
          den += x * x;
        }
      if (den > 0)
        match(num / den, c);
      if (c.n_matched > best.n_matched || (c.n_matched == best.n_matched && c.residual_rel < best.residual_rel))
        best = c;
    }
  if (best.n_matched < 1)
    fail("calibration: no measured value matches a ", reference.name, " reflection");
  return best;
}

}  // namespace epitem

namespace epitem {

std::vector<Spot> read_spots_csv(const std::string& path, const SpotCsvOptions& options, SpotCsvInfo* info) {
  require_readable(path, "spot list");
  {
    std::ifstream probe(path, std::ios::binary);
    std::string head(256, '\0');
    probe.read(&head[0], 256);
    head.resize(size_t(probe.gcount()));
    if (std::any_of(head.begin(), head.end(), [](char c) { return c == 0; }))
      fail(path, ": not a text CSV (binary file?); give the CSV of epitem fft or index (kx,ky), saed (gx,gy) or track");
  }
  const CsvTable t = read_csv_table(path, "spot list");
  auto col = [&](std::initializer_list<const char*> names) {
    for (const char* n : names)
      if (t.column(n) >= 0)
        return t.column(n);
    return -1;
  };
  const int ix = col({"kx", "gx", "kx_invA", "gx_invA", "kx_inv_A", "gx_inv_A"});
  const int iy = col({"ky", "gy", "ky_invA", "gy_invA", "ky_inv_A", "gy_inv_A"});
  const int ig = col({"g_inv_A", "g_invA", "g"});
  const int iaz = col({"azimuth_deg"});
  const int ii = col({"intensity", "mean_intensity"});
  const int iframe = col({"frame"});
  const int ifirst = col({"first_frame"}), ilast = col({"last_frame"});
  const bool vectors = ix >= 0 && iy >= 0;
  const bool polar = !vectors && ig >= 0 && iaz >= 0;
  if (!vectors && !polar) {
    std::string header;
    for (const auto& h : t.header)
      header += (header.empty() ? "" : ",") + h;
    fail(path, ": no reciprocal vectors in the header '", header, "': need kx,ky (epitem fft/index), gx,gy (saed), ",
         "gx_inv_A,gy_inv_A (track --detections) or g_inv_A,azimuth_deg (track); a list of |g| or d alone ",
         "goes to --spacings");
  }
  auto num = [&](size_t row, int c, const char* what) {
    const auto& f = t.rows[row];
    if (c >= int(f.size()) || f[size_t(c)].empty())
      fail(path, " line ", t.line_numbers[row], ": missing column ", what, " (", t.header[size_t(c)], ")");
    try {
      size_t used = 0;
      const double v = std::stod(f[size_t(c)], &used);
      if (!std::isfinite(v) || used != f[size_t(c)].size())
        throw std::invalid_argument("not a number");
      return v;
    } catch (const std::exception&) {
      fail(path, " line ", t.line_numbers[row], ": ", what, " (", t.header[size_t(c)], ") is not a number: '",
           f[size_t(c)], "'");
    }
  };
  // Movies: the frame each row belongs to (detections) or the frames a track spans.
  const bool detections = iframe >= 0;
  const bool tracks = !detections && ifirst >= 0 && ilast >= 0;
  std::map<int, int> per_frame;
  if (detections)
    for (size_t r = 0; r < t.rows.size(); ++r)
      ++per_frame[int(num(r, iframe, "frame"))];
  if (tracks)
    for (size_t r = 0; r < t.rows.size(); ++r)
      for (int f = int(num(r, ifirst, "first_frame")); f <= int(num(r, ilast, "last_frame")); ++f)
        ++per_frame[f];
  int frame = -1;
  std::string note;
  if (detections || tracks) {
    if (per_frame.empty())
      fail(path, ": no rows; the movie has no detected spots");
    if (options.frame >= 0) {
      if (!per_frame.count(options.frame))
        fail(path, ": frame ", options.frame, " has no spots (frames ", per_frame.begin()->first, "-",
             per_frame.rbegin()->first, "); choose another with --frame");
      frame = options.frame;
      note = "frame " + std::to_string(frame) + " (--frame)";
    } else {
      frame = per_frame.begin()->first;
      for (const auto& [f, n] : per_frame)
        if (n > per_frame[frame])
          frame = f;
      note = "frame " + std::to_string(frame) + ", the one with most spots (" + std::to_string(per_frame[frame]) +
             "); choose another with --frame";
    }
  } else if (options.frame >= 0) {
    fail(path, ": --frame ", options.frame, " given, but the file is a single spot list (no frame column)");
  }
  std::vector<Spot> spots;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    if (detections && int(num(r, iframe, "frame")) != frame)
      continue;
    if (tracks && (num(r, ifirst, "first_frame") > frame || num(r, ilast, "last_frame") < frame))
      continue;
    Spot s;
    if (vectors) {
      s.kx_invA = num(r, ix, "kx");
      s.ky_invA = num(r, iy, "ky");
    } else {
      const double g = num(r, ig, "|g|"), az = num(r, iaz, "azimuth") * units::deg_to_rad;
      s.kx_invA = g * std::cos(az);
      s.ky_invA = g * std::sin(az);
    }
    if (ii >= 0)
      s.intensity = num(r, ii, "intensity");
    if (std::hypot(s.kx_invA, s.ky_invA) > 1e-9)
      spots.push_back(s);
  }
  if (info) {
    info->format = detections ? "track detections" : tracks ? "tracks" : "spot list";
    info->frame = frame;
    info->frames = int(per_frame.size());
    info->note = std::string(vectors ? "columns " + t.header[size_t(ix)] + "," + t.header[size_t(iy)]
                                     : "columns " + t.header[size_t(ig)] + ",azimuth_deg") +
                 (ii >= 0 ? "," + t.header[size_t(ii)] : "") + (note.empty() ? "" : "; " + note);
  }
  return spots;
}

}  // namespace epitem
