// Power spectrum of a micrograph and its lattice peaks (docs/formulas.md §8): Hann window, FFT,
// background from the radial median of log P plus a smoothed anisotropic residual, local maxima
// located by the three-bin Hann interpolation, then refined to the maximum of the continuous
// transform |F(k)|² of the windowed image (Newton steps on direct DFT sums). That maximum is
// unbiased for a lattice filling any part of the frame (the transform of a real, non-negative
// window × region has its modulus peak at zero, whatever the region's shape), where the bin
// interpolation, exact only for a full-frame tone, is not. One peak per Friedel pair.
#pragma once
#include <string>
#include <vector>

#include "epitem/image.hpp"
#include "epitem/png.hpp"

namespace epitem {

/// Region of interest in pixels (x = column, y = row from the top); w = h = 0 means all.
struct Roi {
  int x = 0, y = 0, w = 0, h = 0;
};

/// Crops `image` to `roi` (keeps the calibration). Throws Error if the ROI leaves the image.
Image crop(const Image& image, const Roi& roi);

/// Centred power spectrum: power[iy * nx + ix], DC at (nx/2, ny/2), row iy = ny/2 + j holds
/// ky = −j·dky (y up on screen, as the image). Frequencies in 1/Å.
struct PowerSpectrum {
  int nx = 0, ny = 0;
  double dkx_invA = 0, dky_invA = 0;  ///< reciprocal pixel: 1/(n·pixel_size_A)
  std::vector<float> power;
  /// The Hann-windowed, mean-subtracted image (row-major, rows from the top) whose |FFT|² is
  /// `power`, normalised like it; find_peaks evaluates its transform between the bins.
  std::vector<float> windowed;
  double kx_invA(double ix) const { return (ix - nx / 2) * dkx_invA; }
  double ky_invA(double iy) const { return (ny / 2 - iy) * dky_invA; }
};

/// Hann-windowed |FFT|² of the mean-subtracted image (fftwf r2c, `threads` workers;
/// 0 = default_thread_count()). Needs a pixel size, ≥ 8×8 pixels and finite pixels.
PowerSpectrum power_spectrum(const Image& image, int threads = 0);

/// A lattice peak (one per Friedel pair, angle in [0, 180)).
struct Peak {
  double kx_invA = 0, ky_invA = 0;  ///< y up on screen
  double g_invA = 0, d_A = 0;
  double angle_deg = 0;             ///< direction CCW from +x, modulo 180
  double intensity = 0;             ///< power above background at the peak (summed 3×3)
  double snr = 0;                   ///< peak power / mean background power there
  /// Standard uncertainties from the local background power and the peak curvature (the
  /// spread of the refined position under noise of that power; lattice strain not included).
  /// Matches the scatter for a peak on noise; conservative (up to ~10×) where the background
  /// near the peak is the leakage of a strong lattice filling part of the frame.
  double sigma_g_invA = 0, sigma_d_A = 0, sigma_angle_deg = 0;
};

struct PeakSpec {
  double min_snr = 0;       ///< 0 = automatic: ln(pixels / 0.01), < 1 % false peaks in noise
  double d_max_A = 0;       ///< ignore spacings longer than this (0 = 8 reciprocal pixels)
  double d_min_A = 0;       ///< ignore spacings shorter than this (0 = up to Nyquist)
  int max_peaks = 30;       ///< strongest kept
};

/// Background-subtracted peak search with sub-pixel refinement, strongest first.
std::vector<Peak> find_peaks(const PowerSpectrum& spectrum, const PeakSpec& spec = {});

/// log(1 + P/P_median) as an image with the spectrum's reciprocal pixel, for display/TIFF.
Image log_spectrum_image(const PowerSpectrum& spectrum);

/// CSV `kx,ky,g_inv_A,d_A,angle_deg,intensity,snr,sigma_d_A,sigma_angle_deg` (k and g in 1/Å, y up;
/// angle CCW from +x).
std::string peaks_csv(const std::vector<Peak>& peaks);

/// Log spectrum (central region out to 1.3× the farthest peak, at most 1024 px) with the peaks
/// and their Friedel mates circled and labelled "n: d Å", and a 1/nm scale bar.
Canvas spectrum_canvas(const PowerSpectrum& spectrum, const std::vector<Peak>& peaks);

}  // namespace epitem
