// Line splitting, number parsing and sample building shared by the procfs parsers (procfs_*.cc).
// Internal to kfleet_agent_collect. Pure functions, safe from any thread.
#ifndef KFLEET_AGENT_COLLECT_PROCFS_TEXT_H_
#define KFLEET_AGENT_COLLECT_PROCFS_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "agent/collect/procfs.h"

namespace kfleet::agent::procfs_internal {

struct Line {
  absl::string_view text;  // without its '\n'; if too_long, only the first kMaxLineBytes bytes
  size_t number = 0;       // 1-based
  bool too_long = false;
};

// Calls `fn` on each line of `content`, in order, until it returns false. A last line without a
// '\n' counts.
void ForEachLine(absl::string_view content, absl::FunctionRef<bool(const Line&)> fn);

// The fields of `line` separated by spaces and tabs, at most `max_fields` of them (the rest of the
// line is then ignored).
std::vector<absl::string_view> Fields(absl::string_view line, size_t max_fields = kMaxEntries);

// Decimal digits only: no sign, no spaces, fits in 64 bits.
bool ParseU64(absl::string_view s, uint64_t* out);

// A finite decimal number ("0.52", "1e3"); no "nan" or "inf".
bool ParseFinite(absl::string_view s, double* out);

// Valid UTF-8 without NUL: what can go into a label value (a protobuf string; Prometheus escapes
// the rest when it writes the exposition).
bool IsLabelValue(absl::string_view s);

// Appends a sample and returns it, for the caller to add labels.
kfleet::v1::MetricSample& AddSample(MetricSamples* out, absl::string_view name, double value);

// Remembers the first line a parser could not use, for its error when nothing was usable.
class BadLines {
 public:
  void Note(const Line& line);
  // InvalidArgument: `file`: no usable line (line N: "..."); expected `expected`.
  absl::Status Error(absl::string_view file, absl::string_view expected) const;

 private:
  size_t number_ = 0;
  std::string excerpt_;
};

}  // namespace kfleet::agent::procfs_internal

#endif  // KFLEET_AGENT_COLLECT_PROCFS_TEXT_H_
