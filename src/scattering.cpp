#include "epitem/scattering.hpp"

#include <gemmi/c4322.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "epitem/error.hpp"
#include "epitem/units.hpp"

namespace epitem {

namespace detail {
extern const std::array<double, 12> KIRKLAND_PARAMETERS[103];
}

ScatteringTable parse_scattering_table(const std::string& name) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (n == "kirkland")
    return ScatteringTable::Kirkland;
  if (n == "peng" || n == "itc" || n == "c4322")
    return ScatteringTable::Peng;
  fail("unknown scattering table '", name, "' (use kirkland or peng)");
}

const char* scattering_table_name(ScatteringTable table) {
  return table == ScatteringTable::Kirkland ? "kirkland" : "peng";
}

const std::array<double, 12>& kirkland_parameters(int Z) {
  if (Z < 1 || Z > 103)
    fail("no Kirkland scattering factor for Z = ", Z, " (table covers 1-103)");
  return detail::KIRKLAND_PARAMETERS[Z - 1];
}

double scattering_factor_A(int Z, double q_invA, ScatteringTable table) {
  const double q2 = q_invA * q_invA;
  if (table == ScatteringTable::Kirkland) {
    const auto& p = kirkland_parameters(Z);
    double f = 0;
    for (int i = 0; i < 3; ++i) {
      f += p[2 * i] / (q2 + p[2 * i + 1]);
      f += p[6 + 2 * i] * std::exp(-p[6 + 2 * i + 1] * q2);
    }
    return f;
  }
  // gemmi's GaussianCoef::calculate_sf takes (sinθ/λ)² = s² = q²/4 (ITC uses s, not q).
  auto el = gemmi::El(Z);
  if (Z < 1 || Z > 98 || !gemmi::C4322<double>::has(el))
    fail("no Peng/ITC C4322 scattering factor for Z = ", Z, " (table covers 1-98)");
  return gemmi::C4322<double>::get(el).calculate_sf(q2 / 4.0);
}

double scattering_table_q_max_invA(ScatteringTable table) {
  return table == ScatteringTable::Kirkland ? 12.0 : 4.0;
}

double kirkland_projected_potential_VA(int Z, double r_A) {
  if (!(r_A > 0))
    fail("projected potential needs r > 0 Å, got ", r_A);
  const auto& p = kirkland_parameters(Z);
  const double a0e = BOHR_RADIUS_TIMES_E_VA;
  double v = 0;
  for (int i = 0; i < 3; ++i) {
    double a = p[2 * i], b = p[2 * i + 1], c = p[6 + 2 * i], d = p[6 + 2 * i + 1];
    v += 4 * PI * PI * a0e * a * std::cyl_bessel_k(0.0, 2 * PI * r_A * std::sqrt(b));
    v += 2 * PI * PI * a0e * (c / d) * std::exp(-PI * PI * r_A * r_A / d);
  }
  return v;
}

}  // namespace epitem
