// Values as kctl prints them for people: ages, sizes, times, labels and the proto's enums.
#ifndef KFLEET_CLI_FORMAT_H_
#define KFLEET_CLI_FORMAT_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/map.h"
#include "kfleet/v1/common.pb.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

// Coarse elapsed time: "45s", "12m", "5h", "3d". Negative durations (clock skew) count as zero.
std::string FormatAge(absl::Duration d);

// "3s ago" for a Unix time in milliseconds; "never" for 0.
std::string FormatAgo(int64_t unix_ms, absl::Time now);

// "512 B", "1.5 KiB", "12 MiB", "7.8 GiB": one decimal below 10 of a unit.
std::string FormatBytes(uint64_t bytes);

// "2024-05-01 12:03:04" in `tz`; "" for 0.
std::string FormatTime(int64_t unix_ms, absl::TimeZone tz);

// A duration in milliseconds: "50ms", "0.4s", "1.2s", "3m5s".
std::string FormatMillis(int64_t ms);

// `text` on one line: newlines, carriage returns and tabs become spaces.
std::string OneLine(std::string text);

// At most `width` display columns of `text` (UTF-8 continuation bytes take none), "..." marking a
// cut.
std::string Shorten(const std::string& text, size_t width);

// "pool=local,role=guest": sorted by key.
std::string FormatLabels(const google::protobuf::Map<std::string, std::string>& labels);

// Lower-case names without the enum prefix: "online", "running", "finished".
std::string HostStateName(v1::HostState state);
std::string JobStateName(v1::JobState state);
std::string CommandStateName(v1::CommandState state);
// "PASS", "FAIL", ...; "" for VERDICT_UNSPECIFIED.
std::string VerdictName(v1::Verdict verdict);
// "stdout", "stderr", "console", "kmsg".
std::string LogStreamName(v1::LogStream stream);
absl::StatusOr<v1::LogStream> ParseLogStream(absl::string_view name);

// A step in a few words: "exec uname -r", "kernel_build", "reboot".
std::string DescribeStep(const v1::Step& step);

// The kind of a step as job specs name it: "exec", "reboot", "kernel_build", "kernel_install";
// "unknown" when none is set.
std::string StepKindName(const v1::Step& step);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_FORMAT_H_
