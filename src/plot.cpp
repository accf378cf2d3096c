#include "epitem/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace epitem {

std::vector<double> nice_ticks(double low, double high, int target) {
  if (!(high > low)) {
    double pad = std::abs(low) > 0 ? 0.1 * std::abs(low) : 1.0;
    low -= pad;
    high += pad;
  }
  double raw = (high - low) / std::max(1, target);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double f : {1.0, 2.0, 5.0, 10.0})
    if (f * mag >= raw) {
      step = f * mag;
      break;
    }
  std::vector<double> ticks;
  for (double t = std::floor(low / step) * step; t <= high + 1e-9 * step; t += step)
    ticks.push_back(std::abs(t) < 1e-12 * step ? 0.0 : t);
  if (ticks.size() < 2)
    ticks = {low, high};
  return ticks;
}

namespace {
std::string tick_label(double v) {
  char buf[32];
  if (v != 0 && (std::abs(v) >= 1e5 || std::abs(v) < 1e-3))
    std::snprintf(buf, sizeof buf, "%.1e", v);
  else
    std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
}  // namespace

Canvas line_plot(const std::vector<PlotSeries>& series, const std::string& title, const std::string& x_label,
                 const std::string& y_label, int width, int height) {
  Canvas c(width, height, colors::white);
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  for (const auto& s : series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        xmin = std::min(xmin, s.x[i]);
        xmax = std::max(xmax, s.x[i]);
        ymin = std::min(ymin, s.y[i]);
        ymax = std::max(ymax, s.y[i]);
      }
  if (!std::isfinite(xmin)) {
    xmin = ymin = 0;
    xmax = ymax = 1;
  }
  if (ymin >= 0)
    ymin = 0;
  std::vector<double> xt = nice_ticks(xmin, xmax), yt = nice_ticks(ymin, ymax);
  xmin = std::min(xmin, xt.front());
  xmax = std::max(xmax, xt.back());
  ymin = std::min(ymin, yt.front());
  ymax = std::max(ymax, yt.back());
  if (!(xmax > xmin))
    xmax = xmin + 1;
  if (!(ymax > ymin))
    ymax = ymin + 1;
  const int left = 70, right = width - 20, top = 36, bottom = height - 45;
  auto px = [&](double x) { return left + (x - xmin) / (xmax - xmin) * (right - left); };
  auto py = [&](double y) { return bottom - (y - ymin) / (ymax - ymin) * (bottom - top); };
  const Rgb grid{225, 225, 225};
  for (double t : xt) {
    c.draw_line(px(t), top, px(t), bottom, grid);
    std::string l = tick_label(t);
    c.draw_text(int(px(t)) - 3 * int(l.size()), bottom + 6, l, colors::black);
  }
  for (double t : yt) {
    c.draw_line(left, py(t), right, py(t), grid);
    std::string l = tick_label(t);
    c.draw_text(left - 8 - 6 * int(l.size()), int(py(t)) - 4, l, colors::black);
  }
  c.draw_line(left, bottom, right, bottom, colors::black);
  c.draw_line(left, top, left, bottom, colors::black);
  c.draw_text(left, 4, title, colors::black);
  c.draw_text((left + right) / 2 - 3 * int(x_label.size()), height - 18, x_label, colors::black);
  c.draw_text(4, 20, y_label, colors::black);
  int legend_y = top + 6;
  for (const auto& s : series) {
    size_t n = std::min(s.x.size(), s.y.size());
    bool have_prev = false;
    double x0 = 0, y0 = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
        have_prev = false;
        continue;
      }
      double x1 = px(s.x[i]), y1 = py(s.y[i]);
      if (s.lines && have_prev)
        c.draw_line(x0, y0, x1, y1, s.color, 2);
      if (s.markers)
        c.fill_circle(x1, y1, 2.5, s.color);
      x0 = x1;
      y0 = y1;
      have_prev = true;
    }
    if (!s.label.empty()) {
      c.fill_rect(right - 150, legend_y + 2, 12, 4, s.color);
      c.draw_text(right - 132, legend_y, s.label, colors::black);
      legend_y += 14;
    }
  }
  return c;
}

}  // namespace epitem
