// `epitem calibrate IMAGE --reference SrTiO3`: pixel size of a lattice image from the 2-D
// lattice its FFT peaks span, matched to the reference's zone-axis lattices (angles and lengths,
// with the file calibration as a prior); or the reciprocal pixel of a ring pattern (--rings)
// with the centre found from the rings themselves. Refuses (exit 1) when nothing fits.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "analysis_cli.hpp"
#include "cli.hpp"
#include "epitem/error.hpp"
#include "epitem/image_file.hpp"
#include "epitem/lattice_calibration.hpp"
#include "epitem/output.hpp"
#include "epitem/rings.hpp"

namespace epitem::cli {

namespace {

std::string idx(const Vec3& v) {
  std::string s;
  for (int i = 0; i < 3; ++i) {
    const long x = std::lround(v[i]);
    s += x < 0 ? "-" + std::to_string(-x) : std::to_string(x);
  }
  return s;
}

// "X,Y" in pixels.
void parse_centre(const std::string& text, double& x, double& y) {
  const auto comma = text.find(',');
  try {
    size_t a = 0, b = 0;
    if (comma == std::string::npos)
      throw std::invalid_argument(text);
    x = std::stod(text.substr(0, comma), &a);
    y = std::stod(text.substr(comma + 1), &b);
    if (a != comma || b != text.size() - comma - 1 || !std::isfinite(x) || !std::isfinite(y))
      throw std::invalid_argument(text);
  } catch (const std::exception&) {
    fail("--centre '", text, "': expected X,Y in pixels (column,row), e.g. --centre 127.4,128.2");
  }
}

DetectorMask read_mask(const std::string& path, int nx, int ny) {
  const auto file = open_image_file(path);
  const Image m = file->frame(0);
  if (m.nx != nx || m.ny != ny)
    fail(path, ": --mask is ", m.nx, "×", m.ny, " but the pattern is ", nx, "×", ny,
         "; give a mask of the same size (nonzero = excluded)");
  DetectorMask mask{nx, ny, std::vector<std::uint8_t>(m.size(), 0)};
  for (size_t i = 0; i < m.size(); ++i)
    mask.excluded[i] = m.pixels[i] != 0;
  return mask;
}

int run_rings(const std::string& image_path, const std::string& reference, int page, const po::variables_map& vm,
              RunRecord& rec, const CommonOptions& common, const std::string& out, double tol) {
  const auto file = open_image_file(image_path);
  if (page < 0 || page >= int(file->frame_count()))
    fail(image_path, ": --page ", page, " does not exist (", file->frame_count(), " pages, numbered from 0)");
  const Image image = file->frame(size_t(page));
  RingSpec spec;
  if (vm.count("centre")) {
    parse_centre(vm["centre"].as<std::string>(), spec.centre_x_px, spec.centre_y_px);
    rec.add("centre_px", Json(std::vector<double>{spec.centre_x_px, spec.centre_y_px}));
  }
  if (vm.count("mask")) {
    spec.mask = read_mask(vm["mask"].as<std::string>(), image.nx, image.ny);
    rec.add("mask", vm["mask"].as<std::string>());
  }
  spec.auto_mask = !vm["no-auto-mask"].as<bool>();
  spec.min_snr = vm["min-snr"].as<double>();
  const RingPattern pat = analyse_ring_pattern(image, spec);
  const Phase phase = load_phases({reference}, 0.5, false)[0];
  RingMatchSpec ms;
  ms.tolerance_rel = tol;
  const RingCalibrationResult cal = calibrate_ring_pattern(pat, phase, ms);
  const Ellipse& e = pat.ellipse;
  rec.result("centre_px", Json(std::vector<double>{e.cx_px, e.cy_px}));
  rec.result("centre_method", pat.centre_method);
  rec.result("centre_uncertainty_px", pat.centre_uncertainty_px);
  rec.result("ring_fit_rms_px", pat.fit_rms_px);
  rec.result("masked_auto_px", double(pat.n_masked_auto));
  rec.result("distortion_ratio", e.axis_ratio());
  rec.result("distortion_angle_deg", e.angle_deg);
  rec.result("pixel_size_invA", cal.pixel_size_invA);
  rec.result("pixel_size_uncertainty_invA", cal.uncertainty_invA);
  rec.result("camera_constant_px_A", 1 / cal.pixel_size_invA);
  rec.result("matched", double(cal.n_matched));
  rec.result("rings", double(pat.rings.size()));
  rec.result("residual_rel", cal.residual_rel);
  if (!cal.runner_up.empty())
    rec.result("runner_up", cal.runner_up);
  if (!common.quiet)
    rec.echo(std::cout);
  std::printf("# centre x = %.2f, y = %.2f px (%s, ±%.2f px; ring fit RMS %.2f px); %zu px masked as beam stop\n",
              e.cx_px, e.cy_px, pat.centre_method.c_str(), pat.centre_uncertainty_px, pat.fit_rms_px,
              pat.n_masked_auto);
  std::printf("# distortion: distortion_ratio = %.4f, distortion_angle_deg = %.1f (major axis CCW from +x, y up)\n",
              e.axis_ratio(), e.angle_deg);
  std::ostringstream csv;
  csv << "radius_px,snr,hkl,d_A,error_pct\n";
  for (size_t i = 0; i < cal.rings.size(); ++i) {
    const auto& r = cal.rings[i];
    if (r.hkl.empty())
      std::printf("ring %2zu: %8.2f px (snr %.0f) → unmatched\n", i + 1, r.radius_px, r.snr);
    else
      std::printf("ring %2zu: %8.2f px (snr %.0f) → %s %s d = %.4f Å, error %+.2f %%\n", i + 1, r.radius_px, r.snr,
                  reference.c_str(), r.hkl.c_str(), r.d_A, 100 * r.error_rel);
    csv << r.radius_px << "," << r.snr << "," << r.hkl << "," << r.d_A << "," << 100 * r.error_rel << "\n";
  }
  std::printf("reciprocal pixel: %.6g ± %.2g 1/Å per px (%.6g 1/nm per px); camera constant λL = %.5g px·Å\n",
              cal.pixel_size_invA, cal.uncertainty_invA, 10 * cal.pixel_size_invA, 1 / cal.pixel_size_invA);
  std::printf("%d of %zu rings matched %s, SNR-weighted RMS |g| misfit %.2f %%\n", cal.n_matched, cal.rings.size(),
              reference.c_str(), 100 * cal.residual_rel);
  if (!cal.runner_up.empty())
    std::printf("# runner-up: %s\n", cal.runner_up.c_str());
  if (!out.empty())
    rec.write_text_output(out, csv.str(), {image_path});
  return EXIT_OK;
}

// A file without a pixel size is often a diffraction pattern run without --rings: say so,
// naming the rings found, instead of only asking for a pixel size.
void refuse_uncalibrated(const std::string& image_path, int page) {
  const auto file = open_image_file(image_path);
  if (page < 0 || page >= int(file->frame_count()) || file->frame(size_t(page)).pixel_size_A > 0)
    return;
  std::string rings;
  try {
    const RingPattern pat = analyse_ring_pattern(file->frame(size_t(page)));
    if (pat.rings.size() >= 3) {
      char buf[200];
      std::snprintf(buf, sizeof buf, "it looks like a ring diffraction pattern (%zu rings about x = %.0f, y = %.0f px): "
                    "add --rings; ", pat.rings.size(), pat.ellipse.cx_px, pat.ellipse.cy_px);
      rings = buf;
    }
  } catch (const Error&) {
    // No rings: only the pixel size is missing.
  }
  fail(image_path, ": no pixel size in the file; ", rings.empty() ? "if it is a ring diffraction pattern add --rings; " : rings,
       "if it is a lattice image give an approximate --pixel-size (e.g. --pixel-size 0.1A; the match searches ±15 %, "
       "--prior-range)");
}

int run_lattice(const std::string& image_path, const std::string& reference, int page, const po::variables_map& vm,
                RunRecord& rec, const CommonOptions& common, const std::string& out) {
  if (!vm.count("pixel-size"))
    refuse_uncalibrated(image_path, page);
  Image image = load_micrograph(image_path, page, vm, warn_to_stderr());
  rec.add("nominal_pixel_size_source", std::string(vm.count("pixel-size") ? "--pixel-size" : "file"));
  if (vm.count("roi"))
    image = crop(image, parse_roi(vm["roi"].as<std::string>()));
  LatticeCalibrationSpec spec;
  spec.prior_range = parse_tolerance(vm["prior-range"].as<std::string>(), "--prior-range", 0.5);
  spec.max_distortion = parse_tolerance(vm["max-distortion"].as<std::string>(), "--max-distortion", 0.3);
  const Phase phase = load_phases({reference}, 0.5, false)[0];
  std::vector<Peak> peaks;
  const LatticeCalibration cal = calibrate_lattice_image(image, phase, spec, common.threads, &peaks);
  const LatticeCandidate& b = cal.best();
  rec.result("pixel_size_A", cal.pixel_size_A);
  rec.result("pixel_size_x_A", cal.pixel_size_x_A);
  rec.result("pixel_size_y_A", cal.pixel_size_y_A);
  rec.result("nominal_pixel_size_A", cal.nominal_pixel_x_A);
  rec.result("scale", b.scale);
  rec.result("uncertainty_rel_statistical", cal.uncertainty_rel);
  rec.result("residual_rel", b.residual_rel);
  rec.result("zone", "[" + idx(b.zone_uvw) + "]");
  rec.result("basis_hkl", idx(b.hkl1) + "/" + idx(b.hkl2));
  rec.result("anisotropy_rel", b.distortion);
  rec.result("shear", b.shear);
  rec.result("lattice_peaks", double(cal.lattice.peak.size()));
  if (cal.candidates.size() > 1) {
    const auto& r = cal.candidates[1];
    rec.result("runner_up", "[" + idx(r.zone_uvw) + "] " + idx(r.hkl1) + "/" + idx(r.hkl2) + ": " + r.reason);
  }
  if (!common.quiet)
    rec.echo(std::cout);
  const auto& L = cal.lattice;
  std::printf("# image lattice: %zu of %zu FFT peaks on b1 = (%.4f, %.4f), b2 = (%.4f, %.4f) 1/Å nominal, RMS %.2g 1/Å\n",
              L.peak.size(), peaks.size(), L.b1x, L.b1y, L.b2x, L.b2y, L.rms_invA);
  std::ostringstream csv;
  csv << "kx_nominal_invA,ky_nominal_invA,n1,n2,hkl,d_A,error_pct\n";
  const Lattice& lat = phase.crystal.lattice;
  for (size_t i = 0; i < L.peak.size(); ++i) {
    const Peak& p = peaks[size_t(L.peak[i])];
    const Vec3 hkl = double(L.n1[i]) * b.hkl1 + double(L.n2[i]) * b.hkl2;
    const double d = lat.d_spacing_A(hkl);
    const double gx = p.kx_invA * b.scale_x, gy = p.ky_invA * b.scale_y;
    const double err = std::hypot(gx, gy) * d - 1;
    std::printf("peak (%+d,%+d): d = %.4f Å nominal → %s %s d = %.4f Å, error %+.2f %% (x/y calibrated)\n", L.n1[i],
                L.n2[i], p.d_A, reference.c_str(), idx(hkl).c_str(), d, 100 * err);
    csv << p.kx_invA << "," << p.ky_invA << "," << L.n1[i] << "," << L.n2[i] << "," << idx(hkl) << "," << d << ","
        << 100 * err << "\n";
  }
  std::printf("zone [%s], basis %s/%s, sublattice ×%d\n", idx(b.zone_uvw).c_str(), idx(b.hkl1).c_str(),
              idx(b.hkl2).c_str(), b.sublattice_index);
  std::printf("pixel size: %.6g Å ± %.2g %% statistical (nominal %.6g Å: %+.2f %%); x %.6g Å, y %.6g Å (anisotropy %.2f %%, "
              "shear %.3f)\n",
              cal.pixel_size_A, 100 * cal.uncertainty_rel, cal.nominal_pixel_x_A,
              100 * (cal.pixel_size_A / std::sqrt(cal.nominal_pixel_x_A * cal.nominal_pixel_y_A) - 1),
              cal.pixel_size_x_A, cal.pixel_size_y_A, 100 * b.distortion, b.shear);
  std::printf("RMS |g| misfit %.2f %% (one isotropic scale)\n", 100 * b.residual_rel);
  for (size_t i = 1; i < cal.candidates.size() && i < 3; ++i) {
    const auto& r = cal.candidates[i];
    std::printf("# runner-up %zu: [%s] %s/%s, pixel %.5g Å: %s\n", i, idx(r.zone_uvw).c_str(), idx(r.hkl1).c_str(),
                idx(r.hkl2).c_str(), cal.nominal_pixel_x_A / r.scale, r.reason.c_str());
  }
  if (!out.empty())
    rec.write_text_output(out, csv.str(), {image_path});
  return EXIT_OK;
}

int calibrate_main(int argc, char** argv) {
  return run_guarded("calibrate", [&]() -> int {
    po::options_description opts("calibrate options");
    std::string image_path, reference, out, tol_text;
    int page = 0;
    bool rings = false;
    opts.add_options()
      ("image", po::value<std::string>(&image_path)->required(), "lattice image or ring diffraction pattern")
      ("reference,r", po::value<std::string>(&reference)->required(), "known phase: Au, Si, SrTiO3, … or a CIF path")
      ("rings", po::bool_switch(&rings), "the image is a ring (polycrystalline) diffraction pattern")
      ("pixel-size", po::value<std::string>(), "nominal real-space pixel [Å] of a lattice image "
       "(default: the file's calibration)")
      ("prior-range", po::value<std::string>()->default_value("15%"),
       "lattice: the true pixel lies within ±this of the nominal")
      ("max-distortion", po::value<std::string>()->default_value("5%"),
       "lattice: largest x/y anisotropy of the image lattice accepted (scan drift)")
      ("roi", po::value<std::string>(), "lattice: region x,y,w,h in pixels (e.g. to skip scan-artefact rows)")
      ("tolerance", po::value<std::string>(&tol_text)->default_value("2%"), "rings: |g| misfit allowed per ring")
      ("centre", po::value<std::string>(), "rings: pattern centre X,Y in pixels (default: fitted to the rings)")
      ("mask", po::value<std::string>(), "rings: image of excluded pixels (nonzero = excluded), e.g. a beam stop")
      ("no-auto-mask", po::bool_switch()->default_value(false), "rings: do not mask dark regions automatically")
      ("min-snr", po::value<double>()->default_value(6.0), "rings: ring prominence over the profile noise")
      ("page", po::value<int>(&page)->default_value(0), "page of a multi-page file")
      ("out,o", po::value<std::string>(&out), "CSV of matched peaks/rings (+ JSON sidecar)");
    po::positional_options_description pos;
    pos.add("image", 1);
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(
            argc, argv,
            "usage: epitem calibrate IMAGE --reference SrTiO3        (lattice image → pixel size)\n"
            "       epitem calibrate PATTERN --reference Au --rings  (rings → 1/Å per pixel)\n"
            "Lattice: the FFT peaks' 2-D lattice (lengths and angle) is matched to the reference's\n"
            "zone-axis lattices within --prior-range of the nominal pixel; x and y are fitted apart.\n"
            "A match is refused when a strong peak (> 10 % of the strongest) would be a reflection the\n"
            "reference's space group forbids, or when the zone's strong allowed reflections up to the\n"
            "largest |g| seen are missing (e.g. SrTiO3 001 taken for Fe3O4 002).\n"
            "Rings: centre and ellipticity from the rings (beam stop masked), then one scale that\n"
            "explains every strong ring and leaves no strong reference ring unseen between the beam\n"
            "stop's edge and the outermost ring; the scale is fitted with SNR weights, weak rings\n"
            "with several reference lines in tolerance left out. Two scales that fit about equally\n"
            "well are refused too.\n"
            "Both refuse (exit 1) when nothing fits. A file without a pixel size that shows rings is\n"
            "probably a diffraction pattern: add --rings.",
            opts, pos, vm, common))
      return EXIT_OK;
    const double tol = parse_tolerance(tol_text, "--tolerance", 0.1);
    RunRecord rec("calibrate");
    rec.add("image", image_path);
    rec.add("reference", reference);
    rec.add("mode", std::string(rings ? "rings" : "lattice image"));
    if (rings)
      rec.add("tolerance_rel", tol);
    else
      rec.add("prior_range", vm["prior-range"].as<std::string>());
    if (common.dry_run) {
      rec.echo(std::cout);
      std::cout << "# dry run: memory ≈ 24 bytes per pixel; nothing computed\n";
      return EXIT_OK;
    }
    return rings ? run_rings(image_path, reference, page, vm, rec, common, out, tol)
                 : run_lattice(image_path, reference, page, vm, rec, common, out);
  });
}

}  // namespace

EPITEM_COMMAND(calibrate, 63, "pixel size / camera constant from a known reference (Au rings, SrTiO3 lattice)",
               calibrate_main);

}  // namespace epitem::cli
