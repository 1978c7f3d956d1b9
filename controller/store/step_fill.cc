#include "controller/store/step_fill.h"

#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace kfleet::controller {

namespace v1 = kfleet::v1;

bool UsesBuildKselftests(const v1::Step& step) {
  if (!step.has_test() || step.test().suite() != "kselftest") return false;
  const v1::KselftestOptions& k = step.test().kselftest();
  return k.dir().empty() && k.tree().empty();
}

bool BuildsOnce(const v1::JobSpec& spec) {
  return spec.steps_size() > 0 && spec.steps(0).has_kernel_build();
}

v1::Step FillStep(const v1::JobSpec& spec, int index, const v1::KernelBuild* build,
                  const v1::Host* host) {
  v1::Step step = spec.steps(index);
  bool direct = host != nullptr && host->facts().boot_loader() == "direct";
  if (step.has_kernel_build()) {
    *step.mutable_kernel_build()->mutable_source() = spec.kernel();
    // The kselftests the job's test steps take from this build, built with it.
    std::set<std::string> targets;
    for (const v1::Step& s : spec.steps()) {
      if (UsesBuildKselftests(s)) {
        targets.insert(s.test().kselftest().targets().begin(),
                       s.test().kselftest().targets().end());
      }
    }
    for (const std::string& t : targets) step.mutable_kernel_build()->add_kselftest_targets(t);
  } else if (UsesBuildKselftests(step) && build != nullptr) {
    for (const v1::Artifact& a : build->artifacts()) {
      if (a.kind() == "kselftest") *step.mutable_test()->mutable_kselftest()->mutable_archive() = a;
    }
  } else if (step.has_kernel_install()) {
    if (build != nullptr) *step.mutable_kernel_install()->mutable_build() = *build;
    step.mutable_kernel_install()->set_via_provider(direct);
  } else if (step.has_reboot() && build != nullptr) {
    bool installed = false;
    for (int i = 0; i < index; ++i) installed |= spec.steps(i).has_kernel_install();
    v1::RebootStep* reboot = step.mutable_reboot();
    if (installed && reboot->expect_release().empty() && reboot->expect_identity().empty()) {
      reboot->set_expect_release(build->release());
      reboot->set_expect_identity(build->identity());
      reboot->set_via_provider(direct);
    }
  }
  return step;
}

std::string IdentityMark(const std::string& identity) {
  return absl::StrCat("kf-", identity.substr(0, 16));
}

bool RunningExpectedKernel(const v1::RebootStep& reboot, const v1::HostFacts& facts,
                           std::string* why) {
  bool release_ok =
      reboot.expect_release().empty() || facts.kernel_release() == reboot.expect_release();
  bool identity_ok =
      reboot.expect_identity().empty() ||
      absl::StrContains(facts.kernel_version(), IdentityMark(reboot.expect_identity()));
  if (release_ok && identity_ok) return true;
  std::string expected = reboot.expect_release().empty() ? "a kernel" : reboot.expect_release();
  if (!reboot.expect_identity().empty()) {
    absl::StrAppend(&expected, " (build ", reboot.expect_identity().substr(0, 12), ")");
  }
  *why = absl::StrCat(
      "wrong kernel: expected ", expected, ", running ", facts.kernel_release(),
      release_ok ? absl::StrCat(" built elsewhere (", facts.kernel_version(), ")") : "");
  return false;
}

}  // namespace kfleet::controller
