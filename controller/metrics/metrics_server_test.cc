#include "controller/metrics/metrics_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "controller/metrics/fleet_collector.h"

namespace kfleet::controller {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A socket on 127.0.0.1:`port`, connected; -1 if refused.
int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// GET `path` over HTTP/1.0 (the server closes after the response): status line, headers, body.
std::string HttpGet(int port, absl::string_view path) {
  int fd = Connect(port);
  if (fd < 0) return "";
  std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return "";
  }
  std::string response;
  char buffer[8192];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) response.append(buffer, n);
  close(fd);
  return response;
}

// Validates that a real server on port 0 serves the fleet's exposition at /metrics, skipping a
// collectable that has expired, and stops serving when destroyed.
TEST(MetricsServerTest, ServesMetricsOverHttp) {
  HostSampleTable table;
  v1::MetricSample sample;
  sample.set_name("node_load1");
  sample.set_value(0.25);
  table.Update("id-a", "guest-a", {{"pool", "local"}}, 1000, {sample});
  auto collector = std::make_shared<FleetCollector>(table);
  std::weak_ptr<prometheus::Collectable> expired = std::make_shared<FleetCollector>(table);

  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start("127.0.0.1:0", {collector, expired});
  ASSERT_TRUE(server.ok()) << server.status();
  int port = (*server)->port();
  ASSERT_GT(port, 0);

  std::string response = HttpGet(port, "/metrics");
  EXPECT_THAT(response, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(response, HasSubstr("# TYPE node_load1 gauge\n"));
  EXPECT_THAT(response,
              HasSubstr("node_load1{host=\"guest-a\",instance=\"guest-a\",pool=\"local\"} 0.25\n"));

  server->reset();
  EXPECT_EQ(Connect(port), -1) << "still listening after destruction";
}

// Validates that a port already in use gives an error that says so and how to pick another.
TEST(MetricsServerTest, BusyPortIsAClearError) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::string listen = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));

  absl::StatusOr<std::unique_ptr<MetricsServer>> server = MetricsServer::Start(listen, {});
  close(fd);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(server.status().message(), HasSubstr("cannot listen on " + listen));
  EXPECT_THAT(server.status().message(), HasSubstr("port in use"));
  EXPECT_THAT(server.status().message(), HasSubstr("--metrics-listen HOST:PORT"));
}

// Validates that malformed listen addresses are refused before civetweb sees them.
TEST(MetricsServerTest, MalformedListenAddress) {
  for (const char* listen : {"7401", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000",
                             "metrics.example.com:7401", "[nope]:7401"}) {
    absl::StatusOr<std::unique_ptr<MetricsServer>> server = MetricsServer::Start(listen, {});
    ASSERT_FALSE(server.ok()) << listen;
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument) << listen;
    EXPECT_THAT(server.status().message(), HasSubstr(listen));
  }
}

// Validates the other accepted forms: localhost, and IPv6 where civetweb has it; and that /metrics
// answers even without collectables.
TEST(MetricsServerTest, LocalhostAndIpv6) {
  absl::StatusOr<std::unique_ptr<MetricsServer>> server = MetricsServer::Start("localhost:0", {});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT(HttpGet((*server)->port(), "/metrics"), StartsWith("HTTP/1.1 200"));
  absl::StatusOr<std::unique_ptr<MetricsServer>> v6 = MetricsServer::Start("[::1]:0", {});
  if (v6.ok()) {
    EXPECT_GT((*v6)->port(), 0);
  } else {
    EXPECT_EQ(v6.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(v6.status().message(), HasSubstr("IPv6 not supported"));
  }
}

}  // namespace
}  // namespace kfleet::controller
