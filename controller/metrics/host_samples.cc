#include "controller/metrics/host_samples.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/metric_names.h"

namespace kfleet::controller {
namespace {

void Count(DropCounts& counts, DropReason reason, uint64_t n = 1) {
  counts[static_cast<size_t>(reason)] += n;
}

bool SameSeries(const HeldSample& a, const HeldSample& b) {
  return a.name == b.name && a.labels == b.labels;
}

std::shared_ptr<const HostIdentity> MakeIdentity(absl::string_view host_id,
                                                 absl::string_view host_name,
                                                 const std::map<std::string, std::string>& labels) {
  auto host = std::make_shared<HostIdentity>();
  host->id = std::string(host_id);
  // A host always has a name; the id stands in so that its series still say whose they are.
  host->name = host_name.empty() ? std::string(host_id) : std::string(host_name);
  host->labels = labels;
  host->target_labels = TargetLabels(host->name, labels);
  return host;
}

bool Wanted(const std::string& name, const std::vector<std::string>& names) {
  return names.empty() || std::find(names.begin(), names.end(), name) != names.end();
}

void AppendSamples(const SampleBatch& batch, const std::vector<std::string>& names,
                   google::protobuf::RepeatedPtrField<v1::MetricSample>& out) {
  for (const HeldSample& held : batch.samples) {
    if (!Wanted(held.name, names)) continue;
    v1::MetricSample* sample = out.Add();
    sample->set_name(held.name);
    for (const auto& [name, value] : held.labels) (*sample->mutable_labels())[name] = value;
    sample->set_value(held.value);
  }
}

}  // namespace

absl::string_view DropReasonName(DropReason reason) {
  switch (reason) {
    case DropReason::kUnknownName:
      return "unknown_name";
    case DropReason::kInvalidLabel:
      return "invalid_label";
    case DropReason::kReservedLabel:
      return "reserved_label";
    case DropReason::kLabelValueTooLong:
      return "label_value_too_long";
    case DropReason::kTooManyLabels:
      return "too_many_labels";
    case DropReason::kDuplicate:
      return "duplicate";
    case DropReason::kTooManySamples:
      return "too_many_samples";
    case DropReason::kStale:
      return "stale";
  }
  return "unknown";
}

HostSampleTable::HostSampleTable(SampleLimits limits) : limits_(limits) {}

std::vector<HeldSample> HostSampleTable::Validate(std::vector<v1::MetricSample> samples,
                                                  UpdateResult& result) const {
  std::vector<HeldSample> kept;
  kept.reserve(std::min(samples.size(), limits_.max_samples_per_host));
  for (v1::MetricSample& sample : samples) {
    if (FindHostMetric(sample.name()) == nullptr) {
      Count(result.dropped, DropReason::kUnknownName);
      continue;
    }
    if (sample.labels_size() > static_cast<int>(limits_.max_labels_per_sample)) {
      Count(result.dropped, DropReason::kTooManyLabels);
      continue;
    }
    bool ok = true;
    for (const auto& [name, value] : sample.labels()) {
      DropReason reason;
      if (name == kInstanceLabel || name == kHostLabel) {
        reason = DropReason::kReservedLabel;
      } else if (!IsValidLabelName(name)) {
        reason = DropReason::kInvalidLabel;
      } else if (value.size() > limits_.max_label_value_bytes) {
        reason = DropReason::kLabelValueTooLong;
      } else {
        continue;
      }
      Count(result.dropped, reason);
      ok = false;
      break;
    }
    if (!ok) continue;
    // The cap applies in the agent's order, so that the agent decides what matters most.
    if (kept.size() >= limits_.max_samples_per_host) {
      Count(result.dropped, DropReason::kTooManySamples);
      continue;
    }
    HeldSample& held = kept.emplace_back();
    held.name = std::move(*sample.mutable_name());
    held.labels.reserve(sample.labels_size());
    for (const auto& [name, value] : sample.labels()) held.labels.emplace_back(name, value);
    std::sort(held.labels.begin(), held.labels.end());
    held.value = sample.value();
  }
  std::stable_sort(kept.begin(), kept.end(), [](const HeldSample& a, const HeldSample& b) {
    if (a.name != b.name) return a.name < b.name;
    return a.labels < b.labels;
  });
  auto end = std::unique(kept.begin(), kept.end(), SameSeries);
  Count(result.dropped, DropReason::kDuplicate, kept.end() - end);
  kept.erase(end, kept.end());
  return kept;
}

UpdateResult HostSampleTable::Update(absl::string_view host_id, absl::string_view host_name,
                                     const std::map<std::string, std::string>& labels,
                                     int64_t time_unix_ms, std::vector<v1::MetricSample> samples) {
  UpdateResult result;
  const size_t sent = samples.size();
  auto batch = std::make_shared<SampleBatch>();
  batch->time_unix_ms = time_unix_ms;
  batch->samples = Validate(std::move(samples), result);
  auto host = MakeIdentity(host_id, host_name, labels);

  absl::MutexLock lock(&mu_);
  Entry& entry = hosts_[host->id];
  entry.host = std::move(host);
  if (entry.latest != nullptr && time_unix_ms <= entry.latest->time_unix_ms &&
      entry.latest->time_unix_ms - time_unix_ms <= kClockStepMs) {
    result = UpdateResult{};
    Count(result.dropped, DropReason::kStale, sent);
  } else {
    const bool clock_stepped = entry.latest != nullptr && time_unix_ms < entry.latest->time_unix_ms;
    series_ -= entry.latest == nullptr ? 0 : entry.latest->samples.size();
    series_ += batch->samples.size();
    // Rates across a clock step would be nonsense: no previous batch then.
    entry.previous = clock_stepped ? nullptr : std::move(entry.latest);
    entry.latest = std::move(batch);
    result.kept = entry.latest->samples.size();
  }
  for (size_t i = 0; i < kDropReasons; ++i) dropped_[i] += result.dropped[i];
  return result;
}

void HostSampleTable::SetHostLabels(absl::string_view host_id, absl::string_view host_name,
                                    const std::map<std::string, std::string>& labels) {
  auto host = MakeIdentity(host_id, host_name, labels);
  absl::MutexLock lock(&mu_);
  auto it = hosts_.find(host->id);
  if (it != hosts_.end()) it->second.host = std::move(host);
}

void HostSampleTable::Remove(absl::string_view host_id) {
  absl::MutexLock lock(&mu_);
  auto it = hosts_.find(host_id);
  if (it == hosts_.end()) return;
  series_ -= it->second.latest->samples.size();
  hosts_.erase(it);
}

v1::HostMetrics HostSampleTable::ToProto(const Entry& entry,
                                         const std::vector<std::string>& names) {
  v1::HostMetrics out;
  out.set_host_id(entry.host->id);
  out.set_host_name(entry.host->name);
  out.set_time_unix_ms(entry.latest->time_unix_ms);
  AppendSamples(*entry.latest, names, *out.mutable_samples());
  if (entry.previous != nullptr) {
    out.set_previous_time_unix_ms(entry.previous->time_unix_ms);
    AppendSamples(*entry.previous, names, *out.mutable_previous());
  }
  return out;
}

std::vector<v1::HostMetrics> HostSampleTable::Snapshot(
    const std::vector<std::string>& names) const {
  std::vector<Entry> entries;
  {
    absl::MutexLock lock(&mu_);
    entries.reserve(hosts_.size());
    for (const auto& [id, entry] : hosts_) entries.push_back(entry);
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.host->name, a.host->id) < std::tie(b.host->name, b.host->id);
  });
  std::vector<v1::HostMetrics> out;
  out.reserve(entries.size());
  for (const Entry& entry : entries) out.push_back(ToProto(entry, names));
  return out;
}

absl::StatusOr<v1::HostMetrics> HostSampleTable::Get(absl::string_view name_or_id,
                                                     const std::vector<std::string>& names) const {
  Entry found;
  {
    absl::MutexLock lock(&mu_);
    auto it = hosts_.find(name_or_id);
    if (it != hosts_.end()) {
      found = it->second;
    } else {
      for (const auto& [id, entry] : hosts_) {
        if (entry.host->name == name_or_id) {
          found = entry;
          break;
        }
      }
    }
  }
  if (found.host == nullptr) {
    return absl::NotFoundError(absl::StrCat("metrics: no samples from host \"", name_or_id,
                                            "\" (unknown host, or its agent has sent none yet)"));
  }
  return ToProto(found, names);
}

std::vector<HostSamplesView> HostSampleTable::Views() const {
  std::vector<HostSamplesView> views;
  {
    absl::MutexLock lock(&mu_);
    views.reserve(hosts_.size());
    for (const auto& [id, entry] : hosts_) views.push_back({entry.host, entry.latest});
  }
  std::sort(views.begin(), views.end(), [](const HostSamplesView& a, const HostSamplesView& b) {
    return std::tie(a.host->name, a.host->id) < std::tie(b.host->name, b.host->id);
  });
  return views;
}

HostSampleTable::Stats HostSampleTable::GetStats() const {
  absl::MutexLock lock(&mu_);
  return Stats{hosts_.size(), series_, dropped_};
}

}  // namespace kfleet::controller
