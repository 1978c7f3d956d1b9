#include "agent/agent.h"

#include <sys/reboot.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/commands/command_book.h"
#include "agent/commands/command_manager.h"
#include "agent/host/facts.h"
#include "agent/outbox/outbox.h"
#include "agent/session/session_client.h"
#include "common/credentials.h"
#include "common/files.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "kfleet/v1/artifacts.grpc.pb.h"

namespace kfleet::agent {

// Declared in construction order; destroyed in reverse (session first, outbox last).
struct Agent::Impl {
  std::unique_ptr<kfleet::v1::ArtifactService::Stub> artifacts;
  std::unique_ptr<Outbox> outbox;
  std::unique_ptr<CommandBook> book;
  std::unique_ptr<CommandManager> commands;
  std::unique_ptr<SessionClient> session;
  bool stopped = false;
};

namespace {

absl::Status RebootHost() {
  ::sync();
  if (::reboot(RB_AUTOBOOT) != 0) return ErrnoStatus("reboot(2)", errno);
  return absl::OkStatus();  // not reached
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
  OutboxOptions outbox_options;
  outbox_options.dir = options.state_dir + "/outbox";
  outbox_options.max_bytes = options.outbox_max_bytes;
  ASSIGN_OR_RETURN(impl->outbox, Outbox::Open(outbox_options));
  ASSIGN_OR_RETURN(CommandBook book, CommandBook::Open(options.state_dir + "/commands"));
  impl->book = std::make_unique<CommandBook>(std::move(book));
  // Kernel steps move artifacts on a channel of their own, beside the session.
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel,
                   MakeChannel(options.security, options.controller));
  impl->artifacts = kfleet::v1::ArtifactService::NewStub(channel);
  std::string name = options.name.empty() ? CollectFacts().hostname() : options.name;
  CommandManager::Options command_options{options.state_dir + "/work", options.kill_grace,
                                          options.allow_reboot, RebootHost};
  command_options.kernel_dir =
      options.kernel_dir.empty() ? options.state_dir + "/kernel" : options.kernel_dir;
  command_options.artifacts = impl->artifacts.get();
  command_options.host_name = name;
  impl->commands = std::make_unique<CommandManager>(impl->book.get(), impl->outbox.get(),
                                                    std::move(command_options));
  RETURN_IF_ERROR(impl->commands->RecoverInterrupted());

  SessionOptions session;
  session.controller = options.controller;
  session.security = options.security;
  session.host_id = host_id;
  session.name = name;
  session.labels = options.labels;
  session.agent_version = kAgentVersion;
  session.reconnect_max = options.reconnect_max;
  impl->session =
      std::make_unique<SessionClient>(session, impl->outbox.get(), impl->commands.get());
  RETURN_IF_ERROR(impl->session->Start());
  LogInfo(absl::StrCat("kfleet-agent ", kAgentVersion, " host ", session.name, " (", host_id,
                       "), controller ", options.controller, ", state in ", options.state_dir));
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

void Agent::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->commands->CancelAll("kfleet-agent is stopping");
  // Let the cancelled results reach the controller if it is there; they stay in the outbox if not.
  absl::Time deadline = absl::Now() + absl::Seconds(2);
  while (impl_->session->connected() && impl_->outbox->unacked_bytes() > 0 &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  impl_->session->Stop();
  impl_->outbox->Close();
}

}  // namespace kfleet::agent
