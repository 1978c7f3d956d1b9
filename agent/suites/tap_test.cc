#include "agent/suites/tap.h"

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/suites/suite_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kfleet::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

std::string Load(const std::string& name) {
  std::ifstream file(std::string(KFLEET_SUITES_TESTDATA) + "/tap/" + name);
  EXPECT_TRUE(file.good()) << name;
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

using testing_util::StatusName;

// "STATUS name" per result, in order.
std::vector<std::string> Summary(const std::vector<TestResult>& results) {
  std::vector<std::string> lines;
  for (const TestResult& result : results) {
    lines.push_back(absl::StrCat(StatusName(result.status), " ", result.name));
  }
  return lines;
}

const TestResult* Find(const std::vector<TestResult>& results, const std::string& name) {
  for (const TestResult& result : results) {
    if (result.name == name) return &result;
  }
  ADD_FAILURE() << "no result " << name;
  static const TestResult kNone{};
  return &kNone;
}

std::string Prefix(int depth) {
  std::string prefix;
  for (int i = 0; i < depth; ++i) prefix += i % 2 == 0 ? "# " : "    ";
  return prefix;
}

// Validates that a plain `make TARGETS=timers run_tests` log gives one result per program, with the
// collection as section and the runner's SKIP (exit 4).
TEST(TapParserTest, TimersRunTests) {
  const std::vector<TestResult> results = ParseTap(Load("kselftest-timers-6.1.tap"));
  EXPECT_THAT(Summary(results),
              ElementsAre("PASS timers:posix_timers", "PASS timers:nanosleep",
                          "PASS timers:nsleep-lat", "PASS timers:set-timer-lat",
                          "PASS timers:mqueue-lat", "PASS timers:inconsistency-check",
                          "PASS timers:raw_skew", "PASS timers:threadtest", "SKIP timers:rtcpie"));
  for (const TestResult& result : results) {
    EXPECT_EQ(result.suite, "kselftest");
    EXPECT_EQ(result.section, "timers");
    EXPECT_EQ(result.duration_ms, -1);
  }
  EXPECT_EQ(results.back().detail, "skip");
}

// Validates kselftest_harness subtests (named from the description, or from the harness's RUN line
// when a SKIP leaves it out), the failing lines in a failure's detail, and kselftest.h's XFAIL and
// SKIP results; an error subtest under a test the runner judged ok is not a result, but noted.
TEST(TapParserTest, NestedHarnessAndKselftestH) {
  const std::vector<TestResult> results = ParseTap(Load("kselftest-nested-harness.tap"));
  EXPECT_THAT(Summary(results),
              ElementsAre("PASS seccomp:seccomp_bpf/global.kcmp",
                          "FAIL seccomp:seccomp_bpf/global.user_notification_basic",
                          "SKIP seccomp:seccomp_bpf/TRAP.dfl", "PASS seccomp:seccomp_bpf/TRAP.ign",
                          "FAIL seccomp:seccomp_bpf",
                          "PASS seccomp:seccomp_benchmark/Allowed if native returns 1",
                          "PASS seccomp:seccomp_benchmark/#2", "SKIP seccomp:seccomp_benchmark/#3",
                          "PASS seccomp:seccomp_benchmark/Entry-Exit latency # matches",
                          "PASS seccomp:seccomp_benchmark/#6", "PASS seccomp:seccomp_benchmark"));
  const TestResult* failed = Find(results, "seccomp:seccomp_bpf/global.user_notification_basic");
  EXPECT_THAT(failed->detail, HasSubstr("seccomp_bpf.c:3217:user_notification_basic:Expected"));
  EXPECT_THAT(failed->detail, HasSubstr("FAIL  global.user_notification_basic"));
  EXPECT_THAT(failed->detail, Not(HasSubstr("global.kcmp")));
  EXPECT_THAT(Find(results, "seccomp:seccomp_bpf")->detail, StartsWith("exit=1\n"));
  EXPECT_EQ(Find(results, "seccomp:seccomp_bpf/TRAP.dfl")->detail,
            "arch has no ptrace syscall hooks");
  EXPECT_EQ(Find(results, "seccomp:seccomp_benchmark/#2")->detail,
            "xfail: native 82 ns approximately equal to bitmap 81 ns");
  EXPECT_EQ(Find(results, "seccomp:seccomp_benchmark/#6")->detail, "xfail");
  EXPECT_EQ(Find(results, "seccomp:seccomp_benchmark")->detail,
            "ok, though its output said not ok for 1 subtest");
}

// Validates a runner TIMEOUT: the subtests the test never reached are errors, the test fails with
// "timeout" and its last output; and "# exit=N".
TEST(TapParserTest, TimeoutAndExitCode) {
  const std::vector<TestResult> results = ParseTap(Load("kselftest-timeout.tap"));
  EXPECT_THAT(Summary(results),
              ElementsAre("PASS net:reuseport_bpf", "PASS net:udpgso_bench.sh/ipv4 udp",
                          "PASS net:udpgso_bench.sh/ipv4 tcp", "ERROR net:udpgso_bench.sh/#3",
                          "ERROR net:udpgso_bench.sh/#4", "FAIL net:udpgso_bench.sh",
                          "FAIL net:so_txtime.sh"));
  EXPECT_EQ(results[3].detail, "not run: plan said 4");
  EXPECT_THAT(results[5].detail, StartsWith("timeout: 45 seconds\n"));
  EXPECT_THAT(results[5].detail, HasSubstr("# ok 2 ipv4 tcp"));
  EXPECT_EQ(results[6].detail,
            "exit=127\n# selftests: net: so_txtime.sh\n"
            "# Warning: file so_txtime.sh is not executable");
}

// Validates output cut by a crash: the running test is an error with its last lines, and the
// planned tests that never ran are errors too.
TEST(TapParserTest, CrashMidRun) {
  const std::vector<TestResult> results = ParseTap(Load("kselftest-crash.tap"));
  EXPECT_THAT(Summary(results),
              ElementsAre("PASS memfd:memfd_test", "PASS memfd:run_fuse_test.sh/fuse mount",
                          "ERROR memfd:run_fuse_test.sh/#2", "ERROR memfd:run_fuse_test.sh/#3",
                          "ERROR memfd:run_fuse_test.sh", "ERROR memfd:#3", "ERROR memfd:#4"));
  EXPECT_THAT(results[4].detail, StartsWith("no result: output ended\n"));
  EXPECT_THAT(results[4].detail, HasSubstr("BUG: kernel NULL pointer dereference"));
  EXPECT_EQ(results[5].detail, "not run: plan said 4");
}

// Validates "Bail out!" inside a test: its remaining subtests are errors naming the reason.
TEST(TapParserTest, BailOut) {
  const std::vector<TestResult> results = ParseTap(Load("kselftest-bailout.tap"));
  ASSERT_EQ(results.size(), 1u + 39u + 2u);
  EXPECT_EQ(results[0].name, "landlock:fs_test/layout0.no_restriction");
  EXPECT_EQ(results[1].name, "landlock:fs_test/#2");
  EXPECT_EQ(results[1].status, TestStatus::kError);
  EXPECT_EQ(results[1].detail, "bail out: landlock_create_ruleset: Function not implemented");
  EXPECT_EQ(results[40].name, "landlock:fs_test");
  EXPECT_EQ(results[40].status, TestStatus::kFail);
  EXPECT_THAT(results[40].detail, HasSubstr("Bail out!"));
  EXPECT_EQ(results[41].status, TestStatus::kSkip);
}

// Validates TAP 14: "# Subtest:", four-space nesting, YAML blocks (attached to a failure, a
// duration_ms key read), TODO and an escaped "#".
TEST(TapParserTest, Tap14WithYaml) {
  const std::vector<TestResult> results = ParseTap(Load("tap14-yaml.tap"), "tap");
  EXPECT_THAT(Summary(results),
              ElementsAre("PASS parser.tap/accepts a plan", "FAIL parser.tap/rejects garbage",
                          "PASS parser.tap/escaped # hash", "FAIL parser.tap", "SKIP network",
                          "PASS slow", "SKIP todo later"));
  EXPECT_EQ(results[1].detail,
            "message: \"expected error, got nil\"\nseverity: fail\nduration_ms: 12.5\nat:\n"
            "  file: parser_test.go\n  line: 42");
  EXPECT_EQ(results[1].duration_ms, 12);
  EXPECT_EQ(results[1].suite, "tap");
  EXPECT_EQ(results[2].detail, "todo: not finished");
  EXPECT_EQ(results[4].detail, "no network in sandbox");
  EXPECT_EQ(results[5].duration_ms, 2500);
  EXPECT_EQ(results[5].detail, "");
  EXPECT_EQ(results[6].detail, "todo: flaky on arm64");
}

// Validates real output of `make TARGETS=size run_tests` on this machine's 6.1 sources.
TEST(TapParserTest, RealSize) {
  EXPECT_THAT(Summary(ParseTap(Load("real-6.1-size.tap"))),
              ElementsAre("PASS size:get_size/get runtime memory use", "PASS size:get_size"));
}

// Validates real kselftest_harness output (`make TARGETS=mincore run_tests`), whose SKIP line has
// no description.
TEST(TapParserTest, RealMincore) {
  EXPECT_THAT(Summary(ParseTap(Load("real-6.1-mincore.tap"))),
              ElementsAre("PASS mincore:mincore_selftest/global.basic_interface",
                          "PASS mincore:mincore_selftest/global.check_anonymous_locked_pages",
                          "SKIP mincore:mincore_selftest/global.check_huge_pages",
                          "PASS mincore:mincore_selftest/global.check_file_mmap",
                          "PASS mincore:mincore_selftest/global.check_tmpfs_mmap",
                          "PASS mincore:mincore_selftest"));
}

// Validates streaming: a result comes with the line after its test line (a YAML block may follow)
// and a nested one as soon as the runner's header named its parent.
TEST(TapParserTest, StreamsResults) {
  TapParser parser;
  EXPECT_THAT(parser.FeedLine("TAP version 13\n"), IsEmpty());
  EXPECT_THAT(parser.FeedLine("1..2\n"), IsEmpty());
  EXPECT_THAT(parser.FeedLine("# selftests: vm: run_vmtests.sh\n"), IsEmpty());
  EXPECT_THAT(parser.FeedLine("# TAP version 13\r\n"), IsEmpty());
  EXPECT_THAT(parser.FeedLine("# ok 1 hugepage-mmap\n"), IsEmpty());
  EXPECT_THAT(Summary(parser.FeedLine("# ok 2 hugepage-shm\n")),
              ElementsAre("PASS vm:run_vmtests.sh/hugepage-mmap"));
  EXPECT_THAT(Summary(parser.FeedLine("ok 1 selftests: vm: run_vmtests.sh\n")),
              ElementsAre("PASS vm:run_vmtests.sh/hugepage-shm"));
  EXPECT_THAT(Summary(parser.FeedLine("# selftests: vm: gup_test\n")),
              ElementsAre("PASS vm:run_vmtests.sh"));
  EXPECT_THAT(Summary(parser.Finish()), ElementsAre("ERROR vm:gup_test"));
  // The parser takes a new stream after Finish.
  EXPECT_THAT(Summary(ParseTap("ok 1 - again")), ElementsAre("PASS again"));
  parser.FeedLine("ok 1 - again");
  EXPECT_THAT(Summary(parser.Finish()), ElementsAre("PASS again"));
}

// Validates durations from the times lines were read: header to result for a top-level test, RUN
// line or previous test line to result for a subtest.
TEST(TapParserTest, DurationsFromLineTimes) {
  TapParser parser;
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  std::vector<TestResult> results;
  auto feed = [&](absl::string_view line, int64_t ms) {
    for (TestResult& result : parser.FeedLine(line, t0 + absl::Milliseconds(ms))) {
      results.push_back(std::move(result));
    }
  };
  feed("TAP version 13", 0);
  feed("1..1", 1);
  feed("# selftests: seccomp: seccomp_bpf", 100);
  feed("# TAP version 13", 150);
  feed("# #  RUN           global.kcmp ...", 200);
  feed("# ok 1 global.kcmp", 1200);
  feed("# ok 2 global.mode_strict", 1500);
  feed("ok 1 selftests: seccomp: seccomp_bpf", 45100);
  for (TestResult& result : parser.Finish()) results.push_back(std::move(result));
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].duration_ms, 1000);
  EXPECT_EQ(results[1].duration_ms, 300);
  EXPECT_EQ(results[2].name, "seccomp:seccomp_bpf");
  EXPECT_EQ(results[2].duration_ms, 45000);
}

// Validates nesting without a header: the subtests wait for their parent's line, and come before
// it.
TEST(TapParserTest, UnnamedParentHoldsSubtests) {
  TapParser parser;
  parser.FeedLine("TAP version 14");
  EXPECT_THAT(parser.FeedLine("    ok 1 - inner"), IsEmpty());
  EXPECT_THAT(parser.FeedLine("    not ok 2 - broken"), IsEmpty());
  EXPECT_THAT(parser.FeedLine("    1..2"), IsEmpty());
  EXPECT_THAT(Summary(parser.FeedLine("not ok 1 - outer")),
              ElementsAre("PASS outer/inner", "FAIL outer/broken"));
  EXPECT_THAT(Summary(parser.Finish()), ElementsAre("FAIL outer"));
}

// Validates that the runner's ok outweighs the test's own "not ok" lines: the failed subtest is
// not a result, the ones around it are, in order, and the test's detail notes the difference.
TEST(TapParserTest, OkParentOverrulesNestedFailures) {
  TapParser parser;
  parser.FeedLine("TAP version 13");
  parser.FeedLine("1..1");
  parser.FeedLine("# selftests: c: t");
  parser.FeedLine("# 1..3");
  parser.FeedLine("# ok 1 first");
  EXPECT_THAT(Summary(parser.FeedLine("# not ok 2 second")), ElementsAre("PASS c:t/first"));
  // What follows a failure waits for the verdict with it.
  EXPECT_THAT(parser.FeedLine("# ok 3 third"), IsEmpty());
  EXPECT_THAT(Summary(parser.FeedLine("ok 1 selftests: c: t")), ElementsAre("PASS c:t/third"));
  const std::vector<TestResult> last = parser.Finish();
  EXPECT_THAT(Summary(last), ElementsAre("PASS c:t"));
  EXPECT_EQ(last[0].detail, "ok, though its output said not ok for 1 subtest");
}

// Validates that under a failed test its failed subtests and the tests its plan missed are
// reported, in output order.
TEST(TapParserTest, FailedParentKeepsNestedFailures) {
  const std::vector<TestResult> results = ParseTap(
      "1..1\n# selftests: c: t\n# 1..4\n# ok 1 first\n# not ok 2 second\n# ok 3 third\n"
      "not ok 1 selftests: c: t # exit=1\n");
  EXPECT_THAT(Summary(results), ElementsAre("PASS c:t/first", "FAIL c:t/second", "PASS c:t/third",
                                            "ERROR c:t/#4", "FAIL c:t"));
}

// Validates a nested plan followed by output in another form (kselftest.h's counters, as kcmp_test
// prints them): nothing is missing, whatever the runner's verdict.
TEST(TapParserTest, NestedPlanWithoutTestLines) {
  const std::string output =
      "1..1\n# selftests: kcmp: kcmp_test\n# TAP version 13\n# 1..3\n"
      "# PASS: 0 returned as expected\n# # Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\n";
  EXPECT_THAT(Summary(ParseTap(output + "ok 1 selftests: kcmp: kcmp_test\n")),
              ElementsAre("PASS kcmp:kcmp_test"));
  EXPECT_THAT(Summary(ParseTap(output + "not ok 1 selftests: kcmp: kcmp_test # exit=1\n")),
              ElementsAre("FAIL kcmp:kcmp_test"));
}

// Validates names within one nested stream: an identical line again (a forked child's copy of
// the buffer) is no result, a repeated description under another number is one, named apart.
TEST(TapParserTest, RepeatedNestedLines) {
  EXPECT_THAT(Summary(ParseTap("1..1\n# selftests: c: t\n# 1..3\n# ok 1 check\n# ok 2 check\n"
                               "# ok 1 check\n# ok 2 check\n# ok 3 other\n# ok 3 again\n"
                               "ok 1 selftests: c: t\n")),
              ElementsAre("PASS c:t/check", "PASS c:t/check #2", "PASS c:t/other", "PASS c:t/again",
                          "PASS c:t"));
}

// Validates that two collections in one log (make TARGETS="a b") keep their own plans.
TEST(TapParserTest, SeveralCollections) {
  const std::vector<TestResult> results = ParseTap(
      "TAP version 13\n1..2\n# selftests: a: one\nok 1 selftests: a: one\n"
      "TAP version 13\n1..1\n# selftests: b: two\nnot ok 1 selftests: b: two # exit=1\n");
  EXPECT_THAT(Summary(results), ElementsAre("PASS a:one", "ERROR a:#2", "FAIL b:two"));
  EXPECT_EQ(results[1].section, "a");
  EXPECT_EQ(results[2].section, "b");
}

// Validates that garbage, blank and half-TAP lines are ignored.
TEST(TapParserTest, IgnoresGarbage) {
  EXPECT_THAT(Summary(ParseTap("garbage\n\nokay 1 x\nnot ok\nok\x01\n1..x\n\x80\xff\nok 7 last\n")),
              ElementsAre("FAIL #1", "PASS last"));
  EXPECT_THAT(ParseTap(""), IsEmpty());
}

// Validates the bounds: long lines, details, the result count, nesting depth, huge plans.
TEST(TapParserTest, Bounds) {
  const std::vector<TestResult> long_line = ParseTap("ok 1 " + std::string(200 * 1024, 'x'));
  ASSERT_EQ(long_line.size(), 1u);
  EXPECT_EQ(long_line[0].name.size(), kMaxTapLineBytes - 5);

  std::string noisy = "1..1\n";
  for (int i = 0; i < 10000; ++i) absl::StrAppend(&noisy, "noise line ", i, "\n");
  absl::StrAppend(&noisy, "the last words\nnot ok 1 - loud");
  const std::vector<TestResult> loud = ParseTap(noisy);
  ASSERT_EQ(loud.size(), 1u);
  EXPECT_LE(loud[0].detail.size(), kMaxTestDetailBytes);
  EXPECT_THAT(loud[0].detail, HasSubstr("noise line 9999\nthe last words"));

  // A YAML block cut at the bound keeps whole UTF-8 characters.
  std::string yaml = "not ok 1 - utf8\n  ---\n";
  absl::StrAppend(&yaml, "  message: ");
  for (int i = 0; i < 3000; ++i) absl::StrAppend(&yaml, "\xc3\xa9");
  absl::StrAppend(&yaml, "\n  ...\n");
  const std::vector<TestResult> utf8 = ParseTap(yaml);
  ASSERT_EQ(utf8.size(), 1u);
  EXPECT_LE(utf8[0].detail.size(), kMaxTestDetailBytes);
  EXPECT_GT(utf8[0].detail.size(), kMaxTestDetailBytes - 8);
  EXPECT_EQ(static_cast<unsigned char>(utf8[0].detail.back()), 0xa9);

  TapParser parser;
  size_t count = 0;
  for (size_t i = 0; i <= kMaxTapResults; ++i) count += parser.FeedLine("ok").size();
  count += parser.Finish().size();
  EXPECT_EQ(count, kMaxTapResults);
  EXPECT_EQ(parser.dropped_results(), 1);

  std::string deep;
  for (int d = 0; d <= 12; ++d) absl::StrAppend(&deep, Prefix(d), "TAP version 13\n");
  for (int d = 12; d >= 0; --d) absl::StrAppend(&deep, Prefix(d), "ok 1 - level", d, "\n");
  const std::vector<TestResult> nested = ParseTap(deep);
  ASSERT_EQ(nested.size(), static_cast<size_t>(kMaxTapDepth) + 1);
  EXPECT_EQ(nested.back().name, "level0");
  EXPECT_EQ(nested.front().name, "level0/level1/level2/level3/level4/level5/level6/level7/level8");

  const std::vector<TestResult> huge = ParseTap("1..1000000000\nok 1\n");
  ASSERT_EQ(huge.size(), 1001u);
  EXPECT_EQ(huge.back().name, "#1001..#1000000000");
}

}  // namespace
}  // namespace kfleet::agent
