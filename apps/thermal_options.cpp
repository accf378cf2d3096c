#include "thermal_options.hpp"

#include <iostream>

#include "epitem/multislice.hpp"

namespace epitem::cli {

const char* const TEMPERATURE_HELP =
    "specimen temperature (700C, 973K): U_iso(T) of every atom from the Debye model per element "
    "(docs/temperature.md); default: the structure's own U_iso";

po::options_description thermal_options() {
  po::options_description t("Temperature (docs/temperature.md)");
  t.add_options()
    ("temperature", po::value<std::string>(), TEMPERATURE_HELP)
    ("debye-temperature", po::value<std::string>(),
     "override Debye temperatures per element, e.g. Fe=470K,O=650K (table: reference/debye)");
  return t;
}

ThermalSpec resolve_thermal_options(const po::variables_map& vm) {
  ThermalSpec spec;
  if (vm.count("temperature"))
    spec.temperature_K = parse_quantity(vm["temperature"].as<std::string>(), Dimension::Temperature,
                                        "--temperature");
  if (vm.count("debye-temperature")) {
    if (!spec.active())
      throw po::error("--debye-temperature needs --temperature (e.g. --temperature 700C)");
    spec.theta_override_K = parse_debye_temperatures(vm["debye-temperature"].as<std::string>(),
                                                     "--debye-temperature");
  }
  return spec;
}

std::map<int, std::vector<double>> phonon_u_iso_used(const AtomicModel& model) {
  std::map<int, std::vector<double>> u;
  for (const Atom& a : model.atoms)
    u[a.Z].push_back(frozen_phonon_u_iso_A2(a));
  return u;
}

std::map<int, std::vector<double>> crystal_u_iso_used(const std::vector<const Crystal*>& crystals) {
  std::map<int, std::vector<double>> u;
  for (const Crystal* c : crystals)
    for (const Site& s : c->sites)
      u[s.Z].push_back(s.u_iso_A2);
  return u;
}

unsigned long long resolve_phonon_seed(const po::variables_map& vm, const std::string& alias) {
  const unsigned long long seed = vm["phonon-seed"].as<unsigned long long>();
  if (alias.empty() || !vm.count(alias) || vm[alias].defaulted())
    return seed;
  const unsigned long long old = vm[alias].as<unsigned long long>();
  if (!vm["phonon-seed"].defaulted() && old != seed)
    throw po::error("--" + alias + " is the deprecated name of --phonon-seed; give one of them");
  std::cerr << "warning: --" << alias << " is deprecated here; use --phonon-seed\n";
  return old;
}

}  // namespace epitem::cli
