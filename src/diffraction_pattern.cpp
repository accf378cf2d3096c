#include "epitem/diffraction_pattern.hpp"

#include "epitem/error.hpp"

namespace epitem {

DiffractionSum::DiffractionSum(const Grid& grid, int threads) : grid_(grid), fft_(grid.nx, grid.ny, threads) {}

double DiffractionSum::memory_bytes(const Grid& grid, int sums) {
  const double n = double(grid.size());
  return n * (8.0 * sums + 8.0 + 8.0 + 16.0);
}

std::vector<double> DiffractionSum::pattern_of(const Wave& wave) const {
  if (wave.grid.nx != grid_.nx || wave.grid.ny != grid_.ny)
    fail("diffraction pattern: wave grid ", wave.grid.nx, "x", wave.grid.ny, " differs from ", grid_.nx, "x", grid_.ny);
  AlignedVector<cfloat> k(grid_.size());
  fft_.forward(wave.psi.data(), k.data());
  const double n2 = double(grid_.size()) * double(grid_.size());
  std::vector<double> p(grid_.size());
  for (std::size_t i = 0; i < p.size(); ++i)
    p[i] = std::norm(k[i]) / n2;
  return p;
}

void DiffractionSum::add(const Wave& wave) { add(pattern_of(wave)); }

void DiffractionSum::add(const std::vector<double>& pattern) {
  if (pattern.size() != grid_.size())
    fail("diffraction pattern: ", pattern.size(), " values for a ", grid_.nx, "x", grid_.ny, " grid");
  sum_.resize(grid_.size(), 0.0);
  for (std::size_t i = 0; i < pattern.size(); ++i)
    sum_[i] += pattern[i];
}

Image DiffractionSum::mean_image(int n) const {
  Image im(grid_.nx, grid_.ny);
  im.pixel_size_invA = 1.0 / grid_.extent_x_A;
  im.pixel_size_y_invA = 1.0 / grid_.extent_y_A;
  if (sum_.empty())
    return im;
  for (int iy = 0; iy < grid_.ny; ++iy)
    for (int ix = 0; ix < grid_.nx; ++ix)
      im.at((ix + grid_.nx / 2) % grid_.nx, (grid_.ny - (iy + grid_.ny / 2) % grid_.ny) % grid_.ny) =
          float(sum_[std::size_t(iy) * grid_.nx + ix] / n);
  return im;
}

}  // namespace epitem
