#include "epitem/neighbor_grid.hpp"

#include <algorithm>
#include <limits>

#include "epitem/error.hpp"

namespace epitem {

NeighborGrid::NeighborGrid(const std::vector<Vec3>& points_A, const Vec3& box_A,
                           const std::array<bool, 3>& pbc, double max_radius_A)
    : pbc_(pbc), box_(box_A), max_radius_(max_radius_A) {
  if (!(max_radius_A > 0))
    fail("neighbour grid: radius must be > 0, got ", max_radius_A, " Å");
  if (points_A.size() >= std::numeric_limits<std::uint32_t>::max())
    fail("neighbour grid: ", points_A.size(), " points exceed the 32-bit index limit");
  std::vector<Vec3> pts(points_A);
  Vec3 lo = Vec3::Constant(0), hi = Vec3::Constant(0);
  if (!pts.empty()) {
    lo = hi = pts[0];
    for (const Vec3& p : pts) {
      lo = lo.cwiseMin(p);
      hi = hi.cwiseMax(p);
    }
  }
  for (int a = 0; a < 3; ++a) {
    if (pbc[a]) {
      if (!(box_A[a] >= 2 * max_radius_A))
        fail("neighbour grid: periodic box length ", box_A[a], " Å along axis ", a,
             " is below twice the search radius ", max_radius_A, " Å; enlarge the box");
      origin_[a] = 0;
      n_[a] = std::max(1, int(box_A[a] / max_radius_A));
      cell_[a] = box_A[a] / n_[a];
      for (Vec3& p : pts)
        p[a] -= box_A[a] * std::floor(p[a] / box_A[a]);
    } else {
      origin_[a] = lo[a];
      cell_[a] = max_radius_A;
      n_[a] = int((hi[a] - lo[a]) / max_radius_A) + 1;
    }
  }
  const std::size_t ncells = std::size_t(n_[0]) * std::size_t(n_[1]) * std::size_t(n_[2]);
  std::vector<std::uint32_t> cell_of(pts.size());
  start_.assign(ncells + 1, 0);
  for (std::size_t i = 0; i < pts.size(); ++i) {
    int c[3];
    for (int a = 0; a < 3; ++a)
      c[a] = std::clamp(int((pts[i][a] - origin_[a]) / cell_[a]), 0, n_[a] - 1);
    cell_of[i] = std::uint32_t(cell_index(c[0], c[1], c[2]));
    ++start_[cell_of[i] + 1];
  }
  for (std::size_t c = 0; c < ncells; ++c)
    start_[c + 1] += start_[c];
  std::vector<std::uint32_t> fill(start_.begin(), start_.end() - 1);
  order_.resize(pts.size());
  sorted_.resize(pts.size());
  for (std::size_t i = 0; i < pts.size(); ++i) {
    const std::uint32_t slot = fill[cell_of[i]]++;
    order_[slot] = std::uint32_t(i);
    sorted_[slot] = pts[i];
  }
}

}  // namespace epitem
