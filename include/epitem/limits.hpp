// Resource limits: work and memory a request implies, estimated before it starts, so that an
// absurd input (a 10⁶ Å cell, --holz 10⁶, a 10⁹ Å probe) is refused in milliseconds with the
// estimate and the fix instead of running for hours or being killed.
#pragma once
#include <string>

namespace epitem {

/// Elementary steps (loop iterations, reflections × sites, grid cells …) one request may take:
/// ~10¹⁰ is minutes to hours on one core — far beyond any sensible TEM-sized request.
constexpr double MAX_WORK_STEPS = 1e10;

/// Throws Error "<what> needs about N <unit>, more than the limit L; <fix>" when `steps`
/// exceeds `limit` (or is not finite).
void require_work(const std::string& what, double steps, const std::string& unit,
                  const std::string& fix, double limit = MAX_WORK_STEPS);

/// Throws Error "<what> needs about X GiB but only Y GiB is available; <fix>" when `bytes`
/// exceeds MemAvailable (or is not finite). Silent when MemAvailable cannot be read.
void require_memory(const std::string& what, double bytes, const std::string& fix);

}  // namespace epitem
