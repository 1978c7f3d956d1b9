#include "controller/controller.h"

#include <unistd.h>

#include <map>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/daemon_config.h"
#include "common/executor.h"
#include "common/files.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "controller/api/fleet_service.h"
#include "controller/artifacts/artifact_index.h"
#include "controller/artifacts/artifact_service.h"
#include "controller/artifacts/blob_store.h"
#include "controller/fleet/agent_service.h"
#include "controller/fleet/change_feed.h"
#include "controller/fleet/fleet.h"
#include "controller/fleet/schedule_push.h"
#include "controller/fleet_metrics.h"
#include "controller/kernel_files.h"
#include "controller/local_builder.h"
#include "controller/logs/log_store.h"
#include "controller/provision/exec_provider.h"
#include "controller/provision/host_command.h"
#include "controller/provision/libvirt_provider.h"
#include "controller/provision/pool_config.h"
#include "controller/provision/pool_manager.h"
#include "controller/security/access_control.h"
#include "controller/security/access_service.h"
#include "controller/security/access_store.h"
#include "controller/security/certificate_authority.h"
#include "controller/security/enrol_service.h"
#include "controller/store/sqlite_store.h"

namespace kfleet::controller {

// Destroyed in reverse order of declaration: first the server (no new events), then the executor,
// which runs the work already due while everything that work uses still exists.
struct Controller::Impl {
  std::unique_ptr<AccessStore> access_store;
  std::unique_ptr<AccessControl> access;
  std::unique_ptr<CertificateAuthority> ca;
  std::unique_ptr<SqliteStore> store;
  std::unique_ptr<FleetMetrics> metrics;
  std::unique_ptr<BlobStore> blobs;
  std::unique_ptr<ArtifactIndex> artifact_index;
  std::unique_ptr<LogStore> logs;
  std::unique_ptr<ChangeFeed> feed;
  std::unique_ptr<Fleet> fleet;
  std::unique_ptr<SchedulePusher> schedule_pusher;
  std::unique_ptr<AgentServiceImpl> agent_service;
  std::unique_ptr<provision::PoolManager> pools;
  std::unique_ptr<FleetServiceImpl> fleet_service;
  std::unique_ptr<ArtifactServiceImpl> artifact_service;
  std::unique_ptr<EnrolServiceImpl> enrol_service;
  std::unique_ptr<AccessServiceImpl> access_service;
  std::unique_ptr<Executor> executor;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::thread reconciler;
  std::unique_ptr<LocalBuilder> builder;  // stopped before the server
  absl::Mutex mu;
  bool shut_down ABSL_GUARDED_BY(mu) = false;

  // Gives waiting commands hosts and lets the pools catch up, until shut down.
  void Reconcile(absl::Duration interval) {
    absl::MutexLock lock(&mu);
    while (!shut_down) {
      mu.AwaitWithTimeout(absl::Condition(&shut_down), interval);
      if (shut_down) break;
      mu.Unlock();
      absl::StatusOr<std::vector<Dispatch>> dispatch =
          store->AssignWaiting(absl::ToUnixMillis(absl::Now()));
      if (dispatch.ok()) {
        for (Dispatch& d : *dispatch) {
          v1::ControllerMessage m;
          *m.mutable_command() = std::move(d.command);
          fleet->Send(d.host_id, std::move(m));
        }
        if (!dispatch->empty()) feed->Publish();
      }
      pools->Tick(absl::Now());
      mu.Lock();
    }
  }
};

namespace {

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// Next to this executable: the build tree (build/controller/ -> build/agent/, build/share/kfleet,
// whose folders link to deploy/) or an install prefix (bin/ -> bin/, share/kfleet). Both keep
// share/kfleet at ../share/kfleet (cmake/install.cmake).
std::string FindBeside(const std::vector<std::string>& relative) {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  std::string dir = Dirname(std::string(buf, n));
  for (const std::string& r : relative) {
    if (Exists(dir + "/" + r)) return dir + "/" + r;
  }
  return "";
}

// Finds or builds a guest image with its recipe (content-addressed cache under `cache_dir`).
absl::StatusOr<provision::BootImage> BuildImage(const std::string& name, const std::string& recipes,
                                                const std::string& agent,
                                                const std::string& cache_dir) {
  if (name != "tiny" && name != "debian") {
    return absl::InvalidArgumentError(
        absl::StrCat("no image \"", name, "\": the images are tiny and debian"));
  }
  std::string script = absl::StrCat(recipes, "/", name, "/build.sh");
  if (recipes.empty() || !Exists(script)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the image recipe deploy/image/", name,
                     "/build.sh was not found beside this executable (../share/kfleet/image): pass "
                     "--image-recipes DIR"));
  }
  if (agent.empty() || !Exists(agent)) {
    return absl::FailedPreconditionError(
        "the kfleet-agent binary to bake into images was not found: pass --agent-binary PATH");
  }
  LogInfo(absl::StrCat("building (or finding) the ", name, " image with ", script));
  ASSIGN_OR_RETURN(provision::HostCommandResult r,
                   provision::RunHostCommand({"bash", script, "--agent", agent, "--out", cache_dir},
                                             absl::Minutes(30)));
  std::string out = r.output;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  std::string dir = out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
  bool is_disk = name == "debian";
  if (r.exit_code != 0 || !Exists(dir + (is_disk ? "/disk.qcow2" : "/vmlinuz"))) {
    return absl::InternalError(absl::StrCat("building the ", name, " image failed (exit ",
                                            r.exit_code, "):\n",
                                            out.substr(out.size() > 4000 ? out.size() - 4000 : 0)));
  }
  if (is_disk) return provision::BootImage{"", "", dir + "/disk.qcow2", ""};
  return provision::BootImage{dir + "/vmlinuz", dir + "/initrd.img", "", "panic=-1 quiet"};
}

// The local builder's host id, made once in its state dir (the agent reads the same file).
absl::StatusOr<std::string> BuilderHostId(const std::string& state_dir) {
  const std::string path = state_dir + "/host_id";
  if (Exists(path)) {
    ASSIGN_OR_RETURN(std::string id, ReadFile(path, 256));
    while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
    if (IsValidId(id)) return id;
  }
  std::string id = NewId("h-");
  RETURN_IF_ERROR(WriteFileAtomic(path, id + "\n"));
  return id;
}

}  // namespace

Controller::Controller(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<Controller>> Controller::Start(const ControllerOptions& options) {
  if (options.state_dir.empty()) {
    return absl::InvalidArgumentError(
        "--state-dir is required: a directory for kfleet.db and logs");
  }
  if (!options.domain_prefix.empty() &&
      (options.domain_prefix.size() > 32 || !IsValidId(options.domain_prefix))) {
    return absl::InvalidArgumentError(absl::StrCat("--domain-prefix \"", options.domain_prefix,
                                                   "\" must be 1-32 characters of [A-Za-z0-9._-]"));
  }
  auto impl = std::make_unique<Impl>();
  RETURN_IF_ERROR(MakeDirs(options.state_dir + "/logs"));
  const bool insecure = options.security.insecure;
  ASSIGN_OR_RETURN(impl->access_store, AccessStore::Open(options.state_dir + "/access.db"));
  impl->access = std::make_unique<AccessControl>(impl->access_store.get(), insecure);
  RETURN_IF_ERROR(impl->access->Load());
  TransportSecurity server_security;
  server_security.insecure = insecure;
  if (!insecure) {
    CertificateAuthorityOptions ca;
    ca.state_dir = options.state_dir;
    ca.listen = options.listen;
    ca.extra_sans = options.tls_sans;
    ca.cert_file = options.tls_cert;
    ca.key_file = options.tls_key;
    ca.ca_file = options.tls_ca;
    ca.ca_key_file = options.tls_ca_key;
    ca.agent_ttl = options.agent_cert_ttl;
    ASSIGN_OR_RETURN(impl->ca, CertificateAuthority::Load(ca, impl->access_store.get()));
    server_security.ca_pem = impl->ca->ca_pem();
    server_security.cert_pem = impl->ca->server_chain_pem();
    server_security.key_pem = impl->ca->server_key_pem();
    AccessControl* access = impl->access.get();
    server_security.check_client = [access](absl::string_view pem) {
      return access->CheckHandshake(pem);
    };
  }
  ASSIGN_OR_RETURN(auto creds, MakeServerCredentials(server_security, options.listen));
  ASSIGN_OR_RETURN(impl->store, SqliteStore::Open(options.state_dir + "/kfleet.db"));
  RETURN_IF_ERROR(impl->store->MarkAllOffline());
  impl->logs = std::make_unique<LogStore>(options.state_dir + "/logs");
  impl->executor = std::make_unique<Executor>(options.executor_threads);
  impl->feed = std::make_unique<ChangeFeed>(impl->executor.get());
  impl->fleet =
      std::make_unique<Fleet>(impl->store.get(), impl->feed.get(),
                              LivenessSettings{options.heartbeat, options.offline_after_missed});
  BlobStore::Options blob_options;
  blob_options.root = options.state_dir + "/artifacts";
  ASSIGN_OR_RETURN(impl->blobs, BlobStore::Open(blob_options));
  SqliteStore* store = impl->store.get();
  ASSIGN_OR_RETURN(
      impl->artifact_index,
      ArtifactIndex::Open(options.state_dir + "/artifacts/index.db", impl->blobs.get(),
                          [store](const std::string& command_id) -> absl::StatusOr<CommandOwner> {
                            ASSIGN_OR_RETURN(v1::CommandInfo c, store->GetCommand(command_id));
                            return CommandOwner{c.job_id(), c.host_name()};
                          }));
  ArtifactIndex* artifact_index = impl->artifact_index.get();
  FleetMetricsOptions metrics_options;
  metrics_options.store = impl->store.get();
  metrics_options.listen = options.metrics_listen;
  metrics_options.file_sd_path = options.state_dir + "/prometheus/hosts.json";
  ASSIGN_OR_RETURN(impl->metrics, FleetMetrics::Start(metrics_options));
  SessionDeps session_deps{
      impl->store.get(),
      impl->logs.get(),
      impl->fleet.get(),
      impl->executor.get(),
      impl->feed.get(),
      [artifact_index](const v1::KernelBuild& build, const std::string& command_id) {
        return artifact_index->RecordBuild(build, command_id);
      }};
  session_deps.observer = impl->metrics.get();
  impl->fleet->SetTestResultsObserver(
      [metrics = impl->metrics.get()](const std::vector<StoredTestResult>& results) {
        metrics->OnTestResults(results);
      });
  session_deps.metrics_interval = options.metrics_interval;
  session_deps.access = impl->access.get();
  session_deps.access_store = impl->access_store.get();
  impl->schedule_pusher = std::make_unique<SchedulePusher>(impl->store.get(), impl->fleet.get());
  session_deps.schedules = impl->schedule_pusher.get();
  impl->agent_service = std::make_unique<AgentServiceImpl>(session_deps);
  impl->artifact_service = std::make_unique<ArtifactServiceImpl>(
      ArtifactServiceImpl::Deps{impl->blobs.get(), impl->artifact_index.get(), impl->executor.get(),
                                impl->access.get(), impl->store.get()});
  AccessDeps access_deps{impl->access_store.get(), impl->access.get(), impl->ca.get(),
                         impl->executor.get(),     impl->store.get(),  impl->fleet.get(),
                         impl->feed.get()};
  impl->enrol_service = std::make_unique<EnrolServiceImpl>(access_deps);
  impl->access_service = std::make_unique<AccessServiceImpl>(access_deps);

  std::vector<provision::PoolConfig> pools = provision::DefaultPools();
  if (!options.config_file.empty()) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(options.config_file, 1 << 20));
    ASSIGN_OR_RETURN(pools,
                     provision::ParsePoolConfig(text, options.config_file, RegisteredFlagKeys()));
  }
  std::string agent = !options.agent_binary.empty()
                          ? options.agent_binary
                          : FindBeside({"../agent/kfleet-agent", "kfleet-agent"});
  std::string recipes = !options.image_recipes.empty() ? options.image_recipes
                                                       : FindBeside({"../share/kfleet/image"});
  std::string state_dir = options.state_dir;
  std::string image_cache =
      options.image_cache.empty() ? options.state_dir + "/images" : options.image_cache;
  auto built = std::make_shared<std::map<std::string, provision::BootImage>>();
  provision::PoolManager::Deps pool_deps;
  pool_deps.store = impl->store.get();
  pool_deps.logs = impl->logs.get();
  pool_deps.fleet = impl->fleet.get();
  pool_deps.feed = impl->feed.get();
  SelfMetrics* self_metrics = &impl->metrics->self();
  pool_deps.make_provider = [state_dir, domain_prefix = options.domain_prefix,
                             self_metrics](const provision::PoolConfig& pool)
      -> absl::StatusOr<std::unique_ptr<provision::Provider>> {
    if (pool.provider == "exec") {
      provision::ExecProviderOptions o;
      o.create = pool.exec_create;
      o.destroy = pool.exec_destroy;
      o.power_cycle = pool.exec_power_cycle;
      o.work_dir = state_dir + "/exec-provider";
      return CountProviderOperations(std::make_unique<provision::ExecProvider>(o), "exec",
                                     self_metrics);
    }
    provision::LibvirtOptions o;
    o.uri = pool.uri;
    o.domain_prefix = pool.domain_prefix.empty() ? domain_prefix : pool.domain_prefix;
    o.work_dir = state_dir + "/guests";
    ASSIGN_OR_RETURN(std::unique_ptr<provision::LibvirtProvider> p,
                     provision::LibvirtProvider::Open(o));
    return CountProviderOperations(std::move(p), "libvirt", self_metrics);
  };
  // Only the reconcile thread calls it, so the cache needs no lock.
  pool_deps.image = [built = std::move(built), recipes, agent,
                     image_cache](const std::string& name) -> absl::StatusOr<provision::BootImage> {
    auto it = built->find(name);
    if (it != built->end()) return it->second;
    ASSIGN_OR_RETURN(provision::BootImage image, BuildImage(name, recipes, agent, image_cache));
    (*built)[name] = image;
    return image;
  };
  BlobStore* blobs = impl->blobs.get();
  pool_deps.kernel_boot_files =
      [image = pool_deps.image, blobs, kernels = options.state_dir + "/kernels"](
          const v1::KernelBuild& build,
          const std::string& image_name) -> absl::StatusOr<provision::BootImage> {
    ASSIGN_OR_RETURN(provision::BootImage base, image(image_name));
    return KernelBootFiles(
        build, base,
        [blobs](const std::string& sha256) -> absl::StatusOr<std::string> {
          ASSIGN_OR_RETURN(BlobStat stat, blobs->Stat(sha256));
          if (!stat.stored) {
            return absl::NotFoundError(
                absl::StrCat("blob ", sha256.substr(0, 12), " is not in the artifact store"));
          }
          return blobs->BlobPath(sha256);
        },
        kernels);
  };
  if (impl->ca != nullptr && impl->ca->can_issue()) {
    // Each guest gets a token of its own, bound to its name and host id, through fw_cfg. It
    // may be used again by that guest only (a tiny guest's state is gone after a reboot), and
    // is forgotten with its certificates when the guest is destroyed.
    AccessStore* access_store = impl->access_store.get();
    AccessControl* access = impl->access.get();
    std::string ca_pem = impl->ca->ca_pem();
    pool_deps.enrol = [access_store, ca_pem](
                          const v1::Guest& guest,
                          const Labels& labels) -> absl::StatusOr<provision::GuestEnrolment> {
      ASSIGN_OR_RETURN(NewToken t, MakeToken(access_store, labels, guest.name(), guest.host_id(),
                                             /*uses=*/-1, absl::Hours(24 * 30), "pool"));
      return provision::GuestEnrolment{t.token, ca_pem};
    };
    pool_deps.forget = [access_store, access](const v1::Guest& guest) {
      absl::StatusOr<std::vector<CertRecord>> revoked =
          access_store->Revoke("agent", guest.host_id(), absl::ToUnixMillis(absl::Now()));
      if (revoked.ok()) {
        std::vector<std::string> serials;
        for (const CertRecord& c : *revoked) serials.push_back(c.serial);
        access->MarkRevoked(serials);
      }
      access_store->DeleteTokensForHost(guest.host_id()).IgnoreError();
    };
  }
  impl->pools = std::make_unique<provision::PoolManager>(std::move(pools), std::move(pool_deps));
  impl->fleet_service = std::make_unique<FleetServiceImpl>(FleetServiceImpl::Deps{
      impl->store.get(), impl->logs.get(), impl->fleet.get(), impl->executor.get(),
      impl->feed.get(), impl->pools.get(), &impl->metrics->samples(), impl->access.get(),
      impl->schedule_pusher.get()});

  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, creds, &impl->port);
  builder.RegisterService(impl->agent_service.get());
  builder.RegisterService(impl->fleet_service.get());
  builder.RegisterService(impl->artifact_service.get());
  builder.RegisterService(impl->enrol_service.get());
  builder.RegisterService(impl->access_service.get());
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             kKeepaliveMinServerPingIntervalMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen,
                     ": the address is in use or not local; pick another with --listen HOST:PORT"));
  }
  impl->pools->set_controller_port(impl->port);
  std::string local_host = HostOfAddress(options.listen);
  if (local_host.empty() || local_host == "0.0.0.0" || local_host == "::") local_host = "127.0.0.1";
  const std::string local_address = absl::StrCat(
      local_host.find(':') != std::string::npos ? absl::StrCat("[", local_host, "]") : local_host,
      ":", impl->port);
  if (impl->ca != nullptr) {
    RETURN_IF_ERROR(impl->ca->WriteKctlConfig(local_address));
    LogInfo(absl::StrCat("TLS: CA fingerprint ", impl->ca->fingerprint(),
                         "; use kctl with: kctl --config ", impl->ca->kctl_config_path(),
                         " hosts"));
  }
  if (options.local_builder) {
    LocalBuilderOptions b;
    b.agent_binary = agent;
    b.controller = local_address;
    b.insecure = insecure;
    b.state_dir = options.state_dir + "/builder";
    if (impl->ca != nullptr && impl->ca->can_issue()) {
      // The builder enrols like any agent, with a token bound to its name and host id.
      RETURN_IF_ERROR(MakeDirs(b.state_dir));
      ASSIGN_OR_RETURN(std::string host_id, BuilderHostId(b.state_dir));
      ASSIGN_OR_RETURN(NewToken t,
                       MakeToken(impl->access_store.get(), {{"role", "builder"}}, b.name, host_id,
                                 /*uses=*/-1, absl::Hours(1), "controller"));
      b.token_file = b.state_dir + "/enrol.token";
      RETURN_IF_ERROR(WriteFileAtomic(b.token_file, t.token + "\n"));
      b.ca_cert_file = options.state_dir + "/pki/ca.crt";
    }
    b.kernel_dir = options.builder_kernel_dir;
    b.log_file = options.state_dir + "/builder.log";
    ASSIGN_OR_RETURN(impl->builder, LocalBuilder::Start(std::move(b)));
  }
  impl->fleet->Start();
  Impl* raw = impl.get();
  impl->reconciler =
      std::thread([raw, interval = options.reconcile_interval] { raw->Reconcile(interval); });
  LogInfo(absl::StrCat("kfleet-controller listening on ",
                       options.listen.substr(0, options.listen.rfind(':')), ":", impl->port,
                       ", state in ", options.state_dir));
  return std::unique_ptr<Controller>(new Controller(std::move(impl)));
}

Controller::~Controller() { Shutdown(); }

int Controller::port() const { return impl_->port; }

int Controller::metrics_port() const { return impl_->metrics->port(); }

std::string Controller::kctl_config() const {
  return impl_->ca ? impl_->ca->kctl_config_path() : "";
}

std::string Controller::ca_fingerprint() const { return impl_->ca ? impl_->ca->fingerprint() : ""; }

void Controller::Wait() { impl_->server->Wait(); }

void Controller::Shutdown() {
  {
    absl::MutexLock lock(&impl_->mu);
    if (impl_->shut_down) return;
    impl_->shut_down = true;
  }
  impl_->builder.reset();
  impl_->fleet->Stop();
  if (impl_->reconciler.joinable()) impl_->reconciler.join();
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

}  // namespace kfleet::controller
