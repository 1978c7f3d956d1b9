// The kernel_build and kernel_install steps on the agent (DESIGN.md, "Kernel lifecycle"). Each runs
// as a few phases of kfleet-kernel.sh (carried in the agent binary), each phase a process of the
// command, plus transfers with the controller's artifact store.
#ifndef KFLEET_AGENT_KERNEL_KERNEL_STEPS_H_
#define KFLEET_AGENT_KERNEL_KERNEL_STEPS_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/exec/process.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "kfleet/v1/agent.pb.h"
#include "kfleet/v1/artifacts.grpc.pb.h"

namespace kfleet::agent {

struct KernelStepContext {
  std::string command_id;
  std::string work_dir;  // kernel work directory: git cache, work trees, build dirs, artifacts
  kfleet::v1::ArtifactService::StubInterface* artifacts = nullptr;
  OutputSink* log = nullptr;  // the command's log, for the agent's own lines
  // Runs one phase process to its end (the caller makes it cancellable) and returns how it ended.
  std::function<kfleet::v1::CommandResult(const RunSpec&)> run_phase;
  std::string host_name;
};

// The artifact kind of a kernel build's kselftest archive.
inline constexpr char kKselftestKind[] = "kselftest";

// The name of the kselftest archive of `targets` (KernelBuildStep.kselftest_targets):
// "kselftest-<first 8 hex digits of sha256(T)>.tar.gz", where T is the sorted, deduplicated
// targets, each followed by "\n" (e.g. ["size", "mincore"] hashes "mincore\nsize\n"). A stored
// build holds one archive per target set it was asked for, each under its own name; the archive
// is a gzip tar with run_kselftest.sh, kselftest-list.txt and one directory per collection at its
// top, owned by root (busybox `tar -xzf` unpacks it). Precondition: `targets` is not empty.
std::string KselftestArchiveName(const std::vector<std::string>& targets);

// The step's targets sorted and deduplicated, or InvalidArgument naming a bad one: a target is a
// directory under tools/testing/selftests ("size", "net/mptcp"): letters, digits, "_.+-", "/"
// between non-empty components, no "..", at most 128 bytes.
absl::StatusOr<std::vector<std::string>> NormalizeKselftestTargets(
    const google::protobuf::RepeatedPtrField<std::string>& targets);

// Source and config, the identity; the stored build if the controller has it (no make), else
// make, and the artifacts uploaded. With kselftest_targets, also the kselftest archive of those
// targets (kind kKselftestKind, named by KselftestArchiveName): taken from the stored build when
// it has one of that name, else built from the same tree (after make, or with no make when the
// kernel was reused) and uploaded. The result carries the KernelBuild: the kernel's artifacts plus,
// with targets, exactly one artifact of kind kKselftestKind (archives the stored build has for
// other target sets are left out). A kselftest that does not build fails the step (FAIL) with the
// target and the last lines of make's output as the detail; so does, before make, an option a
// config fragment asks for that the final .config does not have, with the option, the values
// asked and got, and the Kconfig lines that decide it.
kfleet::v1::CommandResult RunKernelBuild(const kfleet::v1::KernelBuildStep& step,
                                         const KernelStepContext& ctx);

// Downloads the build's artifacts (verified; kselftest archives are not needed and left out) and
// installs them with a one-shot grub entry.
kfleet::v1::CommandResult RunKernelInstall(const kfleet::v1::KernelInstallStep& step,
                                           const KernelStepContext& ctx);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_KERNEL_KERNEL_STEPS_H_
