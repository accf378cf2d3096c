// `epitem calibrate IMAGE --reference Au`: pixel size of a lattice image (FFT peaks of a known
// crystal) or reciprocal pixel / camera constant of a ring pattern (--rings).
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "analysis_cli.hpp"
#include "cli.hpp"
#include "epitem/image_file.hpp"
#include "epitem/error.hpp"
#include "epitem/output.hpp"
#include "epitem/rings.hpp"

namespace epitem::cli {

namespace {

std::string hkl_list(const SpacingCandidate& c) {
  std::string s;
  for (size_t i = 0; i < c.hkl.size(); ++i)
    s += (i ? "/" : "") + std::to_string(std::lround(c.hkl[i][0])) + std::to_string(std::lround(c.hkl[i][1])) +
         std::to_string(std::lround(c.hkl[i][2]));
  return s;
}

int calibrate_main(int argc, char** argv) {
  return run_guarded("calibrate", [&]() -> int {
    po::options_description opts("calibrate options");
    std::string image_path, reference, out, tol_text;
    int page = 0;
    bool rings = false;
    opts.add_options()
      ("image", po::value<std::string>(&image_path)->required(), "TIFF: lattice image or ring diffraction pattern")
      ("reference,r", po::value<std::string>(&reference)->required(), "known phase: Au, Si, … or a CIF path")
      ("rings", po::bool_switch(&rings), "the image is a ring (polycrystalline) diffraction pattern")
      ("pixel-size", po::value<std::string>(), "nominal real-space pixel [Å] of a lattice image "
       "(default: the TIFF calibration, else 1 Å)")
      ("tolerance", po::value<std::string>(&tol_text)->default_value("1.5%"), "match tolerance of |g|")
      ("page", po::value<int>(&page)->default_value(0), "page of a multi-page TIFF")
      ("out,o", po::value<std::string>(&out), "CSV of matched peaks/rings (+ JSON sidecar)");
    po::positional_options_description pos;
    pos.add("image", 1);
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(
            argc, argv,
            "usage: epitem calibrate IMAGE --reference Si            (lattice image → pixel size)\n"
            "       epitem calibrate PATTERN --reference Au --rings  (rings → 1/Å per pixel)\n"
            "Matches the measured |g| (FFT peaks or ring radii) to the reference's allowed\n"
            "reflections with one common scale (most matches, then least squares).",
            opts, pos, vm, common))
      return EXIT_OK;
    const double tol = parse_tolerance(tol_text, "--tolerance", 0.1);
    RunRecord rec("calibrate");
    rec.add("image", image_path);
    rec.add("reference", reference);
    rec.add("mode", std::string(rings ? "rings" : "lattice image"));
    rec.add("tolerance_rel", tol);
    if (common.dry_run) {
      rec.echo(std::cout);
      std::cout << "# dry run: memory ≈ 24 bytes per pixel; nothing computed\n";
      return EXIT_OK;
    }
    auto pages = read_image_frames(image_path);
    if (page < 0 || page >= int(pages.size()))
      fail(image_path, ": --page ", page, " does not exist (", pages.size(), " pages)");
    Image image = pages[size_t(page)];
    const Phase phase = load_phases({reference}, 0.7, false)[0];
    std::vector<double> measured;
    std::vector<std::string> what;
    double nominal_A = 1;
    if (rings) {
      const auto prof = find_rings(image);
      for (const auto& r : prof.rings) {
        measured.push_back(r.radius_px);
        what.push_back("ring");
      }
      rec.result("centre_px", Json(std::vector<double>{prof.centre_x_px, prof.centre_y_px}));
      std::printf("# direct beam at x = %.2f, y = %.2f px; %zu rings\n", prof.centre_x_px, prof.centre_y_px,
                  prof.rings.size());
    } else {
      if (vm.count("pixel-size"))
        image.pixel_size_A = parse_quantity(vm["pixel-size"].as<std::string>(), Dimension::Length, "--pixel-size");
      if (!(image.pixel_size_A > 0))
        image.pixel_size_A = 1;
      nominal_A = image.pixel_size_A;
      PeakSpec spec;
      spec.max_peaks = 12;
      for (const auto& p : find_peaks(power_spectrum(image, common.threads), spec)) {
        measured.push_back(p.g_invA);
        what.push_back("peak");
      }
    }
    if (measured.empty())
      fail(image_path, ": no ", rings ? "rings" : "lattice peaks", " found to calibrate with");
    const Calibration cal = calibrate_scale(measured, phase, tol);
    if (!common.quiet)
      rec.echo(std::cout);
    std::ostringstream csv;
    csv << (rings ? "radius_px" : "g_nominal_invA") << ",hkl,d_A,error_pct\n";
    char buf[256];
    for (size_t i = 0; i < measured.size(); ++i) {
      const auto& m = cal.matched[i];
      const std::string hkl = m.hkl.empty() ? "" : hkl_list(m);
      std::snprintf(buf, sizeof buf, "%s %2zu: %9.4f %s → %s\n", what[i].c_str(), i + 1, measured[i],
                    rings ? "px" : "1/Å (nominal)",
                    m.hkl.empty() ? "unmatched"
                                  : (reference + " " + hkl + " d = " + std::to_string(m.d_A).substr(0, 6) + " Å, error " +
                                     std::to_string(100 * m.error_rel).substr(0, 5) + " %").c_str());
      std::cout << buf;
      csv << measured[i] << "," << hkl << "," << (m.hkl.empty() ? 0.0 : m.d_A) << ","
          << (m.hkl.empty() ? 0.0 : 100 * m.error_rel) << "\n";
    }
    rec.result("matched", double(cal.n_matched));
    rec.result("residual_rel", cal.residual_rel);
    if (rings) {
      std::printf("reciprocal pixel: %.6g 1/Å per px (%.6g 1/nm per px); camera constant λL = %.5g px·Å\n",
                  cal.scale, cal.scale * 10, 1 / cal.scale);
      rec.result("pixel_size_invA", cal.scale);
      rec.result("camera_constant_px_A", 1 / cal.scale);
    } else {
      std::printf("pixel size: %.6g Å (nominal %.6g Å, scale %.4f: nominal d-spacings are %+.2f %% off)\n",
                  nominal_A / cal.scale, nominal_A, cal.scale, 100 * (cal.scale - 1));
      rec.result("pixel_size_A", nominal_A / cal.scale);
      rec.result("scale", cal.scale);
    }
    std::printf("%d of %zu matched, RMS error %.2f %%\n", cal.n_matched, measured.size(), 100 * cal.residual_rel);
    if (!out.empty()) {
      rec.write_text_output(out, csv.str(), {image_path});
    }
    return EXIT_OK;
  });
}

}  // namespace

EPITEM_COMMAND(calibrate, 63, "pixel size / camera constant from a known reference (Au rings, Si lattice)",
               calibrate_main);

}  // namespace epitem::cli
