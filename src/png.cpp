#include "epitem/png.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "epitem/error.hpp"
#include "epitem/output.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_easy_font.h>
#include <stb_image_write.h>
#pragma GCC diagnostic pop

namespace epitem {

Rgb colormap(double t) {
  // Viridis sampled at 9 evenly spaced points (matplotlib's _viridis_data), linear in between.
  static constexpr std::array<std::array<double, 3>, 9> v = {{{0.267, 0.005, 0.329},
                                                               {0.279, 0.175, 0.483},
                                                               {0.230, 0.322, 0.546},
                                                               {0.173, 0.449, 0.558},
                                                               {0.128, 0.567, 0.551},
                                                               {0.158, 0.684, 0.502},
                                                               {0.369, 0.789, 0.383},
                                                               {0.678, 0.864, 0.190},
                                                               {0.993, 0.906, 0.144}}};
  if (!(t > 0))
    t = 0;  // also maps NaN to the low end
  t = std::min(t, 1.0) * (v.size() - 1);
  size_t i = std::min(size_t(t), v.size() - 2);
  double f = t - double(i);
  auto ch = [&](int c) { return std::uint8_t(std::lround(255 * ((1 - f) * v[i][c] + f * v[i + 1][c]))); };
  return {ch(0), ch(1), ch(2)};
}

Canvas::Canvas(int width, int height, Rgb fill) : width_(width), height_(height) {
  if (width <= 0 || height <= 0)
    fail("canvas size must be positive, got ", width, "x", height);
  rgb_.resize(size_t(width) * size_t(height) * 3);
  for (size_t i = 0; i < rgb_.size(); i += 3) {
    rgb_[i] = fill.r;
    rgb_[i + 1] = fill.g;
    rgb_[i + 2] = fill.b;
  }
}

void Canvas::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_)
    return;
  size_t k = (size_t(y) * size_t(width_) + size_t(x)) * 3;
  rgb_[k] = c.r;
  rgb_[k + 1] = c.g;
  rgb_[k + 2] = c.b;
}

Rgb Canvas::get(int x, int y) const {
  if (x < 0 || y < 0 || x >= width_ || y >= height_)
    return {};
  size_t k = (size_t(y) * size_t(width_) + size_t(x)) * 3;
  return {rgb_[k], rgb_[k + 1], rgb_[k + 2]};
}

void Canvas::blend(int x, int y, Rgb c, double alpha) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_)
    return;
  alpha = std::clamp(alpha, 0.0, 1.0);
  Rgb o = get(x, y);
  auto mix = [alpha](std::uint8_t a, std::uint8_t b) {
    return std::uint8_t(std::lround((1 - alpha) * a + alpha * b));
  };
  set(x, y, {mix(o.r, c.r), mix(o.g, c.g), mix(o.b, c.b)});
}

void Canvas::fill_rect(int x, int y, int w, int h, Rgb c) {
  for (int yy = std::max(0, y); yy < std::min(height_, y + h); ++yy)
    for (int xx = std::max(0, x); xx < std::min(width_, x + w); ++xx)
      set(xx, yy, c);
}

void Canvas::draw_line(double x0, double y0, double x1, double y1, Rgb c, int thickness) {
  // Steps of at most half a pixel along the line, each stamping a thickness×thickness square.
  double len = std::hypot(x1 - x0, y1 - y0);
  int steps = std::max(1, int(std::ceil(2 * len)));
  int t = std::max(1, thickness);
  for (int i = 0; i <= steps; ++i) {
    double s = double(i) / steps;
    int cx = int(std::lround(x0 + s * (x1 - x0))), cy = int(std::lround(y0 + s * (y1 - y0)));
    fill_rect(cx - (t - 1) / 2, cy - (t - 1) / 2, t, t, c);
  }
}

void Canvas::draw_circle(double cx, double cy, double radius, Rgb c, int thickness) {
  // Every pixel whose centre lies within thickness/2 of the circle (at least ±0.5 px).
  double half = std::max(0.5, thickness / 2.0);
  int x0 = int(std::floor(cx - radius - half)), x1 = int(std::ceil(cx + radius + half));
  int y0 = int(std::floor(cy - radius - half)), y1 = int(std::ceil(cy + radius + half));
  for (int y = std::max(0, y0); y <= std::min(height_ - 1, y1); ++y)
    for (int x = std::max(0, x0); x <= std::min(width_ - 1, x1); ++x)
      if (std::abs(std::hypot(x - cx, y - cy) - radius) <= half)
        set(x, y, c);
}

void Canvas::fill_circle(double cx, double cy, double radius, Rgb c, double alpha) {
  int x0 = int(std::floor(cx - radius)), x1 = int(std::ceil(cx + radius));
  int y0 = int(std::floor(cy - radius)), y1 = int(std::ceil(cy + radius));
  for (int y = std::max(0, y0); y <= std::min(height_ - 1, y1); ++y)
    for (int x = std::max(0, x0); x <= std::min(width_ - 1, x1); ++x)
      if (std::hypot(x - cx, y - cy) <= radius)
        blend(x, y, c, alpha);
}

void Canvas::draw_text(int x, int y, const std::string& text, Rgb c, int scale) {
  if (text.empty())
    return;
  scale = std::max(1, scale);
  // stb_easy_font emits axis-aligned quads (4 vertices of 16 bytes); ~270 bytes per glyph.
  std::vector<char> str(text.begin(), text.end());
  str.push_back('\0');
  std::vector<char> vbuf(text.size() * 400 + 1024);
  int quads = stb_easy_font_print(0, 0, str.data(), nullptr, vbuf.data(), int(vbuf.size()));
  for (int q = 0; q < quads; ++q) {
    float minx = 1e9f, maxx = -1e9f, miny = 1e9f, maxy = -1e9f;
    for (int v = 0; v < 4; ++v) {
      float vx, vy;
      std::memcpy(&vx, &vbuf[size_t(q * 4 + v) * 16], 4);
      std::memcpy(&vy, &vbuf[size_t(q * 4 + v) * 16 + 4], 4);
      minx = std::min(minx, vx);
      maxx = std::max(maxx, vx);
      miny = std::min(miny, vy);
      maxy = std::max(maxy, vy);
    }
    fill_rect(x + int(std::lround(minx)) * scale, y + int(std::lround(miny)) * scale,
              int(std::lround(maxx - minx)) * scale, int(std::lround(maxy - miny)) * scale, c);
  }
}

void Canvas::draw_label(int x, int y, const std::string& text, Rgb c, int scale) {
  scale = std::max(1, scale);
  for (int dy = -1; dy <= 1; ++dy)
    for (int dx = -1; dx <= 1; ++dx)
      if (dx || dy)
        draw_text(x + dx * scale, y + dy * scale, text, colors::black, scale);
  draw_text(x, y, text, c, scale);
}

void Canvas::draw_scale_bar(double pixels_per_unit, double length_units, const std::string& label) {
  if (!(pixels_per_unit > 0) || !(length_units > 0))
    return;
  int len = int(std::lround(pixels_per_unit * length_units));
  int scale = width_ >= 768 ? 2 : 1;
  int margin = std::max(6, width_ / 40);
  int bar_h = std::max(3, height_ / 100);
  int x = margin, y = height_ - margin - bar_h;
  fill_rect(x - 1, y - 1, len + 2, bar_h + 2, colors::black);
  fill_rect(x, y, len, bar_h, colors::white);
  draw_label(x, y - 12 * scale - 2, label, colors::white, scale);
}

void Canvas::paste(const Canvas& other, int x, int y) {
  for (int yy = 0; yy < other.height(); ++yy)
    for (int xx = 0; xx < other.width(); ++xx)
      set(x + xx, y + yy, other.get(xx, yy));
}

namespace {

// Maps pixel values to t in [0, 1] by the percentile rule; NaN stays NaN (shown red).
std::vector<double> contrast_stretch(const Image& image, const Contrast& contrast) {
  if (image.nx <= 0 || image.ny <= 0 || image.pixels.size() != size_t(image.nx) * size_t(image.ny))
    fail("cannot display an empty image (", image.nx, "x", image.ny, ")");
  std::vector<double> v(image.pixels.begin(), image.pixels.end());
  std::vector<double> finite;
  finite.reserve(v.size());
  for (double x : v)
    if (std::isfinite(x))
      finite.push_back(x);
  if (finite.empty())
    return v;
  auto percentile = [](std::vector<double> s, double p) {
    size_t k = size_t(std::clamp(p / 100.0, 0.0, 1.0) * double(s.size() - 1));
    std::nth_element(s.begin(), s.begin() + long(k), s.end());
    return s[k];
  };
  if (contrast.log_scale) {
    // log(1 + x/x_ref) after shifting the minimum to 0; x_ref = the median (background level),
    // floored at 1e-3 of the maximum so a zero background does not blow up the weak spots.
    double lo = *std::min_element(finite.begin(), finite.end());
    double hi = *std::max_element(finite.begin(), finite.end());
    double x_ref = std::max(percentile(finite, 50) - lo, 1e-3 * (hi - lo));
    if (!(x_ref > 0))
      x_ref = 1;
    for (double& x : v)
      if (std::isfinite(x))
        x = std::log1p((x - lo) / x_ref);
    for (double& x : finite)
      x = std::log1p((x - lo) / x_ref);
  }
  double lo = percentile(finite, contrast.low_percentile);
  double hi = percentile(finite, contrast.high_percentile);
  double range = hi > lo ? hi - lo : 1.0;
  for (double& x : v)
    if (std::isfinite(x))
      x = std::clamp((x - lo) / range, 0.0, 1.0);
  return v;
}

}  // namespace

Canvas canvas_from_image(const Image& image, const Contrast& contrast) {
  std::vector<double> t = contrast_stretch(image, contrast);
  Canvas c(image.nx, image.ny);
  for (int y = 0; y < image.ny; ++y)
    for (int x = 0; x < image.nx; ++x) {
      double v = t[size_t(y) * size_t(image.nx) + size_t(x)];
      if (std::isfinite(v)) {
        auto g = std::uint8_t(std::lround(255 * v));
        c.set(x, y, {g, g, g});
      } else {
        c.set(x, y, colors::red);
      }
    }
  return c;
}

Canvas colormapped_canvas(const Image& image, const Contrast& contrast) {
  std::vector<double> t = contrast_stretch(image, contrast);
  Canvas c(image.nx, image.ny);
  for (int y = 0; y < image.ny; ++y)
    for (int x = 0; x < image.nx; ++x) {
      double v = t[size_t(y) * size_t(image.nx) + size_t(x)];
      c.set(x, y, std::isfinite(v) ? colormap(v) : colors::red);
    }
  return c;
}

Canvas upscale(const Canvas& canvas, int factor) {
  if (factor < 1)
    fail("upscale factor must be >= 1, got ", factor);
  Canvas out(canvas.width() * factor, canvas.height() * factor);
  for (int y = 0; y < out.height(); ++y)
    for (int x = 0; x < out.width(); ++x)
      out.set(x, y, canvas.get(x / factor, y / factor));
  return out;
}

void write_png(const Canvas& canvas, const std::string& path) {
  write_atomically(path, [&](const std::string& tmp) {
    if (!stbi_write_png(tmp.c_str(), canvas.width(), canvas.height(), 3, canvas.rgb().data(),
                        canvas.width() * 3))
      fail(path, ": cannot write PNG (disk full or permissions?)");
  });
}

}  // namespace epitem
