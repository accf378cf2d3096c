#include "epitem/saed_multislice.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "epitem/diffraction_pattern.hpp"
#include "epitem/error.hpp"
#include "epitem/parallel.hpp"
#include "epitem/rank_collection.hpp"

namespace epitem {

namespace {

// Spots whose g·L is this close to an integer sit on a pixel (round-off of the lab-frame g).
constexpr double ON_GRID_TOL = 1e-6;

std::string number(const char* format, double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace

AtomicModel saed_multislice_model(const SaedPhase& phase, const Vec3& x_uvw, const SaedMultisliceSpec& spec,
                                  std::array<int, 3>* repeats_used) {
  if (!(spec.thickness_A > 0))
    fail("thickness (--thickness) must be > 0 Å, got ", spec.thickness_A);
  const Mat3 r = zone_rotation(phase.crystal, phase.zone_uvw, x_uvw);
  if ((r - phase.orientation).cwiseAbs().maxCoeff() > 1e-9)
    fail("saed --method multislice: phase ", phase.name,
         " is rotated away from the orientation of `multislice --zone` (drop --rotate / the preset)");
  const Vec3 cell = orient_crystal(phase.crystal, phase.zone_uvw, x_uvw, {1, 1, 1}).box_lengths_A();
  std::array<int, 3> n{spec.lateral_repeats[0], spec.lateral_repeats[1],
                       std::max(1, int(std::lround(spec.thickness_A / cell.z())))};
  for (int i = 0; i < 2; ++i) {
    if (n[i] < 0 || n[i] > 1000)
      fail("lateral repeats (--repeat) must be within 1 … 1000, got ", n[i]);
    if (n[i] == 0)  // auto
      n[i] = spec.multislice.phonon_configs > 0
                 ? std::max(1, int(std::ceil(spec.phonon_box_min_A / cell[i] - 1e-9)))
                 : 1;
  }
  if (n[2] > 100000)
    fail("thickness ", spec.thickness_A, " Å is ", n[2], " periods of ", cell.z(), " Å: too many (≤ 100000)");
  if (repeats_used)
    *repeats_used = n;
  return orient_crystal(phase.crystal, phase.zone_uvw, x_uvw, n);
}

std::vector<double> saed_thickness_series_A(const AtomicModel& model, int periods, const SaedMultisliceSpec& spec) {
  std::vector<double> series;
  if (spec.thickness_min_A <= 0)
    return series;
  const double period = model.box_lengths_A().z() / periods;
  for (int k = std::max(1, int(std::lround(spec.thickness_min_A / period))); k < periods; ++k)
    series.push_back(k * period);
  return series;
}

MeanDiffraction mean_diffraction(const AtomicModel& model, const MultisliceSpec& spec_in, ProgressFn progress,
                                 WarnFn warn) {
  MultisliceSpec spec = spec_in;
  spec.config_stride = parallel::size();
  spec.config_offset = parallel::rank();
  spec.validate();
  MeanDiffraction out;
  out.grid = multislice_grid(model, spec);
  const Grid grid = out.grid;
  DiffractionSum sum(grid, spec.threads);
  const bool split = parallel::size() > 1;
  // Rank 0 measures the FFT plans and saves them as wisdom, which the other ranks load: the same
  // FFT algorithms everywhere, so the same rounding (docs/mpi.md).
  parallel::collective([&] {
    if (split && parallel::is_root()) {
      prepare_multislice_plans(model, spec);
      sum.pattern_of(Wave(grid, spec.energy_eV));  // the pattern's own (out-of-place) FFT plan
    }
  });
  // Each configuration's patterns (one per saved thickness) are first added into its own sum,
  // which then goes into the total: the same additions in one process and under mpirun.
  const int n_thick = int(spec.thickness_series_A.size()) + 1;
  std::map<int, std::vector<double>> mine;  // this rank's per-configuration sums (mpirun)
  std::vector<double> config_sum;
  parallel::collective([&] {
    out.report = run_multislice(
        model, spec,
        [&](int config, int ti, double, const Wave& exit) {
          const std::vector<double> p = sum.pattern_of(exit);
          config_sum.resize(p.size(), 0.0);
          for (std::size_t i = 0; i < p.size(); ++i)
            config_sum[i] += p[i];
          if (ti + 1 < n_thick)
            return;  // the full thickness comes last
          if (split)
            mine[config] = std::move(config_sum);
          else
            sum.add(config_sum);
          config_sum.clear();
        },
        progress, warn);
  });
  MultisliceReport& rep = out.report;
  if (split) {
    collect_configurations(
        rep,
        [&](int config, parallel::ByteWriter& w) {
          w.put_values(mine.at(config));
          mine.erase(config);
        },
        [&](int config, parallel::ByteReader& r) {
          std::vector<double> p;
          r.get_values(p);
          if (p.size() != grid.size())
            fail("diffraction pattern of configuration ", config, ": ", p.size(), " values received");
          sum.add(p);
        });
  }
  if (parallel::is_root()) {
    out.mean = sum.sum();
    for (double& v : out.mean)
      v /= double(rep.phonon_configs) * n_thick;
  }
  return out;
}

SaedPattern kinematic_thickness_average(const SaedPattern& pattern, const std::vector<double>& thicknesses_A,
                                        RelrodShape shape) {
  if (thicknesses_A.empty())
    fail("kinematic_thickness_average: no thicknesses");
  SaedPattern out = pattern;
  std::vector<double> mean(pattern.spots.size(), 0.0);
  double strongest = 0;
  for (std::size_t i = 0; i < pattern.spots.size(); ++i) {
    const SaedSpot& s = pattern.spots[i];
    if (s.is_direct_beam || s.intensity <= 0)
      continue;  // 000 is listed at 100; forbidden and double-diffraction spots have none
    for (double t : thicknesses_A)
      mean[i] += s.F_abs_A * s.F_abs_A * relrod_shape(s.excitation_error_invA, t, shape);
    mean[i] /= double(thicknesses_A.size());
    strongest = std::max(strongest, mean[i]);
  }
  for (std::size_t i = 0; i < out.spots.size(); ++i)
    if (!out.spots[i].is_direct_beam)
      out.spots[i].intensity = strongest > 0 ? 100 * mean[i] / strongest : 0;
  return out;
}

const char* spot_pixel_name(SpotPixel status) {
  switch (status) {
    case SpotPixel::Read: return "read";
    case SpotPixel::OffGrid: return "off_grid";
    case SpotPixel::BeyondBandLimit: return "beyond_band_limit";
    case SpotPixel::HigherLaueZone: return "holz";
  }
  return "?";
}

std::vector<SpotReading> read_spots(const SaedPattern& pattern, const Grid& grid, const std::vector<double>& mean) {
  if (mean.size() != grid.size())
    fail("read_spots: ", mean.size(), " pattern values for a ", grid.nx, "x", grid.ny, " grid");
  std::vector<SpotReading> out;
  for (const SaedSpot& s : pattern.spots) {
    SpotReading r;
    const double fx = s.g_lab_invA.x() * grid.extent_x_A, fy = s.g_lab_invA.y() * grid.extent_y_A;
    const long rx = std::lround(fx), ry = std::lround(fy);
    if (s.laue_zone != 0)
      r.status = SpotPixel::HigherLaueZone;
    else if (std::abs(fx - rx) > ON_GRID_TOL || std::abs(fy - ry) > ON_GRID_TOL)
      r.status = SpotPixel::OffGrid;
    else if (std::hypot(rx / grid.extent_x_A, ry / grid.extent_y_A) >= grid.band_limit_invA() * (1 - 1e-9))
      r.status = SpotPixel::BeyondBandLimit;  // zero there: the propagator cuts it every slice
    else {
      r.status = SpotPixel::Read;
      r.ix = int(((rx % grid.nx) + grid.nx) % grid.nx);
      r.iy = int(((ry % grid.ny) + grid.ny) % grid.ny);
      r.fraction = mean[std::size_t(r.iy) * std::size_t(grid.nx) + std::size_t(r.ix)];
    }
    out.push_back(r);
  }
  return out;
}

SaedPattern with_multislice_intensities(const SaedPattern& kinematic, const std::vector<SpotReading>& readings) {
  if (readings.size() != kinematic.spots.size())
    fail("with_multislice_intensities: ", readings.size(), " readings for ", kinematic.spots.size(), " spots");
  double strongest = 0;
  for (std::size_t i = 0; i < readings.size(); ++i)
    if (!kinematic.spots[i].is_direct_beam)
      strongest = std::max(strongest, readings[i].fraction);
  SaedPattern out = kinematic;
  for (std::size_t i = 0; i < readings.size(); ++i) {
    double v = strongest > 0 ? 100.0 * readings[i].fraction / strongest : 0.0;
    if (out.spots[i].is_direct_beam)
      v = std::min(v, 100.0);  // listed and drawn capped, as in the kinematic table
    out.spots[i].intensity = v;
  }
  return out;
}

std::string saed_multislice_csv(const SaedPattern& multislice, const SaedPattern& kinematic,
                                const std::vector<SpotReading>& readings) {
  if (readings.size() != multislice.spots.size() || kinematic.spots.size() != multislice.spots.size())
    fail("saed_multislice_csv: spot lists of different lengths");
  // saed_spots_csv writes the header, then one line per spot in order: extend each line.
  std::istringstream in(saed_spots_csv(multislice));
  std::ostringstream os;
  std::string line;
  std::getline(in, line);
  os << line << ",intensity_kinematic,intensity_fraction,multislice_pixel\n";
  for (std::size_t i = 0; i < readings.size(); ++i) {
    if (!std::getline(in, line))
      fail("saed_multislice_csv: spot table shorter than the spot list");
    os << line << ',' << number("%.5g", kinematic.spots[i].intensity) << ','
       << number("%.9e", readings[i].fraction) << ',' << spot_pixel_name(readings[i].status) << '\n';
  }
  return os.str();
}

}  // namespace epitem
