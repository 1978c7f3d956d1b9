#include "controller/fleet/change_feed.h"

#include <utility>

namespace kfleet::controller {

void ChangeFeed::Publish() {
  std::vector<std::function<void()>> run;
  {
    absl::MutexLock lock(&mu_);
    ++version_;
    run.swap(waiting_);
  }
  for (auto& fn : run) executor_->Post(std::move(fn));
}

void ChangeFeed::WhenChangedSince(uint64_t seen, std::function<void()> fn) {
  {
    absl::MutexLock lock(&mu_);
    if (version_ <= seen) {
      waiting_.push_back(std::move(fn));
      return;
    }
  }
  executor_->Post(std::move(fn));
}

}  // namespace kfleet::controller
