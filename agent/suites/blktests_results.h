// blktests results: its results directory (check -o DIR, default ./results) and check's stdout,
// turned into TestResults; and the raw files of failed tests to upload.
//
// The directory holds DIR/<device>/<group>/<NNN>, one "key<TAB>value" file per test run (status
// pass|fail|not run, reason, exit_status, runtime "1.234s", description, test metrics), with
// <NNN>.out.bad, .full, .dmesg and .kmemleak beside it. <device> is the test device's basename,
// "nodev" for tests without one, with "_<condition>" appended for conditional runs.
// TestResult::section is <device>, "" for plain "nodev".
#ifndef KFLEET_AGENT_SUITES_BLKTESTS_RESULTS_H_
#define KFLEET_AGENT_SUITES_BLKTESTS_RESULTS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/suites/line_splitter.h"
#include "agent/suites/test_result.h"

namespace kfleet::agent {

inline constexpr char kBlktestsSuite[] = "blktests";

// Bounds: results per directory, bytes of one status file.
inline constexpr size_t kMaxBlktestsResults = 100'000;
inline constexpr size_t kMaxBlktestsRunFileBytes = 1 << 20;

// Parses one status file's contents into status, duration and detail (suite, section and name
// are left empty). A file without a status line is an unfinished run: kError.
TestResult ParseBlktestsRunFile(absl::string_view contents);

// Reads a results directory. A test whose <NNN>.out exists without its status file was running
// when the run stopped: kError. The detail of a failure carries the first lines of its .out.bad,
// .dmesg or .kmemleak. NotFound if `results_dir` cannot be read; ResourceExhausted over the bound.
absl::StatusOr<std::vector<TestResult>> ReadBlktestsResults(const std::string& results_dir);

// Parses check's stdout as it arrives:
//   block/001 (stress device hotplugging)                        [passed]
//       runtime  12.1s  ...  11.9s
// A test is reported once the lines under its status line are complete (at the next test line or
// at Finish). A test announced but never finished is reported as kError at Finish. Not
// thread-safe.
class BlktestsOutputParser {
 public:
  std::vector<TestResult> Feed(absl::string_view chunk);
  std::vector<TestResult> Finish();

 private:
  void Line(absl::string_view line);
  void FlushPending();

  LineSplitter lines_{64 << 10};
  std::optional<TestResult> pending_;  // status known, reading the indented lines under it
  bool in_keys_ = false;               // the "key  last ... value" lines come first
  std::optional<TestResult> running_;  // announced, no status yet
  std::vector<TestResult> out_;
};

// Whole output at once.
std::vector<TestResult> ParseBlktestsOutput(absl::string_view text);

// The raw files to upload for the failed (and unfinished) tests of `results`: the status file and
// <NNN>{.out,.out.bad,.full,.dmesg,.kmemleak} under results_dir/<device>/ that exist (.out is the
// partial output of a test that did not finish).
std::vector<std::string> BlktestsFailureFiles(const std::string& results_dir,
                                              const std::vector<TestResult>& results);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SUITES_BLKTESTS_RESULTS_H_
