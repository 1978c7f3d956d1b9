#include "agent/schedule/schedule_spec.h"

#include <string>

#include "common/duration.h"
#include "common/memory_size.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kfleet::agent {
namespace {

namespace v1 = kfleet::v1;
using ::testing::HasSubstr;

v1::ScheduleSpec Good() {
  v1::ScheduleSpec s;
  s.set_name("mail-fetch");
  s.add_argv("fetchmail");
  s.add_argv("-s");
  s.set_every_after_ms(60000);
  return s;
}

// Validates the limits: each bad field is refused with the schedule and field named.
TEST(ScheduleSpecTest, Limits) {
  EXPECT_TRUE(ValidateScheduleSpec(Good()).ok());
  v1::ScheduleSpec s = Good();
  s.set_every_after_ms(999);
  EXPECT_THAT(ValidateScheduleSpec(s).message(), HasSubstr("schedule mail-fetch: every_after"));
  s = Good();
  s.set_every_after_ms(1000);
  EXPECT_TRUE(ValidateScheduleSpec(s).ok());
  s = Good();
  s.set_name("");
  EXPECT_THAT(ValidateScheduleSpec(s).message(), HasSubstr("schedule name"));
  s = Good();
  s.set_name("../x");
  EXPECT_FALSE(ValidateScheduleSpec(s).ok());
  s = Good();
  s.set_argv(0, "");
  EXPECT_THAT(ValidateScheduleSpec(s).message(), HasSubstr("argv is empty"));
  s = Good();
  for (int i = 0; i < kMaxScheduleArgs; ++i) s.add_argv("x");
  EXPECT_THAT(ValidateScheduleSpec(s).message(), HasSubstr("words; the limit is 4096"));
  s = Good();
  s.add_argv(std::string(kMaxScheduleArgvBytes, 'a'));
  EXPECT_THAT(ValidateScheduleSpec(s).message(), HasSubstr("bytes; the limit is"));
  s = Good();
  s.set_jitter_ms(uint64_t{1} << 62);
  EXPECT_THAT(ValidateScheduleSpec(s).message(), HasSubstr("jitter is"));
  s = Good();
  s.set_timeout_ms(uint64_t{1} << 62);
  EXPECT_THAT(ValidateScheduleSpec(s).message(), HasSubstr("timeout is"));
  s = Good();
  s.set_every_after_ms(~uint64_t{0});
  EXPECT_THAT(ValidateScheduleSpec(s).message(), HasSubstr("every_after is"));
}

// Validates that a run's command is the exec step `kctl exec --timeout T --memory-max M -- ARGV`
// makes, in forms the agent's step parsing reads back exactly.
TEST(ScheduleSpecTest, RunCommandIsAnExecStep) {
  v1::ScheduleSpec s = Good();
  s.set_timeout_ms(600000);
  s.set_memory_max_bytes(200 << 20);
  v1::Command c = ScheduledRunCommand(s, "c-0123456789abcdef");
  EXPECT_EQ(c.command_id(), "c-0123456789abcdef");
  ASSERT_TRUE(c.step().has_exec());
  EXPECT_THAT(c.step().exec().argv(), ::testing::ElementsAre("fetchmail", "-s"));
  absl::StatusOr<absl::Duration> timeout = ParseDuration(c.step().timeout());
  ASSERT_TRUE(timeout.ok()) << timeout.status();
  EXPECT_EQ(*timeout, absl::Minutes(10));
  absl::StatusOr<uint64_t> memory = ParseMemorySize(c.step().memory_max());
  ASSERT_TRUE(memory.ok()) << memory.status();
  EXPECT_EQ(*memory, 200u << 20);

  v1::Command plain = ScheduledRunCommand(Good(), "c-1");
  EXPECT_EQ(plain.step().timeout(), "");
  EXPECT_EQ(plain.step().memory_max(), "");
}

}  // namespace
}  // namespace kfleet::agent
