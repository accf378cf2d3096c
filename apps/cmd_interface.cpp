// `epitem interface`: epitaxial interface model (two crystals, orientation relationship, tilt,
// ledges, slab/cap/Wulff overlayer) → extxyz/CIF/POSCAR + JSON sidecar + PNG projection.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli.hpp"
#include "epitem/element.hpp"
#include "epitem/error.hpp"
#include "epitem/interface.hpp"
#include "epitem/interface_options.hpp"
#include "epitem/lammps_io.hpp"
#include "epitem/output.hpp"
#include "epitem/png.hpp"
#include "epitem/projected_area.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"

namespace epitem::cli {

namespace {

std::string fmt(double v, int prec = 4) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(prec) << v;
  return os.str();
}

// "[1 1 0]", or "1/2[-1 1 -2]" for a centring translation.
std::string uvw_str(const Vec3& v) {
  for (int n : {1, 2, 3, 4, 6, 8, 12}) {
    const Vec3 m = v * n;
    if ((m - m.array().round().matrix()).norm() < 1e-6) {
      const Vec3 r = n == 1 ? reduce_indices(m, 1e-6) : m;
      std::ostringstream os;
      if (n > 1)
        os << "1/" << n;
      os << "[" << std::lround(r[0]) << " " << std::lround(r[1]) << " " << std::lround(r[2]) << "]";
      return os.str();
    }
  }
  std::ostringstream os;
  os << std::setprecision(4) << "[" << v[0] << " " << v[1] << " " << v[2] << "]";
  return os.str();
}

double peak_rss_bytes() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) * 1024.0;  // Linux reports KiB
}

void print_summary(const InterfaceSpec& spec, const InterfaceResult& res) {
  const InterfaceReport& r = res.report;
  std::cout << "# box            " << fmt(r.box_A[0], 3) << " x " << fmt(r.box_A[1], 3) << " x "
            << fmt(r.box_A[2], 3) << " Å (pbc x y; beam +z)\n";
  for (const std::string& note : r.boundary_notes)
    std::cout << "# boundary       " << note << "\n";
  std::cout << "# overlayer zone " << uvw_str(r.overlayer_zone_uvw) << " along the beam (tilt "
            << r.tilt_deg << " deg)\n";
  const NagaiTilt& n = r.nagai;
  std::cout << "# nagai tilt     " << fmt(n.tilt_about_axis_deg, 3) << " deg about the tilt axis ("
            << fmt(n.tilt_deg, 3) << " deg about the step edges, cos phi " << fmt(n.axis_cos, 3)
            << "); applied " << fmt(r.tilt_deg, 3) << " deg"
            << (spec.tilt_from_nagai ? " (--tilt nagai)" : "") << "\n"
            << "#   inputs       tan da = (d_s - d_o)/d_o * h/w: h " << fmt(n.step_height_A, 3)
            << " Å, w " << fmt(n.terrace_width_A, 3) << " Å (alpha " << fmt(n.vicinal_angle_deg, 3)
            << " deg); " << n.overlayer_planes << " overlayer planes d_o " << fmt(n.overlayer_spacing_A, 4)
            << " Å per step, d_s = h/" << n.overlayer_planes << " " << fmt(n.substrate_spacing_A, 4)
            << " Å, mismatch " << fmt(100 * n.mismatch, 2) << " %"
            << (n.step_height_A == 0 ? " (flat interface: no steps)" : "") << "\n";
  for (const InterfaceMismatch& m : r.mismatch) {
    std::cout << "# mismatch " << m.axis << "     " << spec.substrate.name << " "
              << uvw_str(m.substrate_uvw) << " " << fmt(m.substrate_repeat_A, 3) << " Å vs "
              << spec.overlayer.name << " " << uvw_str(m.overlayer_uvw) << " "
              << fmt(m.overlayer_repeat_A, 3) << " Å: 1:" << m.n_overlayer << " "
              << fmt(100 * m.mismatch, 2) << " %, best " << m.coincidence_substrate << ":"
              << m.coincidence_overlayer << " " << fmt(100 * m.coincidence_strain, 2) << " %\n";
  }
  std::cout << "# atoms          " << res.model.phase_names[0] << " " << r.n_substrate << ", "
            << res.model.phase_names[1] << " " << r.n_overlayer << " (total "
            << res.model.atoms.size() << ")\n"
            << "# removed        " << r.removed_interface << " overlayer atoms closer than the "
            << "cutoff to the substrate, " << r.removed_boundary << " across periodic seams; "
            << r.vacancies << " mixed-site vacancies\n";
  std::cout << "# cutoffs        pair  cutoff_A  shortest_in_model_A  source\n";
  for (const PairCutoff& c : r.cutoffs) {
    std::string shortest = "-";
    for (const ShortestPair& p : r.shortest)
      if (p.Z1 == c.Z1 && p.Z2 == c.Z2)
        shortest = fmt(p.distance_A, 3) + (p.cross_phase ? " (interface)" : "");
    std::cout << "#   " << element_symbol(c.Z1) << "-" << element_symbol(c.Z2) << "  "
              << fmt(c.cutoff_A, 3) << "  " << shortest << "  " << c.source << "\n";
  }
  std::cout << "# voids          " << r.voids.size() << " (probe " << fmt(r.void_probe_A, 2)
            << " Å), total volume " << fmt(r.void_volume_A3, 1) << " Å³\n";
  for (std::size_t i = 0; i < r.voids.size() && i < 10; ++i)
    std::cout << "#   void " << i + 1 << " at (" << fmt(r.voids[i].center_A[0], 1) << ", "
              << fmt(r.voids[i].center_A[1], 1) << ", " << fmt(r.voids[i].center_A[2], 1)
              << ") Å, " << fmt(r.voids[i].volume_A3, 1) << " Å³\n";
  std::cout << "# seed           " << r.seed << "\n";
}

// Each phase's area projected along the beam (projected_area.hpp): what `epitem phasemap` of a
// simulated image of this model should measure. An extra: a failure only warns.
void report_projected_areas(const InterfaceSpec& spec, const InterfaceResult& res, RunRecord& rec, bool quiet) {
  const Vec3 box = res.model.box_lengths_A();
  ProjectedAreaSpec area_spec;
  area_spec.sampling_A = std::max(0.1, std::sqrt(box.x() * box.y() / 4e6));  // ≤ 4 M pixels
  try {
    const ProjectedAreas areas = projected_phase_areas(
        res.model, {{&spec.substrate, res.report.substrate_rotation}, {&spec.overlayer, res.report.overlayer_rotation}},
        area_spec);
    Json json = Json::object();
    for (size_t p = 0; p < areas.area_A2.size(); ++p)
      json.set(res.model.phase_names[p], areas.area_A2[p] / 100);
    rec.result("projected_area_nm2", json);
    if (!quiet)
      std::cout << "# projected area " << res.model.phase_names[0] << " " << fmt(areas.area_A2[0] / 100, 3) << " nm², "
                << res.model.phase_names[1] << " " << fmt(areas.area_A2[1] / 100, 3)
                << " nm² (along the beam; what `epitem phasemap` should measure)\n";
  } catch (const Error& e) {
    warn_to_stderr()(std::string("projected areas not computed: ") + e.what());
  }
}

// Void volume vs the cutoff choice (issue 14): the voids follow from which atoms the cutoffs
// remove, so the table shows how much of the reported volume is the cutoff's doing.
void report_void_scan(const InterfaceSpec& spec, RunRecord& rec, bool quiet) {
  const std::vector<VoidVsCutoff> rows = void_volume_vs_cutoff(spec);
  Json json = Json::array();
  for (const VoidVsCutoff& r : rows) {
    Json e = Json::object();
    e.set("cutoffs", r.cutoffs);
    e.set("removed_interface_overlaps", r.removed_interface);
    e.set("void_count", r.n_voids);
    e.set("void_volume_A3", r.void_volume_A3);
    json.push(e);
    if (!quiet)
      std::cout << "# void vs cutoff " << r.cutoffs << ": " << r.removed_interface << " removed, "
                << r.n_voids << " voids, " << fmt(r.void_volume_A3, 1) << " Å³\n";
  }
  rec.result("void_volume_vs_cutoff", json);
}

int interface_main(int argc, char** argv) {
  return run_guarded("interface", [&]() {
    po::options_description opts("interface options");
    std::string out, png, lammps;
    opts.add_options()
      ("preset", po::value<std::string>(), "start from a preset (nife-fe3o4); other options override it")
      ("substrate", po::value<std::string>(), "substrate: CIF, extxyz or built-in name (Fe3O4)")
      ("overlayer", po::value<std::string>(), "overlayer: CIF, extxyz or built-in name (NiFe)")
      ("plane", po::value<std::string>(),
       "interface planes h,k,l[:h,k,l] substrate:overlayer; write --plane=-1,1,1:-1,1,1 "
       "(normal points into the overlayer)")
      ("direction", po::value<std::string>(), "parallel in-plane directions u,v,w[:u,v,w]")
      ("zone", po::value<std::string>(), "substrate zone axis along the beam u,v,w[:overlayer u,v,w to check]")
      ("view", po::value<std::string>(), "edge-on (interface contains the beam; default) | plan")
      ("tilt", po::value<std::string>(), "overlayer tilt about --tilt-axis [deg] (4.2deg), or 'nagai': "
       "the Nagai tilt of the ledges, about the step edges (docs/interface.md)")
      ("tilt-axis", po::value<std::string>(), "x | y | z (beam, default) | box vector a,b,c")
      ("box", po::value<std::string>(), "box AxBxC [Å] (60x60x40A, 6x6x4nm)")
      ("keep-box", po::bool_switch(), "do not round the box to the substrate repeat (seam instead)")
      ("no-strain", po::bool_switch(), "do not strain an untilted slab overlayer to the box (seam instead)")
      ("coherent-strain", po::value<std::string>(), "DEPTH [Å]: strain the overlayer's interfacial plane "
       "to the substrate (n overlayer repeats per substrate repeat) up to DEPTH above the interface, "
       "decaying above (docs/interface.md)")
      ("substrate-thickness", po::value<std::string>(), "substrate thickness along the normal [Å]")
      ("vacuum", po::value<std::string>(), "vacuum margin at each end of the normal axis [Å] (3A)")
      ("shape", po::value<std::string>(), "overlayer shape: slab | cap | wulff")
      ("overlayer-thickness", po::value<std::string>(), "slab thickness [Å]")
      ("radius", po::value<std::string>(), "cap radius / Wulff distance of the lowest-energy facet [Å]")
      ("center-height", po::value<std::string>(), "particle centre above the interface [Å] (0 = hemisphere)")
      ("facets", po::value<std::string>(), "Wulff facets 'h,k,l:energy;...' e.g. '1,1,1:1.0;1,0,0:1.15'")
      ("ledge-height", po::value<int>(), "ledge height in substrate layers (0 = flat)")
      ("terrace-width", po::value<std::string>(), "terrace width [Å]")
      ("ledges", po::value<std::string>(), "staircase: updown (default: rises to the middle, falls back) | "
       "vicinal (rises terrace by terrace, one tall step at the boundary) | auto (vicinal, with the "
       "terrace width that makes --tilt Nagai-consistent; box adjusted to whole terraces)")
      ("seed", po::value<unsigned long long>(), "random seed for mixed-occupancy sites")
      ("cutoff", po::value<std::string>(), "pair cutoffs El-El=length,... e.g. Ni-O=1.6A")
      ("cutoff-scale", po::value<double>(), "covalent rule: cutoff = scale × sum of covalent radii (0.8); "
       "giving it selects --cutoff-rule covalent")
      ("cutoff-rule", po::value<std::string>(), "default pair cutoffs: bulk (shortest bond of the pair in "
       "either bulk crystal − 0.02 Å; default) | covalent (0.8 × radii sum); docs/interface.md")
      ("no-void-scan", po::bool_switch(), "skip the void volume vs cutoff table (3 extra builds)")
      ("probe", po::value<std::string>(), "void probe radius [Å] (default: largest bulk hole + 0.1 Å)")
      ("no-voids", po::bool_switch(), "skip the void search")
      ("out,o", po::value<std::string>(&out), "output model: .xyz/.extxyz, .cif, POSCAR/.vasp")
      ("png", po::value<std::string>(&png), "PNG projection along the beam")
      ("lammps", po::value<std::string>(&lammps), "also write a LAMMPS data file (atom_style atomic, one "
       "type per element per phase) for a relaxation; read the dump back with epitem convert "
       "dump.lammpstrj --lammps-types FILE out.xyz (docs/interface.md)")
      ("png-scale", po::value<double>()->default_value(10.0), "PNG pixels per Å")
      ("bench", po::bool_switch(), "benchmark: build a 50x50x30 nm edge-on slab model with the "
       "preset OR, print time and peak memory");
    po::positional_options_description pos;
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(argc, argv,
                            "usage: epitem interface [--preset nife-fe3o4] [--substrate Fe3O4 "
                            "--overlayer NiFe --plane=-1,1,1:-1,1,1 --direction 1,1,0:1,1,0 "
                            "--zone 1,1,0 --tilt 4.2deg --box 60x60x40A --shape slab|cap|wulff "
                            "...] --out model.xyz [--png model.png]\n"
                            "Builds an epitaxial interface model (beam +z, periodic in x, y).",
                            opts, pos, vm, common))
      return EXIT_OK;
    const bool bench = vm["bench"].as<bool>();
    if (out.empty() && !common.dry_run && !bench)
      throw po::error("--out is required (e.g. --out model.xyz)");

    InterfaceSpec spec;
    const bool preset = vm.count("preset") || bench;
    if (preset) {
      spec = preset_interface(vm.count("preset") ? vm["preset"].as<std::string>() : "nife-fe3o4");
    } else if (!vm.count("substrate") || !vm.count("overlayer")) {
      throw po::error("give --preset NAME or both --substrate and --overlayer");
    }
    if (bench) {  // issue 3: 50 × 50 × 30 nm³, ≈ 7 million atoms
      spec.box_A = Vec3(500, 500, 300);
      spec.substrate_thickness_A = 240;
      spec.shape = OverlayerShape::Slab;
      spec.overlayer_thickness_A = 240;
      spec.terrace_width_A = 100;
    }
    // The options as typed, parsed by the library (interface_options.hpp; the Python module
    // reads its keyword arguments with the same parser).
    OptionTexts texts;
    for (const std::string& name : interface_option_names()) {
      if (name == "preset" || !vm.count(name) || vm[name].defaulted())
        continue;
      const boost::any& v = vm[name].value();
      if (const auto* b = boost::any_cast<bool>(&v))
        texts[name] = *b ? "true" : "false";
      else if (const auto* i = boost::any_cast<int>(&v))
        texts[name] = std::to_string(*i);
      else if (const auto* u = boost::any_cast<unsigned long long>(&v))
        texts[name] = std::to_string(*u);
      else if (const auto* d = boost::any_cast<double>(&v)) {
        std::ostringstream os;
        os << std::setprecision(17) << *d;
        texts[name] = os.str();
      } else
        texts[name] = vm[name].as<std::string>();
    }
    try {
      apply_interface_options(spec, texts);
    } catch (const OptionUsageError& e) {
      throw po::error(e.what());
    }
    const double png_scale = vm["png-scale"].as<double>();
    if (!(png_scale > 0 && png_scale <= 100))
      fail("--png-scale must be in (0, 100] pixels per Å, got ", png_scale);
    spec.validate();

    RunRecord rec("interface");
    if (preset)
      rec.add("preset", vm.count("preset") ? vm["preset"].as<std::string>() : "nife-fe3o4 (bench)");
    rec.add("substrate", spec.substrate.name + " (" + spec.substrate.source + ")");
    rec.add("overlayer", spec.overlayer.name + " (" + spec.overlayer.source + ")");
    rec.add("view", std::string(spec.view == InterfaceView::EdgeOn ? "edge-on" : "plan-view"));
    if (spec.tilt_from_nagai)
      rec.add("tilt", std::string("nagai"));
    else
      rec.add("tilt_deg", spec.tilt_deg, "deg");
    rec.add("ledges", std::string(vm.count("ledges") ? vm["ledges"].as<std::string>()
                                  : spec.vicinal_ledges ? "vicinal" : "updown"));
    rec.add("box_requested_A", Json(std::vector<double>{spec.box_A[0], spec.box_A[1], spec.box_A[2]}));
    rec.add("substrate_thickness_A", spec.substrate_thickness_A, "Å");
    rec.add("shape", std::string(spec.shape == OverlayerShape::Slab ? "slab"
                     : spec.shape == OverlayerShape::Cap ? "cap" : "wulff"));
    if (spec.shape == OverlayerShape::Slab)
      rec.add("overlayer_thickness_A", spec.overlayer_thickness_A, "Å");
    else {
      rec.add("particle_radius_A", spec.particle_radius_A, "Å");
      rec.add("particle_center_height_A", spec.particle_center_height_A, "Å");
    }
    rec.add("ledge_height_layers", double(spec.ledge_height_layers));
    rec.add("terrace_width_A", spec.terrace_width_A, "Å");
    rec.add("seed", std::to_string(spec.seed));
    rec.add("cutoff_scale", spec.cutoff_scale);
    // Estimate: substrate slab plus overlayer slab or half-sphere, at bulk densities.
    const auto density = [](const Crystal& c) {
      double n = 0;
      for (const Site& site : c.sites)
        n += site.occupancy;
      return n / c.lattice.volume_A3();
    };
    const int na = spec.view == InterfaceView::EdgeOn ? 1 : 2;
    const double area = spec.box_A.prod() / spec.box_A[na];
    const double ov_volume = spec.shape == OverlayerShape::Slab
                                 ? area * spec.overlayer_thickness_A
                                 : 2.0 / 3.0 * PI * std::pow(spec.particle_radius_A, 3);
    const double est_atoms = area * spec.substrate_thickness_A * density(spec.substrate) +
                             ov_volume * density(spec.overlayer);
    if (common.dry_run) {
      rec.echo(std::cout);
      std::cout << "# dry run: about " << std::lround(est_atoms) << " atoms, memory about "
                << format_bytes(est_atoms * 2 * sizeof(Atom)) << "; nothing built\n";
      return EXIT_OK;
    }
    if (!common.quiet)
      rec.echo(std::cout);

    ProgressBar bar(common.quiet);
    const auto t0 = std::chrono::steady_clock::now();
    InterfaceResult res = build_interface(spec, bar.callback());
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bar.finish();
    if (!common.quiet)
      print_summary(spec, res);
    Json report = interface_report_json(spec, res.report);
    rec.result("interface", report);
    if (!bench)
      report_projected_areas(spec, res, rec, common.quiet);
    // Three more builds: skipped for large models (say so) to keep the command's cost bounded.
    if (!bench && spec.find_voids && !vm["no-void-scan"].as<bool>()) {
      if (res.model.atoms.size() <= 1000000)
        report_void_scan(spec, rec, common.quiet);
      else if (!common.quiet)
        std::cout << "# void vs cutoff skipped (" << res.model.atoms.size()
                  << " atoms > 1e6: three more builds); run a smaller --box to see it\n";
    }
    rec.result("build_seconds", seconds);
    if (bench) {
      std::cout << "# bench          " << res.model.atoms.size() << " atoms in " << fmt(seconds, 2)
                << " s, peak memory " << format_bytes(peak_rss_bytes()) << "\n";
      rec.result("peak_memory_bytes", peak_rss_bytes());
    }
    if (!out.empty()) {
      const std::string ext = file_extension(out);
      if (ext == "cif")
        write_cif(model_as_crystal(res.model, res.model.phase_names[0] + "_" + res.model.phase_names[1]), out);
      else
        write_model(res.model, out);
      rec.add_output(out);
    }
    if (!png.empty()) {
      write_png(render_interface_projection(res.model, res.report, png_scale), png);
      rec.add_output(png);
    }
    if (!lammps.empty()) {
      write_lammps_data(res.model, lammps);
      rec.add_output(lammps);
    }
    if (!out.empty())
      rec.write_sidecar(out);
    else if (!png.empty())
      rec.write_sidecar(png);
    return EXIT_OK;
  });
}

}  // namespace

EPITEM_COMMAND(interface, 15, "epitaxial interface model (OR, tilt, ledges, voids) → xyz/cif/poscar", interface_main);

}  // namespace epitem::cli
