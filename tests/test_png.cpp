// PNG previews (png.hpp): drawing primitives put pixels where the geometry says, text renders,
// contrast maps percentiles to black/white, and the written file is a PNG that decodes back.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "epitem/error.hpp"
#include "epitem/png.hpp"
#include "testing.hpp"

#if __has_include(<stb/stb_image.h>)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#include <stb/stb_image.h>
#pragma GCC diagnostic pop
#define EPITEM_HAVE_STB_IMAGE 1
#endif

using namespace epitem;

namespace {
bool same(Rgb a, Rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }
int count(const Canvas& c, Rgb colour) {
  int n = 0;
  for (int y = 0; y < c.height(); ++y)
    for (int x = 0; x < c.width(); ++x)
      n += same(c.get(x, y), colour);
  return n;
}
}  // namespace

TEST_CASE("circle pixels lie at the radius, filled circle covers pi r^2", "[png]") {
  Canvas c(101, 101);
  c.draw_circle(50, 50, 30, colors::white);
  int n = 0;
  for (int y = 0; y < 101; ++y)
    for (int x = 0; x < 101; ++x)
      if (same(c.get(x, y), colors::white)) {
        ++n;
        CHECK(std::abs(std::hypot(x - 50.0, y - 50.0) - 30.0) <= 0.5);
      }
  // A 1-px ring has about 2πr pixels (the exact count depends on the lattice).
  CHECK(n == Approx(2 * M_PI * 30).epsilon(0.1));
  CHECK(same(c.get(80, 50), colors::white));
  CHECK(same(c.get(50, 50), colors::black));

  Canvas f(101, 101);
  f.fill_circle(50, 50, 20, colors::red);
  CHECK(count(f, colors::red) == Approx(M_PI * 400).epsilon(0.02));
  Canvas half(4, 4, colors::black);
  half.fill_circle(1, 1, 5, colors::white, 0.5);
  CHECK(int(half.get(2, 2).r) == 128);
}

TEST_CASE("lines, rectangles, paste and upscale put pixels where asked", "[png]") {
  Canvas c(20, 10);
  c.draw_line(2, 3, 17, 3, colors::green);
  for (int x = 2; x <= 17; ++x)
    CHECK(same(c.get(x, 3), colors::green));
  CHECK(count(c, colors::green) == 16);
  c.fill_rect(-5, -5, 7, 7, colors::blue);  // clipped at the border
  CHECK(count(c, colors::blue) == 4);
  c.set(100, 100, colors::red);  // outside: ignored
  Canvas big = upscale(c, 3);
  CHECK(big.width() == 60);
  CHECK(same(big.get(3 * 5 + 2, 3 * 3 + 1), colors::green));
  Canvas host(30, 30, colors::white);
  host.paste(c, 25, 25);
  CHECK(same(host.get(25, 25), colors::blue));
  CHECK(same(host.get(24, 24), colors::white));
  CHECK_THROWS_AS(Canvas(0, 5), Error);
}

TEST_CASE("text and labels render visible glyphs that grow with scale", "[png]") {
  Canvas c(200, 60);
  c.draw_text(5, 5, "5 nm", colors::yellow);
  int small = count(c, colors::yellow);
  CHECK(small > 10);
  Canvas d(200, 60);
  d.draw_text(5, 5, "5 nm", colors::yellow, 2);
  CHECK(count(d, colors::yellow) == 4 * small);  // each quad scales by 2×2
  Canvas e(200, 60, colors::white);
  e.draw_label(5, 5, "Fe3O4", colors::red);
  CHECK(count(e, colors::red) > 10);
  CHECK(count(e, colors::black) > count(e, colors::red));  // outline around the glyphs
  Canvas bar(300, 100);
  bar.draw_scale_bar(10.0, 5.0, "5 nm");
  int white_run = 0;
  for (int x = 0; x < 300; ++x)
    white_run += same(bar.get(x, 100 - 7 - 2), colors::white);  // a row through the bar
  CHECK(white_run >= 50);
}

TEST_CASE("percentile contrast maps to black..white; NaN is red; colormap endpoints", "[png]") {
  Image im(100, 1);
  for (int x = 0; x < 100; ++x)
    im.at(x, 0) = float(x);
  Canvas c = canvas_from_image(im, Contrast{0, 100, false});
  CHECK(int(c.get(0, 0).r) == 0);
  CHECK(int(c.get(99, 0).r) == 255);
  CHECK(int(c.get(50, 0).r) == Approx(255 * 50 / 99.0).margin(1));
  im.at(10, 0) = std::numeric_limits<float>::quiet_NaN();
  CHECK(same(canvas_from_image(im).get(10, 0), colors::red));
  Canvas logc = canvas_from_image(im, Contrast{0, 100, true});
  CHECK(int(logc.get(5, 0).r) > int(c.get(5, 0).r));  // log lifts the weak end
  Rgb lo = colormap(0), hi = colormap(1);
  CHECK(lo.b > lo.g);  // viridis: dark purple → yellow
  CHECK(hi.r > 240);
  CHECK(hi.g > 200);
  Canvas m = colormapped_canvas(im);
  CHECK(same(m.get(0, 0), colormap(0)));
}

TEST_CASE("write_png writes a PNG that decodes to the canvas", "[png]") {
  testing::TempDir dir("png");
  Canvas c(17, 9, colors::gray);
  c.set(3, 4, colors::orange);
  const std::string path = dir.file("out.png");
  write_png(c, path);
  std::ifstream in(path, std::ios::binary);
  unsigned char sig[8] = {};
  in.read(reinterpret_cast<char*>(sig), 8);
  const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  CHECK(std::equal(sig, sig + 8, png_sig));
#ifdef EPITEM_HAVE_STB_IMAGE
  int w = 0, h = 0, comp = 0;
  unsigned char* data = stbi_load(path.c_str(), &w, &h, &comp, 3);
  REQUIRE(data);
  CHECK(w == 17);
  CHECK(h == 9);
  CHECK(std::equal(data, data + 17 * 9 * 3, c.rgb().begin()));
  stbi_image_free(data);
#endif
  CHECK_THROWS_AS(write_png(c, dir.file("no_such_folder/out.png")), Error);
}
