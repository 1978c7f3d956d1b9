#include "agent/commands/command_manager.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/commands/command_book.h"
#include "agent/exec/cgroup.h"
#include "agent/outbox/outbox.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kfleet::agent {
namespace {

namespace v1 = kfleet::v1;
using ::testing::ElementsAre;

// Validates that a test step runs through the command manager: one test_result item per test, in
// order, between Started and Finished, the counts in the result, and its work directory removed.
TEST(CommandManagerTest, TestStepReportsEachTest) {
  char tmp[] = "/tmp/kfleet-cm-XXXXXX";
  const std::string top = ::mkdtemp(tmp);
  absl::StatusOr<CommandBook> book = CommandBook::Open(top + "/commands");
  ASSERT_TRUE(book.ok()) << book.status();
  OutboxOptions outbox_options;
  outbox_options.dir = top + "/outbox";
  absl::StatusOr<std::unique_ptr<Outbox>> outbox = Outbox::Open(outbox_options);
  ASSERT_TRUE(outbox.ok()) << outbox.status();
  CommandManager::Options options;
  options.work_dir = top + "/work";
  options.tests_dir = top + "/tests";
  options.kill_grace = absl::Seconds(1);
  {
    CommandManager manager(&*book, outbox->get(), options);
    v1::Command command;
    command.set_command_id("c-7");
    v1::TestStep* step = command.mutable_step()->mutable_test();
    step->set_suite("exec");
    step->add_argv("sh");
    step->add_argv("-c");
    step->add_argv("test {test} = good");
    step->add_tests("good");
    step->add_tests("bad");
    manager.OnCommand(command);
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (manager.running() > 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
    ASSERT_EQ(manager.running(), 0);
  }
  std::vector<std::string> items;
  v1::CommandResult result;
  v1::Items batch;
  while ((*outbox)->NextBatch(&batch, 1 << 20, absl::ZeroDuration())) {
    for (const v1::SequencedItem& item : batch.sequenced()) {
      if (item.has_accepted()) items.push_back("accepted");
      if (item.has_started()) items.push_back("started");
      if (item.has_test_result()) {
        EXPECT_EQ(item.test_result().command_id(), "c-7");
        items.push_back(absl::StrCat(v1::TestStatus_Name(item.test_result().result().status()), " ",
                                     item.test_result().result().name()));
      }
      if (item.has_finished()) {
        items.push_back("finished");
        result = item.finished().result();
      }
    }
    batch.Clear();
  }
  EXPECT_THAT(items,
              ElementsAre("accepted", "started", "TEST_PASS good", "TEST_FAIL bad", "finished"));
  EXPECT_EQ(result.verdict(), v1::FAIL);
  EXPECT_EQ(result.tests().passed(), 1u);
  EXPECT_EQ(result.tests().failed(), 1u);
  EXPECT_FALSE(std::filesystem::exists(top + "/tests/c-7"));
  outbox->reset();
  std::error_code ec;
  std::filesystem::remove_all(top, ec);
}

// An agent's state for attribution tests: its book, outbox and work dirs under a temp dir, and a
// cgroup v2 host under a fake root (agent/exec/cgroup_test.cc has more): the agent in the root
// cgroup, its commands' cgroups under /kfleet.
class AttributionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmp[] = "/tmp/kfleet-attr-XXXXXX";
    top_ = ::mkdtemp(tmp);
    absl::StatusOr<CommandBook> book = CommandBook::Open(top_ + "/commands");
    ASSERT_TRUE(book.ok()) << book.status();
    book_ = std::make_unique<CommandBook>(*std::move(book));
    OutboxOptions outbox_options;
    outbox_options.dir = top_ + "/outbox";
    absl::StatusOr<std::unique_ptr<Outbox>> outbox = Outbox::Open(outbox_options);
    ASSERT_TRUE(outbox.ok()) << outbox.status();
    outbox_ = *std::move(outbox);
    const std::string root = top_ + "/root";
    Write(root + "/proc/self/mountinfo",
          "22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n"
          "30 22 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
    Write(root + "/proc/self/cgroup", "0::/\n");
    Write(root + "/proc/filesystems", "nodev\tsysfs\nnodev\tcgroup2\n");
    Write(root + "/sys/fs/cgroup/cgroup.controllers", "memory pids\n");
    Write(root + "/sys/fs/cgroup/cgroup.procs", "1\n");
    CgroupOptions cgroup_options;
    cgroup_options.root = root;
    cgroup_options.mount_cgroup2 = nullptr;
    cgroups_ = CgroupManager::Detect(cgroup_options);
    ASSERT_EQ(cgroups_->mode(), CgroupMode::kV2) << cgroups_->detail();
  }
  void TearDown() override {
    outbox_.reset();
    std::error_code ec;
    std::filesystem::remove_all(top_, ec);
  }

  static void Write(const std::string& path, const std::string& content) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << content;
  }

  CommandManager::Options Options(bool with_cgroups) {
    CommandManager::Options options;
    options.work_dir = top_ + "/work";
    options.tests_dir = top_ + "/tests";
    options.kill_grace = absl::Seconds(1);
    if (with_cgroups) options.cgroups = cgroups_.get();
    return options;
  }

  std::string top_;
  std::unique_ptr<CommandBook> book_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<CgroupManager> cgroups_;
};

v1::KernelEvent OomIn(const std::string& cgroup) {
  v1::KernelEvent e;
  e.set_kind("oom");
  e.mutable_oom()->set_comm("tail");
  e.mutable_oom()->set_task_memcg(cgroup);
  e.mutable_oom()->set_oom_memcg(cgroup);
  return e;
}

// Validates that an OOM kill is attributed by its cgroup only to a command this agent accepted,
// also once it ended, and never to a command of another agent whose commands' cgroups sit under
// the same parent (a controller's local builder beside a host agent).
TEST_F(AttributionTest, OomKillsOnlyOfItsOwnCommands) {
  CommandManager manager(book_.get(), outbox_.get(), Options(true));
  ASSERT_TRUE(book_->Accept("c-mine").ok());  // accepted before, ended by now
  EXPECT_EQ(manager.AttributeEvent(OomIn("/kfleet/c-theirs")), "");
  EXPECT_EQ(manager.AttributeEvent(OomIn("/kfleet/c-mine")), "c-mine");
  EXPECT_EQ(manager.AttributeEvent(OomIn("/elsewhere/c-mine")), "");
}

// Validates the guess for reports that name no process of ours while one command runs: it takes
// reports of kernel threads and of no process, never one naming a live process of someone else
// (here, this test's own process).
TEST_F(AttributionTest, ReportsOfSomeoneElsesProcessAreNotOurs) {
  CommandManager manager(book_.get(), outbox_.get(), Options(false));
  v1::Command command;
  command.set_command_id("c-sleep");
  for (const char* arg : {"sleep", "30"}) command.mutable_step()->mutable_exec()->add_argv(arg);
  manager.OnCommand(command);
  ASSERT_EQ(manager.running(), 1);
  auto warn = [](const std::string& pid) {
    v1::KernelEvent e;
    e.set_kind("warn");
    e.set_message(absl::StrCat("WARNING: CPU: 0 PID: ", pid, " at lib/foo.c:45 foo+0x1/0x2"));
    return e;
  };
  EXPECT_EQ(manager.AttributeEvent(warn(absl::StrCat(::getpid()))), "");
  EXPECT_EQ(manager.AttributeEvent(warn("2")), "c-sleep");  // kthreadd
  v1::KernelEvent unnamed;
  unnamed.set_kind("hung_task");
  unnamed.set_message("INFO: a report naming nobody");
  EXPECT_EQ(manager.AttributeEvent(unnamed), "c-sleep");
  manager.CancelAll("test over");
}

}  // namespace
}  // namespace kfleet::agent
