#include "agent/commands/command_manager.h"

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/commands/command_book.h"
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

}  // namespace
}  // namespace kfleet::agent
