// MPI layer of include/epitem/parallel.hpp. EPITEM_MPI builds call MPI only when the process was
// started by mpirun (its environment says so); a plain `epitem ...` never initialises MPI.
#include "epitem/parallel.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <thread>

#include "epitem/error.hpp"

#ifdef EPITEM_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only (the C++ bindings warn)
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace epitem::parallel {
namespace {

double comm_seconds = 0;
#ifdef EPITEM_MPI
bool failure_agreed = false;  // the exception in flight came out of collective(): all ranks know it
bool mpi_started = false;
constexpr long long kChunk = 1LL << 30;
#endif

#ifdef EPITEM_MPI
bool launched_by_mpirun() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(var))
      return true;
  return false;
}

struct World {
  bool active = false;
  int rank = 0, size = 1;
};

void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized)
    MPI_Finalize();
}

const World& world() {
  static const World w = [] {
    World r;
    if (!launched_by_mpirun())
      return r;
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      std::atexit(finalize_at_exit);
    }
    mpi_started = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &r.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &r.size);
    r.active = r.size > 1;
    return r;
  }();
  return w;
}

// Adds the time of one communication call to comm_seconds.
struct CommTimer {
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  ~CommTimer() { comm_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
};
#endif

}  // namespace

#ifdef EPITEM_MPI
void start() { world(); }
bool built_with_mpi() { return true; }
std::string library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(text, &length);  // allowed before MPI_Init
  std::string v(text, std::size_t(length));
  return v.substr(0, std::min(v.find_first_of(",\n"), v.size()));
}
int rank() { return world().rank; }
int size() { return world().size; }
void barrier() {
  if (!world().active)
    return;
  CommTimer t;
  // Poll with sleeps instead of MPI_Barrier's busy wait: a waiting rank leaves its core free.
  MPI_Request request;
  MPI_Ibarrier(MPI_COMM_WORLD, &request);
  for (int done = 0;;) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}
#else
void start() {}
bool built_with_mpi() { return false; }
std::string library_version() { return "none"; }
int rank() { return 0; }
int size() { return 1; }
void barrier() {}
#endif

bool is_root() { return rank() == 0; }
bool owns(int index) { return index % size() == rank(); }
double communication_seconds() { return comm_seconds; }

#ifdef EPITEM_MPI
namespace {
// All ranks meet here: returns the lowest failing rank (size() if none), whose message every rank
// then holds in `message`.
int agree(bool failed, std::string& message) {
  CommTimer t;
  int mine = failed ? rank() : size(), first = size();
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (first == size())
    return first;
  int length = int(message.size());
  MPI_Bcast(&length, 1, MPI_INT, first, MPI_COMM_WORLD);
  message.resize(std::size_t(length));
  MPI_Bcast(message.data(), length, MPI_CHAR, first, MPI_COMM_WORLD);
  return first;
}
}  // namespace
#endif

void collective(const std::function<void()>& body) {
  std::exception_ptr failure;
  std::string message;
  try {
    body();
  } catch (const std::exception& e) {
    failure = std::current_exception();
    message = e.what();
  }
#ifdef EPITEM_MPI
  if (world().active) {
    const int first = agree(bool(failure), message);
    if (first == size())
      return;
    failure_agreed = true;
    if (rank() == first)
      std::rethrow_exception(failure);  // keeps its type (usage error, input error, out of memory)
    if (rank() == 0)  // rank 0 prints the message: say where it happened
      throw Error("rank " + std::to_string(first) + " of " + std::to_string(size()) + ": " + message);
    throw Error(message);
  }
#endif
  if (failure)
    std::rethrow_exception(failure);
}

void check_point() { collective([] {}); }

bool report_failure(const std::string& message) {
#ifdef EPITEM_MPI
  if (mpi_started && world().active && !failure_agreed) {
    std::string m = message;
    agree(true, m);
  }
#endif
  (void)message;
  return is_root();
}

namespace {
// First item of rank r's block: ceil(n·r/N), so rank 0 holds item 0 even when n < N.
int block_start(int r, int n_items) { return int(((long long)n_items * r + size() - 1) / size()); }
}  // namespace

int block_owner(int index, int n_items) {
  int r = 0;
  while (r + 1 < size() && block_start(r + 1, n_items) <= index)
    ++r;
  return r;
}

Block my_block(int n_items) { return {block_start(rank(), n_items), block_start(rank() + 1, n_items)}; }

void broadcast(std::vector<char>& bytes) {
#ifdef EPITEM_MPI
  if (world().active) {
    CommTimer t;
    long long n = (long long)bytes.size();
    // The other ranks usually wait here while rank 0 works: poll with sleeps, as barrier() does.
    MPI_Request request;
    MPI_Ibcast(&n, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD, &request);
    for (int done = 0;;) {
      MPI_Test(&request, &done, MPI_STATUS_IGNORE);
      if (done)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    bytes.resize(std::size_t(n));
    for (long long off = 0; off < n; off += kChunk)
      MPI_Bcast(bytes.data() + off, int(std::min(n - off, kChunk)), MPI_BYTE, 0, MPI_COMM_WORLD);
  }
#endif
  (void)bytes;
}

void collect_in_order(int n_items, const std::function<std::vector<char>(int)>& make,
                      const std::function<void(int, const std::vector<char>&)>& use) {
  collect_in_order(n_items, [](int i) { return i % size(); }, make, use);
}

void collect_in_order(int n_items, const std::function<int(int)>& owner_of,
                      const std::function<std::vector<char>(int)>& make,
                      const std::function<void(int, const std::vector<char>&)>& use) {
  (void)owner_of;  // one process without MPI: every item is rank 0's
  for (int i = 0; i < n_items; ++i) {
#ifdef EPITEM_MPI
    const int owner = owner_of(i);
    if (world().active && owner != 0) {
      if (rank() == owner) {
        const std::vector<char> item = make(i);
        CommTimer t;
        long long n = (long long)item.size();
        MPI_Send(&n, 1, MPI_LONG_LONG, 0, 2 * i, MPI_COMM_WORLD);
        // MPI counts are int: large items go in chunks of 1 GiB.
        for (long long off = 0; off < n; off += kChunk)
          MPI_Send(item.data() + off, int(std::min(n - off, kChunk)), MPI_BYTE, 0, 2 * i + 1, MPI_COMM_WORLD);
      } else if (rank() == 0) {
        std::vector<char> item;
        {
          CommTimer t;
          long long n = 0;
          MPI_Recv(&n, 1, MPI_LONG_LONG, owner, 2 * i, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
          item.resize(std::size_t(n));
          for (long long off = 0; off < n; off += kChunk)
            MPI_Recv(item.data() + off, int(std::min(n - off, kChunk)), MPI_BYTE, owner, 2 * i + 1,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
        use(i, item);
      }
      continue;
    }
#endif
    if (rank() == 0)
      use(i, make(i));
  }
}

long long sum(long long value) {
#ifdef EPITEM_MPI
  if (world().active) {
    CommTimer t;
    long long total = 0;
    MPI_Allreduce(&value, &total, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    return total;
  }
#endif
  return value;
}

double max(double value) {
#ifdef EPITEM_MPI
  if (world().active) {
    CommTimer t;
    double m = 0;
    MPI_Allreduce(&value, &m, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return m;
  }
#endif
  return value;
}

std::vector<double> all_values(double value) {
#ifdef EPITEM_MPI
  if (world().active) {
    CommTimer t;
    std::vector<double> all(static_cast<std::size_t>(size()), 0.0);
    MPI_Allgather(&value, 1, MPI_DOUBLE, all.data(), 1, MPI_DOUBLE, MPI_COMM_WORLD);
    return all;
  }
#endif
  return {value};
}

const char* ByteReader::take(std::size_t n) {
  if (n > bytes.size() - pos)
    fail("message between MPI ranks ends after ", bytes.size(), " bytes (internal error)");
  pos += n;
  return bytes.data() + pos - n;
}

Json run_json(double work_seconds) {
  const double comm = communication_seconds();
  Json j = Json::object();
  j.set("ranks", size());
  j.set("rank_seconds", all_values(work_seconds));
  j.set("communication_seconds", all_values(comm));
  return j;
}

}  // namespace epitem::parallel
