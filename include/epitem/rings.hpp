// Ring (polycrystalline) diffraction patterns: pattern centre from the direct beam, azimuthal
// average, ring radii refined to sub-pixel above a lower-envelope baseline. With
// calibrate_scale (indexing.hpp) the radii give the camera constant against a known phase.
#pragma once
#include <vector>

#include "epitem/image.hpp"

namespace epitem {

struct Ring {
  double radius_px = 0;
  double height = 0;      ///< azimuthal mean above the baseline at the ring
};

struct RingProfile {
  double centre_x_px = 0, centre_y_px = 0;  ///< column, row of the pattern centre
  double bin_px = 0.5;                      ///< radial bin of the profile
  std::vector<double> mean;                 ///< azimuthal mean per bin (radius = (i + 0.5)·bin)
  std::vector<Ring> rings;                  ///< by increasing radius
};

struct RingSpec {
  double min_radius_px = 0;     ///< ignore rings inside this (0 = 3× the direct-beam radius)
  double min_height_rel = 0.03; ///< ring height ≥ this × the highest ring
};

/// Centre of the direct beam: intensity centroid of the pixels above half the maximum of a
/// 3×3-smoothed pattern, within 20 px of the maximum. Throws for constant or non-finite images.
void direct_beam_centre(const Image& pattern, double& x_px, double& y_px, double& radius_px);

/// Azimuthal average about the direct beam and its rings.
RingProfile find_rings(const Image& pattern, const RingSpec& spec = {});

}  // namespace epitem
