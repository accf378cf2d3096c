#include "epitem/rings.hpp"

#include <algorithm>
#include <cmath>

#include "epitem/error.hpp"

namespace epitem {

void direct_beam_centre(const Image& p, double& x_px, double& y_px, double& radius_px) {
  if (p.nx < 16 || p.ny < 16)
    fail("ring pattern: ", p.nx, "×", p.ny, " pixels is too small (need at least 16×16)");
  require_finite(p, "ring pattern");
  int bx = 0, by = 0;
  double best = -1e300;
  for (int y = 1; y < p.ny - 1; ++y)
    for (int x = 1; x < p.nx - 1; ++x) {
      double s = 0;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx)
          s += p.at(x + dx, y + dy);
      if (s > best) {
        best = s;
        bx = x;
        by = y;
      }
    }
  const auto [lo, hi] = std::minmax_element(p.pixels.begin(), p.pixels.end());
  if (!(*hi > *lo))
    fail("ring pattern: the image is constant (every pixel = ", *lo, "): no direct beam, no rings");
  const double peak = best / 9, half = *lo + 0.5 * (peak - *lo);
  double sw = 0, sx = 0, sy = 0;
  int n = 0;
  for (int y = std::max(0, by - 20); y <= std::min(p.ny - 1, by + 20); ++y)
    for (int x = std::max(0, bx - 20); x <= std::min(p.nx - 1, bx + 20); ++x) {
      const double v = p.at(x, y);
      if (v < half)
        continue;
      sw += v - half;
      sx += (v - half) * x;
      sy += (v - half) * y;
      ++n;
    }
  x_px = sx / sw;
  y_px = sy / sw;
  radius_px = std::sqrt(n / 3.14159265358979);
}

RingProfile find_rings(const Image& p, const RingSpec& spec) {
  RingProfile out;
  double beam_r = 0;
  direct_beam_centre(p, out.centre_x_px, out.centre_y_px, beam_r);
  const double cx = out.centre_x_px, cy = out.centre_y_px;
  // Full circles only: out to the nearest edge.
  const double r_max = std::min({cx, cy, p.nx - 1 - cx, p.ny - 1 - cy});
  const int n_bins = int(r_max / out.bin_px);
  if (n_bins < 16)
    fail("ring pattern: the direct beam at (", cx, ", ", cy, ") px is too close to the edge for rings");
  std::vector<double> sum(size_t(n_bins), 0.0), count(size_t(n_bins), 0.0);
  for (int y = 0; y < p.ny; ++y)
    for (int x = 0; x < p.nx; ++x) {
      const int b = int(std::hypot(x - cx, y - cy) / out.bin_px);
      if (b < n_bins) {
        sum[size_t(b)] += p.at(x, y);
        count[size_t(b)] += 1;
      }
    }
  out.mean.resize(size_t(n_bins));
  for (int b = 0; b < n_bins; ++b)
    out.mean[size_t(b)] = count[size_t(b)] > 0 ? sum[size_t(b)] / count[size_t(b)] : (b ? out.mean[size_t(b) - 1] : 0);
  // Baseline: morphological opening (min then max over ±w) follows the smooth fall-off and
  // cuts under rings narrower than 2w.
  const int w = std::max(4, int(8 / out.bin_px));
  auto filter = [&](const std::vector<double>& v, bool is_min) {
    std::vector<double> r(v.size());
    for (int i = 0; i < int(v.size()); ++i) {
      double m = v[size_t(i)];
      for (int j = std::max(0, i - w); j <= std::min(int(v.size()) - 1, i + w); ++j)
        m = is_min ? std::min(m, v[size_t(j)]) : std::max(m, v[size_t(j)]);
      r[size_t(i)] = m;
    }
    return r;
  };
  const auto base = filter(filter(out.mean, true), false);
  std::vector<double> res(out.mean.size());
  for (size_t i = 0; i < res.size(); ++i)
    res[i] = out.mean[i] - base[i];
  const double r_min = spec.min_radius_px > 0 ? spec.min_radius_px : 3 * std::max(beam_r, 2.0);
  const int i_min = int(r_min / out.bin_px);
  double top = 0;
  for (int i = i_min; i < n_bins; ++i)
    top = std::max(top, res[size_t(i)]);
  const int sup = int(3 / out.bin_px);
  for (int i = std::max(i_min, sup); i < n_bins - sup; ++i) {
    const double v = res[size_t(i)];
    if (!(v >= spec.min_height_rel * top) || !(v > 0))
      continue;
    bool is_max = true;
    for (int j = i - sup; j <= i + sup && is_max; ++j)
      is_max = j == i || res[size_t(j)] < v || (res[size_t(j)] == v && j > i);
    if (!is_max)
      continue;
    const double a = res[size_t(i) - 1], c = res[size_t(i) + 1], den = a - 2 * v + c;
    const double off = den < 0 ? std::clamp(0.5 * (a - c) / den, -0.5, 0.5) : 0.0;
    out.rings.push_back({(i + 0.5 + off) * out.bin_px, v});
  }
  return out;
}

}  // namespace epitem
