#include "epitem/debye.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "epitem/element.hpp"
#include "epitem/error.hpp"
#include "epitem/quantity.hpp"
#include "epitem/units.hpp"

namespace epitem {

namespace {

// ħ²/(u · k_B) in Å²·K (CODATA 2018: ħ = 1.054571817e-34 J s, u = 1.66053906660e-27 kg,
// k_B = 1.380649e-23 J/K; 1 m² = 1e20 Å²).
constexpr double HBAR2_PER_U_KB_A2K = 48.50867;

struct Row {
  int Z;
  double theta_K;
  const char* source;
};

// Same numbers and sources as reference/debye/debye_temperatures.csv (a test compares them).
// X-ray (Debye–Waller) Debye temperatures where measured; else Kittel's calorimetric values,
// which give U ~10 % low at room temperature for Fe and Ni (see reference/README.md).
const char* const PAAKKARI = "X-ray Debye temperature, Paakkari, Acta Cryst. A30 (1974) 83";
const char* const KITTEL = "calorimetric, Kittel, Introduction to Solid State Physics (8th ed.) Table 5.1";
const char* const O_FIT = "fitted: U(O, Fe3O4, 293 K) = 0.0070 A^2 (structures/Fe3O4.cif; Hill 1979, Fleet 1981)";
const Row TABLE[] = {
    {3, 344, KITTEL},   {4, 1440, KITTEL}, {6, 2230, KITTEL},  {8, 657, O_FIT},
    {11, 158, KITTEL},  {12, 400, KITTEL}, {13, 428, KITTEL},  {14, 645, KITTEL},
    {19, 91, KITTEL},   {20, 230, KITTEL}, {21, 360, KITTEL},  {22, 420, KITTEL},
    {23, 380, KITTEL},  {24, 510, PAAKKARI}, {25, 410, KITTEL}, {26, 435, PAAKKARI},
    {27, 445, KITTEL},  {28, 397, PAAKKARI}, {29, 343, KITTEL}, {30, 327, KITTEL},
    {31, 320, KITTEL},  {32, 374, KITTEL}, {38, 147, KITTEL},  {39, 280, KITTEL},
    {40, 291, KITTEL},  {41, 275, KITTEL}, {42, 407, PAAKKARI}, {46, 274, KITTEL},
    {47, 225, KITTEL},  {56, 110, KITTEL}, {73, 240, KITTEL},  {74, 333, PAAKKARI},
    {78, 240, KITTEL},  {79, 165, KITTEL}, {82, 105, KITTEL},
};

}  // namespace

double debye_phi(double x) {
  if (!(x >= 0))
    fail("debye_phi: x must be >= 0, got ", x);
  if (x < 1e-6)
    return 1.0 - x / 4;
  // Simpson on [0, min(x, 60)]; the integrand t/(e^t − 1) is smooth and below 1e-24 beyond 60.
  const double top = std::min(x, 60.0);
  const int n = 2000;
  const double h = top / n;
  auto f = [](double t) { return t < 1e-12 ? 1.0 : t / std::expm1(t); };
  double s = f(0) + f(top);
  for (int i = 1; i < n; ++i)
    s += (i % 2 ? 4 : 2) * f(i * h);
  return s * h / 3 / x;
}

double debye_u_iso_A2(double mass_u, double theta_K, double temperature_K) {
  if (!(mass_u > 0) || !(theta_K > 0) || !(temperature_K >= 0))
    fail("Debye model: need mass > 0 u, Debye temperature > 0 K and T >= 0 K, got ", mass_u,
         " u, ", theta_K, " K, ", temperature_K, " K");
  const double pre = 3 * HBAR2_PER_U_KB_A2K / (mass_u * theta_K);
  if (temperature_K < 1e-9 * theta_K)
    return pre / 4;
  const double x = theta_K / temperature_K;
  return pre * (debye_phi(x) / x + 0.25);
}

DebyeTableEntry default_debye_temperature(int Z) {
  for (const Row& r : TABLE)
    if (r.Z == Z)
      return {r.theta_K, r.source};
  return {};
}

double ThermalSpec::theta_K(int Z) const {
  auto it = theta_override_K.find(Z);
  if (it != theta_override_K.end())
    return it->second;
  const DebyeTableEntry e = default_debye_temperature(Z);
  if (e.theta_K <= 0)
    fail("--temperature: no Debye temperature tabulated for ", element_symbol(Z),
         "; give one with --debye-temperature ", element_symbol(Z), "=300K");
  return e.theta_K;
}

std::string ThermalSpec::theta_source(int Z) const {
  if (theta_override_K.count(Z))
    return "--debye-temperature";
  return default_debye_temperature(Z).source;
}

double ThermalSpec::u_iso_A2(int Z) const {
  return debye_u_iso_A2(atomic_mass_u(Z), theta_K(Z), temperature_K);
}

std::map<int, double> parse_debye_temperatures(const std::string& text, const std::string& what) {
  std::map<int, double> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    const auto eq = item.find('=');
    if (eq == std::string::npos)
      fail(what, ": '", item, "' is not ELEMENT=THETA (e.g. Fe=470K,O=650K)");
    const std::string sym = item.substr(0, eq);
    const int Z = atomic_number_or_zero(sym);
    if (Z == 0)
      fail(what, ": unknown element '", sym, "' in '", text, "'");
    std::string value = item.substr(eq + 1);
    const bool bare = !value.empty() && value.find_first_not_of("0123456789.eE+- ") == std::string::npos;
    const double theta = parse_quantity(bare ? value + "K" : value, Dimension::Temperature, what);
    if (!(theta > 0))
      fail(what, ": Debye temperature of ", sym, " must be > 0 K, got '", value, "'");
    out[Z] = theta;
  }
  if (out.empty())
    fail(what, ": empty; expected e.g. Fe=470K,O=650K");
  return out;
}

void apply_temperature(AtomicModel& model, const ThermalSpec& spec) {
  if (!spec.active())
    return;
  std::map<int, double> u;
  for (Atom& a : model.atoms) {
    auto it = u.find(a.Z);
    if (it == u.end())
      it = u.emplace(a.Z, spec.u_iso_A2(a.Z)).first;
    a.u_iso_A2 = it->second;
  }
}

void apply_temperature(Crystal& crystal, const ThermalSpec& spec) {
  if (!spec.active())
    return;
  for (Site& s : crystal.sites)
    s.u_iso_A2 = spec.u_iso_A2(s.Z);
}

Json thermal_json(const ThermalSpec& spec, const std::map<int, std::vector<double>>& u_used_A2) {
  Json j = Json::object();
  if (spec.active()) {
    j.set("temperature_K", spec.temperature_K);
    j.set("model", "Debye: U = 3 hbar^2/(m kB Theta) [Phi(Theta/T)/(Theta/T) + 1/4] (zero-point "
                   "term included); docs/temperature.md");
  } else {
    j.set("temperature_K", Json());
    j.set("model", "U_iso as given by the structure/model (room temperature); no --temperature");
  }
  Json elements = Json::object();
  for (const auto& [Z, us] : u_used_A2) {
    Json e = Json::object();
    if (spec.active()) {
      e.set("debye_temperature_K", spec.theta_K(Z));
      e.set("debye_temperature_source", spec.theta_source(Z));
    }
    if (!us.empty()) {
      const auto [lo, hi] = std::minmax_element(us.begin(), us.end());
      e.set("u_iso_A2", *lo == *hi ? Json(*lo) : Json(std::vector<double>{*lo, *hi}));
      if (*lo == *hi)
        e.set("b_iso_A2", u_to_b_A2(*lo));
    }
    elements.set(element_symbol(Z), e);
  }
  j.set("elements", elements);
  return j;
}

}  // namespace epitem
