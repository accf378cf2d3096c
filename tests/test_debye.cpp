// Temperature → U_iso by the Debye model (debye.hpp) and its effect on frozen phonons.
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "epitem/debye.hpp"
#include "epitem/element.hpp"
#include "epitem/error.hpp"
#include "epitem/fft.hpp"
#include "epitem/model.hpp"
#include "epitem/multislice.hpp"
#include "epitem/quantity.hpp"
#include "epitem/structure_io.hpp"
#include "epitem/units.hpp"
#include "testing.hpp"

using namespace epitem;

namespace {

// Rows of a reference CSV (comment lines start with '#'), split on commas outside quotes.
std::vector<std::vector<std::string>> csv_rows(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  bool header = true;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#')
      continue;
    if (header) {
      header = false;
      continue;
    }
    std::vector<std::string> cells(1);
    bool quoted = false;
    for (char c : line) {
      if (c == '"')
        quoted = !quoted;
      else if (c == ',' && !quoted)
        cells.emplace_back();
      else
        cells.back() += c;
    }
    rows.push_back(cells);
  }
  return rows;
}

}  // namespace

TEST_CASE("Debye function and U_iso against hand values", "[debye]") {
  // reference/debye/hand_values.py (independent midpoint integration, CODATA 2018).
  CHECK(debye_phi(0) == Approx(1.0));
  CHECK(debye_phi(0.5) == Approx(0.8819271568).epsilon(1e-8));
  CHECK(debye_phi(3.0) == Approx(0.4804352196).epsilon(1e-8));
  CHECK(debye_u_iso_A2(55.845, 470, 300) == Approx(0.0037746).epsilon(2e-5));
  CHECK(debye_u_iso_A2(55.845, 435, 1000) == Approx(0.0138437).epsilon(2e-5));
  // Zero point: U(0 K) = 3ħ²/(4 m k_B Θ) — the 1/4 term alone.
  CHECK(debye_u_iso_A2(55.845, 435, 0) == Approx(3 * 48.50867 / (4 * 55.845 * 435)).epsilon(1e-6));
  CHECK(debye_u_iso_A2(55.845, 435, 1) == Approx(debye_u_iso_A2(55.845, 435, 0)).epsilon(1e-4));
  CHECK_THROWS_AS(debye_u_iso_A2(55.845, 0, 300), Error);
}

TEST_CASE("Debye U_iso matches tabulated room-temperature values and is ~linear at high T", "[debye]") {
  ThermalSpec spec;
  spec.temperature_K = 293;
  for (const auto& row : csv_rows(testing::source_path("reference/debye/u_iso_tabulated.csv"))) {
    const int Z = atomic_number(row[0]);
    spec.temperature_K = std::stod(row[1]);
    const double tabulated = std::stod(row[2]);
    INFO(row[0] << ": Debye " << spec.u_iso_A2(Z) << " A^2, tabulated " << tabulated << " (" << row[4] << ")");
    CHECK(std::abs(spec.u_iso_A2(Z) / tabulated - 1) < 0.05);
  }
  for (int Z : {8, 26, 28}) {
    spec.temperature_K = 1500;
    const double u1500 = spec.u_iso_A2(Z);
    spec.temperature_K = 750;
    const double u750 = spec.u_iso_A2(Z);
    spec.temperature_K = 3000;
    const double u3000 = spec.u_iso_A2(Z);
    // U ≈ 3ħ²T/(m k_B Θ²)·(1 + Θ²/(36T²)): ratios within 3 % of the temperature ratio.
    CHECK(u1500 / u750 == Approx(2.0).epsilon(0.03));
    CHECK(u3000 / u1500 == Approx(2.0).epsilon(0.01));
  }
}

TEST_CASE("Debye temperature table agrees with reference/debye and overrides win", "[debye]") {
  int n = 0;
  for (const auto& row : csv_rows(testing::source_path("reference/debye/debye_temperatures.csv"))) {
    const int Z = std::stoi(row[1]);
    CHECK(atomic_number(row[0]) == Z);
    CHECK(default_debye_temperature(Z).theta_K == Approx(std::stod(row[2])));
    ++n;
  }
  CHECK(n >= 30);
  ThermalSpec spec;
  spec.temperature_K = parse_quantity("700C", Dimension::Temperature, "--temperature");
  CHECK(spec.temperature_K == Approx(973.15));
  CHECK(parse_quantity("973K", Dimension::Temperature, "t") == Approx(973));
  CHECK_THROWS_AS(parse_quantity("700", Dimension::Temperature, "--temperature"), Error);
  CHECK_THROWS_AS(parse_quantity("-300C", Dimension::Temperature, "--temperature"), Error);
  CHECK_THROWS_AS(parse_quantity("700F", Dimension::Temperature, "--temperature"), Error);
  spec.theta_override_K = parse_debye_temperatures("Fe=470K,O=600", "--debye-temperature");
  CHECK(spec.theta_K(26) == Approx(470));
  CHECK(spec.theta_K(8) == Approx(600));
  CHECK(spec.theta_K(28) == Approx(397));
  CHECK(spec.u_iso_A2(26) == Approx(debye_u_iso_A2(atomic_mass_u(26), 470, 973.15)));
  CHECK_THROWS_AS(parse_debye_temperatures("Xx=400K", "--debye-temperature"), Error);
  CHECK_THROWS_AS(parse_debye_temperatures("Fe:400K", "--debye-temperature"), Error);
  CHECK_THROWS_AS(spec.theta_K(92), Error);  // U: not tabulated → asks for --debye-temperature

  Crystal ni = read_crystal("Ni");
  apply_temperature(ni, spec);
  for (const Site& s : ni.sites)
    CHECK(s.u_iso_A2 == Approx(spec.u_iso_A2(28)));
}

TEST_CASE("frozen phonons at 1000 K lose more Bragg intensity than at 300 K, as Debye–Waller predicts",
          "[debye]") {
  // Thin Ni [001] slab (kinematic regime): the mean intensity of a Bragg beam over phonon
  // configurations is I_static·exp(−4π²U g²) (the rest goes to TDS between the beams). The loss
  // 1 − I(T)/I_static at 1000 K over that at 300 K must follow the Debye–Waller ratio.
  const Crystal ni = read_crystal("Ni");
  const int cells = 8;
  const AtomicModel base = orient_crystal(ni, {0, 0, 1}, {1, 0, 0}, {cells, cells, 1});
  MultisliceSpec spec;
  spec.nx = spec.ny = 256;
  spec.slice_thickness_A = ni.lattice.a_A() / 2;
  spec.threads = 1;
  const double a = ni.lattice.a_A();
  // Beams 200 and 220 families (4 members each) at index cells·h in the FFT layout.
  const std::vector<std::vector<std::array<int, 2>>> families = {
      {{2, 0}, {-2, 0}, {0, 2}, {0, -2}}, {{2, 2}, {-2, 2}, {2, -2}, {-2, -2}}};
  auto beam_intensities = [&](const AtomicModel& model, int configs, std::uint64_t seed) {
    MultisliceSpec s = spec;
    s.phonon_configs = configs;
    s.seed = seed;
    std::vector<double> sums(families.size(), 0.0);
    const Fft2D fft(spec.nx, spec.ny, 1);
    AlignedVector<cfloat> k(std::size_t(spec.nx) * spec.ny);
    run_multislice(model, s, [&](int, int, double, const Wave& w) {
      fft.forward(w.psi.data(), k.data());
      for (std::size_t f = 0; f < families.size(); ++f)
        for (const auto& hk : families[f]) {
          const int ix = (hk[0] * cells + spec.nx) % spec.nx, iy = (hk[1] * cells + spec.ny) % spec.ny;
          sums[f] += std::norm(k[std::size_t(iy) * spec.nx + ix]) / (double(spec.nx) * spec.ny) /
                     (double(spec.nx) * spec.ny) / std::max(configs, 1);
        }
    });
    return sums;
  };
  const std::vector<double> i_static = beam_intensities(base, 0, 1);
  std::map<int, double> u;
  std::map<int, std::vector<double>> loss;
  for (int T : {300, 1000}) {
    ThermalSpec th;
    th.temperature_K = T;
    AtomicModel m = base;
    apply_temperature(m, th);
    u[T] = th.u_iso_A2(28);
    const std::vector<double> i_t = beam_intensities(m, 24, 7 + T);
    for (std::size_t f = 0; f < families.size(); ++f)
      loss[T].push_back(1 - i_t[f] / i_static[f]);
  }
  for (std::size_t f = 0; f < families.size(); ++f) {
    const double g2 = (f == 0 ? 4.0 : 8.0) / (a * a);
    const double predicted = (1 - std::exp(-4 * PI * PI * u[1000] * g2)) / (1 - std::exp(-4 * PI * PI * u[300] * g2));
    const double measured = loss[1000][f] / loss[300][f];
    INFO("family " << (f == 0 ? "200" : "220") << ": loss 300 K " << loss[300][f] << ", 1000 K "
                   << loss[1000][f] << ", ratio " << measured << " vs Debye-Waller " << predicted);
    CHECK(loss[1000][f] > loss[300][f]);
    CHECK(std::abs(measured / predicted - 1) < 0.10);
  }
}
