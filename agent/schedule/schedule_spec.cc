#include "agent/schedule/schedule_spec.h"

#include "absl/strings/str_cat.h"
#include "common/duration.h"
#include "common/ids.h"

namespace kfleet::agent {

absl::Status ValidateScheduleSpec(const v1::ScheduleSpec& spec) {
  if (!IsValidId(spec.name())) {
    return absl::InvalidArgumentError(
        absl::StrCat("schedule name \"", spec.name().substr(0, 64),
                     "\" is not 1 to 64 characters of [A-Za-z0-9._-]; name it e.g. mail-fetch"));
  }
  auto bad = [&](absl::string_view field, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("schedule ", spec.name(), ": ", field, why));
  };
  if (spec.argv().empty() || spec.argv(0).empty()) {
    return bad("argv", " is empty: give the command to run, e.g. -- fetchmail -s");
  }
  if (spec.argv_size() > kMaxScheduleArgs) {
    return bad("argv",
               absl::StrCat(" has ", spec.argv_size(), " words; the limit is ", kMaxScheduleArgs));
  }
  size_t bytes = 0;
  for (const std::string& a : spec.argv()) bytes += a.size();
  if (bytes > kMaxScheduleArgvBytes) {
    return bad("argv", absl::StrCat(" is ", bytes, " bytes; the limit is ", kMaxScheduleArgvBytes));
  }
  const uint64_t max_ms = absl::ToInt64Milliseconds(kMaxScheduleDuration);
  if (spec.every_after_ms() < static_cast<uint64_t>(absl::ToInt64Milliseconds(kMinEveryAfter))) {
    return bad("every_after", absl::StrCat(" is ", spec.every_after_ms(),
                                           " ms; the least is 1s (--every-after 1s)"));
  }
  for (auto [field, ms] : {std::pair<const char*, uint64_t>{"every_after", spec.every_after_ms()},
                           {"jitter", spec.jitter_ms()},
                           {"timeout", spec.timeout_ms()}}) {
    if (ms > max_ms) {
      return bad(field, absl::StrCat(" is ", ms, " ms; the most is ",
                                     ShortDuration(kMaxScheduleDuration)));
    }
  }
  return absl::OkStatus();
}

v1::Command ScheduledRunCommand(const v1::ScheduleSpec& spec, const std::string& command_id) {
  v1::Command command;
  command.set_command_id(command_id);
  v1::Step* step = command.mutable_step();
  if (spec.timeout_ms() > 0) step->set_timeout(absl::StrCat(spec.timeout_ms(), "ms"));
  if (spec.memory_max_bytes() > 0) step->set_memory_max(absl::StrCat(spec.memory_max_bytes()));
  step->mutable_exec()->mutable_argv()->CopyFrom(spec.argv());
  return command;
}

}  // namespace kfleet::agent
