// kfleet-controller as an object: Start() builds the object graph (store, log store, executor,
// fleet, services) and serves; the destructor shuts everything down. main() only parses flags.
#ifndef KFLEET_CONTROLLER_CONTROLLER_H_
#define KFLEET_CONTROLLER_CONTROLLER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/credentials.h"

namespace kfleet::controller {

struct ControllerOptions {
  std::string listen = "127.0.0.1:7400";  // port 0 picks a free port: see Controller::port()
  std::string state_dir;
  TransportSecurity security;  // only `insecure` is read: the PKI comes from the fields below
  // Bring your own PKI (--tls-cert/--tls-key/--tls-ca, and --tls-ca-key to enrol agents); empty:
  // the controller's own CA under STATE_DIR/pki.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
  std::string tls_ca_key;
  std::vector<std::string> tls_sans;  // more names and addresses for the server certificate
  absl::Duration agent_cert_ttl = absl::Hours(24 * 7);
  absl::Duration heartbeat = absl::Seconds(10);
  int offline_after_missed = 3;
  int executor_threads = 4;
  // The controller's config file: its `pools:` (other keys are flags, read by main.cc). Empty, or
  // no `pools:` key: the default pool `local` (DESIGN.md, "Provisioning").
  std::string config_file;
  // The agent binary baked into guest images, and the image recipes (deploy/image). Empty: found
  // next to this executable (build tree or install prefix).
  std::string agent_binary;
  std::string image_recipes;
  // Where built images are kept (content-addressed); empty: <state-dir>/images.
  std::string image_cache;
  // Prometheus /metrics (plain HTTP; empty: not served), and how often agents send samples.
  std::string metrics_listen;
  absl::Duration metrics_interval = absl::Seconds(15);
  // libvirt domain name prefix of the guests of pools that set none (PoolConfig::domain_prefix).
  std::string domain_prefix;
  // How often pools are reconciled (guests created, scaled, power-cycled).
  absl::Duration reconcile_interval = absl::Seconds(1);
  // Start a kfleet-agent labelled role=builder on this machine (local_builder.h), with its
  // kernel work directory in `builder_kernel_dir` (empty: <state-dir>/builder/kernel). Off here
  // (embedders and tests); kfleet-controller's --local-builder flag turns it on by default.
  bool local_builder = false;
  std::string builder_kernel_dir;
};

class Controller {
 public:
  static absl::StatusOr<std::unique_ptr<Controller>> Start(const ControllerOptions& options);
  ~Controller();

  int port() const;
  // The port /metrics is served on; 0 if not served.
  int metrics_port() const;
  // STATE_DIR/kctl.yaml for the first admin (empty on a plaintext controller), and the CA's
  // fingerprint agents enrol with.
  std::string kctl_config() const;
  std::string ca_fingerprint() const;
  // Blocks until Shutdown() is called from another thread.
  void Wait();
  // Stops serving: open streams end, in-flight work drains. Thread-safe, idempotent.
  void Shutdown();

 private:
  struct Impl;
  explicit Controller(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_CONTROLLER_H_
