#include "epitem/track_pipeline.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <iomanip>
#include <mutex>
#include <sstream>
#include <thread>

#include "epitem/error.hpp"
#include "epitem/image_file.hpp"
#include "epitem/parallel.hpp"
#include "epitem/structure_io.hpp"

namespace epitem {

namespace {

std::string fixed(double v, int digits) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << v;
  return os.str();
}

std::string hkl_text(const Vec3& h) {
  std::ostringstream os;
  bool compact = std::abs(h.x()) <= 9 && std::abs(h.y()) <= 9 && std::abs(h.z()) <= 9;
  for (int i = 0; i < 3; ++i)
    os << (i && !compact ? " " : "") << std::lround(h(i));
  return os.str();
}

/// Runs work(k) for k < n on `threads` workers; each worker reads its own frames, so a movie
/// is held O(threads) frames at a time. The first exception is rethrown.
void parallel_for(size_t n, int threads, const std::function<void(size_t)>& work, const ProgressFn& progress,
                  const std::string& what) {
  std::atomic<size_t> next{0}, done{0};
  std::mutex progress_mutex;
  std::exception_ptr error;
  auto worker = [&]() {
    try {
      for (size_t i; (i = next++) < n;) {
        work(i);
        size_t d = ++done;
        if (progress) {
          std::lock_guard<std::mutex> lock(progress_mutex);
          progress(d, n, what);
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(progress_mutex);
      if (!error)
        error = std::current_exception();
      next = n;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads && size_t(t) < n; ++t)
    pool.emplace_back(worker);
  worker();
  for (auto& t : pool)
    t.join();
  if (error)
    std::rethrow_exception(error);
}

/// Up to max_n frame indices spread evenly over the movie (all when it has fewer).
std::vector<size_t> spread_frames(size_t n_frames, size_t max_n) {
  std::vector<size_t> idx;
  const size_t n = std::min(n_frames, max_n);
  for (size_t k = 0; k < n; ++k)
    idx.push_back(n == n_frames ? k : k * (n_frames - 1) / std::max<size_t>(1, n - 1));
  return idx;
}

Image finite_frame(const TrackInput& frames, size_t i) {
  Image im = frames.frame(i);
  require_finite(im, frames.name() + " frame " + std::to_string(i));
  return im;
}

bool is_constant(const Image& im) {
  auto mm = std::minmax_element(im.pixels.begin(), im.pixels.end());
  return *mm.first == *mm.second;
}

/// The frames of a step split over MPI ranks (settings.split_over_ranks under mpirun), or all
/// frames on this process.
struct Split {
  bool on = false;
  explicit Split(const TrackSettings& s) : on(s.split_over_ranks && parallel::size() > 1) {}
  bool root() const { return !on || parallel::is_root(); }
  bool mine(size_t k) const { return !on || parallel::owns(int(k)); }
  /// Items k < n this rank computes.
  std::vector<size_t> my_items(size_t n) const {
    std::vector<size_t> items;
    for (size_t k = 0; k < n; ++k)
      if (mine(k))
        items.push_back(k);
    return items;
  }
  /// A step that may fail on some ranks only (an unreadable frame): all ranks stop together.
  void step(const std::function<void()>& body) const {
    if (on)
      parallel::collective(body);
    else
      body();
  }
};

}  // namespace

SpacingLabel label_from_match(const SpacingMatch& m) {
  SpacingLabel label;
  if (!m.matched())
    return label;
  label.error_rel = m.candidates.front().error_rel;
  label.status = m.ambiguous ? LabelStatus::Ambiguous : LabelStatus::Indexed;
  for (size_t i = 0; i < m.candidates.size(); ++i) {
    const auto& c = m.candidates[i];
    if (i && !m.ambiguous)
      break;
    label.phase += (i ? "|" : "") + c.phase_name;
    std::string h;
    for (size_t k = 0; k < c.hkl.size(); ++k)
      h += (k ? "/" : "") + hkl_text(c.hkl[k]);
    label.hkl += (i ? "|" : "") + h;
  }
  return label;
}

std::vector<FrameSpots> detect_frames(size_t n, const std::function<Image(size_t)>& get, const SpotDetector& detector,
                                      const RadialProfiler* profiler, bool subtract, int threads,
                                      const ProgressFn& progress) {
  std::vector<FrameSpots> results(n);
  parallel_for(n, threads, [&](size_t i) {
    const Image frame = get(i);
    FrameSpots& r = results[i];
    if (profiler && subtract)
      r.spots = detector.detect(profiler->subtract_profile(frame, &r.profile));
    else {
      r.spots = detector.detect(frame);
      if (profiler)
        r.profile = profiler->profile(frame);
    }
  }, progress, "detecting spots");
  return results;
}

std::vector<std::vector<SpotObservation>> spot_observations(const std::vector<FrameSpots>& results,
                                                            const PatternGeometry& geom, double min_radius_px) {
  std::vector<std::vector<SpotObservation>> frames(results.size());
  for (size_t f = 0; f < results.size(); ++f)
    for (const auto& d : results[f].spots) {
      Vec2 u = geom.corrected_offset_px(d.x_px, d.y_px);
      if (u.norm() < min_radius_px)
        continue;  // the direct beam and its halo
      SpotObservation o;
      o.frame = int(f);
      o.x_px = d.x_px;
      o.y_px = d.y_px;
      o.gx_invA = u.x() * geom.pixel_size_invA;
      o.gy_invA = u.y() * geom.pixel_size_invA;
      o.intensity = d.intensity;
      o.snr = d.snr;
      o.sigma_px = d.sigma_px;
      frames[f].push_back(o);
    }
  return frames;
}

namespace {

/// Centre, distortion and calibration from the reference image and the pass-1 spots (rank 0).
void geometry_on_root(const TrackInput& frames, const TrackSettings& s, const WarnFn& warn, const Image& ref,
                      const std::vector<std::vector<DetectedSpot>>& pass1, bool need_spots, TrackRun& run) {
  const std::string& name = frames.name();
  const int nx = frames.nx(), ny = frames.ny();
  const std::string& centre = s.centre;
  const DetectorMask& mask = run.mask;
  auto result = [&](const std::string& key, Json value) { run.results.emplace_back(key, std::move(value)); };

  // Centre.
  Ellipse ellipse{0.5 * nx, 0.5 * ny, 1, 1, 0};
  std::string& centre_source = run.centre_source;
  if (centre == "auto" || centre == "friedel") {
    try {
      FriedelCentre fc = centre_from_friedel_pairs(pass1, nx, ny);
      ellipse.cx_px = fc.cx_px;
      ellipse.cy_px = fc.cy_px;
      centre_source = "Friedel pairs across " + std::to_string(pass1.size()) + " frame(s) (" +
                      std::to_string(fc.n_pairs) + ", radii of " + std::to_string(fc.n_spots) + " spots; +- " +
                      fixed(fc.uncertainty_px, 2) + " px)";
      result("friedel_pairs", double(fc.n_pairs));
      result("friedel_rms_px", fc.rms_px);
      result("centre_uncertainty_px", fc.uncertainty_px);
      if (fc.uncertainty_px > 1)
        warn("the centre is poorly determined (+- " + fixed(fc.uncertainty_px, 2) + " px from " +
             std::to_string(fc.n_spots) + " distinct spots); give --centre X,Y if it is known");
    } catch (const Error& e) {
      if (centre == "friedel")
        throw;
      warn(std::string(e.what()) + "; using the direct beam");
    }
  }
  if (centre_source.empty() && centre != "ring" && centre != "given") {
    Vec2 c = direct_beam_centre_px(ref, mask, 3);
    ellipse.cx_px = c.x();
    ellipse.cy_px = c.y();
    centre_source = "direct beam";
  }
  if (centre == "given") {
    ellipse.cx_px = s.centre_x_px;
    ellipse.cy_px = s.centre_y_px;
    centre_source = "given";
  }
  if (centre == "ring") {
    Vec2 c = direct_beam_centre_px(ref, mask, 3);
    ellipse.cx_px = c.x();
    ellipse.cy_px = c.y();
  }
  // Distortion: given, else the strongest ring of the reference image, else same-family
  // spots at different azimuths.
  PatternGeometry& geom = run.geometry;
  geom.ellipse = ellipse;
  bool have_ring = false;
  std::string& distortion_source = run.distortion_source;
  distortion_source = "none";
  {
    RadialProfiler rp0(nx, ny, geom, mask, 1.0);
    double r_guess = s.ring_radius_px;
    if (!(r_guess > 0)) {
      auto peaks = find_profile_peaks(rp0.profile(ref), rp0.radius_px(), 8);
      for (const auto& p : peaks)
        if (p.radius_px > std::max(s.centre_mask_px, 10.0) && p.radius_px < 0.45 * std::min(nx, ny)) {
          r_guess = p.radius_px;
          break;
        }
    }
    if (r_guess > 0) {
      RingFit ring;
      try {
        ring = fit_ring(ref, mask, ellipse.cx_px, ellipse.cy_px, r_guess);
        const Ellipse& e = ring.ellipse;
        // A fit to the halo, spots or noise instead of a ring: too small, off the guessed
        // radius, far more elliptical than a projector lens makes (a/b ≤ 1.1) or ragged.
        const RingFitSpec ring_spec;
        const double min_radius = std::max(s.centre_mask_px, 10.0);
        if (e.semi_minor_px < min_radius || std::abs(e.mean_radius_px() - r_guess) > ring_spec.half_width_px ||
            e.axis_ratio() > 1.1 || ring.rms_residual_px > 1.0) {
          const std::string why = "ring fit near r = " + fixed(r_guess, 1) + " px rejected (semi-axes " +
                                  fixed(e.semi_major_px, 2) + " x " + fixed(e.semi_minor_px, 2) + " px, a/b " +
                                  fixed(e.axis_ratio(), 4) + ", RMS " + fixed(ring.rms_residual_px, 2) +
                                  " px; a ring needs r >= " + fixed(min_radius, 1) +
                                  " px, a/b <= 1.1 and RMS <= 1 px)";
          if (centre == "ring" || s.ring_radius_px > 0)
            fail(why, "; give --ring-radius of a real ring or --distortion RATIO,ANGLE_DEG");
          result("ring_fit_rejected", why);
          warn(why + (need_spots ? "; the distortion is taken from the spots" : "; distortion not measured"));
        } else {
          have_ring = true;
        }
      } catch (const Error& e) {
        if (centre == "ring" || s.ring_radius_px > 0)
          throw;
        if (!need_spots)
          warn(std::string("distortion not measured: ") + e.what());
      }
      if (have_ring) {
        Ellipse e = ring.ellipse;
        result("ring_centre_px", Json(std::vector<double>{e.cx_px, e.cy_px}));
        result("ring_semi_axes_px", Json(std::vector<double>{e.semi_major_px, e.semi_minor_px}));
        result("ring_angle_deg", e.angle_deg);
        result("ring_axis_ratio", e.axis_ratio());
        result("ring_rms_px", ring.rms_residual_px);
        result("ring_points", double(ring.n_inliers));
        if (centre == "ring" || centre_source == "direct beam") {
          centre_source = "ring fit";
        } else {  // keep the Friedel/given centre, take the shape from the ring
          e.cx_px = ellipse.cx_px;
          e.cy_px = ellipse.cy_px;
        }
        geom.ellipse = e;
        distortion_source = "ring fit";
      }
    } else if (centre == "ring") {
      fail(name, ": --centre ring but no ring found in the radial profile; give --ring-radius R (px)");
    }
  }
  if (s.distortion_given) {
    geom.ellipse =
        distortion_ellipse(geom.ellipse.cx_px, geom.ellipse.cy_px, s.distortion_ratio, s.distortion_angle_deg);
    distortion_source = "given (" + s.distortion_text + ")";
  } else if (!have_ring && !s.no_distortion_correction) {
    try {
      SpotDistortion sd = distortion_from_spots(distinct_spot_positions(pass1), geom.ellipse.cx_px, geom.ellipse.cy_px);
      geom.ellipse = sd.ellipse;
      distortion_source = "spots (" + std::to_string(sd.n_pairs) + " same-family pairs)";
      result("distortion_spot_pairs", double(sd.n_pairs));
      result("distortion_spot_rms_rel", sd.rms_rel);
    } catch (const Error& e) {
      warn(std::string("distortion not measured (no ring): ") + e.what());
    }
  }
  geom.correct_distortion = distortion_source != "none" && !s.no_distortion_correction &&
                            (s.distortion_given || geom.ellipse.axis_ratio() - 1 > s.distortion_threshold);
  result("centre_px", Json(std::vector<double>{geom.ellipse.cx_px, geom.ellipse.cy_px}));
  result("centre_source", centre_source);
  result("distortion_source", distortion_source);
  result("distortion_ratio", geom.ellipse.axis_ratio());
  result("distortion_angle_deg", geom.ellipse.angle_deg);
  result("distortion_corrected", Json(geom.correct_distortion));

  // Calibration.
  run.profiler = std::make_shared<const RadialProfiler>(nx, ny, geom, mask, 1.0);
  double pixel_invA = s.pixel_size_invA;
  if (!s.calibrant.empty()) {
    Phase cal_phase = make_phase(read_crystal(s.calibrant));
    std::vector<ReferenceRing> rings;
    for (const auto& fam : cal_phase.families)
      if (fam.kinematic_allowed && fam.intensity_rel > 0.01)
        rings.push_back({cal_phase.name, hkl_text(fam.hkl), 1.0 / fam.d_A});
    std::vector<double> radii, weights;
    for (const auto& p : find_profile_peaks(run.profiler->profile(ref), run.profiler->radius_px(), 8))
      if (p.radius_px > s.centre_mask_px) {
        radii.push_back(p.radius_px);
        weights.push_back(p.prominence);
      }
    RingCalibration cal = calibrate_from_rings(radii, weights, rings, s.tolerance_rel);
    pixel_invA = cal.pixel_size_invA;
    Json matches = Json::array();
    for (const auto& m : cal.matches)
      matches.push(Json::object().set("label", m.label).set("radius_px", m.radius_px).set("g_invA", m.g_invA));
    result("calibration_rings", matches);
    result("calibration_rms_rel", cal.rms_relative);
  }
  geom.pixel_size_invA = pixel_invA;
  result("pixel_size_invA", pixel_invA);
}

/// Rank 0's geometry (centre, ellipse, correction, pixel size) to the other ranks.
void send_geometry(const Split& split, const TrackRun& run) {
  if (!split.on)
    return;
  parallel::ByteWriter w;
  w.put(run.geometry.ellipse).put(run.geometry.correct_distortion).put(run.geometry.pixel_size_invA);
  parallel::broadcast(w.bytes);
}

/// The other ranks' side of send_geometry(); their profiler is built as rank 0's (before the
/// calibration sets the pixel size).
void receive_geometry(int nx, int ny, const DetectorMask& mask, TrackRun& run) {
  std::vector<char> bytes;
  parallel::broadcast(bytes);
  parallel::ByteReader r(bytes);
  PatternGeometry geom;
  geom.ellipse = r.get<Ellipse>();
  geom.correct_distortion = r.get<bool>();
  run.profiler = std::make_shared<const RadialProfiler>(nx, ny, geom, mask, 1.0);
  geom.pixel_size_invA = r.get<double>();
  run.geometry = geom;
}

}  // namespace

void find_track_geometry(const TrackInput& frames, const TrackSettings& s, const WarnFn& warn, TrackRun& run) {
  const std::string& name = frames.name();
  const size_t n_frames = frames.frame_count();
  if (n_frames < 1)
    fail(name, ": no frames; give a movie file or a folder of numbered frames");
  const int nx = frames.nx(), ny = frames.ny();
  const std::string& centre = s.centre;
  if (centre != "auto" && centre != "friedel" && centre != "ring" && centre != "beam" && centre != "given")
    fail("centre must be auto, friedel, ring, beam or X,Y; got '", centre, "'");
  // Reference image: mean of up to 50 frames spread over the movie (the beam stop does not
  // move; spread frames see more of the spots than the first ones). Split: each rank sums the
  // frames it owns, rank 0 adds the sums (sums of float pixels in double: exact, in any order).
  const Split split(s);
  const std::vector<size_t> ref_frames = spread_frames(n_frames, 50);
  std::vector<double> ref_sum(size_t(nx) * size_t(ny), 0.0);
  std::mutex ref_mutex;
  std::atomic<int> n_constant{0};
  split.step([&] {
    const std::vector<size_t> mine = split.my_items(ref_frames.size());
    parallel_for(mine.size(), s.threads, [&](size_t k) {
      const Image im = finite_frame(frames, ref_frames[mine[k]]);
      n_constant += is_constant(im);
      std::lock_guard<std::mutex> lock(ref_mutex);
      for (size_t i = 0; i < im.size(); ++i)
        ref_sum[i] += im.pixels[i];
    }, {}, "reference frames");
  });
  if (split.on) {
    n_constant = int(parallel::sum(n_constant));
    std::vector<double> total(split.root() ? ref_sum.size() : 0, 0.0);
    parallel::collect_in_order(parallel::size(), [&](int) {
      parallel::ByteWriter w;
      for (double v : ref_sum)
        w.put(v);
      return w.bytes;
    }, [&](int, const std::vector<char>& bytes) {
      parallel::ByteReader r(bytes);
      for (double& v : total)
        v += r.get<double>();
    });
    ref_sum = std::move(total);
  }
  if (n_constant == int(ref_frames.size())) {  // all sampled frames blank: check every frame
    std::atomic<bool> any{false};
    split.step([&] {
      const std::vector<size_t> mine = split.my_items(n_frames);
      parallel_for(mine.size(), s.threads, [&](size_t k) {
        if (any)
          return;
        any = any || !is_constant(finite_frame(frames, mine[k]));
      }, {}, "checking frames");
    });
    if (split.on)
      any = parallel::sum(any ? 1 : 0) > 0;
    if (!any)
      fail(name, ": every frame is constant (all ", frames.frame(0).pixels[0],
           "); nothing to detect — check the file or the export settings");
  }
  Image ref(nx, ny);
  DetectorMask& mask = run.mask;
  split.step([&] {  // rank 0: the reference image and the mask
    if (!split.root())
      return;
    for (size_t i = 0; i < ref.size(); ++i)
      ref.pixels[i] = float(ref_sum[i] / double(ref_frames.size()));
    if (s.beam_stop_auto)
      mask = dark_region_mask(ref, 0.2, 2);
    if (!s.mask_path.empty()) {
      Image m = read_image_frames(s.mask_path).at(0);
      if (m.nx != nx || m.ny != ny)
        fail(s.mask_path, ": mask is ", m.nx, "x", m.ny, " but the frames are ", nx, "x", ny);
      DetectorMask user{nx, ny, std::vector<std::uint8_t>(m.size())};
      for (size_t i = 0; i < m.size(); ++i)
        user.excluded[i] = m.pixels[i] != 0;
      add_to_mask(mask, user);
    }
    if (!mask.empty() && mask.count() > 0.9 * double(nx) * ny)
      fail(name, ": the beam-stop mask covers ", int(100.0 * double(mask.count()) / (double(nx) * ny)),
           " % of the frame; use --beam-stop none or a --mask");
  });
  if (split.on) {  // the mask to every rank
    parallel::ByteWriter w;
    w.put(mask.nx).put(mask.ny).put(std::uint64_t(mask.excluded.size()));
    w.bytes.insert(w.bytes.end(), mask.excluded.begin(), mask.excluded.end());
    parallel::broadcast(w.bytes);
    parallel::ByteReader r(w.bytes);
    mask.nx = r.get<int>();
    mask.ny = r.get<int>();
    mask.excluded.resize(size_t(r.get<std::uint64_t>()));
    for (auto& v : mask.excluded)
      v = r.get<std::uint8_t>();
  }
  run.detector = std::make_shared<const SpotDetector>(nx, ny, s.detection, mask);

  // Pass 1: raw detections on up to 200 frames spread over the movie. A spot's Friedel mate
  // is often seen only in other frames, and the spots of one family at many azimuths give
  // the distortion, so centre and shape come from all of them together. Split: each rank
  // detects its frames, rank 0 gathers the spots in frame order.
  const bool need_spots =
      centre == "auto" || centre == "friedel" || (!s.distortion_given && !s.no_distortion_correction);
  std::vector<std::vector<DetectedSpot>> pass1;
  if (need_spots) {
    const std::vector<size_t> idx = spread_frames(n_frames, 200);
    std::vector<FrameSpots> found;
    const std::vector<size_t> mine = split.my_items(idx.size());
    split.step([&] {
      found = detect_frames(mine.size(), [&](size_t k) { return finite_frame(frames, idx[mine[k]]); },
                            *run.detector, nullptr, false, s.threads, {});
    });
    if (split.on) {
      std::vector<std::vector<char>> bytes(idx.size());
      for (size_t k = 0; k < mine.size(); ++k) {
        parallel::ByteWriter w;
        w.put_values(found[k].spots);
        bytes[mine[k]] = std::move(w.bytes);
      }
      parallel::collect_in_order(int(idx.size()), [&](int k) { return std::move(bytes[size_t(k)]); },
                                 [&](int, const std::vector<char>& b) {
                                   parallel::ByteReader r(b);
                                   r.get_values(pass1.emplace_back());
                                 });
    } else {
      for (auto& r : found)
        pass1.push_back(std::move(r.spots));
    }
  }
  if (!split.root()) {  // rank 0 finds the geometry (below) and sends it here
    split.step([] {});
    receive_geometry(nx, ny, mask, run);
    return;
  }
  split.step([&] { geometry_on_root(frames, s, warn, ref, pass1, need_spots, run); });
  send_geometry(split, run);
}

void detect_and_link_tracks(const TrackInput& frames, const TrackSettings& s, const ProgressFn& progress,
                            const WarnFn& warn, TrackRun& run) {
  if (!run.detector || !run.profiler)
    fail("detect_and_link_tracks: call find_track_geometry first");
  std::vector<int>& empty_frames = run.empty_frames;
  empty_frames.clear();
  std::mutex empty_mutex;
  const Split split(s);
  const std::vector<size_t> mine = split.my_items(frames.frame_count());
  std::vector<FrameSpots> found;
  split.step([&] {  // split: each rank its own frames
    found = detect_frames(mine.size(), [&](size_t k) {
      Image im = finite_frame(frames, mine[k]);
      if (is_constant(im)) {
        std::lock_guard<std::mutex> lock(empty_mutex);
        empty_frames.push_back(int(mine[k]));
      }
      return im;
    }, *run.detector, run.profiler.get(), s.subtract_background, s.threads, progress);
  });
  if (split.on) {  // rank 0 receives every frame's spots, profile and blankness in frame order
    std::vector<std::vector<char>> bytes(frames.frame_count());
    for (size_t k = 0; k < mine.size(); ++k) {
      parallel::ByteWriter w;
      w.put_values(found[k].spots);
      w.put_values(found[k].profile);
      w.put(std::uint8_t(std::find(empty_frames.begin(), empty_frames.end(), int(mine[k])) != empty_frames.end()));
      bytes[mine[k]] = std::move(w.bytes);
    }
    found.clear();
    empty_frames.clear();
    parallel::collect_in_order(int(bytes.size()), [&](int i) { return std::move(bytes[size_t(i)]); },
                               [&](int i, const std::vector<char>& b) {
                                 parallel::ByteReader r(b);
                                 FrameSpots f;
                                 r.get_values(f.spots);
                                 r.get_values(f.profile);
                                 if (r.get<std::uint8_t>())
                                   empty_frames.push_back(i);
                                 found.push_back(std::move(f));
                               });
    if (!split.root())
      return;
  }
  run.frames = std::move(found);
  std::sort(empty_frames.begin(), empty_frames.end());
  if (!empty_frames.empty())
    warn(std::to_string(empty_frames.size()) + " constant (e.g. all-zero) frame(s), first " +
         std::to_string(empty_frames.front()) + ": no spots there; tracks bridge them only up to --max-gap");
  run.observations = spot_observations(run.frames, run.geometry, s.centre_mask_px);
  run.tracks = link_tracks(run.observations, s.tracking);
}

void finish_tracks(const TrackSettings& s, const FrameTimes& times, double single_frame_s, const WarnFn& warn,
                   TrackRun& run) {
  auto result = [&](const std::string& key, Json value) { run.results.emplace_back(key, std::move(value)); };
  auto& tracks = run.tracks;
  // Calibration scale: one |g| per track (a distinct spot), fitted to the phases' families.
  // Linking is scale-free (steps in px, |g| changes relative), so only |g| is rescaled.
  double scale_fitted = 1;
  double pixel_invA = run.geometry.pixel_size_invA;
  if (!s.phases.empty() && s.scale_range > 0 && s.calibrant.empty() && !tracks.empty()) {
    std::vector<double> g, family_g;
    for (const auto& t : tracks)
      g.push_back(t.g_invA);
    for (const auto& ph : s.phases)
      for (const auto& fam : ph.families)
        if (fam.kinematic_allowed)
          family_g.push_back(1.0 / fam.d_A);
    const ScaleFit sf = fit_calibration_scale(g, family_g, s.scale_range, s.tolerance_rel);
    result("scale_runner_up", sf.runner_up_scale);
    result("scale_matched_tracks", double(sf.n_matched));
    if (sf.n_matched < 3) {
      warn("calibration scale not fitted: only " + std::to_string(sf.n_matched) +
           " tracks match the phases at any scale within --scale-range; the pixel size is used as given");
    } else {
      scale_fitted = sf.scale;
      run.scale_was_fitted = true;
      run.scale_fit = sf;
      if (sf.at_edge)
        warn("calibration scale " + fixed(sf.scale, 4) + " is at the edge of --scale-range " +
             fixed(s.scale_range, 3) + "; check --pixel-size or widen --scale-range");
      else if (sf.runner_up_score > 0.8 * sf.score)
        warn("calibration scale " + fixed(sf.scale, 4) + " is not clearly better than " +
             fixed(sf.runner_up_scale, 4) + " (match score " + fixed(sf.score, 1) + " vs " +
             fixed(sf.runner_up_score, 1) + "); indexing may be wrong: check --pixel-size or use --scale-range 0");
      pixel_invA *= scale_fitted;
      run.geometry.pixel_size_invA = pixel_invA;
      for (auto& frame : run.observations)
        for (auto& o : frame) {
          o.gx_invA *= scale_fitted;
          o.gy_invA *= scale_fitted;
        }
      for (auto& t : tracks)
        t.g_invA *= scale_fitted;
    }
  }
  run.scale_fitted = scale_fitted;
  result("scale_fitted", scale_fitted);
  result("pixel_size_fitted_invA", pixel_invA);
  set_track_times(tracks, times.time_s, times.covariate, int(run.frames.size()), single_frame_s);
  if (!s.phases.empty())
    label_tracks(tracks, [&](double g) {
      return label_from_match(index_spacings({1.0 / g}, s.phases, s.tolerance_rel)[0]);
    });

  // Summary bins: default 8 bins over the covariate range, rounded to 1/2/5 × 10^k.
  double bin_width = s.bin_width, origin = 0;
  if (!times.covariate.empty()) {
    auto mm = std::minmax_element(times.covariate.begin(), times.covariate.end());
    if (!(bin_width > 0) && *mm.second > *mm.first) {
      double raw = (*mm.second - *mm.first) / 8, p10 = std::pow(10.0, std::floor(std::log10(raw)));
      bin_width = raw / p10 < 1.5 ? p10 : raw / p10 < 3.5 ? 2 * p10 : raw / p10 < 7.5 ? 5 * p10 : 10 * p10;
    }
    if (bin_width > 0)
      origin = std::floor(*mm.first / bin_width) * bin_width;
  }
  run.bin_width = bin_width;
  run.bin_origin = origin;
  run.bins = summarise_lifespans(tracks, bin_width, origin);
}

TrackRun track_movie(const TrackInput& frames, const TrackSettings& settings, const FrameTimes& times,
                     double single_frame_s, const ProgressFn& progress, const WarnFn& warn) {
  TrackRun run;
  find_track_geometry(frames, settings, warn, run);
  detect_and_link_tracks(frames, settings, progress, warn, run);
  finish_tracks(settings, times, single_frame_s, warn, run);
  return run;
}

}  // namespace epitem
