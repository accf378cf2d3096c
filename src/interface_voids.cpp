// Void search at an interface: probe-accessible grid points (farther than probe + r_cov from
// every atom) in a band around the interface, labelled into 26-connected components.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <unordered_set>

#include "epitem/error.hpp"
#include "epitem/interface.hpp"
#include "interface_detail.hpp"

namespace epitem {

namespace {

// Distance from p to the nearest atom surface of the bulk crystal (27 cell images).
double clearance_A(const std::vector<Vec3>& atoms, const std::vector<double>& radii, const Vec3& p) {
  double best = std::numeric_limits<double>::max();
  for (std::size_t i = 0; i < atoms.size(); ++i)
    best = std::min(best, (atoms[i] - p).norm() - radii[i]);
  return best;
}

}  // namespace

double largest_bulk_hole_A(const Crystal& crystal) {
  if (crystal.sites.empty())
    fail("largest bulk hole: crystal '", crystal.name, "' has no atoms");
  const Mat3& a = crystal.lattice.direct_A();
  std::vector<Vec3> atoms;
  std::vector<double> radii;
  for (int u = -1; u <= 1; ++u)
    for (int v = -1; v <= 1; ++v)
      for (int w = -1; w <= 1; ++w)
        for (const Site& s : crystal.sites) {
          atoms.push_back(a * (s.frac + Vec3(u, v, w)));
          radii.push_back(covalent_radius_A(s.Z));
        }
  // Coarse grid over the cell (≈0.3 Å), then a pattern search from the best points: the
  // maximum of the clearance is a vertex-like point the coarse grid only brackets.
  std::array<int, 3> n;
  for (int i = 0; i < 3; ++i)
    n[i] = std::clamp(int(std::ceil(a.col(i).norm() / 0.3)), 4, 40);
  std::vector<std::pair<double, Vec3>> samples;
  for (int i = 0; i < n[0]; ++i)
    for (int j = 0; j < n[1]; ++j)
      for (int k = 0; k < n[2]; ++k) {
        const Vec3 p = a * Vec3(double(i) / n[0], double(j) / n[1], double(k) / n[2]);
        samples.push_back({clearance_A(atoms, radii, p), p});
      }
  const std::size_t keep = std::min<std::size_t>(24, samples.size());
  std::partial_sort(samples.begin(), samples.begin() + long(keep), samples.end(),
                    [](const auto& x, const auto& y) { return x.first > y.first; });
  double best = samples.front().first;
  for (std::size_t s = 0; s < keep; ++s) {
    Vec3 p = samples[s].second;
    double f = samples[s].first, step = 0.15;
    while (step > 1e-4) {
      bool moved = false;
      for (int d = 0; d < 3; ++d)
        for (double sign : {-1.0, 1.0}) {
          const Vec3 trial = p + sign * step * Vec3::Unit(d);
          const double ft = clearance_A(atoms, radii, trial);
          if (ft > f) {
            f = ft;
            p = trial;
            moved = true;
          }
        }
      if (!moved)
        step *= 0.5;
    }
    best = std::max(best, f);
  }
  return best;
}

namespace detail {

std::vector<InterfaceVoid> find_interface_voids(const AtomicModel& model,
                                                const InterfaceGeometry& geo,
                                                const Footprint& footprint, double probe_A,
                                                double grid_A, double band_A) {
  const Vec3 box = model.box_lengths_A();
  const int na = geo.normal_axis, la = geo.ledge_axis;
  const auto [hmin, hmax] = geo.height_range_A(0, box[la]);
  const double h0 = hmin - band_A, h1 = hmax + band_A;

  // Grid: periodic axes divide the box evenly; the open ones start at 0 (or h0).
  std::array<int, 3> n;
  std::array<double, 3> step, origin;
  for (int a = 0; a < 3; ++a) {
    if (a == na) {
      n[a] = int(std::ceil((h1 - h0) / grid_A)) + 1;
      step[a] = grid_A;
      origin[a] = h0;
    } else if (model.pbc[std::size_t(a)]) {
      n[a] = std::max(1, int(std::lround(box[a] / grid_A)));
      step[a] = box[a] / n[a];
      origin[a] = 0;
    } else {
      n[a] = int(box[a] / grid_A) + 1;
      step[a] = grid_A;
      origin[a] = 0;
    }
  }
  const auto index = [&](int i, int j, int k) {
    return (std::size_t(k) * std::size_t(n[1]) + std::size_t(j)) * std::size_t(n[0]) + std::size_t(i);
  };
  const std::size_t n_points = static_cast<std::size_t>(n[0]) * static_cast<std::size_t>(n[1]) *
                               static_cast<std::size_t>(n[2]);

  // Each atom blocks the grid points within probe + r_cov of it (painting is O(atoms) with a
  // small constant; querying every point through the cell list was 10× slower).
  std::vector<char> blocked(n_points, 0);
  for (const Atom& at : model.atoms) {
    const double reach = probe_A + covalent_radius_A(at.Z);
    if (at.pos_A[na] < h0 - reach || at.pos_A[na] > h1 + reach)
      continue;
    int lo[3], hi[3];
    for (int a = 0; a < 3; ++a) {
      lo[a] = int(std::ceil((at.pos_A[a] - reach - origin[std::size_t(a)]) / step[std::size_t(a)]));
      hi[a] = int(std::floor((at.pos_A[a] + reach - origin[std::size_t(a)]) / step[std::size_t(a)]));
      if (!model.pbc[std::size_t(a)] || a == na) {
        lo[a] = std::max(lo[a], 0);
        hi[a] = std::min(hi[a], n[std::size_t(a)] - 1);
      }
    }
    const double r2max = reach * reach;
    for (int k = lo[2]; k <= hi[2]; ++k) {
      const double dz = origin[2] + k * step[2] - at.pos_A[2];
      const int kw = (k % n[2] + n[2]) % n[2];
      for (int j = lo[1]; j <= hi[1]; ++j) {
        const double dy = origin[1] + j * step[1] - at.pos_A[1];
        const int jw = (j % n[1] + n[1]) % n[1];
        for (int i = lo[0]; i <= hi[0]; ++i) {
          const double dx = origin[0] + i * step[0] - at.pos_A[0];
          if (dx * dx + dy * dy + dz * dz < r2max)
            blocked[index((i % n[0] + n[0]) % n[0], jw, kw)] = 1;
        }
      }
    }
  }
  std::vector<char> empty(n_points, 0);
  for (int k = 0; k < n[2]; ++k)
    for (int j = 0; j < n[1]; ++j)
      for (int i = 0; i < n[0]; ++i) {
        const std::size_t id = index(i, j, k);
        if (blocked[id])
          continue;
        const Vec3 p(origin[0] + i * step[0], origin[1] + j * step[1], origin[2] + k * step[2]);
        empty[id] = std::abs(p[na] - geo.height_A(p[la])) <= band_A && footprint(p);
      }
  blocked = std::vector<char>();

  // 26-connected components (periodic wrap along periodic axes), tracking unwrapped cells.
  std::vector<InterfaceVoid> voids;
  std::vector<char> seen(empty.size(), 0);
  const int rs = int(std::ceil(probe_A / std::min({step[0], step[1], step[2]})));
  for (std::size_t start = 0; start < empty.size(); ++start) {
    if (!empty[start] || seen[start])
      continue;
    std::vector<std::array<int, 3>> stack, members;
    const int si = int(start % std::size_t(n[0]));
    const int sj = int((start / std::size_t(n[0])) % std::size_t(n[1]));
    const int sk = int(start / (std::size_t(n[0]) * std::size_t(n[1])));
    stack.push_back({si, sj, sk});
    seen[start] = 1;
    while (!stack.empty()) {
      const auto c = stack.back();
      stack.pop_back();
      members.push_back(c);
      for (int d = 0; d < 27; ++d) {
        if (d == 13)
          continue;  // the cell itself
        std::array<int, 3> nb = {c[0] + d % 3 - 1, c[1] + (d / 3) % 3 - 1, c[2] + d / 9 - 1};
        std::array<int, 3> w = nb;
        bool ok = true;
        for (int a = 0; a < 3; ++a) {
          if (w[std::size_t(a)] >= 0 && w[std::size_t(a)] < n[std::size_t(a)])
            continue;
          if (model.pbc[std::size_t(a)] && a != na)
            w[std::size_t(a)] = (w[std::size_t(a)] % n[std::size_t(a)] + n[std::size_t(a)]) % n[std::size_t(a)];
          else
            ok = false;
        }
        if (!ok)
          continue;
        const std::size_t id = index(w[0], w[1], w[2]);
        if (empty[id] && !seen[id]) {
          seen[id] = 1;
          stack.push_back(nb);
        }
      }
    }
    InterfaceVoid v;
    v.n_grid_points = members.size();
    Vec3 sum = Vec3::Zero();
    for (const auto& c : members)
      sum += Vec3(c[0] * step[0], c[1] * step[1], c[2] * step[2]);
    Vec3 center = sum / double(members.size()) + Vec3(origin[0], origin[1], origin[2]);
    for (int a = 0; a < 3; ++a)
      if (model.pbc[std::size_t(a)] && a != na)
        center[a] -= box[a] * std::floor(center[a] / box[a]);
    v.center_A = center;
    // Void volume: union of probe spheres centred on the component's grid points.
    std::unordered_set<long long> covered;
    const auto key = [](int i, int j, int k) {
      return ((long long)(i + (1 << 20)) << 42) | ((long long)(j + (1 << 20)) << 21) |
             (long long)(k + (1 << 20));
    };
    for (const auto& c : members)
      for (int di = -rs; di <= rs; ++di)
        for (int dj = -rs; dj <= rs; ++dj)
          for (int dk = -rs; dk <= rs; ++dk) {
            const double r2 = (di * step[0]) * (di * step[0]) + (dj * step[1]) * (dj * step[1]) +
                              (dk * step[2]) * (dk * step[2]);
            if (r2 <= probe_A * probe_A)
              covered.insert(key(c[0] + di, c[1] + dj, c[2] + dk));
          }
    v.volume_A3 = double(covered.size()) * step[0] * step[1] * step[2];
    voids.push_back(v);
  }
  std::stable_sort(voids.begin(), voids.end(), [](const InterfaceVoid& a, const InterfaceVoid& b) {
    return a.volume_A3 > b.volume_A3;  // largest first
  });
  return voids;
}

}  // namespace detail
}  // namespace epitem
