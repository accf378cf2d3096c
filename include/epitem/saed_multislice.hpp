// SAED spot intensities from the multislice engine (docs/diffraction.md, "saed --method
// multislice"): one phase oriented exactly as `epitem multislice --zone` orients it, the mean
// diffraction pattern |FFT ψ_exit|²/N² over frozen-phonon configurations, and each kinematic
// spot's intensity read at its pixel (gx·Lx, gy·Ly) of that pattern.
#pragma once
#include <array>
#include <string>
#include <vector>

#include "epitem/kinematic.hpp"
#include "epitem/model.hpp"
#include "epitem/multislice.hpp"

namespace epitem {

struct SaedMultisliceSpec {
  MultisliceSpec multislice;        ///< energy, grid sampling, slices, phonons, seed, tilt, threads
  double thickness_A = 200;         ///< rounded to whole periods of the oriented cell along +z
  /// > 0: average over the whole periods from this thickness to thickness_A (a wedge within the
  /// selected area, --thickness-range); 0: thickness_A only.
  double thickness_min_A = 0;
  std::array<int, 2> lateral_repeats{0, 0};  ///< of the oriented cell along x, y; 0 = auto
  /// Auto lateral repeats with phonons: the box spans at least this much [Å], so the thermal
  /// diffuse scattering spreads between the Bragg pixels instead of landing on them.
  double phonon_box_min_A = 30;
};

/// The model: `phase`'s crystal (with its U_iso) by orient_crystal(zone, x_uvw) with repeats
/// (nx, ny, max(1, round(thickness / period_z))); auto nx, ny = 1 for static atoms, else
/// enough for phonon_box_min_A. Throws Error when the phase's orientation is not the one
/// orient_crystal gives (e.g. an extra --rotate about the beam).
AtomicModel saed_multislice_model(const SaedPhase& phase, const Vec3& x_uvw, const SaedMultisliceSpec& spec,
                                  std::array<int, 3>* repeats_used = nullptr);

/// The thicknesses [Å] a run averages over: without a range (thickness_min_A = 0) none besides
/// the model's; with one, every whole period from thickness_min_A up to below the model's (pass
/// as MultisliceSpec::thickness_series_A; the model's own thickness is always saved last).
/// `periods`: the model's repeats along z (saed_multislice_model's repeats_used[2]).
std::vector<double> saed_thickness_series_A(const AtomicModel& model, int periods, const SaedMultisliceSpec& spec);

/// Mean diffraction pattern of a model over its frozen-phonon configurations and the saved
/// thicknesses (spec.thickness_series_A and the full model; FFT order, a fraction of the
/// incident beam per pixel). Under mpirun (parallel.hpp) configuration c runs on
/// rank owns(c) and rank 0 sums in configuration order, so the sum is that of one process;
/// other ranks return an empty mean.
struct MeanDiffraction {
  Grid grid;
  std::vector<double> mean;
  MultisliceReport report;
};
MeanDiffraction mean_diffraction(const AtomicModel& model, const MultisliceSpec& spec,
                                 ProgressFn progress = {}, WarnFn warn = {});

/// Why a spot could (not) be read from the pattern.
enum class SpotPixel {
  Read,             ///< g on a grid pixel inside the band limit
  OffGrid,          ///< gx·Lx or gy·Ly not an integer (not a reciprocal vector of the box)
  BeyondBandLimit,  ///< |g| at or beyond the 2/3 band limit: the multislice has no intensity there
  HigherLaueZone,   ///< a HOLZ spot: its projection may share a pixel with a ZOLZ spot
};
const char* spot_pixel_name(SpotPixel status);  ///< "read", "off_grid", "beyond_band_limit", "holz"

struct SpotReading {
  SpotPixel status = SpotPixel::OffGrid;
  int ix = 0, iy = 0;       ///< FFT-order pixel when read
  double fraction = 0;      ///< intensity as a fraction of the incident beam (0 when not read)
};

/// Reads every spot of a one-phase pattern at its pixel of `mean` (FFT order on `grid`).
std::vector<SpotReading> read_spots(const SaedPattern& pattern, const Grid& grid, const std::vector<double>& mean);

/// The kinematic pattern of one phase averaged over thicknesses: each spot's |F|²·shape(s, t)
/// averaged over thicknesses_A, strongest = 100 again (000 stays 100, forbidden spots 0).
SaedPattern kinematic_thickness_average(const SaedPattern& pattern, const std::vector<double>& thicknesses_A,
                                        RelrodShape shape);

/// The pattern with multislice intensities: strongest read non-000 spot = 100 (as the kinematic
/// table), 000 capped at 100, unread spots 0.
SaedPattern with_multislice_intensities(const SaedPattern& kinematic, const std::vector<SpotReading>& readings);

/// saed_spots_csv(multislice) plus the columns intensity_kinematic (the kinematic table's
/// intensity, strongest = 100), intensity_fraction (of the incident beam) and multislice_pixel
/// (spot_pixel_name).
std::string saed_multislice_csv(const SaedPattern& multislice, const SaedPattern& kinematic,
                                const std::vector<SpotReading>& readings);

}  // namespace epitem
