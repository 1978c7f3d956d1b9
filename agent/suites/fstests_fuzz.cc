// Fuzz target for the fstests parsers: the input as a result.xml, and as check's stdout or
// check.log, whole and fed in uneven pieces. Checks that results stay within their bounds.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/suites/fstests_results.h"

namespace {

using kfleet::agent::TestResult;

void Check(const std::vector<TestResult>& results) {
  if (results.size() > kfleet::agent::kMaxFstestsResults) std::abort();
  for (const TestResult& r : results) {
    if (r.detail.size() > kfleet::agent::kMaxTestDetailBytes) std::abort();
    if (r.name.empty() || r.suite != "fstests") std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  kfleet::agent::FstestsResults xml = kfleet::agent::ParseFstestsXml(input);
  Check(xml.results);
  if (!xml.status.ok() && xml.status.message().empty()) std::abort();

  Check(kfleet::agent::ParseFstestsOutput(input));
  kfleet::agent::FstestsOutputParser parser;
  size_t step = 1 + size % 13;
  for (size_t i = 0; i < size; i += step) Check(parser.Feed(input.substr(i, step)));
  Check(parser.Finish());
  return 0;
}
