// Phase maps (phasemap.hpp) on a synthetic two-phase image with known region areas: a NiFe-like
// particle (two fringe sets) next to an Fe3O4-like slab (two other fringe sets) on a noisy
// background; areas within 5 %, centroid follows the particle, bad input refused.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "epitem/error.hpp"
#include "epitem/phasemap.hpp"
#include "testing.hpp"

using namespace epitem;

namespace {

constexpr double TWO_PI = 6.283185307179586;
constexpr double PX_A = 0.2;

// g vectors [1/Å] with y up: NiFe d = 2.07 Å at 0°, 1.79 Å at 54.7°; Fe3O4 2.97 Å at 30°, 4.85 Å at 120°.
PhaseReflection polar(double d_A, double angle_deg) {
  double a = angle_deg * M_PI / 180;
  return {std::cos(a) / d_A, std::sin(a) / d_A};
}
const PhaseReflection NIFE[] = {polar(2.07, 0), polar(1.79, 54.7)};
const PhaseReflection FE3O4[] = {polar(2.97, 30), polar(4.85, 120)};

double fringes(const PhaseReflection* g, int count, double x_A, double y_up_A) {
  double v = 0;
  for (int i = 0; i < count; ++i)
    v += std::cos(TWO_PI * (g[i].gx_invA * x_A + g[i].gy_invA * y_up_A) + 0.3 * i);
  return v;
}

// Disk particle (centre cx, cy px; radius r px) and slab x ∈ [330, 500), y ∈ [40, 470) px.
Image two_phase_image(double cx, double cy, double r, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.f, 0.3f);
  Image im(512, 512);
  im.pixel_size_A = PX_A;
  for (int y = 0; y < 512; ++y)
    for (int x = 0; x < 512; ++x) {
      double xa = x * PX_A, ya = -y * PX_A;
      double v = 0;
      if (std::hypot(x + 0.5 - cx, y + 0.5 - cy) < r)
        v = fringes(NIFE, 2, xa, ya);
      else if (x >= 330 && x < 500 && y >= 40 && y < 470)
        v = 0.8 * fringes(FE3O4, 2, xa, ya);
      im.at(x, y) = float(5 + v) + noise(rng);
    }
  return im;
}

std::vector<PhaseFilter> phases() {
  PhaseFilter nife{"NiFe", {NIFE[0], NIFE[1]}, colors::blue};
  PhaseFilter oxide{"Fe3O4", {FE3O4[0], FE3O4[1]}, colors::red};
  return {nife, oxide};
}

}  // namespace

TEST_CASE("phase areas within 5 % of the model's projected areas", "[phasemap]") {
  const double r = 120;
  Image im = two_phase_image(200, 260, r, 1);
  PhaseMapFrame m = phase_map(im, phases(), PhaseMapSpec{});
  const double px_nm2 = (PX_A / 10) * (PX_A / 10);
  const double disk_nm2 = M_PI * r * r * px_nm2, slab_nm2 = 170.0 * 430.0 * px_nm2;
  CHECK(m.area_nm2[0] == Approx(disk_nm2).epsilon(0.05));
  CHECK(m.area_nm2[1] == Approx(slab_nm2).epsilon(0.05));
  CHECK(m.centroid_x_nm[0] == Approx(200 * PX_A / 10).margin(0.05));
  CHECK(m.centroid_y_nm[0] == Approx(260 * PX_A / 10).margin(0.05));
  // The envelope of a unit cosine is 1 inside the particle (noise adds a little).
  CHECK(m.amplitude[0].at(200, 260) == Approx(std::sqrt(2.0)).epsilon(0.1));
  CHECK(m.amplitude[0].at(415, 255) < 0.2);
  // The Bragg-filtered image is the particle's fringes: correlates with the model there.
  double dot = 0, norm_a = 0, norm_b = 0;
  for (int y = 220; y < 300; ++y)
    for (int x = 160; x < 240; ++x) {
      double model = fringes(NIFE, 2, x * PX_A, -y * PX_A), f = m.filtered[0].at(x, y);
      dot += model * f;
      norm_a += model * model;
      norm_b += f * f;
    }
  CHECK(dot / std::sqrt(norm_a * norm_b) > 0.95);
  // Fixed threshold: half of the 99th-percentile amplitude gives the same areas.
  PhaseMapSpec fixed;
  fixed.threshold_fraction = 0.5;
  PhaseMapFrame f = phase_map(im, phases(), fixed);
  CHECK(f.area_nm2[0] == Approx(disk_nm2).epsilon(0.05));
}

TEST_CASE("small particles: the curvature correction restores the area of a smoothed disc", "[phasemap]") {
  // The half-plateau contour of a disc smoothed by the envelope (Gaussian σ_e) has radius
  // ≈ R − σ_e²/2R, an area πσ_e² short whatever R; phase_map adds πσ_e² back per closed region.
  for (const double r_px : {40.0, 60.0, 100.0}) {
    const PhaseMapFrame m = phase_map(two_phase_image(160, 260, r_px, 5), phases(), PhaseMapSpec{});
    const double sigma_e_px = 1 / (2 * M_PI * m.mask_sigma_invA * PX_A);
    const double px_nm2 = (PX_A / 10) * (PX_A / 10), disk_nm2 = M_PI * r_px * r_px * px_nm2;
    INFO("R " << r_px << " px = " << r_px / sigma_e_px << " σ_e: region " << m.region_area_nm2[0] << " nm², corrected "
              << m.area_nm2[0] << " nm², disc " << disk_nm2 << " nm²");
    // Full πσ_e² from R = √6 σ_e (6 deficits) up; phased in below, so no jump at the cut.
    const double full_nm2 = M_PI * sigma_e_px * sigma_e_px * px_nm2;
    if (r_px / sigma_e_px >= std::sqrt(6.0) * 1.1)
      CHECK(m.area_nm2[0] - m.region_area_nm2[0] == Approx(full_nm2));
    else
      CHECK((m.area_nm2[0] - m.region_area_nm2[0] > 0 && m.area_nm2[0] - m.region_area_nm2[0] <= full_nm2 * 1.0001));
    CHECK(m.area_nm2[0] == Approx(disk_nm2).epsilon(r_px < 50 ? 0.05 : 0.01));
    CHECK(m.region_area_nm2[0] < 0.98 * disk_nm2);  // what the plain half-plateau contour gives
    // The slab touches no frame edge but is convex too: its four corners make one closed region.
    CHECK(m.area_nm2[1] == Approx(170.0 * 430.0 * px_nm2).epsilon(0.03));
  }
}

TEST_CASE("automatic mask σ keeps clear of peaks that are not mapped", "[phasemap]") {
  const Image im = two_phase_image(200, 260, 120, 6);
  // Closest approach of any ±NiFe spot to a ±Fe3O4 spot, to the other NiFe spots and to 0.
  std::vector<PhaseReflection> nife, all = {{0, 0}};
  for (const PhaseReflection& g : NIFE)
    for (double sign : {1.0, -1.0})
      nife.push_back({sign * g.gx_invA, sign * g.gy_invA});
  for (const PhaseReflection& g : FE3O4)
    for (double sign : {1.0, -1.0})
      all.push_back({sign * g.gx_invA, sign * g.gy_invA});
  all.insert(all.end(), nife.begin(), nife.end());
  double closest = 1e9;
  for (const PhaseReflection& a : nife)
    for (const PhaseReflection& b : all) {
      const double d = std::hypot(a.gx_invA - b.gx_invA, a.gy_invA - b.gy_invA);
      if (d > 0)
        closest = std::min(closest, d);
    }
  // Mapping NiFe alone: the Fe3O4 fringes are still in the image, and their peaks count.
  const std::vector<PhaseFilter> only_nife = {phases()[0]};
  CHECK(auto_mask_sigma_invA(im, only_nife) == Approx(closest / 4).epsilon(0.02));
  // With both phases chosen: the same rule through the chosen spots (Fe3O4's own spots included).
  CHECK(auto_mask_sigma_invA(im, phases()) <= closest / 4 * 1.02);
}

TEST_CASE("centroid trajectory follows the particle; overlay is coloured", "[phasemap]") {
  PhaseMapFrame a = phase_map(two_phase_image(190, 250, 100, 2), phases(), PhaseMapSpec{});
  PhaseMapFrame b = phase_map(two_phase_image(215, 240, 100, 3), phases(), PhaseMapSpec{});
  // Moved by (+25, −10) px = (+0.5, −0.2) nm; edge noise moves the centroid by < 0.05 nm.
  CHECK(b.centroid_x_nm[0] - a.centroid_x_nm[0] == Approx(0.5).margin(0.05));
  CHECK(b.centroid_y_nm[0] - a.centroid_y_nm[0] == Approx(-0.2).margin(0.05));
  Image im = two_phase_image(190, 250, 100, 2);
  Canvas c = phase_overlay(im, a, phases());
  Rgb inside = c.get(190, 250), slab = c.get(415, 255);
  CHECK(inside.b > inside.r);
  CHECK(slab.r > slab.b);
}

TEST_CASE("phase specs parse; bad phase input is refused", "[phasemap]") {
  PhaseFilter p = parse_phase_filter("NiFe=0.483,0;0.323,0.456@green");
  CHECK(p.name == "NiFe");
  REQUIRE(p.reflections.size() == 2);
  CHECK(p.reflections[1].gy_invA == 0.456);
  CHECK(p.color.g == colors::green.g);
  CHECK_THROWS_AS(parse_phase_filter("NiFe"), Error);
  CHECK_THROWS_AS(parse_phase_filter("NiFe=0.4"), Error);
  CHECK_THROWS_AS(parse_phase_filter("NiFe=0,0"), Error);
  CHECK_THROWS_WITH(parse_phase_filter("NiFe=0.4,0@purple"), Catch::Contains("colour"));
  Image im = two_phase_image(200, 260, 100, 4);
  // 4.83 1/nm typed as 1/Å: beyond Nyquist (2.5 1/Å at 0.2 Å pixels).
  CHECK_THROWS_WITH(phase_map(im, {parse_phase_filter("X=4.83,0")}, PhaseMapSpec{}), Catch::Contains("Nyquist"));
  im.pixel_size_A = 0;
  CHECK_THROWS_WITH(phase_map(im, phases(), PhaseMapSpec{}), Catch::Contains("--pixel-size"));
}

TEST_CASE("phases from peak tables: epitem index spots by phase, epitem fft rows by number", "[phasemap]") {
  testing::TempDir dir("phase_peaks");
  const std::string index_csv = dir.file("index.csv"), fft_csv = dir.file("peaks.csv");
  std::ofstream(index_csv) << "spot,kx,ky,d_A,phase,hkl,error_pct\n"
                              "1,-0.035,0.484,2.061,NiFe,-111,0.5\n"
                              "2,-0.390,0.279,2.084,Fe3O4,004,0.8\n"
                              "3,0.448,0.188,2.057,NiFe,-11-1,1.5\n"
                              "4,-0.583,0.407,1.406,,,\n";
  std::ofstream(fft_csv) << "kx,ky,g,d_A,angle_deg,intensity,snr\n0.2,0.1,0,0,0,1,9\n0.3,-0.1,0,0,0,1,9\n0.1,0.4,0,0,0,1,9\n";
  const std::vector<PhaseFilter> both = phases_from_peaks(index_csv);
  REQUIRE(both.size() == 2);  // the unexplained spot 4 is skipped
  CHECK(both[0].name == "NiFe");
  REQUIRE(both[0].reflections.size() == 2);
  CHECK(both[0].reflections[1].gx_invA == 0.448);
  CHECK(both[1].name == "Fe3O4");
  CHECK(both[1].reflections.size() == 1);
  // NAME=table: that phase's rows of an index table; rows by spot number from an fft list.
  CHECK(phases_from_peaks("Fe3O4=" + index_csv + "@red")[0].reflections[0].gy_invA == 0.279);
  const PhaseFilter picked = parse_phase_filter("p=" + fft_csv + ":1,3");
  REQUIRE(picked.reflections.size() == 2);
  CHECK(picked.reflections[1].gy_invA == 0.4);
  CHECK_THROWS_WITH(phases_from_peaks(fft_csv), Catch::Contains("phase"));
  CHECK_THROWS_WITH(parse_phase_filter("x=" + index_csv), Catch::Contains("no row"));
}

TEST_CASE("non-square pixels: areas and centroids in physical units", "[phasemap]") {
  // The two-phase scene sampled at 0.2 Å along x and 0.25 Å along y: a disc of radius 20 Å.
  const double px = 0.2, py = 0.25, r_A = 20, cx_A = 40, cy_A = 60;
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.f, 0.3f);
  Image im(512, 420);
  im.pixel_size_A = px;
  im.pixel_size_y_A = py;
  for (int y = 0; y < im.ny; ++y)
    for (int x = 0; x < im.nx; ++x) {
      const double xa = (x + 0.5) * px, ya = (y + 0.5) * py;
      double v = 0;
      if (std::hypot(xa - cx_A, ya - cy_A) < r_A)
        v = fringes(NIFE, 2, xa, -ya);
      else if (xa > 66 && xa < 100 && ya > 8 && ya < 97)
        v = 0.8 * fringes(FE3O4, 2, xa, -ya);
      im.at(x, y) = float(5 + v) + noise(rng);
    }
  const PhaseMapFrame m = phase_map(im, phases(), PhaseMapSpec{});
  CHECK(m.area_nm2[0] == Approx(M_PI * r_A * r_A / 100).epsilon(0.05));
  CHECK(m.area_nm2[1] == Approx(34.0 * 89.0 / 100).epsilon(0.05));
  CHECK(m.centroid_x_nm[0] == Approx(cx_A / 10).margin(0.05));
  CHECK(m.centroid_y_nm[0] == Approx(cy_A / 10).margin(0.05));
}

TEST_CASE("a phase touching the frame does not wrap onto the opposite edge (padding)", "[phasemap]") {
  // Fe3O4-like fringes in the bottom 112 rows of a 512² frame, noise elsewhere.
  std::mt19937 rng(8);
  std::normal_distribution<float> noise(0.f, 0.3f);
  Image im(512, 512);
  im.pixel_size_A = PX_A;
  for (int y = 0; y < 512; ++y)
    for (int x = 0; x < 512; ++x)
      im.at(x, y) = float(5 + (y >= 400 ? 0.8 * fringes(FE3O4, 2, x * PX_A, -y * PX_A) : 0.0)) + noise(rng);
  const std::vector<PhaseFilter> oxide = {phases()[1]};
  const double slab_nm2 = 512.0 * 112.0 * (PX_A / 10) * (PX_A / 10);
  const PhaseMapFrame padded = phase_map(im, oxide, PhaseMapSpec{});
  CHECK(padded.area_nm2[0] == Approx(slab_nm2).epsilon(0.02));
  // Taken as periodic, the envelope wraps onto the top rows: a strip of extra area there.
  PhaseMapSpec periodic;
  periodic.periodic = true;
  const PhaseMapFrame wrapped = phase_map(im, oxide, periodic);
  CHECK(wrapped.label[size_t(2) * 512 + 256] == 0);
  CHECK(padded.label[size_t(2) * 512 + 256] == -1);
  CHECK(wrapped.area_nm2[0] > padded.area_nm2[0] * 1.02);
}

TEST_CASE("real Si [110] HAADF image: one crystal filling the frame maps as one phase", "[realdata]") {
  const std::string path = testing::shared_path("data/realdata/si110_haadf_ncempy/si110_haadf.tif");
  if (!std::filesystem::exists(path)) {
    WARN("realdata image absent (" << path << "): skipped");
    return;
  }
  const Image im = read_tiff(path).front();
  REQUIRE(im.pixel_size_A == Approx(0.0867462).epsilon(1e-4));
  // The two {111} peaks as measured (realdata README §1: 3.197 Å at 51.3°, 3.231 Å at 121.1°).
  const PhaseFilter si = parse_phase_filter("Si=0.19557,0.24411;-0.15987,0.26502");
  const PhaseMapFrame m = phase_map(im, {si}, PhaseMapSpec{});
  const double frame_nm2 = im.nx * im.ny * (im.pixel_size_A / 10) * (im.pixel_size_A / 10);
  // The whole field is Si; the padded frame costs its four corners, (1 − π/4)(1.5 σ_e)² each.
  const double sigma_e_A = 1 / (2 * M_PI * m.mask_sigma_invA);
  const double corners_nm2 = 4 * (1 - M_PI / 4) * std::pow(1.5 * sigma_e_A / 10, 2);
  INFO("σ_e " << sigma_e_A << " Å, area " << m.area_nm2[0] << " of " << frame_nm2 << " nm², fringe contrast "
              << m.fringe_contrast[0]);
  CHECK(m.area_nm2[0] > 0.98 * (frame_nm2 - corners_nm2));
  CHECK(m.fringe_contrast[0] > MIN_FRINGE_CONTRAST);
  // Measured as theory scaled by the file's calibration error (~3 %): still the same peaks.
  const PhaseFilter theory = parse_phase_filter("Si=0.19940,0.24889;-0.16473,0.27308");
  CHECK(phase_map(im, {theory}, PhaseMapSpec{}).area_nm2[0] > 0.95 * frame_nm2);
}
