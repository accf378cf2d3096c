// Ring (polycrystalline) diffraction patterns: the centre from the rings themselves (the direct
// beam is often behind a beam stop), elliptical distortion from concentric ellipse fits, the
// distortion-corrected azimuthal average and its rings, and the reciprocal pixel from a known
// phase, refused when the rings do not fit it.
#pragma once
#include <limits>
#include <string>
#include <vector>

#include "epitem/image.hpp"
#include "epitem/indexing.hpp"
#include "epitem/pattern_geometry.hpp"
#include "epitem/spot_detection.hpp"

namespace epitem {

struct Ring {
  double radius_px = 0;   ///< mean radius (distortion removed) [px]
  double height = 0;      ///< azimuthal mean above the local baseline at the ring
  double snr = 0;         ///< prominence / profile noise
};

/// Summary kept for callers that only need the centre and the ring radii.
struct RingProfile {
  double centre_x_px = 0, centre_y_px = 0;  ///< column, row of the pattern centre
  double bin_px = 0.5;                      ///< radial bin of the profile
  std::vector<double> mean;                 ///< azimuthal mean per bin (radius = (i + 0.5)·bin)
  std::vector<Ring> rings;                  ///< by increasing radius
};

struct RingSpec {
  double min_radius_px = 0;     ///< ignore rings inside this (0 = 4 % of the image size)
  double min_snr = 6;           ///< ring prominence over the profile noise
  /// Given centre [px: column, row]; NaN = find it from the rings.
  double centre_x_px = std::numeric_limits<double>::quiet_NaN();
  double centre_y_px = std::numeric_limits<double>::quiet_NaN();
  DetectorMask mask;            ///< excluded pixels (user mask); empty = none
  bool auto_mask = true;        ///< also exclude dark regions (beam stop and its rod)
  int max_fitted_rings = 4;     ///< strongest rings used for the centre/ellipse fit
};

/// Centre, distortion and rings of a ring pattern.
struct RingPattern {
  Ellipse ellipse;               ///< centre and distortion; semi-axes of the best-fitted ring
  std::string centre_method;     ///< "given" or "rings (N fitted)"
  int n_rings_fitted = 0;        ///< rings in the joint concentric-ellipse fit
  double fit_rms_px = 0;         ///< radial RMS of the ring points about the fitted ellipses
  double centre_uncertainty_px = 0;  ///< standard error of the centre from the fit
  DetectorMask mask;             ///< pixels excluded (user mask ∪ automatic beam-stop mask)
  std::size_t n_masked_auto = 0; ///< pixels the automatic mask added
  double bin_px = 0.5;
  std::vector<double> profile_radius_px, profile;  ///< distortion-corrected azimuthal mean
  std::vector<double> baseline;  ///< smooth background under the rings
  double profile_noise = 0;      ///< robust noise of the profile
  std::vector<Ring> rings;       ///< by increasing radius
  double distortion_ratio() const { return ellipse.axis_ratio(); }
};

/// Finds the centre (from the rings unless given), fits concentric ellipses to the strongest
/// rings and measures the distortion-corrected ring radii. Throws Error naming the problem
/// when the pattern has no rings or they cannot be fitted.
RingPattern analyse_ring_pattern(const Image& pattern, const RingSpec& spec = {});

/// analyse_ring_pattern reduced to centre, profile and rings.
RingProfile find_rings(const Image& pattern, const RingSpec& spec = {});

struct RingAssignment {
  double radius_px = 0;
  double snr = 0;
  std::string hkl;               ///< reference family ("220"); empty = unmatched
  double d_A = 0;
  double error_rel = 0;          ///< (scale·r − g)/g
};

struct RingCalibrationResult {
  double pixel_size_invA = 0;    ///< 1/Å per px along the mean radius
  double uncertainty_invA = 0;   ///< standard error from the fitted rings (statistical only)
  double residual_rel = 0;       ///< SNR-weighted RMS relative |g| misfit of the fitted rings
  int n_matched = 0;
  std::vector<RingAssignment> rings;
  std::string runner_up;         ///< the next-best scale and why it lost; empty if none
};

struct RingMatchSpec {
  double tolerance_rel = 0.02;   ///< |g| misfit allowed per ring (blended rings need ~1.5 %)
  /// A predicted ring at least this strong (relative to the matched ones, kinematic m|F|²/g)
  /// must be seen: a pattern of another phase that shares some spacings is refused.
  double min_expected_rel = 0.25;
};

/// Scale mapping the rings onto the reference phase: every strong ring must match an allowed
/// reflection and every strong predicted ring between the innermost usable radius (beam stop /
/// mask edge) and the outermost profile radius must be present in the profile. The scale is an
/// SNR-weighted fit; weak rings with several reference lines within tolerance are labelled but
/// not fitted. Throws Error (with the best attempt) when no scale satisfies this, or when a
/// second scale far from the best also satisfies it with ≥ 80 % of its score.
RingCalibrationResult calibrate_ring_pattern(const RingPattern& pattern, const Phase& reference,
                                             const RingMatchSpec& spec = {});

}  // namespace epitem
