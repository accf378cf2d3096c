// Internal pieces shared by the interface builder's source files (not installed).
#pragma once
#include <functional>
#include <vector>

#include "epitem/interface.hpp"

namespace epitem::detail {

/// True where a point near the interface lies under the overlayer, away from free surfaces.
using Footprint = std::function<bool(const Vec3& p_A)>;

/// Probe-accessible regions within band_A of the interface where `footprint` holds: grid
/// points farther than probe_A + r_cov from every atom, 26-connected into components.
std::vector<InterfaceVoid> find_interface_voids(const AtomicModel& model,
                                                const InterfaceGeometry& geometry,
                                                const Footprint& footprint, double probe_A,
                                                double grid_A, double band_A);

}  // namespace epitem::detail
