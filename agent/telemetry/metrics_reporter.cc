#include "agent/telemetry/metrics_reporter.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace kfleet::agent {

MetricsReporter::MetricsReporter(CollectFn collect, SendFn send, std::function<absl::Time()> clock)
    : collect_(std::move(collect)), send_(std::move(send)), clock_(std::move(clock)) {}

MetricsReporter::~MetricsReporter() { Stop(); }

void MetricsReporter::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void MetricsReporter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void MetricsReporter::SetInterval(absl::Duration interval) {
  absl::MutexLock lock(&mu_);
  interval_ = interval;
  interval_changed_ = true;
}

void MetricsReporter::SampleSoon() {
  absl::MutexLock lock(&mu_);
  interval_changed_ = true;
}

std::optional<v1::MetricsBatch> MetricsReporter::Latest() const {
  absl::MutexLock lock(&mu_);
  return latest_;
}

absl::StatusOr<v1::MetricsBatch> MetricsReporter::SampleNow() {
  absl::MutexLock collecting(&collect_mu_);
  absl::StatusOr<std::vector<v1::MetricSample>> samples = collect_();
  if (!samples.ok()) return samples.status();
  v1::MetricsBatch batch;
  batch.set_time_unix_ms(absl::ToUnixMillis(clock_()));
  for (v1::MetricSample& s : *samples) *batch.add_samples() = std::move(s);
  absl::MutexLock lock(&mu_);
  latest_ = batch;
  return batch;
}

bool MetricsReporter::WakeLocked() const { return stopping_ || interval_changed_; }

void MetricsReporter::Loop() {
  std::string last_error;
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    // Wait for an interval, then for its end; a changed interval takes a sample at once.
    absl::Duration wait = interval_ > absl::ZeroDuration() ? interval_ : absl::InfiniteDuration();
    interval_changed_ = false;
    if (interval_ > absl::ZeroDuration()) {
      mu_.Unlock();
      absl::StatusOr<v1::MetricsBatch> batch = SampleNow();
      if (batch.ok()) {
        send_(*std::move(batch));
        last_error.clear();
      } else if (batch.status().ToString() != last_error) {
        last_error = batch.status().ToString();
        LogWarning(absl::StrCat("metrics: cannot sample the host: ", last_error));
      }
      mu_.Lock();
    }
    mu_.AwaitWithTimeout(absl::Condition(this, &MetricsReporter::WakeLocked), wait);
  }
}

}  // namespace kfleet::agent
