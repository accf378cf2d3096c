// Phase maps from lattice fringes: Bragg filtering (soft Gaussian masks on chosen reflections
// and their Friedel mates, inverse FFT) gives each phase's local fringe amplitude; thresholds
// turn amplitudes into regions → projected areas [nm²] and centroids per frame.
#pragma once
#include <string>
#include <vector>

#include "epitem/image.hpp"
#include "epitem/png.hpp"

namespace epitem {

/// A reflection as a spatial frequency [1/Å, no 2π]: x along image columns (right), y UP on
/// screen (against the row index), as in shared/data/realdata/README.md.
struct PhaseReflection {
  double gx_invA = 0, gy_invA = 0;
};

struct PhaseFilter {
  std::string name;                    ///< "NiFe", "Fe3O4"
  std::vector<PhaseReflection> reflections; ///< each used with its Friedel mate −g
  Rgb color = colors::blue;            ///< overlay colour
};

struct PhaseMapSpec {
  /// Gaussian mask σ in reciprocal space [1/Å]; 0 = auto (1/4 of the smallest distance
  /// between the reflections, their mates and the origin). Map resolution ≈ 1/(2π σ) [Å].
  double mask_sigma_invA = 0;
  /// Region threshold as a fraction of each phase's 99th-percentile amplitude; 0 = half the
  /// local plateau (largest amplitude within 3 envelope σ), where the smoothed envelope of
  /// fringes ending at a sharp edge crosses 50 %, i.e. at the edge; plateaus below Otsu's
  /// threshold of the amplitude histogram are background.
  double threshold_fraction = 0;
};

/// Result for one frame.
struct PhaseMapFrame {
  std::vector<Image> amplitude;   ///< per phase: local fringe amplitude (envelope)
  std::vector<Image> filtered;    ///< per phase: Bragg-filtered image (real, ±g masks)
  std::vector<double> threshold;  ///< per phase, in amplitude units: the fixed threshold, or
                                  ///< (local plateau mode) Otsu's background/phase split
  std::vector<int> label;         ///< per pixel: phase index, −1 = none; overlaps go to the
                                  ///< phase with the larger amplitude/local-threshold ratio
  std::vector<double> area_nm2;   ///< projected area per phase
  std::vector<double> centroid_x_nm, centroid_y_nm;  ///< per phase, from the top-left corner,
                                                     ///< y down (NaN if the phase is absent)
};

/// Parses "NAME=gx,gy;gx,gy" (1/Å; also "NAME=path.csv" with columns gx_invA, gy_invA).
PhaseFilter parse_phase_filter(const std::string& text);

/// Phase map of one frame (needs a pixel size; the reflections must lie inside Nyquist).
PhaseMapFrame phase_map(const Image& frame, const std::vector<PhaseFilter>& phases, const PhaseMapSpec& spec);

/// Grayscale frame with each phase's region blended in its colour (alpha 0.45) and outlined.
Canvas phase_overlay(const Image& frame, const PhaseMapFrame& map, const std::vector<PhaseFilter>& phases);

}  // namespace epitem
