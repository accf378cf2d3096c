// Projected potential of one slice on a periodic grid (physics.md §4):
// v_z(r) = Σ_k (47.8776/A) Σ_j w_j f_e,j(|k|) e^{2πi k·(r − r_j)}, with the structure-factor phases
// e^{−2πi k·r_j} from Gaussian gridding on a 2× grid + exact deconvolution (Greengard & Lee 2004).
#pragma once
#include <vector>

#include "epitem/fft.hpp"
#include "epitem/scattering.hpp"
#include "epitem/wave.hpp"

namespace epitem {

/// One atom of a slice: species, lateral position [Å] (any value: the cell is periodic) and
/// weight (occupancy; 1 for a full atom).
struct SliceAtom {
  int Z = 0;
  double x_A = 0, y_A = 0;
  double weight = 1.0;
};

/// Σ_j w_j e^{−2πi k·r_j} at every k of `grid` (FFT order, row-major), computed exactly by
/// direct summation: O(atoms·pixels), for tests and tiny cases.
AlignedVector<cfloat> structure_factor_direct(const Grid& grid, const std::vector<SliceAtom>& atoms);

/// Builds v_z and t = exp(iσ v_z) for slices of one run: per-species form-factor tables are made
/// once; each slice then costs O(atoms·16² + 4·pixels·log pixels). Not thread-safe (one per run).
class SlicePotential {
public:
  /// `species`: every Z that will occur. Threads: FFTW and loops (0 = default_thread_count()).
  /// `rigor` applies to the N×N transforms; the 2N×2N gridding FFT runs once per distinct slice
  /// and is planned with FFTW_ESTIMATE (FFTW_MEASURE's seconds of planning would not pay back).
  SlicePotential(const Grid& grid, std::vector<int> species, ScatteringTable table, int threads = 0,
                 FftRigor rigor = FftRigor::Measure);

  /// Σ_j w_j e^{−2πi k·r_j} for atoms of one species by gridding (relative error ≲ 1e-6 of Σ|w|).
  AlignedVector<cfloat> structure_factor(const std::vector<SliceAtom>& atoms);

  /// Projected potential v_z [V·Å] on the grid, row-major [iy·nx + ix], real.
  std::vector<float> projected_potential_VA(const std::vector<SliceAtom>& atoms);

  /// Transmission function t = exp(iσ v_z) with its spectrum cut at the 2/3 band limit
  /// (grid.band_limit_invA()), into `t` (grid.size() values, fftwf-aligned).
  void transmission(const std::vector<SliceAtom>& atoms, double sigma_rad_per_VA, cfloat* t);

  /// Bytes this object holds (for memory estimates) for a grid and number of species.
  static double memory_bytes(const Grid& grid, int n_species);

  const Grid& grid() const { return grid_; }

private:
  void spread(const std::vector<SliceAtom>& atoms, int species_a, int species_b);
  void potential_spectrum(const std::vector<SliceAtom>& atoms);  // → spectrum_ (C(k), unnormalised)
  int species_index(int Z) const;

  Grid grid_;
  std::vector<int> species_;
  int threads_;
  int mx_, my_;                               // fine (2×) grid
  Fft2D fine_fft_, fft_;
  std::vector<AlignedVector<float>> form_;    // per species: (47.8776/A) f(|k|) / ĝ(kx) ĝ(ky)
  std::vector<float> gauss_x_, gauss_y_;      // ĝ on the coarse k (for structure_factor)
  AlignedVector<cfloat> fine_, spectrum_;
  std::vector<unsigned char> band_;           // 1 inside the 2/3 band limit
};

}  // namespace epitem
