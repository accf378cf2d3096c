// Camera model for simulated HRTEM images: linear drift blur, Fourier resampling to the camera
// pixel, modulation transfer function (parametric or measured) and Poisson counting noise at a
// dose in e⁻/Å² with a seeded, platform-independent generator (mt19937_64 + our own sampler).
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "epitem/image.hpp"

namespace epitem {

/// MTF(q) with q = |k| / k_Nyquist of the output (camera) pixel, applied to the image spectrum.
/// gaussian: exp(−½(q/q0)²); lorentzian (modified Lorentzian): (1 − c)/(1 + (q/q0)²) + c;
/// table: linear interpolation of a measured curve (held constant past its last point).
struct Mtf {
  enum class Kind { None, Gaussian, Lorentzian, Table };
  Kind kind = Kind::None;
  double q0 = 0.5;      ///< width, as a fraction of Nyquist
  double floor = 0.0;   ///< c of the modified Lorentzian (high-frequency plateau)
  std::vector<double> table_q, table_mtf;
  std::string source;   ///< file of a measured MTF

  double at(double q_nyquist_fraction) const;
  std::string describe() const;
};

/// "none" | "gaussian:Q0" | "lorentzian:Q0[,C]" | "file:PATH" (two columns
/// q_nyquist_fraction,mtf; '#' comments and one header line allowed). Throws Error naming `what`.
Mtf parse_mtf(const std::string& spec, const std::string& what);
/// Reads a measured MTF; throws Error on fewer than 2 rows, unsorted q, or values outside [0, 1.5].
Mtf read_mtf_file(const std::string& path);

struct DetectorSpec {
  Mtf mtf;
  double output_pixel_A = 0;    ///< camera pixel referred to the specimen [Å]; 0 = keep
  double dose_e_per_A2 = 0;     ///< electrons per Å²; 0 = no noise (expected intensity)
  std::uint64_t seed = 1;
  double drift_A = 0;           ///< linear drift during the exposure [Å] (box blur)
  double drift_angle_deg = 0;   ///< drift direction from +x [deg]
  bool has_noise() const { return dose_e_per_A2 > 0; }
  /// Throws Error on dose < 0, negative pixel or drift, or a dose given as exactly 0 by
  /// `dose_given` (a user-typed dose ≤ 0 is an error; no dose means noise-free).
  void validate(bool dose_given = false) const;
};

/// Applies drift → resampling → MTF in one Fourier pass, then Poisson noise. With a dose the
/// result is in electron counts per output pixel (mean = dose × pixel area × intensity);
/// without, it stays relative intensity. `page` decorrelates the noise of series pages.
Image apply_detector(const Image& intensity, const DetectorSpec& spec, int page = 0);

/// Poisson deviates from std::mt19937_64 (its output sequence is fixed by the C++ standard)
/// with our own samplers (inversion below mean 10, Hörmann's PTRS above), because
/// std::poisson_distribution differs between standard libraries.
class PoissonSampler {
public:
  explicit PoissonSampler(std::uint64_t seed) : engine_(seed) {}
  std::uint64_t operator()(double mean);
  double uniform();  ///< in [0, 1)

private:
  std::mt19937_64 engine_;
};

}  // namespace epitem
