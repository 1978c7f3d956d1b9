// Helpers for the collector tests: fixture files and sample lookup. Test-only.
#ifndef KFLEET_AGENT_COLLECT_TEST_UTIL_H_
#define KFLEET_AGENT_COLLECT_TEST_UTIL_H_

#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "agent/collect/procfs.h"

namespace kfleet::agent::testing {

// The fixture kernels under testdata/: 4.19 (no PSI), 5.10, 6.1 and the build machine's 6.18.
inline constexpr const char* kKernels[] = {"4.19", "5.10", "6.1", "6.18"};

inline std::string TestdataPath(absl::string_view relative) {
  return absl::StrCat(KFLEET_COLLECT_TESTDATA, "/", relative);
}

// The content of testdata/<kernel>/<relative>; "" if there is no such file.
inline std::string ReadFixture(absl::string_view kernel, absl::string_view relative) {
  std::ifstream in(TestdataPath(absl::StrCat(kernel, "/", relative)), std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

using Labels = std::map<std::string, std::string>;

inline Labels LabelsOf(const kfleet::v1::MetricSample& s) {
  return Labels(s.labels().begin(), s.labels().end());
}

// The value of the sample named `name` with exactly `labels`, if there is one.
inline std::optional<double> ValueOf(const MetricSamples& samples, absl::string_view name,
                                     const Labels& labels = {}) {
  for (const kfleet::v1::MetricSample& s : samples) {
    if (s.name() == name && LabelsOf(s) == labels) return s.value();
  }
  return std::nullopt;
}

inline int CountNamed(const MetricSamples& samples, absl::string_view name) {
  int n = 0;
  for (const kfleet::v1::MetricSample& s : samples) n += s.name() == name;
  return n;
}

}  // namespace kfleet::agent::testing

#endif  // KFLEET_AGENT_COLLECT_TEST_UTIL_H_
