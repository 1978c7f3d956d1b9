// fstests results: the xunit result.xml that `check -R xunit` writes (common/report), check's
// stdout and check.log, turned into TestResults; and the raw files of failed tests to upload.
//
// Sections: with a config file of [sections], TestResult::section is the section name and the
// files of a test live under RESULT_BASE/<section>/; without sections it is "" and they live under
// RESULT_BASE/ (fstests names that case "-no-sections-" or "global").
#ifndef KFLEET_AGENT_SUITES_FSTESTS_RESULTS_H_
#define KFLEET_AGENT_SUITES_FSTESTS_RESULTS_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "agent/suites/line_splitter.h"
#include "agent/suites/test_result.h"

namespace kfleet::agent {

inline constexpr char kFstestsSuite[] = "fstests";

// Bounds: a result.xml larger than this is refused; at most this many tests per parse.
inline constexpr size_t kMaxFstestsXmlBytes = 64 << 20;
inline constexpr size_t kMaxFstestsResults = 100'000;

// What a parse found, and whether it saw the whole run.
struct FstestsResults {
  std::vector<TestResult> results;  // every test that was complete, in file order
  // OK; DataLoss when the file was cut short (the machine crashed mid-run) or the section had not
  // finished; InvalidArgument when it is malformed (the message names the line); ResourceExhausted
  // over a bound. `results` holds what came before the problem in every case.
  absl::Status status;
};

// Parses one result.xml: a <testsuite> (or <testsuites> around several), one <testcase> per test
// with <failure>, <error> or <skipped> for what did not pass.
FstestsResults ParseFstestsXml(absl::string_view xml);

// Reads RESULT_BASE/result.xml and every RESULT_BASE/<section>/result.xml. NotFound if there is
// none (check stopped before its first test); the first problem otherwise, after the results of
// every file.
FstestsResults ReadFstestsXmlResults(const std::string& result_base);

// Parses check's stdout as it arrives, or a check.log. A test is reported when its outcome is
// known: at once for a pass or a skip, after the diff lines that follow for a failure. The
// summary lines (Ran:, Not run:, Failures:) add the tests no per-test line reported, as check.log
// has only those. Not thread-safe.
class FstestsOutputParser {
 public:
  // Feeds the next chunk of output (any split); returns the tests it finished.
  std::vector<TestResult> Feed(absl::string_view chunk);
  // End of output: a test that was still running is reported as kError.
  std::vector<TestResult> Finish();

 private:
  void Line(absl::string_view line);
  void TestLine(absl::string_view name, absl::string_view rest);
  void Emit(TestResult result);
  void FlushPending();
  void FlushSummary();

  std::string section_;
  LineSplitter lines_{1 << 20};  // a "Ran:" line of a long run is long
  bool has_pending_ = false;
  bool pending_running_ = false;  // the test line had no outcome yet
  TestResult pending_;
  struct Summary {
    std::vector<std::string> ran, not_run, failures;
    bool interrupted = false;
    bool active = false;
  } summary_;
  absl::flat_hash_set<std::string> reported_;  // section + '\n' + name
  std::vector<TestResult> out_;
};

// Whole output at once.
std::vector<TestResult> ParseFstestsOutput(absl::string_view text);

// The raw files to upload for the failed (and unfinished) tests of `results`, those of
// RESULT_BASE[/<section>]/<test>{.out.bad,.full,.dmesg,.kmemleak,.mountfail,.hints} that exist.
// Names that would leave RESULT_BASE ("..", absolute) are skipped.
std::vector<std::string> FstestsFailureFiles(const std::string& result_base,
                                             const std::vector<TestResult>& results);

// `detail` with each file check names under `result_base` (in the agent's work directory, gone
// once the command ended) named as the stored artifact instead: `name_of(relative path)`. Where
// check says "(see PATH)", the artifact is followed by `how_to_get(name)`, the command that
// fetches it.
std::string FstestsDetailWithArtifacts(
    absl::string_view detail, absl::string_view result_base,
    const std::function<std::string(absl::string_view relative)>& name_of,
    const std::function<std::string(absl::string_view name)>& how_to_get);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SUITES_FSTESTS_RESULTS_H_
