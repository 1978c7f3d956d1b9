// /proc/stat, /proc/loadavg, the boot id and the sample time.
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
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

// The columns of a "cpuN" line that node_cpu_seconds_total reports, in order. guest and
// guest_nice follow them; node_exporter reports those apart (node_cpu_guest_seconds_total).
constexpr const char* kCpuModes[] = {"user",   "nice", "system",  "idle",
                                     "iowait", "irq",  "softirq", "steal"};

// The single-number lines of /proc/stat and the metric each becomes.
struct StatLine {
  absl::string_view key;
  const char* metric;
};
constexpr StatLine kStatLines[] = {
    {"intr", "node_intr_total"},
    {"ctxt", "node_context_switches_total"},
    {"btime", "node_boot_time_seconds"},
    {"processes", "node_forks_total"},
    {"procs_running", "node_procs_running"},
    {"procs_blocked", "node_procs_blocked"},
};

// "cpu12" -> "12". Empty for the "cpu" total and for anything else.
absl::string_view CpuIndex(absl::string_view key) {
  if (!absl::ConsumePrefix(&key, "cpu") || key.empty() || key.size() > 10) return "";
  for (char c : key) {
    if (c < '0' || c > '9') return "";
  }
  return key;
}

}  // namespace

absl::Status ParseStat(absl::string_view content, long clock_ticks_per_second, MetricSamples* out) {
  if (clock_ticks_per_second <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("clock ticks per second must be > 0, got ", clock_ticks_per_second));
  }
  const double tick = static_cast<double>(clock_ticks_per_second);
  BadLines bad;
  bool usable = false;
  absl::flat_hash_set<std::string> cpus;
  absl::flat_hash_set<absl::string_view> singles;
  ForEachLine(content, [&](const Line& line) {
    // Only the first fields of any line are used; "intr" lines run to many kilobytes on machines
    // with many interrupts, so a long line is cut rather than skipped.
    std::vector<absl::string_view> f = Fields(line.text, 11);
    if (f.empty()) {
      bad.Note(line);
      return true;
    }
    absl::string_view cpu = CpuIndex(f[0]);
    if (!cpu.empty() && !line.too_long) {
      // user nice system idle are there since Linux 2.4; later columns only on later kernels.
      size_t n = 0;
      uint64_t ticks[8];
      while (n < 8 && n + 1 < f.size() && ParseU64(f[n + 1], &ticks[n])) ++n;
      if (n < 4 || cpus.size() >= kMaxEntries || !cpus.insert(std::string(cpu)).second) {
        if (n < 4) bad.Note(line);
        return true;
      }
      usable = true;
      for (size_t i = 0; i < n; ++i) {
        kfleet::v1::MetricSample& s =
            AddSample(out, "node_cpu_seconds_total", static_cast<double>(ticks[i]) / tick);
        (*s.mutable_labels())["cpu"] = std::string(cpu);
        (*s.mutable_labels())["mode"] = kCpuModes[i];
      }
      return true;
    }
    for (const StatLine& known : kStatLines) {
      if (f[0] != known.key) continue;
      if (line.too_long && f[0] != "intr") break;
      uint64_t value;
      if (f.size() < 2 || !ParseU64(f[1], &value)) break;
      usable = true;
      if (singles.insert(known.key).second) {
        AddSample(out, known.metric, static_cast<double>(value));
      }
      return true;
    }
    // Other lines (the "cpu" total, softirq, ...) are not reported; only garbage is noted.
    if (f[0] != "cpu" && f[0] != "softirq") bad.Note(line);
    return true;
  });
  if (!usable) return bad.Error("/proc/stat", "lines like \"cpu0 4705 356 584 3699 23 23 0 0\"");
  return absl::OkStatus();
}

absl::Status ParseLoadavg(absl::string_view content, MetricSamples* out) {
  BadLines bad;
  bool usable = false;
  ForEachLine(content, [&](const Line& line) {
    std::vector<absl::string_view> f = Fields(line.text, 5);
    double load[3];
    if (line.too_long || f.size() < 3 || !ParseFinite(f[0], &load[0]) ||
        !ParseFinite(f[1], &load[1]) || !ParseFinite(f[2], &load[2])) {
      bad.Note(line);
      return false;  // one line only
    }
    usable = true;
    AddSample(out, "node_load1", load[0]);
    AddSample(out, "node_load5", load[1]);
    AddSample(out, "node_load15", load[2]);
    return false;
  });
  if (!usable) return bad.Error("/proc/loadavg", "\"0.52 0.58 0.59 1/389 12345\"");
  return absl::OkStatus();
}

absl::Status ParseBootId(absl::string_view content, MetricSamples* out) {
  absl::string_view id = absl::StripAsciiWhitespace(content);
  bool ok = !id.empty() && id.size() <= 64;
  for (char c : id) {
    ok = ok && (absl::ascii_isxdigit(c) || c == '-');
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat("/proc/sys/kernel/random/boot_id: \"",
                                                   absl::CHexEscape(content.substr(0, 64)),
                                                   "\" is not a boot id (expected a UUID such as "
                                                   "\"2f5210f4-b268-4182-bde7-09d08cef94d4\")"));
  }
  kfleet::v1::MetricSample& s = AddSample(out, "kfleet_host_boot_info", 1);
  (*s.mutable_labels())["boot_id"] = std::string(id);
  return absl::OkStatus();
}

void AppendTimeSample(absl::Time now, MetricSamples* out) {
  // node_exporter: float64(now.UnixNano()) / 1e9.
  AddSample(out, "node_time_seconds", static_cast<double>(absl::ToUnixNanos(now)) / 1e9);
}

}  // namespace kfleet::agent
