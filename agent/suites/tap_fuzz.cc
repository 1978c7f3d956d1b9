// Fuzz target for the TAP parser: the input line by line, then split at every "\r" as well, so that
// both carriage-return handling and odd line shapes are covered. Checks the documented bounds.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "agent/suites/tap.h"

namespace {

using kfleet::agent::TestResult;

void Check(const std::vector<TestResult>& results, int64_t* total) {
  for (const TestResult& result : results) {
    if (result.detail.size() > kfleet::agent::kMaxTestDetailBytes) std::abort();
    if (result.name.empty() || result.suite != "kselftest") std::abort();
  }
  *total += static_cast<int64_t>(results.size());
  if (*total > static_cast<int64_t>(kfleet::agent::kMaxTapResults)) std::abort();
}

void Run(absl::string_view input, char separator) {
  kfleet::agent::TapParser parser;
  int64_t total = 0;
  for (absl::string_view line : absl::StrSplit(input, separator))
    Check(parser.FeedLine(line), &total);
  Check(parser.Finish(), &total);
  total = 0;
  // A finished parser takes a new stream.
  Check(parser.FeedLine("ok 1 again"), &total);
  Check(parser.Finish(), &total);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  Run(input, '\n');
  Run(input, '\r');
  return 0;
}
