// kfleet-controller: parses flags, starts the controller, serves until SIGINT or SIGTERM.
#include <signal.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "common/duration.h"
#include "common/flag_names.h"
#include "common/log.h"
#include "controller/controller.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7400", "gRPC address for agents and kctl (HOST:PORT)");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:7401",
          "Prometheus /metrics address (HOST:PORT, plain HTTP): the controller's own metrics and "
          "every host's latest samples; empty: not served");
ABSL_FLAG(std::string, metrics_interval, "15s",
          "how often agents sample their host and send the samples (0: never)");
ABSL_FLAG(std::string, state_dir, "/var/lib/kfleet",
          "directory for the SQLite database (kfleet.db) and the stored logs");
ABSL_FLAG(std::string, config, "",
          "controller config file (YAML) declaring pools; default: one pool, local (libvirt, tiny "
          "image)");
ABSL_FLAG(std::string, agent_binary, "",
          "kfleet-agent binary baked into guest images (default: next to this executable)");
ABSL_FLAG(std::string, image_cache, "",
          "where built guest images are kept (default: STATE_DIR/images)");
ABSL_FLAG(std::string, image_recipes, "",
          "directory of image recipes, deploy/image (default: found next to this executable)");
ABSL_FLAG(std::string, domain_prefix, "",
          "prefix of the libvirt domain names of guests of pools that set no domain_prefix (for "
          "controllers sharing one libvirtd)");
ABSL_FLAG(bool, local_builder, true,
          "start a kfleet-agent labelled role=builder on this machine for kernel_build steps "
          "(log in STATE_DIR/builder.log)");
ABSL_FLAG(std::string, builder_kernel_dir, "",
          "the local builder's kernel work directory (git cache, build dirs; default "
          "STATE_DIR/builder/kernel)");
ABSL_FLAG(bool, insecure, false,
          "plaintext gRPC, every caller an admin; accepted only on loopback addresses (without it: "
          "mutual TLS with the controller's own CA in STATE_DIR/pki)");
ABSL_FLAG(std::string, tls_cert, "",
          "server certificate chain (PEM) of your own PKI, instead of STATE_DIR/pki");
ABSL_FLAG(std::string, tls_key, "", "the server certificate's key (PEM)");
ABSL_FLAG(std::string, tls_ca, "", "the CA (PEM) that signs client certificates");
ABSL_FLAG(std::string, tls_ca_key, "",
          "the CA's key (PEM), so that the controller can enrol agents and create users with your "
          "PKI");
ABSL_FLAG(std::vector<std::string>, tls_san, {},
          "more names or addresses for the server certificate (comma-separated), e.g. the name "
          "agents on other machines dial");
ABSL_FLAG(std::string, agent_cert_ttl, "168h",
          "lifetime of agent certificates; agents renew at two thirds of it");
ABSL_FLAG(std::string, heartbeat, "10s", "agent heartbeat interval; 3 missed make a host offline");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "kfleet-controller: the kfleet fleet controller.\n\n"
      "Usage: kfleet-controller --listen HOST:PORT --state-dir DIR [--tls-san NAME] "
      "[--insecure]\n\n"
      "Agents (kfleet-agent) connect to --listen and are given commands; kctl talks to the same\n"
      "address. State lives in DIR/kfleet.db (SQLite, WAL) and logs under DIR/logs.\n"
      "TLS by default: on first start the controller makes its CA, server and admin certificates\n"
      "in DIR/pki and DIR/kctl.yaml; use kctl --config DIR/kctl.yaml.");
  sigset_t set = kfleet::ParseFlagsAndBlockSignals(argc, argv);

  kfleet::controller::ControllerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.state_dir = absl::GetFlag(FLAGS_state_dir);
  options.security.insecure = absl::GetFlag(FLAGS_insecure);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  options.tls_ca_key = absl::GetFlag(FLAGS_tls_ca_key);
  options.tls_sans = absl::GetFlag(FLAGS_tls_san);
  absl::StatusOr<absl::Duration> agent_ttl =
      kfleet::ParseDuration(absl::GetFlag(FLAGS_agent_cert_ttl));
  if (!agent_ttl.ok() || *agent_ttl < absl::Seconds(10)) {
    std::fprintf(
        stderr, "kfleet-controller: --agent-cert-ttl: %s\n",
        agent_ttl.ok() ? "at least 10s" : std::string(agent_ttl.status().message()).c_str());
    return 2;
  }
  options.agent_cert_ttl = *agent_ttl;
  options.config_file = absl::GetFlag(FLAGS_config);
  options.agent_binary = absl::GetFlag(FLAGS_agent_binary);
  options.image_recipes = absl::GetFlag(FLAGS_image_recipes);
  options.image_cache = absl::GetFlag(FLAGS_image_cache);
  options.domain_prefix = absl::GetFlag(FLAGS_domain_prefix);
  options.local_builder = absl::GetFlag(FLAGS_local_builder);
  options.builder_kernel_dir = absl::GetFlag(FLAGS_builder_kernel_dir);
  absl::StatusOr<absl::Duration> heartbeat = kfleet::ParseDuration(absl::GetFlag(FLAGS_heartbeat));
  if (!heartbeat.ok()) {
    std::fprintf(stderr, "kfleet-controller: --heartbeat: %s\n",
                 std::string(heartbeat.status().message()).c_str());
    return 2;
  }
  options.heartbeat = *heartbeat;
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  absl::StatusOr<absl::Duration> metrics_interval =
      kfleet::ParseDuration(absl::GetFlag(FLAGS_metrics_interval));
  if (!metrics_interval.ok()) {
    std::fprintf(stderr, "kfleet-controller: --metrics-interval: %s\n",
                 std::string(metrics_interval.status().message()).c_str());
    return 2;
  }
  options.metrics_interval = *metrics_interval;
  auto controller = kfleet::controller::Controller::Start(options);
  if (!controller.ok()) {
    std::fprintf(stderr, "kfleet-controller: %s\n",
                 std::string(controller.status().message()).c_str());
    return 1;
  }
  if (!(*controller)->kctl_config().empty()) {
    std::fprintf(stderr,
                 "kfleet-controller: CA fingerprint %s\n"
                 "kfleet-controller: use it with: kctl --config %s hosts\n",
                 (*controller)->ca_fingerprint().c_str(), (*controller)->kctl_config().c_str());
  }
  std::thread signals([&] {
    int sig = 0;
    sigwait(&set, &sig);
    kfleet::LogInfo(absl::StrCat("signal ", sig, ": shutting down"));
    (*controller)->Shutdown();
  });
  (*controller)->Wait();
  signals.detach();
  return 0;
}
