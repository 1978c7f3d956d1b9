// Plain aligned text tables: a header in capitals, columns separated by three spaces, no trailing
// blanks, no colours.
#ifndef KFLEET_CLI_TABLE_H_
#define KFLEET_CLI_TABLE_H_

#include <string>
#include <vector>

namespace kfleet::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> headers);

  // Precondition: `cells` has one entry per header. An empty cell is shown as "-" so that every
  // row has the same number of words before any free-text column; newlines and tabs become spaces.
  void AddRow(std::vector<std::string> cells);

  size_t rows() const { return rows_.size(); }

  // The table, each line ending in '\n'.
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_TABLE_H_
