// Kinematic electron diffraction (docs/formulas.md §7): structure factors
// F_g = Σ occ f_e(g) exp(−B g²/4) exp(2πi g·r), reflection tables, and SAED spot patterns of one
// or more phases with excitation error s_g, a slab shape function and double-diffraction flags.
#pragma once
#include <array>
#include <complex>
#include <string>
#include <vector>

#include "epitem/crystal.hpp"
#include "epitem/image.hpp"
#include "epitem/png.hpp"
#include "epitem/scattering.hpp"

namespace epitem {

/// Integer Miller indices (h, k, l).
using Miller = std::array<int, 3>;
inline Vec3 to_vec3(const Miller& hkl) { return {double(hkl[0]), double(hkl[1]), double(hkl[2])}; }
/// "1-11" when every |index| ≤ 9, else "1 -11 10" (space-separated).
std::string miller_label(const Miller& hkl);

/// Structure factor F_hkl [Å] of the unit cell: Σ occ f_e(|g|) exp(−B|g|²/4) exp(+2πi g·r),
/// B = 8π²U_iso (docs/formulas.md §3, §7). F(000) = Σ occ f_e(0).
std::complex<double> structure_factor_A(const Crystal& crystal, const Miller& hkl,
                                        ScatteringTable table = ScatteringTable::Kirkland);

/// Σ occ |f_e(|g|)| exp(−B|g|²/4) [Å]: the largest |F_hkl| the cell could give (all atoms in
/// phase). A reflection is kinematically forbidden when |F| < FORBIDDEN_F_REL times this.
double structure_factor_bound_A(const Crystal& crystal, const Miller& hkl,
                                ScatteringTable table = ScatteringTable::Kirkland);
/// Systematic absences cancel to round-off (~1e-15); real weak reflections are far above 1e-6.
constexpr double FORBIDDEN_F_REL = 1e-6;
bool is_kinematically_forbidden(const Crystal& crystal, const Miller& hkl,
                                ScatteringTable table = ScatteringTable::Kirkland);

/// Lattice-centring translations of the crystal (symops with identity rotation, t ≠ 0 mod 1).
std::vector<Vec3> centring_translations(const Crystal& crystal);
/// Period m of n = h·u + k·v + l·w over the reflections the lattice centring allows (hkl·t
/// integer for every centring translation t): Laue zones of [uvw] lie at n = 0, ±m, ±2m …
/// (fcc [110]: m = 2, fcc [001] and [111]: m = 1, bcc [111]: m = 2, bcc [001]: m = 1; P: m = 1
/// when gcd(u,v,w) = 1).
int laue_zone_period(const Crystal& crystal, const Vec3& zone_uvw);
/// Laue-zone order of hkl in zone [uvw]: (h·u + k·v + l·w)/m, m = laue_zone_period (so the
/// first-order Laue zone is ±1 for every centring). Not integer for centring-forbidden hkl:
/// returns n/m rounded toward zero then; check hkl·t first where that matters.
int laue_zone_order(const Crystal& crystal, const Miller& hkl, const Vec3& zone_uvw);

/// One reflection family (or one reflection when families are not merged).
struct Reflection {
  Miller hkl{};           ///< representative: the member with the largest (h, k, l) lexicographically
  double d_A = 0;         ///< interplanar spacing [Å]
  double g_invA = 0;      ///< |g| = 1/d [1/Å]
  int multiplicity = 1;   ///< members of the family (within the zone when a zone is given)
  double F_abs_A = 0;     ///< |F_hkl| [Å] (equal for every member, kinematic Friedel's law)
  double intensity = 0;   ///< |F|², normalised so the strongest listed reflection = 100
  double powder_intensity = 0;  ///< multiplicity·|F|², same normalisation rule (no Lorentz factor)
  bool is_forbidden = false;    ///< |F| ≈ 0 (listed only with ReflectionOptions::include_forbidden)
};

struct ReflectionOptions {
  bool merge_families = true;      ///< merge symmetry-equivalent hkl (equivalent_reflections)
  bool include_forbidden = false;  ///< also list kinematically forbidden reflections (intensity 0)
  bool use_zone = false;           ///< restrict to the Laue zone laue_zone_order(hkl) = laue_zone
  Vec3 zone_uvw = Vec3::Zero();    ///< zone axis [uvw] (integer-valued)
  int laue_zone = 0;               ///< 0 = zero-order Laue zone, n = n-th HOLZ (centring-reduced)
};

/// All reflections with d ≥ d_min_A (000 excluded), sorted by decreasing d then by hkl.
/// Throws Error for d_min_A ≤ 0, 1/d_min beyond the table's range (scattering_table_q_max_invA),
/// a zero zone axis or a crystal without atoms.
std::vector<Reflection> list_reflections(const Crystal& crystal, double d_min_A,
                                         ScatteringTable table = ScatteringTable::Kirkland,
                                         const ReflectionOptions& options = {});

/// One crystal in a SAED pattern: its orientation in the lab frame (beam along +z, pattern
/// plane x, y) and the zone axis that orientation puts along the beam.
struct SaedPhase {
  Crystal crystal;
  std::string name;                     ///< label in tables and pictures (default crystal.name)
  Mat3 orientation = Mat3::Identity();  ///< R: crystal Cartesian frame → lab frame
  Vec3 zone_uvw = Vec3::Zero();         ///< integer zone axis along +z (from R)
  double weight = 1.0;                  ///< relative illuminated volume (scales its intensities)
};

/// Phase with zone [uvw] along +z and the in-plane direction x_uvw along +x (zone_rotation,
/// model.hpp; x_uvw = 000 picks the shortest lattice direction ⊥ zone).
SaedPhase saed_phase_for_zone(const Crystal& crystal, const Vec3& zone_uvw,
                              const Vec3& x_uvw = Vec3::Zero());
/// Phase with an explicit orientation R (e.g. from an orientation relationship). R must be a
/// proper rotation putting a lattice direction with indices ≤ max_index along +z; throws otherwise.
SaedPhase saed_phase_with_orientation(const Crystal& crystal, const Mat3& orientation,
                                      int max_index = 12);

enum class RelrodShape {
  Sinc,      ///< sin²(πts)/(πs)², the exact slab shape (zeros at s = n/t)
  Envelope,  ///< t²/(1 + 2(πts)²): equal at s = 0, the sinc's mean beyond the main lobe
};

/// The relrod shape factor at excitation error s [1/Å] of a slab t [Å] thick (t² at s = 0).
double relrod_shape(double s_invA, double t_A, RelrodShape shape);

struct SaedSpec {
  double energy_eV = 200e3;
  double thickness_A = 200;        ///< slab thickness t in the shape function
  double g_max_invA = 1.5;         ///< largest in-plane |g| listed [1/Å]
  double tilt_x_mrad = 0;          ///< incident beam k0 ∝ (tan tilt_x, tan tilt_y, 1)
  double tilt_y_mrad = 0;
  int max_laue_zone = 0;           ///< 0 = ZOLZ only; n adds HOLZ of order 1..n (both signs)
  double holz_s_max_invA = 0.02;   ///< HOLZ spots listed only when |s_g| ≤ this [1/Å]
  RelrodShape shape = RelrodShape::Sinc;
  ScatteringTable table = ScatteringTable::Kirkland;
  bool double_diffraction = true;  ///< add the double-diffraction spots (see DoubleDiffraction)
  int dd_n_strongest = 0;          ///< between phases: cap to each phase's n strongest (0 = no cap)
  double dd_min_intensity = 1.0;   ///< within a phase: g1, g2 must have intensity ≥ this (of 100)
  double coincidence_tol_invA = 0.01;  ///< a between-phase sum this close to a spot is not new
  double moire_max_angle_deg = 10;  ///< g1 − g2 of near-parallel g's (angle ≤ this) is a moiré spot

  /// Throws Error naming the bad field (energy, thickness ≤ 0, g_max ≤ 0, negative orders...).
  void validate() const;
};

/// Double-diffraction rule (kinematic intensity stays 0 for these spots):
/// - WithinPhase: a kinematically forbidden g of the phase's listed Laue zones equals g1 + g2,
///   g1 and g2 allowed spots of that phase with intensity ≥ dd_min_intensity.
/// - BetweenPhases: g1 + g2 (lab-frame vectors) for every pair of spots of two phases with
///   intensity ≥ dd_min_intensity (capped to the dd_n_strongest of each when > 0; 000
///   excluded), |g1 + g2| ≤ g_max, not within coincidence_tol_invA of any kinematic spot;
///   duplicates merged. When g1 and −g2 are near-parallel (angle ≤ moire_max_angle_deg) and
///   |g1 + g2| ≤ ½ min(|g1|, |g2|), the spot is the moiré g1 − (−g2) of those two plane
///   families and is flagged is_moire.
enum class DoubleDiffraction { None = 0, WithinPhase = 1, BetweenPhases = 2 };

struct SaedSpot {
  int phase = 0;                ///< index into SaedPattern::phase_names (between phases: of g1)
  Miller hkl{};                 ///< of the spot (within a phase: g1 + g2); between phases: of g1
  int phase_b = -1;             ///< between phases: the phase of g2, else −1
  Miller hkl_b{};               ///< between phases: hkl of g2
  Vec3 g_lab_invA = Vec3::Zero();  ///< g in the lab frame [1/Å]; x, y = pattern position
  double g_invA = 0;            ///< |g| [1/Å]
  double d_A = 0;               ///< 1/|g| [Å] (0 for the direct beam)
  double excitation_error_invA = 0;  ///< s_g [1/Å]; > 0 inside the Ewald sphere
  double F_abs_A = 0;           ///< |F_hkl| [Å]
  double intensity = 0;         ///< weight·|F/Ω|²·shape(s), strongest non-000 spot = 100
  /// Laue-zone order (hkl·zone_uvw)/m reduced by the lattice centring (laue_zone_period: fcc
  /// [110] FOLZ = ±1, not ±2). [uvw] points along the beam (+z), so the Ewald sphere reaches
  /// the HOLZ with n < 0 (texts with [uvw] towards the gun call them n > 0).
  int laue_zone = 0;
  bool is_direct_beam = false;  ///< 000: intensity capped at 100, F_abs = F(000) of phase 0
  DoubleDiffraction double_diffraction = DoubleDiffraction::None;
  std::string dd_path;          ///< "Fe3O4 1-11 + Fe3O4 -11-1" for double-diffraction spots
  bool is_moire = false;        ///< between phases: difference of near-parallel g's (a moiré)
};

struct SaedPattern {
  std::vector<std::string> phase_names;
  std::vector<Vec3> phase_zones_uvw;
  double wavelength_A = 0;
  double g_max_invA = 0;
  /// Direct beam first, then kinematic spots by phase and |g|, then double-diffraction spots.
  std::vector<SaedSpot> spots;
};

/// Kinematic SAED of one or more phases: s_g = −(2k0·g + g²)/(2|k0 + g|) with |k0| = 1/λ,
/// I ∝ weight·|F_g/Ω|²·shape(s_g) (Ω: cell volume, so phases compare per unit volume).
SaedPattern kinematic_saed(const std::vector<SaedPhase>& phases, const SaedSpec& spec);

/// The paper's NiFe/Fe3O4 interface pattern in the box frame of preset_interface("nife-fe3o4")
/// (interface.hpp): both along [110], NiFe(−111) ∥ Fe3O4(−111) ∥ +y (the interface normal),
/// x = y × z, then NiFe rotated by nife_rotation_deg about the beam.
std::vector<SaedPhase> nife_fe3o4_phases(const Crystal& nife, const Crystal& fe3o4,
                                         double nife_rotation_deg = 4.2);

/// CSV `h,k,l,d_A,multiplicity,F_abs,intensity,g_invA,powder_intensity,two_theta_mrad`
/// (F_abs in Å; 2θ = 2 asin(λ/2d) at energy_eV).
std::string reflections_csv(const std::vector<Reflection>& reflections, double energy_eV);
/// CSV `phase,h,k,l,gx,gy,g,d_A,excitation_error,intensity,F_abs,laue_zone,double_diffraction,
/// dd_path,gx_inv_A,gy_inv_A,g_inv_A,moire` (moire 1 = moiré spot of two phases; g's and s in 1/Å, F_abs in Å; double_diffraction 0/1/2 = DoubleDiffraction; the
/// direct beam has phase "direct"; between-phase spots have phase "A+B" and empty h,k,l).
std::string saed_spots_csv(const SaedPattern& pattern);

struct SaedRenderSpec {
  int size_px = 512;              ///< square image, direct beam at pixel (size/2, size/2)
  double pixel_size_invA = 0;     ///< reciprocal pixel [1/Å]; 0 = fit ±1.05·g_max
  double spot_sigma_px = 1.5;     ///< Gaussian spot σ [px]; the peak pixel value = spot intensity
  bool log_scale = false;         ///< pixel = log10(1 + I/LOG_FLOOR), I in units of the strongest = 100
  double direct_beam_intensity = 100;  ///< drawn value of 000 (kinematics cannot give it)
  double label_min_intensity = 1.0;    ///< PNG: hkl labels for spots at least this strong
};
/// log10(1 + I/0.01): a spot of 1e-4 of the strongest reads 0.3, the strongest 4.
constexpr double SAED_LOG_FLOOR = 0.01;

/// Float image of the kinematic spots (double-diffraction spots are not drawn: intensity 0),
/// +x to the right, +y up (row 0 at the top), calibrated pixel_size_invA.
Image render_saed_image(const SaedPattern& pattern, const SaedRenderSpec& spec);
/// RGB preview: spots as discs (area ∝ log intensity) coloured by phase, double-diffraction
/// positions as open circles, hkl labels, a legend and a 1/nm scale bar.
Canvas render_saed_png(const SaedPattern& pattern, const SaedRenderSpec& spec);

}  // namespace epitem
