// What this epitem build is: its version, the git commit it was configured from, and the
// versions of the libraries it runs on (recorded in every sidecar and printed by `epitem -V`).
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace epitem {

/// "0.1.0" (the CMake project version).
std::string version();
/// `git describe --always --dirty --tags` at configure time; "unknown" outside a git checkout.
std::string git_commit();
/// (library, version) pairs: FFTW, libtiff, gemmi, OpenCV, HDF5, Eigen, Boost.
std::vector<std::pair<std::string, std::string>> library_versions();

}  // namespace epitem
