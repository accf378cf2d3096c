// --temperature and --debye-temperature, shared by multislice, hrtem and saed (debye.hpp),
// and the per-element U_iso summary every sidecar carries.
#pragma once
#include <map>
#include <vector>

#include "cli.hpp"
#include "epitem/debye.hpp"

namespace epitem::cli {

/// Help line shared by the commands.
extern const char* const TEMPERATURE_HELP;

po::options_description thermal_options();
/// Resolves the options; Error naming the option on bad values.
ThermalSpec resolve_thermal_options(const po::variables_map& vm);

/// U_iso per element of a model as the frozen phonons use it (defaults filled in).
std::map<int, std::vector<double>> phonon_u_iso_used(const AtomicModel& model);
/// U_iso per element of crystals (Debye–Waller factors of the kinematic pattern).
std::map<int, std::vector<double>> crystal_u_iso_used(const std::vector<const Crystal*>& crystals);

/// Resolves --phonon-seed, accepting the deprecated alias `alias` (e.g. multislice's old
/// --seed) when it is given instead; both given with different values is a usage error.
unsigned long long resolve_phonon_seed(const po::variables_map& vm, const std::string& alias);

}  // namespace epitem::cli
