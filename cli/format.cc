#include "cli/format.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/suggest.h"
#include "common/duration.h"

namespace kfleet::cli {

std::string FormatAge(absl::Duration d) {
  int64_t s = std::max<int64_t>(0, absl::ToInt64Seconds(d));
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrCat(s / 60, "m");
  if (s < 48 * 3600) return absl::StrCat(s / 3600, "h");
  return absl::StrCat(s / 86400, "d");
}

std::string FormatAgo(int64_t unix_ms, absl::Time now) {
  if (unix_ms == 0) return "never";
  return absl::StrCat(FormatAge(now - absl::FromUnixMillis(unix_ms)), " ago");
}

std::string FormatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  double v = static_cast<double>(bytes);
  size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) {
    v /= 1024;
    ++unit;
  }
  // Round first, so that 1023.96 KiB reads "1024 KiB" rather than "1024.0 KiB".
  if (v < 9.95) return absl::StrFormat("%.1f %s", v, kUnits[unit]);
  return absl::StrFormat("%.0f %s", v, kUnits[unit]);
}

std::string FormatTime(int64_t unix_ms, absl::TimeZone tz) {
  if (unix_ms == 0) return "";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(unix_ms), tz);
}

std::string FormatMillis(int64_t ms) {
  if (ms <= 0) return "0s";
  // Tenths of a second from 100 ms, as in "0.4s", "1.2s"; ShortDuration takes over from 1 s.
  if (ms >= 100 && ms < 1000) return absl::StrFormat("%.1fs", ms / 1000.0);
  return kfleet::ShortDuration(absl::Milliseconds(ms));
}

std::string OneLine(std::string text) {
  std::replace_if(
      text.begin(), text.end(), [](char ch) { return ch == '\n' || ch == '\t' || ch == '\r'; },
      ' ');
  return text;
}

std::string Shorten(const std::string& text, size_t width) {
  std::vector<size_t> starts;  // where each character starts
  for (size_t i = 0; i < text.size(); ++i) {
    if ((text[i] & 0xC0) != 0x80) starts.push_back(i);
  }
  if (starts.size() <= width) return text;
  if (width < 3) return text.substr(0, starts[width]);
  return absl::StrCat(text.substr(0, starts[width - 3]), "...");
}

std::string FormatLabels(const google::protobuf::Map<std::string, std::string>& labels) {
  std::map<std::string, std::string> sorted(labels.begin(), labels.end());
  return absl::StrJoin(sorted, ",", absl::PairFormatter("="));
}

std::string HostStateName(v1::HostState state) {
  switch (state) {
    case v1::ONLINE:
      return "online";
    case v1::OFFLINE:
      return "offline";
    case v1::REBOOTING:
      return "rebooting";
    case v1::DRAINING:
      return "draining";
    default:
      return "unknown";
  }
}

std::string JobStateName(v1::JobState state) {
  switch (state) {
    case v1::JOB_RUNNING:
      return "running";
    case v1::JOB_DONE:
      return "done";
    default:
      return "unknown";
  }
}

std::string CommandStateName(v1::CommandState state) {
  switch (state) {
    case v1::COMMAND_PENDING:
      return "pending";
    case v1::COMMAND_ACCEPTED:
      return "accepted";
    case v1::COMMAND_RUNNING:
      return "running";
    case v1::COMMAND_FINISHED:
      return "finished";
    case v1::COMMAND_SKIPPED:
      return "skipped";
    default:
      return "unknown";
  }
}

std::string VerdictName(v1::Verdict verdict) {
  if (verdict == v1::VERDICT_UNSPECIFIED) return "";
  return v1::Verdict_Name(verdict);
}

std::string LogStreamName(v1::LogStream stream) {
  if (stream == v1::LOG_STREAM_UNSPECIFIED) return "unknown";
  return absl::AsciiStrToLower(v1::LogStream_Name(stream));
}

absl::StatusOr<v1::LogStream> ParseLogStream(absl::string_view name) {
  static constexpr v1::LogStream kAll[] = {v1::STDOUT, v1::STDERR, v1::CONSOLE, v1::KMSG};
  std::vector<std::string> names;
  for (v1::LogStream s : kAll) {
    if (LogStreamName(s) == name) return s;
    names.push_back(LogStreamName(s));
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown log stream \"", name, "\"",
                                                 DidYouMean(name, names),
                                                 " (expected stdout, stderr, console or kmsg)"));
}

std::string DescribeStep(const v1::Step& step) {
  switch (step.kind_case()) {
    case v1::Step::kExec:
      return absl::StrCat("exec ", absl::StrJoin(step.exec().argv(), " "));
    case v1::Step::kReboot:
    case v1::Step::kKernelBuild:
    case v1::Step::kKernelInstall:
      return StepKindName(step);
    default:
      return "unknown step";
  }
}

std::string StepKindName(const v1::Step& step) {
  switch (step.kind_case()) {
    case v1::Step::kExec:
      return "exec";
    case v1::Step::kReboot:
      return "reboot";
    case v1::Step::kKernelBuild:
      return "kernel_build";
    case v1::Step::kKernelInstall:
      return "kernel_install";
    case v1::Step::kTest: {
      // "test kselftest", a listing "test fstests (list)", re-runs "test exec (run 2)".
      const v1::TestStep& t = step.test();
      std::string name = absl::StrCat("test ", t.suite());
      if (t.list_only()) absl::StrAppend(&name, " (list)");
      if (t.run() > 1) absl::StrAppend(&name, " (run ", t.run(), ")");
      return name;
    }
    default:
      return "unknown";
  }
}

}  // namespace kfleet::cli
