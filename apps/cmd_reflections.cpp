// `epitem reflections STRUCTURE`: kinematic reflection table (families merged by symmetry,
// |F| with electron scattering factors, intensity normalised to the strongest = 100).
#include <iostream>

#include "cli.hpp"
#include "epitem/error.hpp"
#include "epitem/kinematic.hpp"
#include "epitem/output.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"

namespace epitem::cli {

namespace {

int reflections_main(int argc, char** argv) {
  return run_guarded("reflections", [&]() {
    po::options_description opts("reflections options");
    std::string structure, out, zone_text, table_name;
    int laue_zone = 0;
    bool all = false, no_merge = false;
    opts.add_options()
      ("structure", po::value<std::string>(&structure)->required(),
       "CIF file, extxyz file or built-in name (Fe3O4, NiFe, NiFe2O4, Ni, Fe, Au, Si)")
      ("dmin", po::value<std::string>()->default_value("1.2A"),
       "smallest d-spacing listed [Å] (also 0.12nm, or a reciprocal length 8.3/nm)")
      ("zone", po::value<std::string>(&zone_text),
       "only reflections of zone axis [uvw] (g·uvw = 0), e.g. 1,1,0 or 1-10")
      ("laue-zone", po::value<int>(&laue_zone)->default_value(0),
       "with --zone: Laue zone n (g·uvw = n·m, m = the lattice-centring period, e.g. 2 for fcc "
       "[110]; 0 = zero-order zone)")
      ("energy", po::value<std::string>()->default_value("200kV"),
       "beam energy for the two_theta_mrad column [kV] (200kV, 300keV)")
      ("table", po::value<std::string>(&table_name)->default_value("kirkland"),
       "electron scattering factors: kirkland | peng")
      ("all", po::bool_switch(&all), "also list kinematically forbidden families (intensity 0)")
      ("no-merge", po::bool_switch(&no_merge),
       "list every hkl separately instead of merging symmetry-equivalent families")
      ("out,o", po::value<std::string>(&out),
       "write the CSV here (+ JSON sidecar) instead of stdout");
    po::positional_options_description pos;
    pos.add("structure", 1);
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(
            argc, argv,
            "usage: epitem reflections STRUCTURE [--dmin 1.2A] [--zone u,v,w] [--out table.csv]\n"
            "Kinematic reflections down to --dmin: F = Σ occ f_e(g) exp(−Bg²/4) exp(2πi g·r) with\n"
            "electron scattering factors. CSV h,k,l,d_A,multiplicity,F_abs,intensity,g_invA,\n"
            "powder_intensity,two_theta_mrad (F_abs in Å; intensity = |F|², strongest = 100;\n"
            "powder_intensity = multiplicity·|F|²; g in 1/Å).",
            opts, pos, vm, common))
      return EXIT_OK;
    const double dmin_A = parse_spacing_A(vm["dmin"].as<std::string>(), "--dmin");
    if (!(dmin_A >= 0.1))
      fail("--dmin ", dmin_A, " Å is too small; use a value >= 0.1 Å (e.g. 1.2A)");
    double energy_eV = 0;
    get_quantity(vm, "energy", Dimension::Energy, energy_eV, units::keV);
    if (!(energy_eV > 0))
      fail("--energy must be > 0, got ", energy_eV, " eV");
    const ScatteringTable table = parse_scattering_table(table_name);
    ReflectionOptions options;
    options.merge_families = !no_merge;
    options.include_forbidden = all;
    if (vm.count("zone")) {
      const auto z = parse_int_triple(zone_text, "--zone");
      options.use_zone = true;
      options.zone_uvw = Vec3(z[0], z[1], z[2]);
      options.laue_zone = laue_zone;
    } else if (laue_zone != 0) {
      throw po::error("--laue-zone needs --zone");
    }

    RunRecord rec("reflections");
    rec.add("structure", structure);
    rec.add("dmin_A", dmin_A, "Å");
    if (options.use_zone) {
      rec.add("zone_uvw", Json(std::vector<double>{options.zone_uvw[0], options.zone_uvw[1],
                                                   options.zone_uvw[2]}));
      rec.add("laue_zone", double(laue_zone));
    }
    rec.add("energy_eV", energy_eV, "eV");
    rec.add("wavelength_A", electron_wavelength_A(energy_eV), "Å");
    rec.add("scattering_table", std::string(scattering_table_name(table)));
    rec.add("merge_families", std::string(options.merge_families ? "yes" : "no"));
    rec.add("include_forbidden", std::string(all ? "yes" : "no"));
    if (!out.empty())
      rec.add("out", out);
    if (common.dry_run) {
      rec.echo(std::cout);
      std::cout << "# dry run: memory needed < 10 MiB; nothing computed\n";
      return EXIT_OK;
    }

    const Crystal crystal = read_crystal(structure);
    const auto list = list_reflections(crystal, dmin_A, table, options);
    const std::string csv = reflections_csv(list, energy_eV);
    rec.result("reflections", double(list.size()));
    rec.result("crystal", crystal.name);
    rec.result("F000_A", std::abs(structure_factor_A(crystal, {0, 0, 0}, table)));
    if (!common.quiet)
      rec.echo(std::cout);
    if (out.empty()) {
      std::cout << csv;
    } else {
      rec.write_text_output(out, csv, {structure});
      if (!common.quiet)
        std::cout << "# " << list.size() << " reflections of " << crystal.name << "; wrote "
                  << out << " and " << sidecar_path(out) << "\n";
    }
    return EXIT_OK;
  });
}

}  // namespace

EPITEM_COMMAND(reflections, 20, "kinematic reflection table: d, multiplicity, |F|, intensity",
               reflections_main);

}  // namespace epitem::cli
