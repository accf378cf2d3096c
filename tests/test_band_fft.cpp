// ColumnFft (blocked column transforms) against a direct double-precision DFT of each column,
// and BandFft's pruned pair against the plain 2-D pair with the band limit applied.
#include <cmath>
#include <complex>
#include <random>

#include "epitem/band_fft.hpp"
#include "epitem/units.hpp"
#include "testing.hpp"

using namespace epitem;

TEST_CASE("ColumnFft equals the DFT of every column, partial blocks and padded rows included", "[fft]") {
  // 13 columns: one full block of 8 and a remainder of 5; pitch 20 > 13 (padding left alone).
  for (int n : {24, 30}) {
    const int ncols = 13, pitch = 20;
    std::mt19937 rng{unsigned(n)};
    std::uniform_real_distribution<float> u(-1, 1);
    AlignedVector<cfloat> data(std::size_t(n) * pitch);
    for (auto& v : data)
      v = cfloat(u(rng), u(rng));
    const AlignedVector<cfloat> original = data;
    const ColumnFft fft(n, ncols, pitch, 1, FftRigor::Estimate);
    fft.forward(data.data());
    double worst = 0, worst_pad = 0;
    for (int c = 0; c < pitch; ++c)
      for (int k = 0; k < n; ++k) {
        const std::size_t i = std::size_t(k) * pitch + c;
        if (c >= ncols) {  // outside the columns: untouched
          worst_pad = std::max(worst_pad, double(std::abs(data[i] - original[i])));
          continue;
        }
        std::complex<double> ref = 0;
        for (int y = 0; y < n; ++y)
          ref += std::complex<double>(original[std::size_t(y) * pitch + c]) * std::polar(1.0, -2 * PI * k * y / n);
        worst = std::max(worst, std::abs(std::complex<double>(data[i]) - ref));
      }
    CHECK(worst < 1e-4);  // float32 transform of values ≤ 1 in magnitude, |sum| ≲ n
    CHECK(worst_pad == 0);
    fft.inverse(data.data());
    double round_trip = 0;
    for (int c = 0; c < ncols; ++c)
      for (int y = 0; y < n; ++y) {
        const std::size_t i = std::size_t(y) * pitch + c;
        round_trip = std::max(round_trip, double(std::abs(data[i] / float(n) - original[i])));
      }
    CHECK(round_trip < 1e-5);
  }
}

namespace {
// data ← data·scale inside the band, 0 outside.
void cut_to_band(AlignedVector<cfloat>& data, const Grid& g, const BandRows& band, float scale) {
  for (int iy = 0; iy < g.ny; ++iy) {
    cfloat* row = data.data() + std::size_t(iy) * g.nx;
    for (int ix = 0; ix < g.nx; ++ix)
      row[ix] = ix < band.pos_end[std::size_t(iy)] || ix >= band.neg_begin[std::size_t(iy)] ? row[ix] * scale
                                                                                          : cfloat(0.f, 0.f);
  }
}
}  // namespace

TEST_CASE("BandFft's pruned pair equals the full pair with the band limit applied", "[fft]") {
  Grid g;
  g.nx = 64;
  g.ny = 48;
  g.extent_x_A = 6.4;
  g.extent_y_A = 5.1;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1, 1);
  AlignedVector<cfloat> a(g.size());
  for (auto& v : a)
    v = cfloat(u(rng), u(rng));
  AlignedVector<cfloat> b = a;
  const BandRows band = make_band_rows(g);
  const BandFft pruned(g, band, 1);
  pruned.forward(a.data());
  cut_to_band(a, g, band, 1.f / float(g.size()));
  pruned.inverse(a.data());
  const Fft2D full(g.nx, g.ny, 1, FftRigor::Estimate);
  full.forward(b.data());
  cut_to_band(b, g, band, 1.f);
  full.inverse(b.data());
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, double(std::abs(a[i] - b[i])));
  CHECK(worst < 1e-5);
}
