// The lines that tell of an OOM kill, one parser each: the kernel's (mm/oom_kill.c, kernels 4.19
// through 6.x) and those of the userspace killers earlyoom and systemd-oomd. Pure functions on one
// line's text; KernelEventParser strings them together.
#ifndef KFLEET_AGENT_KMSG_OOM_LINES_H_
#define KFLEET_AGENT_KMSG_OOM_LINES_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "kfleet/v1/common.pb.h"

namespace kfleet::agent {

// The kernel's line for the kill itself, in each of its forms:
//   4.19:  Killed process 1234 (stress) total-vm:3156416kB, anon-rss:1892396kB, file-rss:4kB,
//          shmem-rss:0kB
//   5.x+:  Out of memory: Killed process 1234 (stress) total-vm:...kB, anon-rss:...kB,
//          file-rss:...kB, shmem-rss:...kB, UID:1000 pgtables:3720kB oom_score_adj:0
//          (also "Memory cgroup out of memory: " and "Out of memory (oom_kill_allocating_task): ")
// comm is everything between the "(" after the pid and the last ") total-vm:", so it may hold
// spaces and parentheses. Fills pid, comm, the sizes, uid and oom_score_adj when printed,
// memcg for the "Memory cgroup" prefix, and killer "kernel". nullopt for any other line.
std::optional<kfleet::v1::OomKill> ParseOomKilledLine(absl::string_view message);

// The one-line summary dump_header() prints before the kill (rate-limited, so it may be missing):
//   oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,
//   oom_memcg=/kfleet/c-1,task_memcg=/kfleet/c-1,task=tail,pid=4321,uid=0
// A global OOM has ",global_oom" instead of oom_memcg; 4.19 pads pid and uid with spaces.
struct OomSummary {
  std::string constraint;  // CONSTRAINT_NONE, CONSTRAINT_MEMCG, ...
  std::string oom_memcg;   // "" for a global OOM
  std::string task_memcg;
  std::string task;  // the victim's comm
  int pid = 0;       // 0 when not printed
  int uid = -1;      // -1 when not printed
};
std::optional<OomSummary> ParseOomSummary(absl::string_view message);

// 4.19's line between the summary and the kill, naming the process chosen (a child of it may be
// the one killed): "Out of memory: Kill process 1234 (stress) score 912 or sacrifice child", or
// "Memory cgroup out of memory: Kill process ...".
struct OomChoice {
  int pid = 0;
  bool memcg = false;
};
std::optional<OomChoice> ParseOomChoiceLine(absl::string_view message);

// True for the header of an OOM report: "stress invoked oom-killer: gfp_mask=0x..., order=0,
// oom_score_adj=0".
bool IsOomHeader(absl::string_view message);

// A kill by a userspace OOM killer, from a journal or syslog line. The line may be the bare
// message (journalctl -o cat) or carry a syslog prefix ending in "earlyoom[123]: " or
// "systemd-oomd[45]: ".
struct UserspaceKill {
  kfleet::v1::OomKill oom;
  std::string message;  // the killer's message, without the syslog prefix
};

// earlyoom (kill.c, versions 1.2 through 1.8):
//   sending SIGTERM to process 4567 uid 1000 "firefox": oom_score 600, VmRSS 2000 MiB, cmdline
//   "..." sending SIGKILL to process 4567 uid 1000 "firefox": badness 900, VmRSS 2000 MiB sending
//   SIGKILL to process 4567 "firefox": badness 900, VmRSS 2000 MiB
// earlyoom reports only the total resident set, VmRSS; it is put in anon_rss_kb (MiB * 1024) so
// that the sum of the rss fields is right. Killer "earlyoom".
std::optional<UserspaceKill> ParseEarlyoomLine(absl::string_view line);

// systemd-oomd (src/oom/oomd-manager.c), which kills a whole cgroup:
//   Killed /user.slice/.../app.scope due to memory pressure for /user.slice/user-1000.slice being
//   80.00% > 50.00% for > 20s with reclaim activity
//   Killed /system.slice/foo.service due to memory used (...) / total (...) and swap used (...) /
//   total (...) being more than 90.00%
// ("Marked ... for killing due to ..." in newer versions). task_memcg is the killed cgroup,
// oom_memcg the one under pressure when named; pid stays 0. Killer "systemd-oomd".
std::optional<UserspaceKill> ParseSystemdOomdLine(absl::string_view line);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_KMSG_OOM_LINES_H_
