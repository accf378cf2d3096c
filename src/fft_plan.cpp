#include "fft_plan.hpp"

#include <fftw3.h>

#include <mutex>

#include "epitem/progress.hpp"

namespace epitem::detail {

static std::mutex& planner_mutex() {
  static std::mutex m;
  return m;
}

FftPlan2D::FftPlan2D(int nx, int ny) {
  std::lock_guard<std::mutex> lock(planner_mutex());
  static const bool threads_ready = fftwf_init_threads() != 0;
  if (threads_ready)
    fftwf_plan_with_nthreads(default_thread_count());
  // FFTW_MEASURE scribbles on the buffer while planning: plan on scratch memory.
  AlignedVector<cfloat> scratch(std::size_t(nx) * std::size_t(ny));
  auto* p = reinterpret_cast<fftwf_complex*>(scratch.data());
  forward_ = fftwf_plan_dft_2d(ny, nx, p, p, FFTW_FORWARD, FFTW_MEASURE);
  inverse_ = fftwf_plan_dft_2d(ny, nx, p, p, FFTW_BACKWARD, FFTW_MEASURE);
}

FftPlan2D::~FftPlan2D() {
  std::lock_guard<std::mutex> lock(planner_mutex());
  fftwf_destroy_plan(static_cast<fftwf_plan>(forward_));
  fftwf_destroy_plan(static_cast<fftwf_plan>(inverse_));
}

void FftPlan2D::forward(cfloat* data) const {
  auto* p = reinterpret_cast<fftwf_complex*>(data);
  fftwf_execute_dft(static_cast<fftwf_plan>(forward_), p, p);
}

void FftPlan2D::inverse(cfloat* data) const {
  auto* p = reinterpret_cast<fftwf_complex*>(data);
  fftwf_execute_dft(static_cast<fftwf_plan>(inverse_), p, p);
}

}  // namespace epitem::detail
