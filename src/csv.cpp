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

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;     // this field started with a quote
  bool in_quotes = false;  // inside its quotes now
  bool closed = false;     // its closing quote was seen
  const auto finish = [&]() {
    fields.push_back(quoted ? field : trim_field(field));
    field.clear();
    quoted = in_quotes = closed = false;
  };
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_quotes) {
      if (c != '"')
        field += c;
      else if (i + 1 < line.size() && line[i + 1] == '"')
        field += '"', ++i;  // "" inside quotes is one quote
      else
        in_quotes = false, closed = true;
    } else if (c == ',') {
      finish();
    } else if (c == '"' && !quoted && field.find_first_not_of(" \t") == std::string::npos) {
      quoted = in_quotes = true;
      field.clear();
    } else if (!(closed && (c == ' ' || c == '\t' || c == '\r'))) {
      field += c;
    }
  }
  finish();
  return fields;
}

namespace {

// True while `text` ends inside a quoted cell (a quote opens a cell only at its start, as in
// split_csv_line), i.e. the record continues on the next line.
bool inside_quotes(const std::string& text) {
  bool in_quotes = false, at_cell_start = true;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"')
        ++i;
      else if (c == '"')
        in_quotes = false;
    } else if (c == ',') {
      at_cell_start = true;
    } else if (c == '"' && at_cell_start) {
      in_quotes = true;
      at_cell_start = false;
    } else if (c != ' ' && c != '\t') {
      at_cell_start = false;
    }
  }
  return in_quotes;
}

std::string without_cr(std::string line) {
  if (!line.empty() && line.back() == '\r')
    line.pop_back();
  return line;
}

}  // namespace

CsvTable read_csv_table(const std::string& path, const std::string& what) {
  require_readable(path, what);
  std::ifstream in(path, std::ios::binary);
  CsvTable table;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line_no == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0)  // UTF-8 byte-order mark (Excel)
      line.erase(0, 3);
    std::string record = without_cr(line);
    const size_t start = record.find_first_not_of(" \t");
    if (start == std::string::npos || record[start] == '#')
      continue;
    const int first_line = line_no;
    // A quoted cell may hold line breaks: join lines until its quotes close.
    while (inside_quotes(record) && std::getline(in, line)) {
      ++line_no;
      record += "\n" + without_cr(line);
    }
    if (table.header.empty()) {
      table.header = split_csv_line(record);
    } else {
      table.rows.push_back(split_csv_line(record));
      table.line_numbers.push_back(first_line);
    }
  }
  if (table.header.empty())
    fail(what, ": ", path, " is empty; expected a header line and one row per value");
  return table;
}

}  // namespace epitem
