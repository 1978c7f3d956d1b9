// kfleet-agent as an object: Start() builds the object graph (state dir, host id, outbox, command
// book and manager, session) and connects; Stop() winds it down. main() only parses flags.
#ifndef KFLEET_AGENT_AGENT_H_
#define KFLEET_AGENT_AGENT_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/credentials.h"

namespace kfleet::agent {

inline constexpr char kAgentVersion[] = "0.1.0";

struct AgentOptions {
  std::string controller;  // HOST:PORT
  std::string state_dir;
  std::string host_id;  // empty: the one in the state dir, made on first start
  std::string name;     // empty: the host name
  std::map<std::string, std::string> labels;
  // Plaintext (loopback only), or TLS with the certificate in STATE_DIR/pki, got by enrolling
  // with a token the first time (see EnrolmentOptions).
  TransportSecurity security;
  std::string token;
  std::string token_file;
  std::string ca_cert_file;
  std::string ca_fingerprint;
  std::string tls_server_name;
  absl::Duration reconnect_max = absl::Seconds(30);
  absl::Duration kill_grace = absl::Seconds(10);
  uint64_t outbox_max_bytes = 64ull << 20;
  bool allow_reboot = false;  // reboot steps reboot this machine for real (and install kernels)
  // kernel_build's work directory (git cache, work trees, build dirs); empty: STATE_DIR/kernel.
  std::string kernel_dir;
  // The kernel log to follow for kernel events; empty: none.
  std::string kmsg_path = "/dev/kmsg";
  // Serve this host's own /metrics here (HOST:PORT, plain HTTP); empty: not served.
  std::string metrics_listen;
  // Run each command in its own memory cgroup where the host has them.
  bool cgroups = true;
  // systemd services to follow (ParseUnitPatterns); empty: none. Start fails on a host without
  // systemd.
  std::vector<std::string> watch_units;
};

class Agent {
 public:
  static absl::StatusOr<std::unique_ptr<Agent>> Start(const AgentOptions& options);
  ~Agent();  // Stop()s

  // Cancels running commands, gives their results a moment to reach the controller, disconnects.
  void Stop();

 private:
  struct Impl;
  explicit Agent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Parses "k=v,k2=v2". The error names the bad pair.
absl::StatusOr<std::map<std::string, std::string>> ParseLabels(const std::string& text);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_AGENT_H_
