#include "epitem/limits.hpp"

#include <cmath>

#include "epitem/error.hpp"
#include "epitem/multislice.hpp"  // available_memory_bytes

namespace epitem {

void require_work(const std::string& what, double steps, const std::string& unit,
                  const std::string& fix, double limit) {
  if (!std::isfinite(steps) || steps > limit)
    fail(what, " needs about ", steps, " ", unit, ", more than the limit ", limit,
         " (hours of computing or more); ", fix);
}

void require_memory(const std::string& what, double bytes, const std::string& fix) {
  const double avail = available_memory_bytes();
  if (!std::isfinite(bytes) || (avail > 0 && bytes > avail))
    fail(what, " needs about ", bytes / 1073741824.0, " GiB of memory but only ",
         avail / 1073741824.0, " GiB is available; ", fix);
}

}  // namespace epitem
