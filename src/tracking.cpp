#include "epitem/tracking.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <tuple>

#include "epitem/error.hpp"
#include "epitem/plot.hpp"
#include "epitem/units.hpp"

namespace epitem {

namespace {

constexpr double NaN = std::numeric_limits<double>::quiet_NaN();

std::string format(const char* fmt, double v) {
  if (!std::isfinite(v))
    return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

}  // namespace

double SpotObservation::g_invA() const { return std::hypot(gx_invA, gy_invA); }

void TrackingSpec::validate() const {
  if (!(max_step_px > 0))
    fail("tracking: max_step_px must be > 0, got ", max_step_px, " px");
  if (!(max_dg_rel > 0))
    fail("tracking: max_dg_rel must be > 0, got ", max_dg_rel);
  if (max_gap_frames < 0)
    fail("tracking: max_gap_frames must be ≥ 0, got ", max_gap_frames);
  if (min_frames < 1)
    fail("tracking: min_frames must be ≥ 1, got ", min_frames);
}

const char* label_status_name(LabelStatus s) {
  switch (s) {
    case LabelStatus::Indexed: return "indexed";
    case LabelStatus::Ambiguous: return "ambiguous";
    case LabelStatus::Unindexed: return "unindexed";
  }
  return "unindexed";
}

SpacingLabel label_spacing(double g_invA, const std::vector<ReferenceRing>& references,
                           double tolerance_rel) {
  std::vector<std::pair<double, const ReferenceRing*>> cands;
  for (const auto& ref : references) {
    double rel = (g_invA - ref.g_invA) / ref.g_invA;
    if (std::abs(rel) <= tolerance_rel)
      cands.emplace_back(rel, &ref);
  }
  SpacingLabel label;
  if (cands.empty())
    return label;
  std::sort(cands.begin(), cands.end(),
            [](const auto& a, const auto& b) { return std::abs(a.first) < std::abs(b.first); });
  label.error_rel = cands.front().first;
  bool unique = true;
  for (const auto& c : cands)
    if (c.second->phase != cands.front().second->phase ||
        std::abs(c.second->g_invA - cands.front().second->g_invA) > 1e-9 * c.second->g_invA)
      unique = false;
  label.status = unique ? LabelStatus::Indexed : LabelStatus::Ambiguous;
  for (size_t i = 0; i < cands.size(); ++i) {
    if (!unique || i == 0) {
      label.phase += (i ? "|" : "") + cands[i].second->phase;
      label.hkl += (i ? "|" : "") + cands[i].second->hkl;
    } else {
      label.hkl += "/" + cands[i].second->hkl;  // coinciding families of one phase (511/333)
    }
  }
  return label;
}

std::vector<Track> link_tracks(std::vector<std::vector<SpotObservation>>& frames,
                               const TrackingSpec& spec) {
  spec.validate();
  struct Open {
    int track;        // index into `all`
    int last_frame;
    double x, y, g;   // last observation
  };
  struct Link {
    int frame, obs;
  };
  std::vector<std::vector<Link>> all;  // observations of every track, in order
  std::vector<Open> open;
  for (int f = 0; f < int(frames.size()); ++f) {
    auto& obs = frames[size_t(f)];
    for (auto& o : obs)
      o.track_id = -1;
    // Tracks unseen for more than max_gap_frames are closed.
    open.erase(std::remove_if(open.begin(), open.end(),
                              [&](const Open& t) { return f - t.last_frame > spec.max_gap_frames + 1; }),
               open.end());
    // Candidate pairs inside both gates; cost = distance + one step per missed frame, so a
    // spot seen in the previous frame wins over one that blinked.
    std::vector<std::tuple<double, int, int>> pairs;
    for (int t = 0; t < int(open.size()); ++t)
      for (int o = 0; o < int(obs.size()); ++o) {
        const Open& tr = open[size_t(t)];
        double d = std::hypot(obs[size_t(o)].x_px - tr.x, obs[size_t(o)].y_px - tr.y);
        if (d > spec.max_step_px)
          continue;
        double g = obs[size_t(o)].g_invA();
        if (std::abs(g - tr.g) > spec.max_dg_rel * std::max(tr.g, g))
          continue;
        pairs.emplace_back(d + spec.max_step_px * (f - tr.last_frame - 1), t, o);
      }
    std::sort(pairs.begin(), pairs.end());
    std::vector<char> track_used(open.size(), 0), obs_used(obs.size(), 0);
    for (const auto& [cost, t, o] : pairs) {
      if (track_used[size_t(t)] || obs_used[size_t(o)])
        continue;
      track_used[size_t(t)] = obs_used[size_t(o)] = 1;
      Open& tr = open[size_t(t)];
      all[size_t(tr.track)].push_back({f, o});
      tr.last_frame = f;
      tr.x = obs[size_t(o)].x_px;
      tr.y = obs[size_t(o)].y_px;
      tr.g = obs[size_t(o)].g_invA();
    }
    for (int o = 0; o < int(obs.size()); ++o)
      if (!obs_used[size_t(o)]) {
        all.push_back({{f, o}});
        open.push_back({int(all.size()) - 1, f, obs[size_t(o)].x_px, obs[size_t(o)].y_px,
                        obs[size_t(o)].g_invA()});
      }
  }
  std::vector<Track> tracks;
  const int last = int(frames.size()) - 1;
  for (const auto& links : all) {
    if (int(links.size()) < spec.min_frames)
      continue;
    Track t;
    t.id = int(tracks.size());
    t.first_frame = links.front().frame;
    t.last_frame = links.back().frame;
    double sx = 0, sy = 0, sg = 0, cx = 0, cy = 0;
    for (const auto& l : links) {
      SpotObservation& o = frames[size_t(l.frame)][size_t(l.obs)];
      o.track_id = t.id;
      t.frames.push_back(l.frame);
      t.intensity.push_back(o.intensity);
      t.max_snr = std::max(t.max_snr, o.snr);
      sx += o.x_px;
      sy += o.y_px;
      double g = o.g_invA();
      sg += g;
      if (g > 0) {
        cx += o.gx_invA / g;
        cy += o.gy_invA / g;
      }
    }
    const double n = double(links.size());
    t.x_px = sx / n;
    t.y_px = sy / n;
    t.g_invA = sg / n;
    t.azimuth_deg = std::atan2(cy, cx) / units::deg_to_rad;
    t.censored = t.first_frame == 0 || t.last_frame == last;
    t.covariate_mean = t.covariate_first = NaN;
    tracks.push_back(std::move(t));
  }
  return tracks;
}

void set_track_times(std::vector<Track>& tracks, const std::vector<double>& time_s,
                     const std::vector<double>& covariate, int n_frames, double frame_interval_s) {
  if (int(time_s.size()) != n_frames)
    fail("track times: ", time_s.size(), " frame times for ", n_frames, " frames");
  if (!covariate.empty() && int(covariate.size()) != n_frames)
    fail("track times: ", covariate.size(), " covariate values for ", n_frames, " frames");
  if (!(frame_interval_s >= 0))
    fail("track times: frame interval must be ≥ 0 s (0 = unknown), got ", frame_interval_s);
  std::vector<double> duration(size_t(n_frames), 0.0);
  for (int i = 0; i + 1 < n_frames; ++i)
    duration[size_t(i)] = time_s[size_t(i) + 1] - time_s[size_t(i)];
  if (n_frames >= 2)
    duration[size_t(n_frames) - 1] = duration[size_t(n_frames) - 2];
  else if (n_frames == 1)
    duration[0] = frame_interval_s;
  for (Track& t : tracks) {
    if (t.first_frame < 0 || t.last_frame >= n_frames)
      fail("track times: track ", t.id, " spans frames ", t.first_frame, "..", t.last_frame,
           " outside the movie's ", n_frames, " frames");
    double life = 0, cov = 0;
    for (int f = t.first_frame; f <= t.last_frame; ++f) {
      life += duration[size_t(f)];
      if (!covariate.empty())
        cov += covariate[size_t(f)];
    }
    t.lifespan_s = life;
    t.covariate_mean = covariate.empty() ? NaN : cov / t.lifespan_frames();
    t.covariate_first = covariate.empty() ? NaN : covariate[size_t(t.first_frame)];
  }
}

void label_tracks(std::vector<Track>& tracks, const SpacingLabeler& labeler) {
  for (Track& t : tracks)
    t.label = labeler ? labeler(t.g_invA) : SpacingLabel{};
}

std::vector<LifespanBin> summarise_lifespans(const std::vector<Track>& tracks, double bin_width,
                                             double covariate_origin) {
  struct Acc {
    int n = 0, censored = 0;
    double s = 0, s2 = 0, frames = 0;
  };
  std::map<std::tuple<std::string, std::string, long>, Acc> acc;
  for (const Track& t : tracks) {
    std::string phase = t.label.status == LabelStatus::Indexed ? t.label.phase
                                                               : label_status_name(t.label.status);
    std::string hkl = t.label.status == LabelStatus::Indexed ? t.label.hkl : "";
    long bin = 0;
    if (bin_width > 0 && std::isfinite(t.covariate_mean))
      bin = long(std::floor((t.covariate_mean - covariate_origin) / bin_width));
    Acc& a = acc[{phase, hkl, bin}];
    ++a.n;
    a.censored += t.censored;
    a.s += t.lifespan_s;
    a.s2 += t.lifespan_s * t.lifespan_s;
    a.frames += t.lifespan_frames();
  }
  bool has_cov = std::any_of(tracks.begin(), tracks.end(),
                             [](const Track& t) { return std::isfinite(t.covariate_mean); });
  std::vector<LifespanBin> out;
  for (const auto& [key, a] : acc) {
    LifespanBin b;
    b.phase = std::get<0>(key);
    b.hkl = std::get<1>(key);
    if (bin_width > 0 && has_cov) {
      b.covariate_lo = covariate_origin + double(std::get<2>(key)) * bin_width;
      b.covariate_hi = b.covariate_lo + bin_width;
    } else {
      b.covariate_lo = b.covariate_hi = NaN;
    }
    b.n_tracks = a.n;
    b.n_censored = a.censored;
    b.mean_lifespan_s = a.s / a.n;
    b.std_lifespan_s = a.n > 1 ? std::sqrt(std::max(0.0, (a.s2 - a.s * a.s / a.n) / (a.n - 1))) : 0.0;
    b.mean_lifespan_frames = a.frames / a.n;
    out.push_back(b);
  }
  return out;
}

Canvas lifespan_scatter(const std::vector<Track>& tracks, const std::vector<double>& time_s,
                        const std::string& x_label, int width, int height) {
  Canvas c(width, height, colors::white);
  const int left = 70, right = 150, top = 40, bottom = 50;
  const int pw = width - left - right, ph = height - top - bottom;
  auto x_of = [&](const Track& t) {
    if (std::isfinite(t.covariate_mean))
      return t.covariate_mean;
    return t.first_frame < int(time_s.size()) ? time_s[size_t(t.first_frame)] : double(t.first_frame);
  };
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1, life_max = 0;
  bool first = true;
  for (const Track& t : tracks) {
    double x = x_of(t), y = 10 * t.g_invA;  // 1/nm reads better on the axis
    if (first) {
      x0 = x1 = x;
      y0 = y1 = y;
      first = false;
    }
    x0 = std::min(x0, x);
    x1 = std::max(x1, x);
    y0 = std::min(y0, y);
    y1 = std::max(y1, y);
    life_max = std::max(life_max, t.lifespan_s);
  }
  if (x1 - x0 < 1e-12) {
    x0 -= 1;
    x1 += 1;
  }
  if (y1 - y0 < 1e-12) {
    y0 -= 1;
    y1 += 1;
  }
  const double ypad = 0.05 * (y1 - y0), xpad = 0.03 * (x1 - x0);
  y0 -= ypad;
  y1 += ypad;
  x0 -= xpad;
  x1 += xpad;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return top + ph - (y - y0) / (y1 - y0) * ph; };
  c.draw_line(left, top + ph, left + pw, top + ph, colors::black);
  c.draw_line(left, top, left, top + ph, colors::black);
  char buf[32];
  for (double t : nice_ticks(x0, x1, 6)) {
    c.draw_line(px(t), top + ph, px(t), top + ph + 5, colors::black);
    std::snprintf(buf, sizeof buf, "%g", t);
    c.draw_text(int(px(t)) - 3 * int(std::string(buf).size()), top + ph + 10, buf, colors::black);
  }
  for (double t : nice_ticks(y0, y1, 6)) {
    c.draw_line(left - 5, py(t), left, py(t), colors::black);
    std::snprintf(buf, sizeof buf, "%g", t);
    c.draw_text(left - 10 - 6 * int(std::string(buf).size()), int(py(t)) - 4, buf, colors::black);
  }
  c.draw_text(left + pw / 2 - 3 * int(x_label.size()), height - 20, x_label, colors::black);
  c.draw_text(8, top - 25, "|g| (1/nm)", colors::black);
  c.draw_text(left, 8, "spot lifespans: colour and size = lifespan", colors::black, 1);
  // Longest-lived last, so they stay visible on top.
  std::vector<const Track*> order;
  for (const Track& t : tracks)
    order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const Track* a, const Track* b) { return a->lifespan_s < b->lifespan_s; });
  for (const Track* t : order) {
    double f = life_max > 0 ? t->lifespan_s / life_max : 1.0;
    c.fill_circle(px(x_of(*t)), py(10 * t->g_invA), 2 + 7 * std::sqrt(f), colormap(f), 0.8);
  }
  // Reference spacings of the indexed phases as labelled ticks on the right.
  std::map<std::string, std::pair<double, int>> refs;  // label → (Σ|g|, n)
  for (const Track& t : tracks)
    if (t.label.status == LabelStatus::Indexed) {
      auto& r = refs[t.label.phase + " " + t.label.hkl];
      r.first += 10 * t.g_invA;
      ++r.second;
    }
  std::vector<std::pair<int, std::string>> ticks;
  for (const auto& [label, r] : refs)
    ticks.emplace_back(int(py(r.first / r.second)), label);
  std::sort(ticks.begin(), ticks.end());
  int last_y = -100;
  for (const auto& [yy, label] : ticks) {
    if (yy - last_y < 10)
      continue;  // labels closer than a text line would overlap
    last_y = yy;
    c.draw_line(left + pw, yy, left + pw + 6, yy, colors::gray);
    c.draw_text(left + pw + 8, yy - 4, label, colors::black);
  }
  // Colour bar of the lifespan.
  const int bx = left + pw + 8, by = height - bottom - 12;
  for (int i = 0; i < 100; ++i)
    c.fill_rect(bx + i, by, 1, 8, colormap(i / 99.0));
  std::snprintf(buf, sizeof buf, "0 - %.3g s", life_max);
  c.draw_text(bx, by + 12, buf, colors::black);
  return c;
}

std::string tracks_csv(const std::vector<Track>& tracks) {
  std::string s =
      "track_id,first_frame,last_frame,n_frames,n_detected,lifespan_s,g_inv_A,d_A,azimuth_deg,"
      "x_px,y_px,mean_intensity,max_snr,phase,hkl,index_status,index_error_rel,covariate_mean,"
      "covariate_first,censored\n";
  for (const Track& t : tracks) {
    double mi = 0;
    for (double v : t.intensity)
      mi += v;
    mi /= std::max<size_t>(1, t.intensity.size());
    s += std::to_string(t.id) + "," + std::to_string(t.first_frame) + "," +
         std::to_string(t.last_frame) + "," + std::to_string(t.lifespan_frames()) + "," +
         std::to_string(t.frames.size()) + "," + format("%.6g", t.lifespan_s) + "," +
         format("%.6f", t.g_invA) + "," + format("%.5f", t.d_A()) + "," +
         format("%.2f", t.azimuth_deg) + "," + format("%.2f", t.x_px) + "," +
         format("%.2f", t.y_px) + "," + format("%.6g", mi) + "," + format("%.2f", t.max_snr) +
         "," + t.label.phase + "," + t.label.hkl + "," + label_status_name(t.label.status) + "," +
         (t.label.status == LabelStatus::Unindexed ? "" : format("%.5f", t.label.error_rel)) + "," +
         format("%.6g", t.covariate_mean) + "," + format("%.6g", t.covariate_first) + "," +
         (t.censored ? "1" : "0") + "\n";
  }
  return s;
}

std::string detections_csv(const std::vector<std::vector<SpotObservation>>& frames,
                           const std::vector<double>& time_s) {
  std::string s = "frame,time_s,x_px,y_px,gx_inv_A,gy_inv_A,g_inv_A,sigma_px,snr,intensity,track_id\n";
  for (size_t f = 0; f < frames.size(); ++f)
    for (const auto& o : frames[f])
      s += std::to_string(o.frame) + "," + format("%.6g", f < time_s.size() ? time_s[f] : NaN) +
           "," + format("%.3f", o.x_px) + "," + format("%.3f", o.y_px) + "," +
           format("%.6f", o.gx_invA) + "," + format("%.6f", o.gy_invA) + "," +
           format("%.6f", o.g_invA()) + "," + format("%.3f", o.sigma_px) + "," +
           format("%.2f", o.snr) + "," + format("%.6g", o.intensity) + "," +
           std::to_string(o.track_id) + "\n";
  return s;
}

std::string lifespan_summary_csv(const std::vector<LifespanBin>& bins) {
  std::string s = "phase,hkl,covariate_lo,covariate_hi,n_tracks,n_censored,mean_lifespan_s,"
                  "std_lifespan_s,mean_lifespan_frames\n";
  for (const auto& b : bins)
    s += b.phase + "," + b.hkl + "," + format("%.6g", b.covariate_lo) + "," +
         format("%.6g", b.covariate_hi) + "," + std::to_string(b.n_tracks) + "," +
         std::to_string(b.n_censored) + "," + format("%.6g", b.mean_lifespan_s) + "," +
         format("%.6g", b.std_lifespan_s) + "," + format("%.4g", b.mean_lifespan_frames) + "\n";
  return s;
}

}  // namespace epitem
