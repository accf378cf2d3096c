// Pixel-size calibration of a lattice image from the 2-D reciprocal lattice its FFT peaks span
// (not from |g| alone): the lattice's reduced basis (lengths and angle) is matched against the
// projected zone lattices of a reference phase, with the file's calibration as a prior. A
// general 2×2 map between the two lattices gives the x and y pixel sizes (slow-scan drift).
#pragma once
#include <string>
#include <vector>

#include "epitem/indexing.hpp"
#include "epitem/spectrum.hpp"

namespace epitem {

/// A lattice spanned by FFT peaks: g = n1·b1 + n2·b2 (nominal 1/Å, x right, y up).
struct ImageLattice {
  double b1x = 0, b1y = 0, b2x = 0, b2y = 0;  ///< Gauss-reduced basis (|b1| ≤ |b2|)
  std::vector<int> peak;       ///< indices of the peaks on the lattice
  std::vector<int> n1, n2;     ///< their integer coordinates
  double rms_invA = 0;         ///< RMS distance of those peaks from their lattice points
};

/// The lattice spanned by two of the strong peaks (≥ 1 % of the strongest; the first
/// `max_basis_peaks`) that puts the most peak intensity on integer points within tolerance_invA. Throws Error when fewer than 3 peaks agree on one.
ImageLattice find_image_lattice(const std::vector<Peak>& peaks, double tolerance_invA, int max_basis_peaks = 10);

struct LatticeCalibrationSpec {
  double prior_range = 0.15;       ///< true pixel within ±this of the nominal
  double max_distortion = 0.05;    ///< allowed anisotropy/shear of the image lattice (scan drift)
  int max_zone_index = 3;          ///< zones [uvw] with |u|,|v|,|w| ≤ this
  int max_sublattice_index = 4;    ///< the image lattice may miss reflections (index of the sublattice)
  /// Peaks on kinematically forbidden reflections, as a share of the lattice peaks' intensity,
  /// above which a candidate is refused (HAADF shows some forbidden ones weakly).
  double max_forbidden_share = 0.2;
  /// A single peak on a forbidden reflection stronger than this × the strongest lattice peak
  /// refuses the candidate (the strong peaks of a lattice must be allowed reflections), unless
  /// it is the sum of two observed allowed reflections (double diffraction).
  double max_forbidden_peak_rel = 0.1;
  /// Allowed zone reflections with kinematic |F|² ≥ this × the strongest (up to the largest
  /// observed |g|) are "strong" and must be seen ...
  double strong_predicted_rel = 0.25;
  /// ... refused when the unseen ones carry more than this share of their |F|².
  double max_missing_share = 0.15;
};

struct LatticeCandidate {
  Vec3 zone_uvw = Vec3::Zero();
  Vec3 hkl1 = Vec3::Zero(), hkl2 = Vec3::Zero();  ///< reference reflections of b1, b2
  double scale = 0;                ///< g_true / g_nominal (isotropic, √ of the map's determinant)
  double scale_x = 0, scale_y = 0; ///< the same along the image x and y axes
  double shear = 0;                ///< off-diagonal of the fitted metric (0 = pure x/y scaling)
  double distortion = 0;           ///< σ_max/σ_min − 1 of the fitted map (anisotropy)
  double residual_rel = 0;         ///< SNR-weighted RMS |g| misfit (relative) of the lattice peaks, isotropic scale
  double forbidden_share = 0;      ///< intensity share of peaks on forbidden reflections
  /// Strongest forbidden-assigned peak that double diffraction cannot explain / strongest lattice peak
  double strongest_forbidden_rel = 0;
  Vec3 strongest_forbidden_hkl = Vec3::Zero();
  double missing_share = 0;        ///< |F|² share of strong predicted zone reflections not seen
  std::string missing_hkl;         ///< some of them, for the message
  int sublattice_index = 1;        ///< 1: every zone reflection may be seen; 2: half missing ...
  bool in_prior = false;
  double cost = 0;                 ///< ranking (lower is better)
  std::string reason;              ///< why it lost or was refused (empty for the winner)
};

struct LatticeCalibration {
  ImageLattice lattice;
  std::vector<LatticeCandidate> candidates;  ///< best first; [0] is the answer
  double nominal_pixel_x_A = 0, nominal_pixel_y_A = 0;
  double pixel_size_A = 0;          ///< isotropic answer: nominal / scale (x axis nominal)
  double pixel_size_x_A = 0, pixel_size_y_A = 0;
  double uncertainty_rel = 0;       ///< standard error of the isotropic scale
  const LatticeCandidate& best() const { return candidates.front(); }
};

/// Finds the image lattice and the reference zone/scale that explain it. Throws Error with the
/// nearest miss when nothing fits within the prior and the distortion limit.
LatticeCalibration calibrate_lattice(const std::vector<Peak>& peaks, const PowerSpectrum& spectrum,
                                     double nominal_pixel_x_A, double nominal_pixel_y_A, const Phase& reference,
                                     const LatticeCalibrationSpec& spec = {});

/// The whole route for a micrograph: Hann-windowed power spectrum, its 30 strongest peaks, then
/// calibrate_lattice with the image's own (nominal) x and y pixel sizes.
LatticeCalibration calibrate_lattice_image(const Image& image, const Phase& reference,
                                           const LatticeCalibrationSpec& spec = {}, int threads = 0,
                                           std::vector<Peak>* peaks_out = nullptr);

}  // namespace epitem
