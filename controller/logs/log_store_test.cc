#include "controller/logs/log_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace kfleet::controller {
namespace {

v1::LogChunk Chunk(const std::string& cmd, uint64_t offset, const std::string& data) {
  v1::LogChunk c;
  c.set_command_id(cmd);
  c.set_stream(v1::STDOUT);
  c.set_offset(offset);
  c.set_data(data);
  return c;
}

// Validates that writes are idempotent by offset (a resend changes nothing), gaps are refused,
// and invalid ids never reach the file system.
TEST(LogStoreTest, IdempotentByOffset) {
  char tmpl[] = "/tmp/kfleet-logs-XXXXXX";
  LogStore logs(mkdtemp(tmpl));
  v1::LogChunk a = Chunk("c-1", 0, "hello "), b = Chunk("c-1", 6, "world\n");
  auto stored = logs.WriteDurable({&a, &b});
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].offset(), 12u);
  // A resend after a reconnect: overlapping and repeated chunks.
  v1::LogChunk again = Chunk("c-1", 6, "world\n"), more = Chunk("c-1", 12, "bye\n");
  ASSERT_TRUE(logs.WriteDurable({&b, &again, &more}).ok());
  EXPECT_EQ(*logs.Read("c-1", v1::STDOUT, 0, 1 << 20), "hello world\nbye\n");
  EXPECT_EQ(logs.Size("c-1", v1::STDOUT), 16u);
  EXPECT_EQ(*logs.Read("c-1", v1::STDOUT, 6, 5), "world");

  v1::LogChunk gap = Chunk("c-1", 100, "x");
  auto refused = logs.WriteDurable({&gap});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(logs.Size("c-1", v1::STDOUT), 16u);

  v1::LogChunk evil = Chunk("../../etc/passwd", 0, "x");
  EXPECT_EQ(logs.WriteDurable({&evil}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(logs.Size("../../etc/passwd", v1::STDOUT), 0u);
}

}  // namespace
}  // namespace kfleet::controller
