// `epitem index`: (a) measured d-spacings → every {hkl} of the given phases within tolerance;
// (b) a spot list (any epitem CSV with reciprocal vectors: fft, index, saed, track) → zone axis
// with the calibration's scale searched, in-plane orientation and hkl per spot for each phase,
// the runner-up zone and why it lost, unexplained spots, and the orientation relationship.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "analysis_cli.hpp"
#include "cli.hpp"
#include "epitem/error.hpp"
#include "epitem/indexing.hpp"
#include "epitem/kinematic.hpp"
#include "epitem/output.hpp"

namespace epitem::cli {

namespace {

std::string label(const Vec3& h) {
  return miller_label({int(std::lround(h[0])), int(std::lround(h[1])), int(std::lround(h[2]))});
}

Json vec_json(const Vec3& v) { return Json(std::vector<double>{v[0], v[1], v[2]}); }

int spacings_mode(const std::vector<double>& d, const std::vector<Phase>& phases, double tol,
                  RunRecord& rec, const std::string& out, bool quiet) {
  const auto matches = index_spacings(d, phases, tol);
  std::ostringstream csv;
  csv << "d_measured_A,phase,hkl,d_A,error_pct,intensity_rel,ambiguous\n";
  std::ostringstream text;
  char buf[256];
  int n_ambiguous = 0, n_unmatched = 0;
  for (const auto& m : matches) {
    std::snprintf(buf, sizeof buf, "d = %.4f Å:", m.d_measured_A);
    text << buf;
    if (!m.matched()) {
      text << " no reflection within " << tol * 100 << " %\n";
      ++n_unmatched;
      csv << m.d_measured_A << ",,,,,,0\n";
      continue;
    }
    n_ambiguous += m.ambiguous;
    text << (m.ambiguous ? " AMBIGUOUS\n" : "\n");
    for (const auto& c : m.candidates) {
      std::string hkl;
      for (size_t i = 0; i < c.hkl.size(); ++i)
        hkl += (i ? "/" : "") + label(c.hkl[i]);
      std::snprintf(buf, sizeof buf, "    %-32s d = %.4f Å  error %+6.2f %%  I = %.3g\n", c.label().c_str(),
                    c.d_A, 100 * c.error_rel, c.intensity_rel);
      text << buf;
      csv << m.d_measured_A << "," << c.phase_name << "," << hkl << "," << c.d_A << "," << 100 * c.error_rel
          << "," << c.intensity_rel << "," << int(m.ambiguous) << "\n";
    }
  }
  rec.result("spacings", double(matches.size()));
  rec.result("ambiguous", double(n_ambiguous));
  rec.result("unmatched", double(n_unmatched));
  if (!quiet)
    rec.echo(std::cout);
  std::cout << text.str();
  if (!out.empty()) {
    rec.write_text_output(out, csv.str());
  }
  return EXIT_OK;
}

int zone_mode(const std::string& spots_path, const SpotCsvOptions& csv_options, const std::vector<Phase>& phases,
              const ZoneSpec& spec, RunRecord& rec, const std::string& out, bool quiet) {
  SpotCsvInfo info;
  const auto spots = read_spots_csv(spots_path, csv_options, &info);
  rec.add("spot_source", info.format + ": " + info.note);
  if (info.frame >= 0)
    rec.add("frame", double(info.frame));
  if (spots.size() < 2)
    fail(spots_path, ": ", spots.size(), " spot(s)", info.frame >= 0 ? " in frame " + std::to_string(info.frame) : "",
         "; need at least 2 non-collinear spots to find a zone axis");
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = index_zone(spots, phases, spec);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rec.result("zone_search_seconds", seconds);
  if (!quiet)
    rec.echo(std::cout);
  char buf[256];
  std::printf("# %s: %zu spots (%s)\n", info.format.c_str(), spots.size(), info.note.c_str());
  if (spec.scale_range > 0)
    std::printf("# zone search over indices ≤ %d, scale searched within ±%.3g %% (--scale-range), elliptical "
                "distortion up to %.3g %%: %.3f s\n", spec.max_index, 100 * spec.scale_range,
                100 * spec.max_distortion, seconds);
  else
    std::printf("# zone search over indices ≤ %d, scale fixed at 1 (--scale-range 0): %.3f s\n", spec.max_index,
                seconds);
  std::vector<std::string> spot_phase(spots.size());
  std::vector<std::string> spot_hkl(spots.size());
  std::vector<double> spot_err(spots.size(), NAN);
  Json sols = Json::array();
  size_t n_unreliable = 0;
  for (size_t b = 0; b < r.best.size(); ++b) {
    const auto& s = r.best[b];
    const Vec3 first = s.spots.front().hkl;
    // An unreliable best fit is labelled as such on stdout and explained (why, what to do) on stderr.
    if (!s.caveat.empty()) {
      ++n_unreliable;
      std::fflush(stdout);
      std::fprintf(stderr, "warning: %s zone [%s] is no reliable fit: %s\n", s.phase_name.c_str(),
                   label(s.zone_uvw).c_str(), s.caveat.c_str());
    }
    std::printf("%s: %szone [%s], %zu spots, residual %.2f %%, completeness %.0f %%, scale %.4f, "
                "distortion %.2f %%, score %.2f, g(%s) at %.2f deg\n",
                s.phase_name.c_str(), s.caveat.empty() ? "" : "NO RELIABLE FIT, nearest ", label(s.zone_uvw).c_str(),
                s.spots.size(), 100 * s.residual_rel,
                100 * s.completeness, s.scale, 100 * s.distortion, s.score, label(first).c_str(),
                s.direction_deg(first));
    Json ru = Json::object();
    if (r.runner_up_found[b]) {
      const auto& u = r.runner_up[b];
      std::printf("  runner-up: zone [%s], score %.2f, scale %.4f, %zu spots: lost because it %s\n",
                  label(u.zone_uvw).c_str(), u.score, u.scale, u.spots.size(), r.runner_up_reason[b].c_str());
      ru.set("zone_uvw", vec_json(u.zone_uvw));
      ru.set("score", u.score);
      ru.set("scale", u.scale);
      ru.set("spots", double(u.spots.size()));
      ru.set("residual_rel", u.residual_rel);
      ru.set("completeness", u.completeness);
      ru.set("why_lost", r.runner_up_reason[b]);
    } else {
      std::printf("  runner-up: none (no other zone explains 2 or more spots)\n");
    }
    for (const auto& is : s.spots) {
      spot_phase[size_t(is.spot)] = s.phase_name;
      spot_hkl[size_t(is.spot)] = label(is.hkl);
      spot_err[size_t(is.spot)] = is.error_rel;
    }
    Json j = Json::object();
    j.set("phase", s.phase_name);
    j.set("zone_uvw", vec_json(s.zone_uvw));
    j.set("spots", double(s.spots.size()));
    j.set("residual_rel", s.residual_rel);
    j.set("completeness", s.completeness);
    j.set("scale", s.scale);
    j.set("distortion", s.distortion);
    j.set("score", s.score);
    j.set("reliable", s.caveat.empty());
    if (!s.caveat.empty())
      j.set("caveat", s.caveat);
    j.set("runner_up", ru);
    j.set("reference_hkl", vec_json(first));
    j.set("reference_direction_deg", s.direction_deg(first));
    sols.push(j);
  }
  if (r.best.empty())
    std::printf("no zone axis of %s explains 2 or more spots within the tolerance\n",
                phases.size() == 1 ? phases[0].name.c_str() : "any phase");
  for (size_t p = 0; p < phases.size(); ++p) {
    const auto& ranked = r.ranked[p];
    if (ranked.size() < 2)
      continue;
    std::printf("# %s candidates:", phases[p].name.c_str());
    for (size_t i = 0; i < std::min<size_t>(ranked.size(), 5); ++i)
      std::printf(" [%s] %zu spots %.2f %%;", label(ranked[i].zone_uvw).c_str(), ranked[i].spots.size(),
                  100 * ranked[i].residual_rel);
    std::printf("\n");
  }
  rec.result("solutions", sols);
  if (r.best.size() >= 2 && r.best[0].caveat.empty() && r.best[1].caveat.empty()) {
    const auto& a = r.best[0];
    const auto& b = r.best[1];
    const auto o = orientation_relationship(a, phases[size_t(a.phase)], b, phases[size_t(b.phase)], spots);
    std::printf("OR: %s\n", o.describe(a.phase_name, b.phase_name).c_str());
    std::snprintf(buf, sizeof buf, "%.3f", o.relative_rotation_deg);
    std::printf("relative rotation about the beam: %s deg (%s relative to %s, CCW positive, y up; %s; "
                "fitted orientations give %.3f deg)\n", buf, b.phase_name.c_str(), a.phase_name.c_str(),
                o.from_spots ? "from the measured spots of both planes" : "from the fitted orientations",
                o.fitted_rotation_deg);
    Json j = Json::object();
    j.set("phase_a", a.phase_name);
    j.set("phase_b", b.phase_name);
    j.set("zone_a", vec_json(o.zone_a));
    j.set("zone_b", vec_json(o.zone_b));
    j.set("plane_a", vec_json(o.plane_a));
    j.set("plane_b", vec_json(o.plane_b));
    j.set("relative_rotation_deg", o.relative_rotation_deg);
    j.set("fitted_rotation_deg", o.fitted_rotation_deg);
    j.set("rotation_from_spots", o.from_spots);
    j.set("text", o.describe(a.phase_name, b.phase_name));
    rec.result("orientation_relationship", j);
  }
  std::printf("unexplained spots: %zu", r.unexplained.size());
  for (int i : r.unexplained)
    std::printf(" #%d (d %.3f Å)", i + 1, 1 / std::hypot(spots[size_t(i)].kx_invA, spots[size_t(i)].ky_invA));
  std::printf("\n");
  rec.result("unexplained", Json(r.unexplained));
  std::ostringstream csv;
  csv << "spot,kx,ky,g_inv_A,d_A,phase,hkl,error_pct\n";
  for (size_t i = 0; i < spots.size(); ++i) {
    const double g = std::hypot(spots[i].kx_invA, spots[i].ky_invA);
    csv << i + 1 << "," << spots[i].kx_invA << "," << spots[i].ky_invA << "," << g << "," << 1 / g << ","
        << spot_phase[i] << "," << spot_hkl[i] << ",";
    if (std::isfinite(spot_err[i]))
      csv << 100 * spot_err[i];
    csv << "\n";
  }
  // Nothing found, or nothing found that holds up: a refusal (exit 1, no output files), not a result.
  if (r.best.empty() || n_unreliable == r.best.size()) {
    std::fflush(stdout);  // the refusal comes after what was printed
    std::fprintf(stderr, "error: %s\n",
                 r.best.empty() ? "no zone axis explains 2 or more spots within the tolerance; check --phase, "
                                  "--tolerance and the calibration (--scale-range)"
                                : "no reliable zone axis (see the warnings above); check --phase and the calibration");
    return EXIT_INPUT;
  }
  if (!out.empty()) {
    rec.write_text_output(out, csv.str(), {spots_path});
  } else if (!quiet) {
    std::cout << csv.str();
  }
  return EXIT_OK;
}

int index_main(int argc, char** argv) {
  return run_guarded("index", [&]() -> int {
    po::options_description opts("index options");
    std::string spots_path, spacings, out, tol_text, scale_range_text = "5%";
    bool fit_scale = false;
    int frame = -1;
    std::vector<std::string> phase_names;
    ZoneSpec spec;
    double angle_tol = 2;
    bool dd = false;
    opts.add_options()
      ("spots", po::value<std::string>(&spots_path), "spot CSV of epitem fft/index (kx,ky), saed (gx,gy), "
       "track --detections (gx_inv_A,gy_inv_A) or track (g_inv_A,azimuth_deg), 1/Å")
      ("frame", po::value<int>(&frame), "movie CSVs (track): use this frame (default: the one with most spots)")
      ("spacings", po::value<std::string>(&spacings), "measured spacings: 2.97A,2.53A or 3.37/nm,… (bare numbers: Å)")
      ("phase,p", po::value<std::vector<std::string>>(&phase_names)->required(),
       "phase: built-in name (Fe3O4, NiFe, Si, Au…) or CIF path; repeat for several")
      ("tolerance", po::value<std::string>(&tol_text), "allowed relative error of |g| (1%; default 1% "
       "for --spacings, 2% for spots)")
      ("angle-tolerance", po::value<double>(&angle_tol)->default_value(2), "allowed error of inter-spot angles [deg]")
      ("max-index", po::value<int>(&spec.max_index)->default_value(5), "largest |u|,|v|,|w| of candidate zone axes")
      ("scale-range", po::value<std::string>(&scale_range_text)->default_value("5%"),
       "the calibration may be off by up to ±this: the scale (and, with ≥ 4 spots, an elliptical "
       "distortion up to 3 %) is searched and fitted per solution; 0 = trust the calibration")
      ("fit-scale", po::bool_switch(&fit_scale), "alias of --scale-range 10% (searching is now the default)")
      ("dmin", po::value<std::string>()->default_value("0.9A"), "shortest spacing of the phases' reflection lists [Å]")
      ("double-diffraction", po::bool_switch(&dd), "also use kinematically forbidden reflections "
       "reachable by double diffraction (e.g. Fe3O4 002 in HRTEM FFTs)")
      ("out,o", po::value<std::string>(&out), "CSV of the assignments (+ JSON sidecar)");
    po::positional_options_description pos;
    pos.add("spots", 1);
    po::variables_map vm;
    CommonOptions common;
    if (!parse_command_line(
            argc, argv,
            "usage: epitem index --spacings 2.97A,2.53A --phase Fe3O4 [--phase NiFe] [--tolerance 1%]\n"
            "       epitem index peaks.csv --phase Fe3O4 --phase NiFe [--max-index 5] [--scale-range 5%]\n"
            "                    [--frame N] [--out idx.csv]\n"
            "Spacings: every {hkl} within the tolerance, AMBIGUOUS when several fit. Spots: zone axis\n"
            "(toward the viewer), in-plane orientation and hkl per spot for each phase, unexplained\n"
            "spots, and for two phases their orientation relationship and relative rotation about\n"
            "the beam (CCW positive, y up). The calibration's scale is searched within ±5 % by\n"
            "default (--scale-range 0: trust it); the runner-up zone and why it lost are reported.\n"
            "Spot CSVs: fft/index, saed, track --detections and track tracks (movies: --frame).\n"
            "A best fit whose scale sits at the edge of the search, that sees under half of the\n"
            "strong predicted reflections, or that leaves most spot intensity (the strongest spot\n"
            "included) unexplained is printed as NO RELIABLE FIT with a warning saying why; when no\n"
            "phase has a reliable fit (or none at all) index exits 1 and writes no --out files.",
            opts, pos, vm, common))
      return EXIT_OK;
    if (spots_path.empty() == spacings.empty())
      throw po::error("give either a spot CSV or --spacings (not both)");
    const double dmin_A = parse_spacing_A(vm["dmin"].as<std::string>(), "--dmin");
    if (!(dmin_A >= 0.3))
      fail("--dmin ", dmin_A, " Å is too small; use ≥ 0.3 Å (e.g. 0.9A)");
    const double tol = tol_text.empty() ? (spacings.empty() ? 0.02 : 0.01) : parse_tolerance(tol_text, "--tolerance");
    if (!(angle_tol > 0 && angle_tol < 20))
      throw po::error("--angle-tolerance must be between 0 and 20 deg");
    spec.tolerance_rel = tol;
    // "0" or "0%" switches the search off (parse_tolerance wants a positive value).
    const bool no_search = scale_range_text.find_first_not_of("0.% ") == std::string::npos;
    spec.scale_range = fit_scale ? 0.1 : no_search ? 0.0 : parse_tolerance(scale_range_text, "--scale-range");
    if (fit_scale && !vm["scale-range"].defaulted())
      throw po::error("give --scale-range or --fit-scale, not both");
    if (spec.scale_range > 0.3)
      throw po::error("--scale-range must be at most 30%");
    if (spec.scale_range == 0)
      spec.max_distortion = 0;
    spec.angle_tolerance_deg = angle_tol;
    if (spec.max_index < 1 || spec.max_index > 12)
      throw po::error("--max-index must be 1..12");

    RunRecord rec("index");
    rec.add("phases", Json(phase_names));
    rec.add("tolerance_rel", tol);
    rec.add("dmin_A", dmin_A, "Å");
    std::vector<double> d;
    if (!spacings.empty()) {
      std::stringstream ss(spacings);
      std::string item;
      while (std::getline(ss, item, ','))
        d.push_back(parse_spacing_A(item, "--spacings"));
      rec.add("spacings_A", Json(d));
    } else {
      rec.add("spots", spots_path);
      rec.add("max_index", double(spec.max_index));
      rec.add("angle_tolerance_deg", angle_tol, "deg");
      rec.add("scale_range_rel", spec.scale_range);
      rec.add("max_distortion_rel", spec.max_distortion);
      rec.add("double_diffraction", std::string(dd ? "yes" : "no"));
    }
    if (common.dry_run) {
      rec.echo(std::cout);
      std::cout << "# dry run: memory < 50 MiB; nothing computed\n";
      return EXIT_OK;
    }
    const auto phases = load_phases(phase_names, dmin_A, dd);
    SpotCsvOptions csv_options;
    csv_options.frame = frame;
    return spacings.empty() ? zone_mode(spots_path, csv_options, phases, spec, rec, out, common.quiet)
                            : spacings_mode(d, phases, tol, rec, out, common.quiet);
  });
}

}  // namespace

EPITEM_COMMAND(index, 61, "index d-spacings or FFT/SAED spots: hkl, zone axis, orientation relationship",
               index_main);

}  // namespace epitem::cli
