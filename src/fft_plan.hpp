// Private to imaging/detector: in-place 2-D complex FFTs (FFTW single precision) behind one
// small class, so the switch to the shared epitem/fft.hpp touches only this file.
#pragma once
#include "epitem/wave.hpp"

namespace epitem::detail {

/// Unnormalised forward (e^{−2πi k·r}) and inverse transforms of nx × ny complex arrays
/// allocated with AlignedVector. Planning is serialised by a mutex (FFTW's planner is not
/// thread-safe); execution is thread-safe.
class FftPlan2D {
public:
  FftPlan2D(int nx, int ny);
  ~FftPlan2D();
  FftPlan2D(const FftPlan2D&) = delete;
  FftPlan2D& operator=(const FftPlan2D&) = delete;
  void forward(cfloat* data) const;
  void inverse(cfloat* data) const;

private:
  void* forward_ = nullptr;
  void* inverse_ = nullptr;
};

}  // namespace epitem::detail
