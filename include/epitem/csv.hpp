// Reading small CSV tables (frame times, covariates, peak lists): a header line, comma-separated
// cells trimmed of spaces, '#' comment lines and blank lines skipped. Excel exports read as
// written: UTF-8 byte-order mark, CRLF line ends, quoted cells with commas, doubled quotes ""
// and line breaks (RFC 4180).
#pragma once
#include <string>
#include <vector>

namespace epitem {

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<int> line_numbers;  ///< 1-based file line of each row, for error messages

  /// Index of the column named `name`, or -1.
  int column(const std::string& name) const;
};

/// The text without leading and trailing spaces, tabs, CR and double quotes.
std::string trim_field(const std::string& text);

/// Splits on `separator`, each field trimmed as trim_field.
std::vector<std::string> split_fields(const std::string& text, char separator);

/// Splits one CSV record on commas outside quotes. A quoted cell keeps its text exactly (a
/// doubled quote "" inside it is one quote); an unquoted cell is trimmed as trim_field.
std::vector<std::string> split_csv_line(const std::string& line);

/// Reads the whole table; throws Error naming `what` and the path if it is missing or empty.
/// line_numbers are those of each record's first line.
CsvTable read_csv_table(const std::string& path, const std::string& what);

}  // namespace epitem
