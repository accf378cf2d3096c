// Fitting simulations to an experimental HRTEM image (`epitem match`, docs/match.md): simulated
// images over a (tilt, thickness, defocus) grid are formed from stored exit waves, put through the
// camera (MTF, experiment pixel), aligned to the experiment (rotation, scale, sub-pixel shift)
// and scored by normalised cross-correlation and a noise-weighted χ² on a region of interest.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "epitem/detector.hpp"
#include "epitem/image.hpp"
#include "epitem/imaging.hpp"
#include "epitem/multislice.hpp"
#include "epitem/progress.hpp"
#include "epitem/spectrum.hpp"  // Roi
#include "epitem/wave.hpp"

namespace epitem {


/// Where an experiment pixel lies in the (periodic) simulation: with u = pixel − ROI centre,
///   p_sim [Å, display frame, from the simulation's centre] = scale · R(−rotation) · diag(pixel_A, pixel_y_A) · (u + shift_px),
/// R(θ) a counter-clockwise rotation on screen. So the experiment shows the simulation rotated
/// counter-clockwise on screen by `rotation_deg`, and its true pixel is `scale` × the stated one.
struct MatchGeometry {
  double rotation_deg = 0;
  double scale = 1;
  double shift_x_px = 0, shift_y_px = 0;  ///< experiment pixels, x right, y down
};

/// White-equivalent noise of the experiment, from the radial median of its power spectrum
/// (Bragg peaks are sparse, so the median of each ring is noise; an exponential variate's median
/// is ln 2 × its mean). Correlated (MTF-blurred) noise counts fewer independent pixels.
struct NoiseEstimate {
  double variance = 0;               ///< per pixel [experiment units²]
  double independent_fraction = 1;   ///< effective independent pixels / pixels (≤ 1)
  double signal_variance = 0;        ///< total variance − noise variance over the ROI
};
NoiseEstimate estimate_noise(const Image& roi);

/// The experiment prepared for scoring: the ROI, its noise, the padded spectrum used by the
/// shift search, and the camera model the simulations go through.
struct MatchExperiment {
  Image roi;                  ///< ROI pixels (display frame)
  double pixel_A = 0;         ///< stated pixel size (x)
  double pixel_y_A = 0;       ///< stated y pixel (= pixel_A for square pixels)
  Mtf mtf;                    ///< camera MTF, q = k / k_Nyquist of the experiment pixel
  NoiseEstimate noise;
  int margin_px = 0;          ///< shifts searched in ±margin (experiment pixels)
  // Shift search: the zero-mean ROI, zero-padded to the canvas (ROI + 2 margins), transformed.
  int canvas_nx = 0, canvas_ny = 0;
  AlignedVector<cfloat> template_spectrum;
  double template_norm = 0;   ///< √Σ(E − Ē)²
};
/// Cuts the ROI (throws Error naming `what` when it leaves the image or is < 16 px) and
/// estimates its noise. max_shift_px: largest shift searched (clamped to ROI/2).
MatchExperiment prepare_experiment(const Image& experiment, const Roi& roi, const Mtf& mtf,
                                   int max_shift_px, const std::string& what);

/// A simulated intensity (display frame, periodic) through the camera: MTF, band limit at the
/// experiment's Nyquist frequency, and Fourier resampling to a working pixel ≤ half the
/// experiment's (so bilinear warping adds little blur). Counts its FFTs.
class CameraModel {
public:
  CameraModel(const Grid& sim_grid, double experiment_pixel_A, const Mtf& mtf);
  /// 1 real forward + 1 real inverse FFT. pixel_scale: the true pixel over the stated one
  /// (MatchGeometry::scale), which sets where the MTF falls.
  Image from_image(const Image& intensity, double pixel_scale = 1) const;
  double working_pixel_x_A() const { return wx_; }
  double working_pixel_y_A() const { return wy_; }

private:
  Grid sim_;
  int mx_ = 0, my_ = 0;
  double wx_ = 0, wy_ = 0, pe_ = 0;
  Mtf mtf_;
  struct Tap {
    std::uint32_t to, from;  ///< indices in the output and simulation half spectra (< 2³² points)
    double q;                ///< frequency / the stated pixel's Nyquist frequency
  };
  std::vector<Tap> taps_;
  const std::vector<float>& weights(double pixel_scale) const;  ///< MTF per tap, cached
  mutable std::vector<float> weights_;
  mutable double weights_scale_ = 0;
};

/// Score of one simulation against the experiment at a geometry.
struct CellScore {
  MatchGeometry geometry;
  double ncc = -1;            ///< Pearson correlation over the ROI
  double chi2 = 0;            ///< Σ(E − a·S − b)²/σ² × independent fraction
  double chi2_reduced = 0;    ///< chi2 / (independent pixels − 2)
  double gain = 0, offset = 0;///< a, b of the least-squares contrast fit E ≈ a·S + b
};

/// Finds the best shift (FFT correlation over ±margin, sub-pixel by a quadratic fit) for the
/// given rotation and scale, then scores. `sim` is a CameraModel output.
CellScore score_simulation(const MatchExperiment& exp, const Image& sim, double rotation_deg,
                           double scale);
/// Scores at a fixed geometry (no shift search).
CellScore score_at(const MatchExperiment& exp, const Image& sim, const MatchGeometry& g);
/// The simulation warped onto the ROI pixels at a geometry (bilinear, periodic).
Image warp_to_roi(const MatchExperiment& exp, const Image& sim, const MatchGeometry& g);

/// Rotation and scale from power spectra (translation-free): the strongest spatial frequencies
/// of `sims` (CameraModel outputs, summed) are matched to the experiment's whitened spectrum
/// over the search ranges. Returns {rotation_deg, scale}.
std::pair<double, double> search_rotation_scale(const MatchExperiment& exp,
                                                const std::vector<Image>& sims,
                                                double max_rotation_deg, double max_scale_change);

/// χ² = c + (x − x0)ᵀA(x − x0) fitted by least squares to samples of two parameters.
struct Quadratic2D {
  bool ok = false;            ///< A positive definite
  double x0 = 0, y0 = 0, c = 0;
  double axx = 0, axy = 0, ayy = 0;
  /// Half-width of the region χ² ≤ min + delta along x (profiled over y), and along y.
  double half_width_x(double delta) const;
  double half_width_y(double delta) const;
};
Quadratic2D fit_quadratic_2d(const std::vector<double>& x, const std::vector<double>& y,
                             const std::vector<double>& value);

/// Exit waves of one multislice run (one tilt): [thickness][phonon configuration].
struct ExitWaveStack {
  double tilt_x_mrad = 0, tilt_y_mrad = 0;
  std::vector<double> thickness_A;
  std::vector<std::vector<Wave>> waves;
};

/// Slice boundaries of a slicing within [min_A, max_A] (> 0), every `every`-th one.
std::vector<double> slice_boundaries_within(const Slicing& slicing, double min_A, double max_A, int every = 1);

/// One multislice run (spec's tilt) keeping the exit waves at `thickness_A` (slice boundaries,
/// increasing) for every phonon configuration. `report` receives the run's report if set.
ExitWaveStack multislice_exit_waves(const AtomicModel& model, MultisliceSpec spec,
                                    const std::vector<double>& thickness_A, ProgressFn progress = {},
                                    WarnFn warn = {}, MultisliceReport* report = nullptr);

/// Images a stack at any lens: one ImageFormer (1 FFT) per (thickness, configuration), then per
/// defocus 1 inverse FFT per coherence node and configuration (envelope: 1), and the camera
/// (2 FFTs): ≤ 4 FFTs per map cell with envelopes.
class StackImager {
public:
  StackImager(const ExitWaveStack& stack, const CoherenceSpec& coherence, const CameraModel& camera);
  /// Camera image at thickness index `t` for `lens` (pixel_scale: CameraModel::from_image).
  /// Formers of thickness t are kept until another thickness is asked for.
  Image image(int t, const Lens& lens, double pixel_scale = 1);
  long fft_count() const { return ffts_; }

private:
  const ExitWaveStack& stack_;
  CoherenceSpec coherence_;
  const CameraModel& camera_;
  int current_ = -1;
  std::vector<std::unique_ptr<ImageFormer>> formers_;
  std::map<std::vector<double>, TransferFunction> transfers_;  ///< by (Δf, Cs, C12, φ12)
  long ffts_ = 0;
};

/// What a match searches: the map axes and the refinements.
struct MatchSpec {
  std::vector<double> defocus_A;                      ///< map axis (≥ 1 value)
  std::vector<double> thickness_A;                    ///< thicknesses the source can image
  std::vector<std::pair<double, double>> tilts_mrad;  ///< (x, y); one entry = no tilt axis
  double max_rotation_deg = 0, max_scale_change = 0;  ///< search ranges (0 = fixed 0°, 1)
  bool continuous_defocus = true;  ///< the source images any defocus (exit waves); false: a series
  bool refine_cs = false, refine_astigmatism = false;
};

/// Image of one cell: tilt index, thickness index, lens (defocus, Cs, C12 set), the experiment's
/// true pixel over its stated one (for the MTF) → CameraModel output.
using CellImageFn = std::function<Image(int tilt, int thickness, const Lens& lens, double pixel_scale)>;

struct MatchCell {
  int tilt = 0, thickness = 0;
  double defocus_A = 0;
  CellScore score;
};

/// A fitted value with the half-width of its 95 % interval (Δχ² = 3.84 × max(1, χ²_red),
/// profiled over the other parameters); NaN when the fit could not give one.
struct Estimate {
  double value = 0, uncertainty_95 = 0;
};

struct MatchResult {
  std::vector<MatchCell> map;          ///< tilt-major, then thickness, then defocus
  MatchCell best_cell;                 ///< lowest χ² on the grid
  MatchGeometry geometry;              ///< refined at the best cell
  Estimate rotation_deg, scale, defocus_A, thickness_A, Cs_A, astigmatism_A, astigmatism_angle_deg;
  Lens lens;                           ///< the refined lens
  CellScore score;                     ///< of the refined parameters (nearest stored thickness)
  Image simulation_roi;                ///< best simulation on the ROI pixels, contrast-fitted (a·S + b)
  double explained_signal_fraction = 0;///< NCC² × total / signal variance (1 = all non-noise structure)
  bool poor_fit = false;
  std::string verdict;                 ///< one line for people
  double imaging_seconds = 0, alignment_seconds = 0;
  long images_formed = 0;
};

/// The whole search: rotation/scale from spectra (3×3 sub-grid of cells) refined in real space,
/// the score map at that geometry, then refinement at the best cell (geometry; continuous
/// defocus × thickness by a quadratic fit of χ²; optional Cs and two-fold astigmatism).
MatchResult run_match(const MatchExperiment& exp, const Lens& lens, const MatchSpec& spec,
                      const CellImageFn& image, ProgressFn progress = {});

}  // namespace epitem
