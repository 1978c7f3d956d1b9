// The TAP parser over real `make run_tests` logs of Linux 6.1's kselftest collections
// (testdata/kselftest-6.1/, see its README): the results must agree with what kselftest itself
// printed, read here from the raw text without the parser.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "agent/suites/suite_test_util.h"
#include "agent/suites/tap.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kfleet::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const std::string kFixtures = std::string(KFLEET_SUITES_TESTDATA) + "/kselftest-6.1";

std::string Load(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  EXPECT_TRUE(file.good()) << path;
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

std::vector<std::string> Fixtures() {
  std::vector<std::string> paths;
  for (const auto& entry : std::filesystem::directory_iterator(kFixtures)) {
    if (entry.path().extension() == ".tap") paths.push_back(entry.path().string());
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

using testing_util::StatusName;

// kselftest.h's "# Totals: pass:P fail:F xfail:X xpass:XP skip:S error:E" of one test.
struct Totals {
  int pass = 0, fail = 0, xfail = 0, xpass = 0, skip = 0, error = 0;
};

// What kselftest printed about one test of the runner: its verdict line, its own counters (the
// Totals lines of its output, summed) and how many TAP test lines its output had.
struct Printed {
  std::string name;     // COLLECTION:TEST
  std::string verdict;  // "PASS", "FAIL" or "SKIP", from the runner's line
  bool has_totals = false;
  Totals totals;
  int test_lines = 0;
};

// Reads the runner's lines from a log with regular expressions, independently of TapParser.
std::vector<Printed> ReadPrinted(const std::string& text) {
  static const std::regex kHeader(R"(^# selftests: (\S+): (.+)$)");
  static const std::regex kVerdict(R"(^(not )?ok \d+ selftests: (\S+): (.+?)( # (\S+).*)?$)");
  static const std::regex kTotals(
      R"(^# # Totals: pass:(\d+) fail:(\d+) xfail:(\d+) xpass:(\d+) skip:(\d+) error:(\d+))");
  static const std::regex kNested(R"(^# (not )?ok \d+)");
  std::vector<Printed> printed;
  Printed current;
  std::smatch m;
  for (absl::string_view view : absl::StrSplit(text, '\n')) {
    const std::string line(view);
    if (std::regex_match(line, m, kHeader)) {
      current = Printed();
      current.name = absl::StrCat(m[1].str(), ":", m[2].str());
    } else if (std::regex_match(line, m, kVerdict)) {
      current.name = absl::StrCat(m[2].str(), ":", m[3].str());
      current.verdict = m[1].matched ? "FAIL" : m[5].str() == "SKIP" ? "SKIP" : "PASS";
      printed.push_back(current);
      current = Printed();
    } else if (std::regex_search(line, m, kTotals)) {
      // A script that runs several programs (futex's run.sh) prints one Totals line for each.
      current.has_totals = true;
      current.totals.pass += std::stoi(m[1]);
      current.totals.fail += std::stoi(m[2]);
      current.totals.xfail += std::stoi(m[3]);
      current.totals.xpass += std::stoi(m[4]);
      current.totals.skip += std::stoi(m[5]);
      current.totals.error += std::stoi(m[6]);
    } else if (std::regex_search(line, m, kNested)) {
      ++current.test_lines;
    }
  }
  return printed;
}

// Validates, for every fixture, that the tests kfleet reports are the runner's, each with the
// runner's verdict, and that a test's subtests, when reported, count as its own Totals lines do:
// passes (with xfails) and skips always, failures and errors only under a failed test. A test
// whose output has no TAP test line has no subtests; a passing test has no failed ones.
TEST(KselftestFixturesTest, AgreeWithKselftest) {
  const std::vector<std::string> fixtures = Fixtures();
  ASSERT_GE(fixtures.size(), 20u) << kFixtures;
  int with_subtests = 0;
  for (const std::string& path : fixtures) {
    SCOPED_TRACE(path);
    const std::string text = Load(path);
    const std::vector<Printed> printed = ReadPrinted(text);
    const std::vector<TestResult> results = ParseTap(text);

    std::vector<std::string> want, got;
    for (const Printed& p : printed) want.push_back(absl::StrCat(p.verdict, " ", p.name));
    std::map<std::string, std::vector<const TestResult*>> subtests;
    for (const TestResult& r : results) {
      const size_t slash = r.name.find('/', r.name.find(':'));
      if (slash == std::string::npos) {
        got.push_back(absl::StrCat(StatusName(r.status), " ", r.name));
      } else {
        subtests[r.name.substr(0, slash)].push_back(&r);
      }
      EXPECT_EQ(r.section, r.name.substr(0, r.name.find(':'))) << r.name;
    }
    EXPECT_EQ(got, want);

    for (const Printed& p : printed) {
      SCOPED_TRACE(p.name);
      const std::vector<const TestResult*>& subs = subtests[p.name];
      if (p.test_lines == 0) {
        EXPECT_THAT(subs, IsEmpty());
        continue;
      }
      ++with_subtests;
      int pass = 0, fail = 0, skip = 0, error = 0;
      for (const TestResult* r : subs) {
        switch (r->status) {
          case TestStatus::kPass:
            ++pass;
            break;
          case TestStatus::kFail:
            ++fail;
            break;
          case TestStatus::kSkip:
            ++skip;
            break;
          case TestStatus::kError:
            ++error;
            break;
        }
      }
      if (p.verdict != "FAIL") {
        EXPECT_EQ(fail + error, 0);
      }
      if (!p.has_totals) continue;
      EXPECT_EQ(pass, p.totals.pass + p.totals.xfail);
      EXPECT_EQ(skip, p.totals.skip);
      if (p.verdict == "FAIL") {
        EXPECT_EQ(fail, p.totals.fail + p.totals.xpass);
        EXPECT_EQ(error, p.totals.error);
      }
    }
  }
  // The fixtures hold TAP subtests worth comparing, not only plain outputs.
  EXPECT_GE(with_subtests, 15);
}

// Validates the reported case: kcmp_test plans 3 tests, prints "PASS:" lines instead of test
// lines, and the runner says ok: one passing test, no errors.
TEST(KselftestFixturesTest, KcmpPlanWithoutTestLines) {
  const std::vector<TestResult> results = ParseTap(Load(kFixtures + "/kcmp.tap"));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].name, "kcmp:kcmp_test");
  EXPECT_EQ(results[0].status, TestStatus::kPass);
  EXPECT_EQ(results[0].detail, "");
}

// Validates pidfd_test, whose forked children flush copies of its stdout buffer into the log
// (its plan and first seven test lines twice): each subtest is reported once.
TEST(KselftestFixturesTest, PidfdRepeatedOutputCountsOnce) {
  const std::vector<TestResult> results = ParseTap(Load(kFixtures + "/pidfd.tap"));
  std::vector<std::string> names;
  for (const TestResult& r : results) {
    if (absl::StartsWith(r.name, "pidfd:pidfd_test/")) names.push_back(r.name);
  }
  ASSERT_EQ(names.size(), 8u);
  EXPECT_EQ(names[0],
            "pidfd:pidfd_test/pidfd_poll check for premature notification on child thread exec "
            "test: Passed");
  // The same description under another number is another subtest.
  EXPECT_EQ(names[1], absl::StrCat(names[0], " #2"));
}

// Validates that repeated descriptions within one test (membarrier's two GLOBAL_EXPEDITED checks)
// get names of their own, so none is lost where results are kept by name.
TEST(KselftestFixturesTest, MembarrierRepeatedDescriptions) {
  const std::vector<TestResult> results = ParseTap(Load(kFixtures + "/membarrier.tap"));
  std::vector<std::string> names;
  for (const TestResult& r : results) names.push_back(r.name);
  std::vector<std::string> unique = names;
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  EXPECT_EQ(unique.size(), names.size());
  EXPECT_EQ(names.size(), 2u * 13u + 2u);
  EXPECT_THAT(names, testing::Contains("membarrier:membarrier_test_single_thread/sys membarrier "
                                       "MEMBARRIER_CMD_GLOBAL_EXPEDITED test: flags = 0 #13"));
}

// Validates a failing kselftest_harness test (ptrace's vmaccess: global.attach timed out): the
// failed subtest is reported under its failed test, with the harness's lines in its detail.
TEST(KselftestFixturesTest, PtraceFailedSubtest) {
  const std::vector<TestResult> results = ParseTap(Load(kFixtures + "/ptrace.tap"));
  std::vector<std::string> summary;
  for (const TestResult& r : results) {
    summary.push_back(absl::StrCat(StatusName(r.status), " ", r.name));
  }
  EXPECT_THAT(summary, ElementsAre("PASS ptrace:get_syscall_info/global.get_syscall_info",
                                   "PASS ptrace:get_syscall_info", "PASS ptrace:peeksiginfo",
                                   "PASS ptrace:vmaccess/global.vmaccess",
                                   "FAIL ptrace:vmaccess/global.attach", "FAIL ptrace:vmaccess"));
  EXPECT_THAT(results[4].detail, HasSubstr("attach: Test terminated by timeout"));
}

}  // namespace
}  // namespace kfleet::agent
