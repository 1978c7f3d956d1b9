#include "agent/agent.h"

#include <gtest/gtest.h>

#include "agent/session/session_client.h"

namespace kfleet::agent {
namespace {

// Validates label parsing and that a bad pair is named in the error.
TEST(AgentTest, ParseLabels) {
  auto labels = ParseLabels("role=builder,pool=local");
  ASSERT_TRUE(labels.ok());
  EXPECT_EQ(labels->at("role"), "builder");
  EXPECT_EQ(labels->at("pool"), "local");
  EXPECT_TRUE(ParseLabels("")->empty());
  auto bad = ParseLabels("role=builder,oops");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("\"oops\""), absl::string_view::npos);
}

// Validates the reconnect backoff: doubling from the minimum, capped, jittered within [d/2, d].
TEST(AgentTest, ReconnectDelayCappedWithJitter) {
  absl::Duration min = absl::Milliseconds(500), max = absl::Seconds(30);
  EXPECT_EQ(ReconnectDelay(0, min, max, 1.0), absl::Milliseconds(500));
  EXPECT_EQ(ReconnectDelay(0, min, max, 0.0), absl::Milliseconds(250));
  EXPECT_EQ(ReconnectDelay(3, min, max, 1.0), absl::Seconds(4));
  EXPECT_EQ(ReconnectDelay(20, min, max, 1.0), absl::Seconds(30));
  EXPECT_EQ(ReconnectDelay(1000, min, max, 0.0), absl::Seconds(15));
}

// Validates that an agent without a controller address refuses to start and says how to set one.
TEST(AgentTest, NeedsController) {
  AgentOptions options;
  options.state_dir = "/tmp";
  auto agent = Agent::Start(options);
  ASSERT_FALSE(agent.ok());
  EXPECT_NE(agent.status().message().find("--controller"), absl::string_view::npos);
}

}  // namespace
}  // namespace kfleet::agent
