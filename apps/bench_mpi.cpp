// `epitem bench mpi` (run it under `mpirun -n N`): the frozen-phonon case split over ranks
// against rank 0 alone, in one run. Reports each rank's work and communication time, the
// speed-up t1/tN and the efficiency t1/(N·tN) (docs/mpi.md).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "cli.hpp"
#include "epitem/model.hpp"
#include "epitem/multislice.hpp"
#include "epitem/parallel.hpp"
#include "epitem/structure_io.hpp"

namespace epitem::cli {
namespace {

double wall_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The phonon run of `spec`'s share of configurations; rank 0 gets the mean exit intensity, summed
// in configuration order (as hrtem does). Returns this rank's multislice seconds.
// `wait` gets the seconds this rank waited for the slowest one before the collection.
double phonon_run(const AtomicModel& model, const MultisliceSpec& spec, bool split, std::vector<float>& mean,
                  double& wait) {
  std::vector<std::vector<float>> by_config(std::size_t(std::max(1, spec.phonon_configs)));
  const double t0 = wall_now();
  run_multislice(model, spec, [&](int config, int, double, const Wave& exit) {
    std::vector<float>& v = by_config[std::size_t(config)];
    v.resize(exit.psi.size());
    for (std::size_t i = 0; i < v.size(); ++i)
      v[i] = std::norm(exit.psi[i]);
  });
  const double work = wall_now() - t0;
  std::vector<double> sum;
  auto add = [&](const std::vector<float>& v) {
    sum.resize(v.size(), 0.0);
    for (std::size_t i = 0; i < v.size(); ++i)
      sum[i] += v[i];
  };
  if (split) {
    const double w0 = wall_now();
    parallel::barrier();  // so that the communication time below is the transfer only
    wait = wall_now() - w0;
    parallel::collect_in_order(
        int(by_config.size()),
        [&](int c) {
          parallel::ByteWriter w;
          w.put_values(by_config[std::size_t(c)]);
          return w.bytes;
        },
        [&](int, const std::vector<char>& bytes) {
          parallel::ByteReader r(bytes);
          std::vector<float> v;
          r.get_values(v);
          add(v);
        });
  } else {
    for (const auto& v : by_config)
      add(v);
  }
  mean.assign(sum.size(), 0.f);
  for (std::size_t i = 0; i < sum.size(); ++i)
    mean[i] = float(sum[i] / double(by_config.size()));
  return work;
}

}  // namespace

int bench_mpi(int argc, char** argv) {
  return run_guarded("bench mpi", [&]() {
    po::options_description opts("bench mpi options");
    int gpts = 512, phonons = 8, repeat_z = 10;
    opts.add_options()
      ("gpts", po::value<int>(&gpts)->default_value(512), "grid N (N×N)")
      ("phonons", po::value<int>(&phonons)->default_value(8), "frozen-phonon configurations")
      ("repeat-z", po::value<int>(&repeat_z)->default_value(10), "unit cells along the beam");
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(argc, argv,
                            "usage: mpirun -n N epitem bench mpi [--gpts 512] [--phonons 8] [--repeat-z 10] [--threads 1]\n"
                            "Frozen-phonon multislice of Fe3O4 [110] 3 x 4 x repeat-z, 200 kV: rank 0 alone runs\n"
                            "every configuration (t1), then all N ranks split them (tN; rank 0 sums the\n"
                            "intensities in configuration order). Prints per-rank work and communication time,\n"
                            "t1/tN and the efficiency t1/(N tN); docs/mpi.md. wait_s: waiting for the slowest rank;\n"
                            "comm_s: the transfer of the images to rank 0.",
                            opts, {}, vm, common))
      return EXIT_OK;
    if (gpts < 64 || gpts > 8192)
      throw po::error("--gpts must be within 64 … 8192");
    if (phonons < 1 || phonons > 1000)
      throw po::error("--phonons must be within 1 … 1000");
    if (repeat_z < 1 || repeat_z > 100)
      throw po::error("--repeat-z must be within 1 … 100");
    const AtomicModel model =
        orient_crystal(read_crystal("Fe3O4"), Vec3(1, 1, 0), Vec3(-1, 1, 0), {3, 4, repeat_z});
    MultisliceSpec spec;
    spec.nx = spec.ny = gpts;
    spec.slice_thickness_A = 8.396 * std::sqrt(2.0) / 8;
    spec.phonon_configs = phonons;
    spec.threads = common.threads > 0 ? common.threads : 1;
    const int n = parallel::size();
    // Plans before timing: rank 0 measures them (and runs a warm-up configuration, which pays the
    // one-time set-up) and saves the wisdom, then the others load it and do the same: the same FFT
    // algorithms on every rank, so the same rounding.
    auto prepare = [&] {
      prepare_multislice_plans(model, spec);
      MultisliceSpec one = spec;
      one.phonon_configs = 1;
      run_multislice(model, one, {});
    };
    if (parallel::is_root())
      prepare();
    parallel::barrier();
    if (!parallel::is_root())
      prepare();
    parallel::barrier();

    // t1: rank 0 alone (the others wait in a barrier that sleeps).
    std::vector<float> serial_mean, split_mean;
    double t1 = 0;
    if (parallel::is_root()) {
      const double t0 = wall_now();
      double no_wait = 0;
      phonon_run(model, spec, false, serial_mean, no_wait);
      t1 = wall_now() - t0;
    }
    parallel::barrier();
    // tN: every rank its share; rank 0 collects.
    double wait = 0;
    spec.config_stride = n;
    spec.config_offset = parallel::rank();
    const double t0 = wall_now();
    const double comm_before = parallel::communication_seconds();
    const double work = phonon_run(model, spec, n > 1, split_mean, wait);
    const double comm = parallel::communication_seconds() - comm_before - wait;
    parallel::barrier();
    const double tn = wall_now() - t0;
    const std::vector<double> works = parallel::all_values(work), comms = parallel::all_values(comm),
                              waits = parallel::all_values(wait);
    if (!parallel::is_root())
      return EXIT_OK;
    const bool same = serial_mean.size() == split_mean.size() &&
                      std::memcmp(serial_mean.data(), split_mean.data(), serial_mean.size() * sizeof(float)) == 0;
    std::printf("# bench mpi: Fe3O4 [110] 3x4x%d (%zu atoms), %dx%d, %d phonon configurations, %d rank(s) x %d thread(s)\n",
                repeat_z, model.atoms.size(), gpts, gpts, phonons, n, spec.threads);
    std::printf("%6s %10s %10s %10s\n", "rank", "work_s", "wait_s", "comm_s");
    for (int r = 0; r < n; ++r)
      std::printf("%6d %10.3f %10.3f %10.4f\n", r, works[std::size_t(r)], waits[std::size_t(r)], comms[std::size_t(r)]);
    std::printf("t1_s %.3f  tN_s %.3f  speedup %.3f  efficiency %.3f  comm_share_rank0 %.4f  identical_to_1_rank %s\n",
                t1, tn, t1 / tn, t1 / (n * tn), comms[0] / tn, same ? "yes" : "no");
    return EXIT_OK;
  });
}

}  // namespace epitem::cli
