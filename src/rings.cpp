#include "epitem/rings.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "epitem/error.hpp"
#include "epitem/statistics.hpp"
#include "epitem/units.hpp"

namespace epitem {

namespace {

constexpr double NaN = std::numeric_limits<double>::quiet_NaN();


// Gaussian blur that ignores masked pixels: blur(v·w)/blur(w), w = 1 where unmasked.
Image masked_blur(const Image& img, const DetectorMask& mask, double sigma_px) {
  Image v = img, w(img.nx, img.ny, 1.f);
  for (size_t i = 0; i < img.size(); ++i)
    if (!mask.empty() && mask.excluded[i]) {
      v.pixels[i] = 0;
      w.pixels[i] = 0;
    }
  const Image bv = gaussian_blur(v, sigma_px), bw = gaussian_blur(w, sigma_px);
  for (size_t i = 0; i < v.size(); ++i)
    v.pixels[i] = bw.pixels[i] > 1e-3f ? bv.pixels[i] / bw.pixels[i] : 0.f;
  return v;
}

// Ring contrast of the azimuthal profile about (cx, cy): between-bin sum of squares of the
// high-passed image minus its expectation for pure noise ((bins − 1) × within-bin variance),
// so centres with more (partial) bins near a corner gain nothing from noise.
double ring_contrast(const Image& hp, const std::vector<std::uint8_t>& valid, double cx, double cy,
                     double bin_px, int stride) {
  const int nb = int(std::hypot(hp.nx, hp.ny) / bin_px) + 2;
  std::vector<double> s(size_t(nb), 0.0), n(size_t(nb), 0.0);
  double sum = 0, sum2 = 0, count = 0;
  for (int y = 0; y < hp.ny; y += stride)
    for (int x = 0; x < hp.nx; x += stride) {
      const size_t i = size_t(y) * size_t(hp.nx) + size_t(x);
      if (!valid[i])
        continue;
      const double v = hp.pixels[i];
      const int b = int(std::sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy)) / bin_px);
      s[size_t(b)] += v;
      n[size_t(b)] += 1;
      sum += v;
      sum2 += v * v;
      count += 1;
    }
  if (count < 16)
    return -1e300;
  double between = 0;
  int bins = 0;
  for (int b = 0; b < nb; ++b)
    if (n[size_t(b)] > 0) {
      between += s[size_t(b)] * s[size_t(b)] / n[size_t(b)];
      ++bins;
    }
  between -= sum * sum / count;
  const double total = sum2 - sum * sum / count;
  const double within_var = std::max(0.0, total - between) / std::max(1.0, count - bins);
  return between - (bins - 1) * within_var;
}

// Block average by `f` (a block is valid when most of it is unmasked).
void downsample(const Image& img, const std::vector<std::uint8_t>& valid, int f, Image& out,
                std::vector<std::uint8_t>& out_valid) {
  out = Image(img.nx / f, img.ny / f);
  out_valid.assign(out.size(), 0);
  for (int Y = 0; Y < out.ny; ++Y)
    for (int X = 0; X < out.nx; ++X) {
      double s = 0;
      int n = 0;
      for (int dy = 0; dy < f; ++dy)
        for (int dx = 0; dx < f; ++dx) {
          const size_t i = size_t(Y * f + dy) * size_t(img.nx) + size_t(X * f + dx);
          if (valid[i]) {
            s += img.pixels[i];
            ++n;
          }
        }
      if (2 * n > f * f) {
        out.at(X, Y) = float(s / n);
        out_valid[size_t(Y) * size_t(out.nx) + size_t(X)] = 1;
      }
    }
}

// Centre that maximises the ring contrast, coarse to fine: exhaustive on a ≤ 64-px copy, a
// ±3-px local search at each finer power-of-two level, then a shrinking pattern search at full
// resolution. Needs no direct beam.
Vec2 centre_from_ring_contrast(const Image& hp, const std::vector<std::uint8_t>& valid) {
  int F = 1;
  while (std::max(hp.nx, hp.ny) / F > 64)
    F *= 2;
  Vec2 c;  // in full-resolution px
  for (int f = F; f >= 1; f /= 2) {
    Image small;
    std::vector<std::uint8_t> small_valid;
    if (f > 1)
      downsample(hp, valid, f, small, small_valid);
    const Image& im = f > 1 ? small : hp;
    const auto& va = f > 1 ? small_valid : valid;
    const int stride = f > 1 ? 1 : std::max(1, int(std::sqrt(double(hp.size()) / 100000.0)));
    // Block (X, Y) covers full-res pixels f·X … f·X + f − 1: its centre is f·X + (f − 1)/2.
    auto to_small = [&](const Vec2& v) { return Vec2((v.x() - 0.5 * (f - 1)) / f, (v.y() - 0.5 * (f - 1)) / f); };
    int x0, x1, y0, y1;
    if (f == F) {
      x0 = im.nx / 10;
      x1 = im.nx - 1 - im.nx / 10;
      y0 = im.ny / 10;
      y1 = im.ny - 1 - im.ny / 10;
    } else {
      const Vec2 s0 = to_small(c);
      x0 = int(std::lround(s0.x())) - 3;
      x1 = x0 + 6;
      y0 = int(std::lround(s0.y())) - 3;
      y1 = y0 + 6;
    }
    double best = -1e300;
    Vec2 bs = to_small(c);
    for (int y = std::max(0, y0); y <= std::min(im.ny - 1, y1); ++y)
      for (int x = std::max(0, x0); x <= std::min(im.nx - 1, x1); ++x) {
        const double v = ring_contrast(im, va, x, y, 1.0, stride);
        if (v > best) {
          best = v;
          bs = Vec2(x, y);
        }
      }
    c = bs * f + Vec2::Constant(0.5 * (f - 1));
  }
  const int stride = std::max(1, int(std::sqrt(double(hp.size()) / 100000.0)));
  double best = ring_contrast(hp, valid, c.x(), c.y(), 1.0, stride);
  for (double step = 0.5; step >= 0.12; step *= 0.5) {
    bool moved = true;
    for (int guard = 0; moved && guard < 20; ++guard) {
      moved = false;
      for (const Vec2& d : {Vec2(step, 0), Vec2(-step, 0), Vec2(0, step), Vec2(0, -step)}) {
        const double v = ring_contrast(hp, valid, c.x() + d.x(), c.y() + d.y(), 1.0, stride);
        if (v > best) {
          best = v;
          c += d;
          moved = true;
        }
      }
    }
  }
  return c;
}

struct ConcentricFit {
  Ellipse ellipse;            // semi-axes of ring 0
  std::vector<double> mean_radius_px;  // per ring
  double rms_px = 0, centre_sigma_px = 0;
};

// Concentric ellipses with a common centre and shape, one size per ring: the conic
// (x²+y²)/2 + a(x²−y²) + b·xy + d·x + e·y + F_k = 0 is linear in (a, b, d, e, F_k).
// Rows are divided by the ring radius so residuals are in px.
ConcentricFit fit_concentric(const std::vector<std::vector<Vec2>>& rings, Vec2 origin) {
  const int K = int(rings.size());
  int n = 0;
  for (const auto& r : rings)
    n += int(r.size());
  Eigen::MatrixXd X = Eigen::MatrixXd::Zero(n, 4 + K);
  Eigen::VectorXd rhs(n);
  int row = 0;
  for (int k = 0; k < K; ++k) {
    double r0 = 0;
    for (const Vec2& p : rings[size_t(k)])
      r0 += (p - origin).norm();
    r0 /= double(rings[size_t(k)].size());
    for (const Vec2& p : rings[size_t(k)]) {
      const double x = p.x() - origin.x(), y = p.y() - origin.y();
      X.row(row) << (x * x - y * y) / r0, x * y / r0, x / r0, y / r0, Eigen::RowVectorXd::Zero(K);
      X(row, 4 + k) = 1 / r0;
      rhs(row) = -0.5 * (x * x + y * y) / r0;
      ++row;
    }
  }
  const Eigen::VectorXd p = X.colPivHouseholderQr().solve(rhs);
  const double A = 0.5 + p(0), C = 0.5 - p(0), B = p(1), D = p(2), E = p(3);
  Eigen::Matrix2d H;
  H << 2 * A, B, B, 2 * C;
  const Vec2 c = H.inverse() * Vec2(-D, -E);
  Eigen::Matrix2d Q;
  Q << A, B / 2, B / 2, C;
  Eigen::SelfAdjointEigenSolver<Eigen::Matrix2d> qs(Q);
  const double l0 = qs.eigenvalues()(0), l1 = qs.eigenvalues()(1);
  if (!(l0 > 0 && l1 > 0))
    fail("ring fit: the ring points do not lie on concentric ellipses");
  ConcentricFit out;
  const Vec2 major = qs.eigenvectors().col(0);  // smaller eigenvalue = longer axis
  for (int k = 0; k < K; ++k) {
    const double F0 = p(4 + k) + 0.5 * (D * c.x() + E * c.y());
    if (!(F0 < 0))
      fail("ring fit: ring ", k + 1, " gives no real ellipse");
    const double a = std::sqrt(-F0 / l0), b = std::sqrt(-F0 / l1);
    out.mean_radius_px.push_back(0.5 * (a + b));
    if (k == 0) {
      out.ellipse.semi_major_px = a;
      out.ellipse.semi_minor_px = b;
    }
  }
  out.ellipse.cx_px = origin.x() + c.x();
  out.ellipse.cy_px = origin.y() + c.y();
  double ang = std::atan2(-major.y(), major.x()) / units::deg_to_rad;
  while (ang > 90)
    ang -= 180;
  while (ang <= -90)
    ang += 180;
  out.ellipse.angle_deg = ang;
  const Eigen::VectorXd res = X * p - rhs;
  const double s2 = res.squaredNorm() / std::max(1, n - 4 - K);
  const Eigen::MatrixXd cov = (X.transpose() * X).inverse() * s2;
  out.centre_sigma_px = std::sqrt(cov(2, 2) + cov(3, 3));
  // (r² − R²)/2 ≈ R·δr, divided by r0: the residuals are radial distances in px.
  out.rms_px = std::sqrt(res.squaredNorm() / n);
  return out;
}


// Azimuthal mean about the (distortion-corrected) centre in bins of bin_px; bins with fewer
// than a quarter of a full circle's pixels are NaN (partial arcs near the corners).
void azimuthal_profile(const Image& img, const DetectorMask& mask, const PatternGeometry& geom, double bin_px,
                       std::vector<double>& radius, std::vector<double>& mean) {
  const int nb = int(std::hypot(img.nx, img.ny) / bin_px) + 2;
  std::vector<double> s(size_t(nb), 0.0), n(size_t(nb), 0.0);
  for (int y = 0; y < img.ny; ++y)
    for (int x = 0; x < img.nx; ++x) {
      if (mask.is_excluded(x, y))
        continue;
      const int b = int(geom.corrected_offset_px(x, y).norm() / bin_px);
      s[size_t(b)] += img.at(x, y);
      n[size_t(b)] += 1;
    }
  radius.assign(size_t(nb), 0);
  mean.assign(size_t(nb), NaN);
  for (int b = 0; b < nb; ++b) {
    radius[size_t(b)] = (b + 0.5) * bin_px;
    const double full = 2 * PI * radius[size_t(b)] * bin_px;
    if (n[size_t(b)] > 0 && n[size_t(b)] >= 0.25 * full)
      mean[size_t(b)] = s[size_t(b)] / n[size_t(b)];
  }
  while (!mean.empty() && !std::isfinite(mean.back())) {
    mean.pop_back();
    radius.pop_back();
  }
}

// Lower envelope: morphological opening (min then max over ±w bins) follows the smooth
// fall-off and cuts under rings narrower than 2w; NaN bins are ignored.
std::vector<double> baseline_of(const std::vector<double>& v, int w) {
  auto filter = [&](const std::vector<double>& in, bool is_min) {
    std::vector<double> r(in.size(), NaN);
    for (int i = 0; i < int(in.size()); ++i) {
      double m = NaN;
      for (int j = std::max(0, i - w); j <= std::min(int(in.size()) - 1, i + w); ++j)
        if (std::isfinite(in[size_t(j)]))
          m = !std::isfinite(m) ? in[size_t(j)] : is_min ? std::min(m, in[size_t(j)]) : std::max(m, in[size_t(j)]);
      r[size_t(i)] = m;
    }
    return r;
  };
  return filter(filter(v, true), false);
}

// Ellipse of ring k of a concentric fit (same centre and shape, its own mean radius).
Ellipse ring_ellipse(const Ellipse& shape, double mean_radius_px) {
  Ellipse e = shape;
  const double q = shape.axis_ratio();
  e.semi_major_px = 2 * mean_radius_px * q / (1 + q);
  e.semi_minor_px = 2 * mean_radius_px / (1 + q);
  return e;
}

}  // namespace

RingPattern analyse_ring_pattern(const Image& p, const RingSpec& spec) {
  if (p.nx < 32 || p.ny < 32)
    fail("ring pattern: ", p.nx, "×", p.ny, " pixels is too small (need at least 32×32)");
  require_finite(p, "ring pattern");
  const auto [lo, hi] = std::minmax_element(p.pixels.begin(), p.pixels.end());
  if (!(*hi > *lo))
    fail("ring pattern: the image is constant (every pixel = ", *lo, "): no rings");
  RingPattern out;
  out.mask = spec.mask;
  if (!out.mask.empty() && (out.mask.nx != p.nx || out.mask.ny != p.ny))
    fail("ring pattern: the mask is ", out.mask.nx, "×", out.mask.ny, " but the pattern is ", p.nx, "×", p.ny,
         "; give a mask of the pattern's size");
  if (spec.auto_mask) {
    // The beam stop's shadow: far below the median, dilated past its blurred edge.
    DetectorMask dark = dark_region_mask(p, 0.15, 3);
    const size_t before = out.mask.count();
    if (out.mask.empty())
      out.mask = DetectorMask{p.nx, p.ny, std::vector<std::uint8_t>(p.size(), 0)};
    add_to_mask(out.mask, dark);
    out.n_masked_auto = out.mask.count() - before;
  }
  std::vector<std::uint8_t> valid(p.size(), 1);
  for (size_t i = 0; i < p.size(); ++i)
    valid[i] = !(!out.mask.empty() && out.mask.excluded[i]);
  if (std::count(valid.begin(), valid.end(), 1) < std::ptrdiff_t(p.size() / 4))
    fail("ring pattern: ", 100 - 100 * std::count(valid.begin(), valid.end(), 1) / std::ptrdiff_t(p.size()),
         " % of the pixels are masked; check --mask (nonzero = excluded)");
  const double min_r = spec.min_radius_px > 0 ? spec.min_radius_px : 0.04 * std::max(p.nx, p.ny);

  Vec2 c;
  const bool given = std::isfinite(spec.centre_x_px) && std::isfinite(spec.centre_y_px);
  if (given) {
    if (spec.centre_x_px < 0 || spec.centre_y_px < 0 || spec.centre_x_px > p.nx - 1 || spec.centre_y_px > p.ny - 1)
      fail("ring pattern: --centre ", spec.centre_x_px, ",", spec.centre_y_px, " px is outside the ", p.nx, "×", p.ny,
           " pattern");
    c = Vec2(spec.centre_x_px, spec.centre_y_px);
  } else {
    // High-pass (rings only, no diffuse fall-off), masked pixels ignored.
    const Image smooth = masked_blur(p, out.mask, 1.0), bg = masked_blur(p, out.mask, 8.0);
    Image hp = p;
    for (size_t i = 0; i < p.size(); ++i)
      hp.pixels[i] = valid[i] ? smooth.pixels[i] - bg.pixels[i] : 0.f;
    c = centre_from_ring_contrast(hp, valid);
  }

  PatternGeometry geom;
  geom.ellipse.cx_px = c.x();
  geom.ellipse.cy_px = c.y();
  geom.ellipse.semi_major_px = geom.ellipse.semi_minor_px = 100;
  std::vector<double> rad, prof;
  if (!given) {
    // Strongest rings of the circular profile about the rough centre → concentric ellipses.
    azimuthal_profile(p, out.mask, geom, 1.0, rad, prof);
    const auto base = baseline_of(prof, 8);
    std::vector<double> res(prof.size());
    for (size_t i = 0; i < prof.size(); ++i)
      res[i] = prof[i] - base[i];
    std::vector<double> guesses;
    for (const auto& pk : find_profile_peaks(res, rad, spec.min_snr, 8))
      if (pk.radius_px >= min_r && int(guesses.size()) < spec.max_fitted_rings)
        guesses.push_back(pk.radius_px);
    if (guesses.empty())
      fail("ring pattern: no ring stands out of the azimuthal profile about (", c.x(), ", ", c.y(),
           ") px; is this a ring pattern? (give the centre with --centre X,Y)");
    for (int pass = 0; pass < 2; ++pass) {
      std::vector<std::vector<Vec2>> pts;
      for (double r : guesses) {
        RingFitSpec fs;
        fs.half_width_px = std::max(3.0, std::min(8.0, 0.15 * r));
        fs.iterations = 2;
        try {
          auto f = fit_ring(p, out.mask, c.x(), c.y(), r, fs);
          pts.push_back(f.points_px);
        } catch (const Error&) {
          // A ring too weak or too broken to trace contributes nothing to the centre.
        }
      }
      if (pts.empty())
        fail("ring pattern: none of the ", guesses.size(), " rings near r = ", guesses[0],
             " px could be traced around (", c.x(), ", ", c.y(), ") px; give the centre with --centre X,Y");
      ConcentricFit fit = fit_concentric(pts, c);
      // Robust: drop points beyond 3 MAD of their ring's ellipse, refit once.
      for (int cut = 0; cut < 2; ++cut) {
        std::vector<double> dev;
        std::vector<std::vector<double>> per(pts.size());
        for (size_t k = 0; k < pts.size(); ++k) {
          const Ellipse e = ring_ellipse(fit.ellipse, fit.mean_radius_px[k]);
          for (const Vec2& q : pts[k]) {
            const double dx = q.x() - e.cx_px, dy = q.y() - e.cy_px;
            per[k].push_back(std::hypot(dx, dy) - e.radius_along_px(dx, dy));
            dev.push_back(std::abs(per[k].back()));
          }
        }
        const double lim = std::max(0.1, 3 * 1.4826 * median(dev));
        for (size_t k = 0; k < pts.size(); ++k) {
          std::vector<Vec2> kept;
          for (size_t j = 0; j < pts[k].size(); ++j)
            if (std::abs(per[k][j]) <= lim)
              kept.push_back(pts[k][j]);
          pts[k] = kept;
        }
        fit = fit_concentric(pts, Vec2(fit.ellipse.cx_px, fit.ellipse.cy_px));
      }
      c = Vec2(fit.ellipse.cx_px, fit.ellipse.cy_px);
      geom.ellipse = fit.ellipse;
      out.n_rings_fitted = int(pts.size());
      out.fit_rms_px = fit.rms_px;
      out.centre_uncertainty_px = fit.centre_sigma_px;
      for (size_t k = 0; k < guesses.size() && k < fit.mean_radius_px.size(); ++k)
        guesses[k] = fit.mean_radius_px[k];
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "rings (%d fitted)", out.n_rings_fitted);
    out.centre_method = buf;
  } else {
    out.centre_method = "given";
  }
  geom.correct_distortion = true;
  out.ellipse = geom.ellipse;

  azimuthal_profile(p, out.mask, geom, out.bin_px, out.profile_radius_px, out.profile);
  out.baseline = baseline_of(out.profile, int(8 / out.bin_px));
  std::vector<double> res(out.profile.size());
  for (size_t i = 0; i < res.size(); ++i)
    res[i] = out.profile[i] - out.baseline[i];
  for (const auto& pk : find_profile_peaks(res, out.profile_radius_px, spec.min_snr, int(8 / out.bin_px)))
    if (pk.radius_px >= min_r) {
      out.rings.push_back({pk.radius_px, pk.height, pk.snr});
      if (pk.snr > 0)
        out.profile_noise = pk.prominence / pk.snr;
    }
  std::sort(out.rings.begin(), out.rings.end(), [](const Ring& a, const Ring& b) { return a.radius_px < b.radius_px; });
  if (out.rings.empty())
    fail("ring pattern: no ring beyond r = ", min_r, " px stands ", spec.min_snr,
         "× above the profile noise about (", c.x(), ", ", c.y(), ") px");
  return out;
}

RingProfile find_rings(const Image& pattern, const RingSpec& spec) {
  const RingPattern rp = analyse_ring_pattern(pattern, spec);
  RingProfile out;
  out.centre_x_px = rp.ellipse.cx_px;
  out.centre_y_px = rp.ellipse.cy_px;
  out.bin_px = rp.bin_px;
  out.mean = rp.profile;
  out.rings = rp.rings;
  return out;
}

namespace {

struct RefRing {
  std::string hkl;
  double g_invA, d_A, strength;  // strength: kinematic powder ring height m|F|²/g² (relative)
};

std::string hkl_text(const Vec3& h) {
  std::string s;
  for (int i = 0; i < 3; ++i) {
    const long v = std::lround(h[i]);
    s += v < 0 ? "-" + std::to_string(-v) : std::to_string(v);
  }
  return s;
}

struct RingTrial {
  double scale = 0;
  std::vector<RingAssignment> rings;
  int n_matched = 0, n_strong_unmatched = 0, n_missing = 0, n_unexplained = 0;
  double score = -1e300, residual_rel = 0, sigma = 0, n_eff = 0;
  std::string missing;            // strong predicted rings not in the profile
  std::string unmatched;          // strong measured rings without a reflection
  std::string unexplained;        // profile intensity (shoulders) where no reflection lies
  bool acceptable() const {
    return n_matched >= 3 && n_eff > 0 && missing.empty() && unmatched.empty() && unexplained.empty();
  }
  std::string why() const {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%.6g 1/Å per px matches %d ring(s)", scale, n_matched);
    std::string s = buf;
    if (!unmatched.empty())
      s += "; strong ring(s) at " + unmatched + " px match no reflection";
    if (!missing.empty())
      s += "; predicted " + missing + " not in the pattern";
    if (!unexplained.empty())
      s += "; intensity at " + unexplained + " px where no reflection lies";
    if (n_matched < 3)
      s += "; fewer than 3 rings matched";
    return s;
  }
};

// Residual profile (above baseline) near radius r: the largest value within ±tol·r.
double excess_near(const RingPattern& pat, double r, double tol) {
  double best = NaN;
  for (size_t i = 0; i < pat.profile.size(); ++i)
    if (std::abs(pat.profile_radius_px[i] - r) <= std::max(tol * r, pat.bin_px) && std::isfinite(pat.profile[i])) {
      const double v = pat.profile[i] - pat.baseline[i];
      best = std::isfinite(best) ? std::max(best, v) : v;
    }
  return best;
}

RingTrial evaluate(double scale, const RingPattern& pat, const std::vector<RefRing>& refs,
                   const RingMatchSpec& spec, double strong_snr, double usable_r, double min_r, double max_r) {
  RingTrial t;
  for (int iter = 0; iter < 3; ++iter) {
    t = RingTrial{};
    t.scale = scale;
    double sum_w = 0, sum_w2 = 0, sum_e = 0;
    std::vector<double> fit_w;  // per ring: weight in the scale fit (0 = not used)
    for (const Ring& ring : pat.rings) {
      RingAssignment a{ring.radius_px, ring.snr, "", 0, 0};
      double best = spec.tolerance_rel;
      int candidates = 0;
      for (const RefRing& ref : refs) {
        const double e = (scale * ring.radius_px - ref.g_invA) / ref.g_invA;
        if (std::abs(e) <= spec.tolerance_rel)
          ++candidates;
        if (std::abs(e) <= best) {
          best = std::abs(e);
          a.hkl = ref.hkl;
          a.d_A = ref.d_A;
          a.error_rel = e;
        }
      }
      // SNR weights: a weak ring's radius is less certain, and among dense high-index lines a
      // weak (possibly spurious) ring always finds some reflection within tolerance, so such
      // ambiguous weak rings are labelled but left out of the fit.
      const bool ambiguous_weak = candidates > 1 && ring.snr < strong_snr;
      fit_w.push_back(a.hkl.empty() || ambiguous_weak ? 0.0 : ring.snr);
      if (!a.hkl.empty()) {
        ++t.n_matched;
        sum_w += fit_w.back();
        sum_w2 += fit_w.back() * fit_w.back();
        sum_e += fit_w.back() * a.error_rel * a.error_rel;
      } else if (ring.snr >= strong_snr) {
        ++t.n_strong_unmatched;
        char buf[32];
        std::snprintf(buf, sizeof buf, "%s%.1f", t.unmatched.empty() ? "" : ", ", ring.radius_px);
        t.unmatched += buf;
      }
      t.rings.push_back(a);
    }
    t.residual_rel = sum_w > 0 ? std::sqrt(sum_e / sum_w) : 1;
    t.n_eff = sum_w2 > 0 ? sum_w * sum_w / sum_w2 : 0;
    if (t.n_matched == 0 || !(sum_w > 0))
      return t;
    // Weighted least squares over the matched rings: minimise Σ w (s·r/g − 1)².
    double num = 0, den = 0;
    for (size_t i = 0; i < t.rings.size(); ++i) {
      const auto& a = t.rings[i];
      if (!a.hkl.empty()) {
        const double x = a.radius_px * a.d_A;
        num += fit_w[i] * x;
        den += fit_w[i] * x * x;
      }
    }
    const double next = num / den;
    if (std::abs(next - scale) < 1e-9 * scale)
      break;
    scale = next;
  }
  if (t.n_matched >= 2)
    t.sigma = t.scale * t.residual_rel / std::sqrt(std::max(1.0, t.n_eff - 1));
  // Expected ring heights from the matched ones (kinematic ratios are rough: dynamical
  // scattering flattens them, hence the generous threshold).
  std::vector<double> k;
  double top_expected = 0;
  for (const auto& a : t.rings)
    if (!a.hkl.empty())
      for (const RefRing& ref : refs)
        if (ref.hkl == a.hkl) {
          const double h = excess_near(pat, a.radius_px, 0.005);
          if (h > 0)
            k.push_back(h / ref.strength);
          top_expected = std::max(top_expected, ref.strength);
        }
  const double per_strength = median(k);
  for (const RefRing& ref : refs) {
    // Missing rings count from the innermost usable radius (beam stop / mask edge), not from
    // the innermost ring seen: a scale whose strong inner rings would sit just outside the
    // beam stop, yet are absent, is wrong.
    const double r = ref.g_invA / t.scale;
    if (r < usable_r || r > max_r || ref.strength < spec.min_expected_rel * top_expected)
      continue;
    bool seen = false;
    for (const auto& a : t.rings)
      seen = seen || a.hkl == ref.hkl;
    const double h = excess_near(pat, r, 0.5 * spec.tolerance_rel);
    if (!seen && !(h > 0.25 * per_strength * ref.strength)) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "%s%s at %.1f px", t.missing.empty() ? "" : ", ", ref.hkl.c_str(), r);
      t.missing += buf;
      ++t.n_missing;
    }
  }
  // Shoulders count too: a blended ring (Au 200 beside 111) is no profile maximum, but a
  // phase without a reflection there cannot explain it.
  double top_excess = 0;
  for (size_t i = 0; i < pat.profile.size(); ++i)
    if (std::isfinite(pat.profile[i]) && pat.profile_radius_px[i] >= min_r && pat.profile_radius_px[i] <= max_r)
      top_excess = std::max(top_excess, pat.profile[i] - pat.baseline[i]);
  const double ring_half_width_px = 2.5;
  bool in_region = false;
  for (size_t i = 0; i < pat.profile.size(); ++i) {
    const double r = pat.profile_radius_px[i];
    bool flagged = false;
    if (std::isfinite(pat.profile[i]) && r >= min_r && r <= max_r &&
        pat.profile[i] - pat.baseline[i] > 0.1 * top_excess) {
      flagged = true;
      for (const RefRing& ref : refs) {
        const double rp = ref.g_invA / t.scale;
        if (std::abs(r - rp) <= spec.tolerance_rel * rp + ring_half_width_px) {
          flagged = false;
          break;
        }
      }
    }
    if (flagged && !in_region) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%s%.1f", t.unexplained.empty() ? "" : ", ", r);
      t.unexplained += buf;
      ++t.n_unexplained;
    }
    in_region = flagged;
  }
  double score = 0;
  for (const auto& a : t.rings)
    score += a.hkl.empty() ? -a.snr : a.snr * (1 - 0.5 * std::abs(a.error_rel) / spec.tolerance_rel);
  t.score = score - 1e3 * (t.n_missing + t.n_strong_unmatched + t.n_unexplained);
  return t;
}

}  // namespace

RingCalibrationResult calibrate_ring_pattern(const RingPattern& pat, const Phase& reference, const RingMatchSpec& spec) {
  if (pat.rings.size() < 3)
    fail("ring calibration: only ", pat.rings.size(), " ring(s) found; need at least 3 to tell the scale "
         "from a coincidence (lower --min-snr, or check the centre with --centre X,Y)");
  std::vector<RefRing> refs;
  double top = 0;
  for (const auto& f : reference.families)
    if (f.kinematic_allowed && f.intensity_rel > 0) {
      const double g = 1 / f.d_A;
      refs.push_back({hkl_text(f.hkl), g, f.d_A, double(f.members.size()) * f.intensity_rel / (g * g)});
      top = std::max(top, refs.back().strength);
    }
  if (refs.size() < 3)
    fail("ring calibration: reference '", reference.name, "' has fewer than 3 allowed reflections");
  for (auto& r : refs)
    r.strength /= top;
  double max_snr = 0;
  for (const Ring& r : pat.rings)
    max_snr = std::max(max_snr, r.snr);
  const double strong_snr = 0.25 * max_snr;
  // Predicted and unexplained intensity is judged from the innermost strong ring outwards: weak
  // bumps near the beam stop's edge are no rings.
  double min_r = 0;
  for (const Ring& r : pat.rings)
    if (r.snr >= strong_snr) {
      min_r = 0.97 * r.radius_px;
      break;
    }
  double max_r = 0;
  for (size_t i = 0; i < pat.profile.size(); ++i)
    if (std::isfinite(pat.profile[i]))
      max_r = pat.profile_radius_px[i];
  max_r *= 0.97;
  // Innermost usable radius: the first profile bin outside the beam stop / mask, plus a ring's
  // half width so that a ring cut by the edge is not demanded.
  double usable_r = 0;
  for (size_t i = 0; i < pat.profile.size(); ++i)
    if (std::isfinite(pat.profile[i])) {
      usable_r = pat.profile_radius_px[i] + 3;
      break;
    }
  usable_r = std::min(usable_r, min_r);
  // Trial scales: each of the strongest rings taken as each of the first reflections.
  std::vector<const Ring*> strongest;
  for (const Ring& r : pat.rings)
    strongest.push_back(&r);
  std::sort(strongest.begin(), strongest.end(), [](const Ring* a, const Ring* b) { return a->snr > b->snr; });
  strongest.resize(std::min<size_t>(strongest.size(), 4));
  std::vector<RingTrial> trials;
  for (const Ring* r : strongest)
    for (size_t j = 0; j < refs.size() && j < 12; ++j)
      trials.push_back(evaluate(refs[j].g_invA / r->radius_px, pat, refs, spec, strong_snr, usable_r, min_r, max_r));
  std::sort(trials.begin(), trials.end(), [](const RingTrial& a, const RingTrial& b) { return a.score > b.score; });
  const RingTrial& best = trials.front();
  const RingTrial* second = nullptr;
  for (const auto& t : trials)
    if (std::abs(t.scale / best.scale - 1) > 2 * spec.tolerance_rel) {
      second = &t;
      break;
    }
  if (!best.acceptable())
    fail("ring calibration: the rings do not fit ", reference.name, " (best: ", best.why(),
         "); wrong --reference, or a wrong centre (give --centre X,Y)");
  // Two acceptable scales far apart with nearly the same support: the pattern does not decide.
  if (second && second->acceptable() && second->score > 0.8 * best.score)
    fail("ring calibration: two scales fit ", reference.name, " almost equally well (", best.why(), "; ",
         second->why(), "); give the centre (--centre X,Y), a mask of the beam stop (--mask) or raise --min-snr "
         "so that the weak rings do not decide");
  RingCalibrationResult out;
  out.pixel_size_invA = best.scale;
  out.uncertainty_invA = best.sigma;
  out.residual_rel = best.residual_rel;
  out.n_matched = best.n_matched;
  out.rings = best.rings;
  if (second)
    out.runner_up = second->why();
  return out;
}

}  // namespace epitem
