#include "cli/table.h"

#include <gtest/gtest.h>

#include "cli/hosts_command.h"
#include "cli/job_view.h"

namespace kfleet::cli {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1714564984);  // 2024-05-01 12:03:04 UTC

// Validates aligned columns, capital headers, "-" for empty cells and no trailing blanks.
TEST(TableTest, Aligns) {
  Table t({"name", "state", "labels"});
  t.AddRow({"host-a", "online", "pool=local"});
  t.AddRow({"b", "", "x"});
  EXPECT_EQ(t.Render(),
            "NAME     STATE    LABELS\n"
            "host-a   online   pool=local\n"
            "b        -        x\n");
}

// Validates that newlines in a cell cannot break a row, and UTF-8 counts by character.
TEST(TableTest, SanitizesCells) {
  Table t({"A", "B"});
  t.AddRow({"x\ny", "1"});
  t.AddRow({"é", "2"});
  EXPECT_EQ(t.Render(),
            "A     B\n"
            "x y   1\n"
            "é     2\n");
}

v1::ListHostsResponse TwoHosts() {
  v1::ListHostsResponse r;
  v1::Host* b = r.add_hosts();
  b->set_name("mail");
  b->set_id("h-2");
  b->set_state(v1::OFFLINE);
  b->set_last_seen_unix_ms(absl::ToUnixMillis(kNow - absl::Minutes(7)));
  v1::Host* a = r.add_hosts();
  a->set_name("guest-1");
  a->set_id("h-1");
  a->set_state(v1::ONLINE);
  (*a->mutable_labels())["pool"] = "local";
  (*a->mutable_labels())["role"] = "guest";
  a->mutable_facts()->set_kernel_release("6.1.0-kf");
  a->mutable_facts()->set_cpus(2);
  a->mutable_facts()->set_memory_bytes(512ull << 20);
  a->mutable_facts()->set_os("Debian GNU/Linux 12 (bookworm)");
  a->set_agent_version("0.1.0");
  a->set_last_seen_unix_ms(absl::ToUnixMillis(kNow - absl::Seconds(3)));
  return r;
}

// Validates the hosts table, sorted by name, default and wide.
TEST(TableTest, Hosts) {
  std::string table = RenderHostsTable(TwoHosts(), false, kNow);
  EXPECT_EQ(table,
            "NAME      STATE     KIND   LABELS                  KERNEL     LAST-SEEN\n"
            "guest-1   online    test   pool=local,role=guest   6.1.0-kf   3s ago\n"
            "mail      offline   test   -                       -          7m ago\n");
  std::string wide = RenderHostsTable(TwoHosts(), true, kNow);
  EXPECT_EQ(
      wide,
      "NAME      STATE     KIND   LABELS                  KERNEL     LAST-SEEN   ID    "
      "CPUS   MEMORY    AGENT   OS\n"
      "guest-1   online    test   pool=local,role=guest   6.1.0-kf   3s ago      h-1   2      "
      "512 MiB   0.1.0   Debian GNU/Linux 12 (bookworm)\n"
      "mail      offline   test   -                       -          7m ago      h-2   -      "
      "-         -       -\n");
}

// Validates the job page: header, steps and one row per command.
TEST(TableTest, JobDetail) {
  v1::Job job;
  job.set_id("j-1");
  job.mutable_spec()->set_name("smoke");
  job.mutable_spec()->mutable_hosts()->set_all(true);
  v1::Step* step = job.mutable_spec()->add_steps();
  step->set_timeout("30s");
  step->mutable_exec()->add_argv("uname");
  step->mutable_exec()->add_argv("-r");
  job.set_state(v1::JOB_DONE);
  job.set_verdict(v1::FAIL);
  job.set_created_unix_ms(absl::ToUnixMillis(kNow - absl::Seconds(5)));
  job.set_finished_unix_ms(absl::ToUnixMillis(kNow - absl::Seconds(3)));
  v1::CommandInfo* c = job.add_commands();
  c->set_id("c-1");
  c->set_host_name("guest-1");
  c->set_state(v1::COMMAND_FINISHED);
  c->mutable_result()->set_verdict(v1::FAIL);
  c->mutable_result()->set_exit_code(3);
  c->mutable_result()->set_wall_ms(1500);
  c->mutable_result()->set_user_cpu_ms(700);
  c->mutable_result()->set_system_cpu_ms(100);
  c->mutable_result()->set_max_rss_bytes(3 << 20);
  c->mutable_result()->set_detail("exited with status 3");
  v1::CommandInfo* p = job.add_commands();
  p->set_host_name("mail");
  p->set_state(v1::COMMAND_PENDING);

  EXPECT_EQ(RenderJobDetail(job, false, kNow, absl::UTCTimeZone()),
            "ID:        j-1\n"
            "Name:      smoke\n"
            "State:     done\n"
            "Verdict:   FAIL\n"
            "Hosts:     all online hosts except builders\n"
            "Created:   2024-05-01 12:02:59\n"
            "Finished:  2024-05-01 12:03:01\n"
            "Duration:  2.0s\n"
            "Steps:\n"
            "  0  exec uname -r  (timeout 30s)\n"
            "\n"
            "HOST      STEP   STATE      VERDICT   EXIT   WALL   CPU    MAXRSS    DETAIL\n"
            "guest-1   0      finished   FAIL      3      1.5s   0.8s   3.0 MiB   exited with "
            "status 3\n"
            "mail      0      pending    -         -      -      -      -         -\n");
}

}  // namespace
}  // namespace kfleet::cli
