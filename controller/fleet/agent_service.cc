#include "controller/fleet/agent_service.h"

#include <deque>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace kfleet::controller {
namespace {

using kfleet::v1::AgentMessage;
using kfleet::v1::ControllerMessage;

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

// The log line for a kernel record `host` reported that was stored before (KernelEventClash).
std::string ClashText(const std::string& host, const KernelEventClash& c) {
  const v1::Event& stored = c.stored;
  const std::string stored_host =
      stored.host_name().empty() ? stored.host_id() : stored.host_name();
  std::string record =
      absl::StrCat("kmsg seq ", c.reported.kmsg_seq(), " of boot ", c.reported.boot_id());
  if (!c.replaced) {
    return absl::StrCat("host ", host, ": ", c.reported.kind(), ": ", record, " is event ",
                        stored.id(), " of host ", stored_host,
                        stored.command_id().empty() ? "" : " [command " + stored.command_id() + "]",
                        " already; not stored again");
  }
  return absl::StrCat(
      "host ", host, ": ", c.reported.kind(), ": ", c.reported.message(),
      c.reported.command_id().empty() ? "" : " [command " + c.reported.command_id() + "]", " (",
      record, ") replaces event ", stored.id(), " of host ", stored_host,
      stored.before_agent() ? ", stored as history" : ", which named no command");
}

absl::Status ValidateHello(const v1::Hello& hello) {
  if (!IsValidId(hello.host_id())) {
    return absl::InvalidArgumentError(
        "Hello.host_id must be 1-64 characters of [A-Za-z0-9._-]: remove the agent's host_id file "
        "to get a new one");
  }
  if (!hello.name().empty() && !IsValidId(hello.name())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "host name \"", hello.name().substr(0, 64),
        "\" is not 1-64 characters of [A-Za-z0-9._-]: start the agent with another --name"));
  }
  if (hello.protocol().major() != kProtocolMajor) {
    return absl::FailedPreconditionError(absl::StrCat(
        "agent speaks protocol ", hello.protocol().major(), ".", hello.protocol().minor(),
        ", this controller ", kProtocolMajor, ".", kProtocolMinor,
        ": install matching kfleet-agent and kfleet-controller versions"));
  }
  if (hello.labels_size() > kMaxLabels || hello.open_command_ids_size() > kMaxItemsPerMessage) {
    return absl::InvalidArgumentError(
        absl::StrCat("Hello carries more than ", kMaxLabels, " labels or too many commands"));
  }
  for (const auto& [k, v] : hello.labels()) {
    if (k.empty() || k.size() > 63 || v.size() > 256) {
      return absl::InvalidArgumentError(absl::StrCat(
          "label \"", k.substr(0, 63), "\": keys are 1-63 characters, values at most 256"));
    }
  }
  return absl::OkStatus();
}

class SessionReactor final : public grpc::ServerBidiReactor<AgentMessage, ControllerMessage>,
                             public SessionHandle,
                             public std::enable_shared_from_this<SessionReactor> {
 public:
  // `identity`: the caller's certificate (empty host id: a plaintext controller, where Hello
  // names the host); `refused`: not an agent, the session ends at once with it.
  SessionReactor(SessionDeps deps, std::string peer, Identity identity, absl::Status refused)
      : deps_(deps),
        peer_(std::move(peer)),
        identity_(std::move(identity)),
        refused_(std::move(refused)) {}

  // Keeps itself alive until OnDone; executor work holds further references.
  void Begin() {
    self_ = shared_from_this();
    if (!refused_.ok()) {
      Close(ToGrpcStatus(refused_));
      return;
    }
    StartRead(&in_);
  }

  void Send(ControllerMessage message) override {
    absl::MutexLock lock(&mu_);
    if (finishing_) return;
    out_.push_back(std::move(message));
    if (!writing_) {
      writing_ = true;
      StartWrite(&out_.front());
    }
  }

  void Close(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    FinishLocked(status);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The agent closed its side, the stream broke, or a message could not be parsed: gRPC does
      // not tell these apart. Before Hello none of them is a proper session, so say so.
      bool registered;
      {
        absl::MutexLock lock(&mu_);
        registered = !host_id_.empty();
      }
      if (!registered) {
        LogWarning(absl::StrCat("session from ", peer_, " ended before a valid Hello"));
        Close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                           "the stream ended before a valid Hello: the first message must be a "
                           "kfleet.v1.AgentMessage with hello set"));
        return;
      }
      Close(grpc::Status::OK);
      return;
    }
    deps_.executor->Post([self = shared_from_this()] { self->HandleRead(); });
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    out_.pop_front();
    if (ok && !out_.empty()) {
      StartWrite(&out_.front());
      return;
    }
    writing_ = false;
    if (!ok) out_.clear();
    if (pending_finish_) {
      pending_finish_ = false;
      Finish(finish_status_);
    }
  }

  void OnCancel() override { Close(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled")); }

  void OnDone() override {
    std::string host_id;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      host_id = host_id_;
    }
    if (!host_id.empty()) {
      deps_.fleet->Detach(host_id, this);
      LogInfo(absl::StrCat("session of ", host_id, " from ", peer_, " ended"));
    }
    std::shared_ptr<SessionReactor> keep = std::move(self_);
    // `keep` may be the last reference: nothing after this touches members.
  }

 private:
  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finishing_) return;
    finishing_ = true;
    if (writing_) {  // deliver what is queued (an error message, say) first
      pending_finish_ = true;
      finish_status_ = status;
      return;
    }
    Finish(status);
  }

  void SendError(absl::string_view message) {
    ControllerMessage m;
    m.mutable_error()->set_message(std::string(message));
    Send(std::move(m));
  }

  // Runs on the executor; `in_` is ours until the next StartRead.
  void HandleRead() {
    absl::Status s = Handle(in_);
    absl::MutexLock lock(&mu_);
    if (!s.ok()) {
      LogWarning(absl::StrCat("session from ", peer_, " ", host_id_, ": ", s.ToString()));
      FinishLocked(ToGrpcStatus(s));
      return;
    }
    if (!finishing_) StartRead(&in_);
  }

  absl::Status Handle(const AgentMessage& msg) {
    if (host_id_.empty()) {
      if (!msg.has_hello()) {
        return absl::InvalidArgumentError("the first message of a session must be Hello");
      }
      return HandleHello(msg.hello());
    }
    deps_.fleet->Heard(host_id_);
    switch (msg.msg_case()) {
      case AgentMessage::kHeartbeat:
        return absl::OkStatus();
      case AgentMessage::kItems:
        return HandleItems(msg.items());
      case AgentMessage::kMetrics:
        HandleMetrics(msg.metrics());
        return absl::OkStatus();
      case AgentMessage::kHello:
        return absl::InvalidArgumentError("Hello may be sent only once per session");
      default:
        SendError("empty or unknown agent message ignored");
        return absl::OkStatus();
    }
  }

  // The Hello as the certificate has it: the host id is the certificate's (a Hello naming
  // another host is refused), name and labels those the host enrolled with.
  absl::StatusOr<v1::Hello> CertifiedHello(const v1::Hello& claimed) {
    if (!identity_.is_agent()) return claimed;
    if (claimed.host_id() != identity_.name) {
      absl::Status refused = absl::PermissionDeniedError(
          absl::StrCat("Hello claims host id ", claimed.host_id().substr(0, 64),
                       " but this agent's certificate is for host id ", identity_.name));
      LogWarning(absl::StrCat("session from ", peer_, ": ", refused.message()));
      if (deps_.access != nullptr)
        deps_.access->Audit(identity_, "AgentService/Session", claimed.host_id(), refused);
      return refused;
    }
    v1::Hello hello = claimed;
    if (deps_.access_store != nullptr) {
      ASSIGN_OR_RETURN(std::optional<EnrolledHost> enrolled,
                       deps_.access_store->GetEnrolledHost(identity_.name));
      if (!enrolled.has_value() || enrolled->revoked) {
        return absl::PermissionDeniedError(
            absl::StrCat("host id ", identity_.name, " is not enrolled, or was revoked"));
      }
      hello.set_name(enrolled->name);
      hello.clear_labels();
      for (const auto& [k, v] : enrolled->labels) (*hello.mutable_labels())[k] = v;
    }
    return hello;
  }

  absl::Status HandleHello(const v1::Hello& claimed) {
    RETURN_IF_ERROR(ValidateHello(claimed));
    ASSIGN_OR_RETURN(v1::Hello hello, CertifiedHello(claimed));
    absl::StatusOr<v1::Host> before = deps_.store->GetHost(hello.host_id());
    ASSIGN_OR_RETURN(v1::Host host, deps_.store->RegisterHost(hello, NowMs()));
    ASSIGN_OR_RETURN(uint64_t last_seq, deps_.store->LastSeq(hello.host_id()));
    {
      absl::MutexLock lock(&mu_);
      host_id_ = host.id();
    }
    host_name_ = host.name();
    host_ = host;
    if (deps_.observer != nullptr) deps_.observer->OnHello(host);

    ControllerMessage welcome;
    v1::Welcome* w = welcome.mutable_welcome();
    w->mutable_protocol()->set_major(kProtocolMajor);
    w->mutable_protocol()->set_minor(kProtocolMinor);
    w->mutable_settings()->set_heartbeat_interval_ms(
        static_cast<uint32_t>(absl::ToInt64Milliseconds(deps_.fleet->settings().heartbeat)));
    w->mutable_settings()->set_offline_after_missed(deps_.fleet->settings().offline_after_missed);
    w->mutable_settings()->set_metrics_interval_ms(
        static_cast<uint32_t>(absl::ToInt64Milliseconds(deps_.metrics_interval)));
    w->set_host_name(host.name());
    w->set_last_seq(last_seq);
    ASSIGN_OR_RETURN(*w->mutable_schedules(), deps_.store->ScheduleSetFor(host.id()));
    const v1::ScheduleSet welcomed = w->schedules();
    for (const std::string& id : hello.open_command_ids()) {
      if (!OwnsCommand(id)) continue;
      for (auto stream : {v1::STDOUT, v1::STDERR, v1::CONSOLE, v1::KMSG}) {
        v1::LogOffset* o = w->add_stored();
        o->set_command_id(id);
        o->set_stream(stream);
        o->set_offset(deps_.logs->Size(id, stream));
      }
    }
    Send(std::move(welcome));
    deps_.fleet->Attach(host_id_, shared_from_this());
    bool ended;
    {
      absl::MutexLock lock(&mu_);
      ended = done_;
    }
    if (ended) {  // the stream ended while this Hello was handled
      deps_.fleet->Detach(host_id_, this);
      return absl::OkStatus();
    }
    LogInfo(absl::StrCat("host ", host_name_, " (", host_id_, ") registered from ", peer_,
                         ", boot ", hello.boot_id()));
    if (deps_.schedules != nullptr) deps_.schedules->Resync(host_id_, welcomed);

    if (before.ok() && !before->boot_id().empty() && before->boot_id() != hello.boot_id()) {
      // A new boot: reboot steps waiting for it pass; whatever ran in the old boot is lost.
      ASSIGN_OR_RETURN(ApplyOutcome booted, deps_.store->HostBooted(host_id_, before->boot_id(),
                                                                    hello.boot_id(), NowMs()));
      ActOn(booted);
    }
    ASSIGN_OR_RETURN(std::vector<v1::Command> pending, deps_.store->PendingCommands(host_id_));
    for (v1::Command& c : pending) {
      ControllerMessage m;
      *m.mutable_command() = std::move(c);
      Send(std::move(m));
    }
    ASSIGN_OR_RETURN(std::vector<CancelOrder> cancels, deps_.store->PendingCancels(host_id_));
    for (const CancelOrder& c : cancels) SendCancel(c);
    deps_.feed->Publish();
    return absl::OkStatus();
  }

  // Samples are not stored: the observer keeps the latest per host. The host record (labels)
  // is the one of this session's Hello.
  void HandleMetrics(const v1::MetricsBatch& batch) {
    if (deps_.observer == nullptr) return;
    deps_.observer->OnMetrics(host_, batch);
  }

  void SendCancel(const CancelOrder& c) {
    ControllerMessage m;
    m.mutable_cancel()->set_command_id(c.command_id);
    m.mutable_cancel()->set_reason(c.reason);
    deps_.fleet->Send(c.host_id, std::move(m));
  }

  // Whether `command_id` is a command of this session's host (cached: asked once per command).
  bool OwnsCommand(const std::string& command_id) {
    if (owned_.count(command_id)) return true;
    if (!IsValidId(command_id)) return false;
    absl::StatusOr<std::string> host = deps_.store->CommandHost(command_id);
    if (!host.ok() || *host != host_id_) return false;
    if (owned_.size() > 10000) owned_.clear();
    owned_.insert(command_id);
    return true;
  }

  absl::Status HandleItems(const v1::Items& items) {
    if (items.logs_size() + items.sequenced_size() > kMaxItemsPerMessage) {
      return absl::InvalidArgumentError(absl::StrCat("a message carries ",
                                                     items.logs_size() + items.sequenced_size(),
                                                     " items; the limit is ", kMaxItemsPerMessage));
    }
    ControllerMessage ack_msg;
    v1::Ack* ack = ack_msg.mutable_ack();

    // Runs of schedules first: their commands exist only once stored, and the batch may carry
    // their first log chunks.
    std::vector<v1::SequencedItem> seq(items.sequenced().begin(), items.sequenced().end());
    ASSIGN_OR_RETURN(ScheduleRunsOutcome runs,
                     deps_.store->StartScheduleRuns(host_id_, seq, NowMs()));
    for (const std::string& problem : runs.problems) {
      LogWarning(absl::StrCat("host ", host_name_, ": ", problem));
      SendError(problem);
    }
    for (const std::string& pruned : runs.pruned_commands) {
      absl::Status removed = deps_.logs->Remove(pruned);
      if (!removed.ok()) LogWarning(absl::StrCat("pruned schedule run: ", removed.ToString()));
    }

    // Logs next: a command's Finished item follows its last log chunk in outbox order, so once
    // a command is finished all of its log is stored.
    std::vector<const v1::LogChunk*> chunks;
    for (const v1::LogChunk& c : items.logs()) {
      const char* problem = nullptr;
      if (c.data().size() > kMaxLogChunkBytes) {
        problem = "is larger than 1 MiB";
      } else if (!OwnsCommand(c.command_id())) {
        problem = "is for a command this host was not given";
      } else if (c.stream() == v1::LOG_STREAM_UNSPECIFIED || !v1::LogStream_IsValid(c.stream())) {
        problem = "names no valid stream";
      }
      if (problem != nullptr) {
        // Acknowledged so the agent drops it: resending it would fail the same way forever.
        SendError(absl::StrCat("log chunk for command \"", c.command_id().substr(0, 64),
                               "\" at offset ", c.offset(), " ", problem, "; dropped"));
        v1::LogOffset* o = ack->add_logs();
        o->set_command_id(c.command_id().substr(0, 64));
        o->set_stream(c.stream());
        o->set_offset(c.offset() + c.data().size());
        continue;
      }
      chunks.push_back(&c);
    }
    if (!chunks.empty()) {
      ASSIGN_OR_RETURN(std::vector<v1::LogOffset> stored, deps_.logs->WriteDurable(chunks));
      for (v1::LogOffset& o : stored) *ack->add_logs() = std::move(o);
      if (deps_.observer != nullptr) {
        uint64_t bytes = 0;
        for (const v1::LogChunk* c : chunks) bytes += c->data().size();
        deps_.observer->OnLogBytes(bytes);
      }
    }

    for (v1::SequencedItem& item : seq) RecordBuild(item);
    ApplyOutcome outcome;
    if (!seq.empty()) {
      ASSIGN_OR_RETURN(outcome, deps_.store->ApplySequenced(host_id_, seq, NowMs()));
      ack->set_seq(outcome.last_seq);
    } else {
      ASSIGN_OR_RETURN(uint64_t last, deps_.store->LastSeq(host_id_));
      ack->set_seq(last);
    }
    Send(std::move(ack_msg));

    for (v1::Event& e : outcome.events) {
      e.set_host_name(host_name_);
      LogInfo(absl::StrCat("host ", host_name_, ": ", e.kind(), ": ", e.message(),
                           e.command_id().empty() ? "" : " [command " + e.command_id() + "]", " (",
                           e.kmsg_seq() == 0 ? "" : absl::StrCat("kmsg seq ", e.kmsg_seq(), ", "),
                           "stored ", NowMs() - e.time_unix_ms(), " ms after the kernel said it)"));
      if (deps_.observer != nullptr) deps_.observer->OnEvent(e);
    }
    if (!outcome.history_events.empty()) {
      LogInfo(absl::StrCat("host ", host_name_, ": ", outcome.history_events.size(),
                           " kernel event(s) from before its agent first started stored as "
                           "history (shown by kctl events, not counted)"));
    }
    for (KernelEventClash& c : outcome.event_clashes) {
      c.reported.set_host_name(host_name_);
      LogInfo(ClashText(host_name_, c));
      // Counted for the fleet when first stored as news; the host it moved to counts it now.
      if (c.replaced && !c.stored.before_agent() && !c.reported.before_agent() &&
          deps_.observer != nullptr) {
        deps_.observer->OnEventMoved(c.reported);
      }
    }
    if (deps_.observer != nullptr) {
      if (!outcome.test_results.empty()) deps_.observer->OnTestResults(outcome.test_results);
      if (outcome.skipped_items > 0) deps_.observer->OnReplayedItems(outcome.skipped_items);
      for (int64_t ms : outcome.dispatch_latency_ms) {
        deps_.observer->OnDispatchLatency(absl::Milliseconds(ms));
      }
    }
    ActOn(outcome);
    deps_.feed->Publish();
    return absl::OkStatus();
  }

  // A kernel build a command reports is recorded in the artifact store (so later jobs find it)
  // before the command's result is: a build whose artifacts are not all stored fails the command
  // instead. A resent item records the same build again, which changes nothing.
  void RecordBuild(v1::SequencedItem& item) {
    if (!item.has_finished() || !item.finished().result().has_kernel() ||
        deps_.record_build == nullptr) {
      return;
    }
    v1::CommandResult* r = item.mutable_finished()->mutable_result();
    if (r->verdict() != v1::PASS) return;
    absl::Status s = deps_.record_build(r->kernel(), item.finished().command_id());
    if (s.ok()) return;
    r->set_verdict(v1::INFRA_ERROR);
    r->set_detail(
        absl::StrCat("the build's artifacts are not in the artifact store: ", s.message()));
  }

  void ActOn(ApplyOutcome& outcome) {
    for (Dispatch& d : outcome.dispatch) {
      ControllerMessage m;
      *m.mutable_command() = std::move(d.command);
      deps_.fleet->Send(d.host_id, std::move(m));
    }
    for (const CancelOrder& c : outcome.cancels) SendCancel(c);
    for (const std::string& job : outcome.finished_jobs)
      LogInfo(absl::StrCat("job ", job, " ended"));
  }

  const SessionDeps deps_;
  const std::string peer_;
  const Identity identity_;
  const absl::Status refused_;
  std::shared_ptr<SessionReactor> self_;
  AgentMessage in_;
  // Written once, under mu_, by the Hello handler; later handlers run after it (one read at a
  // time) and read it without the lock.
  std::string host_id_;
  std::string host_name_;
  v1::Host host_;
  std::set<std::string> owned_;

  absl::Mutex mu_;
  std::deque<ControllerMessage> out_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool pending_finish_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status finish_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerBidiReactor<AgentMessage, ControllerMessage>* AgentServiceImpl::Session(
    grpc::CallbackServerContext* context) {
  Identity identity;
  absl::Status refused;
  if (deps_.access != nullptr) {
    absl::StatusOr<Identity> who =
        deps_.access->Authorize(*context, Permission::kAgent, "AgentService/Session");
    if (who.ok()) {
      identity = *std::move(who);
    } else {
      refused = who.status();
    }
  }
  auto reactor = std::make_shared<SessionReactor>(deps_, context->peer(), std::move(identity),
                                                  std::move(refused));
  reactor->Begin();
  return reactor.get();
}

}  // namespace kfleet::controller
