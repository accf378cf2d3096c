// Robustness (issue 16): inputs are never overwritten (compared as files), temporary files are
// unique and never left behind, declared counts are checked before they size anything, and
// absurd requests are refused with the estimate.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "epitem/error.hpp"
#include "epitem/image_file.hpp"
#include "epitem/limits.hpp"
#include "epitem/output.hpp"
#include "epitem/structure_io.hpp"
#include "testing.hpp"

using namespace epitem;
namespace fs = std::filesystem;

namespace {

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string read(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

/// Turns the registry on for one test and off again (it is off for library users).
struct RegistryOn {
  RegistryOn() { enable_file_registry(true); }
  ~RegistryOn() { enable_file_registry(false); }
};

}  // namespace

TEST_CASE("an input is never overwritten, through any name of the same file", "[robust]") {
  testing::TempDir dir("robust_inputs");
  const std::string in = dir.file("in.cif"), hard = dir.file("hard.csv"), soft = dir.file("soft.csv");
  write(in, "original");
  fs::create_hard_link(in, hard);
  fs::create_symlink(in, soft);
  RegistryOn on;
  register_input(in);
  for (const std::string& out : {in, hard, soft, dir.path.string() + "/./in.cif"}) {
    CHECK(error_of([&] { write_text_file(out, "clobbered"); }).find(" is the input ") != std::string::npos);
    CHECK(error_of([&] { plan_outputs({out}); }).find(" is the input ") != std::string::npos);
  }
  CHECK(read(in) == "original");
  // A different file is written normally.
  write_text_file(dir.file("out.csv"), "fine");
  CHECK(read(dir.file("out.csv")) == "fine");
}

TEST_CASE("an output planned first refuses the input opened later, before any work", "[robust]") {
  testing::TempDir dir("robust_plan");
  const std::string in = dir.file("model.json");
  write(in, "original");
  RegistryOn on;
  plan_outputs({dir.file("model.csv"), in});
  CHECK(error_of([&] { register_input(in); }).find(" is the input ") != std::string::npos);
  CHECK(error_of([&] { plan_outputs({dir.file("a.tif"), dir.file("./a.tif")}); }).find("twice") != std::string::npos);
}

TEST_CASE("the registry is off for library users: write, read and rewrite one file", "[robust]") {
  testing::TempDir dir("robust_off");
  const std::string f = dir.file("a.txt");
  write_text_file(f, "one");
  register_input(f);
  write_text_file(f, "two");
  CHECK(read(f) == "two");
  // An explicit input list is still honoured.
  CHECK(error_of([&] { write_text_file(f, "three", {f}); }).find(" is the input ") != std::string::npos);
}

TEST_CASE("a failed writer leaves neither the target nor a temporary file", "[robust]") {
  testing::TempDir dir("robust_tmp");
  const std::string target = dir.file("out.csv");
  std::string tmp_seen;
  CHECK_THROWS_AS(write_atomically(target, [&](const std::string& tmp) {
                    tmp_seen = tmp;
                    write(tmp, "half");
                    fail("disk full");
                  }),
                  Error);
  CHECK_FALSE(fs::exists(target));
  CHECK_FALSE(fs::exists(tmp_seen));
  CHECK(tmp_seen.find(std::to_string(::getpid())) != std::string::npos);  // unique per process
  std::string first, second;  // and per call
  write_atomically(target, [&](const std::string& tmp) { first = tmp; write(tmp, "1"); });
  write_atomically(target, [&](const std::string& tmp) { second = tmp; write(tmp, "2"); });
  CHECK(first != second);
  CHECK(read(target) == "2");
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
}

TEST_CASE("extxyz: declared column and atom counts are checked before they index or size anything", "[robust]") {
  testing::TempDir dir("robust_xyz");
  const std::string lattice = "Lattice=\"5 0 0 0 5 0 0 0 5\"";
  struct Case { const char* what; std::string text; const char* message; };
  const Case cases[] = {
      {"count past int wraps the offsets", "2\n" + lattice + " Properties=species:S:1:pos:R:3:foo:R:2147483640:bar:R:100\nFe 0 0 0 1\nFe 1 1 1 1\n", "Properties column count"},
      {"huge first column", "2\n" + lattice + " Properties=foo:R:2147483647:species:S:1:pos:R:3\nFe 0 0 0 1\nFe 1 1 1 1\n", "Properties column count"},
      {"fractional count", "1\n" + lattice + " Properties=species:S:1:pos:R:2.5\nFe 0 0 0\n", "whole number"},
      {"total over the limit", "1\n" + lattice + " Properties=species:S:1:pos:R:3:a:R:6000:b:R:6000\nFe 0 0 0\n", "columns in all"},
      {"atom count beyond the file", "1e300\n" + lattice + "\nFe 0 0 0\n", "more than any file"},
      {"atom count beyond this file", "1000000\n" + lattice + "\nFe 0 0 0\n", "file ends after 1 of 1000000"},
      {"more columns than a line holds", "1\n" + lattice + " Properties=species:S:1:pos:R:3:extra:R:5\nFe 0 0 0\n", "expected 9 columns"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const std::string path = dir.file("bad.xyz");
    write(path, c.text);
    CHECK(error_of([&] { read_extxyz(path); }).find(c.message) != std::string::npos);
  }
}

TEST_CASE("work and memory limits refuse with the estimate and the fix", "[robust]") {
  const std::string work = error_of([] { require_work("a search", 1e20, "steps", "raise --dmin"); });
  CHECK(work.find("a search needs about 1e+20 steps") != std::string::npos);
  CHECK(work.find("raise --dmin") != std::string::npos);
  CHECK(error_of([] { require_work("x", 1e6, "steps", "fix"); }).empty());
  CHECK_FALSE(error_of([] { require_work("x", NAN, "steps", "fix"); }).empty());
  const std::string memory = error_of([] { require_memory("a frame", 1e18, "crop it"); });
  CHECK(memory.find("GiB") != std::string::npos);
  CHECK(memory.find("crop it") != std::string::npos);
  // A header that declares more than memory is refused even when the file could hold it.
  CHECK(error_of([] { require_declared_size("f.tif", 3e5, 3e5, 1, 1, 1e12); }).find("GiB") != std::string::npos);
}
