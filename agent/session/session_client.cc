#include "agent/session/session_client.h"

#include <sys/random.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/host/facts.h"
#include "common/log.h"

namespace kfleet::agent {
namespace {

using kfleet::v1::AgentMessage;
using kfleet::v1::ControllerMessage;

constexpr uint32_t kProtocolMajor = 1;
// 1.1: schedules (Welcome.schedules, ControllerMessage.schedules, ScheduleRunStarted items).
constexpr uint32_t kProtocolMinor = 1;

double UnitRandom() {
  uint32_t v = 0;
  while (getrandom(&v, sizeof v, 0) != sizeof v) {
  }
  return v / 4294967296.0;
}

}  // namespace

absl::Duration ReconnectDelay(int attempt, absl::Duration min, absl::Duration max,
                              double unit_random) {
  absl::Duration delay = min * std::pow(2.0, std::min(attempt, 30));
  if (delay > max) delay = max;
  return delay / 2 + delay / 2 * unit_random;
}

SessionClient::SessionClient(SessionOptions options, Outbox* outbox, CommandManager* commands)
    : options_(std::move(options)), outbox_(outbox), commands_(commands) {}

SessionClient::~SessionClient() { Stop(); }

absl::Status SessionClient::Start() {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      MakeChannel(options_.security, options_.controller);
  if (!channel.ok()) return channel.status();
  channel_ = *std::move(channel);
  stub_ = v1::AgentService::NewStub(channel_);
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void SessionClient::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (current_ != nullptr) current_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

bool SessionClient::connected() const {
  absl::MutexLock lock(&mu_);
  return connected_;
}

void SessionClient::SendMetrics(v1::MetricsBatch batch) {
  absl::MutexLock lock(&mu_);
  if (connected_) metrics_ = std::move(batch);
}

void SessionClient::Loop() {
  int attempt = 0;
  std::string last_error;
  while (true) {
    absl::Time began = absl::Now();
    grpc::Status status = RunSession();
    {
      absl::MutexLock lock(&mu_);
      connected_ = false;
      if (stopping_) return;
    }
    // A session that lived a while was healthy: start the backoff over.
    if (absl::Now() - began > absl::Seconds(10)) attempt = 0;
    std::string error = absl::StrCat(status.error_code(), ": ", status.error_message());
    if (error != last_error) {
      LogWarning(absl::StrCat(
          "session with ", options_.controller,
          " ended: ", status.error_message().empty() ? "connection lost" : status.error_message(),
          "; reconnecting"));
      last_error = error;
    }
    absl::Duration delay =
        ReconnectDelay(attempt++, options_.reconnect_min, options_.reconnect_max, UnitRandom());
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), delay);
    if (stopping_) return;
  }
}

grpc::Status SessionClient::RunSession() {
  grpc::ClientContext ctx;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return grpc::Status(grpc::StatusCode::CANCELLED, "stopping");
    current_ = &ctx;
  }
  struct Clear {
    SessionClient* self;
    ~Clear() {
      absl::MutexLock lock(&self->mu_);
      self->current_ = nullptr;
    }
  } clear{this};

  auto stream = stub_->Session(&ctx);
  AgentMessage hello_msg;
  v1::Hello* hello = hello_msg.mutable_hello();
  hello->set_host_id(options_.host_id);
  hello->set_boot_id(BootId());
  hello->set_name(options_.name);
  hello->mutable_labels()->insert(options_.labels.begin(), options_.labels.end());
  *hello->mutable_facts() = CollectFacts();
  hello->set_agent_version(options_.agent_version);
  hello->mutable_protocol()->set_major(kProtocolMajor);
  hello->mutable_protocol()->set_minor(kProtocolMinor);
  for (std::string& id : outbox_->PendingCommandIds()) hello->add_open_command_ids(std::move(id));
  hello->set_metrics_address(options_.metrics_address);
  ControllerMessage in;
  if (!stream->Write(hello_msg) || !stream->Read(&in)) return stream->Finish();
  if (!in.has_welcome()) {
    ctx.TryCancel();
    stream->Finish();
    return grpc::Status(grpc::StatusCode::INTERNAL, "controller answered Hello without Welcome");
  }
  const v1::Welcome& welcome = in.welcome();
  // Numbering continues after what the controller has (a guest's state dir may be new), and
  // what it already stored needs no resend.
  outbox_->AdvanceSeq(welcome.last_seq());
  v1::Ack stored;
  stored.set_seq(welcome.last_seq());
  *stored.mutable_logs() = welcome.stored();
  outbox_->Acknowledge(stored);
  outbox_->Rewind();
  absl::Duration heartbeat = absl::Milliseconds(welcome.settings().heartbeat_interval_ms());
  if (heartbeat <= absl::ZeroDuration()) heartbeat = absl::Seconds(10);
  {
    absl::MutexLock lock(&mu_);
    connected_ = true;
    metrics_.reset();
  }
  if (options_.on_settings) options_.on_settings(welcome.settings());
  // A 1.0 controller knows no schedules: its Welcome must not remove the agent's.
  if (options_.on_schedules && (welcome.has_schedules() || welcome.protocol().minor() >= 1)) {
    options_.on_schedules(welcome.schedules());
  }
  LogInfo(absl::StrCat("connected to ", options_.controller, " as ", welcome.host_name(), " (",
                       options_.host_id, ")"));

  bool session_over = false;
  std::thread writer([&] { WriterLoop(stream.get(), heartbeat, &session_over); });
  while (stream->Read(&in)) {
    switch (in.msg_case()) {
      case ControllerMessage::kCommand:
        commands_->OnCommand(in.command());
        break;
      case ControllerMessage::kCancel:
        commands_->OnCancel(in.cancel());
        break;
      case ControllerMessage::kSchedules:
        if (options_.on_schedules) options_.on_schedules(in.schedules());
        break;
      case ControllerMessage::kAck:
        outbox_->Acknowledge(in.ack());
        break;
      case ControllerMessage::kError:
        LogWarning(absl::StrCat("controller: ", in.error().message()));
        break;
      default:
        break;
    }
  }
  {
    absl::MutexLock lock(&mu_);
    session_over = true;
  }
  ctx.TryCancel();
  writer.join();
  return stream->Finish();
}

void SessionClient::WriterLoop(grpc::ClientReaderWriter<AgentMessage, ControllerMessage>* stream,
                               absl::Duration heartbeat, bool* session_over) {
  absl::Time next_heartbeat = absl::Now();
  while (true) {
    std::optional<v1::MetricsBatch> metrics;
    {
      absl::MutexLock lock(&mu_);
      if (*session_over || stopping_) break;
      metrics.swap(metrics_);
    }
    if (metrics.has_value()) {
      AgentMessage m;
      *m.mutable_metrics() = *std::move(metrics);
      if (!stream->Write(m)) break;
    }
    absl::Time now = absl::Now();
    if (now >= next_heartbeat) {
      AgentMessage hb;
      hb.mutable_heartbeat()->set_agent_time_unix_ms(absl::ToUnixMillis(now));
      if (!stream->Write(hb)) break;
      next_heartbeat = now + heartbeat;
    }
    absl::Duration wait = std::min(next_heartbeat - now, absl::Milliseconds(200));
    AgentMessage msg;
    if (outbox_->NextBatch(msg.mutable_items(), options_.max_batch_bytes, wait)) {
      if (!stream->Write(msg)) break;
    }
  }
}

}  // namespace kfleet::agent
