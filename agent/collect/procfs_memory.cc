// /proc/meminfo, /proc/vmstat and /proc/pressure/*.
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/collect/procfs.h"
#include "agent/collect/procfs_text.h"

namespace kfleet::agent {
namespace {

using procfs_internal::AddSample;
using procfs_internal::BadLines;
using procfs_internal::Fields;
using procfs_internal::ForEachLine;
using procfs_internal::Line;
using procfs_internal::ParseFinite;
using procfs_internal::ParseU64;

// Letters, digits and '_', not empty: what may follow node_memory_ or node_vmstat_.
bool IsNamePart(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

// node_exporter's key for a meminfo field: "Active(anon)" -> "Active_anon" (its regexp
// `\((.*)\)` replaced by `_$1`, greedy, so from the first '(' to the last ')'). Empty if the
// result is not a valid metric name part.
std::string MeminfoKey(absl::string_view field) {
  std::string key;
  size_t open = field.find('(');
  size_t close = field.rfind(')');
  if (open != absl::string_view::npos && close != absl::string_view::npos && close > open) {
    key = absl::StrCat(field.substr(0, open), "_", field.substr(open + 1, close - open - 1),
                       field.substr(close + 1));
  } else {
    key = std::string(field);
  }
  return IsNamePart(key) ? key : "";
}

// node_exporter's default --collector.vmstat.fields: ^(oom_kill|pgpg|pswp|pg.*fault).*
bool IsDefaultVmstatField(absl::string_view field) {
  if (absl::StartsWith(field, "oom_kill") || absl::StartsWith(field, "pgpg") ||
      absl::StartsWith(field, "pswp")) {
    return true;
  }
  return absl::StartsWith(field, "pg") && field.find("fault", 2) != absl::string_view::npos;
}

}  // namespace

absl::Status ParseMeminfo(absl::string_view content, MetricSamples* out) {
  BadLines bad;
  absl::flat_hash_set<std::string> seen;
  ForEachLine(content, [&](const Line& line) {
    if (line.too_long) {
      bad.Note(line);
      return true;
    }
    std::vector<absl::string_view> f = Fields(line.text, 4);
    double value;
    bool ok = (f.size() == 2 || (f.size() == 3 && f[2] == "kB")) && f[0].size() > 1 &&
              absl::EndsWith(f[0], ":") && ParseFinite(f[1], &value);
    std::string key = ok ? MeminfoKey(f[0].substr(0, f[0].size() - 1)) : "";
    if (key.empty()) {
      bad.Note(line);
      return true;
    }
    if (f.size() == 3) {
      value *= 1024;
      key += "_bytes";
    }
    // A repeated field would be a duplicate series; the kernel never repeats one.
    if (!seen.insert(key).second) return true;
    AddSample(out, absl::StrCat("node_memory_", key), value);
    return seen.size() < kMaxEntries;
  });
  if (seen.empty()) return bad.Error("/proc/meminfo", "lines like \"MemTotal: 16305632 kB\"");
  return absl::OkStatus();
}

absl::Status ParseVmstat(absl::string_view content, MetricSamples* out) {
  BadLines bad;
  bool usable = false;
  size_t lines = 0;
  absl::flat_hash_set<absl::string_view> seen;
  ForEachLine(content, [&](const Line& line) {
    std::vector<absl::string_view> f = Fields(line.text, 3);
    uint64_t value;
    if (line.too_long || f.size() != 2 || !IsNamePart(f[0]) || !ParseU64(f[1], &value)) {
      bad.Note(line);
      return true;
    }
    usable = true;
    if (IsDefaultVmstatField(f[0]) && seen.insert(f[0]).second) {
      AddSample(out, absl::StrCat("node_vmstat_", f[0]), static_cast<double>(value));
    }
    return ++lines < kMaxEntries;
  });
  if (!usable) return bad.Error("/proc/vmstat", "lines like \"oom_kill 0\"");
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ParseVmstatField(absl::string_view content, absl::string_view field) {
  bool found = false;
  uint64_t result = 0;
  ForEachLine(content, [&](const Line& line) {
    std::vector<absl::string_view> f = Fields(line.text, 3);
    if (!line.too_long && f.size() == 2 && f[0] == field && ParseU64(f[1], &result)) {
      found = true;
      return false;
    }
    return line.number < kMaxEntries;
  });
  if (!found) {
    return absl::NotFoundError(absl::StrCat("/proc/vmstat has no \"", field, "\" field"));
  }
  return result;
}

absl::Status ParsePressure(absl::string_view resource, absl::string_view content,
                           MetricSamples* out) {
  if (resource != "cpu" && resource != "memory" && resource != "io") {
    return absl::InvalidArgumentError(
        absl::StrCat("pressure resource \"", resource, "\" (expected cpu, memory or io)"));
  }
  std::string file = absl::StrCat("/proc/pressure/", resource);
  BadLines bad;
  bool some = false;
  bool full = false;
  ForEachLine(content, [&](const Line& line) {
    std::vector<absl::string_view> f = Fields(line.text, 6);
    uint64_t total_us = 0;
    bool parsed = false;
    if (!line.too_long && !f.empty() && (f[0] == "some" || f[0] == "full")) {
      for (size_t i = 1; i < f.size(); ++i) {
        absl::string_view v = f[i];
        if (absl::ConsumePrefix(&v, "total=")) parsed = ParseU64(v, &total_us);
      }
    }
    if (!parsed) {
      bad.Note(line);
      return true;
    }
    // node_exporter: float64(total) / 1000.0 / 1000.0, kept as is so values compare equal.
    double seconds = static_cast<double>(total_us) / 1000.0 / 1000.0;
    if (f[0] == "some" && !some) {
      some = true;
      AddSample(out, absl::StrCat("node_pressure_", resource, "_waiting_seconds_total"), seconds);
    } else if (f[0] == "full" && !full) {
      full = true;
      // cpu's "full" line (5.13+) is undefined system-wide and node_exporter 1.5 ignores it.
      if (resource != "cpu") {
        AddSample(out, absl::StrCat("node_pressure_", resource, "_stalled_seconds_total"), seconds);
      }
    }
    return !(some && full);
  });
  if (!some && !full) {
    return bad.Error(file, "lines like \"some avg10=0.00 avg60=0.00 avg300=0.00 total=12345\"");
  }
  return absl::OkStatus();
}

}  // namespace kfleet::agent
