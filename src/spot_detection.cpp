#include "epitem/spot_detection.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "epitem/error.hpp"
#include "epitem/units.hpp"

namespace epitem {

namespace {

// Gaussian blur with replicate borders, kernel truncated at ±⌈3.5σ⌉ px and normalised to 1:
// OpenCV's separable filter (vectorised; 2-4× faster than a plain loop at 2048², σ 1-3).
void blur_into(const std::vector<float>& in, int nx, int ny, double sigma, std::vector<float>& out) {
  const int r = std::max(1, int(std::ceil(3.5 * sigma)));
  out.resize(size_t(nx) * size_t(ny));
  const cv::Mat src(ny, nx, CV_32F, const_cast<float*>(in.data()));
  cv::Mat dst(ny, nx, CV_32F, out.data());
  cv::GaussianBlur(src, dst, cv::Size(2 * r + 1, 2 * r + 1), sigma, sigma, cv::BORDER_REPLICATE);
}

// Mean over bin×bin blocks (the image is cropped to a multiple of bin).
std::vector<float> bin_image(const std::vector<float>& in, int nx, int ny, int bin, int& bx, int& by) {
  bx = nx / bin;
  by = ny / bin;
  if (bin == 1)
    return in;
  std::vector<float> out(size_t(bx) * size_t(by), 0.f);
  const float scale = 1.f / float(bin * bin);
  for (int y = 0; y < by * bin; ++y) {
    const float* src = &in[size_t(y) * size_t(nx)];
    float* dst = &out[size_t(y / bin) * size_t(bx)];
    for (int x = 0; x < bx; ++x) {
      float s = 0;
      for (int k = 0; k < bin; ++k)
        s += src[x * bin + k];
      dst[x] += s * scale;
    }
  }
  return out;
}

// Square dilation by `radius` pixels (two 1-D passes with a running count).
void dilate(std::vector<std::uint8_t>& m, int nx, int ny, int radius) {
  if (radius <= 0)
    return;
  std::vector<std::uint8_t> tmp(m.size());
  std::vector<int> prefix(size_t(std::max(nx, ny)) + 1);
  for (int y = 0; y < ny; ++y) {
    const std::uint8_t* row = &m[size_t(y) * size_t(nx)];
    prefix[0] = 0;
    for (int x = 0; x < nx; ++x)
      prefix[size_t(x) + 1] = prefix[size_t(x)] + (row[x] ? 1 : 0);
    for (int x = 0; x < nx; ++x) {
      int lo = std::max(0, x - radius), hi = std::min(nx, x + radius + 1);
      tmp[size_t(y) * size_t(nx) + size_t(x)] = prefix[size_t(hi)] - prefix[size_t(lo)] > 0;
    }
  }
  for (int x = 0; x < nx; ++x) {
    prefix[0] = 0;
    for (int y = 0; y < ny; ++y)
      prefix[size_t(y) + 1] = prefix[size_t(y)] + (tmp[size_t(y) * size_t(nx) + size_t(x)] ? 1 : 0);
    for (int y = 0; y < ny; ++y) {
      int lo = std::max(0, y - radius), hi = std::min(ny, y + radius + 1);
      m[size_t(y) * size_t(nx) + size_t(x)] = prefix[size_t(hi)] - prefix[size_t(lo)] > 0;
    }
  }
}

double median_of(std::vector<float>& v) {
  if (v.empty())
    return 0;
  auto mid = v.begin() + std::ptrdiff_t(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

// R = −σ²∇²(G_σ * I): the 5-point Laplacian of the smoothed image (Lindeberg's discrete
// scale space), half the cost of separate Gxx and Gyy filters. With a mask, `in` holds I·w
// (w = unmasked fraction) and `normaliser` G_σ * w: the smoothed image is then the normalised
// convolution (Knutsson & Westin 1993), the local mean of the unmasked pixels only, so a
// shadow edge gives no response and spots next to it are not suppressed.
void normalised_log(const std::vector<float>& in, int nx, int ny, double sigma,
                    const std::vector<float>& normaliser, std::vector<float>& smooth,
                    std::vector<float>& out) {
  blur_into(in, nx, ny, sigma, smooth);
  if (!normaliser.empty())
    for (size_t i = 0; i < smooth.size(); ++i)
      smooth[i] = normaliser[i] > 1e-3f ? smooth[i] / normaliser[i] : 0.f;
  out.resize(size_t(nx) * size_t(ny));
  const float norm = float(-sigma * sigma);
  for (int y = 0; y < ny; ++y) {
    const float* up = &smooth[size_t(std::max(0, y - 1)) * size_t(nx)];
    const float* mid = &smooth[size_t(y) * size_t(nx)];
    const float* down = &smooth[size_t(std::min(ny - 1, y + 1)) * size_t(nx)];
    float* dst = &out[size_t(y) * size_t(nx)];
    for (int x = 1; x + 1 < nx; ++x)
      dst[x] = norm * (up[x] + down[x] + mid[x - 1] + mid[x + 1] - 4 * mid[x]);
    dst[0] = norm * (up[0] + down[0] + mid[1] - 3 * mid[0]);
    dst[nx - 1] = norm * (up[nx - 1] + down[nx - 1] + mid[nx - 2] - 3 * mid[nx - 1]);
  }
}

}  // namespace

void SpotDetectionSpec::validate() const {
  if (!(sigma_min_px > 0) || !(sigma_max_px >= sigma_min_px))
    fail("spot detection: need 0 < sigma_min_px ≤ sigma_max_px, got ", sigma_min_px, " and ",
         sigma_max_px, " px");
  if (n_scales < 1 || n_scales > 32)
    fail("spot detection: n_scales must be 1..32, got ", n_scales);
  if (!(snr_threshold > 0))
    fail("spot detection: snr_threshold must be > 0, got ", snr_threshold);
  if (max_bin < 1)
    fail("spot detection: max_bin must be ≥ 1, got ", max_bin);
  if (!(max_curvature_ratio > 1))
    fail("spot detection: max_curvature_ratio must be > 1, got ", max_curvature_ratio);
  if (noise_tile_px < 8)
    fail("spot detection: noise_tile_px must be ≥ 8, got ", noise_tile_px);
}

Image gaussian_blur(const Image& image, double sigma_px) {
  if (!(sigma_px > 0))
    return image;
  Image out = image;
  blur_into(image.pixels, image.nx, image.ny, sigma_px, out.pixels);
  return out;
}

std::size_t DetectorMask::count() const {
  return size_t(std::count_if(excluded.begin(), excluded.end(), [](std::uint8_t v) { return v != 0; }));
}

DetectorMask circle_mask(int nx, int ny, double cx_px, double cy_px, double radius_px) {
  DetectorMask m{nx, ny, std::vector<std::uint8_t>(size_t(nx) * size_t(ny), 0)};
  for (int y = 0; y < ny; ++y)
    for (int x = 0; x < nx; ++x)
      if (std::hypot(x - cx_px, y - cy_px) <= radius_px)
        m.excluded[size_t(y) * size_t(nx) + size_t(x)] = 1;
  return m;
}

DetectorMask dark_region_mask(const Image& image, double fraction, double margin_px) {
  if (image.size() == 0)
    fail("dark_region_mask: empty image");
  if (!(fraction > 0 && fraction < 1))
    fail("dark_region_mask: fraction must be in (0, 1), got ", fraction);
  // Levels relative to the frame itself, so offsets and signed (background-subtracted) data
  // work: the dark reference is the darkest 0.2 % of the smoothed frame (the shadow, when there
  // is one), and a shadow must also lie 10 smoothed-noise σ below the median.
  const double blur_px = 2;
  const Image smooth = gaussian_blur(image, blur_px);
  std::vector<float> sample, diffs;
  const size_t step = std::max<size_t>(1, image.size() / 65536);
  for (size_t i = 0; i < image.size(); i += step) {
    sample.push_back(smooth.pixels[i]);
    if ((i + 1) % size_t(image.nx) != 0)
      diffs.push_back(image.pixels[i + 1] - image.pixels[i]);
  }
  const double med = median_of(sample);
  auto dark_at = sample.begin() + std::ptrdiff_t(sample.size() / 500);
  std::nth_element(sample.begin(), dark_at, sample.end());
  const double dark = *dark_at;
  for (float& d : diffs)
    d = std::abs(d);
  // Pixel noise from neighbour differences (1.4826·MAD/√2), reduced by the blur (1/(2√π σ)).
  const double noise = 1.4826 * median_of(diffs) / std::sqrt(2.0) / (2 * std::sqrt(PI) * blur_px);
  const double threshold = std::min(dark + fraction * (med - dark), med - 10 * noise);
  DetectorMask m{image.nx, image.ny, std::vector<std::uint8_t>(image.size(), 0)};
  for (size_t i = 0; i < image.size(); ++i)
    m.excluded[i] = smooth.pixels[i] < threshold;
  // A shadow receives (almost) no electrons, so its pixel noise is well below that of the lit
  // frame; the dimmest lit background is about as noisy as the rest and is no shadow.
  diffs.clear();
  for (size_t i = 0; i + 1 < image.size(); i += std::max<size_t>(1, step / 4))
    if (m.excluded[i] && m.excluded[i + 1] && (i + 1) % size_t(image.nx) != 0)
      diffs.push_back(std::abs(image.pixels[i + 1] - image.pixels[i]));
  const double shadow_noise = 1.4826 * median_of(diffs) / std::sqrt(2.0) / (2 * std::sqrt(PI) * blur_px);
  if (diffs.size() < 20 || shadow_noise > 0.5 * noise) {
    std::fill(m.excluded.begin(), m.excluded.end(), 0);
    return m;
  }
  // The blur pulls a sharp shadow edge inwards, by ~0.84σ on a flat background but by up to
  // ~2σ where the bright halo next to the beam stop is many times the median: dark raw pixels
  // connected to the smoothed mask within 3σ join it (unmasked, the shadow's edge gives spots).
  for (int k = 0; k < int(std::ceil(3 * blur_px)); ++k) {
    std::vector<std::uint8_t> near = m.excluded;
    dilate(near, m.nx, m.ny, 1);
    for (size_t i = 0; i < image.size(); ++i)
      m.excluded[i] = m.excluded[i] || (near[i] && image.pixels[i] < threshold);
  }
  dilate(m.excluded, m.nx, m.ny, int(std::ceil(margin_px)));
  return m;
}

void add_to_mask(DetectorMask& mask, const DetectorMask& other) {
  if (other.empty())
    return;
  if (mask.empty()) {
    mask = other;
    return;
  }
  if (mask.nx != other.nx || mask.ny != other.ny)
    fail("mask size ", other.nx, "×", other.ny, " differs from ", mask.nx, "×", mask.ny,
         "; masks must match the frame size");
  for (size_t i = 0; i < mask.excluded.size(); ++i)
    mask.excluded[i] = mask.excluded[i] || other.excluded[i];
}

SpotDetector::SpotDetector(int nx, int ny, const SpotDetectionSpec& spec, DetectorMask mask)
    : nx_(nx), ny_(ny), spec_(spec), mask_(std::move(mask)) {
  spec_.validate();
  if (nx < 16 || ny < 16)
    fail("spot detection: frame ", nx, "×", ny, " px is too small (need ≥ 16×16)");
  if (!mask_.empty() && (mask_.nx != nx || mask_.ny != ny))
    fail("spot detection: mask ", mask_.nx, "×", mask_.ny, " does not match the frame ", nx, "×", ny);
  for (int k = 0; k < spec_.n_scales; ++k) {
    double t = spec_.n_scales == 1 ? 0.0 : double(k) / double(spec_.n_scales - 1);
    double sigma = spec_.sigma_min_px * std::pow(spec_.sigma_max_px / spec_.sigma_min_px, t);
    // Binning by b blurs with a box of variance (b²−1)/12 full px; the filter makes up the rest.
    int bin = 1;
    double filter_sigma = sigma;
    for (int b = 2; b <= spec_.max_bin; b *= 2) {
      double var = sigma * sigma - (b * b - 1) / 12.0;
      if (var <= 0 || std::sqrt(var) / b < 0.9 || nx / b < 16 || ny / b < 16)
        break;
      bin = b;
      filter_sigma = std::sqrt(var) / b;
    }
    sigmas_.push_back(sigma);
    bins_.push_back(bin);
    filter_sigmas_.push_back(filter_sigma);
    Level level{bin, nx / bin, ny / bin, {}, {}, {}, {}};
    if (!mask_.empty()) {
      std::vector<float> w(mask_.excluded.size());
      for (size_t i = 0; i < w.size(); ++i)
        w[i] = mask_.excluded[i] ? 0.f : 1.f;
      int bx = 0, by = 0;
      level.weight = bin_image(w, nx, ny, bin, bx, by);
      blur_into(level.weight, bx, by, filter_sigma, level.normaliser);
      // Noise of a normalised convolution relative to the unmasked case:
      // √(Σg²w / Σg²) / Σgw, with Σg²w/Σg² = G_{σ/√2} * w.
      std::vector<float> w2;
      blur_into(level.weight, bx, by, filter_sigma / std::sqrt(2.0), w2);
      level.noise_factor.resize(w2.size());
      level.excluded.assign(w2.size(), 0);
      for (size_t i = 0; i < w2.size(); ++i) {
        const float nrm = level.normaliser[i];
        level.noise_factor[i] = nrm > 1e-3f ? std::sqrt(std::max(w2[i], 0.f)) / nrm : 1.f;
        // Peaks need their own pixel mostly unmasked and a quarter of the filter's weight seen.
        level.excluded[i] = level.weight[i] < 0.5f || nrm < 0.25f;
      }
    }
    levels_.push_back(std::move(level));
  }
}

std::vector<DetectedSpot> SpotDetector::detect(const Image& frame) const {
  if (frame.nx != nx_ || frame.ny != ny_)
    fail("spot detection: frame is ", frame.nx, "×", frame.ny, " px but the detector was set up for ",
         nx_, "×", ny_, "; all frames of a movie must have the same size");
  std::vector<DetectedSpot> candidates;
  std::vector<float> binned, smooth, response, sample, masked, local;
  if (!mask_.empty()) {  // I·w for the normalised convolution
    masked = frame.pixels;
    for (size_t i = 0; i < masked.size(); ++i)
      if (mask_.excluded[i])
        masked[i] = 0.f;
  }
  int cached_bin = 0, bx = 0, by = 0;
  for (size_t s = 0; s < sigmas_.size(); ++s) {
    const Level& level = levels_[s];
    if (level.bin != cached_bin) {
      binned = bin_image(masked.empty() ? frame.pixels : masked, nx_, ny_, level.bin, bx, by);
      cached_bin = level.bin;
    }
    normalised_log(binned, bx, by, filter_sigmas_[s], level.normaliser, smooth, response);
    // Robust noise per tile: 1.4826·MAD of the response over unmasked pixels (every 2nd).
    const int tile = spec_.noise_tile_px;
    const int tx = (bx + tile - 1) / tile, ty = (by + tile - 1) / tile;
    std::vector<double> threshold(size_t(tx) * size_t(ty), -1), noise(threshold.size(), -1);
    std::vector<double> good_noise;
    for (int j = 0; j < ty; ++j)
      for (int i = 0; i < tx; ++i) {
        sample.clear();
        for (int y = j * tile; y < std::min(by, (j + 1) * tile); y += 2)
          for (int x = i * tile; x < std::min(bx, (i + 1) * tile); x += 2)
            if (level.excluded.empty() || !level.excluded[size_t(y) * size_t(bx) + size_t(x)])
              sample.push_back(response[size_t(y) * size_t(bx) + size_t(x)]);
        if (sample.size() < 64)
          continue;
        double med = median_of(sample);
        for (float& v : sample)
          v = std::abs(v - float(med));
        double n = 1.4826 * median_of(sample);
        noise[size_t(j) * size_t(tx) + size_t(i)] = n;
        good_noise.push_back(n);
      }
    if (good_noise.empty())
      continue;
    std::nth_element(good_noise.begin(), good_noise.begin() + std::ptrdiff_t(good_noise.size() / 2), good_noise.end());
    const double fallback = good_noise[good_noise.size() / 2];
    // Noise-free (simulated) frames: float32 round-off of the Laplacian, ~1e-6 of the data
    // scale, must not count as signal.
    double data_scale = 0;
    for (float v : binned)
      data_scale = std::max(data_scale, double(std::abs(v)));
    const double floor_noise = 1e-5 * data_scale;
    for (size_t t = 0; t < noise.size(); ++t)
      noise[t] = std::max(noise[t] < 0 ? fallback : noise[t], floor_noise);
    const float* R = response.data();
    for (int y = 1; y < by - 1; ++y)
      for (int x = 1; x < bx - 1; ++x) {
        const size_t i = size_t(y) * size_t(bx) + size_t(x);
        const float v = R[i];
        if (v <= 0)
          continue;
        const double n = noise[size_t(y / tile) * size_t(tx) + size_t(x / tile)] *
                         (level.noise_factor.empty() ? 1.0 : double(level.noise_factor[i]));
        if (v < spec_.snr_threshold * n)
          continue;
        // Not on or next to masked pixels: a maximum there may continue under the mask (the
        // visible tail of a hidden spot).
        if (!level.excluded.empty() &&
            (level.excluded[i] || level.excluded[i - 1] || level.excluded[i + 1] || level.excluded[i - size_t(bx)] ||
             level.excluded[i + size_t(bx)] || level.excluded[i - size_t(bx) - 1] || level.excluded[i - size_t(bx) + 1] ||
             level.excluded[i + size_t(bx) - 1] || level.excluded[i + size_t(bx) + 1]))
          continue;
        // Strict maximum against the earlier neighbours, ≥ the later ones (plateaus count once).
        if (!(v > R[i - 1] && v > R[i - size_t(bx) - 1] && v > R[i - size_t(bx)] && v > R[i - size_t(bx) + 1] &&
              v >= R[i + 1] && v >= R[i + size_t(bx) - 1] && v >= R[i + size_t(bx)] && v >= R[i + size_t(bx) + 1]))
          continue;
        // 3×3 quadratic fit: δ = −H⁻¹∇ (falls back to the pixel if the step leaves the pixel).
        double gx = 0.5 * (R[i + 1] - R[i - 1]), gy = 0.5 * (R[i + size_t(bx)] - R[i - size_t(bx)]);
        double hxx = R[i + 1] - 2.0 * v + R[i - 1], hyy = R[i + size_t(bx)] - 2.0 * v + R[i - size_t(bx)];
        double hxy = 0.25 * (R[i + size_t(bx) + 1] - R[i + size_t(bx) - 1] - R[i - size_t(bx) + 1] + R[i - size_t(bx) - 1]);
        double det = hxx * hyy - hxy * hxy;
        const double rr = spec_.max_curvature_ratio;
        if (det <= 0 || (hxx + hyy) * (hxx + hyy) * rr >= (rr + 1) * (rr + 1) * det)
          continue;  // a ridge (ring, streak, beam-stop edge), not a blob
        // Local noise: the tile MAD is set by the tile's majority, but Poisson noise grows with
        // the counts, and near the direct beam the halo climbs steeply within one tile. The MAD
        // of the response around the peak (outside 3σ) guards against noise peaks there.
        double n_used = n;
        {
          const double fs = filter_sigmas_[s];
          const int w = std::max(8, int(std::ceil(6 * fs)));
          const double r_in2 = 9 * fs * fs + 1;
          local.clear();
          for (int yy = std::max(0, y - w); yy <= std::min(by - 1, y + w); ++yy)
            for (int xx = std::max(0, x - w); xx <= std::min(bx - 1, x + w); ++xx) {
              const size_t k = size_t(yy) * size_t(bx) + size_t(xx);
              if (double(xx - x) * (xx - x) + double(yy - y) * (yy - y) < r_in2 ||
                  (!level.excluded.empty() && level.excluded[k]))
                continue;
              local.push_back(R[k]);
            }
          if (local.size() >= 64) {
            const double med = median_of(local);
            for (float& u : local)
              u = std::abs(u - float(med));
            n_used = std::max(n, 1.4826 * median_of(local));
            if (v < spec_.snr_threshold * n_used)
              continue;
          }
        }
        double dx = 0, dy = 0, peak = v;
        if (det > 0 && hxx < 0) {
          dx = -(hyy * gx - hxy * gy) / det;
          dy = -(hxx * gy - hxy * gx) / det;
          if (std::abs(dx) > 0.75 || std::abs(dy) > 0.75)
            dx = dy = 0;
          else
            peak = v + 0.5 * (gx * dx + gy * dy);
        }
        const int b = level.bin;
        DetectedSpot spot;
        spot.x_px = (x + dx) * b + 0.5 * (b - 1);
        spot.y_px = (y + dy) * b + 0.5 * (b - 1);
        spot.sigma_px = sigmas_[s];
        spot.response = peak;
        spot.snr = peak / n_used;  // n > 0: the floor is positive whenever a response is
        candidates.push_back(spot);
      }
  }
  // Scale selection: the strongest normalised response wins; weaker maxima of the same blob
  // at neighbouring scales lie within ~σ of it.
  std::sort(candidates.begin(), candidates.end(),
            [](const DetectedSpot& a, const DetectedSpot& b) { return a.response > b.response; });
  std::vector<DetectedSpot> spots;
  for (const DetectedSpot& c : candidates) {
    bool taken = false;
    for (const DetectedSpot& s : spots) {
      double r = 1.5 * std::max(s.sigma_px, c.sigma_px) + 1.0;
      if ((c.x_px - s.x_px) * (c.x_px - s.x_px) + (c.y_px - s.y_px) * (c.y_px - s.y_px) < r * r) {
        taken = true;
        break;
      }
    }
    if (!taken)
      spots.push_back(c);
  }
  // Integrated intensity on the full-resolution frame: disc of 2σ minus the median of the
  // 3σ–4σ annulus (local background: diffuse scattering, rings).
  std::vector<float> ring;
  for (DetectedSpot& s : spots) {
    const double r_in = 2 * s.sigma_px, r_lo = 3 * s.sigma_px, r_hi = 4 * s.sigma_px;
    const int x0 = std::max(0, int(std::floor(s.x_px - r_hi))), x1 = std::min(nx_ - 1, int(std::ceil(s.x_px + r_hi)));
    const int y0 = std::max(0, int(std::floor(s.y_px - r_hi))), y1 = std::min(ny_ - 1, int(std::ceil(s.y_px + r_hi)));
    ring.clear();
    double sum = 0;
    int n_in = 0;
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) {
        if (mask_.is_excluded(x, y))
          continue;
        double r = std::hypot(x - s.x_px, y - s.y_px);
        float v = frame.at(x, y);
        if (r <= r_in) {
          sum += v;
          ++n_in;
        } else if (r >= r_lo && r <= r_hi) {
          ring.push_back(v);
        }
      }
    s.intensity = sum - n_in * median_of(ring);
  }
  // A maximum of −∇² with no excess counts over its surroundings is the flank of a dark
  // feature (a ring minimum, a shadow edge), not a spot.
  spots.erase(std::remove_if(spots.begin(), spots.end(), [](const DetectedSpot& s) { return !(s.intensity > 0); }),
              spots.end());
  std::sort(spots.begin(), spots.end(), [](const DetectedSpot& a, const DetectedSpot& b) {
    return a.y_px != b.y_px ? a.y_px < b.y_px : a.x_px < b.x_px;
  });
  return spots;
}

}  // namespace epitem
