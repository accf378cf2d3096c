#include "epitem/pattern_geometry.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>

#include "epitem/error.hpp"
#include "epitem/statistics.hpp"
#include "epitem/units.hpp"

namespace epitem {

namespace {


double wrap_axis_deg(double a) {  // axis direction modulo 180° into (−90, 90]
  while (a > 90)
    a -= 180;
  while (a <= -90)
    a += 180;
  return a;
}

// Bilinear sample; NaN outside or when any of the four pixels is masked.
double sample(const Image& img, const DetectorMask& mask, double x, double y) {
  int x0 = int(std::floor(x)), y0 = int(std::floor(y));
  if (x0 < 0 || y0 < 0 || x0 + 1 >= img.nx || y0 + 1 >= img.ny)
    return std::numeric_limits<double>::quiet_NaN();
  if (mask.is_excluded(x0, y0) || mask.is_excluded(x0 + 1, y0) || mask.is_excluded(x0, y0 + 1) ||
      mask.is_excluded(x0 + 1, y0 + 1))
    return std::numeric_limits<double>::quiet_NaN();
  double fx = x - x0, fy = y - y0;
  return (1 - fy) * ((1 - fx) * img.at(x0, y0) + fx * img.at(x0 + 1, y0)) +
         fy * ((1 - fx) * img.at(x0, y0 + 1) + fx * img.at(x0 + 1, y0 + 1));
}

}  // namespace

double Ellipse::radius_along_px(double dx, double dy) const {
  double t = std::atan2(-dy, dx) - angle_deg * units::deg_to_rad;
  double c = std::cos(t) / semi_major_px, s = std::sin(t) / semi_minor_px;
  return 1.0 / std::sqrt(c * c + s * s);
}

Ellipse fit_ellipse(const std::vector<Vec2>& points_px) {
  const int n = int(points_px.size());
  if (n < 6)
    fail("ellipse fit: need at least 6 points, got ", n);
  // Centre and scale the points for conditioning; the conic is transformed back below.
  Vec2 mean = Vec2::Zero();
  for (const Vec2& p : points_px)
    mean += p;
  mean /= n;
  double scale = 0;
  for (const Vec2& p : points_px)
    scale += (p - mean).norm();
  scale = scale > 0 ? scale / n : 1.0;
  Eigen::MatrixXd D1(n, 3), D2(n, 3);
  for (int i = 0; i < n; ++i) {
    double x = (points_px[size_t(i)].x() - mean.x()) / scale, y = (points_px[size_t(i)].y() - mean.y()) / scale;
    D1.row(i) << x * x, x * y, y * y;
    D2.row(i) << x, y, 1;
  }
  Eigen::Matrix3d S1 = D1.transpose() * D1, S2 = D1.transpose() * D2, S3 = D2.transpose() * D2;
  Eigen::FullPivLU<Eigen::Matrix3d> lu(S3);
  if (!lu.isInvertible())
    fail("ellipse fit: the ", n, " points are degenerate (collinear or repeated)");
  Eigen::Matrix3d T = -lu.inverse() * S2.transpose();
  Eigen::Matrix3d M = S1 + S2 * T;
  Eigen::Matrix3d Mc;  // C1⁻¹·M with C1 = [[0,0,2],[0,−1,0],[2,0,0]]
  Mc.row(0) = M.row(2) / 2;
  Mc.row(1) = -M.row(1);
  Mc.row(2) = M.row(0) / 2;
  Eigen::EigenSolver<Eigen::Matrix3d> es(Mc);
  int best = -1;
  double best_cond = 0;
  for (int k = 0; k < 3; ++k) {
    Eigen::Vector3d v = es.eigenvectors().col(k).real();
    double cond = 4 * v(0) * v(2) - v(1) * v(1);
    if (cond > best_cond) {
      best_cond = cond;
      best = k;
    }
  }
  if (best < 0)
    fail("ellipse fit: the ", n, " points do not lie on an ellipse");
  Eigen::Vector3d a1 = es.eigenvectors().col(best).real();
  Eigen::Vector3d a2 = T * a1;
  // Conic A x² + B xy + C y² + D x + E y + F = 0 in normalised coordinates.
  double A = a1(0), B = a1(1), C = a1(2), D = a2(0), E = a2(1), F = a2(2);
  Eigen::Matrix2d H;
  H << 2 * A, B, B, 2 * C;
  Vec2 c = H.inverse() * Vec2(-D, -E);
  double F0 = F + 0.5 * (D * c.x() + E * c.y());
  Eigen::Matrix2d Q;
  Q << A, B / 2, B / 2, C;
  Eigen::SelfAdjointEigenSolver<Eigen::Matrix2d> qs(Q);
  double l0 = qs.eigenvalues()(0), l1 = qs.eigenvalues()(1);
  if (!(-F0 / l0 > 0 && -F0 / l1 > 0))
    fail("ellipse fit: the ", n, " points give no real ellipse");
  // The smaller eigenvalue belongs to the longer axis.
  double r_small_eig = std::sqrt(-F0 / l0), r_large_eig = std::sqrt(-F0 / l1);
  Ellipse e;
  e.cx_px = mean.x() + scale * c.x();
  e.cy_px = mean.y() + scale * c.y();
  Vec2 major_dir = r_small_eig >= r_large_eig ? Vec2(qs.eigenvectors().col(0)) : Vec2(qs.eigenvectors().col(1));
  e.semi_major_px = scale * std::max(r_small_eig, r_large_eig);
  e.semi_minor_px = scale * std::min(r_small_eig, r_large_eig);
  e.angle_deg = wrap_axis_deg(std::atan2(-major_dir.y(), major_dir.x()) / units::deg_to_rad);
  return e;
}

RingFit fit_ring(const Image& image, const DetectorMask& mask, double cx_px, double cy_px,
                 double radius_px, const RingFitSpec& spec) {
  if (!(radius_px > 2))
    fail("ring fit: radius guess must be > 2 px, got ", radius_px);
  if (spec.n_rays < 12)
    fail("ring fit: n_rays must be ≥ 12, got ", spec.n_rays);
  const Image smooth = gaussian_blur(image, spec.smoothing_sigma_px);
  Ellipse current;
  current.cx_px = cx_px;
  current.cy_px = cy_px;
  current.semi_major_px = current.semi_minor_px = radius_px;
  double half_width = spec.half_width_px;
  RingFit fit;
  for (int iter = 0; iter < std::max(1, spec.iterations); ++iter) {
    std::vector<Vec2> points;
    std::vector<double> prominence;
    int unblocked = 0;
    for (int k = 0; k < spec.n_rays; ++k) {
      double t = 2 * PI * k / spec.n_rays;
      double ux = std::cos(t), uy = std::sin(t);
      double r0 = current.radius_along_px(ux, uy);
      const double step = 0.25;
      std::vector<double> prof;
      bool blocked = false;
      for (double r = r0 - half_width; r <= r0 + half_width + 1e-9; r += step) {
        double v = sample(smooth, mask, current.cx_px + r * ux, current.cy_px + r * uy);
        if (std::isnan(v)) {
          blocked = true;
          break;
        }
        prof.push_back(v);
      }
      if (blocked || prof.size() < 5)
        continue;
      ++unblocked;
      size_t imax = size_t(std::max_element(prof.begin(), prof.end()) - prof.begin());
      if (imax == 0 || imax + 1 == prof.size())
        continue;  // maximum at the window edge: the ring is not inside the window
      double denom = prof[imax - 1] - 2 * prof[imax] + prof[imax + 1];
      double delta = denom < 0 ? 0.5 * (prof[imax - 1] - prof[imax + 1]) / denom : 0.0;
      double r = r0 - half_width + (double(imax) + delta) * step;
      points.emplace_back(current.cx_px + r * ux, current.cy_px + r * uy);
      prominence.push_back(prof[imax] - 0.5 * (prof.front() + prof.back()));
    }
    // Rays where the ring barely stands out (beam-stop shadow, gaps) are unreliable.
    double pmed = median(prominence);
    std::vector<Vec2> kept;
    for (size_t i = 0; i < points.size(); ++i)
      if (prominence[i] > 0.25 * pmed && prominence[i] > 0)
        kept.push_back(points[i]);
    if (kept.size() < 12)
      fail("ring fit: only ", kept.size(), " of ", spec.n_rays, " rays found a ring near r = ",
           radius_px, " px around (", cx_px, ", ", cy_px, "); check the centre guess, the radius "
           "and the mask");
    fit.n_rays_used = int(kept.size());
    Ellipse e = fit_ellipse(kept);
    // Robust refit: drop points beyond 3·(1.4826·MAD) of the radial residual, twice.
    for (int pass = 0; pass < 2; ++pass) {
      std::vector<double> res(kept.size());
      for (size_t i = 0; i < kept.size(); ++i) {
        double dx = kept[i].x() - e.cx_px, dy = kept[i].y() - e.cy_px;
        res[i] = std::hypot(dx, dy) - e.radius_along_px(dx, dy);
      }
      std::vector<double> absdev(res.size());
      double med = median(res);
      for (size_t i = 0; i < res.size(); ++i)
        absdev[i] = std::abs(res[i] - med);
      double cut = std::max(3 * 1.4826 * median(absdev), 0.05);
      std::vector<Vec2> inl;
      for (size_t i = 0; i < kept.size(); ++i)
        if (std::abs(res[i] - med) <= cut)
          inl.push_back(kept[i]);
      if (inl.size() < 12 || inl.size() == kept.size())
        break;
      kept = inl;
      e = fit_ellipse(kept);
    }
    double ss = 0;
    for (const Vec2& p : kept) {
      double dx = p.x() - e.cx_px, dy = p.y() - e.cy_px;
      double d = std::hypot(dx, dy) - e.radius_along_px(dx, dy);
      ss += d * d;
    }
    if (double(kept.size()) < spec.min_coverage * unblocked)
      fail("ring fit: only ", kept.size(), " of ", unblocked, " unblocked rays agree on a ring near r = ",
           radius_px, " px (need ", int(spec.min_coverage * 100), " %); this looks like spots, not a ring");
    fit.ellipse = e;
    fit.n_inliers = int(kept.size());
    fit.n_rays_unblocked = unblocked;
    fit.rms_residual_px = std::sqrt(ss / double(kept.size()));
    fit.points_px = kept;
    current = e;
    half_width = std::max(3.0, 0.5 * half_width);
  }
  return fit;
}

std::vector<Vec2> distinct_spot_positions(const std::vector<std::vector<DetectedSpot>>& frames,
                                         double merge_px) {
  if (!(merge_px > 0))
    fail("distinct spots: merge radius must be > 0 px, got ", merge_px);
  // Hash grid of cell merge_px: a detection joins the nearest cluster (running mean) within
  // merge_px in the 3×3 neighbouring cells, else starts one.
  std::map<std::pair<int, int>, std::vector<int>> grid;
  std::vector<Vec2> sum;
  std::vector<int> count;
  for (const auto& spots : frames)
    for (const DetectedSpot& d : spots) {
      const Vec2 p(d.x_px, d.y_px);
      const int ix = int(std::floor(p.x() / merge_px)), iy = int(std::floor(p.y() / merge_px));
      int best = -1;
      double best_d = merge_px;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          auto it = grid.find({ix + dx, iy + dy});
          if (it == grid.end())
            continue;
          for (int c : it->second) {
            double dist = (sum[size_t(c)] / count[size_t(c)] - p).norm();
            if (dist <= best_d) {
              best_d = dist;
              best = c;
            }
          }
        }
      if (best < 0) {
        best = int(sum.size());
        sum.push_back(Vec2::Zero());
        count.push_back(0);
        grid[{ix, iy}].push_back(best);
      }
      sum[size_t(best)] += p;
      ++count[size_t(best)];
    }
  std::vector<Vec2> out(sum.size());
  for (size_t c = 0; c < sum.size(); ++c)
    out[c] = sum[c] / count[c];
  return out;
}

double radial_concentration(const std::vector<Vec2>& spots, const Vec2& c, double min_radius_px) {
  // Σ over spot pairs of a Gaussian in their radius difference; the width allows for centroid
  // noise (0.7 px) and an uncorrected distortion of ±0.4 % of the radius.
  std::vector<double> r;
  r.reserve(spots.size());
  for (const Vec2& p : spots) {
    const double d = (p - c).norm();
    if (d >= min_radius_px)
      r.push_back(d);
  }
  std::sort(r.begin(), r.end());
  double score = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    const double s = 0.7 + 0.004 * r[i];
    for (size_t j = i + 1; j < r.size() && r[j] - r[i] < 3 * s; ++j) {
      const double d = (r[j] - r[i]) / s;
      score += std::exp(-0.5 * d * d);
    }
  }
  return score;
}

FriedelCentre centre_from_friedel_pairs(const std::vector<std::vector<DetectedSpot>>& frames, int nx,
                                        int ny, double tolerance_px) {
  // In a movie the mate −g of a spot is often seen only in other frames: pairs are formed
  // between the distinct spots of all frames together.
  const std::vector<Vec2> spots = distinct_spot_positions(frames, tolerance_px);
  const double cell = 2.0;
  const int gx = int(std::ceil(nx / cell)) + 1, gy = int(std::ceil(ny / cell)) + 1;
  std::vector<int> votes(size_t(gx) * size_t(gy), 0);
  for (size_t i = 0; i < spots.size(); ++i)
    for (size_t j = i + 1; j < spots.size(); ++j) {
      const Vec2 m = 0.5 * (spots[i] + spots[j]);
      int ix = int(m.x() / cell), iy = int(m.y() / cell);
      if (ix < 0 || iy < 0 || ix >= gx || iy >= gy)
        continue;
      ++votes[size_t(iy) * size_t(gx) + size_t(ix)];
    }
  // Densest 3×3 blocks of cells. Chance coincidences, and detections mirrored about a beam-stop
  // rod, can outvote the true centre, so the votes only propose candidates.
  std::vector<std::pair<int, int>> blocks;  // (votes, cell index)
  for (int iy = 1; iy + 1 < gy; ++iy)
    for (int ix = 1; ix + 1 < gx; ++ix) {
      int v = 0;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx)
          v += votes[size_t(iy + dy) * size_t(gx) + size_t(ix + dx)];
      if (v > 0)
        blocks.emplace_back(v, iy * gx + ix);
    }
  std::sort(blocks.begin(), blocks.end(), std::greater<>());
  std::vector<Vec2> candidates;
  for (const auto& [v, idx] : blocks) {
    const Vec2 c(((idx % gx) + 0.5) * cell, ((idx / gx) + 0.5) * cell);
    bool near = false;
    for (const Vec2& o : candidates)
      near = near || (o - c).norm() < 3 * cell;
    if (!near)
      candidates.push_back(c);
    if (candidates.size() == 100)
      break;
  }
  auto refine = [&](Vec2 c, const std::vector<double>& tolerances) {
    FriedelCentre out;
    for (double tol : tolerances) {
      Vec2 sum = Vec2::Zero();
      std::vector<Vec2> used;
      for (size_t i = 0; i < spots.size(); ++i)
        for (size_t j = i + 1; j < spots.size(); ++j) {
          const Vec2 m = 0.5 * (spots[i] + spots[j]);
          if ((m - c).norm() > tol || std::abs((spots[i] - c).norm() - (spots[j] - c).norm()) > 2 * tol)
            continue;
          if ((spots[i] - c).norm() < 4 * tol)
            continue;  // both spots next to the centre say nothing about it
          used.push_back(m);
          sum += m;
        }
      out.n_pairs = int(used.size());
      if (used.empty())
        return out;
      c = sum / double(used.size());
      double ss = 0;
      for (const Vec2& m : used)
        ss += (m - c).squaredNorm();
      out.cx_px = c.x();
      out.cy_px = c.y();
      out.rms_px = std::sqrt(ss / double(used.size()));
    }
    return out;
  };
  // Each candidate (the mean of its mate midpoints) is judged by all spots, mates or not:
  // about the true centre the spots of one family share one radius (to the distortion), about
  // a wrong one their radii spread.
  auto best_near = [&](const std::vector<Vec2>& pts, Vec2 c, double half_px) {
    double best = radial_concentration(pts, c);
    for (double step : {0.25, 0.05}) {
      const Vec2 c0 = c;
      const int n = int(std::lround(half_px / step));
      for (int iy = -n; iy <= n; ++iy)
        for (int ix = -n; ix <= n; ++ix) {
          const Vec2 t = c0 + step * Vec2(ix, iy);
          const double sc = radial_concentration(pts, t);
          if (sc > best) {
            best = sc;
            c = t;
          }
        }
      half_px = 2 * step;
    }
    return c;
  };
  int most_pairs = 0;
  double best_score = -1;
  Vec2 centre = candidates.empty() ? Vec2(0.5 * nx, 0.5 * ny) : candidates.front();
  for (const Vec2& c : candidates) {
    const FriedelCentre f = refine(c, {3 * tolerance_px, tolerance_px, tolerance_px});
    most_pairs = std::max(most_pairs, f.n_pairs);
    if (f.n_pairs < 3)
      continue;
    const double sc = radial_concentration(spots, Vec2(f.cx_px, f.cy_px));
    if (sc > best_score) {
      best_score = sc;
      centre = Vec2(f.cx_px, f.cy_px);
    }
  }
  if (most_pairs < 3)
    fail("centre from Friedel pairs: found ", most_pairs, " pair(s) among ", spots.size(),
         " distinct spots (need ≥ 3); give the centre with --centre X,Y or use --centre ring or --centre beam");
  centre = best_near(spots, centre, 1.0);
  // Uncertainty: spread of the optimum (searched ±2 px) over bootstrap resamples of the spots.
  std::mt19937 rng(12345);
  std::uniform_int_distribution<size_t> pick(0, spots.size() - 1);
  double ss = 0;
  const int n_boot = 16;
  for (int b = 0; b < n_boot; ++b) {
    std::vector<Vec2> sample(spots.size());
    for (Vec2& p : sample)
      p = spots[pick(rng)];
    ss += (best_near(sample, centre, 2.0) - centre).squaredNorm();
  }
  const double sigma = std::sqrt(ss / n_boot);
  // The mean of the mate midpoints is the sharper estimate when ≥ 3 mates confirm this centre:
  // the window shrinks from 3σ (halving) to 0.5 px, twice the midpoint scatter of 0.3-px
  // centroids; a wider one takes in near-opposite spots of one family that are no mates.
  std::vector<double> windows;
  for (double w = 3 * sigma; w > 0.5; w /= 2)
    windows.push_back(w);
  windows.insert(windows.end(), {0.5, 0.5});
  FriedelCentre best = refine(centre, windows);
  if (best.n_pairs < 3) {
    best = refine(centre, {tolerance_px});  // the pair count and scatter to report
    best.cx_px = centre.x();
    best.cy_px = centre.y();
  }
  best.uncertainty_px = sigma;
  best.n_spots = int(spots.size());
  return best;
}

ScaleFit fit_calibration_scale(const std::vector<double>& g_invA, const std::vector<double>& reference_g_invA,
                               double range, double tolerance_rel) {
  if (g_invA.empty() || reference_g_invA.empty())
    fail("calibration scale: needs measured and reference |g| (got ", g_invA.size(), " and ",
         reference_g_invA.size(), "); give --phase or --scale-range 0");
  if (!(range > 0 && range < 0.5))
    fail("calibration scale: range must be in (0, 0.5), got ", range, "; e.g. --scale-range 0.05");
  if (!(tolerance_rel > 0))
    fail("calibration scale: tolerance must be > 0, got ", tolerance_rel);
  std::vector<double> ref(reference_g_invA);
  std::sort(ref.begin(), ref.end());
  auto nearest = [&](double g) {  // reference nearest to g
    auto it = std::lower_bound(ref.begin(), ref.end(), g);
    if (it == ref.end())
      return ref.back();
    if (it == ref.begin())
      return *it;
    return (*it - g < g - *(it - 1)) ? *it : *(it - 1);
  };
  const double sig = 0.5 * tolerance_rel;
  auto score = [&](double s) {
    double sum = 0;
    for (double g : g_invA) {
      const double G = nearest(s * g), e = (s * g - G) / (G * sig);
      sum += std::exp(-0.5 * e * e);
    }
    return sum;
  };
  const double step = 0.1 * tolerance_rel;
  const int n = int(std::ceil(range / step));
  std::vector<double> sc(size_t(2 * n + 1));
  for (int k = -n; k <= n; ++k)
    sc[size_t(k + n)] = score(1 + range * k / n);
  const size_t best = size_t(std::max_element(sc.begin(), sc.end()) - sc.begin());
  ScaleFit out;
  out.scale = 1 + range * (int(best) - n) / n;
  out.score = sc[best];
  out.at_edge = best == 0 || best + 1 == sc.size();
  for (size_t k = 0; k < sc.size(); ++k) {
    const double s = 1 + range * (int(k) - n) / n;
    if (std::abs(s / out.scale - 1) > 2 * tolerance_rel && sc[k] > out.runner_up_score) {
      out.runner_up_score = sc[k];
      out.runner_up_scale = s;
    }
  }
  // Least squares over the spots matched within tolerance: s = Σ g·G / Σ g².
  for (int it = 0; it < 2; ++it) {
    double num = 0, den = 0;
    int m = 0;
    for (double g : g_invA) {
      const double G = nearest(out.scale * g);
      if (std::abs(out.scale * g - G) <= tolerance_rel * G) {
        num += g * G;
        den += g * g;
        ++m;
      }
    }
    out.n_matched = m;
    if (m > 0)
      out.scale = num / den;
  }
  return out;
}

SpotDistortion distortion_from_spots(const std::vector<Vec2>& positions_px, double cx_px, double cy_px,
                                     const SpotDistortionSpec& spec) {
  // Spots of one family lie on one ellipse. For two spots of the same family at azimuths φi,
  // φj (y up) the radii obey ln ri − ln rj = p(cos2φi − cos2φj) + q(sin2φi − sin2φj) to first
  // order in the ellipticity ε = √(p²+q²), major axis at ½·atan2(q, p). Which pairs share a
  // family is unknown, so every pair closer in ln r than the largest distortion allows is a
  // candidate: a grid search maximises the number of pairs the model explains within
  // ±2·spec.width_rel (other families scatter uniformly), then a Tukey-weighted fit refines it.
  struct Polar {
    double lnr, c, s;
  };
  std::vector<Polar> pts;
  for (const Vec2& p : positions_px) {
    const double dx = p.x() - cx_px, dy = -(p.y() - cy_px);
    const double r = std::hypot(dx, dy);
    if (r < spec.min_radius_px)
      continue;
    const double phi = std::atan2(dy, dx);
    pts.push_back({std::log(r), std::cos(2 * phi), std::sin(2 * phi)});
  }
  std::sort(pts.begin(), pts.end(), [](const Polar& a, const Polar& b) { return a.lnr < b.lnr; });
  const double eps_max = spec.max_ellipticity;
  struct Pair {
    double d, dc, ds;
  };
  std::vector<Pair> pairs;
  for (size_t i = 0; i < pts.size(); ++i)
    for (size_t j = i + 1; j < pts.size() && pts[j].lnr - pts[i].lnr < 2 * eps_max + 4 * spec.width_rel; ++j) {
      const double dc = pts[j].c - pts[i].c, ds = pts[j].s - pts[i].s;
      if (dc * dc + ds * ds < 0.01)
        continue;  // (nearly) the same azimuth mod 180°: no information on the shape
      pairs.push_back({pts[j].lnr - pts[i].lnr, dc, ds});
    }
  const double h = spec.width_rel;
  auto score = [&](double p, double q) {
    double sc = 0;
    for (const Pair& pr : pairs) {
      const double u = (pr.d - p * pr.dc - q * pr.ds) / (2 * h);
      if (u * u < 1)
        sc += 1 - u * u;
    }
    return sc;
  };
  double bp = 0, bq = 0, best = score(0, 0);
  const int n_grid = int(std::ceil(eps_max / h));
  for (int a = -n_grid; a <= n_grid; ++a)
    for (int b = -n_grid; b <= n_grid; ++b) {
      const double p = a * h, q = b * h;
      if (p * p + q * q > eps_max * eps_max)
        continue;
      const double sc = score(p, q);
      if (sc > best) {
        best = sc;
        bp = p;
        bq = q;
      }
    }
  SpotDistortion out;
  for (int iter = 0; iter < 20; ++iter) {
    Eigen::Matrix2d A = Eigen::Matrix2d::Zero();
    Vec2 rhs = Vec2::Zero();
    int n = 0;
    double ss = 0, sw = 0;
    for (const Pair& pr : pairs) {
      const double res = pr.d - bp * pr.dc - bq * pr.ds, u = res / (2 * h);
      if (u * u >= 1)
        continue;
      const double w = (1 - u * u) * (1 - u * u);
      const Vec2 x(pr.dc, pr.ds);
      A += w * x * x.transpose();
      rhs += w * pr.d * x;
      ss += w * res * res;
      sw += w;
      ++n;
    }
    out.n_pairs = n;
    out.rms_rel = sw > 0 ? std::sqrt(ss / sw) : 0;
    if (n < spec.min_pairs || std::abs(A.determinant()) < 1e-12 * std::max(1.0, A.trace() * A.trace()))
      fail("distortion from spots: only ", n, " same-family spot pairs at different azimuths (need ",
           spec.min_pairs, "); give the distortion with --distortion RATIO,ANGLE_DEG or --no-distortion-correction");
    const Vec2 pq = A.ldlt().solve(rhs);
    const bool converged = std::hypot(pq.x() - bp, pq.y() - bq) < 1e-7;
    bp = pq.x();
    bq = pq.y();
    if (converged)
      break;
  }
  const double eps = std::hypot(bp, bq);
  out.ellipse.cx_px = cx_px;
  out.ellipse.cy_px = cy_px;
  out.ellipse.semi_major_px = 100 * (1 + eps);  // only the ratio and the axis matter
  out.ellipse.semi_minor_px = 100 * (1 - eps);
  out.ellipse.angle_deg = wrap_axis_deg(0.5 * std::atan2(bq, bp) / units::deg_to_rad);
  return out;
}

Ellipse distortion_ellipse(double cx_px, double cy_px, double axis_ratio, double angle_deg) {
  if (!(axis_ratio >= 1 && axis_ratio < 1.5))
    fail("distortion: the axis ratio a/b must be in [1, 1.5), got ", axis_ratio,
         " (give RATIO,ANGLE_DEG with the major axis first, e.g. 1.01,30)");
  if (!std::isfinite(angle_deg))
    fail("distortion: the major-axis angle must be a finite number of degrees, got ", angle_deg);
  // Semi-axes around a mean radius of 100 px: corrected_offset_px uses only their ratio.
  return {cx_px, cy_px, 200 * axis_ratio / (1 + axis_ratio), 200 / (1 + axis_ratio), wrap_axis_deg(angle_deg)};
}

Vec2 direct_beam_centre_px(const Image& image, const DetectorMask& mask, double sigma_px) {
  const Image smooth = gaussian_blur(image, sigma_px);
  int best = -1;
  for (int i = 0; i < int(smooth.size()); ++i)
    if (!mask.is_excluded(i % smooth.nx, i / smooth.nx) &&
        (best < 0 || smooth.pixels[size_t(i)] > smooth.pixels[size_t(best)]))
      best = i;
  if (best < 0)
    fail("direct-beam centre: every pixel is masked");
  const int bx = best % smooth.nx, by = best / smooth.nx;
  const double peak = smooth.pixels[size_t(best)];
  double floor_level = peak;
  const int r = int(std::ceil(3 * sigma_px));
  for (int y = std::max(0, by - r); y <= std::min(smooth.ny - 1, by + r); ++y)
    for (int x = std::max(0, bx - r); x <= std::min(smooth.nx - 1, bx + r); ++x)
      floor_level = std::min(floor_level, double(smooth.at(x, y)));
  const double cut = 0.5 * (peak + floor_level);
  double sx = 0, sy = 0, sw = 0;
  for (int y = std::max(0, by - r); y <= std::min(smooth.ny - 1, by + r); ++y)
    for (int x = std::max(0, bx - r); x <= std::min(smooth.nx - 1, bx + r); ++x) {
      double w = smooth.at(x, y) - cut;
      if (w > 0 && !mask.is_excluded(x, y)) {
        sx += w * x;
        sy += w * y;
        sw += w;
      }
    }
  return sw > 0 ? Vec2(sx / sw, sy / sw) : Vec2(bx, by);
}

Vec2 PatternGeometry::corrected_offset_px(double x_px, double y_px) const {
  Vec2 u(x_px - ellipse.cx_px, -(y_px - ellipse.cy_px));
  if (!correct_distortion || ellipse.semi_minor_px <= 0)
    return u;
  double t = ellipse.angle_deg * units::deg_to_rad;
  double c = std::cos(t), s = std::sin(t);
  double along = c * u.x() + s * u.y(), across = -s * u.x() + c * u.y();
  const double r = ellipse.mean_radius_px();
  along *= r / ellipse.semi_major_px;
  across *= r / ellipse.semi_minor_px;
  return Vec2(c * along - s * across, s * along + c * across);
}

Vec2 PatternGeometry::g_invA(double x_px, double y_px) const {
  if (!(pixel_size_invA > 0))
    fail("pattern geometry: the pixel size in 1/Å is not set; give --pixel-size, "
         "--camera-length or --calibrant");
  return corrected_offset_px(x_px, y_px) * pixel_size_invA;
}

double pixel_size_from_camera_length_invA(double wavelength_A, double camera_length_A,
                                          double detector_pixel_A) {
  if (!(wavelength_A > 0) || !(camera_length_A > 0) || !(detector_pixel_A > 0))
    fail("camera constant: wavelength, camera length and detector pixel must be > 0, got ",
         wavelength_A, " Å, ", camera_length_A, " Å, ", detector_pixel_A, " Å");
  return detector_pixel_A / (wavelength_A * camera_length_A);
}

RingCalibration calibrate_from_rings(const std::vector<double>& radii_px,
                                     const std::vector<double>& weights,
                                     const std::vector<ReferenceRing>& references,
                                     double rel_tolerance) {
  if (radii_px.size() < 2 || references.size() < 2)
    fail("ring calibration: need ≥ 2 measured rings and ≥ 2 reference rings, got ",
         radii_px.size(), " and ", references.size());
  auto weight = [&](size_t i) { return weights.empty() ? 1.0 : weights[i]; };
  auto match = [&](double scale, std::vector<RingCalibration::Match>& out) {
    out.clear();
    double score = 0;
    for (size_t i = 0; i < radii_px.size(); ++i) {
      double g = scale * radii_px[i];
      const ReferenceRing* bestref = nullptr;
      double bestrel = rel_tolerance;
      for (const auto& ref : references) {
        double rel = std::abs(g - ref.g_invA) / ref.g_invA;
        if (rel <= bestrel) {
          bestrel = rel;
          bestref = &ref;
        }
      }
      if (bestref) {
        out.push_back({radii_px[i], bestref->g_invA, bestref->label()});
        score += weight(i) * (1 - 0.5 * bestrel / rel_tolerance);
      }
    }
    return score;
  };
  RingCalibration best;
  double best_score = -1;
  std::vector<RingCalibration::Match> m;
  for (double r : radii_px)
    for (const auto& ref : references) {
      if (!(r > 0))
        continue;
      double scale = ref.g_invA / r;
      match(scale, m);
      if (m.size() < 2)
        continue;
      double num = 0, den = 0;  // least squares g = Δg·r over the matches
      for (const auto& mm : m) {
        num += mm.radius_px * mm.g_invA;
        den += mm.radius_px * mm.radius_px;
      }
      double refined = num / den;
      double score = match(refined, m);
      if (m.size() >= 2 && score > best_score + 1e-9) {
        best_score = score;
        best.pixel_size_invA = refined;
        best.matches = m;
      }
    }
  if (best_score < 0)
    fail("ring calibration: no scale maps 2 of the ", radii_px.size(),
         " measured rings onto the reference rings within ", rel_tolerance * 100,
         " %; check the calibrant phase or give --pixel-size");
  double ss = 0;
  for (const auto& mm : best.matches) {
    double rel = (mm.g_invA - best.pixel_size_invA * mm.radius_px) / mm.g_invA;
    ss += rel * rel;
  }
  best.rms_relative = std::sqrt(ss / double(best.matches.size()));
  return best;
}

RadialProfiler::RadialProfiler(int nx, int ny, const PatternGeometry& geometry,
                               const DetectorMask& mask, double bin_px)
    : nx_(nx), ny_(ny), bin_px_(bin_px) {
  if (!(bin_px > 0))
    fail("radial profile: bin must be > 0 px, got ", bin_px);
  if (!mask.empty() && (mask.nx != nx || mask.ny != ny))
    fail("radial profile: mask ", mask.nx, "×", mask.ny, " does not match the frame ", nx, "×", ny);
  bin_of_pixel_.assign(size_t(nx) * size_t(ny), -1);
  int max_bin = 0;
  for (int y = 0; y < ny; ++y)
    for (int x = 0; x < nx; ++x) {
      if (mask.is_excluded(x, y))
        continue;
      double r = geometry.corrected_offset_px(x, y).norm();
      int b = int(r / bin_px);
      bin_of_pixel_[size_t(y) * size_t(nx) + size_t(x)] = b;
      max_bin = std::max(max_bin, b);
    }
  count_.assign(size_t(max_bin) + 1, 0);
  for (int b : bin_of_pixel_)
    if (b >= 0)
      ++count_[size_t(b)];
  bin_start_.assign(count_.size() + 1, 0);
  for (size_t b = 0; b < count_.size(); ++b)
    bin_start_[b + 1] = bin_start_[b] + count_[b];
  pixels_by_bin_.assign(size_t(bin_start_.back()), 0);
  std::vector<int> fill(bin_start_.begin(), bin_start_.end() - 1);
  for (size_t i = 0; i < bin_of_pixel_.size(); ++i)
    if (bin_of_pixel_[i] >= 0)
      pixels_by_bin_[size_t(fill[size_t(bin_of_pixel_[i])]++)] = int(i);
  // Linear interpolation between bin centres (b + 0.5)·bin for subtract_profile.
  const int nb = int(count_.size());
  lower_bin_of_pixel_.assign(bin_of_pixel_.size(), 0);
  upper_weight_of_pixel_.assign(bin_of_pixel_.size(), 0.f);
  for (int y = 0; y < ny; ++y)
    for (int x = 0; x < nx; ++x) {
      const size_t i = size_t(y) * size_t(nx) + size_t(x);
      if (bin_of_pixel_[i] < 0)
        continue;
      double t = geometry.corrected_offset_px(x, y).norm() / bin_px - 0.5;
      int b0 = std::clamp(int(std::floor(t)), 0, std::max(0, nb - 2));
      lower_bin_of_pixel_[i] = b0;
      upper_weight_of_pixel_[i] = float(std::clamp(t - b0, 0.0, 1.0));
    }
  radius_px_.resize(count_.size());
  for (size_t b = 0; b < count_.size(); ++b)
    radius_px_[b] = (double(b) + 0.5) * bin_px;
}

std::vector<double> RadialProfiler::profile(const Image& frame) const {
  if (frame.nx != nx_ || frame.ny != ny_)
    fail("radial profile: frame is ", frame.nx, "×", frame.ny, " px, expected ", nx_, "×", ny_);
  std::vector<double> sum(count_.size(), 0.0);
  for (size_t i = 0; i < bin_of_pixel_.size(); ++i)
    if (bin_of_pixel_[i] >= 0)
      sum[size_t(bin_of_pixel_[i])] += frame.pixels[i];
  for (size_t b = 0; b < sum.size(); ++b)
    sum[b] = count_[b] > 0 ? sum[b] / count_[b] : std::numeric_limits<double>::quiet_NaN();
  return sum;
}

std::vector<double> RadialProfiler::median_profile(const Image& frame) const {
  if (frame.nx != nx_ || frame.ny != ny_)
    fail("radial profile: frame is ", frame.nx, "×", frame.ny, " px, expected ", nx_, "×", ny_);
  std::vector<double> med(count_.size(), std::numeric_limits<double>::quiet_NaN());
  std::vector<float> values;
  for (size_t b = 0; b < count_.size(); ++b) {
    if (count_[b] == 0)
      continue;
    values.resize(size_t(count_[b]));
    for (int k = 0; k < count_[b]; ++k)
      values[size_t(k)] = frame.pixels[size_t(pixels_by_bin_[size_t(bin_start_[b] + k)])];
    auto mid = values.begin() + std::ptrdiff_t(values.size() / 2);
    std::nth_element(values.begin(), mid, values.end());
    med[b] = *mid;
  }
  return med;
}

Image RadialProfiler::subtract_profile(const Image& frame, std::vector<double>* profile_out) const {
  std::vector<double> p = median_profile(frame);
  if (profile_out)
    *profile_out = profile(frame);
  // Empty bins take the nearest filled value so interpolation never meets NaN.
  double last = 0;
  bool any = false;
  for (double& v : p) {
    if (std::isfinite(v)) {
      last = v;
      any = true;
    } else if (any) {
      v = last;
    }
  }
  for (size_t b = p.size(); b-- > 0;)
    if (std::isfinite(p[b]))
      last = p[b];
    else
      p[b] = last;
  std::vector<float> lower(p.size()), step(p.size());
  for (size_t b = 0; b < p.size(); ++b) {
    lower[b] = float(p[b]);
    step[b] = b + 1 < p.size() ? float(p[b + 1] - p[b]) : 0.f;
  }
  Image out = frame;
  for (size_t i = 0; i < bin_of_pixel_.size(); ++i) {
    const size_t b = size_t(lower_bin_of_pixel_[i]);
    out.pixels[i] = bin_of_pixel_[i] < 0 ? 0.f
                                         : frame.pixels[i] - (lower[b] + upper_weight_of_pixel_[i] * step[b]);
  }
  return out;
}

std::vector<ProfilePeak> find_profile_peaks(const std::vector<double>& profile,
                                            const std::vector<double>& radius_px, double min_snr,
                                            int window_bins) {
  if (profile.size() != radius_px.size())
    fail("profile peaks: ", profile.size(), " values but ", radius_px.size(), " radii");
  const int n = int(profile.size());
  std::vector<double> d2;
  for (int i = 1; i + 1 < n; ++i)
    if (std::isfinite(profile[size_t(i - 1)]) && std::isfinite(profile[size_t(i)]) &&
        std::isfinite(profile[size_t(i + 1)]))
      d2.push_back(profile[size_t(i - 1)] - 2 * profile[size_t(i)] + profile[size_t(i + 1)]);
  std::vector<double> absd(d2.size());
  double med = median(d2);
  for (size_t i = 0; i < d2.size(); ++i)
    absd[i] = std::abs(d2[i] - med);
  const double noise = 1.4826 * median(absd) / std::sqrt(6.0);
  std::vector<ProfilePeak> peaks;
  for (int i = 1; i + 1 < n; ++i) {
    double v = profile[size_t(i)];
    if (!std::isfinite(v) || !(v > profile[size_t(i - 1)]) || !(v >= profile[size_t(i + 1)]))
      continue;
    // Local maximum over ±2 bins, then prominence against the flanking minima.
    bool is_max = true;
    for (int k = std::max(0, i - 2); k <= std::min(n - 1, i + 2); ++k)
      if (std::isfinite(profile[size_t(k)]) && profile[size_t(k)] > v)
        is_max = false;
    if (!is_max)
      continue;
    double left = v, right = v;
    for (int k = i - 1; k >= std::max(0, i - window_bins); --k)
      if (std::isfinite(profile[size_t(k)]))
        left = std::min(left, profile[size_t(k)]);
    for (int k = i + 1; k <= std::min(n - 1, i + window_bins); ++k)
      if (std::isfinite(profile[size_t(k)]))
        right = std::min(right, profile[size_t(k)]);
    double prom = v - std::max(left, right);
    double snr = noise > 0 ? prom / noise : std::numeric_limits<double>::infinity();
    if (!(prom > 0) || snr < min_snr)
      continue;
    double a = profile[size_t(i - 1)], c = profile[size_t(i + 1)];
    double denom = a - 2 * v + c;
    double delta = denom < 0 ? 0.5 * (a - c) / denom : 0.0;
    double step = radius_px.size() > 1 ? radius_px[1] - radius_px[0] : 1.0;
    peaks.push_back({radius_px[size_t(i)] + delta * step, v, prom, snr});
  }
  std::sort(peaks.begin(), peaks.end(),
            [](const ProfilePeak& a, const ProfilePeak& b) { return a.prominence > b.prominence; });
  return peaks;
}

}  // namespace epitem
