#include "agent/suites/fstests_results.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kfleet::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

const std::string kDir = KFLEET_SUITES_TESTDATA "/fstests";

std::string Fixture(const std::string& name) {
  absl::StatusOr<std::string> text = ReadFile(absl::StrCat(kDir, "/", name));
  EXPECT_TRUE(text.ok()) << text.status();
  return text.value_or("");
}

// "section|name|status|duration": the fields a user reads, in one comparable string.
std::string Row(const TestResult& r) {
  static constexpr const char* kStatus[] = {"pass", "fail", "skip", "error"};
  return absl::StrCat(r.section, "|", r.name, "|", kStatus[static_cast<int>(r.status)], "|",
                      r.duration_ms);
}

std::vector<std::string> Rows(const std::vector<TestResult>& results) {
  std::vector<std::string> rows;
  for (const TestResult& r : results) {
    EXPECT_EQ(r.suite, "fstests");
    EXPECT_LE(r.detail.size(), kMaxTestDetailBytes);
    rows.push_back(Row(r));
  }
  return rows;
}

// Validates that one section's result.xml gives each test's outcome, time and reason.
TEST(FstestsXmlTest, ParsesSectionReport) {
  FstestsResults parsed = ParseFstestsXml(Fixture("results/xfs_crc/result.xml"));
  ASSERT_TRUE(parsed.status.ok()) << parsed.status;
  EXPECT_THAT(Rows(parsed.results),
              ElementsAre("xfs_crc|generic/001|pass|3000", "xfs_crc|generic/002|skip|0",
                          "xfs_crc|generic/003|fail|12000", "xfs_crc|generic/004|fail|6000"));
  EXPECT_EQ(parsed.results[0].detail, "");
  EXPECT_EQ(parsed.results[1].detail, "this test requires a valid $SCRATCH_LOGDEV");
  EXPECT_THAT(parsed.results[2].detail,
              StartsWith("- output mismatch (see "
                         "/var/lib/xfstests/results/xfs_crc/generic/003.out.bad)\n--- "
                         "tests/generic/003.out"));
  EXPECT_THAT(parsed.results[2].detail, HasSubstr("+atime changed after reading (<1 s)"));
  EXPECT_THAT(parsed.results[2].detail,
              HasSubstr("\n QA output created by 003\n-Silence is golden\n"));
  EXPECT_THAT(parsed.results[2].detail, Not(HasSubstr("meta-data")));  // .full is uploaded
  EXPECT_THAT(parsed.results[3].detail, HasSubstr("\n[  313.445566] WARNING: CPU: 1 PID: 4211"));
}

// Validates that every section directory under RESULT_BASE is read, in section order.
TEST(FstestsXmlTest, ReadsEverySection) {
  FstestsResults parsed = ReadFstestsXmlResults(kDir + "/results");
  ASSERT_TRUE(parsed.status.ok()) << parsed.status;
  EXPECT_THAT(Rows(parsed.results),
              ElementsAre("xfs_crc|generic/001|pass|3000", "xfs_crc|generic/002|skip|0",
                          "xfs_crc|generic/003|fail|12000", "xfs_crc|generic/004|fail|6000",
                          "xfs_reflink|generic/001|pass|4000", "xfs_reflink|xfs/007|skip|1000",
                          "xfs_reflink|generic/005|fail|90000"));
  EXPECT_THAT(parsed.results[6].detail, StartsWith("[failed, exit status 1]- output mismatch"));
}

// Validates that a run without config sections reports section "".
TEST(FstestsXmlTest, NoSections) {
  FstestsResults parsed = ParseFstestsXml(Fixture("result_nosections.xml"));
  ASSERT_TRUE(parsed.status.ok()) << parsed.status;
  EXPECT_THAT(Rows(parsed.results), ElementsAre("|generic/001|pass|5000", "|ext4/001|skip|1000",
                                                "|generic/013|fail|14000"));
  EXPECT_EQ(parsed.results[2].detail,
            "_check_ext4_filesystem: filesystem on /dev/vdb is inconsistent (see "
            "/results/generic/013.full for details)");
}

// Validates that a result.xml cut short by a crash yields the complete tests and DataLoss.
TEST(FstestsXmlTest, TruncatedKeepsCompleteTests) {
  FstestsResults parsed = ParseFstestsXml(Fixture("result_truncated.xml"));
  EXPECT_EQ(parsed.status.code(), absl::StatusCode::kDataLoss) << parsed.status;
  EXPECT_THAT(std::string(parsed.status.message()),
              HasSubstr("line 46: input ends inside <system-err> (truncated)"));
  EXPECT_THAT(Rows(parsed.results),
              ElementsAre("xfs_crc|generic/001|pass|3000", "xfs_crc|generic/002|skip|0"));
}

// Validates that the report check rewrites before each test (empty suite time) is DataLoss: the
// test that was running is missing.
TEST(FstestsXmlTest, UnfinishedSectionIsDataLoss) {
  FstestsResults parsed = ParseFstestsXml(Fixture("result_running.xml"));
  EXPECT_EQ(parsed.status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Rows(parsed.results), ElementsAre("|generic/001|pass|4000"));
}

// Validates that malformed XML is InvalidArgument naming the line, after the tests before it.
TEST(FstestsXmlTest, MalformedNamesLine) {
  FstestsResults parsed = ParseFstestsXml(
      "<testsuite>\n<testcase name=\"generic/001\" time=\"1\"/>\n<testcase name=\"generic/002\">"
      "\n</testsuit>\n");
  EXPECT_EQ(parsed.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(parsed.status.message()), HasSubstr("line 4: mismatched tag"));
  EXPECT_THAT(Rows(parsed.results), ElementsAre("|generic/001|pass|1000"));
}

// Validates that entities cannot be declared (no billion laughs, no external entities).
TEST(FstestsXmlTest, RefusesDoctype) {
  FstestsResults parsed = ParseFstestsXml(
      "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol1 "
      "\"&lol;&lol;&lol;\">]>\n<testsuite><testcase name=\"a/001\"><failure message=\"&lol1;\"/>"
      "</testcase></testsuite>");
  EXPECT_EQ(parsed.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(parsed.status.message()), HasSubstr("line 2: DOCTYPE"));
  EXPECT_THAT(parsed.results, IsEmpty());
}

// Validates the bounds: a test without a name, nesting, and the detail size.
TEST(FstestsXmlTest, Bounds) {
  EXPECT_EQ(ParseFstestsXml("<testsuite><testcase time=\"1\"/></testsuite>").status.code(),
            absl::StatusCode::kInvalidArgument);
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "<a>";
  EXPECT_EQ(ParseFstestsXml(deep).status.code(), absl::StatusCode::kResourceExhausted);
  std::string big = "<testsuite><testcase name=\"a/001\"><failure message=\"x\"/><system-err>" +
                    std::string(100000, 'd') + "</system-err></testcase></testsuite>";
  FstestsResults parsed = ParseFstestsXml(big);
  ASSERT_TRUE(parsed.status.ok()) << parsed.status;
  ASSERT_EQ(parsed.results.size(), 1u);
  EXPECT_EQ(parsed.results[0].detail.size(), kMaxTestDetailBytes);
  EXPECT_EQ(ReadFstestsXmlResults(kDir + "/nonexistent").status.code(),
            absl::StatusCode::kNotFound);
}

const std::vector<std::string> kStdoutRows = {
    "xfs_crc|generic/001|pass|3000", "xfs_crc|generic/002|skip|-1",
    "xfs_crc|generic/003|fail|-1",   "xfs_crc|generic/004|fail|-1",
    "xfs_crc|generic/006|skip|-1",   "xfs_reflink|generic/001|pass|4000",
    "xfs_reflink|xfs/007|skip|-1",   "xfs_reflink|generic/005|fail|-1"};

// Validates check's stdout with two sections: per-test lines, diffs as detail, and the summary
// repeated at the end adding nothing.
TEST(FstestsOutputTest, ParsesStdout) {
  std::vector<TestResult> results = ParseFstestsOutput(Fixture("check.out"));
  EXPECT_THAT(Rows(results), ::testing::ElementsAreArray(kStdoutRows));
  EXPECT_EQ(results[1].detail, "this test requires a valid $SCRATCH_LOGDEV");
  EXPECT_THAT(results[2].detail,
              StartsWith("- output mismatch (see "
                         "/var/lib/xfstests/results/xfs_crc/generic/003.out.bad)\n--- "));
  EXPECT_THAT(results[2].detail, HasSubstr("\n+touch: cannot touch"));
  EXPECT_THAT(results[2].detail, HasSubstr("\n QA output created by 003\n-Silence is golden\n"));
  EXPECT_EQ(results[3].detail,
            "_check_dmesg: something found (see "
            "/var/lib/xfstests/results/xfs_crc/generic/004.dmesg)");
  EXPECT_EQ(results[4].detail, "expunged");
  EXPECT_EQ(results[6].detail, "quota not supported by this filesystem type: xfs");
}

// Validates that output fed in arbitrary pieces gives the same results, a pass as soon as its
// line is complete and a failure once the lines under it are.
TEST(FstestsOutputTest, StreamsInPieces) {
  const std::string out = Fixture("check.out");
  FstestsOutputParser parser;
  std::vector<TestResult> results;
  for (size_t i = 0; i < out.size(); i += 7) {
    for (TestResult& r : parser.Feed(absl::string_view(out).substr(i, 7))) {
      results.push_back(std::move(r));
    }
  }
  for (TestResult& r : parser.Finish()) results.push_back(std::move(r));
  EXPECT_THAT(Rows(results), ::testing::ElementsAreArray(kStdoutRows));

  FstestsOutputParser live;
  EXPECT_THAT(live.Feed("SECTION       -- s\ngeneric/001 2s ..."), IsEmpty());
  EXPECT_THAT(Rows(live.Feed("  3s\n")), ElementsAre("s|generic/001|pass|3000"));
  EXPECT_THAT(live.Feed("generic/003 - output mismatch\n    -golden\n"), IsEmpty());
  EXPECT_THAT(Rows(live.Feed("Ran: generic/001 generic/003\n")),
              ElementsAre("s|generic/003|fail|-1"));
  // Whatever check prints where the time should be is a failure.
  EXPECT_THAT(
      live.Feed("xfs/010 \n_check_xfs_filesystem: filesystem on /dev/vdb is inconsistent\n"),
      IsEmpty());
  std::vector<TestResult> last = live.Finish();
  EXPECT_THAT(Rows(last), ElementsAre("s|xfs/010|fail|-1"));
  EXPECT_EQ(last[0].detail, "_check_xfs_filesystem: filesystem on /dev/vdb is inconsistent");
}

// Validates check.log, which has only the summaries: each test from Ran/Not run/Failures.
TEST(FstestsOutputTest, ParsesCheckLog) {
  std::vector<TestResult> results = ParseFstestsOutput(Fixture("check.log"));
  EXPECT_THAT(Rows(results),
              ElementsAre("|generic/001|pass|-1", "|generic/002|skip|-1", "|generic/003|fail|-1",
                          "|generic/004|fail|-1", "|generic/001|pass|-1", "|xfs/007|skip|-1",
                          "|generic/005|fail|-1"));
}

// Validates the two ways a run stops early: check interrupted (the last test of Ran), and the
// machine gone mid-test (an unfinished test line).
TEST(FstestsOutputTest, UnfinishedRuns) {
  std::vector<TestResult> interrupted = ParseFstestsOutput(Fixture("check_interrupted.log"));
  EXPECT_THAT(Rows(interrupted), ElementsAre("|generic/001|pass|-1", "|generic/013|error|-1"));
  std::vector<TestResult> crashed = ParseFstestsOutput(Fixture("check_crashed.out"));
  EXPECT_THAT(Rows(crashed), ElementsAre("|generic/001|pass|4000", "|generic/013|error|-1"));
  EXPECT_THAT(crashed[1].detail, HasSubstr("did not finish"));
}

// Validates that an overlong line is cut, not buffered without bound, and parsing goes on.
TEST(FstestsOutputTest, OverlongLine) {
  FstestsOutputParser parser;
  for (int i = 0; i < 8; ++i) parser.Feed(std::string(1 << 20, 'x'));
  EXPECT_THAT(Rows(parser.Feed("\ngeneric/001        1s\n")),
              ElementsAre("|generic/001|pass|1000"));
}

// Validates the files listed for upload: only failed tests', only those that exist, never
// outside RESULT_BASE.
TEST(FstestsFilesTest, ListsFailedTestsFiles) {
  const std::string base = kDir + "/results";
  FstestsResults parsed = ReadFstestsXmlResults(base);
  EXPECT_THAT(FstestsFailureFiles(base, parsed.results),
              ElementsAre(base + "/xfs_crc/generic/003.out.bad", base + "/xfs_crc/generic/003.full",
                          base + "/xfs_crc/generic/004.full", base + "/xfs_crc/generic/004.dmesg",
                          base + "/xfs_reflink/generic/005.out.bad"));
  TestResult evil{"fstests", "..", "xfs_crc/generic/003", TestStatus::kFail};
  EXPECT_THAT(FstestsFailureFiles(base + "/xfs_reflink", {evil}), IsEmpty());
}

// Validates that the files check names under RESULT_BASE become artifact names, "(see PATH)"
// gains the command that fetches it, and paths elsewhere (the tree) or leaving RESULT_BASE stay.
TEST(FstestsDetailTest, NamesArtifactsInsteadOfWorkFiles) {
  auto name_of = [](absl::string_view rel) { return absl::StrCat("run1+", rel); };
  auto get = [](absl::string_view name) { return absl::StrCat("get ", name); };
  EXPECT_EQ(FstestsDetailWithArtifacts(
                "- output mismatch (see /w/results/xfs/generic/002.out.bad)\n"
                "+++ /w/results/xfs/generic/002.out.bad\t2026\n"
                "(Run 'diff -u /src/tests/generic/002.out /w/results/xfs/generic/002.out.bad')\n"
                "/w/results/../etc/passwd /w/resultsX/a",
                "/w/results", name_of, get),
            "- output mismatch (see artifact run1+xfs/generic/002.out.bad: get "
            "run1+xfs/generic/002.out.bad)\n"
            "+++ run1+xfs/generic/002.out.bad\t2026\n"
            "(Run 'diff -u /src/tests/generic/002.out run1+xfs/generic/002.out.bad')\n"
            "/w/results/../etc/passwd /w/resultsX/a");
  EXPECT_EQ(FstestsDetailWithArtifacts("no files", "/w/results", name_of, get), "no files");
}

}  // namespace
}  // namespace kfleet::agent
