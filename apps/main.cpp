// epitem: HRTEM/SAED simulation and analysis for catalyst microscopy. `epitem <cmd> --help`.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "cli.hpp"

using epitem::cli::commands;

static void print_command_table() {
  std::printf("epitem — crystal & interface models, HRTEM/SAED simulation, TEM data analysis\n\n"
              "usage: epitem <command> [options]   (epitem <command> --help for options)\n\n"
              "commands:\n");
  for (const auto& c : commands())
    std::printf("  %-12s %s\n", c.name, c.summary);
  std::printf("\nepitem -V: version, git commit and library versions. Documentation: docs/ "
              "(docs/vocabulary.md: every option and CSV column with its unit)\n");
  std::printf("\nunits: Å, eV, mrad (beam), deg (crystal); values may carry units: 200kV, 1.2mm, "
              "50nm, 0.5mrad, 4.2deg, 3.37/nm\n");
}

int main(int argc, char** argv) {
  auto& table = commands();
  std::sort(table.begin(), table.end(),
            [](const auto& a, const auto& b) { return a.order < b.order; });
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    print_command_table();
    return argc < 2 ? epitem::cli::EXIT_USAGE : epitem::cli::EXIT_OK;
  }
  if (!std::strcmp(argv[1], "--version") || !std::strcmp(argv[1], "-V")) {
    std::printf("%s", epitem::cli::version_text().c_str());
    return 0;
  }
  epitem::cli::record_invocation(argc, argv);
  for (const auto& c : table)
    if (argv[1] == std::string(c.name))
      return c.main(argc - 1, argv + 1);
  std::fprintf(stderr, "usage error: unknown command '%s' (run 'epitem' for the list)\n", argv[1]);
  return epitem::cli::EXIT_USAGE;
}
