#include "epitem/optics.hpp"

#include <cmath>
#include <limits>
#include <sstream>

#include "epitem/error.hpp"
#include "epitem/units.hpp"

namespace epitem {

double Lens::wavelength_A() const { return electron_wavelength_A(energy_eV); }

double Lens::aperture_invA() const {
  if (aperture_mrad <= 0)
    return std::numeric_limits<double>::infinity();
  return aperture_mrad * units::mrad_to_rad / wavelength_A();
}

void Lens::validate() const {
  if (!(energy_eV > 0))
    fail("lens: beam energy must be > 0 eV, got ", energy_eV, " eV (e.g. --energy 200kV)");
  if (!(focal_spread_A >= 0))
    fail("lens: focal spread must be ≥ 0 Å, got ", focal_spread_A,
         " Å (it is a width; the sign of defocus goes into --defocus)");
  if (!(convergence_mrad >= 0))
    fail("lens: convergence semi-angle must be ≥ 0 mrad, got ", convergence_mrad, " mrad");
  if (!(aperture_mrad >= 0))
    fail("lens: objective aperture must be ≥ 0 mrad (0 = none), got ", aperture_mrad, " mrad");
  const Aberrations& a = aberrations;
  for (double v : {a.defocus_A, a.Cs_A, a.C5_A, a.astigmatism_A, a.coma_A, a.threefold_A,
                   a.astigmatism_angle_deg, a.coma_angle_deg, a.threefold_angle_deg})
    if (!std::isfinite(v))
      fail("lens: aberration coefficients must be finite numbers");
}

AberrationPolynomial::AberrationPolynomial(const Aberrations& ab, double lam) {
  // Cartesian form of the polar expansion in the header (α = λk, φ = atan2(ky, kx)).
  c2_ = PI * lam * (-ab.defocus_A);
  c4_ = 0.5 * PI * lam * lam * lam * ab.Cs_A;
  c6_ = PI / 3 * std::pow(lam, 5) * ab.C5_A;
  const double p12 = 2 * ab.astigmatism_angle_deg * units::deg_to_rad;
  a_cos_ = PI * lam * ab.astigmatism_A * std::cos(p12);
  a_sin_ = PI * lam * ab.astigmatism_A * std::sin(p12);
  const double p21 = ab.coma_angle_deg * units::deg_to_rad;
  coma_cos_ = 2 * PI / 3 * lam * lam * ab.coma_A * std::cos(p21);
  coma_sin_ = 2 * PI / 3 * lam * lam * ab.coma_A * std::sin(p21);
  const double p23 = 3 * ab.threefold_angle_deg * units::deg_to_rad;
  three_cos_ = 2 * PI / 3 * lam * lam * ab.threefold_A * std::cos(p23);
  three_sin_ = 2 * PI / 3 * lam * lam * ab.threefold_A * std::sin(p23);
}

double AberrationPolynomial::chi(double kx, double ky) const {
  const double xx = kx * kx, yy = ky * ky, xy = kx * ky, k2 = xx + yy;
  return k2 * (c2_ + k2 * (c4_ + k2 * c6_)) + a_cos_ * (xx - yy) + a_sin_ * 2 * xy +
         k2 * (coma_cos_ * kx + coma_sin_ * ky) + three_cos_ * kx * (xx - 3 * yy) +
         three_sin_ * ky * (3 * xx - yy);
}

void AberrationPolynomial::gradient(double kx, double ky, double& gx, double& gy) const {
  const double xx = kx * kx, yy = ky * ky, k2 = xx + yy;
  const double radial = 2 * c2_ + k2 * (4 * c4_ + 6 * c6_ * k2);
  const double lin = coma_cos_ * kx + coma_sin_ * ky;
  gx = radial * kx + 2 * (a_cos_ * kx + a_sin_ * ky) + 2 * kx * lin + k2 * coma_cos_ +
       3 * three_cos_ * (xx - yy) + 6 * three_sin_ * kx * ky;
  gy = radial * ky + 2 * (a_sin_ * kx - a_cos_ * ky) + 2 * ky * lin + k2 * coma_sin_ -
       6 * three_cos_ * kx * ky + 3 * three_sin_ * (xx - yy);
}

double chi_rad(const Aberrations& ab, double wavelength_A, double kx, double ky) {
  return AberrationPolynomial(ab, wavelength_A).chi(kx, ky);
}

void chi_gradient(const Aberrations& ab, double wavelength_A, double kx, double ky, double& gx,
                  double& gy) {
  AberrationPolynomial(ab, wavelength_A).gradient(kx, ky, gx, gy);
}

double temporal_envelope(double wavelength_A, double focal_spread_A, double k_invA) {
  const double a = PI * wavelength_A * focal_spread_A * k_invA * k_invA;
  return std::exp(-0.5 * a * a);
}

double temporal_information_limit_invA(double wavelength_A, double focal_spread_A) {
  if (focal_spread_A <= 0)
    return 0;
  // ½(πλσk²)² = 2  ⇔  k² = 2/(πλσ)
  return std::sqrt(2 / (PI * wavelength_A * focal_spread_A));
}

double combined_envelope_limit_invA(const Aberrations& ab, double wavelength_A,
                                    double focal_spread_A, double convergence_mrad) {
  for (int i = 1; i <= 100000; ++i) {
    const double k = 4.0 * i / 100000;
    if (temporal_envelope(wavelength_A, focal_spread_A, k) *
            spatial_envelope(ab, wavelength_A, convergence_mrad, k, 0) <
        std::exp(-2.0))
      return k;
  }
  return 0;
}

double spatial_envelope(const Aberrations& ab, double wavelength_A, double convergence_mrad,
                        double kx_invA, double ky_invA) {
  if (convergence_mrad <= 0)
    return 1.0;
  double gx, gy;
  chi_gradient(ab, wavelength_A, kx_invA, ky_invA, gx, gy);
  // Tilt q = β/λ ~ exp(−q²λ²/α²): per-axis variance (α/λ)²/2; ⟨e^{−i∇χ·q}⟩ = e^{−(α/2λ)²|∇χ|²}.
  const double s = convergence_mrad * units::mrad_to_rad / (2 * wavelength_A);
  return std::exp(-s * s * (gx * gx + gy * gy));
}

double scherzer_defocus_A(double Cs_A, double energy_eV, ScherzerDefinition def) {
  if (!(Cs_A > 0))
    fail("Scherzer defocus needs C_s > 0, got ", Cs_A, " Å (give --cs, e.g. 1mm)");
  const double lam = electron_wavelength_A(energy_eV);
  switch (def) {
    case ScherzerDefinition::Scherzer1949: return std::sqrt(4.0 / 3.0 * Cs_A * lam);
    case ScherzerDefinition::Extended: return 1.2 * std::sqrt(Cs_A * lam);
    case ScherzerDefinition::Kirkland: break;
  }
  return std::sqrt(1.5 * Cs_A * lam);
}

const char* scherzer_definition_text(ScherzerDefinition def) {
  switch (def) {
    case ScherzerDefinition::Scherzer1949: return "sqrt(4/3*Cs*lambda) (Scherzer 1949)";
    case ScherzerDefinition::Extended: return "1.2*sqrt(Cs*lambda) (extended Scherzer)";
    case ScherzerDefinition::Kirkland: break;
  }
  return "sqrt(3/2*Cs*lambda) (Kirkland 2010, epitem default)";
}

FocalSpreadKind parse_focal_spread_kind(const std::string& name) {
  if (name == "sigma" || name == "std")
    return FocalSpreadKind::Sigma;
  if (name == "1/e" || name == "halfwidth" || name == "half-width")
    return FocalSpreadKind::HalfWidth1e;
  if (name == "fwhm" || name == "FWHM")
    return FocalSpreadKind::Fwhm;
  fail("unknown focal-spread kind '", name, "' (use sigma, 1/e or fwhm)");
}

static std::string number(double v) {
  std::ostringstream os;
  os.precision(6);
  os << v;
  return os.str();
}

constexpr double FWHM_PER_SIGMA = 2.354820045;  // 2√(2 ln 2)

FocalSpread focal_spread_from_width(double width_A, FocalSpreadKind kind) {
  if (!(width_A >= 0))
    fail("focal spread must be ≥ 0 Å, got ", width_A, " Å (it is a width, not a signed defocus)");
  FocalSpread f;
  switch (kind) {
    case FocalSpreadKind::Sigma:
      f.sigma_A = width_A;
      f.conversion = "sigma " + number(width_A) + " A given as standard deviation -> sigma = " +
                     number(f.sigma_A) + " A";
      break;
    case FocalSpreadKind::HalfWidth1e:
      f.sigma_A = width_A / std::sqrt(2.0);
      f.conversion = "1/e half-width " + number(width_A) + " A = sqrt(2)*sigma -> sigma = " +
                     number(f.sigma_A) + " A";
      break;
    case FocalSpreadKind::Fwhm:
      f.sigma_A = width_A / FWHM_PER_SIGMA;
      f.conversion = "FWHM " + number(width_A) + " A = 2.3548*sigma -> sigma = " +
                     number(f.sigma_A) + " A";
      break;
  }
  return f;
}

FocalSpread focal_spread_from_chromatic(double Cc_A, double energy_spread_fwhm_eV,
                                        double energy_eV) {
  if (!(Cc_A >= 0))
    fail("chromatic aberration C_c must be ≥ 0 Å, got ", Cc_A, " Å");
  if (!(energy_spread_fwhm_eV >= 0))
    fail("energy spread must be ≥ 0 eV, got ", energy_spread_fwhm_eV, " eV");
  if (!(energy_eV > 0))
    fail("beam energy must be > 0 eV, got ", energy_eV, " eV");
  const double m0c2 = ELECTRON_REST_ENERGY_EV;
  const double rms = energy_spread_fwhm_eV / FWHM_PER_SIGMA;
  const double rel = (1 + energy_eV / m0c2) / (1 + energy_eV / (2 * m0c2));
  FocalSpread f;
  f.sigma_A = Cc_A * rms / energy_eV * rel;
  f.conversion = "Cc " + number(Cc_A) + " A, dE_FWHM " + number(energy_spread_fwhm_eV) +
                 " eV (rms " + number(rms) + " eV): sigma = Cc*dE_rms/E*(1+E/m0c2)/(1+E/2m0c2) = " +
                 number(f.sigma_A) + " A";
  return f;
}

}  // namespace epitem
