// The errors found in one YAML document while it is mapped onto a message and checked, each at a
// line and column and about a field path (`steps[2].reboot.timeout`), and where each field path was
// written, so that checks made after the mapping can point at the line. Internal to kfleet_cli:
// shared by the generic mapping (yaml_proto.h) and the job spec checks (job_spec.cc).
#ifndef KFLEET_CLI_YAML_ERRORS_H_
#define KFLEET_CLI_YAML_ERRORS_H_

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kfleet::cli::internal {

// A position in the YAML text, both 1-based.
struct Pos {
  int line = 1;
  int col = 1;
};

// Where `node` starts, or `fallback` when yaml-cpp has no mark for it.
Pos PosOf(const YAML::Node& node, Pos fallback);
// Where `mark` is, or 1:1 for a null mark.
Pos PosOf(const YAML::Mark& mark);
// Where a map value is, for errors about it: the key's position `key` when the value is missing
// (yaml-cpp marks `reboot:` at the end of a line with the next token, maybe lines below).
Pos ValuePos(const YAML::Node& value, Pos key);

// The path of `field` inside `path`: `hosts.count`, or `field` alone at the top.
std::string Join(absl::string_view path, absl::string_view field);
// The path of the map key `key` inside `path`: `labels.pool`, or `labels["a b"]` (C-escaped) for a
// key that is not made of letters, digits, _ and -.
std::string JoinKey(absl::string_view path, absl::string_view key);
// `text` double-quoted and C-escaped for an error message, cut to 40 characters with "...".
std::string Quote(absl::string_view text);
// `node` for "... is not ...": its quoted text, "a list", "a map" or "nothing".
std::string Describe(const YAML::Node& node);

// Collects errors and field locations for one document. Not thread-safe.
class YamlErrors {
 public:
  // `file` only names the input in status().
  explicit YamlErrors(absl::string_view file) : file_(file) {}

  // Reports an error without marking a path as bad. An empty `path` is an error about the whole
  // document.
  void Report(Pos pos, absl::string_view path, absl::string_view problem);
  // Reports an error and marks `path` as bad, so that checks depending on it stay quiet.
  void Error(Pos pos, absl::string_view path, absl::string_view problem);
  // Marks `path` as bad without reporting anything (an error about it was reported under another
  // path).
  void MarkBad(const std::string& path) { poisoned_.insert(path); }

  bool failed() const { return !errors_.empty(); }
  // The number of errors reported so far.
  size_t count() const { return errors_.size(); }
  // INVALID_ARGUMENT with every error, one per line, sorted by position, each as
  // `FILE:LINE:COL: PATH: problem`; after 50 errors the rest are counted on a last line. Meant for
  // when failed().
  absl::Status status() const;

  // True if `path` itself was marked bad.
  bool MarkedBad(const std::string& path) const { return poisoned_.count(path) != 0; }
  // True if `path`, one of its parents, or one of its children was marked bad.
  bool Poisoned(const std::string& path) const;

  // Records that `path` was written at `pos`. `display` is the path as written when it differs
  // (a step's timeout written inside its kind's map); Display() returns it.
  void Record(const std::string& path, Pos pos, absl::string_view display = "");
  // True if `path` was recorded.
  bool Given(const std::string& path) const { return locations_.count(path) != 0; }
  // Where `path` was written, or where its closest written parent was, or else root().
  Pos PosFor(std::string path) const;
  // The path as written (see Record), or `path` itself when it was not recorded.
  std::string Display(const std::string& path) const;

  // Where the document starts: errors about a missing top-level field point there.
  Pos root() const { return root_; }
  void set_root(Pos root) { root_ = root; }

 private:
  struct Problem {
    Pos pos;
    std::string text;
  };
  struct Location {
    std::string display;  // the path as written (steps[0].reboot.timeout)
    Pos pos;
  };

  std::string file_;
  Pos root_;
  std::vector<Problem> errors_;
  std::set<std::string> poisoned_;
  std::map<std::string, Location> locations_;
};

}  // namespace kfleet::cli::internal

#endif  // KFLEET_CLI_YAML_ERRORS_H_
