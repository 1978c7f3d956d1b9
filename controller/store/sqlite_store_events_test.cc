// SqliteStore's kernel events: one kmsg record is one event, whichever agents on the machine
// report it; history is stored but is not news.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "controller/store/sqlite_store.h"

namespace kfleet::controller {
namespace {

constexpr char kBoot[] = "0c1f2e3d-boot";

class KernelEventStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kfleet-events-XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto store = SqliteStore::Open(dir_ + "/kfleet.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    // Two agents on one machine: a host agent and the controller's local builder.
    for (const char* name : {"u1", "local-builder"}) {
      v1::Hello hello;
      hello.set_host_id(std::string("h-") + name);
      hello.set_name(name);
      ASSERT_TRUE(store_->RegisterHost(hello, 1000).ok());
    }
    auto created = store_->CreateJob(Spec(), {"h-u1"}, "test", 10, "");
    ASSERT_TRUE(created.ok()) << created.status();
    u1_command_ = created->second[0].command.command_id();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  static v1::JobSpec Spec() {
    v1::JobSpec spec;
    spec.set_name("hog");
    spec.mutable_hosts()->set_all(true);
    spec.add_steps()->mutable_exec()->add_argv("tail");
    return spec;
  }

  // Host `host_id`'s next sequenced item: its copy of the OOM kill in kmsg record `kmsg_seq`.
  v1::SequencedItem Copy(const std::string& host_id, uint64_t kmsg_seq,
                         const std::string& command_id, bool before_agent = false) {
    v1::SequencedItem item;
    item.set_seq(++seqs_[host_id]);
    v1::KernelEvent* k = item.mutable_kernel_event();
    k->set_kind("oom");
    k->set_time_unix_ms(5000);
    k->set_boot_id(kBoot);
    k->set_kmsg_seq(kmsg_seq);
    k->set_message("Memory cgroup out of memory: Killed process 42 (tail)");
    k->set_command_id(command_id);
    k->set_before_agent(before_agent);
    k->mutable_oom()->set_pid(42);
    return item;
  }

  ApplyOutcome Apply(const std::string& host_id, const v1::SequencedItem& item) {
    auto out = store_->ApplySequenced(host_id, {item}, 6000);
    EXPECT_TRUE(out.ok()) << out.status();
    // Stored or not, the item is applied: the agent's outbox moves past it.
    EXPECT_EQ(store_->LastSeq(host_id).value_or(0), item.seq());
    return out.ok() ? *std::move(out) : ApplyOutcome();
  }

  std::vector<v1::Event> Events() {
    auto events = store_->ListEvents("", "", 100, 0);
    EXPECT_TRUE(events.ok()) << events.status();
    return events.ok() ? *events : std::vector<v1::Event>();
  }

  std::string dir_;
  std::unique_ptr<SqliteStore> store_;
  std::string u1_command_;
  std::map<std::string, uint64_t> seqs_;
};

// Validates the usual race on a controller host: the local builder's copy, which names no
// command, is stored first; u1's copy, which names u1's command, replaces it (a new event on u1,
// counted for u1 but not again for the fleet); a later copy from the builder changes nothing.
TEST_F(KernelEventStoreTest, TheOwnersCopyReplacesAnUnattributedOne) {
  ApplyOutcome first = Apply("h-local-builder", Copy("h-local-builder", 42, ""));
  ASSERT_EQ(first.events.size(), 1u);
  const uint64_t first_id = first.events[0].id();

  ApplyOutcome owner = Apply("h-u1", Copy("h-u1", 42, u1_command_));
  EXPECT_TRUE(owner.events.empty());  // counted for the fleet already
  ASSERT_EQ(owner.event_clashes.size(), 1u);
  const KernelEventClash& clash = owner.event_clashes[0];
  EXPECT_TRUE(clash.replaced);
  EXPECT_EQ(clash.stored.id(), first_id);
  EXPECT_EQ(clash.stored.host_id(), "h-local-builder");
  EXPECT_EQ(clash.reported.command_id(), u1_command_);
  EXPECT_GT(clash.reported.id(), first_id);

  ApplyOutcome again = Apply("h-local-builder", Copy("h-local-builder", 42, ""));
  EXPECT_TRUE(again.events.empty());
  ASSERT_EQ(again.event_clashes.size(), 1u);
  EXPECT_FALSE(again.event_clashes[0].replaced);

  std::vector<v1::Event> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].host_name(), "u1");
  EXPECT_EQ(events[0].command_id(), u1_command_);
  EXPECT_EQ(events[0].boot_id(), kBoot);
  EXPECT_EQ(events[0].kmsg_seq(), 42u);
  EXPECT_EQ(events[0].id(), clash.reported.id());
}

// Validates that the watched unit an event belongs to is stored, and that a copy naming the unit
// tells more than one that names nothing (the host agent watches the unit, the local builder
// beside it does not).
TEST_F(KernelEventStoreTest, TheWatchedUnitIsKeptAndWins) {
  EXPECT_EQ(Apply("h-local-builder", Copy("h-local-builder", 9, "")).events.size(), 1u);
  v1::SequencedItem mine = Copy("h-u1", 9, "");
  mine.mutable_kernel_event()->set_unit("mbsync@archive.service");
  ApplyOutcome owner = Apply("h-u1", mine);
  ASSERT_EQ(owner.event_clashes.size(), 1u);
  EXPECT_TRUE(owner.event_clashes[0].replaced);

  v1::SequencedItem failed;
  failed.set_seq(++seqs_["h-u1"]);
  failed.mutable_kernel_event()->set_kind("unit_failed");
  failed.mutable_kernel_event()->set_unit("mbsync@archive.service");
  failed.mutable_kernel_event()->set_message("mbsync@archive.service failed: oom-kill");
  EXPECT_EQ(Apply("h-u1", failed).events.size(), 1u);

  std::vector<v1::Event> events = Events();
  ASSERT_EQ(events.size(), 2u);
  for (const v1::Event& e : events) {
    EXPECT_EQ(e.host_id(), "h-u1");
    EXPECT_EQ(e.unit(), "mbsync@archive.service");
  }
}

// Validates the other order: the owner's copy first, the builder's unattributed copy dropped.
TEST_F(KernelEventStoreTest, AnUnattributedCopyAfterTheOwnersIsDropped) {
  EXPECT_EQ(Apply("h-u1", Copy("h-u1", 7, u1_command_)).events.size(), 1u);
  ApplyOutcome late = Apply("h-local-builder", Copy("h-local-builder", 7, ""));
  EXPECT_TRUE(late.events.empty());
  ASSERT_EQ(late.event_clashes.size(), 1u);
  EXPECT_FALSE(late.event_clashes[0].replaced);
  EXPECT_EQ(late.event_clashes[0].stored.command_id(), u1_command_);
  std::vector<v1::Event> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].host_id(), "h-u1");
}

// Validates that a copy naming another host's command (an agent that attributes by a cgroup path
// it shares with another agent) is stored without it, and gives way to the owner's.
TEST_F(KernelEventStoreTest, AnotherHostsCommandIsNotBelieved) {
  ApplyOutcome wrong = Apply("h-local-builder", Copy("h-local-builder", 9, u1_command_));
  ASSERT_EQ(wrong.events.size(), 1u);
  EXPECT_EQ(wrong.events[0].command_id(), "");
  Apply("h-u1", Copy("h-u1", 9, u1_command_));
  std::vector<v1::Event> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].host_id(), "h-u1");
  EXPECT_EQ(events[0].command_id(), u1_command_);
}

// Validates that history is stored, marked, and not returned as news; and that a copy of the
// same record from an agent that read it as news replaces it and is counted then, once.
TEST_F(KernelEventStoreTest, HistoryIsStoredButNotNews) {
  ApplyOutcome history = Apply("h-u1", Copy("h-u1", 3, "", /*before_agent=*/true));
  EXPECT_TRUE(history.events.empty());
  ASSERT_EQ(history.history_events.size(), 1u);
  std::vector<v1::Event> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].before_agent());

  ApplyOutcome news = Apply("h-local-builder", Copy("h-local-builder", 3, ""));
  ASSERT_EQ(news.events.size(), 1u);
  EXPECT_FALSE(news.events[0].before_agent());
  ASSERT_EQ(news.event_clashes.size(), 1u);
  EXPECT_TRUE(news.event_clashes[0].replaced);
  EXPECT_TRUE(news.event_clashes[0].stored.before_agent());

  // Another history copy (a second agent's first start) changes nothing.
  ApplyOutcome again = Apply("h-u1", Copy("h-u1", 3, "", true));
  EXPECT_TRUE(again.events.empty());
  EXPECT_TRUE(again.history_events.empty());
  events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_FALSE(events[0].before_agent());
  EXPECT_EQ(events[0].host_id(), "h-local-builder");
}

// Validates that events of no kmsg record (seq 0: agent_killed, a userspace killer's journal line;
// or no boot id) are each stored, and that the database itself refuses a second event of one
// record.
TEST_F(KernelEventStoreTest, OnlyKmsgRecordsAreDeduplicated) {
  EXPECT_EQ(Apply("h-u1", Copy("h-u1", 0, "")).events.size(), 1u);
  EXPECT_EQ(Apply("h-local-builder", Copy("h-local-builder", 0, "")).events.size(), 1u);
  v1::SequencedItem no_boot = Copy("h-u1", 5, "");
  no_boot.mutable_kernel_event()->clear_boot_id();
  EXPECT_EQ(Apply("h-u1", no_boot).events.size(), 1u);
  no_boot.set_seq(++seqs_["h-local-builder"]);
  EXPECT_EQ(Apply("h-local-builder", no_boot).events.size(), 1u);
  EXPECT_EQ(Events().size(), 4u);

  v1::Event e;
  e.set_host_id("h-u1");
  e.set_kind("oom");
  e.set_boot_id(kBoot);
  e.set_kmsg_seq(77);
  ASSERT_TRUE(store_->AddEvent(e).ok());
  EXPECT_FALSE(store_->AddEvent(e).ok());
}

// Validates that the record's identity and the history mark survive a controller restart.
TEST_F(KernelEventStoreTest, KeptAcrossReopen) {
  Apply("h-u1", Copy("h-u1", 11, "", true));
  store_.reset();
  auto reopened = SqliteStore::Open(dir_ + "/kfleet.db");
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  store_ = std::move(*reopened);
  std::vector<v1::Event> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].before_agent());
  EXPECT_EQ(events[0].kmsg_seq(), 11u);
  EXPECT_EQ(Apply("h-u1", Copy("h-u1", 11, "", true)).history_events.size(), 0u);
}

}  // namespace
}  // namespace kfleet::controller
