#include "controller/kernel_files.h"

#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "controller/provision/guest_files.h"
#include "controller/provision/host_command.h"

namespace kfleet::controller {
namespace {

const v1::Artifact* FindKind(const v1::KernelBuild& build, const std::string& kind) {
  for (const v1::Artifact& a : build.artifacts()) {
    if (a.kind() == kind) return &a;
  }
  return nullptr;
}

// A short key for a path (the image's initramfs), for directory names.
std::string ShortHash(const std::string& s) {
  absl::StatusOr<Sha256> h = Sha256::Create();
  if (!h.ok()) return "0";
  h->Update(s);
  absl::StatusOr<std::string> hex = h->FinishHex();
  return hex.ok() ? hex->substr(0, 12) : "0";
}

// Appends the modules tarball, as a newc cpio archive, to the image's initramfs.
constexpr char kAppendModules[] = R"sh(
set -eu
modules=$1 base=$2 out=$3
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
mkdir "$t/root"
tar -xzf "$modules" -C "$t/root"
(cd "$t/root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -1 >"$t/modules.cpio.gz"
cat "$base" "$t/modules.cpio.gz" >"$out.tmp"
chmod 0644 "$out.tmp"
mv "$out.tmp" "$out"
)sh";

}  // namespace

absl::StatusOr<provision::BootImage> KernelBootFiles(const v1::KernelBuild& build,
                                                     const provision::BootImage& image,
                                                     const BlobPath& blob_path,
                                                     const std::string& cache_dir) {
  const v1::Artifact* kernel = FindKind(build, "kernel");
  if (kernel == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("kernel build ", build.identity().substr(0, 12), " has no kernel image"));
  }
  if (image.kernel.empty()) {
    return absl::FailedPreconditionError(
        "the guest boots from disk, not directly: its agent installs kernels (boot loader grub)");
  }
  ASSIGN_OR_RETURN(std::string kernel_blob, blob_path(kernel->sha256()));
  std::string dir =
      absl::StrCat(cache_dir, "/", build.identity().substr(0, 32), "-", ShortHash(image.initrd));
  RETURN_IF_ERROR(MakeDirs(dir));
  // qemu runs as its own user: every directory on the way must be searchable.
  ::chmod(cache_dir.c_str(), 0755);
  ::chmod(dir.c_str(), 0755);
  provision::BootImage out = image;
  out.kernel = dir + "/vmlinuz";
  if (::access(out.kernel.c_str(), R_OK) != 0) {
    RETURN_IF_ERROR(provision::CopyFileAtomic(kernel_blob, out.kernel));
    ::chmod(out.kernel.c_str(), 0644);
  }
  const v1::Artifact* modules = FindKind(build, "modules");
  if (modules == nullptr || image.initrd.empty()) return out;
  out.initrd = dir + "/initrd.img";
  if (::access(out.initrd.c_str(), R_OK) == 0) return out;
  ASSIGN_OR_RETURN(std::string modules_blob, blob_path(modules->sha256()));
  ASSIGN_OR_RETURN(provision::HostCommandResult r,
                   provision::RunHostCommand({"bash", "-c", kAppendModules, "append-modules",
                                              modules_blob, image.initrd, out.initrd},
                                             absl::Minutes(5)));
  if (r.exit_code != 0) {
    return absl::InternalError(absl::StrCat("adding the modules of ", build.release(),
                                            " to the initramfs failed: ", r.output));
  }
  return out;
}

}  // namespace kfleet::controller
