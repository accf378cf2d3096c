// Shared command-line machinery for every `epitem <cmd>`: self-registering subcommands,
// unit-bearing options, the echo of resolved parameters, JSON sidecar, exit codes, progress.
#pragma once
#include <boost/program_options.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "epitem/json.hpp"
#include "epitem/progress.hpp"
#include "epitem/quantity.hpp"

namespace epitem::cli {

namespace po = boost::program_options;

/// Exit codes (issue 2): 0 ok, 1 error in input, 2 usage, 3 internal.
enum ExitCode { EXIT_OK = 0, EXIT_INPUT = 1, EXIT_USAGE = 2, EXIT_INTERNAL = 3 };

struct Command {
  const char* name;
  const char* summary;
  int (*main)(int argc, char** argv);
  int order;  ///< position in the `epitem` listing
};
/// All registered subcommands, sorted by `order`.
std::vector<Command>& commands();
struct RegisterCommand {
  explicit RegisterCommand(Command c) { commands().push_back(c); }
};
/// In apps/cmd_<name>.cpp: EPITEM_COMMAND(saed, 20, "kinematic SAED pattern", saed_main)
#define EPITEM_COMMAND(NAME, ORDER, SUMMARY, FN) \
  static ::epitem::cli::RegisterCommand register_##NAME({#NAME, SUMMARY, FN, ORDER})

/// Options every subcommand has: --help, --dry-run, --quiet, --threads.
struct CommonOptions {
  bool dry_run = false;
  bool quiet = false;
  int threads = 0;  ///< 0 = default_thread_count()
};

/// Remembers the full command line and the start time (UTC) for every sidecar's provenance;
/// main() calls it once before dispatching.
void record_invocation(int argc, char** argv);
/// "epitem 0.1.0 (git …)" and one line per library version, for `epitem -V` / `--version`.
std::string version_text();

/// Parses argv with `options` (+ the common ones) and `positional` names; prints help and
/// returns false when --help was given. Throws po::error on bad usage.
bool parse_command_line(int argc, char** argv, const std::string& usage,
                        po::options_description& options,
                        const po::positional_options_description& positional,
                        po::variables_map& vm, CommonOptions& common);

/// A renamed option kept for old scripts: returns the name to read — `new_name`, or `old_name`
/// when only that was given explicitly (then prints "warning: --old_name is deprecated: use
/// --new_name"). Both given: usage error.
std::string renamed_option(const po::variables_map& vm, const std::string& new_name,
                           const std::string& old_name);

/// Runs body() mapping exceptions to exit codes and one-line messages on stderr:
/// po::error → "usage error: …" (2), epitem::Error → "error: …" (1), other → "internal error" (3).
int run_guarded(const char* command_name, const std::function<int()>& body);

/// Reads a unit-bearing option if present: returns true and sets `value` (canonical unit).
bool get_quantity(const po::variables_map& vm, const std::string& option, Dimension dim,
                  double& value, double bare_unit = 1.0);

/// The resolved parameters of a run, in canonical units: echoed on stdout (unless --quiet)
/// and written as the JSON sidecar beside the outputs.
class RunRecord {
public:
  explicit RunRecord(std::string command);
  /// A number with its canonical unit: name "energy_eV" already carries it; unit is for display.
  void add(const std::string& key, double value, const std::string& unit = "");
  void add(const std::string& key, const std::string& value);
  void add(const std::string& key, Json value);
  /// Results (counts, timings, numbers measured) go into the sidecar's "results" object.
  void result(const std::string& key, Json value);
  void add_output(const std::string& path);
  /// Prints "# key = value unit" lines.
  void echo(std::ostream& out) const;
  Json to_json() const;
  /// The sidecar for a TIFF's ImageDescription: the same, less what differs between two runs of one
  /// command (start time, thread counts), so seeded runs give byte-identical TIFFs.
  std::string tiff_description() const;
  /// Writes the sidecar beside `output_path` (output.hpp: sidecar_path), atomically.
  void write_sidecar(const std::string& output_path) const;
  /// A command's main text output: writes `text` atomically (never over one of `inputs`),
  /// lists it as an output, then writes the sidecar beside it.
  void write_text_output(const std::string& path, const std::string& text,
                         const std::vector<std::string>& inputs = {});

private:
  Json provenance() const;
  std::string command_;
  Json params_ = Json::object();
  Json results_ = Json::object();
  std::vector<std::string> outputs_;
  std::vector<std::string> echo_lines_;
};

/// A progress bar on stderr when stderr is a TTY and not --quiet; silent otherwise. Shows an
/// ETA (from the current stage's rate) once a stage has run 2 s.
class ProgressBar {
public:
  explicit ProgressBar(bool quiet);
  ~ProgressBar();
  /// The callback to hand to library functions.
  ProgressFn callback();
  void finish();

private:
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_, stage_start_;
  std::string stage_;
  std::size_t stage_done0_ = 0;
  bool drawn_ = false;
};

/// Warning printer for library WarnFn: "warning: <msg>" on stderr (always shown).
WarnFn warn_to_stderr();

/// Human-readable bytes ("1.23 GiB").
std::string format_bytes(double bytes);

}  // namespace epitem::cli
