// The runner across agent restarts: what STATE_DIR/schedules.pb keeps.
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "agent/schedule/fake_clock.h"
#include "agent/schedule/fake_run_launcher.h"
#include "agent/schedule/schedule_runner.h"
#include "agent/schedule/schedule_state.pb.h"
#include "common/files.h"
#include "gtest/gtest.h"

namespace kfleet::agent {
namespace {

namespace v1 = kfleet::v1;

v1::ScheduleSet OneSchedule(absl::Duration every, absl::Duration jitter = absl::ZeroDuration()) {
  v1::ScheduleSet set;
  v1::ScheduleSpec* s = set.add_schedules();
  s->set_name("fetch");
  s->add_argv("fetchmail");
  s->set_every_after_ms(absl::ToInt64Milliseconds(every));
  s->set_jitter_ms(absl::ToInt64Milliseconds(jitter));
  s->set_revision(4);
  return set;
}

class ScheduleRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kfleet-schedule-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/schedules.pb";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  // A new runner on the state file, as a restarted agent makes it; jitter delays drawn are
  // `delay_ms`.
  std::unique_ptr<ScheduleRunner> Open(uint64_t delay_ms = 0) {
    ScheduleRunnerOptions options;
    options.state_path = path_;
    options.random = [delay_ms](uint64_t) { return delay_ms; };
    options.new_command_id = [this] { return absl::StrCat("c-r", ++ids_); };
    return ScheduleRunner::Open(std::move(options), &clock_, &launcher_);
  }

  std::string dir_, path_;
  int ids_ = 0;
  FakeClock clock_;
  FakeRunLauncher launcher_;
};

// Validates that after a restart the next run is due at last end + every_after + the delay drawn
// before the restart, not at once, and that the controller's set sent again changes nothing.
TEST_F(ScheduleRestartTest, DueTimeSurvivesRestart) {
  absl::Time end;
  {
    auto runner = Open(/*delay_ms=*/1234);
    ASSERT_TRUE(runner->SetSchedules(OneSchedule(absl::Minutes(10), absl::Seconds(5))).ok());
    clock_.Advance(absl::Milliseconds(1234));
    runner->RunDue();
    ASSERT_EQ(launcher_.count(), 1u);
    clock_.Advance(absl::Minutes(1));
    end = clock_.Now();
    ASSERT_TRUE(runner->OnRunFinished(launcher_.runs()[0].command_id(), end));
  }
  clock_.Advance(absl::Minutes(3));
  auto runner = Open(/*delay_ms=*/0);  // a delay drawn now would differ
  const absl::Time due = end + absl::Minutes(10) + absl::Milliseconds(1234);
  ASSERT_EQ(runner->Snapshot().size(), 1u);
  EXPECT_EQ(runner->Snapshot()[0].last_end, end);
  EXPECT_EQ(runner->Snapshot()[0].due, due);
  EXPECT_EQ(runner->RunDue(), due);
  ASSERT_TRUE(runner->SetSchedules(OneSchedule(absl::Minutes(10), absl::Seconds(5))).ok());
  EXPECT_EQ(runner->RunDue(), due);
  EXPECT_EQ(launcher_.count(), 1u);
  clock_.Set(due);
  runner->RunDue();
  ASSERT_EQ(launcher_.count(), 2u);
  EXPECT_EQ(launcher_.runs()[1].previous_end_unix_ms(), absl::ToUnixMillis(end));
  EXPECT_EQ(launcher_.runs()[1].revision(), 4u);
}

// Validates that schedules run after a restart with no controller at all (no SetSchedules).
TEST_F(ScheduleRestartTest, RunsWithoutTheController) {
  {
    auto runner = Open();
    ASSERT_TRUE(runner->SetSchedules(OneSchedule(absl::Seconds(30))).ok());
  }
  auto runner = Open();
  runner->RunDue();
  ASSERT_EQ(launcher_.count(), 1u);
  EXPECT_EQ(launcher_.runs()[0].schedule(), "fetch");
  EXPECT_EQ(launcher_.runs()[0].argv(0), "fetchmail");
}

// Validates the run in flight when the agent died: after the restart it counts as ended at the
// restart (no run at once, none overlapping), its id is no longer a run, and the state file no
// longer names it.
TEST_F(ScheduleRestartTest, InFlightRunEndsAtRestart) {
  std::string lost;
  {
    auto runner = Open();
    ASSERT_TRUE(runner->SetSchedules(OneSchedule(absl::Minutes(2))).ok());
    runner->RunDue();
    ASSERT_EQ(launcher_.count(), 1u);
    lost = launcher_.runs()[0].command_id();
    clock_.Advance(absl::Seconds(30));
  }  // killed while the run was in flight: no OnRunFinished
  clock_.Advance(absl::Minutes(7));
  const absl::Time restart = clock_.Now();
  auto runner = Open();
  ASSERT_EQ(runner->Snapshot().size(), 1u);
  EXPECT_EQ(runner->Snapshot()[0].running, "");
  EXPECT_EQ(runner->Snapshot()[0].last_end, restart);
  EXPECT_EQ(runner->RunDue(), restart + absl::Minutes(2));
  EXPECT_EQ(launcher_.count(), 1u);
  EXPECT_FALSE(runner->OnRunFinished(lost, clock_.Now()));

  absl::StatusOr<std::string> data = ReadFile(path_);
  ASSERT_TRUE(data.ok());
  state::ScheduleState st;
  ASSERT_TRUE(st.ParseFromString(*data));
  ASSERT_EQ(st.runs_size(), 1);
  EXPECT_EQ(st.runs(0).running_command_id(), "");
  EXPECT_EQ(st.runs(0).last_end_unix_ms(), absl::ToUnixMillis(restart));
  ASSERT_EQ(st.set().schedules_size(), 1);
  EXPECT_EQ(st.set().schedules(0).name(), "fetch");
}

// Validates that a removed schedule's last end is kept across a restart: added again, it keeps
// its spacing.
TEST_F(ScheduleRestartTest, RemovedScheduleRemembersItsLastEnd) {
  absl::Time end;
  {
    auto runner = Open();
    ASSERT_TRUE(runner->SetSchedules(OneSchedule(absl::Hours(1))).ok());
    runner->RunDue();
    clock_.Advance(absl::Seconds(1));
    end = clock_.Now();
    runner->OnRunFinished(launcher_.runs()[0].command_id(), end);
    ASSERT_TRUE(runner->SetSchedules(v1::ScheduleSet()).ok());
  }
  auto runner = Open();
  ASSERT_TRUE(runner->SetSchedules(OneSchedule(absl::Hours(1))).ok());
  EXPECT_EQ(runner->RunDue(), end + absl::Hours(1));
  EXPECT_EQ(launcher_.count(), 1u);
}

// Validates that a damaged state file does not stop the agent: it is set aside and the runner
// starts empty, ready for the controller's set.
TEST_F(ScheduleRestartTest, DamagedStateFileSetAside) {
  ASSERT_TRUE(WriteFileAtomic(path_, "\xff\xff\xff not a protobuf").ok());
  auto runner = Open();
  EXPECT_TRUE(runner->Snapshot().empty());
  EXPECT_TRUE(std::filesystem::exists(path_ + ".bad"));
  ASSERT_TRUE(runner->SetSchedules(OneSchedule(absl::Minutes(1))).ok());
  runner->RunDue();
  EXPECT_EQ(launcher_.count(), 1u);
}

// Validates that a spec in the state file that the agent no longer accepts is dropped at load.
TEST_F(ScheduleRestartTest, InvalidSpecInStateFileDropped) {
  state::ScheduleState st;
  *st.mutable_set() = OneSchedule(absl::Minutes(1));
  st.mutable_set()->mutable_schedules(0)->set_every_after_ms(10);
  ASSERT_TRUE(WriteFileAtomic(path_, st.SerializeAsString()).ok());
  auto runner = Open();
  EXPECT_TRUE(runner->Snapshot().empty());
  EXPECT_EQ(runner->RunDue(), absl::InfiniteFuture());
}

}  // namespace
}  // namespace kfleet::agent
