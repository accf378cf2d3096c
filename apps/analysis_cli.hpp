// Helpers shared by the analysis subcommands (fft, index, compare, calibrate): loading a
// micrograph with its pixel size, ROI and tolerance parsing, phases.
#pragma once
#include <ostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "epitem/indexing.hpp"
#include "epitem/spectrum.hpp"

namespace epitem::cli {

/// "x,y,w,h" in pixels → Roi; throws po::error on a malformed value.
Roi parse_roi(const std::string& text);

/// One page of a TIFF (warns when there are more); --pixel-size (option "pixel-size", Å or
/// with units) overrides the file's calibration.
Image load_micrograph(const std::string& path, int page, const po::variables_map& vm, const WarnFn& warn);

/// "1%", "0.5 %" or a fraction "0.01" → fraction; must be in (0, max_fraction).
double parse_tolerance(const std::string& text, const std::string& what, double max_fraction = 0.3);

/// Phases by built-in name or CIF path, reflections down to d_min_A.
std::vector<Phase> load_phases(const std::vector<std::string>& names, double d_min_A, bool double_diffraction);


}  // namespace epitem::cli
