// SqliteStore: schedules, and the set each host is sent (schedule_store.h).
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "controller/store/schedule_rows.h"
#include "controller/store/sqlite_store.h"

namespace kfleet::controller {

const char* ScheduleSchemaSql() {
  return R"sql(
CREATE TABLE schedules (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  selector BLOB NOT NULL,          -- kfleet.v1.HostSelector: names, or labels
  argv BLOB NOT NULL,              -- kfleet.v1.ExecStep: argv
  every_after_ms INTEGER NOT NULL,
  jitter_ms INTEGER NOT NULL,
  timeout_ms INTEGER NOT NULL,     -- 0: none
  memory_max_bytes INTEGER NOT NULL,  -- 0: none
  paused INTEGER NOT NULL DEFAULT 0,
  revision INTEGER NOT NULL,
  creator TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  removed_ms INTEGER NOT NULL DEFAULT 0  -- set: a tombstone, whose runs are still accepted
);
CREATE UNIQUE INDEX schedules_by_live_name ON schedules(name) WHERE removed_ms = 0;
CREATE TABLE schedule_hosts (      -- which hosts were sent which schedules
  schedule_id INTEGER NOT NULL,
  host_id TEXT NOT NULL,
  PRIMARY KEY (schedule_id, host_id)
);
CREATE TABLE schedule_runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  command_id TEXT NOT NULL UNIQUE, -- made by the agent; the run's job has this one command
  schedule_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  host_id TEXT NOT NULL,
  job_id TEXT NOT NULL,
  revision INTEGER NOT NULL,
  due_ms INTEGER NOT NULL,         -- agent clock, as the next three
  previous_end_ms INTEGER NOT NULL,
  started_ms INTEGER NOT NULL,
  ended_ms INTEGER NOT NULL DEFAULT 0,
  outcome TEXT NOT NULL DEFAULT 'running',  -- pass, fail, oom, timeout, cancelled
  change_seq INTEGER NOT NULL
);
CREATE INDEX schedule_runs_by_name ON schedule_runs(name, host_id, id);
CREATE INDEX schedule_runs_by_change ON schedule_runs(change_seq);
CREATE TABLE schedule_stats (      -- counters over every run stored, pruned ones included
  name TEXT NOT NULL,
  host_id TEXT NOT NULL,
  pass INTEGER NOT NULL DEFAULT 0,
  fail INTEGER NOT NULL DEFAULT 0,
  oom INTEGER NOT NULL DEFAULT 0,
  timeout INTEGER NOT NULL DEFAULT 0,
  oom_kills INTEGER NOT NULL DEFAULT 0,
  last_end_ms INTEGER NOT NULL DEFAULT 0,
  last_duration_ms INTEGER NOT NULL DEFAULT 0,
  last_peak_bytes INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (name, host_id)
);
CREATE TABLE schedule_counters (revision INTEGER NOT NULL, change_seq INTEGER NOT NULL);
INSERT INTO schedule_counters (revision, change_seq) VALUES (0, 0);
)sql";
}

absl::StatusOr<v1::Schedule> SqliteStore::AddSchedule(const v1::Schedule& schedule,
                                                      int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  return InTransaction([&]() -> absl::StatusOr<v1::Schedule> {
    if (LoadLiveSchedule(db_.get(), schedule.name()).ok()) {
      return absl::AlreadyExistsError(
          absl::StrCat("schedule \"", schedule.name(),
                       "\" already exists: pick another name, or remove it first (kctl schedule "
                       "rm ",
                       schedule.name(), ")"));
    }
    // An agent runs at most kMaxSchedulesPerHost: refused here rather than dropped there.
    ASSIGN_OR_RETURN(std::vector<v1::Host> hosts, LoadHostLabels(db_.get()));
    ASSIGN_OR_RETURN(std::vector<ScheduleRow> live, LoadLiveSchedules(db_.get()));
    for (const v1::Host& h : hosts) {
      if (!ScheduleApplies(schedule, h)) continue;
      int n = 0;
      for (const ScheduleRow& row : live) n += ScheduleApplies(row.schedule, h) ? 1 : 0;
      if (n >= kMaxSchedulesPerHost) {
        return absl::ResourceExhaustedError(
            absl::StrCat("host ", h.name(), " already has ", n,
                         " schedules, the most an agent runs: remove "
                         "one first (kctl schedule rm NAME)"));
      }
    }
    ASSIGN_OR_RETURN(uint64_t revision, NextScheduleCounter(db_.get(), "revision"));
    v1::HostSelector selector;
    *selector.mutable_names() = schedule.host_names();
    *selector.mutable_labels() = schedule.labels();
    v1::ExecStep exec;
    *exec.mutable_argv() = schedule.argv();
    ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), R"sql(
INSERT INTO schedules (name, selector, argv, every_after_ms, jitter_ms, timeout_ms,
  memory_max_bytes, paused, revision, creator, created_ms, updated_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11))sql"));
    s.Bind(1, schedule.name())
        .BindBlob(2, selector.SerializeAsString())
        .BindBlob(3, exec.SerializeAsString())
        .Bind(4, static_cast<int64_t>(schedule.every_after_ms()))
        .Bind(5, static_cast<int64_t>(schedule.jitter_ms()))
        .Bind(6, static_cast<int64_t>(schedule.timeout_ms()))
        .Bind(7, static_cast<int64_t>(schedule.memory_max_bytes()))
        .Bind(8, int64_t{schedule.paused()})
        .Bind(9, static_cast<int64_t>(revision))
        .Bind(10, schedule.creator())
        .Bind(11, now_ms);
    RETURN_IF_ERROR(s.Run());
    ASSIGN_OR_RETURN(ScheduleRow row, LoadLiveSchedule(db_.get(), schedule.name()));
    RETURN_IF_ERROR(FillScheduleHosts(db_.get(), hosts, &row.schedule));
    return row.schedule;
  });
}

absl::StatusOr<std::vector<v1::Schedule>> SqliteStore::ListSchedules() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::vector<ScheduleRow> rows, LoadLiveSchedules(db_.get()));
  ASSIGN_OR_RETURN(std::vector<v1::Host> hosts, LoadHostLabels(db_.get()));
  std::vector<v1::Schedule> out;
  for (ScheduleRow& row : rows) {
    RETURN_IF_ERROR(FillScheduleHosts(db_.get(), hosts, &row.schedule));
    out.push_back(std::move(row.schedule));
  }
  return out;
}

absl::StatusOr<v1::Schedule> SqliteStore::GetSchedule(const std::string& name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(ScheduleRow row, LoadLiveSchedule(db_.get(), name));
  ASSIGN_OR_RETURN(std::vector<v1::Host> hosts, LoadHostLabels(db_.get()));
  RETURN_IF_ERROR(FillScheduleHosts(db_.get(), hosts, &row.schedule));
  return row.schedule;
}

absl::StatusOr<v1::Schedule> SqliteStore::SetSchedulePaused(const std::string& name, bool paused,
                                                            int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  return InTransaction([&]() -> absl::StatusOr<v1::Schedule> {
    ASSIGN_OR_RETURN(ScheduleRow row, LoadLiveSchedule(db_.get(), name));
    ASSIGN_OR_RETURN(uint64_t revision, NextScheduleCounter(db_.get(), "revision"));
    ASSIGN_OR_RETURN(Stmt up, Stmt::Prepare(db_.get(), R"sql(
UPDATE schedules SET paused = ?1, revision = ?2, updated_ms = ?3 WHERE id = ?4)sql"));
    up.Bind(1, int64_t{paused})
        .Bind(2, static_cast<int64_t>(revision))
        .Bind(3, now_ms)
        .Bind(4, row.id);
    RETURN_IF_ERROR(up.Run());
    ASSIGN_OR_RETURN(row, LoadLiveSchedule(db_.get(), name));
    ASSIGN_OR_RETURN(std::vector<v1::Host> hosts, LoadHostLabels(db_.get()));
    RETURN_IF_ERROR(FillScheduleHosts(db_.get(), hosts, &row.schedule));
    return row.schedule;
  });
}

absl::StatusOr<ScheduleRemoval> SqliteStore::RemoveSchedule(const std::string& name, bool cancel,
                                                            int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  return InTransaction([&]() -> absl::StatusOr<ScheduleRemoval> {
    ScheduleRemoval out;
    ASSIGN_OR_RETURN(ScheduleRow row, LoadLiveSchedule(db_.get(), name));
    ASSIGN_OR_RETURN(out.host_ids, ScheduleTargets(db_.get(), row));
    ASSIGN_OR_RETURN(std::vector<v1::Host> hosts, LoadHostLabels(db_.get()));
    out.schedule = row.schedule;
    RETURN_IF_ERROR(FillScheduleHosts(db_.get(), hosts, &out.schedule));
    ASSIGN_OR_RETURN(uint64_t revision, NextScheduleCounter(db_.get(), "revision"));
    ASSIGN_OR_RETURN(Stmt up, Stmt::Prepare(db_.get(), R"sql(
UPDATE schedules SET removed_ms = ?1, updated_ms = ?1, revision = ?2 WHERE id = ?3)sql"));
    up.Bind(1, now_ms).Bind(2, static_cast<int64_t>(revision)).Bind(3, row.id);
    RETURN_IF_ERROR(up.Run());
    // Runs the controller knows are in progress (accepted or running). A run its agent started
    // while unreachable is not known yet: it finishes, as the agent drops the schedule.
    ASSIGN_OR_RETURN(out.running,
                     LoadScheduleRuns(db_.get(),
                                      "r.schedule_id = ?3 AND r.outcome = 'running' AND c.state IN "
                                      "(2, 3)",
                                      "r.id", "", "", row.id, 0));
    if (!cancel) return out;
    for (v1::ScheduleRun& run : out.running) {
      ASSIGN_OR_RETURN(Stmt mark, Stmt::Prepare(db_.get(), R"sql(
UPDATE commands SET cancel_requested = 1 WHERE id = ?1)sql"));
      mark.Bind(1, run.command_id());
      RETURN_IF_ERROR(mark.Run());
      ASSIGN_OR_RETURN(Stmt job, Stmt::Prepare(db_.get(), R"sql(
UPDATE jobs SET cancel_requested = 1 WHERE id = ?1)sql"));
      job.Bind(1, run.job_id());
      RETURN_IF_ERROR(job.Run());
      run.set_cancel_requested(true);
      out.cancel_commands.push_back(run.command_id());
    }
    return out;
  });
}

absl::StatusOr<std::vector<std::string>> SqliteStore::ScheduleHostIds(const std::string& name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(ScheduleRow row, LoadLiveSchedule(db_.get(), name));
  return ScheduleTargets(db_.get(), row);
}

absl::StatusOr<v1::ScheduleSet> SqliteStore::ScheduleSetFor(const std::string& host_id) {
  absl::MutexLock lock(&mu_);
  return InTransaction([&]() -> absl::StatusOr<v1::ScheduleSet> {
    // One host's row, not the fleet's: every Hello asks (twice).
    ASSIGN_OR_RETURN(std::vector<v1::Host> hosts, LoadHostLabels(db_.get(), host_id));
    const v1::Host* host = nullptr;
    for (const v1::Host& h : hosts) {
      if (h.id() == host_id) host = &h;
    }
    if (host == nullptr) return absl::NotFoundError(absl::StrCat("no host ", host_id));
    ASSIGN_OR_RETURN(std::vector<ScheduleRow> rows, LoadLiveSchedules(db_.get()));
    v1::ScheduleSet set;
    ASSIGN_OR_RETURN(Stmt sent, Stmt::Prepare(db_.get(), R"sql(
INSERT OR IGNORE INTO schedule_hosts (schedule_id, host_id) VALUES (?1, ?2))sql"));
    for (const ScheduleRow& row : rows) {
      const v1::Schedule& s = row.schedule;
      if (!ScheduleApplies(s, *host)) continue;
      v1::ScheduleSpec* spec = set.add_schedules();
      spec->set_name(s.name());
      *spec->mutable_argv() = s.argv();
      spec->set_every_after_ms(s.every_after_ms());
      spec->set_jitter_ms(s.jitter_ms());
      spec->set_timeout_ms(s.timeout_ms());
      spec->set_memory_max_bytes(s.memory_max_bytes());
      spec->set_paused(s.paused());
      spec->set_revision(s.revision());
      sent.Reset();
      sent.Bind(1, row.id).Bind(2, host_id);
      RETURN_IF_ERROR(sent.Run());
    }
    return set;
  });
}

void SqliteStore::SetScheduleRunsKept(int runs) {
  absl::MutexLock lock(&mu_);
  schedule_runs_kept_ = runs < 1 ? 1 : runs;
}

}  // namespace kfleet::controller
