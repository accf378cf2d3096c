// Indexing measured reflections against crystal phases (docs/formulas.md §8-9): d-spacings → {hkl}
// candidates with ambiguity; spot vectors → zone axis + in-plane orientation (spacings and
// inter-spot angles, zone = h1 × h2); orientation relationship and relative rotation about the beam.
#pragma once
#include <string>
#include <vector>

#include "epitem/crystal.hpp"

namespace epitem {

/// One {hkl} family of a phase: symmetry-equivalent reflections sharing d and |F|.
struct ReflectionFamily {
  Vec3 hkl = Vec3::Zero();      ///< representative (largest sorted indices, e.g. 311)
  std::vector<Vec3> members;    ///< every equivalent reflection, Friedel mates included
  double d_A = 0;
  double intensity_rel = 0;     ///< kinematic |F|² / strongest; 0 for forbidden-but-dynamic
  bool kinematic_allowed = true;///< false: absent kinematically, reachable by double diffraction
};

/// A phase prepared for indexing: its lattice and reflection families (d descending).
struct Phase {
  std::string name;
  Crystal crystal;
  std::vector<ReflectionFamily> families;
};

struct PhaseSpec {
  double d_min_A = 1.0;                 ///< shortest spacing listed [Å]
  /// Families weaker than this × strongest count as absent. Default 0: every reflection the
  /// space group allows, since image FFTs show kinematically weak ones (SrTiO3 100 in HAADF).
  double min_intensity_rel = 0;
  /// Also list kinematically absent reflections reachable as g1 + g2 of two allowed ones
  /// (they show in HRTEM FFTs and thick-crystal SAED through double diffraction).
  bool double_diffraction = false;
};

/// Reflection families of `crystal` from kinematic structure factors (docs/formulas.md §7).
Phase make_phase(const Crystal& crystal, const PhaseSpec& spec = {});

// ---- (a) spacing indexing ----

struct SpacingCandidate {
  int phase = 0;                ///< index into the phases passed in
  std::string phase_name;
  std::vector<Vec3> hkl;        ///< families with this d (several when they coincide: 511/333)
  double d_A = 0;               ///< theoretical spacing
  double error_rel = 0;         ///< (d_measured − d_A)/d_A
  double intensity_rel = 0;
  bool kinematic_allowed = true;
  std::string label() const;    ///< "Fe3O4 {511}/{333}"
};

struct SpacingMatch {
  double d_measured_A = 0;
  std::vector<SpacingCandidate> candidates;  ///< all within tolerance, |error| ascending
  /// More than one distinct spacing or phase within tolerance: the assignment is not unique.
  bool ambiguous = false;
  bool matched() const { return !candidates.empty(); }
};

/// Every {hkl} of every phase whose d is within tolerance_rel of each measured spacing.
std::vector<SpacingMatch> index_spacings(const std::vector<double>& d_measured_A,
                                         const std::vector<Phase>& phases,
                                         double tolerance_rel = 0.01);

// ---- (b) zone-axis indexing of spot vectors ----

/// A measured spot in the image/pattern plane: x right, y up on screen [1/Å].
struct Spot {
  double kx_invA = 0, ky_invA = 0;
  double intensity = 1;
};

/// Which rows of a spot CSV to use and what was read.
struct SpotCsvOptions {
  int frame = -1;  ///< movies (track detections, tracks): this frame; −1 = the one with most spots
};
struct SpotCsvInfo {
  std::string format;   ///< "fft/index/saed spots", "track detections", "tracks"
  int frame = -1;       ///< frame used (movies), else −1
  int frames = 0;       ///< frames in the file (movies), else 0
  std::string note;     ///< one line for the user: which columns and frame were used, and why
};

/// Spots from any epitem CSV with reciprocal vectors (read with read_csv_table): epitem fft and
/// index (kx,ky), saed (gx,gy), track --detections (gx_inv_A,gy_inv_A per frame), track tracks
/// (g_inv_A,azimuth_deg, alive from first_frame to last_frame); kx_invA/gx_invA/kx_inv_A
/// spellings all accepted, |g| as g_inv_A (old: g, g_invA). Optional intensity (or
/// mean_intensity). Rows with a zero vector (direct beam) are skipped. Throws Error naming the
/// file, line and column at fault, or the frame asked for when it has no spots.
std::vector<Spot> read_spots_csv(const std::string& path, const SpotCsvOptions& options = {},
                                 SpotCsvInfo* info = nullptr);

struct ZoneSpec {
  int max_index = 5;             ///< largest |u|,|v|,|w| of candidate zone axes
  double tolerance_rel = 0.02;   ///< allowed |g_meas − g_calc| / |g_calc| (after the fitted map)
  double angle_tolerance_deg = 2;///< allowed error of inter-spot angles
  /// The calibration may be off by up to ±this (1–5 % in practice): each solution's scale is
  /// searched within it and fitted, and with ≥ 4 spots an elliptical distortion up to
  /// max_distortion too. 0 = trust the calibration (scale 1, no distortion).
  double scale_range = 0.05;
  double max_distortion = 0.03;  ///< largest σ_max/σ_min − 1 of the fitted map
  int max_basis_spots = 8;       ///< strongest spots tried as the basis pair
  int max_solutions = 10;        ///< ranked solutions kept per phase
  /// A best solution seeing less than this share of the strong predicted reflections (see
  /// ZoneSolution::completeness) gets a caveat.
  double min_completeness = 0.5;
};

struct IndexedSpot {
  int spot = 0;                  ///< index into the input spots
  Vec3 hkl = Vec3::Zero();
  double error_rel = 0;          ///< |g_meas − g_calc| / |g_calc|
};

struct ZoneSolution {
  int phase = 0;
  std::string phase_name;
  Vec3 zone_uvw = Vec3::Zero();  ///< zone axis, pointing out of the screen (toward the viewer)
  /// Proper rotation: crystal Cartesian frame → screen frame (x right, y up, z to the viewer).
  Mat3 rotation = Mat3::Identity();
  double scale = 1;              ///< g_meas / g_calc fitted (√det of the map; 1 when scale_range = 0)
  double distortion = 0;         ///< σ_max/σ_min − 1 of the fitted map (elliptical distortion)
  /// The fitted screen map: measured ≈ distortion_map · scale · rotation · g (identity when
  /// no distortion was fitted); applied when matching spots.
  Eigen::Matrix2d distortion_map = Eigen::Matrix2d::Identity();
  Mat3 reciprocal_invA = Mat3::Identity();  ///< the phase's reciprocal basis (columns a*, b*, c*)
  std::vector<IndexedSpot> spots;///< explained spots
  double residual_rel = 0;       ///< RMS |g_meas − g_calc| / |g_calc| over explained spots
  /// Fraction of the predicted reflections (intensity ≥ 1 % of the strongest) inside the
  /// measured |g| range that were seen.
  double completeness = 0;       ///< weighted by √(predicted intensity)
  double explained_weight = 0;   ///< Σ weights of the explained spots (strong spots weigh more)
  /// Ranking figure of merit (higher is better): explained_weight·(0.5 + 0.5·completeness) −
  /// residual/tolerance.
  double score = 0;
  /// Why this best fit is unreliable (scale at the search edge, low completeness, the strongest
  /// spots unexplained); empty when nothing is wrong. Set by index_zone for `best` entries.
  std::string caveat;
  /// Screen vector of g_hkl [1/Å] (x right, y up; z ≈ 0 for in-zone reflections).
  Vec3 screen_g_invA(const Vec3& hkl) const { return scale * (rotation * (reciprocal_invA * hkl)); }
  /// Direction of g_hkl on screen, CCW from +x [deg], in (−180, 180].
  double direction_deg(const Vec3& hkl) const;
};

struct ZoneIndexing {
  std::vector<ZoneSolution> best;            ///< one per phase found (explains ≥ 2 spots)
  std::vector<std::vector<ZoneSolution>> ranked;  ///< per phase, all candidates ranked
  /// Per entry of `best`: the best solution of the same phase with a zone not equivalent by
  /// symmetry (runner_up_found false if none), and why it lost.
  std::vector<ZoneSolution> runner_up;
  std::vector<bool> runner_up_found;
  std::vector<std::string> runner_up_reason;
  std::vector<int> unexplained;              ///< spot indices no chosen solution explains
};

/// Zone axis and in-plane orientation of each phase. Each spot goes to the phase that
/// explains it with the smallest error; Friedel mates (−g) are added when missing.
ZoneIndexing index_zone(const std::vector<Spot>& spots, const std::vector<Phase>& phases,
                        const ZoneSpec& spec = {});

// ---- (c) orientation relationship ----

struct OrientationRelationship {
  Vec3 zone_a = Vec3::Zero(), zone_b = Vec3::Zero();  ///< both along the beam
  Vec3 plane_a = Vec3::Zero(), plane_b = Vec3::Zero();///< the most nearly parallel low-index planes
  double plane_angle_deg = 0;   ///< angle between their normals
  /// Rotation of phase b relative to a about the beam (CCW positive, screen frame) [deg]:
  /// the signed angle from g(plane_a) to g(plane_b), from the measured spots of both planes
  /// (every order n·h seen, weighted by |g|²) when they were seen (from_spots), else from the
  /// fitted orientations.
  double relative_rotation_deg = 0;
  double fitted_rotation_deg = 0;  ///< the same from the two fitted orientations
  bool from_spots = false;
  std::string describe(const std::string& name_a, const std::string& name_b) const;
};

/// OR of two solutions of the same image: relabels b by its zone's symmetry so that the most
/// nearly parallel low-index planes share indices where possible. With `spots` (those passed
/// to index_zone) the rotation comes from the measured spots (all orders) of the two planes,
/// which a strained or distorted lattice does not bias.
OrientationRelationship orientation_relationship(const ZoneSolution& a, const Phase& phase_a,
                                                 const ZoneSolution& b, const Phase& phase_b,
                                                 const std::vector<Spot>& spots = {});

// ---- calibration ----

struct Calibration {
  double scale = 0;              ///< multiply measured values by this to get true g [1/Å per unit]
  double residual_rel = 0;       ///< RMS relative error of the matched reflections
  std::vector<SpacingCandidate> matched;  ///< one per measured value (empty label if unmatched)
  int n_matched = 0;
};

/// Scale that maps measured reciprocal lengths (ring radii or peak |g| in any unit: px,
/// 1/Å with a wrong pixel size) onto the reference phase's reflections, maximising the number
/// matched within tolerance_rel, then least squares.
Calibration calibrate_scale(const std::vector<double>& measured, const Phase& reference,
                            double tolerance_rel = 0.015);

}  // namespace epitem
