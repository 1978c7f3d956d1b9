#include "cli/top_view.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "cli/format.h"
#include "cli/table.h"

namespace kfleet::cli {
namespace {

using Samples = google::protobuf::RepeatedPtrField<v1::MetricSample>;

constexpr char kMemTotal[] = "node_memory_MemTotal_bytes";
constexpr char kMemAvailable[] = "node_memory_MemAvailable_bytes";
constexpr char kLoad1[] = "node_load1";
constexpr char kOomKills[] = "node_vmstat_oom_kill";
constexpr char kPsiCpu[] = "node_pressure_cpu_waiting_seconds_total";
constexpr char kPsiMemory[] = "node_pressure_memory_waiting_seconds_total";
constexpr char kPsiIo[] = "node_pressure_io_waiting_seconds_total";
constexpr char kCpuSeconds[] = "node_cpu_seconds_total";

std::optional<double> Value(const Samples& samples, absl::string_view name) {
  for (const v1::MetricSample& s : samples) {
    if (s.name() == name) return s.value();
  }
  return std::nullopt;
}

// Seconds between the two batches; 0 when there is no batch before.
double Interval(const v1::HostMetrics& m) {
  if (m.previous_time_unix_ms() == 0 || m.time_unix_ms() <= m.previous_time_unix_ms()) return 0;
  return (m.time_unix_ms() - m.previous_time_unix_ms()) / 1000.0;
}

// The rate of a counter between the batch before and the latest, per second.
std::optional<double> Rate(const v1::HostMetrics& m, absl::string_view name) {
  double seconds = Interval(m);
  std::optional<double> now = Value(m.samples(), name);
  std::optional<double> before = Value(m.previous(), name);
  if (seconds <= 0 || !now || !before || *now < *before) return std::nullopt;
  return (*now - *before) / seconds;
}

std::optional<double> Percent(std::optional<double> rate) {
  if (!rate) return std::nullopt;
  return std::min(100.0, *rate * 100);
}

// CPU time (all CPUs, all modes) and the idle part of it (idle and iowait).
std::pair<double, double> CpuSeconds(const Samples& samples) {
  double total = 0, idle = 0;
  for (const v1::MetricSample& s : samples) {
    if (s.name() != kCpuSeconds) continue;
    total += s.value();
    auto mode = s.labels().find("mode");
    if (mode != s.labels().end() && (mode->second == "idle" || mode->second == "iowait")) {
      idle += s.value();
    }
  }
  return {total, idle};
}

std::optional<double> CpuBusy(const v1::HostMetrics& m) {
  if (Interval(m) <= 0) return std::nullopt;
  auto [total, idle] = CpuSeconds(m.samples());
  auto [total_before, idle_before] = CpuSeconds(m.previous());
  double spent = total - total_before;
  if (spent <= 0 || idle < idle_before) return std::nullopt;
  return std::clamp(100 * (1 - (idle - idle_before) / spent), 0.0, 100.0);
}

// "245MiB": FormatBytes without its blank, so that a table cell is one word.
std::string CompactBytes(int64_t bytes) {
  return absl::StrReplaceAll(FormatBytes(static_cast<uint64_t>(std::max<int64_t>(0, bytes))),
                             {{" ", ""}});
}

std::string Pct(const std::optional<double>& v, const char* format) {
  return v ? absl::StrFormat(format, *v) : "";
}

std::string OomText(const TopRow& r) {
  if (!r.oom_kills) return "";
  if (r.oom_kills_new.value_or(0) > 0)
    return absl::StrCat(*r.oom_kills, "(+", *r.oom_kills_new, ")");
  return absl::StrCat(*r.oom_kills);
}

std::string RunningText(const TopRow& r) {
  std::vector<std::string> parts;
  for (const TopRunning& c : r.running) {
    if (c.job_id.empty()) {
      parts.push_back(c.command_id);
    } else if (c.job_name.empty()) {
      parts.push_back(absl::StrCat(c.command_id, " (", c.job_id, ")"));
    } else {
      parts.push_back(absl::StrCat(c.command_id, " (", c.job_id, " ", c.job_name, ")"));
    }
  }
  return absl::StrJoin(parts, ", ");
}

}  // namespace

std::vector<std::string> TopMetricNames(bool cpu) {
  std::vector<std::string> names = {kMemTotal, kMemAvailable, kLoad1, kOomKills,
                                    kPsiCpu,   kPsiMemory,    kPsiIo};
  if (cpu) names.push_back(kCpuSeconds);
  return names;
}

std::vector<TopRow> BuildTopRows(const v1::ListHostsResponse& hosts,
                                 const v1::GetHostMetricsResponse& metrics,
                                 const v1::ListJobsResponse& jobs) {
  std::map<std::string, const v1::HostMetrics*> by_host;
  for (const v1::HostMetrics& m : metrics.hosts()) by_host[m.host_id()] = &m;
  std::map<std::string, const v1::Job*> job_of;
  for (const v1::Job& j : jobs.jobs()) {
    for (const v1::CommandInfo& c : j.commands()) job_of[c.id()] = &j;
  }
  std::vector<TopRow> rows;
  for (const v1::Host& h : hosts.hosts()) {
    TopRow row;
    row.name = h.name();
    row.id = h.id();
    row.state = h.state();
    row.labels.insert(h.labels().begin(), h.labels().end());
    for (const std::string& id : h.running_command_ids()) {
      auto j = job_of.find(id);
      row.running.push_back(j == job_of.end()
                                ? TopRunning{id, "", ""}
                                : TopRunning{id, j->second->id(), j->second->spec().name()});
    }
    auto found = by_host.find(h.id());
    if (found != by_host.end() && found->second->time_unix_ms() != 0) {
      const v1::HostMetrics& m = *found->second;
      row.sample_unix_ms = m.time_unix_ms();
      std::optional<double> total = Value(m.samples(), kMemTotal);
      std::optional<double> available = Value(m.samples(), kMemAvailable);
      if (total) row.mem_total_bytes = std::llround(*total);
      if (total && available) row.mem_used_bytes = std::llround(*total - *available);
      row.load1 = Value(m.samples(), kLoad1);
      row.cpu_busy_percent = CpuBusy(m);
      row.psi_cpu_percent = Percent(Rate(m, kPsiCpu));
      row.psi_memory_percent = Percent(Rate(m, kPsiMemory));
      row.psi_io_percent = Percent(Rate(m, kPsiIo));
      if (std::optional<double> ooms = Value(m.samples(), kOomKills)) {
        row.oom_kills = std::llround(*ooms);
        std::optional<double> before = Value(m.previous(), kOomKills);
        if (Interval(m) > 0 && before && *before <= *ooms) {
          row.oom_kills_new = std::llround(*ooms - *before);
        }
      }
    }
    rows.push_back(std::move(row));
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const TopRow& a, const TopRow& b) { return a.name < b.name; });
  return rows;
}

std::string RenderTopTable(const std::vector<TopRow>& rows, bool wide, absl::Time now) {
  std::vector<std::string> headers = {"HOST",    "STATE",  "MEM", "LOAD1", "PSI-CPU",
                                      "PSI-MEM", "PSI-IO", "OOM", "AGE",   "RUNNING"};
  if (wide) headers.insert(headers.begin() + 4, "CPU");
  Table table(headers);
  for (const TopRow& r : rows) {
    std::string mem;
    if (r.mem_total_bytes && r.mem_used_bytes) {
      mem = absl::StrCat(CompactBytes(*r.mem_used_bytes), "/", CompactBytes(*r.mem_total_bytes));
    }
    std::string age =
        r.sample_unix_ms != 0 ? FormatAge(now - absl::FromUnixMillis(r.sample_unix_ms)) : "";
    std::vector<std::string> row = {r.name,
                                    HostStateName(r.state),
                                    mem,
                                    Pct(r.load1, "%.2f"),
                                    Pct(r.psi_cpu_percent, "%.1f%%"),
                                    Pct(r.psi_memory_percent, "%.1f%%"),
                                    Pct(r.psi_io_percent, "%.1f%%"),
                                    OomText(r),
                                    age,
                                    RunningText(r)};
    if (wide) row.insert(row.begin() + 4, Pct(r.cpu_busy_percent, "%.0f%%"));
    table.AddRow(std::move(row));
  }
  return table.Render();
}

std::vector<std::string> HostsWithNewOoms(const std::vector<TopRow>& rows) {
  std::vector<std::string> out;
  for (const TopRow& r : rows) {
    if (r.oom_kills_new.value_or(0) > 0) out.push_back(r.name);
  }
  return out;
}

std::string TopJson(const std::vector<TopRow>& rows, absl::Time now) {
  nlohmann::json hosts = nlohmann::json::array();
  for (const TopRow& r : rows) {
    nlohmann::json h = {{"name", r.name}, {"id", r.id}, {"state", v1::HostState_Name(r.state)}};
    if (!r.labels.empty()) h["labels"] = r.labels;
    auto put = [&h](const char* key, const auto& value) {
      if (value) h[key] = *value;
    };
    if (r.sample_unix_ms != 0) {
      h["sample_time_unix_ms"] = r.sample_unix_ms;
      h["sample_age_ms"] = absl::ToInt64Milliseconds(now - absl::FromUnixMillis(r.sample_unix_ms));
    }
    put("mem_total_bytes", r.mem_total_bytes);
    put("mem_used_bytes", r.mem_used_bytes);
    put("load1", r.load1);
    put("cpu_busy_percent", r.cpu_busy_percent);
    put("psi_cpu_percent", r.psi_cpu_percent);
    put("psi_memory_percent", r.psi_memory_percent);
    put("psi_io_percent", r.psi_io_percent);
    put("oom_kills", r.oom_kills);
    put("oom_kills_new", r.oom_kills_new);
    if (!r.running.empty()) {
      nlohmann::json running = nlohmann::json::array();
      for (const TopRunning& c : r.running) {
        nlohmann::json j = {{"command_id", c.command_id}};
        if (!c.job_id.empty()) j["job_id"] = c.job_id;
        if (!c.job_name.empty()) j["job_name"] = c.job_name;
        running.push_back(std::move(j));
      }
      h["running"] = std::move(running);
    }
    hosts.push_back(std::move(h));
  }
  nlohmann::json doc = {{"hosts", std::move(hosts)}};
  // Replace rather than throw on bytes that are not UTF-8 (kctl has no exceptions).
  return absl::StrCat(doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace), "\n");
}

}  // namespace kfleet::cli
