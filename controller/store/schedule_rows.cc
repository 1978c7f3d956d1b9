#include "controller/store/schedule_rows.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "controller/store/sqlite.h"

namespace kfleet::controller {
namespace {

constexpr char kScheduleColumns[] =
    "id, name, selector, argv, every_after_ms, jitter_ms, timeout_ms, memory_max_bytes, paused, "
    "revision, creator, created_ms, updated_ms";

ScheduleRow ScheduleFromRow(const Stmt& s) {
  ScheduleRow row;
  row.id = s.Int(0);
  v1::Schedule& out = row.schedule;
  out.set_name(s.Text(1));
  v1::HostSelector selector;
  selector.ParseFromString(s.Blob(2));
  *out.mutable_host_names() = selector.names();
  *out.mutable_labels() = selector.labels();
  v1::ExecStep exec;
  exec.ParseFromString(s.Blob(3));
  *out.mutable_argv() = exec.argv();
  out.set_every_after_ms(static_cast<uint64_t>(s.Int(4)));
  out.set_jitter_ms(static_cast<uint64_t>(s.Int(5)));
  out.set_timeout_ms(static_cast<uint64_t>(s.Int(6)));
  out.set_memory_max_bytes(static_cast<uint64_t>(s.Int(7)));
  out.set_paused(s.Int(8) != 0);
  out.set_revision(static_cast<uint64_t>(s.Int(9)));
  out.set_creator(s.Text(10));
  out.set_created_unix_ms(s.Int(11));
  out.set_updated_unix_ms(s.Int(12));
  return row;
}

}  // namespace

absl::StatusOr<ScheduleRow> LoadLiveSchedule(sqlite3* db, const std::string& name) {
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db, absl::StrCat("SELECT ", kScheduleColumns,
                                                          " FROM schedules WHERE name = ?1 AND "
                                                          "removed_ms = 0")));
  s.Bind(1, name);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) {
    return absl::NotFoundError(absl::StrCat("no schedule \"", name.substr(0, 64),
                                            "\": `kctl schedule ls` lists the schedules"));
  }
  return ScheduleFromRow(s);
}

absl::StatusOr<std::vector<ScheduleRow>> LoadLiveSchedules(sqlite3* db) {
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db, absl::StrCat("SELECT ", kScheduleColumns,
                                                          " FROM schedules WHERE removed_ms = 0 "
                                                          "ORDER BY name")));
  std::vector<ScheduleRow> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(ScheduleFromRow(s));
  }
  return out;
}

bool ScheduleApplies(const v1::Schedule& schedule, const v1::Host& host) {
  if (!schedule.host_names().empty()) {
    return std::find(schedule.host_names().begin(), schedule.host_names().end(), host.name()) !=
           schedule.host_names().end();
  }
  if (schedule.labels().empty()) return false;
  for (const auto& [k, v] : schedule.labels()) {
    auto it = host.labels().find(k);
    if (it == host.labels().end() || it->second != v) return false;
  }
  return true;
}

absl::StatusOr<std::vector<v1::Host>> LoadHostLabels(sqlite3* db, const std::string& only_id) {
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db,
                                         "SELECT id, name, state, meta FROM hosts WHERE ?1 = '' "
                                         "OR id = ?1 ORDER BY name"));
  s.Bind(1, only_id);
  std::vector<v1::Host> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    v1::Host meta;
    meta.ParseFromString(s.Blob(3));
    v1::Host& h = out.emplace_back();
    h.set_id(s.Text(0));
    h.set_name(s.Text(1));
    h.set_state(static_cast<v1::HostState>(s.Int(2)));
    *h.mutable_labels() = meta.labels();
  }
  return out;
}

absl::Status FillScheduleHosts(sqlite3* db, const std::vector<v1::Host>& hosts,
                               v1::Schedule* schedule) {
  // Hosts that ran it under this name (the selector may no longer take them).
  ASSIGN_OR_RETURN(Stmt ran, Stmt::Prepare(db, R"sql(
SELECT host_id, COUNT(*), MAX(id) FROM schedule_runs WHERE name = ?1 GROUP BY host_id)sql"));
  ran.Bind(1, schedule->name());
  struct Ran {
    int64_t runs = 0;
    int64_t last_id = 0;
  };
  std::map<std::string, Ran> by_host;
  while (true) {
    ASSIGN_OR_RETURN(bool row, ran.Step());
    if (!row) break;
    by_host[ran.Text(0)] = Ran{ran.Int(1), ran.Int(2)};
  }
  for (const v1::Host& h : hosts) {
    auto it = by_host.find(h.id());
    if (!ScheduleApplies(*schedule, h) && it == by_host.end()) continue;
    v1::ScheduleHost* sh = schedule->add_hosts();
    sh->set_host_id(h.id());
    sh->set_host_name(h.name());
    sh->set_state(h.state());
    if (it == by_host.end()) continue;
    sh->set_runs(static_cast<uint32_t>(it->second.runs));
    ASSIGN_OR_RETURN(std::vector<v1::ScheduleRun> last,
                     LoadScheduleRuns(db, "r.id = ?3", "r.id", "", "", it->second.last_id, 0));
    if (!last.empty()) *sh->mutable_last_run() = std::move(last[0]);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ScheduleTargets(sqlite3* db, const ScheduleRow& row) {
  std::set<std::string> ids;
  ASSIGN_OR_RETURN(std::vector<v1::Host> hosts, LoadHostLabels(db));
  for (const v1::Host& h : hosts) {
    if (ScheduleApplies(row.schedule, h)) ids.insert(h.id());
  }
  ASSIGN_OR_RETURN(Stmt sent,
                   Stmt::Prepare(db, "SELECT host_id FROM schedule_hosts WHERE schedule_id = ?1"));
  sent.Bind(1, row.id);
  while (true) {
    ASSIGN_OR_RETURN(bool more, sent.Step());
    if (!more) break;
    ids.insert(sent.Text(0));
  }
  return std::vector<std::string>(ids.begin(), ids.end());
}

absl::StatusOr<uint64_t> NextScheduleCounter(sqlite3* db, absl::string_view which) {
  RETURN_IF_ERROR(
      Exec(db, absl::StrCat("UPDATE schedule_counters SET ", which, " = ", which, " + 1")));
  ASSIGN_OR_RETURN(Stmt s,
                   Stmt::Prepare(db, absl::StrCat("SELECT ", which, " FROM schedule_counters")));
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::InternalError("schedule_counters is empty");
  return static_cast<uint64_t>(s.Int(0));
}

absl::StatusOr<std::vector<v1::ScheduleRun>> LoadScheduleRuns(sqlite3* db, absl::string_view where,
                                                              absl::string_view order,
                                                              const std::string& text1,
                                                              const std::string& text2,
                                                              int64_t int3, int64_t int4) {
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db, absl::StrCat(R"sql(
SELECT r.id, r.name, r.host_id, COALESCE(h.name, c.host_name, ''), r.command_id, r.job_id, c.step,
  r.revision, r.due_ms, r.previous_end_ms, r.started_ms, r.ended_ms, r.outcome, c.result,
  r.change_seq, COALESCE(c.cancel_requested, 0)
FROM schedule_runs r LEFT JOIN commands c ON c.id = r.command_id
  LEFT JOIN hosts h ON h.id = r.host_id
WHERE )sql",
                                                          where, " ORDER BY ", order)));
  s.Bind(1, text1).Bind(2, text2).Bind(3, int3).Bind(4, int4);
  std::vector<v1::ScheduleRun> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    v1::ScheduleRun& r = out.emplace_back();
    r.set_id(static_cast<uint64_t>(s.Int(0)));
    r.set_schedule(s.Text(1));
    r.set_host_id(s.Text(2));
    r.set_host_name(s.Text(3));
    r.set_command_id(s.Text(4));
    r.set_job_id(s.Text(5));
    if (!s.IsNull(6)) {
      v1::Step step;
      step.ParseFromString(s.Blob(6));
      *r.mutable_argv() = step.exec().argv();
    }
    r.set_revision(static_cast<uint64_t>(s.Int(7)));
    r.set_due_unix_ms(s.Int(8));
    r.set_previous_end_unix_ms(s.Int(9));
    r.set_started_unix_ms(s.Int(10));
    r.set_ended_unix_ms(s.Int(11));
    r.set_outcome(s.Text(12));
    if (!s.IsNull(13)) r.mutable_result()->ParseFromString(s.Blob(13));
    r.set_change(static_cast<uint64_t>(s.Int(14)));
    r.set_cancel_requested(s.Int(15) != 0);
  }
  return out;
}

std::string RunOutcome(const v1::CommandResult& result) {
  if (result.oom_killed()) return "oom";
  if (result.timed_out() || result.verdict() == v1::TIMEOUT) return "timeout";
  if (result.verdict() == v1::PASS) return "pass";
  if (result.cancelled() || result.verdict() == v1::CANCELLED) return "cancelled";
  return "fail";
}

}  // namespace kfleet::controller
