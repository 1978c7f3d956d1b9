// SqliteStore: boots and reboots, commands waiting for hosts, guests. Events:
// sqlite_store_events.cc.
#include "absl/strings/str_cat.h"
#include "common/duration.h"
#include "common/status_macros.h"
#include "controller/store/sqlite_store.h"
#include "controller/store/step_fill.h"

namespace kfleet::controller {
namespace {

constexpr absl::Duration kDefaultRebootTimeout = absl::Minutes(5);

absl::Duration RebootTimeout(const v1::Step& step) {
  if (step.timeout().empty()) return kDefaultRebootTimeout;
  absl::StatusOr<absl::Duration> d = ParseDuration(step.timeout());
  return d.ok() ? *d : kDefaultRebootTimeout;
}

bool LabelsMatch(const google::protobuf::Map<std::string, std::string>& have,
                 const google::protobuf::Map<std::string, std::string>& want) {
  for (const auto& [k, v] : want) {
    auto it = have.find(k);
    if (it == have.end() || it->second != v) return false;
  }
  return true;
}

v1::Event MakeEvent(const std::string& host_id, int64_t now_ms, const std::string& kind,
                    const std::string& message, const std::string& command_id) {
  v1::Event e;
  e.set_host_id(host_id);
  e.set_time_unix_ms(now_ms);
  e.set_kind(kind);
  e.set_message(message);
  e.set_command_id(command_id);
  return e;
}

}  // namespace

absl::StatusOr<ApplyOutcome> SqliteStore::HostBooted(const std::string& host_id,
                                                     const std::string& old_boot_id,
                                                     const std::string& boot_id, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  return InTransaction([&]() -> absl::StatusOr<ApplyOutcome> {
    ApplyOutcome outcome;
    // The facts of the new boot (RegisterHost stored them): which kernel came up.
    ASSIGN_OR_RETURN(v1::Host host, LoadHost("id = ?1", host_id));
    ASSIGN_OR_RETURN(std::vector<v1::CommandInfo> open,
                     LoadCommands("c.host_id = ?1 AND c.state IN (2, 3)", host_id));
    for (const v1::CommandInfo& c : open) {
      v1::CommandFinished fin;
      fin.set_command_id(c.id());
      v1::CommandResult* r = fin.mutable_result();
      int64_t since = c.started_unix_ms() != 0 ? c.started_unix_ms() : c.created_unix_ms();
      r->set_wall_ms(now_ms - since);
      std::string wrong_kernel;
      if (c.step().has_reboot() &&
          !RunningExpectedKernel(c.step().reboot(), host.facts(), &wrong_kernel)) {
        // Up, but not on the kernel the job installed (a fallback entry, a failed install): the
        // kernel under test did not boot, which is neither a pass nor a test failure.
        r->set_verdict(v1::BOOT_FAILED);
        r->set_exit_code(-1);
        r->set_detail(absl::StrCat(wrong_kernel, "; registered again after ",
                                   ShortDuration(absl::Milliseconds(now_ms - since))));
        RETURN_IF_ERROR(
            AddEventLocked(MakeEvent(host_id, now_ms, "boot_failed", r->detail(), c.id())));
      } else if (c.step().has_reboot()) {
        r->set_verdict(v1::PASS);
        r->set_detail(absl::StrCat("rebooted and registered again after ",
                                   ShortDuration(absl::Milliseconds(now_ms - since)), " (boot id ",
                                   boot_id.substr(0, 8), ", kernel ", host.facts().kernel_release(),
                                   ")"));
      } else {
        r->set_verdict(v1::INFRA_ERROR);
        r->set_lost(true);
        r->set_exit_code(-1);
        r->set_detail("the host rebooted while the command ran");
      }
      RETURN_IF_ERROR(FinishLocked(c.id(), fin, now_ms, &outcome));
    }
    RETURN_IF_ERROR(AddEventLocked(
        MakeEvent(host_id, now_ms, "boot",
                  absl::StrCat("booted kernel ", host.facts().kernel_release(), ": boot id ",
                               old_boot_id.substr(0, 8), " -> ", boot_id.substr(0, 8)),
                  "")));
    return outcome;
  });
}

absl::StatusOr<std::vector<v1::CommandInfo>> SqliteStore::OverdueReboots(int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::vector<v1::CommandInfo> open,
                   LoadCommands("c.state IN (2, 3) AND c.host_id != ?1", ""));
  std::vector<v1::CommandInfo> overdue;
  for (v1::CommandInfo& c : open) {
    if (!c.step().has_reboot()) continue;
    int64_t since = c.started_unix_ms() != 0 ? c.started_unix_ms() : c.created_unix_ms();
    if (since + absl::ToInt64Milliseconds(RebootTimeout(c.step())) <= now_ms) {
      overdue.push_back(std::move(c));
    }
  }
  return overdue;
}

absl::StatusOr<std::vector<v1::CommandInfo>> SqliteStore::PendingControllerCommands() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::vector<v1::CommandInfo> pending,
                   LoadCommands("c.state = 1 AND c.host_id != ?1", ""));
  std::vector<v1::CommandInfo> out;
  for (v1::CommandInfo& c : pending) {
    if (RunsOnController(c.step())) out.push_back(std::move(c));
  }
  return out;
}

absl::Status SqliteStore::MarkStarted(const std::string& command_id, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), R"sql(
UPDATE commands SET state = 3, started_ms = ?1 WHERE id = ?2 AND state IN (1, 2))sql"));
  s.Bind(1, now_ms).Bind(2, command_id);
  return s.Run();
}

absl::StatusOr<ApplyOutcome> SqliteStore::FinishCommand(const std::string& command_id,
                                                        const v1::CommandResult& result,
                                                        int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  return InTransaction([&]() -> absl::StatusOr<ApplyOutcome> {
    ApplyOutcome outcome;
    v1::CommandFinished fin;
    fin.set_command_id(command_id);
    *fin.mutable_result() = result;
    RETURN_IF_ERROR(FinishLocked(command_id, fin, now_ms, &outcome));
    return outcome;
  });
}

absl::StatusOr<std::set<std::string>> SqliteStore::BusyHostsLocked() {
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), R"sql(
SELECT DISTINCT host_id FROM commands WHERE host_id != '' AND state IN (1, 2, 3))sql"));
  std::set<std::string> busy;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    busy.insert(s.Text(0));
  }
  return busy;
}

absl::StatusOr<std::set<std::string>> SqliteStore::BusyHosts() {
  absl::MutexLock lock(&mu_);
  return BusyHostsLocked();
}

absl::StatusOr<std::vector<Dispatch>> SqliteStore::AssignWaiting(int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  return InTransaction([&]() -> absl::StatusOr<std::vector<Dispatch>> {
    std::vector<Dispatch> dispatch;
    ASSIGN_OR_RETURN(Stmt waiting, Stmt::Prepare(db_.get(), R"sql(
SELECT c.id, c.job_id, c.step, j.spec, c.step_index FROM commands c JOIN jobs j ON j.id = c.job_id
WHERE c.host_id = '' AND c.state = 1 ORDER BY c.created_ms, c.id)sql"));
    struct Waiting {
      v1::Command command;
      v1::JobSpec spec;
      int step_index = 0;
    };
    std::vector<Waiting> list;
    while (true) {
      ASSIGN_OR_RETURN(bool row, waiting.Step());
      if (!row) break;
      Waiting& w = list.emplace_back();
      w.command.set_command_id(waiting.Text(0));
      w.command.set_job_id(waiting.Text(1));
      w.command.mutable_step()->ParseFromString(waiting.Blob(2));
      w.spec.ParseFromString(waiting.Blob(3));
      w.step_index = static_cast<int>(waiting.Int(4));
    }
    if (list.empty()) return dispatch;

    ASSIGN_OR_RETURN(std::set<std::string> busy, BusyHostsLocked());
    std::vector<v1::Host> idle;
    ASSIGN_OR_RETURN(Stmt ids, Stmt::Prepare(db_.get(),
                                             "SELECT id FROM hosts WHERE state = ?1 "
                                             "ORDER BY name"));
    ids.Bind(1, int64_t{v1::ONLINE});
    while (true) {
      ASSIGN_OR_RETURN(bool row, ids.Step());
      if (!row) break;
      if (busy.count(ids.Text(0))) continue;
      ASSIGN_OR_RETURN(v1::Host h, LoadHost("id = ?1", ids.Text(0)));
      idle.push_back(std::move(h));
    }
    for (Waiting& w : list) {
      ASSIGN_OR_RETURN(Stmt used, Stmt::Prepare(db_.get(),
                                                "SELECT 1 FROM commands WHERE job_id "
                                                "= ?1 AND host_id = ?2 LIMIT 1"));
      for (auto it = idle.begin(); it != idle.end(); ++it) {
        if (!LabelsMatch(it->labels(), w.spec.hosts().labels())) continue;
        used.Reset();
        used.Bind(1, w.command.job_id()).Bind(2, it->id());
        ASSIGN_OR_RETURN(bool taken, used.Step());
        if (taken) continue;  // one slot of a job per host
        // What the step needs of its host (direct boot or not) is known only now.
        ASSIGN_OR_RETURN(std::optional<v1::KernelBuild> build, JobBuild(w.command.job_id()));
        *w.command.mutable_step() = FillStep(w.spec, w.step_index, build ? &*build : nullptr, &*it);
        // FillStep starts again from the job's spec: the test step's expunges (expunge_from) are
        // added again, as for a command whose host was named.
        if (w.command.step().has_test()) {
          ASSIGN_OR_RETURN(*w.command.mutable_step(), PrepareTestStep(w.command.step()));
        }
        if (w.command.step().has_test() && w.command.step().test().shard() > 0) {
          // A host for a sharded test step: it joins the step's queue instead.
          ASSIGN_OR_RETURN(Stmt drop,
                           Stmt::Prepare(db_.get(), "DELETE FROM commands WHERE id = ?1"));
          drop.Bind(1, w.command.command_id());
          RETURN_IF_ERROR(drop.Run());
          ApplyOutcome joined;
          RETURN_IF_ERROR(StartStep(w.command.job_id(), w.spec, it->id(), w.step_index,
                                    w.command.step(), now_ms, &joined));
          for (Dispatch& d : joined.dispatch) dispatch.push_back(std::move(d));
          idle.erase(it);
          break;
        }
        ASSIGN_OR_RETURN(Stmt assign, Stmt::Prepare(db_.get(),
                                                    "UPDATE commands SET host_id = ?1, "
                                                    "host_name = ?2, created_ms = ?3, step = ?5 "
                                                    "WHERE id = ?4"));
        assign.Bind(1, it->id())
            .Bind(2, it->name())
            .Bind(3, now_ms)
            .Bind(4, w.command.command_id())
            .BindBlob(5, w.command.step().SerializeAsString());
        RETURN_IF_ERROR(assign.Run());
        dispatch.push_back({it->id(), w.command});
        idle.erase(it);
        break;
      }
    }
    return dispatch;
  });
}

absl::StatusOr<std::vector<std::map<std::string, std::string>>> SqliteStore::WaitingSelectors() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), R"sql(
SELECT j.spec FROM commands c JOIN jobs j ON j.id = c.job_id WHERE c.host_id = '' AND c.state = 1)sql"));
  std::vector<std::map<std::string, std::string>> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    v1::JobSpec spec;
    spec.ParseFromString(s.Blob(0));
    out.emplace_back(spec.hosts().labels().begin(), spec.hosts().labels().end());
  }
  return out;
}

absl::Status SqliteStore::PutGuest(const v1::Guest& guest) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), R"sql(
INSERT INTO guests (name, pool, meta) VALUES (?1, ?2, ?3)
ON CONFLICT(name) DO UPDATE SET pool = excluded.pool, meta = excluded.meta)sql"));
  s.Bind(1, guest.name()).Bind(2, guest.pool()).BindBlob(3, guest.SerializeAsString());
  return s.Run();
}

absl::Status SqliteStore::DeleteGuest(const std::string& name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), "DELETE FROM guests WHERE name = ?1"));
  s.Bind(1, name);
  return s.Run();
}

absl::StatusOr<std::vector<v1::Guest>> SqliteStore::ListGuests() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), "SELECT meta FROM guests ORDER BY pool, name"));
  std::vector<v1::Guest> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.emplace_back().ParseFromString(s.Blob(0));
  }
  return out;
}

absl::Status SqliteStore::ForgetHost(const std::string& host_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), "DELETE FROM hosts WHERE id = ?1"));
  s.Bind(1, host_id);
  return s.Run();
}

}  // namespace kfleet::controller
