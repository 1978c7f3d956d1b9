#include "cli/top_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "cli/kctl_test_runner.h"
#include "cli/top_view.h"

namespace kfleet::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

int64_t At(double seconds) {
  return absl::ToUnixMillis(KctlTestRunner::Start() + absl::Seconds(seconds));
}

void Add(google::protobuf::RepeatedPtrField<v1::MetricSample>* batch, const std::string& name,
         double value, const std::map<std::string, std::string>& labels = {}) {
  v1::MetricSample* s = batch->Add();
  s->set_name(name);
  s->set_value(value);
  s->mutable_labels()->insert(labels.begin(), labels.end());
}

// A batch of host samples: memory, load, PSI counters (seconds), OOM kills, one CPU.
void Batch(google::protobuf::RepeatedPtrField<v1::MetricSample>* b, double mem_total,
           double mem_available, double load1, double psi_cpu, double psi_mem, double psi_io,
           double oom_kills, double cpu_idle, double cpu_user) {
  Add(b, "node_memory_MemTotal_bytes", mem_total);
  Add(b, "node_memory_MemAvailable_bytes", mem_available);
  Add(b, "node_load1", load1);
  Add(b, "node_pressure_cpu_waiting_seconds_total", psi_cpu);
  Add(b, "node_pressure_memory_waiting_seconds_total", psi_mem);
  Add(b, "node_pressure_io_waiting_seconds_total", psi_io);
  Add(b, "node_vmstat_oom_kill", oom_kills);
  Add(b, "node_cpu_seconds_total", cpu_idle, {{"cpu", "0"}, {"mode", "idle"}});
  Add(b, "node_cpu_seconds_total", cpu_user, {{"cpu", "0"}, {"mode", "user"}});
  Add(b, "node_network_receive_bytes_total", 1e9, {{"device", "eth0"}});  // not asked for
}

v1::Host MakeHost(const std::string& name, v1::HostState state) {
  v1::Host h;
  h.set_id(name + "-id");
  h.set_name(name);
  h.set_state(state);
  (*h.mutable_labels())["pool"] = name == "mail" ? "infra" : "local";
  return h;
}

// Three hosts: guest-1 running a command of job j-1, guest-2, mail (offline).
v1::ListHostsResponse FleetHosts() {
  v1::ListHostsResponse hosts;
  *hosts.add_hosts() = MakeHost("mail", v1::OFFLINE);
  *hosts.add_hosts() = MakeHost("guest-2", v1::ONLINE);
  v1::Host* busy = hosts.add_hosts();
  *busy = MakeHost("guest-1", v1::ONLINE);
  busy->add_running_command_ids("c-1");
  return hosts;
}

// guest-1 with two batches 10 s apart (OOM kills between them, up to `oom_now`), guest-2 with
// one, mail with none.
v1::GetHostMetricsResponse FleetMetrics(double oom_now = 3) {
  v1::GetHostMetricsResponse metrics;
  v1::HostMetrics* g1 = metrics.add_hosts();
  g1->set_host_id("guest-1-id");
  g1->set_host_name("guest-1");
  g1->set_previous_time_unix_ms(At(-12));
  g1->set_time_unix_ms(At(-2));
  Batch(g1->mutable_previous(), 482 << 20, 240 << 20, 0.4, 100, 50, 3, 2, 1000, 100);
  Batch(g1->mutable_samples(), 482 << 20, 237 << 20, 0.52, 100.15, 51.2, 3.05, oom_now, 1005, 105);
  v1::HostMetrics* g2 = metrics.add_hosts();
  g2->set_host_id("guest-2-id");
  g2->set_host_name("guest-2");
  g2->set_time_unix_ms(At(-5));
  Batch(g2->mutable_samples(), 1 << 30, 768 << 20, 0, 7, 7, 7, 0, 50, 50);
  return metrics;
}

v1::Job SmokeJob() {
  v1::Job job;
  job.set_id("j-1");
  job.mutable_spec()->set_name("smoke");
  job.add_commands()->set_id("c-1");
  return job;
}

const char kTable[] =
    "HOST      STATE     MEM             LOAD1   PSI-CPU   PSI-MEM   PSI-IO   OOM     AGE   "
    "RUNNING\n"
    "guest-1   online    245MiB/482MiB   0.52    1.5%      12.0%     0.5%     3(+1)   2s    "
    "c-1 (j-1 smoke)\n"
    "guest-2   online    256MiB/1.0GiB   0.00    -         -         -        0       5s    -\n"
    "mail      offline   -               -       -         -         -        -       -     -\n";

// Validates the rows: used memory, PSI as percent of the rate between batches, "-" before a
// second batch, an OOM count that rose marked, and a counter that went down (an agent restart)
// giving no rate.
TEST(TopViewTest, Rows) {
  v1::ListJobsResponse jobs;
  *jobs.add_jobs() = SmokeJob();
  v1::GetHostMetricsResponse metrics = FleetMetrics();
  std::vector<TopRow> rows = BuildTopRows(FleetHosts(), metrics, jobs);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].name, "guest-1");
  EXPECT_EQ(*rows[0].mem_used_bytes, int64_t{245} << 20);
  EXPECT_NEAR(*rows[0].psi_memory_percent, 12.0, 1e-9);
  EXPECT_DOUBLE_EQ(*rows[0].cpu_busy_percent, 50.0);
  EXPECT_EQ(*rows[0].oom_kills_new, 1);
  EXPECT_FALSE(rows[1].psi_cpu_percent.has_value());
  EXPECT_FALSE(rows[1].oom_kills_new.has_value());
  EXPECT_EQ(rows[2].sample_unix_ms, 0);
  EXPECT_EQ(RenderTopTable(rows, false, KctlTestRunner::Start()), kTable);
  EXPECT_THAT(HostsWithNewOoms(rows), ElementsAre("guest-1"));

  v1::HostMetrics& g1 = *metrics.mutable_hosts(0);
  g1.mutable_samples(3)->set_value(1);  // node_pressure_cpu_waiting_seconds_total reset
  rows = BuildTopRows(FleetHosts(), metrics, jobs);
  EXPECT_FALSE(rows[0].psi_cpu_percent.has_value());
  EXPECT_TRUE(rows[0].psi_io_percent.has_value());
}

class TopCommandTest : public ::testing::Test {
 protected:
  TopCommandTest() {
    kctl_.service.hosts = FleetHosts();
    kctl_.service.job = SmokeJob();
    kctl_.service.SetMetrics(FleetMetrics());
  }
  KctlTestRunner kctl_;
};

// Validates that off a terminal top prints the table once, and asks only for the samples it shows.
TEST_F(TopCommandTest, NotATerminalPrintsOnce) {
  EXPECT_EQ(kctl_.Run({"top"}), 0);
  EXPECT_EQ(kctl_.out(), kTable);
  EXPECT_EQ(kctl_.err(), "");
  EXPECT_THAT(kctl_.service.calls(), ElementsAre("ListHosts", "GetHostMetrics", "ListJobs"));
  ASSERT_EQ(kctl_.service.metrics_requests().size(), 1u);
  EXPECT_THAT(kctl_.service.metrics_requests()[0].names(), ElementsAreArray(TopMetricNames(false)));

  EXPECT_EQ(kctl_.Run({"top", "-o", "wide", "-l", "pool=local"}), 0);
  EXPECT_THAT(kctl_.out(), StartsWith("HOST      STATE    MEM             LOAD1   CPU   PSI-CPU"));
  EXPECT_THAT(kctl_.out(), HasSubstr("0.52    50%   1.5%"));
  EXPECT_THAT(kctl_.out(), Not(HasSubstr("mail")));
}

// Validates -o json: one document, numbers as numbers, what is not known left out.
TEST_F(TopCommandTest, Json) {
  kctl_.tty = true;  // json is printed once, also on a terminal
  EXPECT_EQ(kctl_.Run({"top", "-o", "json"}), 0);
  nlohmann::json doc = nlohmann::json::parse(kctl_.out(), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << kctl_.out();
  ASSERT_EQ(doc["hosts"].size(), 3u);
  const nlohmann::json& g1 = doc["hosts"][0];
  EXPECT_EQ(g1["name"], "guest-1");
  EXPECT_EQ(g1["state"], "ONLINE");
  EXPECT_EQ(g1["mem_used_bytes"], int64_t{245} << 20);
  EXPECT_NEAR(g1["psi_memory_percent"].get<double>(), 12.0, 1e-9);
  EXPECT_EQ(g1["oom_kills"], 3);
  EXPECT_EQ(g1["oom_kills_new"], 1);
  EXPECT_EQ(g1["sample_age_ms"], 2000);
  EXPECT_EQ(g1["running"][0]["job_name"], "smoke");
  EXPECT_NEAR(g1["cpu_busy_percent"].get<double>(), 50.0, 1e-9);
  EXPECT_FALSE(doc["hosts"][1].contains("psi_cpu_percent"));
  EXPECT_FALSE(doc["hosts"][2].contains("mem_total_bytes"));
  EXPECT_THAT(kctl_.out(), Not(HasSubstr("\x1b[")));
}

// Validates the live table on a terminal: drawn home-and-clear with the cursor hidden, redrawn
// every --interval with new samples, the hosts with a new OOM kill pointed at, and Ctrl-C
// ending it with exit 0 and the cursor shown again.
TEST_F(TopCommandTest, LiveUntilCtrlC) {
  kctl_.tty = true;
  kctl_.columns = 200;
  int redraws = 0;
  kctl_.on_sleep = [&] {
    absl::Duration slept = kctl_.now - KctlTestRunner::Start();
    if (slept == absl::Seconds(5)) kctl_.service.SetMetrics(FleetMetrics(5));  // two more
    if (slept == absl::Seconds(10)) raise(SIGINT);
    ++redraws;
  };
  EXPECT_EQ(kctl_.Run({"top", "--interval", "5s"}), 0);
  std::string out = kctl_.out();
  EXPECT_THAT(out,
              StartsWith("\x1b[?25l\x1b[H\x1b[J2024-05-01 12:03:04  3 hosts, 2 online, 1 busy  "
                         "(every 5s; Ctrl-C quits)\n\nHOST "));
  EXPECT_THAT(out, HasSubstr("\x1b[H\x1b[J2024-05-01 12:03:09  3 hosts"));
  EXPECT_THAT(out, HasSubstr("   5(+3)   "));
  EXPECT_THAT(out, HasSubstr("\nOOM kill since the last sample on guest-1: kctl events --kind oom "
                             "--host guest-1\n"));
  EXPECT_THAT(out, EndsWith("\x1b[?25h"));
  EXPECT_EQ(redraws, 100);  // two intervals of 100 ms sleeps
  EXPECT_THAT(kctl_.service.calls(), ElementsAre("ListHosts", "GetHostMetrics", "ListJobs",
                                                 "ListHosts", "GetHostMetrics", "ListJobs"));
  EXPECT_EQ(kctl_.err(), "");
}

// Validates --once on a terminal: the table only, no escapes.
TEST_F(TopCommandTest, Once) {
  kctl_.tty = true;
  EXPECT_EQ(kctl_.Run({"top", "--once", "--host", "guest-2"}), 0);
  EXPECT_EQ(kctl_.out(),
            "HOST      STATE    MEM             LOAD1   PSI-CPU   PSI-MEM   PSI-IO   OOM   AGE   "
            "RUNNING\n"
            "guest-2   online   256MiB/1.0GiB   0.00    -         -         -        0     5s    "
            "-\n");
  EXPECT_EQ(kctl_.service.metrics_requests()[0].host(), "guest-2");
}

// Validates bad input: an unknown host (with a suggestion, exit 8), a bad or too short interval.
TEST_F(TopCommandTest, Errors) {
  EXPECT_EQ(kctl_.Run({"top", "--host", "guest-3"}), 8);
  EXPECT_EQ(kctl_.err(),
            "kctl: top: no host \"guest-3\" (did you mean \"guest-1\"?); kctl hosts lists them\n");
  EXPECT_EQ(kctl_.Run({"top", "--interval", "fast"}), 2);
  EXPECT_THAT(kctl_.err(), StartsWith("kctl: top: --interval: invalid duration \"fast\""));
  EXPECT_EQ(kctl_.Run({"top", "--interval", "100ms"}), 2);
  EXPECT_THAT(kctl_.err(), HasSubstr("is too short (expected at least 1s"));
  EXPECT_EQ(kctl_.Run({"top", "-l", "pool"}), 2);
  EXPECT_THAT(kctl_.err(), StartsWith("kctl: top: -l: "));
}

// Validates that a controller without GetHostMetrics still gives the hosts, and says why the
// metrics are missing.
TEST_F(TopCommandTest, OlderController) {
  kctl_.service.metrics_error = grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "");
  EXPECT_EQ(kctl_.Run({"top"}), 0);
  EXPECT_THAT(kctl_.out(), HasSubstr("\nguest-2   online    -     -       -"));
  EXPECT_EQ(kctl_.err(),
            "The controller serves no metrics (an older version): only hosts are "
            "shown.\n");
}

}  // namespace
}  // namespace kfleet::cli
