// 2-D complex FFTs on cfloat grids through FFTW (single precision, threaded): plans made once
// per (size, threads, placement, direction) with FFTW_MEASURE and cached for the process, with
// wisdom kept in $XDG_CACHE_HOME/epitem/fftwf-wisdom (merged with other processes' and replaced
// atomically), so a machine pays for FFTW_MEASURE planning once per transform shape. Sign convention as wave.hpp.
#pragma once
#include <functional>

#include "epitem/wave.hpp"

namespace epitem {

enum class FftRigor { Estimate, Measure };

/// Forward F(k) = Σ ψ(r) e^{−2πi k·r} (unnormalised); inverse includes 1/N unless told not to.
/// Arrays are row-major [iy*nx + ix] and must be fftwf_malloc-aligned (AlignedVector is).
/// Thread-safe to execute from several threads; planning is serialised internally.
class Fft2D {
public:
  Fft2D() = default;
  Fft2D(int nx, int ny, int threads = 0, FftRigor rigor = FftRigor::Measure);

  void forward(cfloat* data) const;                        ///< in place
  void inverse(cfloat* data, bool normalise = true) const; ///< in place
  void forward(const cfloat* in, cfloat* out) const;       ///< out of place; `in` untouched
  void inverse(const cfloat* in, cfloat* out, bool normalise = true) const;

  void forward(AlignedVector<cfloat>& data) const { forward(data.data()); }
  void inverse(AlignedVector<cfloat>& data, bool normalise = true) const { inverse(data.data(), normalise); }

  /// Makes the in-place plans now (planning allocates a scratch array: do it before big buffers).
  void prepare() const;

  int nx() const { return nx_; }
  int ny() const { return ny_; }
  int threads() const { return threads_; }

private:
  int nx_ = 0, ny_ = 0, threads_ = 1;
  FftRigor rigor_ = FftRigor::Measure;
};

/// `howmany` in-place 1-D transforms of length n, element i of transform j at
/// data[j·dist + i·stride] (rows: stride 1, dist nx; columns: stride nx, dist 1). Unnormalised
/// both ways. Cached like Fft2D; `data` must have the alignment of an fftwf_malloc'ed array
/// (a row start of an even-width AlignedVector grid does).
class Fft1DMany {
public:
  Fft1DMany() = default;
  Fft1DMany(int n, int howmany, int stride, int dist, int threads = 0, FftRigor rigor = FftRigor::Measure);
  void forward(cfloat* data) const;
  void inverse(cfloat* data) const;
  bool empty() const { return howmany_ == 0; }

private:
  int n_ = 0, howmany_ = 0, stride_ = 1, dist_ = 1, threads_ = 1;
  void* forward_plan_ = nullptr;  // from the process-wide cache (lives as long as the process):
  void* inverse_plan_ = nullptr;  // held here so that executing takes no lock
};

/// Inverse of a Hermitian half spectrum to a real grid, unnormalised: out(r) = Σ_k H(k) e^{+2πi k·r}
/// with H given for kx = 0 … nx/2 (row-major, nx/2 + 1 values per row, ny rows); out is nx·ny
/// floats. Destroys `half` (FFTW's c2r). Half the work of a complex inverse. Cached like Fft2D.
class RealInverseFft2D {
public:
  RealInverseFft2D() = default;
  RealInverseFft2D(int nx, int ny, int threads = 0, FftRigor rigor = FftRigor::Measure);
  void execute(cfloat* half, float* out) const;
  int half_nx() const { return nx_ / 2 + 1; }

private:
  int nx_ = 0, ny_ = 0, threads_ = 1;
  void* plan_ = nullptr;  // cached plan, as Fft1DMany
};

/// Forward transform of a real grid to its Hermitian half spectrum (kx = 0 … nx/2, nx/2 + 1
/// values per row), unnormalised, e^{−2πi k·r}. Destroys `in` (FFTW's r2c). Cached like Fft2D.
class RealForwardFft2D {
public:
  RealForwardFft2D() = default;
  RealForwardFft2D(int nx, int ny, int threads = 0, FftRigor rigor = FftRigor::Measure);
  void execute(float* in, cfloat* half) const;
  int half_nx() const { return nx_ / 2 + 1; }

private:
  int nx_ = 0, ny_ = 0, threads_ = 1;
  void* plan_ = nullptr;  // cached plan, as Fft1DMany
};

/// Plans FFTW would reuse for an (nx, ny, threads) grid are made now (e.g. before timing).
void fft_prepare(int nx, int ny, int threads, FftRigor rigor = FftRigor::Measure);

/// Runs fn(begin, end) over [0, n) split into `threads` contiguous chunks on a persistent
/// pool (threads ≤ 1: inline). Blocks until all chunks are done, then rethrows the first
/// exception a chunk threw.
void parallel_for(std::size_t n, int threads, const std::function<void(std::size_t, std::size_t)>& fn);

/// Sizes 2^a·3^b·5^c·7^d ≥ n (FFTW is fast on these).
int next_fft_size(int n);

}  // namespace epitem
