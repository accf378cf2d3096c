// `epitem bench <what>`: benchmark programs (never timed unit tests). A target is one line in
// TARGETS below plus its function; each prints its measurements, taken in the same run so
// ratios stay meaningful on a shared machine.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <ctime>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.hpp"
#include "epitem/error.hpp"
#include "epitem/fft.hpp"
#include "epitem/image.hpp"
#include "epitem/model.hpp"
#include "epitem/multislice.hpp"
#include "epitem/potential.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"

namespace epitem::cli {

int bench_imaging(int argc, char** argv);  // apps/bench_imaging.cpp
int bench_mpi(int argc, char** argv);      // apps/bench_mpi.cpp

namespace {

// Wall-clock by default; --cpu-time uses process CPU time (fair for 1 thread on a loaded machine;
// with threads it sums them). The library's own report uses wall-clock.
bool use_cpu_time = false;
double now_seconds() {
  if (use_cpu_time) {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<int> parse_int_list(const std::string& text, const std::string& what) {
  std::vector<int> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t end = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, end - pos);
    try {
      std::size_t used = 0;
      out.push_back(std::stoi(item, &used));
      if (used != item.size())
        throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw po::error(what + ": '" + item + "' is not an integer (comma-separated list, e.g. 512,1024)");
    }
    pos = end + 1;
  }
  return out;
}

// Mean time of one forward+inverse in-place pair [s]: best of 3 batches of `reps` pairs.
double fft_pair_seconds(int n, int threads) {
  const Fft2D fft(n, n, threads);
  fft.prepare();
  AlignedVector<cfloat> a(std::size_t(n) * n);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto& v : a)
    v = cfloat(u(rng), u(rng));
  const int reps = std::max(3, int(4e7 / (double(n) * n)));
  double best = 1e30;
  for (int batch = 0; batch < 3; ++batch) {
    const double t0 = now_seconds();
    for (int r = 0; r < reps; ++r) {
      fft.forward(a.data());
      fft.inverse(a.data(), false);
    }
    best = std::min(best, (now_seconds() - t0) / reps);
    for (auto& v : a)  // keep the values bounded (the pair scales by N)
      v /= float(a.size());
  }
  return best;
}

AtomicModel fe3o4_110(int rx, int ry, int rz) {
  return orient_crystal(read_crystal("Fe3O4"), Vec3(1, 1, 0), Vec3(-1, 1, 0), {rx, ry, rz});
}

// The reference model's atoms per slice of thickness dz (static; the rule of docs/formulas.md §4).
std::vector<std::vector<SliceAtom>> slice_atoms(const AtomicModel& model, double dz, int n_slices) {
  auto slices = std::vector<std::vector<SliceAtom>>(std::size_t(n_slices));
  for (const Atom& a : model.atoms)
    slices[std::size_t(std::clamp(int(std::floor((a.pos_A.z() + 1e-6) / dz)), 0, n_slices - 1))].push_back(
        {a.Z, a.pos_A.x(), a.pos_A.y(), a.occupancy});
  return slices;
}

// Wall-clock seconds of a plain CLI run of this program (what a user sees: planning included,
// FFTW wisdom from earlier runs used as a user's would be).
// With --cpu-time: the child's user + system CPU time.
double cli_run_seconds(const std::string& args) {
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  auto child_cpu = [] {
    rusage u{};
    getrusage(RUSAGE_CHILDREN, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
  };
  const double c0 = child_cpu();
  const auto t0 = std::chrono::steady_clock::now();
  if (std::system(("'" + exe + "' " + args + " >/dev/null 2>&1").c_str()) != 0)
    fail("bench: the CLI run failed: epitem ", args);
  if (use_cpu_time)
    return child_cpu() - c0;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// run_multislice with its report's wall-clock split rescaled to this bench's clock.
MultisliceReport timed_run(const AtomicModel& model, const MultisliceSpec& spec) {
  const double t0 = now_seconds();
  MultisliceReport rep = run_multislice(model, spec, {});
  const double elapsed = now_seconds() - t0;
  const double scale = rep.total_seconds > 0 ? elapsed / rep.total_seconds : 1.0;
  rep.potential_seconds *= scale;
  rep.propagation_seconds *= scale;
  rep.total_seconds = elapsed;
  return rep;
}

int bench_multislice(int argc, char** argv) {
  return run_guarded("bench multislice", [&]() {
    po::options_description opts("bench multislice options");
    std::string gpts_text, threads_text, phonon_gpts_text;
    int atoms_target = 100000, potential_gpts = 2048, phonons = 8;
    opts.add_options()
      ("gpts", po::value<std::string>(&gpts_text)->default_value("512,1024,2048"), "grid sizes N (N×N), comma-separated")
      ("thread-list", po::value<std::string>(&threads_text)->default_value("1"), "thread counts, comma-separated (1,2)")
      ("phonons", po::value<int>(&phonons)->default_value(8), "frozen-phonon configurations of the phonon runs (0 = skip)")
      ("phonon-gpts", po::value<std::string>(&phonon_gpts_text)->default_value("512,1024"), "grids of the phonon runs")
      ("atoms", po::value<int>(&atoms_target)->default_value(100000), "atoms of the every-slice-distinct model (0 = skip)")
      ("potential-gpts", po::value<int>(&potential_gpts)->default_value(2048), "grid of that model")
      ("cpu-time", po::bool_switch(&use_cpu_time), "time with CPU time instead of wall-clock (1 thread, busy machine; the CLI run: the child's CPU time)");
    po::positional_options_description pos;
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(
            argc, argv,
            "usage: epitem bench multislice [--gpts 512,1024,2048] [--thread-list 1,2] [--phonons 8]\n"
            "       [--phonon-gpts 512,1024] [--atoms 100000] [--potential-gpts 2048]\n"
            "Reference case (Fe3O4 [110] 3x4x10, 200 kV, 80 slices, static), per grid and thread count:\n"
            "the bare fftwf forward+inverse pair; our multislice step and step/pair; one slice's\n"
            "potential (transmission function) in FFT pairs; a plain CLI run (planning with the wisdom\n"
            "in ~/.cache/epitem, TIFF output) against 2 x slices x pair. Then --phonons configurations\n"
            "(every slice distinct) at --phonon-gpts: potential vs propagation; then a model of --atoms\n"
            "atoms with every slice distinct (--phonons 1) at --potential-gpts. Ratios come from one\n"
            "run; on a shared machine repeat and take the best (docs/performance.md).",
            opts, pos, vm, common))
      return EXIT_OK;
    std::vector<int> grids = parse_int_list(gpts_text, "--gpts");
    std::vector<int> thread_list = parse_int_list(threads_text, "--thread-list");
    const std::vector<int> phonon_grids = parse_int_list(phonon_gpts_text, "--phonon-gpts");
    if (vm.count("threads") && !vm["threads"].defaulted() && common.threads > 0)
      thread_list = {common.threads};
    std::vector<int> all_grids = grids;
    all_grids.insert(all_grids.end(), phonon_grids.begin(), phonon_grids.end());
    for (int n : all_grids)
      if (n < 64 || n > 8192)
        throw po::error("--gpts and --phonon-gpts values must be within 64 … 8192");
    for (int t : thread_list)
      if (t < 1 || t > 256)
        throw po::error("--thread-list values must be within 1 … 256");
    if (phonons < 0 || phonons > 1000)
      throw po::error("--phonons must be within 0 … 1000");

    const AtomicModel model = fe3o4_110(3, 4, 10);
    const std::string tmp_dir = std::filesystem::temp_directory_path() / ("epitem_bench_" + std::to_string(::getpid()));
    std::filesystem::create_directories(tmp_dir);
    const double dz = 8.396 * std::sqrt(2.0) / 8;
    const std::vector<std::vector<SliceAtom>> slices = slice_atoms(model, dz, 80);
    std::printf("# reference case: Fe3O4 [110] 3x4x10 (%zu atoms), 200 kV, 80 slices of 1.4842 A, static\n",
                model.atoms.size());
    std::printf("# pair = fftwf forward+inverse in place; step = t*psi, FFT, propagator, inverse FFT;\n"
                "# potential = one slice's band-limited transmission function; cli = `epitem multislice`\n");
    std::printf("%6s %7s %9s %9s %9s %12s %9s %8s %11s %9s\n", "grid", "threads", "pair_ms", "step_ms",
                "step/pair", "potential_ms", "pot/pair", "cli_s", "2x80xpair_s", "cli/2x80");
    struct StageLine {
      int n, threads;
      double spread_rows, columns, rows, band;  // FFT pairs per slice
    };
    std::vector<StageLine> stage_lines;
    std::vector<std::pair<int, double>> run_by_threads;  // (threads, run seconds) at the largest grid
    std::vector<std::pair<int, double>> pair_cost;      // (grid, pair seconds per point and log2 of points)
    for (int n : grids)
      for (int t : thread_list) {
        MultisliceSpec spec;
        spec.nx = spec.ny = n;
        spec.slice_thickness_A = dz;
        spec.threads = t;
        // Plans and wisdom first: FFTW_MEASURE planning is a one-time cost per machine, not per run.
        Fft2D(n, n, t).prepare();
        prepare_multislice_plans(model, spec);
        const double pair = fft_pair_seconds(n, t);
        const MultisliceReport rep = timed_run(model, spec);
        const double step = rep.propagation_seconds / rep.slicing.n_slices();
        const Grid g = multislice_grid(model, spec);
        SlicePotential pot(g, {8, 26}, spec.table, t);
        AlignedVector<cfloat> buf(g.size());
        const double sigma = interaction_sigma_rad_per_VA(spec.energy_eV);
        double potential = 1e30;
        for (int rep_i = 0; rep_i < 3; ++rep_i) {  // best of 3 passes over the 80 slices
          const double t0 = now_seconds();
          for (const auto& atoms : slices)
            pot.transmission(atoms, sigma, buf.data());
          potential = std::min(potential, (now_seconds() - t0) / double(slices.size()));
        }
        // Where a slice's time goes: the stages' wall-clock split, scaled to the best pass.
        pot.reset_stage_seconds();
        for (const auto& atoms : slices)
          pot.transmission(atoms, sigma, buf.data());
        const SlicePotential::StageSeconds st = pot.stage_seconds();
        const double st_sum = st.spread_rows + st.columns + st.rows + st.band_limit;
        const double to_pairs = st_sum > 0 ? potential / st_sum / pair : 0;
        stage_lines.push_back({n, t, st.spread_rows * to_pairs, st.columns * to_pairs, st.rows * to_pairs,
                               st.band_limit * to_pairs});
        char args[512];
        std::snprintf(args, sizeof args,
                      "multislice Fe3O4 --zone 1,1,0 --x -1,1,0 --repeat 3,4,10 --gpts %d --slice 1.484217A "
                      "--threads %d -q --out '%s/exit.tif'", n, t, tmp_dir.c_str());
        const double run = cli_run_seconds(args);
        std::printf("%6d %7d %9.3f %9.3f %9.2f %12.3f %9.2f %8.3f %11.3f %9.2f\n", n, t, pair * 1e3, step * 1e3,
                    step / pair, potential * 1e3, potential / pair, run, 2 * 80 * pair, run / (2 * 80 * pair));
        std::fflush(stdout);
        if (n == grids.back())
          run_by_threads.push_back({t, run});
        if (t == thread_list.front())
          pair_cost.push_back({n, pair / (double(n) * n * std::log2(double(n) * n))});
      }
    std::printf("# potential stages in FFT pairs: spread_rows = zero + spread + fine rows; columns = fine\n"
                "# columns (|kx| <= nx/2), unpacking, inverse along y; rows = real inverse along x, exp(i sigma v),\n"
                "# forward along x; band = band-limit columns pair + inverse rows\n");
    std::printf("%6s %7s %12s %9s %9s %9s\n", "grid", "threads", "spread_rows", "columns", "rows", "band");
    for (const StageLine& l : stage_lines)
      std::printf("%6d %7d %12.2f %9.2f %9.2f %9.2f\n", l.n, l.threads, l.spread_rows, l.columns, l.rows, l.band);
    // A pair that costs far more per point·log than the other grids' was most likely planned
    // badly: FFTW_MEASURE on a busy machine can pick a 3x slower plan, and the wisdom keeps it.
    if (!pair_cost.empty()) {
      double best = 1e30;
      for (const auto& pc : pair_cost)
        best = std::min(best, pc.second);
      for (const auto& pc : pair_cost)
        if (pc.second > 2.5 * best)
          std::printf("# warning: the %d^2 pair costs %.1fx per point*log2(points) of the cheapest grid: a badly\n"
                      "#   measured FFTW plan in the wisdom? Replan on an idle machine (docs/performance.md)\n",
                      pc.first, pc.second / best);
    }
    if (run_by_threads.size() > 1)
      for (std::size_t i = 1; i < run_by_threads.size(); ++i)
        std::printf("# speed-up %d vs %d threads at %d^2: %.2fx\n", run_by_threads[i].first,
                    run_by_threads[0].first, grids.back(), run_by_threads[0].second / run_by_threads[i].second);

    const int t = thread_list.back();
    if (phonons > 0) {
      std::printf("# frozen phonons: reference case, %d configurations (every slice distinct), %d thread(s)\n",
                  phonons, t);
      std::printf("%6s %8s %12s %14s %9s %9s %15s\n", "grid", "phonons", "potential_s", "propagation_s",
                  "pot/prop", "total_s", "pot/slice/pair");
      for (int n : phonon_grids) {
        MultisliceSpec spec;
        spec.nx = spec.ny = n;
        spec.slice_thickness_A = dz;
        spec.threads = t;
        spec.phonon_configs = phonons;
        prepare_multislice_plans(model, spec);
        const double pair = fft_pair_seconds(n, t);
        const MultisliceReport rep = timed_run(model, spec);
        const double per_slice = rep.potential_seconds / (double(phonons) * rep.slicing.n_slices());
        std::printf("%6d %8d %12.3f %14.3f %9.2f %9.3f %15.2f\n", n, phonons, rep.potential_seconds,
                    rep.propagation_seconds, rep.potential_seconds / rep.propagation_seconds, rep.total_seconds,
                    per_slice / pair);
        std::fflush(stdout);
      }
    }

    if (atoms_target > 0) {
      const int per_layer = 112 * 6 * 8;
      const int rz = std::max(1, (atoms_target + per_layer - 1) / per_layer);
      const AtomicModel big = fe3o4_110(6, 8, rz);
      MultisliceSpec spec;
      spec.nx = spec.ny = potential_gpts;
      spec.slice_thickness_A = dz;
      spec.threads = t;
      spec.phonon_configs = 1;  // every slice distinct
      prepare_multislice_plans(big, spec);
      const MultisliceReport rep = timed_run(big, spec);
      std::printf("# every slice distinct (--phonons 1): Fe3O4 [110] 6x8x%d, %zu atoms, %d^2, %d slices, %d thread(s)\n",
                  rz, big.atoms.size(), potential_gpts, rep.slicing.n_slices(), t);
      std::printf("#   potential %.3f s, propagation %.3f s, potential/propagation %.2f\n", rep.potential_seconds,
                  rep.propagation_seconds, rep.potential_seconds / rep.propagation_seconds);
    }
    std::error_code ec;
    std::filesystem::remove_all(tmp_dir, ec);
    return EXIT_OK;
  });
}

struct BenchTarget {
  const char* name;
  const char* summary;
  int (*main)(int argc, char** argv);
};

// Add a benchmark: one line here (and its function).
const BenchTarget TARGETS[] = {
    {"multislice", "multislice step vs bare FFT pair, whole reference run, potential of N atoms", bench_multislice},
    {"imaging", "envelope image formation vs bare FFT pair; --integrate: coherence nodes", bench_imaging},
    {"mpi", "frozen phonons split over MPI ranks (mpirun -n N): per-rank time, communication, efficiency", bench_mpi},
};

int bench_main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "";
  for (const BenchTarget& t : TARGETS)
    if (what == t.name)
      return t.main(argc - 1, argv + 1);
  std::ostream& os = (what.empty() || what == "--help" || what == "-h") ? std::cout : std::cerr;
  if (!(what.empty() || what == "--help" || what == "-h"))
    os << "usage error: unknown benchmark '" << what << "'\n";
  os << "usage: epitem bench <what> [options]   (epitem bench <what> --help)\n";
  for (const BenchTarget& t : TARGETS)
    os << "  " << t.name << "  " << t.summary << "\n";
  return (what.empty() || what == "--help" || what == "-h") ? EXIT_OK : EXIT_USAGE;
}

}  // namespace

EPITEM_COMMAND(bench, 90, "benchmarks: epitem bench <what>", bench_main);

}  // namespace epitem::cli
