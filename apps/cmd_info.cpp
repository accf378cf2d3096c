// `epitem info STRUCTURE`: cell, space group, formula, Z, density and the lattice-plane
// d-spacings down to --dmin, with symmetry families merged and systematic absences marked.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include "cli.hpp"
#include "epitem/crystal.hpp"
#include "epitem/element.hpp"
#include "epitem/error.hpp"
#include "epitem/image_file.hpp"
#include "epitem/limits.hpp"
#include "epitem/output.hpp"
#include "epitem/structure_io.hpp"

namespace epitem::cli {

namespace {

const char* crystal_system(int sg_number) {
  if (sg_number <= 0)
    return "unknown";
  if (sg_number <= 2)
    return "triclinic";
  if (sg_number <= 15)
    return "monoclinic";
  if (sg_number <= 74)
    return "orthorhombic";
  if (sg_number <= 142)
    return "tetragonal";
  if (sg_number <= 167)
    return "trigonal";
  if (sg_number <= 194)
    return "hexagonal";
  return "cubic";
}

/// Reduced formula and Z (formula units per cell) from the cell contents: Fe24 O32 → Fe3O4, 8.
/// Non-integer counts (partial occupancy) give Z = 1 and the cell formula.
std::pair<std::string, int> formula_and_z(const Crystal& c) {
  std::map<std::string, double> count;  // Hill order: alphabetical is enough for inorganics
  for (const auto& s : c.sites)
    count[element_symbol(s.Z)] += s.occupancy;
  long g = 0;
  bool integral = true;
  for (const auto& [el, n] : count) {
    if (std::abs(n - std::round(n)) > 1e-4)
      integral = false;
    g = std::gcd(g, std::lround(n));
  }
  if (!integral || g < 1)
    g = 1;
  std::ostringstream os;
  for (const auto& [el, n] : count) {
    double per = n / double(g);
    os << el;
    if (std::abs(per - 1) > 1e-6)
      os << std::setprecision(4) << per;
  }
  return {os.str(), int(g)};
}

/// Systematic absence from the symmetry operations alone: h is extinct when an operation
/// leaves it invariant (Rᵀh = h) but gives a phase h·t that is not an integer.
bool systematically_absent(const Crystal& c, const Vec3& h) {
  for (const auto& op : c.symops) {
    if ((op.rot.transpose() * h - h).cwiseAbs().maxCoeff() > 1e-6)
      continue;
    double phase = h.dot(op.tran);
    if (std::abs(phase - std::round(phase)) > 1e-6)
      return true;
  }
  return false;
}

struct Family {
  Vec3 hkl;
  double d_A;
  int multiplicity;
  bool allowed;
};

std::vector<Family> plane_families(const Crystal& c, double dmin_A) {
  const Lattice& lat = c.lattice;
  Vec3 hmax;
  for (int i = 0; i < 3; ++i)  // |h_i| = |g·a_i| ≤ |a_i| / d_min
    hmax[i] = std::floor(lat.direct_A().col(i).norm() / dmin_A);
  // A 10⁴ Å cell would search 10¹⁵ indices: refuse up front with the estimate.
  require_work("info: the plane search of " + c.name,
               (2 * hmax[0] + 1) * (2 * hmax[1] + 1) * (2 * hmax[2] + 1) * double(c.symops.size() + 10),
               "index × symmetry steps", "raise --dmin or use a smaller cell", 2e9);
  std::vector<Family> out;
  std::set<std::array<long, 3>> seen;
  auto key = [](const Vec3& v) {
    return std::array<long, 3>{std::lround(v[0]), std::lround(v[1]), std::lround(v[2])};
  };
  for (double h = -hmax[0]; h <= hmax[0]; ++h)
    for (double k = -hmax[1]; k <= hmax[1]; ++k)
      for (double l = -hmax[2]; l <= hmax[2]; ++l) {
        Vec3 hkl(h, k, l);
        if (hkl.isZero() || lat.d_spacing_A(hkl) < dmin_A * (1 - 1e-12))
          continue;
        if (seen.count(key(hkl)))
          continue;
        auto eq = equivalent_reflections(c, hkl);
        // Representative: the lexicographically largest member (cubic: 311, not -1-1-3).
        Vec3 rep = hkl;
        for (const auto& e : eq) {
          seen.insert(key(e));
          if (std::make_tuple(e[0], e[1], e[2]) > std::make_tuple(rep[0], rep[1], rep[2]))
            rep = e;
        }
        out.push_back({rep, lat.d_spacing_A(rep), int(eq.size()), !systematically_absent(c, rep)});
      }
  std::sort(out.begin(), out.end(), [](const Family& a, const Family& b) {
    if (std::abs(a.d_A - b.d_A) > 1e-9)
      return a.d_A > b.d_A;
    return std::make_tuple(a.hkl[0], a.hkl[1], a.hkl[2]) >
           std::make_tuple(b.hkl[0], b.hkl[1], b.hkl[2]);
  });
  return out;
}

// `epitem info IMAGE`: what a microscope file holds and what it lacks for analysis.
void print_image_info(const std::string& path, std::ostream& out) {
  const auto file = open_image_file(path);
  const ImageFileInfo& in = file->info();
  out << "# file           " << path << "\n"
      << "# format         " << in.format << "\n"
      << "# shape          " << in.n_frames << " frame" << (in.n_frames == 1 ? "" : "s") << " × " << in.ny
      << " rows × " << in.nx << " columns\n"
      << "# dtype          " << in.dtype << "\n";
  const char* axis_name[] = {"x (columns)", "y (rows)", "frame axis"};
  for (size_t a = 0; a < in.axes.size() && a < 3; ++a) {
    const AxisCalibration& ax = in.axes[a];
    out << "# " << std::left << std::setw(15) << axis_name[a] << std::right;
    if (ax.scale > 0)
      out << "scale " << ax.scale << " " << (ax.unit.empty() ? "(no unit)" : ax.unit) << ", origin " << ax.origin_px << " px\n";
    else
      out << "not calibrated\n";
  }
  std::vector<std::string> missing;
  if (in.pixel_size_A > 0)
    out << "# pixel size     " << in.pixel_size_A << " Å" << (in.pixel_size_y_A > 0 && std::abs(in.pixel_size_y_A - in.pixel_size_A) > 1e-9 * in.pixel_size_A
                                                               ? " (x), " + std::to_string(in.pixel_size_y_A) + " Å (y)" : std::string())
        << "\n";
  else if (in.pixel_size_invA > 0)
    out << "# pixel size     " << in.pixel_size_invA << " 1/Å (diffraction)"
        << (in.pixel_size_y_invA > 0 && std::abs(in.pixel_size_y_invA - in.pixel_size_invA) > 1e-9 * in.pixel_size_invA
                ? " (x), " + std::to_string(in.pixel_size_y_invA) + " 1/Å (y)" : std::string())
        << "\n";
  else
    missing.push_back("pixel size (give --pixel-size to analysis commands)");
  const auto line = [&](const char* label, double value, double factor, const char* unit, const char* what) {
    if (value > 0)
      out << "# " << std::left << std::setw(15) << label << std::right << value * factor << " " << unit << "\n";
    else
      missing.push_back(what);
  };
  line("voltage", in.energy_eV, 1e-3, "kV", "voltage");
  line("camera length", in.camera_length_m, 1e3, "mm", "camera length");
  line("exposure", in.exposure_s, 1, "s", "exposure");
  if (in.n_frames > 1)
    line("frame time", in.frame_time_s, 1, "s", "frame time (give --fps or --frame-times to movie commands)");
  for (const std::string& warning : in.warnings)
    out << "# warning        " << warning << "\n";
  for (const std::string& note : in.notes)
    out << "# note           " << note << "\n";
  if (!missing.empty()) {
    out << "# missing        ";
    for (size_t i = 0; i < missing.size(); ++i)
      out << (i ? "; " : "") << missing[i];
    out << "\n";
  }
  const Image first = file->frame(0);
  double lo = first.pixels.empty() ? 0 : first.pixels[0], hi = lo, sum = 0;
  size_t bad = 0;
  for (float v : first.pixels) {
    if (!std::isfinite(v)) { ++bad; continue; }
    lo = std::min(lo, double(v));
    hi = std::max(hi, double(v));
    sum += v;
  }
  out << "# frame 0        min " << lo << ", max " << hi << ", mean " << sum / double(std::max<size_t>(1, first.size() - bad));
  if (bad)
    out << ", " << bad << " non-finite pixels";
  out << "\n";
}

int info_main(int argc, char** argv) {
  return run_guarded("info", [&]() {
    po::options_description opts("info options");
    std::string structure, out;
    int max_rows = 0;
    bool all_planes = false;
    opts.add_options()
      ("structure", po::value<std::string>(&structure)->required(),
       "CIF file, extxyz file or built-in name (Fe3O4, NiFe, NiFe2O4, Ni, Fe, Au, Si); or an image "
       "file (TIFF, DM3/DM4, SER/EMI, EMD, MRC, PNG, JPEG): format, shape, calibration, metadata")
      ("dmin", po::value<std::string>()->default_value("1.2A"),
       "smallest d-spacing listed [Å] (also 0.12nm, or a reciprocal length 8.3/nm)")
      ("max-rows", po::value<int>(&max_rows)->default_value(0),
       "list at most this many plane families (0 = all down to --dmin)")
      ("all", po::bool_switch(&all_planes),
       "also list systematically absent families (allowed = 0)")
      ("out,o", po::value<std::string>(&out),
       "write the d-spacing table as CSV here (+ JSON sidecar) instead of stdout");
    po::positional_options_description pos;
    pos.add("structure", 1);
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(argc, argv,
                            "usage: epitem info STRUCTURE [--dmin 1.2A] [--max-rows N] "
                            "[--all] [--out planes.csv]\n       epitem info IMAGE\n"
                            "Cell, space group, formula, Z, density and lattice-plane "
                            "d-spacings\n(families merged by symmetry; CSV h,k,l,d_A,"
                            "multiplicity,allowed). allowed = 0 marks\na space-group absence; "
                            "special-position extinctions (Si 222) show in epitem reflections.",
                            opts, pos, vm, common))
      return EXIT_OK;
    if (!image_file_kind(structure).empty()) {
      print_image_info(structure, std::cout);
      return EXIT_OK;
    }
    const double dmin_A = parse_spacing_A(vm["dmin"].as<std::string>(), "--dmin");
    if (!(dmin_A > 0.1))
      fail("--dmin ", dmin_A, " Å is too small; use a value >= 0.1 Å (e.g. 1.2A)");
    if (max_rows < 0)
      throw po::error("--max-rows must be >= 0");

    RunRecord rec("info");
    rec.add("structure", structure);
    rec.add("dmin_A", dmin_A, "Å");
    rec.add("max_rows", double(max_rows));
    if (!out.empty())
      rec.add("out", out);
    if (common.dry_run) {
      rec.echo(std::cout);
      std::cout << "# dry run: memory needed < 1 MiB; nothing computed\n";
      return EXIT_OK;
    }

    if (!out.empty())
      plan_outputs({out, sidecar_path(out)}, {structure});
    const Crystal c = read_crystal(structure);
    const Lattice& lat = c.lattice;
    auto [formula, z] = formula_and_z(c);
    double atoms = 0;
    for (const auto& s : c.sites)
      atoms += s.occupancy;
    std::vector<Family> fams = plane_families(c, dmin_A);
    if (!all_planes)
      fams.erase(std::remove_if(fams.begin(), fams.end(),
                                [](const Family& f) { return !f.allowed; }),
                 fams.end());
    if (max_rows > 0 && int(fams.size()) > max_rows)
      fams.resize(size_t(max_rows));

    std::ostringstream summary;
    summary << std::setprecision(6);
    summary << "# structure      " << c.name << " (" << c.source << ")\n"
            << "# cell           a = " << lat.a_A() << " Å, b = " << lat.b_A() << " Å, c = "
            << lat.c_A() << " Å, alpha = " << lat.alpha_deg() << "°, beta = " << lat.beta_deg()
            << "°, gamma = " << lat.gamma_deg() << "°\n"
            << "# volume         " << lat.volume_A3() << " Å³\n"
            << "# space group    " << (c.spacegroup_hm.empty() ? "?" : c.spacegroup_hm) << " (No. "
            << c.spacegroup_number << ", " << crystal_system(c.spacegroup_number) << ", "
            << c.symops.size() << " operations)\n"
            << "# formula        " << formula << ", Z = " << z << " (cell: " << c.cell_formula()
            << ")\n"
            << "# atoms per cell " << c.sites.size() << " sites, " << atoms
            << " atoms by occupancy\n"
            << "# density        " << std::setprecision(4) << c.density_g_cm3() << " g/cm³\n"
            << "# planes         " << fams.size() << " families with d >= " << dmin_A << " Å"
            << (all_planes ? " (absent ones included)" : " (systematic absences removed)")
            << "\n";

    std::ostringstream csv;
    csv << "h,k,l,d_A,multiplicity,allowed\n";
    for (const auto& f : fams)
      csv << int(f.hkl[0]) << "," << int(f.hkl[1]) << "," << int(f.hkl[2]) << "," << std::fixed
          << std::setprecision(5) << f.d_A << "," << f.multiplicity << "," << int(f.allowed)
          << "\n";

    rec.result("formula", formula);
    rec.result("Z", double(z));
    rec.result("spacegroup", c.spacegroup_hm);
    rec.result("spacegroup_number", double(c.spacegroup_number));
    rec.result("volume_A3", lat.volume_A3());
    rec.result("density_g_cm3", c.density_g_cm3());
    rec.result("sites", double(c.sites.size()));
    rec.result("plane_families", double(fams.size()));
    if (!common.quiet)
      rec.echo(std::cout);
    std::cout << summary.str();
    if (out.empty()) {
      std::cout << csv.str();
    } else {
      std::vector<std::string> inputs = {structure};
      rec.write_text_output(out, csv.str(), inputs);
      if (!common.quiet)
        std::cout << "# wrote " << out << " and " << sidecar_path(out) << "\n";
    }
    return EXIT_OK;
  });
}

}  // namespace

EPITEM_COMMAND(info, 10, "crystal summary: cell, space group, formula, density, d-spacings",
               info_main);

}  // namespace epitem::cli
