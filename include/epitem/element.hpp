// Chemical elements: symbol ↔ atomic number (Z = 1–103, the range of Kirkland's table).
#pragma once
#include <string>

namespace epitem {

constexpr int MAX_Z = 103;

/// Atomic number of an element symbol; tolerant of CIF type symbols ("Fe3+", "O2-", "Fe1"
/// labels are reduced to their leading letters). Throws Error for an unknown symbol.
int atomic_number(const std::string& symbol);

/// Atomic number or 0 when unknown (no throw).
int atomic_number_or_zero(const std::string& symbol);

/// Element symbol for Z in 1..103 ("Fe"); throws Error otherwise.
const char* element_symbol(int Z);

/// Standard atomic weight [g/mol] (IUPAC 2013, rounded), for densities.
double atomic_mass_u(int Z);

}  // namespace epitem
