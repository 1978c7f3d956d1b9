// Fuzz target for the blktests parsers: the input as a status file, and as check's stdout, whole
// and fed in uneven pieces. Checks that results stay within their bounds.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/suites/blktests_results.h"

namespace {

using kfleet::agent::TestResult;

void Check(const std::vector<TestResult>& results) {
  for (const TestResult& r : results) {
    if (r.detail.size() > kfleet::agent::kMaxTestDetailBytes) std::abort();
    if (r.name.empty() || r.suite != "blktests") std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  TestResult run = kfleet::agent::ParseBlktestsRunFile(input);
  if (run.detail.size() > kfleet::agent::kMaxTestDetailBytes) std::abort();

  Check(kfleet::agent::ParseBlktestsOutput(input));
  kfleet::agent::BlktestsOutputParser parser;
  size_t step = 1 + size % 11;
  for (size_t i = 0; i < size; i += step) Check(parser.Feed(input.substr(i, step)));
  Check(parser.Finish());
  return 0;
}
