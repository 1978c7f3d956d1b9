// Schedules over a real agent session: a Controller serving on a loopback port in this process,
// an agent spoken by the generated stub, kctl's calls by the FleetService stub.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/credentials.h"
#include "controller/controller.h"
#include "controller/fleet/agent_service.h"
#include "kfleet/v1/agent.grpc.pb.h"
#include "kfleet/v1/fleet.grpc.pb.h"

namespace kfleet::controller {
namespace {

using ::kfleet::v1::AgentMessage;
using ::kfleet::v1::ControllerMessage;

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + std::chrono::seconds(10);
}

class ScheduleSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/kfleet-schedule-session-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    state_dir_ = dir;
    ControllerOptions options;
    options.listen = "127.0.0.1:0";
    options.state_dir = state_dir_;
    options.security.insecure = true;
    absl::StatusOr<std::unique_ptr<Controller>> c = Controller::Start(options);
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = std::move(*c);
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(
        TransportSecurity{/*insecure=*/true}, "127.0.0.1:" + std::to_string(controller_->port()));
    ASSERT_TRUE(channel.ok()) << channel.status();
    agent_ = v1::AgentService::NewStub(*channel);
    fleet_ = v1::FleetService::NewStub(*channel);
    ctx_.set_deadline(Deadline());
    stream_ = agent_->Session(&ctx_);
    AgentMessage hello;
    hello.mutable_hello()->set_host_id("h-mail");
    hello.mutable_hello()->set_boot_id("boot-1");
    hello.mutable_hello()->set_name("mail");
    hello.mutable_hello()->mutable_protocol()->set_major(kProtocolMajor);
    hello.mutable_hello()->mutable_protocol()->set_minor(kProtocolMinor);
    ASSERT_TRUE(stream_->Write(hello));
    std::optional<ControllerMessage> welcome = Next();
    ASSERT_TRUE(welcome && welcome->has_welcome());
    welcome_ = welcome->welcome();
  }

  void TearDown() override {
    ctx_.TryCancel();
    (void)stream_->Finish();
    stream_.reset();
    controller_.reset();
    std::filesystem::remove_all(state_dir_);
  }

  std::optional<ControllerMessage> Next() {
    ControllerMessage m;
    if (!stream_->Read(&m)) return std::nullopt;
    return m;
  }

  // The next message that is not an Ack (kept in `acks`).
  std::optional<ControllerMessage> NextNonAck(std::vector<v1::Ack>* acks = nullptr) {
    while (true) {
      std::optional<ControllerMessage> m = Next();
      if (!m || !m->has_ack()) return m;
      if (acks != nullptr) acks->push_back(m->ack());
    }
  }

  v1::Ack SendItems(const v1::Items& items, std::vector<ControllerMessage>* others = nullptr) {
    AgentMessage m;
    *m.mutable_items() = items;
    EXPECT_TRUE(stream_->Write(m));
    while (true) {
      std::optional<ControllerMessage> in = Next();
      if (!in) {
        ADD_FAILURE() << "stream ended";
        return v1::Ack();
      }
      if (in->has_ack()) return in->ack();
      if (others != nullptr) others->push_back(*in);
    }
  }

  std::string state_dir_;
  std::unique_ptr<Controller> controller_;
  std::unique_ptr<v1::AgentService::Stub> agent_;
  std::unique_ptr<v1::FleetService::Stub> fleet_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<AgentMessage, ControllerMessage>> stream_;
  v1::Welcome welcome_;
};

// Validates the whole round: Welcome carries the (empty) set; an added schedule reaches the
// session; a batch carrying the run's start, its first log chunk and its end stores the run as a
// job whose log and result the admin API shows; a run of a schedule never sent is refused.
TEST_F(ScheduleSessionTest, RunRoundTrip) {
  EXPECT_TRUE(welcome_.has_schedules());
  EXPECT_EQ(welcome_.schedules().schedules_size(), 0);
  EXPECT_EQ(welcome_.protocol().minor(), 1u);

  v1::AddScheduleRequest add;
  v1::Schedule* s = add.mutable_schedule();
  s->set_name("inbox");
  s->add_host_names("mail");
  s->add_argv("mbsync");
  s->set_every_after_ms(2000);
  v1::Schedule added;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    ASSERT_TRUE(fleet_->AddSchedule(&ctx, add, &added).ok());
  }
  std::optional<ControllerMessage> pushed = NextNonAck();
  ASSERT_TRUE(pushed && pushed->has_schedules()) << (pushed ? pushed->ShortDebugString() : "");
  ASSERT_EQ(pushed->schedules().schedules_size(), 1);
  EXPECT_EQ(pushed->schedules().schedules(0).name(), "inbox");
  EXPECT_EQ(pushed->schedules().schedules(0).every_after_ms(), 2000u);
  EXPECT_EQ(pushed->schedules().schedules(0).revision(), added.revision());

  // One batch, logs and items together, as an outbox may send them.
  v1::Items items;
  v1::LogChunk* chunk = items.add_logs();
  chunk->set_command_id("c-0123456789abcdef");
  chunk->set_stream(v1::STDOUT);
  chunk->set_offset(0);
  chunk->set_data("fetched 3\n");
  v1::SequencedItem* run = items.add_sequenced();
  run->set_seq(1);
  run->mutable_schedule_run()->set_schedule("inbox");
  run->mutable_schedule_run()->set_command_id("c-0123456789abcdef");
  run->mutable_schedule_run()->add_argv("mbsync");
  run->mutable_schedule_run()->set_revision(added.revision());
  v1::SequencedItem* accepted = items.add_sequenced();
  accepted->set_seq(2);
  accepted->mutable_accepted()->set_command_id("c-0123456789abcdef");
  v1::SequencedItem* fin = items.add_sequenced();
  fin->set_seq(3);
  fin->mutable_finished()->set_command_id("c-0123456789abcdef");
  fin->mutable_finished()->mutable_result()->set_verdict(v1::PASS);
  fin->mutable_finished()->mutable_result()->set_wall_ms(40);
  fin->mutable_finished()->set_stdout_bytes(10);
  std::vector<ControllerMessage> others;
  v1::Ack ack = SendItems(items, &others);
  EXPECT_EQ(ack.seq(), 3u);
  for (const ControllerMessage& m : others) {
    EXPECT_FALSE(m.has_error()) << m.ShortDebugString();
  }
  bool stored_log = false;
  for (const v1::LogOffset& o : ack.logs()) {
    stored_log = stored_log || (o.command_id() == "c-0123456789abcdef" && o.offset() == 10);
  }
  EXPECT_TRUE(stored_log) << ack.ShortDebugString();

  v1::ListScheduleRunsRequest list;
  list.set_name("inbox");
  v1::ListScheduleRunsResponse runs;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    ASSERT_TRUE(fleet_->ListScheduleRuns(&ctx, list, &runs).ok());
  }
  ASSERT_EQ(runs.runs_size(), 1);
  EXPECT_EQ(runs.runs(0).outcome(), "pass");
  v1::GetJobRequest get;
  get.set_id(runs.runs(0).job_id());
  v1::Job job;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    ASSERT_TRUE(fleet_->GetJob(&ctx, get, &job).ok());
  }
  EXPECT_EQ(job.verdict(), v1::PASS);
  ASSERT_EQ(job.commands_size(), 1);
  EXPECT_EQ(job.commands(0).stdout_bytes(), 10u);
  v1::TailLogsRequest tail;
  tail.set_command_id("c-0123456789abcdef");
  grpc::ClientContext tail_ctx;
  tail_ctx.set_deadline(Deadline());
  std::unique_ptr<grpc::ClientReader<v1::LogData>> reader = fleet_->TailLogs(&tail_ctx, tail);
  std::string out;
  v1::LogData d;
  while (reader->Read(&d)) out += d.data();
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(out, "fetched 3\n");

  // A schedule this host was never sent.
  v1::Items bad;
  v1::SequencedItem* stray = bad.add_sequenced();
  stray->set_seq(4);
  stray->mutable_schedule_run()->set_schedule("other");
  stray->mutable_schedule_run()->set_command_id("c-fedcba9876543210");
  others.clear();
  ack = SendItems(bad, &others);
  EXPECT_EQ(ack.seq(), 4u);  // acknowledged all the same
  ASSERT_EQ(others.size(), 1u);
  EXPECT_NE(others[0].error().message().find("never sent a schedule of that name"),
            std::string::npos)
      << others[0].ShortDebugString();
}

}  // namespace
}  // namespace kfleet::controller
