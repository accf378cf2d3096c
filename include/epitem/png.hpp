// 8-bit RGB previews for people to look at (stb_image_write): auto-contrast grayscale from an
// Image, colour maps, circles, lines, text labels (stb_easy_font) and a scale bar.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "epitem/image.hpp"

namespace epitem {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
};

namespace colors {
constexpr Rgb white{255, 255, 255}, black{0, 0, 0}, red{230, 40, 40}, blue{50, 110, 240},
    green{40, 200, 80}, yellow{250, 220, 40}, orange{250, 150, 30}, cyan{40, 220, 230},
    magenta{220, 60, 220}, gray{128, 128, 128};
}

/// Viridis-like colour map, t clamped to [0, 1].
Rgb colormap(double t);

struct Contrast {
  double low_percentile = 0.5;   ///< mapped to black
  double high_percentile = 99.5; ///< mapped to white
  bool log_scale = false;        ///< log(1 + x/x_ref) before scaling (spectra, patterns)
};

class Canvas {
public:
  Canvas(int width, int height, Rgb fill = colors::black);
  int width() const { return width_; }
  int height() const { return height_; }
  void set(int x, int y, Rgb c);               ///< ignores pixels outside
  Rgb get(int x, int y) const;
  void blend(int x, int y, Rgb c, double alpha);
  void fill_rect(int x, int y, int w, int h, Rgb c);
  void draw_line(double x0, double y0, double x1, double y1, Rgb c, int thickness = 1);
  void draw_circle(double cx, double cy, double radius, Rgb c, int thickness = 1);
  void fill_circle(double cx, double cy, double radius, Rgb c, double alpha = 1.0);
  /// Text with stb_easy_font (ASCII), top-left at (x, y), `scale` = integer pixel zoom.
  void draw_text(int x, int y, const std::string& text, Rgb c, int scale = 1);
  /// Text with a dark outline so it stays readable on any background.
  void draw_label(int x, int y, const std::string& text, Rgb c, int scale = 1);
  /// Horizontal bar of `length_units` in the bottom-left corner with its label ("5 nm").
  void draw_scale_bar(double pixels_per_unit, double length_units, const std::string& label);
  /// Pastes another canvas at (x, y).
  void paste(const Canvas& other, int x, int y);
  const std::vector<std::uint8_t>& rgb() const { return rgb_; }

private:
  int width_, height_;
  std::vector<std::uint8_t> rgb_;
};

/// Grayscale canvas of an image with percentile auto-contrast (NaN pixels shown red).
Canvas canvas_from_image(const Image& image, const Contrast& contrast = {});
/// Colour-mapped canvas with the same contrast rule.
Canvas colormapped_canvas(const Image& image, const Contrast& contrast = {});
/// Nearest-neighbour zoom of a canvas by an integer factor (small images become visible).
Canvas upscale(const Canvas& canvas, int factor);

/// Writes an 8-bit RGB PNG atomically.
void write_png(const Canvas& canvas, const std::string& path);

}  // namespace epitem
