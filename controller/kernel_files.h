// The boot files of a stored kernel build for a guest the hypervisor boots directly (the `tiny`
// image): the build's kernel image, and the image's initramfs with the build's modules appended
// as a second cpio archive (the kernel unpacks concatenated archives in order).
#ifndef KFLEET_CONTROLLER_KERNEL_FILES_H_
#define KFLEET_CONTROLLER_KERNEL_FILES_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "controller/provision/pool_manager.h"
#include "kfleet/v1/common.pb.h"

namespace kfleet::controller {

// Where the artifact store keeps the blob with this sha256 (NotFound if it does not).
using BlobPath = std::function<absl::StatusOr<std::string>(const std::string& sha256)>;

// Makes (once per build and image; later calls find the files) the boot files under
// `cache_dir`/<identity>-<image key>/, readable by qemu's user. `image` is the pool image's own
// boot files. Errors name the missing artifact or the failed step.
absl::StatusOr<provision::BootImage> KernelBootFiles(const kfleet::v1::KernelBuild& build,
                                                     const provision::BootImage& image,
                                                     const BlobPath& blob_path,
                                                     const std::string& cache_dir);

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_KERNEL_FILES_H_
