#include "epitem/lattice_calibration.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <set>

#include "epitem/error.hpp"
#include "epitem/kinematic.hpp"
#include "epitem/units.hpp"

namespace epitem {

namespace {

using V2 = Eigen::Vector2d;
using M2 = Eigen::Matrix2d;

double cross2(const V2& a, const V2& b) { return a.x() * b.y() - a.y() * b.x(); }

double unsigned_angle_deg(const V2& a, const V2& b) {
  return std::atan2(std::abs(cross2(a, b)), a.dot(b)) / units::deg_to_rad;
}

// Gauss (Lagrange) reduction of a 2-D basis: the two shortest independent lattice vectors.
void gauss_reduce(V2& b1, V2& b2) {
  for (int guard = 0; guard < 100; ++guard) {
    if (b2.squaredNorm() < b1.squaredNorm())
      std::swap(b1, b2);
    const double m = std::round(b1.dot(b2) / b1.squaredNorm());
    if (m == 0)
      break;
    b2 -= m * b1;
  }
}

struct Indexed {
  std::vector<int> peak, n1, n2;
  double rms = 0;
};

// Peaks on the lattice of basis B (columns), with the basis refined by least squares.
// Weights w (peak SNR) make the strong low orders carry the fit: weak high-frequency peaks
// (scan noise) can sit within tolerance of a lattice point by chance.
Indexed index_on(const std::vector<V2>& g, const std::vector<double>& w, M2 B, double tol, M2* refined) {
  Indexed out;
  for (int iter = 0; iter < 3; ++iter) {
    out = Indexed{};
    const M2 inv = B.inverse();
    double ss = 0;
    for (size_t k = 0; k < g.size(); ++k) {
      const V2 n = inv * g[k];
      const V2 r(std::round(n.x()), std::round(n.y()));
      if (r.isZero())
        continue;
      // From a pair of peaks, high orders carry the basis error n times; once refined over
      // all peaks, the basis is good to a fraction of tol and a lattice point means tol.
      const double d = (g[k] - B * r).norm();
      if (d > tol * (iter == 0 ? 1 + 0.25 * r.lpNorm<1>() : 1.0))
        continue;
      out.peak.push_back(int(k));
      out.n1.push_back(int(r.x()));
      out.n2.push_back(int(r.y()));
      ss += d * d;
    }
    out.rms = out.peak.empty() ? 0 : std::sqrt(ss / double(out.peak.size()));
    if (out.peak.size() < 3)
      break;
    M2 nn = M2::Zero(), gn = M2::Zero();
    for (size_t i = 0; i < out.peak.size(); ++i) {
      const V2 n(out.n1[i], out.n2[i]);
      const double wi = w[size_t(out.peak[i])];
      nn += wi * n * n.transpose();
      gn += wi * g[size_t(out.peak[i])] * n.transpose();
    }
    if (std::abs(nn.determinant()) < 1e-9)
      break;
    B = gn * nn.inverse();
  }
  if (refined)
    *refined = B;
  return out;
}

std::string uvw_text(const Vec3& v) {
  std::string s;
  for (int i = 0; i < 3; ++i) {
    const long x = std::lround(v[i]);
    s += x < 0 ? "-" + std::to_string(-x) : std::to_string(x);
  }
  return s;
}

}  // namespace

ImageLattice find_image_lattice(const std::vector<Peak>& peaks, double tol, int max_basis_peaks) {
  std::vector<V2> g;
  std::vector<double> w;
  for (const auto& p : peaks) {
    g.emplace_back(p.kx_invA, p.ky_invA);
    w.push_back(std::max(p.snr, 1e-3));
  }
  // Basis candidates only among the strong peaks: weak satellites (scan-noise sidebands) would
  // otherwise span a finer lattice that indexes everything plus themselves.
  double top = 0;
  for (const auto& p : peaks)
    top = std::max(top, p.intensity);
  std::vector<int> strong;
  for (int k = 0; k < int(peaks.size()) && int(strong.size()) < max_basis_peaks; ++k)
    if (peaks[size_t(k)].intensity >= 0.01 * top)
      strong.push_back(k);
  Indexed best;
  M2 bestB = M2::Zero();
  double best_intensity = -1;
  for (size_t a = 0; a < strong.size(); ++a)
    for (size_t b = a + 1; b < strong.size(); ++b) {
      const V2 &gi = g[size_t(strong[a])], &gj = g[size_t(strong[b])];
      if (std::abs(cross2(gi, gj)) < 0.2 * gi.norm() * gj.norm())
        continue;
      M2 B;
      B << gi, gj;
      M2 refined;
      const Indexed ix = index_on(g, w, B, tol, &refined);
      if (ix.peak.size() < 3)
        continue;
      double intensity = 0;
      for (int k : ix.peak)
        intensity += peaks[size_t(k)].intensity;
      if (intensity > best_intensity) {
        best = ix;
        bestB = refined;
        best_intensity = intensity;
      }
    }
  if (best.peak.size() < 3)
    fail("lattice calibration: only ", best.peak.size(), " of ", peaks.size(),
         " FFT peaks lie on one 2-D lattice (need 3); is the image a crystal lattice in a zone axis?");
  V2 b1 = bestB.col(0), b2 = bestB.col(1);
  gauss_reduce(b1, b2);
  M2 R;
  R << b1, b2;
  const Indexed fin = index_on(g, w, R, tol, &R);
  ImageLattice out;
  V2 r1 = R.col(0), r2 = R.col(1);
  gauss_reduce(r1, r2);  // the refinement keeps the lattice; this keeps the basis reduced
  R << r1, r2;
  const M2 inv = R.inverse();
  out.b1x = r1.x();
  out.b1y = r1.y();
  out.b2x = r2.x();
  out.b2y = r2.y();
  double ss = 0, sw = 0;
  for (int k : fin.peak) {
    const V2 n = inv * g[size_t(k)];
    const V2 r(std::round(n.x()), std::round(n.y()));
    out.peak.push_back(k);
    out.n1.push_back(int(r.x()));
    out.n2.push_back(int(r.y()));
    ss += w[size_t(k)] * (g[size_t(k)] - R * r).squaredNorm();
    sw += w[size_t(k)];
  }
  out.rms_invA = std::sqrt(ss / sw);
  return out;
}

LatticeCalibration calibrate_lattice(const std::vector<Peak>& peaks, const PowerSpectrum& spectrum,
                                     double nominal_x_A, double nominal_y_A, const Phase& reference,
                                     const LatticeCalibrationSpec& spec) {
  if (!(nominal_x_A > 0) || !(nominal_y_A > 0))
    fail("lattice calibration: the nominal pixel size is unknown; give an approximate --pixel-size "
         "(the match accepts ±", 100 * spec.prior_range, " % around it, --prior-range)");
  if (!(spec.prior_range > 0 && spec.prior_range < 0.5))
    fail("lattice calibration: --prior-range must be in (0, 50 %), got ", 100 * spec.prior_range, " %");
  LatticeCalibration out;
  out.nominal_pixel_x_A = nominal_x_A;
  out.nominal_pixel_y_A = nominal_y_A;
  const double tol = 1.5 * std::max(spectrum.dkx_invA, spectrum.dky_invA);
  out.lattice = find_image_lattice(peaks, tol);
  const ImageLattice& L = out.lattice;
  const V2 b1(L.b1x, L.b1y), b2(L.b2x, L.b2y);
  const double len1 = b1.norm(), len2 = b2.norm(), theta = unsigned_angle_deg(b1, b2);
  std::vector<V2> gobs;
  std::vector<double> wobs;
  double total_intensity = 0, top_intensity = 0;
  std::set<std::pair<int, int>> on_lattice;  // (n1, n2) of the lattice peaks, Friedel mates included
  for (size_t i = 0; i < L.peak.size(); ++i) {
    const Peak& p = peaks[size_t(L.peak[i])];
    gobs.emplace_back(p.kx_invA, p.ky_invA);
    wobs.push_back(std::max(p.snr, 1e-3));
    total_intensity += std::max(0.0, p.intensity);
    top_intensity = std::max(top_intensity, p.intensity);
    on_lattice.insert({L.n1[i], L.n2[i]});
    on_lattice.insert({-L.n1[i], -L.n2[i]});
  }
  const Crystal& xtal = reference.crystal;
  const Lattice& lat = xtal.lattice;
  std::map<std::tuple<int, int, int>, bool> forbidden_cache;
  auto forbidden = [&](const Vec3& h) {
    const Miller m{int(std::lround(h[0])), int(std::lround(h[1])), int(std::lround(h[2]))};
    const auto key = std::make_tuple(m[0], m[1], m[2]);
    auto it = forbidden_cache.find(key);
    if (it == forbidden_cache.end())
      it = forbidden_cache.emplace(key, is_kinematically_forbidden(xtal, m)).first;
    return it->second;
  };

  // Zones, one per symmetry-equivalent set.
  const int N = spec.max_zone_index;
  std::set<std::tuple<int, int, int>> seen_zone;
  std::vector<LatticeCandidate> all;
  const double ang_tol_deg = 1.2 * spec.max_distortion / units::deg_to_rad;
  for (int u = -N; u <= N; ++u)
    for (int v = -N; v <= N; ++v)
      for (int w = -N; w <= N; ++w) {
        if (std::gcd(std::gcd(std::abs(u), std::abs(v)), std::abs(w)) != 1)
          continue;
        const Vec3 z(u, v, w);
        std::tuple<int, int, int> key{-99, -99, -99};
        for (const auto& op : xtal.symops)
          for (int sgn : {1, -1}) {
            const Vec3 e = sgn * (op.rot * z);
            key = std::max(key, std::make_tuple(int(std::lround(e[0])), int(std::lround(e[1])), int(std::lround(e[2]))));
          }
        if (xtal.symops.empty())
          key = std::max(std::make_tuple(u, v, w), std::make_tuple(-u, -v, -w));
        if (!seen_zone.insert(key).second)
          continue;
        const Vec3 zone(std::get<0>(key), std::get<1>(key), std::get<2>(key));
        // Zone lattice: the two shortest independent reflections with h·u = 0.
        const int H = 2 * N + 2;
        std::vector<Vec3> in_zone;
        for (int h = -H; h <= H; ++h)
          for (int k = -H; k <= H; ++k)
            for (int l = -H; l <= H; ++l)
              if ((h || k || l) && h * zone[0] + k * zone[1] + l * zone[2] == 0)
                in_zone.emplace_back(h, k, l);
        std::sort(in_zone.begin(), in_zone.end(), [&](const Vec3& a, const Vec3& b) {
          return lat.g_length_invA(a) < lat.g_length_invA(b);
        });
        if (in_zone.empty())
          continue;
        // The zone's allowed reflections with their kinematic |F|²: the strong ones must be seen.
        struct Allowed {
          Vec3 hkl;
          double f2;
        };
        std::vector<Allowed> allowed;
        for (const Vec3& h : in_zone)
          if (!forbidden(h)) {
            const Miller m{int(std::lround(h[0])), int(std::lround(h[1])), int(std::lround(h[2]))};
            allowed.push_back({h, std::norm(structure_factor_A(xtal, m))});
          }
        const Vec3 a1 = in_zone[0];
        Vec3 a2 = Vec3::Zero();
        for (const Vec3& h : in_zone)
          if (a1.cross(h).norm() > 0.5) {
            a2 = h;
            break;
          }
        // 2-D frame of the zone plane (x along a1).
        const Vec3 n = lat.direction_A(zone).normalized();
        const Vec3 e1 = lat.g_invA(a1).normalized(), e2 = n.cross(e1);
        auto to2 = [&](const Vec3& hkl) {
          const Vec3 gc = lat.g_invA(hkl);
          return V2(gc.dot(e1), gc.dot(e2));
        };
        const V2 A1 = to2(a1), A2 = to2(a2);
        const double cell = std::abs(cross2(A1, A2));
        struct Cand {
          Vec3 hkl;
          V2 g;
        };
        std::vector<Cand> vecs;
        for (int m1 = -4; m1 <= 4; ++m1)
          for (int m2 = -4; m2 <= 4; ++m2)
            if (m1 || m2)
              vecs.push_back({double(m1) * a1 + double(m2) * a2, double(m1) * A1 + double(m2) * A2});
        for (const Cand& h1 : vecs) {
          const double s1 = h1.g.norm() / len1;
          if (s1 < 0.5 || s1 > 2)
            continue;
          for (const Cand& h2 : vecs) {
            const double s2 = h2.g.norm() / len2;
            if (std::abs(s2 / s1 - 1) > 1.5 * spec.max_distortion)
              continue;
            if (std::abs(unsigned_angle_deg(h1.g, h2.g) - theta) > ang_tol_deg)
              continue;
            const int index = int(std::lround(std::abs(cross2(h1.g, h2.g)) / cell));
            if (index < 1 || index > spec.max_sublattice_index)
              continue;
            // Map reference (2-D) → nominal image g over every lattice peak.
            M2 gg = M2::Zero(), og = M2::Zero();
            std::vector<V2> gref;
            double forb = 0, forb_top = 0, gmax = 0;
            Vec3 forb_hkl = Vec3::Zero();
            std::set<std::pair<int, int>> seen_allowed;  // observed lattice points on allowed reflections (±)
            std::vector<size_t> forbidden_peaks;
            for (size_t i = 0; i < L.peak.size(); ++i) {
              const V2 r = double(L.n1[i]) * h1.g + double(L.n2[i]) * h2.g;
              gref.push_back(r);
              gmax = std::max(gmax, r.norm());
              gg += wobs[i] * r * r.transpose();
              og += wobs[i] * gobs[i] * r.transpose();
              if (forbidden(double(L.n1[i]) * h1.hkl + double(L.n2[i]) * h2.hkl)) {
                forb += std::max(0.0, peaks[size_t(L.peak[i])].intensity);
                forbidden_peaks.push_back(i);
              } else {
                seen_allowed.insert({L.n1[i], L.n2[i]});
                seen_allowed.insert({-L.n1[i], -L.n2[i]});
              }
            }
            // The strongest forbidden peak that double diffraction cannot explain (it is not the
            // sum of two observed allowed reflections, as Fe3O4 002 = 111 + -1-11 in HRTEM).
            for (size_t i : forbidden_peaks) {
              bool double_diffraction = false;
              for (const auto& m : seen_allowed)
                double_diffraction = double_diffraction || seen_allowed.count({L.n1[i] - m.first, L.n2[i] - m.second});
              const double I = std::max(0.0, peaks[size_t(L.peak[i])].intensity);
              if (!double_diffraction && I > forb_top) {
                forb_top = I;
                forb_hkl = double(L.n1[i]) * h1.hkl + double(L.n2[i]) * h2.hkl;
              }
            }
            const M2 A = og * gg.inverse();
            Eigen::JacobiSVD<M2> svd(A);
            const double sv1 = svd.singularValues()(0), sv2 = svd.singularValues()(1);
            LatticeCandidate c;
            c.zone_uvw = zone;
            c.hkl1 = h1.hkl;
            c.hkl2 = h2.hkl;
            c.distortion = sv1 / sv2 - 1;
            c.scale = 1 / std::sqrt(sv1 * sv2);
            // g_true = D·g_nominal with D = diag(sx, sy) and g_true = Q·g_ref: A·Aᵀ = D⁻².
            const M2 M = A * A.transpose();
            c.scale_x = 1 / std::sqrt(M(0, 0));
            c.scale_y = 1 / std::sqrt(M(1, 1));
            c.shear = M(0, 1) / std::sqrt(M(0, 0) * M(1, 1));
            double se = 0, sw = 0;
            for (size_t i = 0; i < gref.size(); ++i) {
              const double e = (c.scale * gobs[i].norm() - gref[i].norm()) / gref[i].norm();
              se += wobs[i] * e * e;
              sw += wobs[i];
            }
            c.residual_rel = std::sqrt(se / sw);
            c.forbidden_share = total_intensity > 0 ? forb / total_intensity : 0;
            c.strongest_forbidden_rel = top_intensity > 0 ? forb_top / top_intensity : 0;
            c.strongest_forbidden_hkl = forb_hkl;
            c.sublattice_index = index;
            // Strong allowed reflections of the zone up to the largest observed |g| (low orders
            // are always resolved in an image) must sit on observed lattice peaks: a coarse
            // reference lattice must not "explain" a finer one whose strong reflections it lacks.
            {
              M2 Bref;
              Bref << h1.g, h2.g;
              const M2 inv = Bref.inverse();
              const double glim = 1.001 * gmax;
              double f2top = 0;
              for (const Allowed& a : allowed)
                if (lat.g_length_invA(a.hkl) <= glim)
                  f2top = std::max(f2top, a.f2);
              double f2all = 0, f2miss = 0;
              std::set<std::string> named;
              for (const Allowed& a : allowed) {
                if (lat.g_length_invA(a.hkl) > glim || a.f2 < spec.strong_predicted_rel * f2top)
                  continue;
                f2all += a.f2;
                const V2 nf = inv * to2(a.hkl);
                const V2 nr(std::round(nf.x()), std::round(nf.y()));
                if ((nf - nr).norm() < 0.15 && on_lattice.count({int(nr.x()), int(nr.y())}))
                  continue;
                f2miss += a.f2;
                // One name per ± pair is enough for the message.
                if (named.size() < 4 && !named.count(uvw_text(-a.hkl)))
                  named.insert(uvw_text(a.hkl));
              }
              c.missing_share = f2all > 0 ? f2miss / f2all : 0;
              for (const auto& m : named)
                c.missing_hkl += (c.missing_hkl.empty() ? "" : ", ") + m;
            }
            const double px_ratio = 1 / c.scale;  // true pixel / nominal pixel
            c.in_prior = std::abs(px_ratio - 1) <= spec.prior_range;
            c.cost = std::pow(c.distortion / spec.max_distortion, 2) + 0.5 * std::pow(std::log(c.scale) / spec.prior_range, 2) +
                     2 * c.forbidden_share / spec.max_forbidden_share + 0.3 * (index - 1);
            char buf[300];
            if (!c.in_prior)
              std::snprintf(buf, sizeof buf, "pixel %+.1f %% from the nominal, outside the prior ±%.0f %%",
                            100 * (px_ratio - 1), 100 * spec.prior_range);
            else if (c.distortion > spec.max_distortion)
              std::snprintf(buf, sizeof buf, "needs %.1f %% anisotropy (limit %.0f %%)", 100 * c.distortion,
                            100 * spec.max_distortion);
            else if (c.forbidden_share > spec.max_forbidden_share)
              std::snprintf(buf, sizeof buf, "%.0f %% of the peak intensity on forbidden reflections",
                            100 * c.forbidden_share);
            else if (c.strongest_forbidden_rel > spec.max_forbidden_peak_rel)
              std::snprintf(buf, sizeof buf, "a peak at %.0f %% of the strongest would be %s %s, which %s forbids",
                            100 * c.strongest_forbidden_rel, reference.name.c_str(),
                            uvw_text(c.strongest_forbidden_hkl).c_str(), reference.name.c_str());
            else if (c.missing_share > spec.max_missing_share)
              std::snprintf(buf, sizeof buf, "strong %s reflections %s (%.0f %% of the predicted |F|²) would lie "
                            "on or between the peaks but are not seen", reference.name.c_str(), c.missing_hkl.c_str(),
                            100 * c.missing_share);
            else
              buf[0] = 0;
            c.reason = buf;
            all.push_back(c);
          }
        }
      }
  // Symmetry-equivalent basis choices give the same answer: keep one per (zone, scale, index).
  std::sort(all.begin(), all.end(), [](const LatticeCandidate& a, const LatticeCandidate& b) {
    if (a.reason.empty() != b.reason.empty())
      return a.reason.empty();
    return a.cost < b.cost;
  });
  for (const auto& c : all) {
    bool dup = false;
    for (const auto& d : out.candidates)
      dup = dup || (d.zone_uvw == c.zone_uvw && std::abs(d.scale / c.scale - 1) < 0.003 &&
                    d.sublattice_index == c.sublattice_index);
    if (!dup)
      out.candidates.push_back(c);
    if (out.candidates.size() >= 8)
      break;
  }
  char basis[160];
  std::snprintf(basis, sizeof basis, "|b1| = %.4f, |b2| = %.4f 1/Å (nominal), %.1f° apart", len1, len2, theta);
  if (out.candidates.empty())
    fail("lattice calibration: no ", reference.name, " zone (|uvw| ≤ ", N, ") has a lattice like the image's (",
         basis, ") within ", 100 * spec.max_distortion, " % distortion at any scale 0.5–2; wrong --reference?");
  const LatticeCandidate& best = out.candidates.front();
  if (!best.reason.empty())
    fail("lattice calibration: nothing in ", reference.name, " fits the image lattice (", basis, "); nearest: [",
         uvw_text(best.zone_uvw), "] ", uvw_text(best.hkl1), "/", uvw_text(best.hkl2), ", ", best.reason,
         best.in_prior ? "; the image is probably not " + reference.name + " (check --reference)"
                       : std::string(" (widen --prior-range only if the nominal pixel size is really that uncertain)"));
  for (size_t i = 1; i < out.candidates.size(); ++i)
    if (out.candidates[i].reason.empty()) {
      char buf[200];
      std::snprintf(buf, sizeof buf, "higher cost %.2f vs %.2f (distortion %.1f %%, pixel %+.1f %%, sublattice ×%d)",
                    out.candidates[i].cost, best.cost, 100 * out.candidates[i].distortion,
                    100 * (1 / out.candidates[i].scale - 1), out.candidates[i].sublattice_index);
      out.candidates[i].reason = buf;
    }
  out.pixel_size_A = std::sqrt(nominal_x_A * nominal_y_A) / best.scale;
  out.pixel_size_x_A = nominal_x_A / best.scale_x;
  out.pixel_size_y_A = nominal_y_A / best.scale_y;
  // Standard error of a common scale: weighted residual per component over the weighted RMS
  // |g|, divided by √(effective number of peaks − 2).
  double sg2 = 0, sw = 0, sw2 = 0;
  for (size_t i = 0; i < gobs.size(); ++i) {
    sg2 += wobs[i] * gobs[i].squaredNorm();
    sw += wobs[i];
    sw2 += wobs[i] * wobs[i];
  }
  const double n_eff = sw * sw / sw2;
  out.uncertainty_rel = L.rms_invA / std::sqrt(sg2 / sw) / std::sqrt(std::max(1.0, n_eff - 2));
  return out;
}

LatticeCalibration calibrate_lattice_image(const Image& image, const Phase& reference,
                                           const LatticeCalibrationSpec& spec, int threads,
                                           std::vector<Peak>* peaks_out) {
  if (!(image.pixel_size_A > 0))
    fail("lattice calibration: the image has no pixel size; give an approximate --pixel-size");
  const PowerSpectrum ps = power_spectrum(image, threads);
  PeakSpec pspec;
  pspec.max_peaks = 30;
  const auto peaks = find_peaks(ps, pspec);
  if (peaks.size() < 3)
    fail("lattice calibration: only ", peaks.size(), " lattice peaks in the FFT; the image must show a crystal "
         "lattice in a zone axis");
  if (peaks_out)
    *peaks_out = peaks;
  return calibrate_lattice(peaks, ps, image.pixel_size_A, image.pixel_y_A(), reference, spec);
}

}  // namespace epitem
