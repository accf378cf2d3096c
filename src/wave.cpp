#include "epitem/wave.hpp"

#include <fftw3.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "epitem/progress.hpp"

namespace epitem {

void* fftw_aligned_malloc(std::size_t bytes) {
  void* p = fftwf_malloc(bytes == 0 ? 1 : bytes);
  if (!p)
    throw std::bad_alloc();
  return p;
}

void fftw_aligned_free(void* p) noexcept { fftwf_free(p); }

double Grid::band_limit_invA() const {
  return 2.0 / 3.0 * std::min(nyquist_x_invA(), nyquist_y_invA());
}

double Wave::mean_intensity() const {
  double sum = 0;
  for (const auto& v : psi)
    sum += double(std::norm(v));
  return psi.empty() ? 0.0 : sum / double(psi.size());
}

int default_thread_count() {
  if (const char* env = std::getenv("EPITEM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0)
      return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace epitem
