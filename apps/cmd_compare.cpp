// `epitem compare SIM.tif EXP.tif`: align the second image onto the first (sub-pixel shift,
// optional rotation/scale search), normalise, report NCC and RMS difference, compare their FFT
// peak lists, and draw reference | aligned | difference.
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "analysis_cli.hpp"
#include "cli.hpp"
#include "epitem/image_file.hpp"
#include "epitem/alignment.hpp"
#include "epitem/error.hpp"
#include "epitem/output.hpp"
#include "epitem/png.hpp"
#include "epitem/units.hpp"

namespace epitem::cli {

namespace {

// Page `page` of an image file (a frame of a movie); --pixel-size-N overrides the calibration.
Image load_one(const std::string& path, int page, const char* page_option, const po::variables_map& vm,
               const std::string& px_option) {
  const auto file = open_image_file(path);
  const size_t n = file->frame_count();
  if (page < 0 || page >= int(n))
    fail(path, ": --", page_option, " ", page, " does not exist (the file has ", n, " page", n == 1 ? "" : "s",
         ", numbered from 0)");
  if (n > 1 && !vm.count(page_option))
    std::cerr << "warning: " << path << ": " << n << " pages; using page " << page << " (choose with --" << page_option
              << ")\n";
  Image img = file->frame(size_t(page));
  if (vm.count(px_option)) {
    img.pixel_size_A = parse_quantity(vm[px_option].as<std::string>(), Dimension::Length, "--" + px_option);
    img.pixel_size_y_A = 0;
  }
  return img;
}

// Binned (mean) canvas of an image so a panel is at most 512 px wide.
Canvas panel(const Image& img, bool colour) {
  const int bin = std::max(1, (std::max(img.nx, img.ny) + 511) / 512);
  Image small(img.nx / bin, img.ny / bin);
  for (int y = 0; y < small.ny; ++y)
    for (int x = 0; x < small.nx; ++x) {
      double s = 0;
      int n = 0;
      for (int dy = 0; dy < bin; ++dy)
        for (int dx = 0; dx < bin; ++dx) {
          const float v = img.at(x * bin + dx, y * bin + dy);
          if (std::isfinite(v)) {
            s += v;
            ++n;
          }
        }
      small.at(x, y) = n ? float(s / n) : std::nanf("");
    }
  Contrast c;
  c.low_percentile = 1;
  c.high_percentile = 99;
  Canvas out = colour ? colormapped_canvas(small, c) : canvas_from_image(small, c);
  const int zoom = std::max(1, 256 / std::max(small.nx, small.ny));
  return zoom > 1 ? upscale(out, zoom) : out;
}

int compare_main(int argc, char** argv) {
  return run_guarded("compare", [&]() -> int {
    po::options_description opts("compare options");
    std::string sim_path, exp_path, png_path, out, aligned_path;
    double max_rot = 0, rot_step = 0.5, scale_range = 0, scale_step = 1;
    int page = 0, page2 = 0;
    bool invert = false;
    opts.add_options()
      ("reference", po::value<std::string>(&sim_path)->required(), "first image (e.g. the simulation) TIFF")
      ("image", po::value<std::string>(&exp_path)->required(), "second image (e.g. the experiment) TIFF, aligned onto the first")
      ("page", po::value<int>(&page), "page (frame) of the first image file, from 0 (default 0)")
      ("page-2", po::value<int>(&page2), "page (frame) of the second image file (default: --page), e.g. the "
       "next frame of the same movie")
      ("pixel-size-1", po::value<std::string>(), "pixel size of the first image [Å] (overrides the TIFF)")
      ("pixel-size-2", po::value<std::string>(), "pixel size of the second image [Å] (overrides the TIFF)")
      ("rotate", po::value<double>(&max_rot)->default_value(0), "search rotations within ±this [deg]")
      ("rotate-step", po::value<double>(&rot_step)->default_value(0.5), "rotation search step [deg]")
      ("scale-range", po::value<double>(&scale_range)->default_value(0), "search scales within ±this [%]")
      ("scale-step", po::value<double>(&scale_step)->default_value(1), "scale search step [%]")
      ("invert", po::bool_switch(&invert), "negate the second image's contrast first (ADF vs ABF, "
       "or an HRTEM simulation at the opposite contrast)")
      ("png", po::value<std::string>(&png_path), "PNG: first | aligned second | z-score difference")
      ("aligned", po::value<std::string>(&aligned_path), "write the aligned second image (TIFF, NaN outside)")
      ("out,o", po::value<std::string>(&out), "CSV of the FFT peak comparison (+ JSON sidecar)");
    po::positional_options_description pos;
    pos.add("reference", 1).add("image", 1);
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(
            argc, argv,
            "usage: epitem compare SIM.tif EXP.tif [--page N] [--page-2 M] [--rotate 5] [--scale-range 5] "
            "[--png cmp.png]\n"
            "Resamples the second image to the first's pixel size (when both are known), aligns it\n"
            "by FFT cross-correlation (sub-pixel), normalises both to z-scores and reports the\n"
            "normalised cross-correlation (1 = identical up to contrast), the RMS z-score\n"
            "difference and the FFT peaks of both (d, angle) matched within 2 % and 2 deg. On a lattice\n"
            "the shift is the smallest of the equally good ones (a lattice vector apart): a warning\n"
            "names the alternatives.",
            opts, pos, vm, common))
      return EXIT_OK;
    if (max_rot < 0 || max_rot > 45 || !(rot_step > 0))
      throw po::error("--rotate must be in [0, 45] deg and --rotate-step > 0");
    if (scale_range < 0 || scale_range >= 50 || !(scale_step > 0))
      throw po::error("--scale-range must be in [0, 50) % and --scale-step > 0");
    AlignSpec spec;
    spec.max_rotation_deg = max_rot;
    spec.rotation_step_deg = rot_step;
    spec.max_scale_change = scale_range / 100;
    spec.scale_step = scale_step / 100;
    spec.threads = common.threads;
    RunRecord rec("compare");
    rec.add("reference", sim_path);
    rec.add("image", exp_path);
    rec.add("rotation_search_deg", max_rot, "deg");
    rec.add("scale_search_rel", scale_range / 100);
    rec.add("invert_second", std::string(invert ? "yes" : "no"));
    if (common.dry_run) {
      rec.echo(std::cout);
      std::cout << "# dry run: memory ≈ 40 bytes per pixel of the first image; nothing computed\n";
      return EXIT_OK;
    }
    if (!vm.count("page-2"))
      page2 = page;
    rec.add("page", double(page));
    rec.add("page_2", double(page2));
    const Image a = load_one(sim_path, page, "page", vm, "pixel-size-1");
    Image b = load_one(exp_path, page2, vm.count("page-2") ? "page-2" : "page", vm, "pixel-size-2");
    if (invert)
      for (auto& v : b.pixels)
        v = -v;
    if ((a.pixel_size_A > 0) != (b.pixel_size_A > 0))
      std::cerr << "warning: only one image has a pixel size; comparing pixel for pixel (give "
                   "--pixel-size-1/--pixel-size-2)\n";
    const Alignment al = align_images(a, b, spec);
    const Image aligned = resample(b, a.nx, a.ny, a.pixel_size_A, al);
    rec.result("shift_px", Json(std::vector<double>{al.shift_x_px, al.shift_y_px}));
    rec.result("rotation_deg", al.rotation_deg);
    rec.result("scale", al.scale);
    rec.result("ncc", al.ncc);
    rec.result("rms_difference", al.rms_difference);
    rec.result("overlap_fraction", al.overlap_fraction);
    rec.result("shift_ambiguous", Json(al.shift_ambiguous));
    rec.result("peak_ratio", al.peak_ratio);
    Json alternatives = Json::array();
    for (const AlternativeShift& alt : al.alternatives)
      alternatives.push(Json(std::vector<double>{alt.shift_x_px, alt.shift_y_px, alt.ncc}));
    rec.result("alternative_shifts_px_ncc", alternatives);
    if (al.shift_ambiguous) {
      std::ostringstream w;
      w << std::fixed << std::setprecision(2) << "shift ambiguous (a lattice: second/best peak NCC " << al.peak_ratio
        << "): took the smallest, (" << al.shift_x_px << ", " << al.shift_y_px << ") px; also consistent:";
      for (size_t k = 0; k < std::min<size_t>(3, al.alternatives.size()); ++k)
        w << " (" << al.alternatives[k].shift_x_px << ", " << al.alternatives[k].shift_y_px << ") px NCC "
          << al.alternatives[k].ncc;
      warn_to_stderr()(w.str());
    }
    if (!common.quiet)
      rec.echo(std::cout);
    std::printf("shift %.2f, %.2f px (x right, y down), rotation %.2f deg, scale %.4f, overlap %.0f %%\n",
                al.shift_x_px, al.shift_y_px, al.rotation_deg, al.scale, 100 * al.overlap_fraction);
    std::printf("NCC %.4f, RMS z-score difference %.4f\n", al.ncc, al.rms_difference);

    // FFT peaks of both, matched by |g| and direction.
    std::ostringstream csv;
    csv << "d1_A,angle1_deg,d2_A,angle2_deg,d_diff_pct,angle_diff_deg\n";
    if (a.pixel_size_A > 0 && b.pixel_size_A > 0) {
      PeakSpec ps;
      ps.max_peaks = 12;
      const auto pa = find_peaks(power_spectrum(a, common.threads), ps);
      const auto pb = find_peaks(power_spectrum(b, common.threads), ps);
      std::vector<bool> used(pb.size(), false);
      std::printf("#   d1 (Å)  angle1    d2 (Å)  angle2    Δd (%%)  Δangle (deg)\n");
      int matched = 0;
      for (const auto& p : pa) {
        int best = -1;
        double best_cost = 1e300, best_dang = 0;
        for (size_t j = 0; j < pb.size(); ++j) {
          double dang = pb[j].angle_deg - p.angle_deg;  // directions are modulo 180°
          while (dang > 90)
            dang -= 180;
          while (dang <= -90)
            dang += 180;
          const double dd = std::abs(pb[j].d_A / p.d_A - 1);
          if (used[j] || dd > 0.02 || std::abs(dang) > 2)
            continue;
          const double cost = dd / 0.02 + std::abs(dang) / 2;
          if (cost < best_cost) {
            best_cost = cost;
            best = int(j);
            best_dang = dang;
          }
        }
        if (best < 0) {
          std::printf("  %8.4f %7.2f         —       —  (only in the first)\n", p.d_A, p.angle_deg);
          csv << p.d_A << "," << p.angle_deg << ",,,,\n";
          continue;
        }
        used[size_t(best)] = true;
        ++matched;
        const auto& q = pb[size_t(best)];
        std::printf("  %8.4f %7.2f  %8.4f %7.2f  %+7.2f  %+7.2f\n", p.d_A, p.angle_deg, q.d_A, q.angle_deg,
                    100 * (q.d_A / p.d_A - 1), best_dang);
        csv << p.d_A << "," << p.angle_deg << "," << q.d_A << "," << q.angle_deg << "," << 100 * (q.d_A / p.d_A - 1)
            << "," << best_dang << "\n";
      }
      for (size_t j = 0; j < pb.size(); ++j)
        if (!used[j]) {
          std::printf("         —       —  %8.4f %7.2f  (only in the second)\n", pb[j].d_A, pb[j].angle_deg);
          csv << ",," << pb[j].d_A << "," << pb[j].angle_deg << ",,\n";
        }
      rec.result("fft_peaks_matched", double(matched));
    } else {
      std::printf("# FFT peak comparison skipped: both images need a pixel size\n");
    }
    const std::vector<std::string> inputs = {sim_path, exp_path};
    if (!aligned_path.empty()) {
      write_tiff(aligned_path, {aligned});
      rec.add_output(aligned_path);
    }
    if (!png_path.empty()) {
      Image ra = a;
      for (size_t i = 0; i < ra.size(); ++i)
        if (!std::isfinite(aligned.pixels[i]))
          ra.pixels[i] = std::nanf("");
      const Image za = z_score(ra), zb = z_score(aligned);
      Image diff(a.nx, a.ny);
      for (size_t i = 0; i < diff.size(); ++i)
        diff.pixels[i] = za.pixels[i] - zb.pixels[i];
      const Canvas p1 = panel(a, false), p2 = panel(aligned, false), p3 = panel(diff, true);
      Canvas c(p1.width() * 3 + 8, p1.height() + 18, colors::black);
      c.paste(p1, 0, 18);
      c.paste(p2, p1.width() + 4, 18);
      c.paste(p3, 2 * p1.width() + 8, 18);
      c.draw_text(4, 4, "first", colors::white);
      c.draw_text(p1.width() + 8, 4, "second, aligned", colors::white);
      char buf[96];
      std::snprintf(buf, sizeof buf, "z-score difference (NCC %.3f)", al.ncc);
      c.draw_text(2 * p1.width() + 12, 4, buf, colors::white);
      write_png(c, png_path);
      rec.add_output(png_path);
    }
    if (!out.empty()) {
      rec.write_text_output(out, csv.str(), inputs);
    }
    return EXIT_OK;
  });
}

}  // namespace

EPITEM_COMMAND(compare, 62, "compare two images: sub-pixel alignment, NCC, RMS, FFT peak differences",
               compare_main);

}  // namespace epitem::cli
