// How a job's step becomes the step of one command: the parts the controller fills in from the
// job's kernel build and from the host that runs it (DESIGN.md, "Kernel lifecycle").
#ifndef KFLEET_CONTROLLER_STORE_STEP_FILL_H_
#define KFLEET_CONTROLLER_STORE_STEP_FILL_H_

#include "kfleet/v1/common.pb.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::controller {

// A job whose first step is kernel_build: that step runs once, on a builder host, and the others
// run on every target host after it passed.
bool BuildsOnce(const kfleet::v1::JobSpec& spec);

// A kselftest test step that runs the kselftests of the job's kernel build (no dir, no tree).
bool UsesBuildKselftests(const kfleet::v1::Step& step);

// Step `index` of `spec` as a command runs it on `host` (null: not known yet, a command waiting
// for a host), with `build` the job's kernel build (null: none yet):
// - kernel_build gets the job's kernel source;
// - kernel_install gets the build, and goes through the provider on a host booted directly by its
//   hypervisor (facts.boot_loader "direct");
// - a reboot after a kernel_install expects the build's release and identity, and on a
//   direct-boot host the provider boots it;
// - kernel_build also builds the kselftest targets of the job's kselftest steps, and those steps
//   get the build's kselftest archive.
kfleet::v1::Step FillStep(const kfleet::v1::JobSpec& spec, int index,
                          const kfleet::v1::KernelBuild* build, const kfleet::v1::Host* host);

// The string a kernel built by kfleet carries in /proc/version (the build host of `uname -v`'s
// line), from its identity: "kf-" and the identity's first 16 hex digits.
std::string IdentityMark(const std::string& identity);

// Whether the kernel `host` runs is the one `reboot` expects. On a mismatch, `why` says
// "expected X, running Y".
bool RunningExpectedKernel(const kfleet::v1::RebootStep& reboot, const kfleet::v1::HostFacts& facts,
                           std::string* why);

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_STORE_STEP_FILL_H_
