#include "agent/suites/suite_run.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/artifact_client.h"

namespace kfleet::agent {
namespace {

namespace v1 = kfleet::v1;

constexpr size_t kStderrTailBytes = 2048;
constexpr size_t kNamedFailures = 10;

v1::TestStatus ToProto(TestStatus status) {
  switch (status) {
    case TestStatus::kPass:
      return v1::TEST_PASS;
    case TestStatus::kFail:
      return v1::TEST_FAIL;
    case TestStatus::kSkip:
      return v1::TEST_SKIP;
    case TestStatus::kError:
      return v1::TEST_ERROR;
  }
  return v1::TEST_ERROR;
}

// `text` cut to at most `max` bytes, not inside a UTF-8 sequence.
std::string Bounded(std::string text, size_t max) {
  if (text.size() <= max) return text;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
  return text;
}

// "NAME: REASON" for a skipped test: the first line of its detail and, when there are more (a
// suite's own words, then the test's output), the last one, shortened. A bare "# SKIP" directive
// gives "skip", which is no reason.
std::string SkipReason(absl::string_view name, absl::string_view detail) {
  constexpr size_t kMaxReasonBytes = 200;
  std::vector<absl::string_view> lines;
  for (absl::string_view line : absl::StrSplit(detail, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty()) lines.push_back(line);
  }
  std::string reason;
  if (!lines.empty() && !absl::EqualsIgnoreCase(lines.front(), "skip")) {
    reason = std::string(lines.front());
    if (lines.size() > 1) absl::StrAppend(&reason, ": ", lines.back());
  } else if (lines.size() > 1) {
    reason = std::string(lines.back());
  }
  if (reason.empty()) return absl::StrCat(name, ": no reason given, see the step's log");
  if (reason.size() > kMaxReasonBytes) {
    reason = absl::StrCat(Bounded(std::move(reason), kMaxReasonBytes), "...");
  }
  return absl::StrCat(name, ": ", reason);
}

}  // namespace

TestReporter::TestReporter(const v1::TestStep& step, std::string suite, std::string section,
                           const TestStepContext& ctx)
    : ctx_(ctx),
      suite_(std::move(suite)),
      section_(std::move(section)),
      run_(step.run() == 0 ? 1 : step.run()),
      skips_ok_(step.skips_ok() || step.shard() > 0 || run_ > 1) {}

bool TestReporter::Report(TestResult result) {
  v1::TestResult out;
  {
    absl::MutexLock lock(&mu_);
    if (!names_.insert(result.name).second) return false;
    if (result.status == TestStatus::kError && !interrupted_.empty()) {
      result.detail =
          result.detail.empty() ? interrupted_ : absl::StrCat(interrupted_, "; ", result.detail);
    }
    switch (result.status) {
      case TestStatus::kPass:
        counts_.set_passed(counts_.passed() + 1);
        break;
      case TestStatus::kSkip:
        counts_.set_skipped(counts_.skipped() + 1);
        break;
      case TestStatus::kFail:
        counts_.set_failed(counts_.failed() + 1);
        break;
      case TestStatus::kError:
        counts_.set_errors(counts_.errors() + 1);
        break;
    }
    if ((result.status == TestStatus::kFail || result.status == TestStatus::kError) &&
        failed_.size() < kNamedFailures) {
      failed_.push_back(result.name);
    }
    if (result.status == TestStatus::kSkip && first_skip_.empty()) {
      first_skip_ = SkipReason(result.name, result.detail);
    }
    out.set_suite(suite_);
    out.set_section(section_);
    out.set_name(std::move(result.name));
    out.set_status(ToProto(result.status));
    out.set_duration_ms(result.duration_ms);
    out.set_detail(Bounded(std::move(result.detail), kMaxTestDetailBytes));
    out.set_run(run_);
  }
  // Outside mu_: the outbox may block while it is full.
  if (ctx_.report) ctx_.report(out);
  return true;
}

bool TestReporter::Reported(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  return names_.contains(name);
}

int64_t TestReporter::total() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(names_.size());
}

void TestReporter::SetInterrupted(std::string why) {
  absl::MutexLock lock(&mu_);
  interrupted_ = std::move(why);
}

void TestReporter::Summarize(v1::CommandResult* result) const {
  absl::MutexLock lock(&mu_);
  *result->mutable_tests() = counts_;
  const uint32_t bad = counts_.failed() + counts_.errors();
  const size_t total = names_.size();
  if (bad == 0) {
    std::string counted =
        absl::StrCat(counts_.passed(), " passed, ", counts_.skipped(), " skipped");
    if (counts_.passed() > 0 || skips_ok_) {
      result->set_verdict(v1::PASS);
      result->set_detail(std::move(counted));
      return;
    }
    result->set_verdict(v1::NOTHING_RAN);
    result->set_detail(total == 0
                           ? "nothing ran: no test was reported"
                           : absl::StrCat("nothing ran: ", counted, " (", first_skip_,
                                          "); skips_ok: true in the step makes this a pass"));
    return;
  }
  result->set_verdict(v1::FAIL);
  std::string detail = absl::StrCat(bad, " of ", total, " tests failed");
  if (counts_.errors() > 0) {
    absl::StrAppend(&detail, " (", counts_.errors(), " could not be judged)");
  }
  absl::StrAppend(&detail, ": ", absl::StrJoin(failed_, ", "), bad > failed_.size() ? ", ..." : "");
  result->set_detail(std::move(detail));
}

SuiteSink::SuiteSink(OutputSink* log, std::function<void(absl::string_view)> on_line)
    : log_(log), on_line_(std::move(on_line)) {}

SuiteSink::~SuiteSink() {
  if (copy_fd_ >= 0) ::close(copy_fd_);
}

bool SuiteSink::CopyStdoutTo(const std::string& path, uint64_t max_bytes) {
  copy_fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  copy_left_ = max_bytes;
  return copy_fd_ >= 0;
}

void SuiteSink::Write(v1::LogStream stream, absl::string_view data) {
  if (log_ != nullptr) log_->Write(stream, data);
  if (stream == v1::STDERR) {
    stderr_tail_.append(data.data(), data.size());
    if (stderr_tail_.size() > 2 * kStderrTailBytes) {
      stderr_tail_.erase(0, stderr_tail_.size() - kStderrTailBytes);
    }
    return;
  }
  if (stream != v1::STDOUT) return;
  if (stdout_.size() < keep_stdout_) {
    stdout_.append(data.data(), std::min(data.size(), keep_stdout_ - stdout_.size()));
  }
  if (copy_fd_ >= 0 && copy_left_ > 0) {
    absl::string_view rest = data.substr(0, std::min<uint64_t>(data.size(), copy_left_));
    copy_left_ -= rest.size();
    while (!rest.empty()) {
      ssize_t n = ::write(copy_fd_, rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      rest.remove_prefix(static_cast<size_t>(n));
    }
  }
  if (on_line_) lines_.Feed(data, on_line_);
}

void SuiteSink::Finish() {
  if (on_line_) lines_.Finish(on_line_);
  if (copy_fd_ >= 0) ::close(copy_fd_);
  copy_fd_ = -1;
}

std::string SuiteSink::StderrTail() const {
  absl::string_view tail = stderr_tail_;
  if (tail.size() > kStderrTailBytes) {
    tail = tail.substr(tail.size() - kStderrTailBytes);
    size_t nl = tail.find('\n');
    if (nl != absl::string_view::npos && nl + 1 < tail.size()) tail = tail.substr(nl + 1);
  }
  return std::string(absl::StripAsciiWhitespace(tail));
}

PhaseOutput RunHelper(const TestStepContext& ctx, const RunSpec& spec) {
  SuiteSink sink(ctx.log);
  sink.KeepStdout(16 << 20);
  PhaseOutput out;
  out.result = ctx.run_phase(spec, &sink);
  sink.Finish();
  out.stdout_text = sink.Stdout();
  out.stderr_tail = sink.StderrTail();
  return out;
}

v1::CommandResult HelperFailure(absl::string_view what, const PhaseOutput& out,
                                absl::string_view fix) {
  if (Interrupted(out.result)) return out.result;
  std::string detail = absl::StrCat(what, " failed (", out.result.detail(), ")");
  if (!out.stderr_tail.empty()) absl::StrAppend(&detail, ":\n", out.stderr_tail);
  if (!fix.empty()) absl::StrAppend(&detail, "\n", fix);
  return InfraError(std::move(detail));
}

void Say(const TestStepContext& ctx, absl::string_view line) {
  if (ctx.log != nullptr) ctx.log->Write(v1::STDOUT, absl::StrCat("kfleet-agent: ", line, "\n"));
}

v1::CommandResult InfraError(std::string detail) {
  v1::CommandResult r;
  r.set_verdict(v1::INFRA_ERROR);
  r.set_exit_code(-1);
  r.set_detail(std::move(detail));
  return r;
}

void AddUsage(const v1::CommandResult& phase, v1::CommandResult* total) {
  total->set_user_cpu_ms(total->user_cpu_ms() + phase.user_cpu_ms());
  total->set_system_cpu_ms(total->system_cpu_ms() + phase.system_cpu_ms());
  total->set_max_rss_bytes(std::max(total->max_rss_bytes(), phase.max_rss_bytes()));
  total->set_memory_peak_bytes(std::max(total->memory_peak_bytes(), phase.memory_peak_bytes()));
  total->set_oom_kills(total->oom_kills() + phase.oom_kills());
  if (!phase.cgroup().empty()) total->set_cgroup(phase.cgroup());
  if (phase.memory_max_bytes() > 0) total->set_memory_max_bytes(phase.memory_max_bytes());
}

v1::CommandResult StepResult(const v1::CommandResult& phase, const v1::CommandResult& total,
                             const TestReporter& reporter, absl::string_view nothing_ran,
                             absl::string_view stderr_tail, absl::Time start) {
  v1::CommandResult result = total;
  result.set_exit_code(phase.exit_code());
  result.set_signal(phase.signal());
  reporter.Summarize(&result);
  if (Interrupted(phase)) {
    result.set_verdict(phase.verdict());
    result.set_cancelled(phase.cancelled());
    result.set_timed_out(phase.timed_out());
    result.set_detail(absl::StrCat(phase.detail(), " (", result.detail(), ")"));
  } else if (phase.verdict() == v1::INFRA_ERROR) {
    result.set_verdict(v1::INFRA_ERROR);
    result.set_detail(phase.detail());
  } else if (reporter.total() == 0) {
    result.set_verdict(v1::INFRA_ERROR);
    std::string detail = absl::StrCat(nothing_ran, " (", phase.detail(), ")");
    if (!stderr_tail.empty()) absl::StrAppend(&detail, ":\n", stderr_tail);
    result.set_detail(std::move(detail));
  }
  result.set_wall_ms(absl::ToInt64Milliseconds(absl::Now() - start));
  return result;
}

void ReportKeepingFailures(TestReporter& reporter, std::vector<TestResult> batch,
                           std::vector<TestResult>* failed,
                           const std::function<std::string(const TestResult&)>& name_of) {
  for (TestResult& r : batch) {
    TestResult copy = r;
    if (name_of) r.name = name_of(copy);
    if (reporter.Report(std::move(r)) &&
        (copy.status == TestStatus::kFail || copy.status == TestStatus::kError)) {
      failed->push_back(std::move(copy));
    }
  }
}

std::string ArtifactNameFor(absl::string_view relative) {
  std::string name;
  for (char c : relative) {
    if (c == '/') {
      name += '+';
    } else if (absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '+' || c == '-') {
      name += c;
    } else {
      name += '_';
    }
  }
  if (name.size() > 128) name = name.substr(name.size() - 128);
  if (name.empty() || name == "." || name == "..") name = "file";
  return name;
}

void UploadResultFile(const TestStepContext& ctx, const std::string& path,
                      const std::string& name) {
  if (ctx.artifacts == nullptr) {
    Say(ctx, absl::StrCat("not uploaded (no artifact store): ", path));
    return;
  }
  absl::StatusOr<UploadResult> up = UploadFile(*ctx.artifacts, path, name, "test", ctx.command_id);
  if (!up.ok()) {
    Say(ctx, absl::StrCat("upload of ", name, " failed: ", up.status().message()));
    return;
  }
  Say(ctx, absl::StrCat("stored ", name, " (", up->artifact.size(), " bytes, sha256 ",
                        up->artifact.sha256().substr(0, 12), ")"));
}

void UploadResultFiles(const TestStepContext& ctx, const std::string& base,
                       const std::vector<std::string>& paths) {
  for (const std::string& path : paths) {
    absl::string_view rel = path;
    if (!absl::ConsumePrefix(&rel, base) || !absl::ConsumePrefix(&rel, "/")) continue;
    UploadResultFile(ctx, path, ArtifactNameFor(rel));
  }
}

absl::Status CheckConfigValue(absl::string_view key, absl::string_view value) {
  bool key_ok = !key.empty() && !absl::ascii_isdigit(key[0]);
  for (char c : key) key_ok = key_ok && (absl::ascii_isalnum(c) || c == '_');
  if (!key_ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config key \"", key, "\" is not a shell variable name ([A-Za-z_][A-Za-z0-9_]*)"));
  }
  if (value.find_first_of("\"'`$#\\\n") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("config value of ", key,
                     " holds a quote, backquote, $, #, backslash or newline, which the suite's "
                     "config reader does not take: remove it"));
  }
  return absl::OkStatus();
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace kfleet::agent
