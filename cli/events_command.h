// `kctl events`: the hosts' timelines: boots, reboots, power-cycles, guests made, and what the
// kernel said (OOM kills, oopses, panics, WARNINGs...).
#ifndef KFLEET_CLI_EVENTS_COMMAND_H_
#define KFLEET_CLI_EVENTS_COMMAND_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cli/command_spec.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

CommandSpec EventsCommand();

// The kinds of events the controller records (fleet.proto, Event.kind), as --kind takes them.
const std::vector<std::string>& EventKinds();

// OK for a kind of EventKinds(); otherwise a usage error that suggests the closest kind and lists
// them all.
absl::Status CheckEventKind(absl::string_view kind);

// What the OOM killer did, in a few words: "killed 4242 (stress-ng) anon-rss 64 MiB, memcg limit
// /kfleet/c-abc" (the cgroup whose limit was hit), "..., host out of memory" (no limit: the whole
// machine ran out), "... by earlyoom" (a userspace killer).
std::string DescribeOomKill(const v1::OomKill& oom);

// One line, without a newline: "TIME  HOST  KIND  TEXT", TEXT being DescribeOomKill for an OOM
// kill and the message otherwise, followed by " [command ID]" when a command was running and
// " [before agent]" for history (a record from before the agent first started). With
// `wide`, the lines that followed in the kernel log (a call trace...) come after it, each indented
// by four spaces.
std::string FormatEvent(const v1::Event& event, absl::TimeZone tz, bool wide = false);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_EVENTS_COMMAND_H_
