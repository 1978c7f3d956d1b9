// Loop devices over sparse files, for the test and scratch devices of fstests when the step names
// none.
#ifndef KFLEET_AGENT_SUITES_LOOP_DEVICE_H_
#define KFLEET_AGENT_SUITES_LOOP_DEVICE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace kfleet::agent {

// A loop device attached to a backing file; detached when destroyed. Needs root (or
// CAP_SYS_ADMIN) and /dev/loop-control.
class LoopDevice {
 public:
  // Creates (or truncates) the sparse file `backing` of `size_bytes` and attaches the first free
  // loop device to it. FailedPrecondition naming the fix when there is no loop support or no
  // permission.
  static absl::StatusOr<LoopDevice> Create(const std::string& backing, uint64_t size_bytes);

  LoopDevice(LoopDevice&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  LoopDevice& operator=(LoopDevice&&) = delete;
  LoopDevice(const LoopDevice&) = delete;
  ~LoopDevice();

  const std::string& path() const { return path_; }  // "/dev/loop3"

 private:
  explicit LoopDevice(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SUITES_LOOP_DEVICE_H_
