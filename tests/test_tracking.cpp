// End-to-end check of the SAED movie pipeline on a synthetic movie with known truth
// (synthetic_saed_movie.hpp), plus unit tests of linking, lifespans and summaries.
#include <cmath>
#include <map>

#include "epitem/error.hpp"
#include "epitem/indexing.hpp"
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

TEST_CASE("a spot seen in one frame lives one frame interval, in a one-frame movie too", "[tracking]") {
  std::vector<std::vector<SpotObservation>> one(1), two(2);
  one[0].push_back(obs_at(0, 30, 30, 0.3));
  two[0].push_back(obs_at(0, 30, 30, 0.3));
  TrackingSpec spec;
  spec.min_frames = 1;
  auto t1 = link_tracks(one, spec);
  auto t2 = link_tracks(two, spec);
  REQUIRE(t1.size() == 1);
  REQUIRE(t2.size() == 1);
  set_track_times(t1, {0}, {}, 1, 0.1);
  set_track_times(t2, {0, 0.1}, {}, 2);
  CHECK(t1[0].lifespan_s == Approx(0.1));
  CHECK(t2[0].lifespan_s == Approx(t1[0].lifespan_s));
  set_track_times(t1, {0}, {}, 1);  // interval unknown
  CHECK(t1[0].lifespan_s == 0);
  CHECK_THROWS_AS(set_track_times(t1, {0}, {}, 1, -1), Error);
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

// ---- In-situ movies: centre, distortion and detection from the whole movie ----

namespace {

struct PipelineResult {
  Vec2 centre_px;
  PatternGeometry geom;
  std::vector<std::vector<SpotObservation>> obs;
  std::vector<Track> tracks;
};

// The steps of `epitem track` in its order: beam stop from the mean frame, pass 1 raw
// detections → centre from Friedel pairs across the movie → distortion from the distinct
// spots (or a given one), pass 2 detection on frames minus their azimuthal median, tracks,
// labels from the indexing module.
PipelineResult run_pipeline(const std::vector<Image>& frames, double pixel_size_invA,
                            const std::vector<Phase>& phases, const Ellipse* given_distortion = nullptr) {
  const int nx = frames[0].nx, ny = frames[0].ny;
  Image mean(nx, ny);
  for (const Image& f : frames)
    for (size_t i = 0; i < mean.size(); ++i)
      mean.pixels[i] += f.pixels[i] / float(frames.size());
  const DetectorMask mask = dark_region_mask(mean, 0.2, 2);
  SpotDetectionSpec dspec;
  dspec.sigma_min_px = 1.0;
  dspec.sigma_max_px = 3.0;
  dspec.n_scales = 3;
  const SpotDetector detector(nx, ny, dspec, mask);
  std::vector<std::vector<DetectedSpot>> raw;
  for (const Image& f : frames)
    raw.push_back(detector.detect(f));
  const FriedelCentre fc = centre_from_friedel_pairs(raw, nx, ny);
  PipelineResult r;
  r.centre_px = Vec2(fc.cx_px, fc.cy_px);
  r.geom.ellipse = {fc.cx_px, fc.cy_px, 1, 1, 0};
  if (given_distortion) {
    r.geom.ellipse = distortion_ellipse(fc.cx_px, fc.cy_px, given_distortion->axis_ratio(), given_distortion->angle_deg);
  } else {
    try {
      r.geom.ellipse = distortion_from_spots(distinct_spot_positions(raw), fc.cx_px, fc.cy_px).ellipse;
    } catch (const Error&) {  // too few same-family pairs: no correction (the CLI warns)
    }
  }
  r.geom.correct_distortion = r.geom.ellipse.axis_ratio() - 1 > DEFAULT_DISTORTION_THRESHOLD;
  r.geom.pixel_size_invA = pixel_size_invA;
  const RadialProfiler profiler(nx, ny, r.geom, mask, 1.0);
  r.obs.resize(frames.size());
  for (size_t f = 0; f < frames.size(); ++f)
    for (const auto& d : detector.detect(profiler.subtract_profile(frames[f]))) {
      if (r.geom.corrected_offset_px(d.x_px, d.y_px).norm() < 4 * dspec.sigma_max_px)
        continue;
      SpotObservation o;
      o.frame = int(f);
      o.x_px = d.x_px;
      o.y_px = d.y_px;
      const Vec2 g = r.geom.g_invA(d.x_px, d.y_px);
      o.gx_invA = g.x();
      o.gy_invA = g.y();
      o.intensity = d.intensity;
      o.snr = d.snr;
      r.obs[f].push_back(o);
    }
  r.tracks = link_tracks(r.obs, TrackingSpec{});
  label_tracks(r.tracks, [&](double g) {
    const SpacingMatch m = index_spacings({1.0 / g}, phases, 0.01)[0];
    SpacingLabel l;
    if (m.matched()) {
      l.status = m.ambiguous ? LabelStatus::Ambiguous : LabelStatus::Indexed;
      l.phase = m.candidates.front().phase_name;
    }
    return l;
  });
  return r;
}

struct InSituScore {
  double centre_err_px, recall, lifespan_ok, phase_ok, spurious;
  double recall_near_stop;  ///< spot-frames of spots within 6 px of the beam stop
  int n_spots, n_tracks, n_near_stop;
};

InSituScore score(const testing::InSituMovie& m, const PipelineResult& r) {
  InSituScore s{};
  s.centre_err_px = std::hypot(r.centre_px.x() - m.cx_px, r.centre_px.y() - m.cy_px);
  int n_truth = 0, n_found = 0, n_near = 0, n_near_found = 0;
  for (size_t f = 0; f < m.frames.size(); ++f)
    for (const auto& sp : m.spots)
      if (sp.visible(int(f))) {
        const bool near = m.blocked(sp.x_px, sp.y_px, 6);
        ++n_truth;
        n_near += near;
        for (const auto& o : r.obs[f])
          if (std::hypot(o.x_px - sp.x_px, o.y_px - sp.y_px) < 1.5) {
            ++n_found;
            n_near_found += near;
            break;
          }
      }
  s.recall = double(n_found) / n_truth;
  s.recall_near_stop = n_near ? double(n_near_found) / n_near : 1.0;
  s.n_near_stop = 0;
  for (const auto& sp : m.spots)
    s.n_near_stop += m.blocked(sp.x_px, sp.y_px, 6);
  int n_life = 0, n_phase = 0;
  std::vector<bool> explained(r.tracks.size(), false);
  for (const auto& sp : m.spots) {
    const Track* best = nullptr;
    for (size_t t = 0; t < r.tracks.size(); ++t) {
      const Track& tr = r.tracks[t];
      if (std::hypot(tr.x_px - sp.x_px, tr.y_px - sp.y_px) < 1.5 && tr.first_frame <= sp.death &&
          sp.birth <= tr.last_frame) {
        explained[t] = true;
        if (!best || std::abs(tr.lifespan_frames() - (sp.death - sp.birth + 1)) <
                         std::abs(best->lifespan_frames() - (sp.death - sp.birth + 1)))
          best = &tr;
      }
    }
    if (best && std::abs(best->first_frame - sp.birth) <= 1 && std::abs(best->last_frame - sp.death) <= 1)
      ++n_life;
    if (best && best->label.status == LabelStatus::Indexed && best->label.phase == sp.phase)
      ++n_phase;
  }
  s.n_spots = int(m.spots.size());
  s.n_tracks = int(r.tracks.size());
  s.lifespan_ok = double(n_life) / s.n_spots;
  s.phase_ok = double(n_phase) / s.n_spots;
  s.spurious = double(std::count(explained.begin(), explained.end(), false)) / std::max<size_t>(1, r.tracks.size());
  return s;
}

}  // namespace

TEST_CASE("in-situ SAED movies: centre, distortion, recall, lifespans and phases over seeds", "[tracking]") {
  for (unsigned seed : {1u, 2u, 3u}) {
    testing::InSituMovieSpec spec;
    spec.seed = seed;
    const auto movie = testing::make_insitu_saed_movie(spec);
    const PipelineResult r = run_pipeline(movie.frames, spec.pixel_size_invA, movie.phases);
    const InSituScore s = score(movie, r);
    // Friedel mates within one frame are rare: the centre must come from the whole movie.
    int frames_with_mates = 0;
    for (int f = 0; f < spec.n_frames; ++f)
      for (size_t i = 0; i < movie.spots.size(); ++i)
        for (size_t j = i + 1; j < movie.spots.size(); ++j)
          frames_with_mates += movie.spots[i].visible(f) && movie.spots[j].visible(f) &&
                               std::hypot(movie.spots[i].x_px + movie.spots[j].x_px - 2 * movie.cx_px,
                                          movie.spots[i].y_px + movie.spots[j].y_px - 2 * movie.cy_px) < 1;
    const Ellipse& e = r.geom.ellipse;
    INFO("seed " << seed << ": centre error " << s.centre_err_px << " px; distortion a/b " << e.axis_ratio()
                 << " at " << e.angle_deg << " deg (truth " << movie.axis_ratio << " at " << movie.angle_deg
                 << "); recall " << s.recall << "; lifespans within 1 frame " << s.lifespan_ok << "; phase right "
                 << s.phase_ok << "; spurious tracks " << s.spurious << " (" << s.n_tracks << " tracks, "
                 << s.n_spots << " spots, " << frames_with_mates << " mate-frames)");
    CHECK(s.centre_err_px < 1.0);
    CHECK(std::abs(e.axis_ratio() - movie.axis_ratio) < 0.002);
    CHECK(s.recall >= 0.95);
    CHECK(s.n_near_stop >= 3);  // the generator puts spots 3.5–6 px from the beam-stop arm
    CHECK(s.recall_near_stop >= 0.9);
    CHECK(s.lifespan_ok >= 0.90);
    CHECK(s.phase_ok >= 0.95);
    CHECK(s.spurious <= 0.05);
    WARN("seed " << seed << ": centre error " << s.centre_err_px << " px, a/b " << e.axis_ratio() << " at "
                 << e.angle_deg << " deg (truth " << movie.axis_ratio << " at " << movie.angle_deg << "), recall "
                 << s.recall << " (" << s.recall_near_stop << " for the " << s.n_near_stop
                 << " spots next to the beam stop), lifespans " << s.lifespan_ok << ", phase " << s.phase_ok
                 << ", spurious " << s.spurious);
  }
}

TEST_CASE("in-situ movie with negative pixel values (signed detector offset) tracks as well", "[tracking]") {
  for (unsigned seed : {4u, 5u}) {
    testing::InSituMovieSpec spec;
    spec.seed = seed;
    spec.offset_counts = -1000;  // every pixel < 0
    const auto movie = testing::make_insitu_saed_movie(spec);
    REQUIRE(*std::max_element(movie.frames[0].pixels.begin(), movie.frames[0].pixels.end()) < 0);
    // Regression: fraction × median masked every pixel of such a frame.
    const DetectorMask mask = dark_region_mask(movie.frames[0], 0.2, 2);
    CHECK(mask.count() < 0.1 * double(movie.frames[0].size()));
    CHECK(mask.is_excluded(int(movie.cx_px), int(movie.cy_px)));
    const InSituScore s = score(movie, run_pipeline(movie.frames, spec.pixel_size_invA, movie.phases));
    INFO("seed " << seed << ": centre error " << s.centre_err_px << " px, recall " << s.recall << ", lifespans "
                 << s.lifespan_ok << ", phase " << s.phase_ok << ", spurious " << s.spurious);
    CHECK(s.centre_err_px < 1.0);
    CHECK(s.recall >= 0.95);
    CHECK(s.lifespan_ok >= 0.90);
    CHECK(s.phase_ok >= 0.95);
    CHECK(s.spurious <= 0.05);
  }
}

TEST_CASE("a given distortion (calibration) reproduces the true |g| of every spot", "[tracking]") {
  testing::InSituMovieSpec spec;
  spec.seed = 6;
  spec.axis_ratio = 1.015;
  const auto movie = testing::make_insitu_saed_movie(spec);
  const Ellipse truth = distortion_ellipse(movie.cx_px, movie.cy_px, movie.axis_ratio, movie.angle_deg);
  const PipelineResult r = run_pipeline(movie.frames, spec.pixel_size_invA, movie.phases, &truth);
  CHECK(r.geom.ellipse.axis_ratio() == Approx(movie.axis_ratio).epsilon(1e-12));
  CHECK(r.geom.correct_distortion);
  // Truth positions through the geometry: |g| within 0.2 % (centre error ≲ 0.1 px at r ≥ 36 px).
  double worst = 0;
  for (const auto& sp : movie.spots)
    worst = std::max(worst, std::abs(r.geom.g_invA(sp.x_px, sp.y_px).norm() / sp.g_invA - 1));
  INFO("largest |g| error " << worst);
  CHECK(worst < 0.002);
  const InSituScore s = score(movie, r);
  CHECK(s.phase_ok >= 0.95);
  // Without any correction the 1.5 % ellipticity moves |g| by up to ±0.75 %: more than half
  // of the 1 % indexing tolerance, which is what pushed spots out of it.
  PatternGeometry raw = r.geom;
  raw.correct_distortion = false;
  double worst_raw = 0;
  for (const auto& sp : movie.spots)
    worst_raw = std::max(worst_raw, std::abs(raw.g_invA(sp.x_px, sp.y_px).norm() / sp.g_invA - 1));
  CHECK(worst_raw > 0.005);
}

TEST_CASE("a single in-situ frame gives spots, centre and labels", "[tracking]") {
  testing::InSituMovieSpec spec;
  spec.seed = 7;
  spec.n_frames = 3;           // spots drawn at birth 0 with their mates: one pattern
  spec.mate_probability = 1;
  spec.n_grains = 10;
  auto movie = testing::make_insitu_saed_movie(spec);
  const std::vector<Image> one = {movie.frames[0]};
  const PipelineResult r = run_pipeline(one, spec.pixel_size_invA, movie.phases, nullptr);
  CHECK(std::hypot(r.centre_px.x() - movie.cx_px, r.centre_px.y() - movie.cy_px) < 1.0);
  int visible = 0, found = 0;
  for (const auto& sp : movie.spots)
    if (sp.visible(0)) {
      ++visible;
      for (const auto& o : r.obs[0])
        if (std::hypot(o.x_px - sp.x_px, o.y_px - sp.y_px) < 1.5) {
          ++found;
          break;
        }
    }
  INFO(found << " of " << visible << " spots of the single frame found");
  CHECK(found >= 0.95 * visible);
}

TEST_CASE("in-situ SAED movies, larger: 768 px, 40 frames, 30 grains", "[tracking][slow]") {
  for (unsigned seed : {11u, 12u, 13u}) {
    testing::InSituMovieSpec spec;
    spec.seed = seed;
    spec.size_px = 768;
    spec.n_frames = 40;
    spec.n_grains = 30;
    spec.centre_offset_px = 60;
    spec.pixel_size_invA = 0.0025;
    spec.beam_stop_radius_px = 20;
    spec.beam_stop_arm_width_px = 16;
    spec.halo_length_px = 100;
    const auto movie = testing::make_insitu_saed_movie(spec);
    const PipelineResult r = run_pipeline(movie.frames, spec.pixel_size_invA, movie.phases);
    const InSituScore s = score(movie, r);
    INFO("seed " << seed << ": centre error " << s.centre_err_px << " px, a/b " << r.geom.ellipse.axis_ratio()
                 << " (truth " << movie.axis_ratio << "), recall " << s.recall << ", lifespans " << s.lifespan_ok
                 << ", phase " << s.phase_ok << ", spurious " << s.spurious << " (" << s.n_tracks << " tracks, "
                 << s.n_spots << " spots)");
    CHECK(s.centre_err_px < 1.0);
    CHECK(std::abs(r.geom.ellipse.axis_ratio() - movie.axis_ratio) < 0.002);
    CHECK(s.recall >= 0.95);
    CHECK(s.lifespan_ok >= 0.90);
    CHECK(s.phase_ok >= 0.95);
    CHECK(s.spurious <= 0.05);
  }
}
