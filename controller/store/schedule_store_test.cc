#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include "absl/strings/str_cat.h"
#include "controller/store/sqlite_store.h"

namespace kfleet::controller {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class ScheduleStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kfleet-schedules-XXXXXX";
    dir_ = mkdtemp(tmpl);
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  void Reopen() {
    store_.reset();
    auto store = SqliteStore::Open(dir_ + "/kfleet.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  void Register(const std::string& id, const std::string& name,
                std::map<std::string, std::string> labels = {}) {
    v1::Hello hello;
    hello.set_host_id(id);
    hello.set_name(name);
    for (const auto& [k, v] : labels) (*hello.mutable_labels())[k] = v;
    ASSERT_TRUE(store_->RegisterHost(hello, 1000).ok());
  }

  static v1::Schedule Named(const std::string& name, const std::vector<std::string>& hosts) {
    v1::Schedule s;
    s.set_name(name);
    for (const std::string& h : hosts) s.add_host_names(h);
    s.add_argv("mbsync");
    s.add_argv("inbox");
    s.set_every_after_ms(60000);
    s.set_memory_max_bytes(32 << 20);
    return s;
  }

  std::vector<std::string> SetNames(const std::string& host_id) {
    absl::StatusOr<v1::ScheduleSet> set = store_->ScheduleSetFor(host_id);
    EXPECT_TRUE(set.ok()) << set.status();
    std::vector<std::string> names;
    if (set.ok()) {
      for (const v1::ScheduleSpec& s : set->schedules()) names.push_back(s.name());
    }
    return names;
  }

  static v1::SequencedItem RunStarted(uint64_t seq, const std::string& schedule,
                                      const std::string& command_id, int64_t due_ms) {
    v1::SequencedItem item;
    item.set_seq(seq);
    v1::ScheduleRunStarted* run = item.mutable_schedule_run();
    run->set_schedule(schedule);
    run->set_command_id(command_id);
    run->add_argv("mbsync");
    run->set_due_unix_ms(due_ms);
    run->set_revision(1);
    run->set_memory_max_bytes(32 << 20);
    return item;
  }

  static v1::SequencedItem Finished(uint64_t seq, const std::string& command_id,
                                    v1::CommandResult result) {
    v1::SequencedItem item;
    item.set_seq(seq);
    item.mutable_finished()->set_command_id(command_id);
    *item.mutable_finished()->mutable_result() = std::move(result);
    return item;
  }

  static v1::CommandResult Passed(int64_t wall_ms) {
    v1::CommandResult r;
    r.set_verdict(v1::PASS);
    r.set_wall_ms(wall_ms);
    r.set_memory_peak_bytes(5 << 20);
    return r;
  }

  // Stores the runs of `items` and applies them, as a session does with a batch.
  ScheduleRunsOutcome Apply(const std::string& host_id, const std::vector<v1::SequencedItem>& items,
                            int64_t now_ms) {
    absl::StatusOr<ScheduleRunsOutcome> runs = store_->StartScheduleRuns(host_id, items, now_ms);
    EXPECT_TRUE(runs.ok()) << runs.status();
    absl::StatusOr<ApplyOutcome> applied = store_->ApplySequenced(host_id, items, now_ms);
    EXPECT_TRUE(applied.ok()) << applied.status();
    return runs.ok() ? *runs : ScheduleRunsOutcome{};
  }

  std::string dir_;
  std::unique_ptr<SqliteStore> store_;
};

// Validates that schedules are stored with a growing revision, a live name is unique, and pause
// and remove change the revision.
TEST_F(ScheduleStoreTest, AddPauseRemove) {
  Register("h-mail", "mail");
  absl::StatusOr<v1::Schedule> added = store_->AddSchedule(Named("inbox", {"mail"}), 5000);
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->revision(), 1u);
  ASSERT_EQ(added->hosts_size(), 1);
  EXPECT_EQ(added->hosts(0).host_name(), "mail");
  EXPECT_EQ(added->created_unix_ms(), 5000);

  absl::StatusOr<v1::Schedule> again = store_->AddSchedule(Named("inbox", {"mail"}), 6000);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.status().message(), HasSubstr("kctl schedule rm inbox"));

  absl::StatusOr<v1::Schedule> paused = store_->SetSchedulePaused("inbox", true, 7000);
  ASSERT_TRUE(paused.ok());
  EXPECT_TRUE(paused->paused());
  EXPECT_EQ(paused->revision(), 2u);
  absl::StatusOr<v1::ScheduleSet> set = store_->ScheduleSetFor("h-mail");
  ASSERT_TRUE(set.ok());
  ASSERT_EQ(set->schedules_size(), 1);
  EXPECT_TRUE(set->schedules(0).paused());
  EXPECT_EQ(set->schedules(0).revision(), 2u);
  EXPECT_EQ(set->schedules(0).memory_max_bytes(), 32u << 20);

  absl::StatusOr<ScheduleRemoval> removed = store_->RemoveSchedule("inbox", false, 8000);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_THAT(removed->host_ids, ElementsAre("h-mail"));
  EXPECT_THAT(SetNames("h-mail"), IsEmpty());
  EXPECT_EQ(store_->GetSchedule("inbox").status().code(), absl::StatusCode::kNotFound);
  // The name is free again; the new schedule's revision goes on growing.
  absl::StatusOr<v1::Schedule> readded = store_->AddSchedule(Named("inbox", {"mail"}), 9000);
  ASSERT_TRUE(readded.ok()) << readded.status();
  EXPECT_EQ(readded->revision(), 4u);
}

// Validates that a host is given no more schedules than an agent runs.
TEST_F(ScheduleStoreTest, RefusesPastTheAgentsLimit) {
  Register("h-mail", "mail");
  for (int i = 0; i < kMaxSchedulesPerHost; ++i) {
    ASSERT_TRUE(store_->AddSchedule(Named(absl::StrCat("s", i), {"mail"}), 1000).ok()) << i;
  }
  absl::StatusOr<v1::Schedule> over = store_->AddSchedule(Named("one-more", {"mail"}), 1000);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(over.status().message(), HasSubstr("host mail already has 256 schedules"));
  EXPECT_EQ(SetNames("h-mail").size(), static_cast<size_t>(kMaxSchedulesPerHost));
}

// Validates that a label selector takes every host carrying the labels, hosts that register
// after the schedule was added included, and a name selector only the named host.
TEST_F(ScheduleStoreTest, LabelSelection) {
  Register("h-1", "guest-1", {{"pool", "local"}, {"role", "guest"}});
  Register("h-2", "guest-2", {{"pool", "other"}});
  Register("h-mail", "mail");
  v1::Schedule smoke = Named("smoke", {});
  (*smoke.mutable_labels())["pool"] = "local";
  ASSERT_TRUE(store_->AddSchedule(smoke, 1000).ok());
  ASSERT_TRUE(store_->AddSchedule(Named("inbox", {"mail"}), 1000).ok());

  EXPECT_THAT(SetNames("h-1"), ElementsAre("smoke"));
  EXPECT_THAT(SetNames("h-2"), IsEmpty());
  EXPECT_THAT(SetNames("h-mail"), ElementsAre("inbox"));
  Register("h-3", "guest-3", {{"pool", "local"}});
  EXPECT_THAT(SetNames("h-3"), ElementsAre("smoke"));

  absl::StatusOr<std::vector<std::string>> ids = store_->ScheduleHostIds("smoke");
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ElementsAre("h-1", "h-3"));
  absl::StatusOr<v1::Schedule> got = store_->GetSchedule("smoke");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->hosts_size(), 2);
  EXPECT_EQ(got->hosts(0).host_name(), "guest-1");
  EXPECT_EQ(got->hosts(1).host_name(), "guest-3");
}

// Validates that a run becomes a job of one command under the agent's command id, that the
// usual command items then apply to it, and that storing it again (a resent batch, or the
// session's first pass followed by ApplySequenced) changes nothing.
TEST_F(ScheduleStoreTest, RunCreationIsIdempotent) {
  Register("h-mail", "mail");
  ASSERT_TRUE(store_->AddSchedule(Named("inbox", {"mail"}), 1000).ok());
  ASSERT_EQ(SetNames("h-mail").size(), 1u);  // sent

  ScheduleRunsOutcome first = Apply("h-mail", {RunStarted(1, "inbox", "c-run1", 60000)}, 60100);
  EXPECT_EQ(first.stored, 1);
  EXPECT_THAT(first.problems, IsEmpty());
  absl::StatusOr<ScheduleRunsOutcome> again =
      store_->StartScheduleRuns("h-mail", {RunStarted(1, "inbox", "c-run1", 60000)}, 60200);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->stored, 0);  // seq 1 is stored
  absl::StatusOr<ScheduleRunsOutcome> new_seq =
      store_->StartScheduleRuns("h-mail", {RunStarted(2, "inbox", "c-run1", 60000)}, 60200);
  ASSERT_TRUE(new_seq.ok());
  EXPECT_EQ(new_seq->stored, 0);  // the command id is stored
  EXPECT_THAT(new_seq->problems, IsEmpty());

  absl::StatusOr<v1::CommandInfo> cmd = store_->GetCommand("c-run1");
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->host_id(), "h-mail");
  EXPECT_EQ(cmd->state(), v1::COMMAND_ACCEPTED);
  EXPECT_EQ(cmd->step().memory_max(), std::to_string(32 << 20));
  absl::StatusOr<v1::Job> job = store_->GetJob(cmd->job_id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->spec().name(), "schedule inbox");
  EXPECT_EQ(job->submitter(), "schedule inbox");
  EXPECT_EQ(job->commands_size(), 1);
  absl::StatusOr<std::string> owner = store_->CommandHost("c-run1");
  ASSERT_TRUE(owner.ok());
  EXPECT_EQ(*owner, "h-mail");
  // Never dispatched: the agent runs it already.
  absl::StatusOr<std::vector<v1::Command>> pending = store_->PendingCommands("h-mail");
  ASSERT_TRUE(pending.ok());
  EXPECT_THAT(*pending, IsEmpty());

  v1::SequencedItem started;
  started.set_seq(3);
  started.mutable_started()->set_command_id("c-run1");
  Apply("h-mail", {started, Finished(4, "c-run1", Passed(1500))}, 61700);
  job = store_->GetJob(cmd->job_id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::JOB_DONE);
  EXPECT_EQ(job->verdict(), v1::PASS);

  absl::StatusOr<std::vector<v1::ScheduleRun>> runs = store_->ListScheduleRuns("inbox", "", 10, 0);
  ASSERT_TRUE(runs.ok()) << runs.status();
  ASSERT_EQ(runs->size(), 1u);
  const v1::ScheduleRun& run = (*runs)[0];
  EXPECT_EQ(run.command_id(), "c-run1");
  EXPECT_EQ(run.outcome(), "pass");
  EXPECT_EQ(run.started_unix_ms(), 60000);  // the agent's clock: when it was due
  EXPECT_EQ(run.ended_unix_ms(), 61500);
  EXPECT_EQ(run.host_name(), "mail");
  EXPECT_THAT(run.argv(), ElementsAre("mbsync"));
  EXPECT_EQ(run.result().wall_ms(), 1500);
  EXPECT_GT(run.change(), 1u);  // stored, then ended

  absl::StatusOr<std::vector<ScheduleRunStats>> stats = store_->ListScheduleRunStats();
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->size(), 1u);
  EXPECT_EQ((*stats)[0].pass, 1);
  EXPECT_EQ((*stats)[0].host_name, "mail");
  EXPECT_EQ((*stats)[0].last_end_ms, 61500);
  EXPECT_EQ((*stats)[0].last_duration_ms, 1500);
  EXPECT_EQ((*stats)[0].last_peak_bytes, 5 << 20);
}

// Validates the runs refused: a malformed command id, a schedule this host was never sent, a
// command id that belongs to another host. Each is a problem in words; nothing is stored.
TEST_F(ScheduleStoreTest, RunsRefused) {
  Register("h-mail", "mail");
  Register("h-other", "other");
  ASSERT_TRUE(store_->AddSchedule(Named("inbox", {"mail"}), 1000).ok());
  ASSERT_EQ(SetNames("h-mail").size(), 1u);
  Apply("h-mail", {RunStarted(1, "inbox", "c-mine", 2000)}, 2000);

  ScheduleRunsOutcome bad = Apply("h-mail", {RunStarted(2, "inbox", "../etc", 3000)}, 3000);
  ASSERT_EQ(bad.problems.size(), 1u);
  EXPECT_THAT(bad.problems[0], HasSubstr("command_id is not 1-64 characters"));
  ScheduleRunsOutcome unsent = Apply("h-other", {RunStarted(1, "inbox", "c-x", 3000)}, 3000);
  ASSERT_EQ(unsent.problems.size(), 1u);
  EXPECT_THAT(unsent.problems[0], HasSubstr("never sent a schedule of that name"));
  ScheduleRunsOutcome unknown = Apply("h-mail", {RunStarted(3, "nope", "c-y", 3000)}, 3000);
  ASSERT_EQ(unknown.problems.size(), 1u);
  ASSERT_TRUE(store_->AddSchedule(Named("other", {"other"}), 1000).ok());
  ASSERT_EQ(SetNames("h-other").size(), 1u);
  ScheduleRunsOutcome stolen = Apply("h-other", {RunStarted(2, "other", "c-mine", 3000)}, 3000);
  ASSERT_EQ(stolen.problems.size(), 1u);
  EXPECT_THAT(stolen.problems[0], HasSubstr("already in use"));

  absl::StatusOr<std::vector<v1::ScheduleRun>> runs = store_->ListScheduleRuns("inbox", "", 10, 0);
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ(runs->size(), 1u);
  EXPECT_EQ(store_->GetCommand("c-x").status().code(), absl::StatusCode::kNotFound);
}

// Validates that a run of a schedule removed while its host was away is still stored, and that
// rm --cancel marks the running run's command for a Cancel that a reconnecting agent gets.
TEST_F(ScheduleStoreTest, RemovedSchedulesKeepTheirRuns) {
  Register("h-mail", "mail");
  ASSERT_TRUE(store_->AddSchedule(Named("inbox", {"mail"}), 1000).ok());
  ASSERT_EQ(SetNames("h-mail").size(), 1u);
  Apply("h-mail", {RunStarted(1, "inbox", "c-1", 2000)}, 2000);

  absl::StatusOr<ScheduleRemoval> removed = store_->RemoveSchedule("inbox", true, 3000);
  ASSERT_TRUE(removed.ok()) << removed.status();
  ASSERT_EQ(removed->running.size(), 1u);
  EXPECT_EQ(removed->running[0].command_id(), "c-1");
  EXPECT_TRUE(removed->running[0].cancel_requested());
  EXPECT_THAT(removed->cancel_commands, ElementsAre("c-1"));
  absl::StatusOr<std::vector<CancelOrder>> cancels = store_->PendingCancels("h-mail");
  ASSERT_TRUE(cancels.ok());
  ASSERT_EQ(cancels->size(), 1u);
  EXPECT_EQ((*cancels)[0].command_id, "c-1");

  v1::CommandResult cancelled;
  cancelled.set_verdict(v1::CANCELLED);
  cancelled.set_cancelled(true);
  // A run the agent made while it had not heard of the removal, arriving later.
  ScheduleRunsOutcome late =
      Apply("h-mail", {Finished(2, "c-1", cancelled), RunStarted(3, "inbox", "c-2", 4000)}, 9000);
  EXPECT_EQ(late.stored, 1);
  EXPECT_THAT(late.problems, IsEmpty());
  absl::StatusOr<std::vector<v1::ScheduleRun>> runs = store_->ListScheduleRuns("inbox", "", 10, 0);
  ASSERT_TRUE(runs.ok()) << runs.status();
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].outcome(), "cancelled");
  EXPECT_EQ((*runs)[1].outcome(), "running");
  absl::StatusOr<v1::Job> job = store_->GetJob((*runs)[0].job_id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->verdict(), v1::CANCELLED);
  // Removed schedules leave /metrics.
  absl::StatusOr<std::vector<ScheduleRunStats>> stats = store_->ListScheduleRunStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_THAT(*stats, IsEmpty());
}

// Validates the bound: the newest N runs per (schedule, host) are kept, older ones go with their
// jobs and commands (the caller deletes their logs), and the counters still count every run.
TEST_F(ScheduleStoreTest, PrunesOldRuns) {
  store_->SetScheduleRunsKept(3);
  Register("h-mail", "mail");
  Register("h-relay", "relay");
  ASSERT_TRUE(store_->AddSchedule(Named("inbox", {"mail", "relay"}), 1000).ok());
  ASSERT_EQ(SetNames("h-mail").size(), 1u);
  ASSERT_EQ(SetNames("h-relay").size(), 1u);
  Apply("h-relay", {RunStarted(1, "inbox", "c-relay", 1000)}, 1000);

  std::vector<std::string> pruned;
  std::vector<std::string> jobs;
  uint64_t seq = 0;
  for (int i = 1; i <= 5; ++i) {
    std::string id = absl::StrCat("c-", i);
    ScheduleRunsOutcome out = Apply(
        "h-mail", {RunStarted(++seq, "inbox", id, i * 100000), Finished(++seq, id, Passed(1000))},
        i * 100000 + 1000);
    for (const std::string& p : out.pruned_commands) pruned.push_back(p);
    jobs.push_back(store_->GetCommand(id)->job_id());
  }
  EXPECT_THAT(pruned, ElementsAre("c-1", "c-2"));
  EXPECT_EQ(store_->GetCommand("c-1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetJob(jobs[0]).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->GetJob(jobs[2]).ok());

  absl::StatusOr<std::vector<v1::ScheduleRun>> runs =
      store_->ListScheduleRuns("inbox", "h-mail", 10, 0);
  ASSERT_TRUE(runs.ok());
  std::vector<std::string> kept;
  for (const v1::ScheduleRun& r : *runs) kept.push_back(r.command_id());
  EXPECT_THAT(kept, ElementsAre("c-3", "c-4", "c-5"));
  // The other host's runs are bounded on their own.
  runs = store_->ListScheduleRuns("inbox", "h-relay", 10, 0);
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ(runs->size(), 1u);

  absl::StatusOr<std::vector<ScheduleRunStats>> stats = store_->ListScheduleRunStats();
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->size(), 2u);
  EXPECT_EQ((*stats)[0].host_name, "mail");
  EXPECT_EQ((*stats)[0].pass, 5);
}

// Validates following runs by change: a run shows up when stored and again when it ends, and
// the newest-first listing gives the last N oldest first.
TEST_F(ScheduleStoreTest, RunsByChange) {
  Register("h-mail", "mail");
  ASSERT_TRUE(store_->AddSchedule(Named("inbox", {"mail"}), 1000).ok());
  ASSERT_EQ(SetNames("h-mail").size(), 1u);
  Apply("h-mail", {RunStarted(1, "inbox", "c-1", 1000), Finished(2, "c-1", Passed(10))}, 1100);
  Apply("h-mail", {RunStarted(3, "inbox", "c-2", 2000)}, 2000);
  absl::StatusOr<std::vector<v1::ScheduleRun>> newest = store_->ListScheduleRuns("inbox", "", 1, 0);
  ASSERT_TRUE(newest.ok());
  ASSERT_EQ(newest->size(), 1u);
  EXPECT_EQ((*newest)[0].command_id(), "c-2");
  uint64_t seen = (*newest)[0].change();

  v1::CommandResult oom;
  oom.set_verdict(v1::FAIL);
  oom.set_oom_killed(true);
  oom.set_oom_kills(1);
  oom.set_wall_ms(300);
  Apply("h-mail", {Finished(4, "c-2", oom)}, 2400);
  absl::StatusOr<std::vector<v1::ScheduleRun>> changed =
      store_->ListScheduleRuns("inbox", "", 100, seen);
  ASSERT_TRUE(changed.ok());
  ASSERT_EQ(changed->size(), 1u);
  EXPECT_EQ((*changed)[0].command_id(), "c-2");
  EXPECT_EQ((*changed)[0].outcome(), "oom");
  EXPECT_EQ(store_->ListScheduleRuns("nope", "", 10, 0).status().code(),
            absl::StatusCode::kNotFound);

  absl::StatusOr<std::vector<ScheduleRunStats>> stats = store_->ListScheduleRunStats();
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->size(), 1u);
  EXPECT_EQ((*stats)[0].pass, 1);
  EXPECT_EQ((*stats)[0].oom, 1);
  EXPECT_EQ((*stats)[0].oom_kills, 1);
}

// Validates that schedules, runs and counters survive reopening the database (a controller
// restart), and that the tables exist in a database made before them.
TEST_F(ScheduleStoreTest, SurvivesRestart) {
  Register("h-mail", "mail");
  ASSERT_TRUE(store_->AddSchedule(Named("inbox", {"mail"}), 1000).ok());
  ASSERT_EQ(SetNames("h-mail").size(), 1u);
  Apply("h-mail", {RunStarted(1, "inbox", "c-1", 1000), Finished(2, "c-1", Passed(10))}, 1100);
  Reopen();
  EXPECT_THAT(SetNames("h-mail"), ElementsAre("inbox"));
  absl::StatusOr<std::vector<ScheduleRunStats>> stats = store_->ListScheduleRunStats();
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->size(), 1u);
  EXPECT_EQ((*stats)[0].pass, 1);
  // The same run resent after the restart is not stored twice.
  ScheduleRunsOutcome again = Apply("h-mail", {RunStarted(1, "inbox", "c-1", 1000)}, 5000);
  EXPECT_EQ(again.stored, 0);
  absl::StatusOr<std::vector<v1::ScheduleRun>> runs = store_->ListScheduleRuns("inbox", "", 10, 0);
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ(runs->size(), 1u);
}

}  // namespace
}  // namespace kfleet::controller
