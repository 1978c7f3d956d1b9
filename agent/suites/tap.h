// A streaming parser of TAP (Test Anything Protocol, versions 13 and 14) as kselftest prints it:
// `make -C tools/testing/selftests run_tests` and run_kselftest.sh (kselftest/runner.sh), with
// the tests' own kselftest.h / kselftest_harness.h output nested inside, prefixed "# ":
//
//   TAP version 13
//   1..2
//   # selftests: timers: posix_timers       (header: the test that runs now)
//   # TAP version 13                         (the test's own output)
//   # 1..2
//   # ok 1 Check itimer                      -> "timers:posix_timers/Check itimer"
//   # ok 2 # SKIP needs root                 -> "timers:posix_timers/#2", kSkip
//   ok 1 selftests: timers: posix_timers     -> "timers:posix_timers", section "timers"
//   # selftests: timers: nanosleep
//   not ok 2 selftests: timers: nanosleep # TIMEOUT 45 seconds
//
// Nesting: a level is either the runner's "# " prefix or TAP 14's four-space indentation, mixed
// freely, up to kMaxTapDepth levels (deeper lines are treated as comments). A nested stream opens
// one level at a time, with its first version, plan or test line.
//
// Results: one per test line at every level; nested subtests are reported too. Top-level names
// come from the runner's description "selftests: COLLECTION: TEST" ("COLLECTION:TEST"),
// otherwise the description itself. A nested test is named PARENT/SUB, where SUB is its
// description, else the name of the last kselftest_harness "#  RUN   fixture.test ..." line, else
// "#N"; a name already given in the same nested stream gets " #N" after it (" #N.K" if that is
// taken too). A nested test line equal to an earlier one of its stream, number included, is a
// forked child's copy of the test's stdout buffer and no result. A nested result is returned as
// soon as its parent's name is known, from the runner's "# selftests: C: T" header or a TAP 14
// "# Subtest: NAME" line; without either it is held until the parent's own test line, and
// returned just before the parent. Every result's section is the collection of the last runner
// header or top-level test line ("" for plain TAP).
//
// The parent's own test line is authoritative (for kselftest: the runner's verdict from the
// test's exit code). A failed or errored nested result, and every result after it in its stream,
// is held until that line; then the passed and skipped ones are returned, just before the parent,
// and the failed and errored ones only when the parent failed or erred too. Under an ok (or
// skipped) parent those are dropped, and the parent's detail says "ok, though its output said
// not ok for N subtests".
//
// Statuses: "ok" -> kPass; "not ok" -> kFail; "# SKIP" -> kSkip (either way), detail the reason
// or "skip"; "# XFAIL" -> kPass, detail "xfail[: reason]"; "ok # TODO" -> kPass and
// "not ok # TODO" -> kSkip, detail "todo[: reason]"; "# TIMEOUT N seconds" -> kFail, detail
// "timeout: N seconds"; "# exit=N" -> kFail, detail "exit=N"; "not ok # error ..."
// (kselftest.h) -> kError. A failed or errored test's detail then has the last output lines
// before its test line (the failing lines, without the level's prefixes). A YAML block
// ("  ---" .. "  ...", right after a test line) is added to a non-passing test's detail; a
// "duration_ms:" key in it sets duration_ms. Other lines are ignored.
//
// Missing tests: when a stream ends (Finish, a new "TAP version" at its level, its parent's test
// line, or "Bail out!"), every number of its plan without a test line becomes a kError result
// named "#N" (at top level "COLLECTION:#N" when a header named the collection) with detail
// "not run: plan said N" or "bail out: REASON"; past 1000 of them, one result "#K..#N" stands for
// the rest. A nested stream reports missing tests only when it printed at least one test line
// (a plan followed by output in another form, such as kselftest.h's "PASS:" lines with its
// counters, misses nothing) and, like any nested failure, only under a failed parent. A test
// whose "# selftests:" header or "# Subtest:" line was seen, or whose nested output was, but
// whose own test line never came becomes a kError with detail "no result: output ended" (at
// Finish: a crash or a cut log) or "no result line".
//
// Durations: see FeedLine(line, now).
//
// Bounds: lines are cut to kMaxTapLineBytes, at most kMaxTapResults results are returned until
// Finish (the rest are counted in dropped_results()), details are cut to kMaxTestDetailBytes.
//
// Not thread-safe; one parser per output stream.
#ifndef KFLEET_AGENT_SUITES_TAP_H_
#define KFLEET_AGENT_SUITES_TAP_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/suites/test_result.h"

namespace kfleet::agent {

inline constexpr size_t kMaxTapLineBytes = 64 * 1024;
inline constexpr size_t kMaxTapResults = 100000;
inline constexpr int kMaxTapDepth = 8;

class TapParser {
 public:
  // `suite` is copied into every result ("kselftest").
  explicit TapParser(std::string suite = "kselftest");
  TapParser(const TapParser&) = delete;
  TapParser& operator=(const TapParser&) = delete;

  // Feeds one line, with or without its trailing "\n" / "\r\n". Returns the results that this
  // line completed, in output order (usually none or one; a result is returned one line late when
  // a YAML block could follow it).
  std::vector<TestResult> FeedLine(absl::string_view line);

  // The same, for a line read at `now`: then results get duration_ms, the time from the runner's
  // "# selftests:" header, a harness "RUN" line, or else the previous test line at the same level
  // (or the start of the stream), to the test's own line. A YAML "duration_ms:" takes precedence.
  std::vector<TestResult> FeedLine(absl::string_view line, absl::Time now);

  // The output ended: returns what is still held, the tests that never reported, and the planned
  // tests that never ran. The parser is then empty and may be fed a new stream.
  std::vector<TestResult> Finish();

  // Results not returned because kMaxTapResults had been reached.
  int64_t dropped_results() const { return dropped_; }

 private:
  // One TAP stream: the top level (depth 0), or the output of a test one level up.
  struct Level {
    bool open = false;  // a version, plan or test line of this stream has been seen
    int64_t plan = -1;  // N of "1..N"; -1 before the plan
    int64_t last_number = 0;
    // Test numbers seen, at most kMaxTapResults, with a hash of the rest of their line.
    absl::flat_hash_map<int64_t, size_t> seen;
    // The test one level up that prints this stream, once a header or "# Subtest:" named it.
    bool announced = false;
    std::string parent_rel;  // its name relative to its own level
    bool parent_known = false;
    std::string parent_name;  // its full name, when every level above it is named too
    std::string section;      // depth 0: the collection of the runner's last header
    std::string run_name;     // the last kselftest_harness "RUN" name at this level
    absl::Time mark = absl::InfinitePast();  // when the next test at this level started
    std::string recent;                 // the tail of the output since this level's last test line
    std::vector<TestResult> pending;    // named relative to this level, until the parent is known
    std::vector<TestResult> doubtful;   // failed and erred, named so too, until the parent's line
    absl::flat_hash_set<size_t> names;  // hashes of the names given at this level (nested only)
  };

  void Feed(absl::string_view line);
  bool FeedYaml(absl::string_view line);
  void FeedComment(absl::string_view line);
  void FeedTestLine(int depth, bool ok, absl::string_view rest);
  void Announce(int depth, absl::string_view rel);
  void RestartStream(int depth, absl::string_view why);
  std::string UniqueName(int depth, std::string rel, int64_t number);
  std::vector<TestResult> CloseLevel(int depth, absl::string_view why, bool parent_failed,
                                     int64_t* overruled = nullptr);
  void CloseChildren(int depth, absl::string_view why);
  void SynthesizeParent(int depth, absl::string_view why);
  void EmitMissing(int depth, absl::string_view why);
  void MarkSeen(int depth, int64_t number, size_t line_hash = 0);
  void ReleaseHeld();
  void Emit(int depth, TestResult result);
  void EmitNow(int depth, TestResult result);
  void Output(TestResult result);
  bool Active(int depth) const;
  int OpenDepth() const;

  std::string suite_;
  std::vector<Level> levels_;       // index = depth, 0 .. kMaxTapDepth
  std::optional<TestResult> held_;  // the last test, returned once no YAML block follows it
  int held_depth_ = 0;
  bool in_yaml_ = false;
  size_t yaml_indent_ = 0;
  absl::Time now_ = absl::InfinitePast();   // when the current line was read, if known
  std::vector<TestResult>* out_ = nullptr;  // the caller's results during FeedLine / Finish
  int64_t emitted_ = 0;
  int64_t pending_total_ = 0;
  int64_t dropped_ = 0;
};

// Parses all of `text` (lines separated by "\n"): FeedLine for each line, then Finish.
std::vector<TestResult> ParseTap(absl::string_view text, std::string suite = "kselftest");

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SUITES_TAP_H_
