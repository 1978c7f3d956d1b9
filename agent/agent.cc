#include "agent/agent.h"

#include <sys/reboot.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/collect/host_collector.h"
#include "agent/commands/command_book.h"
#include "agent/commands/command_manager.h"
#include "agent/commands/scheduled_run_launcher.h"
#include "agent/exec/cgroup.h"
#include "agent/exec/oom_score.h"
#include "agent/host/facts.h"
#include "agent/kmsg/history_cutoff.h"
#include "agent/outbox/outbox.h"
#include "agent/schedule/clock.h"
#include "agent/schedule/schedule_runner.h"
#include "agent/session/enrolment.h"
#include "agent/session/session_client.h"
#include "agent/telemetry/kernel_watcher.h"
#include "agent/telemetry/metrics_reporter.h"
#include "agent/units/unit_tracker.h"
#include "agent/units/unit_watcher.h"
#include "common/credentials.h"
#include "common/files.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "controller/metrics/fleet_collector.h"
#include "controller/metrics/host_samples.h"
#include "controller/metrics/metrics_server.h"
#include "kfleet/v1/artifacts.grpc.pb.h"

namespace kfleet::agent {

// Declared in construction order; destroyed in reverse (session first, outbox last), except
// that the schedule runner is made after the command manager yet outlives it: commands ending as
// the manager goes report to the runner, and the runner's thread, which starts commands, is
// stopped first (~Impl).
struct Agent::Impl {
  ~Impl() {
    if (schedules) schedules->Stop();
  }
  std::unique_ptr<CertificateRenewer> renewer;
  std::unique_ptr<kfleet::v1::ArtifactService::Stub> artifacts;
  std::unique_ptr<Outbox> outbox;
  std::unique_ptr<CommandBook> book;
  std::unique_ptr<CgroupManager> cgroups;
  RealClock clock;
  std::unique_ptr<ScheduledRunLauncher> schedule_launcher;
  std::unique_ptr<ScheduleRunner> schedules;
  std::unique_ptr<CommandManager> commands;
  std::unique_ptr<HostCollector> collector;
  std::unique_ptr<MetricsReporter> reporter;
  std::unique_ptr<SessionClient> session;
  std::unique_ptr<KernelWatcher> kernel;
  // --watch-units: what the watched systemd units did, and the watcher that tells it.
  std::unique_ptr<UnitTracker> unit_tracker;
  std::unique_ptr<UnitWatcher> units;
  // The host's own /metrics (--metrics-listen): a table of this one host, read by the server.
  std::unique_ptr<controller::HostSampleTable> own_samples;
  std::shared_ptr<controller::FleetCollector> own_collector;
  std::unique_ptr<controller::MetricsServer> own_server;
  std::string alive_path;  // removed on a clean stop
  bool stopped = false;
};

namespace {

absl::Status RebootHost() {
  ::sync();
  if (::reboot(RB_AUTOBOOT) != 0) return ErrnoStatus("reboot(2)", errno);
  return absl::OkStatus();  // not reached
}

// Whether the previous agent of this state dir, in this boot, ended without Stop(): its marker
// file is still there. Returns the event to report, if so, and leaves our own marker.
std::optional<v1::KernelEvent> CheckPreviousRun(const std::string& path,
                                                const std::string& boot_id) {
  std::optional<v1::KernelEvent> event;
  absl::StatusOr<std::string> previous = ReadFile(path, 256);
  if (previous.ok()) {
    std::pair<std::string, std::string> f = absl::StrSplit(*previous, absl::MaxSplits(' ', 1));
    std::string pid(absl::StripAsciiWhitespace(f.second));
    if (f.first == boot_id) {
      event.emplace();
      event->set_kind("agent_killed");
      event->set_time_unix_ms(absl::ToUnixMillis(absl::Now()));
      event->set_boot_id(boot_id);
      event->set_message(absl::StrCat(
          "INFRA_ERROR: kfleet-agent (pid ", pid,
          ") ended without stopping (killed, OOM-killed or crashed); the commands it ran are "
          "reported lost"));
    }
  }
  absl::Status s = WriteFileAtomic(path, absl::StrCat(boot_id, " ", ::getpid(), "\n"));
  if (!s.ok()) LogWarning(absl::StrCat("cannot write ", path, ": ", s.message()));
  return event;
}

// "[  123.456789] message\n", as dmesg prints a record, for the kmsg stream of commands.
std::string DmesgLine(const KmsgRecord& r) {
  return absl::StrFormat("[%5u.%06u] %s\n", r.timestamp_us / 1000000, r.timestamp_us % 1000000,
                         r.message);
}

}  // namespace

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Agent::~Agent() { Stop(); }

absl::StatusOr<std::map<std::string, std::string>> ParseLabels(const std::string& text) {
  std::map<std::string, std::string> labels;
  for (absl::string_view pair : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (kv.first.empty() || pair.find('=') == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("label \"", pair, "\" is not of the form key=value (e.g. role=builder)"));
    }
    labels[kv.first] = kv.second;
  }
  return labels;
}

absl::StatusOr<std::unique_ptr<Agent>> Agent::Start(const AgentOptions& options) {
  // Kernel records from before this are history on a first start (agent/kmsg/history_cutoff.h).
  const uint64_t start_monotonic_us = MonotonicNowUs();
  if (!options.watch_units.empty()) RETURN_IF_ERROR(UnitWatcher::CheckHost(UnitWatcherOptions{}));
  if (options.controller.empty()) {
    return absl::InvalidArgumentError(
        "no controller address: pass --controller HOST:PORT (or kfleet.controller=HOST:PORT on the "
        "kernel command line)");
  }
  if (options.state_dir.empty()) return absl::InvalidArgumentError("--state-dir is required");
  RETURN_IF_ERROR(MakeDirs(options.state_dir + "/work"));
  if (!options.host_id.empty()) {
    // Given by whoever made this host (a provider, on the kernel command line): it wins.
    if (!IsValidId(options.host_id)) {
      return absl::InvalidArgumentError(absl::StrCat("--host-id \"", options.host_id.substr(0, 64),
                                                     "\" is not 1-64 of [A-Za-z0-9._-]"));
    }
    RETURN_IF_ERROR(WriteFileAtomic(options.state_dir + "/host_id", options.host_id + "\n"));
  }
  ASSIGN_OR_RETURN(std::string host_id, LoadOrCreateHostId(options.state_dir));

  auto impl = std::make_unique<Impl>();
  TransportSecurity security = options.security;
  if (!security.insecure) {
    EnrolmentOptions e;
    e.controller = options.controller;
    e.state_dir = options.state_dir;
    e.host_id = host_id;
    e.name = options.name;
    e.labels = options.labels;
    e.token = options.token;
    e.token_file = options.token_file;
    e.ca_cert_file = options.ca_cert_file;
    e.ca_fingerprint = options.ca_fingerprint;
    e.server_name = options.tls_server_name;
    ASSIGN_OR_RETURN(security, EnsureEnrolled(e));
    impl->renewer =
        std::make_unique<CertificateRenewer>(options.controller, security, options.state_dir);
    impl->renewer->Start();
  }
  OutboxOptions outbox_options;
  outbox_options.dir = options.state_dir + "/outbox";
  outbox_options.max_bytes = options.outbox_max_bytes;
  ASSIGN_OR_RETURN(impl->outbox, Outbox::Open(outbox_options));
  ASSIGN_OR_RETURN(CommandBook book, CommandBook::Open(options.state_dir + "/commands"));
  impl->book = std::make_unique<CommandBook>(std::move(book));
  // The OOM killer should take a command, never the agent that reports on it (commands get 0
  // back before exec).
  if (absl::Status s = ProtectFromOomKiller(); !s.ok()) {
    LogWarning(absl::StrCat("the OOM killer may pick kfleet-agent: ", s.message()));
  }
  if (options.cgroups) {
    CgroupOptions cgroup_options;
    impl->cgroups = CgroupManager::Detect(cgroup_options);
    LogInfo(absl::StrCat("memory cgroups: ", impl->cgroups->detail()));
  }
  // Kernel steps move artifacts on a channel of their own, beside the session.
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel,
                   MakeChannel(security, options.controller));
  impl->artifacts = kfleet::v1::ArtifactService::NewStub(channel);
  std::string name = options.name.empty() ? CollectFacts().hostname() : options.name;
  CommandManager::Options command_options{options.state_dir + "/work", options.kill_grace,
                                          options.allow_reboot, RebootHost};
  command_options.kernel_dir =
      options.kernel_dir.empty() ? options.state_dir + "/kernel" : options.kernel_dir;
  command_options.tests_dir = options.state_dir + "/tests";
  command_options.artifacts = impl->artifacts.get();
  command_options.host_name = name;
  command_options.cgroups = impl->cgroups.get();
  Impl* p = impl.get();
  // Set before any command runs (the session starts below), and never changed after.
  command_options.on_finished = [p](const std::string& id, const v1::CommandResult&) {
    if (p->schedules) p->schedules->OnRunFinished(id, p->clock.Now());
  };
  impl->commands = std::make_unique<CommandManager>(impl->book.get(), impl->outbox.get(),
                                                    std::move(command_options));
  RETURN_IF_ERROR(impl->commands->RecoverInterrupted());
  // After RecoverInterrupted, so that a run the last agent left unfinished is reported lost before
  // anything new starts. Schedules run from the state dir whether or not the controller is there.
  impl->schedule_launcher = std::make_unique<ScheduledRunLauncher>(impl->commands.get());
  ScheduleRunnerOptions schedule_options;
  schedule_options.state_path = options.state_dir + "/schedules.pb";
  impl->schedules = ScheduleRunner::Open(std::move(schedule_options), &impl->clock,
                                         impl->schedule_launcher.get());
  impl->schedules->Start();
  const std::string boot_id = BootId();
  impl->alive_path = options.state_dir + "/agent.running";
  if (std::optional<v1::KernelEvent> killed = CheckPreviousRun(impl->alive_path, boot_id)) {
    LogWarning(killed->message());
    v1::SequencedItem item;
    *item.mutable_kernel_event() = *std::move(killed);
    RETURN_IF_ERROR(impl->outbox->AppendSequenced(std::move(item)).status());
  }

  SessionOptions session;
  session.controller = options.controller;
  session.security = security;
  session.host_id = host_id;
  session.name = name;
  session.labels = options.labels;
  session.agent_version = kAgentVersion;
  session.reconnect_max = options.reconnect_max;
  // Host samples at the interval each Welcome sets.
  impl->collector = std::make_unique<HostCollector>();
  if (!options.metrics_listen.empty()) {
    impl->own_samples = std::make_unique<controller::HostSampleTable>();
    impl->own_collector = std::make_shared<controller::FleetCollector>(*impl->own_samples);
    ASSIGN_OR_RETURN(impl->own_server, controller::MetricsServer::Start(options.metrics_listen,
                                                                        {impl->own_collector}));
    std::string host = options.metrics_listen.substr(0, options.metrics_listen.rfind(':'));
    session.metrics_address = absl::StrCat(host, ":", impl->own_server->port());
    LogInfo(absl::StrCat("metrics on http://", session.metrics_address, "/metrics"));
  }
  std::map<std::string, std::string> labels = options.labels;
  impl->reporter = std::make_unique<MetricsReporter>(
      [p]() -> absl::StatusOr<std::vector<v1::MetricSample>> {
        absl::StatusOr<std::vector<v1::MetricSample>> samples = p->collector->Collect();
        if (samples.ok() && p->unit_tracker) {
          for (v1::MetricSample& s : p->unit_tracker->Samples()) samples->push_back(std::move(s));
        }
        return samples;
      },
      [p, host_id, name, labels](v1::MetricsBatch batch) {
        if (p->own_samples) {
          p->own_samples->Update(
              host_id, name, labels, batch.time_unix_ms(),
              std::vector<v1::MetricSample>(batch.samples().begin(), batch.samples().end()));
        }
        p->session->SendMetrics(std::move(batch));
      });
  const bool serves_own = !options.metrics_listen.empty();
  session.on_settings = [p, serves_own](const v1::SessionSettings& settings) {
    absl::Duration interval = absl::Milliseconds(settings.metrics_interval_ms());
    // Its own /metrics is sampled even when the controller wants no samples.
    if (serves_own && interval <= absl::ZeroDuration()) interval = absl::Seconds(15);
    p->reporter->SetInterval(interval);
  };
  session.on_schedules = [p](const v1::ScheduleSet& set) {
    // Refused specs are logged by the runner; the others are applied.
    p->schedules->SetSchedules(set).IgnoreError();
  };
  if (!options.watch_units.empty()) {
    impl->unit_tracker = std::make_unique<UnitTracker>();
    UnitWatcherOptions units;
    units.patterns = options.watch_units;
    UnitWatcherHooks hooks;
    hooks.warn = [](const std::string& text) { LogWarning(text); };
    hooks.on_run = [p](const UnitRun& run) {
      // Every run moves the unit's gauges; a failed one is also an event.
      if (run.failed()) {
        v1::KernelEvent e = UnitFailedEvent(run);
        LogInfo(absl::StrCat("unit: ", e.message()));
        v1::SequencedItem item;
        *item.mutable_kernel_event() = std::move(e);
        if (absl::Status s = p->outbox->AppendSequenced(std::move(item)).status(); !s.ok()) {
          LogWarning(absl::StrCat("unit event not kept: ", s.message()));
        }
      }
      p->reporter->SampleSoon();
    };
    ASSIGN_OR_RETURN(impl->units,
                     UnitWatcher::Start(std::move(units), impl->unit_tracker.get(), hooks));
    LogInfo(absl::StrCat("watching systemd units ", absl::StrJoin(options.watch_units, ","), ": ",
                         impl->unit_tracker->size(), " now"));
  }
  impl->session =
      std::make_unique<SessionClient>(session, impl->outbox.get(), impl->commands.get());
  impl->reporter->Start();
  RETURN_IF_ERROR(impl->session->Start());

  if (!options.kmsg_path.empty()) {
    KernelWatcherOptions kernel;
    kernel.kmsg_path = options.kmsg_path;
    kernel.cursor_path = options.state_dir + "/kmsg.cursor";
    kernel.boot_id = boot_id;
    kernel.start_monotonic_us = start_monotonic_us;
    KernelWatcherHooks hooks;
    hooks.on_record = [p](const KmsgRecord& r) { p->commands->OnKernelRecord(DmesgLine(r)); };
    hooks.attribute = [p](const v1::KernelEvent& e) { return p->commands->AttributeEvent(e); };
    hooks.report = [p](v1::KernelEvent e) -> absl::Status {
      // An OOM kill inside a watched unit is the unit's (a history one too, for the timeline; it
      // is counted to the unit only when new).
      if (p->unit_tracker && e.has_oom() && !e.before_agent()) {
        const std::string& memcg =
            e.oom().task_memcg().empty() ? e.oom().oom_memcg() : e.oom().task_memcg();
        const v1::OomKill& o = e.oom();
        const uint64_t victim_kb = o.anon_rss_kb() + o.file_rss_kb() + o.shmem_rss_kb();
        e.set_unit(p->unit_tracker->AttributeOomKill(
            memcg, static_cast<uint64_t>(e.time_unix_ms()) * 1000, victim_kb << 10));
      }
      LogInfo(absl::StrCat("kernel", e.before_agent() ? " (before the agent started)" : "", ": ",
                           e.kind(), ": ", e.message(),
                           e.command_id().empty() ? "" : " [command " + e.command_id() + "]",
                           e.unit().empty() ? "" : " [unit " + e.unit() + "]"));
      // A new OOM kill moves the host's OOM counter: sample it now. An old one changed nothing.
      bool oom = e.kind() == "oom" && !e.before_agent();
      v1::SequencedItem item;
      *item.mutable_kernel_event() = std::move(e);
      absl::Status s = p->outbox->AppendSequenced(std::move(item)).status();
      if (oom) p->reporter->SampleSoon();
      return s;
    };
    absl::StatusOr<std::unique_ptr<KernelWatcher>> watcher =
        KernelWatcher::Start(kernel, std::move(hooks));
    if (watcher.ok()) {
      impl->kernel = *std::move(watcher);
    } else {
      LogWarning(
          absl::StrCat("no kernel events (OOM kills, oopses): ", watcher.status().message()));
    }
  }
  LogInfo(absl::StrCat("kfleet-agent ", kAgentVersion, " host ", session.name, " (", host_id,
                       "), controller ", options.controller, ", state in ", options.state_dir));
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

void Agent::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  if (impl_->renewer) impl_->renewer->Stop();
  // No new runs; the cancelled ones still record their ends (the next start keeps the spacing).
  impl_->schedules->Stop();
  impl_->commands->CancelAll("kfleet-agent is stopping");
  // Let the cancelled results reach the controller if it is there; they stay in the outbox if not.
  absl::Time deadline = absl::Now() + absl::Seconds(2);
  while (impl_->session->connected() && impl_->outbox->unacked_bytes() > 0 &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  if (impl_->kernel) impl_->kernel->Stop();
  if (impl_->units) impl_->units->Stop();
  impl_->own_server.reset();
  impl_->reporter->Stop();
  impl_->session->Stop();
  impl_->outbox->Close();
  // A clean stop: the next start is not an agent coming back from a kill.
  ::unlink(impl_->alive_path.c_str());
}

}  // namespace kfleet::agent
