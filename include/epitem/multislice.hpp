// Multislice propagation (docs/formulas.md §5; Kirkland 2010 ch. 6): ψ_{n+1} = F⁻¹{P(k,Δz_n)·F[t_n·ψ_n]},
// t_n = exp(iσ v_z,n) band-limited to 2/3 Nyquist, P = exp(−iπλΔz k² − 2πiΔz k·tanθ) within
// the same band limit. Static atoms or frozen phonons; exit waves handed to a callback.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "epitem/json.hpp"
#include "epitem/model.hpp"
#include "epitem/progress.hpp"
#include "epitem/scattering.hpp"
#include "epitem/wave.hpp"

namespace epitem {

struct MultisliceSpec {
  double energy_eV = 200e3;
  int nx = 0, ny = 0;               ///< grid points; 0 → from sampling_A
  double sampling_A = 0;            ///< alternative to nx/ny: the largest allowed pixel [Å]
  double slice_thickness_A = 2.0;   ///< or n_slices > 0
  int n_slices = 0;
  ScatteringTable table = ScatteringTable::Kirkland;
  int phonon_configs = 0;           ///< 0 = static atoms
  std::uint64_t seed = 1;
  std::vector<double> thickness_series_A;  ///< save exit waves also at these thicknesses [Å]
  double beam_tilt_x_mrad = 0, beam_tilt_y_mrad = 0;
  int threads = 0;                  ///< 0 = default_thread_count()
  /// Runs only the configurations c with c % config_stride == config_offset (one MPI rank's share,
  /// include/epitem/parallel.hpp); each configuration's displacements depend on (seed, c) only.
  int config_stride = 1, config_offset = 0;
  /// Exact structure factors by direct summation instead of gridding (SlicePotential::
  /// set_direct_summation): O(atoms·pixels) per slice, a reference for validating runs.
  bool direct_structure_factors = false;
  void validate() const;            ///< throws Error with the option name and valid range
};

/// How the model was cut into slices (docs/formulas.md §4: an atom belongs to the slice containing
/// its z; an atom within 1e-6 Å of a boundary z = k·dz belongs to slice k, the one starting there).
struct Slicing {
  std::vector<double> boundaries_A;   ///< n_slices + 1 values, 0 … model thickness
  std::vector<int> atoms_per_slice;   ///< static model
  int n_slices() const { return int(boundaries_A.size()) - 1; }
  double thickness_A(int slice) const { return boundaries_A[slice + 1] - boundaries_A[slice]; }
};

struct MultisliceReport {
  Grid grid;
  double energy_eV = 0, wavelength_A = 0, sigma_rad_per_VA = 0;
  Slicing slicing;
  int unique_slices = 0;              ///< distinct transmission functions computed (static: reused)
  int transmission_functions_computed = 0;  ///< over all configurations
  int phonon_configs = 0;             ///< configurations run (1 for static atoms)
  std::vector<double> saved_thicknesses_A;  ///< actual thicknesses of the saved exit waves
  double band_limit_invA = 0, band_limit_mrad = 0;
  double band_limit_loss = 0;         ///< 1 − mean |ψ_exit|² (mean over configurations)
  std::vector<double> band_limit_loss_by_config;  ///< per configuration; NaN where not run here
  double potential_seconds = 0;       ///< v_z + transmission functions
  double propagation_seconds = 0;     ///< transmit + propagate steps
  double callback_seconds = 0;        ///< time spent in on_exit_wave
  double total_seconds = 0;
  double memory_estimate_bytes = 0;
  double peak_rss_bytes = 0;          ///< process peak resident set (getrusage) after the run
  int threads = 0;
  Json to_json() const;
};

/// Called for each configuration (0-based) and each saved thickness (series values in order,
/// the full model thickness last).
using ExitWaveFn = std::function<void(int config, int thickness_index, double thickness_A, const Wave& exit_wave)>;

/// U_iso [Å²] the frozen phonons give an atom: its own, else a room-temperature default.
double frozen_phonon_u_iso_A2(const Atom& atom);

/// The grid the run would use: nx × ny over the model's lateral box (from spec.nx/ny or the
/// smallest FFT-friendly size with pixel ≤ sampling_A).
Grid multislice_grid(const AtomicModel& model, const MultisliceSpec& spec);

/// The slicing the run would use (static positions).
Slicing multislice_slicing(const AtomicModel& model, const MultisliceSpec& spec);

/// Peak memory of run_multislice [bytes] (waves, kept transmission functions, potential
/// buffers, FFTW plans, process baseline); checked against MemAvailable before allocating.
double estimate_multislice_memory_bytes(const AtomicModel& model, const MultisliceSpec& spec);

/// Makes (or loads from wisdom) the FFTW plans run_multislice will use for this model and spec,
/// so a timed run does not include FFTW_MEASURE planning.
void prepare_multislice_plans(const AtomicModel& model, const MultisliceSpec& spec);

MultisliceReport run_multislice(const AtomicModel& model, const MultisliceSpec& spec,
                                const ExitWaveFn& on_exit_wave, ProgressFn progress = {},
                                WarnFn warn = {});

/// Free-space Fresnel propagation of `wave` by dz_A (negative: backwards) with the multislice
/// propagator and band limit, optional beam tilt [mrad].
void fresnel_propagate(Wave& wave, double dz_A, double tilt_x_mrad = 0, double tilt_y_mrad = 0, int threads = 0);

/// MemAvailable from /proc/meminfo [bytes] (0 if unreadable).
double available_memory_bytes();
/// Peak resident set size of this process [bytes].
double peak_rss_bytes();

}  // namespace epitem
