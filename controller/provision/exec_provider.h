// A Provider that runs user-given shell commands, so any cloud CLI or terraform can serve a pool.
// Each operation runs `sh -c CMD` with a JSON request on stdin:
//
//   {"op": "create", "name": "...", "pool": "...", "cpus": 1, "memory_mib": 512,
//    "disks": [{"name": "test", "size_mib": 4096}], "kernel": "...", "initrd": "...",
//    "cmdline": "...", "base_image": "...", "settings": {"kfleet.controller": "...", ...},
//    "enrolment": {"token": "...", "ca_pem": "-----BEGIN CERTIFICATE-----\n..."}}
//
// "enrolment" is there when the controller enrols its guests (GuestSpec::fw_cfg holds
// kTokenFwCfgName): the guest's own token and the controller's CA, for the command to hand to the
// guest (cloud-init user-data) and to nothing else; the agent then runs with --token-file and
// --ca-cert. The request file is private to the controller's user and removed once the command
// ends. ("destroy" and "power_cycle" carry just op and name). `create` may print a JSON object on
// stdout: {"console_path": "/path/to/console.log"} lets kfleet collect the guest's console. A
// non-zero exit status fails the operation with the command's stderr in the message. The guest's
// agent is expected to register with the settings given (controller address, host id, name,
// labels); see deploy/cloud/ for templates.
#ifndef KFLEET_CONTROLLER_PROVISION_EXEC_PROVIDER_H_
#define KFLEET_CONTROLLER_PROVISION_EXEC_PROVIDER_H_

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controller/provision/provider.h"

namespace kfleet::controller::provision {

struct ExecProviderOptions {
  std::string create;
  std::string destroy;
  std::string power_cycle;  // optional: without it, power-cycle is destroy + create
  std::string work_dir;     // request and response files
  absl::Duration timeout = absl::Minutes(10);
};

class ExecProvider : public Provider {
 public:
  explicit ExecProvider(ExecProviderOptions options) : options_(std::move(options)) {}

  absl::StatusOr<GuestInfo> Create(const GuestSpec& spec) override;
  absl::Status Destroy(const std::string& name) override;
  absl::Status PowerCycle(const std::string& name) override;
  absl::Status SetKernel(const std::string& name, const std::string& kernel,
                         const std::string& initrd) override;
  absl::Status BootOnce(const std::string& name, const std::string& extra_cmdline,
                        const std::string& kernel, const std::string& initrd) override {
    return absl::UnimplementedError(
        "the exec provider cannot boot a guest with another command "
        "line");
  }
  absl::StatusOr<std::string> ConsoleLog(const std::string& name, size_t max_bytes) override;
  absl::StatusOr<std::vector<GuestInfo>> List() override;

 private:
  // Runs `command` with `request` on stdin; returns its stdout.
  absl::StatusOr<std::string> Run(const std::string& op, const std::string& command,
                                  const std::string& request);

  const ExecProviderOptions options_;
  absl::Mutex mu_;
  std::map<std::string, GuestInfo> guests_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, GuestSpec> specs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kfleet::controller::provision

#endif  // KFLEET_CONTROLLER_PROVISION_EXEC_PROVIDER_H_
