#include "controller/store/sqlite_store.h"

#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/ids.h"
#include "common/status_macros.h"
#include "controller/store/step_fill.h"

namespace kfleet::controller {
namespace {

using kfleet::v1::CommandInfo;
using kfleet::v1::CommandState;
using kfleet::v1::Host;
using kfleet::v1::Job;

// Index i holds the SQL that brings the schema from version i to i+1. Append only.
const std::vector<std::string>& Migrations() {
  static const auto* kMigrations = new std::vector<std::string>{
      R"sql(
CREATE TABLE hosts (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  meta BLOB NOT NULL,            -- kfleet.v1.Host with labels and facts
  state INTEGER NOT NULL,
  boot_id TEXT NOT NULL DEFAULT '',
  agent_version TEXT NOT NULL DEFAULT '',
  last_seen_ms INTEGER NOT NULL DEFAULT 0,
  registered_ms INTEGER NOT NULL,
  last_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  spec BLOB NOT NULL,            -- kfleet.v1.JobSpec
  state INTEGER NOT NULL,
  verdict INTEGER NOT NULL DEFAULT 0,
  submitter TEXT NOT NULL DEFAULT '',
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE commands (
  id TEXT PRIMARY KEY,
  job_id TEXT NOT NULL REFERENCES jobs(id),
  host_id TEXT NOT NULL REFERENCES hosts(id),
  step_index INTEGER NOT NULL,
  step BLOB NOT NULL,            -- kfleet.v1.Step
  state INTEGER NOT NULL,
  result BLOB,                   -- kfleet.v1.CommandResult
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  started_ms INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  stdout_bytes INTEGER NOT NULL DEFAULT 0,
  stderr_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX commands_by_host_state ON commands(host_id, state);
CREATE INDEX commands_by_job ON commands(job_id, step_index);
CREATE INDEX jobs_by_created ON jobs(created_ms);
)sql",
      // 2: guests, events; commands may wait for a host (host_id '') and keep the host's name.
      R"sql(
CREATE TABLE guests (
  name TEXT PRIMARY KEY,
  pool TEXT NOT NULL,
  meta BLOB NOT NULL             -- kfleet.v1.Guest
);
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  host_id TEXT NOT NULL,
  host_name TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  kind TEXT NOT NULL,
  message TEXT NOT NULL,
  command_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_by_host ON events(host_id, id);
ALTER TABLE commands ADD COLUMN host_name TEXT NOT NULL DEFAULT '';
UPDATE commands SET host_name = (SELECT name FROM hosts WHERE hosts.id = commands.host_id);
)sql",
      // 3: jobs that build a kernel once: their target hosts and, once built, the build.
      R"sql(
ALTER TABLE jobs ADD COLUMN targets TEXT NOT NULL DEFAULT '';  -- host ids, comma-separated
ALTER TABLE jobs ADD COLUMN build BLOB;                        -- kfleet.v1.KernelBuild
)sql",
      // 4: kernel events (OOM kills, oopses...) carry the kill and the report's lines.
      R"sql(
ALTER TABLE events ADD COLUMN oom BLOB;                        -- kfleet.v1.OomKill
ALTER TABLE events ADD COLUMN detail TEXT NOT NULL DEFAULT '';
CREATE INDEX events_by_kind ON events(kind, id);
)sql",
      // 5: test results, the queues of sharded test steps, expunge lists.
      R"sql(
CREATE TABLE test_results (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL,
  command_id TEXT NOT NULL,
  host_id TEXT NOT NULL,
  host_name TEXT NOT NULL,
  suite TEXT NOT NULL,
  section TEXT NOT NULL,
  name TEXT NOT NULL,
  run INTEGER NOT NULL,
  status INTEGER NOT NULL,       -- kfleet.v1.TestStatus
  duration_ms INTEGER NOT NULL,
  detail TEXT NOT NULL,
  build TEXT NOT NULL,           -- the job's build identity, else "uname:" and the release
  kernel_release TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  UNIQUE (command_id, suite, section, name, run)
);
CREATE INDEX test_results_by_job ON test_results(job_id, id);
CREATE INDEX test_results_by_test ON test_results(suite, section, name, id);
CREATE TABLE shard_steps (
  job_id TEXT NOT NULL,
  step_index INTEGER NOT NULL,
  listed INTEGER NOT NULL,       -- 0 no list yet, 1 a host is listing, 2 queue filled
  PRIMARY KEY (job_id, step_index)
);
CREATE TABLE shard_tests (
  job_id TEXT NOT NULL,
  step_index INTEGER NOT NULL,
  test TEXT NOT NULL,
  position INTEGER NOT NULL,     -- order in the list
  estimate_ms INTEGER NOT NULL,  -- from stored durations; -1 unknown
  state INTEGER NOT NULL DEFAULT 0,  -- 0 queued, 1 taken, 2 done
  command_id TEXT NOT NULL DEFAULT '',
  host_id TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (job_id, step_index, test)
);
CREATE TABLE shard_hosts (
  job_id TEXT NOT NULL,
  step_index INTEGER NOT NULL,
  host_id TEXT NOT NULL,
  state INTEGER NOT NULL,        -- 0 idle, 1 busy, 2 done, 3 lost
  PRIMARY KEY (job_id, step_index, host_id)
);
CREATE TABLE expunge_files (
  kernel TEXT NOT NULL,
  fs TEXT NOT NULL,
  section TEXT NOT NULL,
  content TEXT NOT NULL,         -- the file as imported
  PRIMARY KEY (kernel, fs, section)
);
CREATE TABLE expunges (
  kernel TEXT NOT NULL,
  fs TEXT NOT NULL,
  section TEXT NOT NULL,
  test TEXT NOT NULL,
  comment TEXT NOT NULL,
  PRIMARY KEY (kernel, fs, section, test)
);
)sql",
      // Schedules, their hosts and runs, and the runs' counters.
      ScheduleSchemaSql(),
      // Kernel events name their kmsg record (boot id, seq), stored once whichever agents on the
      // machine report it, and say whether it came before its agent first started.
      R"sql(
ALTER TABLE events ADD COLUMN before_agent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN boot_id TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN kmsg_seq INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX events_by_record ON events(boot_id, kmsg_seq)
  WHERE kmsg_seq > 0 AND boot_id != '';
)sql",
      // Events name the watched systemd unit they belong to (kfleet-agent --watch-units).
      R"sql(
ALTER TABLE events ADD COLUMN unit TEXT NOT NULL DEFAULT '';
)sql",
      // Whether a job still has an open command, asked at every command's end.
      R"sql(
CREATE INDEX commands_by_job_state ON commands(job_id, state);
)sql",
  };
  return *kMigrations;
}

bool IsTerminal(int64_t state) {
  return state == v1::COMMAND_FINISHED || state == v1::COMMAND_SKIPPED;
}

constexpr char kHostColumns[] =
    "id, name, meta, state, boot_id, agent_version, last_seen_ms, registered_ms";
constexpr char kCommandColumns[] =
    "c.id, c.host_id, COALESCE(h.name, c.host_name), c.step_index, c.step, c.state, c.result, "
    "c.cancel_requested, "
    "c.created_ms, c.started_ms, c.finished_ms, c.stdout_bytes, c.stderr_bytes, c.job_id";

Host HostFromRow(const Stmt& s) {
  Host h;
  h.ParseFromString(s.Blob(2));
  h.set_id(s.Text(0));
  h.set_name(s.Text(1));
  h.set_state(static_cast<v1::HostState>(s.Int(3)));
  h.set_boot_id(s.Text(4));
  h.set_agent_version(s.Text(5));
  h.set_last_seen_unix_ms(s.Int(6));
  h.set_registered_unix_ms(s.Int(7));
  return h;
}

CommandInfo CommandFromRow(const Stmt& s) {
  CommandInfo c;
  c.set_id(s.Text(0));
  c.set_host_id(s.Text(1));
  c.set_host_name(s.Text(2));
  c.set_step_index(static_cast<int32_t>(s.Int(3)));
  c.mutable_step()->ParseFromString(s.Blob(4));
  c.set_state(static_cast<CommandState>(s.Int(5)));
  if (!s.IsNull(6)) c.mutable_result()->ParseFromString(s.Blob(6));
  c.set_cancel_requested(s.Int(7) != 0);
  c.set_created_unix_ms(s.Int(8));
  c.set_started_unix_ms(s.Int(9));
  c.set_finished_unix_ms(s.Int(10));
  c.set_stdout_bytes(s.Int(11));
  c.set_stderr_bytes(s.Int(12));
  c.set_job_id(s.Text(13));
  return c;
}

// Whether a sharded test step ran nothing: its commands (each a few of its tests, run 1) passed
// with every test skipped, and the step does not say skips are expected. Each command passes
// on its own (TestReporter::Summarize); only the step as a whole can tell.
bool ShardedStepRanNothing(const std::vector<CommandInfo>& commands) {
  std::map<int32_t, std::pair<uint64_t, uint64_t>> counts;  // step index -> (ran, skipped)
  for (const CommandInfo& c : commands) {
    const v1::TestStep& t = c.step().test();
    if (!c.step().has_test() || t.shard() == 0 || t.list_only() || t.run() > 1 || t.skips_ok() ||
        c.state() != v1::COMMAND_FINISHED) {
      continue;
    }
    const v1::TestCounts& n = c.result().tests();
    std::pair<uint64_t, uint64_t>& step = counts[c.step_index()];
    step.first += n.passed() + n.failed() + n.errors();
    step.second += n.skipped();
  }
  for (const auto& [index, step] : counts) {
    if (step.first == 0 && step.second > 0) return true;
  }
  return false;
}

// The job's verdict from its commands: a cancelled job is CANCELLED; otherwise the most telling
// failure wins, so one failing host is never hidden behind others that passed; then NOTHING_RAN
// for a test step that only skipped, so that it never reads as a pass.
v1::Verdict JobVerdict(bool cancel_requested, const std::vector<CommandInfo>& commands) {
  if (cancel_requested) return v1::CANCELLED;
  for (v1::Verdict v :
       {v1::FAIL, v1::BOOT_FAILED, v1::TIMEOUT, v1::INFRA_ERROR, v1::CANCELLED, v1::NOTHING_RAN}) {
    for (const CommandInfo& c : commands) {
      if (c.state() == v1::COMMAND_FINISHED && c.result().verdict() == v) return v;
    }
  }
  if (ShardedStepRanNothing(commands)) return v1::NOTHING_RAN;
  return v1::PASS;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path) {
  ASSIGN_OR_RETURN(SqliteDb db, OpenSqlite(path));
  RETURN_IF_ERROR(Migrate(db.get(), Migrations()));
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(db)));
}

absl::StatusOr<Host> SqliteStore::LoadHost(const std::string& where, const std::string& arg) {
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), absl::StrCat("SELECT ", kHostColumns,
                                                                 " FROM hosts WHERE ", where)));
  s.Bind(1, arg);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) {
    return absl::NotFoundError(
        absl::StrCat("no host \"", arg, "\": `kctl hosts` lists the hosts the controller knows"));
  }
  Host h = HostFromRow(s);
  ASSIGN_OR_RETURN(
      Stmt running,
      Stmt::Prepare(db_.get(), "SELECT id FROM commands WHERE host_id = ?1 AND state IN (2, 3)"));
  running.Bind(1, h.id());
  while (true) {
    ASSIGN_OR_RETURN(bool more, running.Step());
    if (!more) break;
    h.add_running_command_ids(running.Text(0));
  }
  return h;
}

absl::StatusOr<Host> SqliteStore::RegisterHost(const v1::Hello& hello, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  return InTransaction([&]() -> absl::StatusOr<Host> {
    Host meta;
    *meta.mutable_labels() = hello.labels();
    *meta.mutable_facts() = hello.facts();
    meta.set_metrics_address(hello.metrics_address());
    std::string name = hello.name().empty() ? hello.facts().hostname() : hello.name();
    if (name.empty()) name = hello.host_id();

    // Someone else holding the name?
    ASSIGN_OR_RETURN(Stmt other, Stmt::Prepare(db_.get(),
                                               "SELECT id, state FROM hosts WHERE name = ?1 AND "
                                               "id != ?2"));
    other.Bind(1, name).Bind(2, hello.host_id());
    ASSIGN_OR_RETURN(bool taken, other.Step());
    if (taken) {
      std::string other_id = other.Text(0);
      if (other.Int(1) == v1::ONLINE) {
        return absl::AlreadyExistsError(absl::StrCat("host name \"", name,
                                                     "\" is already used by online host ", other_id,
                                                     ": start the agent with another --name"));
      }
      ASSIGN_OR_RETURN(Stmt rename,
                       Stmt::Prepare(db_.get(), "UPDATE hosts SET name = ?1 WHERE id = ?2"));
      rename.Bind(1, absl::StrCat(name, "~", other_id.substr(0, 10))).Bind(2, other_id);
      RETURN_IF_ERROR(rename.Run());
    }
    ASSIGN_OR_RETURN(Stmt up, Stmt::Prepare(db_.get(), R"sql(
INSERT INTO hosts (id, name, meta, state, boot_id, agent_version, last_seen_ms, registered_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
ON CONFLICT(id) DO UPDATE SET name = excluded.name, meta = excluded.meta, state = excluded.state,
  boot_id = excluded.boot_id, agent_version = excluded.agent_version,
  last_seen_ms = excluded.last_seen_ms)sql"));
    up.Bind(1, hello.host_id())
        .Bind(2, name)
        .BindBlob(3, meta.SerializeAsString())
        .Bind(4, int64_t{v1::ONLINE})
        .Bind(5, hello.boot_id())
        .Bind(6, hello.agent_version())
        .Bind(7, now_ms);
    RETURN_IF_ERROR(up.Run());
    return LoadHost("id = ?1", hello.host_id());
  });
}

absl::Status SqliteStore::SetHostState(const std::string& host_id, v1::HostState state,
                                       int64_t last_seen_ms) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(),
                                         "UPDATE hosts SET state = ?1, last_seen_ms = "
                                         "MAX(last_seen_ms, ?2) WHERE id = ?3"));
  s.Bind(1, int64_t{state}).Bind(2, last_seen_ms).Bind(3, host_id);
  return s.Run();
}

absl::Status SqliteStore::MarkAllOffline() {
  absl::MutexLock lock(&mu_);
  return Exec(db_.get(), absl::StrCat("UPDATE hosts SET state = ", int{v1::OFFLINE}));
}

absl::StatusOr<std::vector<Host>> SqliteStore::ListHosts() {
  absl::MutexLock lock(&mu_);
  std::vector<Host> hosts;
  ASSIGN_OR_RETURN(Stmt ids, Stmt::Prepare(db_.get(), "SELECT id FROM hosts ORDER BY name"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, ids.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(Host h, LoadHost("id = ?1", ids.Text(0)));
    hosts.push_back(std::move(h));
  }
  return hosts;
}

absl::StatusOr<Host> SqliteStore::GetHost(const std::string& name_or_id) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Host> h = LoadHost("name = ?1", name_or_id);
  if (absl::IsNotFound(h.status())) return LoadHost("id = ?1", name_or_id);
  return h;
}

absl::StatusOr<uint64_t> SqliteStore::LastSeq(const std::string& host_id) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<uint64_t> last = LastSeqLocked(host_id);
  if (absl::IsNotFound(last.status())) return 0;
  return last;
}

absl::StatusOr<v1::Command> SqliteStore::InsertCommand(const std::string& job_id,
                                                       const std::string& host_id, int step_index,
                                                       const v1::Step& step, v1::CommandState state,
                                                       int64_t now_ms) {
  v1::Command cmd;
  cmd.set_command_id(NewId("c-"));
  cmd.set_job_id(job_id);
  if (step.has_test() && state == v1::COMMAND_PENDING) {
    ASSIGN_OR_RETURN(*cmd.mutable_step(), PrepareTestStep(step));
  } else {
    *cmd.mutable_step() = step;
  }
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), R"sql(
INSERT INTO commands (id, job_id, host_id, step_index, step, state, created_ms, host_name)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, COALESCE((SELECT name FROM hosts WHERE id = ?3), '')))sql"));
  s.Bind(1, cmd.command_id())
      .Bind(2, job_id)
      .Bind(3, host_id)
      .Bind(4, int64_t{step_index})
      .BindBlob(5, cmd.step().SerializeAsString())
      .Bind(6, int64_t{state})
      .Bind(7, now_ms);
  RETURN_IF_ERROR(s.Run());
  return cmd;
}

absl::StatusOr<std::pair<Job, std::vector<Dispatch>>> SqliteStore::CreateJob(
    const v1::JobSpec& spec, const std::vector<std::string>& host_ids, const std::string& submitter,
    int64_t now_ms, const std::string& builder_host_id) {
  if (spec.steps().empty()) return absl::InvalidArgumentError("a job needs at least one step");
  int waiting = static_cast<int>(spec.hosts().count());
  if (host_ids.empty() && waiting == 0) {
    return absl::InvalidArgumentError("a job needs at least one host");
  }
  if (BuildsOnce(spec) && builder_host_id.empty()) {
    return absl::InvalidArgumentError("a job with a kernel_build step needs a builder host");
  }
  absl::MutexLock lock(&mu_);
  return InTransaction([&]() -> absl::StatusOr<std::pair<Job, std::vector<Dispatch>>> {
    std::string job_id = NewId("j-");
    ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), R"sql(
INSERT INTO jobs (id, name, spec, state, submitter, created_ms, targets)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7))sql"));
    s.Bind(1, job_id)
        .Bind(2, spec.name())
        .BindBlob(3, spec.SerializeAsString())
        .Bind(4, int64_t{v1::JOB_RUNNING})
        .Bind(5, submitter)
        .Bind(6, now_ms)
        .Bind(7, absl::StrJoin(host_ids, ","));
    RETURN_IF_ERROR(s.Run());
    std::vector<Dispatch> dispatch;
    if (BuildsOnce(spec)) {
      // The build first, once; the targets' commands come when it has passed (FinishLocked).
      ASSIGN_OR_RETURN(v1::Command cmd, InsertCommand(job_id, builder_host_id, 0,
                                                      FillStep(spec, 0, nullptr, nullptr),
                                                      v1::COMMAND_PENDING, now_ms));
      dispatch.push_back({builder_host_id, std::move(cmd)});
      ASSIGN_OR_RETURN(Job job, LoadJob(job_id));
      return std::make_pair(std::move(job), std::move(dispatch));
    }
    // A selector with a count makes commands that wait for hosts (AssignWaiting gives them some).
    for (int i = 0; i < waiting; ++i) {
      RETURN_IF_ERROR(
          InsertCommand(job_id, "", 0, spec.steps(0), v1::COMMAND_PENDING, now_ms).status());
    }
    ApplyOutcome started;
    for (const std::string& host_id : waiting > 0 ? std::vector<std::string>() : host_ids) {
      RETURN_IF_ERROR(StartStep(job_id, spec, host_id, 0, spec.steps(0), now_ms, &started));
    }
    dispatch = std::move(started.dispatch);
    ASSIGN_OR_RETURN(Job job, LoadJob(job_id));
    return std::make_pair(std::move(job), std::move(dispatch));
  });
}

absl::StatusOr<std::vector<CommandInfo>> SqliteStore::LoadCommands(const std::string& where,
                                                                   const std::string& arg) {
  ASSIGN_OR_RETURN(
      Stmt s, Stmt::Prepare(db_.get(),
                            absl::StrCat("SELECT ", kCommandColumns,
                                         " FROM commands c LEFT JOIN hosts h "
                                         "ON h.id = c.host_id WHERE ",
                                         where, " ORDER BY 3, c.step_index, c.created_ms, c.id")));
  s.Bind(1, arg);
  std::vector<CommandInfo> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(CommandFromRow(s));
  }
  return out;
}

absl::StatusOr<Job> SqliteStore::LoadJob(const std::string& job_id) {
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), R"sql(
SELECT id, spec, state, verdict, submitter, created_ms, finished_ms, build FROM jobs WHERE id = ?1)sql"));
  s.Bind(1, job_id);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) {
    return absl::NotFoundError(
        absl::StrCat("no job \"", job_id, "\": `kctl jobs` lists the recent jobs"));
  }
  Job job;
  job.set_id(s.Text(0));
  job.mutable_spec()->ParseFromString(s.Blob(1));
  job.set_state(static_cast<v1::JobState>(s.Int(2)));
  job.set_verdict(static_cast<v1::Verdict>(s.Int(3)));
  job.set_submitter(s.Text(4));
  job.set_created_unix_ms(s.Int(5));
  job.set_finished_unix_ms(s.Int(6));
  if (!s.IsNull(7)) job.mutable_build()->ParseFromString(s.Blob(7));
  ASSIGN_OR_RETURN(std::vector<CommandInfo> commands, LoadCommands("c.job_id = ?1", job_id));
  for (CommandInfo& c : commands) *job.add_commands() = std::move(c);
  for (const v1::Step& step : job.spec().steps()) {
    if (!step.has_test()) continue;
    ASSIGN_OR_RETURN(*job.mutable_tests(), LoadTestProgress(job));
    break;
  }
  return job;
}

absl::StatusOr<Job> SqliteStore::GetJob(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  return LoadJob(job_id);
}

absl::StatusOr<std::vector<Job>> SqliteStore::ListJobs(int limit) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(),
                                         "SELECT id FROM jobs ORDER BY created_ms DESC, id LIMIT "
                                         "?1"));
  s.Bind(1, int64_t{limit});
  std::vector<Job> jobs;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(Job job, LoadJob(s.Text(0)));
    jobs.push_back(std::move(job));
  }
  return jobs;
}

absl::StatusOr<CommandInfo> SqliteStore::GetCommand(const std::string& command_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::vector<CommandInfo> found, LoadCommands("c.id = ?1", command_id));
  if (found.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no command \"", command_id, "\": `kctl job JOB` lists a job's commands"));
  }
  return found[0];
}

absl::StatusOr<std::vector<v1::Command>> SqliteStore::PendingCommands(const std::string& host_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), R"sql(
SELECT id, job_id, step FROM commands WHERE host_id = ?1 AND state = ?2 AND cancel_requested = 0
ORDER BY created_ms)sql"));
  s.Bind(1, host_id).Bind(2, int64_t{v1::COMMAND_PENDING});
  std::vector<v1::Command> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    v1::Command c;
    c.set_command_id(s.Text(0));
    c.set_job_id(s.Text(1));
    c.mutable_step()->ParseFromString(s.Blob(2));
    if (!RunsOnController(c.step())) out.push_back(std::move(c));
  }
  return out;
}

absl::StatusOr<std::vector<CancelOrder>> SqliteStore::PendingCancels(const std::string& host_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), R"sql(
SELECT id FROM commands WHERE host_id = ?1 AND state IN (2, 3) AND cancel_requested = 1)sql"));
  s.Bind(1, host_id);
  std::vector<CancelOrder> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back({host_id, s.Text(0), "job cancelled"});
  }
  return out;
}

absl::StatusOr<StoreStateCounts> SqliteStore::CountStates() {
  absl::MutexLock lock(&mu_);
  StoreStateCounts counts;
  for (bool jobs : {false, true}) {
    ASSIGN_OR_RETURN(
        Stmt s,
        Stmt::Prepare(db_.get(), jobs ? "SELECT state, COUNT(*) FROM jobs GROUP BY state"
                                      : "SELECT state, COUNT(*) FROM commands GROUP BY state"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      int state = static_cast<int>(s.Int(0));
      std::string name =
          jobs ? (v1::JobState_IsValid(state) ? v1::JobState_Name(static_cast<v1::JobState>(state))
                                              : "unknown")
               : (v1::CommandState_IsValid(state)
                      ? v1::CommandState_Name(static_cast<v1::CommandState>(state))
                      : "unknown");
      // COMMAND_PENDING -> pending, JOB_RUNNING -> running
      size_t us = name.find('_');
      if (us != std::string::npos) name = name.substr(us + 1);
      (jobs ? counts.jobs : counts.commands)[absl::AsciiStrToLower(name)] += s.Int(1);
    }
  }
  return counts;
}

absl::StatusOr<std::string> SqliteStore::CommandHost(const std::string& command_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), "SELECT host_id FROM commands WHERE id = ?1"));
  s.Bind(1, command_id);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("no command \"", command_id, "\""));
  return s.Text(0);
}

absl::StatusOr<bool> SqliteStore::MaybeFinishJob(const std::string& job_id, int64_t now_ms) {
  ASSIGN_OR_RETURN(
      Stmt st, Stmt::Prepare(db_.get(), "SELECT state, cancel_requested FROM jobs WHERE id = ?1"));
  st.Bind(1, job_id);
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row || st.Int(0) == v1::JOB_DONE) return false;
  bool cancel_requested = st.Int(1) != 0;
  // Asked at every command's end: the index answers whether one is still open without reading
  // the job's commands, which are loaded only when the job is done (a job of N commands would
  // otherwise cost O(N^2) as its results arrive).
  ASSIGN_OR_RETURN(Stmt open, Stmt::Prepare(db_.get(), R"sql(
SELECT 1 FROM commands WHERE job_id = ?1 AND state NOT IN (?2, ?3) LIMIT 1)sql"));
  open.Bind(1, job_id).Bind(2, int64_t{v1::COMMAND_FINISHED}).Bind(3, int64_t{v1::COMMAND_SKIPPED});
  ASSIGN_OR_RETURN(bool still_open, open.Step());
  if (still_open) return false;
  ASSIGN_OR_RETURN(std::vector<CommandInfo> commands, LoadCommands("c.job_id = ?1", job_id));
  for (const CommandInfo& c : commands) {
    if (!IsTerminal(c.state())) return false;
  }
  ASSIGN_OR_RETURN(Stmt up, Stmt::Prepare(db_.get(),
                                          "UPDATE jobs SET state = ?1, verdict = ?2, finished_ms "
                                          "= ?3 WHERE id = ?4"));
  up.Bind(1, int64_t{v1::JOB_DONE})
      .Bind(2, int64_t{JobVerdict(cancel_requested, commands)})
      .Bind(3, now_ms)
      .Bind(4, job_id);
  RETURN_IF_ERROR(up.Run());
  return true;
}

absl::Status SqliteStore::ApplyOne(const std::string& host_id, const v1::SequencedItem& item,
                                   int64_t now_ms, ApplyOutcome* outcome) {
  std::string command_id;
  switch (item.item_case()) {
    case v1::SequencedItem::kAccepted:
      command_id = item.accepted().command_id();
      break;
    case v1::SequencedItem::kStarted:
      command_id = item.started().command_id();
      break;
    case v1::SequencedItem::kFinished:
      command_id = item.finished().command_id();
      break;
    case v1::SequencedItem::kKernelEvent:
      return AddKernelEventLocked(host_id, item.kernel_event(), outcome);
    case v1::SequencedItem::kTestResult:
      return AddTestResultLocked(host_id, item.test_result(), now_ms, outcome);
    case v1::SequencedItem::kScheduleRun: {
      // Normally stored already (StartScheduleRuns, before the batch's logs): then a no-op.
      ScheduleRunsOutcome runs;
      return StartScheduleRunLocked(host_id, item.schedule_run(), now_ms, &runs);
    }
    default:
      return absl::OkStatus();  // a newer agent's item kind: nothing to do with it here
  }
  ASSIGN_OR_RETURN(Stmt get, Stmt::Prepare(db_.get(), R"sql(
SELECT c.state, c.cancel_requested, j.cancel_requested, c.created_ms
FROM commands c JOIN jobs j ON j.id = c.job_id WHERE c.id = ?1 AND c.host_id = ?2)sql"));
  get.Bind(1, command_id).Bind(2, host_id);
  ASSIGN_OR_RETURN(bool row, get.Step());
  if (!row) return absl::OkStatus();  // not this host's command: ignored, never applied
  int64_t state = get.Int(0);
  bool cancel_requested = get.Int(1) != 0 || get.Int(2) != 0;

  if (item.has_accepted() || item.has_started()) {
    if (IsTerminal(state)) {
      // Cancelled while the command was on its way: tell the agent to stop it.
      if (cancel_requested) outcome->cancels.push_back({host_id, command_id, "job cancelled"});
      return absl::OkStatus();
    }
    int64_t next = item.has_started() ? v1::COMMAND_RUNNING : v1::COMMAND_ACCEPTED;
    if (next < state) return absl::OkStatus();
    if (item.has_accepted() && state == v1::COMMAND_PENDING) {
      outcome->dispatch_latency_ms.push_back(now_ms - get.Int(3));
    }
    ASSIGN_OR_RETURN(Stmt up, Stmt::Prepare(db_.get(), R"sql(
UPDATE commands SET state = ?1, started_ms = CASE WHEN ?1 = 3 THEN ?2 ELSE started_ms END
WHERE id = ?3)sql"));
    up.Bind(1, next).Bind(2, now_ms).Bind(3, command_id);
    RETURN_IF_ERROR(up.Run());
    if (cancel_requested) outcome->cancels.push_back({host_id, command_id, "job cancelled"});
    return absl::OkStatus();
  }

  // Finished.
  if (IsTerminal(state)) return absl::OkStatus();
  return FinishLocked(command_id, item.finished(), now_ms, outcome);
}

absl::Status SqliteStore::FinishLocked(const std::string& command_id,
                                       const v1::CommandFinished& fin, int64_t now_ms,
                                       ApplyOutcome* outcome) {
  ASSIGN_OR_RETURN(Stmt get, Stmt::Prepare(db_.get(), R"sql(
SELECT c.state, c.cancel_requested, c.job_id, c.step_index, j.spec, j.cancel_requested, c.host_id,
  c.step
FROM commands c JOIN jobs j ON j.id = c.job_id WHERE c.id = ?1)sql"));
  get.Bind(1, command_id);
  ASSIGN_OR_RETURN(bool row, get.Step());
  if (!row || IsTerminal(get.Int(0))) return absl::OkStatus();
  bool cancel_requested = get.Int(1) != 0 || get.Int(5) != 0;
  std::string job_id = get.Text(2);
  int step_index = static_cast<int>(get.Int(3));
  v1::JobSpec spec;
  spec.ParseFromString(get.Blob(4));
  std::string host_id = get.Text(6);
  v1::Step step;
  step.ParseFromString(get.Blob(7));
  ASSIGN_OR_RETURN(Stmt up, Stmt::Prepare(db_.get(), R"sql(
UPDATE commands SET state = ?1, result = ?2, finished_ms = ?3, stdout_bytes = ?4, stderr_bytes = ?5
WHERE id = ?6)sql"));
  up.Bind(1, int64_t{v1::COMMAND_FINISHED})
      .BindBlob(2, fin.result().SerializeAsString())
      .Bind(3, now_ms)
      .Bind(4, static_cast<int64_t>(fin.stdout_bytes()))
      .Bind(5, static_cast<int64_t>(fin.stderr_bytes()))
      .Bind(6, command_id);
  RETURN_IF_ERROR(up.Run());
  RETURN_IF_ERROR(ScheduleRunEndedLocked(command_id, fin.result()));
  // Failed or skipped tests do not stop a host's later steps (more suites, say); anything else
  // does.
  v1::Verdict verdict = fin.result().verdict();
  bool go_on = (verdict == v1::PASS ||
                (step.has_test() && (verdict == v1::FAIL || verdict == v1::NOTHING_RAN))) &&
               !cancel_requested;
  bool handled = false;
  if (step.has_test()) {
    ASSIGN_OR_RETURN(handled, TestCommandEnded(command_id, job_id, spec, host_id, step_index, step,
                                               fin.result(), go_on, now_ms, outcome));
  }
  if (handled) {
    // The test step goes on (re-runs, the next test of a shard) or ended there.
  } else if (BuildsOnce(spec) && step_index == 0) {
    RETURN_IF_ERROR(
        FanOut(job_id, spec, go_on ? &fin.result().kernel() : nullptr, now_ms, outcome));
  } else if (step_index + 1 < spec.steps_size()) {
    RETURN_IF_ERROR(NextStep(job_id, spec, host_id, step_index + 1, go_on, now_ms, outcome));
  }
  ASSIGN_OR_RETURN(bool done, MaybeFinishJob(job_id, now_ms));
  if (done) outcome->finished_jobs.push_back(job_id);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::KernelBuild>> SqliteStore::JobBuild(const std::string& job_id) {
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), "SELECT build FROM jobs WHERE id = ?1"));
  s.Bind(1, job_id);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row || s.IsNull(0)) return std::nullopt;
  v1::KernelBuild build;
  build.ParseFromString(s.Blob(0));
  return build;
}

absl::Status SqliteStore::NextStep(const std::string& job_id, const v1::JobSpec& spec,
                                   const std::string& host_id, int index, bool go_on,
                                   int64_t now_ms, ApplyOutcome* outcome) {
  if (!go_on) {
    for (int i = index; i < spec.steps_size(); ++i) {
      RETURN_IF_ERROR(
          InsertCommand(job_id, host_id, i, spec.steps(i), v1::COMMAND_SKIPPED, now_ms).status());
    }
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::optional<v1::KernelBuild> build, JobBuild(job_id));
  absl::StatusOr<Host> host = LoadHost("id = ?1", host_id);
  v1::Step step = FillStep(spec, index, build ? &*build : nullptr, host.ok() ? &*host : nullptr);
  return StartStep(job_id, spec, host_id, index, step, now_ms, outcome);
}

absl::Status SqliteStore::FanOut(const std::string& job_id, const v1::JobSpec& spec,
                                 const v1::KernelBuild* build, int64_t now_ms,
                                 ApplyOutcome* outcome) {
  if (build != nullptr) {
    ASSIGN_OR_RETURN(Stmt up, Stmt::Prepare(db_.get(), "UPDATE jobs SET build = ?1 WHERE id = ?2"));
    up.BindBlob(1, build->SerializeAsString()).Bind(2, job_id);
    RETURN_IF_ERROR(up.Run());
  }
  if (spec.steps_size() < 2) return absl::OkStatus();
  ASSIGN_OR_RETURN(Stmt get, Stmt::Prepare(db_.get(), "SELECT targets FROM jobs WHERE id = ?1"));
  get.Bind(1, job_id);
  ASSIGN_OR_RETURN(bool row, get.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("no job ", job_id));
  std::vector<std::string> targets = absl::StrSplit(get.Text(0), ',', absl::SkipEmpty());
  // A selector with a count: commands that wait for hosts (AssignWaiting gives them some).
  for (uint32_t i = 0; i < spec.hosts().count(); ++i) targets.push_back("");
  for (const std::string& target : targets) {
    if (build == nullptr) {
      for (int i = 1; i < spec.steps_size(); ++i) {
        RETURN_IF_ERROR(
            InsertCommand(job_id, target, i, spec.steps(i), v1::COMMAND_SKIPPED, now_ms).status());
      }
      continue;
    }
    absl::StatusOr<Host> host = LoadHost("id = ?1", target);
    v1::Step step = FillStep(spec, 1, build, host.ok() ? &*host : nullptr);
    if (target.empty()) {
      RETURN_IF_ERROR(InsertCommand(job_id, "", 1, step, v1::COMMAND_PENDING, now_ms).status());
    } else {
      RETURN_IF_ERROR(StartStep(job_id, spec, target, 1, step, now_ms, outcome));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> SqliteStore::LastSeqLocked(const std::string& host_id) {
  ASSIGN_OR_RETURN(Stmt get, Stmt::Prepare(db_.get(), "SELECT last_seq FROM hosts WHERE id = ?1"));
  get.Bind(1, host_id);
  ASSIGN_OR_RETURN(bool row, get.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("no host ", host_id));
  return static_cast<uint64_t>(get.Int(0));
}

absl::StatusOr<ApplyOutcome> SqliteStore::ApplySequenced(
    const std::string& host_id, const std::vector<v1::SequencedItem>& items, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  return InTransaction([&]() -> absl::StatusOr<ApplyOutcome> {
    ApplyOutcome outcome;
    ASSIGN_OR_RETURN(uint64_t last, LastSeqLocked(host_id));
    for (const v1::SequencedItem& item : items) {
      if (item.seq() <= last) {
        ++outcome.skipped_items;
        continue;
      }
      RETURN_IF_ERROR(ApplyOne(host_id, item, now_ms, &outcome));
      last = item.seq();
    }
    ASSIGN_OR_RETURN(Stmt up, Stmt::Prepare(db_.get(),
                                            "UPDATE hosts SET last_seq = ?1 WHERE id = "
                                            "?2"));
    up.Bind(1, static_cast<int64_t>(last)).Bind(2, host_id);
    RETURN_IF_ERROR(up.Run());
    outcome.last_seq = last;
    return outcome;
  });
}

absl::StatusOr<CancelOutcome> SqliteStore::CancelJob(const std::string& job_id, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  return InTransaction([&]() -> absl::StatusOr<CancelOutcome> {
    ASSIGN_OR_RETURN(Job job, LoadJob(job_id));
    if (job.state() == v1::JOB_DONE) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", job_id, " already ended (", v1::Verdict_Name(job.verdict()), ")"));
    }
    ASSIGN_OR_RETURN(
        Stmt mark, Stmt::Prepare(db_.get(), "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1"));
    mark.Bind(1, job_id);
    RETURN_IF_ERROR(mark.Run());
    CancelOutcome outcome;
    v1::CommandResult cancelled;
    cancelled.set_verdict(v1::CANCELLED);
    cancelled.set_cancelled(true);
    cancelled.set_exit_code(-1);
    cancelled.set_detail("cancelled before it started");
    for (const CommandInfo& c : job.commands()) {
      if (c.state() == v1::COMMAND_PENDING) {
        ASSIGN_OR_RETURN(Stmt up, Stmt::Prepare(db_.get(), R"sql(
UPDATE commands SET state = ?1, result = ?2, finished_ms = ?3, cancel_requested = 1 WHERE id = ?4)sql"));
        up.Bind(1, int64_t{v1::COMMAND_FINISHED})
            .BindBlob(2, cancelled.SerializeAsString())
            .Bind(3, now_ms)
            .Bind(4, c.id());
        RETURN_IF_ERROR(up.Run());
      } else if (!IsTerminal(c.state())) {
        ASSIGN_OR_RETURN(Stmt up, Stmt::Prepare(db_.get(),
                                                "UPDATE commands SET cancel_requested "
                                                "= 1 WHERE id = ?1"));
        up.Bind(1, c.id());
        RETURN_IF_ERROR(up.Run());
        outcome.cancels.push_back({c.host_id(), c.id(), "job cancelled"});
      }
    }
    RETURN_IF_ERROR(MaybeFinishJob(job_id, now_ms).status());
    ASSIGN_OR_RETURN(outcome.job, LoadJob(job_id));
    return outcome;
  });
}

}  // namespace kfleet::controller
