#include "agent/suites/blktests_results.h"

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

const std::string kDir = KFLEET_SUITES_TESTDATA "/blktests";

std::string Fixture(const std::string& name) {
  absl::StatusOr<std::string> text = ReadFile(absl::StrCat(kDir, "/", name));
  EXPECT_TRUE(text.ok()) << text.status();
  return text.value_or("");
}

// "section|name|status|duration": the fields a user reads, in one comparable string.
std::vector<std::string> Rows(const std::vector<TestResult>& results) {
  static constexpr const char* kStatus[] = {"pass", "fail", "skip", "error"};
  std::vector<std::string> rows;
  for (const TestResult& r : results) {
    EXPECT_EQ(r.suite, "blktests");
    EXPECT_LE(r.detail.size(), kMaxTestDetailBytes);
    rows.push_back(absl::StrCat(r.section, "|", r.name, "|", kStatus[static_cast<int>(r.status)],
                                "|", r.duration_ms));
  }
  return rows;
}

// Validates the results directory: every device, group and test, with why each did not pass.
TEST(BlktestsResultsTest, ReadsResultsDirectory) {
  absl::StatusOr<std::vector<TestResult>> results = ReadBlktestsResults(kDir + "/results");
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_THAT(Rows(*results),
              ElementsAre("|block/001|pass|12051", "|block/002|fail|538", "|block/010|skip|-1",
                          "|loop/004|error|-1", "nodev_tr_loop|nvme/002|pass|38023",
                          "nvme0n1|block/003|fail|3104", "nvme0n1|block/004|pass|30402"));
  EXPECT_EQ((*results)[1].detail,
            "output mismatch\nRunning block/002\nblktrace: BLKTRACESETUP(2) /dev/nullb0 failed: "
            "16/Device or resource busy\nTest complete");
  EXPECT_EQ((*results)[2].detail, "not run");
  EXPECT_THAT((*results)[3].detail, HasSubstr("running when the run stopped"));
  EXPECT_THAT((*results)[5].detail,
              HasSubstr("something found in dmesg\n[  402.000001] run blktests block/003"));
  EXPECT_EQ(ReadBlktestsResults(kDir + "/nonexistent").status().code(),
            absl::StatusCode::kNotFound);
}

// Validates the status file's fields, including ones a newer or broken blktests may write.
TEST(BlktestsResultsTest, ParsesRunFile) {
  TestResult exit = ParseBlktestsRunFile("status\tfail\nreason\texit\nexit_status\t2\n");
  EXPECT_EQ(exit.status, TestStatus::kFail);
  EXPECT_EQ(exit.detail, "exited with status 2");
  TestResult skip = ParseBlktestsRunFile("status\tnot run\nreason\tneeds CONFIG_BLK_DEV_ZONED\n");
  EXPECT_EQ(skip.status, TestStatus::kSkip);
  EXPECT_EQ(skip.detail, "needs CONFIG_BLK_DEV_ZONED");
  TestResult odd = ParseBlktestsRunFile("status\tweird\nruntime\tabc\n");
  EXPECT_EQ(odd.status, TestStatus::kError);
  EXPECT_EQ(odd.detail, "unknown status \"weird\"");
  EXPECT_EQ(odd.duration_ms, -1);
  EXPECT_EQ(ParseBlktestsRunFile("").status, TestStatus::kError);
}

// Validates check's stdout: the status line, the runtime under it, skip reasons and diffs, the
// device and condition as the section.
TEST(BlktestsOutputTest, ParsesStdout) {
  std::vector<TestResult> results = ParseBlktestsOutput(Fixture("check.out"));
  EXPECT_THAT(
      Rows(results),
      ElementsAre("|block/001|pass|12051", "|block/002|fail|538", "nvme0n1|block/003|fail|3104",
                  "nvme0n1|block/004|pass|30402", "|block/010|skip|-1",
                  "nodev_tr_loop|nvme/002|pass|38023", "nvme0n1|zbd/***|skip|-1"));
  EXPECT_THAT(results[1].detail, HasSubstr("+blktrace: BLKTRACESETUP(2) /dev/nullb0 failed"));
  EXPECT_THAT(results[2].detail, HasSubstr("something found in dmesg:\n[  402.000001]"));
  EXPECT_EQ(results[4].detail, "null_blk module does not support shared tags");
  EXPECT_EQ(results[6].detail, "nvme0n1 is not a zoned block device");
}

// Validates streaming: a test is reported when the next line shows its block ended, a coloured
// status is read, and a test announced but never finished is an error at the end.
TEST(BlktestsOutputTest, StreamsAndReportsUnfinished) {
  BlktestsOutputParser parser;
  const std::string out = Fixture("check_crashed.out");
  const size_t split = out.find("loop/004");
  EXPECT_THAT(parser.Feed(out.substr(0, split)), IsEmpty());
  EXPECT_THAT(Rows(parser.Feed(out.substr(split))), ElementsAre("|block/001|pass|12051"));
  std::vector<TestResult> last = parser.Finish();
  EXPECT_THAT(Rows(last), ElementsAre("|loop/004|error|-1"));
  EXPECT_THAT(last[0].detail, HasSubstr("did not finish"));
}

// Validates the files listed for upload: status file and outputs of failed or unfinished tests
// only, never outside the results directory.
TEST(BlktestsFilesTest, ListsFailedTestsFiles) {
  const std::string base = kDir + "/results";
  absl::StatusOr<std::vector<TestResult>> results = ReadBlktestsResults(base);
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_THAT(BlktestsFailureFiles(base, *results),
              ElementsAre(base + "/nodev/block/002", base + "/nodev/block/002.out.bad",
                          base + "/nodev/loop/004.out", base + "/nvme0n1/block/003",
                          base + "/nvme0n1/block/003.dmesg"));
  TestResult evil{"blktests", "..", "nodev/block", TestStatus::kFail};
  TestResult evil2{"blktests", "", "../001", TestStatus::kFail};
  EXPECT_THAT(BlktestsFailureFiles(base + "/nodev", {evil, evil2}), IsEmpty());
}

}  // namespace
}  // namespace kfleet::agent
