// Synthetic SAED movies with known truth. (1) make_synthetic_saed_movie: Friedel pairs of Fe3O4 (Fd-3m) and NiFe (fcc)
// [110]-zone reflections of randomly rotated grains appear and disappear at known frames, on a
// diffuse background with two polycrystalline rings, an elliptical distortion, a beam stop and
// Poisson noise. Spot positions come from the lattice geometry (lattice.hpp) and the extinction
// rules of docs/formulas.md §7 (spinel: F-centring, 0kl k+l=4n, h00 h=4n; fcc: F-centring).
#pragma once
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "epitem/image.hpp"
#include "epitem/indexing.hpp"
#include "epitem/lattice.hpp"
#include "epitem/pattern_geometry.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"

namespace epitem::testing {

struct SyntheticSpot {
  std::string phase, hkl;          ///< truth label ("Fe3O4", "311")
  double g_invA = 0;               ///< |g| [1/Å]
  double x_px = 0, y_px = 0;       ///< distorted detector position [px]
  int birth = 0, death = 0;        ///< first and last frame (inclusive)
  int blink_frame = -1;            ///< one frame inside the life where the spot is missing
  double snr = 0;                  ///< peak height / √(local background)
  bool visible(int f) const { return f >= birth && f <= death && f != blink_frame; }
};

struct SyntheticMovieSpec {
  int size_px = 512;
  int n_frames = 40;
  double pixel_size_invA = 0.004;          ///< along the mean radius
  double cx_px = 255.3, cy_px = 258.6;     ///< true centre
  double axis_ratio = 1.012;               ///< a/b of the distortion ellipse
  double angle_deg = 25;                   ///< major axis, CCW from +x (y up)
  double spot_sigma_px = 1.5;
  double snr_min = 5, snr_max = 10;        ///< peak / √background, uniform
  int n_pairs = 60;                        ///< Friedel pairs (each two spots)
  double g_min_invA = 0.18, g_max_invA = 0.85;
  double beam_stop_radius_px = 18, beam_stop_arm_width_px = 14, beam_stop_arm_deg = -60;
  double fe3o4_a_A = 8.396, nife_a_A = 3.56;
  unsigned seed = 12345;
};

struct SyntheticMovie {
  std::vector<Image> frames;
  std::vector<SyntheticSpot> spots;
  Ellipse ring_ellipse;                    ///< the distorted Fe3O4 311 ring (truth)
  double semi_major_scale = 1, semi_minor_scale = 1;  ///< distortion along/across the major axis
  std::vector<ReferenceRing> references;   ///< every [110]-zone family of both phases
  std::vector<ReferenceRing> ring_references;  ///< the two drawn rings
};

/// [110]-zone reflections (h, −h, l) of a cubic phase, one per distinct (|h|,|l|) family
/// representative, with 2-D in-plane g = (√2·h, l)/a [1/Å].
inline std::vector<std::pair<std::string, Vec2>> zone110_reflections(bool spinel, double a_A,
                                                                       double g_max_invA) {
  std::vector<std::pair<std::string, Vec2>> out;
  const int n = int(std::ceil(g_max_invA * a_A)) + 1;
  Lattice lat(a_A, a_A, a_A, 90, 90, 90);
  for (int h = -n; h <= n; ++h)
    for (int l = -n; l <= n; ++l) {
      if (h == 0 && l == 0)
        continue;
      bool all_odd = (h % 2 != 0) && (l % 2 != 0), all_even = h % 2 == 0 && l % 2 == 0;
      if (!all_odd && !all_even)
        continue;  // F-centring
      if (spinel && h == 0 && l % 4 != 0)
        continue;  // 00l: l = 4n
      double g = lat.g_length_invA(Vec3(h, -h, l));
      if (g > g_max_invA)
        continue;
      int p[3] = {std::abs(h), std::abs(h), std::abs(l)};
      std::sort(p, p + 3, std::greater<int>());
      std::string label = std::to_string(p[0]) + std::to_string(p[1]) + std::to_string(p[2]);
      out.emplace_back(label, Vec2(std::sqrt(2.0) * h / a_A, l / a_A));
    }
  return out;
}

inline SyntheticMovie make_synthetic_saed_movie(const SyntheticMovieSpec& s) {
  SyntheticMovie m;
  std::mt19937 rng(s.seed);
  std::uniform_real_distribution<double> uni(0, 1);
  const double phi = s.angle_deg * units::deg_to_rad;
  // Area-neutral split of the distortion: the mean radius (a+b)/2 stays the undistorted one.
  m.semi_major_scale = 2 * s.axis_ratio / (1 + s.axis_ratio);
  m.semi_minor_scale = 2 / (1 + s.axis_ratio);
  auto to_detector = [&](Vec2 u_px) {  // undistorted y-up offset → detector pixel
    double along = std::cos(phi) * u_px.x() + std::sin(phi) * u_px.y();
    double across = -std::sin(phi) * u_px.x() + std::cos(phi) * u_px.y();
    along *= m.semi_major_scale;
    across *= m.semi_minor_scale;
    Vec2 d(std::cos(phi) * along - std::sin(phi) * across, std::sin(phi) * along + std::cos(phi) * across);
    return Vec2(s.cx_px + d.x(), s.cy_px - d.y());
  };
  auto blocked = [&](double x, double y, double margin) {
    double dx = x - s.cx_px, dy = -(y - s.cy_px);
    if (std::hypot(dx, dy) < s.beam_stop_radius_px + margin)
      return true;
    double t = s.beam_stop_arm_deg * units::deg_to_rad;
    double along = dx * std::cos(t) + dy * std::sin(t), across = -dx * std::sin(t) + dy * std::cos(t);
    return along > 0 && std::abs(across) < 0.5 * s.beam_stop_arm_width_px + margin;
  };
  struct Phase {
    std::string name;
    std::vector<std::pair<std::string, Vec2>> refl;
  };
  std::vector<Phase> phases = {{"Fe3O4", zone110_reflections(true, s.fe3o4_a_A, s.g_max_invA)},
                               {"NiFe", zone110_reflections(false, s.nife_a_A, s.g_max_invA)}};
  for (const auto& p : phases) {
    std::vector<std::string> seen;
    for (const auto& [label, g] : p.refl)
      if (std::find(seen.begin(), seen.end(), label) == seen.end()) {
        seen.push_back(label);
        m.references.push_back({p.name, label, g.norm()});
      }
  }
  // Pairs: a random grain rotation, a reflection of its [110] pattern, ±g, one life window.
  const double min_sep_px = 8 * s.spot_sigma_px / 1.5;
  int attempts = 0;
  while (int(m.spots.size()) < 2 * s.n_pairs && ++attempts < 100000) {
    const Phase& ph = phases[uni(rng) < 0.5 ? 0 : 1];
    const auto& [label, g2] = ph.refl[size_t(uni(rng) * double(ph.refl.size())) % ph.refl.size()];
    if (g2.norm() < s.g_min_invA)
      continue;
    double th = 2 * PI * uni(rng);
    Vec2 g(std::cos(th) * g2.x() - std::sin(th) * g2.y(), std::sin(th) * g2.x() + std::cos(th) * g2.y());
    int birth = int(uni(rng) * s.n_frames);
    int life = 3 + int(uni(rng) * 18);
    int death = std::min(s.n_frames - 1, birth + life - 1);
    if (death - birth < 2)
      continue;
    int blink = uni(rng) < 0.15 && death - birth >= 4 ? birth + 2 : -1;
    SyntheticSpot pair[2];
    bool ok = true;
    for (int k = 0; k < 2; ++k) {
      Vec2 p = to_detector((k ? -g : g) / s.pixel_size_invA);
      pair[k] = {ph.name, label, g.norm(), p.x(), p.y(), birth, death, blink,
                 s.snr_min + (s.snr_max - s.snr_min) * uni(rng)};
      if (p.x() < 8 || p.y() < 8 || p.x() > s.size_px - 9 || p.y() > s.size_px - 9 ||
          blocked(p.x(), p.y(), 6))
        ok = false;
      // Spots alive at nearly the same time must not overlap (gap closing reaches 3 frames).
      for (const auto& o : m.spots)
        if (o.birth <= death + 3 && birth <= o.death + 3 &&
            std::hypot(o.x_px - p.x(), o.y_px - p.y()) < min_sep_px)
          ok = false;
    }
    if (!ok)
      continue;
    m.spots.push_back(pair[0]);
    m.spots.push_back(pair[1]);
  }
  // Rings: Fe3O4 311 and NiFe 200 (polycrystalline fraction), drawn with the distortion.
  const double g_ring1 = Lattice(s.fe3o4_a_A, s.fe3o4_a_A, s.fe3o4_a_A, 90, 90, 90).g_length_invA(Vec3(3, 1, 1));
  const double g_ring2 = Lattice(s.nife_a_A, s.nife_a_A, s.nife_a_A, 90, 90, 90).g_length_invA(Vec3(2, 0, 0));
  m.ring_references = {{"Fe3O4", "311", g_ring1}, {"NiFe", "200", g_ring2}};
  const double r1 = g_ring1 / s.pixel_size_invA;
  m.ring_ellipse = {s.cx_px, s.cy_px, r1 * m.semi_major_scale, r1 * m.semi_minor_scale, s.angle_deg};
  const double r2 = g_ring2 / s.pixel_size_invA;
  // Noise-free background: diffuse exp(−r/60) + rings (Gaussian profile across the ring).
  Image bg(s.size_px, s.size_px);
  for (int y = 0; y < s.size_px; ++y)
    for (int x = 0; x < s.size_px; ++x) {
      double dx = x - s.cx_px, dy = -(y - s.cy_px);
      double along = std::cos(phi) * dx + std::sin(phi) * dy, across = -std::sin(phi) * dx + std::cos(phi) * dy;
      double r = std::hypot(along / m.semi_major_scale, across / m.semi_minor_scale);
      double v = 40 + 400 * std::exp(-r / 60) + 40 * std::exp(-0.5 * std::pow((r - r1) / 1.5, 2)) +
                 25 * std::exp(-0.5 * std::pow((r - r2) / 1.5, 2));
      bg.at(x, y) = float(blocked(x, y, 0) ? 2.0 : v);
    }
  for (int f = 0; f < s.n_frames; ++f) {
    Image mean = bg;
    for (const auto& sp : m.spots) {
      if (!sp.visible(f))
        continue;
      const double amp = sp.snr * std::sqrt(bg.at(int(std::lround(sp.x_px)), int(std::lround(sp.y_px))));
      const int r = int(std::ceil(4 * s.spot_sigma_px));
      for (int y = int(sp.y_px) - r; y <= int(sp.y_px) + r + 1; ++y)
        for (int x = int(sp.x_px) - r; x <= int(sp.x_px) + r + 1; ++x)
          if (x >= 0 && y >= 0 && x < s.size_px && y < s.size_px && !blocked(x, y, 0))
            mean.at(x, y) += float(amp * std::exp(-0.5 * (std::pow(x - sp.x_px, 2) + std::pow(y - sp.y_px, 2)) /
                                                  (s.spot_sigma_px * s.spot_sigma_px)));
    }
    for (float& v : mean.pixels)
      v = float(std::poisson_distribution<int>(double(v))(rng));
    m.frames.push_back(std::move(mean));
  }
  return m;
}

// ---- (2) make_insitu_saed_movie: a realistic in-situ SAED movie ----
// Grains of Fe3O4 and NiFe in a [110] zone at random in-plane rotations; each reflection of a
// grain appears and vanishes at its own random times, and its Friedel mate is seen only
// sometimes (and then at other times), so most spots have no mate in a given frame. The true g
// vectors come from the project's kinematic tables (make_phase: allowed families, members);
// nothing here decides what is detected. Nuisances: centre off the frame centre, a beam stop
// over the direct beam with an arm along one side of the centre row, a 1 % elliptical
// distortion without any ring, diffuse background, Poisson noise, an optional detector offset.

struct InSituMovieSpec {
  int size_px = 384;
  int n_frames = 16;
  double pixel_size_invA = 0.005;          ///< along the mean radius
  double centre_offset_px = 25;            ///< |centre − frame centre| up to this, random
  double axis_ratio = 1.01;                ///< a/b of the distortion (angle random)
  double spot_sigma_px = 1.5;
  double snr_min = 6, snr_max = 12;        ///< peak / √background
  int n_grains = 14;
  int reflections_per_grain = 4;           ///< in-zone reflections drawn per grain
  double mate_probability = 0.4;           ///< chance that −g is ever seen (at its own times)
  double near_stop_fraction = 0.25;        ///< reflections turned to lie 3.5–6 px from the beam-stop arm
  double g_min_invA = 0.18, g_max_invA = 0.76;  ///< below NiFe 220 / Fe3O4 533 (nearly equal |g|)
  double beam_stop_radius_px = 12, beam_stop_arm_width_px = 10;
  double background_counts = 30, halo_counts = 300, halo_length_px = 50;
  double offset_counts = 0;                ///< added after the Poisson draw (negative: signed data)
  unsigned seed = 1;
};

struct InSituSpot {
  std::string phase, hkl;                  ///< truth ("Fe3O4", "311")
  double g_invA = 0;
  double x_px = 0, y_px = 0;               ///< distorted detector position
  int birth = 0, death = 0, blink_frame = -1;
  bool visible(int f) const { return f >= birth && f <= death && f != blink_frame; }
};

struct InSituMovie {
  std::vector<Image> frames;
  std::vector<InSituSpot> spots;
  double cx_px = 0, cy_px = 0;             ///< true centre
  double axis_ratio = 1, angle_deg = 0;    ///< true distortion (major axis CCW from +x, y up)
  std::vector<Phase> phases;               ///< Fe3O4 and NiFe (for indexing in the test)
  bool blocked(double x, double y, double margin) const;
  double stop_radius_px = 0, arm_half_width_px = 0;
  int arm_side = 1;                        ///< +1: the arm runs to +x
};

inline bool InSituMovie::blocked(double x, double y, double margin) const {
  const double dx = x - cx_px, dy = y - cy_px;
  return std::hypot(dx, dy) < stop_radius_px + margin ||
         (dx * arm_side > 0 && std::abs(dy) < arm_half_width_px + margin);
}

inline InSituMovie make_insitu_saed_movie(const InSituMovieSpec& s) {
  InSituMovie m;
  std::mt19937 rng(s.seed);
  std::uniform_real_distribution<double> uni(0, 1);
  m.cx_px = 0.5 * s.size_px + s.centre_offset_px * (2 * uni(rng) - 1);
  m.cy_px = 0.5 * s.size_px + s.centre_offset_px * (2 * uni(rng) - 1);
  m.axis_ratio = s.axis_ratio;
  m.angle_deg = 180 * uni(rng) - 90;
  m.stop_radius_px = s.beam_stop_radius_px;
  m.arm_half_width_px = 0.5 * s.beam_stop_arm_width_px;
  m.arm_side = uni(rng) < 0.5 ? -1 : 1;
  const double phi = m.angle_deg * units::deg_to_rad;
  const double ka = 2 * s.axis_ratio / (1 + s.axis_ratio), kb = 2 / (1 + s.axis_ratio);
  auto to_detector = [&](Vec2 g_invA) {  // y-up reciprocal vector → distorted detector pixel
    const Vec2 u = g_invA / s.pixel_size_invA;
    double along = std::cos(phi) * u.x() + std::sin(phi) * u.y();
    double across = -std::sin(phi) * u.x() + std::cos(phi) * u.y();
    along *= ka;
    across *= kb;
    return Vec2(m.cx_px + std::cos(phi) * along - std::sin(phi) * across,
                m.cy_px - (std::sin(phi) * along + std::cos(phi) * across));
  };
  // In-zone reflections of each phase: members h with h·[110] = 0, kinematically allowed.
  struct Refl {
    int phase;
    std::string hkl;
    Vec2 g;  // in the zone plane, [001] along +y
  };
  std::vector<Refl> refl;
  for (const char* name : {"Fe3O4", "NiFe"}) {
    Phase ph = make_phase(read_crystal(name));
    const Vec3 zone(1, 1, 0);
    const Mat3 R = rotation_beam_to_z(ph.crystal.lattice.direct_A() * zone, ph.crystal.lattice.g_invA(Vec3(0, 0, 1)));
    for (const auto& fam : ph.families) {
      if (!fam.kinematic_allowed || fam.intensity_rel < 0.01)
        continue;
      for (const Vec3& h : fam.members) {
        const Vec3 g = R * ph.crystal.lattice.g_invA(h);
        if (std::abs(h.dot(zone)) > 1e-9 || g.norm() < s.g_min_invA || g.norm() > s.g_max_invA)
          continue;
        std::string label;
        for (int k = 0; k < 3; ++k)
          label += std::to_string(std::lround(std::abs(fam.hkl(k))));
        refl.push_back({int(m.phases.size()), label, Vec2(g.x(), g.y())});
      }
    }
    m.phases.push_back(std::move(ph));
  }
  const double min_sep_px = 8 * s.spot_sigma_px / 1.5;
  auto place = [&](const Refl& r, double theta, int birth) {
    const Vec2 g(std::cos(theta) * r.g.x() - std::sin(theta) * r.g.y(),
                 std::sin(theta) * r.g.x() + std::cos(theta) * r.g.y());
    const Vec2 p = to_detector(g);
    InSituSpot sp{m.phases[size_t(r.phase)].name, r.hkl, g.norm(), p.x(), p.y(), birth,
                  std::min(s.n_frames - 1, birth + 2 + int(uni(rng) * 9)), -1};
    if (sp.death - sp.birth >= 4 && uni(rng) < 0.1)
      sp.blink_frame = sp.birth + 2;
    // Spot centres anywhere on the frame outside the shadow: right up to its edge (3.5 px).
    if (p.x() < 6 || p.y() < 6 || p.x() > s.size_px - 7 || p.y() > s.size_px - 7 || m.blocked(p.x(), p.y(), 3.5))
      return;
    for (const auto& o : m.spots)  // spots close in time must not overlap (gap closing: 3 frames)
      if (o.birth <= sp.death + 3 && sp.birth <= o.death + 3 && std::hypot(o.x_px - sp.x_px, o.y_px - sp.y_px) < min_sep_px)
        return;
    m.spots.push_back(sp);
  };
  for (int grain = 0; grain < s.n_grains; ++grain) {
    const int phase = uni(rng) < 0.5 ? 0 : 1;
    const double theta = 2 * PI * uni(rng);
    std::vector<const Refl*> mine;
    for (const auto& r : refl)
      if (r.phase == phase)
        mine.push_back(&r);
    for (int k = 0; k < s.reflections_per_grain; ++k) {
      const Refl& r = *mine[size_t(uni(rng) * double(mine.size())) % mine.size()];
      double t = theta;
      if (uni(rng) < s.near_stop_fraction) {  // a sub-grain turned so the spot grazes the arm
        const double r_px = r.g.norm() / s.pixel_size_invA, side = uni(rng) < 0.5 ? -1 : 1;
        const double lateral = m.arm_half_width_px + 3.5 + 2.5 * uni(rng);
        const double arm_dir = m.arm_side > 0 ? 0.0 : PI;  // y-up angle of the arm
        t = arm_dir + side * std::asin(std::min(1.0, lateral / r_px)) - std::atan2(r.g.y(), r.g.x());
      }
      place(r, t, int(uni(rng) * (s.n_frames - 2)));
      if (uni(rng) < s.mate_probability)
        place({r.phase, r.hkl, -r.g}, t, int(uni(rng) * (s.n_frames - 2)));
    }
  }
  Image bg(s.size_px, s.size_px);
  for (int y = 0; y < s.size_px; ++y)
    for (int x = 0; x < s.size_px; ++x) {
      const double dx = x - m.cx_px, dy = -(y - m.cy_px);
      const double along = std::cos(phi) * dx + std::sin(phi) * dy, across = -std::sin(phi) * dx + std::cos(phi) * dy;
      const double r = std::hypot(along / ka, across / kb);
      bg.at(x, y) = float(m.blocked(x, y, 0) ? 1.0 : s.background_counts + s.halo_counts * std::exp(-r / s.halo_length_px));
    }
  for (int f = 0; f < s.n_frames; ++f) {
    Image mean = bg;
    for (const auto& sp : m.spots) {
      if (!sp.visible(f))
        continue;
      const double amp = (s.snr_min + (s.snr_max - s.snr_min) * uni(rng)) *
                         std::sqrt(bg.at(int(std::lround(sp.x_px)), int(std::lround(sp.y_px))));
      const int r = int(std::ceil(4 * s.spot_sigma_px));
      for (int y = int(sp.y_px) - r; y <= int(sp.y_px) + r + 1; ++y)
        for (int x = int(sp.x_px) - r; x <= int(sp.x_px) + r + 1; ++x)
          if (x >= 0 && y >= 0 && x < s.size_px && y < s.size_px && !m.blocked(x, y, 0))
            mean.at(x, y) += float(amp * std::exp(-0.5 * (std::pow(x - sp.x_px, 2) + std::pow(y - sp.y_px, 2)) /
                                                  (s.spot_sigma_px * s.spot_sigma_px)));
    }
    for (float& v : mean.pixels)
      v = float(std::poisson_distribution<int>(double(v))(rng) + s.offset_counts);
    m.frames.push_back(std::move(mean));
  }
  return m;
}

}  // namespace epitem::testing
