// `epitem bench imaging`: cost of HRTEM image formation vs bare FFTs of the same grid, taken in
// one run. Envelope imaging = 1 forward + 1 inverse FFT plus the transfer function (χ, envelopes
// per pixel), which a series reuses ("cached"); integrate = 1 forward + 1 inverse per node.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>

#include "cli.hpp"
#include "epitem/fft.hpp"
#include "epitem/imaging.hpp"
#include "epitem/units.hpp"

namespace epitem::cli {

namespace {

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Best of `repeats` runs of fn() [s].
template <class Fn>
double best_of(int repeats, Fn&& fn) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const double t0 = wall_seconds();
    fn();
    best = std::min(best, wall_seconds() - t0);
  }
  return best;
}

}  // namespace

int bench_imaging(int argc, char** argv) {
  return run_guarded("bench imaging", [&]() {
    po::options_description opts("bench imaging options");
    std::string sizes_text;
    int repeats = 3;
    bool integrate = false;
    opts.add_options()
      ("sizes", po::value<std::string>(&sizes_text)->default_value("512,1024"), "square grid sizes")
      ("repeats", po::value<int>(&repeats)->default_value(3), "runs per measurement (best is kept)")
      ("integrate", po::bool_switch(&integrate), "also time --coherence integrate (slow)");
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(argc, argv,
                            "usage: epitem bench imaging [--sizes 512,1024] [--integrate]\n"
                            "Times envelope imaging (200 kV, Cs 1 mm, Scherzer, sigma 21.7 A, "
                            "alpha 0.2 mrad) against a bare forward+inverse FFT pair.",
                            opts, {}, vm, common))
      return EXIT_OK;
    if (repeats < 1)
      throw po::error("--repeats must be >= 1");
    const int threads = default_thread_count();
    Lens lens;
    lens.aberrations.Cs_A = 1 * units::mm;
    lens.aberrations.defocus_A = scherzer_defocus_A(lens.aberrations.Cs_A, lens.energy_eV);
    lens.focal_spread_A = 21.7;
    lens.convergence_mrad = 0.2;
    std::printf("# threads %d; wall-clock, best of %d\n", threads, repeats);
    std::printf("%6s %11s %11s %7s %11s %7s %5s %12s %6s\n", "n", "fft_pair_s", "envelope_s",
                "ratio", "cached_s", "ratio", "ffts", "integrate_s", "nodes");
    std::stringstream ss(sizes_text);
    for (std::string item; std::getline(ss, item, ',');) {
      const int n = std::stoi(item);
      if (n < 8 || n > 8192)
        throw po::error("--sizes: each size must be 8-8192, got " + item);
      const Grid g{n, n, n * 0.08, n * 0.08};
      Wave exit(g, lens.energy_eV);
      std::mt19937 rng(1);
      std::normal_distribution<float> phase(0.f, 0.3f);
      for (auto& v : exit.psi)
        v = std::polar(1.0f, phase(rng));
      const Fft2D fft(n, n, threads);
      fft.prepare();
      AlignedVector<cfloat> a = exit.psi;
      const double pair = best_of(repeats, [&] {
        fft.forward(a.data());
        fft.inverse(a.data());
      });
      long ffts = 0;
      const double envelope = best_of(repeats, [&] {
        ImageFormer former(exit);  // forward FFT of the exit wave
        former.intensity(lens, CoherenceSpec{});
        ffts = former.fft_count();
      });
      const TransferFunction transfer(lens, g);
      const double cached = best_of(repeats, [&] {
        ImageFormer former(exit);
        former.intensity(transfer);
      });
      double integ = 0;
      int nodes = 0;
      if (integrate) {
        CoherenceSpec c;
        c.model = CoherenceModel::Integrate;
        nodes = coherence_nodes(lens, c, g).total;
        integ = best_of(1, [&] {
          ImageFormer former(exit);
          former.intensity(lens, c);
        });
      }
      std::printf("%6d %11.5f %11.5f %7.2f %11.5f %7.2f %5ld %12.3f %6d\n", n, pair, envelope,
                  envelope / pair, cached, cached / pair, ffts, integ, nodes);
    }
    return EXIT_OK;
  });
}

}  // namespace epitem::cli
