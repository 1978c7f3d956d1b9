#include "cli/schedule_view.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/format.h"
#include "cli/job_view.h"
#include "cli/table.h"
#include "common/duration.h"

namespace kfleet::cli {
namespace {

std::string Ms(uint64_t ms) { return ShortDuration(absl::Milliseconds(static_cast<int64_t>(ms))); }

std::string Command(const google::protobuf::RepeatedPtrField<std::string>& argv) {
  return absl::StrJoin(argv, " ");
}

// The newest run of any host of the schedule, or null.
const v1::ScheduleRun* LastRun(const v1::Schedule& s) {
  const v1::ScheduleRun* last = nullptr;
  for (const v1::ScheduleHost& h : s.hosts()) {
    if (!h.has_last_run()) continue;
    if (last == nullptr || h.last_run().started_unix_ms() > last->started_unix_ms()) {
      last = &h.last_run();
    }
  }
  return last;
}

std::string HostList(const v1::Schedule& s) {
  std::vector<std::string> names;
  for (const v1::ScheduleHost& h : s.hosts()) {
    names.push_back(absl::StrCat(h.host_name(), " (", HostStateName(h.state()), ")"));
  }
  return absl::StrJoin(names, ", ");
}

}  // namespace

std::string DescribeScheduleHosts(const v1::Schedule& s) {
  if (!s.host_names().empty()) return absl::StrJoin(s.host_names(), ",");
  return FormatLabels(s.labels());
}

std::string DescribeScheduleTiming(const v1::Schedule& s) {
  std::string out = absl::StrCat("every ", Ms(s.every_after_ms()), " after a run ends");
  if (s.jitter_ms() > 0) absl::StrAppend(&out, ", jitter ", Ms(s.jitter_ms()));
  if (s.timeout_ms() > 0) absl::StrAppend(&out, ", timeout ", Ms(s.timeout_ms()));
  if (s.memory_max_bytes() > 0) {
    absl::StrAppend(&out, ", memory max ", FormatBytes(s.memory_max_bytes()));
  }
  return out;
}

std::string DescribeRun(const v1::ScheduleRun& run, absl::Time now) {
  if (run.outcome() == "running" || run.outcome().empty()) {
    std::string out = absl::StrCat(
        "running (since ", FormatAge(now - absl::FromUnixMillis(run.started_unix_ms())), ")");
    if (run.cancel_requested()) absl::StrAppend(&out, ", cancel requested");
    return out;
  }
  // The words `kctl exec` ends with, the verdict replaced by the outcome.
  v1::CommandInfo c;
  c.set_state(v1::COMMAND_FINISHED);
  *c.mutable_result() = run.result();
  std::string summary = CommandSummary(c, "", /*wide=*/true);
  std::string verdict = VerdictName(run.result().verdict());
  if (verdict.empty()) verdict = absl::AsciiStrToUpper(CommandStateName(c.state()));
  size_t cut = std::min(summary.size(), 2 + verdict.size());  // ": VERDICT"
  return absl::StrCat(run.outcome(), summary.substr(cut));
}

std::string RenderScheduleAdded(const v1::Schedule& s) {
  std::string out = absl::StrCat("schedule ", s.name(), " added (revision ", s.revision(),
                                 "): ", Command(s.argv()), "\n  ", DescribeScheduleTiming(s), "\n");
  if (s.hosts().empty()) {
    absl::StrAppend(&out, "  no host carries ", DescribeScheduleHosts(s),
                    " yet: hosts that do get it when they register\n");
  } else {
    absl::StrAppend(&out, "  on ", HostList(s),
                    "; offline hosts get it when they connect. Follow its runs with kctl "
                    "schedule runs ",
                    s.name(), " -f\n");
  }
  return out;
}

std::string RenderSchedulesTable(const v1::ListSchedulesResponse& schedules, bool wide,
                                 absl::Time now) {
  std::vector<std::string> headers = {"NAME",  "HOSTS",    "EVERY-AFTER",
                                      "STATE", "LAST-RUN", "RESULT"};
  if (wide) {
    for (const char* h : {"JITTER", "TIMEOUT", "MEMORY-MAX", "REVISION"}) headers.push_back(h);
  }
  headers.push_back("COMMAND");
  Table table(headers);
  for (const v1::Schedule& s : schedules.schedules()) {
    const v1::ScheduleRun* last = LastRun(s);
    std::vector<std::string> row = {
        s.name(),
        absl::StrCat(DescribeScheduleHosts(s), " (", s.hosts_size(), ")"),
        Ms(s.every_after_ms()),
        s.paused() ? "paused" : "active",
        last == nullptr ? "never" : FormatAgo(last->started_unix_ms(), now),
        last == nullptr ? "" : last->outcome()};
    if (wide) {
      row.push_back(s.jitter_ms() > 0 ? Ms(s.jitter_ms()) : "");
      row.push_back(s.timeout_ms() > 0 ? Ms(s.timeout_ms()) : "");
      row.push_back(s.memory_max_bytes() > 0 ? FormatBytes(s.memory_max_bytes()) : "");
      row.push_back(absl::StrCat(s.revision()));
    }
    row.push_back(OneLine(Command(s.argv())));
    table.AddRow(std::move(row));
  }
  return table.Render();
}

std::string RenderScheduleDetail(const v1::Schedule& s, absl::Time now, absl::TimeZone tz) {
  std::string out;
  absl::StrAppend(&out, "name:       ", s.name(), "\n");
  absl::StrAppend(&out, "command:    ", OneLine(Command(s.argv())), "\n");
  absl::StrAppend(&out, "hosts:      ", DescribeScheduleHosts(s),
                  s.host_names().empty() ? " (labels: hosts that register later too)" : "", "\n");
  absl::StrAppend(&out, "timing:     ", DescribeScheduleTiming(s), "\n");
  absl::StrAppend(&out, "state:      ", s.paused() ? "paused" : "active", " (revision ",
                  s.revision(), ")\n");
  absl::StrAppend(&out, "created:    ", FormatTime(s.created_unix_ms(), tz),
                  s.creator().empty() ? "" : absl::StrCat(" by ", s.creator()), "\n");
  if (s.updated_unix_ms() != s.created_unix_ms()) {
    absl::StrAppend(&out, "changed:    ", FormatTime(s.updated_unix_ms(), tz), "\n");
  }
  if (s.hosts().empty()) {
    absl::StrAppend(&out, "\nNo host carries ", DescribeScheduleHosts(s), " yet.\n");
    return out;
  }
  out += "\n";
  Table table({"HOST", "STATE", "RUNS", "LAST-RUN", "COMMAND-ID", "RESULT"});
  for (const v1::ScheduleHost& h : s.hosts()) {
    bool ran = h.has_last_run();
    table.AddRow({h.host_name(), HostStateName(h.state()), absl::StrCat(h.runs()),
                  ran ? FormatAgo(h.last_run().started_unix_ms(), now) : "never",
                  ran ? h.last_run().command_id() : "", ran ? DescribeRun(h.last_run(), now) : ""});
  }
  absl::StrAppend(&out, table.Render());
  return out;
}

std::string RenderRunsTable(const v1::ListScheduleRunsResponse& runs, bool wide, absl::Time now,
                            absl::TimeZone tz) {
  std::vector<std::string> headers = {"STARTED", "HOST", "COMMAND-ID", "RESULT"};
  if (wide) headers = {"STARTED", "HOST", "DUE", "SPACING", "JOB", "COMMAND-ID", "RESULT"};
  Table table(headers);
  for (const v1::ScheduleRun& r : runs.runs()) {
    std::vector<std::string> row = {FormatTime(r.started_unix_ms(), tz), r.host_name()};
    if (wide) {
      row.push_back(FormatTime(r.due_unix_ms(), tz));
      row.push_back(r.previous_end_unix_ms() == 0
                        ? ""
                        : FormatMillis(r.started_unix_ms() - r.previous_end_unix_ms()));
      row.push_back(r.job_id());
    }
    row.push_back(r.command_id());
    row.push_back(DescribeRun(r, now));
    table.AddRow(std::move(row));
  }
  return table.Render();
}

std::string FormatRunLine(const v1::ScheduleRun& r, absl::Time now, absl::TimeZone tz) {
  return absl::StrCat(FormatTime(r.started_unix_ms(), tz), "  ", r.host_name(), "  ",
                      DescribeRun(r, now), "  [command ", r.command_id(), "]");
}

}  // namespace kfleet::cli
