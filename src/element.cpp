#include "epitem/element.hpp"

#include <cctype>

#include "epitem/error.hpp"

namespace epitem {

namespace {
// Symbols Z = 1..103 and standard atomic weights (IUPAC 2013 abridged, g/mol).
const char* const SYMBOLS[MAX_Z] = {
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne",
    "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar", "K", "Ca",
    "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn",
    "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr",
    "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn",
    "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd",
    "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb",
    "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg",
    "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th",
    "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm",
    "Md", "No", "Lr",
};
const double MASSES[MAX_Z] = {
    1.008, 4.0026, 6.94, 9.0122, 10.81, 12.011, 14.007, 15.999,
    18.998, 20.18, 22.99, 24.305, 26.982, 28.085, 30.974, 32.06,
    35.45, 39.948, 39.098, 40.078, 44.956, 47.867, 50.942, 51.996,
    54.938, 55.845, 58.933, 58.693, 63.546, 65.38, 69.723, 72.63,
    74.922, 78.971, 79.904, 83.798, 85.468, 87.62, 88.906, 91.224,
    92.906, 95.95, 98, 101.07, 102.91, 106.42, 107.87, 112.41,
    114.82, 118.71, 121.76, 127.6, 126.9, 131.29, 132.91, 137.33,
    138.91, 140.12, 140.91, 144.24, 145, 150.36, 151.96, 157.25,
    158.93, 162.5, 164.93, 167.26, 168.93, 173.05, 174.97, 178.49,
    180.95, 183.84, 186.21, 190.23, 192.22, 195.08, 196.97, 200.59,
    204.38, 207.2, 208.98, 209, 210, 222, 223, 226,
    227, 232.04, 231.04, 238.03, 237, 244, 243, 247,
    247, 251, 252, 257, 258, 259, 262,
};
}  // namespace

int atomic_number_or_zero(const std::string& symbol) {
  // Keep the leading letters only: "Fe3+" → "Fe", "O2-" → "O", "Fe1" → "Fe".
  std::string letters;
  for (char c : symbol) {
    if (!std::isalpha(static_cast<unsigned char>(c)))
      break;
    letters += c;
  }
  if (letters.empty() || letters.size() > 2)
    return 0;
  std::string norm(1, char(std::toupper(static_cast<unsigned char>(letters[0]))));
  if (letters.size() == 2)
    norm += char(std::tolower(static_cast<unsigned char>(letters[1])));
  for (int z = 1; z <= MAX_Z; ++z)
    if (norm == SYMBOLS[z - 1])
      return z;
  return 0;
}

int atomic_number(const std::string& symbol) {
  int z = atomic_number_or_zero(symbol);
  if (z == 0)
    fail("unknown element symbol '", symbol, "' (expected H..Lr, Z = 1-103)");
  return z;
}

const char* element_symbol(int Z) {
  if (Z < 1 || Z > MAX_Z)
    fail("atomic number ", Z, " out of range 1-103");
  return SYMBOLS[Z - 1];
}

double atomic_mass_u(int Z) {
  if (Z < 1 || Z > MAX_Z)
    fail("atomic number ", Z, " out of range 1-103");
  return MASSES[Z - 1];
}

}  // namespace epitem
