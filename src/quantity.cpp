#include "epitem/quantity.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>

#include "epitem/error.hpp"
#include "epitem/units.hpp"

namespace epitem {

namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Unit spellings per dimension → factor to the canonical unit.
const std::map<std::string, double>& unit_table(Dimension dim) {
  static const std::map<std::string, double> length = {
      {"A", units::A}, {"Å", units::A}, {"Ang", units::A}, {"pm", units::pm},
      {"nm", units::nm}, {"um", units::um}, {"µm", units::um}, {"mm", units::mm}};
  static const std::map<std::string, double> inverse_length = {
      {"/A", 1.0}, {"1/A", 1.0}, {"A^-1", 1.0}, {"A-1", 1.0}, {"/Å", 1.0}, {"1/Å", 1.0},
      {"invA", 1.0}, {"/nm", 0.1}, {"1/nm", 0.1}, {"nm^-1", 0.1}, {"nm-1", 0.1}};
  static const std::map<std::string, double> energy = {
      {"eV", units::eV}, {"keV", units::keV}, {"kV", units::keV}, {"kv", units::keV},
      {"V", units::eV}, {"MeV", 1e6}, {"MV", 1e6}};
  static const std::map<std::string, double> beam_angle = {
      {"mrad", units::mrad}, {"urad", 1e-3}, {"µrad", 1e-3}, {"rad", units::rad},
      {"deg", units::deg_to_rad * units::rad}, {"°", units::deg_to_rad * units::rad}};
  static const std::map<std::string, double> crystal_angle = {
      {"deg", 1.0}, {"°", 1.0}, {"rad", 180.0 / PI}, {"mrad", 0.180 / PI}};
  static const std::map<std::string, double> time = {
      {"s", 1.0}, {"ms", 1e-3}, {"us", 1e-6}, {"µs", 1e-6}, {"min", 60.0}, {"h", 3600.0}};
  static const std::map<std::string, double> dose = {
      {"e/A2", 1.0}, {"e/A^2", 1.0}, {"e/Å2", 1.0}, {"e/Å²", 1.0}, {"e/nm2", 0.01},
      {"e/nm^2", 0.01}};
  // Temperature: the factor is 1; Celsius spellings are offset in parse_quantity.
  static const std::map<std::string, double> temperature = {
      {"K", 1.0}, {"C", 1.0}, {"°C", 1.0}, {"degC", 1.0}};
  static const std::map<std::string, double> none = {};
  switch (dim) {
    case Dimension::Length: return length;
    case Dimension::InverseLength: return inverse_length;
    case Dimension::Energy: return energy;
    case Dimension::BeamAngle: return beam_angle;
    case Dimension::CrystalAngle: return crystal_angle;
    case Dimension::Time: return time;
    case Dimension::Dose: return dose;
    case Dimension::Temperature: return temperature;
    case Dimension::Dimensionless: return none;
  }
  return none;
}

std::string accepted_units(Dimension dim) {
  std::string s;
  for (const auto& [name, factor] : unit_table(dim))
    s += (s.empty() ? "" : ", ") + name;
  return s.empty() ? "none" : s;
}

}  // namespace

const char* canonical_unit_symbol(Dimension dim) {
  switch (dim) {
    case Dimension::Length: return "Å";
    case Dimension::InverseLength: return "1/Å";
    case Dimension::Energy: return "eV";
    case Dimension::BeamAngle: return "mrad";
    case Dimension::CrystalAngle: return "deg";
    case Dimension::Time: return "s";
    case Dimension::Dose: return "e/Å²";
    case Dimension::Temperature: return "K";
    case Dimension::Dimensionless: return "";
  }
  return "";
}

double parse_quantity(const std::string& text, Dimension dim, const std::string& what,
                      double bare_unit) {
  std::string s = trim(text);
  if (s.empty())
    fail(what, ": empty value; expected a number with a unit (", accepted_units(dim), ")");
  char* end = nullptr;
  double value = std::strtod(s.c_str(), &end);
  if (end == s.c_str())
    fail(what, ": '", text, "' is not a number; expected e.g. 1.5", canonical_unit_symbol(dim));
  if (!std::isfinite(value))
    fail(what, ": '", text, "' is not a finite number");
  std::string unit = trim(std::string(end));
  if (dim == Dimension::Temperature) {
    // 700 could be °C or K: a temperature always names its unit.
    if (unit.empty())
      fail(what, ": '", text, "' has no unit; write e.g. 700C or 973K");
    if (!unit_table(dim).count(unit))
      fail(what, ": unknown unit '", unit, "' in '", text, "'; accepted: ", accepted_units(dim));
    const double kelvin = unit == "K" ? value : value + 273.15;
    if (!(kelvin >= 0))
      fail(what, ": '", text, "' is below absolute zero");
    return kelvin;
  }
  if (unit.empty())
    return value * bare_unit;
  const auto& table = unit_table(dim);
  auto it = table.find(unit);
  if (it == table.end())
    fail(what, ": unknown unit '", unit, "' in '", text, "'; accepted: ", accepted_units(dim));
  return value * it->second;
}

std::vector<double> parse_quantity_list(const std::string& text, Dimension dim,
                                        const std::string& what, double bare_unit) {
  std::vector<double> values;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    values.push_back(parse_quantity(item, dim, what, bare_unit));
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  return values;
}

double parse_spacing_A(const std::string& text, const std::string& what) {
  std::string s = trim(text);
  if (s.find('/') != std::string::npos || s.find("^-1") != std::string::npos ||
      s.find("-1") == s.size() - 2 || s.find("inv") != std::string::npos) {
    double g = parse_quantity(s, Dimension::InverseLength, what);
    if (g <= 0)
      fail(what, ": reciprocal spacing must be > 0, got '", text, "'");
    return 1.0 / g;
  }
  double d = parse_quantity(s, Dimension::Length, what);
  if (d <= 0)
    fail(what, ": spacing must be > 0, got '", text, "'");
  return d;
}

std::vector<int> parse_int_triple(const std::string& text, const std::string& what) {
  std::string s = trim(text);
  if (!s.empty() && (s.front() == '[' || s.front() == '(' || s.front() == '{'))
    s = s.substr(1);
  if (!s.empty() && (s.back() == ']' || s.back() == ')' || s.back() == '}'))
    s.pop_back();
  std::vector<int> v;
  bool has_separator = s.find_first_of(", ") != std::string::npos;
  if (has_separator) {
    for (char& c : s)
      if (c == ',')
        c = ' ';
    const char* p = s.c_str();
    char* end = nullptr;
    while (true) {
      while (*p == ' ')
        ++p;
      if (!*p)
        break;
      long x = std::strtol(p, &end, 10);
      if (end == p)
        fail(what, ": '", text, "' is not three integers (e.g. 1,-1,0)");
      v.push_back(int(x));
      p = end;
    }
  } else {  // compact single-digit form "1-10" = 1,-1,0
    for (size_t i = 0; i < s.size(); ++i) {
      int sign = 1;
      if (s[i] == '-') {
        sign = -1;
        ++i;
      }
      if (i >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i])))
        fail(what, ": '", text, "' is not three integers (e.g. 1,-1,0)");
      v.push_back(sign * (s[i] - '0'));
    }
  }
  if (v.size() != 3)
    fail(what, ": expected three integers (e.g. 1,-1,0), got '", text, "'");
  return v;
}

std::vector<int> parse_grid_size(const std::string& text, const std::string& what) {
  std::string s = trim(text);
  size_t x = s.find_first_of("xX*");
  auto parse_one = [&](const std::string& part) {
    char* end = nullptr;
    long n = std::strtol(part.c_str(), &end, 10);
    if (end == part.c_str() || *end != '\0' || n < 2 || n > 65536)
      fail(what, ": grid size must be an integer 2..65536 (e.g. 512 or 512x256), got '", text, "'");
    return int(n);
  };
  if (x == std::string::npos) {
    int n = parse_one(s);
    return {n, n};
  }
  return {parse_one(s.substr(0, x)), parse_one(s.substr(x + 1))};
}

}  // namespace epitem
