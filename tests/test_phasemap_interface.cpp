// Phase maps (phasemap.hpp) on our own simulated NiFe/Fe3O4 interface: the "nife-fe3o4" preset
// (interface.hpp) → multislice exit wave → HRTEM image → Bragg-filtered phase map with each
// phase's strongest zone-axis reflections (kinematic list, rotated by the model's orientation).
// Each phase's area is compared with the model's projected area (projected_area.hpp).
#include <algorithm>
#include <cmath>

#include "epitem/imaging.hpp"
#include "epitem/interface.hpp"
#include "epitem/kinematic.hpp"
#include "epitem/multislice.hpp"
#include "epitem/phasemap.hpp"
#include "epitem/projected_area.hpp"
#include "testing.hpp"

using namespace epitem;

namespace {

// The phase's zero-order-Laue-zone reflections in the image frame: the `families` strongest
// kinematic families with d ≥ d_min_A along the phase's zone, each member rotated into the box
// frame by the model's orientation; y flipped (image rows run along box +y, PhaseReflection y
// points up). One of each ±g pair (phase_map adds the Friedel mate).
PhaseFilter phase_reflections(const std::string& name, const Crystal& crystal, const Mat3& rotation,
                              const Vec3& zone_uvw, int families, double d_min_A) {
  ReflectionOptions opt;
  opt.use_zone = true;
  opt.zone_uvw = zone_uvw;
  std::vector<Reflection> list = list_reflections(crystal, d_min_A, ScatteringTable::Kirkland, opt);
  std::stable_sort(list.begin(), list.end(), [](const Reflection& a, const Reflection& b) { return a.intensity > b.intensity; });
  PhaseFilter p;
  p.name = name;
  for (int f = 0; f < families && f < int(list.size()); ++f)
    for (const Vec3& hkl : equivalent_reflections(crystal, to_vec3(list[size_t(f)].hkl))) {
      if (std::abs(hkl.dot(zone_uvw)) > 1e-6)
        continue;
      const Vec3 g = rotation * crystal.lattice.g_invA(hkl);
      REQUIRE(std::abs(g.z()) < 1e-6);  // in the zone: ⊥ the beam
      const PhaseReflection r{g.x(), -g.y()};
      bool mate_listed = false;
      for (const PhaseReflection& q : p.reflections)
        mate_listed = mate_listed || (std::abs(q.gx_invA + r.gx_invA) < 1e-9 && std::abs(q.gy_invA + r.gy_invA) < 1e-9);
      if (!mate_listed)
        p.reflections.push_back(r);
    }
  return p;
}

}  // namespace

TEST_CASE("phase areas of a simulated NiFe/Fe3O4 HRTEM image vs the model's projected areas", "[phasemap][slow]") {
  // The preset's OR, tilt and ledge, with a NiFe slab instead of the spherical cap: a cap's
  // projected thickness (and so its fringe amplitude) falls to zero at its rim, so its
  // fringe-visible area is not its projected area; a slab has a constant thickness.
  InterfaceSpec spec = preset_interface("nife-fe3o4");
  spec.shape = OverlayerShape::Slab;
  spec.overlayer_thickness_A = 20;
  spec.find_voids = false;
  // The covalent contact rule, as this check was set up: the bulk rule (default since issue 14)
  // empties ~10 more NiFe columns in the first 6 Å, and the model's reference splits that gap
  // equally while the map gives most of it to NiFe (+5.2 % at Δf 80 Å) — an open question of
  // how to count partly empty columns, recorded in docs/analysis.md.
  spec.cutoff_rule = CutoffRule::Covalent;
  // A square box gives square image pixels: both edges = the x edge rounded to whole substrate
  // repeats (exactly periodic along x; along y, the interface normal, vacuum ends the crystals).
  const InterfaceResult first = build_interface(spec);
  spec.box_A.x() = spec.box_A.y() = first.report.box_A.x();
  spec.round_box_to_substrate = false;
  const InterfaceResult built = build_interface(spec);
  const AtomicModel& model = built.model;

  MultisliceSpec ms;
  ms.energy_eV = 200e3;
  ms.sampling_A = 0.12;
  Wave exit;
  run_multislice(model, ms, [&](int, int, double, const Wave& w) { exit = w; });
  REQUIRE(exit.grid.nx == exit.grid.ny);
  // The OR puts NiFe[110] ∥ Fe3O4[110] along the beam; the tilt is about the beam.
  const Vec3 zone = spec.zone_uvw;
  REQUIRE(built.report.overlayer_zone_uvw.normalized().dot(zone.normalized()) == Approx(1).margin(1e-9));
  // NiFe: its strongest zone-axis family ({111}, two fringe sets). Fe3O4: its two strongest
  // families with d larger than every NiFe spacing (spinel reflections inside NiFe's innermost
  // ring). The automatic mask σ keeps every mask clear of all lattice peaks in the image
  // (NiFe {111} sits ~0.08 1/Å from Fe3O4 {222}).
  ReflectionOptions in_zone;
  in_zone.use_zone = true;
  in_zone.zone_uvw = zone;
  double nife_d_max_A = 0;
  for (const Reflection& r : list_reflections(spec.overlayer, 1.4, ScatteringTable::Kirkland, in_zone))
    nife_d_max_A = std::max(nife_d_max_A, r.d_A);
  std::vector<PhaseFilter> phases = {
      phase_reflections("Fe3O4", spec.substrate, built.report.substrate_rotation, zone, 2, nife_d_max_A * 1.001),
      phase_reflections("NiFe", spec.overlayer, built.report.overlayer_rotation, zone, 1, 1.4)};
  const ProjectedAreas model_areas = projected_phase_areas(
      model, {{&spec.substrate, built.report.substrate_rotation}, {&spec.overlayer, built.report.overlayer_rotation}});

  // A low-delocalisation lens (Cs-corrected-like: Cs = 0) at several defoci. With Cs = 1 mm at
  // Scherzer focus NiFe fringes delocalise ~6 Å into the vacuum and no fringe-based map can
  // match the model. Where a phase's chosen fringes are well transferred (fringe contrast
  // ≥ 0.2 at Δf = −30, 30, 80 Å) the map must give both areas within 5 %. Where the NiFe {111}
  // fringes are barely imaged (Δf = 15 Å: contrast 0.04, areas +6 %; Δf = 50 Å: they vanish
  // inside the slab, contrast 0.07, NiFe +22 %) the map must say so through its fringe contrast.
  Lens lens;
  lens.energy_eV = 200e3;
  for (const double defocus_A : {-30.0, 30.0, 80.0, 15.0, 50.0}) {
    lens.aberrations.defocus_A = defocus_A;
    const Image image = form_image(exit, lens, CoherenceSpec{});
    PhaseMapSpec periodic;  // the simulated image is one period
    periodic.periodic = true;
    const PhaseMapFrame map = phase_map(image, phases, periodic);
    if (defocus_A == 15.0 || defocus_A == 50.0) {
      CHECK(map.fringe_contrast[1] < MIN_FRINGE_CONTRAST);
      continue;
    }
    double map_total = 0, model_total = 0;
    for (int p = 0; p < 2; ++p) {
      const double model_nm2 = model_areas.area_A2[size_t(p)] / 100;
      INFO("Δf " << defocus_A << " Å, " << phases[size_t(p)].name << ": " << phases[size_t(p)].reflections.size()
                 << " reflections, σ " << map.mask_sigma_invA << " 1/Å, fringe contrast "
                 << map.fringe_contrast[size_t(p)] << ", map " << map.area_nm2[size_t(p)] << " nm², model "
                 << model_nm2 << " nm²");
      map_total += map.area_nm2[size_t(p)];
      model_total += model_nm2;
      CHECK(map.fringe_contrast[size_t(p)] >= MIN_FRINGE_CONTRAST);
      CHECK(map.area_nm2[size_t(p)] == Approx(model_nm2).epsilon(0.05));
    }
    CHECK(map_total == Approx(model_total).epsilon(0.05));
  }
}
