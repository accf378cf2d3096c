// Robust statistics shared by the analysis code.
#pragma once
#include <algorithm>
#include <cstddef>
#include <vector>

namespace epitem {

/// Upper median of `v` (taken by value: nth_element reorders it); 0 for an empty vector.
inline double median(std::vector<double> v) {
  if (v.empty())
    return 0;
  auto mid = v.begin() + std::ptrdiff_t(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

}  // namespace epitem
