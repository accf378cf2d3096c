#include "epitem/band_fft.hpp"

#include "epitem/progress.hpp"  // default_thread_count

#include <algorithm>
#include <cmath>

namespace epitem {

BandRows make_band_rows(const Grid& g) {
  BandRows b;
  const double kb2 = std::pow(g.band_limit_invA(), 2);
  b.pos_end.assign(std::size_t(g.ny), 0);
  b.neg_begin.assign(std::size_t(g.ny), g.nx);
  for (int iy = 0; iy < g.ny; ++iy) {
    const double ky2 = std::pow(g.ky_invA(iy), 2);
    auto inside = [&](int ix) { return std::pow(g.kx_invA(ix), 2) + ky2 <= kb2; };
    int e = 0;
    while (e < g.nx && g.kx_invA(e) >= 0 && inside(e))
      ++e;
    int nb = g.nx;
    while (nb - 1 >= e && g.kx_invA(nb - 1) < 0 && inside(nb - 1))
      --nb;
    b.pos_end[iy] = e;
    b.neg_begin[iy] = nb;
  }
  return b;
}

namespace {
constexpr int BLOCK = 8;  // columns per buffer: 2-8 cache lines per row read, buffer in L2
constexpr int BUFFER_PAD = 8;  // buffer columns n + 8 apart: no 4 KiB-multiple stride
constexpr std::size_t PREFETCH_ROWS = 12;
}  // namespace

ColumnFft::ColumnFft(int n, int ncols, int pitch, int threads, FftRigor rigor)
    : n_(n), ncols_(ncols), pitch_(pitch), threads_(threads > 0 ? threads : default_thread_count()) {
  const int dist = (n + 1) / 2 * 2 + BUFFER_PAD;  // even: every buffer column stays aligned
  if (ncols >= BLOCK)
    block_ = Fft1DMany(n, BLOCK, 1, dist, 1, rigor);
  if (ncols % BLOCK != 0)
    rest_ = Fft1DMany(n, ncols % BLOCK, 1, dist, 1, rigor);
}

void ColumnFft::run(cfloat* data, Pass pass, const std::function<void(int, cfloat*)>* between) const {
  const int blocks = (ncols_ + BLOCK - 1) / BLOCK;
  const std::size_t n = std::size_t(n_), pitch = std::size_t(pitch_);
  const std::size_t dist = (n + 1) / 2 * 2 + BUFFER_PAD;
  parallel_for(std::size_t(blocks), threads_, [&](std::size_t b0, std::size_t b1) {
    thread_local AlignedVector<cfloat> buffer;
    if (buffer.size() < dist * BLOCK)
      buffer.resize(dist * BLOCK);
    cfloat* buf = buffer.data();
    for (std::size_t blk = b0; blk < b1; ++blk) {
      const std::size_t c0 = blk * BLOCK;
      const int w = std::min<int>(BLOCK, ncols_ - int(c0));
      const Fft1DMany& plan = w == BLOCK ? block_ : rest_;
      for (std::size_t y = 0; y < n; ++y) {
        const cfloat* row = data + y * pitch + c0;
        if (y + PREFETCH_ROWS < n)  // rows are ≥ 4 KiB apart: the hardware prefetchers stop at those
          __builtin_prefetch(row + PREFETCH_ROWS * pitch);
        for (int c = 0; c < w; ++c)
          buf[std::size_t(c) * dist + y] = row[c];
      }
      if (pass != Pass::Inverse)
        plan.forward(buf);
      if (pass == Pass::Filter) {
        for (int c = 0; c < w; ++c)
          (*between)(int(c0) + c, buf + std::size_t(c) * dist);
      }
      if (pass != Pass::Forward)
        plan.inverse(buf);
      for (std::size_t y = 0; y < n; ++y) {
        cfloat* row = data + y * pitch + c0;
        for (int c = 0; c < w; ++c)
          row[c] = buf[std::size_t(c) * dist + y];
      }
    }
  });
}

BandFft::BandFft(const Grid& g, const BandRows& band, int threads) : nx_(g.nx), ny_(g.ny) {
  if (g.nx % 2 != 0) {  // odd rows break FFTW's alignment of row starts: plain 2-D FFTs
    full_ = Fft2D(g.nx, g.ny, threads);
    full_.prepare();
    return;
  }
  int lo = 0;
  while (lo < g.ny && band.pos_end[std::size_t(lo)] > 0)
    ++lo;
  hi_begin_ = g.ny;
  while (hi_begin_ - 1 >= lo && band.pos_end[std::size_t(hi_begin_ - 1)] > 0)
    --hi_begin_;
  cols_ = ColumnFft(g.ny, g.nx, g.nx, threads);
  rows_lo_ = Fft1DMany(g.nx, lo, 1, g.nx, threads);
  rows_hi_ = Fft1DMany(g.nx, g.ny - hi_begin_, 1, g.nx, threads);
}

void BandFft::forward(cfloat* data) const {
  if (cols_.empty())
    return full_.forward(data);
  cols_.forward(data);
  rows_lo_.forward(data);
  rows_hi_.forward(data + std::size_t(hi_begin_) * std::size_t(nx_));
}

void BandFft::inverse(cfloat* data) const {
  if (cols_.empty())
    return full_.inverse(data, false);
  rows_lo_.inverse(data);
  rows_hi_.inverse(data + std::size_t(hi_begin_) * std::size_t(nx_));
  cols_.inverse(data);
}

}  // namespace epitem
