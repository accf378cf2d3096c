#include "imaging_options.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "epitem/error.hpp"
#include "epitem/output.hpp"
#include "epitem/png.hpp"
#include "epitem/units.hpp"

namespace epitem::cli {

const char* const IMAGING_CONVENTIONS =
    "Conventions (docs/formulas.md §6, Kirkland/abTEM): chi(k) = pi*lambda*k^2*(Cs*lambda^2*k^2/2 - df)\n"
    "  + C5, astigmatism C12, coma C21, three-fold C23 in Krivanek polar notation; k in 1/A\n"
    "  without 2*pi; POSITIVE defocus = UNDERFOCUS (df = -C10); image wave = F^-1[psi(k) A(k)\n"
    "  exp(-i chi(k))]; 'scherzer' = sqrt(3/2*Cs*lambda) (Kirkland; 613.3 A at 200 kV, Cs 1 mm)\n"
    "  unless --scherzer says otherwise. Focal spread: give its kind (sigma | 1/e half-width =\n"
    "  sqrt(2) sigma | FWHM = 2.3548 sigma) or Cc + energy spread; the conversion is printed.\n"
    "Coherence: --coherence envelope multiplies E_t*E_s onto the wave spectrum (2 FFTs; damps\n"
    "  the image mean of strong objects: scattered intensity is lost); --coherence integrate\n"
    "  sums intensities over Gauss-Hermite defocus and illumination-tilt nodes (the reference;\n"
    "  keeps the mean; 1 inverse FFT per node). --coherence auto (default in image and hrtem):\n"
    "  integrate unless its imaging FFTs exceed 50x the multislice's (at least 10,000 FFTs),\n"
    "  then envelope with a warning saying why (docs/coherence.md). The echo and the JSON sidecar\n"
    "  say which one made the image and why (coherence_rule). Pixel values: relative intensity (vacuum = 1), or electron counts per pixel\n"
    "  with --dose. Rasters: row 0 = top = largest y (+y up, as ImageJ displays them).";

po::options_description imaging_options(const std::string& default_cs) {
  po::options_description lens("Objective lens (bare numbers: lengths in Å, Cs/C5/Cc in mm)");
  lens.add_options()
    ("defocus", po::value<std::string>()->default_value("scherzer"),
     "defocus Δf = −C10, positive = underfocus [Å] (e.g. 60nm), or 'scherzer'")
    ("scherzer", po::value<std::string>()->default_value("kirkland"),
     "Scherzer formula: kirkland √(3/2·Cs·λ) | scherzer √(4/3·Cs·λ) | extended 1.2√(Cs·λ)")
    ("cs", po::value<std::string>()->default_value(default_cs), "spherical aberration C30 [mm]")
    ("c5", po::value<std::string>()->default_value("0mm"), "fifth-order spherical aberration C50 [mm]")
    ("astigmatism", po::value<std::string>()->default_value("0A"), "two-fold astigmatism C12 [Å]")
    ("astigmatism-angle", po::value<std::string>()->default_value("0deg"), "azimuth φ12 [deg]")
    ("coma", po::value<std::string>()->default_value("0A"), "axial coma C21 [Å]")
    ("coma-angle", po::value<std::string>()->default_value("0deg"), "azimuth φ21 [deg]")
    ("threefold", po::value<std::string>()->default_value("0A"), "three-fold astigmatism C23 [Å]")
    ("threefold-angle", po::value<std::string>()->default_value("0deg"), "azimuth φ23 [deg]")
    ("aperture", po::value<std::string>()->default_value("0mrad"),
     "objective aperture semi-angle [mrad]; 0 = none");
  po::options_description coh("Partial coherence");
  coh.add_options()
    ("coherence", po::value<std::string>()->default_value("auto"),
     "auto | envelope | integrate (auto: integrate unless 50x the multislice's cost)")
    ("focal-spread", po::value<std::string>(),
     "focal spread width [Å] (needs --focal-spread-kind); default: from --cc and --energy-spread")
    ("focal-spread-kind", po::value<std::string>(), "sigma | 1/e (half-width = √2σ) | fwhm (= 2.3548σ)")
    ("cc", po::value<std::string>()->default_value("1.1mm"), "chromatic aberration Cc [mm]")
    ("energy-spread", po::value<std::string>()->default_value("0.8eV"),
     "energy spread of the gun, FWHM [eV] (Schottky FEG ≈ 0.8, cold FEG ≈ 0.4)")
    ("convergence", po::value<std::string>()->default_value("0.2mrad"),
     "illumination semi-angle α, 1/e of exp(−β²/α²) [mrad]")
    ("defocus-nodes", po::value<int>()->default_value(0), "integrate: Gauss–Hermite defocus nodes (0 = auto)")
    ("tilt-nodes", po::value<int>()->default_value(0), "integrate: tilt nodes per axis (0 = auto)");
  po::options_description det("Detector");
  det.add_options()
    ("mtf", po::value<std::string>()->default_value("none"),
     "none | gaussian:Q0 | lorentzian:Q0[,C] | file:PATH (q_nyquist_fraction,mtf)")
    ("pixel", po::value<std::string>(), "output (camera) pixel size at the specimen [Å]; default: simulation pixel")
    ("dose", po::value<std::string>(), "electron dose [e/Å²] → Poisson counts; default: no noise")
    ("seed", po::value<unsigned long long>()->default_value(1), "noise seed (series pages get their own streams)")
    ("drift", po::value<std::string>()->default_value("0A"), "linear drift during the exposure [Å]")
    ("drift-angle", po::value<std::string>()->default_value("0deg"), "drift direction from +x [deg]");
  po::options_description series("Series (one TIFF page per value; values in the sidecar)");
  series.add_options()
    ("defocus-series", po::value<std::string>(), "defocus values, e.g. 0,20,40,60nm (replaces --defocus)")
    ("tilt", po::value<std::string>()->default_value("0mrad"), "illumination tilt [mrad] along --tilt-azimuth")
    ("tilt-series", po::value<std::string>(), "illumination tilts, e.g. 0,0.5,1mrad (replaces --tilt)")
    ("tilt-azimuth", po::value<std::string>()->default_value("0deg"), "direction of the tilt from +x [deg]");
  po::options_description all;
  all.add(lens).add(coh).add(det).add(series);
  return all;
}

namespace {

double quantity(const po::variables_map& vm, const std::string& name, Dimension dim, double bare = 1) {
  double v = 0;
  get_quantity(vm, name, dim, v, bare);
  return v;
}

// "0,20,40nm": bare entries take the unit of the last entry.
std::vector<double> quantity_list(const std::string& text, Dimension dim, const std::string& what,
                                  double bare) {
  std::vector<std::string> items;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');)
    items.push_back(item);
  if (items.empty())
    fail(what, ": empty list");
  std::string unit;
  try {
    std::size_t used = 0;
    std::stod(items.back(), &used);
    unit = items.back().substr(used);
  } catch (const std::exception&) {
  }
  std::vector<double> values;
  for (auto& item : items) {
    bool bare_item = false;
    try {
      std::size_t used = 0;
      std::stod(item, &used);
      bare_item = used == item.size();
    } catch (const std::exception&) {
    }
    values.push_back(parse_quantity(bare_item ? item + unit : item, dim, what, bare));
  }
  return values;
}

std::string fmt(double v, int precision = 6) {
  std::ostringstream os;
  os.precision(precision);
  os << v;
  return os.str();
}

}  // namespace

ImagingSetup resolve_imaging_options(const po::variables_map& vm, double energy_eV) {
  ImagingSetup s;
  Lens& lens = s.lens;
  lens.energy_eV = energy_eV;
  Aberrations& ab = lens.aberrations;
  ab.Cs_A = quantity(vm, "cs", Dimension::Length, units::mm);
  ab.C5_A = quantity(vm, "c5", Dimension::Length, units::mm);
  ab.astigmatism_A = quantity(vm, "astigmatism", Dimension::Length);
  ab.astigmatism_angle_deg = quantity(vm, "astigmatism-angle", Dimension::CrystalAngle);
  ab.coma_A = quantity(vm, "coma", Dimension::Length);
  ab.coma_angle_deg = quantity(vm, "coma-angle", Dimension::CrystalAngle);
  ab.threefold_A = quantity(vm, "threefold", Dimension::Length);
  ab.threefold_angle_deg = quantity(vm, "threefold-angle", Dimension::CrystalAngle);
  lens.aperture_mrad = quantity(vm, "aperture", Dimension::BeamAngle);
  lens.convergence_mrad = quantity(vm, "convergence", Dimension::BeamAngle);

  const std::string sdef = vm["scherzer"].as<std::string>();
  ScherzerDefinition def = ScherzerDefinition::Kirkland;
  if (sdef == "scherzer")
    def = ScherzerDefinition::Scherzer1949;
  else if (sdef == "extended")
    def = ScherzerDefinition::Extended;
  else if (sdef != "kirkland")
    throw po::error("--scherzer must be kirkland, scherzer or extended, got '" + sdef + "'");
  if (vm.count("defocus-series")) {
    s.defocus_series_A = quantity_list(vm["defocus-series"].as<std::string>(), Dimension::Length,
                                       "--defocus-series", 1.0);
    s.defocus_text = "series of " + std::to_string(s.defocus_series_A.size()) + " values";
  } else if (vm["defocus"].as<std::string>() == "scherzer") {
    const double df = scherzer_defocus_A(ab.Cs_A, energy_eV, def);
    s.defocus_series_A = {df};
    s.defocus_text = "Scherzer " + std::string(scherzer_definition_text(def)) + " = " + fmt(df) +
                     " A (underfocus)";
  } else {
    s.defocus_series_A = {quantity(vm, "defocus", Dimension::Length)};
    s.defocus_text = "given";
  }
  ab.defocus_A = s.defocus_series_A.front();

  if (vm.count("focal-spread")) {
    const double width = quantity(vm, "focal-spread", Dimension::Length);
    if (!vm.count("focal-spread-kind") && width != 0)
      throw po::error("--focal-spread needs --focal-spread-kind sigma|1/e|fwhm (peers quote "
                      "different widths; say which one this is)");
    const FocalSpreadKind kind = vm.count("focal-spread-kind")
                                     ? parse_focal_spread_kind(vm["focal-spread-kind"].as<std::string>())
                                     : FocalSpreadKind::Sigma;
    const FocalSpread f = focal_spread_from_width(width, kind);
    lens.focal_spread_A = f.sigma_A;
    s.focal_spread_text = f.conversion;
  } else {
    const FocalSpread f = focal_spread_from_chromatic(quantity(vm, "cc", Dimension::Length, units::mm),
                                                      quantity(vm, "energy-spread", Dimension::Energy),
                                                      energy_eV);
    lens.focal_spread_A = f.sigma_A;
    s.focal_spread_text = f.conversion;
  }
  lens.validate();

  const std::string coherence = vm["coherence"].as<std::string>();
  s.coherence_auto = coherence == "auto";
  // auto stays envelope (the cheap model) until choose_coherence() has the costs.
  s.coherence.model = s.coherence_auto ? CoherenceModel::Envelope : parse_coherence_model(coherence);
  s.coherence_rule = s.coherence_auto ? "auto, not resolved by this command: envelope"
                                      : "given (--coherence " + coherence + ")";
  s.coherence.defocus_nodes = vm["defocus-nodes"].as<int>();
  s.coherence.tilt_nodes = vm["tilt-nodes"].as<int>();
  s.coherence.validate();

  DetectorSpec& d = s.detector;
  d.mtf = parse_mtf(vm["mtf"].as<std::string>(), "--mtf");
  if (vm.count("pixel")) {
    d.output_pixel_A = quantity(vm, "pixel", Dimension::Length);
    if (!(d.output_pixel_A > 0))
      fail("--pixel must be > 0 Å, got ", d.output_pixel_A, " (omit it to keep the simulation pixel)");
  }
  if (vm.count("dose")) {
    d.dose_e_per_A2 = quantity(vm, "dose", Dimension::Dose);
    s.dose_given = true;
  }
  d.seed = vm["seed"].as<unsigned long long>();
  d.drift_A = quantity(vm, "drift", Dimension::Length);
  d.drift_angle_deg = quantity(vm, "drift-angle", Dimension::CrystalAngle);
  if (d.dose_e_per_A2 <= 0 && s.dose_given)
    fail("--dose must be > 0 e/Å², got ", d.dose_e_per_A2, " (omit --dose for a noise-free image)");
  d.validate(s.dose_given);

  s.tilts_mrad = vm.count("tilt-series")
                     ? quantity_list(vm["tilt-series"].as<std::string>(), Dimension::BeamAngle,
                                     "--tilt-series", 1.0)
                     : std::vector<double>{quantity(vm, "tilt", Dimension::BeamAngle)};
  s.tilt_azimuth_deg = quantity(vm, "tilt-azimuth", Dimension::CrystalAngle);
  return s;
}

void choose_coherence(ImagingSetup& setup, const Grid& grid, double multislice_ffts, double images,
                      const WarnFn& warn) {
  if (!setup.coherence_auto)
    return;
  CoherenceSpec integrate = setup.coherence;
  integrate.model = CoherenceModel::Integrate;
  const int nodes = coherence_nodes(setup.lens, integrate, grid).total;
  const double integrate_ffts = images * (1 + nodes);
  const double budget = AUTO_COHERENCE_COST_FACTOR * std::max(multislice_ffts, 200.0);
  const std::string costs = fmt(integrate_ffts) + " FFTs (" + fmt(images) + " image(s) x (1 + " +
                            std::to_string(nodes) + " nodes)) vs " + fmt(AUTO_COHERENCE_COST_FACTOR) +
                            " x max(" + fmt(multislice_ffts) + " multislice FFTs, 200) = " + fmt(budget);
  if (integrate_ffts <= budget) {
    setup.coherence.model = CoherenceModel::Integrate;
    setup.coherence_rule = "auto: integrate (the accurate model; " + costs + ")";
    return;
  }
  setup.coherence_rule = "auto: envelope, integrate too costly (" + costs + ")";
  if (warn)
    warn("--coherence auto chose envelope: integrate would need " + costs +
         "; the envelope damps the image mean of thick crystals, give --coherence integrate to "
         "force it (docs/coherence.md)");
}

void record_imaging(RunRecord& r, const ImagingSetup& s, const Grid& grid) {
  const Aberrations& ab = s.lens.aberrations;
  r.add("sign_convention", std::string("positive defocus = underfocus (defocus = -C10); chi(k) = "
                           "pi*lambda*k^2*(Cs*lambda^2*k^2/2 - defocus) + ...; k without 2 pi"));
  r.add("wavelength_A", s.lens.wavelength_A(), "Å");
  if (s.defocus_series_A.size() == 1)
    r.add("defocus_A", ab.defocus_A, "Å");
  else
    r.add("defocus_series_A", Json(s.defocus_series_A));
  r.add("defocus_rule", s.defocus_text);
  r.add("Cs_A", ab.Cs_A, "Å");
  r.add("C5_A", ab.C5_A, "Å");
  r.add("astigmatism_C12_A", ab.astigmatism_A, "Å");
  r.add("astigmatism_angle_deg", ab.astigmatism_angle_deg, "deg");
  r.add("coma_C21_A", ab.coma_A, "Å");
  r.add("coma_angle_deg", ab.coma_angle_deg, "deg");
  r.add("threefold_C23_A", ab.threefold_A, "Å");
  r.add("threefold_angle_deg", ab.threefold_angle_deg, "deg");
  r.add("aperture_mrad", s.lens.aperture_mrad, s.lens.aperture_mrad > 0 ? "mrad" : "mrad (none)");
  r.add("focal_spread_sigma_A", s.lens.focal_spread_A, "Å");
  r.add("focal_spread_conversion", s.focal_spread_text);
  r.add("convergence_mrad", s.lens.convergence_mrad, "mrad (1/e semi-angle)");
  r.add("coherence_model", std::string(coherence_model_name(s.coherence.model)));
  r.add("coherence_rule", s.coherence_rule);
  r.add("coherence", coherence_description(s.lens, s.coherence, grid));
  if (s.tilts_mrad.size() == 1)
    r.add("illumination_tilt_mrad", s.tilts_mrad.front(), "mrad");
  else
    r.add("tilt_series_mrad", Json(s.tilts_mrad));
  r.add("tilt_azimuth_deg", s.tilt_azimuth_deg, "deg");
  r.add("mtf", s.detector.mtf.describe());
  if (s.detector.output_pixel_A > 0)
    r.add("output_pixel_A", s.detector.output_pixel_A, "Å (requested)");
  if (s.detector.has_noise()) {
    r.add("dose_e_per_A2", s.detector.dose_e_per_A2, "e/Å²");
    r.add("seed", Json(static_cast<unsigned long long>(s.detector.seed)));
  } else {
    r.add("noise", std::string("none (no --dose)"));
  }
  if (s.detector.drift_A > 0) {
    r.add("drift_A", s.detector.drift_A, "Å");
    r.add("drift_angle_deg", s.detector.drift_angle_deg, "deg");
  }
}

namespace {

// Averages b×b blocks (a preview of a big page stays a sensible size).
Image box_downsample(const Image& in, int b) {
  if (b <= 1)
    return in;
  Image out(in.nx / b, in.ny / b);
  out.pixel_size_A = in.pixel_size_A * b;
  for (int y = 0; y < out.ny; ++y)
    for (int x = 0; x < out.nx; ++x) {
      double s = 0;
      for (int j = 0; j < b; ++j)
        for (int i = 0; i < b; ++i)
          s += in.at(x * b + i, y * b + j);
      out.at(x, y) = float(s / (b * b));
    }
  return out;
}

Canvas page_canvas(const Image& page, const std::string& label) {
  const int longest = std::max(page.nx, page.ny);
  const int down = longest > 1024 ? (longest + 1023) / 1024 : 1;
  Image shown = box_downsample(page, down);
  const int up = std::max(1, std::min(4, 512 / std::max(shown.nx, shown.ny)));
  Canvas c = upscale(canvas_from_image(shown), up);
  const double px_per_nm = up * units::nm / shown.pixel_size_A;
  const double width_nm = c.width() / px_per_nm;
  double bar = std::pow(10.0, std::floor(std::log10(width_nm / 4)));
  for (double m : {5.0, 2.0})
    if (bar * m <= width_nm / 4) {
      bar *= m;
      break;
    }
  c.draw_scale_bar(px_per_nm, bar, fmt(bar, 3) + " nm");
  if (!label.empty())
    c.draw_label(6, 6, label, colors::white, c.width() >= 768 ? 2 : 1);
  return c;
}

}  // namespace

void write_imaging_outputs(std::vector<ImagingPage> pages, const ImagingSetup& setup,
                           RunRecord& record, const std::string& out_path,
                           const std::string& png_path, const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  for (const auto& in : inputs)
    for (const auto& out : {out_path, png_path, sidecar_path(out_path)})
      if (!out.empty() && fs::exists(in) && fs::exists(out) && fs::equivalent(in, out))
        fail("output ", out, " is the input ", in, ": choose another --out/--png name");
  std::vector<Image> images;
  Json table = Json::array();
  const bool series = pages.size() > 1;
  std::vector<std::string> labels;
  for (std::size_t p = 0; p < pages.size(); ++p) {
    // Pages are in the model frame; files show +y up (row 0 = top = largest y).
    images.push_back(flipped_rows(apply_detector(pages[p].image, setup.detector, int(p))));
    Json row = Json::object();
    row.set("page", int(p));
    std::string label;
    if (pages[p].thickness_A >= 0) {
      row.set("thickness_A", pages[p].thickness_A);
      label += "t " + fmt(pages[p].thickness_A / units::nm, 4) + " nm  ";
    }
    row.set("defocus_A", pages[p].defocus_A);
    row.set("tilt_x_mrad", pages[p].tilt_x_mrad);
    row.set("tilt_y_mrad", pages[p].tilt_y_mrad);
    label += "df " + fmt(pages[p].defocus_A / units::nm, 4) + " nm";
    if (pages[p].tilt_x_mrad != 0 || pages[p].tilt_y_mrad != 0)
      label += "  tilt " + fmt(std::hypot(pages[p].tilt_x_mrad, pages[p].tilt_y_mrad), 3) + " mrad";
    const auto& img = images.back();
    double sum = 0;
    for (float v : img.pixels)
      sum += v;
    row.set("mean", sum / double(img.size()));
    table.push(row);
    labels.push_back(series ? label : "");
  }
  const Image& first = images.front();
  record.result("pixel_values", Json(setup.detector.has_noise()
                                         ? "electron counts per pixel (Poisson)"
                                         : "relative intensity (vacuum = 1)"));
  record.result("image_size", Json(std::vector<int>{first.nx, first.ny}));
  record.result("pixel_size_A", first.pixel_size_A);
  record.result("pages", table);
  record.add_output(out_path);
  if (!png_path.empty())
    record.add_output(png_path);
  write_tiff(out_path, images, record.tiff_description());
  if (!png_path.empty()) {
    const int n = int(images.size());
    const int cols = int(std::ceil(std::sqrt(double(n))));
    const int rows = (n + cols - 1) / cols;
    std::vector<Canvas> tiles;
    for (int p = 0; p < n; ++p)
      tiles.push_back(page_canvas(images[std::size_t(p)], labels[std::size_t(p)]));
    const int gap = n > 1 ? 4 : 0;
    Canvas sheet(cols * tiles[0].width() + (cols - 1) * gap, rows * tiles[0].height() + (rows - 1) * gap,
                 colors::gray);
    for (int p = 0; p < n; ++p)
      sheet.paste(tiles[std::size_t(p)], (p % cols) * (tiles[0].width() + gap),
                  (p / cols) * (tiles[0].height() + gap));
    write_png(sheet, png_path);
  }
}

double imaging_memory_bytes(const Grid& grid, std::size_t n_pages) {
  const double n = double(grid.size());
  // spectrum + work + FFT scratch (complex float), intensity accumulator (double), pages (float)
  return n * (3 * sizeof(cfloat) + sizeof(double) + sizeof(float) * double(n_pages));
}

}  // namespace epitem::cli
