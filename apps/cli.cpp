#include "cli.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <ctime>
#include <sstream>
#include <thread>

#include "epitem/error.hpp"
#include "epitem/output.hpp"
#include "epitem/parallel.hpp"
#include "epitem/version.hpp"

namespace epitem::cli {

namespace {
struct Invocation {
  std::vector<std::string> argv;
  std::string start_time_utc;
};
Invocation& invocation() {
  static Invocation inv;
  return inv;
}

// Quotes an argument for a POSIX shell only when it needs it, so the line can be pasted back.
std::string shell_quote(const std::string& arg) {
  if (!arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "0123456789_-+=.,:/@%") == std::string::npos)
    return arg;
  std::string q = "'";
  for (char c : arg)
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}
}  // namespace

void record_invocation(int argc, char** argv) {
  Invocation& inv = invocation();
  inv.argv.assign(argv, argv + argc);
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  inv.start_time_utc = buf;
}

std::string version_text() {
  std::string s = "epitem " + version() + " (git " + git_commit() + ")\n";
  for (const auto& [name, ver] : library_versions())
    s += "  " + name + " " + ver + "\n";
  return s;
}

std::vector<Command>& commands() {
  static std::vector<Command> table;
  return table;
}

bool parse_command_line(int argc, char** argv, const std::string& usage,
                        po::options_description& options,
                        const po::positional_options_description& positional,
                        po::variables_map& vm, CommonOptions& common) {
  po::options_description general("General options");
  general.add_options()
    ("help,h", "show this help")
    ("dry-run", po::bool_switch(&common.dry_run),
     "print the resolved parameters (and memory estimate) without computing")
    ("quiet,q", po::bool_switch(&common.quiet), "no parameter echo, no progress bar")
    ("threads", po::value<int>(&common.threads)->default_value(0),
     "worker threads (0 = $EPITEM_THREADS or all cores)");
  po::options_description all;
  all.add(options).add(general);
  po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
  if (vm.count("help")) {
    std::cout << usage << "\n\n" << all << "\n";
    return false;
  }
  po::notify(vm);
  if (common.threads < 0)
    throw po::error("--threads must be ≥ 0");
  // Hundreds of threads on a few cores only add start-up and FFTW planning time (a run with
  // --threads 1000 took minutes): bound it.
  const int max_threads = std::max(8, 4 * int(std::thread::hardware_concurrency()));
  if (common.threads > max_threads) {
    std::cerr << "warning: --threads " << common.threads << " is more than 4 × the "
              << std::thread::hardware_concurrency() << " cores of this machine; using "
              << max_threads << "\n";
    common.threads = max_threads;
  }
  if (common.threads > 0)
    setenv("EPITEM_THREADS", std::to_string(common.threads).c_str(), 1);
  return true;
}

std::string renamed_option(const po::variables_map& vm, const std::string& new_name,
                           const std::string& old_name) {
  const bool old_given = vm.count(old_name) && !vm[old_name].defaulted();
  if (!old_given)
    return new_name;
  if (vm.count(new_name) && !vm[new_name].defaulted())
    throw po::error("--" + old_name + " is the deprecated name of --" + new_name +
                    ": give only --" + new_name);
  std::cerr << "warning: --" << old_name << " is deprecated: use --" << new_name
            << " (docs/vocabulary.md)\n";
  return old_name;
}

int run_guarded(const char* command_name, const std::function<int()>& body) {
  enable_file_registry(true);  // inputs are never overwritten, derived outputs included
  try {
    return body();
  } catch (const po::error& e) {  // under mpirun: the other ranks stop too, rank 0 prints (parallel.hpp)
    if (parallel::report_failure(e.what()))
      std::cerr << "usage error: epitem " << command_name << ": " << e.what()
                << " (see 'epitem " << command_name << " --help')\n";
    return EXIT_USAGE;
  } catch (const epitem::Error& e) {
    if (parallel::report_failure(e.what()))
      std::cerr << "error: " << e.what() << "\n";
    return EXIT_INPUT;
  } catch (const std::bad_alloc&) {
    if (parallel::report_failure("out of memory"))
      std::cerr << "error: epitem " << command_name
                << ": out of memory (use --dry-run to see the estimate; reduce the grid or model)\n";
    return EXIT_INPUT;
  } catch (const std::exception& e) {
    if (parallel::report_failure(e.what()))
      std::cerr << "internal error: epitem " << command_name << ": " << e.what() << "\n";
    return EXIT_INTERNAL;
  }
}

bool get_quantity(const po::variables_map& vm, const std::string& option, Dimension dim,
                  double& value, double bare_unit) {
  if (!vm.count(option))
    return false;
  value = parse_quantity(vm[option].as<std::string>(), dim, "--" + option, bare_unit);
  return true;
}

RunRecord::RunRecord(std::string command) : command_(std::move(command)) {}

static std::string format_number(double v) {
  std::ostringstream os;
  os.precision(8);
  os << v;
  return os.str();
}

void RunRecord::add(const std::string& key, double value, const std::string& unit) {
  params_.set(key, value);
  echo_lines_.push_back(key + " = " + format_number(value) + (unit.empty() ? "" : " " + unit));
}
void RunRecord::add(const std::string& key, const std::string& value) {
  params_.set(key, value);
  echo_lines_.push_back(key + " = " + value);
}
void RunRecord::add(const std::string& key, Json value) {
  echo_lines_.push_back(key + " = " + value.dump(0));
  params_.set(key, std::move(value));
}
void RunRecord::result(const std::string& key, Json value) { results_.set(key, std::move(value)); }
void RunRecord::add_output(const std::string& path) { outputs_.push_back(path); }

void RunRecord::echo(std::ostream& out) const {
  out << "# epitem " << command_ << "\n";
  for (const auto& line : echo_lines_)
    out << "#   " << line << "\n";
}

Json RunRecord::to_json() const {
  Json j = Json::object();
  j.set("program", "epitem " + version());
  j.set("command", command_);
  j.set("conventions", "lengths Å, energies eV, beam angles mrad, crystal angles deg, "
                       "spatial frequency 1/Å without 2π; positive defocus = underfocus");
  j.set("parameters", params_);
  j.set("results", results_);
  j.set("outputs", Json(outputs_));
  j.set("provenance", provenance());
  return j;
}

std::string RunRecord::tiff_description() const {
  Json j = to_json();
  Json p = provenance();
  Json stable = Json::object();
  for (const auto& [key, value] : p.members())
    if (key != "start_time_utc" && key != "threads_used" && key != "host_threads")
      stable.set(key, value);
  j.set("provenance", stable);
  return j.dump(0);
}

// Who made this file and how: enough to rerun it and to explain a difference between two runs.
Json RunRecord::provenance() const {
  const Invocation& inv = invocation();
  Json p = Json::object();
  std::string line;
  for (const auto& arg : inv.argv)
    line += (line.empty() ? "" : " ") + shell_quote(arg);
  p.set("command_line", line);
  p.set("argv", Json(inv.argv));
  p.set("epitem_version", version());
  p.set("git_commit", git_commit());
  Json libs = Json::object();
  for (const auto& [name, ver] : library_versions())
    libs.set(name, ver);
  p.set("libraries", libs);
  p.set("start_time_utc", inv.start_time_utc);
  p.set("host_threads", static_cast<int>(std::thread::hardware_concurrency()));
  p.set("threads_used", default_thread_count());
  // Every seed the run used, gathered from the parameters (any key naming a seed).
  Json seeds = Json::object();
  for (const auto& [key, value] : params_.members())
    if (key.find("seed") != std::string::npos)
      seeds.set(key, value);
  p.set("seeds", seeds);
  return p;
}

void RunRecord::write_sidecar(const std::string& output_path) const {
  write_text_file(sidecar_path(output_path), to_json().dump(2) + "\n");
}

void RunRecord::write_text_output(const std::string& path, const std::string& text,
                                  const std::vector<std::string>& inputs) {
  write_text_file(path, text, inputs);
  add_output(path);
  write_sidecar(path);
}

ProgressBar::ProgressBar(bool quiet)
    : enabled_(!quiet && isatty(STDERR_FILENO)), start_(std::chrono::steady_clock::now()),
      last_(start_) {}

ProgressBar::~ProgressBar() { finish(); }

ProgressFn ProgressBar::callback() {
  if (!enabled_)
    return {};
  return [this](std::size_t done, std::size_t total, const std::string& stage) {
    auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(100))
      return;
    last_ = now;
    if (stage != stage_) {  // the ETA extrapolates the current stage only
      stage_ = stage;
      stage_start_ = now;
      stage_done0_ = done;
    }
    const int width = 30;
    double frac = total ? double(done) / double(total) : 1.0;
    int filled = int(frac * width);
    double elapsed = std::chrono::duration<double>(now - start_).count();
    const double in_stage = std::chrono::duration<double>(now - stage_start_).count();
    std::string eta = "          ";
    if (done > stage_done0_ && done < total && in_stage > 2.0)
      eta = " ETA " + std::to_string(int(std::ceil(in_stage * double(total - done) / double(done - stage_done0_)))) + "s   ";
    std::fprintf(stderr, "\r%-18.18s [%s%s] %3d%% %6.1fs%s", stage.c_str(),
                 std::string(size_t(filled), '#').c_str(),
                 std::string(size_t(width - filled), '.').c_str(), int(frac * 100), elapsed, eta.c_str());
    std::fflush(stderr);
    drawn_ = true;
  };
}

void ProgressBar::finish() {
  if (drawn_) {
    std::fprintf(stderr, "\n");
    drawn_ = false;
  }
}

WarnFn warn_to_stderr() {
  return [](const std::string& msg) { std::cerr << "warning: " << msg << "\n"; };
}

std::string format_bytes(double bytes) {
  const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (bytes >= 1024 && i < 4) {
    bytes /= 1024;
    ++i;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", bytes, unit[i]);
  return buf;
}

}  // namespace epitem::cli
