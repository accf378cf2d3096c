// Projected potential of one slice on a periodic grid (docs/formulas.md §4):
// v_z(r) = Σ_k (47.8776/A) Σ_j w_j f_e,j(|k|) e^{2πi k·(r − r_j)} over the grid's k, with the
// structure-factor phases e^{−2πi k·r_j} from a type-1 non-uniform FFT: atoms spread with an
// "exponential of semicircle" kernel on a 1.5× grid, an FFT pruned to the grid's frequencies
// and exact deconvolution (Barnett, Magland & af Klinteberg 2019, SIAM J. Sci. Comput. 41, C479).
// Cost per slice ≈ 2 FFT pairs of the grid (bench: `epitem bench multislice`).
#pragma once
#include <vector>

#include "epitem/band_fft.hpp"
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
/// once; each slice then costs O(atoms·10²) spreading, per pair of species one FFT of the
/// oversampled grid (its rows, then only the columns |kx| ≤ nx/2), and then passes that keep
/// data in cache: per column the unpacking into v_z's spectrum and its inverse along y; per row
/// the real inverse along x, exp(iσv_z) and the forward transform along x; per column inside
/// the band the band-limit pair along y; per row the inverse along x. Not thread-safe (one per
/// run; it threads internally).
class SlicePotential {
public:
  /// `species`: every Z that will occur. Threads: FFTW and loops (0 = default_thread_count()).
  SlicePotential(const Grid& grid, std::vector<int> species, ScatteringTable table, int threads = 0,
                 FftRigor rigor = FftRigor::Measure);

  /// Σ_j w_j e^{−2πi k·r_j} for atoms of one species by gridding (error ≲ 1e-6 of Σ|w|).
  AlignedVector<cfloat> structure_factor(const std::vector<SliceAtom>& atoms);

  /// Projected potential v_z [V·Å] on the grid, row-major [iy·nx + ix], real.
  std::vector<float> projected_potential_VA(const std::vector<SliceAtom>& atoms);

  /// Transmission function t = exp(iσ v_z) with its spectrum cut at the 2/3 band limit
  /// (grid.band_limit_invA()), into `t` (grid.size() values, fftwf-aligned).
  void transmission(const std::vector<SliceAtom>& atoms, double sigma_rad_per_VA, cfloat* t);

  /// Structure factors by structure_factor_direct instead of gridding: exact phases summed in double
  /// precision at O(atoms·pixels), for validating the gridded potential on whole runs.
  void set_direct_summation(bool on) { direct_ = on; }

  /// Wall-clock seconds spent so far in each stage (for `epitem bench multislice`): zeroing,
  /// spreading and the fine rows; the column stage; the row stage; the band limit.
  struct StageSeconds {
    double spread_rows = 0, columns = 0, rows = 0, band_limit = 0;
  };
  const StageSeconds& stage_seconds() const { return stage_seconds_; }
  void reset_stage_seconds() { stage_seconds_ = StageSeconds{}; }

  /// Bytes this object holds (for memory estimates) for a grid and number of species.
  static double memory_bytes(const Grid& grid, int n_species);

  const Grid& grid() const { return grid_; }

private:
  void spread_rows(const std::vector<SliceAtom>& atoms, int species_a, int species_b);
  void spectrum_columns(int a, int b, bool first, bool last);
  void spectrum(const std::vector<SliceAtom>& atoms);          // → half_ (see spectrum_columns)
  void direct_spectrum(const std::vector<SliceAtom>& atoms, const std::vector<int>& present);
  void real_rows(float* v, float sigma, cfloat* t);
  void band_limit(cfloat* t);
  int species_index(int Z) const;

  Grid grid_;
  std::vector<int> species_;
  int threads_;
  int mx_, my_;                                     // fine grid
  int pitch_;                                       // its row stride (≥ mx_, see fine_pitch)
  int half_nx_;
  int fine_dist_, half_dist_;                       // column buffers' column strides
  Fft1DMany fine_rows_, fine_columns_, half_columns_;
  RealInverseFft2D row_to_real_;                    // one row
  Fft1DMany row_fft_;
  BandRows band_columns_;                           // the band limit by column (transposed)
  struct {
    int pos_end = 0, neg_begin = 0;                 // columns inside the band: [0, pos_end), [neg_begin, nx)
  } band_x_;
  ColumnFft band_columns_lo_, band_columns_hi_;     // the band-limit pair of those columns along y
  std::vector<AlignedVector<float>> form_;          // per species, column-major [kx·ny + iy]: (47.8776/A) f(|k|) / ĝ(kx) ĝ(ky)
  std::vector<float> deconv_x_, deconv_y_;          // 1/ĝ by |signed index| (for structure_factor)
  AlignedVector<cfloat> fine_, half_;
  bool direct_ = false;
  StageSeconds stage_seconds_;
};

}  // namespace epitem
