#include "controller/store/sqlite_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "absl/strings/str_cat.h"

namespace kfleet::controller {
namespace {

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kfleet-store-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/kfleet.db";
    auto store = SqliteStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  v1::Host Register(const std::string& id, const std::string& name) {
    v1::Hello hello;
    hello.set_host_id(id);
    hello.set_name(name);
    (*hello.mutable_labels())["pool"] = "local";
    auto h = store_->RegisterHost(hello, 1000);
    EXPECT_TRUE(h.ok()) << h.status();
    return h.ok() ? *h : v1::Host();
  }

  v1::JobSpec Spec(int steps) {
    v1::JobSpec spec;
    spec.set_name("t");
    spec.mutable_hosts()->set_all(true);
    for (int i = 0; i < steps; ++i) {
      spec.add_steps()->mutable_exec()->add_argv(absl::StrCat("step", i));
    }
    return spec;
  }

  static v1::SequencedItem Finished(uint64_t seq, const std::string& cmd, v1::Verdict verdict) {
    v1::SequencedItem item;
    item.set_seq(seq);
    item.mutable_finished()->set_command_id(cmd);
    item.mutable_finished()->mutable_result()->set_verdict(verdict);
    return item;
  }

  std::string dir_, path_;
  std::unique_ptr<SqliteStore> store_;
};

// Validates that a host registers online, keeps its name, and that a second online host cannot
// take the name while an offline one gives it up.
TEST_F(SqliteStoreTest, RegisterAndNameConflicts) {
  v1::Host a = Register("h-a", "alpha");
  EXPECT_EQ(a.state(), v1::ONLINE);
  EXPECT_EQ(a.labels().at("pool"), "local");
  v1::Hello clash;
  clash.set_host_id("h-b");
  clash.set_name("alpha");
  auto refused = store_->RegisterHost(clash, 2000);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(refused.status().message().find("--name"), absl::string_view::npos);

  ASSERT_TRUE(store_->SetHostState("h-a", v1::OFFLINE, 1500).ok());
  auto took = store_->RegisterHost(clash, 2000);
  ASSERT_TRUE(took.ok()) << took.status();
  EXPECT_EQ(took->name(), "alpha");
  auto old = store_->GetHost("h-a");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->name().substr(0, 6), "alpha~");
}

// Validates that a job's steps run in order per host, a failure skips the rest, and the verdict
// is the failure.
TEST_F(SqliteStoreTest, StepsProgressAndVerdict) {
  Register("h-a", "a");
  Register("h-b", "b");
  auto created = store_->CreateJob(Spec(2), {"h-a", "h-b"}, "test", 10, "");
  ASSERT_TRUE(created.ok()) << created.status();
  auto& [job, dispatch] = *created;
  ASSERT_EQ(dispatch.size(), 2u);
  std::string cmd_a = dispatch[0].command.command_id();
  std::string cmd_b = dispatch[1].command.command_id();

  auto out = store_->ApplySequenced("h-a", {Finished(1, cmd_a, v1::PASS)}, 20);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->dispatch.size(), 1u) << "second step follows a pass";
  std::string cmd_a2 = out->dispatch[0].command.command_id();
  EXPECT_EQ(out->dispatch[0].command.step().exec().argv(0), "step1");

  out = store_->ApplySequenced("h-b", {Finished(1, cmd_b, v1::FAIL)}, 30);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(out->dispatch.empty()) << "no second step after a failure";

  out = store_->ApplySequenced("h-a", {Finished(2, cmd_a2, v1::PASS)}, 40);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->finished_jobs.size(), 1u);
  auto done = store_->GetJob(job.id());
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state(), v1::JOB_DONE);
  EXPECT_EQ(done->verdict(), v1::FAIL);
  ASSERT_EQ(done->commands_size(), 4);
  int skipped = 0;
  for (const auto& c : done->commands()) skipped += c.state() == v1::COMMAND_SKIPPED;
  EXPECT_EQ(skipped, 1);
}

// Validates that a resent batch (same seqs) changes nothing: writes are idempotent by position.
TEST_F(SqliteStoreTest, ResentItemsAreSkipped) {
  Register("h-a", "a");
  auto created = store_->CreateJob(Spec(1), {"h-a"}, "test", 10, "");
  ASSERT_TRUE(created.ok());
  std::string cmd = created->second[0].command.command_id();
  v1::SequencedItem accepted;
  accepted.set_seq(1);
  accepted.mutable_accepted()->set_command_id(cmd);
  std::vector<v1::SequencedItem> batch = {accepted, Finished(2, cmd, v1::PASS)};
  auto first = store_->ApplySequenced("h-a", batch, 20);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->last_seq, 2u);
  EXPECT_EQ(first->finished_jobs.size(), 1u);
  auto again = store_->ApplySequenced("h-a", batch, 30);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->skipped_items, 2);
  EXPECT_TRUE(again->finished_jobs.empty());
  EXPECT_EQ(store_->GetCommand(cmd)->finished_unix_ms(), 20);
}

// Validates that a kernel event from an agent is stored once on the host's timeline with its OOM
// kill, and that the timeline can be followed by id.
TEST_F(SqliteStoreTest, KernelEventsStoredOnceAndFollowedById) {
  Register("h-a", "a");
  auto created = store_->CreateJob(Spec(1), {"h-a"}, "test", 10, "");
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string cmd = created->second[0].command.command_id();
  v1::SequencedItem item;
  item.set_seq(1);
  v1::KernelEvent* k = item.mutable_kernel_event();
  k->set_kind("oom");
  k->set_time_unix_ms(5000);
  k->set_message("Memory cgroup out of memory: Killed process 42 (tail)");
  k->set_command_id(cmd);
  k->set_detail("oom-kill:constraint=CONSTRAINT_MEMCG");
  k->mutable_oom()->set_pid(42);
  k->mutable_oom()->set_comm("tail");
  auto applied = store_->ApplySequenced("h-a", {item}, 6000);
  ASSERT_TRUE(applied.ok()) << applied.status();
  ASSERT_EQ(applied->events.size(), 1u);
  EXPECT_EQ(applied->events[0].host_name(), "");  // the caller knows the host
  EXPECT_GT(applied->events[0].id(), 0u);
  auto again = store_->ApplySequenced("h-a", {item}, 7000);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->events.empty());
  EXPECT_EQ(again->skipped_items, 1);

  ASSERT_TRUE(store_
                  ->AddEvent([] {
                    v1::Event e;
                    e.set_host_id("h-a");
                    e.set_time_unix_ms(8000);
                    e.set_kind("reboot");
                    return e;
                  }())
                  .ok());
  auto all = store_->ListEvents("", "", 100, 0);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 2u);
  const v1::Event& oom = (*all)[0];
  EXPECT_EQ(oom.kind(), "oom");
  EXPECT_EQ(oom.host_name(), "a");
  EXPECT_EQ(oom.command_id(), cmd);
  EXPECT_EQ(oom.oom().pid(), 42);
  EXPECT_EQ(oom.oom().comm(), "tail");
  EXPECT_EQ(oom.detail(), "oom-kill:constraint=CONSTRAINT_MEMCG");
  EXPECT_LT(oom.id(), (*all)[1].id());

  auto after = store_->ListEvents("", "", 100, oom.id());
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].kind(), "reboot");
  EXPECT_TRUE(store_->ListEvents("h-a", "oom", 100, (*all)[1].id())->empty());
  EXPECT_EQ(store_->ListEvents("h-a", "oom", 100, 0)->size(), 1u);
}

// Validates that an item for another host's command is never applied.
TEST_F(SqliteStoreTest, ForeignCommandIgnored) {
  Register("h-a", "a");
  Register("h-b", "b");
  auto created = store_->CreateJob(Spec(1), {"h-a"}, "test", 10, "");
  std::string cmd = created->second[0].command.command_id();
  ASSERT_TRUE(store_->ApplySequenced("h-b", {Finished(1, cmd, v1::FAIL)}, 20).ok());
  EXPECT_EQ(store_->GetCommand(cmd)->state(), v1::COMMAND_PENDING);
}

// Validates cancel: pending commands end at once, accepted ones are returned for a Cancel, and a
// command accepted after the cancel gets a cancel order too.
TEST_F(SqliteStoreTest, Cancel) {
  Register("h-a", "a");
  Register("h-b", "b");
  auto created = store_->CreateJob(Spec(1), {"h-a", "h-b"}, "test", 10, "");
  std::string cmd_a = created->second[0].command.command_id();
  std::string cmd_b = created->second[1].command.command_id();
  v1::SequencedItem acc;
  acc.set_seq(1);
  acc.mutable_accepted()->set_command_id(cmd_a);
  ASSERT_TRUE(store_->ApplySequenced("h-a", {acc}, 20).ok());

  auto cancel = store_->CancelJob(created->first.id(), 30);
  ASSERT_TRUE(cancel.ok()) << cancel.status();
  ASSERT_EQ(cancel->cancels.size(), 1u);
  EXPECT_EQ(cancel->cancels[0].command_id, cmd_a);
  EXPECT_EQ(store_->GetCommand(cmd_b)->result().verdict(), v1::CANCELLED);
  EXPECT_TRUE(store_->PendingCommands("h-b")->empty());
  EXPECT_EQ(store_->PendingCancels("h-a")->size(), 1u);

  v1::SequencedItem acc_b;
  acc_b.set_seq(1);
  acc_b.mutable_accepted()->set_command_id(cmd_b);
  auto late = store_->ApplySequenced("h-b", {acc_b}, 40);
  ASSERT_TRUE(late.ok());
  ASSERT_EQ(late->cancels.size(), 1u);

  v1::SequencedItem fin = Finished(2, cmd_a, v1::CANCELLED);
  ASSERT_TRUE(store_->ApplySequenced("h-a", {fin}, 50).ok());
  auto job = store_->GetJob(created->first.id());
  EXPECT_EQ(job->state(), v1::JOB_DONE);
  EXPECT_EQ(job->verdict(), v1::CANCELLED);
  auto again = store_->CancelJob(created->first.id(), 60);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
}

// Validates that state survives reopening (schema migrations are idempotent) and that a database
// from a newer schema is refused with a clear message.
TEST_F(SqliteStoreTest, ReopenAndNewerSchemaRefused) {
  Register("h-a", "a");
  store_.reset();
  auto reopened = SqliteStore::Open(path_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_TRUE((*reopened)->GetHost("a").ok());
  reopened->reset();
  {
    auto db = OpenSqlite(path_);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(Exec(db->get(), "INSERT INTO schema_version(version) VALUES (999)").ok());
  }
  auto newer = SqliteStore::Open(path_);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(newer.status().message().find("999"), absl::string_view::npos);
}

}  // namespace
}  // namespace kfleet::controller
