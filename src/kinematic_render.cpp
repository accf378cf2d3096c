// Output side of kinematic.hpp: CSV tables, the calibrated float pattern and the PNG preview.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "epitem/error.hpp"
#include "epitem/kinematic.hpp"
#include "epitem/units.hpp"

namespace epitem {

namespace {

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string zone_label(const Vec3& uvw) {
  return "[" + miller_label({int(std::lround(uvw[0])), int(std::lround(uvw[1])), int(std::lround(uvw[2]))}) + "]";
}

double pixel_size(const SaedPattern& pattern, const SaedRenderSpec& spec) {
  if (spec.size_px < 16 || spec.size_px > 8192)
    fail("SAED image: size must be 16-8192 px, got ", spec.size_px);
  if (spec.pixel_size_invA < 0)
    fail("SAED image: pixel size must be ≥ 0 1/Å (0 = automatic), got ", spec.pixel_size_invA);
  if (!(spec.spot_sigma_px > 0))
    fail("SAED image: spot σ must be > 0 px, got ", spec.spot_sigma_px);
  if (spec.pixel_size_invA > 0)
    return spec.pixel_size_invA;
  return 2 * 1.05 * pattern.g_max_invA / spec.size_px;
}

const Rgb PHASE_COLORS[] = {colors::yellow, colors::cyan, colors::magenta, colors::green,
                            colors::orange};
Rgb phase_color(int phase) { return PHASE_COLORS[size_t(phase) % 5]; }

/// Disc radius [px] growing with log intensity: 1.4 px at 1e-4 of the strongest, 6 px at 100.
double disc_radius_px(double intensity) {
  return 1 + 1.25 * std::log10(1 + intensity / SAED_LOG_FLOOR);
}

}  // namespace

std::string reflections_csv(const std::vector<Reflection>& reflections, double energy_eV) {
  const double lambda = electron_wavelength_A(energy_eV);
  std::ostringstream os;
  // g_inv_A (docs/vocabulary.md) repeats the deprecated g_invA, kept where it was for old scripts.
  os << "h,k,l,d_A,multiplicity,F_abs,intensity,g_invA,powder_intensity,two_theta_mrad,g_inv_A\n";
  for (const auto& r : reflections) {
    os << r.hkl[0] << ',' << r.hkl[1] << ',' << r.hkl[2] << ',' << fmt("%.5f", r.d_A) << ','
       << r.multiplicity << ',' << fmt("%.6f", r.F_abs_A) << ',' << fmt("%.4f", r.intensity) << ','
       << fmt("%.6f", r.g_invA) << ',' << fmt("%.4f", r.powder_intensity) << ','
       << fmt("%.4f", 2 * std::asin(lambda * r.g_invA / 2) / units::mrad_to_rad) << ','
       << fmt("%.6f", r.g_invA) << '\n';
  }
  return os.str();
}

std::string saed_spots_csv(const SaedPattern& pattern) {
  std::ostringstream os;
  // gx_inv_A, gy_inv_A, g_inv_A (docs/vocabulary.md) repeat the deprecated gx, gy, g, kept
  // where they were for old scripts.
  os << "phase,h,k,l,gx,gy,g,d_A,excitation_error,intensity,F_abs,laue_zone,double_diffraction,"
        "dd_path,gx_inv_A,gy_inv_A,g_inv_A,moire\n";
  for (const auto& s : pattern.spots) {
    const bool between = s.double_diffraction == DoubleDiffraction::BetweenPhases;
    std::string phase = s.is_direct_beam ? "direct" : pattern.phase_names[size_t(s.phase)];
    if (between)
      phase += "+" + pattern.phase_names[size_t(s.phase_b)];
    os << phase << ',';
    if (between)
      os << ",,,";
    else
      os << s.hkl[0] << ',' << s.hkl[1] << ',' << s.hkl[2] << ',';
    os << fmt("%.6f", s.g_lab_invA.x()) << ',' << fmt("%.6f", s.g_lab_invA.y()) << ','
       << fmt("%.6f", s.g_invA) << ',' << fmt("%.5f", s.d_A) << ','
       << fmt("%.6g", s.excitation_error_invA) << ',' << fmt("%.5g", s.intensity) << ','
       << fmt("%.6f", s.F_abs_A) << ',' << s.laue_zone << ',' << int(s.double_diffraction) << ','
       << s.dd_path << ',' << fmt("%.6f", s.g_lab_invA.x()) << ',' << fmt("%.6f", s.g_lab_invA.y())
       << ',' << fmt("%.6f", s.g_invA) << ',' << int(s.is_moire) << '\n';
  }
  return os.str();
}

Image render_saed_image(const SaedPattern& pattern, const SaedRenderSpec& spec) {
  const double px = pixel_size(pattern, spec);
  const int n = spec.size_px;
  Image image(n, n, 0.f);
  image.pixel_size_invA = px;
  const double c = n / 2;  // direct beam on pixel (n/2, n/2), the FFT-centre convention
  const double sigma = spec.spot_sigma_px;
  const int reach = int(std::ceil(4 * sigma));
  std::vector<double> sum(size_t(n) * size_t(n), 0.0);
  for (const auto& s : pattern.spots) {
    const double value = s.is_direct_beam ? spec.direct_beam_intensity : s.intensity;
    if (!(value > 0))
      continue;
    const double x = c + s.g_lab_invA.x() / px;
    const double y = c - s.g_lab_invA.y() / px;  // +gy up, row 0 at the top
    const int ix0 = int(std::lround(x)), iy0 = int(std::lround(y));
    for (int iy = std::max(0, iy0 - reach); iy <= std::min(n - 1, iy0 + reach); ++iy)
      for (int ix = std::max(0, ix0 - reach); ix <= std::min(n - 1, ix0 + reach); ++ix) {
        const double r2 = (ix - x) * (ix - x) + (iy - y) * (iy - y);
        sum[size_t(iy) * size_t(n) + size_t(ix)] += value * std::exp(-r2 / (2 * sigma * sigma));
      }
  }
  for (size_t i = 0; i < sum.size(); ++i)
    image.pixels[i] = float(spec.log_scale ? std::log10(1 + sum[i] / SAED_LOG_FLOOR) : sum[i]);
  return image;
}

Canvas render_saed_png(const SaedPattern& pattern, const SaedRenderSpec& spec) {
  const double px = pixel_size(pattern, spec);
  const int n = spec.size_px;
  Canvas canvas(n, n, colors::black);
  const double c = n / 2;
  auto to_px = [&](const Vec3& g) { return std::pair<double, double>{c + g.x() / px, c - g.y() / px}; };

  // Weak spots first so strong ones are drawn on top.
  std::vector<const SaedSpot*> order;
  for (const auto& s : pattern.spots)
    order.push_back(&s);
  std::stable_sort(order.begin(), order.end(), [](const SaedSpot* a, const SaedSpot* b) {
    return a->intensity < b->intensity;
  });
  for (const SaedSpot* s : order) {
    const auto [x, y] = to_px(s->g_lab_invA);
    if (s->is_direct_beam) {
      canvas.fill_circle(x, y, disc_radius_px(100) + 1, colors::white);
    } else if (s->double_diffraction == DoubleDiffraction::WithinPhase) {
      canvas.draw_circle(x, y, 4, phase_color(s->phase));
    } else if (s->double_diffraction == DoubleDiffraction::BetweenPhases) {
      canvas.draw_circle(x, y, 4, s->is_moire ? colors::yellow : colors::red);
    } else if (s->intensity >= 1e-4) {
      canvas.fill_circle(x, y, disc_radius_px(s->intensity), phase_color(s->phase));
    }
  }

  // hkl labels, strongest first: right, left, above or below the spot, wherever the text
  // covers neither a label already placed nor a visible spot; otherwise the label is skipped.
  struct Box {
    int x0, y0, x1, y1;
    bool overlaps(const Box& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
  };
  std::vector<Box> taken;
  std::vector<const SaedSpot*> labelled;
  for (const auto& s : pattern.spots) {
    if (s.is_direct_beam || s.double_diffraction != DoubleDiffraction::None || s.intensity >= 1e-4) {
      const auto [x, y] = to_px(s.g_lab_invA);
      const double r = s.is_direct_beam ? disc_radius_px(100) + 1
                       : s.double_diffraction != DoubleDiffraction::None ? 4
                                                                          : disc_radius_px(s.intensity);
      taken.push_back({int(x - r), int(y - r), int(x + r) + 1, int(y + r) + 1});
    }
    if (!s.is_direct_beam && s.double_diffraction == DoubleDiffraction::None &&
        s.intensity >= spec.label_min_intensity)
      labelled.push_back(&s);
  }
  std::stable_sort(labelled.begin(), labelled.end(), [](const SaedSpot* a, const SaedSpot* b) {
    return a->intensity > b->intensity;
  });
  for (const SaedSpot* s : labelled) {
    const auto [x, y] = to_px(s->g_lab_invA);
    const std::string text = miller_label(s->hkl);
    const int w = 6 * int(text.size()), h = 8;  // stb_easy_font: ~6 px per glyph at scale 1
    const int r = int(std::ceil(disc_radius_px(s->intensity))) + 2;
    const Box options[] = {{int(x) + r, int(y) - h / 2, int(x) + r + w, int(y) + h / 2},
                           {int(x) - r - w, int(y) - h / 2, int(x) - r, int(y) + h / 2},
                           {int(x) - w / 2, int(y) - r - h, int(x) + w / 2, int(y) - r},
                           {int(x) - w / 2, int(y) + r, int(x) + w / 2, int(y) + r + h}};
    for (const Box& box : options) {
      if (box.x0 < 0 || box.y0 < 0 || box.x1 >= n || box.y1 >= n)
        continue;
      // The options sit outside the spot's own disc, so it never blocks its label.
      if (std::any_of(taken.begin(), taken.end(), [&](const Box& o) { return box.overlaps(o); }))
        continue;
      taken.push_back(box);
      canvas.draw_label(box.x0, box.y0, text, phase_color(s->phase));
      break;
    }
  }

  // Legend: one line per phase, then the marker meanings.
  int ly = 6;
  for (size_t p = 0; p < pattern.phase_names.size(); ++p) {
    canvas.fill_circle(10, ly + 4, 4, phase_color(int(p)));
    canvas.draw_label(18, ly, pattern.phase_names[p] + " " + zone_label(pattern.phase_zones_uvw[p]),
                      phase_color(int(p)));
    ly += 14;
  }
  const bool any_within = std::any_of(pattern.spots.begin(), pattern.spots.end(), [](const SaedSpot& s) {
    return s.double_diffraction == DoubleDiffraction::WithinPhase;
  });
  const bool any_between = std::any_of(pattern.spots.begin(), pattern.spots.end(), [](const SaedSpot& s) {
    return s.double_diffraction == DoubleDiffraction::BetweenPhases;
  });
  if (any_within) {
    canvas.draw_circle(10, ly + 4, 4, colors::gray);
    canvas.draw_label(18, ly, "open: forbidden, by double diffraction in its phase", colors::white);
    ly += 14;
  }
  if (any_between) {
    canvas.draw_circle(10, ly + 4, 4, colors::red);
    canvas.draw_label(18, ly, "double diffraction (between phases)", colors::red);
    ly += 14;
  }
  if (std::any_of(pattern.spots.begin(), pattern.spots.end(), [](const SaedSpot& s) { return s.is_moire; })) {
    canvas.draw_circle(10, ly + 4, 4, colors::yellow);
    canvas.draw_label(18, ly, "moire (g1 - g2 of near-parallel planes)", colors::yellow);
    ly += 14;
  }
  canvas.draw_label(6, ly, "direct beam capped", colors::white);

  // Scale bar in 1/nm: the largest of 1, 2, 5, 10, 20 that fits in a quarter of the width.
  const double pixels_per_inv_nm = 0.1 / px;  // 1/nm = 0.1 1/Å
  double bar = 1;
  for (double candidate : {2.0, 5.0, 10.0, 20.0})
    if (candidate * pixels_per_inv_nm <= n / 4.0)
      bar = candidate;
  canvas.draw_scale_bar(pixels_per_inv_nm, bar, fmt("%g", bar) + " 1/nm");
  return canvas;
}

}  // namespace epitem
