// One test's outcome, as a suite runner's parser (kselftest TAP, fstests, blktests) reports it.
#ifndef KFLEET_AGENT_SUITES_TEST_RESULT_H_
#define KFLEET_AGENT_SUITES_TEST_RESULT_H_

#include <cstdint>
#include <string>

namespace kfleet::agent {

enum class TestStatus { kPass, kFail, kSkip, kError };

struct TestResult {
  std::string suite;    // "kselftest", "fstests", ...
  std::string section;  // kselftest: the target/collection ("timers"), fstests: the config section
  std::string name;     // "timers:posix_timers" style for kselftest (collection:test), subtest path
                        // joined with "/" for nested
  TestStatus status;
  int64_t duration_ms = -1;  // -1 unknown
  std::string detail;        // why: the directive text, "timeout", the failing lines (<= 4 KiB)
};

// The bound on TestResult::detail.
inline constexpr size_t kMaxTestDetailBytes = 4096;

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SUITES_TEST_RESULT_H_
