// Epitaxial interface builder: two crystals joined by an orientation relationship (OR)
// "(hkl)_s // (hkl)_o, [uvw]_s // [uvw]_o" (docs/formulas.md §9: R = F_s·F_oᵀ), optional tilt, ledges,
// slab / spherical-cap / Wulff overlayer; overlap removal and interface-void search on a cell list.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "epitem/crystal.hpp"
#include "epitem/json.hpp"
#include "epitem/model.hpp"
#include "epitem/progress.hpp"

namespace epitem {

/// Edge-on: the interface plane contains the beam (substrate at the bottom in y, overlayer
/// above, interface normal +y, as in cross-section HRTEM). Plan view: interface normal ∥ beam
/// (substrate at small z, overlayer stacked above it along z).
enum class InterfaceView { EdgeOn, PlanView };
enum class OverlayerShape { Slab, Cap, Wulff };

struct WulffFacet {
  Vec3 hkl = Vec3::Zero();       ///< facet family {hkl} of the overlayer (expanded by symmetry)
  double relative_energy = 1.0;  ///< γ_hkl / γ_ref; facet distance from the centre ∝ γ (Wulff)
};

/// Minimum allowed distance between two species [Å] (order of Z1, Z2 does not matter).
struct PairCutoff {
  int Z1 = 0, Z2 = 0;
  double cutoff_A = 0;
  std::string source;  ///< where the value comes from (reported)
};

/// How default pair cutoffs are chosen (docs/interface.md, "Contact distances").
/// Bulk: the pair's shortest distance in either bulk crystal minus bulk_cutoff_margin_A; a
/// metal–nonmetal pair in neither crystal takes the shortest metal–(that nonmetal) distance of
/// the bulk crystals (Ni–O on Fe₃O₄: Fe–O 1.889 Å of magnetite); any other pair the covalent
/// rule. Covalent: cutoff_scale × (r_cov,1 + r_cov,2) for every pair (the rule before issue 14).
enum class CutoffRule { Bulk, Covalent };

/// Shortest distance of one pair of species in a model, and where it lies.
struct ShortestPair {
  int Z1 = 0, Z2 = 0;
  double distance_A = 0;
  bool cross_phase = false;  ///< the two atoms belong to different phases
  Vec3 midpoint_A = Vec3::Zero();
};


struct InterfaceSpec {
  Crystal substrate, overlayer;
  /// Interface plane in each crystal; its normal points from the substrate into the overlayer.
  Vec3 substrate_plane_hkl{-1, 1, 1}, overlayer_plane_hkl{-1, 1, 1};
  /// Parallel in-plane directions (each must lie in its crystal's interface plane).
  Vec3 substrate_direction_uvw{1, 1, 0}, overlayer_direction_uvw{1, 1, 0};
  /// Substrate zone axis along the beam (+z). Edge-on: must lie in the interface plane; plan
  /// view: must be ∥ the plane normal. overlayer_zone_uvw = 000: implied by the OR; else it is
  /// checked against the OR (an inconsistent pair is an error).
  Vec3 zone_uvw{1, 1, 0}, overlayer_zone_uvw = Vec3::Zero();
  InterfaceView view = InterfaceView::EdgeOn;
  /// Extra rotation of the overlayer about tilt_axis (box frame; default the beam) pivoting on
  /// the interface under the particle centre.
  double tilt_deg = 0;
  Vec3 tilt_axis = Vec3::UnitZ();
  /// Apply the Nagai tilt of the ledge geometry (nagai_tilt) instead of tilt_deg.
  bool tilt_from_nagai = false;

  /// Box edges [Å]. Along periodic in-plane axes crossed by the substrate the edge is rounded
  /// to the nearest multiple of the substrate repeat (set round_box_to_substrate = false to
  /// keep it and accept a seam, reported).
  Vec3 box_A{60, 60, 40};
  bool round_box_to_substrate = true;
  /// An untilted slab overlayer is strained along each periodic axis to a whole number of its
  /// repeats (reported); otherwise (tilt, or false here) it gets a seam at the boundary.
  bool strain_slab_to_box = true;
  /// Coherent strain (0 = off): the overlayer's in-plane lattice is strained so that n of its
  /// repeats match one substrate repeat along each in-plane axis (InterfaceMismatch), fully up
  /// to this height above the interface, decaying as exp(−(t − D)/D) above it (docs/interface.md).
  double coherent_strain_depth_A = 0;
  double substrate_thickness_A = 25;  ///< along the interface normal, below the lowest terrace
  double vacuum_A = 3;                ///< empty margin at each end of the normal axis (≥ cutoffs)

  OverlayerShape shape = OverlayerShape::Slab;
  double overlayer_thickness_A = 20;   ///< slab: top at interface + this
  double particle_radius_A = 20;       ///< cap: sphere radius; Wulff: distance of the γ=1 facet
  double particle_center_height_A = 0; ///< sphere / Wulff centre above the interface (0: half)
  std::vector<WulffFacet> wulff_facets;

  /// Ledges: terraces of width ≈ terrace_width_A (rounded to divide the box) whose heights
  /// rise and fall by ledge_height_layers substrate plane spacings (periodic staircase).
  int ledge_height_layers = 0;
  double terrace_width_A = 0;
  /// false: the staircase rises to the middle of the box and falls back (default); true: a
  /// vicinal staircase rising in +ledge-axis terrace by terrace, closed by one tall step at the
  /// periodic boundary (what the Nagai tilt of a particle on a miscut surface refers to).
  bool vicinal_ledges = false;

  std::uint64_t seed = 1;  ///< random species for mixed-occupancy sites (NiFe), recorded
  /// Default cutoffs by `cutoff_rule`; `cutoffs` overrides chosen pairs.
  CutoffRule cutoff_rule = CutoffRule::Bulk;
  /// Bulk rule: cutoff = shortest bulk distance − this, so bulk pairs are never overlaps.
  double bulk_cutoff_margin_A = 0.02;
  /// Covalent rule (and pairs the bulk crystals say nothing about): scale × radii sum
  /// (Cordero 2008 radii).
  double cutoff_scale = 0.8;
  std::vector<PairCutoff> cutoffs;
  /// Added to every cutoff between atoms of different phases (void volume vs cutoff).
  double interface_cutoff_shift_A = 0;

  bool find_voids = true;
  double void_probe_A = 0;   ///< probe radius; 0 = largest hole of either bulk crystal + 0.1 Å
  double void_grid_A = 0.5;  ///< grid spacing of the void search
  double void_band_A = 4;    ///< half-width of the searched band around the interface

  /// Throws Error with a one-line message for each inconsistent or impossible setting.
  void validate() const;
};

/// Nagai / Riesz tilt of an overlayer on a stepped substrate (H. Nagai, J. Appl. Phys. 45, 3789
/// (1974); M. Riesz, J. Cryst. Growth 140, 213 (1994)): the overlayer planes that meet across a
/// step of height h have spacing d_o ≠ d_s, so they tilt by tan Δα = (d_s − d_o)/d_o · tan α,
/// tan α = h / w, about the step edges. Steps at angle φ to the tilt axis: the component about
/// the tilt axis is tan Δα_axis = tan Δα · cos φ (rotated-tilt generalisation). docs/interface.md.
struct NagaiTilt {
  double step_height_A = 0;        ///< h = ledge layers × substrate plane spacing (0: flat)
  double terrace_width_A = 0;      ///< w, as built (box divided into whole terraces)
  double vicinal_angle_deg = 0;    ///< α, tan α = h / w
  double overlayer_spacing_A = 0;  ///< d_o: overlayer layer period along the interface normal
  int overlayer_planes = 0;        ///< N = round(h / d_o): overlayer planes filling one step
  double substrate_spacing_A = 0;  ///< d_s = h / N: substrate height per overlayer plane
  double mismatch = 0;             ///< (d_s − d_o) / d_o
  double tilt_deg = 0;             ///< Δα about the step edges (positive: the overlayer planes
                                   ///< rise toward the upper terrace faster than the substrate's)
  Vec3 step_edge_axis = Vec3::UnitZ();  ///< box frame: ledge axis × interface normal
  double axis_cos = 1;             ///< cos φ, φ = angle between the step edges and the tilt axis
  double tilt_about_axis_deg = 0;  ///< tan = tan Δα · cos φ
};
/// tan Δα = mismatch · h / w [deg].
double nagai_tilt_deg(double mismatch, double step_A, double terrace_A);
/// The terrace width w that gives tilt_deg: w = mismatch · h / tan Δα [Å].
double nagai_terrace_width_A(double mismatch, double step_A, double tilt_deg);
/// Layer period of `c` along the normal of (hkl): d_hkl / n for the largest n (≤ 12) whose
/// shift maps the atomic layers (height, species) onto themselves [Å].
double layer_period_A(const Crystal& c, const Vec3& hkl);
/// Nagai tilt of the spec's ledges (as the builder will lay them out) about spec.tilt_axis.
NagaiTilt nagai_tilt(const InterfaceSpec& spec);
/// Box-frame direction of the step edges for a view (ledge axis × interface normal).
Vec3 step_edge_axis(InterfaceView view);
/// `--ledges auto`: vicinal ledges (one layer unless set) with the terrace width that makes
/// spec.tilt_deg Nagai-consistent; the box along the ledge axis becomes k substrate repeats
/// holding n whole terraces, k, n chosen for the closest width (box within 0.75–1.6× the
/// request). Returns a note on the choice; throws when the tilt has the sense opposite to the
/// mismatch or the step edges are ⊥ the tilt axis.
std::string make_ledges_nagai_consistent(InterfaceSpec& spec);

/// Lattice mismatch along one in-plane box axis, for the untilted OR.
struct InterfaceMismatch {
  std::string axis;                  ///< "x", "y" or "z" (box frame)
  Vec3 substrate_uvw = Vec3::Zero(); ///< shortest lattice translation along the axis (indices)
  Vec3 overlayer_uvw = Vec3::Zero(); ///< 000 when the overlayer has none along it (irrational)
  double substrate_repeat_A = 0, overlayer_repeat_A = 0;  ///< 0 = no repeat ≤ index 12
  int n_overlayer = 0;               ///< overlayer repeats over one substrate repeat (nearest)
  double mismatch = 0;               ///< (n_o·L_o − L_s)/L_s
  int coincidence_substrate = 0, coincidence_overlayer = 0;  ///< best m:n with m ≤ 6
  double coincidence_strain = 0;     ///< (n·L_o − m·L_s)/(m·L_s)
};

struct InterfaceVoid {
  Vec3 center_A = Vec3::Zero();  ///< centroid of the probe-accessible region
  double volume_A3 = 0;          ///< union of probe spheres over the region
  std::size_t n_grid_points = 0;
};

/// Where the interface lies: a piecewise-flat (terraced) surface along the normal axis.
struct InterfaceGeometry {
  int normal_axis = 1;       ///< 1 (y) edge-on, 2 (z) plan view
  int ledge_axis = 0;        ///< terraces vary along x
  double level0_A = 0;       ///< height of the lowest terrace
  double step_A = 0;         ///< ledge height (layers × plane spacing)
  int n_terraces = 1;
  double terrace_width_A = 0;
  double box_ledge_A = 0;    ///< box length along ledge_axis
  bool vicinal = false;      ///< monotonic staircase (InterfaceSpec::vicinal_ledges)
  /// Terrace under the particle's pivot (left of the central step) and the highest terrace.
  int pivot_terrace() const;
  int top_terrace() const;
  /// Where terrace 0 (the lowest) begins: placed so that the step from terrace 0 to terrace 1
  /// lies at the box centre, under a particle, however many terraces the box holds (heights
  /// rise to the middle of the staircase; a particle at level 0 there would be buried).
  double staircase_origin_A() const;
  /// Interface height at coordinate s along ledge_axis (periodic).
  double height_A(double s) const;
  /// Lowest and highest interface height over [s0, s1].
  std::pair<double, double> height_range_A(double s0, double s1) const;
};

struct InterfaceReport {
  Mat3 substrate_rotation = Mat3::Identity();  ///< crystal Cartesian → box frame
  Mat3 overlayer_rotation = Mat3::Identity();  ///< includes the tilt
  Vec3 overlayer_strain = Vec3::Zero();        ///< homogeneous strain applied along box x, y, z
  Vec3 coherent_strain = Vec3::Zero();         ///< extra strain at the interface (coherent option)
  Vec3 substrate_origin_A = Vec3::Zero(), overlayer_origin_A = Vec3::Zero();
  Vec3 overlayer_zone_uvw = Vec3::Zero();      ///< overlayer direction along +z (real indices)
  double tilt_deg = 0;
  NagaiTilt nagai;                             ///< of the ledges as built, next to tilt_deg
  Vec3 pivot_A = Vec3::Zero();
  Vec3 box_A = Vec3::Zero();                   ///< final box (after rounding)
  InterfaceGeometry geometry;
  std::vector<InterfaceMismatch> mismatch;
  std::vector<std::string> boundary_notes;     ///< how each periodic boundary is handled
  std::vector<PairCutoff> cutoffs;             ///< every pair present, as used, with source
  std::vector<ShortestPair> shortest;          ///< shortest pair per species pair, as built
  std::size_t n_substrate = 0, n_overlayer = 0;
  std::size_t removed_interface = 0;  ///< overlayer atoms too close to the substrate
  std::size_t removed_boundary = 0;   ///< same-phase overlaps across a periodic seam
  std::size_t vacancies = 0;          ///< mixed sites left empty (occupancy sum < 1)
  double void_probe_A = 0;
  std::vector<InterfaceVoid> voids;
  double void_volume_A3 = 0;
  std::uint64_t seed = 0;
};

struct InterfaceResult {
  AtomicModel model;  ///< phase 0 = substrate, 1 = overlayer
  InterfaceReport report;
};

/// Builds the model (validate() first). O(N) in the number of atoms.
InterfaceResult build_interface(const InterfaceSpec& spec, const ProgressFn& progress = {});

/// Named presets; "nife-fe3o4" = NiFe(−111)//Fe3O4(−111), NiFe[110]//Fe3O4[110], beam ∥ [110],
/// NiFe tilted 4.2° about the beam, one-layer ledge under a NiFe cap, edge-on.
InterfaceSpec preset_interface(const std::string& name);
std::vector<std::string> interface_preset_names();

/// Covalent radius [Å] (Cordero et al., Dalton Trans. 2008, 2832, via gemmi).
double covalent_radius_A(int Z);
/// Cutoffs of every pair of species in the two crystals under `spec`, with their source.
std::vector<PairCutoff> contact_cutoffs(const InterfaceSpec& spec);
/// Cutoff used for a pair under `spec` [Å] (builds the table: use contact_cutoffs for many).
double pair_cutoff_A(const InterfaceSpec& spec, int Z1, int Z2);
/// Shortest distance of each pair of species in the bulk crystals (either one) [Å].
std::vector<PairCutoff> bulk_pair_minima(const InterfaceSpec& spec);

/// Per pair of species (Z1 ≤ Z2), the shortest distance up to max_A (periodic as the model).
std::vector<ShortestPair> shortest_pairs(const AtomicModel& model, double max_A = 3.5);

/// Void volume of the model built with the chosen cutoffs, with every interface (cross-phase)
/// cutoff shifted by ±shift_A, and under the covalent rule.
struct VoidVsCutoff {
  std::string cutoffs;  ///< "chosen", "interface −0.1 Å", "interface +0.1 Å", "covalent 0.8×"
  std::size_t removed_interface = 0, n_voids = 0;
  double void_volume_A3 = 0;
};
std::vector<VoidVsCutoff> void_volume_vs_cutoff(const InterfaceSpec& spec, double shift_A = 0.1);
/// Largest empty sphere in the bulk crystal, measured from atom surfaces (covalent radii) [Å].
double largest_bulk_hole_A(const Crystal& crystal);

/// The Nagai tilt with its formula inputs next to the applied tilt (sidecar block "nagai").
Json nagai_json(const NagaiTilt& t, double applied_tilt_deg);
/// JSON for the sidecar: OR, rotations, tilt, mismatch, cutoffs, removed counts, voids, seed.
Json interface_report_json(const InterfaceSpec& spec, const InterfaceReport& report);

class Canvas;
/// Projection along the beam for people to check by eye: atoms coloured by phase and species
/// (far atoms first), the interface line, voids circled, a scale bar and a legend.
Canvas render_interface_projection(const AtomicModel& model, const InterfaceReport& report,
                                   double pixels_per_A);

}  // namespace epitem
