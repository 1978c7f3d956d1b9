// A real Agent against a fake controller on a loopback port: the schedules a Welcome carries run as
// ordinary commands, each announced by ScheduleRunStarted, spaced after the previous run's end.
#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agent/agent.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kfleet/v1/agent.grpc.pb.h"

namespace kfleet::agent {
namespace {

namespace v1 = kfleet::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Received {
  absl::Time at;
  v1::SequencedItem item;
};

// The controller's half of the session, reduced to what schedules need: a Welcome with the given
// set, an Ack for every batch, and `update` (a new ScheduleSet) sent once `tick` has finished
// twice.
class FakeController final : public v1::AgentService::Service {
 public:
  FakeController(v1::ScheduleSet welcome_set, v1::ScheduleSet update)
      : welcome_set_(std::move(welcome_set)), update_(std::move(update)) {}

  grpc::Status Session(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::ControllerMessage, v1::AgentMessage>* stream) override {
    v1::AgentMessage in;
    if (!stream->Read(&in) || !in.has_hello()) return grpc::Status::CANCELLED;
    {
      absl::MutexLock lock(&mu_);
      hello_ = in.hello();
    }
    v1::ControllerMessage welcome;
    v1::Welcome* w = welcome.mutable_welcome();
    w->mutable_protocol()->set_major(1);
    w->mutable_protocol()->set_minor(1);
    w->mutable_settings()->set_heartbeat_interval_ms(10000);
    w->set_host_name("scheduled");
    {
      // Like the controller: items are stored once, by seq, across sessions.
      absl::MutexLock lock(&mu_);
      w->set_last_seq(last_seq_);
    }
    *w->mutable_schedules() = welcome_set_;
    if (!stream->Write(welcome)) return grpc::Status::CANCELLED;
    std::map<std::pair<std::string, int>, uint64_t> stored;
    bool updated = false;
    while (stream->Read(&in)) {
      if (!in.has_items()) continue;
      const absl::Time now = absl::Now();
      v1::ControllerMessage ack;
      for (const v1::LogChunk& c : in.items().logs()) {
        uint64_t& end = stored[{c.command_id(), c.stream()}];
        end = std::max<uint64_t>(end, c.offset() + c.data().size());
      }
      int tick_finished = 0;
      {
        absl::MutexLock lock(&mu_);
        for (const v1::SequencedItem& item : in.items().sequenced()) {
          if (item.seq() <= last_seq_) continue;
          last_seq_ = item.seq();
          received_.push_back({now, item});
          if (item.has_schedule_run()) {
            schedule_of_[item.schedule_run().command_id()] = item.schedule_run().schedule();
          }
        }
        for (const Received& r : received_) {
          auto it = schedule_of_.find(r.item.finished().command_id());
          if (r.item.has_finished() && it != schedule_of_.end() && it->second == "tick") {
            ++tick_finished;
          }
        }
        ack.mutable_ack()->set_seq(last_seq_);
      }
      for (const auto& [key, bytes] : stored) {
        v1::LogOffset* o = ack.mutable_ack()->add_logs();
        o->set_command_id(key.first);
        o->set_stream(static_cast<v1::LogStream>(key.second));
        o->set_offset(bytes);
      }
      if (!stream->Write(ack)) break;
      if (tick_finished >= 2 && !updated) {
        v1::ControllerMessage m;
        *m.mutable_schedules() = update_;
        if (!stream->Write(m)) break;
        updated = true;
      }
    }
    return grpc::Status::OK;
  }

  std::vector<Received> received() const {
    absl::MutexLock lock(&mu_);
    return received_;
  }
  // Waits until `n` items of schedule `name` that `kind` picks have arrived.
  bool WaitItems(const std::string& name, int n, bool (v1::SequencedItem::*kind)() const,
                 absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      int count = 0;
      for (const Received& r : received_) {
        if (!(r.item.*kind)()) continue;
        std::string id = r.item.has_schedule_run() ? r.item.schedule_run().command_id()
                         : r.item.has_started()    ? r.item.started().command_id()
                         : r.item.has_finished()   ? r.item.finished().command_id()
                                                   : "";
        auto it = schedule_of_.find(id);
        if (it != schedule_of_.end() && it->second == name) ++count;
      }
      return count >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  // Waits until `done` holds of the items received.
  bool WaitUntil(const std::function<bool(const std::vector<Received>&)>& done,
                 absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto holds = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done(received_); };
    return mu_.AwaitWithTimeout(absl::Condition(&holds), timeout);
  }
  bool WaitFinished(const std::string& name, int n, absl::Duration timeout) {
    return WaitItems(name, n, &v1::SequencedItem::has_finished, timeout);
  }
  v1::Hello hello() const {
    absl::MutexLock lock(&mu_);
    return hello_;
  }

 private:
  const v1::ScheduleSet welcome_set_;
  const v1::ScheduleSet update_;
  mutable absl::Mutex mu_;
  std::vector<Received> received_ ABSL_GUARDED_BY(mu_);
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::string> schedule_of_ ABSL_GUARDED_BY(mu_);  // command id -> schedule
  v1::Hello hello_ ABSL_GUARDED_BY(mu_);
};

v1::ScheduleSpec Spec(const std::string& name, std::vector<std::string> argv) {
  v1::ScheduleSpec s;
  s.set_name(name);
  for (std::string& a : argv) s.add_argv(std::move(a));
  s.set_every_after_ms(1000);
  s.set_revision(7);
  return s;
}

// A FakeController served on a loopback port.
struct FakeServer {
  explicit FakeServer(FakeController* controller) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(controller);
    server = builder.BuildAndStart();
  }
  ~FakeServer() {
    if (server) server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  }
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

AgentOptions TestAgent(int port, const std::string& state_dir) {
  AgentOptions options;
  options.controller = absl::StrCat("127.0.0.1:", port);
  options.state_dir = state_dir;
  options.security.insecure = true;
  options.kmsg_path = "";
  options.cgroups = false;
  options.kill_grace = absl::Seconds(1);
  return options;
}

class AgentScheduleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmp[] = "/tmp/kfleet-agent-schedule-XXXXXX";
    dir_ = ::mkdtemp(tmp);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string dir_;
};

// Validates the agent's side of schedules end to end: a Welcome's schedule runs as a command whose
// ScheduleRunStarted comes before its Accepted, Started and Finished, twice, the second one
// every_after after the first ended; a command that cannot run still ends with the reason and
// keeps its spacing; a ScheduleSet without the schedule stops its runs; Hello says protocol 1.1.
TEST_F(AgentScheduleTest, WelcomeScheduleRunsAsSpacedCommands) {
  v1::ScheduleSet set;
  *set.add_schedules() = Spec("tick", {"true"});
  *set.add_schedules() = Spec("broken", {"/nonexistent/kfleet-no-such-command"});
  v1::ScheduleSet update;
  *update.add_schedules() = Spec("broken", {"/nonexistent/kfleet-no-such-command"});
  FakeController controller(set, update);
  FakeServer server(&controller);
  ASSERT_NE(server.server, nullptr);
  absl::StatusOr<std::unique_ptr<Agent>> agent =
      Agent::Start(TestAgent(server.port, dir_ + "/state"));
  ASSERT_TRUE(agent.ok()) << agent.status();
  ASSERT_TRUE(controller.WaitFinished("tick", 2, absl::Seconds(30)));
  ASSERT_TRUE(controller.WaitFinished("broken", 2, absl::Seconds(30)));
  // The update removed tick as its second run ended: no third run, though one would be due.
  EXPECT_FALSE(controller.WaitFinished("tick", 3, absl::Milliseconds(2500)));
  (*agent)->Stop();

  EXPECT_EQ(controller.hello().protocol().major(), 1u);
  EXPECT_EQ(controller.hello().protocol().minor(), 1u);
  // Per schedule: the items of its runs, in order, and when they arrived.
  std::map<std::string, std::string> schedule_of;
  std::map<std::string, std::vector<std::string>> kinds;
  std::map<std::string, std::vector<Received>> runs, ends;
  for (const Received& r : controller.received()) {
    const v1::SequencedItem& item = r.item;
    if (item.has_schedule_run()) {
      const std::string& name = item.schedule_run().schedule();
      schedule_of[item.schedule_run().command_id()] = name;
      kinds[name].push_back("run");
      runs[name].push_back(r);
      continue;
    }
    std::string id = item.has_accepted()   ? item.accepted().command_id()
                     : item.has_started()  ? item.started().command_id()
                     : item.has_finished() ? item.finished().command_id()
                                           : "";
    ASSERT_TRUE(id.empty() || schedule_of.count(id) > 0) << "an item before its ScheduleRunStarted";
    if (id.empty()) continue;
    const std::string& name = schedule_of[id];
    kinds[name].push_back(item.has_accepted()  ? "accepted"
                          : item.has_started() ? "started"
                                               : "finished");
    if (item.has_finished()) ends[name].push_back(r);
  }
  EXPECT_THAT(kinds["tick"], ElementsAre("run", "accepted", "started", "finished", "run",
                                         "accepted", "started", "finished"));
  ASSERT_EQ(runs["tick"].size(), 2u);
  EXPECT_EQ(ends["tick"][0].item.finished().result().verdict(), v1::PASS);
  const v1::ScheduleRunStarted& first = runs["tick"][0].item.schedule_run();
  const v1::ScheduleRunStarted& second = runs["tick"][1].item.schedule_run();
  EXPECT_THAT(first.argv(), ElementsAre("true"));
  EXPECT_EQ(first.revision(), 7u);
  EXPECT_EQ(first.previous_end_unix_ms(), 0);
  EXPECT_NE(first.command_id(), second.command_id());
  EXPECT_GT(second.previous_end_unix_ms(), first.due_unix_ms());
  EXPECT_EQ(second.due_unix_ms(), second.previous_end_unix_ms() + 1000);
  absl::Duration gap = runs["tick"][1].at - ends["tick"][0].at;
  EXPECT_GT(gap, absl::Milliseconds(900));
  EXPECT_LT(gap, absl::Seconds(3));
  std::printf("tick: second run announced %s after the first run's end arrived\n",
              absl::FormatDuration(gap).c_str());

  // The command that cannot run: a Finished with the reason, and the runs still spaced.
  ASSERT_GE(runs["broken"].size(), 2u);
  ASSERT_GE(kinds["broken"].size(), 8u);
  EXPECT_THAT(std::vector<std::string>(kinds["broken"].begin(), kinds["broken"].begin() + 8),
              ElementsAre("run", "accepted", "started", "finished", "run", "accepted", "started",
                          "finished"));
  const v1::CommandResult& failed = ends["broken"][0].item.finished().result();
  EXPECT_EQ(failed.verdict(), v1::FAIL);
  EXPECT_THAT(failed.detail(),
              HasSubstr("cannot run \"/nonexistent/kfleet-no-such-command\": No such file"));
  const v1::ScheduleRunStarted& retry = runs["broken"][1].item.schedule_run();
  EXPECT_EQ(retry.due_unix_ms(), retry.previous_end_unix_ms() + 1000);
  EXPECT_GT(runs["broken"][1].at - ends["broken"][0].at, absl::Milliseconds(900));
}

// Validates a run in flight when the agent died (its state dir taken as it ran, so the command
// book says running and schedules.pb names the run): the restarted agent reports that command
// once, lost, and the schedule's next run is due every_after after the restart, not at once.
TEST_F(AgentScheduleTest, RunInFlightAtACrashIsReportedLostOnce) {
  v1::ScheduleSet set;
  *set.add_schedules() = Spec("slow", {"sleep", "30"});
  std::string lost;
  {
    FakeController controller(set, v1::ScheduleSet());
    FakeServer server(&controller);
    absl::StatusOr<std::unique_ptr<Agent>> agent =
        Agent::Start(TestAgent(server.port, dir_ + "/before"));
    ASSERT_TRUE(agent.ok()) << agent.status();
    ASSERT_TRUE(
        controller.WaitItems("slow", 1, &v1::SequencedItem::has_started, absl::Seconds(30)));
    std::filesystem::copy(dir_ + "/before", dir_ + "/after",
                          std::filesystem::copy_options::recursive);
    for (const Received& r : controller.received()) {
      if (r.item.has_schedule_run()) lost = r.item.schedule_run().command_id();
    }
    (*agent)->Stop();
  }
  ASSERT_FALSE(lost.empty());
  FakeController controller(set, v1::ScheduleSet());
  FakeServer server(&controller);
  const absl::Time restart = absl::Now();
  absl::StatusOr<std::unique_ptr<Agent>> agent =
      Agent::Start(TestAgent(server.port, dir_ + "/after"));
  ASSERT_TRUE(agent.ok()) << agent.status();
  // Items the first controller acknowledged are not sent again; the new run is.
  ASSERT_TRUE(controller.WaitUntil(
      [&](const std::vector<Received>& items) {
        for (const Received& r : items) {
          if (r.item.has_schedule_run() && r.item.schedule_run().command_id() != lost) return true;
        }
        return false;
      },
      absl::Seconds(30)));
  (*agent)->Stop();

  int lost_finished = 0;
  bool next_run = false;
  for (const Received& r : controller.received()) {
    if (r.item.has_finished() && r.item.finished().command_id() == lost) {
      ++lost_finished;
      EXPECT_FALSE(next_run) << "the lost run must end before the next one starts";
      EXPECT_TRUE(r.item.finished().result().lost());
      EXPECT_EQ(r.item.finished().result().verdict(), v1::INFRA_ERROR);
    }
    if (r.item.has_schedule_run() && r.item.schedule_run().command_id() != lost) {
      next_run = true;
      const v1::ScheduleRunStarted& run = r.item.schedule_run();
      EXPECT_GE(run.previous_end_unix_ms(), absl::ToUnixMillis(restart));
      EXPECT_EQ(run.due_unix_ms(), run.previous_end_unix_ms() + 1000);
      EXPECT_GE(r.at - restart, absl::Seconds(1));
    }
  }
  EXPECT_EQ(lost_finished, 1);
  EXPECT_TRUE(next_run);
}

}  // namespace
}  // namespace kfleet::agent
