// SqliteStore: runs of schedules as jobs, their bound, and their counters (schedule_store.h).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/duration.h"
#include "common/ids.h"
#include "common/status_macros.h"
#include "controller/store/schedule_rows.h"
#include "controller/store/sqlite_store.h"

namespace kfleet::controller {
namespace {

constexpr int kMaxRunArgs = 4096;
constexpr size_t kMaxRunArgvBytes = 256 << 10;

// The one step a run's job has: what the agent ran, with its limits.
v1::Step RunStep(const v1::ScheduleRunStarted& run) {
  v1::Step step;
  *step.mutable_exec()->mutable_argv() = run.argv();
  if (run.timeout_ms() > 0) {
    step.set_timeout(ShortDuration(absl::Milliseconds(static_cast<int64_t>(run.timeout_ms()))));
  }
  if (run.memory_max_bytes() > 0) step.set_memory_max(absl::StrCat(run.memory_max_bytes()));
  return step;
}

// Why the run cannot be stored as it is, or "".
std::string RunProblem(const v1::ScheduleRunStarted& run) {
  if (!IsValidId(run.command_id())) {
    return "its command_id is not 1-64 characters of [A-Za-z0-9._-]";
  }
  if (run.argv_size() > kMaxRunArgs) return "its argv has too many words";
  size_t bytes = 0;
  for (const std::string& a : run.argv()) bytes += a.size();
  if (bytes > kMaxRunArgvBytes) return "its argv is larger than 256 KiB";
  return "";
}

}  // namespace

absl::Status SqliteStore::StartScheduleRunLocked(const std::string& host_id,
                                                 const v1::ScheduleRunStarted& run, int64_t now_ms,
                                                 ScheduleRunsOutcome* outcome) {
  auto refuse = [&](absl::string_view why) {
    outcome->problems.push_back(absl::StrCat("run of schedule \"", run.schedule().substr(0, 64),
                                             "\" (command ", run.command_id().substr(0, 64),
                                             ") refused: ", why));
    return absl::OkStatus();
  };
  if (std::string problem = RunProblem(run); !problem.empty()) return refuse(problem);
  ASSIGN_OR_RETURN(Stmt known, Stmt::Prepare(db_.get(), R"sql(
SELECT c.host_id, r.id IS NOT NULL FROM commands c
LEFT JOIN schedule_runs r ON r.command_id = c.id WHERE c.id = ?1)sql"));
  known.Bind(1, run.command_id());
  ASSIGN_OR_RETURN(bool exists, known.Step());
  if (exists) {
    if (known.Text(0) == host_id && known.Int(1) != 0) return absl::OkStatus();  // stored already
    return refuse("the command id is already in use");
  }
  // The schedule of that name this host was sent: the live one, else the newest removed one.
  ASSIGN_OR_RETURN(Stmt which, Stmt::Prepare(db_.get(), R"sql(
SELECT s.id FROM schedules s JOIN schedule_hosts sh ON sh.schedule_id = s.id AND sh.host_id = ?2
WHERE s.name = ?1 ORDER BY s.removed_ms = 0 DESC, s.id DESC LIMIT 1)sql"));
  which.Bind(1, run.schedule()).Bind(2, host_id);
  ASSIGN_OR_RETURN(bool found, which.Step());
  if (!found) return refuse("this host was never sent a schedule of that name");
  int64_t schedule_id = which.Int(0);

  ASSIGN_OR_RETURN(Stmt host, Stmt::Prepare(db_.get(), "SELECT name FROM hosts WHERE id = ?1"));
  host.Bind(1, host_id);
  ASSIGN_OR_RETURN(bool have_host, host.Step());
  std::string host_name = have_host ? host.Text(0) : host_id;
  // The agent's clock says when it was due; it cannot have started after the controller heard
  // of it.
  int64_t started = run.due_unix_ms() > 0 ? std::min(run.due_unix_ms(), now_ms) : now_ms;

  v1::JobSpec spec;
  spec.set_name(absl::StrCat("schedule ", run.schedule()));
  spec.mutable_hosts()->add_names(host_name);
  *spec.add_steps() = RunStep(run);
  std::string job_id = NewId("j-");
  ASSIGN_OR_RETURN(Stmt job, Stmt::Prepare(db_.get(), R"sql(
INSERT INTO jobs (id, name, spec, state, submitter, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6))sql"));
  job.Bind(1, job_id)
      .Bind(2, spec.name())
      .BindBlob(3, spec.SerializeAsString())
      .Bind(4, int64_t{v1::JOB_RUNNING})
      .Bind(5, spec.name())
      .Bind(6, started);
  RETURN_IF_ERROR(job.Run());
  ASSIGN_OR_RETURN(Stmt cmd, Stmt::Prepare(db_.get(), R"sql(
INSERT INTO commands (id, job_id, host_id, step_index, step, state, created_ms, host_name)
VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7))sql"));
  cmd.Bind(1, run.command_id())
      .Bind(2, job_id)
      .Bind(3, host_id)
      .BindBlob(4, spec.steps(0).SerializeAsString())
      .Bind(5, int64_t{v1::COMMAND_ACCEPTED})
      .Bind(6, started)
      .Bind(7, host_name);
  RETURN_IF_ERROR(cmd.Run());
  ASSIGN_OR_RETURN(uint64_t change, NextScheduleCounter(db_.get(), "change_seq"));
  ASSIGN_OR_RETURN(Stmt ins, Stmt::Prepare(db_.get(), R"sql(
INSERT INTO schedule_runs (command_id, schedule_id, name, host_id, job_id, revision, due_ms,
  previous_end_ms, started_ms, change_seq)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10))sql"));
  ins.Bind(1, run.command_id())
      .Bind(2, schedule_id)
      .Bind(3, run.schedule())
      .Bind(4, host_id)
      .Bind(5, job_id)
      .Bind(6, static_cast<int64_t>(run.revision()))
      .Bind(7, run.due_unix_ms())
      .Bind(8, run.previous_end_unix_ms())
      .Bind(9, started)
      .Bind(10, static_cast<int64_t>(change));
  RETURN_IF_ERROR(ins.Run());
  // The counters exist from the first run on, so that a rate over them sees the first failure.
  ASSIGN_OR_RETURN(Stmt stats, Stmt::Prepare(db_.get(), R"sql(
INSERT OR IGNORE INTO schedule_stats (name, host_id) VALUES (?1, ?2))sql"));
  stats.Bind(1, run.schedule()).Bind(2, host_id);
  RETURN_IF_ERROR(stats.Run());
  ++outcome->stored;

  // The bound: the oldest runs of this (schedule, host) go with everything stored of them.
  ASSIGN_OR_RETURN(Stmt old, Stmt::Prepare(db_.get(), R"sql(
SELECT command_id, job_id FROM schedule_runs WHERE name = ?1 AND host_id = ?2
ORDER BY id DESC LIMIT -1 OFFSET ?3)sql"));
  old.Bind(1, run.schedule()).Bind(2, host_id).Bind(3, int64_t{schedule_runs_kept_});
  std::vector<std::pair<std::string, std::string>> pruned;
  while (true) {
    ASSIGN_OR_RETURN(bool row, old.Step());
    if (!row) break;
    pruned.emplace_back(old.Text(0), old.Text(1));
  }
  for (const auto& [command_id, pruned_job] : pruned) {
    for (const char* sql :
         {"DELETE FROM test_results WHERE job_id = ?2", "DELETE FROM commands WHERE job_id = ?2",
          "DELETE FROM jobs WHERE id = ?2", "DELETE FROM schedule_runs WHERE command_id = ?1"}) {
      ASSIGN_OR_RETURN(Stmt del, Stmt::Prepare(db_.get(), sql));
      del.Bind(1, command_id).Bind(2, pruned_job);
      RETURN_IF_ERROR(del.Run());
    }
    outcome->pruned_commands.push_back(command_id);
  }
  return absl::OkStatus();
}

absl::StatusOr<ScheduleRunsOutcome> SqliteStore::StartScheduleRuns(
    const std::string& host_id, const std::vector<v1::SequencedItem>& items, int64_t now_ms) {
  bool any = false;
  for (const v1::SequencedItem& item : items) any = any || item.has_schedule_run();
  if (!any) return ScheduleRunsOutcome{};
  absl::MutexLock lock(&mu_);
  return InTransaction([&]() -> absl::StatusOr<ScheduleRunsOutcome> {
    ScheduleRunsOutcome outcome;
    // Items at or below the last stored seq were applied before: a run pruned since must not
    // come back.
    ASSIGN_OR_RETURN(uint64_t last, LastSeqLocked(host_id));
    for (const v1::SequencedItem& item : items) {
      if (!item.has_schedule_run() || item.seq() <= last) continue;
      RETURN_IF_ERROR(StartScheduleRunLocked(host_id, item.schedule_run(), now_ms, &outcome));
    }
    return outcome;
  });
}

absl::Status SqliteStore::ScheduleRunEndedLocked(const std::string& command_id,
                                                 const v1::CommandResult& result) {
  ASSIGN_OR_RETURN(Stmt get, Stmt::Prepare(db_.get(), R"sql(
SELECT name, host_id, started_ms FROM schedule_runs WHERE command_id = ?1 AND outcome = 'running')sql"));
  get.Bind(1, command_id);
  ASSIGN_OR_RETURN(bool row, get.Step());
  if (!row) return absl::OkStatus();  // not a run, or it ended already
  std::string name = get.Text(0);
  std::string host_id = get.Text(1);
  int64_t duration = std::max<int64_t>(result.wall_ms(), 0);
  // The agent's clock again: when it started plus how long it ran.
  int64_t ended = get.Int(2) + duration;
  std::string outcome = RunOutcome(result);
  ASSIGN_OR_RETURN(uint64_t change, NextScheduleCounter(db_.get(), "change_seq"));
  ASSIGN_OR_RETURN(Stmt up, Stmt::Prepare(db_.get(), R"sql(
UPDATE schedule_runs SET ended_ms = ?1, outcome = ?2, change_seq = ?3 WHERE command_id = ?4)sql"));
  up.Bind(1, ended).Bind(2, outcome).Bind(3, static_cast<int64_t>(change)).Bind(4, command_id);
  RETURN_IF_ERROR(up.Run());
  // A cancelled run counts as failed: the metrics know pass, fail, oom and timeout.
  std::string column = outcome == "cancelled" ? "fail" : outcome;
  int64_t oom_kills = std::max<int64_t>(result.oom_kills(), result.oom_killed() ? 1 : 0);
  int64_t peak = result.memory_peak_bytes() > 0 ? result.memory_peak_bytes()
                                                : std::max<int64_t>(result.max_rss_bytes(), 0);
  ASSIGN_OR_RETURN(Stmt stats, Stmt::Prepare(db_.get(), R"sql(
INSERT OR IGNORE INTO schedule_stats (name, host_id) VALUES (?1, ?2))sql"));
  stats.Bind(1, name).Bind(2, host_id);
  RETURN_IF_ERROR(stats.Run());
  ASSIGN_OR_RETURN(
      Stmt add, Stmt::Prepare(db_.get(), absl::StrCat("UPDATE schedule_stats SET ", column, " = ",
                                                      column, R"sql( + 1,
  oom_kills = oom_kills + ?3, last_end_ms = ?4, last_duration_ms = ?5, last_peak_bytes = ?6
WHERE name = ?1 AND host_id = ?2)sql")));
  add.Bind(1, name).Bind(2, host_id).Bind(3, oom_kills).Bind(4, ended).Bind(5, duration);
  add.Bind(6, peak);
  return add.Run();
}

absl::StatusOr<std::vector<v1::ScheduleRun>> SqliteStore::ListScheduleRuns(
    const std::string& name, const std::string& host_id, int limit, uint64_t after_change) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt known,
                   Stmt::Prepare(db_.get(), "SELECT 1 FROM schedules WHERE name = ?1 LIMIT 1"));
  known.Bind(1, name);
  ASSIGN_OR_RETURN(bool exists, known.Step());
  if (!exists) {
    return absl::NotFoundError(absl::StrCat("no schedule \"", name.substr(0, 64),
                                            "\": `kctl schedule ls` lists the schedules"));
  }
  // Newest `limit` (shown oldest first), or, following, the oldest `limit` changes after a point.
  const int64_t after = static_cast<int64_t>(after_change);
  return LoadScheduleRuns(
      db_.get(),
      absl::StrCat("r.id IN (SELECT id FROM schedule_runs WHERE name = ?1 AND (?2 = '' OR "
                   "host_id = ?2) AND change_seq > ?4 ORDER BY ",
                   after > 0 ? "change_seq" : "id DESC", " LIMIT ?3)"),
      after > 0 ? "r.change_seq" : "r.id", name, host_id, limit, after);
}

absl::StatusOr<std::vector<ScheduleRunStats>> SqliteStore::ListScheduleRunStats() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), R"sql(
SELECT st.name, st.host_id, COALESCE(h.name, st.host_id), st.pass, st.fail, st.oom, st.timeout,
  st.oom_kills, st.last_end_ms, st.last_duration_ms, st.last_peak_bytes
FROM schedule_stats st LEFT JOIN hosts h ON h.id = st.host_id
WHERE st.name IN (SELECT name FROM schedules WHERE removed_ms = 0)
ORDER BY st.name, 3)sql"));
  std::vector<ScheduleRunStats> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    ScheduleRunStats& r = out.emplace_back();
    r.schedule = s.Text(0);
    r.host_id = s.Text(1);
    r.host_name = s.Text(2);
    r.pass = s.Int(3);
    r.fail = s.Int(4);
    r.oom = s.Int(5);
    r.timeout = s.Int(6);
    r.oom_kills = s.Int(7);
    r.last_end_ms = s.Int(8);
    r.last_duration_ms = s.Int(9);
    r.last_peak_bytes = s.Int(10);
  }
  return out;
}

}  // namespace kfleet::controller
