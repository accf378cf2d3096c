// Objective lens of a CTEM (docs/formulas.md §6): aberration function χ(k) in Krivanek polar notation
// (defocus = −C10, positive = underfocus; Kirkland 2010 Eq. 3.42 / abTEM), objective aperture,
// Scherzer defocus and the quasi-coherent temporal and spatial envelopes (Kirkland §3.3).
#pragma once
#include <string>

namespace epitem {

/// Coefficients of χ(k) [Å, angles in degrees]. With α = λk and φ the azimuth of k:
/// χ = (2π/λ)·[½α²(C10 + C12 cos 2(φ−φ12)) + ⅓α³(C21 cos(φ−φ21) + C23 cos 3(φ−φ23))
///             + ¼α⁴ C30 + ⅙α⁶ C50],  C10 = −defocus_A.
/// Round symmetric part: χ(k) = πλk²(½C_s λ²k² − Δf) + ⅓πC5 λ⁵k⁶.
struct Aberrations {
  double defocus_A = 0;            ///< Δf = −C10; positive = underfocus [Å]
  double Cs_A = 0;                 ///< C30, spherical aberration [Å] (1 mm = 1e7 Å)
  double C5_A = 0;                 ///< C50, fifth-order spherical aberration [Å]
  double astigmatism_A = 0;        ///< C12, two-fold astigmatism magnitude [Å]
  double astigmatism_angle_deg = 0;///< φ12 [deg]
  double coma_A = 0;               ///< C21, axial coma magnitude [Å]
  double coma_angle_deg = 0;       ///< φ21 [deg]
  double threefold_A = 0;          ///< C23, three-fold astigmatism magnitude [Å]
  double threefold_angle_deg = 0;  ///< φ23 [deg]
};

/// Objective lens and the illumination's partial coherence, at one beam energy.
struct Lens {
  double energy_eV = 200e3;
  Aberrations aberrations;
  double aperture_mrad = 0;        ///< objective aperture semi-angle; 0 = no aperture
  double focal_spread_A = 0;       ///< defocus spread as a standard deviation σ [Å]
  double convergence_mrad = 0;     ///< illumination semi-angle α: tilts ∝ exp(−β²/α²) (1/e)

  double wavelength_A() const;
  /// Aperture radius in spatial frequency [1/Å]; infinity when there is no aperture.
  double aperture_invA() const;
  /// Throws Error on a negative focal spread, convergence or aperture, or energy ≤ 0.
  void validate() const;
};

/// χ(k) as a Cartesian polynomial with coefficients precomputed for one wavelength: the fast
/// path of image formation (millions of evaluations per image). chi_rad() uses it too.
class AberrationPolynomial {
public:
  AberrationPolynomial(const Aberrations& ab, double wavelength_A);
  /// χ [rad] at (kx, ky) [1/Å].
  double chi(double kx, double ky) const;
  /// ∇_k χ [rad·Å].
  void gradient(double kx, double ky, double& gx, double& gy) const;

private:
  double c2_, c4_, c6_;          // πλC10, ½πλ³C30, ⅓πλ⁵C50 (round terms in k², k⁴, k⁶)
  double a_cos_, a_sin_;         // πλC12·(cos 2φ12, sin 2φ12)
  double coma_cos_, coma_sin_;   // ⅔πλ²C21·(cos φ21, sin φ21)
  double three_cos_, three_sin_; // ⅔πλ²C23·(cos 3φ23, sin 3φ23)
};

/// χ(k) [rad] at spatial frequency (kx, ky) [1/Å, no 2π].
double chi_rad(const Aberrations& ab, double wavelength_A, double kx_invA, double ky_invA);
/// ∇_k χ [rad·Å] (analytic), used by the spatial envelope and its tests.
void chi_gradient(const Aberrations& ab, double wavelength_A, double kx_invA, double ky_invA,
                  double& dchi_dkx, double& dchi_dky);

/// Temporal envelope E_t = exp(−½(πλσk²)²), σ = focal spread (standard deviation) [Å].
double temporal_envelope(double wavelength_A, double focal_spread_A, double k_invA);
/// Spatial envelope for a Gaussian cone of tilts exp(−β²/α²):
/// E_s = exp(−(α/2λ)² |∇χ|²), which for round lenses is docs/formulas.md §6's
/// exp(−(πα/λ)²(C_s λ³k³ − Δf λk)²). α in mrad.
double spatial_envelope(const Aberrations& ab, double wavelength_A, double convergence_mrad,
                        double kx_invA, double ky_invA);

/// Information limit [1/Å] in the conventional sense: where the temporal envelope alone falls
/// to e⁻², k = √(2/(πλσ)) (0.926 Å at 200 kV, σ = 21.7 Å); 0 when σ = 0 (no limit).
double temporal_information_limit_invA(double wavelength_A, double focal_spread_A);
/// First k [1/Å] along k_x where the product E_t·E_s of both envelopes at the lens's defocus
/// falls below e⁻² (scan to 4 1/Å with step 4e-5 1/Å; 0 if it never does).
double combined_envelope_limit_invA(const Aberrations& ab, double wavelength_A,
                                    double focal_spread_A, double convergence_mrad);

/// Which Scherzer defocus formula: epitem's default is Kirkland's √(3/2·C_s λ).
enum class ScherzerDefinition { Kirkland, Scherzer1949, Extended };
/// Kirkland √(1.5 C_s λ) (613.3 Å at 200 kV, C_s 1 mm); Scherzer (1949) √(4/3 C_s λ);
/// "extended" 1.2 √(C_s λ). C_s [Å] must be > 0.
double scherzer_defocus_A(double Cs_A, double energy_eV,
                          ScherzerDefinition def = ScherzerDefinition::Kirkland);
/// "√(3/2·Cs·λ) (Kirkland)" etc., for echoes and help.
const char* scherzer_definition_text(ScherzerDefinition def);

/// How a focal spread was quoted. Peers differ: abTEM and Kirkland use the 1/e half-width
/// (= √2 σ); some papers quote the FWHM (= 2.3548 σ).
enum class FocalSpreadKind { Sigma, HalfWidth1e, Fwhm };
/// "sigma" | "1/e" | "fwhm" (also "halfwidth"); throws Error otherwise.
FocalSpreadKind parse_focal_spread_kind(const std::string& name);

/// A focal spread converted to σ, with the conversion written out for the echo and sidecar.
struct FocalSpread {
  double sigma_A = 0;
  std::string conversion;  ///< e.g. "1/e half-width 40 Å = √2·σ → σ = 28.28 Å"
};
/// From a width of the given kind [Å]; throws Error if negative.
FocalSpread focal_spread_from_width(double width_A, FocalSpreadKind kind);
/// From the chromatic aberration C_c [Å] and the energy spread (FWHM, eV) of the gun:
/// σ = C_c · (ΔE_FWHM/2.3548)/E · (1 + E/m₀c²)/(1 + E/2m₀c²) (docs/formulas.md §6).
FocalSpread focal_spread_from_chromatic(double Cc_A, double energy_spread_fwhm_eV,
                                        double energy_eV);

}  // namespace epitem
