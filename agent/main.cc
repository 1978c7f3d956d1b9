// kfleet-agent: parses flags, starts the agent, runs until SIGINT or SIGTERM.
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "agent/agent.h"
#include "agent/host/facts.h"
#include "agent/units/unit_patterns.h"
#include "common/daemon_flags.h"
#include "common/duration.h"
#include "common/files.h"
#include "common/flag_names.h"
#include "common/log.h"

ABSL_FLAG(std::string, controller, "",
          "controller address HOST:PORT; default: kfleet.controller= on the kernel command line");
ABSL_FLAG(std::string, state_dir, "/var/lib/kfleet-agent",
          "directory for the host id, the outbox and command records");
ABSL_FLAG(std::string, config, "",
          "config file (YAML) of flags as keys (controller: HOST:PORT), read before the command "
          "line");
ABSL_FLAG(std::string, host_id, "",
          "use this host id (from a provider) instead of the one made in the state dir");
ABSL_FLAG(std::string, name, "", "host name to register under (default: the system host name)");
ABSL_FLAG(std::string, labels, "", "labels as k=v,k2=v2 (e.g. role=builder,pool=local)");
ABSL_FLAG(bool, allow_reboot, false,
          "let reboot steps reboot this machine (guest images set it; leave it off elsewhere)");
ABSL_FLAG(std::string, kernel_dir, "",
          "kernel_build work directory: git clones, work trees, build dirs, artifacts (default: "
          "STATE_DIR/kernel); kept between builds so that rebuilds are incremental");
ABSL_FLAG(std::string, kmsg, "/dev/kmsg",
          "kernel log to follow for kernel events (OOM kills, oopses, WARNINGs); empty: none");
ABSL_FLAG(std::string, metrics_listen, "",
          "serve this host's own Prometheus /metrics here (HOST:PORT, plain HTTP), for setups that "
          "scrape agents directly; the controller re-exports the samples either way");
ABSL_FLAG(bool, cgroups, true,
          "run each command in its own memory cgroup (v2, else v1) for its peak memory, OOM kills "
          "and memory_max");
ABSL_FLAG(bool, insecure, false, "plaintext gRPC; accepted only for a loopback controller");
ABSL_FLAG(std::string, token, "",
          "enrolment token (kctl token create), used once when the state dir holds no certificate");
ABSL_FLAG(std::string, token_file, "", "read the enrolment token from this file instead");
ABSL_FLAG(std::string, ca_cert, "", "the controller's CA certificate (PEM) to enrol with");
ABSL_FLAG(std::string, ca_fingerprint, "",
          "sha256:HEX of the controller's CA (kctl token create prints it): the agent trusts the "
          "CA the controller presents only if it has this fingerprint");
ABSL_FLAG(std::string, tls_server_name, "",
          "the name the controller's certificate must carry, if not the host of --controller");
ABSL_FLAG(std::string, watch_units, "",
          "systemd services to follow, as comma-separated globs (e.g. "
          "'mbsync@*.service,offlineimap*.service'): each one's runs, results, durations, memory "
          "peaks, OOM kills and timer become kfleet_unit_* metrics, a failed run an event; needs "
          "systemd");
ABSL_FLAG(std::string, reconnect_max, "30s", "longest wait between reconnect attempts");
ABSL_FLAG(std::string, kill_grace, "10s", "time between SIGTERM and SIGKILL on cancel or timeout");

#ifndef KFLEET_VERSION
#define KFLEET_VERSION "unknown"
#endif

namespace {

// --help, the man page and the example config file (deploy/etc/agent.yaml) are rendered from
// this and the flags' help strings above.
kfleet::DaemonSpec AgentSpec() {
  return kfleet::DaemonSpec{
      .name = "kfleet-agent",
      .version = KFLEET_VERSION,
      .summary = "runs kfleet commands on a host and reports back",
      .synopsis =
          "[--config FILE] --controller HOST:PORT [--state-dir DIR] [--name NAME] "
          "[--labels k=v,...] [--token TOKEN (--ca-fingerprint sha256:HEX | --ca-cert "
          "FILE)] [--insecure] [OPTION...]",
      .description =
          "The agent registers with the controller and keeps one gRPC stream open to it. It runs "
          "the commands it is given, each in its own process group and memory cgroup, streams "
          "their output and reports their results; it also runs kernel builds and installs and "
          "test suites. It keeps its host id, its certificate and an outbox of unacknowledged "
          "output in the state dir, so that nothing is lost or run twice across reconnects and "
          "restarts.\n\n"
          "SIGINT and SIGTERM cancel running commands, give their results up to 2 s to reach the "
          "controller, and stop it.",
      .groups =
          {
              {"Connection", {"controller HOST:PORT", "reconnect-max DURATION"}},
              {"Identity", {"name NAME", "host-id ID", "labels k=v,..."}},
              {"State", {"state-dir DIR", "config FILE"}},
              {"Commands and kernels",
               {"allow-reboot", "kernel-dir DIR", "kill-grace DURATION", "cgroups", "kmsg PATH"}},
              {"Metrics", {"metrics-listen HOST:PORT", "watch-units GLOB,..."}},
              {"Security",
               {"insecure", "token TOKEN", "token-file FILE", "ca-cert FILE",
                "ca-fingerprint sha256:HEX", "tls-server-name NAME"}},
          },
      .config_path = "/etc/kfleet/agent.yaml",
      .files =
          {
              {"/etc/kfleet/agent.yaml", "The config file, read when named with --config."},
              {"/var/lib/kfleet-agent/",
               "The state dir (--state-dir): host_id, pki/ (the agent's key and certificate), "
               "commands/ (one record per accepted command), outbox/ (output not yet "
               "acknowledged), work/, tests/ and kernel/ (--kernel-dir)."},
              {"/proc/cmdline",
               "kfleet.controller=HOST:PORT there is the controller when --controller is not "
               "given."},
              {"/dev/kmsg", "The kernel log followed for kernel events (--kmsg)."},
              {"/run/systemd/private",
               "systemd's own socket, through which --watch-units follows units (the system bus "
               "when not root)."},
          },
      .exit_codes =
          {
              {0, "Stopped by SIGINT or SIGTERM, or a help option answered."},
              {2,
               "It cannot start: a bad flag, a bad key or value in the config file, an "
               "unusable state dir, no controller address, --watch-units on a host that does not "
               "run systemd."},
          },
      .see_also = {"kfleet-controller(8)", "kctl(1)"},
      .main_file = __FILE__,
  };
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "kfleet-agent: %s\n", what.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  sigset_t set = kfleet::ParseFlagsAndBlockSignals(AgentSpec(), argc, argv);

  kfleet::agent::AgentOptions options;
  options.controller = absl::GetFlag(FLAGS_controller);
  if (options.controller.empty()) {
    if (auto cmdline = kfleet::ReadFile("/proc/cmdline", 65536); cmdline.ok()) {
      options.controller = kfleet::agent::KernelCmdlineValue(*cmdline, "kfleet.controller");
    }
  }
  options.state_dir = absl::GetFlag(FLAGS_state_dir);
  options.name = absl::GetFlag(FLAGS_name);
  options.host_id = absl::GetFlag(FLAGS_host_id);
  options.security.insecure = absl::GetFlag(FLAGS_insecure);
  options.token = absl::GetFlag(FLAGS_token);
  options.token_file = absl::GetFlag(FLAGS_token_file);
  options.ca_cert_file = absl::GetFlag(FLAGS_ca_cert);
  options.ca_fingerprint = absl::GetFlag(FLAGS_ca_fingerprint);
  options.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  options.allow_reboot = absl::GetFlag(FLAGS_allow_reboot);
  options.kernel_dir = absl::GetFlag(FLAGS_kernel_dir);
  options.kmsg_path = absl::GetFlag(FLAGS_kmsg);
  options.cgroups = absl::GetFlag(FLAGS_cgroups);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  auto labels = kfleet::agent::ParseLabels(absl::GetFlag(FLAGS_labels));
  if (!labels.ok()) return Fail(absl::StrCat("--labels: ", labels.status().message()));
  options.labels = *labels;
  if (std::string units = absl::GetFlag(FLAGS_watch_units); !units.empty()) {
    auto patterns = kfleet::agent::ParseUnitPatterns(units);
    if (!patterns.ok()) return Fail(std::string(patterns.status().message()));
    options.watch_units = *std::move(patterns);
  }
  auto reconnect = kfleet::ParseDuration(absl::GetFlag(FLAGS_reconnect_max));
  if (!reconnect.ok()) return Fail(absl::StrCat("--reconnect-max: ", reconnect.status().message()));
  options.reconnect_max = *reconnect;
  auto grace = kfleet::ParseDuration(absl::GetFlag(FLAGS_kill_grace));
  if (!grace.ok()) return Fail(absl::StrCat("--kill-grace: ", grace.status().message()));
  options.kill_grace = *grace;

  auto agent = kfleet::agent::Agent::Start(options);
  if (!agent.ok()) return Fail(std::string(agent.status().message()));
  int sig = 0;
  sigwait(&set, &sig);
  kfleet::LogInfo(absl::StrCat("signal ", sig, ": stopping"));
  (*agent)->Stop();
  return 0;
}
