#include "agent/commands/command_book.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace kfleet::agent {
namespace {

// Validates that acceptance is remembered across reopen (never run twice) and that only
// unfinished commands are reported as interrupted.
TEST(CommandBookTest, AcceptOnceAndUnfinished) {
  char tmpl[] = "/tmp/kfleet-book-XXXXXX";
  std::string dir = std::string(mkdtemp(tmpl)) + "/commands";
  {
    auto book = CommandBook::Open(dir);
    ASSERT_TRUE(book.ok());
    ASSERT_TRUE(book->Accept("c-1").ok());
    ASSERT_TRUE(book->Accept("c-2").ok());
    ASSERT_TRUE(book->SetRunning("c-2", 1234, 99).ok());
    ASSERT_TRUE(book->Accept("c-3").ok());
    ASSERT_TRUE(book->SetFinished("c-3").ok());
    EXPECT_EQ(book->Accept("c-1").code(), absl::StatusCode::kAlreadyExists);
  }
  auto book = CommandBook::Open(dir);
  ASSERT_TRUE(book.ok());
  EXPECT_TRUE(book->Known("c-1"));
  EXPECT_TRUE(book->Known("c-3"));
  EXPECT_FALSE(book->Known("c-4"));
  EXPECT_FALSE(book->Known("../c-1"));
  auto unfinished = book->Unfinished();
  ASSERT_TRUE(unfinished.ok());
  ASSERT_EQ(unfinished->size(), 2u);
  for (const CommandRecord& r : *unfinished) {
    if (r.command_id == "c-2") {
      EXPECT_EQ(r.state, CommandRecord::State::kRunning);
      EXPECT_EQ(r.pgid, 1234);
      EXPECT_EQ(r.start_time, 99u);
    } else {
      EXPECT_EQ(r.command_id, "c-1");
    }
  }
}

}  // namespace
}  // namespace kfleet::agent
