#include "controller/api/schedule_validation.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/duration.h"
#include "common/ids.h"

namespace kfleet::controller {
namespace {

constexpr int kMaxArgs = 4096;
constexpr size_t kMaxArgvBytes = 256 << 10;
constexpr int kMaxLabels = 64;
constexpr int kMaxHosts = 1000;

absl::Status Bad(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

std::string Ms(uint64_t ms) { return ShortDuration(absl::Milliseconds(static_cast<int64_t>(ms))); }

}  // namespace

bool IsValidScheduleName(const std::string& name) {
  return IsValidId(name) && absl::ascii_isalnum(static_cast<unsigned char>(name[0]));
}

absl::Status ValidateSchedule(const v1::Schedule& s) {
  if (!IsValidScheduleName(s.name())) {
    return Bad("name", absl::StrCat("\"", s.name().substr(0, 64),
                                    "\" is not a schedule name: use 1 to 64 letters, digits, '.', "
                                    "'_' and '-', starting with a letter or digit (e.g. "
                                    "mbsync-inbox)"));
  }
  if (s.host_names().empty() == s.labels().empty()) {
    return Bad("hosts", s.host_names().empty()
                            ? "give the hosts to run on: host_names (kctl: --host NAME) or labels "
                              "(kctl: -l KEY=VALUE)"
                            : "give host_names (--host) or labels (-l), not both");
  }
  if (s.host_names_size() > kMaxHosts) {
    return Bad("host_names", absl::StrCat("more than ", kMaxHosts, " hosts"));
  }
  for (const std::string& h : s.host_names()) {
    if (!IsValidId(h)) {
      return Bad("host_names", absl::StrCat("\"", h.substr(0, 64),
                                            "\" is not a host name: `kctl hosts` lists them"));
    }
  }
  if (s.labels_size() > kMaxLabels) {
    return Bad("labels", absl::StrCat("more than ", kMaxLabels, " labels"));
  }
  for (const auto& [k, v] : s.labels()) {
    if (k.empty() || k.size() > 63 || v.size() > 256) {
      return Bad("labels", absl::StrCat("\"", k.substr(0, 63),
                                        "\": keys are 1-63 characters, values at most 256"));
    }
  }
  if (s.argv().empty() || s.argv(0).empty()) {
    return Bad("argv", "is empty: give the command to run (kctl: after --, e.g. -- mbsync inbox)");
  }
  if (s.argv_size() > kMaxArgs) {
    return Bad("argv", absl::StrCat("has ", s.argv_size(), " words; the limit is ", kMaxArgs));
  }
  size_t bytes = 0;
  for (const std::string& a : s.argv()) bytes += a.size();
  if (bytes > kMaxArgvBytes) {
    return Bad("argv", absl::StrCat("is ", bytes, " bytes; the limit is ", kMaxArgvBytes));
  }
  if (s.every_after_ms() < kMinEveryAfterMs || s.every_after_ms() > kMaxScheduleDurationMs) {
    return Bad("every_after (--every-after)",
               s.every_after_ms() == 0
                   ? "is missing: give the pause from the end of a run to the start of the next, "
                     "e.g. --every-after 5m"
                   : absl::StrCat(Ms(s.every_after_ms()),
                                  " is out of range: give 1s to 8784h (a year), e.g. 5m"));
  }
  if (s.jitter_ms() > kMaxScheduleDurationMs) {
    return Bad("jitter (--jitter)",
               absl::StrCat(Ms(s.jitter_ms()), " is over a year: give e.g. 30s, or none"));
  }
  if (s.timeout_ms() != 0 &&
      (s.timeout_ms() < kMinEveryAfterMs || s.timeout_ms() > kMaxScheduleDurationMs)) {
    return Bad(
        "timeout (--timeout)",
        absl::StrCat(Ms(s.timeout_ms()), " is out of range: give 1s to 8784h, e.g. 10m, or none"));
  }
  if (s.memory_max_bytes() != 0 && s.memory_max_bytes() < kMinScheduleMemoryBytes) {
    return Bad("memory_max (--memory-max)",
               absl::StrCat(s.memory_max_bytes(),
                            " bytes is below 1 MiB, too little to start a process: give e.g. "
                            "64M, or none"));
  }
  return absl::OkStatus();
}

}  // namespace kfleet::controller
