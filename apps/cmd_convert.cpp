// `epitem convert IN OUT`: structure format conversion (CIF, extxyz, POSCAR); with --zone the
// crystal is oriented ([uvw] along the beam +z, --x along +x) and tiled into a model.
#include <filesystem>
#include <iostream>
#include <sstream>
#include <iomanip>

#include "cli.hpp"
#include "epitem/error.hpp"
#include "epitem/lammps_io.hpp"
#include "epitem/model.hpp"
#include "epitem/limits.hpp"
#include "epitem/output.hpp"
#include "epitem/structure_io.hpp"

namespace epitem::cli {

namespace {

namespace fs = std::filesystem;

Vec3 triple(const std::vector<int>& v) { return Vec3(v[0], v[1], v[2]); }

std::string indices_text(const Vec3& v) {
  return std::to_string(int(v[0])) + "," + std::to_string(int(v[1])) + "," +
         std::to_string(int(v[2]));
}

/// The crystal's own cell as a periodic model (a ∥ x, b in the xy plane), tiled n0×n1×n2.
AtomicModel unrotated_model(const Crystal& c, const std::array<int, 3>& rep) {
  AtomicModel m;
  const Mat3 a = c.lattice.direct_A();
  m.cell_A = a * Vec3(rep[0], rep[1], rep[2]).asDiagonal();
  m.pbc = {true, true, true};
  m.phase_names = {c.name.empty() ? std::string("crystal") : c.name};
  for (int i = 0; i < rep[0]; ++i)
    for (int j = 0; j < rep[1]; ++j)
      for (int k = 0; k < rep[2]; ++k)
        for (const Site& s : c.sites) {
          Atom at;
          at.Z = s.Z;
          at.occupancy = s.occupancy;
          at.u_iso_A2 = s.u_iso_A2;
          at.pos_A = a * (s.frac + Vec3(i, j, k));
          m.atoms.push_back(at);
        }
  return m;
}

bool is_extxyz_path(const std::string& p) {
  std::string e = file_extension(p);
  return e == "xyz" || e == "extxyz";
}

int convert_main(int argc, char** argv) {
  return run_guarded("convert", [&]() {
    po::options_description opts("convert options");
    std::string in, out;
    opts.add_options()
      ("input", po::value<std::string>(&in)->required(),
       "CIF, extxyz or POSCAR file (.vasp, POSCAR*, CONTCAR*) or built-in name (Fe3O4, NiFe, ...)")
      ("output", po::value<std::string>(&out)->required(),
       "output file: .xyz/.extxyz (extended XYZ), .cif (P 1), .vasp/POSCAR (VASP 5, Cartesian), "
       ".lmp/.data (LAMMPS data, atom_style atomic, one type per element per phase)")
      ("lammps-types", po::value<std::string>(),
       "LAMMPS data file written with the model: maps the atom types of a dump input "
       "(.lammpstrj/.dump; docs/interface.md)")
      ("zone", po::value<std::string>(),
       "zone axis [uvw] put along the beam +z, e.g. 1,1,0 or 110 (builds an orthorhombic model)")
      ("x", po::value<std::string>(),
       "lattice direction along +x, perpendicular to --zone (default: smallest cell; cubic "
       "[110] → x ∥ -1,1,0, y ∥ 0,0,1)")
      ("repeat", po::value<std::string>(),
       "repeats along x,y,z of the oriented cell (or a,b,c without --zone), e.g. 3,4,10")
      ("max-index", po::value<int>()->default_value(12),
       "largest lattice index searched for the orthorhombic repeat");
    po::positional_options_description pos;
    pos.add("input", 1).add("output", 1);
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(argc, argv,
                            "usage: epitem convert IN OUT [--zone u,v,w [--x u,v,w]] "
                            "[--repeat nx,ny,nz]\n"
                            "Converts between CIF, extended XYZ and POSCAR; with --zone, orients "
                            "the crystal along the beam (+z) into a model for multislice.",
                            opts, pos, vm, common))
      return EXIT_OK;

    std::array<int, 3> rep = {1, 1, 1};
    if (vm.count("repeat")) {
      auto r = parse_int_triple(vm["repeat"].as<std::string>(), "--repeat");
      for (int i = 0; i < 3; ++i) {
        if (r[i] < 1)
          fail("--repeat ", vm["repeat"].as<std::string>(), ": each repeat must be >= 1");
        rep[i] = r[i];
      }
    }
    const bool oriented = vm.count("zone") > 0;
    Vec3 zone = Vec3::Zero(), xdir = Vec3::Zero();
    if (oriented)
      zone = triple(parse_int_triple(vm["zone"].as<std::string>(), "--zone"));
    if (vm.count("x")) {
      if (!oriented)
        throw po::error("--x needs --zone");
      xdir = triple(parse_int_triple(vm["x"].as<std::string>(), "--x"));
    }
    const int max_index = vm["max-index"].as<int>();
    if (max_index < 1 || max_index > 30)
      throw po::error("--max-index must be in 1..30");
    if (oriented && zone.isZero())
      fail("--zone 0,0,0 is not a direction; give a zone axis such as 1,1,0");

    const std::string ext = file_extension(out);
    const std::string fname = fs::path(out).filename().string();
    const bool to_cif = ext == "cif";
    const bool to_poscar = ext == "vasp" || ext == "poscar" || fname.rfind("POSCAR", 0) == 0 ||
                           fname.rfind("CONTCAR", 0) == 0;
    const bool to_lammps = ext == "lmp" || ext == "data";
    if (!to_cif && !to_poscar && !to_lammps && !is_extxyz_path(out))
      fail(out, ": unknown output format '.", ext, "'; use .xyz (extxyz), .cif, .vasp/POSCAR or .lmp");
    const std::string in_ext = file_extension(in);
    const bool lammps_data_in = in_ext == "lmp" || in_ext == "data";
    const bool lammps_dump_in = in_ext == "lammpstrj" || in_ext == "dump";
    if (lammps_dump_in && !vm.count("lammps-types"))
      throw po::error("a LAMMPS dump input needs --lammps-types DATA (the data file written with the "
                      "model, e.g. by epitem convert model.xyz model.lmp)");
    // Never overwrite the input (nor with the sidecar), including through another spelling or a
    // link of the same file.
    std::error_code ec;
    plan_outputs({out, sidecar_path(out)}, {in});

    RunRecord rec("convert");
    rec.add("input", in);
    rec.add("output", out);
    if (oriented) {
      rec.add("zone_uvw", indices_text(zone));
      rec.add("x_uvw", xdir.isZero() ? std::string("auto") : indices_text(xdir));
    }
    rec.add("repeat", indices_text(Vec3(rep[0], rep[1], rep[2])));

    // The input: an extxyz model keeps its phases; anything else is read as a crystal.
    const bool model_input = (is_extxyz_path(in) || lammps_data_in || lammps_dump_in) && fs::exists(in, ec);
    AtomicModel model;
    Crystal crystal;
    if (model_input && (lammps_data_in || lammps_dump_in)) {
      if (oriented || rep != std::array<int, 3>{1, 1, 1})
        fail("--zone/--repeat do not apply to a LAMMPS input (it is a model, not a crystal)");
      model = lammps_data_in ? read_lammps_data(in)
                             : read_lammps_dump(in, read_lammps_type_map(vm["lammps-types"].as<std::string>()));
    } else if (model_input && !oriented) {
      model = read_extxyz(in);
      if (rep != std::array<int, 3>{1, 1, 1})
        fail("--repeat on an extxyz model needs --zone (or tile the crystal it came from)");
    } else {
      crystal = read_crystal(in);
      if (oriented)
        model = orient_crystal(crystal, zone, xdir, {1, 1, 1}, max_index);
    }
    // Atom count of the result; the oriented cell above is one repeat (a few hundred atoms).
    const size_t tiles = size_t(rep[0]) * size_t(rep[1]) * size_t(rep[2]);
    const size_t n_atoms = oriented      ? model.atoms.size() * tiles
                           : model_input ? model.atoms.size()
                                         : crystal.sites.size() * tiles;
    // In double: --repeat 100000,100000,100000 overflows the product above. An atom is held
    // twice while tiling and is ~70 bytes of text.
    const double atoms_estimate = double(rep[0]) * double(rep[1]) * double(rep[2]) *
                                  double(oriented ? model.atoms.size() : model_input ? 1 : crystal.sites.size());
    std::ostringstream atoms_text;
    atoms_text << std::setprecision(3) << atoms_estimate;
    require_memory("convert --repeat " + indices_text(Vec3(rep[0], rep[1], rep[2])) + " (" +
                       atoms_text.str() + " atoms)",
                   atoms_estimate * 2 * double(sizeof(Atom)), "use smaller --repeat counts");
    require_work("convert --repeat (writing the model)", atoms_estimate * 70, "bytes of text",
                 "use smaller --repeat counts", 1e11);
    if (oriented) {
      Vec3 len = model.box_lengths_A();
      rec.add("box_A", std::to_string(len[0] * rep[0]) + " x " + std::to_string(len[1] * rep[1]) +
                           " x " + std::to_string(len[2] * rep[2]));
    }
    rec.add("atoms", double(n_atoms));
    if (common.dry_run) {
      rec.echo(std::cout);
      std::cout << "# dry run: memory needed ~" << format_bytes(double(n_atoms) * 2 * sizeof(Atom))
                << "; nothing written\n";
      return EXIT_OK;
    }
    const bool crystal_to_cif = to_cif && !oriented && !model_input &&
                                rep == std::array<int, 3>{1, 1, 1};
    if (oriented)
      model = orient_crystal(crystal, zone, xdir, rep, max_index);
    else if (!model_input && !crystal_to_cif)
      model = unrotated_model(crystal, rep);

    if (crystal_to_cif)
      write_cif(crystal, out);  // keeps the crystal's own cell and name
    else if (to_lammps)
      write_lammps_data(model, out);
    else
      write_model(model, out);
    rec.add_output(out);
    rec.result("atoms", double(n_atoms));
    rec.write_sidecar(out);
    if (!common.quiet) {
      rec.echo(std::cout);
      std::cout << "# wrote " << out << " (" << n_atoms << " atoms) and " << sidecar_path(out)
                << "\n";
    }
    return EXIT_OK;
  });
}

}  // namespace

EPITEM_COMMAND(convert, 12, "convert CIF/extxyz/POSCAR; orient a crystal along a zone axis",
               convert_main);

}  // namespace epitem::cli
