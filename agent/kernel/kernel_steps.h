// The kernel_build and kernel_install steps on the agent (DESIGN.md, "Kernel lifecycle"). Each runs
// as a few phases of kfleet-kernel.sh (carried in the agent binary), each phase a process of the
// command, plus transfers with the controller's artifact store.
#ifndef KFLEET_AGENT_KERNEL_KERNEL_STEPS_H_
#define KFLEET_AGENT_KERNEL_KERNEL_STEPS_H_

#include <functional>
#include <string>

#include "agent/exec/process.h"
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

// Source and config, the identity; the stored build if the controller has it (no make), else
// make, and the artifacts uploaded. The result carries the KernelBuild.
kfleet::v1::CommandResult RunKernelBuild(const kfleet::v1::KernelBuildStep& step,
                                         const KernelStepContext& ctx);

// Downloads the build's artifacts (verified) and installs them with a one-shot grub entry.
kfleet::v1::CommandResult RunKernelInstall(const kfleet::v1::KernelInstallStep& step,
                                           const KernelStepContext& ctx);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_KERNEL_KERNEL_STEPS_H_
