#include "epitem/interface_options.hpp"

#include <algorithm>
#include <tuple>

#include "epitem/element.hpp"
#include "epitem/quantity.hpp"
#include "epitem/structure_io.hpp"

namespace epitem {

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

Vec3 triple_of(const std::string& text, const std::string& what) {
  const std::vector<int> v = parse_int_triple(text, what);
  return Vec3(v[0], v[1], v[2]);
}

// "h,k,l" or "h,k,l:h,k,l" (substrate:overlayer); one triple applies to both.
std::pair<Vec3, Vec3> triple_pair(const std::string& text, const std::string& what) {
  const auto parts = split(text, ':');
  if (parts.size() > 2)
    fail(what, ": '", text, "' must be h,k,l or h,k,l:h,k,l (substrate:overlayer)");
  const Vec3 a = triple_of(parts[0], what);
  return {a, parts.size() == 2 ? triple_of(parts[1], what) : a};
}

// "60x60x40A": a unit written on the last entry applies to bare ones.
Vec3 parse_box(const std::string& text) {
  const auto parts = split(text, 'x');
  if (parts.size() != 3)
    fail("--box: '", text, "' must be three lengths AxBxC, e.g. 60x60x40A or 6x6x4nm");
  const std::string& last = parts[2];
  std::size_t k = last.find_first_not_of("0123456789.+-eE");
  const std::string unit = k == std::string::npos ? "" : last.substr(k);
  Vec3 box;
  for (int i = 0; i < 3; ++i) {
    std::string p = parts[std::size_t(i)];
    if (p.find_first_not_of("0123456789.+-eE") == std::string::npos)
      p += unit;
    box[i] = parse_quantity(p, Dimension::Length, "--box");
  }
  return box;
}

std::vector<WulffFacet> parse_facets(const std::string& text) {
  std::vector<WulffFacet> out;
  for (const std::string& item : split(text, ';')) {
    const auto parts = split(item, ':');
    if (parts.size() != 2)
      fail("--facets: '", item, "' must be h,k,l:energy, e.g. '1,1,1:1.0;1,0,0:1.15'");
    WulffFacet f;
    f.hkl = triple_of(parts[0], "--facets");
    f.relative_energy = parse_quantity(parts[1], Dimension::Dimensionless, "--facets energy");
    out.push_back(f);
  }
  return out;
}

std::vector<PairCutoff> parse_cutoffs(const std::string& text) {
  std::vector<PairCutoff> out;
  for (const std::string& item : split(text, ',')) {
    const auto eq = split(item, '=');
    const auto pair = split(eq[0], '-');
    if (eq.size() != 2 || pair.size() != 2)
      fail("--cutoff: '", item, "' must be El-El=length, e.g. Ni-O=1.6A,Fe-O=1.5A");
    PairCutoff c;
    c.Z1 = atomic_number(pair[0]);
    c.Z2 = atomic_number(pair[1]);
    c.cutoff_A = parse_quantity(eq[1], Dimension::Length, "--cutoff " + eq[0]);
    out.push_back(c);
  }
  return out;
}

Vec3 parse_axis(const std::string& text) {
  if (text == "x")
    return Vec3::UnitX();
  if (text == "y")
    return Vec3::UnitY();
  if (text == "z" || text == "beam")
    return Vec3::UnitZ();
  const auto v = split(text, ',');
  if (v.size() != 3)
    fail("--tilt-axis: '", text, "' must be x, y, z (beam) or a box-frame vector a,b,c");
  return Vec3(parse_quantity(v[0], Dimension::Dimensionless, "--tilt-axis"),
              parse_quantity(v[1], Dimension::Dimensionless, "--tilt-axis"),
              parse_quantity(v[2], Dimension::Dimensionless, "--tilt-axis"));
}

bool parse_switch(const std::string& text, const std::string& name) {
  if (text == "true" || text == "1" || text == "True" || text == "yes" || text.empty())
    return true;
  if (text == "false" || text == "0" || text == "False" || text == "no")
    return false;
  throw OptionUsageError("--" + name + " is a switch: true or false, got '" + text + "'");
}

long long parse_integer(const std::string& text, const std::string& name) {
  try {
    std::size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used == text.size())
      return v;
  } catch (const std::exception&) {
  }
  throw OptionUsageError("--" + name + " must be an integer, got '" + text + "'");
}

}  // namespace

const std::vector<std::string>& interface_option_names() {
  static const std::vector<std::string> names = {
      "preset", "substrate", "overlayer", "plane", "direction", "zone", "view", "tilt", "tilt-axis",
      "box", "keep-box", "no-strain", "substrate-thickness", "vacuum", "shape",
      "overlayer-thickness", "radius", "center-height", "facets", "ledge-height", "terrace-width",
      "seed", "cutoff", "cutoff-scale", "probe", "no-voids", "ledges", "cutoff-rule", "coherent-strain"};
  return names;
}

void apply_interface_options(InterfaceSpec& spec, const OptionTexts& options) {
  const auto& names = interface_option_names();
  for (const auto& [name, value] : options)
    if (std::find(names.begin(), names.end(), name) == names.end())
      throw OptionUsageError("unknown interface option '" + name + "'");
  const auto has = [&](const char* name) { return options.count(name) > 0; };
  const auto text = [&](const char* name) -> const std::string& { return options.at(name); };
  const auto quantity = [&](const char* name, Dimension dim, double& field) {
    if (has(name))
      field = parse_quantity(text(name), dim, std::string("--") + name);
  };

  if (has("substrate"))
    spec.substrate = read_crystal(text("substrate"));
  if (has("overlayer"))
    spec.overlayer = read_crystal(text("overlayer"));
  if (has("plane"))
    std::tie(spec.substrate_plane_hkl, spec.overlayer_plane_hkl) = triple_pair(text("plane"), "--plane");
  if (has("direction"))
    std::tie(spec.substrate_direction_uvw, spec.overlayer_direction_uvw) =
        triple_pair(text("direction"), "--direction");
  if (has("zone")) {
    const auto parts = split(text("zone"), ':');
    spec.zone_uvw = triple_of(parts[0], "--zone");
    spec.overlayer_zone_uvw = parts.size() > 1 ? triple_of(parts[1], "--zone") : Vec3::Zero();
  }
  if (has("view")) {
    const std::string& v = text("view");
    if (v == "edge-on" || v == "edge")
      spec.view = InterfaceView::EdgeOn;
    else if (v == "plan" || v == "plan-view")
      spec.view = InterfaceView::PlanView;
    else
      throw OptionUsageError("--view must be edge-on or plan, got '" + v + "'");
  }
  if (has("tilt") && text("tilt") == "nagai") {  // the Nagai tilt of the ledges (interface.hpp)
    spec.tilt_from_nagai = true;
  } else {
    quantity("tilt", Dimension::CrystalAngle, spec.tilt_deg);
    if (has("tilt"))
      spec.tilt_from_nagai = false;
  }
  if (has("tilt-axis"))
    spec.tilt_axis = parse_axis(text("tilt-axis"));
  else if (spec.tilt_from_nagai)
    spec.tilt_axis = step_edge_axis(spec.view);  // the Nagai rotation is about the step edges
  if (has("box"))
    spec.box_A = parse_box(text("box"));
  if (has("keep-box") && parse_switch(text("keep-box"), "keep-box"))
    spec.round_box_to_substrate = false;
  if (has("no-strain") && parse_switch(text("no-strain"), "no-strain"))
    spec.strain_slab_to_box = false;
  quantity("substrate-thickness", Dimension::Length, spec.substrate_thickness_A);
  quantity("vacuum", Dimension::Length, spec.vacuum_A);
  if (has("shape")) {
    const std::string& s = text("shape");
    if (s == "slab")
      spec.shape = OverlayerShape::Slab;
    else if (s == "cap" || s == "hemisphere")
      spec.shape = OverlayerShape::Cap;
    else if (s == "wulff")
      spec.shape = OverlayerShape::Wulff;
    else
      throw OptionUsageError("--shape must be slab, cap or wulff, got '" + s + "'");
  }
  quantity("overlayer-thickness", Dimension::Length, spec.overlayer_thickness_A);
  quantity("radius", Dimension::Length, spec.particle_radius_A);
  quantity("center-height", Dimension::Length, spec.particle_center_height_A);
  if (has("facets"))
    spec.wulff_facets = parse_facets(text("facets"));
  if (has("ledge-height"))
    spec.ledge_height_layers = int(parse_integer(text("ledge-height"), "ledge-height"));
  quantity("terrace-width", Dimension::Length, spec.terrace_width_A);
  quantity("coherent-strain", Dimension::Length, spec.coherent_strain_depth_A);
  if (has("ledges")) {  // after box, view, tilt and ledge height: auto depends on them
    const std::string& l = text("ledges");
    if (l == "updown" || l == "up-down")
      spec.vicinal_ledges = false;
    else if (l == "vicinal")
      spec.vicinal_ledges = true;
    else if (l == "auto") {
      if (spec.tilt_from_nagai)
        throw OptionUsageError("--ledges auto needs a numeric --tilt (e.g. 4.2deg), not 'nagai'");
      if (has("terrace-width"))
        throw OptionUsageError("--ledges auto computes the terrace width; drop --terrace-width");
      make_ledges_nagai_consistent(spec);
    } else
      throw OptionUsageError("--ledges must be updown, vicinal or auto, got '" + l + "'");
  }
  if (has("seed")) {
    const std::string& s = text("seed");
    std::size_t used = 0;
    try {
      if (s.find('-') == std::string::npos)
        spec.seed = std::stoull(s, &used);
    } catch (const std::exception&) {
    }
    if (used == 0 || used != s.size())
      throw OptionUsageError("--seed must be an integer ≥ 0, got '" + s + "'");
  }
  if (has("cutoff"))
    spec.cutoffs = parse_cutoffs(text("cutoff"));
  quantity("cutoff-scale", Dimension::Dimensionless, spec.cutoff_scale);
  if (has("cutoff-scale"))  // a scale given means the covalent rule (as before issue 14)
    spec.cutoff_rule = CutoffRule::Covalent;
  if (has("cutoff-rule")) {
    const std::string& r = text("cutoff-rule");
    if (r == "bulk")
      spec.cutoff_rule = CutoffRule::Bulk;
    else if (r == "covalent")
      spec.cutoff_rule = CutoffRule::Covalent;
    else
      throw OptionUsageError("--cutoff-rule must be bulk or covalent, got '" + r + "'");
  }
  quantity("probe", Dimension::Length, spec.void_probe_A);
  if (has("no-voids") && parse_switch(text("no-voids"), "no-voids"))
    spec.find_voids = false;
}

InterfaceSpec interface_spec_from_options(const OptionTexts& options) {
  InterfaceSpec spec;
  if (options.count("preset"))
    spec = preset_interface(options.at("preset"));
  else if (!options.count("substrate") || !options.count("overlayer"))
    throw OptionUsageError("give --preset NAME or both --substrate and --overlayer");
  apply_interface_options(spec, options);
  spec.validate();
  return spec;
}

}  // namespace epitem
