#include "epitem/phasemap.hpp"

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>

#include "epitem/csv.hpp"
#include "epitem/error.hpp"
#include "epitem/fft.hpp"
#include "epitem/output.hpp"
#include "epitem/progress.hpp"
#include "epitem/spectrum.hpp"
#include "epitem/units.hpp"
#include "epitem/wave.hpp"

namespace epitem {

namespace {

double to_number(const std::string& text, const std::string& what) {
  try {
    size_t used = 0;
    double v = std::stod(text, &used);
    if (used == text.size() && std::isfinite(v))
      return v;
  } catch (const std::exception&) {
  }
  fail(what, ": '", text, "' is not a number");
}

Rgb named_color(const std::string& name, const std::string& what) {
  static const std::pair<const char*, Rgb> table[] = {
      {"blue", colors::blue},   {"red", colors::red},         {"green", colors::green},
      {"yellow", colors::yellow}, {"orange", colors::orange}, {"cyan", colors::cyan},
      {"magenta", colors::magenta}, {"white", colors::white}, {"gray", colors::gray}};
  for (const auto& [n, c] : table)
    if (name == n)
      return c;
  fail(what, ": unknown colour '", name, "'; use blue, red, green, yellow, orange, cyan, magenta, white or gray");
}

// Rows of a peak table (epitem fft: kx,ky; epitem saed: gx,gy; or gx_invA,gy_invA, all 1/Å with
// y up) as reflections. `spots` (1-based: the `spot` column, else the row order) keeps those
// rows; otherwise a table with a `phase` column (epitem index) keeps the rows of `phase` when it
// is given; otherwise all rows. Returns (phase name, reflection) per kept row.
std::vector<std::pair<std::string, PhaseReflection>> read_peak_table(const std::string& path, const std::string& what,
                                                                     const std::string& phase,
                                                                     const std::vector<int>& spots) {
  const CsvTable table = read_csv_table(path, what);
  auto first_column = [&](std::initializer_list<const char*> names) {
    for (const char* n : names)
      if (table.column(n) >= 0)
        return table.column(n);
    return -1;
  };
  const int cx = first_column({"kx", "gx", "gx_invA", "kx_invA"});
  const int cy = first_column({"ky", "gy", "gy_invA", "ky_invA"});
  const int cphase = table.column("phase"), cspot = table.column("spot");
  if (cx < 0 || cy < 0)
    fail(path, ": needs columns kx,ky (epitem fft, epitem index) or gx,gy (epitem saed) in 1/Å");
  std::vector<std::pair<std::string, PhaseReflection>> out;
  for (size_t r = 0; r < table.rows.size(); ++r) {
    const std::vector<std::string>& row = table.rows[r];
    const std::string where = path + " line " + std::to_string(table.line_numbers[r]);
    if (int(row.size()) <= std::max(cx, cy))
      fail(where, ": too few columns");
    const int number = cspot >= 0 && int(row.size()) > cspot ? int(to_number(row[size_t(cspot)], where)) : int(r) + 1;
    if (!spots.empty() && std::find(spots.begin(), spots.end(), number) == spots.end())
      continue;
    const std::string row_phase = cphase >= 0 && int(row.size()) > cphase ? row[size_t(cphase)] : "";
    if (cphase >= 0 && !phase.empty() && spots.empty() && row_phase != phase)
      continue;
    const PhaseReflection g{to_number(row[size_t(cx)], where), to_number(row[size_t(cy)], where)};
    if (g.gx_invA == 0 && g.gy_invA == 0)
      continue;  // the direct beam of a diffraction table
    out.emplace_back(phase.empty() ? row_phase : phase, g);
  }
  return out;
}

// "path.csv[:n,m,…]" → path and 1-based spot numbers.
std::pair<std::string, std::vector<int>> table_and_spots(const std::string& text, const std::string& what) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || file_extension(text.substr(0, colon)) != "csv")
    return {text, {}};
  std::vector<int> spots;
  for (const std::string& n : split_fields(text.substr(colon + 1), ','))
    spots.push_back(int(to_number(n, what)));
  return {text.substr(0, colon), spots};
}

// Otsu's threshold on a 256-bin histogram of v over [0, max].
double otsu_threshold(const std::vector<float>& v) {
  float hi = 0;
  for (float x : v)
    hi = std::max(hi, x);
  if (!(hi > 0))
    return 0;
  const int bins = 256;
  std::vector<double> hist(bins, 0.0);
  for (float x : v)
    hist[size_t(std::min(bins - 1, int(x / hi * bins)))] += 1;
  double total = double(v.size()), sum_all = 0;
  for (int i = 0; i < bins; ++i)
    sum_all += i * hist[size_t(i)];
  double w0 = 0, sum0 = 0, best = -1;
  int best_i = 0;
  for (int i = 0; i < bins; ++i) {
    w0 += hist[size_t(i)];
    sum0 += i * hist[size_t(i)];
    double w1 = total - w0;
    if (w0 == 0 || w1 == 0)
      continue;
    double m0 = sum0 / w0, m1 = (sum_all - sum0) / w1;
    double between = w0 * w1 * (m0 - m1) * (m0 - m1);
    if (between > best) {
      best = between;
      best_i = i;
    }
  }
  return (best_i + 1) * double(hi) / bins;
}

// Running maximum of line[0, n) over [i − r, i + r] (clamped) in O(n), whatever r: van Herk /
// Gil–Werman block prefix and suffix maxima. Values are ≥ 0, so zero padding acts as clamping.
void running_max(std::vector<float>& line, int r, std::vector<float>& prefix, std::vector<float>& suffix) {
  const int n = int(line.size()), w = 2 * r + 1, m = n + 2 * r;
  prefix.assign(size_t(m), 0.f);
  suffix.assign(size_t(m), 0.f);
  auto padded = [&](int j) { return j >= r && j < r + n ? line[size_t(j - r)] : 0.f; };
  for (int j = 0; j < m; ++j)
    prefix[size_t(j)] = j % w == 0 ? padded(j) : std::max(prefix[size_t(j - 1)], padded(j));
  for (int j = m - 1; j >= 0; --j)
    suffix[size_t(j)] = (j + 1) % w == 0 || j == m - 1 ? padded(j) : std::max(suffix[size_t(j + 1)], padded(j));
  for (int i = 0; i < n; ++i)
    line[size_t(i)] = std::max(suffix[size_t(i)], prefix[size_t(i + w - 1)]);
}

// Maximum over a (2rx+1) × (2ry+1) box around each pixel (separable; edges clamp to the image).
std::vector<float> local_max(const std::vector<float>& v, int nx, int ny, int rx, int ry) {
  std::vector<float> out = v;
  const int threads = default_thread_count();
  parallel_for(size_t(ny), threads, [&](size_t y0, size_t y1) {
    std::vector<float> line(static_cast<size_t>(nx)), prefix, suffix;
    for (size_t y = y0; y < y1; ++y) {
      std::copy_n(out.begin() + long(y * size_t(nx)), nx, line.begin());
      running_max(line, rx, prefix, suffix);
      std::copy(line.begin(), line.end(), out.begin() + long(y * size_t(nx)));
    }
  });
  parallel_for(size_t(nx), threads, [&](size_t x0, size_t x1) {
    std::vector<float> line(static_cast<size_t>(ny)), prefix, suffix;
    for (size_t x = x0; x < x1; ++x) {
      for (int y = 0; y < ny; ++y)
        line[size_t(y)] = out[size_t(y) * size_t(nx) + x];
      running_max(line, ry, prefix, suffix);
      for (int y = 0; y < ny; ++y)
        out[size_t(y) * size_t(nx) + x] = line[size_t(y)];
    }
  });
  return out;
}

// Connected regions (4-neighbour) of the pixels where `member` is true: pixel counts and
// whether each touches the image frame.
struct Region {
  size_t pixels = 0;
  bool touches_frame = false;
};

std::vector<Region> connected_regions(const std::vector<bool>& member, int nx, int ny) {
  std::vector<Region> regions;
  std::vector<bool> seen(member.size(), false);
  std::vector<size_t> stack;
  for (size_t start = 0; start < member.size(); ++start) {
    if (!member[start] || seen[start])
      continue;
    Region r;
    seen[start] = true;
    stack.push_back(start);
    while (!stack.empty()) {
      const size_t i = stack.back();
      stack.pop_back();
      ++r.pixels;
      const int x = int(i % size_t(nx)), y = int(i / size_t(nx));
      r.touches_frame = r.touches_frame || x == 0 || y == 0 || x == nx - 1 || y == ny - 1;
      const int dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
      for (int k = 0; k < 4; ++k) {
        const int u = x + dx[k], v = y + dy[k];
        if (u < 0 || v < 0 || u >= nx || v >= ny)
          continue;
        const size_t j = size_t(v) * size_t(nx) + size_t(u);
        if (member[j] && !seen[j]) {
          seen[j] = true;
          stack.push_back(j);
        }
      }
    }
    regions.push_back(r);
  }
  return regions;
}

// Closed regions minus enclosed holes of one phase, each larger than `min_pixels`: the
// Euler characteristic of its map inside the frame.
// Closed regions minus enclosed holes of one phase, each weighted by how far it is resolved: 0 up to
// 4 deficits (radius 2 σ_e), rising linearly to 1 at 6 (radius 2.45 σ_e). A hard cut made the reported area jump by
// a whole deficit when a region crossed the cut (seen: +25 % on a 6 nm² cap).
double resolved_regions_minus_holes(const std::vector<int>& label, int phase, int nx, int ny,
                                    double deficit_px) {
  std::vector<bool> inside(label.size()), outside(label.size());
  for (size_t i = 0; i < label.size(); ++i) {
    inside[i] = label[i] == phase;
    outside[i] = !inside[i];
  }
  auto weight = [&](const Region& r) {
    if (r.touches_frame)
      return 0.0;
    return std::clamp((double(r.pixels) / deficit_px - 4.0) / 2.0, 0.0, 1.0);
  };
  double count = 0;
  for (const Region& r : connected_regions(inside, nx, ny))
    count += weight(r);
  for (const Region& r : connected_regions(outside, nx, ny))
    count -= weight(r);
  return count;
}

}  // namespace

PhaseFilter parse_phase_filter(const std::string& text) {
  const std::string what = "--phase '" + text + "'";
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    fail(what, ": expected NAME=gx,gy;gx,gy (1/Å, y up) or NAME=peaks.csv[:spots], optionally @colour");
  PhaseFilter p;
  p.name = trim_field(text.substr(0, eq));
  std::string rest = text.substr(eq + 1);
  size_t at = rest.find('@');
  if (at != std::string::npos) {
    p.color = named_color(trim_field(rest.substr(at + 1)), what);
    rest = rest.substr(0, at);
  }
  rest = trim_field(rest);
  const auto [table, spots] = table_and_spots(rest, what);
  if (file_extension(table) == "csv") {
    for (const auto& [name, g] : read_peak_table(table, what, p.name, spots))
      p.reflections.push_back(g);
  } else {
    for (const std::string& pair : split_fields(rest, ';')) {
      std::vector<std::string> xy = split_fields(pair, ',');
      if (xy.size() != 2)
        fail(what, ": reflection '", pair, "' must be gx,gy in 1/Å");
      p.reflections.push_back({to_number(xy[0], what), to_number(xy[1], what)});
    }
  }
  if (p.reflections.empty())
    fail(what, ": no reflections given (no row of ", table, " matches)");
  for (const PhaseReflection& r : p.reflections)
    if (std::hypot(r.gx_invA, r.gy_invA) == 0)
      fail(what, ": reflection (0, 0) is the mean intensity, not a lattice fringe");
  return p;
}

std::vector<PhaseFilter> phases_from_peaks(const std::string& text) {
  if (text.find('=') != std::string::npos)
    return {parse_phase_filter(text)};
  // An `epitem index` spot table: one phase per name in its `phase` column, in order of appearance.
  const std::string what = "--phase-peaks '" + text + "'";
  std::vector<PhaseFilter> phases;
  for (const auto& [name, g] : read_peak_table(trim_field(text), what, "", {})) {
    if (name.empty())
      continue;  // unexplained spot
    auto it = std::find_if(phases.begin(), phases.end(), [&](const PhaseFilter& p) { return p.name == name; });
    if (it == phases.end()) {
      phases.push_back(PhaseFilter{name, {}, colors::blue});
      it = phases.end() - 1;
    }
    it->reflections.push_back(g);
  }
  if (phases.empty())
    fail(what, ": no spot has a phase; give an `epitem index` spot table (column phase) or NAME=peaks.csv");
  return phases;
}

double auto_mask_sigma_invA(const Image& frame, const std::vector<PhaseFilter>& phases) {
  std::vector<PhaseReflection> chosen;
  for (const PhaseFilter& p : phases)
    for (const PhaseReflection& r : p.reflections) {
      chosen.push_back(r);
      chosen.push_back({-r.gx_invA, -r.gy_invA});
    }
  // Neighbours: the origin, the chosen reflections, and every lattice peak of the frame that is
  // not a chosen reflection (a peak of either phase, or of one not mapped: NiFe {111} lies
  // ~0.08 1/Å from Fe3O4 {222}, which a mask sized on the chosen spots alone picks up).
  std::vector<PhaseReflection> neighbours = chosen;
  neighbours.push_back({0, 0});
  PeakSpec peak_spec;
  peak_spec.max_peaks = 80;
  const double dk = std::max(1.0 / (frame.nx * frame.pixel_size_A), 1.0 / (frame.ny * frame.pixel_y_A()));
  for (const Peak& peak : find_peaks(power_spectrum(frame), peak_spec)) {
    bool is_chosen = false;
    for (const PhaseReflection& c : chosen)
      is_chosen = is_chosen || std::hypot(c.gx_invA - peak.kx_invA, c.gy_invA - peak.ky_invA) <
                                   std::max(3 * dk, 0.03 * peak.g_invA);
    if (!is_chosen) {
      neighbours.push_back({peak.kx_invA, peak.ky_invA});
      neighbours.push_back({-peak.kx_invA, -peak.ky_invA});
    }
  }
  double separation = std::numeric_limits<double>::infinity();
  for (const PhaseReflection& c : chosen)
    for (const PhaseReflection& o : neighbours) {
      const double d = std::hypot(c.gx_invA - o.gx_invA, c.gy_invA - o.gy_invA);
      if (d > 0)
        separation = std::min(separation, d);
    }
  // At least one FFT pixel: a narrower mask has no support (then the fringe contrast tells
  // whether the map is usable).
  return std::max(separation / 4, dk);
}

PhaseMapFrame phase_map(const Image& frame, const std::vector<PhaseFilter>& phases, const PhaseMapSpec& spec) {
  if (phases.empty())
    fail("phase map: give at least one --phase");
  if (!(frame.pixel_size_A > 0))
    fail("phase map: the image has no pixel size; give --pixel-size (e.g. 0.1A)");
  require_finite(frame, "phase map input");
  const int nx = frame.nx, ny = frame.ny;
  const size_t n = size_t(nx) * size_t(ny);
  const double px = frame.pixel_size_A, py = frame.pixel_y_A();
  for (const PhaseFilter& p : phases)
    for (const PhaseReflection& r : p.reflections)
      if (std::abs(r.gx_invA) >= 0.5 / px || std::abs(r.gy_invA) >= 0.5 / py)
        fail("phase ", p.name, ": reflection (", r.gx_invA, ", ", r.gy_invA, ") 1/Å is beyond Nyquist ",
             0.5 / std::max(px, py), " 1/Å of the ", px, " Å pixels; check the units (1/Å, not 1/nm)");
  const double sigma = spec.mask_sigma_invA > 0 ? spec.mask_sigma_invA : auto_mask_sigma_invA(frame, phases);
  if (sigma < std::max(1.0 / (nx * px), 1.0 / (ny * py)))
    fail("phase map: mask sigma ", sigma, " 1/Å is below the FFT pixel ", std::max(1.0 / (nx * px), 1.0 / (ny * py)),
         " 1/Å; use a larger image or --mask-sigma");

  // A micrograph is not periodic: the filter works on the frame padded with its mean by 3
  // envelope σ on every side, or the FFT wraps a phase touching one frame edge onto the
  // opposite one (a 2 Å strip across a 2048² frame, +3 % area). Simulated images are periodic
  // and are filtered as they are.
  const double envelope_sigma_A = 1 / (2 * PI * sigma);
  const int mx = spec.periodic ? 0 : int(std::ceil(3 * envelope_sigma_A / px));
  const int my = spec.periodic ? 0 : int(std::ceil(3 * envelope_sigma_A / py));
  const int pnx = spec.periodic ? nx : next_fft_size(nx + 2 * mx);
  const int pny = spec.periodic ? ny : next_fft_size(ny + 2 * my);
  const size_t pn = size_t(pnx) * size_t(pny);
  const double dkx = 1.0 / (pnx * px), dky = 1.0 / (pny * py);
  const Fft2D fft(pnx, pny, default_thread_count(), FftRigor::Estimate);
  fft.prepare();
  AlignedVector<cfloat> spectrum(pn, cfloat(0.f, 0.f)), work(pn);
  double mean = 0;
  for (float v : frame.pixels)
    mean += v;
  mean /= double(n);
  auto padded_index = [&](int x, int y) { return size_t(y + my) * size_t(pnx) + size_t(x + mx); };
  for (int y = 0; y < ny; ++y)
    for (int x = 0; x < nx; ++x)
      spectrum[padded_index(x, y)] = cfloat(float(frame.at(x, y) - mean), 0.f);
  fft.forward(spectrum);

  PhaseMapFrame out;
  out.mask_sigma_invA = sigma;
  std::vector<std::vector<float>> presence;  // per phase: evidence / threshold (≥ 1 = present)
  for (const PhaseFilter& p : phases) {
    Image amp2(nx, ny), filt(nx, ny);
    for (const PhaseReflection& r : p.reflections) {
      // Row index grows downward, so y-up gy sits at row frequency −gy.
      const double gx = r.gx_invA, gy_row = -r.gy_invA;
      for (int iy = 0; iy < pny; ++iy) {
        double ky = (iy < (pny + 1) / 2 ? iy : iy - pny) * dky - gy_row;
        for (int ix = 0; ix < pnx; ++ix) {
          double kx = (ix < (pnx + 1) / 2 ? ix : ix - pnx) * dkx - gx;
          size_t i = size_t(iy) * size_t(pnx) + size_t(ix);
          work[i] = spectrum[i] * float(std::exp(-(kx * kx + ky * ky) / (2 * sigma * sigma)));
        }
      }
      fft.inverse(work, /*normalise=*/false);
      // One sideband a = (A/2)e^{iφ} of A cos φ: amplitude 2|a|; the ±g filtered image is
      // a + conj(a) = 2 Re a for a real input (the Friedel mate's mask gives conj(a)).
      const float norm = 1.f / float(pn);
      for (int y = 0; y < ny; ++y)
        for (int x = 0; x < nx; ++x) {
          const cfloat a = work[padded_index(x, y)] * norm;
          const size_t i = size_t(y) * size_t(nx) + size_t(x);
          amp2.pixels[i] += 4 * std::norm(a);
          filt.pixels[i] += 2 * a.real();
        }
    }
    for (float& v : amp2.pixels)
      v = std::sqrt(v);
    amp2.pixel_size_A = filt.pixel_size_A = px;
    amp2.pixel_size_y_A = filt.pixel_size_y_A = frame.pixel_size_y_A;
    // Per-pixel threshold map: a fixed fraction of the 99th percentile, or half the local
    // plateau. The Gaussian-masked envelope of fringes that end at a sharp edge falls to 50 %
    // of its plateau exactly at the edge (a step convolved with a symmetric kernel), so half
    // the local plateau (the largest amplitude within 3 envelope σ = 3/(2π σ_mask)) puts each
    // boundary where its fringes end even when the plateau varies with thickness or
    // orientation. Pixels whose plateau is below Otsu's threshold (background vs phase
    // amplitudes) are background.
    double t = 0;
    std::vector<float> local(n);
    if (spec.threshold_fraction > 0) {
      std::vector<float> sorted = amp2.pixels;
      size_t k = size_t(0.99 * double(n - 1));
      std::nth_element(sorted.begin(), sorted.begin() + long(k), sorted.end());
      t = spec.threshold_fraction * sorted[k];
      std::fill(local.begin(), local.end(), float(t));
    } else {
      t = otsu_threshold(amp2.pixels);
      const int rx = std::max(1, int(std::lround(3 / (2 * PI * sigma * px))));
      const int ry = std::max(1, int(std::lround(3 / (2 * PI * sigma * py))));
      local = local_max(amp2.pixels, nx, ny, rx, ry);
      for (float& v : local)
        v = v >= t ? 0.5f * v : std::numeric_limits<float>::infinity();
    }
    std::vector<float> ratio(n);
    for (size_t i = 0; i < n; ++i)
      ratio[i] = std::isfinite(local[i]) ? amp2.pixels[i] / local[i] : 0.f;
    out.threshold.push_back(t);
    presence.push_back(std::move(ratio));
    out.amplitude.push_back(std::move(amp2));
    out.filtered.push_back(std::move(filt));
  }
  const size_t np = phases.size();
  out.label.assign(n, -1);
  std::vector<double> count(np, 0), sx(np, 0), sy(np, 0);
  for (size_t i = 0; i < n; ++i) {
    double best = 1.0;
    for (size_t p = 0; p < np; ++p) {
      const double ratio = presence[p][i];
      if (ratio >= best) {
        best = ratio;
        out.label[i] = int(p);
      }
    }
    if (out.label[i] >= 0) {
      size_t p = size_t(out.label[i]);
      count[p] += 1;
      sx[p] += double(i % size_t(nx)) + 0.5;
      sy[p] += double(i / size_t(nx)) + 0.5;
    }
  }
  // Fringe contrast: median amplitude of each phase's own region over the image's standard
  // deviation (the spectrum's zero frequency removed: `spectrum` holds the mean-free image).
  double variance = 0;
  for (float v : frame.pixels)
    variance += (v - mean) * (v - mean);
  const double image_sd = std::sqrt(variance / double(n));
  std::vector<std::vector<float>> own(np);
  for (size_t i = 0; i < n; ++i)
    if (out.label[i] >= 0)
      own[size_t(out.label[i])].push_back(out.amplitude[size_t(out.label[i])].pixels[i]);
  const double px_nm = px / 10, py_nm = py / 10;
  for (size_t p = 0; p < np; ++p) {
    std::vector<float>& v = own[p];
    double contrast = std::numeric_limits<double>::quiet_NaN();
    if (!v.empty() && image_sd > 0) {
      std::nth_element(v.begin(), v.begin() + long(v.size() / 2), v.end());
      contrast = v[v.size() / 2] / image_sd;
    }
    out.fringe_contrast.push_back(contrast);
    // Curvature correction: the half-plateau contour of a region smoothed by the envelope
    // (Gaussian, σ_e = 1/(2π σ_mask)) lies inside the true boundary by κ σ_e²/2 (curve-
    // shortening flow), and over a closed boundary the curvature integrates to 2π (Gauss–
    // Bonnet): each closed region reads π σ_e² small and each enclosed hole π σ_e² large,
    // whatever their shape. Applied to regions and holes inside the frame that measure
    // ≥ 4π σ_e² (radius ≥ 2 σ_e; smaller ones are below the map's resolution), phased in
    // linearly up to 6π σ_e², so a region crossing the cut does not jump by a whole deficit.
    const double deficit_px = PI * envelope_sigma_A * envelope_sigma_A / (px * py);
    const double euler = resolved_regions_minus_holes(out.label, int(p), nx, ny, deficit_px);
    out.region_area_nm2.push_back(count[p] * px_nm * py_nm);
    out.area_nm2.push_back((count[p] + euler * deficit_px) * px_nm * py_nm);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    out.centroid_x_nm.push_back(count[p] > 0 ? sx[p] / count[p] * px_nm : nan);
    out.centroid_y_nm.push_back(count[p] > 0 ? sy[p] / count[p] * py_nm : nan);
  }
  return out;
}

Canvas phase_overlay(const Image& frame, const PhaseMapFrame& map, const std::vector<PhaseFilter>& phases) {
  Canvas c = canvas_from_image(frame);
  const int nx = frame.nx, ny = frame.ny;
  auto label = [&](int x, int y) { return map.label[size_t(y) * size_t(nx) + size_t(x)]; };
  for (int y = 0; y < ny; ++y)
    for (int x = 0; x < nx; ++x) {
      int l = label(x, y);
      if (l < 0)
        continue;
      const Rgb col = phases[size_t(l)].color;
      bool edge = (x > 0 && label(x - 1, y) != l) || (x + 1 < nx && label(x + 1, y) != l) ||
                  (y > 0 && label(x, y - 1) != l) || (y + 1 < ny && label(x, y + 1) != l);
      if (edge)
        c.set(x, y, col);
      else
        c.blend(x, y, col, 0.45);
    }
  return c;
}

}  // namespace epitem
