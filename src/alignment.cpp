#include "epitem/alignment.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "epitem/error.hpp"
#include "epitem/fft.hpp"
#include "epitem/units.hpp"

namespace epitem {

namespace {

double pixel_ratio(const Image& reference, const Image& moving) {
  return reference.pixel_size_A > 0 && moving.pixel_size_A > 0 ? reference.pixel_size_A / moving.pixel_size_A : 1.0;
}

void check(const Image& image, const char* what) {
  if (image.nx < 16 || image.ny < 16)
    fail("compare: the ", what, " image is ", image.nx, "×", image.ny, " pixels; need at least 16×16");
  require_finite(image, std::string("compare: ") + what + " image");
}

// Whole-pixel shifts of b's content relative to a at the local maxima of their circular cross-
// correlation that reach half the highest, highest first (at most 12).
struct IntegerPeak {
  int sx = 0, sy = 0;
};
std::vector<IntegerPeak> correlation_peaks(const Image& a, const Image& b, int threads) {
  const int nx = a.nx, ny = a.ny;
  const Fft2D fft(nx, ny, threads, FftRigor::Estimate);
  AlignedVector<cfloat> A(a.size()), B(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    A[i] = {a.pixels[i], 0.f};
    B[i] = {b.pixels[i], 0.f};
  }
  fft.forward(A);
  fft.forward(B);
  for (size_t i = 0; i < A.size(); ++i)
    A[i] = std::conj(A[i]) * B[i];
  fft.inverse(A);
  auto at = [&](int x, int y) { return A[size_t((y + ny) % ny) * size_t(nx) + size_t((x + nx) % nx)].real(); };
  float highest = -std::numeric_limits<float>::infinity();
  for (const auto& c : A)
    highest = std::max(highest, c.real());
  std::vector<std::pair<float, IntegerPeak>> found;
  for (int y = 0; y < ny; ++y)
    for (int x = 0; x < nx; ++x) {
      const float c = at(x, y);
      if (!(c >= 0.5f * highest))
        continue;
      bool is_max = true;
      for (int dy = -1; dy <= 1 && is_max; ++dy)
        for (int dx = -1; dx <= 1; ++dx)
          if ((dx || dy) && (at(x + dx, y + dy) > c || (at(x + dx, y + dy) == c && dy * 3 + dx < 0))) {
            is_max = false;
            break;
          }
      if (is_max)
        found.push_back({c, {x > nx / 2 ? x - nx : x, y > ny / 2 ? y - ny : y}});
    }
  std::sort(found.begin(), found.end(), [](const auto& p, const auto& q) { return p.first > q.first; });
  std::vector<IntegerPeak> peaks;
  for (size_t i = 0; i < std::min<size_t>(found.size(), 12); ++i)
    peaks.push_back(found[i].second);
  return peaks;
}

// Vertex (in sample steps, clamped to ±1) of the quadratic through 3×3 samples c[y][x]; the cross
// term is kept because lattice fringes make the correlation peak a tilted ridge.
void quadratic_vertex(const double c[3][3], double& ox, double& oy) {
  const double gx = 0.5 * (c[1][2] - c[1][0]), gy = 0.5 * (c[2][1] - c[0][1]);
  const double hxx = c[1][2] - 2 * c[1][1] + c[1][0], hyy = c[2][1] - 2 * c[1][1] + c[0][1];
  const double hxy = 0.25 * (c[2][2] - c[0][2] - c[2][0] + c[0][0]);
  const double det = hxx * hyy - hxy * hxy;
  ox = oy = 0;
  if (hxx < 0 && det > 0) {
    ox = std::clamp(-(hyy * gx - hxy * gy) / det, -1.0, 1.0);
    oy = std::clamp(-(hxx * gy - hxy * gx) / det, -1.0, 1.0);
  }
}

// NCC over the overlap of a(x, y) and b(x + dx, y + dy) (finite pixels only).
double ncc_at(const Image& a, const Image& b, int dx, int dy) {
  double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  size_t n = 0;
  for (int y = std::max(0, -dy); y < std::min(a.ny, b.ny - dy); ++y)
    for (int x = std::max(0, -dx); x < std::min(a.nx, b.nx - dx); ++x) {
      const double u = a.at(x, y), v = b.at(x + dx, y + dy);
      if (!std::isfinite(u) || !std::isfinite(v))
        continue;
      sa += u;
      sb += v;
      saa += u * u;
      sbb += v * v;
      sab += u * v;
      ++n;
    }
  if (n < 16)
    return -1;
  const double N = double(n);
  const double cov = sab / N - sa * sb / (N * N);
  const double va = saa / N - sa * sa / (N * N), vb = sbb / N - sb * sb / (N * N);
  return va > 0 && vb > 0 ? cov / std::sqrt(va * vb) : -1;
}

// Mean-subtracted, optionally Hann-windowed copy (NaN → 0) for the circular correlation.
Image windowed(const Image& img, bool window) {
  double s = 0;
  size_t n = 0;
  for (float v : img.pixels)
    if (std::isfinite(v)) {
      s += v;
      ++n;
    }
  const double mean = n ? s / double(n) : 0;
  Image out(img.nx, img.ny);
  for (int y = 0; y < img.ny; ++y)
    for (int x = 0; x < img.nx; ++x) {
      const float v = img.at(x, y);
      const double w = window ? (0.5 - 0.5 * std::cos(2 * PI * x / img.nx)) * (0.5 - 0.5 * std::cos(2 * PI * y / img.ny)) : 1.0;
      out.at(x, y) = std::isfinite(v) ? float((v - mean) * w) : 0.f;
    }
  return out;
}

}  // namespace

Image resample(const Image& m, int nx, int ny, double ref_pixel_A, const Alignment& a) {
  Image out(nx, ny);
  out.pixel_size_A = ref_pixel_A;
  const double s = (ref_pixel_A > 0 && m.pixel_size_A > 0 ? ref_pixel_A / m.pixel_size_A : 1.0) * a.scale;
  // A CCW rotation on screen (y up) is [[c, s], [−s, c]] in (column, row) coordinates.
  const double th = a.rotation_deg * units::deg_to_rad, c = std::cos(th), sn = std::sin(th);
  const double cxr = 0.5 * (nx - 1), cyr = 0.5 * (ny - 1), cxm = 0.5 * (m.nx - 1), cym = 0.5 * (m.ny - 1);
  for (int y = 0; y < ny; ++y)
    for (int x = 0; x < nx; ++x) {
      const double u = x - cxr + a.shift_x_px, v = y - cyr + a.shift_y_px;
      const double mx = cxm + s * (c * u + sn * v), my = cym + s * (-sn * u + c * v);
      const int x0 = int(std::floor(mx)), y0 = int(std::floor(my));
      if (x0 < 0 || y0 < 0 || x0 + 1 >= m.nx || y0 + 1 >= m.ny) {
        out.at(x, y) = std::nanf("");
        continue;
      }
      const double fx = mx - x0, fy = my - y0;
      out.at(x, y) = float((1 - fy) * ((1 - fx) * m.at(x0, y0) + fx * m.at(x0 + 1, y0)) +
                           fy * ((1 - fx) * m.at(x0, y0 + 1) + fx * m.at(x0 + 1, y0 + 1)));
    }
  return out;
}

Image z_score(const Image& image) {
  double s = 0, s2 = 0;
  size_t n = 0;
  for (float v : image.pixels)
    if (std::isfinite(v)) {
      s += v;
      s2 += double(v) * v;
      ++n;
    }
  const double mean = n ? s / double(n) : 0, var = n ? s2 / double(n) - mean * mean : 0;
  if (!(var > 1e-12 * std::max(1.0, mean * mean)))
    fail("compare: the image is constant: nothing to compare");
  const double sd = std::sqrt(var);
  Image out = image;
  for (auto& v : out.pixels)
    if (std::isfinite(v))
      v = float((v - mean) / sd);
  return out;
}

Alignment align_images(const Image& reference, const Image& moving, const AlignSpec& spec) {
  check(reference, "reference (first)");
  check(moving, "second");
  if (spec.max_rotation_deg < 0 || spec.max_scale_change < 0 || spec.max_scale_change >= 0.5 ||
      !(spec.rotation_step_deg > 0) || !(spec.scale_step > 0))
    fail("compare: rotation range must be ≥ 0 deg with a step > 0; scale change in [0, 0.5) with a step > 0");
  const double ratio = pixel_ratio(reference, moving);
  if (moving.nx / ratio < 8 || moving.ny / ratio < 8)
    fail("compare: the second image covers only ", moving.nx / ratio, "×", moving.ny / ratio,
         " reference pixels (check the pixel sizes)");
  const Image ref_w = windowed(reference, true);
  Alignment best;
  double best_score = -1e300;
  const int n_rot = int(std::floor(spec.max_rotation_deg / spec.rotation_step_deg + 1e-9));
  const int n_scale = int(std::floor(spec.max_scale_change / spec.scale_step + 1e-9));
  for (int ir = -n_rot; ir <= n_rot; ++ir)
    for (int is = -n_scale; is <= n_scale; ++is) {
      Alignment a;
      a.rotation_deg = ir * spec.rotation_step_deg;
      a.scale = 1 + is * spec.scale_step;
      const Image warped = resample(moving, reference.nx, reference.ny, reference.pixel_size_A, a);
      // The windowed correlation finds candidate whole-pixel shifts; its windows bias heights
      // toward zero shift, so candidates are compared, and refined, on the NCC over the overlap
      // instead (unbiased, smooth). Lattice-equivalent candidates match about equally well: the
      // smallest consistent shift is taken (continuity with the unshifted image).
      struct Candidate {
        int sx, sy;
        double ncc;
      };
      std::vector<Candidate> candidates;
      // Seeds: the peaks of the windowed correlation, and zero shift (a frame-to-frame shift is
      // small; a moving particle near the centre, where the window weighs most, can hide the
      // lattice's own peak in its ridge). Each climbs to its NCC maximum.
      std::vector<IntegerPeak> seeds = correlation_peaks(ref_w, windowed(warped, true), spec.threads);
      seeds.push_back({0, 0});
      auto enough_overlap = [&](int sx, int sy) {
        // Peaks whose overlap is under a quarter of the frame are wrap-around artefacts.
        return double(reference.nx - std::abs(sx)) * (reference.ny - std::abs(sy)) >= 0.25 * double(reference.size());
      };
      for (const IntegerPeak& p : seeds) {
        if (!enough_overlap(p.sx, p.sy))
          continue;
        Candidate c{p.sx, p.sy, ncc_at(reference, warped, p.sx, p.sy)};
        for (int step = 0; step < 64; ++step) {
          Candidate next = c;
          for (int dy = -1; dy <= 1; ++dy)
            for (int dx = -1; dx <= 1; ++dx)
              if ((dx || dy) && enough_overlap(c.sx + dx, c.sy + dy)) {
                const double v = ncc_at(reference, warped, c.sx + dx, c.sy + dy);
                if (v > next.ncc)
                  next = {c.sx + dx, c.sy + dy, v};
              }
          if (next.sx == c.sx && next.sy == c.sy)
            break;
          c = next;
        }
        if (std::none_of(candidates.begin(), candidates.end(),
                         [&](const Candidate& o) { return o.sx == c.sx && o.sy == c.sy; }))
          candidates.push_back(c);
      }
      std::sort(candidates.begin(), candidates.end(), [](const Candidate& p, const Candidate& q) { return p.ncc > q.ncc; });
      // Distinct peaks are separated by a dip of the NCC; a ridge-shaped peak (fringes) can hold
      // two local maxima of the windowed correlation with no dip between them: one peak.
      auto same_peak = [&](const Candidate& p, const Candidate& q) {
        double lowest = std::min(p.ncc, q.ncc);
        for (int k = 1; k < 8; ++k) {
          const double t = k / 8.0;
          lowest = std::min(lowest, ncc_at(reference, warped, int(std::lround(p.sx + t * (q.sx - p.sx))),
                                           int(std::lround(p.sy + t * (q.sy - p.sy)))));
        }
        return lowest >= consistent_ncc_ratio * std::min(p.ncc, q.ncc);
      };
      std::vector<Candidate> distinct;
      for (const Candidate& c : candidates)
        if (c.ncc < consistent_ncc_ratio * candidates[0].ncc ||  // cannot compete: no need to test
            std::none_of(distinct.begin(), distinct.end(), [&](const Candidate& o) { return same_peak(o, c); }))
          distinct.push_back(c);
      candidates = distinct;
      if (candidates.empty())
        candidates.push_back({0, 0, ncc_at(reference, warped, 0, 0)});
      const double top = candidates[0].ncc;
      std::vector<Candidate> consistent;
      for (const Candidate& c : candidates)
        if (top > 0 && c.ncc >= consistent_ncc_ratio * top)
          consistent.push_back(c);
      if (consistent.empty())
        consistent.push_back(candidates[0]);
      // Sub-pixel positions decide which is smallest: near half a period two whole-pixel
      // candidates can be equally far from zero.
      struct Refined {
        Candidate at;
        double c[3][3], ox = 0, oy = 0;
        double length() const { return std::hypot(at.sx + ox, at.sy + oy); }
      };
      std::vector<Refined> refined;
      for (const Candidate& k : consistent) {
        Refined r{k, {}, 0, 0};
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx)
            r.c[dy + 1][dx + 1] = ncc_at(reference, warped, k.sx + dx, k.sy + dy);
        quadratic_vertex(r.c, r.ox, r.oy);
        refined.push_back(r);
      }
      std::stable_sort(refined.begin(), refined.end(), [](const Refined& p, const Refined& q) { return p.length() < q.length(); });
      const Refined& chosen = refined[0];
      if (chosen.c[1][1] <= best_score)
        continue;
      best_score = chosen.c[1][1];
      best = a;
      best.shift_x_px = chosen.at.sx + chosen.ox;
      best.shift_y_px = chosen.at.sy + chosen.oy;
      best.peak_ratio = candidates.size() > 1 && top > 0 ? std::max(0.0, candidates[1].ncc) / top : 0;
      for (size_t k = 1; k < refined.size(); ++k)
        best.alternatives.push_back({refined[k].at.sx + refined[k].ox, refined[k].at.sy + refined[k].oy, refined[k].at.ncc});
      best.shift_ambiguous = !best.alternatives.empty();
    }
  // Sub-pixel refinement: NCC of the resampled image on shrinking 3×3 grids of shifts.
  for (double step : {0.5, 0.25, 0.125}) {
    double c[3][3];
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        Alignment t = best;
        t.shift_x_px += dx * step;
        t.shift_y_px += dy * step;
        c[dy + 1][dx + 1] = ncc_at(reference, resample(moving, reference.nx, reference.ny, reference.pixel_size_A, t), 0, 0);
      }
    double ox = 0, oy = 0;
    quadratic_vertex(c, ox, oy);
    best.shift_x_px += ox * step;
    best.shift_y_px += oy * step;
  }
  // Similarity over the overlap, after the alignment.
  const Image warped = resample(moving, reference.nx, reference.ny, reference.pixel_size_A, best);
  Image ra = reference, wb = warped;
  size_t n = 0;
  for (size_t i = 0; i < ra.size(); ++i)
    if (!std::isfinite(wb.pixels[i]))
      ra.pixels[i] = std::nanf("");
    else
      ++n;
  best.overlap_fraction = double(n) / double(ra.size());
  if (n < 64)
    fail("compare: the aligned images overlap in only ", n, " pixels");
  const Image za = z_score(ra), zb = z_score(wb);
  double sab = 0, sd2 = 0;
  for (size_t i = 0; i < za.size(); ++i)
    if (std::isfinite(zb.pixels[i])) {
      sab += double(za.pixels[i]) * zb.pixels[i];
      sd2 += double(za.pixels[i] - zb.pixels[i]) * (za.pixels[i] - zb.pixels[i]);
    }
  best.ncc = sab / double(n);
  best.rms_difference = std::sqrt(sd2 / double(n));
  return best;
}

}  // namespace epitem
