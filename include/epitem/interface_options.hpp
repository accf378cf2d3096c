// The options of `epitem interface` by their command-line names, parsed into an InterfaceSpec:
// one parser shared by the CLI (apps/cmd_interface.cpp) and the Python module, whose keyword
// arguments carry the same names (epitem.interface(plane="-1,1,1:-1,1,1", tilt=4.2)).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "epitem/error.hpp"
#include "epitem/interface.hpp"

namespace epitem {

/// A value whose form is wrong for its option (--shape cube, an unknown option name): the CLI
/// reports it as a usage error (exit 2), Python as ValueError/TypeError.
struct OptionUsageError : Error {
  using Error::Error;
};

/// Option name without "--" → its text as typed: "plane" → "-1,1,1:-1,1,1", "tilt" → "4.2deg";
/// switches ("keep-box", "no-strain", "no-voids") → "true" or "false". Bare numbers take the
/// unit the help text documents (Å, deg).
using OptionTexts = std::map<std::string, std::string>;

/// The names apply_interface_options understands (plus "preset" for interface_spec_from_options).
const std::vector<std::string>& interface_option_names();

/// Sets the fields of `spec` named by `options` ("substrate"/"overlayer" are read with
/// read_crystal); "preset" is ignored here. Throws Error naming the option on a bad value,
/// OptionUsageError on an unknown name or keyword (view, shape). Does not validate().
void apply_interface_options(InterfaceSpec& spec, const OptionTexts& options);

/// The spec `epitem interface` builds from these options: the preset (if given) or substrate +
/// overlayer, then every other option; validated.
InterfaceSpec interface_spec_from_options(const OptionTexts& options);

}  // namespace epitem
