#include "analysis_cli.hpp"

#include <cstdio>

#include "epitem/error.hpp"
#include "epitem/image.hpp"
#include "epitem/image_file.hpp"
#include "epitem/structure_io.hpp"

namespace epitem::cli {

Roi parse_roi(const std::string& text) {
  Roi r;
  char c1 = 0, c2 = 0, c3 = 0;
  char extra = 0;
  if (std::sscanf(text.c_str(), "%d %c %d %c %d %c %d %c", &r.x, &c1, &r.y, &c2, &r.w, &c3, &r.h, &extra) != 7 ||
      c1 != ',' || c2 != ',' || c3 != ',')
    throw po::error("--roi '" + text + "': expected x,y,w,h in pixels, e.g. 0,0,512,512");
  if (r.w <= 0 || r.h <= 0 || r.x < 0 || r.y < 0)
    throw po::error("--roi '" + text + "': x, y must be ≥ 0 and w, h > 0 pixels");
  return r;
}

Image load_micrograph(const std::string& path, int page, const po::variables_map& vm, const WarnFn& warn) {
  const auto file = open_image_file(path);
  const size_t n = file->frame_count();
  if (page < 0 || page >= int(n))
    fail(path, ": --page ", page, " does not exist (the file has ", n, " page", n == 1 ? "" : "s",
         ", numbered from 0)");
  const bool page_chosen = vm.count("page") && !vm["page"].defaulted();
  if (n > 1 && warn && !page_chosen)
    warn(path + ": " + std::to_string(n) + " pages; using page " + std::to_string(page) + " (choose with --page)");
  for (const std::string& note : file->info().warnings)
    if (warn)
      warn(path + ": " + note);
  Image image = file->frame(size_t(page));
  if (vm.count("pixel-size")) {
    const double px = parse_quantity(vm["pixel-size"].as<std::string>(), Dimension::Length, "--pixel-size");
    if (!(px > 0))
      fail("--pixel-size must be > 0, got ", px, " Å");
    image.pixel_size_A = px;
    image.pixel_size_y_A = 0;  // --pixel-size gives square pixels
  }
  if (!(image.pixel_size_A > 0))
    fail(path, ": no pixel size in the file; give it with --pixel-size (e.g. --pixel-size 0.05A "
               "or 0.005nm)");
  return image;
}

double parse_tolerance(const std::string& text, const std::string& what, double max_fraction) {
  std::string t = text;
  double scale = 1;
  while (!t.empty() && t.back() == ' ')
    t.pop_back();
  if (!t.empty() && t.back() == '%') {
    t.pop_back();
    scale = 0.01;
  }
  double v = 0;
  try {
    size_t used = 0;
    v = std::stod(t, &used) * scale;
    if (used != t.size())
      throw std::invalid_argument(t);
  } catch (const std::exception&) {
    throw po::error(what + " '" + text + "': expected a percentage (1%) or a fraction (0.01)");
  }
  if (!(v > 0 && v < max_fraction))
    throw po::error(what + " '" + text + "' must be between 0 and " + std::to_string(int(max_fraction * 100)) + " %");
  return v;
}

std::vector<Phase> load_phases(const std::vector<std::string>& names, double d_min_A, bool double_diffraction) {
  std::vector<Phase> phases;
  PhaseSpec spec;
  spec.d_min_A = d_min_A;
  spec.double_diffraction = double_diffraction;
  for (const auto& n : names)
    phases.push_back(make_phase(read_crystal(n), spec));
  return phases;
}

}  // namespace epitem::cli
