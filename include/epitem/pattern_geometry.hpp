// Geometry of a diffraction pattern on the detector: centre (Friedel pairs of spots or a fitted
// ring), elliptical distortion (Fitzgibbon/Halir–Flusser direct least-squares ellipse fit),
// calibration (R = λL|g|, or fitted to a reference ring set) and the azimuthal radial profile.
#pragma once
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "epitem/image.hpp"
#include "epitem/spot_detection.hpp"

namespace epitem {

using Vec2 = Eigen::Vector2d;

/// Angles are counter-clockwise from +x with y pointing UP on screen (row index grows down),
/// the convention of shared/data/realdata/README.md.
struct Ellipse {
  double cx_px = 0, cy_px = 0;          ///< centre [px; column, row]
  double semi_major_px = 0, semi_minor_px = 0;
  double angle_deg = 0;                 ///< major axis direction, in (−90, 90]
  double axis_ratio() const { return semi_major_px / semi_minor_px; }
  double mean_radius_px() const { return 0.5 * (semi_major_px + semi_minor_px); }
  /// Distance from the centre to the ellipse along pixel direction (dx, dy) [px].
  double radius_along_px(double dx, double dy) const;
};

/// Direct least-squares ellipse fit (Fitzgibbon, Pilu & Fisher 1999, in the numerically stable
/// form of Halir & Flusser 1998). Points in px. Throws Error for < 6 points or no ellipse.
Ellipse fit_ellipse(const std::vector<Vec2>& points_px);

struct RingFitSpec {
  int n_rays = 360;              ///< azimuthal samples of the ring
  double half_width_px = 8;      ///< radial search window around the guess
  double smoothing_sigma_px = 1; ///< Gaussian blur before locating the ring maximum
  int iterations = 4;            ///< re-centre the rays on the new centre this many times
  /// A ring must be seen on this fraction of the unblocked rays; spots alone (a spot pattern
  /// without rings) reach far less and must not pass for a ring.
  double min_coverage = 0.5;
};

struct RingFit {
  Ellipse ellipse;
  int n_rays_used = 0;           ///< rays not blocked by the mask and with a clear maximum
  int n_inliers = 0;             ///< points kept by the robust (3·MAD) residual cut
  int n_rays_unblocked = 0;      ///< rays not crossing the mask
  double rms_residual_px = 0;    ///< radial RMS distance of the inliers from the ellipse
  std::vector<Vec2> points_px;   ///< the inlier ring points
};

/// Fits the ring near radius_px around the guessed centre. Rays crossing masked pixels (beam
/// stop) are skipped. Throws Error when fewer than 12 rays, or less than min_coverage of the
/// unblocked rays, see the ring.
RingFit fit_ring(const Image& image, const DetectorMask& mask, double cx_px, double cy_px,
                 double radius_px, const RingFitSpec& spec = {});

struct FriedelCentre {
  double cx_px = 0, cy_px = 0;
  int n_pairs = 0;               ///< pairs whose midpoints agree with the centre
  double rms_px = 0;             ///< scatter of those midpoints about the centre
  double uncertainty_px = 0;     ///< 1σ of the centre (bootstrap over the spots)
  int n_spots = 0;               ///< distinct spots that judged the candidates
};

/// How tightly the radii of `spots` about c cluster: Σ over pairs of a Gaussian in their
/// radius difference (width 0.7 px + 0.4 % of r). Spots of one family share a radius about
/// the true centre, mates present or not. Spots nearer than min_radius_px are ignored.
double radial_concentration(const std::vector<Vec2>& spots, const Vec2& c, double min_radius_px = 10);

/// Distinct spots of a movie: detections of all frames within merge_px of each other are
/// merged into one position (their mean), so a spot seen in many frames counts once.
std::vector<Vec2> distinct_spot_positions(const std::vector<std::vector<DetectedSpot>>& frames,
                                          double merge_px = 1.5);

/// Pattern centre from Friedel pairs (g, −g) across the whole movie: the distinct spots of all
/// frames (distinct_spot_positions) are paired, so a spot and its mate may be seen in
/// different frames. Midpoints vote on a 2-px grid; the 100 densest cells are each refined by
/// the mean of the midpoints within tolerance_px whose spots lie at equal radius, and of those
/// with ≥ 3 pairs the one with the highest radial_concentration of all distinct spots wins
/// (spurious pairs, e.g. mirrored about a beam-stop rod, vote but do not concentrate the radii
/// of the real families). It is polished to the concentration maximum within ±1 px and then
/// replaced by the mean of the mate midpoints within 0.5 px of it when ≥ 3 mates agree. An affine (elliptical) distortion keeps midpoints at the centre. Each inner
/// vector is one frame. Throws Error when no candidate has ≥ 3 pairs.
FriedelCentre centre_from_friedel_pairs(const std::vector<std::vector<DetectedSpot>>& frames, int nx,
                                        int ny, double tolerance_px = 1.5);

struct SpotDistortionSpec {
  double max_ellipticity = 0.025; ///< largest ε = (a − b)/(a + b) searched (a/b ≈ 1.05)
  double width_rel = 0.002;       ///< spread of one family's ln r after correction (0.2 %)
  double min_radius_px = 10;      ///< spots nearer the centre carry too little shape information
  int min_pairs = 8;              ///< same-family pairs needed for a result
};

struct SpotDistortion {
  Ellipse ellipse;               ///< centre as given; semi-axes around a 100-px mean radius
  int n_pairs = 0;               ///< same-family spot pairs the fit explains
  double rms_rel = 0;            ///< weighted RMS of their ln r residual
};

/// Elliptical distortion measured from spots when there is no ring: spots of one reflection
/// family at different azimuths must lie on one ellipse about the centre. Needs no phase or
/// calibration (families are found from the radii). Points in px; throws Error when fewer than
/// spec.min_pairs same-family pairs at different azimuths are found.
SpotDistortion distortion_from_spots(const std::vector<Vec2>& positions_px, double cx_px, double cy_px,
                                     const SpotDistortionSpec& spec = {});

/// A distortion given as a/b (≥ 1) and the major-axis angle (CCW from +x, y up) [deg], e.g.
/// from `epitem calibrate --rings`. Throws Error for a ratio outside [1, 1.5).
Ellipse distortion_ellipse(double cx_px, double cy_px, double axis_ratio, double angle_deg);

/// Rough centre from an unblocked direct beam: the maximum of the image blurred by sigma_px
/// over unmasked pixels, refined by the centroid of the blurred image above half that maximum
/// within 3σ [px]. Only a starting point for fit_ring.
Vec2 direct_beam_centre_px(const Image& image, const DetectorMask& mask, double sigma_px = 4);

/// Centre, distortion and calibration of a pattern. g vectors have y pointing up on screen.
struct PatternGeometry {
  Ellipse ellipse;                ///< centre and distortion (a circle when none was fitted)
  bool correct_distortion = false;///< true: radii are mapped onto the circle of mean radius
  double pixel_size_invA = 0;     ///< reciprocal-space size of one px at the mean radius [1/Å]
  /// Offset from the centre with the distortion removed (if enabled) [px, y up].
  Vec2 corrected_offset_px(double x_px, double y_px) const;
  /// Reciprocal vector (gx, gy) [1/Å, y up]; throws Error when pixel_size_invA is unset.
  Vec2 g_invA(double x_px, double y_px) const;
};

/// Default distortion threshold: correct when a/b − 1 exceeds 0.3 % (the paper's 422.5/421.5
/// = 0.24 % was neglected; 0.3 % of |g| is the typical spacing accuracy of SAED).
constexpr double DEFAULT_DISTORTION_THRESHOLD = 0.003;

/// Pixel size in 1/Å from the camera constant: R = λL|g| → Δg = detector_pixel / (λ L).
double pixel_size_from_camera_length_invA(double wavelength_A, double camera_length_A,
                                          double detector_pixel_A);

/// A reference reflection ring for calibration and indexing.
struct ReferenceRing {
  std::string phase;   ///< "Au"
  std::string hkl;     ///< "220" (family representative)
  double g_invA = 0;   ///< |g| = 1/d [1/Å]
  std::string label() const { return phase + " " + hkl; }
};

struct RingCalibration {
  double pixel_size_invA = 0;
  struct Match {
    double radius_px, g_invA;
    std::string label;
  };
  std::vector<Match> matches;     ///< measured ring ↔ reference ring
  double rms_relative = 0;        ///< RMS of (g_ref − Δg·r)/g_ref over the matches
};

/// Finds the scale Δg [1/Å per px] that maps the most measured radii (weighted by `weights`,
/// e.g. peak prominence; empty = equal) onto reference rings within rel_tolerance, then refines
/// it by least squares over the matches. Throws Error when no scale matches 2 rings.
RingCalibration calibrate_from_rings(const std::vector<double>& radii_px,
                                     const std::vector<double>& weights,
                                     const std::vector<ReferenceRing>& references,
                                     double rel_tolerance = 0.01);

/// A global factor on the reciprocal pixel size, fitted to the reflection families of the
/// phases present: detector calibrations are often 1–5 % off, enough to index every spot wrongly.
struct ScaleFit {
  double scale = 1;              ///< multiply the pixel size by this
  double score = 0;              ///< Σ over spots of the Gaussian match to the nearest family
  int n_matched = 0;             ///< spots within tolerance of a family at `scale`
  double runner_up_scale = 0;    ///< best scale more than 2 × tolerance away (0: none)
  double runner_up_score = 0;
  bool at_edge = false;          ///< the best scale is at the edge of the searched range
};

/// Scale s in [1 − range, 1 + range] that maps the most measured |g| (one per distinct spot)
/// onto reference |g| within tolerance_rel: a Gaussian match score (σ = tolerance/2) on a grid
/// of tolerance/10, then least squares over the matched spots. Throws Error when no reference
/// or no spot is given, or range is outside (0, 0.5).
ScaleFit fit_calibration_scale(const std::vector<double>& g_invA, const std::vector<double>& reference_g_invA,
                               double range, double tolerance_rel);

/// Azimuthally averaged intensity in bins of the (distortion-corrected) radius; pixel → bin
/// lookup is precomputed, so profile() costs one pass per frame.
class RadialProfiler {
public:
  RadialProfiler(int nx, int ny, const PatternGeometry& geometry, const DetectorMask& mask,
                 double bin_px = 1.0);
  /// Mean intensity per bin (NaN where no unmasked pixel falls).
  std::vector<double> profile(const Image& frame) const;
  /// Median intensity per bin: the azimuthal background that spots (a few % of a bin's
  /// pixels) do not pull up (NaN where no unmasked pixel falls).
  std::vector<double> median_profile(const Image& frame) const;
  /// The frame minus its own azimuthal median (linearly interpolated in radius): removes rings
  /// and diffuse background so only spots remain. Masked pixels become 0. The mean profile()
  /// is stored in *profile_out when given.
  Image subtract_profile(const Image& frame, std::vector<double>* profile_out = nullptr) const;
  /// Bin centres [px of corrected radius].
  const std::vector<double>& radius_px() const { return radius_px_; }
  double bin_px() const { return bin_px_; }

private:
  int nx_, ny_;
  double bin_px_;
  std::vector<int> bin_of_pixel_;  // −1 = masked
  std::vector<int> pixels_by_bin_;       // pixel indices grouped by bin (counting sort)
  std::vector<int> bin_start_;           // bin b owns pixels_by_bin_[bin_start_[b] .. bin_start_[b+1])
  std::vector<int> lower_bin_of_pixel_;  // interpolation between bin centres
  std::vector<float> upper_weight_of_pixel_;
  std::vector<int> count_;
  std::vector<double> radius_px_;
};

struct ProfilePeak {
  double radius_px = 0;     ///< sub-bin peak position
  double height = 0;        ///< profile value at the peak
  double prominence = 0;    ///< height above the higher of the two flanking minima
  double snr = 0;           ///< prominence / noise of the profile
};

/// Local maxima of a radial profile with prominence ≥ min_snr × noise (noise from the MAD of
/// second differences / √6), strongest first. NaN bins are skipped.
std::vector<ProfilePeak> find_profile_peaks(const std::vector<double>& profile,
                                            const std::vector<double>& radius_px,
                                            double min_snr = 5.0, int window_bins = 12);

}  // namespace epitem
