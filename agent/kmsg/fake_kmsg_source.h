// A scripted KmsgSource for tests: returns the records and errors it was given, in order, then
// -EAGAIN. It can produce what a file cannot, such as the EPIPE of overwritten records.
#ifndef KFLEET_AGENT_KMSG_FAKE_KMSG_SOURCE_H_
#define KFLEET_AGENT_KMSG_FAKE_KMSG_SOURCE_H_

#include <cerrno>
#include <cstring>
#include <deque>
#include <string>
#include <utility>
#include <variant>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agent/kmsg/kmsg_source.h"

namespace kfleet::agent {

// Thread-safe: a test may add to the script while a reader waits on it.
class FakeKmsgSource : public KmsgSource {
 public:
  // Queues one record, returned by one Read.
  void AddRecord(std::string record) {
    absl::MutexLock lock(&mu_);
    script_.emplace_back(std::move(record));
  }
  // Queues an error, returned by one Read as -err.
  void AddError(int err) {
    absl::MutexLock lock(&mu_);
    script_.emplace_back(err);
  }

  ssize_t Read(char* buf, size_t size) override {
    absl::MutexLock lock(&mu_);
    if (script_.empty()) return -EAGAIN;
    std::variant<std::string, int> next = std::move(script_.front());
    script_.pop_front();
    if (const int* err = std::get_if<int>(&next)) return -*err;
    const std::string& record = std::get<std::string>(next);
    if (record.size() > size) return -EINVAL;  // as /dev/kmsg does
    std::memcpy(buf, record.data(), record.size());
    return static_cast<ssize_t>(record.size());
  }

  int fd() const override { return -1; }

 private:
  absl::Mutex mu_;
  std::deque<std::variant<std::string, int>> script_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_KMSG_FAKE_KMSG_SOURCE_H_
