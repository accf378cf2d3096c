// Diffraction-spot detection with the scale-normalised Laplacian of Gaussian −σ²∇²G over a
// range of σ (Lindeberg 1998, IJCV 30:79): separable Gaussian-derivative filters on a binned
// pyramid, thresholds in SNR units (noise = 1.4826·MAD of the response per tile), sub-pixel
// peaks from a 3×3 quadratic fit, and a beam-stop/centre mask.
#pragma once
#include <cstdint>
#include <vector>

#include "epitem/image.hpp"

namespace epitem {

struct SpotDetectionSpec {
  double sigma_min_px = 1.5;    ///< smallest spot σ searched [full-resolution px]
  double sigma_max_px = 4.0;    ///< largest spot σ searched [full-resolution px]
  int n_scales = 4;             ///< σ values spaced geometrically from min to max
  double snr_threshold = 6.0;   ///< keep peaks whose response exceeds this × the robust noise
  /// A scale is computed on the image binned by the largest power of two ≤ max_bin that keeps
  /// the filter σ ≥ 0.9 binned px (coarser bins are faster; finer σ is undersampled).
  int max_bin = 4;
  /// Ridge rejection (Lowe 2004, §4.1): a peak is kept only when the principal curvatures of
  /// the response differ by less than this ratio, so rings and streaks do not give spots.
  double max_curvature_ratio = 10.0;
  int noise_tile_px = 64;       ///< noise (MAD) is estimated per tile of this size [binned px]
  void validate() const;        ///< throws Error for σ ≤ 0, σ_min > σ_max, n_scales < 1...
};

/// Pixels excluded from detection (beam stop, detector gaps, direct beam): nonzero = excluded.
struct DetectorMask {
  int nx = 0, ny = 0;
  std::vector<std::uint8_t> excluded;  ///< excluded[iy * nx + ix]; empty = nothing excluded
  bool empty() const { return excluded.empty(); }
  bool is_excluded(int ix, int iy) const {
    return !excluded.empty() && excluded[std::size_t(iy) * std::size_t(nx) + std::size_t(ix)];
  }
  std::size_t count() const;
};

/// Gaussian blur (separable, replicate borders) [σ in px]; used to smooth before ring fitting.
Image gaussian_blur(const Image& image, double sigma_px);

/// Disc of radius_px around (cx, cy) [px], e.g. the direct beam.
DetectorMask circle_mask(int nx, int ny, double cx_px, double cy_px, double radius_px);
/// Beam stop and other shadowed areas of `image` (a frame or a mean of frames), relative to the
/// image's own levels so offset or signed data work: pixels of the 2-px-smoothed image below
/// dark + fraction × (median − dark) and 10 noise σ below the median (dark = its darkest 0.2 %),
/// grown over the dark raw pixels connected to them within 6 px (the blur pulls a sharp edge
/// next to a bright halo inwards), then dilated by margin_px for the penumbra. Those pixels count as a shadow only when their pixel
/// noise is under half the frame's (no electrons arrive there); else nothing is masked.
DetectorMask dark_region_mask(const Image& image, double fraction, double margin_px);
/// Union in place; throws Error when the sizes differ.
void add_to_mask(DetectorMask& mask, const DetectorMask& other);

struct DetectedSpot {
  double x_px = 0, y_px = 0;  ///< sub-pixel position [full-res px; pixel centres at integers]
  double sigma_px = 0;        ///< σ of the strongest normalised response [full-res px]
  double response = 0;        ///< −σ²∇²G at the peak [image units]
  double snr = 0;             ///< response / robust noise of the response at that scale
  double intensity = 0;       ///< sum within 2σ minus the 3σ–4σ annulus median (> 0: peaks
                              ///< without excess counts are dropped) [image units × px]
};

/// Precomputes kernels and the binned masks for one frame size; detect() is then called per
/// frame (thread-safe: it allocates its own work buffers).
class SpotDetector {
public:
  SpotDetector(int nx, int ny, const SpotDetectionSpec& spec, DetectorMask mask = {});
  std::vector<DetectedSpot> detect(const Image& frame) const;
  const SpotDetectionSpec& spec() const { return spec_; }
  const DetectorMask& mask() const { return mask_; }
  /// The σ values [full-res px] and the bin factor used for each.
  const std::vector<double>& sigmas_px() const { return sigmas_; }
  const std::vector<int>& bins() const { return bins_; }

private:
  struct Level {  // the mask fields are empty without a mask
    int bin, nx, ny;
    std::vector<float> weight;           // unmasked fraction of each binned pixel
    std::vector<float> normaliser;       // G_σ * weight (normalised convolution)
    std::vector<float> noise_factor;     // response noise relative to an unmasked neighbourhood
    std::vector<std::uint8_t> excluded;  // no peaks here: pixel mostly masked or filter unseen
  };
  int nx_, ny_;
  SpotDetectionSpec spec_;
  DetectorMask mask_;
  std::vector<double> sigmas_;
  std::vector<int> bins_;
  std::vector<double> filter_sigmas_;  // σ in binned px (binning blur removed)
  std::vector<Level> levels_;          // one per scale
};

}  // namespace epitem
