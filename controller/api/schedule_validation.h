// Checks of schedules as the admin API receives them (AddSchedule). kctl checks the same before
// it asks; the controller checks again, as it trusts no client.
#ifndef KFLEET_CONTROLLER_API_SCHEDULE_VALIDATION_H_
#define KFLEET_CONTROLLER_API_SCHEDULE_VALIDATION_H_

#include <cstdint>

#include "absl/status/status.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::controller {

// Bounds of a schedule's numbers.
inline constexpr uint64_t kMinEveryAfterMs = 1000;                             // 1s
inline constexpr uint64_t kMaxScheduleDurationMs = 366ull * 24 * 3600 * 1000;  // a year
inline constexpr uint64_t kMinScheduleMemoryBytes = 1 << 20;                   // 1 MiB

// Whether `name` is a schedule name: 1-64 letters, digits, '.', '_' and '-', starting with a
// letter or digit (it names jobs, "schedule NAME", and metric labels).
bool IsValidScheduleName(const std::string& name);

// Checks what a client may set: name, exactly one of host_names and labels, argv, every_after,
// jitter, timeout, memory_max. InvalidArgument names the field (and kctl's flag) and the fix.
// Whether the named hosts exist is the caller's to check.
absl::Status ValidateSchedule(const kfleet::v1::Schedule& schedule);

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_API_SCHEDULE_VALIDATION_H_
