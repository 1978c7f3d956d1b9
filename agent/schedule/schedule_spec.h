// What the agent accepts as a schedule (ScheduleSpec, proto/kfleet/v1/agent.proto) and the command
// one run of it is.
#ifndef KFLEET_AGENT_SCHEDULE_SCHEDULE_SPEC_H_
#define KFLEET_AGENT_SCHEDULE_SCHEDULE_SPEC_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "kfleet/v1/agent.pb.h"

namespace kfleet::agent {

// Schedules one host runs at most; a larger set is cut to its first kMaxSchedules valid specs.
inline constexpr int kMaxSchedules = 256;
// argv bounds, the same as a job spec's exec step (controller/api/fleet_service.cc).
inline constexpr int kMaxScheduleArgs = 4096;
inline constexpr size_t kMaxScheduleArgvBytes = 256 << 10;
inline constexpr absl::Duration kMinEveryAfter = absl::Seconds(1);
// Upper bound of every_after, jitter and timeout: a year and a day, so that time arithmetic on
// them can never overflow.
inline constexpr absl::Duration kMaxScheduleDuration = absl::Hours(24 * 366);

// OK if the agent can run `spec`; otherwise InvalidArgument naming the schedule, the field and the
// fix. Names are 1 to 64 characters of [A-Za-z0-9._-] (as host names and ids).
absl::Status ValidateScheduleSpec(const kfleet::v1::ScheduleSpec& spec);

// The command of one run of `spec`: an exec step, as `kctl exec --timeout T --memory-max M --
// ARGV` makes it. timeout_ms 0 leaves the exec default (1 h); memory_max_bytes 0, no limit of its
// own. Precondition: ValidateScheduleSpec(spec) is OK.
kfleet::v1::Command ScheduledRunCommand(const kfleet::v1::ScheduleSpec& spec,
                                        const std::string& command_id);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SCHEDULE_SCHEDULE_SPEC_H_
