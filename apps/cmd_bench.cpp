// `epitem bench <what>`: benchmark programs (never timed unit tests). A target is one line in
// TARGETS below plus its function; each prints its measurements, taken in the same run so
// ratios stay meaningful on a shared machine.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <ctime>
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

int bench_multislice(int argc, char** argv) {
  return run_guarded("bench multislice", [&]() {
    po::options_description opts("bench multislice options");
    std::string gpts_text, threads_text;
    int atoms_target = 100000, potential_gpts = 2048;
    opts.add_options()
      ("gpts", po::value<std::string>(&gpts_text)->default_value("512,1024,2048"), "grid sizes N (N×N), comma-separated")
      ("thread-list", po::value<std::string>(&threads_text)->default_value("1"), "thread counts, comma-separated (1,2)")
      ("atoms", po::value<int>(&atoms_target)->default_value(100000), "atoms of the potential-building model (0 = skip)")
      ("potential-gpts", po::value<int>(&potential_gpts)->default_value(2048), "grid of the potential-building model")
      ("cpu-time", po::bool_switch(&use_cpu_time), "time with process CPU time instead of wall-clock (1 thread, busy machine)");
    po::positional_options_description pos;
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(
            argc, argv,
            "usage: epitem bench multislice [--gpts 512,1024,2048] [--thread-list 1,2] [--atoms 100000]\n"
            "Reference case (Fe3O4 [110] 3x4x10, 200 kV, 80 slices, static): per grid and thread count,\n"
            "the bare fftwf forward+inverse pair, our multislice step, their ratio, and the whole run\n"
            "(potential + propagation + exit-wave TIFF) against 2 x slices x FFT pair. Then the potential\n"
            "of a model of --atoms atoms on --potential-gpts against its propagation.",
            opts, pos, vm, common))
      return EXIT_OK;
    std::vector<int> grids = parse_int_list(gpts_text, "--gpts");
    std::vector<int> thread_list = parse_int_list(threads_text, "--thread-list");
    if (vm.count("threads") && !vm["threads"].defaulted() && common.threads > 0)
      thread_list = {common.threads};
    for (int n : grids)
      if (n < 64 || n > 8192)
        throw po::error("--gpts values must be within 64 … 8192");
    for (int t : thread_list)
      if (t < 1 || t > 256)
        throw po::error("--thread-list values must be within 1 … 256");

    const AtomicModel model = fe3o4_110(3, 4, 10);
    const std::string tmp_dir = std::filesystem::temp_directory_path() / ("epitem_bench_" + std::to_string(::getpid()));
    std::filesystem::create_directories(tmp_dir);
    std::printf("# reference case: Fe3O4 [110] 3x4x10 (%zu atoms), 200 kV, 80 slices of 1.4842 A, static\n",
                model.atoms.size());
    std::printf("%6s %7s %12s %12s %7s %11s %13s %7s %11s\n", "grid", "threads", "fft_pair_ms", "step_ms",
                "ratio", "run_s", "2x80xpair_s", "ratio", "potential_s");
    std::vector<std::pair<int, double>> run_by_threads;  // (threads, run seconds) at the largest grid
    for (int n : grids)
      for (int t : thread_list) {
        MultisliceSpec spec;
        spec.nx = spec.ny = n;
        spec.slice_thickness_A = 8.396 * std::sqrt(2.0) / 8;
        spec.threads = t;
        // Plans and wisdom first: FFTW_MEASURE planning is a one-time cost per machine, not per run.
        Fft2D(n, n, t).prepare();
        prepare_multislice_plans(model, spec);
        const double pair = fft_pair_seconds(n, t);
        const double t0 = now_seconds();
        Wave exit;
        const MultisliceReport rep = run_multislice(model, spec, [&](int, int, double, const Wave& w) { exit = w; });
        const double run_lib = now_seconds() - t0;
        Image re(n, n), im(n, n);
        for (std::size_t i = 0; i < exit.psi.size(); ++i) {
          re.pixels[i] = exit.psi[i].real();
          im.pixels[i] = exit.psi[i].imag();
        }
        write_tiff(tmp_dir + "/exit.tif", {re, im});
        const double run = (now_seconds() - t0);
        // The report's split is wall-clock; scale it to this clock with the run's own total.
        const double scale = (now_seconds() - t0) > 0 && rep.total_seconds > 0 ? run_lib / rep.total_seconds : 1.0;
        const double step = scale * rep.propagation_seconds / rep.slicing.n_slices();
        std::printf("%6d %7d %12.3f %12.3f %7.2f %11.3f %13.3f %7.2f %11.3f\n", n, t, pair * 1e3, step * 1e3,
                    step / pair, run, 2 * 80 * pair, run / (2 * 80 * pair), scale * rep.potential_seconds);
        std::fflush(stdout);
        if (n == grids.back())
          run_by_threads.push_back({t, run});
      }
    if (run_by_threads.size() > 1)
      for (std::size_t i = 1; i < run_by_threads.size(); ++i)
        std::printf("# speed-up %d vs %d threads at %d^2: %.2fx\n", run_by_threads[i].first,
                    run_by_threads[0].first, grids.back(), run_by_threads[0].second / run_by_threads[i].second);

    if (atoms_target > 0) {
      const int per_layer = 112 * 6 * 8;
      const int rz = std::max(1, (atoms_target + per_layer - 1) / per_layer);
      const AtomicModel big = fe3o4_110(6, 8, rz);
      const int t = thread_list.back();
      MultisliceSpec spec;
      spec.nx = spec.ny = potential_gpts;
      spec.slice_thickness_A = 8.396 * std::sqrt(2.0) / 8;
      spec.threads = t;
      prepare_multislice_plans(big, spec);
      const MultisliceReport rep = run_multislice(big, spec, {});
      std::printf("# potential: Fe3O4 [110] 6x8x%d, %zu atoms, %d^2, %d slices, %d threads\n", rz, big.atoms.size(),
                  potential_gpts, rep.slicing.n_slices(), t);
      std::printf("#   static (identical slices reused, %d distinct): potential %.3f s, propagation %.3f s\n",
                  rep.unique_slices, rep.potential_seconds, rep.propagation_seconds);
      // Without reuse (frozen phonons: every slice differs): time a few slices and scale.
      const Grid g = multislice_grid(big, spec);
      SlicePotential pot(g, {8, 26}, spec.table, t);
      AlignedVector<cfloat> buf(g.size());
      std::vector<std::vector<SliceAtom>> slices(std::size_t(rep.slicing.n_slices()));
      const double dz = rep.slicing.thickness_A(0);
      for (const Atom& a : big.atoms)
        slices[std::size_t(std::clamp(int(std::floor((a.pos_A.z() + 1e-6) / dz)), 0, rep.slicing.n_slices() - 1))]
            .push_back({a.Z, a.pos_A.x(), a.pos_A.y(), a.occupancy});
      const int probe = 4;
      const double t0 = now_seconds();
      for (int k = 0; k < probe; ++k)
        pot.transmission(slices[std::size_t(k)], interaction_sigma_rad_per_VA(spec.energy_eV), buf.data());
      const double per_slice = (now_seconds() - t0) / probe;
      std::printf("#   every slice distinct: %.3f s per slice x %d = %.3f s vs propagation %.3f s\n", per_slice,
                  rep.slicing.n_slices(), per_slice * rep.slicing.n_slices(), rep.propagation_seconds);
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
