#include "epitem/csv.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "epitem/error.hpp"
#include "epitem/output.hpp"

namespace epitem {

namespace {
std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\"");
  size_t b = s.find_last_not_of(" \t\r\"");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}
}  // namespace

int CsvTable::column(const std::string& name) const {
  auto it = std::find(header.begin(), header.end(), name);
  return it == header.end() ? -1 : int(it - header.begin());
}

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string cell;
  while (std::getline(ss, cell, ','))
    out.push_back(trim(cell));
  return out;
}

CsvTable read_csv_table(const std::string& path, const std::string& what) {
  require_readable(path, what);
  std::ifstream in(path);
  CsvTable table;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::string t = trim(line);
    if (t.empty() || t[0] == '#')
      continue;
    if (table.header.empty()) {
      table.header = split_csv_line(t);
    } else {
      table.rows.push_back(split_csv_line(t));
      table.line_numbers.push_back(line_no);
    }
  }
  if (table.header.empty())
    fail(what, ": ", path, " is empty; expected a header line and one row per value");
  return table;
}

}  // namespace epitem
