// Projected area of each phase of a model viewed along the beam (z): the union of the bulk
// Voronoi (Wigner–Seitz) cells of the phase's atom columns — a free surface lies half a column
// spacing beyond its last column — plus a share of any narrow band left between two phases
// (overlap removal, a missing layer), split at equal distance from both. What a phase map of
// the projected image should measure (phasemap.hpp).
#pragma once
#include <vector>

#include "epitem/crystal.hpp"
#include "epitem/image.hpp"
#include "epitem/model.hpp"

namespace epitem {

/// A phase's crystal and its orientation in the model (crystal Cartesian → box frame, a zone
/// axis along z), as InterfaceReport::substrate_rotation / overlayer_rotation give them.
struct PhaseOrientation {
  const Crystal* crystal = nullptr;
  Mat3 rotation = Mat3::Identity();
};

struct ProjectedAreaSpec {
  double sampling_A = 0.1;    ///< raster pixel [Å] (the area is exact to ~pixel × perimeter)
  /// A band between two phases' regions at most this wide is split between them (the gap
  /// left by overlap removal is ≲ one column spacing); wider holes (voids, vacuum) stay empty.
  double max_gap_A = 4.0;
};

struct ProjectedAreas {
  std::vector<double> area_A2;  ///< per model phase (AtomicModel::phase_names order)
  Image label;                  ///< phase index per pixel, −1 = none; row index along +y
};

/// `phases[p]` describes model phase p (atoms with Atom::phase == p). Throws Error when a
/// phase's columns do not sit on its crystal's projected lattice (wrong rotation, strain) or
/// when the raster would exceed ~50 M pixels (use a coarser sampling).
ProjectedAreas projected_phase_areas(const AtomicModel& model, const std::vector<PhaseOrientation>& phases,
                                     const ProjectedAreaSpec& spec = {});

}  // namespace epitem
