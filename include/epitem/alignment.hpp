// Simulation-vs-experiment comparison: resampling (bilinear; pixel-size ratio, rotation, shift),
// registration by windowed FFT cross-correlation with a parabolic sub-pixel peak and an optional
// rotation/scale grid search, then normalised cross-correlation and RMS difference (z-scores).
#pragma once
#include <vector>

#include "epitem/image.hpp"

namespace epitem {

struct AlignSpec {
  double max_rotation_deg = 0;    ///< search rotations in ±this (0 = no rotation search)
  double rotation_step_deg = 0.5;
  double max_scale_change = 0;    ///< search scales 1 ± this (0 = none; pixel sizes are used)
  double scale_step = 0.01;
  int threads = 0;
};

/// Another correlation peak that matches almost as well (a lattice vector away, typically).
struct AlternativeShift {
  double shift_x_px = 0, shift_y_px = 0;
  double ncc = 0;  ///< NCC over the overlap at that whole-pixel shift
};

/// NCC (at the peak) a correlation peak needs, relative to the best, to be a consistent shift.
constexpr double consistent_ncc_ratio = 0.8;

struct Alignment {
  /// Reference pixel x ↔ moving pixel c_m + s·R(rotation)·(x − c_r + shift), c = image centres,
  /// s = (reference pixel / moving pixel)·scale: the moving content is displaced by `shift`
  /// [reference px, x right, y down] and rotated CCW on screen by `rotation_deg`.
  double shift_x_px = 0, shift_y_px = 0;
  double rotation_deg = 0;
  double scale = 1;                       ///< extra scale found by the search (1 = as calibrated)
  double ncc = 0;                         ///< normalised cross-correlation over the overlap
  double rms_difference = 0;              ///< RMS of the z-score difference over the overlap
  double overlap_fraction = 0;            ///< of the reference's pixels
  /// On a lattice every lattice vector added to the shift is a correlation peak that matches
  /// about as well; the smallest consistent shift (NCC ≥ consistent_ncc_ratio × best) is taken.
  /// peak_ratio: NCC of the second-best peak / the best (0 = a single peak).
  double peak_ratio = 0;
  bool shift_ambiguous = false;               ///< other consistent peaks exist
  std::vector<AlternativeShift> alternatives; ///< those peaks, smallest shift first
};

/// `moving` resampled onto the reference grid (nx × ny, pixel ref_pixel_A) under `a`; pixels
/// that fall outside `moving` are NaN.
Image resample(const Image& moving, int nx, int ny, double ref_pixel_A, const Alignment& a);

/// Registers `moving` onto `reference` and measures their similarity. Both need ≥ 16×16 finite
/// pixels; pixel sizes are used when both are known. Among consistent correlation peaks the
/// smallest shift is taken (see Alignment::shift_ambiguous).
Alignment align_images(const Image& reference, const Image& moving, const AlignSpec& spec = {});

/// (v − mean)/std over the finite pixels (NaN stays NaN). Throws for a constant image.
Image z_score(const Image& image);

}  // namespace epitem
