// HRTEM image formation from an exit wave (docs/formulas.md §6): ψ_i(k) = ψ_exit(k)·A(k)·e^{−iχ(k)},
// partial coherence either as quasi-coherent envelopes on the wave spectrum or by explicit
// Gauss–Hermite integration of intensities over defocus and illumination tilt (Kirkland §3.3).
#pragma once
#include <string>
#include <vector>

#include "epitem/fft.hpp"
#include "epitem/image.hpp"
#include "epitem/optics.hpp"
#include "epitem/progress.hpp"
#include "epitem/wave.hpp"

namespace epitem {

/// Envelope: E_t·E_s multiplied onto the wave spectrum (1 forward + 1 inverse FFT); damps the
/// image mean for strong objects (the scattered intensity is lost). Integrate: intensities summed
/// over Gauss–Hermite defocus nodes × tilt nodes (the reference; keeps the mean).
enum class CoherenceModel { Envelope, Integrate };
/// "envelope" | "integrate"; throws Error otherwise.
CoherenceModel parse_coherence_model(const std::string& name);
const char* coherence_model_name(CoherenceModel model);

struct CoherenceSpec {
  CoherenceModel model = CoherenceModel::Envelope;
  /// Gauss–Hermite nodes over the focal spread / per tilt axis (integrate); 0 = automatic:
  /// enough nodes to integrate the largest phase spread below the information limit to ~1e-3.
  int defocus_nodes = 0;
  int tilt_nodes = 0;
  /// Integrate: beams where the linear envelope E_t·E_s < this (past the information limit,
  /// where a finite quadrature would alias them back in) add their intensity as a uniform
  /// background instead of interfering (incoherent limit; the image mean is kept).
  double information_limit = 1e-3;
  void validate() const;
};

/// The node counts and cutoff the integrate model uses for a lens on a grid.
struct CoherenceNodes {
  int defocus = 1, tilt_per_axis = 1;
  int total = 1;              ///< defocus × tilts kept after pruning the cone's corners
  double max_phase_defocus_rad = 0, max_phase_tilt_rad = 0;  ///< per unit node coordinate
  double cutoff_invA = 0;     ///< largest |k| still interfering (information limit, aperture)
};
CoherenceNodes coherence_nodes(const Lens& lens, const CoherenceSpec& coherence, const Grid& grid);

/// One line saying which model produced an image, for the echo and the sidecar.
std::string coherence_description(const Lens& lens, const CoherenceSpec& coherence,
                                  const Grid& grid);

/// Nodes x and weights w of the n-point Gauss–Hermite rule ∫e^{−x²}f(x)dx ≈ Σ w f(x)
/// (Golub–Welsch; weights sum to √π).
void gauss_hermite(int n, std::vector<double>& nodes, std::vector<double>& weights);

/// The coherent transfer of a lens on a grid for envelope-model images: A(q)·E_t·E_s·
/// e^{−i[χ(q) − χ(β)]} at q = k + β (illumination tilt β). Computed once, it images any
/// number of exit waves (frozen phonons, thicknesses) at exactly 2 FFTs + 2 passes each.
class TransferFunction {
public:
  TransferFunction(const Lens& lens, const Grid& grid, double tilt_x_mrad = 0,
                   double tilt_y_mrad = 0);
  const Grid& grid() const { return grid_; }
  const AlignedVector<cfloat>& values() const { return values_; }

private:
  Grid grid_;
  AlignedVector<cfloat> values_;
};

/// Forms images of one exit wave: its spectrum is computed once (1 forward FFT) and each image
/// costs 1 inverse FFT per coherence node (envelope: 1 node).
class ImageFormer {
public:
  explicit ImageFormer(const Wave& exit_wave);

  /// Image intensity |ψ_i|² (1 = vacuum) on the exit wave's grid. An illumination tilt
  /// (mrad) images a fixed exit wave with χ(k+β) − χ(β) and the aperture at k+β: the
  /// isoplanatic approximation (the specimen's response does not change with a small tilt).
  Image intensity(const Lens& lens, const CoherenceSpec& coherence, double tilt_x_mrad = 0,
                  double tilt_y_mrad = 0);
  /// Envelope-model image with a precomputed transfer function (same grid).
  Image intensity(const TransferFunction& transfer);
  /// Coherent image wave (no envelopes, no tilt): F⁻¹[ψ(k)·A(k)·e^{−iχ(k)}].
  Wave image_wave(const Lens& lens);
  /// FFTs executed so far (the forward one included): the cost claim of the issue.
  long fft_count() const { return fft_count_; }
  const Grid& grid() const { return grid_; }

private:
  Grid grid_;
  double energy_eV_;
  AlignedVector<cfloat> spectrum_, work_;
  Fft2D fft_;
  int threads_;
  long fft_count_ = 0;
  /// acc += weight·|F⁻¹[spectrum·transfer]|²/N²; `transfer` may be work_ itself.
  void add_image(const cfloat* transfer, double weight, std::vector<double>& acc);
  Image to_image(const std::vector<double>& acc) const;
};

/// One image from one exit wave (convenience for ImageFormer).
Image form_image(const Wave& exit_wave, const Lens& lens, const CoherenceSpec& coherence);

/// Warns (does not fail) when the aperture lies beyond the grid's 2/3 band limit or the
/// envelopes are still large at the band limit (the image is then sampling-limited).
void check_lens_against_grid(const Lens& lens, const Grid& grid, const WarnFn& warn);

/// Averages images as intensities (frozen phonons: one add() per configuration).
class ImageAverage {
public:
  void add(const Image& image);
  int count() const { return count_; }
  /// Mean of the added images; throws Error if none was added.
  Image mean() const;

private:
  std::vector<double> sum_;
  Image shape_;
  int count_ = 0;
};

/// Float32 exit-wave TIFF pages → one Wave per (real, imaginary) pair of pages (as written by
/// `epitem multislice`: one pair per saved thickness; file row 0 = largest y, flipped back to the
/// model frame; y pixel from pixel_y_A()). Throws Error on an odd or zero page
/// count, different page sizes, NaN/Inf, or an unknown pixel size (give sampling_A > 0 then).
std::vector<Wave> waves_from_pages(const std::vector<Image>& pages, double energy_eV,
                                   double sampling_A, const std::string& what);

}  // namespace epitem
