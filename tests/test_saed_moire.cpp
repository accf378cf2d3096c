// SAED between-phase double diffraction: every pair above the intensity threshold, moiré flag.
#include <cmath>

#include "epitem/kinematic.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"
#include "testing.hpp"

using namespace epitem;

TEST_CASE("preset SAED has the 12.2 A moire of the interface-parallel planes, flagged", "[saed-dd]") {
  const Crystal nife = read_crystal("NiFe"), fe3o4 = read_crystal("Fe3O4");
  const SaedPattern p = kinematic_saed(nife_fe3o4_phases(nife, fe3o4, 4.2), SaedSpec{});
  // Hand value: g1 = |(−111)| of NiFe = √3/a1, g2 = |(−222)| of Fe3O4 = 2√3/a2, 4.2° apart:
  // |g1 − g2|² = g1² + g2² − 2 g1 g2 cos 4.2°.
  const double g1 = std::sqrt(3.0) / nife.lattice.a_A(), g2 = 2 * std::sqrt(3.0) / fe3o4.lattice.a_A();
  const double d_moire = 1 / std::sqrt(g1 * g1 + g2 * g2 - 2 * g1 * g2 * std::cos(4.2 * units::deg_to_rad));
  CHECK(d_moire == Approx(12.2).margin(0.05));
  int found = 0, weak_pairs = 0;
  for (const auto& s : p.spots) {
    if (s.double_diffraction != DoubleDiffraction::BetweenPhases)
      continue;
    if (s.is_moire && std::abs(s.d_A - d_moire) < 1e-3)
      ++found;
    // The long-period spots near 000 are all moirés (differences of near-parallel g's).
    if (!s.is_moire)
      CHECK(s.g_invA > 0.1);
    weak_pairs += s.dd_path.find("-222") != std::string::npos || s.dd_path.find("-22-2") != std::string::npos;
  }
  CHECK(found == 4);       // ±(−111) with ∓(−222) and their mirror pair across the zone
  CHECK(weak_pairs >= 4);  // Fe3O4 222 (≈1 % of the strongest) takes part: not only the 4 strongest
  // Raising the threshold above 222's intensity removes that moiré: the threshold is what decides.
  SaedSpec strict;
  strict.dd_min_intensity = 5;
  const SaedPattern q = kinematic_saed(nife_fe3o4_phases(nife, fe3o4, 4.2), strict);
  for (const auto& s : q.spots)
    CHECK_FALSE((s.is_moire && std::abs(s.d_A - d_moire) < 1e-3));
}
