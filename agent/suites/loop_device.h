// Loop devices over sparse files, for the test and scratch devices of fstests when the step names
// none, and the mkfs command that gives such a device its first file system.
#ifndef KFLEET_AGENT_SUITES_LOOP_DEVICE_H_
#define KFLEET_AGENT_SUITES_LOOP_DEVICE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

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

// The command that makes a new, empty `fstype` file system on `device`, overwriting whatever is
// there: "mkfs.xfs -f -q DEVICE", "mkfs.ext4 -F -q DEVICE", ... fstests' check mounts TEST_DEV
// before it recreates it, so a device kfleet provides needs one first. An empty fstype is xfs,
// fstests' default. InvalidArgument for a fstype that cannot name a mkfs program.
absl::StatusOr<std::vector<std::string>> MkfsArgv(absl::string_view fstype,
                                                  const std::string& device);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SUITES_LOOP_DEVICE_H_
