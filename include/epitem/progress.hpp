// Progress reporting from long library loops without printing: the caller (CLI) passes a
// callback; the library calls it with the work done so far.
#pragma once
#include <cstddef>
#include <functional>
#include <string>

namespace epitem {

/// Called with (done, total, stage label). May be empty.
using ProgressFn = std::function<void(std::size_t done, std::size_t total, const std::string& stage)>;

/// Warnings the library wants a person to see (sampling too coarse, strain...). May be empty;
/// the CLI prints them on stderr as "warning: ...".
using WarnFn = std::function<void(const std::string& message)>;

/// Number of worker threads for FFTW and our own loops: $EPITEM_THREADS, else hardware
/// concurrency. Tests pin it to 1 (tests/CMakeLists.txt).
int default_thread_count();

}  // namespace epitem
