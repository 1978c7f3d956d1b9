#include "controller/api/fleet_service.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/duration.h"
#include "common/grpc_status.h"
#include "common/ids.h"
#include "common/status_macros.h"
#include "controller/api/job_streams.h"
#include "controller/store/step_fill.h"

namespace kfleet::controller {
namespace {

constexpr int kMaxSteps = 100;

// A stream refused before it began: finishes with the refusal, frees itself when done.
template <typename T>
class RefusedWriter final : public grpc::ServerWriteReactor<T> {
 public:
  explicit RefusedWriter(const absl::Status& refusal) { this->Finish(ToGrpcStatus(refusal)); }
  void OnDone() override { delete this; }
};
constexpr int kMaxArgs = 4096;
constexpr size_t kMaxStepBytes = 256 << 10;

absl::Status ValidateTestStep(const std::string& where, const v1::TestStep& t) {
  auto bad = [&](absl::string_view field, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(where, field, ": ", why));
  };
  static const char* const kSuites[] = {"kselftest", "fstests", "blktests", "exec"};
  if (std::find(std::begin(kSuites), std::end(kSuites), t.suite()) == std::end(kSuites)) {
    return bad(".suite", absl::StrCat("\"", t.suite().substr(0, 64),
                                      "\" is not a suite (expected kselftest, fstests, blktests or "
                                      "exec)"));
  }
  if (t.run() != 0 || t.list_only() || t.kselftest().has_archive()) {
    return bad("", "run, list_only and kselftest.archive are set by the controller, not by a job");
  }
  if (t.tests_size() > 100000) return bad(".tests", "more than 100000 tests");
  if (t.has_reruns() && t.reruns() > 20) return bad(".reruns", "at most 20 re-runs");
  if (t.shard() > 1000) return bad(".shard", "at most 1000 hosts");
  size_t bytes = t.section().size();
  for (const std::string& name : t.tests()) {
    if (name.empty() || name.size() > 256 || name.find('\n') != std::string::npos) {
      return bad(".tests", absl::StrCat("\"", name.substr(0, 64),
                                        "\" is not a test name (1 to 256 characters, one line)"));
    }
    bytes += name.size();
  }
  if (bytes > 4 * kMaxStepBytes) return bad("", "the test list is too large");
  if (t.suite() == "exec" && (t.argv().empty() || t.argv(0).empty())) {
    return bad(".argv", "is empty: give the command that runs a test, e.g. [./run, \"{test}\"]");
  }
  if (t.suite() == "kselftest" && t.kselftest().targets().empty() && t.tests().empty()) {
    return bad(".kselftest.targets", "is empty: name the collections to run, e.g. [size, timers]");
  }
  if (t.suite() == "fstests") {
    if (t.fstests().tree().empty()) {
      return bad(".fstests.tree",
                 "is empty: give the path or git URL of an fstests (xfstests-dev) tree");
    }
    if (t.section().empty())
      return bad(".section", "is empty: fstests runs one section of local.config, e.g. xfs_crc");
    const std::string& from = t.fstests().expunge_from();
    if (!from.empty() && std::count(from.begin(), from.end(), '/') != 1) {
      return bad(".fstests.expunge_from",
                 absl::StrCat("\"", from.substr(0, 64), "\" is not KERNEL/FS (e.g. 6.1.0/xfs)"));
    }
  }
  if (t.suite() == "blktests" && t.blktests().tree().empty()) {
    return bad(".blktests.tree", "is empty: give the path of a blktests tree");
  }
  return absl::OkStatus();
}

absl::Status ValidateStep(int i, const v1::Step& step) {
  std::string where = absl::StrCat("steps[", i, "]");
  if (!step.timeout().empty()) {
    absl::StatusOr<absl::Duration> d = ParseDuration(step.timeout());
    if (!d.ok())
      return absl::InvalidArgumentError(absl::StrCat(where, ".timeout: ", d.status().message()));
  }
  switch (step.kind_case()) {
    case v1::Step::kExec: {
      const v1::ExecStep& e = step.exec();
      if (e.argv().empty() || e.argv(0).empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".exec.argv is empty: give the command to run, e.g. [uname, -r]"));
      }
      if (e.argv_size() > kMaxArgs) {
        return absl::InvalidArgumentError(absl::StrCat(where, ".exec.argv has ", e.argv_size(),
                                                       " words; the limit is ", kMaxArgs));
      }
      size_t bytes = e.dir().size();
      for (const std::string& a : e.argv()) bytes += a.size();
      for (const auto& [k, v] : e.env()) {
        if (k.empty() || k.find('=') != std::string::npos) {
          return absl::InvalidArgumentError(
              absl::StrCat(where, ".exec.env: invalid variable name \"", k.substr(0, 64), "\""));
        }
        bytes += k.size() + v.size();
      }
      if (bytes > kMaxStepBytes) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".exec is ", bytes, " bytes; the limit is ", kMaxStepBytes));
      }
      return absl::OkStatus();
    }
    case v1::Step::kReboot:
      if (step.reboot().via_provider()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".reboot.via_provider is set by the controller, not by a job"));
      }
      return absl::OkStatus();
    case v1::Step::kTest:
      return ValidateTestStep(where + ".test", step.test());
    case v1::Step::kKernelBuild:
      if (i != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": kernel_build must be the first step (it runs once, before the others)"));
      }
      return absl::OkStatus();
    case v1::Step::kKernelInstall:
      if (step.kernel_install().has_build() || step.kernel_install().via_provider()) {
        return absl::InvalidArgumentError(absl::StrCat(
            where,
            ".kernel_install: build and via_provider are set by the controller; leave the "
            "step empty (kernel_install: {})"));
      }
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          where, " has no step kind: expected one of exec, kernel_build, kernel_install, reboot"));
  }
}

bool LabelsMatch(const v1::Host& host,
                 const google::protobuf::Map<std::string, std::string>& want) {
  for (const auto& [k, v] : want) {
    auto it = host.labels().find(k);
    if (it == host.labels().end() || it->second != v) return false;
  }
  return true;
}

std::string DescribeLabels(const google::protobuf::Map<std::string, std::string>& labels) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : labels) parts.push_back(absl::StrCat(k, "=", v));
  std::sort(parts.begin(), parts.end());
  return absl::StrJoin(parts, ",");
}

}  // namespace

bool IsBuilder(const v1::Host& host) {
  auto role = host.labels().find("role");
  return role != host.labels().end() && role->second == "builder";
}

absl::StatusOr<std::vector<std::string>> SelectOnlineHosts(const std::vector<v1::Host>& hosts,
                                                           const v1::HostSelector& sel) {
  std::vector<std::string> ids;
  std::vector<std::string> builders;  // online ones, for the error
  for (const v1::Host& h : hosts) {
    if (h.state() != v1::ONLINE) continue;
    // A builder is the controller's own machine in the default setup: `all` means test hosts.
    if (sel.all() && IsBuilder(h)) {
      builders.push_back(h.name());
      continue;
    }
    if (LabelsMatch(h, sel.labels())) ids.push_back(h.id());
  }
  if (!ids.empty()) return ids;
  if (!sel.all()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no online host carries labels ", DescribeLabels(sel.labels()),
                     ": `kctl hosts` shows hosts and their labels"));
  }
  std::sort(builders.begin(), builders.end());
  std::string online =
      builders.empty() ? "" : absl::StrCat("; online: ", absl::StrJoin(builders, ", "));
  return absl::FailedPreconditionError(absl::StrCat(
      "no test host is online (`all` leaves out builders, the hosts labelled role=builder", online,
      "): start an agent (kfleet-agent --controller HOST:PORT) and check `kctl hosts`, or target "
      "a builder by name or label (kctl: --host ",
      builders.empty() ? "NAME" : builders.front(), " or -l role=builder)"));
}

absl::Status ValidateJobSpec(const v1::JobSpec& spec) {
  if (spec.name().size() > 128) {
    return absl::InvalidArgumentError("name is longer than 128 characters");
  }
  if (spec.steps().empty()) {
    return absl::InvalidArgumentError("steps is empty: a job needs at least one step");
  }
  if (spec.steps_size() > kMaxSteps) {
    return absl::InvalidArgumentError(
        absl::StrCat("steps has ", spec.steps_size(), " entries; the limit is ", kMaxSteps));
  }
  for (int i = 0; i < spec.steps_size(); ++i) RETURN_IF_ERROR(ValidateStep(i, spec.steps(i)));
  bool built = BuildsOnce(spec);
  for (int i = 0; i < spec.steps_size(); ++i) {
    if (spec.steps(i).has_kernel_install() && !built) {
      return absl::InvalidArgumentError(absl::StrCat(
          "steps[", i,
          "]: kernel_install needs a kernel_build step first (and a kernel: section)"));
    }
  }
  if (built && spec.kernel().tree().empty()) {
    return absl::InvalidArgumentError(
        "kernel.tree is empty: a kernel_build step needs the tree to build (a directory on the "
        "builder host or a git URL); kctl: --tree");
  }
  if (!built && spec.has_kernel()) {
    return absl::InvalidArgumentError(
        "kernel is given but no step builds it: add `- kernel_build: {}` as the first step");
  }
  for (int i = 0; i < spec.steps_size(); ++i) {
    const v1::Step& step = spec.steps(i);
    if (step.has_test() && step.test().shard() > 1 && spec.hosts().count() > 0 &&
        spec.hosts().count() < step.test().shard()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "steps[", i, "].test.shard is ", step.test().shard(), " but hosts.count is only ",
          spec.hosts().count(), ": give the job as many hosts as shards"));
    }
  }
  const v1::HostSelector& sel = spec.hosts();
  int kinds = int{sel.all()} + int{!sel.names().empty()} + int{!sel.labels().empty()};
  if (sel.count() > 1000) return absl::InvalidArgumentError("hosts.count is over 1000");
  if (kinds != 1) {
    return absl::InvalidArgumentError(
        "hosts: give exactly one of all, names or labels (kctl: --all, --host NAME or -l k=v)");
  }
  for (const std::string& n : sel.names()) {
    if (!IsValidId(n)) {
      return absl::InvalidArgumentError(
          absl::StrCat("hosts.names: \"", n.substr(0, 64), "\" is not a valid host name"));
    }
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* FleetServiceImpl::ListHosts(grpc::CallbackServerContext* ctx,
                                                      const v1::ListHostsRequest*,
                                                      v1::ListHostsResponse* resp) {
  return OnExecutor(ctx, Permission::kRead, "FleetService/ListHosts", "",
                    [this, resp]() -> absl::Status {
                      ASSIGN_OR_RETURN(std::vector<v1::Host> hosts, deps_.store->ListHosts());
                      for (v1::Host& h : hosts) *resp->add_hosts() = std::move(h);
                      return absl::OkStatus();
                    });
}

grpc::ServerUnaryReactor* FleetServiceImpl::GetHost(grpc::CallbackServerContext* ctx,
                                                    const v1::GetHostRequest* req, v1::Host* resp) {
  return OnExecutor(ctx, Permission::kRead, "FleetService/GetHost", "",
                    [this, req, resp]() -> absl::Status {
                      ASSIGN_OR_RETURN(*resp, deps_.store->GetHost(req->name_or_id()));
                      return absl::OkStatus();
                    });
}

absl::StatusOr<std::string> FleetServiceImpl::PickBuilder() {
  ASSIGN_OR_RETURN(std::vector<v1::Host> hosts, deps_.store->ListHosts());
  ASSIGN_OR_RETURN(std::set<std::string> busy, deps_.store->BusyHosts());
  std::string pick;
  for (const v1::Host& h : hosts) {
    if (h.state() != v1::ONLINE || !IsBuilder(h)) continue;
    if (pick.empty() || !busy.count(h.id())) pick = h.id();
    if (!busy.count(h.id())) break;
  }
  if (pick.empty()) {
    return absl::FailedPreconditionError(
        "no online host is labelled role=builder to build the kernel: start an agent on a machine "
        "with the kernel tree and a compiler (kfleet-agent --controller HOST:PORT --labels "
        "role=builder), or start the controller with --local-builder");
  }
  return pick;
}

absl::StatusOr<v1::Job> FleetServiceImpl::Submit(const v1::JobSpec& submitted,
                                                 const std::string& submitter) {
  RETURN_IF_ERROR(ValidateJobSpec(submitted));
  v1::JobSpec spec = submitted;
  // `shard: N` over labels (a pool) takes N hosts of them, each as it is free.
  for (const v1::Step& step : spec.steps()) {
    if (step.has_test() && step.test().shard() > 0 && spec.hosts().count() == 0 &&
        !spec.hosts().labels().empty()) {
      spec.mutable_hosts()->set_count(std::max(spec.hosts().count(), step.test().shard()));
    }
  }
  const v1::HostSelector& sel = spec.hosts();
  std::vector<std::string> host_ids;
  if (sel.count() > 0) {
    if (sel.labels().empty()) {
      return absl::InvalidArgumentError("hosts.count needs hosts.labels (kctl: -l k=v --count N)");
    }
    // Commands wait for idle hosts with these labels; none need be online yet.
  } else if (!sel.names().empty()) {
    for (const std::string& name : sel.names()) {
      ASSIGN_OR_RETURN(v1::Host h, deps_.store->GetHost(name));
      host_ids.push_back(h.id());
    }
  } else {
    ASSIGN_OR_RETURN(std::vector<v1::Host> hosts, deps_.store->ListHosts());
    ASSIGN_OR_RETURN(host_ids, SelectOnlineHosts(hosts, sel));
  }
  std::string builder;
  if (BuildsOnce(spec)) {
    ASSIGN_OR_RETURN(builder, PickBuilder());
  }
  auto created =
      deps_.store->CreateJob(spec, host_ids, submitter, absl::ToUnixMillis(absl::Now()), builder);
  if (!created.ok()) return created.status();
  std::vector<Dispatch> dispatch = std::move(created->second);
  if (sel.count() > 0) {
    // Besides what the job dispatched itself (a build-once job's kernel_build).
    ASSIGN_OR_RETURN(std::vector<Dispatch> assigned,
                     deps_.store->AssignWaiting(absl::ToUnixMillis(absl::Now())));
    for (Dispatch& d : assigned) dispatch.push_back(std::move(d));
  }
  for (Dispatch& d : dispatch) {
    v1::ControllerMessage m;
    *m.mutable_command() = std::move(d.command);
    deps_.fleet->Send(d.host_id, std::move(m));  // offline hosts get it when they say Hello
  }
  deps_.feed->Publish();
  return std::move(created->first);
}

grpc::ServerUnaryReactor* FleetServiceImpl::SubmitJob(grpc::CallbackServerContext* ctx,
                                                      const v1::SubmitJobRequest* req,
                                                      v1::Job* resp) {
  std::string submitter = CallerName(*ctx);
  return OnExecutor(ctx, Permission::kOperate, "FleetService/SubmitJob", req->spec().name(),
                    [this, req, resp, submitter]() -> absl::Status {
                      ASSIGN_OR_RETURN(*resp, Submit(req->spec(), submitter));
                      return absl::OkStatus();
                    });
}

grpc::ServerUnaryReactor* FleetServiceImpl::ListJobs(grpc::CallbackServerContext* ctx,
                                                     const v1::ListJobsRequest* req,
                                                     v1::ListJobsResponse* resp) {
  return OnExecutor(
      ctx, Permission::kRead, "FleetService/ListJobs", "", [this, req, resp]() -> absl::Status {
        int limit =
            req->limit() == 0 ? 50 : static_cast<int>(std::min<uint32_t>(req->limit(), 1000));
        ASSIGN_OR_RETURN(std::vector<v1::Job> jobs, deps_.store->ListJobs(limit));
        for (v1::Job& j : jobs) *resp->add_jobs() = std::move(j);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* FleetServiceImpl::GetJob(grpc::CallbackServerContext* ctx,
                                                   const v1::GetJobRequest* req, v1::Job* resp) {
  return OnExecutor(ctx, Permission::kRead, "FleetService/GetJob", "",
                    [this, req, resp]() -> absl::Status {
                      ASSIGN_OR_RETURN(*resp, deps_.store->GetJob(req->id()));
                      return absl::OkStatus();
                    });
}

grpc::ServerUnaryReactor* FleetServiceImpl::CancelJob(grpc::CallbackServerContext* ctx,
                                                      const v1::CancelJobRequest* req,
                                                      v1::Job* resp) {
  return OnExecutor(
      ctx, Permission::kOperate, "FleetService/CancelJob", req->id(),
      [this, req, resp]() -> absl::Status {
        ASSIGN_OR_RETURN(CancelOutcome outcome,
                         deps_.store->CancelJob(req->id(), absl::ToUnixMillis(absl::Now())));
        for (const CancelOrder& c : outcome.cancels) {
          v1::ControllerMessage m;
          m.mutable_cancel()->set_command_id(c.command_id);
          m.mutable_cancel()->set_reason(c.reason);
          deps_.fleet->Send(c.host_id, std::move(m));  // offline: sent again on its next Hello
        }
        deps_.feed->Publish();
        *resp = std::move(outcome.job);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* FleetServiceImpl::ListPools(grpc::CallbackServerContext* ctx,
                                                      const v1::ListPoolsRequest*,
                                                      v1::ListPoolsResponse* resp) {
  return OnExecutor(ctx, Permission::kRead, "FleetService/ListPools", "",
                    [this, resp]() -> absl::Status {
                      ASSIGN_OR_RETURN(std::vector<v1::Pool> pools, deps_.pools->ListPools());
                      for (v1::Pool& p : pools) *resp->add_pools() = std::move(p);
                      return absl::OkStatus();
                    });
}

grpc::ServerUnaryReactor* FleetServiceImpl::Bringup(grpc::CallbackServerContext* ctx,
                                                    const v1::BringupRequest* req,
                                                    v1::BringupResponse* resp) {
  return OnExecutor(
      ctx, Permission::kAdmin, "FleetService/Bringup",
      absl::StrCat(req->pool(), " count=", req->count()), [this, req, resp]() -> absl::Status {
        int count =
            req->count() == 0 ? 1 : static_cast<int>(std::min<uint32_t>(req->count(), 1000));
        ASSIGN_OR_RETURN(std::vector<v1::Guest> guests, deps_.pools->Bringup(req->pool(), count));
        for (v1::Guest& g : guests) *resp->add_guests() = std::move(g);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* FleetServiceImpl::Destroy(grpc::CallbackServerContext* ctx,
                                                    const v1::DestroyRequest* req,
                                                    v1::DestroyResponse* resp) {
  return OnExecutor(ctx, Permission::kAdmin, "FleetService/Destroy", req->name(),
                    [this, req, resp]() -> absl::Status {
                      ASSIGN_OR_RETURN(std::vector<std::string> names,
                                       deps_.pools->Destroy(req->name()));
                      for (std::string& n : names) resp->add_destroyed(std::move(n));
                      return absl::OkStatus();
                    });
}

grpc::ServerUnaryReactor* FleetServiceImpl::ListEvents(grpc::CallbackServerContext* ctx,
                                                       const v1::ListEventsRequest* req,
                                                       v1::ListEventsResponse* resp) {
  return OnExecutor(
      ctx, Permission::kRead, "FleetService/ListEvents", "", [this, req, resp]() -> absl::Status {
        std::string host_id;
        if (!req->host().empty()) {
          ASSIGN_OR_RETURN(v1::Host h, deps_.store->GetHost(req->host()));
          host_id = h.id();
        }
        int limit =
            req->limit() == 0 ? 100 : static_cast<int>(std::min<uint32_t>(req->limit(), 10000));
        ASSIGN_OR_RETURN(std::vector<v1::Event> events,
                         deps_.store->ListEvents(host_id, req->kind(), limit, req->after_id()));
        for (v1::Event& e : events) *resp->add_events() = std::move(e);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* FleetServiceImpl::GetHostMetrics(grpc::CallbackServerContext* ctx,
                                                           const v1::GetHostMetricsRequest* req,
                                                           v1::GetHostMetricsResponse* resp) {
  return OnExecutor(
      ctx, Permission::kRead, "FleetService/GetHostMetrics", "",
      [this, req, resp]() -> absl::Status {
        if (deps_.host_samples == nullptr) {
          return absl::FailedPreconditionError("this controller keeps no host metrics");
        }
        if (req->names_size() > 1000) {
          return absl::InvalidArgumentError("at most 1000 metric names per request");
        }
        std::vector<std::string> names(req->names().begin(), req->names().end());
        if (req->host().empty()) {
          for (v1::HostMetrics& h : deps_.host_samples->Snapshot(names)) {
            *resp->add_hosts() = std::move(h);
          }
          return absl::OkStatus();
        }
        // By name or id; a known host without samples (offline, or none sent yet) has none.
        ASSIGN_OR_RETURN(v1::Host host, deps_.store->GetHost(req->host()));
        absl::StatusOr<v1::HostMetrics> m = deps_.host_samples->Get(host.id(), names);
        if (m.ok()) *resp->add_hosts() = *std::move(m);
        return absl::OkStatus();
      });
}

absl::Status FleetServiceImpl::Refused(const grpc::CallbackServerContext& ctx, const char* method) {
  if (deps_.access == nullptr) return absl::OkStatus();
  return deps_.access->Authorize(ctx, Permission::kRead, method).status();
}

JobStreamDeps FleetServiceImpl::StreamDeps(const grpc::CallbackServerContext& ctx) const {
  JobStreamDeps deps{deps_.store, deps_.logs, deps_.executor, deps_.feed, nullptr};
  if (deps_.access != nullptr) {
    absl::StatusOr<Identity> who = deps_.access->IdentityOf(ctx);
    if (who.ok() && !who->serial.empty()) {
      deps.still_allowed = [access = deps_.access, serial = who->serial]() -> absl::Status {
        if (access->IsRevoked(serial)) {
          return absl::UnauthenticatedError(absl::StrCat("certificate ", serial, " was revoked"));
        }
        return absl::OkStatus();
      };
    }
  }
  return deps;
}

std::string FleetServiceImpl::CallerName(const grpc::CallbackServerContext& ctx) const {
  if (deps_.access == nullptr) return ctx.peer();
  absl::StatusOr<Identity> who = deps_.access->IdentityOf(ctx);
  return who.ok() ? who->Describe() : ctx.peer();
}

grpc::ServerWriteReactor<v1::Job>* FleetServiceImpl::WatchJob(grpc::CallbackServerContext* ctx,
                                                              const v1::GetJobRequest* req) {
  if (absl::Status s = Refused(*ctx, "FleetService/WatchJob"); !s.ok()) {
    return new RefusedWriter<v1::Job>(s);
  }
  return StartWatchJob(StreamDeps(*ctx), *req);
}

grpc::ServerWriteReactor<v1::LogData>* FleetServiceImpl::TailLogs(grpc::CallbackServerContext* ctx,
                                                                  const v1::TailLogsRequest* req) {
  if (absl::Status s = Refused(*ctx, "FleetService/TailLogs"); !s.ok()) {
    return new RefusedWriter<v1::LogData>(s);
  }
  return StartTailLogs(StreamDeps(*ctx), *req);
}

}  // namespace kfleet::controller
