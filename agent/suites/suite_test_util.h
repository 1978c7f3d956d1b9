// Small helpers the suite runners' tests share.
#ifndef KFLEET_AGENT_SUITES_SUITE_TEST_UTIL_H_
#define KFLEET_AGENT_SUITES_SUITE_TEST_UTIL_H_

#include <map>
#include <string>
#include <vector>

#include "agent/suites/test_result.h"

namespace kfleet::agent::testing_util {

inline const char* StatusName(TestStatus status) {
  switch (status) {
    case TestStatus::kPass:
      return "PASS";
    case TestStatus::kFail:
      return "FAIL";
    case TestStatus::kSkip:
      return "SKIP";
    case TestStatus::kError:
      return "ERROR";
  }
  return "?";
}

inline std::vector<std::string> Keys(const std::map<std::string, std::string>& m) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : m) keys.push_back(k);
  return keys;
}

}  // namespace kfleet::agent::testing_util

#endif  // KFLEET_AGENT_SUITES_SUITE_TEST_UTIL_H_
