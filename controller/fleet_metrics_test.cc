// FleetMetrics as the agent sessions' observer, read the way Prometheus reads it: /metrics of a
// real server on port 0 over a real store.
#include "controller/fleet_metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "controller/store/sqlite_store.h"

namespace kfleet::controller {
namespace {

// GET /metrics over HTTP/1.0 (the server closes after the response); "" if refused.
std::string Scrape(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  std::string response;
  if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    char buffer[8192];
    ssize_t n;
    while ((n = read(fd, buffer, sizeof(buffer))) > 0) response.append(buffer, n);
  }
  close(fd);
  return response;
}

// The value of the series `name` whose labels include `labels`; nullopt if there is none, and a
// test failure if there are several.
std::optional<double> Value(const std::string& exposition, absl::string_view name,
                            const std::map<std::string, std::string>& labels = {}) {
  std::optional<double> found;
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    size_t end = line.find_first_of("{ ");
    if (end == absl::string_view::npos || line.substr(0, end) != name) continue;
    bool match = true;
    for (const auto& [k, v] : labels) {
      match = match && line.find(absl::StrCat(k, "=\"", v, "\"")) != absl::string_view::npos;
    }
    if (!match) continue;
    EXPECT_FALSE(found.has_value()) << "two series match: " << line;
    found = std::stod(std::string(line.substr(line.rfind(' ') + 1)));
  }
  return found;
}

class FleetMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kfleet-fleet-metrics-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(dir_ + "/kfleet.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  void TearDown() override {
    metrics_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Register(const std::string& id) {
    v1::Hello hello;
    hello.set_host_id(id);
    hello.set_name(id);
    hello.set_boot_id("b1");
    (*hello.mutable_labels())["pool"] = "local";
    ASSERT_TRUE(store_->RegisterHost(hello, 1000).ok());
  }

  void StartMetrics() {
    FleetMetricsOptions options;
    options.store = store_.get();
    options.listen = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<FleetMetrics>> m = FleetMetrics::Start(options);
    ASSERT_TRUE(m.ok()) << m.status();
    metrics_ = std::move(*m);
  }

  static v1::Event Event(const std::string& host_id, const std::string& kind) {
    v1::Event e;
    e.set_host_id(host_id);
    e.set_kind(kind);
    return e;
  }

  std::string dir_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<FleetMetrics> metrics_;
};

// Validates that test results the sessions store reach kfleet_results_stored_total and
// kfleet_test_results_total{suite,status}, and nothing else.
TEST_F(FleetMetricsTest, StoredTestResultsAreCounted) {
  StartMetrics();
  std::string before = Scrape(metrics_->port());
  EXPECT_EQ(Value(before, "kfleet_results_stored_total"), 0.0);
  EXPECT_EQ(Value(before, "kfleet_test_results_total", {{"suite", "exec"}, {"status", "fail"}}),
            0.0);

  SessionObserver* observer = metrics_.get();
  observer->OnTestResults({{"exec", v1::TEST_PASS}, {"exec", v1::TEST_FAIL}});
  observer->OnTestResults({{"fstests", v1::TEST_SKIP}});

  std::string after = Scrape(metrics_->port());
  EXPECT_EQ(Value(after, "kfleet_results_stored_total"), 3.0);
  EXPECT_EQ(Value(after, "kfleet_test_results_total", {{"suite", "exec"}, {"status", "pass"}}),
            1.0);
  EXPECT_EQ(Value(after, "kfleet_test_results_total", {{"suite", "exec"}, {"status", "fail"}}),
            1.0);
  EXPECT_EQ(Value(after, "kfleet_test_results_total", {{"suite", "fstests"}, {"status", "skip"}}),
            1.0);
  EXPECT_EQ(Value(after, "kfleet_test_results_total", {{"suite", "exec"}, {"status", "skip"}}),
            0.0);
}

// Validates that every known host has kfleet_kernel_events_total for every kind from the start
// (at 0, so that increase() counts its first event), with the host's labels, and that events
// count on their host under their kind, an unknown kind as "other".
TEST_F(FleetMetricsTest, KernelEventsPerHostStartAtZeroForEveryKind) {
  Register("h1");
  Register("h2");
  StartMetrics();
  std::string before = Scrape(metrics_->port());
  for (const char* host : {"h1", "h2"}) {
    for (const std::string& kind : KernelEventKinds()) {
      EXPECT_EQ(Value(before, "kfleet_kernel_events_total",
                      {{"host", host}, {"instance", host}, {"pool", "local"}, {"kind", kind}}),
                0.0)
          << host << " " << kind;
    }
  }

  metrics_->OnEvent(Event("h1", "oom"));
  metrics_->OnEvent(Event("h1", "oom"));
  metrics_->OnEvent(Event("h1", "made_up_by_agent"));
  metrics_->OnEventMoved(Event("h2", "warn"));

  std::string after = Scrape(metrics_->port());
  EXPECT_EQ(Value(after, "kfleet_kernel_events_total", {{"host", "h1"}, {"kind", "oom"}}), 2.0);
  EXPECT_EQ(Value(after, "kfleet_kernel_events_total", {{"host", "h1"}, {"kind", "other"}}), 1.0);
  EXPECT_EQ(Value(after, "kfleet_kernel_events_total", {{"host", "h2"}, {"kind", "oom"}}), 0.0);
  EXPECT_EQ(Value(after, "kfleet_kernel_events_total", {{"host", "h2"}, {"kind", "warn"}}), 1.0);
  EXPECT_EQ(after.find("made_up_by_agent"), std::string::npos);
  EXPECT_EQ(Value(after, "kfleet_events_total", {{"kind", "oom"}}), 2.0);
}

}  // namespace
}  // namespace kfleet::controller
