// kfleet-controller: parses flags, starts the controller, serves until SIGINT or SIGTERM.
#include <signal.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/daemon_flags.h"
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
          "config file (YAML): flags as keys (state-dir: DIR) and the pools of guests (pools:); "
          "without pools, one pool, local (libvirt, tiny image)");
ABSL_FLAG(std::string, agent_binary, "",
          "kfleet-agent binary baked into guest images (default: next to this executable)");
ABSL_FLAG(std::string, image_cache, "",
          "where built guest images are kept (default: STATE_DIR/images)");
ABSL_FLAG(std::string, image_recipes, "",
          "directory of image recipes, deploy/image (default: ../share/kfleet/image from this "
          "executable's directory, in the build tree and in an install prefix)");
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

#ifndef KFLEET_VERSION
#define KFLEET_VERSION "unknown"
#endif

namespace {

// --help, the man page and the example config file (deploy/etc/controller.yaml) are rendered
// from this and the flags' help strings above.
kfleet::DaemonSpec ControllerSpec() {
  return kfleet::DaemonSpec{
      .name = "kfleet-controller",
      .version = KFLEET_VERSION,
      .summary = "the kfleet fleet controller",
      .synopsis =
          "[--config FILE] [--listen HOST:PORT] [--state-dir DIR] [--tls-san NAME,...] "
          "[--insecure] [OPTION...]",
      .description =
          "The controller is the one place agents (kfleet-agent) register with and kctl talks "
          "to. It serves one gRPC port (--listen): agents connect to it and are given commands, "
          "kctl submits jobs and reads hosts, logs and results there, and artifacts (kernel "
          "builds) are uploaded and downloaded there. It brings guests up in pools (libvirt or "
          "an exec provider), starts a local builder agent for kernel builds, and serves "
          "Prometheus metrics.\n\n"
          "State lives in the state dir: the SQLite database kfleet.db, command logs under logs/, "
          "the artifact store, and the PKI. Mutual TLS by default: on first start the controller "
          "makes its CA, server and admin certificates in STATE_DIR/pki and writes "
          "STATE_DIR/kctl.yaml; use kctl --config STATE_DIR/kctl.yaml.\n\n"
          "SIGINT and SIGTERM stop it: open streams end, and agents reconnect to the next "
          "controller that serves the same state dir.",
      .groups =
          {
              {"Network", {"listen HOST:PORT", "metrics-listen HOST:PORT", "heartbeat DURATION"}},
              {"State", {"state-dir DIR", "config FILE"}},
              {"Guests and builders",
               {"agent-binary PATH", "image-cache DIR", "image-recipes DIR", "domain-prefix PREFIX",
                "local-builder", "builder-kernel-dir DIR"}},
              {"Metrics", {"metrics-interval DURATION"}},
              {"Security",
               {"insecure", "tls-cert FILE", "tls-key FILE", "tls-ca FILE", "tls-ca-key FILE",
                "tls-san NAME,...", "agent-cert-ttl DURATION"}},
          },
      .config_path = "/etc/kfleet/controller.yaml",
      .config_text =
          "The same file declares the pools of guests under the key `pools` (see "
          "docs/guests.md). Without a `pools` key (an empty file, or flags only) there is one "
          "pool, local: libvirt qemu:///system, tiny image, 1 vCPU, 512 MiB, 0 to 2 guests; "
          "`pools: {}` declares none.",
      .reserved_keys = {"pools"},
      .config_example_tail =
          "## Pools of guests (docs/guests.md). Without a pools key there is one pool, local, "
          "as below;\n"
          "## `pools: {}` declares none. Pool fields are written with underscores.\n"
          "\n"
          "#pools:\n"
          "#  local:\n"
          "#    provider: libvirt           # or exec\n"
          "#    uri: qemu:///system         # any libvirt URI\n"
          "#    domain_prefix: ci-          # domains ci-local-1...; default: domain-prefix above\n"
          "#    image: tiny                 # tiny (direct kernel boot) or debian (disk, grub)\n"
          "#    cpus: 1\n"
          "#    memory: 512M\n"
          "#    disks: [{name: test, size: 4G}, {name: scratch, size: 4G}]   # virtio-NAME\n"
          "#    min: 0\n"
          "#    max: 2\n"
          "#    idle_timeout: 10m\n"
          "#    boot_timeout: 5m            # a guest whose agent never registers has failed\n"
          "#    labels: {role: guest}       # pool=NAME is always added\n"
          "#  cloud:\n"
          "#    provider: exec\n"
          "#    exec: {create: CMD, destroy: CMD, power_cycle: CMD}   # deploy/cloud/README.md\n",
      .files =
          {
              {"/etc/kfleet/controller.yaml",
               "The config file, read when named with --config: flags and pools."},
              {"/var/lib/kfleet/kfleet.db",
               "The SQLite database (WAL): hosts, jobs, commands, test results. /var/lib/kfleet "
               "is the default --state-dir."},
              {"/var/lib/kfleet/logs/", "Command output, one file per command and stream."},
              {"/var/lib/kfleet/pki/",
               "The CA and the server's and the first admin's keys and certificates."},
              {"/var/lib/kfleet/kctl.yaml",
               "kctl's configuration for the first admin: kctl --config /var/lib/kfleet/kctl.yaml "
               "hosts."},
              {"/var/lib/kfleet/access.db",
               "Enrolment tokens (hashed), issued certificates and revocations, the audit log."},
              {"/var/lib/kfleet/artifacts/",
               "The artifact store: kernel builds and the artifacts of commands."},
              {"/var/lib/kfleet/images/", "Built guest images (--image-cache)."},
          },
      .exit_codes =
          {
              {0,
               "Stopped by SIGINT or SIGTERM after a clean shutdown, or a help option "
               "answered."},
              {1, "It cannot start: state dir, database, port in use (the message says which)."},
              {2, "A bad flag, or a bad key or value in the config file."},
          },
      .see_also = {"kfleet-agent(8)", "kctl(1)"},
      .main_file = __FILE__,
  };
}

}  // namespace

int main(int argc, char** argv) {
  sigset_t set = kfleet::ParseFlagsAndBlockSignals(ControllerSpec(), argc, argv);

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
  const std::string interval_flag = absl::GetFlag(FLAGS_metrics_interval);
  // 0 in any unit ("0", "0s", "0ms") turns sampling off, as --help says.
  absl::StatusOr<absl::Duration> metrics_interval = kfleet::IsZeroDuration(interval_flag)
                                                        ? absl::ZeroDuration()
                                                        : kfleet::ParseDuration(interval_flag);
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
