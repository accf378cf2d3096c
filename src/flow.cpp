#include "epitem/flow.hpp"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/video/tracking.hpp>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <limits>
#include <mutex>

#include "epitem/error.hpp"
#include "epitem/fft.hpp"

namespace epitem {

namespace {

cv::Mat to_mat(const Image& im) {
  // A view on the pixels; callers copy/convert before modifying.
  return cv::Mat(im.ny, im.nx, CV_32F, const_cast<float*>(im.pixels.data()));
}

double percentile(std::vector<float> v, double p) {
  size_t k = size_t(std::clamp(p / 100.0, 0.0, 1.0) * double(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + long(k), v.end());
  return v[k];
}

cv::Mat prepare(const Image& im, const FlowSpec& spec, const IntensityMap& map) {
  cv::Mat out;
  double range = map.high > map.low ? map.high - map.low : 1.0;
  to_mat(im).convertTo(out, CV_32F, 255.0 / range, -255.0 * map.low / range);
  if (spec.smooth_px > 0)
    cv::GaussianBlur(out, out, cv::Size(0, 0), spec.smooth_px, spec.smooth_px, cv::BORDER_REFLECT);
  return out;
}

}  // namespace

float FlowField::magnitude(size_t i) const { return std::sqrt(vx_px[i] * vx_px[i] + vy_px[i] * vy_px[i]); }

namespace {

// Spectrum of the Hann-windowed, mean-subtracted image; B·conj(A) of two of them is
// |A|² e^{-2πi k·d} for b(x) = a(x − d).
cv::Mat windowed_spectrum(const cv::Mat& in) {
  cv::Mat window, a, fa;
  cv::createHanningWindow(window, in.size(), CV_32F);
  in.convertTo(a, CV_32F);
  a -= cv::mean(a)[0];
  a = a.mul(window);
  cv::dft(a, fa, cv::DFT_COMPLEX_OUTPUT);
  return fa;
}

cv::Mat cross_spectrum(const cv::Mat& fa, const cv::Mat& fb) {
  cv::Mat cross;
  cv::mulSpectrums(fb, fa, cross, 0, /*conjB=*/true);
  return cross;
}

// Peak of the half-whitened correlation (|C|^½: sharper than plain correlation, less noise-
// dominated than full phase correlation on lattice images), sub-pixel by a 3-point parabola
// along x and y through the peak (periodic neighbours).
Shift correlation_peak(const cv::Mat& cross) {
  cv::Mat weighted(cross.size(), CV_32FC2), corr;
  for (int y = 0; y < cross.rows; ++y) {
    const auto* c = cross.ptr<cv::Vec2f>(y);
    auto* w = weighted.ptr<cv::Vec2f>(y);
    for (int x = 0; x < cross.cols; ++x)
      w[x] = c[x] / (std::sqrt(std::sqrt(c[x][0] * c[x][0] + c[x][1] * c[x][1])) + 1e-30f);
  }
  cv::idft(weighted, corr, cv::DFT_REAL_OUTPUT);
  cv::Point peak;
  cv::minMaxLoc(corr, nullptr, nullptr, nullptr, &peak);
  const int nx = cross.cols, ny = cross.rows;
  auto at = [&](int x, int y) { return double(corr.at<float>((y + ny) % ny, (x + nx) % nx)); };
  auto vertex = [](double m, double c0, double p) {
    double denom = m - 2 * c0 + p;
    return denom < 0 ? std::clamp(0.5 * (m - p) / denom, -0.5, 0.5) : 0.0;
  };
  const double c0 = at(peak.x, peak.y);
  double fx = vertex(at(peak.x - 1, peak.y), c0, at(peak.x + 1, peak.y));
  double fy = vertex(at(peak.x, peak.y - 1), c0, at(peak.x, peak.y + 1));
  return {(peak.x >= nx / 2 ? peak.x - nx : peak.x) + fx, (peak.y >= ny / 2 ? peak.y - ny : peak.y) + fy};
}

// Registration binning: frames binned to ≤ 1024 px for speed (the flow refines the drift).
int registration_bin(const Image& im) { return std::max(1, (std::max(im.nx, im.ny) + 1023) / 1024); }

// One frame, ready for the flow: the mapped + smoothed float image and the registration spectrum
// of the binned raw frame. Each frame is prepared once and used by both of its pairs.
struct PreparedFrame {
  cv::Mat flow_input, registration_spectrum;
  int nx = 0, ny = 0, bin = 1;
};

PreparedFrame prepare_frame(const Image& im, const FlowSpec& spec, const IntensityMap& map) {
  PreparedFrame f;
  f.nx = im.nx;
  f.ny = im.ny;
  f.flow_input = prepare(im, spec, map);
  if (spec.remove_drift) {
    f.bin = registration_bin(im);
    cv::Mat a = to_mat(im);
    if (f.bin > 1) {
      cv::Mat binned;
      cv::resize(a, binned, cv::Size(im.nx / f.bin, im.ny / f.bin), 0, 0, cv::INTER_AREA);
      a = binned;
    }
    f.registration_spectrum = windowed_spectrum(a);
  }
  return f;
}

}  // namespace

Shift phase_correlation_shift(const Image& reference, const Image& moving) {
  if (reference.nx != moving.nx || reference.ny != moving.ny)
    fail("phase correlation: frames differ in size (", reference.nx, "x", reference.ny, " vs ", moving.nx, "x",
         moving.ny, ")");
  return correlation_peak(cross_spectrum(windowed_spectrum(to_mat(reference)), windowed_spectrum(to_mat(moving))));
}

IntensityMap movie_intensity_map(const std::vector<Image>& frames) {
  // Percentiles from a strided sample of every frame: exact enough for a linear display map.
  std::vector<float> sample;
  for (const Image& f : frames) {
    size_t stride = std::max<size_t>(1, f.size() / 20000);
    for (size_t i = 0; i < f.size(); i += stride)
      if (std::isfinite(f.pixels[i]))
        sample.push_back(f.pixels[i]);
  }
  if (sample.empty())
    fail("movie has no finite pixels");
  IntensityMap m{percentile(sample, 0.5), percentile(sample, 99.5)};
  if (!(m.high > m.low)) {
    m.low = percentile(sample, 0);
    m.high = percentile(sample, 100);
  }
  if (!(m.high > m.low))
    m.high = m.low + 1;
  return m;
}

namespace {

FlowField flow_of_prepared(const PreparedFrame& pa, const PreparedFrame& pb, const FlowSpec& spec) {
  FlowField field;
  field.nx = pa.nx;
  field.ny = pa.ny;
  const size_t n = size_t(field.nx) * size_t(field.ny);
  field.vx_px.resize(n);
  field.vy_px.resize(n);
  const cv::Mat& a = pa.flow_input;
  const cv::Mat& b = pb.flow_input;
  // Drift in two steps. (1) Whole-frame registration (phase correlation), applied to the
  // frame as a whole-pixel shift only: a sub-pixel warp interpolates (OpenCV quantises to
  // 1/32 px and blurs), which biased the result by ~0.05 px in tests; the fractional part is
  // subtracted from the flow instead (flow of a translation = that translation).
  // (2) Registration is pulled by whatever moves (a bright particle can dominate the cross-
  // spectrum), so the drift is refined to the mode of the flow vectors (median, then mean shift
  // in a 0.3 px window) — the motion of the static majority — when at least half of the
  // vectors lie within 0.3 px of that mode. Otherwise the flow is noise-dominated (too little
  // texture or too little smoothing) and the registration is kept.
  cv::Mat aligned = b;
  Shift whole, registered;
  if (spec.remove_drift) {
    registered = correlation_peak(cross_spectrum(pa.registration_spectrum, pb.registration_spectrum));
    registered = {registered.dx_px * pa.bin, registered.dy_px * pa.bin};
    whole = {std::round(registered.dx_px), std::round(registered.dy_px)};
    if (whole.dx_px != 0 || whole.dy_px != 0) {
      // aligned(x) = b(x + shift) (WARP_INVERSE_MAP: dst(x) = src(M·x)); integer: no interpolation.
      cv::Mat m = (cv::Mat_<double>(2, 3) << 1, 0, whole.dx_px, 0, 1, whole.dy_px);
      cv::Mat shifted;
      cv::warpAffine(b, shifted, m, b.size(), cv::INTER_NEAREST | cv::WARP_INVERSE_MAP, cv::BORDER_REPLICATE);
      aligned = shifted;
    }
  }
  cv::Mat flow;
  cv::calcOpticalFlowFarneback(a, aligned, flow, spec.pyr_scale, spec.levels, spec.window_px, spec.iterations,
                               spec.poly_n, spec.poly_sigma, 0);
  field.margin_px = int(std::ceil(std::max(std::abs(whole.dx_px), std::abs(whole.dy_px)))) + spec.window_px / 2 + 1;
  const int margin = field.margin_px;
  std::vector<float> inner_x, inner_y;
  for (int y = 0; y < field.ny; ++y) {
    const auto* row = flow.ptr<cv::Point2f>(y);
    for (int x = 0; x < field.nx; ++x) {
      field.vx_px[size_t(y) * size_t(field.nx) + size_t(x)] = row[x].x;
      field.vy_px[size_t(y) * size_t(field.nx) + size_t(x)] = row[x].y;
      // Every 4th row and column is plenty for the mode and keeps it cheap on 2048² frames.
      if (y >= margin && y < field.ny - margin && x >= margin && x < field.nx - margin && y % 4 == 0 && x % 4 == 0) {
        inner_x.push_back(row[x].x);
        inner_y.push_back(row[x].y);
      }
    }
  }
  if (!spec.remove_drift || inner_x.empty())
    return field;
  float mx = float(percentile(inner_x, 50)), my = float(percentile(inner_y, 50));
  size_t count = 0;
  for (int iter = 0; iter < 10; ++iter) {
    double sx = 0, sy = 0;
    count = 0;
    for (size_t i = 0; i < inner_x.size(); ++i) {
      const float dx = inner_x[i] - mx, dy = inner_y[i] - my;
      if (dx * dx + dy * dy < 0.3f * 0.3f) {
        sx += inner_x[i];
        sy += inner_y[i];
        ++count;
      }
    }
    if (count == 0)
      break;
    mx = float(sx / double(count));
    my = float(sy / double(count));
  }
  field.static_fraction = double(count) / double(inner_x.size());
  field.drift_from_flow = field.static_fraction >= 0.5;
  if (!field.drift_from_flow) {
    mx = float(registered.dx_px - whole.dx_px);
    my = float(registered.dy_px - whole.dy_px);
  }
  for (size_t i = 0; i < n; ++i) {
    field.vx_px[i] -= mx;
    field.vy_px[i] -= my;
  }
  field.drift = {whole.dx_px + mx, whole.dy_px + my};
  return field;
}

// Pairs are independent: one contiguous run of pairs per thread (Farnebäck itself is serial in
// OpenCV 4.6, measured), OpenCV's own threads sharing what is left.
int pair_threads(size_t n_pairs) {
  const int threads = int(std::min<size_t>(size_t(std::max(1, default_thread_count())), n_pairs));
  cv::setNumThreads(std::max(1, default_thread_count() / threads));
  return threads;
}

void check_flow_spec(const FlowSpec& spec) {
  if (spec.window_px < 3 || spec.levels < 0 || spec.iterations < 1 || !(spec.pyr_scale > 0 && spec.pyr_scale < 1))
    fail("optical flow: invalid Farnebäck parameters (window ≥ 3 px, levels ≥ 0, iterations ≥ 1, 0 < pyr_scale < 1)");
}

}  // namespace

FlowField dense_flow(const Image& prev, const Image& next, const FlowSpec& spec, const IntensityMap& map) {
  if (prev.nx != next.nx || prev.ny != next.ny)
    fail("optical flow: frames differ in size (", prev.nx, "x", prev.ny, " vs ", next.nx, "x", next.ny, ")");
  check_flow_spec(spec);
  return flow_of_prepared(prepare_frame(prev, spec, map), prepare_frame(next, spec, map), spec);
}

FlowStats flow_stats(const FlowField& field, const std::vector<std::uint8_t>& mask) {
  if (!mask.empty() && mask.size() != field.vx_px.size())
    fail("flow mask has ", mask.size(), " pixels but the frames have ", field.vx_px.size());
  const int m = field.margin_px;
  std::vector<float> magnitudes;
  magnitudes.reserve(size_t(std::max(0, field.nx - 2 * m)) * size_t(std::max(0, field.ny - 2 * m)));
  for (int y = m; y < field.ny - m; ++y)
    for (int x = m; x < field.nx - m; ++x) {
      const size_t i = size_t(y) * size_t(field.nx) + size_t(x);
      if (mask.empty() || mask[i])
        magnitudes.push_back(field.magnitude(i));
    }
  FlowStats s;
  s.pixels = magnitudes.size();
  if (s.pixels == 0)
    fail("flow statistics: no pixel inside the mask/ROI and the ", m,
         " px border; enlarge the ROI or use larger frames");
  double sum = 0;
  float largest = 0;
  for (float v : magnitudes) {
    sum += v;
    largest = std::max(largest, v);
  }
  s.mean = sum / double(s.pixels);
  if (!(largest > 0))
    return s;
  // Exact order statistics without sorting millions of magnitudes: a histogram finds the bin
  // that holds each rank, and only that bin's values are selected.
  constexpr int BINS = 4096;
  const float to_bin = float(BINS) / largest;
  auto bin_of = [&](float v) { return std::min(BINS - 1, int(v * to_bin)); };
  std::vector<size_t> histogram(BINS, 0);
  for (float v : magnitudes)
    ++histogram[size_t(bin_of(v))];
  const double percent[3] = {50, 90, 99};
  size_t rank[3];
  int bin[3];
  size_t below[3];  // values in bins below bin[k]
  for (int k = 0; k < 3; ++k) {
    rank[k] = size_t(percent[k] / 100.0 * double(s.pixels - 1));
    size_t cumulative = 0;
    int b = 0;
    while (cumulative + histogram[size_t(b)] <= rank[k])
      cumulative += histogram[size_t(b++)];
    bin[k] = b;
    below[k] = cumulative;
  }
  // Ranks that fall in the same bin share the first such rank's list.
  auto list_of = [&](int k) {
    int j = 0;
    while (bin[j] != bin[k])
      ++j;
    return j;
  };
  std::vector<float> in_bin[3];
  for (float v : magnitudes) {
    const int b = bin_of(v);
    for (int k = 0; k < 3; ++k)
      if (b == bin[k]) {
        in_bin[list_of(k)].push_back(v);
        break;
      }
  }
  double value[3];
  for (int k = 0; k < 3; ++k) {
    std::vector<float>& v = in_bin[list_of(k)];
    auto nth = v.begin() + long(rank[k] - below[k]);
    std::nth_element(v.begin(), nth, v.end());
    value[k] = *nth;
  }
  s.median = value[0];
  s.p90 = value[1];
  s.p99 = value[2];
  return s;
}

std::vector<FlowPair> analyze_flow(const std::vector<Image>& frames, const FrameTimes& times,
                                   const FlowSpec& spec, const std::vector<std::uint8_t>& mask,
                                   std::vector<Image>* speed_maps, const ProgressFn& progress) {
  require_movie(frames, 2, "optical flow");
  const double px_A = frames[0].pixel_size_A;
  if (!(px_A > 0))
    fail("optical flow: the movie has no pixel size; give --pixel-size (e.g. 0.25A) to get speeds in Å/s");
  if (times.time_s.size() != frames.size())
    fail("optical flow: ", times.time_s.size(), " frame times for ", frames.size(), " frames");
  if (!times.covariate.empty() && times.covariate.size() != frames.size())
    fail("optical flow: ", times.covariate.size(), " covariate values for ", frames.size(), " frames");
  if (std::abs(frames[0].pixel_y_A() - px_A) > 1e-6 * px_A)
    fail("optical flow: non-square pixels (", px_A, " x ", frames[0].pixel_y_A(),
         " Å) are not supported; resample the movie to square pixels first");
  for (const Image& f : frames)
    require_finite(f, "optical flow input frame");
  check_flow_spec(spec);
  for (size_t i = 0; i + 1 < frames.size(); ++i)
    if (!(times.time_s[i + 1] - times.time_s[i] > 0))
      fail("optical flow: frame times must increase (frame ", i + 2, ")");
  const IntensityMap map = movie_intensity_map(frames);
  const size_t n_pairs = frames.size() - 1;
  // Only the statistics (and speed maps on request) are kept, not the 8-byte/px fields.
  struct PairResult {
    Shift drift;
    double static_fraction = 0;
    FlowStats stats_px;
    Image speed_px;
  };
  std::vector<PairResult> results(n_pairs);
  const int threads = pair_threads(n_pairs);
  std::mutex progress_mutex;
  size_t done = 0;
  auto run = [&](size_t first, size_t last) {
    PreparedFrame prev = prepare_frame(frames[first], spec, map);
    for (size_t i = first; i < last; ++i) {
      PreparedFrame next = prepare_frame(frames[i + 1], spec, map);
      FlowField field = flow_of_prepared(prev, next, spec);
      PairResult& r = results[i];
      r.drift = field.drift;
      r.static_fraction = field.static_fraction;
      r.stats_px = flow_stats(field, mask);
      if (speed_maps) {
        r.speed_px = Image(field.nx, field.ny);
        for (size_t k = 0; k < r.speed_px.size(); ++k)
          r.speed_px.pixels[k] = field.magnitude(k);
      }
      prev = std::move(next);
      if (progress) {
        std::lock_guard<std::mutex> lock(progress_mutex);
        progress(++done, n_pairs, "optical flow");
      }
    }
  };
  parallel_for(n_pairs, threads, run);  // contiguous runs: each frame prepared once for its two pairs

  std::vector<FlowPair> pairs;
  double drift_x = 0, drift_y = 0;
  if (speed_maps)
    speed_maps->clear();
  for (size_t i = 0; i < n_pairs; ++i) {
    PairResult& r = results[i];
    FlowPair p;
    p.frame = int(i);
    p.dt_s = times.time_s[i + 1] - times.time_s[i];
    p.time_s = 0.5 * (times.time_s[i] + times.time_s[i + 1]);
    p.covariate = times.covariate.empty() ? std::numeric_limits<double>::quiet_NaN()
                                          : 0.5 * (times.covariate[i] + times.covariate[i + 1]);
    drift_x += r.drift.dx_px * px_A;
    drift_y += r.drift.dy_px * px_A;
    p.drift_x_A = drift_x;
    p.drift_y_A = drift_y;
    p.static_fraction = r.static_fraction;
    const double to_A_per_s = px_A / p.dt_s;
    const FlowStats& s = r.stats_px;
    p.speed_A_per_s = {s.mean * to_A_per_s, s.median * to_A_per_s, s.p90 * to_A_per_s, s.p99 * to_A_per_s,
                       s.pixels};
    if (speed_maps) {
      Image map_A = std::move(r.speed_px);
      map_A.pixel_size_A = px_A;
      for (float& v : map_A.pixels)
        v = float(v * to_A_per_s);
      speed_maps->push_back(std::move(map_A));
    }
    pairs.push_back(p);
  }
  return pairs;
}

double farneback_floor_s(const std::vector<Image>& frames, const FlowSpec& spec) {
  require_movie(frames, 2, "optical flow benchmark");
  check_flow_spec(spec);
  const IntensityMap map = movie_intensity_map(frames);
  std::vector<cv::Mat> mapped;
  for (const Image& f : frames)
    mapped.push_back(prepare(f, spec, map));
  const size_t n_pairs = frames.size() - 1;
  const auto start = std::chrono::steady_clock::now();
  parallel_for(n_pairs, pair_threads(n_pairs), [&](size_t first, size_t last) {
    cv::Mat flow;
    for (size_t i = first; i < last; ++i)
      cv::calcOpticalFlowFarneback(mapped[i], mapped[i + 1], flow, spec.pyr_scale, spec.levels, spec.window_px,
                                   spec.iterations, spec.poly_n, spec.poly_sigma, 0);
  });
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::vector<CovariateBin> bin_by_covariate(const std::vector<FlowPair>& pairs, double bin_width) {
  if (!(bin_width > 0))
    fail("covariate bin width must be > 0, got ", bin_width);
  std::vector<CovariateBin> bins;
  std::vector<std::pair<long long, double>> keyed;
  for (const FlowPair& p : pairs)
    if (std::isfinite(p.covariate))
      keyed.emplace_back((long long)std::floor(p.covariate / bin_width), p.speed_A_per_s.mean);
  std::sort(keyed.begin(), keyed.end());
  for (size_t i = 0; i < keyed.size();) {
    size_t j = i;
    double sum = 0, sum2 = 0;
    for (; j < keyed.size() && keyed[j].first == keyed[i].first; ++j) {
      sum += keyed[j].second;
      sum2 += keyed[j].second * keyed[j].second;
    }
    CovariateBin b;
    b.low = double(keyed[i].first) * bin_width;
    b.high = b.low + bin_width;
    b.pairs = int(j - i);
    b.mean_speed_A_per_s = sum / b.pairs;
    b.std_speed_A_per_s = b.pairs > 1 ? std::sqrt(std::max(0.0, (sum2 - sum * sum / b.pairs) / (b.pairs - 1))) : 0;
    bins.push_back(b);
    i = j;
  }
  return bins;
}

}  // namespace epitem
