#include "common/credentials.h"

#include <gtest/gtest.h>

namespace kfleet {
namespace {

// Validates that --insecure is refused off loopback with a message naming the address and the fix.
TEST(CredentialsTest, LoopbackDetection) {
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1:7400"));
  EXPECT_TRUE(IsLoopbackAddress("127.8.9.1:1"));
  EXPECT_TRUE(IsLoopbackAddress("[::1]:7400"));
  EXPECT_TRUE(IsLoopbackAddress("localhost:7400"));
  EXPECT_FALSE(IsLoopbackAddress("10.0.0.1:7400"));
  EXPECT_FALSE(IsLoopbackAddress("0.0.0.0:7400"));
  EXPECT_FALSE(IsLoopbackAddress("[::]:7400"));
  EXPECT_FALSE(IsLoopbackAddress("example.com:7400"));
}

TEST(CredentialsTest, InsecureOnlyOnLoopback) {
  TransportSecurity insecure{.insecure = true};
  EXPECT_TRUE(MakeServerCredentials(insecure, "127.0.0.1:0").ok());
  EXPECT_TRUE(MakeChannel(insecure, "[::1]:7400").ok());
  auto refused = MakeServerCredentials(insecure, "0.0.0.0:7400");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("0.0.0.0:7400"), absl::string_view::npos);
  EXPECT_FALSE(MakeChannel(TransportSecurity{}, "127.0.0.1:7400").ok());
  // A guest dials the forwarded controller address; nobody may listen on it insecurely.
  EXPECT_TRUE(MakeChannel(insecure, "10.0.2.100:7400").ok());
  EXPECT_FALSE(MakeServerCredentials(insecure, "10.0.2.100:7400").ok());
  EXPECT_FALSE(MakeChannel(insecure, "10.0.2.101:7400").ok());
}

}  // namespace
}  // namespace kfleet
