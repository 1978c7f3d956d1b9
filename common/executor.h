// A fixed pool of threads that runs posted work, now or after a delay. gRPC reactions post
// blocking work (SQLite, disk I/O) here so that they never block a gRPC thread.
#ifndef KFLEET_COMMON_EXECUTOR_H_
#define KFLEET_COMMON_EXECUTOR_H_

#include <functional>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace kfleet {

class Executor {
 public:
  explicit Executor(int threads);
  // Runs what is due, drops delayed work that is not, and joins the threads.
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Runs `fn` on a pool thread as soon as one is free. Thread-safe.
  void Post(std::function<void()> fn);
  // Runs `fn` on a pool thread no earlier than `delay` from now. Thread-safe.
  void PostAfter(absl::Duration delay, std::function<void()> fn);

 private:
  void Loop();

  absl::Mutex mu_;
  std::multimap<absl::Time, std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace kfleet

#endif  // KFLEET_COMMON_EXECUTOR_H_
