#include "cli/table.h"

#include <algorithm>
#include <cassert>

#include "absl/strings/ascii.h"

namespace kfleet::cli {
namespace {

constexpr char kGap[] = "   ";

// Display width: UTF-8 continuation bytes take no column.
size_t Width(const std::string& s) {
  return std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; });
}

}  // namespace

Table::Table(std::vector<std::string> headers) : headers_(std::move(headers)) {
  for (std::string& h : headers_) absl::AsciiStrToUpper(&h);
}

void Table::AddRow(std::vector<std::string> cells) {
  assert(cells.size() == headers_.size());
  cells.resize(headers_.size());
  for (std::string& c : cells) {
    if (c.empty()) c = "-";
    std::replace_if(
        c.begin(), c.end(), [](char ch) { return ch == '\n' || ch == '\t' || ch == '\r'; }, ' ');
  }
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const {
  std::vector<size_t> widths(headers_.size());
  for (size_t i = 0; i < headers_.size(); ++i) widths[i] = Width(headers_[i]);
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], Width(row[i]));
  }
  std::string out;
  auto append_line = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) {
      line += cells[i];
      if (i + 1 < cells.size()) line.append(widths[i] - Width(cells[i]), ' ').append(kGap);
    }
    out += line;
    out += '\n';
  };
  append_line(headers_);
  for (const auto& row : rows_) append_line(row);
  return out;
}

}  // namespace kfleet::cli
