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
  /// Gaussian mask σ in reciprocal space [1/Å]; 0 = auto_mask_sigma_invA of the frame.
  /// Map resolution ≈ 1/(2π σ) [Å].
  double mask_sigma_invA = 0;
  /// Region threshold as a fraction of each phase's 99th-percentile amplitude; 0 = half the
  /// local plateau (largest amplitude within 3 envelope σ), where the smoothed envelope of
  /// fringes ending at a sharp edge crosses 50 %, i.e. at the edge; plateaus below Otsu's
  /// threshold of the amplitude histogram are background.
  double threshold_fraction = 0;
  /// The frame is one period of a periodic image (a simulation): filter it without padding.
  /// Otherwise it is padded with its mean (a phase touching a frame edge then loses about
  /// (1 − π/4)(1.5 σ_e)² at each frame corner it fills, σ_e = 1/(2π σ_mask)).
  bool periodic = false;
};

/// Below this fringe contrast a phase's region is not trusted (tests/test_phasemap_interface.cpp:
/// the simulated interface maps within 5 % at contrasts ≥ 0.2 and fails at 0.04–0.07).
constexpr double MIN_FRINGE_CONTRAST = 0.1;

/// Result for one frame.
struct PhaseMapFrame {
  double mask_sigma_invA = 0;     ///< the mask σ used [1/Å]
  std::vector<Image> amplitude;   ///< per phase: local fringe amplitude (envelope)
  std::vector<Image> filtered;    ///< per phase: Bragg-filtered image (real, ±g masks)
  std::vector<double> threshold;  ///< per phase, in amplitude units: the fixed threshold, or
                                  ///< (local plateau mode) Otsu's background/phase split
  std::vector<int> label;         ///< per pixel: phase index, −1 = none; overlaps go to the
                                  ///< phase with the larger amplitude/local-threshold ratio
  std::vector<double> area_nm2;   ///< projected area per phase, curvature-corrected (phase_map)
  std::vector<double> region_area_nm2;  ///< the labelled pixels alone
  std::vector<double> centroid_x_nm, centroid_y_nm;  ///< per phase, from the top-left corner,
                                                     ///< y down (NaN if the phase is absent)
  /// Per phase: median fringe amplitude in its region / the image's standard deviation (NaN if
  /// absent). Below ~0.1 the chosen fringes are barely transferred (a CTF zero, extinction at
  /// this thickness): leaks and edge (Fresnel) fringes then decide the region, not the crystal.
  std::vector<double> fringe_contrast;
};

/// Parses "NAME=gx,gy;gx,gy" (1/Å, y up) or "NAME=peaks.csv[:n,m,…]": a peak table of
/// `epitem fft` (kx,ky), `epitem saed` (gx,gy) or `epitem index` (kx,ky,phase: the rows of phase
/// NAME), optionally only spots n, m, … (1-based); either form optionally "@colour".
PhaseFilter parse_phase_filter(const std::string& text);

/// `--phase-peaks`: an `epitem index` spot table gives one phase per name in its `phase` column
/// (in order of appearance; unexplained spots skipped); text with '=' is one phase as above.
std::vector<PhaseFilter> phases_from_peaks(const std::string& text);

/// Automatic mask σ [1/Å]: a quarter of the smallest distance from a chosen reflection (or its
/// mate) to another spectral feature — the origin, another chosen reflection, or any lattice
/// peak found in the frame's power spectrum (spectrum.hpp; a peak within 3 % of a chosen
/// reflection is that reflection) — so that a mask passes < e^{-8} of a neighbouring peak's
/// amplitude; at least one FFT pixel.
double auto_mask_sigma_invA(const Image& frame, const std::vector<PhaseFilter>& phases);

/// Phase map of one frame (needs a pixel size; the reflections must lie inside Nyquist).
PhaseMapFrame phase_map(const Image& frame, const std::vector<PhaseFilter>& phases, const PhaseMapSpec& spec);

/// Grayscale frame with each phase's region blended in its colour (alpha 0.45) and outlined.
Canvas phase_overlay(const Image& frame, const PhaseMapFrame& map, const std::vector<PhaseFilter>& phases);

}  // namespace epitem
