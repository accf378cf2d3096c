// Error type and fail() helper: library code throws, never prints or exits (STYLE.md §5).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace epitem {

/// Error in the user's input (bad file, impossible parameter). The CLI maps it to exit code 1.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Throws Error with the arguments concatenated: fail("slice_thickness_A must be > 0, got ", dz).
template <class... Args>
[[noreturn]] void fail(Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw Error(os.str());
}

}  // namespace epitem
