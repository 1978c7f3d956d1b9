// A version counter that watchers wait on: anything that changes jobs, commands or logs publishes,
// and each watcher re-reads what it shows. Cheap for many publishers and a few watchers (kctl).
#ifndef KFLEET_CONTROLLER_FLEET_CHANGE_FEED_H_
#define KFLEET_CONTROLLER_FLEET_CHANGE_FEED_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/executor.h"

namespace kfleet::controller {

class ChangeFeed {
 public:
  explicit ChangeFeed(Executor* executor) : executor_(executor) {}

  uint64_t version() const {
    absl::MutexLock lock(&mu_);
    return version_;
  }

  // Something changed: runs every waiting callback on the executor.
  void Publish();

  // Runs `fn` on the executor once the version is past `seen`: at once if it already is.
  void WhenChangedSince(uint64_t seen, std::function<void()> fn);

 private:
  Executor* executor_;
  mutable absl::Mutex mu_;
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::function<void()>> waiting_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_FLEET_CHANGE_FEED_H_
