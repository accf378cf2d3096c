#include "epitem/crystal.hpp"

#include <cmath>
#include <map>
#include <sstream>

#include "epitem/element.hpp"

namespace epitem {

std::string Crystal::cell_formula() const {
  std::map<int, double> count;
  for (const auto& s : sites)
    count[s.Z] += s.occupancy;
  std::ostringstream os;
  bool first = true;
  for (const auto& [z, n] : count) {
    os << (first ? "" : " ") << element_symbol(z);
    double rounded = std::round(n * 1000) / 1000;
    if (rounded != 1)
      os << rounded;
    first = false;
  }
  return os.str();
}

double Crystal::density_g_cm3() const {
  const double avogadro = 6.02214076e23;
  double mass_u = 0;
  for (const auto& s : sites)
    mass_u += s.occupancy * atomic_mass_u(s.Z);
  return mass_u / avogadro / (lattice.volume_A3() * 1e-24);
}

std::vector<Vec3> equivalent_reflections(const Crystal& crystal, const Vec3& hkl) {
  // Reflections transform with the transpose of the fractional rotation: h' = h·R.
  std::vector<Vec3> out;
  auto add = [&](const Vec3& h) {
    for (const auto& o : out)
      if ((o - h).cwiseAbs().maxCoeff() < 1e-6)
        return;
    out.push_back(h);
  };
  if (crystal.symops.empty())
    add(hkl);
  for (const auto& op : crystal.symops) {
    Vec3 h = op.rot.transpose() * hkl;
    add(h);
    add(-h);  // Friedel's law (kinematic intensities)
  }
  add(-hkl);
  return out;
}

}  // namespace epitem
