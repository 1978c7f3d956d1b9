// SqliteStore: test results, re-runs of failures, sharded test steps, test progress, expunges
// (DESIGN.md, "Tests and results").
#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "controller/store/sqlite_store.h"
#include "controller/store/step_fill.h"

namespace kfleet::controller {
namespace {

constexpr uint32_t kDefaultReruns = 2;
constexpr int kHistoryRuns = 20;  // newest runs of a test its duration estimate looks at

enum ShardHostState { kIdle = 0, kBusy = 1, kDone = 2, kLost = 3 };
enum ShardListState { kNotListed = 0, kListing = 1, kListed = 2 };
enum ShardTestState { kQueued = 0, kTaken = 1, kFinished = 2 };

uint32_t Reruns(const v1::TestStep& t) { return t.has_reruns() ? t.reruns() : kDefaultReruns; }

uint32_t Run(const v1::TestStep& t) { return t.run() == 0 ? 1 : t.run(); }

constexpr char kResultColumns[] =
    "suite, section, name, run, status, duration_ms, detail, job_id, command_id, host_id, "
    "host_name, build, kernel_release, time_ms";

v1::TestRecord RecordFromRow(const Stmt& s) {
  v1::TestRecord rec;
  v1::TestResult* r = rec.mutable_result();
  r->set_suite(s.Text(0));
  r->set_section(s.Text(1));
  r->set_name(s.Text(2));
  r->set_run(static_cast<uint32_t>(s.Int(3)));
  r->set_status(static_cast<v1::TestStatus>(s.Int(4)));
  r->set_duration_ms(s.Int(5));
  r->set_detail(s.Text(6));
  rec.set_job_id(s.Text(7));
  rec.set_command_id(s.Text(8));
  rec.set_host_id(s.Text(9));
  rec.set_host_name(s.Text(10));
  rec.set_build(s.Text(11));
  rec.set_kernel_release(s.Text(12));
  rec.set_time_unix_ms(s.Int(13));
  return rec;
}

}  // namespace

absl::Status SqliteStore::InsertResultLocked(const std::string& command_id, const v1::TestResult& r,
                                             int64_t now_ms, ApplyOutcome* outcome) {
  // The kernel the test ran on: the job's build, else what the host runs.
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), R"sql(
INSERT OR IGNORE INTO test_results (job_id, command_id, host_id, host_name, suite, section, name,
  run, status, duration_ms, detail, build, kernel_release, time_ms)
SELECT c.job_id, c.id, c.host_id, COALESCE(h.name, c.host_name), ?2, ?3, ?4, ?5, ?6, ?7, ?8,
  '', '', ?9
FROM commands c LEFT JOIN hosts h ON h.id = c.host_id WHERE c.id = ?1)sql"));
  s.Bind(1, command_id)
      .Bind(2, r.suite())
      .Bind(3, r.section())
      .Bind(4, r.name())
      .Bind(5, int64_t{r.run() == 0 ? 1 : r.run()})
      .Bind(6, int64_t{r.status()})
      .Bind(7, r.duration_ms())
      .Bind(8, r.detail())
      .Bind(9, now_ms);
  RETURN_IF_ERROR(s.Run());
  if (sqlite3_changes(db_.get()) == 0) return absl::OkStatus();
  int64_t id = sqlite3_last_insert_rowid(db_.get());
  outcome->test_results.push_back({r.suite(), r.status()});
  // Build identity and release: from the job's build and the host's facts.
  ASSIGN_OR_RETURN(Stmt get, Stmt::Prepare(db_.get(), R"sql(
SELECT j.build, h.meta FROM commands c JOIN jobs j ON j.id = c.job_id
LEFT JOIN hosts h ON h.id = c.host_id WHERE c.id = ?1)sql"));
  get.Bind(1, command_id);
  ASSIGN_OR_RETURN(bool row, get.Step());
  if (!row) return absl::OkStatus();
  v1::KernelBuild build;
  if (!get.IsNull(0)) build.ParseFromString(get.Blob(0));
  v1::Host host;
  if (!get.IsNull(1)) host.ParseFromString(get.Blob(1));
  std::string release = host.facts().kernel_release();
  std::string identity = build.identity();
  // A host still on another kernel (a job without kernel_install) did not test the build.
  if (!identity.empty() && !build.release().empty() && release != build.release()) identity = "";
  ASSIGN_OR_RETURN(Stmt up, Stmt::Prepare(db_.get(),
                                          "UPDATE test_results SET build = ?1, kernel_release = "
                                          "?2 WHERE id = ?3"));
  up.Bind(1, identity.empty() ? absl::StrCat("uname:", release) : identity)
      .Bind(2, release)
      .Bind(3, id);
  return up.Run();
}

absl::Status SqliteStore::AddTestResultLocked(const std::string& host_id,
                                              const v1::TestResultReport& report, int64_t now_ms,
                                              ApplyOutcome* outcome) {
  ASSIGN_OR_RETURN(
      Stmt own, Stmt::Prepare(db_.get(), "SELECT 1 FROM commands WHERE id = ?1 AND host_id = ?2"));
  own.Bind(1, report.command_id()).Bind(2, host_id);
  ASSIGN_OR_RETURN(bool row, own.Step());
  if (!row) return absl::OkStatus();  // not this host's command: ignored
  return InsertResultLocked(report.command_id(), report.result(), now_ms, outcome);
}

absl::StatusOr<v1::Step> SqliteStore::PrepareTestStep(v1::Step step) {
  v1::TestStep* t = step.mutable_test();
  if (t->run() == 0) t->set_run(1);
  const std::string& from = t->fstests().expunge_from();
  if (from.empty() || t->run() > 1) return step;
  std::vector<std::string> parts = absl::StrSplit(from, absl::MaxSplits('/', 1));
  if (parts.size() != 2) return step;  // refused at submission (fleet_service.cc)
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), R"sql(
SELECT test FROM expunges WHERE kernel = ?1 AND fs = ?2 AND section = ?3 ORDER BY test)sql"));
  s.Bind(1, parts[0]).Bind(2, parts[1]).Bind(3, t->section());
  std::set<std::string> have(t->fstests().expunge().begin(), t->fstests().expunge().end());
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    if (have.insert(s.Text(0)).second) t->mutable_fstests()->add_expunge(s.Text(0));
  }
  return step;
}

absl::Status SqliteStore::StartStep(const std::string& job_id, const v1::JobSpec& spec,
                                    const std::string& host_id, int index, const v1::Step& step,
                                    int64_t now_ms, ApplyOutcome* outcome) {
  if (!step.has_test() || step.test().shard() == 0) {
    ASSIGN_OR_RETURN(v1::Command cmd,
                     InsertCommand(job_id, host_id, index, step, v1::COMMAND_PENDING, now_ms));
    outcome->dispatch.push_back({host_id, std::move(cmd)});
    return absl::OkStatus();
  }
  // The first host to reach a sharded step makes its queue: the step's tests, or a listing.
  ASSIGN_OR_RETURN(Stmt has, Stmt::Prepare(db_.get(),
                                           "SELECT 1 FROM shard_steps WHERE job_id = ?1 AND "
                                           "step_index = ?2"));
  has.Bind(1, job_id).Bind(2, int64_t{index});
  ASSIGN_OR_RETURN(bool exists, has.Step());
  if (!exists) {
    const v1::TestStep& t = step.test();
    ASSIGN_OR_RETURN(Stmt add, Stmt::Prepare(db_.get(),
                                             "INSERT INTO shard_steps (job_id, step_index, listed) "
                                             "VALUES (?1, ?2, ?3)"));
    add.Bind(1, job_id)
        .Bind(2, int64_t{index})
        .Bind(3, int64_t{t.tests().empty() ? kNotListed : kListed});
    RETURN_IF_ERROR(add.Run());
    if (!t.tests().empty()) {
      std::vector<std::string> tests(t.tests().begin(), t.tests().end());
      RETURN_IF_ERROR(FillShardQueue(job_id, index, t, tests));
    }
  }
  ASSIGN_OR_RETURN(Stmt join, Stmt::Prepare(db_.get(), R"sql(
INSERT OR IGNORE INTO shard_hosts (job_id, step_index, host_id, state) VALUES (?1, ?2, ?3, 0))sql"));
  join.Bind(1, job_id).Bind(2, int64_t{index}).Bind(3, host_id);
  RETURN_IF_ERROR(join.Run());
  return ShardPull(job_id, spec, index, now_ms, outcome);
}

absl::Status SqliteStore::FillShardQueue(const std::string& job_id, int index,
                                         const v1::TestStep& t,
                                         const std::vector<std::string>& tests) {
  // Each test's expected duration: the mean of its newest stored runs that ran to an end.
  ASSIGN_OR_RETURN(Stmt est, Stmt::Prepare(db_.get(), R"sql(
SELECT AVG(duration_ms) FROM (SELECT duration_ms FROM test_results
  WHERE suite = ?1 AND section = ?2 AND name = ?3 AND duration_ms >= 0 AND status IN (1, 2)
  ORDER BY id DESC LIMIT ?4))sql"));
  ASSIGN_OR_RETURN(Stmt add, Stmt::Prepare(db_.get(), R"sql(
INSERT OR IGNORE INTO shard_tests (job_id, step_index, test, position, estimate_ms)
VALUES (?1, ?2, ?3, ?4, ?5))sql"));
  int64_t position = 0;
  for (const std::string& test : tests) {
    est.Reset();
    est.Bind(1, t.suite()).Bind(2, t.section()).Bind(3, test).Bind(4, int64_t{kHistoryRuns});
    ASSIGN_OR_RETURN(bool row, est.Step());
    int64_t estimate = row && !est.IsNull(0) ? est.Int(0) : -1;
    add.Reset();
    add.Bind(1, job_id).Bind(2, int64_t{index}).Bind(3, test).Bind(4, position++).Bind(5, estimate);
    RETURN_IF_ERROR(add.Run());
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::SetShardHost(const std::string& job_id, int index,
                                       const std::string& host_id, int state) {
  ASSIGN_OR_RETURN(Stmt up, Stmt::Prepare(db_.get(), R"sql(
UPDATE shard_hosts SET state = ?4 WHERE job_id = ?1 AND step_index = ?2 AND host_id = ?3)sql"));
  up.Bind(1, job_id).Bind(2, int64_t{index}).Bind(3, host_id).Bind(4, int64_t{state});
  return up.Run();
}

absl::Status SqliteStore::ShardPull(const std::string& job_id, const v1::JobSpec& spec, int index,
                                    int64_t now_ms, ApplyOutcome* outcome) {
  ASSIGN_OR_RETURN(Stmt listed_q, Stmt::Prepare(db_.get(),
                                                "SELECT listed FROM shard_steps WHERE job_id = ?1 "
                                                "AND step_index = ?2"));
  listed_q.Bind(1, job_id).Bind(2, int64_t{index});
  ASSIGN_OR_RETURN(bool row, listed_q.Step());
  if (!row) return absl::OkStatus();
  int64_t listed = listed_q.Int(0);
  ASSIGN_OR_RETURN(Stmt hosts_q, Stmt::Prepare(db_.get(), R"sql(
SELECT host_id, state FROM shard_hosts WHERE job_id = ?1 AND step_index = ?2 ORDER BY host_id)sql"));
  hosts_q.Bind(1, job_id).Bind(2, int64_t{index});
  std::vector<std::string> idle;
  int active = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool more, hosts_q.Step());
    if (!more) break;
    if (hosts_q.Int(1) == kIdle) idle.push_back(hosts_q.Text(0));
    if (hosts_q.Int(1) == kIdle || hosts_q.Int(1) == kBusy) ++active;
  }
  ASSIGN_OR_RETURN(Stmt cancel_q,
                   Stmt::Prepare(db_.get(), "SELECT cancel_requested FROM jobs WHERE id = ?1"));
  cancel_q.Bind(1, job_id);
  ASSIGN_OR_RETURN(bool job_row, cancel_q.Step());
  bool cancelled = job_row && cancel_q.Int(0) != 0;
  ASSIGN_OR_RETURN(std::optional<v1::KernelBuild> build, JobBuild(job_id));
  auto step_for = [&](const std::string& host_id) {
    absl::StatusOr<v1::Host> host = LoadHost("id = ?1", host_id);
    return FillStep(spec, index, build ? &*build : nullptr, host.ok() ? &*host : nullptr);
  };
  auto set_host = [&](const std::string& host_id, int state) {
    return SetShardHost(job_id, index, host_id, state);
  };

  if (cancelled) {
    // Nothing more is handed out; hosts waiting for a test skip the rest of the job.
    for (const std::string& host_id : idle) {
      RETURN_IF_ERROR(set_host(host_id, kDone));
      if (index + 1 < spec.steps_size()) {
        RETURN_IF_ERROR(NextStep(job_id, spec, host_id, index + 1, false, now_ms, outcome));
      }
    }
    return absl::OkStatus();
  }
  if (listed == kNotListed && !idle.empty()) {
    // No tests named: the first idle host lists what the step would run.
    v1::Step step = step_for(idle[0]);
    step.mutable_test()->set_list_only(true);
    ASSIGN_OR_RETURN(v1::Command cmd,
                     InsertCommand(job_id, idle[0], index, step, v1::COMMAND_PENDING, now_ms));
    outcome->dispatch.push_back({idle[0], std::move(cmd)});
    RETURN_IF_ERROR(set_host(idle[0], kBusy));
    ASSIGN_OR_RETURN(Stmt up, Stmt::Prepare(db_.get(),
                                            "UPDATE shard_steps SET listed = 1 WHERE job_id = ?1 "
                                            "AND step_index = ?2"));
    up.Bind(1, job_id).Bind(2, int64_t{index});
    return up.Run();
  }
  if (listed == kListed) {
    // Longest first: tests never run before (unknown length) lead, then by expected duration.
    ASSIGN_OR_RETURN(Stmt next, Stmt::Prepare(db_.get(), R"sql(
SELECT test FROM shard_tests WHERE job_id = ?1 AND step_index = ?2 AND state = 0
ORDER BY estimate_ms < 0 DESC, estimate_ms DESC, position LIMIT 1)sql"));
    ASSIGN_OR_RETURN(Stmt take, Stmt::Prepare(db_.get(), R"sql(
UPDATE shard_tests SET state = 1, command_id = ?4, host_id = ?5
WHERE job_id = ?1 AND step_index = ?2 AND test = ?3)sql"));
    for (const std::string& host_id : idle) {
      next.Reset();
      next.Bind(1, job_id).Bind(2, int64_t{index});
      ASSIGN_OR_RETURN(bool found, next.Step());
      if (!found) {
        // Nothing left for it: the host goes on with its next step.
        RETURN_IF_ERROR(set_host(host_id, kDone));
        if (index + 1 < spec.steps_size()) {
          RETURN_IF_ERROR(NextStep(job_id, spec, host_id, index + 1, true, now_ms, outcome));
        }
        continue;
      }
      std::string test = next.Text(0);
      v1::Step step = step_for(host_id);
      step.mutable_test()->clear_tests();
      step.mutable_test()->add_tests(test);
      ASSIGN_OR_RETURN(v1::Command cmd,
                       InsertCommand(job_id, host_id, index, step, v1::COMMAND_PENDING, now_ms));
      take.Reset();
      take.Bind(1, job_id)
          .Bind(2, int64_t{index})
          .Bind(3, test)
          .Bind(4, cmd.command_id())
          .Bind(5, host_id);
      RETURN_IF_ERROR(take.Run());
      outcome->dispatch.push_back({host_id, std::move(cmd)});
      RETURN_IF_ERROR(set_host(host_id, kBusy));
    }
  }
  if (active > 0) return absl::OkStatus();
  // Every host of the step was lost: what is left cannot run; say so rather than drop it.
  ASSIGN_OR_RETURN(Stmt left, Stmt::Prepare(db_.get(), R"sql(
SELECT test FROM shard_tests WHERE job_id = ?1 AND step_index = ?2 AND state = 0 ORDER BY position)sql"));
  left.Bind(1, job_id).Bind(2, int64_t{index});
  std::vector<std::string> tests;
  while (true) {
    ASSIGN_OR_RETURN(bool more, left.Step());
    if (!more) break;
    tests.push_back(left.Text(0));
  }
  if (tests.empty()) return absl::OkStatus();
  // Recorded against an ended command of the step, so they are the job's results.
  ASSIGN_OR_RETURN(Stmt any, Stmt::Prepare(db_.get(), R"sql(
SELECT id FROM commands WHERE job_id = ?1 AND step_index = ?2 ORDER BY finished_ms DESC LIMIT 1)sql"));
  any.Bind(1, job_id).Bind(2, int64_t{index});
  ASSIGN_OR_RETURN(bool have, any.Step());
  if (!have) return absl::OkStatus();
  std::string command_id = any.Text(0);
  for (const std::string& test : tests) {
    v1::TestResult r;
    r.set_suite(spec.steps(index).test().suite());
    r.set_section(spec.steps(index).test().section());
    r.set_name(test);
    r.set_status(v1::TEST_ERROR);
    r.set_duration_ms(-1);
    r.set_run(1);
    r.set_detail("not run: every host of the sharded step was lost before it got to this test");
    RETURN_IF_ERROR(InsertResultLocked(command_id, r, now_ms, outcome));
  }
  ASSIGN_OR_RETURN(Stmt done, Stmt::Prepare(db_.get(), R"sql(
UPDATE shard_tests SET state = 2 WHERE job_id = ?1 AND step_index = ?2 AND state = 0)sql"));
  done.Bind(1, job_id).Bind(2, int64_t{index});
  return done.Run();
}

absl::StatusOr<bool> SqliteStore::TestCommandEnded(
    const std::string& command_id, const std::string& job_id, const v1::JobSpec& spec,
    const std::string& host_id, int index, const v1::Step& step, const v1::CommandResult& result,
    bool host_ok, int64_t now_ms, ApplyOutcome* outcome) {
  const v1::TestStep& t = step.test();
  bool sharded = t.shard() > 0;
  auto set_host = [&](int state) { return SetShardHost(job_id, index, host_id, state); };
  // A host that cannot go on (lost, cancelled) leaves a sharded step; its later steps are skipped.
  auto leave = [&]() -> absl::StatusOr<bool> {
    RETURN_IF_ERROR(set_host(kLost));
    if (index + 1 < spec.steps_size()) {
      RETURN_IF_ERROR(NextStep(job_id, spec, host_id, index + 1, false, now_ms, outcome));
    }
    RETURN_IF_ERROR(ShardPull(job_id, spec, index, now_ms, outcome));
    return true;
  };

  if (t.list_only()) {
    if (!sharded) return false;
    if (host_ok && result.verdict() == v1::PASS) {
      std::vector<std::string> tests(result.listed_tests().begin(), result.listed_tests().end());
      RETURN_IF_ERROR(FillShardQueue(job_id, index, t, tests));
      ASSIGN_OR_RETURN(Stmt up, Stmt::Prepare(db_.get(),
                                              "UPDATE shard_steps SET listed = 2 WHERE job_id = "
                                              "?1 AND step_index = ?2"));
      up.Bind(1, job_id).Bind(2, int64_t{index});
      RETURN_IF_ERROR(up.Run());
      RETURN_IF_ERROR(set_host(kIdle));
      RETURN_IF_ERROR(ShardPull(job_id, spec, index, now_ms, outcome));
      return true;
    }
    // The listing failed on this host: another one lists.
    ASSIGN_OR_RETURN(Stmt up, Stmt::Prepare(db_.get(),
                                            "UPDATE shard_steps SET listed = 0 WHERE job_id = ?1 "
                                            "AND step_index = ?2"));
    up.Bind(1, job_id).Bind(2, int64_t{index});
    RETURN_IF_ERROR(up.Run());
    return leave();
  }

  if (sharded && t.run() <= 1) {
    ASSIGN_OR_RETURN(Stmt up, Stmt::Prepare(db_.get(),
                                            "UPDATE shard_tests SET state = 2 WHERE command_id = "
                                            "?1"));
    up.Bind(1, command_id);
    RETURN_IF_ERROR(up.Run());
  }
  if (!host_ok) return sharded ? leave() : absl::StatusOr<bool>(false);

  // Failures are run again on the same host (the same kernel), so a flake is told from a
  // regression: run 1's failed tests, `reruns` more times each.
  uint32_t run = Run(t);
  if (run <= Reruns(t)) {
    std::vector<std::string> again;
    if (run == 1) {
      ASSIGN_OR_RETURN(Stmt failed, Stmt::Prepare(db_.get(), R"sql(
SELECT name FROM test_results WHERE command_id = ?1 AND status IN (2, 4) ORDER BY id)sql"));
      failed.Bind(1, command_id);
      while (true) {
        ASSIGN_OR_RETURN(bool more, failed.Step());
        if (!more) break;
        again.push_back(failed.Text(0));
      }
    } else {
      again.assign(t.tests().begin(), t.tests().end());
    }
    if (!again.empty()) {
      v1::Step rerun = step;
      v1::TestStep* rt = rerun.mutable_test();
      rt->clear_tests();
      for (const std::string& name : again) rt->add_tests(name);
      rt->set_run(run + 1);
      ASSIGN_OR_RETURN(v1::Command cmd,
                       InsertCommand(job_id, host_id, index, rerun, v1::COMMAND_PENDING, now_ms));
      outcome->dispatch.push_back({host_id, std::move(cmd)});
      return true;
    }
  }
  if (!sharded) return false;
  RETURN_IF_ERROR(set_host(kIdle));
  RETURN_IF_ERROR(ShardPull(job_id, spec, index, now_ms, outcome));
  return true;
}

absl::StatusOr<ApplyOutcome> SqliteStore::HostLost(const std::string& host_id,
                                                   const std::string& why, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  return InTransaction([&]() -> absl::StatusOr<ApplyOutcome> {
    ApplyOutcome outcome;
    ASSIGN_OR_RETURN(std::vector<v1::CommandInfo> open,
                     LoadCommands("c.host_id = ?1 AND c.state IN (1, 2, 3)", host_id));
    for (const v1::CommandInfo& c : open) {
      if (!c.step().has_test() || c.step().test().shard() == 0) continue;
      const v1::TestStep& t = c.step().test();
      std::string detail = absl::StrCat(why, "; console: kctl logs ", c.id(), " --stream console");
      // Its tests that have no result of this run: the one running, and any not started.
      ASSIGN_OR_RETURN(Stmt have, Stmt::Prepare(db_.get(), R"sql(
SELECT 1 FROM test_results WHERE command_id = ?1 AND name = ?2 AND run = ?3)sql"));
      uint32_t errors = 0;
      for (const std::string& test : t.tests()) {
        have.Reset();
        have.Bind(1, c.id()).Bind(2, test).Bind(3, int64_t{Run(t)});
        ASSIGN_OR_RETURN(bool done, have.Step());
        if (done) continue;
        v1::TestResult r;
        r.set_suite(t.suite());
        r.set_section(t.section());
        r.set_name(test);
        r.set_status(v1::TEST_ERROR);
        r.set_duration_ms(-1);
        r.set_run(Run(t));
        r.set_detail(detail);
        RETURN_IF_ERROR(InsertResultLocked(c.id(), r, now_ms, &outcome));
        ++errors;
      }
      v1::CommandFinished fin;
      fin.set_command_id(c.id());
      v1::CommandResult* res = fin.mutable_result();
      res->set_verdict(v1::INFRA_ERROR);
      res->set_lost(true);
      res->set_exit_code(-1);
      res->set_detail(detail);
      res->mutable_tests()->set_errors(errors);
      int64_t since = c.started_unix_ms() != 0 ? c.started_unix_ms() : c.created_unix_ms();
      res->set_wall_ms(now_ms - since);
      RETURN_IF_ERROR(FinishLocked(c.id(), fin, now_ms, &outcome));
    }
    return outcome;
  });
}

absl::StatusOr<std::vector<v1::TestRecord>> SqliteStore::LoadResults(
    const std::string& where, const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(
      Stmt s,
      Stmt::Prepare(db_.get(), absl::StrCat("SELECT ", kResultColumns, " FROM test_results WHERE ",
                                            where, " ORDER BY suite, section, name, run, id")));
  for (size_t i = 0; i < args.size(); ++i) s.Bind(static_cast<int>(i + 1), args[i]);
  std::vector<v1::TestRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(RecordFromRow(s));
  }
  return out;
}

absl::StatusOr<std::vector<v1::TestRecord>> SqliteStore::JobResults(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(LoadJob(job_id).status());  // NotFound names the job
  return LoadResults("job_id = ?1", {job_id});
}

absl::StatusOr<std::vector<v1::TestRecord>> SqliteStore::TestHistory(
    const std::string& job_id, const std::string& other_job_id) {
  absl::MutexLock lock(&mu_);
  return LoadResults(
      "(suite, section, name) IN (SELECT DISTINCT suite, section, name FROM test_results WHERE "
      "job_id IN (?1, ?2))",
      {job_id, other_job_id.empty() ? job_id : other_job_id});
}

absl::StatusOr<v1::TestProgress> SqliteStore::LoadTestProgress(const v1::Job& job) {
  v1::TestProgress p;
  p.set_eta_ms(-1);
  ASSIGN_OR_RETURN(Stmt counts, Stmt::Prepare(db_.get(), R"sql(
SELECT SUM(run = 1), SUM(run = 1 AND status IN (2, 4)), SUM(run = 1 AND status = 3), SUM(run > 1)
FROM test_results WHERE job_id = ?1)sql"));
  counts.Bind(1, job.id());
  ASSIGN_OR_RETURN(bool row, counts.Step());
  if (row && !counts.IsNull(0)) {
    p.set_done(static_cast<uint32_t>(counts.Int(0)));
    p.set_failed(static_cast<uint32_t>(counts.Int(1)));
    p.set_skipped(static_cast<uint32_t>(counts.Int(2)));
    p.set_reruns(static_cast<uint32_t>(counts.Int(3)));
  }
  // The tests expected: a sharded step's queue (its ETA: the expected time of the tests queued and
  // running, over its hosts); a step naming its tests; else as many as the
  // newest earlier run of the same suite and section had (or what ran so far).
  ASSIGN_OR_RETURN(Stmt queued, Stmt::Prepare(db_.get(), R"sql(
SELECT COUNT(*), SUM(CASE WHEN state < 2 THEN MAX(estimate_ms, 0) ELSE 0 END),
  SUM(state < 2 AND estimate_ms < 0), SUM(state = 0)
FROM shard_tests WHERE job_id = ?1 AND step_index = ?2)sql"));
  ASSIGN_OR_RETURN(Stmt before, Stmt::Prepare(db_.get(), R"sql(
SELECT name, AVG(duration_ms) FROM test_results WHERE suite = ?1 AND section = ?2 AND run = 1
  AND job_id = (SELECT job_id FROM test_results WHERE suite = ?1 AND section = ?2 AND job_id != ?3
                ORDER BY id DESC LIMIT 1)
GROUP BY name)sql"));
  ASSIGN_OR_RETURN(Stmt ran, Stmt::Prepare(db_.get(), R"sql(
SELECT name FROM test_results WHERE command_id = ?1 AND run = 1)sql"));
  uint32_t total = 0;
  int64_t eta = 0;
  bool eta_known = true;
  std::set<int> sharded_steps;
  int hosts = 0;
  std::set<std::string> host_set;
  for (const v1::CommandInfo& c : job.commands()) {
    if (!c.step().has_test()) continue;
    const v1::TestStep& t = c.step().test();
    if (!c.host_id().empty()) host_set.insert(c.host_id());
    if (t.shard() > 0) {
      if (!sharded_steps.insert(c.step_index()).second) continue;
      queued.Reset();
      queued.Bind(1, job.id()).Bind(2, int64_t{c.step_index()});
      ASSIGN_OR_RETURN(bool q, queued.Step());
      if (q) {
        total += static_cast<uint32_t>(queued.Int(0));
        eta += queued.Int(1);
        if (queued.Int(2) > 0) eta_known = false;
      }
      continue;
    }
    if (t.list_only() || Run(t) > 1) continue;
    bool ended = c.state() == v1::COMMAND_FINISHED || c.state() == v1::COMMAND_SKIPPED;
    std::set<std::string> done;
    ran.Reset();
    ran.Bind(1, c.id());
    while (true) {
      ASSIGN_OR_RETURN(bool more, ran.Step());
      if (!more) break;
      done.insert(ran.Text(0));
    }
    if (ended) {
      total += static_cast<uint32_t>(done.size());
      continue;
    }
    std::map<std::string, int64_t> expected;
    if (!t.tests().empty()) {
      for (const std::string& name : t.tests()) expected[name] = -1;
    }
    before.Reset();
    before.Bind(1, t.suite()).Bind(2, t.section()).Bind(3, job.id());
    while (true) {
      ASSIGN_OR_RETURN(bool more, before.Step());
      if (!more) break;
      if (t.tests().empty() || expected.count(before.Text(0))) {
        expected[before.Text(0)] = before.IsNull(1) ? -1 : before.Int(1);
      }
    }
    if (expected.empty()) {
      total += static_cast<uint32_t>(done.size());
      eta_known = false;
      continue;
    }
    total += static_cast<uint32_t>(std::max(expected.size(), done.size()));
    int64_t left = 0;
    for (const auto& [name, ms] : expected) {
      if (done.count(name)) continue;
      if (ms < 0) eta_known = false;
      left += std::max<int64_t>(ms, 0);
    }
    eta = std::max(eta, left);  // hosts run their own copies side by side
  }
  hosts = static_cast<int>(host_set.size());
  p.set_total(std::max(total, p.done()));
  if (!sharded_steps.empty() && hosts > 0) eta /= hosts;
  if (job.state() == v1::JOB_DONE) {
    p.set_eta_ms(0);
  } else if (eta_known && total > 0) {
    p.set_eta_ms(eta);
  }
  return p;
}

absl::Status SqliteStore::PutExpunges(const std::vector<v1::ExpungeFile>& files,
                                      const std::vector<std::vector<v1::ExpungeEntry>>& entries,
                                      bool replace) {
  if (files.size() != entries.size()) {
    return absl::InvalidArgumentError("expunge files and their entries do not match");
  }
  absl::MutexLock lock(&mu_);
  return InTransaction([&]() -> absl::Status {
    if (replace) {
      std::set<std::pair<std::string, std::string>> pairs;
      for (const v1::ExpungeFile& f : files) pairs.insert({f.kernel(), f.fs()});
      for (const auto& [kernel, fs] : pairs) {
        for (const char* table : {"expunge_files", "expunges"}) {
          ASSIGN_OR_RETURN(
              Stmt del, Stmt::Prepare(db_.get(), absl::StrCat("DELETE FROM ", table,
                                                              " WHERE kernel = ?1 AND fs = ?2")));
          del.Bind(1, kernel).Bind(2, fs);
          RETURN_IF_ERROR(del.Run());
        }
      }
    }
    for (size_t i = 0; i < files.size(); ++i) {
      const v1::ExpungeFile& f = files[i];
      ASSIGN_OR_RETURN(Stmt del, Stmt::Prepare(db_.get(),
                                               "DELETE FROM expunges WHERE kernel = ?1 AND fs = "
                                               "?2 AND section = ?3"));
      del.Bind(1, f.kernel()).Bind(2, f.fs()).Bind(3, f.section());
      RETURN_IF_ERROR(del.Run());
      ASSIGN_OR_RETURN(Stmt put, Stmt::Prepare(db_.get(), R"sql(
INSERT INTO expunge_files (kernel, fs, section, content) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT(kernel, fs, section) DO UPDATE SET content = excluded.content)sql"));
      put.Bind(1, f.kernel()).Bind(2, f.fs()).Bind(3, f.section()).Bind(4, f.content());
      RETURN_IF_ERROR(put.Run());
      ASSIGN_OR_RETURN(Stmt add, Stmt::Prepare(db_.get(), R"sql(
INSERT OR REPLACE INTO expunges (kernel, fs, section, test, comment) VALUES (?1, ?2, ?3, ?4, ?5))sql"));
      for (const v1::ExpungeEntry& e : entries[i]) {
        add.Reset();
        add.Bind(1, f.kernel())
            .Bind(2, f.fs())
            .Bind(3, f.section())
            .Bind(4, e.test())
            .Bind(5, e.comment());
        RETURN_IF_ERROR(add.Run());
      }
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<v1::ExpungeFile>> SqliteStore::ExpungeFiles(const std::string& kernel,
                                                                       const std::string& fs) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), R"sql(
SELECT kernel, fs, section, content FROM expunge_files
WHERE (?1 = '' OR kernel = ?1) AND (?2 = '' OR fs = ?2) ORDER BY kernel, fs, section)sql"));
  s.Bind(1, kernel).Bind(2, fs);
  std::vector<v1::ExpungeFile> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    v1::ExpungeFile& f = out.emplace_back();
    f.set_kernel(s.Text(0));
    f.set_fs(s.Text(1));
    f.set_section(s.Text(2));
    f.set_content(s.Text(3));
  }
  return out;
}

absl::StatusOr<std::vector<v1::RemovalCandidate>> SqliteStore::RemovalCandidates(
    const std::string& kernel, const std::string& fs, int streak) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), R"sql(
SELECT kernel, fs, section, test FROM expunges
WHERE (?1 = '' OR kernel = ?1) AND (?2 = '' OR fs = ?2) ORDER BY kernel, fs, section, test)sql"));
  s.Bind(1, kernel).Bind(2, fs);
  ASSIGN_OR_RETURN(Stmt runs, Stmt::Prepare(db_.get(), R"sql(
SELECT status FROM test_results WHERE suite = 'fstests' AND section = ?1 AND name = ?2
ORDER BY id DESC LIMIT ?3)sql"));
  std::vector<v1::RemovalCandidate> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    runs.Reset();
    runs.Bind(1, s.Text(2)).Bind(2, s.Text(3)).Bind(3, int64_t{streak});
    uint32_t passes = 0;
    while (true) {
      ASSIGN_OR_RETURN(bool more, runs.Step());
      if (!more || runs.Int(0) != v1::TEST_PASS) break;
      ++passes;
    }
    if (passes < static_cast<uint32_t>(streak)) continue;
    v1::RemovalCandidate& c = out.emplace_back();
    c.set_kernel(s.Text(0));
    c.set_fs(s.Text(1));
    c.set_section(s.Text(2));
    c.set_test(s.Text(3));
    c.set_passes(passes);
  }
  return out;
}

}  // namespace kfleet::controller
