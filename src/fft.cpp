#include "epitem/fft.hpp"

#include <fftw3.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <unistd.h>

#include "epitem/error.hpp"
#include "epitem/progress.hpp"

namespace epitem {

namespace {

// FFTW's planner is not thread-safe; execution of a finished plan on new arrays is.
std::mutex& planner_mutex() {
  static std::mutex m;
  return m;
}

std::string wisdom_path() {
  std::string base;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    base = xdg;
  else if (const char* home = std::getenv("HOME"); home && *home)
    base = std::string(home) + "/.cache";
  else
    return "";
  return base + "/epitem/fftwf-wisdom";
}

// Wisdom is only a cache: a missing or unwritable file costs planning time, nothing else.
void load_wisdom_once() {
  static bool loaded = false;
  if (loaded)
    return;
  loaded = true;
  fftwf_init_threads();
  const std::string path = wisdom_path();
  if (!path.empty())
    fftwf_import_wisdom_from_filename(path.c_str());
}

void save_wisdom() {
  const std::string path = wisdom_path();
  if (path.empty())
    return;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  // Another process may have added plans since we loaded: merge them first (wisdom is additive).
  fftwf_import_wisdom_from_filename(path.c_str());
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  if (fftwf_export_wisdom_to_filename(tmp.c_str()))
    std::filesystem::rename(tmp, path, ec);
  std::filesystem::remove(tmp, ec);
}

using PlanKey = std::tuple<int, int, int, bool, int, int>;  // nx, ny, threads, in-place, sign, rigor

fftwf_plan get_plan(int nx, int ny, int threads, bool in_place, int sign, FftRigor rigor) {
  std::lock_guard<std::mutex> lock(planner_mutex());
  static std::map<PlanKey, fftwf_plan> plans;
  const PlanKey key{nx, ny, threads, in_place, sign, int(rigor)};
  if (auto it = plans.find(key); it != plans.end())
    return it->second;
  load_wisdom_once();
  const std::size_t n = std::size_t(nx) * std::size_t(ny);
  // Planning with FFTW_MEASURE overwrites its arrays: plan on scratch arrays.
  auto* in = static_cast<fftwf_complex*>(fftw_aligned_malloc(n * sizeof(fftwf_complex)));
  auto* out = in_place ? in : static_cast<fftwf_complex*>(fftw_aligned_malloc(n * sizeof(fftwf_complex)));
  fftwf_plan_with_nthreads(threads);
  const unsigned flags = (rigor == FftRigor::Measure ? FFTW_MEASURE : FFTW_ESTIMATE) |
                        (in_place ? 0u : unsigned(FFTW_PRESERVE_INPUT));
  fftwf_plan plan = fftwf_plan_dft_2d(ny, nx, in, out, sign, flags);
  if (!in_place)
    fftw_aligned_free(out);
  fftw_aligned_free(in);
  if (!plan)
    fail("FFTW could not plan a ", nx, " x ", ny, " transform");
  if (rigor == FftRigor::Measure)
    save_wisdom();
  plans.emplace(key, plan);
  return plan;
}

using ManyKey = std::tuple<int, int, int, int, int, int, int>;  // n, howmany, stride, dist, threads, sign, rigor

fftwf_plan get_many_plan(int n, int howmany, int stride, int dist, int threads, int sign, FftRigor rigor) {
  std::lock_guard<std::mutex> lock(planner_mutex());
  static std::map<ManyKey, fftwf_plan> plans;
  const ManyKey key{n, howmany, stride, dist, threads, sign, int(rigor)};
  if (auto it = plans.find(key); it != plans.end())
    return it->second;
  load_wisdom_once();
  const std::size_t size = std::size_t(howmany - 1) * std::size_t(dist) + std::size_t(n - 1) * std::size_t(stride) + 1;
  auto* data = static_cast<fftwf_complex*>(fftw_aligned_malloc(size * sizeof(fftwf_complex)));
  fftwf_plan_with_nthreads(threads);
  const unsigned flags = rigor == FftRigor::Measure ? FFTW_MEASURE : FFTW_ESTIMATE;
  fftwf_plan plan = fftwf_plan_many_dft(1, &n, howmany, data, nullptr, stride, dist, data, nullptr, stride, dist,
                                        sign, flags);
  fftw_aligned_free(data);
  if (!plan)
    fail("FFTW could not plan ", howmany, " transforms of length ", n);
  if (rigor == FftRigor::Measure)
    save_wisdom();
  plans.emplace(key, plan);
  return plan;
}

using RealKey = std::tuple<int, int, int, int, int>;  // nx, ny, threads, rigor, sign

// Plans of the real transforms: FFTW_BACKWARD = c2r (half spectrum → real), FFTW_FORWARD = r2c.
fftwf_plan get_real_plan(int nx, int ny, int threads, FftRigor rigor, int sign) {
  std::lock_guard<std::mutex> lock(planner_mutex());
  static std::map<RealKey, fftwf_plan> plans;
  const RealKey key{nx, ny, threads, int(rigor), sign};
  if (auto it = plans.find(key); it != plans.end())
    return it->second;
  load_wisdom_once();
  const std::size_t half = std::size_t(nx / 2 + 1) * std::size_t(ny);
  auto* spectrum = static_cast<fftwf_complex*>(fftw_aligned_malloc(half * sizeof(fftwf_complex)));
  auto* real = static_cast<float*>(fftw_aligned_malloc(std::size_t(nx) * std::size_t(ny) * sizeof(float)));
  fftwf_plan_with_nthreads(threads);
  const unsigned flags = (rigor == FftRigor::Measure ? FFTW_MEASURE : FFTW_ESTIMATE) | unsigned(FFTW_DESTROY_INPUT);
  fftwf_plan plan = sign == FFTW_BACKWARD ? fftwf_plan_dft_c2r_2d(ny, nx, spectrum, real, flags)
                                          : fftwf_plan_dft_r2c_2d(ny, nx, real, spectrum, flags);
  fftw_aligned_free(real);
  fftw_aligned_free(spectrum);
  if (!plan)
    fail("FFTW could not plan a real ", nx, " x ", ny, " transform");
  if (rigor == FftRigor::Measure)
    save_wisdom();
  plans.emplace(key, plan);
  return plan;
}

void require_aligned(const void* p) {
  if (fftwf_alignment_of(static_cast<float*>(const_cast<void*>(p))) != 0)
    fail("Fft2D: array is not fftwf_malloc-aligned (use AlignedVector)");
}

void scale(cfloat* data, std::size_t n, float factor, int threads) {
  parallel_for(n, threads, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i)
      data[i] *= factor;
  });
}

// A fixed pool of workers executing chunks of one parallel_for at a time.
class Pool {
public:
  static Pool& instance() {
    static Pool pool;
    return pool;
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_)
      t.join();
  }
  void run(std::size_t n, int chunks, const std::function<void(std::size_t, std::size_t)>& fn) {
    std::lock_guard<std::mutex> serial(run_mutex_);
    {
      std::lock_guard<std::mutex> lock(m_);
      while (int(workers_.size()) < chunks - 1)
        workers_.emplace_back([this] { work(); });
      fn_ = &fn;
      n_ = n;
      chunks_ = chunks;
      next_ = 0;
      done_ = 0;
      ++generation_;
    }
    cv_.notify_all();
    execute_chunks();
    std::unique_lock<std::mutex> lock(m_);
    done_cv_.wait(lock, [this] { return done_ == chunks_; });
    fn_ = nullptr;
    if (error_) {
      std::exception_ptr error = error_;
      error_ = nullptr;
      std::rethrow_exception(error);
    }
  }

private:
  void execute_chunks() {
    for (;;) {
      const int c = next_.fetch_add(1);
      if (c >= chunks_)
        return;
      const std::size_t b = n_ * std::size_t(c) / std::size_t(chunks_);
      const std::size_t e = n_ * std::size_t(c + 1) / std::size_t(chunks_);
      std::exception_ptr error;
      try {
        if (b < e)
          (*fn_)(b, e);
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(m_);
      if (error && !error_)
        error_ = error;  // the first failure reaches the caller of run()
      if (++done_ == chunks_)
        done_cv_.notify_all();
    }
  }
  void work() {
    in_worker() = true;
    std::uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_)
          return;
        seen = generation_;
      }
      execute_chunks();
    }
  }

public:
  static bool& in_worker() {
    thread_local bool flag = false;
    return flag;
  }

private:
  std::mutex run_mutex_, m_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(std::size_t, std::size_t)>* fn_ = nullptr;
  std::size_t n_ = 0;
  int chunks_ = 0;
  std::atomic<int> next_{0};
  int done_ = 0;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace

void parallel_for(std::size_t n, int threads, const std::function<void(std::size_t, std::size_t)>& fn) {
  if (threads <= 1 || n < 2 || Pool::in_worker()) {
    if (n > 0)
      fn(0, n);
    return;
  }
  Pool::instance().run(n, int(std::min<std::size_t>(std::size_t(threads), n)), fn);
}

int next_fft_size(int n) {
  for (int m = std::max(n, 1);; ++m) {
    int r = m;
    for (int p : {2, 3, 5, 7})
      while (r % p == 0)
        r /= p;
    if (r == 1)
      return m;
  }
}

Fft2D::Fft2D(int nx, int ny, int threads, FftRigor rigor)
    : nx_(nx), ny_(ny), threads_(threads > 0 ? threads : default_thread_count()), rigor_(rigor) {
  if (nx < 1 || ny < 1)
    fail("Fft2D: grid must be at least 1 x 1, got ", nx, " x ", ny);
}

void fft_prepare(int nx, int ny, int threads, FftRigor rigor) {
  for (bool in_place : {true, false})
    for (int sign : {FFTW_FORWARD, FFTW_BACKWARD})
      get_plan(nx, ny, threads, in_place, sign, rigor);
}

Fft1DMany::Fft1DMany(int n, int howmany, int stride, int dist, int threads, FftRigor rigor)
    : n_(n), howmany_(howmany), stride_(stride), dist_(dist),
      threads_(threads > 0 ? threads : default_thread_count()) {
  if (n < 1 || howmany < 0 || stride < 1 || dist < 1)
    fail("Fft1DMany: bad layout n = ", n, ", howmany = ", howmany, ", stride = ", stride, ", dist = ", dist);
  if (howmany > 0) {
    forward_plan_ = get_many_plan(n_, howmany_, stride_, dist_, threads_, FFTW_FORWARD, rigor);
    inverse_plan_ = get_many_plan(n_, howmany_, stride_, dist_, threads_, FFTW_BACKWARD, rigor);
  }
}

void Fft1DMany::forward(cfloat* data) const {
  if (howmany_ == 0)
    return;
  require_aligned(data);
  auto* p = reinterpret_cast<fftwf_complex*>(data);
  fftwf_execute_dft(static_cast<fftwf_plan>(forward_plan_), p, p);
}

void Fft1DMany::inverse(cfloat* data) const {
  if (howmany_ == 0)
    return;
  require_aligned(data);
  auto* p = reinterpret_cast<fftwf_complex*>(data);
  fftwf_execute_dft(static_cast<fftwf_plan>(inverse_plan_), p, p);
}

RealInverseFft2D::RealInverseFft2D(int nx, int ny, int threads, FftRigor rigor)
    : nx_(nx), ny_(ny), threads_(threads > 0 ? threads : default_thread_count()) {
  if (nx < 1 || ny < 1)
    fail("RealInverseFft2D: grid must be at least 1 x 1, got ", nx, " x ", ny);
  plan_ = get_real_plan(nx_, ny_, threads_, rigor, FFTW_BACKWARD);
}

void RealInverseFft2D::execute(cfloat* half, float* out) const {
  require_aligned(half);
  require_aligned(out);
  fftwf_execute_dft_c2r(static_cast<fftwf_plan>(plan_), reinterpret_cast<fftwf_complex*>(half), out);
}

RealForwardFft2D::RealForwardFft2D(int nx, int ny, int threads, FftRigor rigor)
    : nx_(nx), ny_(ny), threads_(threads > 0 ? threads : default_thread_count()) {
  if (nx < 1 || ny < 1)
    fail("RealForwardFft2D: grid must be at least 1 x 1, got ", nx, " x ", ny);
  plan_ = get_real_plan(nx_, ny_, threads_, rigor, FFTW_FORWARD);
}

void RealForwardFft2D::execute(float* in, cfloat* half) const {
  require_aligned(in);
  require_aligned(half);
  fftwf_execute_dft_r2c(static_cast<fftwf_plan>(plan_), in, reinterpret_cast<fftwf_complex*>(half));
}

void Fft2D::prepare() const {
  get_plan(nx_, ny_, threads_, true, FFTW_FORWARD, rigor_);
  get_plan(nx_, ny_, threads_, true, FFTW_BACKWARD, rigor_);
}

void Fft2D::forward(cfloat* data) const {
  require_aligned(data);
  auto* p = reinterpret_cast<fftwf_complex*>(data);
  fftwf_execute_dft(get_plan(nx_, ny_, threads_, true, FFTW_FORWARD, rigor_), p, p);
}

void Fft2D::inverse(cfloat* data, bool normalise) const {
  require_aligned(data);
  auto* p = reinterpret_cast<fftwf_complex*>(data);
  fftwf_execute_dft(get_plan(nx_, ny_, threads_, true, FFTW_BACKWARD, rigor_), p, p);
  if (normalise)
    scale(data, std::size_t(nx_) * std::size_t(ny_), 1.f / float(std::size_t(nx_) * std::size_t(ny_)), threads_);
}

void Fft2D::forward(const cfloat* in, cfloat* out) const {
  require_aligned(in);
  require_aligned(out);
  if (in == out)
    return forward(out);
  fftwf_execute_dft(get_plan(nx_, ny_, threads_, false, FFTW_FORWARD, rigor_),
                    reinterpret_cast<fftwf_complex*>(const_cast<cfloat*>(in)),
                    reinterpret_cast<fftwf_complex*>(out));
}

void Fft2D::inverse(const cfloat* in, cfloat* out, bool normalise) const {
  require_aligned(in);
  require_aligned(out);
  if (in == out)
    return inverse(out, normalise);
  fftwf_execute_dft(get_plan(nx_, ny_, threads_, false, FFTW_BACKWARD, rigor_),
                    reinterpret_cast<fftwf_complex*>(const_cast<cfloat*>(in)),
                    reinterpret_cast<fftwf_complex*>(out));
  if (normalise)
    scale(out, std::size_t(nx_) * std::size_t(ny_), 1.f / float(std::size_t(nx_) * std::size_t(ny_)), threads_);
}

}  // namespace epitem
