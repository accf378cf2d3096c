// Cell list for fixed-radius neighbour queries in an orthorhombic box, periodic along chosen
// axes (minimum image): O(N) build by counting sort, each query scans the 27 surrounding cells
// (Allen & Tildesley, Computer Simulation of Liquids, §5.3.2).
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "epitem/lattice.hpp"

namespace epitem {

class NeighborGrid {
public:
  /// Points [Å] in a box [0, box_A) along periodic axes (wrapped on insertion); open axes
  /// use the points' bounding range. Queries may use any radius ≤ max_radius_A. Throws Error
  /// when a periodic box length is below 2·max_radius_A (the minimum image would be ambiguous).
  NeighborGrid(const std::vector<Vec3>& points_A, const Vec3& box_A, const std::array<bool, 3>& pbc,
               double max_radius_A);

  std::size_t size() const { return order_.size(); }
  double max_radius_A() const { return max_radius_; }

  /// Calls fn(index, d, r2) for each point within radius_A of p, where d = point − p (minimum
  /// image) and r2 = |d|²; stops and returns true as soon as fn returns true.
  template <class Fn>
  bool visit(const Vec3& p, double radius_A, Fn&& fn) const;

private:
  std::size_t cell_index(int ix, int iy, int iz) const {
    return (std::size_t(iz) * std::size_t(n_[1]) + std::size_t(iy)) * std::size_t(n_[0]) +
           std::size_t(ix);
  }
  std::array<int, 3> n_{1, 1, 1};
  std::array<bool, 3> pbc_{};
  Vec3 origin_ = Vec3::Zero(), cell_ = Vec3::Ones(), box_ = Vec3::Ones();
  double max_radius_ = 0;
  std::vector<std::uint32_t> start_;  ///< first entry of each cell in sorted_ (size ncells + 1)
  std::vector<std::uint32_t> order_;  ///< original index of each sorted entry
  std::vector<Vec3> sorted_;          ///< wrapped positions, grouped by cell
};

template <class Fn>
bool NeighborGrid::visit(const Vec3& p, double radius_A, Fn&& fn) const {
  const double r2max = radius_A * radius_A;
  Vec3 q = p;
  int lo[3], hi[3];
  for (int a = 0; a < 3; ++a) {
    if (pbc_[a])
      q[a] -= box_[a] * std::floor(q[a] / box_[a]);
    const int c = int(std::floor((q[a] - origin_[a]) / cell_[a]));
    if (pbc_[a] && n_[a] < 3) {  // every cell once: wrapping c±1 would visit a cell twice
      lo[a] = 0;
      hi[a] = n_[a] - 1;
    } else if (pbc_[a]) {
      lo[a] = c - 1;
      hi[a] = c + 1;
    } else {
      lo[a] = std::max(c - 1, 0);
      hi[a] = std::min(c + 1, n_[a] - 1);
      if (lo[a] > hi[a])
        return false;
    }
  }
  for (int iz = lo[2]; iz <= hi[2]; ++iz) {
    const int cz = pbc_[2] ? (iz % n_[2] + n_[2]) % n_[2] : iz;
    for (int iy = lo[1]; iy <= hi[1]; ++iy) {
      const int cy = pbc_[1] ? (iy % n_[1] + n_[1]) % n_[1] : iy;
      for (int ix = lo[0]; ix <= hi[0]; ++ix) {
        const int cx = pbc_[0] ? (ix % n_[0] + n_[0]) % n_[0] : ix;
        const std::size_t c = cell_index(cx, cy, cz);
        for (std::uint32_t j = start_[c]; j < start_[c + 1]; ++j) {
          Vec3 d = sorted_[j] - q;
          for (int a = 0; a < 3; ++a)
            if (pbc_[a])
              d[a] -= box_[a] * std::round(d[a] / box_[a]);
          const double r2 = d.squaredNorm();
          if (r2 <= r2max && fn(std::size_t(order_[j]), d, r2))
            return true;
        }
      }
    }
  }
  return false;
}

}  // namespace epitem
