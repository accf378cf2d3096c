// Electron scattering factors of neutral atoms (docs/formulas.md §3): Kirkland (2010, Appendix C;
// 12 parameters, argument q = 1/d) and Peng / ITC Vol. C Table 4.3.2.2 (via gemmi; argument
// s = sinθ/λ = q/2, valid to s ≤ 2 Å⁻¹). Plus Kirkland's real-space projected potential.
#pragma once
#include <array>
#include <string>

namespace epitem {

enum class ScatteringTable { Kirkland, Peng };

/// "kirkland" | "peng" (case-insensitive); throws Error otherwise.
ScatteringTable parse_scattering_table(const std::string& name);
const char* scattering_table_name(ScatteringTable table);

/// Kirkland parameters a1 b1 a2 b2 a3 b3 c1 d1 c2 d2 c3 d3 for Z = 1..103 (see
/// src/kirkland_table.cpp for provenance).
const std::array<double, 12>& kirkland_parameters(int Z);

/// Electron scattering factor f_e [Å] at spatial frequency q = 1/d = |g| [1/Å] (no 2π).
double scattering_factor_A(int Z, double q_invA, ScatteringTable table = ScatteringTable::Kirkland);

/// Largest q [1/Å] where the table is valid (Peng: s ≤ 2 Å⁻¹ → q ≤ 4; Kirkland: q ≤ 12).
double scattering_table_q_max_invA(ScatteringTable table);

/// Kirkland's projected potential of one atom v_z(r) [V·Å] at radius r [Å] > 0
/// (Kirkland Eq. C.20; docs/formulas.md §4). Diverges logarithmically as r → 0.
double kirkland_projected_potential_VA(int Z, double r_A);

}  // namespace epitem
