#include "epitem/wave.hpp"

#include <fftw3.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "epitem/progress.hpp"

namespace epitem {

// Large arrays (grids, FFT buffers) are 2 MiB-aligned and marked for transparent huge pages: a
// column pass touches one 4 KiB page per row, so with small pages every step of a column misses
// the TLB (Linux's default THP mode "madvise" gives huge pages only to marked ranges).
void* fftw_aligned_malloc(std::size_t bytes) {
  constexpr std::size_t HUGE_PAGE = std::size_t(2) << 20;
  const bool large = bytes >= 2 * HUGE_PAGE;
  void* p = nullptr;
  if (posix_memalign(&p, large ? HUGE_PAGE : 64, bytes == 0 ? 1 : bytes) != 0 || !p)
    throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  if (large)
    madvise(p, bytes / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);  // advice only: failure is harmless
#endif
  return p;
}

void fftw_aligned_free(void* p) noexcept { std::free(p); }

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
