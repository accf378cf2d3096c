// Projected phase areas (projected_area.hpp) against slabs whose areas follow from the
// geometry: bcc Fe along [001] projects to a square net of columns a/2 apart, so a slab of n
// column rows covers width × n × a/2 (a free surface lies half a row beyond its last row).
#include <cmath>

#include "epitem/error.hpp"
#include "epitem/projected_area.hpp"
#include "epitem/structure_io.hpp"
#include "testing.hpp"

using namespace epitem;

namespace {

// Fe [001] tiled 12 × 12 cells; keeps the rows listed by `phase_of_row` (row k at y = k·a/2;
// −1 = removed) with that phase.
struct Slab {
  Crystal fe = read_crystal("Fe");
  AtomicModel model;
  double row_A = 0, width_A = 0;
};

template <class PhaseOfRow>
Slab make_slab(PhaseOfRow phase_of_row) {
  Slab s;
  const Vec3 zone(0, 0, 1);
  AtomicModel bulk = orient_crystal(s.fe, zone, Vec3::Zero(), {12, 12, 2});
  s.row_A = s.fe.lattice.direction_A(Vec3(1, 0, 0)).norm() / 2;
  s.width_A = bulk.box_lengths_A().x();
  s.model = bulk;
  s.model.atoms.clear();
  s.model.phase_names = {"lower", "upper"};
  for (Atom a : bulk.atoms) {
    const int row = int(std::lround(a.pos_A.y() / s.row_A));
    const int phase = phase_of_row(row);
    if (phase >= 0) {
      a.phase = phase;
      s.model.atoms.push_back(a);
    }
  }
  return s;
}

std::vector<PhaseOrientation> both(const Slab& s) {
  const Mat3 r = zone_rotation(s.fe, Vec3(0, 0, 1), Vec3::Zero());
  return {{&s.fe, r}, {&s.fe, r}};
}

}  // namespace

TEST_CASE("a slab's projected area is its rows × row spacing × width", "[projected_area]") {
  // Rows 2..11 lower phase, rows 12..19 upper phase, touching: no gap.
  Slab s = make_slab([](int row) { return row >= 2 && row < 12 ? 0 : row >= 12 && row < 20 ? 1 : -1; });
  ProjectedAreaSpec spec;
  spec.sampling_A = 0.05;
  const ProjectedAreas a = projected_phase_areas(s.model, both(s), spec);
  // Raster: each boundary is exact to half a pixel along the width.
  const double tol_A2 = 2 * spec.sampling_A * s.width_A;
  CHECK(a.area_A2[0] == Approx(10 * s.row_A * s.width_A).margin(tol_A2));
  CHECK(a.area_A2[1] == Approx(8 * s.row_A * s.width_A).margin(tol_A2));
  // The label raster: row index along +y, lower phase below the upper one.
  CHECK(a.label.at(10, int(6 * s.row_A / a.label.pixel_size_A)) == 0);
  CHECK(a.label.at(10, int(16 * s.row_A / a.label.pixel_size_A)) == 1);
  CHECK(a.label.at(10, int(22 * s.row_A / a.label.pixel_size_A)) == -1);
}

TEST_CASE("a narrow gap between phases is split between them; a wide one stays empty", "[projected_area]") {
  ProjectedAreaSpec spec;
  spec.sampling_A = 0.05;
  SECTION("one missing row (a band one row spacing wide): each phase gets half of it") {
    Slab s = make_slab([](int row) { return row >= 2 && row < 11 ? 0 : row >= 12 && row < 20 ? 1 : -1; });
    const ProjectedAreas a = projected_phase_areas(s.model, both(s), spec);
    const double tol_A2 = 2 * spec.sampling_A * s.width_A;
    CHECK(a.area_A2[0] == Approx(9.5 * s.row_A * s.width_A).margin(tol_A2));
    CHECK(a.area_A2[1] == Approx(8.5 * s.row_A * s.width_A).margin(tol_A2));
  }
  SECTION("six missing rows (a band wider than max_gap_A): nothing added") {
    Slab s = make_slab([](int row) { return row >= 2 && row < 6 ? 0 : row >= 12 && row < 20 ? 1 : -1; });
    // The cells' zigzag edges reach one row spacing into the band from each side.
    REQUIRE((6 - 2) * s.row_A > spec.max_gap_A);
    const ProjectedAreas a = projected_phase_areas(s.model, both(s), spec);
    const double tol_A2 = 2 * spec.sampling_A * s.width_A;
    CHECK(a.area_A2[0] == Approx(4 * s.row_A * s.width_A).margin(tol_A2));
    CHECK(a.area_A2[1] == Approx(8 * s.row_A * s.width_A).margin(tol_A2));
  }
}

TEST_CASE("projected areas refuse a phase whose columns are off its crystal's lattice", "[projected_area]") {
  Slab s = make_slab([](int row) { return row >= 2 && row < 12 ? 0 : row >= 12 && row < 20 ? 1 : -1; });
  std::vector<PhaseOrientation> wrong = both(s);
  wrong[1].rotation = Eigen::AngleAxisd(0.2, Vec3::UnitZ()).toRotationMatrix() * wrong[1].rotation;
  CHECK_THROWS_WITH(projected_phase_areas(s.model, wrong, {}), Catch::Contains("rotation"));
  CHECK_THROWS_WITH(projected_phase_areas(s.model, {both(s)[0]}, {}), Catch::Contains("2 phases"));
}
