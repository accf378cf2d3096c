#include "epitem/csv.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "epitem/error.hpp"
#include "epitem/output.hpp"

namespace epitem {

std::string trim_field(const std::string& text) {
  size_t a = text.find_first_not_of(" \t\r\"");
  size_t b = text.find_last_not_of(" \t\r\"");
  return a == std::string::npos ? "" : text.substr(a, b - a + 1);
}

std::vector<std::string> split_fields(const std::string& text, char separator) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string field;
  while (std::getline(ss, field, separator))
    out.push_back(trim_field(field));
  return out;
}

int CsvTable::column(const std::string& name) const {
  auto it = std::find(header.begin(), header.end(), name);
  return it == header.end() ? -1 : int(it - header.begin());
}

std::vector<std::string> split_csv_line(const std::string& line) { return split_fields(line, ','); }

CsvTable read_csv_table(const std::string& path, const std::string& what) {
  require_readable(path, what);
  std::ifstream in(path);
  CsvTable table;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::string t = trim_field(line);
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
