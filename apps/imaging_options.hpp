// Options shared by `epitem image` and `epitem hrtem`: objective lens, partial coherence,
// detector and series (defocus, illumination tilt), their echo/sidecar, and the outputs
// (float32 TIFF stack with one page per series value, PNG contact sheet with scale bar).
#pragma once
#include <string>
#include <vector>

#include "cli.hpp"
#include "epitem/detector.hpp"
#include "epitem/imaging.hpp"

namespace epitem::cli {

/// The sign conventions and coherence models, for --help of both commands.
extern const char* const IMAGING_CONVENTIONS;

struct ImagingSetup {
  Lens lens;
  CoherenceSpec coherence;
  bool coherence_auto = false;           ///< --coherence auto: choose_coherence() decides
  std::string coherence_rule;            ///< how the model was chosen (echo and sidecar)
  DetectorSpec detector;
  bool dose_given = false;
  std::vector<double> defocus_series_A;  ///< one entry = a single image
  std::vector<double> tilts_mrad;        ///< illumination tilt magnitudes along tilt_azimuth
  double tilt_azimuth_deg = 0;
  std::string defocus_text;              ///< how the defocus was chosen (Scherzer formula...)
  std::string focal_spread_text;         ///< the focal-spread conversion
};

/// Lens, coherence, detector and series options (all unit-bearing).
po::options_description imaging_options(const std::string& default_cs);
/// Resolves the options at a beam energy; throws po::error on usage, Error on bad values.
ImagingSetup resolve_imaging_options(const po::variables_map& vm, double energy_eV);
/// --coherence auto picks integrate unless its imaging FFTs (1 + nodes per image) exceed this
/// factor × the multislice's FFTs (2 per slice and configuration; at least 200, so `image` of a
/// stored exit wave gets integrate up to 10,000 FFTs).
constexpr double AUTO_COHERENCE_COST_FACTOR = 50;
/// Resolves --coherence auto for a run that forms `images` images on `grid` after a multislice of
/// `multislice_ffts` FFTs; above the factor it keeps envelope and warns why. Sets coherence_rule.
void choose_coherence(ImagingSetup& setup, const Grid& grid, double multislice_ffts, double images,
                      const WarnFn& warn);
/// Echo + sidecar entries for the setup.
void record_imaging(RunRecord& record, const ImagingSetup& setup, const Grid& grid);

/// One output page: image and the series values that produced it.
struct ImagingPage {
  Image image;
  double thickness_A = -1;  ///< < 0: not a thickness series
  double defocus_A = 0, tilt_x_mrad = 0, tilt_y_mrad = 0;
};

/// Applies the detector to each page (noise seeded per page), records the page table and
/// writes the TIFF stack (the record so far as its description) and, if png_path is set, a
/// labelled contact sheet. The caller then adds timings and writes the sidecar, so a seeded
/// run reproduces the TIFF bit for bit.
void write_imaging_outputs(std::vector<ImagingPage> pages, const ImagingSetup& setup,
                           RunRecord& record, const std::string& out_path,
                           const std::string& png_path, const std::vector<std::string>& inputs);

/// Bytes one ImageFormer + page accumulators need for a grid (for --dry-run).
double imaging_memory_bytes(const Grid& grid, std::size_t n_pages);

}  // namespace epitem::cli
