#include "cli/schedule_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/kctl_test_runner.h"
#include "cli/schedule_view.h"
#include "nlohmann/json.hpp"

namespace kfleet::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

class ScheduleCommandTest : public KctlCommandTest {
 protected:
  ScheduleCommandTest() {
    v1::Host* mail = kctl_.service.hosts.add_hosts();
    mail->set_id("h-mail");
    mail->set_name("mail");
    mail->set_state(v1::ONLINE);
  }

  std::vector<std::string> Add(std::vector<std::string> extra) {
    std::vector<std::string> args = {"schedule",      "add", "mbsync-inbox", "--host", "mail",
                                     "--every-after", "1m"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
};

v1::ScheduleRun MakeRun(uint64_t id, uint64_t change, const std::string& outcome, double start_s) {
  v1::ScheduleRun r;
  r.set_id(id);
  r.set_change(change);
  r.set_schedule("mbsync-inbox");
  r.set_host_id("h-mail");
  r.set_host_name("mail");
  r.set_command_id("c-" + std::to_string(id));
  r.set_job_id("j-" + std::to_string(id));
  r.set_outcome(outcome);
  int64_t start = absl::ToUnixMillis(KctlTestRunner::Start() + absl::Seconds(start_s));
  r.set_started_unix_ms(start);
  if (outcome != "running") {
    r.set_ended_unix_ms(start + 1200);
    r.mutable_result()->set_verdict(outcome == "pass" ? v1::PASS : v1::FAIL);
    r.mutable_result()->set_wall_ms(1200);
  }
  return r;
}

// Validates that add sends every flag as the schedule's fields, and prints where it runs.
TEST_F(ScheduleCommandTest, AddSendsTheSchedule) {
  EXPECT_EQ(kctl_.Run(Add({"--jitter", "10s", "--timeout", "10m", "--memory-max", "200M", "--",
                           "mbsync", "inbox"})),
            0)
      << kctl_.err();
  std::vector<v1::Schedule> stored = kctl_.service.schedules();
  ASSERT_EQ(stored.size(), 1u);
  const v1::Schedule& s = stored[0];
  EXPECT_EQ(s.name(), "mbsync-inbox");
  EXPECT_THAT(s.host_names(), ElementsAre("mail"));
  EXPECT_TRUE(s.labels().empty());
  EXPECT_EQ(s.every_after_ms(), 60000u);
  EXPECT_EQ(s.jitter_ms(), 10000u);
  EXPECT_EQ(s.timeout_ms(), 600000u);
  EXPECT_EQ(s.memory_max_bytes(), 200u << 20);
  EXPECT_THAT(s.argv(), ElementsAre("mbsync", "inbox"));
  EXPECT_THAT(kctl_.out(), StartsWith("schedule mbsync-inbox added (revision 1): mbsync inbox\n"
                                      "  every 1m after a run ends, jitter 10s, timeout "));
  EXPECT_THAT(kctl_.out(), HasSubstr("on mail (online)"));
  EXPECT_THAT(kctl_.out(), HasSubstr("memory max 200 MiB"));

  // Labels instead of names: every host carrying them, later ones too.
  EXPECT_EQ(kctl_.Run({"schedule", "add", "smoke", "-l", "pool=local,role=guest", "--every-after",
                       "1h", "--", "uname", "-r"}),
            0)
      << kctl_.err();
  absl::StatusOr<v1::Schedule> smoke;
  for (const v1::Schedule& s : kctl_.service.schedules()) {
    if (s.name() == "smoke") smoke = s;
  }
  ASSERT_TRUE(smoke.ok());
  EXPECT_EQ(smoke->labels().at("pool"), "local");
  EXPECT_EQ(smoke->labels().at("role"), "guest");
  EXPECT_THAT(kctl_.out(), HasSubstr("no host carries pool=local,role=guest yet"));
}

// Validates that bad input is refused by kctl with the flag and the fix, and nothing is asked of
// the controller.
TEST_F(ScheduleCommandTest, BadInputIsRefusedBeforeTheController) {
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  std::vector<Case> cases = {
      {Add({"--", ""}), "missing the command to run after \"--\""},
      {Add({}), "missing the command to run after \"--\""},
      {{"schedule", "add", "x", "--host", "mail", "--", "true"}, "--every-after is required"},
      {{"schedule", "add", "x", "--host", "mail", "--every-after", "soon", "--", "true"},
       "--every-after: invalid duration \"soon\""},
      {{"schedule", "add", "x", "--host", "mail", "--every-after", "500ms", "--", "true"},
       "--every-after: 500ms is out of range: give 1.0s to 8784h"},
      {{"schedule", "add", "x", "--host", "mail", "--every-after", "9000h", "--", "true"},
       "out of range"},
      {Add({"--jitter", "-3s", "--", "true"}), "--jitter: invalid duration"},
      {Add({"--memory-max", "lots", "--", "true"}), "--memory-max:"},
      {Add({"--memory-max", "4K", "--", "true"}), "--memory-max: 4K is below 1M"},
      {{"schedule", "add", "x", "--every-after", "1m", "--", "true"}, "no hosts chosen"},
      {{"schedule", "add", "x", "--host", "mail", "-l", "a=b", "--every-after", "1m", "--", "true"},
       "--host and -l cannot be combined"},
      {{"schedule", "add", "_bad", "--host", "mail", "--every-after", "1m", "--", "true"},
       "is not a schedule name"},
      {{"schedule", "add", "a/b", "--host", "mail", "--every-after", "1m", "--", "true"},
       "is not a schedule name"},
      {{"schedule", "add", "--host", "mail", "--every-after", "1m", "--", "true"},
       "missing the schedule's NAME"},
      {{"schedule", "ls", "--every-after", "1m"},
       "--every-after is not a flag of kctl schedule ls"},
      {{"schedule", "rm", "x", "--", "true"}, "only kctl schedule add takes a command"},
      {{"schedule", "runs", "x", "--cancel"}, "--cancel is not a flag of kctl schedule runs"},
      {{"schedule", "runs", "x", "--limit", "0"}, "--limit: \"0\" is not a number from 1 to 1000"},
      {{"schedule", "remove", "x"}, "unknown subcommand \"remove\""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrJoin(c.args, " "));
    EXPECT_EQ(kctl_.Run(c.args), 2);
    EXPECT_THAT(kctl_.err(), HasSubstr(c.error));
    EXPECT_EQ(kctl_.out(), "");
  }
  EXPECT_THAT(kctl_.service.calls(), IsEmpty());
  EXPECT_EQ(kctl_.Run({"schedule"}), 2);
  EXPECT_THAT(kctl_.err(), HasSubstr("missing the subcommand: kctl schedule add|ls|show|runs|"));
}

// Validates the controller's refusals and their exit codes: an unknown host (8), a name in use
// (2), a schedule that does not exist (8).
TEST_F(ScheduleCommandTest, ControllerRefusals) {
  EXPECT_EQ(
      kctl_.Run({"schedule", "add", "x", "--host", "nohost", "--every-after", "1m", "--", "true"}),
      8);
  EXPECT_THAT(kctl_.err(), HasSubstr("AddSchedule: host_names (--host): no host \"nohost\""));
  EXPECT_THAT(kctl_.service.schedules(), IsEmpty());

  EXPECT_EQ(kctl_.Run(Add({"--", "true"})), 0) << kctl_.err();
  EXPECT_EQ(kctl_.Run(Add({"--", "true"})), 2);
  EXPECT_THAT(kctl_.err(), HasSubstr("schedule \"mbsync-inbox\" already exists"));
  EXPECT_EQ(kctl_.service.schedules().size(), 1u);

  for (const char* sub : {"show", "pause", "resume", "rm", "runs"}) {
    SCOPED_TRACE(sub);
    EXPECT_EQ(kctl_.Run({"schedule", sub, "nope"}), 8);
    EXPECT_THAT(kctl_.err(), HasSubstr("no schedule \"nope\""));
  }
}

// Validates ls, show, pause, resume and rm as tables and as JSON documents.
TEST_F(ScheduleCommandTest, ListShowPauseRemove) {
  EXPECT_EQ(kctl_.Run({"schedule", "ls"}), 0);
  EXPECT_THAT(kctl_.err(), HasSubstr("No schedules."));
  ASSERT_EQ(kctl_.Run(Add({"--jitter", "30s", "--", "mbsync", "inbox"})), 0) << kctl_.err();

  EXPECT_EQ(kctl_.Run({"schedule", "ls"}), 0);
  EXPECT_THAT(absl::StrSplit(kctl_.out(), '\n', absl::SkipEmpty()),
              ElementsAre("NAME           HOSTS      EVERY-AFTER   STATE    LAST-RUN   RESULT   "
                          "COMMAND",
                          "mbsync-inbox   mail (1)   1m            active   never      -        "
                          "mbsync inbox"));
  EXPECT_EQ(kctl_.Run({"schedule", "ls", "-o", "json"}), 0);
  nlohmann::json ls = nlohmann::json::parse(kctl_.out());
  EXPECT_EQ(ls["schedules"][0]["name"], "mbsync-inbox");
  EXPECT_EQ(ls["schedules"][0]["every_after_ms"], "60000");
  EXPECT_EQ(ls["schedules"][0]["host_names"][0], "mail");

  EXPECT_EQ(kctl_.Run({"schedule", "pause", "mbsync-inbox"}), 0);
  EXPECT_THAT(kctl_.out(), StartsWith("schedule mbsync-inbox paused (revision 2)"));
  EXPECT_EQ(kctl_.Run({"schedule", "show", "mbsync-inbox"}), 0);
  EXPECT_THAT(kctl_.out(), HasSubstr("state:      paused (revision 2)\n"));
  EXPECT_THAT(kctl_.out(), HasSubstr("timing:     every 1m after a run ends, jitter 30s\n"));
  EXPECT_THAT(kctl_.out(), HasSubstr("mail   online   0      never"));
  EXPECT_EQ(kctl_.Run({"schedule", "resume", "mbsync-inbox", "-o", "json"}), 0);
  nlohmann::json resumed = nlohmann::json::parse(kctl_.out());
  EXPECT_EQ(resumed["revision"], "3");
  EXPECT_FALSE(resumed.contains("paused"));  // false is left out
  EXPECT_THAT(kctl_.service.calls(), testing::Contains("PauseSchedule"));
  EXPECT_THAT(kctl_.service.calls(), testing::Contains("ResumeSchedule"));

  kctl_.service.AddScheduleRuns({MakeRun(1, 2, "pass", 0), MakeRun(2, 3, "running", 70)});
  EXPECT_EQ(kctl_.Run({"schedule", "rm", "mbsync-inbox"}), 0);
  EXPECT_EQ(kctl_.out(),
            "schedule mbsync-inbox removed\n"
            "  run c-2 on mail is in progress and finishes (kctl schedule rm --cancel, or kctl "
            "cancel j-2, stops it)\n");
  ASSERT_EQ(kctl_.Run(Add({"--", "true"})), 0);
  EXPECT_EQ(kctl_.Run({"schedule", "rm", "mbsync-inbox", "--cancel", "-o", "json"}), 0);
  nlohmann::json rm = nlohmann::json::parse(kctl_.out());
  EXPECT_EQ(rm["schedule"]["name"], "mbsync-inbox");
  EXPECT_EQ(rm["running"][0]["command_id"], "c-2");
  EXPECT_EQ(rm["running"][0]["cancel_requested"], true);
  EXPECT_THAT(kctl_.service.calls(), testing::Contains("RemoveSchedule cancel"));
}

// Validates the runs table and its JSON document.
TEST_F(ScheduleCommandTest, Runs) {
  ASSERT_EQ(kctl_.Run(Add({"--", "true"})), 0);
  EXPECT_EQ(kctl_.Run({"schedule", "runs", "mbsync-inbox"}), 0);
  EXPECT_THAT(kctl_.err(), HasSubstr("No runs of mbsync-inbox yet."));
  v1::ScheduleRun oom = MakeRun(2, 4, "oom", 62);
  oom.mutable_result()->set_oom_killed(true);
  oom.mutable_result()->set_detail("OOM-killed: memory limit 32 MiB reached");
  kctl_.service.AddScheduleRuns({MakeRun(1, 2, "pass", 0), oom});
  kctl_.now += absl::Seconds(100);
  EXPECT_EQ(kctl_.Run({"schedule", "runs", "mbsync-inbox"}), 0);
  EXPECT_THAT(absl::StrSplit(kctl_.out(), '\n', absl::SkipEmpty()),
              ElementsAre("STARTED               HOST   COMMAND-ID   RESULT",
                          "2024-05-01 12:03:04   mail   c-1          pass (exit 0, 1.2s)",
                          "2024-05-01 12:04:06   mail   c-2          oom (OOM-killed: memory limit "
                          "32 MiB reached, 1.2s)"));
  EXPECT_EQ(kctl_.Run({"schedule", "runs", "mbsync-inbox", "--limit", "1", "-o", "json"}), 0);
  nlohmann::json runs = nlohmann::json::parse(kctl_.out());
  ASSERT_EQ(runs["runs"].size(), 1u);
  EXPECT_EQ(runs["runs"][0]["command_id"], "c-2");
  EXPECT_EQ(runs["runs"][0]["outcome"], "oom");
  EXPECT_EQ(runs["runs"][0]["result"]["oom_killed"], true);
}

// Validates that runs -f prints each run as it starts and again as it ends, each change once,
// asking for changes after the last one printed, and ends with 0 on Ctrl-C.
TEST_F(ScheduleCommandTest, RunsFollow) {
  ASSERT_EQ(kctl_.Run(Add({"--", "true"})), 0);
  kctl_.service.AddScheduleRuns({MakeRun(1, 1, "pass", 0)});
  kctl_.on_sleep = [this] {
    absl::Duration slept = kctl_.now - KctlTestRunner::Start();
    if (slept == absl::Seconds(1)) kctl_.service.AddScheduleRuns({MakeRun(2, 2, "running", 61)});
    if (slept == absl::Seconds(2)) {
      v1::ScheduleRun ended = MakeRun(2, 3, "fail", 61);
      ended.mutable_result()->set_exit_code(3);
      kctl_.service.AddScheduleRuns({ended});
    }
    if (slept == absl::Seconds(4)) raise(SIGINT);
  };
  EXPECT_EQ(kctl_.Run({"schedule", "runs", "mbsync-inbox", "-f"}), 0) << kctl_.err();
  EXPECT_THAT(absl::StrSplit(kctl_.out(), '\n', absl::SkipEmpty()),
              ElementsAre("2024-05-01 12:03:04  mail  pass (exit 0, 1.2s)  [command c-1]",
                          HasSubstr("mail  running (since "),
                          "2024-05-01 12:04:05  mail  fail (exit 3, 1.2s)  [command c-2]"));
  std::vector<uint64_t> after;
  for (const v1::ListScheduleRunsRequest& r : kctl_.service.runs_requests()) {
    after.push_back(r.after_change());
  }
  EXPECT_THAT(after, ElementsAre(0, 1, 2, 3));
  EXPECT_EQ(kctl_.err(), "");
}

// Validates that every line of the schedule help page fits and names each subcommand.
TEST(ScheduleHelpTest, NamesEverySubcommand) {
  CommandSpec spec = ScheduleCommand();
  for (const char* sub : {"add", "ls", "show", "runs", "pause", "resume", "rm"}) {
    EXPECT_THAT(spec.synopsis, HasSubstr(std::string("schedule ") + sub)) << sub;
  }
  EXPECT_THAT(spec.description, HasSubstr("OnUnitInactiveSec"));
}

// Validates how a run's result reads: its outcome first, then what the command said.
TEST(ScheduleViewTest, DescribeRun) {
  absl::Time now = KctlTestRunner::Start() + absl::Seconds(5);
  EXPECT_EQ(DescribeRun(MakeRun(1, 1, "running", 0), now), "running (since 5s)");
  v1::ScheduleRun timeout = MakeRun(1, 1, "timeout", 0);
  timeout.mutable_result()->set_verdict(v1::TIMEOUT);
  timeout.mutable_result()->set_detail("ran past its timeout of 2s");
  EXPECT_EQ(DescribeRun(timeout, now), "timeout (ran past its timeout of 2s, 1.2s)");
  v1::Schedule s;
  s.set_every_after_ms(300000);
  s.set_jitter_ms(30000);
  s.set_memory_max_bytes(200 << 20);
  EXPECT_EQ(DescribeScheduleTiming(s), "every 5m after a run ends, jitter 30s, memory max 200 MiB");
}

}  // namespace
}  // namespace kfleet::cli
