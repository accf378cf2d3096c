// Diffraction pattern of exit waves: |FFT ψ|²/N² (N = nx·ny, so a unit plane wave gives 1 at
// 000: each pixel is a fraction of the incident beam), summed over frozen-phonon configurations
// in the order they are added (docs/formulas.md §5). Used by `multislice --diffraction` and
// `saed --method multislice`.
#pragma once
#include <vector>

#include "epitem/fft.hpp"
#include "epitem/image.hpp"
#include "epitem/wave.hpp"

namespace epitem {

class DiffractionSum {
public:
  DiffractionSum(const Grid& grid, int threads);
  /// Memory [bytes] of `sums` running sums (doubles) on the grid, one pattern's temporaries (the
  /// transformed wave and its doubles) and FFTW's arrays for planning that out-of-place
  /// transform at its first use.
  static double memory_bytes(const Grid& grid, int sums);

  /// One wave's |FFT ψ|²/N², FFT order (index iy·nx + ix, k = kx_invA(ix), ky_invA(iy)).
  std::vector<double> pattern_of(const Wave& wave) const;
  /// Adds pattern_of(wave): the same additions as add(pattern_of(wave)), so a sum made from
  /// patterns computed elsewhere (another MPI rank) rounds exactly as this one.
  void add(const Wave& wave);
  void add(const std::vector<double>& pattern);

  const Grid& grid() const { return grid_; }
  const std::vector<double>& sum() const { return sum_; }  ///< FFT order; empty before the first add
  /// sum/n as a float image: 000 at (nx/2, ny/2), +ky up (row 0 = largest ky, the Nyquist row
  /// wraps to row 0), pixel 1/extent [1/Å].
  Image mean_image(int n) const;

private:
  Grid grid_;
  Fft2D fft_;
  std::vector<double> sum_;
};

}  // namespace epitem
