#include "epitem/multislice.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "epitem/band_fft.hpp"
#include "epitem/element.hpp"
#include "epitem/error.hpp"
#include "epitem/fft.hpp"
#include "epitem/potential.hpp"
#include "epitem/units.hpp"

namespace epitem {

namespace {

constexpr double Z_TOL_A = 1e-6;            // boundary rule tolerance (docs/formulas.md §4)
constexpr double MAX_SAMPLING_A = 0.5;      // coarser grids cannot carry atomic potentials
constexpr double KEY_RESOLUTION_A = 1e-5;   // positions equal to this are the same slice content
constexpr double PROCESS_BASELINE_BYTES = 12e6;  // code, libraries, FFTW plans, small vectors

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}


void check_model(const AtomicModel& model) {
  if (model.atoms.empty())
    fail("multislice: the model has no atoms");
  const Mat3& c = model.cell_A;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      if (i != j && std::abs(c(i, j)) > 1e-6 * std::max(1.0, c.col(j).norm()))
        fail("multislice: the model cell must be orthorhombic with a ∥ x, b ∥ y, c ∥ z (beam); "
             "cell column ", j, " has component ", c(i, j), " Å along axis ", i,
             " — orient the crystal with --zone or re-export the model");
  for (int i = 0; i < 3; ++i)
    if (!(c(i, i) > 0))
      fail("multislice: cell length ", i, " must be > 0 Å, got ", c(i, i));
  const double lz = c(2, 2);
  for (std::size_t k = 0; k < model.atoms.size(); ++k) {
    const Atom& a = model.atoms[k];
    if (a.Z < 1 || a.Z > 103)
      fail("multislice: atom ", k, " has atomic number ", a.Z, " (valid 1-103)");
    if (!(a.pos_A.z() >= -Z_TOL_A && a.pos_A.z() <= lz + Z_TOL_A))
      fail("multislice: atom ", k, " (", element_symbol(a.Z), ") at z = ", a.pos_A.z(),
           " Å is outside the box along the beam [0, ", lz, "] Å; enlarge the cell's c or move the atoms");
    if (!std::isfinite(a.pos_A.x()) || !std::isfinite(a.pos_A.y()))
      fail("multislice: atom ", k, " has a non-finite position");
  }
}

int slice_of(double z, const Slicing& s) {
  const int n = s.n_slices();
  const double dz = s.boundaries_A[1] - s.boundaries_A[0];
  int k = int(std::floor((z + Z_TOL_A) / dz));
  // Non-uniform last slice: the boundaries are k·dz for k < n, so the formula still holds.
  return std::clamp(k, 0, n - 1);
}

struct SliceContent {
  std::vector<std::vector<SliceAtom>> atoms;  // per slice
};

double wrap(double x, double l) {
  x -= std::floor(x / l) * l;
  return x >= l - KEY_RESOLUTION_A ? x - l : x;
}

SliceContent distribute(const AtomicModel& model, const Slicing& slicing, int config, const MultisliceSpec& spec) {
  SliceContent sc;
  sc.atoms.resize(std::size_t(slicing.n_slices()));
  const Vec3 box = model.box_lengths_A();
  std::mt19937_64 rng;
  if (config >= 0) {
    std::seed_seq seq{std::uint32_t(spec.seed), std::uint32_t(spec.seed >> 32), std::uint32_t(config)};
    rng.seed(seq);
  }
  std::normal_distribution<double> normal(0.0, 1.0);
  for (const Atom& a : model.atoms) {
    Vec3 p = a.pos_A;
    if (config >= 0) {
      const double u = frozen_phonon_u_iso_A2(a);
      const double s = std::sqrt(u);
      for (int i = 0; i < 3; ++i)
        p[i] += s * normal(rng);
    }
    sc.atoms[std::size_t(slice_of(p.z(), slicing))].push_back(
        SliceAtom{a.Z, wrap(p.x(), box.x()), wrap(p.y(), box.y()), a.occupancy});
  }
  return sc;
}

// Canonical key of a slice's content (species, weights, lateral positions): equal keys give
// identical transmission functions.
std::vector<long long> slice_key(const std::vector<SliceAtom>& atoms) {
  std::vector<std::array<long long, 4>> items;
  items.reserve(atoms.size());
  for (const SliceAtom& a : atoms)
    items.push_back({a.Z, std::llround(a.x_A / KEY_RESOLUTION_A), std::llround(a.y_A / KEY_RESOLUTION_A),
                     std::llround(a.weight * 1e6)});
  std::sort(items.begin(), items.end());
  std::vector<long long> key;
  key.reserve(items.size() * 4);
  for (const auto& it : items)
    key.insert(key.end(), it.begin(), it.end());
  return key;
}

// unique_id[slice] (−1 for empty slices) and how often each id occurs.
void unique_slices(const SliceContent& sc, std::vector<int>& unique_id, std::vector<int>& count) {
  std::map<std::vector<long long>, int> ids;
  unique_id.assign(sc.atoms.size(), -1);
  count.clear();
  for (std::size_t s = 0; s < sc.atoms.size(); ++s) {
    if (sc.atoms[s].empty())
      continue;
    auto [it, inserted] = ids.emplace(slice_key(sc.atoms[s]), int(count.size()));
    if (inserted)
      count.push_back(0);
    unique_id[s] = it->second;
    ++count[std::size_t(it->second)];
  }
}

// Slice counts after which exit waves are saved: one per series value, then the full stack.
std::vector<int> save_points(const Slicing& s, const MultisliceSpec& spec) {
  std::vector<int> points;
  const double total = s.boundaries_A.back();
  for (double t : spec.thickness_series_A) {
    if (t > total + 0.5 * s.thickness_A(s.n_slices() - 1))
      fail("thickness_series_A (--thickness-series): ", t, " Å exceeds the model thickness ", total,
           " Å; give values ≤ the model's c length");
    int best = 1;
    for (int k = 1; k <= s.n_slices(); ++k)
      if (std::abs(s.boundaries_A[k] - t) < std::abs(s.boundaries_A[best] - t))
        best = k;
    points.push_back(best);
  }
  points.push_back(s.n_slices());
  return points;
}

std::vector<int> species_of(const AtomicModel& model) {
  std::vector<int> z;
  for (const Atom& a : model.atoms)
    z.push_back(a.Z);
  std::sort(z.begin(), z.end());
  z.erase(std::unique(z.begin(), z.end()), z.end());
  return z;
}

// Fresnel propagator of one slice thickness, separable: P = px[ix]·py[iy] inside the band
// limit (docs/formulas.md §5), with the inverse FFT's 1/N folded into py.
struct Propagator {
  double dz_A = 0;
  std::vector<cfloat> px, py;
};

Propagator make_propagator(const Grid& g, double dz, double lambda, double tan_x, double tan_y) {
  Propagator p;
  p.dz_A = dz;
  p.px.resize(std::size_t(g.nx));
  p.py.resize(std::size_t(g.ny));
  for (int ix = 0; ix < g.nx; ++ix) {
    const double k = g.kx_invA(ix);
    p.px[ix] = cfloat(std::polar(1.0, -PI * lambda * dz * k * k - 2 * PI * dz * k * tan_x));
  }
  const double inv_n = 1.0 / double(g.size());
  for (int iy = 0; iy < g.ny; ++iy) {
    const double k = g.ky_invA(iy);
    p.py[iy] = cfloat(std::polar(inv_n, -PI * lambda * dz * k * k - 2 * PI * dz * k * tan_y));
  }
  return p;
}

// Plain complex product: std::complex's operator* checks for NaN/inf (C99 Annex G, __mulsc3),
// which costs more than the FFT's own butterflies in these streaming loops.
inline cfloat cmul(cfloat a, cfloat b) {
  return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}

// ψ ← P·ψ in Fourier space, zero outside the band limit (rows split over threads).
void apply_propagator(cfloat* psi, const Grid& g, const Propagator& p, const BandRows& band, int threads) {
  const std::size_t nx = std::size_t(g.nx);
  parallel_for(std::size_t(g.ny), threads, [&](std::size_t y0, std::size_t y1) {
    for (std::size_t iy = y0; iy < y1; ++iy) {
      cfloat* row = psi + iy * nx;
      const cfloat py = p.py[iy];
      const std::size_t pe = std::size_t(band.pos_end[iy]), nb = std::size_t(band.neg_begin[iy]);
      for (std::size_t ix = 0; ix < pe; ++ix)
        row[ix] = cmul(row[ix], cmul(py, p.px[ix]));
      std::fill(row + pe, row + nb, cfloat(0.f, 0.f));
      for (std::size_t ix = nb; ix < nx; ++ix)
        row[ix] = cmul(row[ix], cmul(py, p.px[ix]));
    }
  });
}

}  // namespace

// Room-temperature U_iso [Å²] used for frozen phonons when an atom has none: magnetite
// (Fleet 1981, Acta Cryst. B37, 917: Fe B ≈ 0.45, O B ≈ 0.6 Å²), fcc Ni/Fe-Ni (B ≈ 0.4 Å²);
// anything else B = 0.5 Å².
double frozen_phonon_u_iso_A2(const Atom& atom) {
  if (atom.u_iso_A2 > 0)
    return atom.u_iso_A2;
  switch (atom.Z) {
    case 8: return 0.0076;
    case 26: return 0.0057;
    case 28: return 0.0050;
    default: return 0.0063;
  }
}

void fresnel_propagate(Wave& wave, double dz_A, double tilt_x_mrad, double tilt_y_mrad, int threads) {
  const Grid& g = wave.grid;
  if (g.size() == 0 || wave.psi.size() != g.size())
    fail("fresnel_propagate: the wave has ", wave.psi.size(), " values for a ", g.nx, " x ", g.ny, " grid");
  threads = threads > 0 ? threads : default_thread_count();
  const Fft2D fft(g.nx, g.ny, threads);
  const Propagator p = make_propagator(g, dz_A, electron_wavelength_A(wave.energy_eV),
                                       std::tan(tilt_x_mrad * units::mrad_to_rad),
                                       std::tan(tilt_y_mrad * units::mrad_to_rad));
  fft.forward(wave.psi.data());
  apply_propagator(wave.psi.data(), g, p, make_band_rows(g), threads);
  fft.inverse(wave.psi.data(), false);
}

void MultisliceSpec::validate() const {
  if (!(energy_eV >= 10e3 && energy_eV <= 3e6))
    fail("energy_eV (--energy) must be within 10 keV … 3 MeV, got ", energy_eV, " eV");
  if (nx < 0 || ny < 0 || nx > 32768 || ny > 32768)
    fail("nx/ny (--gpts) must be within 8 … 32768, got ", nx, " x ", ny);
  if ((nx > 0 && nx < 8) || (ny > 0 && ny < 8))
    fail("nx/ny (--gpts) must be within 8 … 32768, got ", nx, " x ", ny);
  if (nx == 0 && !(sampling_A > 0))
    fail("give the grid: nx/ny (--gpts N[xM]) or sampling_A (--sampling) > 0 Å");
  if (sampling_A < 0 || sampling_A > MAX_SAMPLING_A)
    fail("sampling_A (--sampling) must be within 0 … ", MAX_SAMPLING_A, " Å, got ", sampling_A, " Å");
  if (n_slices < 0 || n_slices > 1000000)
    fail("n_slices (--slices) must be within 0 … 1e6, got ", n_slices);
  if (n_slices == 0 && !(slice_thickness_A >= 0.01 && slice_thickness_A <= 1000))
    fail("slice_thickness_A (--slice) must be within 0.01 … 1000 Å, got ", slice_thickness_A, " Å");
  if (phonon_configs < 0 || phonon_configs > 100000)
    fail("phonon_configs (--phonons) must be within 0 … 100000, got ", phonon_configs);
  if (config_stride < 1 || config_offset < 0 || config_offset >= config_stride)
    fail("config_offset must be within 0 … config_stride-1 (config_stride >= 1), got ", config_offset,
         " of ", config_stride);
  for (std::size_t i = 0; i < thickness_series_A.size(); ++i) {
    if (!(thickness_series_A[i] > 0))
      fail("thickness_series_A (--thickness-series) values must be > 0 Å, got ", thickness_series_A[i]);
    if (i > 0 && !(thickness_series_A[i] > thickness_series_A[i - 1]))
      fail("thickness_series_A (--thickness-series) must increase, got ", thickness_series_A[i - 1], " then ",
           thickness_series_A[i]);
  }
  if (!(std::abs(beam_tilt_x_mrad) <= 200 && std::abs(beam_tilt_y_mrad) <= 200))
    fail("beam tilt (--tilt) must be within ±200 mrad, got ", beam_tilt_x_mrad, ", ", beam_tilt_y_mrad, " mrad");
  if (threads < 0 || threads > 1024)
    fail("threads (--threads) must be within 0 … 1024, got ", threads);
}

Grid multislice_grid(const AtomicModel& model, const MultisliceSpec& spec) {
  spec.validate();
  const Vec3 box = model.box_lengths_A();
  Grid g;
  g.extent_x_A = box.x();
  g.extent_y_A = box.y();
  if (spec.nx > 0) {
    g.nx = spec.nx;
    g.ny = spec.ny > 0 ? spec.ny : spec.nx;
  } else {
    g.nx = next_fft_size(int(std::ceil(box.x() / spec.sampling_A - 1e-9)));
    g.ny = next_fft_size(int(std::ceil(box.y() / spec.sampling_A - 1e-9)));
  }
  const double s = std::max(g.sampling_x_A(), g.sampling_y_A());
  if (s > MAX_SAMPLING_A)
    fail("grid ", g.nx, " x ", g.ny, " over ", box.x(), " x ", box.y(), " Å gives a sampling of ", s,
         " Å, coarser than ", MAX_SAMPLING_A, " Å: use --gpts ≥ ",
         next_fft_size(int(std::ceil(std::max(box.x(), box.y()) / MAX_SAMPLING_A))), " or --sampling ≤ 0.5A");
  return g;
}

Slicing multislice_slicing(const AtomicModel& model, const MultisliceSpec& spec) {
  spec.validate();
  const double lz = model.cell_A(2, 2);
  if (!(lz > 0))
    fail("multislice: the model's c length (thickness) must be > 0 Å, got ", lz);
  Slicing s;
  int n;
  double dz;
  if (spec.n_slices > 0) {
    n = spec.n_slices;
    dz = lz / n;
  } else {
    // A thickness that divides the model to 1e-3 of a slice is taken as exact (rounded input).
    const double ratio = lz / spec.slice_thickness_A;
    const double r = std::round(ratio);
    if (r >= 1 && std::abs(ratio - r) < 1e-3) {
      n = int(r);
      dz = lz / n;
    } else {
      n = std::max(1, int(std::ceil(ratio)));
      dz = spec.slice_thickness_A;
    }
  }
  for (int k = 0; k < n; ++k)
    s.boundaries_A.push_back(k * dz);
  s.boundaries_A.push_back(lz);
  s.atoms_per_slice.assign(std::size_t(n), 0);
  for (const Atom& a : model.atoms)
    ++s.atoms_per_slice[std::size_t(slice_of(a.pos_A.z(), s))];
  return s;
}

double available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  double value;
  while (in >> key >> value >> unit)
    if (key == "MemAvailable:")
      return value * 1024.0;
  return 0;
}

double peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) * 1024.0;
}

double estimate_multislice_memory_bytes(const AtomicModel& model, const MultisliceSpec& spec) {
  check_model(model);
  const Grid g = multislice_grid(model, spec);
  const Slicing s = multislice_slicing(model, spec);
  const double wave = double(g.size()) * sizeof(cfloat);
  double cached = 0;
  bool scratch = true;
  if (spec.phonon_configs == 0) {
    std::vector<int> id, count;
    unique_slices(distribute(model, s, -1, spec), id, count);
    scratch = false;
    for (int c : count) {
      if (c > 1)
        cached += 1;
      else
        scratch = true;
    }
  }
  const double atoms = double(model.atoms.size()) * (sizeof(SliceAtom) + 64.0);
  return PROCESS_BASELINE_BYTES + wave * (1 + cached + (scratch ? 1 : 0)) +
         SlicePotential::memory_bytes(g, int(species_of(model).size())) + atoms;
}

Json MultisliceReport::to_json() const {
  Json j = Json::object();
  j.set("grid_nx", grid.nx);
  j.set("grid_ny", grid.ny);
  j.set("extent_x_A", grid.extent_x_A);
  j.set("extent_y_A", grid.extent_y_A);
  j.set("sampling_x_A", grid.sampling_x_A());
  j.set("sampling_y_A", grid.sampling_y_A());
  j.set("energy_eV", energy_eV);
  j.set("wavelength_A", wavelength_A);
  j.set("sigma_rad_per_VA", sigma_rad_per_VA);
  j.set("n_slices", slicing.n_slices());
  j.set("slice_thickness_A", slicing.n_slices() > 0 ? slicing.thickness_A(0) : 0.0);
  j.set("last_slice_thickness_A", slicing.n_slices() > 0 ? slicing.thickness_A(slicing.n_slices() - 1) : 0.0);
  j.set("slice_rule", "atom in slice k if k*dz - 1e-6 A <= z < (k+1)*dz - 1e-6 A (boundary atoms start a slice)");
  j.set("atoms_per_slice", slicing.atoms_per_slice);
  j.set("unique_slices", unique_slices);
  j.set("transmission_functions_computed", transmission_functions_computed);
  j.set("phonon_configs", phonon_configs);
  j.set("saved_thicknesses_A", saved_thicknesses_A);
  j.set("band_limit_invA", band_limit_invA);
  j.set("band_limit_mrad", band_limit_mrad);
  j.set("band_limit_loss", band_limit_loss);
  j.set("potential_seconds", potential_seconds);
  j.set("propagation_seconds", propagation_seconds);
  j.set("callback_seconds", callback_seconds);
  j.set("total_seconds", total_seconds);
  j.set("memory_estimate_bytes", memory_estimate_bytes);
  j.set("peak_rss_bytes", peak_rss_bytes);
  j.set("threads", threads);
  return j;
}

void prepare_multislice_plans(const AtomicModel& model, const MultisliceSpec& spec) {
  const Grid grid = multislice_grid(model, spec);
  const int threads = spec.threads > 0 ? spec.threads : default_thread_count();
  const BandFft step(grid, make_band_rows(grid), threads);
  Fft2D(grid.nx, grid.ny, threads).prepare();
  const SlicePotential potential(grid, species_of(model), spec.table, threads);  // its plans
}

MultisliceReport run_multislice(const AtomicModel& model, const MultisliceSpec& spec,
                                const ExitWaveFn& on_exit_wave, ProgressFn progress, WarnFn warn) {
  const auto t_start = Clock::now();
  check_model(model);
  MultisliceReport rep;
  const Grid grid = multislice_grid(model, spec);
  rep.grid = grid;
  rep.slicing = multislice_slicing(model, spec);
  const Slicing& slicing = rep.slicing;
  const int n_slices = slicing.n_slices();
  const std::vector<int> saves = save_points(slicing, spec);
  rep.threads = spec.threads > 0 ? spec.threads : default_thread_count();
  rep.energy_eV = spec.energy_eV;
  rep.wavelength_A = electron_wavelength_A(spec.energy_eV);
  rep.sigma_rad_per_VA = interaction_sigma_rad_per_VA(spec.energy_eV);
  rep.band_limit_invA = grid.band_limit_invA();
  rep.band_limit_mrad = rep.band_limit_invA * rep.wavelength_A * 1e3;
  rep.phonon_configs = std::max(1, spec.phonon_configs);
  for (int p : saves)
    rep.saved_thicknesses_A.push_back(slicing.boundaries_A[std::size_t(p)]);

  const double tilt_mrad = std::hypot(spec.beam_tilt_x_mrad, spec.beam_tilt_y_mrad);
  if (tilt_mrad >= rep.band_limit_mrad)
    fail("beam tilt ", tilt_mrad, " mrad is outside the band limit ", rep.band_limit_mrad,
         " mrad of this grid: sample finer (--gpts/--sampling) or tilt less");
  rep.memory_estimate_bytes = estimate_multislice_memory_bytes(model, spec);
  const double avail = available_memory_bytes();
  if (avail > 0 && rep.memory_estimate_bytes > avail)
    fail("multislice needs about ", rep.memory_estimate_bytes / 1073741824.0, " GiB for a ", grid.nx, " x ",
         grid.ny, " grid but only ", avail / 1073741824.0,
         " GiB is available (MemAvailable): use fewer grid points (--gpts/--sampling)");
  if (warn && grid.sampling_x_A() > 0.2)
    warn("sampling " + std::to_string(grid.sampling_x_A()) + " Å: the band limit " +
         std::to_string(rep.band_limit_mrad) + " mrad cuts high-angle scattering; 0.05-0.1 Å is usual for HRTEM");

  const int threads = rep.threads;
  auto runs_here = [&](int config) {
    return config % std::max(1, spec.config_stride) == spec.config_offset;
  };
  int configs_here = 0;
  for (int config = 0; config < rep.phonon_configs; ++config)
    configs_here += runs_here(config);
  const std::size_t total_steps = std::size_t(configs_here) * std::size_t(n_slices);
  if (progress)  // FFTW_MEASURE planning without saved wisdom takes seconds on big grids
    progress(0, total_steps, "FFT planning");
  const BandRows band = make_band_rows(grid);
  const BandFft fft(grid, band, threads);
  SlicePotential potential(grid, species_of(model), spec.table, threads);
  potential.set_direct_summation(spec.direct_structure_factors);
  const double tan_x = std::tan(spec.beam_tilt_x_mrad * units::mrad_to_rad);
  const double tan_y = std::tan(spec.beam_tilt_y_mrad * units::mrad_to_rad);
  std::vector<Propagator> props;  // one per distinct slice thickness
  auto propagator_for = [&](double dz) -> const Propagator& {
    for (const Propagator& p : props)
      if (std::abs(p.dz_A - dz) < 1e-9)
        return p;
    props.push_back(make_propagator(grid, dz, rep.wavelength_A, tan_x, tan_y));
    return props.back();
  };
  for (int k = 0; k < n_slices; ++k)
    propagator_for(slicing.thickness_A(k));

  Wave wave(grid, spec.energy_eV);
  AlignedVector<cfloat> scratch;
  std::vector<AlignedVector<cfloat>> cache;
  double loss = 0;

  rep.band_limit_loss_by_config.assign(std::size_t(rep.phonon_configs), std::nan(""));
  std::size_t steps_done = 0;
  for (int config = 0; config < rep.phonon_configs; ++config) {
    if (!runs_here(config))
      continue;
    const SliceContent content = distribute(model, slicing, spec.phonon_configs > 0 ? config : -1, spec);
    std::vector<int> id, count;
    if (spec.phonon_configs == 0) {
      unique_slices(content, id, count);
      rep.unique_slices = int(count.size());
      cache.resize(count.size());
    } else {
      id.assign(std::size_t(n_slices), -1);
    }
    std::fill(wave.psi.begin(), wave.psi.end(), cfloat(1.f, 0.f));
    std::size_t next_save = 0;
    for (int k = 0; k < n_slices; ++k) {
      const cfloat* t = nullptr;
      if (!content.atoms[std::size_t(k)].empty()) {
        const auto t0 = Clock::now();
        const int u = id[std::size_t(k)];
        if (u >= 0 && count[std::size_t(u)] > 1) {
          AlignedVector<cfloat>& c = cache[std::size_t(u)];
          if (c.empty()) {
            c.resize(grid.size());
            potential.transmission(content.atoms[std::size_t(k)], rep.sigma_rad_per_VA, c.data());
            ++rep.transmission_functions_computed;
          }
          t = c.data();
        } else {
          if (scratch.empty())
            scratch.resize(grid.size());
          potential.transmission(content.atoms[std::size_t(k)], rep.sigma_rad_per_VA, scratch.data());
          ++rep.transmission_functions_computed;
          t = scratch.data();
        }
        rep.potential_seconds += seconds_since(t0);
      }
      const auto t1 = Clock::now();
      const Propagator& p = propagator_for(slicing.thickness_A(k));
      cfloat* psi = wave.psi.data();
      if (t)
        parallel_for(grid.size(), threads, [&](std::size_t b, std::size_t e) {
          for (std::size_t i = b; i < e; ++i)
            psi[i] = cmul(psi[i], t[i]);
        });
      fft.forward(psi);
      apply_propagator(psi, grid, p, band, threads);
      fft.inverse(psi);
      rep.propagation_seconds += seconds_since(t1);
      if (progress)
        progress(++steps_done, total_steps, "multislice");
      while (next_save < saves.size() && saves[next_save] == k + 1) {
        const auto t2 = Clock::now();
        if (on_exit_wave)
          on_exit_wave(config, int(next_save), slicing.boundaries_A[std::size_t(k + 1)], wave);
        rep.callback_seconds += seconds_since(t2);
        ++next_save;
      }
    }
    rep.band_limit_loss_by_config[std::size_t(config)] = 1.0 - wave.mean_intensity();
    loss += rep.band_limit_loss_by_config[std::size_t(config)];
  }
  rep.band_limit_loss = loss / std::max(1, configs_here);
  rep.peak_rss_bytes = peak_rss_bytes();
  rep.total_seconds = seconds_since(t_start);
  return rep;
}

}  // namespace epitem
