#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/executor.h"
#include "controller/api/fleet_service.h"
#include "controller/api/schedule_validation.h"
#include "controller/fleet/schedule_push.h"
#include "controller/store/sqlite_store.h"

namespace kfleet::controller {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

v1::Schedule Good() {
  v1::Schedule s;
  s.set_name("mbsync-inbox");
  s.add_host_names("mail");
  s.add_argv("mbsync");
  s.add_argv("inbox");
  s.set_every_after_ms(300000);
  s.set_jitter_ms(30000);
  s.set_memory_max_bytes(200 << 20);
  return s;
}

// Validates that a schedule is checked field by field, each error naming the field, kctl's flag
// and the fix.
TEST(ValidateScheduleTest, NamesTheFieldAndTheFix) {
  EXPECT_TRUE(ValidateSchedule(Good()).ok());
  struct Case {
    std::function<void(v1::Schedule&)> change;
    std::string error;
  };
  std::vector<Case> cases = {
      {[](v1::Schedule& s) { s.set_name(""); }, "name: \"\" is not a schedule name"},
      {[](v1::Schedule& s) { s.set_name("-x"); }, "starting with a letter or digit"},
      {[](v1::Schedule& s) { s.set_name("a b"); }, "is not a schedule name"},
      {[](v1::Schedule& s) { s.clear_host_names(); }, "hosts: give the hosts to run on"},
      {[](v1::Schedule& s) { (*s.mutable_labels())["pool"] = "x"; }, "not both"},
      {[](v1::Schedule& s) { s.set_host_names(0, "../x"); }, "host_names: \"../x\""},
      {[](v1::Schedule& s) { s.clear_argv(); }, "argv: is empty: give the command to run"},
      {[](v1::Schedule& s) { s.set_argv(0, ""); }, "argv: is empty"},
      {[](v1::Schedule& s) { s.set_every_after_ms(0); }, "every_after (--every-after): is missing"},
      {[](v1::Schedule& s) { s.set_every_after_ms(500); },
       "every_after (--every-after): 500ms is out of range: give 1s to 8784h"},
      {[](v1::Schedule& s) { s.set_every_after_ms(400ull * 24 * 3600 * 1000); }, "out of range"},
      {[](v1::Schedule& s) { s.set_jitter_ms(400ull * 24 * 3600 * 1000); }, "jitter (--jitter)"},
      {[](v1::Schedule& s) { s.set_timeout_ms(10); }, "timeout (--timeout): 10ms"},
      {[](v1::Schedule& s) { s.set_memory_max_bytes(4096); },
       "memory_max (--memory-max): 4096 bytes is below 1 MiB"},
  };
  for (const Case& c : cases) {
    v1::Schedule s = Good();
    c.change(s);
    absl::Status st = ValidateSchedule(s);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.error;
    EXPECT_THAT(st.message(), HasSubstr(c.error));
  }
}

// What a fake agent session received.
class RecordingSession : public SessionHandle {
 public:
  void Send(v1::ControllerMessage message) override {
    absl::MutexLock lock(&mu_);
    messages_.push_back(std::move(message));
  }
  void Close(const grpc::Status&) override {}

  std::vector<v1::ControllerMessage> Take() {
    absl::MutexLock lock(&mu_);
    return std::move(messages_);
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::ControllerMessage> messages_ ABSL_GUARDED_BY(mu_);
};

std::vector<std::string> Names(const v1::ScheduleSet& set) {
  std::vector<std::string> out;
  for (const v1::ScheduleSpec& s : set.schedules()) out.push_back(s.name());
  return out;
}

// The admin API's schedule calls against a real store, on a real gRPC server on port 0, with
// one connected agent session faked.
class ScheduleServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kfleet-schedsvc-XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto store = SqliteStore::Open(dir_ + "/kfleet.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    logs_ = std::make_unique<LogStore>(dir_);
    executor_ = std::make_unique<Executor>(2);
    feed_ = std::make_unique<ChangeFeed>(executor_.get());
    fleet_ = std::make_unique<Fleet>(store_.get(), feed_.get(), LivenessSettings{});
    pusher_ = std::make_unique<SchedulePusher>(store_.get(), fleet_.get());
    FleetServiceImpl::Deps deps{store_.get(),    logs_.get(), fleet_.get(),
                                executor_.get(), feed_.get(), nullptr};
    deps.schedules = pusher_.get();
    service_ = std::make_unique<FleetServiceImpl>(deps);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(port, 0);
    stub_ = v1::FleetService::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                          grpc::InsecureChannelCredentials()));

    v1::Hello hello;
    hello.set_host_id("h-mail");
    hello.set_name("mail");
    ASSERT_TRUE(store_->RegisterHost(hello, 1000).ok());
    session_ = std::make_shared<RecordingSession>();
    fleet_->Attach("h-mail", session_);
  }

  void TearDown() override {
    server_->Shutdown();
    server_.reset();
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  grpc::Status Add(const v1::Schedule& s, v1::Schedule* out = nullptr) {
    grpc::ClientContext ctx;
    v1::AddScheduleRequest req;
    *req.mutable_schedule() = s;
    v1::Schedule resp;
    grpc::Status st = stub_->AddSchedule(&ctx, req, &resp);
    if (out != nullptr) *out = resp;
    return st;
  }

  // The schedule sets pushed to the session since the last call, and the cancels.
  std::vector<v1::ScheduleSet> Sets(std::vector<std::string>* cancels = nullptr) {
    std::vector<v1::ScheduleSet> sets;
    for (v1::ControllerMessage& m : session_->Take()) {
      if (m.has_schedules()) sets.push_back(m.schedules());
      if (m.has_cancel() && cancels != nullptr) cancels->push_back(m.cancel().command_id());
    }
    return sets;
  }

  std::string dir_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<LogStore> logs_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<ChangeFeed> feed_;
  std::unique_ptr<Fleet> fleet_;
  std::unique_ptr<SchedulePusher> pusher_;
  std::unique_ptr<FleetServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::FleetService::Stub> stub_;
  std::shared_ptr<RecordingSession> session_;
};

// Validates that the controller refuses what kctl refuses, and an unknown host and a duplicate
// name too, storing nothing and pushing nothing.
TEST_F(ScheduleServiceTest, RefusesBadInput) {
  v1::Schedule bad = Good();
  bad.set_every_after_ms(10);
  grpc::Status st = Add(bad);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("every_after (--every-after)"));

  v1::Schedule empty = Good();
  empty.clear_argv();
  EXPECT_EQ(Add(empty).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  v1::Schedule unknown = Good();
  unknown.set_host_names(0, "nohost");
  st = Add(unknown);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(st.error_message(), HasSubstr("host_names (--host): no host \"nohost\""));
  absl::StatusOr<std::vector<v1::Schedule>> stored = store_->ListSchedules();
  ASSERT_TRUE(stored.ok());
  EXPECT_THAT(*stored, IsEmpty());

  ASSERT_TRUE(Add(Good()).ok());
  st = Add(Good());
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(st.error_message(), HasSubstr("already exists"));
  stored = store_->ListSchedules();
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->size(), 1u);
}

// Validates that add, pause, resume and rm each push the host its whole new set, and that rm
// --cancel sends Cancel for the run in progress.
TEST_F(ScheduleServiceTest, PushesSetsAndCancels) {
  v1::Schedule added;
  ASSERT_TRUE(Add(Good(), &added).ok());
  EXPECT_EQ(added.creator().empty(), false);
  std::vector<v1::ScheduleSet> sets = Sets();
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_THAT(Names(sets[0]), ElementsAre("mbsync-inbox"));
  EXPECT_EQ(sets[0].schedules(0).every_after_ms(), 300000u);
  EXPECT_FALSE(sets[0].schedules(0).paused());

  v1::Schedule other = Good();
  other.set_name("second");
  ASSERT_TRUE(Add(other).ok());
  sets = Sets();
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_THAT(Names(sets[0]), ElementsAre("mbsync-inbox", "second"));

  {
    grpc::ClientContext ctx;
    v1::PauseScheduleRequest req;
    req.set_name("second");
    req.set_paused(true);
    v1::Schedule resp;
    ASSERT_TRUE(stub_->PauseSchedule(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.paused());
  }
  sets = Sets();
  ASSERT_EQ(sets.size(), 1u);
  ASSERT_EQ(sets[0].schedules_size(), 2);
  EXPECT_TRUE(sets[0].schedules(1).paused());
  EXPECT_GT(sets[0].schedules(1).revision(), sets[0].schedules(0).revision());

  // A run in progress, as its agent reported it.
  v1::SequencedItem item;
  item.set_seq(1);
  item.mutable_schedule_run()->set_schedule("mbsync-inbox");
  item.mutable_schedule_run()->set_command_id("c-run");
  item.mutable_schedule_run()->add_argv("mbsync");
  ASSERT_TRUE(store_->StartScheduleRuns("h-mail", {item}, 5000).ok());
  {
    grpc::ClientContext ctx;
    v1::RemoveScheduleRequest req;
    req.set_name("mbsync-inbox");
    req.set_cancel(true);
    v1::RemoveScheduleResponse resp;
    ASSERT_TRUE(stub_->RemoveSchedule(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.running_size(), 1);
    EXPECT_EQ(resp.running(0).command_id(), "c-run");
  }
  std::vector<std::string> cancels;
  sets = Sets(&cancels);
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_THAT(Names(sets[0]), ElementsAre("second"));
  EXPECT_THAT(cancels, ElementsAre("c-run"));

  grpc::ClientContext ctx;
  v1::GetScheduleRequest get;
  get.set_name("mbsync-inbox");
  v1::Schedule gone;
  EXPECT_EQ(stub_->GetSchedule(&ctx, get, &gone).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace kfleet::controller
