#pragma once
// Work split over MPI ranks (`mpirun -n N epitem ...`, docs/mpi.md). Without MPI in the build,
// or when the binary is not started by mpirun, there is one rank and every call is a no-op.
// Only the main thread calls these functions (MPI_THREAD_FUNNELED).
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "epitem/json.hpp"

namespace epitem::parallel {

bool built_with_mpi();  ///< EPITEM_MPI build
std::string library_version();  ///< "Open MPI v4.1.4 …" (first line), or "none" without MPI
/// Commands that split work call this first, before parsing: under mpirun it starts MPI, and
/// from then on an error on any rank stops all ranks (report_failure). rank() and size() call it.
void start();
int rank();             ///< 0 … size()-1; MPI starts on the first call under mpirun
int size();
bool is_root();         ///< rank 0: the rank that writes outputs and prints messages
void barrier();

/// Item `index` of a split loop is computed by rank index % size().
bool owns(int index);

/// Runs body on every rank. If it throws on any rank, it throws epitem::Error on every rank with
/// the message of the lowest failing rank, so all ranks stop together and rank 0 prints it once.
void collective(const std::function<void()>& body);

/// Rank 0 receives items 0 … n_items-1 in index order: item i is made by make(i) on rank
/// owns(i) and handed to use(i, bytes) on rank 0 (so sums over items run in the same order as
/// in one process). Only one item is in flight at a time.
void collect_in_order(int n_items, const std::function<std::vector<char>(int)>& make,
                      const std::function<void(int, const std::vector<char>&)>& use);

/// Items 0 … n_items-1 in contiguous blocks, one per rank in rank order, sizes differing by at
/// most one (a rank's frames then overlap its neighbour's by at most one); rank 0's block holds
/// item 0 (with fewer items than ranks the last ranks get none): the rank of item `index`, and
/// this rank's block [first, last).
int block_owner(int index, int n_items);
struct Block {
  int first = 0, last = 0;
};
Block my_block(int n_items);

/// As above, but item i is made on rank owner(i) (e.g. block_owner); every rank makes its items
/// before the collection starts, else the ranks wait for each other in turn.
void collect_in_order(int n_items, const std::function<int(int)>& owner,
                      const std::function<std::vector<char>(int)>& make,
                      const std::function<void(int, const std::vector<char>&)>& use);

/// Rank 0's `bytes` on every rank (collective: every rank calls it).
void broadcast(std::vector<char>& bytes);

/// A check point: throws as collective() does if another rank has failed since the last one.
void check_point();

/// For the CLI's error handler, on the rank that caught `message`: an error that did not come out
/// of collective() is announced to the other ranks, which stop at their next collective() or
/// check_point(). Returns true on the one rank that should print the message (rank 0).
bool report_failure(const std::string& message);

long long sum(long long value);  ///< over all ranks (exact integers)
double max(double value);        ///< over all ranks
/// Every rank's value, on every rank (index = rank).
std::vector<double> all_values(double value);

double communication_seconds();

/// Sidecar record of a split run (collective: every rank calls it): ranks, each rank's work and
/// communication seconds [s].
Json run_json(double work_seconds);

/// Packs plain values into the bytes of one message (same machine type on every rank).
struct ByteWriter {
  std::vector<char> bytes;
  template <class T>
  ByteWriter& put(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    const std::size_t at = bytes.size();
    bytes.resize(at + sizeof(T));
    std::memcpy(bytes.data() + at, &value, sizeof(T));
    return *this;
  }
  /// A vector of plain values, its length first.
  template <class T>
  void put_values(const std::vector<T>& values) {
    static_assert(std::is_trivially_copyable_v<T>);
    put(std::uint64_t(values.size()));
    const char* p = reinterpret_cast<const char*>(values.data());
    bytes.insert(bytes.end(), p, p + values.size() * sizeof(T));
  }
};

/// Reads back what ByteWriter packed, in the same order.
struct ByteReader {
  const std::vector<char>& bytes;
  std::size_t pos = 0;
  explicit ByteReader(const std::vector<char>& b) : bytes(b) {}
  template <class T>
  T get() {
    T value;
    std::memcpy(&value, take(sizeof(T)), sizeof(T));
    return value;
  }
  template <class T>
  void get_values(std::vector<T>& values) {
    values.resize(std::size_t(get<std::uint64_t>()));
    std::memcpy(values.data(), take(values.size() * sizeof(T)), values.size() * sizeof(T));
  }

private:
  const char* take(std::size_t n);  ///< throws Error past the end
};  ///< time this rank spent in the calls above (waiting included)

}  // namespace epitem::parallel
