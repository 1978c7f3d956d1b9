// For tests of the runner: an OutputSink that keeps a command's stdout.
#ifndef KFLEET_AGENT_EXEC_STDOUT_SINK_H_
#define KFLEET_AGENT_EXEC_STDOUT_SINK_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agent/exec/process.h"

namespace kfleet::agent {

class StdoutSink : public OutputSink {
 public:
  void Write(kfleet::v1::LogStream stream, absl::string_view data) override {
    absl::MutexLock lock(&mu_);
    if (stream == kfleet::v1::STDOUT) out_.append(data.data(), data.size());
  }
  std::string Stdout() {
    absl::MutexLock lock(&mu_);
    return out_;
  }

 private:
  absl::Mutex mu_;
  std::string out_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_EXEC_STDOUT_SINK_H_
