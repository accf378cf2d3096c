// Safe output files: write to a temporary name beside the target and rename, so an error
// never leaves half a file and an input is never overwritten.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace epitem {

/// Calls writer(tmp_path) and renames tmp_path → path on success; removes tmp on failure.
/// Throws Error if path is one of `inputs` (never overwrite an input) or the folder is missing.
void write_atomically(const std::string& path,
                      const std::function<void(const std::string& tmp_path)>& writer,
                      const std::vector<std::string>& inputs = {});

/// Writes text content atomically.
void write_text_file(const std::string& path, const std::string& content,
                     const std::vector<std::string>& inputs = {});

/// The JSON sidecar beside an output: "run/image.tif" → "run/image.json".
std::string sidecar_path(const std::string& output_path);

/// Lower-case extension without the dot ("tif"), "" if none.
std::string file_extension(const std::string& path);

/// Throws Error("<what>: file not found: <path>") unless the path exists and is readable.
void require_readable(const std::string& path, const std::string& what);

}  // namespace epitem
