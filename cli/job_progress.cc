#include "cli/job_progress.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/format.h"
#include "cli/job_view.h"
#include "cli/table.h"

namespace kfleet::cli {
namespace {

// Keeps a live table's rows short; the whole detail is in the report at the end.
constexpr size_t kMaxTableDetail = 60;

// The result's detail and what the OOM killer did, on one line.
std::string ResultDetail(const v1::CommandResult& r) {
  std::string detail = OneLine(r.detail());
  std::string oom = DescribeOom(r);
  if (oom.empty()) return detail;
  return detail.empty() ? oom : absl::StrCat(detail, "; ", oom);
}

// When the command reached its current state, as a Unix time in ms; 0 when not known.
int64_t ChangedUnixMs(const v1::CommandInfo& c) {
  switch (c.state()) {
    case v1::COMMAND_RUNNING:
      return c.started_unix_ms();
    case v1::COMMAND_FINISHED:
    case v1::COMMAND_SKIPPED:
      return c.finished_unix_ms();
    default:
      return c.created_unix_ms();
  }
}

std::string ElapsedText(const v1::CommandInfo& c, absl::Time now) {
  if (c.result().wall_ms() > 0) return FormatMillis(c.result().wall_ms());
  if (c.started_unix_ms() == 0) return "";
  if (c.state() == v1::COMMAND_RUNNING) {
    return FormatMillis(absl::ToInt64Milliseconds(now - absl::FromUnixMillis(c.started_unix_ms())));
  }
  if (c.finished_unix_ms() != 0) return FormatMillis(c.finished_unix_ms() - c.started_unix_ms());
  return "";
}

// The KernelBuild the job made or reused: the job's own, else its kernel_build command's result.
const v1::KernelBuild* FindBuild(const v1::Job& job) {
  if (!job.build().identity().empty()) return &job.build();
  for (const v1::CommandInfo& c : job.commands()) {
    if (!c.result().kernel().identity().empty()) return &c.result().kernel();
  }
  return nullptr;
}

std::string VerdictLine(const v1::Job& job) {
  std::string verdict = VerdictName(job.verdict());
  if (verdict.empty()) return "INFRA_ERROR: the job ended without a verdict";
  if (job.verdict() == v1::PASS) return verdict;
  for (const v1::CommandInfo& c : job.commands()) {
    std::string detail = ResultDetail(c.result());
    if (c.result().verdict() == job.verdict() && !detail.empty()) {
      return absl::StrCat(verdict, ": ", detail);
    }
  }
  // Each command of a sharded test step passed; the step as a whole skipped every test.
  if (job.verdict() == v1::NOTHING_RAN) {
    return absl::StrCat(verdict, ": every test of a sharded test step was skipped");
  }
  return verdict;
}

// The counts of TestProgressLine, without the ETA: what makes the log print a new line.
std::string TestCountsText(const v1::TestProgress& t) {
  return absl::StrCat("tests ", t.done(), "/", t.total(), "  failed ", t.failed(), "  skipped ",
                      t.skipped(), "  re-runs ", t.reruns());
}

}  // namespace

std::string TestProgressLine(const v1::Job& job) {
  const v1::TestProgress& t = job.tests();
  if (t.total() == 0 && t.done() == 0) return "";
  std::string line = TestCountsText(t);
  if (job.state() != v1::JOB_DONE) {
    absl::StrAppend(&line, "  ETA ", t.eta_ms() < 0 ? "?" : FormatMillis(t.eta_ms()));
  }
  return line;
}

const v1::Step& CommandStep(const v1::Job& job, const v1::CommandInfo& c) {
  if (c.step().kind_case() != v1::Step::KIND_NOT_SET) return c.step();
  if (c.step_index() >= 0 && c.step_index() < job.spec().steps_size()) {
    return job.spec().steps(c.step_index());
  }
  return v1::Step::default_instance();
}

std::string CommandStateWord(const v1::CommandInfo& c) {
  switch (c.state()) {
    case v1::COMMAND_FINISHED: {
      std::string verdict = VerdictName(c.result().verdict());
      return verdict.empty() ? "FINISHED" : verdict;
    }
    case v1::COMMAND_PENDING:
    case v1::COMMAND_ACCEPTED:
      return c.host_name().empty() ? "WAITING" : "PENDING";
    default:
      return absl::AsciiStrToUpper(CommandStateName(c.state()));
  }
}

std::string RenderProgressTable(const v1::Job& job, bool wide, absl::Time now, size_t columns) {
  std::string head = absl::StrCat("job ", job.id());
  if (!job.spec().name().empty()) absl::StrAppend(&head, " (", job.spec().name(), ")");
  if (job.state() == v1::JOB_DONE) {
    absl::StrAppend(&head, ": ", VerdictName(job.verdict()), " after ", JobDuration(job, now));
  } else {
    absl::StrAppend(&head, ": running for ", JobDuration(job, now));
  }
  std::vector<std::string> headers = {"HOST", "STEP", "STATE", "ELAPSED", "DETAIL"};
  if (wide) headers.insert(headers.begin() + 1, "COMMAND");
  Table table(headers);
  for (const v1::CommandInfo& c : job.commands()) {
    std::vector<std::string> row = {c.host_name(), StepKindName(CommandStep(job, c)),
                                    CommandStateWord(c), ElapsedText(c, now),
                                    Shorten(ResultDetail(c.result()), kMaxTableDetail)};
    if (wide) row.insert(row.begin() + 1, c.id());
    table.AddRow(std::move(row));
  }
  std::string out;
  auto add = [&](absl::string_view line) {
    absl::StrAppend(&out, columns > 0 ? Shorten(std::string(line), columns) : line, "\n");
  };
  add(head);
  if (std::string tests = TestProgressLine(job); !tests.empty()) add(tests);
  if (job.commands().empty()) {
    add("no commands yet");
    return out;
  }
  for (absl::string_view line : absl::StrSplit(table.Render(), '\n', absl::SkipEmpty())) add(line);
  return out;
}

std::string ProgressLog::Update(const v1::Job& job, absl::Time now) {
  std::string out;
  absl::Time origin =
      job.created_unix_ms() != 0 ? absl::FromUnixMillis(job.created_unix_ms()) : now;
  for (const v1::CommandInfo& c : job.commands()) {
    std::string host = c.host_name().empty() ? "-" : c.host_name();
    std::string word = CommandStateWord(c);
    std::string key = absl::StrCat(host, " ", word);
    std::string& shown = shown_[c.id()];
    if (shown == key) continue;
    shown = key;
    int64_t changed_ms = ChangedUnixMs(c);
    absl::Time at = changed_ms != 0 ? absl::FromUnixMillis(changed_ms) : now;
    double seconds = std::max(0.0, absl::ToDoubleSeconds(at - origin));
    absl::StrAppend(&out, absl::StrFormat("%6.1fs", seconds), "  ", host, "  ",
                    StepKindName(CommandStep(job, c)), "  ", word);
    std::string detail = ResultDetail(c.result());
    if (c.state() == v1::COMMAND_FINISHED && !detail.empty()) absl::StrAppend(&out, "  ", detail);
    out += "\n";
  }
  std::string tests = TestProgressLine(job);
  if (!tests.empty() && TestCountsText(job.tests()) != tests_shown_) {
    tests_shown_ = TestCountsText(job.tests());
    double seconds = std::max(0.0, absl::ToDoubleSeconds(now - origin));
    absl::StrAppend(&out, absl::StrFormat("%6.1fs", seconds), "  ", tests, "\n");
  }
  return out;
}

std::string RenderJobReport(const v1::Job& job, absl::Time now, bool wide) {
  std::string out;
  std::vector<std::string> build_times;
  std::vector<std::string> boot_times;
  for (const v1::CommandInfo& c : job.commands()) {
    v1::CommandInfo shown = c;
    if (shown.host_name().empty()) shown.set_host_name("-");
    const v1::Step& step = CommandStep(job, c);
    absl::StrAppend(&out, CommandSummary(shown, StepKindName(step), wide), "\n");
    if (c.state() != v1::COMMAND_FINISHED) continue;
    std::string wall = FormatMillis(c.result().wall_ms());
    std::string verdict = c.result().verdict() == v1::PASS
                              ? ""
                              : absl::StrCat(", ", VerdictName(c.result().verdict()));
    if (step.has_kernel_build()) {
      build_times.push_back(absl::StrCat(wall, " (", shown.host_name(),
                                         c.result().kernel().reused() ? ", build reused" : "",
                                         verdict, ")"));
    } else if (step.has_reboot()) {
      boot_times.push_back(absl::StrCat(wall, " (", shown.host_name(), verdict, ")"));
    }
  }
  if (const v1::KernelBuild* build = FindBuild(job)) {
    std::string how = build->reused()
                          ? "reused"
                          : absl::StrCat("built in ", (build->build_ms() + 500) / 1000, " s");
    absl::StrAppend(&out, "kernel ", build->release(), ", build ", build->identity().substr(0, 12),
                    " (", how, ")");
    if (!build->builder().empty()) absl::StrAppend(&out, " on ", build->builder());
    out += "\n";
  }
  if (!build_times.empty())
    absl::StrAppend(&out, "build time: ", absl::StrJoin(build_times, ", "), "\n");
  if (!boot_times.empty())
    absl::StrAppend(&out, "boot time:  ", absl::StrJoin(boot_times, ", "), "\n");
  std::string total = JobDuration(job, now);
  if (!total.empty()) absl::StrAppend(&out, "total time: ", total, "\n");
  absl::StrAppend(&out, VerdictLine(job), "\n");
  return out;
}

}  // namespace kfleet::cli
