// Simple x–y line plots drawn on a Canvas (png.hpp) for the PNG summaries of analysis
// subcommands: axes with rounded ticks, several coloured series, labels (ASCII only).
#pragma once
#include <string>
#include <vector>

#include "epitem/png.hpp"

namespace epitem {

struct PlotSeries {
  std::vector<double> x, y;  ///< NaN points are skipped
  Rgb color = colors::blue;
  std::string label;         ///< shown in the legend if not empty
  bool markers = true;       ///< draw a dot at each point
  bool lines = true;         ///< join successive points
};

/// A white plot of `width`×`height` px with axes from the data range (y from 0 if all ≥ 0).
Canvas line_plot(const std::vector<PlotSeries>& series, const std::string& title,
                 const std::string& x_label, const std::string& y_label, int width = 640, int height = 400);

/// "Nice" tick values (1, 2, 5 × 10^k steps) covering [low, high], about `target` of them.
std::vector<double> nice_ticks(double low, double high, int target = 6);

}  // namespace epitem
