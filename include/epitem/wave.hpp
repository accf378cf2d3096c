// Complex wave fields on a periodic 2-D grid: FFTW-aligned storage, reciprocal coordinates in
// FFT order (no 2π: k = i/extent), and the FFT sign convention (FFTW_FORWARD = e^{-2πi k·r},
// forward unnormalised, inverse × 1/N) used by every module.
#pragma once
#include <complex>
#include <cstddef>
#include <new>
#include <vector>

namespace epitem {

using cfloat = std::complex<float>;

/// std::allocator replacement returning SIMD-aligned memory (2 MiB-aligned huge pages when large; wave.cpp).
template <class T>
struct FftwAllocator {
  using value_type = T;
  FftwAllocator() = default;
  template <class U>
  FftwAllocator(const FftwAllocator<U>&) {}
  T* allocate(std::size_t n);
  void deallocate(T* p, std::size_t) noexcept;
  template <class U>
  bool operator==(const FftwAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const FftwAllocator<U>&) const { return false; }
};
void* fftw_aligned_malloc(std::size_t bytes);  ///< throws std::bad_alloc
void fftw_aligned_free(void* p) noexcept;
template <class T>
T* FftwAllocator<T>::allocate(std::size_t n) { return static_cast<T*>(fftw_aligned_malloc(n * sizeof(T))); }
template <class T>
void FftwAllocator<T>::deallocate(T* p, std::size_t) noexcept { fftw_aligned_free(p); }

template <class T>
using AlignedVector = std::vector<T, FftwAllocator<T>>;

/// A periodic sampling grid of nx × ny points over extent_x_A × extent_y_A.
struct Grid {
  int nx = 0, ny = 0;
  double extent_x_A = 0, extent_y_A = 0;

  double sampling_x_A() const { return extent_x_A / nx; }
  double sampling_y_A() const { return extent_y_A / ny; }
  std::size_t size() const { return std::size_t(nx) * std::size_t(ny); }
  /// Spatial frequency of FFT column ix / row iy [1/Å] (FFT order: 0, 1, …, −1).
  double kx_invA(int ix) const { return (ix < (nx + 1) / 2 ? ix : ix - nx) / extent_x_A; }
  double ky_invA(int iy) const { return (iy < (ny + 1) / 2 ? iy : iy - ny) / extent_y_A; }
  /// Nyquist frequency along x and y [1/Å].
  double nyquist_x_invA() const { return 0.5 / sampling_x_A(); }
  double nyquist_y_invA() const { return 0.5 / sampling_y_A(); }
  /// The 2/3 band limit radius (docs/formulas.md §5): 2/3 of the smaller Nyquist frequency [1/Å].
  double band_limit_invA() const;
};

/// A complex wave on a grid at a beam energy. psi[iy * nx + ix].
struct Wave {
  Grid grid;
  double energy_eV = 0;
  AlignedVector<cfloat> psi;

  Wave() = default;
  Wave(const Grid& g, double energy, cfloat value = cfloat(1.f, 0.f))
      : grid(g), energy_eV(energy), psi(g.size(), value) {}
  /// Mean |ψ|² (1 for a unit plane wave).
  double mean_intensity() const;
};

}  // namespace epitem
