// The latest metric samples of every host, as its agent sent them: what the controller re-exports
// on /metrics (FleetCollector) and answers GetHostMetrics with (DESIGN.md, "Metrics and events").
#ifndef KFLEET_CONTROLLER_METRICS_HOST_SAMPLES_H_
#define KFLEET_CONTROLLER_METRICS_HOST_SAMPLES_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "controller/metrics/label_names.h"
#include "kfleet/v1/common.pb.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::controller {

// One sample as held: its labels sorted by name.
struct HeldSample {
  std::string name;
  LabelPairs labels;
  double value = 0;
};

// One batch of a host, sorted by (name, labels), without two samples of the same series.
struct SampleBatch {
  int64_t time_unix_ms = 0;
  std::vector<HeldSample> samples;
};

// A host as its series are labelled.
struct HostIdentity {
  std::string id;
  std::string name;
  std::map<std::string, std::string> labels;  // as given
  LabelPairs target_labels;                   // TargetLabels(name, labels)
};

// What the exposition reads of one host. Immutable: a later Update replaces it, so a reader holds
// it without a lock for as long as it likes.
struct HostSamplesView {
  std::shared_ptr<const HostIdentity> host;
  std::shared_ptr<const SampleBatch> latest;
};

// Why a sample was not kept; the `reason` label of kfleet_metric_samples_dropped_total.
enum class DropReason {
  kUnknownName,        // FindHostMetric does not know the name
  kInvalidLabel,       // a label name outside [a-zA-Z_][a-zA-Z0-9_]*, or starting with "__"
  kReservedLabel,      // a label named `instance` or `host`: those name the host
  kLabelValueTooLong,  // a label value over SampleLimits::max_label_value_bytes
  kTooManyLabels,      // over SampleLimits::max_labels_per_sample
  kDuplicate,          // a second sample of the same series in one batch (the first is kept)
  kTooManySamples,     // past SampleLimits::max_samples_per_host, in the order the agent sent
  kStale,              // the whole batch: not newer than the one held (a replay or reorder)
};
inline constexpr size_t kDropReasons = 8;
using DropCounts = std::array<uint64_t, kDropReasons>;

// "unknown_name", "invalid_label", "reserved_label", "label_value_too_long", "too_many_labels",
// "duplicate", "too_many_samples", "stale".
absl::string_view DropReasonName(DropReason reason);

struct SampleLimits {
  size_t max_samples_per_host = 10000;
  size_t max_labels_per_sample = 16;
  size_t max_label_value_bytes = 1024;
};

struct UpdateResult {
  size_t kept = 0;
  DropCounts dropped{};  // by DropReason
};

// Thread-safe. Sorting and validating a batch happen outside the lock; readers copy a few
// shared_ptrs under it, so a scrape of thousands of hosts does not hold up Update.
class HostSampleTable {
 public:
  // A batch older than the held one by more than this is taken as the agent's clock stepping back
  // (a guest booted with a wrong RTC) and accepted, with the previous batch forgotten.
  static constexpr int64_t kClockStepMs = 5 * 60 * 1000;

  explicit HostSampleTable(SampleLimits limits = {});

  // Takes a batch the agent of `host_id` sampled at `time_unix_ms`: it becomes the latest batch
  // and the one held so far the previous. `labels` are the host's labels (pool, role...). Samples
  // failing validation are dropped and counted (see DropReason); a batch whose time is not after
  // the latest one's is dropped whole (kStale) unless it is kClockStepMs older.
  UpdateResult Update(absl::string_view host_id, absl::string_view host_name,
                      const std::map<std::string, std::string>& labels, int64_t time_unix_ms,
                      std::vector<v1::MetricSample> samples);

  // The host was renamed or relabelled. No-op for a host without samples.
  void SetHostLabels(absl::string_view host_id, absl::string_view host_name,
                     const std::map<std::string, std::string>& labels);

  // The host was destroyed (or forgotten): its series disappear from the exposition.
  void Remove(absl::string_view host_id);

  // The latest and previous batch of every host, sorted by host name; `names` keeps only samples
  // of those metric names (empty: all).
  std::vector<v1::HostMetrics> Snapshot(const std::vector<std::string>& names = {}) const;

  // One host, by id or else by name. NotFound if it has sent no samples (or was removed).
  absl::StatusOr<v1::HostMetrics> Get(absl::string_view name_or_id,
                                      const std::vector<std::string>& names = {}) const;

  // Every host's identity and latest batch, sorted by host name, then id.
  std::vector<HostSamplesView> Views() const;

  struct Stats {
    size_t hosts = 0;
    size_t series = 0;     // samples in the latest batches: the series on /metrics
    DropCounts dropped{};  // since construction
  };
  Stats GetStats() const;

 private:
  struct Entry {
    std::shared_ptr<const HostIdentity> host;
    std::shared_ptr<const SampleBatch> latest;
    std::shared_ptr<const SampleBatch> previous;
  };

  // Validates, caps, sorts and dedupes `samples`, counting what it drops into `result`.
  std::vector<HeldSample> Validate(std::vector<v1::MetricSample> samples,
                                   UpdateResult& result) const;
  static v1::HostMetrics ToProto(const Entry& entry, const std::vector<std::string>& names);

  const SampleLimits limits_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> hosts_ ABSL_GUARDED_BY(mu_);  // by host id
  size_t series_ ABSL_GUARDED_BY(mu_) = 0;
  DropCounts dropped_ ABSL_GUARDED_BY(mu_){};
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_METRICS_HOST_SAMPLES_H_
