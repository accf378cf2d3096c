// Shared test helpers: paths to the source tree and ../shared, temporary folders.
#pragma once
#include <catch2/catch.hpp>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace epitem::testing {

inline std::string source_path(const std::string& rel) { return std::string(EPITEM_SOURCE_DIR) + "/" + rel; }
inline std::string shared_path(const std::string& rel) { return std::string(EPITEM_SHARED_DIR) + "/" + rel; }

/// A fresh empty folder under the system temp dir, removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag) {
    path = std::filesystem::temp_directory_path() /
           ("epitem_test_" + tag + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::error_code ec; std::filesystem::remove_all(path, ec); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace epitem::testing
