#include "epitem/output.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "epitem/error.hpp"

namespace fs = std::filesystem;

namespace epitem {

void write_atomically(const std::string& path,
                      const std::function<void(const std::string& tmp_path)>& writer,
                      const std::vector<std::string>& inputs) {
  if (path.empty())
    fail("output path is empty");
  std::error_code ec;
  for (const auto& in : inputs)
    if (fs::exists(in, ec) && fs::exists(path, ec) && fs::equivalent(in, path, ec))
      fail(path, ": refusing to overwrite an input file; choose another output name");
  fs::path target(path);
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec))
    fail(path, ": output folder '", dir.string(), "' does not exist; create it first");
  std::string tmp = (dir / ("." + target.filename().string() + ".tmp" +
                            std::to_string(::getpid()))).string();
  try {
    writer(tmp);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    fail(path, ": cannot write output (", ec.message(), ")");
  }
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
