#include "common/executor.h"

namespace kfleet {

Executor::Executor(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

Executor::~Executor() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (auto& t : threads_) t.join();
}

void Executor::Post(std::function<void()> fn) { PostAfter(absl::ZeroDuration(), std::move(fn)); }

void Executor::PostAfter(absl::Duration delay, std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  queue_.emplace(absl::Now() + delay, std::move(fn));
}

void Executor::Loop() {
  while (true) {
    std::function<void()> fn;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        absl::Time now = absl::Now();
        if (!queue_.empty() && queue_.begin()->first <= now) break;
        if (stopping_) return;
        absl::Time next = queue_.empty() ? now + absl::Seconds(1) : queue_.begin()->first;
        // Woken by Post (the queue changed) or by the deadline of the first delayed item.
        size_t size = queue_.size();
        auto changed = [this, size]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || queue_.size() != size;
        };
        mu_.AwaitWithDeadline(absl::Condition(&changed), next);
      }
      fn = std::move(queue_.begin()->second);
      queue_.erase(queue_.begin());
    }
    fn();
  }
}

}  // namespace kfleet
