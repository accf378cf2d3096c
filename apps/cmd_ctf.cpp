// `epitem ctf`: the objective lens as a table vs spatial frequency (χ, sin χ, envelopes, the
// damped CTF) in CSV, plus the Scherzer defocus, the first CTF zero and the information limit.
#include <cmath>
#include <iostream>
#include <sstream>

#include "cli.hpp"
#include "epitem/error.hpp"
#include "epitem/output.hpp"
#include "epitem/units.hpp"
#include "imaging_options.hpp"

namespace epitem::cli {
namespace {

int ctf_main(int argc, char** argv) {
  return run_guarded("ctf", [&]() -> int {
    const std::string usage =
        "usage: epitem ctf [lens and coherence options] [--k-max 1/A] [--out ctf.csv]\n\n"
        "Tabulates chi(k), sin chi, the temporal and spatial envelopes and CTF = sin(chi)*E_t*E_s\n"
        "along k_x (round-lens part; astigmatism enters along +x).\n\n" +
        std::string(IMAGING_CONVENTIONS);
    po::options_description opts("Table");
    opts.add_options()
      ("energy", po::value<std::string>()->default_value("200kV"), "beam energy [eV]")
      ("k-max", po::value<std::string>()->default_value("1/A"), "largest spatial frequency [1/Å]")
      ("points", po::value<int>()->default_value(201), "rows of the table")
      ("out,o", po::value<std::string>(), "CSV file (default: stdout)");
    opts.add(imaging_options("1mm"));
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(argc, argv, usage, opts, {}, vm, common))
      return EXIT_OK;
    double energy_eV = 0, k_max = 0;
    get_quantity(vm, "energy", Dimension::Energy, energy_eV);
    get_quantity(vm, "k-max", Dimension::InverseLength, k_max);
    const int points = vm["points"].as<int>();
    if (!(k_max > 0) || points < 2)
      fail("--k-max must be > 0 1/Å and --points ≥ 2, got ", k_max, " and ", points);
    const ImagingSetup setup = resolve_imaging_options(vm, energy_eV);
    const Lens& lens = setup.lens;
    const double lam = lens.wavelength_A();
    RunRecord record("ctf");
    record.add("energy_eV", energy_eV, "eV");
    record_imaging(record, setup, Grid{2, 2, 1 / k_max, 1 / k_max});
    // First zero of sin χ after k = 0, on a fine scan.
    double first_zero = 0;
    const double chi0 = chi_rad(lens.aberrations, lam, 1e-6, 0);
    for (int i = 1; i <= 100000 && first_zero == 0; ++i) {
      const double k = 4.0 * i / 100000;
      const double chi = chi_rad(lens.aberrations, lam, k, 0);
      if (std::abs(chi) >= PI && std::signbit(chi) == std::signbit(chi0))
        first_zero = k;
      if (chi != 0 && std::signbit(chi) != std::signbit(chi0))
        first_zero = k;
    }
    // The conventional information limit is the temporal-coherence one (defocus-independent);
    // the product of both envelopes at the chosen defocus is a different, defocus-dependent number.
    const double info_limit = temporal_information_limit_invA(lam, lens.focal_spread_A);
    const double env_limit = combined_envelope_limit_invA(lens.aberrations, lam, lens.focal_spread_A,
                                                          lens.convergence_mrad);
    record.result("first_ctf_zero_invA", first_zero);
    record.result("information_limit_invA", info_limit);
    record.result("information_limit_definition",
                  Json("temporal envelope E_t = exp(-1/2 (pi lambda sigma k^2)^2) = e^-2: "
                       "k = sqrt(2/(pi lambda sigma))"));
    record.result("combined_envelope_limit_invA", env_limit);
    record.result("combined_envelope_limit_definition",
                  Json("E_t * E_s = e^-2 along k_x at the defocus used (" + setup.defocus_text + ")"));
    if (!common.quiet)
      record.echo(std::cout);
    auto inv = [](double k) { return k > 0 ? 1 / k : 0.0; };
    std::cout << "# first CTF zero " << first_zero << " 1/A (" << inv(first_zero) << " A)\n"
              << "# information limit (temporal coherence, E_t = e^-2) " << info_limit << " 1/A ("
              << inv(info_limit) << " A)\n"
              << "# combined-envelope limit (E_t*E_s = e^-2 at defocus " << lens.aberrations.defocus_A
              << " A) " << env_limit << " 1/A (" << inv(env_limit) << " A)\n";
    if (common.dry_run)
      return EXIT_OK;
    std::ostringstream csv;
    csv.precision(9);
    csv << "k_invA,chi_rad,sin_chi,temporal_envelope,spatial_envelope,ctf\n";
    for (int i = 0; i < points; ++i) {
      const double k = k_max * i / (points - 1);
      const double chi = chi_rad(lens.aberrations, lam, k, 0);
      const double et = temporal_envelope(lam, lens.focal_spread_A, k);
      const double es = spatial_envelope(lens.aberrations, lam, lens.convergence_mrad, k, 0);
      const bool pass = k <= lens.aperture_invA();
      csv << k << ',' << chi << ',' << std::sin(chi) << ',' << et << ',' << es << ','
          << (pass ? std::sin(chi) * et * es : 0.0) << '\n';
    }
    if (vm.count("out")) {
      const std::string out = vm["out"].as<std::string>();
      record.add_output(out);
      write_text_file(out, csv.str());
      record.write_sidecar(out);
    } else {
      std::cout << csv.str();
    }
    return EXIT_OK;
  });
}

}  // namespace

EPITEM_COMMAND(ctf, 42, "objective lens: chi(k), CTF and envelopes vs k as CSV", ctf_main);

}  // namespace epitem::cli
