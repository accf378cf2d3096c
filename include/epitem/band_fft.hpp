// The 2/3 band limit of a grid (docs/formulas.md §5) as row ranges, and the 2-D FFT pair pruned by
// it: multislice steps and band-limited transmission functions both zero everything outside.
#pragma once
#include <functional>
#include <vector>

#include "epitem/fft.hpp"
#include "epitem/wave.hpp"

namespace epitem {

/// Per row iy of the FFT grid, the columns inside the band limit: [0, pos_end) and
/// [neg_begin, nx). A row entirely outside has pos_end = 0.
struct BandRows {
  std::vector<int> pos_end, neg_begin;
};

BandRows make_band_rows(const Grid& g);

/// 1-D transforms of length n down `ncols` columns of a row-major grid (row pitch `pitch`
/// values), unnormalised: 8 columns at a time are copied into a contiguous buffer, transformed
/// there and copied back. FFTW's own strided plans are slower by 25-35 % when well measured and
/// 3x slower when a plan measured on a busy machine sits in the wisdom (2048² columns: 185 vs
/// 58 ms a pair); the 8-column contiguous plan is small and measured reliably.
class ColumnFft {
public:
  ColumnFft() = default;
  ColumnFft(int n, int ncols, int pitch, int threads, FftRigor rigor = FftRigor::Measure);
  void forward(cfloat* data) const { run(data, Pass::Forward, nullptr); }  ///< data: the first column's top
  void inverse(cfloat* data) const { run(data, Pass::Inverse, nullptr); }
  /// Forward, then between(c, values) on each transformed column c (0 … ncols − 1, n values),
  /// then inverse, while the columns are still in the buffer.
  void filter(cfloat* data, const std::function<void(int, cfloat*)>& between) const {
    run(data, Pass::Filter, &between);
  }
  bool empty() const { return ncols_ == 0; }

private:
  enum class Pass { Forward, Inverse, Filter };
  void run(cfloat* data, Pass pass, const std::function<void(int, cfloat*)>* between) const;
  int n_ = 0, ncols_ = 0, pitch_ = 0, threads_ = 1;
  Fft1DMany block_, rest_;  // BLOCK columns, and the ncols % BLOCK left over
};

/// Forward = all columns (y), then only the rows inside the band (x); inverse = those rows,
/// then all columns; unnormalised. Rows outside the band must be zero before `inverse` and
/// are garbage after `forward` (the caller zeroes them): 1/6 less work each way.
class BandFft {
public:
  BandFft(const Grid& g, const BandRows& band, int threads);
  void forward(cfloat* data) const;
  void inverse(cfloat* data) const;

private:
  int nx_, ny_, hi_begin_ = 0;
  Fft2D full_;
  ColumnFft cols_;
  Fft1DMany rows_lo_, rows_hi_;
};

}  // namespace epitem
