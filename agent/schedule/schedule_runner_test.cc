#include "agent/schedule/schedule_runner.h"

#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "agent/schedule/fake_clock.h"
#include "agent/schedule/fake_run_launcher.h"
#include "agent/schedule/schedule_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace kfleet::agent {
namespace {

namespace v1 = kfleet::v1;
using ::testing::HasSubstr;

v1::ScheduleSpec Spec(const std::string& name, absl::Duration every,
                      absl::Duration jitter = absl::ZeroDuration(), uint64_t revision = 1) {
  v1::ScheduleSpec s;
  s.set_name(name);
  s.add_argv("true");
  s.set_every_after_ms(absl::ToInt64Milliseconds(every));
  s.set_jitter_ms(absl::ToInt64Milliseconds(jitter));
  s.set_revision(revision);
  return s;
}

v1::ScheduleSet SetOf(std::vector<v1::ScheduleSpec> specs) {
  v1::ScheduleSet set;
  for (auto& s : specs) *set.add_schedules() = std::move(s);
  return set;
}

class ScheduleRunnerTest : public ::testing::Test {
 protected:
  std::unique_ptr<ScheduleRunner> Open(ScheduleRunnerOptions options = {}) {
    int n = 0;
    if (!options.new_command_id) {
      options.new_command_id = [n]() mutable { return absl::StrCat("c-run", ++n); };
    }
    return ScheduleRunner::Open(std::move(options), &clock_, &launcher_);
  }

  FakeClock clock_;
  FakeRunLauncher launcher_;
};

// Validates the spacing rule: the first run starts at once, the next one every_after after the
// previous run ENDED (not after it started), and ScheduleRunStarted says when it was due and when
// the previous run ended.
TEST_F(ScheduleRunnerTest, NextRunIsEveryAfterThePreviousEnd) {
  auto runner = Open();
  ASSERT_TRUE(runner->SetSchedules(SetOf({Spec("tick", absl::Minutes(1))})).ok());
  const absl::Time t0 = clock_.Now();
  runner->RunDue();
  ASSERT_EQ(launcher_.count(), 1u);
  v1::ScheduleRunStarted first = launcher_.runs()[0];
  EXPECT_EQ(first.schedule(), "tick");
  EXPECT_EQ(first.due_unix_ms(), absl::ToUnixMillis(t0));
  EXPECT_EQ(first.previous_end_unix_ms(), 0);
  EXPECT_THAT(first.argv(), ::testing::ElementsAre("true"));

  clock_.Advance(absl::Seconds(20));
  const absl::Time end = clock_.Now();
  EXPECT_TRUE(runner->OnRunFinished(first.command_id(), end));
  EXPECT_EQ(runner->RunDue(), end + absl::Minutes(1));
  clock_.Advance(absl::Minutes(1) - absl::Milliseconds(1));
  runner->RunDue();
  EXPECT_EQ(launcher_.count(), 1u);
  clock_.Advance(absl::Milliseconds(1));
  runner->RunDue();
  ASSERT_EQ(launcher_.count(), 2u);
  v1::ScheduleRunStarted second = launcher_.runs()[1];
  EXPECT_NE(second.command_id(), first.command_id());
  EXPECT_EQ(second.due_unix_ms(), absl::ToUnixMillis(end + absl::Minutes(1)));
  EXPECT_EQ(second.previous_end_unix_ms(), absl::ToUnixMillis(end));
  EXPECT_FALSE(runner->OnRunFinished("c-not-a-run", end));
}

// Validates that a run outlasting the interval is never overlapped: nothing starts while it runs,
// and the next run waits every_after from its end.
TEST_F(ScheduleRunnerTest, NoOverlapWhenARunOutlastsTheInterval) {
  auto runner = Open();
  ASSERT_TRUE(runner->SetSchedules(SetOf({Spec("slow", absl::Seconds(10))})).ok());
  runner->RunDue();
  ASSERT_EQ(launcher_.count(), 1u);
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(absl::Seconds(7));
    EXPECT_EQ(runner->RunDue(), absl::InfiniteFuture());
  }
  EXPECT_EQ(launcher_.count(), 1u);
  const absl::Time end = clock_.Now();
  runner->OnRunFinished(launcher_.runs()[0].command_id(), end);
  EXPECT_EQ(runner->RunDue(), end + absl::Seconds(10));
  EXPECT_EQ(launcher_.count(), 1u);
}

// Validates jitter: every delay drawn lies in [0, jitter), on the first run and on later ones,
// and the draws are not all the same.
TEST_F(ScheduleRunnerTest, JitterStaysWithinBounds) {
  auto runner = Open();
  const absl::Duration every = absl::Seconds(30), jitter = absl::Seconds(10);
  const absl::Time added = clock_.Now();
  ASSERT_TRUE(runner->SetSchedules(SetOf({Spec("j", every, jitter)})).ok());
  std::vector<int64_t> delays;
  absl::Time base = added;
  for (int i = 0; i < 200; ++i) {
    absl::Time next = runner->RunDue();
    if (launcher_.count() == static_cast<size_t>(i)) {  // not due yet: go to when it is
      ASSERT_NE(next, absl::InfiniteFuture());
      clock_.Set(next);
      runner->RunDue();
    }
    ASSERT_EQ(launcher_.count(), static_cast<size_t>(i + 1));
    const v1::ScheduleRunStarted run = launcher_.runs().back();
    int64_t delay = run.due_unix_ms() - absl::ToUnixMillis(base);
    EXPECT_GE(delay, 0);
    EXPECT_LT(delay, absl::ToInt64Milliseconds(jitter));
    delays.push_back(delay);
    clock_.Advance(absl::Seconds(3));
    runner->OnRunFinished(run.command_id(), clock_.Now());
    base = clock_.Now() + every;
  }
  std::sort(delays.begin(), delays.end());
  EXPECT_GT(delays.back() - delays.front(), 1000);
}

// Validates pause and resume: a paused schedule starts nothing (its running run finishes), and on
// resume it is due at last end + every_after, at once if that has passed.
TEST_F(ScheduleRunnerTest, PauseAndResume) {
  auto runner = Open();
  v1::ScheduleSpec spec = Spec("p", absl::Minutes(5));
  ASSERT_TRUE(runner->SetSchedules(SetOf({spec})).ok());
  runner->RunDue();
  ASSERT_EQ(launcher_.count(), 1u);
  spec.set_paused(true);
  spec.set_revision(2);
  ASSERT_TRUE(runner->SetSchedules(SetOf({spec})).ok());
  clock_.Advance(absl::Minutes(1));
  const absl::Time end = clock_.Now();
  EXPECT_TRUE(runner->OnRunFinished(launcher_.runs()[0].command_id(), end));
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(runner->RunDue(), absl::InfiniteFuture());
  EXPECT_EQ(launcher_.count(), 1u);
  ASSERT_EQ(runner->Snapshot().size(), 1u);
  EXPECT_TRUE(runner->Snapshot()[0].paused);

  spec.set_paused(false);
  spec.set_revision(3);
  ASSERT_TRUE(runner->SetSchedules(SetOf({spec})).ok());
  runner->RunDue();
  ASSERT_EQ(launcher_.count(), 2u);
  EXPECT_EQ(launcher_.runs()[1].revision(), 3u);
  EXPECT_EQ(launcher_.runs()[1].due_unix_ms(), absl::ToUnixMillis(end + absl::Minutes(5)));
  EXPECT_EQ(launcher_.runs()[1].previous_end_unix_ms(), absl::ToUnixMillis(end));
}

// Validates removal: a removed schedule starts nothing more, its running run still ends normally,
// and added again under the same name it keeps its spacing instead of running at once.
TEST_F(ScheduleRunnerTest, RemovedScheduleFinishesItsRunAndKeepsItsSpacing) {
  auto runner = Open();
  ASSERT_TRUE(
      runner->SetSchedules(SetOf({Spec("r", absl::Minutes(10)), Spec("keep", absl::Hours(1))}))
          .ok());
  runner->RunDue();
  ASSERT_EQ(launcher_.count(), 2u);
  const std::string run = launcher_.runs()[0].schedule() == "r" ? launcher_.runs()[0].command_id()
                                                                : launcher_.runs()[1].command_id();
  ASSERT_TRUE(runner->SetSchedules(SetOf({Spec("keep", absl::Hours(1))})).ok());
  clock_.Advance(absl::Minutes(2));
  const absl::Time end = clock_.Now();
  EXPECT_TRUE(runner->OnRunFinished(run, end));
  clock_.Advance(absl::Minutes(30));
  runner->RunDue();
  EXPECT_EQ(launcher_.count(), 2u);

  ASSERT_TRUE(
      runner->SetSchedules(SetOf({Spec("keep", absl::Hours(1)), Spec("r", absl::Minutes(45))}))
          .ok());
  EXPECT_EQ(runner->RunDue(), end + absl::Minutes(45));
  EXPECT_EQ(launcher_.count(), 2u);
  clock_.Set(end + absl::Minutes(45));
  runner->RunDue();
  ASSERT_EQ(launcher_.count(), 3u);
  EXPECT_EQ(launcher_.runs()[2].schedule(), "r");
}

// Validates that removing and re-adding a schedule while its run is in flight starts no second
// run until the first has ended.
TEST_F(ScheduleRunnerTest, ReAddedWhileRunningDoesNotOverlap) {
  auto runner = Open();
  ASSERT_TRUE(runner->SetSchedules(SetOf({Spec("x", absl::Seconds(5))})).ok());
  runner->RunDue();
  ASSERT_TRUE(runner->SetSchedules(v1::ScheduleSet()).ok());
  ASSERT_TRUE(runner->SetSchedules(SetOf({Spec("x", absl::Seconds(5))})).ok());
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(runner->RunDue(), absl::InfiniteFuture());
  EXPECT_EQ(launcher_.count(), 1u);
  runner->OnRunFinished(launcher_.runs()[0].command_id(), clock_.Now());
  clock_.Advance(absl::Seconds(5));
  runner->RunDue();
  EXPECT_EQ(launcher_.count(), 2u);
}

// Validates that a run that cannot be launched ends at once and the schedule keeps its spacing:
// no tight loop of failed starts.
TEST_F(ScheduleRunnerTest, FailedLaunchKeepsSpacing) {
  auto runner = Open();
  launcher_.set_status(absl::ResourceExhaustedError("disk full"));
  ASSERT_TRUE(runner->SetSchedules(SetOf({Spec("f", absl::Seconds(30))})).ok());
  const absl::Time t0 = clock_.Now();
  runner->RunDue();
  ASSERT_EQ(launcher_.count(), 1u);
  EXPECT_EQ(runner->RunDue(), t0 + absl::Seconds(30));
  EXPECT_EQ(launcher_.count(), 1u);
  ASSERT_EQ(runner->Snapshot().size(), 1u);
  EXPECT_EQ(runner->Snapshot()[0].running, "");
  EXPECT_EQ(runner->Snapshot()[0].last_end, t0);
  launcher_.set_status(absl::OkStatus());
  clock_.Advance(absl::Seconds(30));
  runner->RunDue();
  EXPECT_EQ(launcher_.count(), 2u);
}

// Validates that a run whose end is reported while Launch is still on its way (a command that
// could not start its process ends at once) is not left marked running.
TEST_F(ScheduleRunnerTest, EndReportedDuringLaunch) {
  auto runner = Open();
  ScheduleRunner* r = runner.get();
  launcher_.set_on_launch([&, r](const v1::ScheduleRunStarted& run) {
    EXPECT_TRUE(r->OnRunFinished(run.command_id(), clock_.Now()));
  });
  ASSERT_TRUE(runner->SetSchedules(SetOf({Spec("bad", absl::Seconds(2))})).ok());
  const absl::Time t0 = clock_.Now();
  runner->RunDue();
  EXPECT_EQ(runner->RunDue(), t0 + absl::Seconds(2));
  EXPECT_EQ(launcher_.count(), 1u);
}

// Validates that bad specs are refused one by one, each named, while the good ones are applied.
TEST_F(ScheduleRunnerTest, BadSpecsRefusedOthersApplied) {
  auto runner = Open();
  v1::ScheduleSpec fast = Spec("fast", absl::Milliseconds(500));
  v1::ScheduleSpec no_argv = Spec("no-argv", absl::Minutes(1));
  no_argv.clear_argv();
  v1::ScheduleSpec bad_name = Spec("mail fetch", absl::Minutes(1));
  v1::ScheduleSpec dup = Spec("good", absl::Hours(2));
  absl::Status s =
      runner->SetSchedules(SetOf({Spec("good", absl::Minutes(1)), fast, no_argv, bad_name, dup}));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("schedule fast: every_after"));
  EXPECT_THAT(s.message(), HasSubstr("schedule no-argv: argv is empty"));
  EXPECT_THAT(s.message(), HasSubstr("\"mail fetch\""));
  EXPECT_THAT(s.message(), HasSubstr("good is given twice"));
  std::vector<ScheduleStatus> all = runner->Snapshot();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].name, "good");
  runner->RunDue();
  ASSERT_EQ(launcher_.count(), 1u);
  EXPECT_EQ(launcher_.runs()[0].schedule(), "good");
}

// Validates the per-host limit: a set larger than kMaxSchedules is cut to its first
// kMaxSchedules, with an error that says so.
TEST_F(ScheduleRunnerTest, AtMostMaxSchedules) {
  auto runner = Open();
  v1::ScheduleSet set;
  for (int i = 0; i < kMaxSchedules + 5; ++i) {
    *set.add_schedules() = Spec(absl::StrCat("s", i), absl::Minutes(1));
  }
  absl::Status s = runner->SetSchedules(set);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("256 schedules"));
  EXPECT_EQ(runner->Snapshot().size(), static_cast<size_t>(kMaxSchedules));
}

// Validates that Stop() wakes the runner's thread from a long wait at once.
TEST_F(ScheduleRunnerTest, StopWakesTheWait) {
  RealClock real;
  FakeRunLauncher launcher;
  absl::Notification launched;
  launcher.set_on_launch([&](const v1::ScheduleRunStarted&) { launched.Notify(); });
  auto runner = ScheduleRunner::Open({}, &real, &launcher);
  ASSERT_TRUE(runner->SetSchedules(SetOf({Spec("hourly", absl::Hours(1))})).ok());
  runner->Start();
  ASSERT_TRUE(launched.WaitForNotificationWithTimeout(absl::Seconds(10)));
  runner->OnRunFinished(launcher.runs()[0].command_id(), real.Now());
  const absl::Time before = absl::Now();
  runner->Stop();
  EXPECT_LT(absl::Now() - before, absl::Seconds(1));
  EXPECT_EQ(launcher.count(), 1u);
}

// Validates the spacing on the real clock with real processes: five runs of `true`, every_after
// 1s; each starts no earlier than its previous end + 1s, and late by little. Prints the error.
TEST(ScheduleRunnerRealClockTest, SpacingErrorOfRealRuns) {
  RealClock real;
  FakeRunLauncher launcher;
  std::unique_ptr<ScheduleRunner> runner;
  absl::Mutex mu;
  std::vector<absl::Time> starts, ends;
  std::vector<std::thread> threads;
  absl::Notification done;
  constexpr int kRuns = 5;
  launcher.set_on_launch([&](const v1::ScheduleRunStarted& run) {
    absl::Time start = absl::Now();
    {
      absl::MutexLock lock(&mu);
      starts.push_back(start);
      // A command runs on its own thread; its end is reported from there, as the agent does.
      threads.emplace_back([&, id = run.command_id()] {
        pid_t pid = 0;
        char* argv[] = {const_cast<char*>("true"), nullptr};
        ASSERT_EQ(::posix_spawnp(&pid, "true", nullptr, nullptr, argv, environ), 0);
        int status = 0;
        ::waitpid(pid, &status, 0);
        absl::Time end = absl::Now();
        bool last;
        {
          absl::MutexLock lock(&mu);
          ends.push_back(end);
          last = ends.size() == kRuns;
        }
        if (last) {
          done.Notify();
        } else {
          runner->OnRunFinished(id, end);
        }
      });
    }
  });
  runner = ScheduleRunner::Open({}, &real, &launcher);
  ASSERT_TRUE(runner->SetSchedules(SetOf({Spec("true", absl::Seconds(1))})).ok());
  runner->Start();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  runner->Stop();
  for (auto& t : threads) t.join();
  ASSERT_EQ(starts.size(), static_cast<size_t>(kRuns));
  absl::Duration worst = absl::ZeroDuration(), sum = absl::ZeroDuration();
  for (int i = 1; i < kRuns; ++i) {
    absl::Duration error = starts[i] - ends[i - 1] - absl::Seconds(1);
    EXPECT_GE(error, absl::ZeroDuration()) << "run " << i << " started early";
    EXPECT_LT(error, absl::Milliseconds(100)) << "run " << i;
    worst = std::max(worst, error);
    sum += error;
  }
  std::printf("spacing error over %d intervals: mean %s, worst %s\n", kRuns - 1,
              absl::FormatDuration(sum / (kRuns - 1)).c_str(), absl::FormatDuration(worst).c_str());
  ::testing::Test::RecordProperty("spacing_error_worst_us",
                                  static_cast<int>(absl::ToInt64Microseconds(worst)));
}

}  // namespace
}  // namespace kfleet::agent
