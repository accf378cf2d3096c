// Mutation fuzzer for every file reader (CIF, extxyz, POSCAR, LAMMPS data, TIFF, DM3/DM4, TIA SER/EMI, EMD,
// MRC, PNG/JPEG). A reader's contract: a valid read or one epitem::Error — never a crash, a
// hang, another exception or an allocation of what a damaged header declares. Deterministic
// (seeded), so a failure found in CI reproduces anywhere; under the sanitizer build
// (-DEPITEM_SANITIZE=ON) AddressSanitizer/UBSan also catch bad reads that happen not to crash.
//
//   epitem_fuzz smoke READER CORPUS_DIR REGRESSION_DIR [--mutations N] [--seed S] [--seconds T]
//   epitem_fuzz run READER FILE...        (one file at a time: reproduce a finding)
//   epitem_fuzz readers                   (list the reader names)
//
// smoke first reads every file in REGRESSION_DIR/READER (past findings), then N mutants of
// the seeds in CORPUS_DIR/READER. A mutant is written to <tmp>/fuzz-current.<ext> before it is
// read, so after a crash that file is the reproducer: copy it into tests/fuzz/regressions/.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "epitem/error.hpp"
#include "epitem/image_file.hpp"
#include "epitem/lammps_io.hpp"
#include "epitem/structure_io.hpp"

namespace fs = std::filesystem;
using Bytes = std::vector<unsigned char>;

namespace {

struct Reader {
  std::string extension;                      ///< a mutant's file name ends so (readers look at it)
  std::function<void(const std::string&)> read;
};

/// Opens an image file and reads (up to 4 of) its frames in every complex part.
void read_image(const std::string& path) {
  auto file = epitem::open_image_file(path);
  const std::size_t n = std::min<std::size_t>(file->frame_count(), 4);
  for (std::size_t i = 0; i < n; ++i)
    file->frame(i);
  if (n > 0) {
    file->frame(0, epitem::ComplexPart::Real);
    file->frame(n - 1, epitem::ComplexPart::Imaginary);
  }
}

const std::map<std::string, Reader>& readers() {
  static const std::map<std::string, Reader> table = {
      {"cif", {"cif", [](const std::string& p) { epitem::read_cif(p); }}},
      {"extxyz", {"xyz", [](const std::string& p) { epitem::read_extxyz(p); }}},
      {"poscar", {"vasp", [](const std::string& p) { epitem::read_poscar(p); }}},
      {"lammps", {"lmp", [](const std::string& p) { epitem::read_lammps_data(p); }}},
      {"tiff", {"tif", read_image}},
      {"dm3", {"dm3", read_image}},
      {"dm4", {"dm4", read_image}},
      {"ser", {"ser", read_image}},
      {"emd", {"emd", read_image}},
      {"mrc", {"mrc", read_image}},
      {"png", {"png", read_image}},
      {"jpeg", {"jpg", read_image}},
  };
  return table;
}

Bytes load(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void save(const std::string& path, const Bytes& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

std::string g_current;  // the input being read, named by the crash message

extern "C" void report_crash() {
  const char msg1[] = "\nepitem_fuzz: the reader crashed on ";
  const char msg2[] = "\n  reproduce: epitem_fuzz run READER FILE; keep it as a regression: copy it into "
                      "tests/fuzz/regressions/READER/\n";
  ssize_t ignored = ::write(2, msg1, sizeof msg1 - 1);
  ignored = ::write(2, g_current.c_str(), g_current.size());
  ignored = ::write(2, msg2, sizeof msg2 - 1);
  (void)ignored;
}

extern "C" void on_fatal_signal(int sig) {
  report_crash();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

// AddressSanitizer calls this before it aborts (weak: absent in builds without it).
extern "C" void __sanitizer_set_death_callback(void (*)(void)) __attribute__((weak));

namespace {

/// Outcome of reading one file: "ok", "refused" (epitem::Error) or a failure description.
std::string read_one(const Reader& reader, const std::string& path) {
  g_current = path;
  try {
    reader.read(path);
    return "ok";
  } catch (const epitem::Error&) {
    return "refused";
  } catch (const std::bad_alloc&) {
    return "failure: std::bad_alloc (a declared size was allocated before it was checked)";
  } catch (const std::exception& e) {
    return std::string("failure: exception other than epitem::Error: ") + e.what();
  } catch (...) {
    return "failure: unknown exception";
  }
}

// Values that break size and offset arithmetic.
const std::uint64_t INTERESTING[] = {0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff,
                                     0x80000000u, 0xffffffffu, 0x7fffffffffffffffull,
                                     0xffffffffffffffffull};
const char* const INTERESTING_TEXT[] = {"0", "-1", "1e308", "-1e308", "nan", "inf", "1e9",
                                        "2147483648", "99999999999", "''", "?", ".", "1e-300",
                                        "\"", "loop_", "_cell_length_a", "Properties=", "=", ":"};

/// One random change: flip, set, overwrite with an extreme integer, insert, delete, duplicate,
/// truncate, splice a number or keyword (text formats).
void mutate_once(Bytes& b, std::mt19937_64& rng) {
  auto pick = [&](std::size_t n) { return n ? std::size_t(rng() % n) : 0; };
  switch (rng() % 9) {
    case 0:  // bit flip
      if (!b.empty())
        b[pick(b.size())] ^= static_cast<unsigned char>(1u << (rng() % 8));
      break;
    case 1:  // random byte
      if (!b.empty())
        b[pick(b.size())] = static_cast<unsigned char>(rng());
      break;
    case 2: {  // extreme integer, 1/2/4/8 bytes, either byte order
      if (b.empty())
        break;
      const std::size_t width = std::size_t(1) << (rng() % 4);
      const std::uint64_t v = INTERESTING[pick(std::size(INTERESTING))];
      const bool big = rng() % 2;
      const std::size_t at = pick(b.size());
      for (std::size_t k = 0; k < width && at + k < b.size(); ++k)
        b[at + k] = static_cast<unsigned char>(v >> (8 * (big ? width - 1 - k : k)));
      break;
    }
    case 3: {  // insert random bytes
      const std::size_t n = 1 + pick(16);
      Bytes ins(n);
      for (auto& c : ins)
        c = static_cast<unsigned char>(rng());
      b.insert(b.begin() + long(pick(b.size() + 1)), ins.begin(), ins.end());
      break;
    }
    case 4: {  // delete a run
      if (b.empty())
        break;
      const std::size_t at = pick(b.size());
      const std::size_t n = std::min(b.size() - at, 1 + pick(32));
      b.erase(b.begin() + long(at), b.begin() + long(at + n));
      break;
    }
    case 5: {  // duplicate a run
      if (b.empty())
        break;
      const std::size_t at = pick(b.size());
      const std::size_t n = std::min(b.size() - at, 1 + pick(64));
      Bytes run(b.begin() + long(at), b.begin() + long(at + n));
      b.insert(b.begin() + long(pick(b.size() + 1)), run.begin(), run.end());
      break;
    }
    case 6:  // truncate
      if (!b.empty())
        b.resize(pick(b.size()));
      break;
    default: {  // text: replace a token (run of non-space) by an extreme value or keyword
      if (b.empty())
        break;
      std::size_t at = pick(b.size());
      while (at > 0 && !std::isspace(b[at - 1]))
        --at;
      std::size_t end = at;
      while (end < b.size() && !std::isspace(b[end]))
        ++end;
      const std::string t = INTERESTING_TEXT[pick(std::size(INTERESTING_TEXT))];
      b.erase(b.begin() + long(at), b.begin() + long(end));
      b.insert(b.begin() + long(at), t.begin(), t.end());
      break;
    }
  }
}

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (fs::is_directory(dir, ec))
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.is_regular_file() && e.path().filename().string()[0] != '.')
        out.push_back(e.path());
  std::sort(out.begin(), out.end());  // deterministic order
  return out;
}

int usage() {
  std::cerr << "usage: epitem_fuzz smoke READER CORPUS_DIR REGRESSION_DIR [--mutations N] [--seed S] "
               "[--seconds T]\n       epitem_fuzz run READER FILE...\n       epitem_fuzz readers\n";
  return 2;
}

int smoke(const std::string& name, const Reader& reader, const fs::path& corpus,
          const fs::path& regressions, long mutations, std::uint64_t seed, double seconds) {
  long failures = 0, ok = 0, refused = 0;
  auto tally = [&](const std::string& outcome, const std::string& what) {
    if (outcome == "ok")
      ++ok;
    else if (outcome == "refused")
      ++refused;
    else {
      ++failures;
      std::cerr << name << ": " << what << ": " << outcome << "\n";
    }
  };
  for (const auto& f : files_in(regressions / name))
    tally(read_one(reader, f.string()), f.string());
  const auto seeds = files_in(corpus / name);
  if (seeds.empty()) {
    std::cerr << name << ": no seed files in " << (corpus / name) << "\n";
    return 1;
  }
  std::vector<Bytes> seed_bytes;
  for (const auto& s : seeds) {
    seed_bytes.push_back(load(s));
    tally(read_one(reader, s.string()), s.string());
  }
  const std::string tmp = (fs::temp_directory_path() /
                           ("epitem-fuzz-" + std::to_string(::getpid()) + "-" + name + "." +
                            reader.extension)).string();
  std::mt19937_64 rng(seed);
  const auto start = std::chrono::steady_clock::now();
  long done = 0;
  for (; done < mutations; ++done) {
    if (seconds > 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > seconds)
      break;
    Bytes b = seed_bytes[rng() % seed_bytes.size()];
    const int n = 1 + int(rng() % 4);
    for (int k = 0; k < n; ++k)
      mutate_once(b, rng);
    save(tmp, b);
    const std::string outcome = read_one(reader, tmp);
    if (outcome != "ok" && outcome != "refused") {
      const std::string keep = tmp + ".failure" + std::to_string(failures);
      fs::copy_file(tmp, keep, fs::copy_options::overwrite_existing);
      tally(outcome, "mutant " + std::to_string(done) + " (kept as " + keep + ")");
    } else {
      tally(outcome, "");
    }
  }
  std::error_code ec;
  fs::remove(tmp, ec);
  std::cout << name << ": " << seeds.size() << " seeds, " << done << " mutants (seed " << seed
            << "): " << ok << " read, " << refused << " refused with an Error, " << failures
            << " failures\n";
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (__sanitizer_set_death_callback)
    __sanitizer_set_death_callback(report_crash);
  else
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT})
      ::signal(sig, on_fatal_signal);
  if (argc < 2)
    return usage();
  const std::string mode = argv[1];
  if (mode == "readers") {
    for (const auto& [name, r] : readers())
      std::cout << name << "\n";
    return 0;
  }
  if (argc < 3 || !readers().count(argv[2]))
    return usage();
  const std::string name = argv[2];
  const Reader& reader = readers().at(name);
  if (mode == "run") {
    int failures = 0;
    for (int i = 3; i < argc; ++i) {
      const std::string outcome = read_one(reader, argv[i]);
      std::cout << argv[i] << ": " << outcome << "\n";
      failures += outcome != "ok" && outcome != "refused";
    }
    return failures ? 1 : 0;
  }
  if (mode != "smoke" || argc < 5)
    return usage();
  long mutations = 2000;
  std::uint64_t seed = 1;
  double seconds = 0;
  for (int i = 5; i + 1 < argc; i += 2) {
    const std::string opt = argv[i];
    if (opt == "--mutations")
      mutations = std::atol(argv[i + 1]);
    else if (opt == "--seed")
      seed = std::strtoull(argv[i + 1], nullptr, 10);
    else if (opt == "--seconds")
      seconds = std::atof(argv[i + 1]);
    else
      return usage();
  }
  return smoke(name, reader, argv[3], argv[4], mutations, seed, seconds);
}
