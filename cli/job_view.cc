#include "cli/job_view.h"

#include <cstring>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/format.h"
#include "cli/table.h"

namespace kfleet::cli {
namespace {

std::string DescribeSelector(const v1::HostSelector& s) {
  if (s.all()) return "all online hosts except builders";
  if (!s.names().empty()) return absl::StrCat("names ", absl::StrJoin(s.names(), ","));
  if (!s.labels().empty()) return absl::StrCat("labels ", FormatLabels(s.labels()));
  return "";
}

std::string ExitText(const v1::CommandInfo& c) {
  if (c.state() != v1::COMMAND_FINISHED) return "";
  const v1::CommandResult& r = c.result();
  if (r.signal() != 0) {
    const char* abbrev = sigabbrev_np(r.signal());
    return abbrev ? absl::StrCat("SIG", abbrev) : absl::StrCat("signal ", r.signal());
  }
  return r.exit_code() >= 0 ? absl::StrCat(r.exit_code()) : "";
}

std::string WallText(const v1::CommandInfo& c, absl::Time now) {
  if (c.result().wall_ms() > 0) return FormatMillis(c.result().wall_ms());
  if (c.state() == v1::COMMAND_RUNNING && c.started_unix_ms() > 0) {
    return FormatMillis(absl::ToInt64Milliseconds(now - absl::FromUnixMillis(c.started_unix_ms())));
  }
  return "";
}

std::string DetailText(const v1::CommandInfo& c) {
  std::string detail = c.result().detail();
  if (c.cancel_requested() && c.state() != v1::COMMAND_FINISHED && detail.empty()) {
    detail = "cancel requested";
  }
  if (c.result().lost() && detail.empty()) detail = "the agent restarted while it ran";
  std::string oom = DescribeOom(c.result());
  if (!oom.empty()) detail = detail.empty() ? oom : absl::StrCat(detail, "; ", oom);
  return detail;
}

std::string Bytes(int64_t n) { return n > 0 ? FormatBytes(static_cast<uint64_t>(n)) : ""; }

}  // namespace

int CountHosts(const v1::Job& job) {
  std::set<std::string> hosts;
  for (const v1::CommandInfo& c : job.commands()) {
    hosts.insert(c.host_id().empty() ? c.host_name() : c.host_id());
  }
  return static_cast<int>(hosts.size());
}

std::string JobDuration(const v1::Job& job, absl::Time now) {
  if (job.created_unix_ms() == 0) return "";
  absl::Time end = job.finished_unix_ms() != 0 ? absl::FromUnixMillis(job.finished_unix_ms()) : now;
  return FormatMillis(absl::ToInt64Milliseconds(end - absl::FromUnixMillis(job.created_unix_ms())));
}

std::string RenderJobsTable(const google::protobuf::RepeatedPtrField<v1::Job>& jobs, bool wide,
                            absl::Time now, absl::TimeZone tz) {
  std::vector<std::string> headers = {"ID", "NAME", "STATE", "VERDICT", "HOSTS", "CREATED", "AGE"};
  if (wide) headers.insert(headers.end(), {"SUBMITTER", "DURATION"});
  Table table(headers);
  for (const v1::Job& job : jobs) {
    std::vector<std::string> row = {
        job.id(),
        job.spec().name(),
        JobStateName(job.state()),
        VerdictName(job.verdict()),
        absl::StrCat(CountHosts(job)),
        FormatTime(job.created_unix_ms(), tz),
        job.created_unix_ms() ? FormatAge(now - absl::FromUnixMillis(job.created_unix_ms())) : ""};
    if (wide) row.insert(row.end(), {job.submitter(), JobDuration(job, now)});
    table.AddRow(std::move(row));
  }
  return table.Render();
}

std::string RenderJobDetail(const v1::Job& job, bool wide, absl::Time now, absl::TimeZone tz) {
  auto field = [](absl::string_view key, absl::string_view value) {
    return absl::StrCat(key, std::string(11 - std::min<size_t>(10, key.size()), ' '),
                        value.empty() ? "-" : value, "\n");
  };
  std::string out;
  out += field("ID:", job.id());
  out += field("Name:", job.spec().name());
  out += field("State:", JobStateName(job.state()));
  out += field("Verdict:", VerdictName(job.verdict()));
  out += field("Hosts:", DescribeSelector(job.spec().hosts()));
  if (!job.submitter().empty()) out += field("Submitter:", job.submitter());
  out += field("Created:", FormatTime(job.created_unix_ms(), tz));
  if (job.finished_unix_ms() != 0)
    out += field("Finished:", FormatTime(job.finished_unix_ms(), tz));
  out += field("Duration:", JobDuration(job, now));
  out += "Steps:\n";
  for (int i = 0; i < job.spec().steps_size(); ++i) {
    const v1::Step& step = job.spec().steps(i);
    absl::StrAppend(&out, "  ", i, "  ", DescribeStep(step));
    std::vector<std::string> limits;
    if (!step.timeout().empty()) limits.push_back(absl::StrCat("timeout ", step.timeout()));
    if (!step.memory_max().empty()) {
      limits.push_back(absl::StrCat("memory_max ", step.memory_max()));
    }
    if (!limits.empty()) absl::StrAppend(&out, "  (", absl::StrJoin(limits, ", "), ")");
    out += "\n";
  }
  out += "\n";
  if (job.commands().empty()) {
    out += "No commands yet.\n";
    return out;
  }

  std::vector<std::string> headers = {"HOST", "STEP", "STATE",  "VERDICT", "EXIT",
                                      "WALL", "CPU",  "MAXRSS", "DETAIL"};
  if (wide) {
    headers.insert(headers.begin() + 1, "COMMAND");
    headers.insert(headers.end() - 1, "PEAK");
  }
  Table table(headers);
  for (const v1::CommandInfo& c : job.commands()) {
    const v1::CommandResult& r = c.result();
    int64_t cpu_ms = r.user_cpu_ms() + r.system_cpu_ms();
    bool finished = c.state() == v1::COMMAND_FINISHED;
    std::vector<std::string> row = {c.host_name(),
                                    absl::StrCat(c.step_index()),
                                    CommandStateName(c.state()),
                                    VerdictName(r.verdict()),
                                    ExitText(c),
                                    WallText(c, now),
                                    finished ? FormatMillis(cpu_ms) : "",
                                    Bytes(r.max_rss_bytes()),
                                    DetailText(c)};
    if (wide) {
      row.insert(row.begin() + 1, c.id());
      row.insert(row.end() - 1, Bytes(r.memory_peak_bytes()));
    }
    table.AddRow(std::move(row));
  }
  out += table.Render();
  return out;
}

std::string DescribeOom(const v1::CommandResult& r) {
  if (!r.oom_killed() && r.oom_kills() == 0) return "";
  if (absl::StrContains(r.detail(), "OOM")) return "";  // the agent's detail says it already
  auto kills = [](uint32_t n) {
    return absl::StrCat(n, n == 1 ? " OOM kill" : " OOM kills", " in its cgroup");
  };
  std::string head = r.oom_killed() ? "OOM-killed" : kills(r.oom_kills());
  std::vector<std::string> notes;
  if (r.oom_killed() && r.oom_kills() > 1) notes.push_back(kills(r.oom_kills()));
  if (r.memory_max_bytes() > 0)
    notes.push_back(absl::StrCat("limit ", Bytes(r.memory_max_bytes())));
  if (r.memory_peak_bytes() > 0) {
    notes.push_back(absl::StrCat("peak ", Bytes(r.memory_peak_bytes())));
  }
  if (notes.empty()) return head;
  return absl::StrCat(head, " (", absl::StrJoin(notes, ", "), ")");
}

std::string CommandSummary(const v1::CommandInfo& c, absl::string_view step, bool wide) {
  const v1::CommandResult& r = c.result();
  std::string verdict = VerdictName(r.verdict());
  if (verdict.empty()) verdict = absl::AsciiStrToUpper(CommandStateName(c.state()));
  std::vector<std::string> parts;
  if (!r.detail().empty()) {
    parts.push_back(r.detail());
  } else if (c.state() == v1::COMMAND_FINISHED) {
    std::string exit = ExitText(c);
    if (r.signal() != 0) {
      parts.push_back(absl::StrCat("killed by ", exit));
    } else if (!exit.empty()) {
      parts.push_back(absl::StrCat("exit ", exit));
    }
  } else if (c.state() == v1::COMMAND_PENDING || c.state() == v1::COMMAND_ACCEPTED) {
    parts.push_back("never started");
  } else if (c.state() == v1::COMMAND_SKIPPED) {
    parts.push_back("skipped: an earlier step failed");
  }
  if (c.state() == v1::COMMAND_FINISHED || r.wall_ms() > 0)
    parts.push_back(FormatMillis(r.wall_ms()));
  std::string oom = DescribeOom(r);
  bool hit = r.oom_killed() || r.oom_kills() > 0;  // then the detail or `oom` gives the peak
  if (wide && !hit && r.memory_peak_bytes() > 0) {
    parts.push_back(absl::StrCat("peak ", Bytes(r.memory_peak_bytes())));
  }
  std::string line = absl::StrCat(c.host_name(), step.empty() ? "" : " ", step, ": ", verdict);
  if (!parts.empty()) absl::StrAppend(&line, " (", absl::StrJoin(parts, ", "), ")");
  if (!oom.empty()) absl::StrAppend(&line, " ", oom);
  return line;
}

}  // namespace kfleet::cli
