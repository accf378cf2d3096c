#include "epitem/output.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "epitem/error.hpp"

namespace fs = std::filesystem;

namespace epitem {

namespace {

// --- Inputs and planned outputs, compared as files (device, inode). ---
struct FileId {
  dev_t dev;
  ino_t ino;
};

bool file_id(const std::string& path, FileId& id) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return false;
  id = {st.st_dev, st.st_ino};
  return true;
}

bool same_file(const std::string& a, const std::string& b) {
  FileId ia{}, ib{};
  return file_id(a, ia) && file_id(b, ib) && ia.dev == ib.dev && ia.ino == ib.ino;
}

struct FileRegistry {
  std::mutex mutex;
  bool enabled = false;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
};

FileRegistry& registry() {
  static FileRegistry r;
  return r;
}

/// Throws when `out` is the same file as `in` (an existing output can be an input; a missing one
/// cannot).
void refuse_if_same(const std::string& out, const std::string& in) {
  if (same_file(out, in))
    fail(out, " is the input ", in, " (the same file); refusing to overwrite an input — choose "
         "another output name (sidecars, PNG and summary files are named after the output)");
}

// --- Temporary files removed by SIGINT/SIGTERM/SIGHUP: fixed slots, so the handler reads no
// structure that is being resized; unlink() is async-signal-safe. ---
constexpr int MAX_TEMPS = 64;
constexpr std::size_t MAX_TEMP_PATH = 4096;
char g_temp_paths[MAX_TEMPS][MAX_TEMP_PATH];
std::atomic<int> g_temp_state[MAX_TEMPS];  // 0 free, 1 being filled, 2 registered
constexpr int CLEANUP_SIGNALS[] = {SIGINT, SIGTERM, SIGHUP};

extern "C" void remove_temps_and_die(int sig) {
  for (int i = 0; i < MAX_TEMPS; ++i)
    if (g_temp_state[i].load() == 2)
      ::unlink(g_temp_paths[i]);
  // Die of the same signal (exit status 128+sig for the shell), as without the handler.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  ::raise(sig);
}

void install_cleanup_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int sig : CLEANUP_SIGNALS) {
      struct sigaction old {};
      if (::sigaction(sig, nullptr, &old) != 0 || old.sa_handler != SIG_DFL)
        continue;  // ignored (nohup) or handled by someone else: leave it
      struct sigaction sa {};
      sa.sa_handler = remove_temps_and_die;
      sigemptyset(&sa.sa_mask);
      ::sigaction(sig, &sa, nullptr);
    }
  });
}

/// Registers a temporary file for removal on a fatal signal; returns its slot (-1 when full:
/// the file is still removed on errors, only not on a signal).
int register_temp(const std::string& tmp) {
  install_cleanup_handlers();
  if (tmp.size() >= MAX_TEMP_PATH)
    return -1;
  for (int i = 0; i < MAX_TEMPS; ++i) {
    int expected = 0;
    if (g_temp_state[i].compare_exchange_strong(expected, 1)) {
      std::memcpy(g_temp_paths[i], tmp.c_str(), tmp.size() + 1);
      g_temp_state[i].store(2);
      return i;
    }
  }
  return -1;
}

void unregister_temp(int slot) {
  if (slot >= 0)
    g_temp_state[slot].store(0);
}

}  // namespace

void register_input(const std::string& path) {
  FileId id{};
  if (path.empty() || !file_id(path, id))
    return;  // the reader reports a missing file itself
  FileRegistry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (!r.enabled)
    return;
  for (const auto& out : r.outputs)
    refuse_if_same(out, path);
  r.inputs.push_back(path);
}

void plan_outputs(const std::vector<std::string>& outputs, const std::vector<std::string>& inputs) {
  for (const auto& in : inputs)
    register_input(in);
  std::vector<std::string> seen;  // normalised names: outputs need not exist yet
  for (const auto& out : outputs) {
    if (out.empty())
      continue;
    std::error_code ec;
    std::string norm = fs::weakly_canonical(fs::absolute(out, ec), ec).string();
    if (norm.empty())
      norm = out;
    if (std::find(seen.begin(), seen.end(), norm) != seen.end())
      fail(out, ": this run would write the file twice (an output name equals another output or "
                "a derived sidecar/PNG name); choose distinct output names");
    seen.push_back(norm);
    for (const auto& in : inputs)
      refuse_if_same(out, in);
  }
  FileRegistry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (!r.enabled)
    return;
  for (const auto& out : outputs) {
    if (out.empty())
      continue;
    for (const auto& in : r.inputs)
      refuse_if_same(out, in);
    r.outputs.push_back(out);
  }
}

void enable_file_registry(bool on) {
  FileRegistry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.enabled = on;
  r.inputs.clear();
  r.outputs.clear();
}

void write_atomically(const std::string& path,
                      const std::function<void(const std::string& tmp_path)>& writer,
                      const std::vector<std::string>& inputs) {
  if (path.empty())
    fail("output path is empty");
  std::error_code ec;
  for (const auto& in : inputs)
    refuse_if_same(path, in);
  {
    FileRegistry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    for (const auto& in : r.inputs)
      refuse_if_same(path, in);
  }
  fs::path target(path);
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec))
    fail(path, ": output folder '", dir.string(), "' does not exist; create it first");
  // Unique per process and per call: two processes (or threads) writing one output never share
  // a temporary file, and the last rename wins with a complete file.
  static std::atomic<unsigned> counter{0};
  std::string tmp = (dir / ("." + target.filename().string() + ".tmp" +
                            std::to_string(::getpid()) + "." +
                            std::to_string(counter.fetch_add(1)))).string();
  const int slot = register_temp(tmp);
  try {
    writer(tmp);
  } catch (...) {
    fs::remove(tmp, ec);
    unregister_temp(slot);
    throw;
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    unregister_temp(slot);
    fail(path, ": cannot write output (", ec.message(), ")");
  }
  unregister_temp(slot);
}

void write_text_file(const std::string& path, const std::string& content,
                     const std::vector<std::string>& inputs) {
  write_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    if (!out)
      fail(path, ": cannot open for writing");
    out << content;
    out.close();
    if (!out)
      fail(path, ": write failed (disk full?)");
  }, inputs);
}

std::string sidecar_path(const std::string& output_path) {
  fs::path p(output_path);
  p.replace_extension(".json");
  if (p.string() == output_path)
    return output_path + ".sidecar.json";
  return p.string();
}

std::string file_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  if (!ext.empty() && ext[0] == '.')
    ext = ext.substr(1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return ext;
}

void require_readable(const std::string& path, const std::string& what) {
  register_input(path);
  std::error_code ec;
  if (!fs::exists(path, ec))
    fail(what, ": file not found: ", path);
  if (fs::is_directory(path, ec))
    fail(what, ": ", path, " is a folder, expected a file");
  std::ifstream in(path);
  if (!in)
    fail(what, ": cannot read ", path, " (permissions?)");
}

}  // namespace epitem
