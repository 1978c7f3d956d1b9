#include "cli/events_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include "absl/strings/str_split.h"
#include "cli/kctl_test_runner.h"
#include "google/protobuf/util/json_util.h"

namespace kfleet::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

int64_t At(double seconds) {
  return absl::ToUnixMillis(KctlTestRunner::Start() + absl::Seconds(seconds));
}

v1::Event MakeEvent(uint64_t id, double at, const std::string& host, const std::string& kind,
                    const std::string& message) {
  v1::Event e;
  e.set_id(id);
  e.set_time_unix_ms(At(at));
  e.set_host_id(host + "-id");
  e.set_host_name(host);
  e.set_kind(kind);
  e.set_message(message);
  return e;
}

// The kernel's report of a stress-ng worker killed at a 64 MiB limit, as the agent parses it.
v1::Event OomEvent(uint64_t id, double at) {
  v1::Event e = MakeEvent(id, at, "guest-1", "oom",
                          "Memory cgroup out of memory: Killed process 4242 (stress-ng-vm)");
  e.set_command_id("c-abc");
  v1::OomKill* oom = e.mutable_oom();
  oom->set_pid(4242);
  oom->set_comm("stress-ng-vm");
  oom->set_anon_rss_kb(65432);
  oom->set_constraint("CONSTRAINT_MEMCG");
  oom->set_oom_memcg("/kfleet/c-abc");
  oom->set_task_memcg("/kfleet/c-abc");
  oom->set_memcg(true);
  oom->set_killer("kernel");
  return e;
}

// Validates the OOM line: victim, its anonymous memory, which limit was hit, and the command.
TEST(EventsFormatTest, OomLine) {
  EXPECT_EQ(FormatEvent(OomEvent(7, 0), absl::UTCTimeZone()),
            "2024-05-01 12:03:04  guest-1  oom  killed 4242 (stress-ng-vm) anon-rss 64 MiB, "
            "memcg limit /kfleet/c-abc [command c-abc]");
}

// Validates how the other kinds of OOM kill read: the whole machine, a cpuset, a userspace killer,
// and an OOM event the agent could not parse a victim from.
TEST(EventsFormatTest, OomScopes) {
  v1::OomKill global;
  global.set_pid(1);
  global.set_comm("java");
  global.set_anon_rss_kb(2 << 20);
  global.set_constraint("CONSTRAINT_NONE");
  EXPECT_EQ(DescribeOomKill(global), "killed 1 (java) anon-rss 2.0 GiB, host out of memory");
  global.set_constraint("CONSTRAINT_CPUSET");
  EXPECT_EQ(DescribeOomKill(global), "killed 1 (java) anon-rss 2.0 GiB, cpuset out of memory");

  v1::OomKill user;
  user.set_pid(99);
  user.set_comm("chrome");
  user.set_killer("earlyoom");
  EXPECT_EQ(DescribeOomKill(user), "killed 99 (chrome) by earlyoom");

  v1::Event bare = MakeEvent(1, 0, "h", "oom", "Out of memory: something");
  bare.mutable_oom();
  EXPECT_EQ(FormatEvent(bare, absl::UTCTimeZone()),
            "2024-05-01 12:03:04  h  oom  Out of memory: something");
}

// Validates that -o wide adds the report's following lines, indented, and the table does not.
TEST(EventsFormatTest, WideShowsDetail) {
  v1::Event warn = MakeEvent(3, 0, "h", "warn", "WARNING: CPU: 0 PID: 1 at fs/xfs/x.c:10");
  warn.set_detail("Call Trace:\n <TASK>\n  xfs_foo+0x1/0x2\n");
  EXPECT_EQ(FormatEvent(warn, absl::UTCTimeZone()),
            "2024-05-01 12:03:04  h  warn  WARNING: CPU: 0 PID: 1 at fs/xfs/x.c:10");
  EXPECT_EQ(FormatEvent(warn, absl::UTCTimeZone(), /*wide=*/true),
            "2024-05-01 12:03:04  h  warn  WARNING: CPU: 0 PID: 1 at fs/xfs/x.c:10\n"
            "    Call Trace:\n"
            "     <TASK>\n"
            "      xfs_foo+0x1/0x2");
}

// Validates that an OOM kill inside a watched systemd unit names the unit, and that a unit's failed
// run reads as its message (which names the unit) without repeating it.
TEST(EventsFormatTest, WatchedUnitIsNamed) {
  v1::Event oom = OomEvent(5, 0);
  oom.clear_command_id();
  oom.mutable_oom()->set_oom_memcg("/system.slice/system-mbsync.slice/mbsync@archive.service");
  oom.set_unit("mbsync@archive.service");
  EXPECT_EQ(FormatEvent(oom, absl::UTCTimeZone()),
            "2024-05-01 12:03:04  guest-1  oom  killed 4242 (stress-ng-vm) anon-rss 64 MiB, "
            "memcg limit /system.slice/system-mbsync.slice/mbsync@archive.service "
            "[unit mbsync@archive.service]");
  v1::Event failed = MakeEvent(6, 0, "mail", "unit_failed",
                               "mbsync@archive.service failed: oom-kill (1 OOM kill) after 1.8s");
  failed.set_unit("mbsync@archive.service");
  EXPECT_EQ(FormatEvent(failed, absl::UTCTimeZone()),
            "2024-05-01 12:03:04  mail  unit_failed  mbsync@archive.service failed: oom-kill (1 "
            "OOM kill) after 1.8s");
  EXPECT_TRUE(CheckEventKind("unit_failed").ok());
}

// Validates that history (a record from before the agent first started) is marked as such.
TEST(EventsFormatTest, HistoryIsMarked) {
  v1::Event old = OomEvent(4, 0);
  old.clear_command_id();
  old.set_before_agent(true);
  EXPECT_EQ(FormatEvent(old, absl::UTCTimeZone()),
            "2024-05-01 12:03:04  guest-1  oom  killed 4242 (stress-ng-vm) anon-rss 64 MiB, "
            "memcg limit /kfleet/c-abc [before agent]");
}

// Ctrl-C, the first time it is called: a second SIGINT would end the test binary, as it ends kctl.
std::function<void()> CtrlCOnce() {
  return [fired = false]() mutable {
    if (!fired) raise(SIGINT);
    fired = true;
  };
}

class EventsCommandTest : public ::testing::Test {
 protected:
  KctlTestRunner kctl_;
};

// Validates a listing: the filters sent, one line per event, oldest first.
TEST_F(EventsCommandTest, Lists) {
  kctl_.service.AddEvents({MakeEvent(1, 0, "guest-1", "boot", "booted 6.1.0-kf"), OomEvent(2, 5)});
  EXPECT_EQ(kctl_.Run({"events", "--host", "guest-1", "--kind", "oom"}), 0);
  EXPECT_EQ(kctl_.out(),
            "2024-05-01 12:03:09  guest-1  oom  killed 4242 (stress-ng-vm) anon-rss 64 MiB, "
            "memcg limit /kfleet/c-abc [command c-abc]\n");
  ASSERT_EQ(kctl_.service.events_requests().size(), 1u);
  EXPECT_EQ(kctl_.service.events_requests()[0].host(), "guest-1");
  EXPECT_EQ(kctl_.service.events_requests()[0].kind(), "oom");

  EXPECT_EQ(kctl_.Run({"events", "--kind", "panic"}), 0);
  EXPECT_EQ(kctl_.out(), "");
  EXPECT_EQ(kctl_.err(), "No events of kind panic.\n");
}

// Validates that an unknown --kind is refused before the controller is asked, with the closest
// kind suggested.
TEST_F(EventsCommandTest, KindIsChecked) {
  EXPECT_EQ(kctl_.Run({"events", "--kind", "omm"}), 2);
  EXPECT_THAT(kctl_.err(), StartsWith("kctl: events: --kind: unknown kind \"omm\" (did you mean "
                                      "\"oom\"?) (expected one of oom, oops, bug, panic, warn, "));
  EXPECT_EQ(kctl_.Run({"events", "--kind", "OOPS"}), 2);
  EXPECT_THAT(kctl_.err(), HasSubstr("unknown kind \"OOPS\""));
  EXPECT_EQ(kctl_.Run({"events", "--limit", "0"}), 2);
  EXPECT_THAT(kctl_.service.calls(), IsEmpty());
  for (const std::string& kind : EventKinds()) EXPECT_TRUE(CheckEventKind(kind).ok()) << kind;
}

// Validates -f: each poll asks for events after the last id printed, a new event shows up once
// on the poll after it was stored, and Ctrl-C ends kctl with exit 0.
TEST_F(EventsCommandTest, FollowUsesAfterId) {
  kctl_.service.AddEvents(
      {MakeEvent(1, 0, "guest-1", "boot", "booted"), MakeEvent(2, 1, "guest-2", "boot", "booted")});
  kctl_.on_sleep = [this] {
    absl::Duration slept = kctl_.now - KctlTestRunner::Start();
    if (slept == absl::Seconds(1)) kctl_.service.AddEvents({OomEvent(3, 1.5)});
    if (slept == absl::Seconds(3)) raise(SIGINT);
  };
  EXPECT_EQ(kctl_.Run({"events", "-f", "--kind", "oom"}), 0);
  // The fake filters by kind, as the controller does.
  EXPECT_EQ(kctl_.out(),
            "2024-05-01 12:03:05  guest-1  oom  killed 4242 (stress-ng-vm) anon-rss 64 MiB, "
            "memcg limit /kfleet/c-abc [command c-abc]\n");
  std::vector<uint64_t> after;
  for (const v1::ListEventsRequest& r : kctl_.service.events_requests()) {
    after.push_back(r.after_id());
    EXPECT_EQ(r.kind(), "oom");
  }
  EXPECT_THAT(after, ElementsAre(0, 0, 3));
  EXPECT_EQ(kctl_.err(), "");

  // Without a filter, the first poll prints the newest events, each once.
  kctl_.on_sleep = CtrlCOnce();
  EXPECT_EQ(kctl_.Run({"events", "-f"}), 0);
  EXPECT_THAT(absl::StrSplit(kctl_.out(), '\n', absl::SkipEmpty()),
              ElementsAre(HasSubstr("guest-1  boot  booted"), HasSubstr("guest-2  boot  booted"),
                          HasSubstr("guest-1  oom  killed 4242")));
}

// Validates that -f refuses a controller that does not number events, rather than printing the
// same events every second.
TEST_F(EventsCommandTest, FollowNeedsIds) {
  kctl_.service.AddEvents({MakeEvent(0, 0, "guest-1", "boot", "booted")});
  kctl_.on_sleep = CtrlCOnce();  // ends a kctl that would poll on
  EXPECT_EQ(kctl_.Run({"events", "-f"}), 2);
  EXPECT_EQ(kctl_.out(), "");
  EXPECT_THAT(kctl_.err(),
              StartsWith("kctl: events -f: the controller does not number its events"));
  EXPECT_EQ(kctl_.Run({"events"}), 0);
  EXPECT_THAT(kctl_.out(), HasSubstr("guest-1  boot  booted"));
}

// Validates -o json: one ListEventsResponse document; with -f one Event per line.
TEST_F(EventsCommandTest, Json) {
  kctl_.service.AddEvents({MakeEvent(1, 0, "guest-1", "boot", "booted"), OomEvent(2, 5)});
  EXPECT_EQ(kctl_.Run({"events", "-o", "json"}), 0);
  v1::ListEventsResponse all;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(kctl_.out(), &all).ok()) << kctl_.out();
  ASSERT_EQ(all.events_size(), 2);
  EXPECT_EQ(all.events(1).oom().comm(), "stress-ng-vm");
  EXPECT_THAT(kctl_.out(), HasSubstr("\"anon_rss_kb\""));

  kctl_.on_sleep = CtrlCOnce();
  EXPECT_EQ(kctl_.Run({"events", "-f", "-o", "json"}), 0);
  std::vector<std::string> lines = absl::StrSplit(kctl_.out(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u);
  v1::Event second;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[1], &second).ok());
  EXPECT_EQ(second.id(), 2u);
  EXPECT_EQ(second.oom().pid(), 4242);
}

// Validates that -f leaves history out, news after it included, and that the listing and
// -o json show it, marked.
TEST_F(EventsCommandTest, FollowLeavesHistoryOut) {
  v1::Event old = OomEvent(1, 0);
  old.clear_command_id();
  old.set_before_agent(true);
  kctl_.service.AddEvents({old, MakeEvent(2, 1, "guest-1", "warn", "WARNING: news")});
  kctl_.on_sleep = CtrlCOnce();
  EXPECT_EQ(kctl_.Run({"events", "-f"}), 0);
  EXPECT_EQ(kctl_.out(), "2024-05-01 12:03:05  guest-1  warn  WARNING: news\n");

  EXPECT_EQ(kctl_.Run({"events"}), 0);
  EXPECT_THAT(absl::StrSplit(kctl_.out(), '\n', absl::SkipEmpty()),
              ElementsAre(HasSubstr("killed 4242 (stress-ng-vm)"), HasSubstr("WARNING: news")));
  EXPECT_THAT(kctl_.out(), HasSubstr("[before agent]"));
  EXPECT_EQ(kctl_.Run({"events", "-o", "json"}), 0);
  EXPECT_THAT(kctl_.out(), HasSubstr("\"before_agent\": true"));
}

}  // namespace
}  // namespace kfleet::cli
