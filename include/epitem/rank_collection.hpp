// Gathering the results of work split over MPI ranks on rank 0, shared by the commands that
// split frozen-phonon configurations or pages (hrtem, multislice, saed; docs/mpi.md).
#pragma once
#include <functional>

#include "epitem/image.hpp"
#include "epitem/multislice.hpp"
#include "epitem/parallel.hpp"

namespace epitem {

/// An image (size, pixel sizes, pixels) into / out of one message.
void put_image(parallel::ByteWriter& w, const Image& image);
Image get_image(parallel::ByteReader& r);

/// Rank 0 receives every configuration in configuration order (its band-limit loss, then what
/// `pack` wrote on the rank that ran it, handed to `unpack`), and the report's counts are
/// combined over the ranks, so the report reads as that of one process.
void collect_configurations(MultisliceReport& report, const std::function<void(int, parallel::ByteWriter&)>& pack,
                            const std::function<void(int, parallel::ByteReader&)>& unpack);

}  // namespace epitem
