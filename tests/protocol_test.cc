// The wire protocol against a real controller: a Controller serving on a loopback port in this
// process, spoken to by real gRPC clients (the generated stubs, and a GenericStub for bytes that
// are not protobuf). Each case checks that the controller refuses a bad peer the way DESIGN.md
// says and goes on serving everyone else.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "common/credentials.h"
#include "controller/controller.h"
#include "controller/fleet/agent_service.h"
#include "kfleet/v1/agent.grpc.pb.h"
#include "kfleet/v1/fleet.grpc.pb.h"

namespace kfleet::controller {
namespace {

using ::kfleet::v1::AgentMessage;
using ::kfleet::v1::ControllerMessage;

// Every call has a deadline, so a server that stops answering fails the test instead of hanging.
constexpr std::chrono::seconds kRpcTimeout(10);
constexpr char kSessionMethod[] = "/kfleet.v1.AgentService/Session";
constexpr char kListHostsMethod[] = "/kfleet.v1.FleetService/ListHosts";

// Not protobuf in any message type: field 1, length-delimited, claims 127 bytes; 3 follow.
const std::string kGarbage(
    "\x0a\x7f"
    "abc",
    5);

// Above kMaxMessageBytes (4 MiB).
constexpr size_t kOversizedBytes = 5 << 20;

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + kRpcTimeout;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

AgentMessage HelloMessage(const std::string& host_id, const std::string& name) {
  AgentMessage m;
  v1::Hello* h = m.mutable_hello();
  h->set_host_id(host_id);
  h->set_boot_id("boot-1");
  h->set_name(name);
  h->set_agent_version("protocol_test");
  h->mutable_protocol()->set_major(kProtocolMajor);
  h->mutable_protocol()->set_minor(kProtocolMinor);
  return m;
}

AgentMessage HeartbeatMessage() {
  AgentMessage m;
  m.mutable_heartbeat()->set_agent_time_unix_ms(1);
  return m;
}

// One agent session through the generated stub, as the agent speaks it.
class AgentSession {
 public:
  explicit AgentSession(v1::AgentService::Stub* stub) {
    ctx_.set_deadline(Deadline());
    stream_ = stub->Session(&ctx_);
  }

  bool Write(const AgentMessage& m) { return stream_->Write(m); }

  // The next controller message, or nullopt once the stream ended.
  std::optional<ControllerMessage> Read() {
    ControllerMessage m;
    if (!stream_->Read(&m)) return std::nullopt;
    return m;
  }

  // Says Hello and expects a Welcome as the answer.
  ::testing::AssertionResult Register(const AgentMessage& hello, v1::Welcome* welcome = nullptr) {
    if (!Write(hello)) return ::testing::AssertionFailure() << "could not send Hello";
    std::optional<ControllerMessage> m = Read();
    if (!m) return ::testing::AssertionFailure() << "stream ended: " << Finish().error_message();
    if (!m->has_welcome()) {
      return ::testing::AssertionFailure() << "expected Welcome, got " << m->ShortDebugString();
    }
    if (welcome != nullptr) *welcome = m->welcome();
    return ::testing::AssertionSuccess();
  }

  // Reads until the stream ends (keeping what came in `rest`) and returns how it ended. Does not
  // half-close: the stream must end because the controller ended it.
  grpc::Status Finish(std::vector<ControllerMessage>* rest = nullptr) {
    ControllerMessage m;
    while (stream_->Read(&m)) {
      if (rest != nullptr) rest->push_back(m);
    }
    return stream_->Finish();
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<AgentMessage, ControllerMessage>> stream_;
};

class ProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/kfleet-protocol-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    state_dir_ = dir;
    ControllerOptions options;
    options.listen = "127.0.0.1:0";
    options.state_dir = state_dir_;
    options.security.insecure = true;
    absl::StatusOr<std::unique_ptr<Controller>> c = Controller::Start(options);
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = std::move(*c);
    address_ = "127.0.0.1:" + std::to_string(controller_->port());
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        MakeChannel(TransportSecurity{/*insecure=*/true}, address_);
    ASSERT_TRUE(channel.ok()) << channel.status();
    channel_ = *channel;
    agent_ = v1::AgentService::NewStub(channel_);
    fleet_ = v1::FleetService::NewStub(channel_);
  }

  void TearDown() override {
    agent_.reset();
    fleet_.reset();
    channel_.reset();
    controller_.reset();
    if (!state_dir_.empty()) std::filesystem::remove_all(state_dir_);
  }

  grpc::Status ListHosts(v1::ListHostsResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    return fleet_->ListHosts(&ctx, v1::ListHostsRequest(), resp);
  }

  // The host's state as ListHosts shows it, or HOST_STATE_UNSPECIFIED if it is not listed.
  v1::HostState HostState(const std::string& host_id) {
    v1::ListHostsResponse resp;
    grpc::Status s = ListHosts(&resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    for (const v1::Host& h : resp.hosts()) {
      if (h.id() == host_id) return h.state();
    }
    return v1::HOST_STATE_UNSPECIFIED;
  }

  // Submits a one-step job to the host named `name`.
  grpc::Status SubmitTo(const std::string& name, v1::Job* job) {
    v1::SubmitJobRequest req;
    req.mutable_spec()->set_name("protocol-test");
    req.mutable_spec()->mutable_hosts()->add_names(name);
    v1::Step* step = req.mutable_spec()->add_steps();
    step->mutable_exec()->add_argv("true");
    step->set_timeout("30s");
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    return fleet_->SubmitJob(&ctx, req, job);
  }

  grpc::Status GetJob(const std::string& id, v1::Job* job) {
    v1::GetJobRequest req;
    req.set_id(id);
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    return fleet_->GetJob(&ctx, req, job);
  }

  // All stdout the controller has stored for one command.
  grpc::Status StoredStdout(const std::string& command_id, std::string* out) {
    v1::TailLogsRequest req;
    req.set_command_id(command_id);
    req.add_streams(v1::STDOUT);
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    std::unique_ptr<grpc::ClientReader<v1::LogData>> reader = fleet_->TailLogs(&ctx, req);
    v1::LogData d;
    while (reader->Read(&d)) out->append(d.data());
    return reader->Finish();
  }

  // The admin API answers and a well-behaved agent registers as `host_id`.
  void ExpectStillServes(const std::string& host_id, const std::string& name) {
    v1::ListHostsResponse hosts;
    grpc::Status list = ListHosts(&hosts);
    EXPECT_TRUE(list.ok()) << "ListHosts: " << list.error_message();
    AgentSession agent(agent_.get());
    EXPECT_TRUE(agent.Register(HelloMessage(host_id, name)));
    EXPECT_EQ(HostState(host_id), v1::ONLINE);
  }

  // One unary call of `method` whose request is `bytes` as they are.
  grpc::Status RawUnary(const std::string& method, const std::string& bytes) {
    grpc::GenericStub stub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::Status status;
    absl::Notification done;
    stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
      status = std::move(s);
      done.Notify();
    });
    done.WaitForNotification();  // the deadline bounds the wait
    return status;
  }

  // A Session call whose only message is `bytes` as they are. The client does not half-close, so
  // the stream ends only if the controller ends it. Returns how it ended; `replies` counts what
  // the controller sent first.
  grpc::Status RawSession(const std::string& bytes, int* replies) {
    grpc::GenericStub stub(channel_);
    grpc::CompletionQueue cq;
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
        stub.PrepareCall(&ctx, kSessionMethod, &cq);
    // Operations run one at a time, so the next event is the one we wait for.
    auto wait = [&cq](intptr_t tag) {
      void* got = nullptr;
      bool ok = false;
      EXPECT_EQ(cq.AsyncNext(&got, &ok, Deadline() + std::chrono::seconds(5)),
                grpc::CompletionQueue::GOT_EVENT);
      EXPECT_EQ(reinterpret_cast<intptr_t>(got), tag);
      return ok;
    };
    call->StartCall(reinterpret_cast<void*>(1));
    wait(1);
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    call->Write(request, reinterpret_cast<void*>(2));
    wait(2);
    *replies = 0;
    grpc::ByteBuffer reply;
    for (;;) {
      call->Read(&reply, reinterpret_cast<void*>(3));
      if (!wait(3)) break;
      ++*replies;
    }
    grpc::Status status;
    call->Finish(&status, reinterpret_cast<void*>(4));
    wait(4);
    cq.Shutdown();
    void* got;
    bool ok;
    while (cq.Next(&got, &ok)) {
    }
    return status;
  }

  std::string state_dir_;
  std::string address_;
  std::unique_ptr<Controller> controller_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AgentService::Stub> agent_;
  std::unique_ptr<v1::FleetService::Stub> fleet_;
};

// Validates that an admin request that is not protobuf gets an error status and that the
// controller then still serves the admin API and agent sessions.
TEST_F(ProtocolTest, MalformedAdminRequestIsRefusedAndServerKeepsServing) {
  grpc::Status s = RawUnary(kListHostsMethod, kGarbage);
  // gRPC 1.51's callback server answers a request it cannot parse with UNIMPLEMENTED and an empty
  // message before any controller code runs (CallbackUnaryHandler::RunHandler in
  // grpcpp/impl/codegen/server_callback_handlers.h), so that counts as refused too.
  EXPECT_TRUE(s.error_code() == grpc::StatusCode::INTERNAL ||
              s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
              s.error_code() == grpc::StatusCode::UNIMPLEMENTED)
      << "ListHosts with garbage ended with " << s.error_code() << ": " << s.error_message();

  ExpectStillServes("h-after-garbage", "after-garbage");
}

// Validates that a session whose first message is not protobuf ends with an error status (not
// OK, which an agent cannot tell from a clean end) and that the controller then still serves.
TEST_F(ProtocolTest, MalformedSessionMessageIsRefusedAndServerKeepsServing) {
  int replies = -1;
  grpc::Status s = RawSession(kGarbage, &replies);
  EXPECT_EQ(replies, 0) << "the controller answered a message that is not protobuf";
  EXPECT_TRUE(s.error_code() == grpc::StatusCode::INTERNAL ||
              s.error_code() == grpc::StatusCode::INVALID_ARGUMENT)
      << "Session with garbage ended with " << s.error_code() << " \"" << s.error_message() << "\"";

  ExpectStillServes("h-after-garbage", "after-garbage");
}

// Validates that a message larger than 4 MiB is refused with RESOURCE_EXHAUSTED, as a Hello and
// inside a session, and that the controller then still serves the host.
TEST_F(ProtocolTest, OversizedMessageIsRefusedAndServerKeepsServing) {
  // A client that sends anything, so the controller's own limit is what refuses.
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(64 << 20);
  std::shared_ptr<grpc::Channel> big_channel =
      grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args);
  std::unique_ptr<v1::AgentService::Stub> big_agent = v1::AgentService::NewStub(big_channel);

  {
    AgentMessage hello = HelloMessage("h-big", "big");
    (*hello.mutable_hello()->mutable_labels())["huge"] = std::string(kOversizedBytes, 'x');
    AgentSession session(big_agent.get());
    session.Write(hello);
    std::vector<ControllerMessage> got;
    grpc::Status s = session.Finish(&got);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
    EXPECT_TRUE(got.empty()) << got.front().ShortDebugString();
  }
  {
    AgentSession session(big_agent.get());
    ASSERT_TRUE(session.Register(HelloMessage("h-big", "big")));
    AgentMessage items;
    v1::LogChunk* chunk = items.mutable_items()->add_logs();
    chunk->set_command_id("c-0000000000000000");
    chunk->set_stream(v1::STDOUT);
    chunk->set_data(std::string(kOversizedBytes, 'x'));
    session.Write(items);
    grpc::Status s = session.Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  }

  ExpectStillServes("h-big", "big");
}

// Validates that a session whose first message is not Hello ends with INVALID_ARGUMENT saying so.
TEST_F(ProtocolTest, FirstMessageMustBeHello) {
  AgentSession session(agent_.get());
  session.Write(HeartbeatMessage());
  std::vector<ControllerMessage> got;
  grpc::Status s = session.Finish(&got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_TRUE(Contains(s.error_message(), "Hello")) << s.error_message();
  EXPECT_TRUE(got.empty()) << "sent before the Hello: " << got.front().ShortDebugString();

  v1::ListHostsResponse hosts;
  ASSERT_TRUE(ListHosts(&hosts).ok());
  EXPECT_EQ(hosts.hosts_size(), 0);
}

// Validates that a Hello with an unsafe host id or another protocol major is refused with a
// message naming the problem, and registers nothing.
TEST_F(ProtocolTest, BadHelloIsRefusedWithReason) {
  {
    AgentSession session(agent_.get());
    session.Write(HelloMessage("../x", "escaper"));
    grpc::Status s = session.Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_TRUE(Contains(s.error_message(), "host_id")) << s.error_message();
  }
  {
    AgentMessage hello = HelloMessage("h-future", "future");
    hello.mutable_hello()->mutable_protocol()->set_major(kProtocolMajor + 1);
    AgentSession session(agent_.get());
    session.Write(hello);
    grpc::Status s = session.Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
    EXPECT_TRUE(Contains(s.error_message(), "protocol 2.")) << s.error_message();
  }
  v1::ListHostsResponse hosts;
  ASSERT_TRUE(ListHosts(&hosts).ok());
  EXPECT_EQ(hosts.hosts_size(), 0) << hosts.ShortDebugString();
}

// Validates that a log chunk for a command the host was never given gets a ProtocolError naming
// the command and an Ack (so the agent drops it), is not stored, and that the session goes on.
TEST_F(ProtocolTest, LogChunkForForeignCommandIsDroppedAndSessionSurvives) {
  AgentSession alpha(agent_.get());
  ASSERT_TRUE(alpha.Register(HelloMessage("h-alpha", "alpha")));
  AgentSession bravo(agent_.get());
  ASSERT_TRUE(bravo.Register(HelloMessage("h-bravo", "bravo")));

  // A command of bravo's: alpha was never given it.
  v1::Job bravo_job;
  grpc::Status submitted = SubmitTo("bravo", &bravo_job);
  ASSERT_TRUE(submitted.ok()) << submitted.error_message();
  std::optional<ControllerMessage> m = bravo.Read();
  ASSERT_TRUE(m && m->has_command());
  const std::string foreign = m->command().command_id();

  v1::Job alpha_job;
  submitted = SubmitTo("alpha", &alpha_job);
  ASSERT_TRUE(submitted.ok()) << submitted.error_message();
  m = alpha.Read();
  ASSERT_TRUE(m && m->has_command());
  const std::string own = m->command().command_id();

  AgentMessage bad;
  v1::LogChunk* chunk = bad.mutable_items()->add_logs();
  chunk->set_command_id(foreign);
  chunk->set_stream(v1::STDOUT);
  chunk->set_offset(0);
  chunk->set_data("stolen");
  ASSERT_TRUE(alpha.Write(bad));

  m = alpha.Read();
  ASSERT_TRUE(m && m->has_error()) << (m ? m->ShortDebugString() : "stream ended");
  EXPECT_TRUE(Contains(m->error().message(), foreign)) << m->error().message();
  EXPECT_TRUE(Contains(m->error().message(), "not given")) << m->error().message();
  m = alpha.Read();
  ASSERT_TRUE(m && m->has_ack()) << (m ? m->ShortDebugString() : "stream ended");
  ASSERT_EQ(m->ack().logs_size(), 1) << m->ShortDebugString();
  EXPECT_EQ(m->ack().logs(0).command_id(), foreign);
  EXPECT_EQ(m->ack().logs(0).stream(), v1::STDOUT);
  EXPECT_EQ(m->ack().logs(0).offset(), 6u);

  ASSERT_TRUE(alpha.Write(HeartbeatMessage()));

  AgentMessage good;
  v1::LogChunk* own_chunk = good.mutable_items()->add_logs();
  own_chunk->set_command_id(own);
  own_chunk->set_stream(v1::STDOUT);
  own_chunk->set_offset(0);
  own_chunk->set_data("hello\n");
  v1::SequencedItem* accepted = good.mutable_items()->add_sequenced();
  accepted->set_seq(1);
  accepted->mutable_accepted()->set_command_id(own);
  ASSERT_TRUE(alpha.Write(good));
  m = alpha.Read();
  ASSERT_TRUE(m && m->has_ack()) << (m ? m->ShortDebugString() : "stream ended");
  EXPECT_EQ(m->ack().seq(), 1u);
  ASSERT_EQ(m->ack().logs_size(), 1) << m->ShortDebugString();
  EXPECT_EQ(m->ack().logs(0).command_id(), own);
  EXPECT_EQ(m->ack().logs(0).offset(), 6u);

  v1::Job job;
  ASSERT_TRUE(GetJob(alpha_job.id(), &job).ok());
  ASSERT_EQ(job.commands_size(), 1);
  EXPECT_EQ(job.commands(0).state(), v1::COMMAND_ACCEPTED);
  std::string stdout_own;
  ASSERT_TRUE(StoredStdout(own, &stdout_own).ok());
  EXPECT_EQ(stdout_own, "hello\n");
  std::string stdout_foreign;
  ASSERT_TRUE(StoredStdout(foreign, &stdout_foreign).ok());
  EXPECT_EQ(stdout_foreign, "") << "alpha's chunk was stored in bravo's command log";
  EXPECT_EQ(HostState("h-alpha"), v1::ONLINE);
}

// Validates that an Items with more than kMaxItemsPerMessage entries ends the session with
// INVALID_ARGUMENT while one with exactly the limit is applied, and that the host registers again.
TEST_F(ProtocolTest, TooManyItemsEndsSessionButHostReconnects) {
  {
    AgentSession session(agent_.get());
    ASSERT_TRUE(session.Register(HelloMessage("h-busy", "busy")));

    AgentMessage at_limit;
    for (int i = 1; i <= kMaxItemsPerMessage; ++i)
      at_limit.mutable_items()->add_sequenced()->set_seq(i);
    ASSERT_TRUE(session.Write(at_limit));
    std::optional<ControllerMessage> m = session.Read();
    ASSERT_TRUE(m && m->has_ack()) << (m ? m->ShortDebugString() : "stream ended");
    EXPECT_EQ(m->ack().seq(), static_cast<uint64_t>(kMaxItemsPerMessage));

    AgentMessage over;
    for (int i = 1; i <= kMaxItemsPerMessage + 1; ++i) {
      over.mutable_items()->add_sequenced()->set_seq(kMaxItemsPerMessage + i);
    }
    session.Write(over);
    grpc::Status s = session.Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_TRUE(Contains(s.error_message(), std::to_string(kMaxItemsPerMessage)))
        << s.error_message();
  }

  AgentSession again(agent_.get());
  v1::Welcome welcome;
  ASSERT_TRUE(again.Register(HelloMessage("h-busy", "busy"), &welcome));
  EXPECT_EQ(welcome.last_seq(), static_cast<uint64_t>(kMaxItemsPerMessage))
      << "the refused message was partly applied";
  EXPECT_EQ(HostState("h-busy"), v1::ONLINE);
}

// Validates that a second session of the same host replaces the first, which ends with ABORTED,
// and that the host's commands then reach the new session.
TEST_F(ProtocolTest, SecondSessionReplacesFirst) {
  AgentSession first(agent_.get());
  ASSERT_TRUE(first.Register(HelloMessage("h-twice", "twice")));
  AgentSession second(agent_.get());
  ASSERT_TRUE(second.Register(HelloMessage("h-twice", "twice")));

  grpc::Status s = first.Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED) << s.error_message();
  EXPECT_TRUE(Contains(s.error_message(), "replaced")) << s.error_message();

  // The first session's end must not detach the second.
  EXPECT_EQ(HostState("h-twice"), v1::ONLINE);
  v1::Job job;
  grpc::Status submitted = SubmitTo("twice", &job);
  ASSERT_TRUE(submitted.ok()) << submitted.error_message();
  std::optional<ControllerMessage> m = second.Read();
  ASSERT_TRUE(m && m->has_command()) << (m ? m->ShortDebugString() : "stream ended");
  ASSERT_EQ(job.commands_size(), 1);
  EXPECT_EQ(m->command().command_id(), job.commands(0).id());
}

}  // namespace
}  // namespace kfleet::controller
