// Safe output files: write to a temporary name beside the target and rename, so an error
// never leaves half a file and an input is never overwritten.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace epitem {

/// Calls writer(tmp_path) and renames tmp_path → path on success; removes tmp on failure.
/// Throws Error if path is the same file as one of `inputs` or any registered input (never
/// overwrite an input) or the folder is missing. The temporary name is unique per process and
/// call; SIGINT/SIGTERM/SIGHUP during the write remove it (no partial or stray file is left),
/// and rename() makes the target appear complete or not at all, even with two writers.
void write_atomically(const std::string& path,
                      const std::function<void(const std::string& tmp_path)>& writer,
                      const std::vector<std::string>& inputs = {});

// Inputs and planned outputs of this process (one registry, so that derived files — sidecars,
// PNG previews, summaries — are checked like the main output). Files are compared as files
// (device and inode), so "./a.xyz", "a.xyz" and a hard or symbolic link are the same file.

/// Records `path` as an input (readers call it when they open a file). Throws Error when it is
/// the same file as a planned output: a command that plans its outputs first thus refuses
/// before any work is done.
void register_input(const std::string& path);

/// Records the files a command will write (derived ones included) and throws Error naming the
/// first one that is the same file as a registered input or as one of `inputs`, or that is
/// listed twice. Call before the expensive part of a command.
void plan_outputs(const std::vector<std::string>& outputs,
                  const std::vector<std::string>& inputs = {});

/// Turns the registry on (the CLI does, for one command per process) or off and forgets what
/// it holds. Off by default: a library user or a test that writes, reads and rewrites one file
/// is not refused.
void enable_file_registry(bool on);

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
