// End-to-end check of the SAED movie pipeline on a synthetic movie with known truth
// (synthetic_saed_movie.hpp), plus unit tests of linking, lifespans and summaries.
#include <cmath>
#include <map>

#include "epitem/error.hpp"
#include "epitem/pattern_geometry.hpp"
#include "epitem/spot_detection.hpp"
#include "epitem/tracking.hpp"
#include "synthetic_saed_movie.hpp"
#include "testing.hpp"

using namespace epitem;

namespace {

SpotObservation obs_at(int frame, double x, double y, double g) {
  SpotObservation o;
  o.frame = frame;
  o.x_px = x;
  o.y_px = y;
  o.gx_invA = g;
  return o;
}

}  // namespace

TEST_CASE("synthetic SAED movie: detection, centre, ellipse, lifespans, indexing", "[tracking]") {
  testing::SyntheticMovieSpec spec;  // 512² × 40 frames, spot SNR 5–10 (peak / √background)
  const auto movie = testing::make_synthetic_saed_movie(spec);
  REQUIRE(movie.spots.size() == size_t(2 * spec.n_pairs));
  const int n = spec.size_px;

  // Beam stop from the mean of the first frames (it never moves).
  Image mean(n, n);
  for (int f = 0; f < 5; ++f)
    for (size_t i = 0; i < mean.size(); ++i)
      mean.pixels[i] += movie.frames[size_t(f)].pixels[i] / 5;
  DetectorMask mask = dark_region_mask(mean, 0.2, 2);
  CHECK(mask.is_excluded(int(spec.cx_px), int(spec.cy_px)));

  SpotDetectionSpec dspec;
  dspec.sigma_min_px = 1.0;
  dspec.sigma_max_px = 3.0;
  dspec.n_scales = 3;
  dspec.snr_threshold = 6;
  SpotDetector detector(n, n, dspec, mask);

  // Pass 1 on the raw first frames: centre from Friedel pairs, then the ring on the sum.
  std::vector<std::vector<DetectedSpot>> first;
  for (int f = 0; f < 5; ++f)
    first.push_back(detector.detect(movie.frames[size_t(f)]));
  const FriedelCentre fc = centre_from_friedel_pairs(first, n, n);
  INFO("Friedel centre (" << fc.cx_px << ", " << fc.cy_px << ") from " << fc.n_pairs << " pairs");
  CHECK(std::hypot(fc.cx_px - spec.cx_px, fc.cy_px - spec.cy_px) < 0.5);  // issue 7 acceptance
  Image sum(n, n);
  for (const auto& frame : movie.frames)
    for (size_t i = 0; i < sum.size(); ++i)
      sum.pixels[i] += frame.pixels[i];
  const RingFit ring = fit_ring(sum, mask, fc.cx_px, fc.cy_px, movie.ring_ellipse.mean_radius_px());
  const Ellipse& e = ring.ellipse;
  INFO("ring: centre (" << e.cx_px << ", " << e.cy_px << "), a = " << e.semi_major_px << " (truth "
       << movie.ring_ellipse.semi_major_px << "), b = " << e.semi_minor_px << " (truth "
       << movie.ring_ellipse.semi_minor_px << "), angle " << e.angle_deg << " deg");
  CHECK(std::hypot(e.cx_px - spec.cx_px, e.cy_px - spec.cy_px) < 0.5);
  CHECK(std::abs(e.semi_major_px / movie.ring_ellipse.semi_major_px - 1) < 0.005);  // issue 7
  CHECK(std::abs(e.semi_minor_px / movie.ring_ellipse.semi_minor_px - 1) < 0.005);
  CHECK(std::abs(e.angle_deg - spec.angle_deg) < 5);  // 1.2 % ellipticity pins the axis to a few deg

  // Calibration from the two rings of the radial profile (pixel size 0.004 1/Å by construction).
  PatternGeometry geom;
  geom.ellipse = e;
  geom.correct_distortion = e.axis_ratio() - 1 > DEFAULT_DISTORTION_THRESHOLD;
  CHECK(geom.correct_distortion);
  RadialProfiler profiler(n, n, geom, mask, 0.5);
  const auto profile = profiler.profile(sum);
  std::vector<double> radii, weights;
  for (const auto& p : find_profile_peaks(profile, profiler.radius_px(), 8)) {
    radii.push_back(p.radius_px);
    weights.push_back(p.prominence);
  }
  const RingCalibration cal = calibrate_from_rings(radii, weights, movie.ring_references, 0.01);
  INFO("calibration " << cal.pixel_size_invA << " 1/Å per px from " << cal.matches.size() << " rings");
  CHECK(cal.matches.size() == 2);
  CHECK(std::abs(cal.pixel_size_invA / spec.pixel_size_invA - 1) < 0.003);  // ring radius to ~0.3 px of 100

  // Pass 2: every frame minus its azimuthal mean (rings, diffuse background), then detection.
  std::vector<std::vector<DetectedSpot>> detections;
  for (const auto& frame : movie.frames)
    detections.push_back(detector.detect(profiler.subtract_profile(frame)));

  // Recall and precision per frame; a detection within 1.5 px of a visible truth spot is a hit.
  int n_truth = 0, n_found = 0, n_det = 0, n_true_det = 0;
  double pos_err2 = 0;
  for (int f = 0; f < spec.n_frames; ++f) {
    const auto& det = detections[size_t(f)];
    n_det += int(det.size());
    for (const auto& d : det)
      for (const auto& s : movie.spots)
        if (s.visible(f) && std::hypot(d.x_px - s.x_px, d.y_px - s.y_px) < 1.5) {
          ++n_true_det;
          break;
        }
    for (const auto& s : movie.spots) {
      if (!s.visible(f))
        continue;
      ++n_truth;
      for (const auto& d : det)
        if (std::hypot(d.x_px - s.x_px, d.y_px - s.y_px) < 1.5) {
          ++n_found;
          pos_err2 += std::pow(d.x_px - s.x_px, 2) + std::pow(d.y_px - s.y_px, 2);
          break;
        }
    }
  }
  const double recall = double(n_found) / n_truth, precision = double(n_true_det) / n_det;
  INFO("recall " << recall << " precision " << precision << " rms position error "
                 << std::sqrt(pos_err2 / n_found) << " px over " << n_truth << " spot-frames");
  CHECK(recall >= 0.95);     // issue 7 acceptance
  CHECK(precision >= 0.95);
  CHECK(std::sqrt(pos_err2 / n_found) < 0.3);  // σ = 1.5 px spots at SNR ≥ 5: ~0.1–0.2 px expected

  // Tracks.
  geom.ellipse.cx_px = fc.cx_px;  // Friedel centre: independent of the ring fit
  geom.ellipse.cy_px = fc.cy_px;
  geom.pixel_size_invA = cal.pixel_size_invA;
  std::vector<std::vector<SpotObservation>> frames(size_t(spec.n_frames));
  for (int f = 0; f < spec.n_frames; ++f)
    for (const auto& d : detections[size_t(f)]) {
      SpotObservation o;
      o.frame = f;
      o.x_px = d.x_px;
      o.y_px = d.y_px;
      Vec2 g = geom.g_invA(d.x_px, d.y_px);
      o.gx_invA = g.x();
      o.gy_invA = g.y();
      o.intensity = d.intensity;
      o.snr = d.snr;
      frames[size_t(f)].push_back(o);
    }
  TrackingSpec tspec;
  auto tracks = link_tracks(frames, tspec);
  std::vector<double> times(size_t(spec.n_frames));
  for (int f = 0; f < spec.n_frames; ++f)
    times[size_t(f)] = f / 20.0;
  set_track_times(tracks, times, {}, spec.n_frames);
  label_tracks(tracks, [&](double g) { return label_spacing(g, movie.references, 0.01); });

  int n_exact = 0, n_indexable = 0, n_indexed_ok = 0;
  std::map<int, int> track_of_spot;
  for (size_t i = 0; i < movie.spots.size(); ++i) {
    const auto& s = movie.spots[i];
    const Track* best = nullptr;
    for (const auto& t : tracks)
      if (std::hypot(t.x_px - s.x_px, t.y_px - s.y_px) < 1.5 && t.first_frame <= s.death &&
          s.birth <= t.last_frame &&
          (!best || std::abs(t.lifespan_frames() - (s.death - s.birth + 1)) <
                        std::abs(best->lifespan_frames() - (s.death - s.birth + 1))))
        best = &t;
    if (best && std::abs(best->first_frame - s.birth) <= 1 && std::abs(best->last_frame - s.death) <= 1)
      ++n_exact;
    // Unambiguous: no other family of either phase within 2 % (twice the indexing tolerance).
    bool unambiguous = true;
    for (const auto& r : movie.references)
      if (!(r.phase == s.phase && r.hkl == s.hkl) && std::abs(r.g_invA / s.g_invA - 1) < 0.02)
        unambiguous = false;
    if (unambiguous && best) {
      ++n_indexable;
      if (best->label.status == LabelStatus::Indexed && best->label.phase == s.phase &&
          best->label.hkl == s.hkl)
        ++n_indexed_ok;
      else
        FAIL_CHECK("spot " << s.phase << " " << s.hkl << " at g = " << s.g_invA << " labelled "
                   << best->label.phase << " " << best->label.hkl << " (" << best->g_invA << ")");
    }
  }
  const double exact_fraction = double(n_exact) / double(movie.spots.size());
  INFO(tracks.size() << " tracks for " << movie.spots.size() << " spots; lifespans within ±1 frame: "
       << exact_fraction << "; correctly indexed " << n_indexed_ok << " / " << n_indexable);
  CHECK(exact_fraction >= 0.95);
  CHECK(n_indexable >= int(movie.spots.size()) / 2);  // the test must index a good share
  CHECK(n_indexed_ok == n_indexable);
}

TEST_CASE("linking closes gaps up to max_gap_frames and splits beyond", "[tracking]") {
  std::vector<std::vector<SpotObservation>> frames(12);
  for (int f : {0, 1, 2, 4, 5})  // one missing frame: one track
    frames[size_t(f)].push_back(obs_at(f, 100 + 0.3 * f, 50, 0.3));
  for (int f : {0, 1, 5, 6})     // three missing frames > max_gap 2: two tracks
    frames[size_t(f)].push_back(obs_at(f, 20, 20, 0.5));
  frames[8].push_back(obs_at(8, 60, 60, 0.4));  // single frame: dropped by min_frames = 2
  TrackingSpec spec;
  auto tracks = link_tracks(frames, spec);
  REQUIRE(tracks.size() == 3);
  CHECK(tracks[0].first_frame == 0);
  CHECK(tracks[0].last_frame == 5);
  CHECK(tracks[0].frames.size() == 5);
  CHECK(tracks[1].last_frame == 1);
  CHECK(tracks[2].first_frame == 5);
  CHECK(frames[8][0].track_id == -1);
  // |g| gate: a spot at the same place but 10 % larger |g| starts a new track.
  std::vector<std::vector<SpotObservation>> g_jump(3);
  g_jump[0].push_back(obs_at(0, 10, 10, 0.50));
  g_jump[1].push_back(obs_at(1, 10, 10, 0.50));
  g_jump[2].push_back(obs_at(2, 10, 10, 0.55));
  spec.min_frames = 1;
  CHECK(link_tracks(g_jump, spec).size() == 2);
}

TEST_CASE("lifespans use per-frame durations; summary bins by covariate", "[tracking]") {
  std::vector<std::vector<SpotObservation>> frames(6);
  for (int f = 1; f <= 3; ++f)
    frames[size_t(f)].push_back(obs_at(f, 30, 30, 0.3));
  for (int f = 0; f <= 5; ++f)
    frames[size_t(f)].push_back(obs_at(f, 80, 30, 0.6));
  auto tracks = link_tracks(frames, TrackingSpec{});
  REQUIRE(tracks.size() == 2);
  const std::vector<double> t = {0, 0.1, 0.3, 0.6, 1.0, 1.5};  // frame i lasts t[i+1] − t[i]
  const std::vector<double> temperature = {400, 401, 402, 403, 404, 405};
  set_track_times(tracks, t, temperature, 6);
  const Track& a = tracks[0].g_invA > 0.5 ? tracks[1] : tracks[0];
  const Track& b = tracks[0].g_invA > 0.5 ? tracks[0] : tracks[1];
  CHECK(a.lifespan_s == Approx(0.2 + 0.3 + 0.4));  // frames 1..3
  CHECK(a.covariate_mean == Approx(402));
  CHECK(!a.censored);
  CHECK(b.lifespan_s == Approx(1.5 + 0.5));        // last frame lasts as long as the one before
  CHECK(b.censored);
  std::vector<ReferenceRing> refs = {{"A", "100", 0.3}, {"B", "111", 0.6}, {"B", "200", 0.603}};
  label_tracks(tracks, [&](double g) { return label_spacing(g, refs, 0.01); });
  CHECK(a.label.status == LabelStatus::Indexed);
  CHECK(a.label.phase == "A");
  CHECK(b.label.status == LabelStatus::Ambiguous);
  CHECK(b.label.hkl == "111|200");
  auto bins = summarise_lifespans(tracks, 2.0, 400.0);
  REQUIRE(bins.size() == 2);
  CHECK(bins[0].phase == "A");
  CHECK(bins[0].covariate_lo == Approx(402));
  CHECK(bins[0].mean_lifespan_s == Approx(0.9));
  CHECK(bins[1].phase == "ambiguous");
  CHECK(tracks_csv(tracks).find("track_id,first_frame,last_frame") == 0);
  CHECK_THROWS_AS(set_track_times(tracks, {0, 1}, {}, 6), Error);
}

TEST_CASE("detection limit: spot SNR 4 still gives 95 % recall at threshold 6", "[slow]") {
  // Every spot at peak/√background = 4 (σ = 1.5 px): the weakest level the default threshold
  // is meant to catch; at SNR 3 the recall drops to ~0.7, so this pins the sensitivity.
  testing::SyntheticMovieSpec spec;
  spec.n_frames = 20;
  spec.snr_min = spec.snr_max = 4;
  const auto movie = testing::make_synthetic_saed_movie(spec);
  const int n = spec.size_px;
  const DetectorMask mask = dark_region_mask(movie.frames[0], 0.2, 2);
  SpotDetectionSpec dspec;
  dspec.sigma_min_px = 1.0;
  dspec.sigma_max_px = 3.0;
  dspec.n_scales = 3;
  SpotDetector detector(n, n, dspec, mask);
  PatternGeometry geom;
  geom.ellipse = movie.ring_ellipse;  // true geometry: this test is about detection only
  geom.correct_distortion = true;
  RadialProfiler profiler(n, n, geom, mask, 0.5);
  int n_truth = 0, n_found = 0, n_det = 0, n_true_det = 0;
  for (int f = 0; f < spec.n_frames; ++f) {
    const auto det = detector.detect(profiler.subtract_profile(movie.frames[size_t(f)]));
    n_det += int(det.size());
    for (const auto& d : det)
      for (const auto& s : movie.spots)
        if (s.visible(f) && std::hypot(d.x_px - s.x_px, d.y_px - s.y_px) < 1.5) {
          ++n_true_det;
          break;
        }
    for (const auto& s : movie.spots)
      if (s.visible(f)) {
        ++n_truth;
        for (const auto& d : det)
          if (std::hypot(d.x_px - s.x_px, d.y_px - s.y_px) < 1.5) {
            ++n_found;
            break;
          }
      }
  }
  INFO("recall " << double(n_found) / n_truth << ", precision " << double(n_true_det) / n_det);
  CHECK(double(n_found) / n_truth >= 0.95);
  CHECK(double(n_true_det) / n_det >= 0.95);
}
