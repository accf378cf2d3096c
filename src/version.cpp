#include "epitem/version.hpp"

#include <fftw3.h>
#include <hdf5.h>
#include <tiffio.h>

#include <Eigen/Core>
#include <boost/version.hpp>
#include <gemmi/version.hpp>
#include <opencv2/core/version.hpp>

#include "epitem/parallel.hpp"

#ifndef EPITEM_VERSION
#define EPITEM_VERSION "unknown"
#endif
#ifndef EPITEM_GIT_COMMIT
#define EPITEM_GIT_COMMIT "unknown"
#endif

namespace epitem {

std::string version() { return EPITEM_VERSION; }

std::string git_commit() {
  const std::string commit = EPITEM_GIT_COMMIT;
  return commit.empty() ? "unknown" : commit;
}

namespace {
#define EPITEM_STR2(x) #x
#define EPITEM_STR(x) EPITEM_STR2(x)

// TIFFGetVersion() is "LIBTIFF, Version 4.5.0\nCopyright …": keep the number.
std::string libtiff_version() {
  std::string s = TIFFGetVersion();
  s = s.substr(0, s.find('\n'));
  const auto pos = s.find("Version ");
  return pos == std::string::npos ? s : s.substr(pos + 8);
}

// fftwf_version is "fftw-3.3.10-sse2-avx": keep what follows "fftw-".
std::string fftw_version() {
  std::string s = fftwf_version;
  return s.rfind("fftw-", 0) == 0 ? s.substr(5) : s;
}

std::string hdf5_version() {
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release);
}
}  // namespace

std::vector<std::pair<std::string, std::string>> library_versions() {
  return {{"fftw", fftw_version()},
          {"libtiff", libtiff_version()},
          {"gemmi", GEMMI_VERSION},
          {"opencv", CV_VERSION},
          {"hdf5", hdf5_version()},
          {"eigen", EPITEM_STR(EIGEN_WORLD_VERSION) "." EPITEM_STR(EIGEN_MAJOR_VERSION) "." EPITEM_STR(
                        EIGEN_MINOR_VERSION)},
          {"boost", std::to_string(BOOST_VERSION / 100000) + "." +
                        std::to_string(BOOST_VERSION / 100 % 1000) + "." +
                        std::to_string(BOOST_VERSION % 100)},
          {"mpi", parallel::library_version()}};
}

}  // namespace epitem
