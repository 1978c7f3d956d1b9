// The controller's own builder: a kfleet-agent child process labelled role=builder, so that
// kernel_build steps run on the controller's machine with nothing else set up (DESIGN.md,
// "Kernel lifecycle"). Restarted if it exits, stopped (SIGTERM, then SIGKILL) with the controller.
#ifndef KFLEET_CONTROLLER_LOCAL_BUILDER_H_
#define KFLEET_CONTROLLER_LOCAL_BUILDER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace kfleet::controller {

struct LocalBuilderOptions {
  std::string agent_binary;
  std::string controller;  // 127.0.0.1:PORT
  bool insecure = false;
  // TLS: a file holding the builder's enrolment token (used once) and the CA certificate file.
  std::string token_file;
  std::string ca_cert_file;
  std::string state_dir;   // the agent's state dir
  std::string kernel_dir;  // its --kernel-dir; empty: STATE_DIR/kernel
  std::string name = "local-builder";
  std::string log_file;  // the agent's stdout and stderr
};

class LocalBuilder {
 public:
  // Starts the agent and a thread that restarts it (at most once every 5 s) when it exits.
  static absl::StatusOr<std::unique_ptr<LocalBuilder>> Start(LocalBuilderOptions options);
  // Stops the agent and waits for it.
  ~LocalBuilder();

 private:
  explicit LocalBuilder(LocalBuilderOptions options) : options_(std::move(options)) {}
  absl::StatusOr<pid_t> Spawn();
  void Supervise();

  const LocalBuilderOptions options_;
  absl::Mutex mu_;
  pid_t pid_ ABSL_GUARDED_BY(mu_) = -1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread supervisor_;
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_LOCAL_BUILDER_H_
