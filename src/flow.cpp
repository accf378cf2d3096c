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
#include "epitem/parallel.hpp"
#include "epitem/units.hpp"

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

cv::Mat prepare_mat(const cv::Mat& im, const FlowSpec& spec, const IntensityMap& map) {
  cv::Mat out;
  double range = map.high > map.low ? map.high - map.low : 1.0;
  im.convertTo(out, CV_32F, 255.0 / range, -255.0 * map.low / range);
  if (spec.smooth_px > 0)
    cv::GaussianBlur(out, out, cv::Size(0, 0), spec.smooth_px, spec.smooth_px, cv::BORDER_REFLECT);
  return out;
}

cv::Mat prepare(const Image& im, const FlowSpec& spec, const IntensityMap& map) {
  return prepare_mat(to_mat(im), spec, map);
}

}  // namespace

double distance_px(const Shift& a, const Shift& b) { return std::hypot(a.dx_px - b.dx_px, a.dy_px - b.dy_px); }

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

// A local maximum of the correlation: integer position + sub-pixel vertex, and its height.
struct Peak {
  Shift shift;
  double height = 0;
};

// Local maxima of the half-whitened correlation (|C|^½: sharper than plain correlation, less
// noise-dominated than full phase correlation on lattice images) at least half the highest,
// highest first, each sub-pixel by a 3-point parabola along x and y (periodic neighbours).
std::vector<Peak> correlation_peaks(const cv::Mat& cross) {
  cv::Mat weighted(cross.size(), CV_32FC2), corr;
  for (int y = 0; y < cross.rows; ++y) {
    const auto* c = cross.ptr<cv::Vec2f>(y);
    auto* w = weighted.ptr<cv::Vec2f>(y);
    const double fy = double(y <= cross.rows / 2 ? y : y - cross.rows) / cross.rows;
    for (int x = 0; x < cross.cols; ++x) {
      // Shot noise is white, lattice fringes are not: a σ = 1 px Gaussian low-pass keeps an
      // 8-px fringe at 74 % and cuts the noise near Nyquist a hundredfold.
      const double fx = double(x <= cross.cols / 2 ? x : x - cross.cols) / cross.cols;
      const float low_pass = float(std::exp(-2 * PI * PI * (fx * fx + fy * fy)));
      w[x] = c[x] * low_pass / (std::sqrt(std::sqrt(c[x][0] * c[x][0] + c[x][1] * c[x][1])) + 1e-30f);
    }
  }
  cv::idft(weighted, corr, cv::DFT_REAL_OUTPUT);
  double highest = 0;
  cv::minMaxLoc(corr, nullptr, &highest);
  const int nx = cross.cols, ny = cross.rows;
  auto at = [&](int x, int y) { return double(corr.at<float>((y + ny) % ny, (x + nx) % nx)); };
  auto vertex = [](double m, double c0, double p) {
    double denom = m - 2 * c0 + p;
    return denom < 0 ? std::clamp(0.5 * (m - p) / denom, -0.5, 0.5) : 0.0;
  };
  std::vector<Peak> peaks;
  for (int y = 0; y < ny; ++y)
    for (int x = 0; x < nx; ++x) {
      const double c0 = at(x, y);
      if (!(c0 >= 0.5 * highest) || !(highest > 0))
        continue;
      bool is_max = true;
      for (int dy = -1; dy <= 1 && is_max; ++dy)
        for (int dx = -1; dx <= 1; ++dx)
          if ((dx || dy) && (at(x + dx, y + dy) > c0 || (at(x + dx, y + dy) == c0 && dy * 3 + dx < 0))) {
            is_max = false;
            break;
          }
      if (!is_max)
        continue;
      const double fx = vertex(at(x - 1, y), c0, at(x + 1, y)), fy = vertex(at(x, y - 1), c0, at(x, y + 1));
      peaks.push_back({{(x >= nx / 2 ? x - nx : x) + fx, (y >= ny / 2 ? y - ny : y) + fy}, c0});
    }
  std::sort(peaks.begin(), peaks.end(), [](const Peak& a, const Peak& b) { return a.height > b.height; });
  if (peaks.size() > 16)
    peaks.resize(16);
  return peaks;
}

// Lattice-equivalent peaks differ in height only by noise and by the fraction of non-periodic
// content, so the highest is not evidence of the true shift: among the consistent ones the shift
// nearest the prediction (continuity of the drift) is taken. `scale` converts peak positions
// (binned registration pixels) to frame pixels.
Registration choose_peak(const std::vector<Peak>& peaks, Shift predicted, double scale) {
  Registration r;
  if (peaks.empty())
    return r;
  r.peak_ratio = peaks.size() > 1 ? peaks[1].height / peaks[0].height : 0;
  std::vector<Shift> consistent;
  for (const Peak& p : peaks)
    if (p.height >= consistent_peak_ratio * peaks[0].height)
      consistent.push_back({p.shift.dx_px * scale, p.shift.dy_px * scale});
  std::sort(consistent.begin(), consistent.end(),
            [&](const Shift& a, const Shift& b) { return distance_px(a, predicted) < distance_px(b, predicted); });
  r.shift = consistent[0];
  r.alternatives.assign(consistent.begin() + 1, consistent.end());
  r.ambiguous = !r.alternatives.empty();
  return r;
}

// Registration binning: frames binned to ≤ 1024 px for speed (the flow refines the drift).
int registration_bin(int nx, int ny) { return std::max(1, (std::max(nx, ny) + 1023) / 1024); }

cv::Mat registration_spectrum(const Image& im) {
  const int bin = registration_bin(im.nx, im.ny);
  cv::Mat a = to_mat(im);
  if (bin > 1) {
    cv::Mat binned;
    cv::resize(a, binned, cv::Size(im.nx / bin, im.ny / bin), 0, 0, cv::INTER_AREA);
    return windowed_spectrum(binned);
  }
  return windowed_spectrum(a);
}

}  // namespace

Registration register_frames(const Image& reference, const Image& moving, Shift predicted) {
  if (reference.nx != moving.nx || reference.ny != moving.ny)
    fail("phase correlation: frames differ in size (", reference.nx, "x", reference.ny, " vs ", moving.nx, "x",
         moving.ny, ")");
  return choose_peak(correlation_peaks(cross_spectrum(registration_spectrum(reference), registration_spectrum(moving))),
                     predicted, registration_bin(reference.nx, reference.ny));
}

Shift phase_correlation_shift(const Image& reference, const Image& moving) {
  return register_frames(reference, moving).shift;
}

namespace {

// Percentiles from a strided sample of a frame (about `per_frame` values): exact enough for a
// linear display map.
void sample_intensities(const Image& f, std::vector<float>& sample, size_t per_frame = 20000) {
  size_t stride = std::max<size_t>(1, f.size() / per_frame);
  for (size_t i = 0; i < f.size(); i += stride)
    if (std::isfinite(f.pixels[i]))
      sample.push_back(f.pixels[i]);
}

IntensityMap intensity_map_of(const std::vector<float>& sample) {
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

}  // namespace

IntensityMap movie_intensity_map(const std::vector<Image>& frames) {
  std::vector<float> sample;
  for (const Image& f : frames)
    sample_intensities(f, sample);
  return intensity_map_of(sample);
}

namespace {

// σ of one component of 2-D Gaussian flow noise about (cx, cy), from the 25th percentile of
// the distances: P(r < ρ) = 1 − exp(−ρ²/2σ²) for the static pixels; a moving minority (large
// distances) shifts that percentile far less than it shifts a median (1.14× for 20 % moving).
double noise_sigma(const std::vector<float>& vx, const std::vector<float>& vy, float cx, float cy) {
  std::vector<float> r(vx.size());
  for (size_t i = 0; i < vx.size(); ++i)
    r[i] = std::hypot(vx[i] - cx, vy[i] - cy);
  return percentile(r, 25) / std::sqrt(-2 * std::log(0.75));
}

// Flow from a to b, given the chosen registration (`registered`, frame px) of the pair.
FlowField flow_of_prepared(const cv::Mat& a, const cv::Mat& b, Shift registered, const FlowSpec& spec) {
  FlowField field;
  field.nx = a.cols;
  field.ny = a.rows;
  const size_t n = size_t(field.nx) * size_t(field.ny);
  field.vx_px.resize(n);
  field.vy_px.resize(n);
  // Drift in two steps. (1) Whole-frame registration, applied to the frame as a whole-pixel
  // shift only: a sub-pixel warp interpolates (OpenCV quantises to 1/32 px and blurs), which
  // biased the result by ~0.05 px in tests; the fractional part is subtracted from the flow
  // instead (flow of a translation = that translation).
  // (2) Registration is pulled by whatever moves (a bright particle can dominate the cross-
  // spectrum), so the drift is refined to the mode of the flow vectors (median, then mean shift
  // in a 0.3 px window) — the motion of the static majority — when at least half of the
  // vectors lie within 0.3 px of that mode. Otherwise the flow is noise-dominated (too little
  // texture or too little smoothing) and the registration is kept.
  cv::Mat aligned = b;
  Shift whole;
  if (spec.remove_drift) {
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
  if (inner_x.empty())
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
  // The flow noise about the static mode: robust to a moving minority.
  field.noise_sigma_px = noise_sigma(inner_x, inner_y, mx, my);
  if (!spec.remove_drift)
    return field;
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
  if (spec.window_px < 3 || spec.levels < 0 || spec.iterations < 1 || !(spec.pyr_scale > 0 && spec.pyr_scale < 1) ||
      spec.smooth_px < 0)
    fail("optical flow: invalid Farnebäck parameters (window ≥ 3 px, levels ≥ 0, iterations ≥ 1, 0 < pyr_scale < 1, "
         "smoothing ≥ 0 px)");
}

void check_auto_spec(const FlowSpec& spec) {
  FlowSpec resolved = spec;
  resolved.smooth_px = std::max(0.0, spec.smooth_px);
  resolved.window_px = spec.window_px < 0 ? 15 : spec.window_px;
  check_flow_spec(resolved);
}

}  // namespace

double noise_floor_px(double noise_sigma_px, std::size_t pixels, int window_px) {
  const double independent = std::max(1.0, double(pixels) / (double(window_px) * window_px));
  // Rayleigh tail: P(|v| > f) = exp(−f²/2σ²) = 1 % / independent samples.
  return noise_sigma_px * std::sqrt(2 * std::log(100 * independent));
}

namespace {

// Frequency [1/px] of the strongest Fourier component with a period of 2–32 px (the lattice
// fringes; longer periods are illumination and thickness); 0 when there is none.
double dominant_frequency(const cv::Mat& image) {
  const cv::Mat f = windowed_spectrum(image);
  double best = 0, best_f = 0;
  for (int y = 0; y < f.rows; ++y)
    for (int x = 0; x < f.cols; ++x) {
      const double fx = double(x >= f.cols / 2 ? x - f.cols : x) / f.cols;
      const double fy = double(y >= f.rows / 2 ? y - f.rows : y) / f.rows;
      const double k = std::hypot(fx, fy);
      const cv::Vec2f c = f.at<cv::Vec2f>(y, x);
      const double power = double(c[0]) * c[0] + double(c[1]) * c[1];
      if (k >= 1.0 / 32 && power > best) {
        best = power;
        best_f = k;
      }
    }
  return best_f;
}

}  // namespace

FlowSpec auto_flow_settings(const Image& prev, const Image& next, const FlowSpec& spec, const IntensityMap& map,
                            Shift registered) {
  check_auto_spec(spec);
  if (spec.smooth_px >= 0 && spec.window_px >= 0)
    return spec;
  if (prev.nx != next.nx || prev.ny != next.ny)
    fail("optical flow: frames differ in size (", prev.nx, "x", prev.ny, " vs ", next.nx, "x", next.ny, ")");
  // The central ≤ 512² px of the pair: the noise level does not need the whole frame.
  const int w = std::min(prev.nx, 512), h = std::min(prev.ny, 512);
  const cv::Rect crop((prev.nx - w) / 2, (prev.ny - h) / 2, w, h);
  const cv::Mat a = to_mat(prev)(crop).clone(), b = to_mat(next)(crop).clone();
  // Smoothing must keep the lattice that the flow follows: at σ = 0.187/f its strongest
  // component keeps half its amplitude (exp(−2π²σ²f²) = ½); heavier smoothing trades noise for
  // a flow that no longer sees the fringes (quiet, but blind to sub-pixel motion).
  const double f = dominant_frequency(a);
  const double max_sigma = f > 0 ? std::clamp(std::sqrt(std::log(2.0) / 2) / (PI * f), 1.0, 4.0) : 4.0;
  const Shift residual = spec.remove_drift ? registered : Shift{};
  std::vector<FlowSpec> candidates;
  for (int window : {15, 21, 31})
    for (double sigma : {1.0, 1.5, 2.0, 3.0, 4.0}) {
      FlowSpec c = spec;
      c.smooth_px = spec.smooth_px >= 0 ? spec.smooth_px : sigma;
      c.window_px = spec.window_px >= 0 ? spec.window_px : window;
      if (spec.smooth_px < 0 && c.smooth_px > max_sigma + 1e-9)
        continue;  // a σ given by the caller is kept whatever the lattice
      if (std::none_of(candidates.begin(), candidates.end(), [&](const FlowSpec& o) {
            return o.smooth_px == c.smooth_px && o.window_px == c.window_px;
          }))
        candidates.push_back(c);
    }
  // In order of increasing smoothing: the first whose noise floor lets 0.1 px/frame of motion
  // stand out, else the quietest.
  size_t quietest = 0;
  double lowest = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < candidates.size(); ++i) {
    const FlowSpec& c = candidates[i];
    const FlowField field = flow_of_prepared(prepare_mat(a, c, map), prepare_mat(b, c, map), residual, c);
    const size_t inner = size_t(std::max(0, w - 2 * field.margin_px)) * size_t(std::max(0, h - 2 * field.margin_px));
    if (noise_floor_px(field.noise_sigma_px, inner, c.window_px) <= 0.1)
      return c;
    if (field.noise_sigma_px < lowest) {
      lowest = field.noise_sigma_px;
      quietest = i;
    }
  }
  return candidates[quietest];
}

FlowField dense_flow(const Image& prev, const Image& next, const FlowSpec& spec, const IntensityMap& map,
                     Shift predicted) {
  if (prev.nx != next.nx || prev.ny != next.ny)
    fail("optical flow: frames differ in size (", prev.nx, "x", prev.ny, " vs ", next.nx, "x", next.ny, ")");
  check_auto_spec(spec);
  const Shift registered = spec.remove_drift ? register_frames(prev, next, predicted).shift : Shift{};
  const FlowSpec used = auto_flow_settings(prev, next, spec, map, registered);
  return flow_of_prepared(prepare(prev, used, map), prepare(next, used, map), registered, used);
}

FlowStats flow_stats(const FlowField& field, const std::vector<std::uint8_t>& mask, double floor,
                     int min_region_px, int core_margin_px) {
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
  // Moving pixels: faster than the floor, in a connected (8-neighbour) region of at least
  // min_region_px pixels.
  cv::Mat above = cv::Mat::zeros(field.ny, field.nx, CV_8U);
  if (floor > 0)
    for (int y = m; y < field.ny - m; ++y)
      for (int x = m; x < field.nx - m; ++x) {
        const size_t i = size_t(y) * size_t(field.nx) + size_t(x);
        above.at<std::uint8_t>(y, x) = (mask.empty() || mask[i]) && field.magnitude(i) > floor;
      }
  cv::Mat labels, region_stats, centroids;
  const int regions = floor > 0 ? cv::connectedComponentsWithStats(above, labels, region_stats, centroids, 8, CV_32S) : 1;
  double sum = 0, sum_moving = 0;
  size_t moving = 0;
  float largest = 0;
  for (float v : magnitudes) {
    sum += v;
    largest = std::max(largest, v);
  }
  cv::Mat kept = cv::Mat::zeros(field.ny, field.nx, CV_8U);
  for (int y = m; y < field.ny - m && regions > 1; ++y)
    for (int x = m; x < field.nx - m; ++x) {
      const int label = labels.at<int>(y, x);
      if (label > 0 && region_stats.at<int>(label, cv::CC_STAT_AREA) >= min_region_px) {
        kept.at<std::uint8_t>(y, x) = 1;
        ++moving;
      }
    }
  // The speed of the moving pixels from their core, core_margin_px inside the region's edge:
  // nearer the edge the flow window blends in the static surroundings.
  cv::Mat core = kept;
  if (core_margin_px > 0 && moving > 0) {
    cv::erode(kept, core, cv::getStructuringElement(cv::MORPH_RECT, cv::Size(2 * core_margin_px + 1, 2 * core_margin_px + 1)),
              cv::Point(-1, -1), 1, cv::BORDER_CONSTANT, cv::Scalar(0));
    if (cv::countNonZero(core) == 0)
      core = kept;
  }
  size_t in_core = 0;
  for (int y = m; y < field.ny - m && moving > 0; ++y)
    for (int x = m; x < field.nx - m; ++x)
      if (core.at<std::uint8_t>(y, x)) {
        sum_moving += field.magnitude(size_t(y) * size_t(field.nx) + size_t(x));
        ++in_core;
      }
  s.mean = sum / double(s.pixels);
  s.moving_fraction = double(moving) / double(s.pixels);
  s.mean_moving = in_core ? sum_moving / double(in_core) : 0.0;
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


namespace {

size_t statistics_pixels(const FlowField& field, const std::vector<std::uint8_t>& mask) {
  const int m = field.margin_px;
  size_t count = 0;
  for (int y = m; y < field.ny - m; ++y)
    for (int x = m; x < field.nx - m; ++x)
      count += mask.empty() || mask[size_t(y) * size_t(field.nx) + size_t(x)];
  return count;
}

}  // namespace

FrameSource frames_in_memory(const std::vector<Image>& frames) {
  return {frames.size(), [&frames](std::size_t i) { return frames[i]; }};
}

FlowResult analyze_flow(const std::vector<Image>& frames, const FrameTimes& times, const FlowSpec& spec,
                        const std::vector<std::uint8_t>& mask, const SpeedMapSink& speed_maps,
                        const ProgressFn& progress) {
  require_movie(frames, 2, "optical flow");
  return analyze_flow(frames_in_memory(frames), times, spec, mask, speed_maps, progress);
}

FlowResult analyze_flow(const FrameSource& frames, const FrameTimes& times, const FlowSpec& spec_in,
                        const std::vector<std::uint8_t>& mask, const SpeedMapSink& speed_maps,
                        const ProgressFn& progress) {
  if (frames.count < 2)
    fail("optical flow: the movie has ", frames.count, " frame(s); need at least 2 frames");
  check_auto_spec(spec_in);
  if (times.time_s.size() != frames.count)
    fail("optical flow: ", times.time_s.size(), " frame times for ", frames.count, " frames");
  if (!times.covariate.empty() && times.covariate.size() != frames.count)
    fail("optical flow: ", times.covariate.size(), " covariate values for ", frames.count, " frames");
  for (size_t i = 0; i + 1 < frames.count; ++i)
    if (!(times.time_s[i + 1] - times.time_s[i] > 0))
      fail("optical flow: frame times must increase (frame ", i + 2, ")");
  const size_t n_pairs = frames.count - 1;
  // Under mpirun (split_over_ranks): this rank's pairs [p0, p1), a contiguous block, so it reads
  // frames p0 … p1 only; rank 0 gathers and chooses what needs every pair (docs/mpi.md).
  const bool split = frames.split_over_ranks && parallel::size() > 1;
  const parallel::Block block = split ? parallel::my_block(int(n_pairs)) : parallel::Block{0, int(n_pairs)};
  const size_t p0 = size_t(block.first), p1 = size_t(block.last), my_pairs = p1 - p0;
  const auto owner = [&](int pair) { return split ? parallel::block_owner(pair, int(n_pairs)) : 0; };
  const bool root = !split || parallel::is_root();
  // A step that may fail on some ranks only: all of them stop together (parallel::collective).
  const auto on_every_rank = [&](const std::function<void()>& body) {
    if (split)
      parallel::collective(body);
    else
      body();
  };
  const int threads = pair_threads(std::max<size_t>(1, my_pairs));
  std::mutex mutex;
  size_t done = 0;
  auto report = [&](const char* stage) {
    if (progress) {
      std::lock_guard<std::mutex> lock(mutex);
      progress(++done, 2 * my_pairs, stage);
    }
  };

  // Pass 1 (parallel, one frame read at a time per thread): checks, intensity sample and every
  // pair's correlation peaks. The peak is chosen afterwards, in frame order, so that each pair
  // continues the previous pair's drift whatever the thread split.
  Image first;
  double px_A = 0;
  int nx = 0, ny = 0;  // of frame 0
  int mismatch = 0, mismatch_nx = 0, mismatch_ny = 0;  // a rank's first frame of another size
  std::vector<std::vector<Peak>> peaks(n_pairs);
  std::vector<std::vector<float>> samples(frames.count);
  // At most ~4 M samples over the movie (16 MB), at least 1000 per frame.
  const size_t per_frame = std::clamp<size_t>(4000000 / frames.count, 1000, 20000);
  on_every_rank([&] {  // a rank that cannot read a frame stops all ranks
    if (my_pairs == 0)
      return;
    first = frames.frame(p0);  // frame 0 in one process
    px_A = first.pixel_size_A;
    nx = first.nx;
    ny = first.ny;
    if (!(px_A > 0))
      fail("optical flow: the movie has no pixel size; give --pixel-size (e.g. 0.25A) to get speeds in Å/s");
    if (std::abs(first.pixel_y_A() - px_A) > 1e-6 * px_A)
      fail("optical flow: non-square pixels (", px_A, " x ", first.pixel_y_A(),
           " Å) are not supported; resample the movie to square pixels first");
    if (!mask.empty() && mask.size() != first.size())
      fail("flow mask has ", mask.size(), " pixels but the frames have ", first.size());
    auto checked_frame = [&](size_t i) {
      Image f = i == p0 ? first : frames.frame(i);
      if (f.nx != first.nx || f.ny != first.ny)
        fail("optical flow: frame ", i + 1, " is ", f.nx, "x", f.ny, " but frame ", p0 + 1, " is ", first.nx, "x",
             first.ny, "; all frames must have the same size");
      require_finite(f, "optical flow input frame " + std::to_string(i + 1));
      return f;
    };
    parallel_for(my_pairs, threads, [&](size_t begin, size_t end) {
      begin += p0;
      end += p0;
      Image f = checked_frame(begin);
      if (begin == 0)  // later frames are sampled by the pair they end (each by one thread)
        sample_intensities(f, samples[0], per_frame);
      cv::Mat prev = spec_in.remove_drift ? registration_spectrum(f) : cv::Mat();
      for (size_t i = begin; i < end; ++i) {
        f = checked_frame(i + 1);
        sample_intensities(f, samples[i + 1], per_frame);
        if (spec_in.remove_drift) {
          cv::Mat next = registration_spectrum(f);
          peaks[i] = correlation_peaks(cross_spectrum(prev, next));
          prev = next;
        }
        report("registration");
      }
    });
  });
  if (split)  // rank 0 receives every pair's peaks and samples (frame 0's with pair 0)
    parallel::collect_in_order(
        int(n_pairs), owner,
        [&](int i) {
          parallel::ByteWriter w;
          w.put(px_A).put(first.nx).put(first.ny);
          w.put(std::uint64_t(peaks[size_t(i)].size()));
          for (const Peak& p : peaks[size_t(i)])
            w.put(p);
          if (i == 0)
            w.put_values(samples[0]);
          w.put_values(samples[size_t(i) + 1]);
          return w.bytes;
        },
        [&](int i, const std::vector<char>& bytes) {
          parallel::ByteReader r(bytes);
          const double px = r.get<double>();
          const int fx = r.get<int>(), fy = r.get<int>();
          if (i == 0) {
            px_A = px;
            nx = fx;
            ny = fy;
          } else if ((fx != nx || fy != ny) && !mismatch) {
            mismatch = i + 1;  // reported after the collection, which must not stop half-way
            mismatch_nx = fx;
            mismatch_ny = fy;
          }
          peaks[size_t(i)].resize(std::size_t(r.get<std::uint64_t>()));
          for (Peak& p : peaks[size_t(i)])
            p = r.get<Peak>();
          if (i == 0)
            r.get_values(samples[0]);
          r.get_values(samples[size_t(i) + 1]);
        });

  // On rank 0 (every rank in one process): the registrations in frame order, the intensity map
  // and the automatic settings; the other ranks receive the shifts, the map and the settings.
  std::vector<Registration> registrations(n_pairs);
  IntensityMap map;
  FlowSpec spec = spec_in;
  on_every_rank([&] {
    if (!root)
      return;
    if (mismatch)
      fail("optical flow: frame ", mismatch + 1, " is ", mismatch_nx, "x", mismatch_ny, " but frame 1 is ", nx, "x",
           ny, "; all frames must have the same size");
    const double bin = registration_bin(nx, ny);
    for (size_t i = 0; i < n_pairs && spec_in.remove_drift; ++i)
      registrations[i] = choose_peak(peaks[i], i > 0 ? registrations[i - 1].shift : Shift{}, bin);
    std::vector<float> sample;
    for (const auto& s : samples)
      sample.insert(sample.end(), s.begin(), s.end());
    map = intensity_map_of(sample);
    // Automatic smoothing/window from the middle pair's flow noise.
    const size_t probe = n_pairs / 2;
    if (!(spec_in.smooth_px >= 0 && spec_in.window_px >= 0))
      spec = auto_flow_settings(frames.frame(probe), frames.frame(probe + 1), spec_in, map, registrations[probe].shift);
  });
  if (split) {
    parallel::ByteWriter w;
    w.put(map).put(spec).put(px_A);
    for (const Registration& r : registrations)
      w.put(r.shift);
    parallel::broadcast(w.bytes);
    parallel::ByteReader r(w.bytes);
    map = r.get<IntensityMap>();
    spec = r.get<FlowSpec>();
    px_A = r.get<double>();
    for (Registration& reg : registrations)
      reg.shift = r.get<Shift>();
  }

  // Pass 2 (parallel): the flow. Only statistics are kept, not the 8-byte/px fields.
  struct PairResult {
    Shift drift;
    double static_fraction = 0, floor_px = 0;
    FlowStats stats_px;
  };
  std::vector<PairResult> results(n_pairs);
  std::vector<Image> rank_maps(split && speed_maps ? n_pairs : 0);  // this rank's, sent to rank 0
  on_every_rank([&] {
    if (my_pairs == 0)
      return;
    parallel_for(my_pairs, threads, [&](size_t begin, size_t end) {
      begin += p0;
      end += p0;
      cv::Mat prev = prepare(frames.frame(begin), spec, map);
      for (size_t i = begin; i < end; ++i) {
        cv::Mat next = prepare(frames.frame(i + 1), spec, map);
        FlowField field = flow_of_prepared(prev, next, registrations[i].shift, spec);
        PairResult& r = results[i];
        r.drift = spec.remove_drift ? field.drift : Shift{};
        r.static_fraction = field.static_fraction;
        r.floor_px = noise_floor_px(field.noise_sigma_px, statistics_pixels(field, mask), spec.window_px);
        r.stats_px = flow_stats(field, mask, r.floor_px, spec.window_px * spec.window_px / 2, spec.window_px / 2);
        if (speed_maps) {
          Image speed(field.nx, field.ny);
          speed.pixel_size_A = px_A;
          const double to_A_per_s = px_A / (times.time_s[i + 1] - times.time_s[i]);
          for (size_t k = 0; k < speed.size(); ++k)
            speed.pixels[k] = float(field.magnitude(k) * to_A_per_s);
          std::lock_guard<std::mutex> lock(mutex);
          if (split)
            rank_maps[i] = std::move(speed);
          else
            speed_maps(i, std::move(speed));
        }
        prev = std::move(next);
        report("optical flow");
      }
    });
  });
  if (split)  // rank 0 receives every pair's statistics (and speed map) in pair order
    parallel::collect_in_order(
        int(n_pairs), owner,
        [&](int i) {
          parallel::ByteWriter w;
          w.put(results[size_t(i)]);
          if (speed_maps) {
            const Image& m = rank_maps[size_t(i)];
            w.put(m.nx).put(m.ny);
            w.put_values(m.pixels);
            rank_maps[size_t(i)] = Image();
          }
          return w.bytes;
        },
        [&](int i, const std::vector<char>& bytes) {
          parallel::ByteReader r(bytes);
          results[size_t(i)] = r.get<PairResult>();
          if (speed_maps) {
            const int mx = r.get<int>(), my = r.get<int>();
            Image speed(mx, my);
            speed.pixel_size_A = px_A;
            r.get_values(speed.pixels);
            speed_maps(size_t(i), std::move(speed));
          }
        });

  FlowResult out;
  out.spec = spec;
  if (!root)
    return out;  // the pairs are rank 0's
  double drift_x = 0, drift_y = 0;
  for (size_t i = 0; i < n_pairs; ++i) {
    const PairResult& r = results[i];
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
    p.registration = registrations[i];
    const double to_A_per_s = px_A / p.dt_s;
    const FlowStats& s = r.stats_px;
    p.speed_A_per_s = {s.mean * to_A_per_s, s.median * to_A_per_s, s.p90 * to_A_per_s, s.p99 * to_A_per_s,
                       s.pixels, s.moving_fraction, s.mean_moving * to_A_per_s};
    p.noise_floor_px_per_frame = r.floor_px;
    p.mean_speed_moving_px_per_frame = s.mean_moving;
    out.pairs.push_back(p);
  }
  return out;
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
