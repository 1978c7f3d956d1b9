// What the suite runners of the test step (test_runner.h) share: reporting each test once,
// an OutputSink that parses a phase's stdout as it streams, uploads of result files, and the
// step's verdict. Internal to agent/suites.
#ifndef KFLEET_AGENT_SUITES_SUITE_RUN_H_
#define KFLEET_AGENT_SUITES_SUITE_RUN_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/suites/line_splitter.h"
#include "agent/suites/test_result.h"
#include "agent/suites/test_runner.h"
#include "kfleet/v1/common.pb.h"

namespace kfleet::agent {

// The result of a phase that ended the step early: cancelled or timed out.
inline bool Interrupted(const kfleet::v1::CommandResult& phase) {
  return phase.verdict() == kfleet::v1::CANCELLED || phase.verdict() == kfleet::v1::TIMEOUT;
}

// Reports a step's tests through TestStepContext::report, each name at most once, with the
// step's suite, section and run (0 counts as 1), and counts them. Thread-safe.
class TestReporter {
 public:
  TestReporter(const kfleet::v1::TestStep& step, std::string suite, std::string section,
               const TestStepContext& ctx);

  // Reports `result` under its name unless that name was reported before; returns whether it
  // was. Its suite and section are replaced, its detail cut to kMaxTestDetailBytes.
  bool Report(TestResult result);
  bool Reported(const std::string& name) const;
  int64_t total() const;

  // From now on, results with status kError get "WHY; " before their detail: the step was
  // cancelled or timed out while they ran.
  void SetInterrupted(std::string why);

  // The verdict of the tests reported, and `tests`: FAIL if any failed or erred, with a detail
  // naming the first of them; NOTHING_RAN if none passed ("nothing ran: 0 passed, 3 skipped
  // (NAME: the first skip's reason)"); else PASS. A step with skips_ok passes with no test passed,
  // and so do a sharded step's commands (the controller judges the step as a whole) and re-runs
  // (run 2 on: only run 1 decides whether anything ran).
  void Summarize(kfleet::v1::CommandResult* result) const;

 private:
  const TestStepContext& ctx_;
  const std::string suite_;
  const std::string section_;
  const uint32_t run_;
  const bool skips_ok_;
  mutable absl::Mutex mu_;
  absl::flat_hash_set<std::string> names_ ABSL_GUARDED_BY(mu_);
  kfleet::v1::TestCounts counts_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> failed_ ABSL_GUARDED_BY(mu_);  // the first few failed or erred
  std::string first_skip_ ABSL_GUARDED_BY(mu_);           // "NAME: reason" of the first skip
  std::string interrupted_ ABSL_GUARDED_BY(mu_);
};

// The OutputSink of a suite's process: forwards every chunk to the command's log, hands each
// stdout line (without "\n") to `on_line`, keeps the tail of stderr, and on request a copy of
// stdout in memory or in a file. Write follows OutputSink's contract (one thread per stream);
// the accessors are for after the phase ended.
class SuiteSink : public OutputSink {
 public:
  explicit SuiteSink(OutputSink* log, std::function<void(absl::string_view)> on_line = nullptr);
  ~SuiteSink() override;

  // Keeps up to `max_bytes` of stdout in memory (Stdout()).
  void KeepStdout(size_t max_bytes) { keep_stdout_ = max_bytes; }
  // Copies stdout into a new file at `path`, up to `max_bytes`. False if it cannot be created.
  bool CopyStdoutTo(const std::string& path, uint64_t max_bytes);

  void Write(kfleet::v1::LogStream stream, absl::string_view data) override;
  // Hands a last line without "\n" to on_line and closes the copy. Call once the phase ended.
  void Finish();

  const std::string& Stdout() const { return stdout_; }
  // The last lines of stderr, at most about 2 KiB.
  std::string StderrTail() const;

 private:
  OutputSink* const log_;
  std::function<void(absl::string_view)> on_line_;
  LineSplitter lines_{64 << 10};
  size_t keep_stdout_ = 0;
  std::string stdout_;
  int copy_fd_ = -1;
  uint64_t copy_left_ = 0;
  std::string stderr_tail_;
};

// How a helper phase (an unpack, a build, a listing) ended, with its stdout (up to 16 MiB) and
// the tail of its stderr.
struct PhaseOutput {
  kfleet::v1::CommandResult result;
  std::string stdout_text;
  std::string stderr_tail;
};
PhaseOutput RunHelper(const TestStepContext& ctx, const RunSpec& spec);

// The step's result after a helper phase that did not pass: the phase's own if it was cancelled or
// timed out, else INFRA_ERROR with the detail "WHAT failed (DETAIL): STDERR TAIL. FIX".
kfleet::v1::CommandResult HelperFailure(absl::string_view what, const PhaseOutput& out,
                                        absl::string_view fix);

// Writes "kfleet-agent: LINE" to the command's log.
void Say(const TestStepContext& ctx, absl::string_view line);

kfleet::v1::CommandResult InfraError(std::string detail);

// The phase's usage added to `total` (CPU times, max RSS, peak memory, OOM kills).
void AddUsage(const kfleet::v1::CommandResult& phase, kfleet::v1::CommandResult* total);

// The step's result after its main phase: TIMEOUT or CANCELLED as `phase` ended; else
// INFRA_ERROR with `nothing_ran` (plus the phase's stderr tail) when no test was reported; else
// PASS or FAIL from the reporter. Usage from `total`, wall time from `start`.
kfleet::v1::CommandResult StepResult(const kfleet::v1::CommandResult& phase,
                                     const kfleet::v1::CommandResult& total,
                                     const TestReporter& reporter, absl::string_view nothing_ran,
                                     absl::string_view stderr_tail, absl::Time start);

// Reports each of `batch` through `reporter`, under the name `name_of` gives (its own if null),
// and appends those newly reported that failed or erred to `failed` as the suite gave them: their
// result files are found by that name.
void ReportKeepingFailures(TestReporter& reporter, std::vector<TestResult> batch,
                           std::vector<TestResult>* failed,
                           const std::function<std::string(const TestResult&)>& name_of = nullptr);

// Runs a suite's main phase `spec` with its stdout parsed as it streams: `parser.Feed` gets each
// line (with its "\n") and `parser.Finish` runs once the phase ended; the tests both return go to
// `report`. Before the last ones, `reporter` learns that the phase was cancelled or timed out.
// Returns the phase's result and the tail of its stderr (no stdout).
template <typename Parser>
PhaseOutput RunParsedPhase(const TestStepContext& ctx, const RunSpec& spec, Parser& parser,
                           TestReporter& reporter,
                           const std::function<void(std::vector<TestResult>)>& report) {
  SuiteSink sink(ctx.log,
                 [&](absl::string_view line) { report(parser.Feed(absl::StrCat(line, "\n"))); });
  PhaseOutput out;
  out.result = ctx.run_phase(spec, &sink);
  sink.Finish();
  if (Interrupted(out.result)) reporter.SetInterrupted(out.result.detail());
  report(parser.Finish());
  out.stderr_tail = sink.StderrTail();
  return out;
}

// An artifact name for a file at `relative` under a results directory: "/" becomes "+" and any
// byte outside [A-Za-z0-9._+-] "_" ("xfs_crc/generic/003.out.bad" ->
// "xfs_crc+generic+003.out.bad").
std::string ArtifactNameFor(absl::string_view relative);

// Uploads `path` as artifact `name` of kind "test" for the command; logs the outcome. A failure
// is logged, not returned: the results were reported already.
void UploadResultFile(const TestStepContext& ctx, const std::string& path, const std::string& name);

// The files of `paths` that lie under `base`, uploaded under their names relative to it.
void UploadResultFiles(const TestStepContext& ctx, const std::string& base,
                       const std::vector<std::string>& paths);

// A shell-safe value for a config file line KEY="VALUE": InvalidArgument naming `key` if it holds
// a quote, backquote, "$", "#", "\\" or a newline (fstests' and blktests' config readers do not
// take them).
absl::Status CheckConfigValue(absl::string_view key, absl::string_view value);

bool IsExecutableFile(const std::string& path);
bool IsDirectory(const std::string& path);

// The suites.
kfleet::v1::CommandResult RunExecSuite(const kfleet::v1::TestStep& step,
                                       const TestStepContext& ctx);
kfleet::v1::CommandResult RunKselftestSuite(const kfleet::v1::TestStep& step,
                                            const TestStepContext& ctx);
kfleet::v1::CommandResult RunFstestsSuite(const kfleet::v1::TestStep& step,
                                          const TestStepContext& ctx);
kfleet::v1::CommandResult RunBlktestsSuite(const kfleet::v1::TestStep& step,
                                           const TestStepContext& ctx);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SUITES_SUITE_RUN_H_
