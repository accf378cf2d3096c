// Interface report as JSON (sidecar) and as a picture (projection along the beam).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "epitem/element.hpp"
#include "epitem/interface.hpp"
#include "epitem/png.hpp"
#include "epitem/units.hpp"

namespace epitem {

namespace {

Json vec_json(const Vec3& v) { return Json(std::vector<double>{v[0], v[1], v[2]}); }

Json mat_json(const Mat3& m) {
  Json rows = Json::array();
  for (int r = 0; r < 3; ++r)
    rows.push(vec_json(m.row(r).transpose()));
  return rows;
}

const char* view_name(InterfaceView v) { return v == InterfaceView::EdgeOn ? "edge-on" : "plan-view"; }
const char* shape_name(OverlayerShape s) {
  switch (s) {
    case OverlayerShape::Slab: return "slab";
    case OverlayerShape::Cap: return "cap";
    case OverlayerShape::Wulff: return "wulff";
  }
  return "?";
}

}  // namespace

Json nagai_json(const NagaiTilt& t, double applied_tilt_deg) {
  Json j = Json::object();
  j.set("formula", "tan(dalpha) = (d_s - d_o)/d_o * tan(alpha), tan(alpha) = h/w; about the step "
                   "edges, component about the tilt axis tan = tan(dalpha)*cos(phi) (Nagai 1974, Riesz 1994)");
  j.set("step_height_A", t.step_height_A);
  j.set("terrace_width_A", t.terrace_width_A);
  j.set("vicinal_angle_deg", t.vicinal_angle_deg);
  j.set("overlayer_plane_spacing_A", t.overlayer_spacing_A);
  j.set("overlayer_planes_per_step", t.overlayer_planes);
  j.set("substrate_spacing_per_plane_A", t.substrate_spacing_A);
  j.set("mismatch_percent", 100 * t.mismatch);
  j.set("nagai_tilt_deg", t.tilt_deg);
  j.set("step_edge_axis_box", vec_json(t.step_edge_axis));
  j.set("cos_step_edges_tilt_axis", t.axis_cos);
  j.set("nagai_tilt_about_axis_deg", t.tilt_about_axis_deg);
  j.set("applied_tilt_deg", applied_tilt_deg);
  j.set("applied_minus_nagai_deg", applied_tilt_deg - t.tilt_about_axis_deg);
  return j;
}

Json interface_report_json(const InterfaceSpec& spec, const InterfaceReport& rep) {
  Json j = Json::object();
  Json orr = Json::object();
  orr.set("substrate", spec.substrate.name);
  orr.set("overlayer", spec.overlayer.name);
  orr.set("substrate_plane_hkl", vec_json(spec.substrate_plane_hkl));
  orr.set("overlayer_plane_hkl", vec_json(spec.overlayer_plane_hkl));
  orr.set("substrate_direction_uvw", vec_json(spec.substrate_direction_uvw));
  orr.set("overlayer_direction_uvw", vec_json(spec.overlayer_direction_uvw));
  orr.set("zone_uvw", vec_json(spec.zone_uvw));
  orr.set("overlayer_zone_uvw", vec_json(rep.overlayer_zone_uvw));
  j.set("orientation_relationship", orr);
  j.set("view", view_name(spec.view));
  j.set("tilt_deg", rep.tilt_deg);
  j.set("tilt_axis_box", vec_json(spec.tilt_axis));
  j.set("tilt_source", spec.tilt_from_nagai ? "nagai (--tilt nagai)" : "given (--tilt)");
  j.set("nagai", nagai_json(rep.nagai, rep.tilt_deg));
  j.set("pivot_A", vec_json(rep.pivot_A));
  j.set("substrate_rotation", mat_json(rep.substrate_rotation));
  j.set("overlayer_rotation", mat_json(rep.overlayer_rotation));
  j.set("rotation_note", "rows map crystal Cartesian (a along x, b in xy) to the box frame (beam +z)");
  j.set("box_A", vec_json(rep.box_A));
  j.set("shape", shape_name(spec.shape));
  Json geo = Json::object();
  geo.set("interface_level_A", rep.geometry.level0_A);
  geo.set("ledge_height_A", rep.geometry.step_A);
  geo.set("n_terraces", rep.geometry.n_terraces);
  geo.set("terrace_width_A", rep.geometry.terrace_width_A);
  geo.set("staircase", rep.geometry.vicinal ? "vicinal" : "up-and-down");
  j.set("interface", geo);
  Json mm = Json::array();
  for (const InterfaceMismatch& m : rep.mismatch) {
    Json e = Json::object();
    e.set("axis", m.axis);
    e.set("substrate_uvw", vec_json(m.substrate_uvw));
    e.set("overlayer_uvw", vec_json(m.overlayer_uvw));
    e.set("substrate_repeat_A", m.substrate_repeat_A);
    e.set("overlayer_repeat_A", m.overlayer_repeat_A);
    e.set("n_overlayer_per_substrate_repeat", m.n_overlayer);
    e.set("mismatch_percent", 100 * m.mismatch);
    e.set("coincidence_substrate_overlayer", std::to_string(m.coincidence_substrate) + ":" +
                             std::to_string(m.coincidence_overlayer));
    e.set("coincidence_strain_percent", 100 * m.coincidence_strain);
    mm.push(e);
  }
  j.set("mismatch", mm);
  j.set("overlayer_strain_percent", vec_json(100 * rep.overlayer_strain));
  j.set("coherent_strain_depth_A", spec.coherent_strain_depth_A);
  j.set("coherent_strain_percent", vec_json(100 * rep.coherent_strain));
  j.set("periodic_boundaries", Json(rep.boundary_notes));
  Json cut = Json::array();
  for (const PairCutoff& c : rep.cutoffs) {
    Json e = Json::object();
    e.set("pair", std::string(element_symbol(c.Z1)) + "-" + element_symbol(c.Z2));
    e.set("cutoff_A", c.cutoff_A);
    e.set("source", c.source);
    for (const ShortestPair& p : rep.shortest)
      if (p.Z1 == c.Z1 && p.Z2 == c.Z2) {
        e.set("shortest_in_model_A", p.distance_A);
        e.set("shortest_is_interface_pair", p.cross_phase);
      }
    cut.push(e);
  }
  j.set("cutoffs", cut);
  j.set("cutoff_rule", spec.cutoff_rule == CutoffRule::Bulk ? "bulk" : "covalent");
  j.set("n_substrate_atoms", rep.n_substrate);
  j.set("n_overlayer_atoms", rep.n_overlayer);
  j.set("removed_interface_overlaps", rep.removed_interface);
  j.set("removed_boundary_overlaps", rep.removed_boundary);
  j.set("mixed_site_vacancies", rep.vacancies);
  Json voids = Json::object();
  voids.set("probe_radius_A", rep.void_probe_A);
  voids.set("count", rep.voids.size());
  voids.set("total_volume_A3", rep.void_volume_A3);
  Json list = Json::array();
  for (const InterfaceVoid& v : rep.voids) {
    Json e = Json::object();
    e.set("center_A", vec_json(v.center_A));
    e.set("volume_A3", v.volume_A3);
    list.push(e);
  }
  voids.set("voids", list);
  j.set("voids", voids);
  j.set("seed", (unsigned long long)rep.seed);
  return j;
}

Canvas render_interface_projection(const AtomicModel& model, const InterfaceReport& rep,
                                   double pixels_per_A) {
  const Vec3 box = model.box_lengths_A();
  const int width = std::max(1, int(std::lround(box[0] * pixels_per_A)));
  const int height = std::max(1, int(std::lround(box[1] * pixels_per_A)));
  Canvas canvas(width, height, Rgb{18, 18, 24});
  const auto px = [&](const Vec3& p) {
    return std::pair<double, double>{p[0] * pixels_per_A, (box[1] - p[1]) * pixels_per_A};
  };
  // One colour per (phase, species): warm colours for the substrate, cool for the overlayer.
  const Rgb warm[] = {colors::red, colors::orange, colors::yellow, colors::gray};
  const Rgb cool[] = {colors::green, colors::cyan, colors::blue, colors::white};
  std::vector<std::pair<int, int>> keys;
  for (const Atom& a : model.atoms)
    if (std::find(keys.begin(), keys.end(), std::make_pair(a.phase, a.Z)) == keys.end())
      keys.push_back({a.phase, a.Z});
  std::sort(keys.begin(), keys.end());
  const auto color_of = [&](int phase, int z) {
    int rank = 0;
    for (const auto& k : keys) {
      if (k == std::make_pair(phase, z))
        break;
      if (k.first == phase)
        ++rank;
    }
    return phase == 0 ? warm[rank % 4] : cool[rank % 4];
  };
  std::vector<std::size_t> order(model.atoms.size());
  std::iota(order.begin(), order.end(), std::size_t(0));
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return model.atoms[a].pos_A[2] < model.atoms[b].pos_A[2];
  });
  for (std::size_t i : order) {
    const Atom& a = model.atoms[i];
    const auto [x, y] = px(a.pos_A);
    canvas.fill_circle(x, y, 0.35 * covalent_radius_A(a.Z) * pixels_per_A, color_of(a.phase, a.Z));
  }
  if (rep.geometry.normal_axis == 1) {  // edge-on: the terraced interface as a thin line
    for (int x = 0; x < width; ++x) {
      const double h = rep.geometry.height_A((x + 0.5) / pixels_per_A);
      if (x % 6 < 3)
        canvas.set(x, int((box[1] - h) * pixels_per_A), colors::white);
    }
  }
  for (const InterfaceVoid& v : rep.voids) {
    const auto [x, y] = px(v.center_A);
    const double r = std::cbrt(3 * v.volume_A3 / (4 * PI)) * pixels_per_A;
    canvas.draw_circle(x, y, std::max(r, 4.0), colors::magenta, 2);
  }
  int ty = 6;
  for (const auto& k : keys) {
    const std::string label = model.phase_names[std::size_t(k.first)] + " " + element_symbol(k.second);
    canvas.fill_circle(12, ty + 5, 5, color_of(k.first, k.second));
    canvas.draw_label(22, ty, label, colors::white, 1);
    ty += 14;
  }
  if (!rep.voids.empty()) {
    canvas.draw_circle(12, ty + 5, 5, colors::magenta, 2);
    canvas.draw_label(22, ty, "void (" + std::to_string(rep.voids.size()) + ")", colors::white, 1);
  }
  const double nm = 10 * pixels_per_A;
  canvas.draw_scale_bar(nm, box[0] > 40 ? 2.0 : 1.0, box[0] > 40 ? "2 nm" : "1 nm");
  return canvas;
}

}  // namespace epitem
