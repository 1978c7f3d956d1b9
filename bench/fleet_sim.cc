// The fleet simulator: what a fleet of N agents costs a real kfleet-controller. One process holds
// N agent sessions over loopback, each on a connection of its own like a real kfleet-agent's,
// speaking the agent protocol of proto/kfleet/v1/agent.proto: Hello, heartbeats at the interval
// the Welcome gives, a MetricsBatch of node_exporter-like samples every metrics interval
// (controller/metrics/fake_node_samples.h), and, for each Command, the sequenced items a real
// agent sends (accepted; then started, the output as a log chunk, finished), numbered after the
// Welcome's last_seq. Sessions run on a few completion-queue threads, not a thread each.
//
// The controller is started with a temporary state dir (removed at the end) and --insecure on
// 127.0.0.1, or given with --controller (then --controller-pid and --metrics-address say where
// to read its figures). Measured, for each N (a fresh controller each):
//
//   registration: from the first connect until ListHosts shows all N ONLINE; the first repeat
//     registers new hosts over new connections, the next ones end every session and register
//     the same hosts again on the same connections (what a controller restart brings);
//   idle: controller RSS (VmRSS) and CPU (utime + stime) over --idle-seconds split in one window
//     per repeat; CPU per heartbeat is the controller's CPU over the heartbeats sent meanwhile
//     (metrics batches and keepalive pings included: they are the idle fleet's work too);
//   dispatch: FleetService.SubmitJob of `exec --all -- true`, as `kctl exec --all -- true` sends
//     it; per session, the time from the submit to the Command arriving (p50, p99, last), and the
//     time until the job ended, i.e. the last result was stored (the job's finished_unix_ms);
//   throughput: --rounds jobs of `echo fleet_sim` to all hosts submitted back to back, commands
//     stored per second from the first submit to the last job's end;
//   scrape: GET /metrics of the controller, time and size (every host's samples included).
//
//   ./build/bench/fleet_sim [--agents N]... [--repeats 5] [--quick] [-o json]
#include <arpa/inet.h>
#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/credentials.h"
#include "controller/metrics/fake_node_samples.h"
#include "kfleet/v1/agent.grpc.pb.h"
#include "kfleet/v1/fleet.grpc.pb.h"

namespace kfleet::bench {
namespace {

using kfleet::v1::AgentMessage;
using kfleet::v1::ControllerMessage;

constexpr char kHostIdPrefix[] = "fleet-sim-";
constexpr uint32_t kProtocolMajor = 1;
constexpr uint32_t kProtocolMinor = 1;

struct Options {
  std::vector<int> agents;  // empty: 100 and 1000
  int repeats = 5;
  bool quick = false;
  bool json = false;
  double idle_seconds = 60;
  int rounds = 5;
  int cq_threads = 2;
  int connect_window = 200;
  std::string heartbeat;         // passed to a controller we start; empty: its default
  std::string metrics_interval;  // likewise
  std::string controller_binary;
  std::string controller;  // HOST:PORT of a running controller; empty: start one
  int controller_pid = 0;
  std::string metrics_address;  // HOST:PORT of its /metrics
};

// ---- /proc and processes ------------------------------------------------------------------

struct MemoryFigures {
  double rss_mib = 0;
  double hwm_mib = 0;
};

MemoryFigures ReadMemory(int pid) {
  MemoryFigures m;
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    int64_t kb = 0;
    absl::string_view v = line;
    if (absl::ConsumePrefix(&v, "VmRSS:")) {
      if (absl::SimpleAtoi(absl::StripSuffix(absl::StripAsciiWhitespace(v), " kB"), &kb))
        m.rss_mib = kb / 1024.0;
    } else if (absl::ConsumePrefix(&v, "VmHWM:")) {
      if (absl::SimpleAtoi(absl::StripSuffix(absl::StripAsciiWhitespace(v), " kB"), &kb))
        m.hwm_mib = kb / 1024.0;
    }
  }
  return m;
}

// utime + stime of `pid`, in seconds.
double CpuSeconds(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream rest(text.substr(paren + 2));
  std::string field;
  double ticks = 0;
  // Fields after the command: state is field 3; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i >= 14) ticks += std::strtod(field.c_str(), nullptr);
  }
  return ticks / sysconf(_SC_CLK_TCK);
}

double SelfCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

absl::StatusOr<int> FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return absl::InternalError(absl::StrCat("cannot find a free port: ", strerror(errno)));
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// Enough descriptors for `sessions` connections here and in a controller we start (it inherits
// the limit).
absl::Status RaiseFileLimit(int sessions) {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  rlim_t want = static_cast<rlim_t>(sessions) + 1024;
  if (lim.rlim_max < want) lim.rlim_max = want;  // only root may; checked below
  if (lim.rlim_cur < want) lim.rlim_cur = std::max(want, std::min(lim.rlim_max, want * 2));
  if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
    getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    if (lim.rlim_cur < want) {
      return absl::ResourceExhaustedError(
          absl::StrCat(sessions, " sessions need ", want, " open files; the hard limit is ",
                       lim.rlim_max, ": raise it (ulimit -Hn) or run fewer --agents"));
    }
  }
  return absl::OkStatus();
}

// GET /metrics over plain HTTP/1.0; the body.
absl::StatusOr<std::string> HttpGet(const std::string& address, const std::string& path) {
  size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(absl::StrCat("bad metrics address ", address));
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect to ", address, ": ", strerror(errno)));
  }
  std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", address, "\r\n\r\n");
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError("cannot send the HTTP request");
  }
  std::string response;
  char buf[1 << 16];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) response.append(buf, n);
  close(fd);
  size_t body = response.find("\r\n\r\n");
  if (!absl::StartsWith(response, "HTTP/1.") || body == std::string::npos ||
      response.find(" 200 ") > body) {
    return absl::UnavailableError(
        absl::StrCat("GET ", path, " from ", address, ": ", response.substr(0, 100)));
  }
  return response.substr(body + 4);
}

// ---- the controller ----------------------------------------------------------------------

class ControllerProcess {
 public:
  ~ControllerProcess() { Stop(); }

  absl::Status Start(const Options& options) {
    char tmpl[] = "/tmp/fleet_sim.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
    dir_ = tmpl;
    absl::StatusOr<int> port = FreePort();
    if (!port.ok()) return port.status();
    absl::StatusOr<int> metrics_port = FreePort();
    if (!metrics_port.ok()) return metrics_port.status();
    address_ = absl::StrCat("127.0.0.1:", *port);
    metrics_address_ = absl::StrCat("127.0.0.1:", *metrics_port);
    std::vector<std::string> argv = {
        options.controller_binary, "--listen",       address_,
        "--metrics-listen",        metrics_address_, "--state-dir",
        dir_ + "/state",           "--insecure",     "--local-builder=false"};
    if (!options.heartbeat.empty()) argv.push_back("--heartbeat=" + options.heartbeat);
    if (!options.metrics_interval.empty())
      argv.push_back("--metrics-interval=" + options.metrics_interval);
    log_ = dir_ + "/controller.log";
    pid_ = fork();
    if (pid_ < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
    if (pid_ == 0) {
      // The controller ends with this process, however it ends.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      FILE* log = fopen(log_.c_str(), "w");
      if (log != nullptr) {
        dup2(fileno(log), 1);
        dup2(fileno(log), 2);
      }
      std::vector<char*> args;
      for (std::string& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      fprintf(stderr, "cannot run %s: %s\n", args[0], strerror(errno));
      _exit(127);
    }
    return absl::OkStatus();
  }

  bool Alive() {
    if (pid_ <= 0) return false;
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      return false;
    }
    return true;
  }

  std::string LogTail() const {
    std::ifstream in(log_);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.size() > 3000 ? text.substr(text.size() - 3000) : text;
  }

  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      absl::Time deadline = absl::Now() + absl::Seconds(20);
      int status;
      while (waitpid(pid_, &status, WNOHANG) == 0) {
        if (absl::Now() > deadline) {
          kill(pid_, SIGKILL);
          waitpid(pid_, &status, 0);
          break;
        }
        absl::SleepFor(absl::Milliseconds(20));
      }
      pid_ = 0;
    }
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      dir_.clear();
    }
  }

  int pid() const { return pid_; }
  const std::string& address() const { return address_; }
  const std::string& metrics_address() const { return metrics_address_; }

 private:
  std::string dir_;
  std::string log_;
  std::string address_;
  std::string metrics_address_;
  int pid_ = 0;
};

// ---- simulated agents --------------------------------------------------------------------

class SimFleet;

// One agent session. Connect() is called by the main thread while the session is idle; every
// other member runs on the thread of the session's completion queue, one event at a time.
class SimSession {
 public:
  SimSession(SimFleet* fleet, int index, std::shared_ptr<grpc::Channel> channel,
             grpc::CompletionQueue* cq)
      : fleet_(fleet),
        index_(index),
        host_id_(absl::StrFormat("%s%05d", kHostIdPrefix, index)),
        stub_(v1::AgentService::NewStub(std::move(channel))),
        cq_(cq) {}

  void Connect();
  // Any thread: ends the stream; the session reports itself done once every operation is back.
  void Cancel() {
    absl::MutexLock lock(&ctx_mu_);
    if (ctx_ != nullptr) ctx_->TryCancel();
  }

  enum class Op { kStart, kRead, kWrite, kFinish, kAlarm };
  // What the completion queue hands back: the session and which of its operations completed.
  struct Tag {
    SimSession* session;
    Op op;
  };
  void OnEvent(Op op, bool ok);

 private:
  void Queue(AgentMessage message);
  void StartNextWrite();
  void Handle(const ControllerMessage& message);
  void Answer(const v1::Command& command);
  void Tick();
  void Arm();
  void MaybeFinish();
  void MaybeDone();

  SimFleet* const fleet_;
  const int index_;
  const std::string host_id_;
  const std::unique_ptr<v1::AgentService::Stub> stub_;
  grpc::CompletionQueue* const cq_;

  absl::Mutex ctx_mu_;
  std::unique_ptr<grpc::ClientContext> ctx_ ABSL_GUARDED_BY(ctx_mu_);
  std::unique_ptr<grpc::ClientAsyncReaderWriter<AgentMessage, ControllerMessage>> stream_;
  Tag start_tag_{this, Op::kStart};
  Tag read_tag_{this, Op::kRead};
  Tag write_tag_{this, Op::kWrite};
  Tag finish_tag_{this, Op::kFinish};
  Tag alarm_tag_{this, Op::kAlarm};
  ControllerMessage in_;
  std::deque<AgentMessage> out_;
  bool writing_ = false;
  bool read_done_ = false;
  bool finishing_ = false;
  bool finished_ = false;
  bool alarm_pending_ = false;
  bool welcomed_ = false;
  grpc::Status status_;
  std::unique_ptr<grpc::Alarm> alarm_;
  absl::Duration heartbeat_ = absl::Seconds(10);
  absl::Duration metrics_interval_ = absl::ZeroDuration();
  absl::Time next_heartbeat_;
  absl::Time next_metrics_ = absl::InfiniteFuture();
  int64_t metrics_round_ = 0;
  // Kept across streams, as an agent's outbox keeps it.
  uint64_t next_seq_ = 1;
  uint64_t acked_seq_ = 0;
  // Items messages not acknowledged yet, by their highest seq: sent again after a reconnect.
  std::deque<std::pair<uint64_t, AgentMessage>> unacked_;
};

// The N sessions, their completion-queue threads, and what they saw.
class SimFleet {
 public:
  SimFleet(const std::string& address, int n, int cq_threads) {
    for (int i = 0; i < cq_threads; ++i) cqs_.push_back(std::make_unique<grpc::CompletionQueue>());
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    args.SetMaxReceiveMessageSize(kMaxMessageBytes);
    args.SetMaxSendMessageSize(kMaxMessageBytes);
    // A connection per session, as each agent has its own.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    for (int i = 0; i < n; ++i) {
      auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
      sessions_.push_back(
          std::make_unique<SimSession>(this, i, std::move(channel), cqs_[i % cqs_.size()].get()));
    }
    reconnect_thread_ = std::thread([this] { ReconnectLoop(); });
    for (auto& cq : cqs_) {
      threads_.emplace_back([q = cq.get()] {
        void* tag;
        bool ok;
        while (q->Next(&tag, &ok)) {
          auto* t = static_cast<SimSession::Tag*>(tag);
          t->session->OnEvent(t->op, ok);
        }
      });
    }
  }

  ~SimFleet() {
    DisconnectAll();
    {
      absl::MutexLock lock(&mu_);
      shutdown_ = true;
    }
    reconnect_thread_.join();
    for (auto& cq : cqs_) cq->Shutdown();
    for (auto& t : threads_) t.join();
  }

  int size() const { return static_cast<int>(sessions_.size()); }

  // Connects every session, at most `window` waiting for their Welcome at a time; returns once
  // all are welcomed, or an error if a session ended first.
  absl::Status ConnectAll(int window, absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    {
      absl::MutexLock lock(&mu_);
      failures_ = 0;
    }
    for (auto& s : sessions_) {
      absl::MutexLock lock(&mu_);
      auto room = [this, window]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return waiting_ < window || failures_ > 0;
      };
      if (!mu_.AwaitWithDeadline(absl::Condition(&room), deadline) || failures_ > 0) break;
      ++waiting_;
      ++live_;
      s->Connect();  // under mu_: see DisconnectAll
    }
    absl::MutexLock lock(&mu_);
    int n = size();
    auto all = [this, n]()
                   ABSL_SHARED_LOCKS_REQUIRED(mu_) { return welcomed_ == n || failures_ > 0; };
    mu_.AwaitWithDeadline(absl::Condition(&all), deadline);
    if (welcomed_ == n) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat(welcomed_, " of ", n, " sessions welcomed",
                                               failures_ > 0 ? "; a session ended: " : "",
                                               last_failure_));
  }

  // Ends every session and waits until all are idle. Sessions connect under mu_, and none is
  // queued for a reconnect once stopping_ is set, so every live session is cancelled.
  void DisconnectAll() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      reconnects_due_.clear();
      live_ -= queued_;
      queued_ = 0;
    }
    for (auto& s : sessions_) s->Cancel();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* live) { return *live == 0; }, &live_));
    stopping_ = false;
  }

  // Called by sessions on their threads.
  void OnWelcome() {
    absl::MutexLock lock(&mu_);
    --waiting_;
    ++welcomed_;
  }
  // A session that ends by itself reconnects a second later, as an agent does; one refused before
  // its Welcome for another reason than an unreachable controller fails the run.
  void OnDone(SimSession* session, bool welcomed, const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    if (welcomed) {
      --welcomed_;
    } else {
      --waiting_;
    }
    if (stopping_) {
      --live_;
      return;
    }
    if (welcomed || status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      ++reconnects;
      ++queued_;
      reconnects_due_.push_back({absl::Now() + absl::Seconds(1), session});
      return;
    }
    --live_;
    ++failures_;
    last_failure_ = absl::StrCat(status.error_code(), ": ", status.error_message());
  }
  void OnCommand(const v1::Command& command) {
    absl::Time now = absl::Now();
    absl::MutexLock lock(&arrivals_mu_);
    // A command sent again after a reconnect counts from its first arrival.
    arrivals_[command.job_id()].emplace(command.command_id(), now);
  }
  void OnProtocolError(const std::string& message) {
    absl::MutexLock lock(&mu_);
    ++protocol_errors_;
    last_protocol_error_ = message;
  }

  // When each session got a command of `job_id`.
  std::vector<absl::Time> TakeArrivals(const std::string& job_id) {
    absl::MutexLock lock(&arrivals_mu_);
    auto node = arrivals_.extract(job_id);
    std::vector<absl::Time> out;
    if (!node.empty()) {
      for (const auto& [id, t] : node.mapped()) out.push_back(t);
    }
    return out;
  }

  std::string ProtocolErrors() {
    absl::MutexLock lock(&mu_);
    if (protocol_errors_ == 0) return "";
    return absl::StrCat(protocol_errors_,
                        " protocol errors from the controller, the last: ", last_protocol_error_);
  }

  std::atomic<int64_t> heartbeats{0};
  std::atomic<int64_t> metrics_batches{0};
  std::atomic<int64_t> unacked_at_end{0};
  std::atomic<int64_t> reconnects{0};
  bool stopping() const { return stopping_; }

 private:
  void ReconnectLoop() {
    absl::MutexLock lock(&mu_);
    while (!shutdown_) {
      if (!reconnects_due_.empty() && reconnects_due_.front().first <= absl::Now()) {
        SimSession* s = reconnects_due_.front().second;
        reconnects_due_.pop_front();
        --queued_;
        ++waiting_;
        s->Connect();
        continue;
      }
      mu_.AwaitWithTimeout(absl::Condition(&shutdown_), absl::Milliseconds(100));
    }
  }

  std::vector<std::unique_ptr<grpc::CompletionQueue>> cqs_;
  std::vector<std::unique_ptr<SimSession>> sessions_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  std::thread reconnect_thread_;

  absl::Mutex mu_;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
  int welcomed_ ABSL_GUARDED_BY(mu_) = 0;
  int live_ ABSL_GUARDED_BY(mu_) = 0;
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
  int queued_ ABSL_GUARDED_BY(mu_) = 0;  // live sessions waiting in reconnects_due_
  std::deque<std::pair<absl::Time, SimSession*>> reconnects_due_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::string last_failure_ ABSL_GUARDED_BY(mu_);
  int protocol_errors_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_protocol_error_ ABSL_GUARDED_BY(mu_);

  absl::Mutex arrivals_mu_;
  std::map<std::string, std::map<std::string, absl::Time>> arrivals_ ABSL_GUARDED_BY(arrivals_mu_);
};

void SimSession::Connect() {
  out_.clear();
  writing_ = read_done_ = finishing_ = finished_ = alarm_pending_ = welcomed_ = false;
  status_ = grpc::Status();
  next_metrics_ = absl::InfiniteFuture();
  // The stream lives in its call's arena, which the context owns: the stream goes first.
  stream_.reset();
  grpc::ClientContext* ctx;
  {
    absl::MutexLock lock(&ctx_mu_);
    ctx_ = std::make_unique<grpc::ClientContext>();
    // As an agent retries its controller: wait for the connection rather than fail at once.
    ctx_->set_wait_for_ready(true);
    ctx = ctx_.get();
  }
  stream_ = stub_->PrepareAsyncSession(ctx, cq_);
  stream_->StartCall(&start_tag_);
}

void SimSession::OnEvent(Op op, bool ok) {
  switch (op) {
    case Op::kStart: {
      if (!ok) {
        read_done_ = true;
        MaybeFinish();
        return;
      }
      AgentMessage m;
      v1::Hello* hello = m.mutable_hello();
      hello->set_host_id(host_id_);
      hello->set_boot_id(absl::StrFormat("00000000-0000-4000-8000-%012d", index_));
      hello->set_name(controller::FakeHostName(index_));
      for (const auto& [k, v] : controller::FakeHostLabels(index_))
        (*hello->mutable_labels())[k] = v;
      v1::HostFacts* facts = hello->mutable_facts();
      facts->set_hostname(hello->name());
      facts->set_kernel_release("6.1.0-fleet-sim");
      facts->set_kernel_version("Linux version 6.1.0-fleet-sim");
      facts->set_os("fleet_sim");
      facts->set_arch("x86_64");
      facts->set_cpus(2);
      facts->set_memory_bytes(uint64_t{2} << 30);
      hello->set_agent_version("fleet_sim");
      hello->mutable_protocol()->set_major(kProtocolMajor);
      hello->mutable_protocol()->set_minor(kProtocolMinor);
      Queue(std::move(m));
      stream_->Read(&in_, &read_tag_);
      return;
    }
    case Op::kRead:
      if (!ok) {
        read_done_ = true;
        if (alarm_pending_) alarm_->Cancel();
        if (fleet_->stopping()) fleet_->unacked_at_end += unacked_.size();
        MaybeFinish();
        return;
      }
      Handle(in_);
      stream_->Read(&in_, &read_tag_);
      return;
    case Op::kWrite:
      writing_ = false;
      out_.pop_front();
      if (!ok) out_.clear();
      StartNextWrite();
      MaybeFinish();
      return;
    case Op::kFinish:
      finished_ = true;
      MaybeDone();
      return;
    case Op::kAlarm:
      alarm_pending_ = false;
      if (ok && !read_done_) {
        Tick();
        Arm();
      }
      MaybeDone();
      return;
  }
}

void SimSession::Queue(AgentMessage message) {
  out_.push_back(std::move(message));
  StartNextWrite();
}

void SimSession::StartNextWrite() {
  if (writing_ || read_done_ || out_.empty()) return;
  writing_ = true;
  stream_->Write(out_.front(), &write_tag_);
}

void SimSession::MaybeFinish() {
  if (!read_done_ || writing_ || finishing_) return;
  finishing_ = true;
  stream_->Finish(&status_, &finish_tag_);
}

void SimSession::MaybeDone() {
  if (!finished_ || alarm_pending_) return;
  finished_ = false;  // report once
  fleet_->OnDone(this, welcomed_, status_);
}

void SimSession::Handle(const ControllerMessage& message) {
  switch (message.msg_case()) {
    case ControllerMessage::kWelcome: {
      const v1::Welcome& w = message.welcome();
      welcomed_ = true;
      // As the outbox does: numbering continues after what the controller has stored.
      next_seq_ = std::max(next_seq_, w.last_seq() + 1);
      acked_seq_ = std::max(acked_seq_, w.last_seq());
      while (!unacked_.empty() && unacked_.front().first <= acked_seq_) unacked_.pop_front();
      for (const auto& [seq, m] : unacked_) Queue(m);
      heartbeat_ = absl::Milliseconds(w.settings().heartbeat_interval_ms());
      if (heartbeat_ <= absl::ZeroDuration()) heartbeat_ = absl::Seconds(10);
      metrics_interval_ = absl::Milliseconds(w.settings().metrics_interval_ms());
      absl::Time now = absl::Now();
      next_heartbeat_ = now;
      // Agents sample on their own schedule: spread the batches over the interval.
      if (metrics_interval_ > absl::ZeroDuration()) {
        next_metrics_ = now + metrics_interval_ * ((index_ * 7919 % 1000) / 1000.0);
      }
      fleet_->OnWelcome();
      Tick();
      Arm();
      return;
    }
    case ControllerMessage::kCommand:
      fleet_->OnCommand(message.command());
      Answer(message.command());
      return;
    case ControllerMessage::kAck:
      acked_seq_ = std::max(acked_seq_, message.ack().seq());
      while (!unacked_.empty() && unacked_.front().first <= acked_seq_) unacked_.pop_front();
      return;
    case ControllerMessage::kError:
      fleet_->OnProtocolError(message.error().message());
      return;
    default:  // Cancel: commands here end at once; schedules: none are run here
      return;
  }
}

// What a real agent sends for a command that runs at once: CommandAccepted alone (it is
// durable before anything runs), then CommandStarted, the output and CommandFinished, which its
// outbox batches together. Only true, false and echo are known here.
void SimSession::Answer(const v1::Command& command) {
  const std::string& id = command.command_id();
  AgentMessage accepted;
  v1::SequencedItem* a = accepted.mutable_items()->add_sequenced();
  a->set_seq(next_seq_++);
  a->mutable_accepted()->set_command_id(id);
  unacked_.emplace_back(a->seq(), accepted);
  Queue(std::move(accepted));

  v1::CommandResult result;
  std::string output;
  const auto& argv = command.step().exec().argv();
  if (!command.step().has_exec() || argv.empty()) {
    result.set_verdict(v1::INFRA_ERROR);
    result.set_exit_code(-1);
    result.set_detail("fleet_sim runs exec steps only");
  } else if (argv[0] == "true" || argv[0] == "echo") {
    result.set_verdict(v1::PASS);
    if (argv[0] == "echo") {
      output = absl::StrCat(absl::StrJoin(argv.begin() + 1, argv.end(), " "), "\n");
    }
  } else if (argv[0] == "false") {
    result.set_verdict(v1::FAIL);
    result.set_exit_code(1);
    result.set_detail("exited with status 1");
  } else {
    result.set_verdict(v1::INFRA_ERROR);
    result.set_exit_code(-1);
    result.set_detail("cannot start the command: fleet_sim runs only true, false and echo");
  }
  result.set_wall_ms(1);
  AgentMessage done;
  v1::Items* items = done.mutable_items();
  v1::SequencedItem* started = items->add_sequenced();
  started->set_seq(next_seq_++);
  started->mutable_started()->set_command_id(id);
  started->mutable_started()->set_pid(100000 + index_);
  if (!output.empty()) {
    v1::LogChunk* chunk = items->add_logs();
    chunk->set_command_id(id);
    chunk->set_stream(v1::STDOUT);
    chunk->set_offset(0);
    chunk->set_data(output);
  }
  v1::SequencedItem* finished = items->add_sequenced();
  finished->set_seq(next_seq_++);
  v1::CommandFinished* fin = finished->mutable_finished();
  fin->set_command_id(id);
  *fin->mutable_result() = std::move(result);
  fin->set_stdout_bytes(output.size());
  unacked_.emplace_back(finished->seq(), done);
  Queue(std::move(done));
}

void SimSession::Tick() {
  absl::Time now = absl::Now();
  if (now >= next_heartbeat_) {
    AgentMessage hb;
    hb.mutable_heartbeat()->set_agent_time_unix_ms(absl::ToUnixMillis(now));
    Queue(std::move(hb));
    ++fleet_->heartbeats;
    next_heartbeat_ = now + heartbeat_;
  }
  if (now >= next_metrics_) {
    AgentMessage m;
    v1::MetricsBatch* batch = m.mutable_metrics();
    batch->set_time_unix_ms(absl::ToUnixMillis(now));
    for (v1::MetricSample& s : controller::FakeNodeSamples(index_, metrics_round_++)) {
      *batch->add_samples() = std::move(s);
    }
    Queue(std::move(m));
    ++fleet_->metrics_batches;
    next_metrics_ = now + metrics_interval_;
  }
}

void SimSession::Arm() {
  alarm_ = std::make_unique<grpc::Alarm>();
  alarm_->Set(cq_, absl::ToChronoTime(std::min(next_heartbeat_, next_metrics_)), &alarm_tag_);
  alarm_pending_ = true;
}

// ---- figures -------------------------------------------------------------------------------

struct Figure {
  std::string name;
  std::string unit;
  std::vector<double> values;
  std::string target;  // "< 100", empty: none
  double limit = 0;    // PASS when the median is below it
  bool higher_better = false;

  double Min() const { return *std::min_element(values.begin(), values.end()); }
  double Max() const { return *std::max_element(values.begin(), values.end()); }
  double Median() const {
    std::vector<double> v = values;
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
  std::string Verdict() const {
    if (target.empty() || values.empty()) return "";
    return Median() < limit ? "PASS" : "MISS";
  }
};

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * v.size()));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

struct RunResult {
  int agents = 0;
  std::string controller;
  std::vector<Figure> figures;
};

// ---- the measurements ----------------------------------------------------------------------

class Bench {
 public:
  Bench(const Options& options, int agents) : options_(options), agents_(agents) {}

  absl::StatusOr<RunResult> Run();
  // What was measured before Run failed.
  RunResult Partial() const {
    RunResult r;
    r.agents = agents_;
    r.controller = address_;
    r.figures.assign(figures_.begin(), figures_.end());
    return r;
  }

 private:
  Figure& Add(std::string name, std::string unit, std::string target = "", double limit = 0) {
    figures_.push_back(Figure{std::move(name), std::move(unit), {}, std::move(target), limit});
    return figures_.back();
  }
  absl::StatusOr<int> OnlineSimHosts();
  absl::Status WaitOnline(int want, absl::Duration timeout);
  absl::StatusOr<v1::Job> Submit(const std::vector<std::string>& argv);
  absl::StatusOr<v1::Job> WaitJob(const std::string& id);
  absl::Status CheckJob(const v1::Job& job);

  const Options& options_;
  const int agents_;
  std::string address_;
  std::string metrics_address_;
  int pid_ = 0;
  std::unique_ptr<v1::FleetService::Stub> fleet_;
  std::deque<Figure> figures_;  // a deque: Add's references stay valid
};

absl::StatusOr<int> Bench::OnlineSimHosts() {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::ListHostsResponse resp;
  grpc::Status s = fleet_->ListHosts(&ctx, v1::ListHostsRequest(), &resp);
  if (!s.ok()) return absl::UnavailableError(absl::StrCat("ListHosts: ", s.error_message()));
  int online = 0;
  for (const v1::Host& h : resp.hosts()) {
    if (absl::StartsWith(h.id(), kHostIdPrefix) && h.state() == v1::ONLINE) ++online;
  }
  return online;
}

absl::Status Bench::WaitOnline(int want, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    // Polled no harder than the controller answers: ListHosts of a large fleet is not free.
    absl::Time asked = absl::Now();
    absl::StatusOr<int> online = OnlineSimHosts();
    absl::Duration took = absl::Now() - asked;
    if (online.ok() && *online == want) return absl::OkStatus();
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "ListHosts shows ", online.ok() ? absl::StrCat(*online) : online.status().ToString(),
          " simulated hosts ONLINE, not ", want, ", after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(std::max(absl::Milliseconds(20), took * 2));
  }
}

absl::StatusOr<v1::Job> Bench::Submit(const std::vector<std::string>& argv) {
  v1::SubmitJobRequest req;
  v1::JobSpec* spec = req.mutable_spec();
  spec->set_name("fleet-sim");
  spec->mutable_hosts()->set_all(true);
  v1::ExecStep* exec = spec->add_steps()->mutable_exec();
  for (const std::string& a : argv) exec->add_argv(a);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  v1::Job job;
  grpc::Status s = fleet_->SubmitJob(&ctx, req, &job);
  if (!s.ok()) return absl::UnavailableError(absl::StrCat("SubmitJob: ", s.error_message()));
  return job;
}

// Follows the job with WatchJob (as kctl does) until it has ended.
absl::StatusOr<v1::Job> Bench::WaitJob(const std::string& id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(30)));
  v1::GetJobRequest req;
  req.set_id(id);
  auto reader = fleet_->WatchJob(&ctx, req);
  v1::Job job;
  while (reader->Read(&job)) {
    if (job.state() == v1::JOB_DONE) {
      ctx.TryCancel();
      reader->Finish().IgnoreError();
      return job;
    }
  }
  grpc::Status s = reader->Finish();
  return absl::UnavailableError(
      absl::StrCat("WatchJob ", id, " ended before the job did: ", s.error_message()));
}

absl::Status Bench::CheckJob(const v1::Job& job) {
  int passed = 0;
  for (const v1::CommandInfo& c : job.commands()) {
    if (absl::StartsWith(c.host_id(), kHostIdPrefix) && c.result().verdict() == v1::PASS) ++passed;
  }
  if (passed != agents_) {
    return absl::InternalError(
        absl::StrCat("job ", job.id(), ": ", passed, " of ", agents_, " commands passed"));
  }
  return absl::OkStatus();
}

absl::StatusOr<RunResult> Bench::Run() {
  if (absl::Status s = RaiseFileLimit(agents_); !s.ok()) return s;
  ControllerProcess controller;
  if (options_.controller.empty()) {
    if (absl::Status s = controller.Start(options_); !s.ok()) return s;
    address_ = controller.address();
    metrics_address_ = controller.metrics_address();
    pid_ = controller.pid();
  } else {
    address_ = options_.controller;
    metrics_address_ = options_.metrics_address;
    pid_ = options_.controller_pid;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  fleet_ = v1::FleetService::NewStub(
      grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args));
  // The controller is up once it answers.
  for (absl::Time deadline = absl::Now() + absl::Seconds(30);;) {
    if (OnlineSimHosts().ok()) break;
    if ((options_.controller.empty() && !controller.Alive()) || absl::Now() > deadline) {
      return absl::UnavailableError(absl::StrCat(
          "the controller at ", address_, " does not answer; its log:\n", controller.LogTail()));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  auto fail = [&](absl::Status s) {
    if (options_.controller.empty() && !controller.Alive()) {
      return absl::Status(s.code(), absl::StrCat(s.message(), "; the controller exited, its log:\n",
                                                 controller.LogTail()));
    }
    return s;
  };
  const int repeats = options_.repeats;
  const bool targets = agents_ <= 1000;
  // Progress on stderr: the large fleets take minutes.
  const absl::Time began = absl::Now();
  auto note = [&](const char* phase) {
    fprintf(stderr, "fleet_sim: %d agents: %s (%.0f s)\n", agents_, phase,
            absl::ToDoubleSeconds(absl::Now() - began));
  };
  SimFleet sim(address_, agents_, options_.cq_threads);

  note("registration");
  Figure& reg_rate = Add("registration rate", "sessions/s");
  reg_rate.higher_better = true;
  Figure& reg_time = Add("registration, all ONLINE", "s");
  for (int r = 0; r < repeats; ++r) {
    if (r > 0) {
      sim.DisconnectAll();
      if (absl::Status s = WaitOnline(0, absl::Seconds(60)); !s.ok()) return fail(s);
    }
    absl::Time t0 = absl::Now();
    if (absl::Status s = sim.ConnectAll(options_.connect_window, absl::Minutes(30)); !s.ok())
      return fail(s);
    if (absl::Status s = WaitOnline(agents_, absl::Minutes(2) + absl::Milliseconds(20) * agents_);
        !s.ok())
      return fail(s);
    double secs = absl::ToDoubleSeconds(absl::Now() - t0);
    reg_time.values.push_back(secs);
    reg_rate.values.push_back(agents_ / secs);
  }

  note("idle");
  // One window per repeat, after the burst of first heartbeats and metrics has passed.
  absl::SleepFor(absl::Seconds(options_.quick ? 1 : 3));
  Figure& rss = Add("controller RSS, idle", "MiB", "< 2048", 2048);
  Figure& rss_per = Add("controller RSS per agent", "KiB");
  Figure& cpu_hb = Add("controller CPU per heartbeat", "us");
  Figure& cpu_pct = Add("controller CPU, idle", "% core");
  Figure& hb_rate = Add("heartbeats sent", "/s");
  absl::Duration window = absl::Seconds(options_.idle_seconds / repeats);
  for (int r = 0; r < repeats; ++r) {
    double c0 = CpuSeconds(pid_);
    int64_t h0 = sim.heartbeats.load();
    absl::Time t0 = absl::Now();
    absl::SleepFor(window);
    double c1 = CpuSeconds(pid_);
    int64_t h1 = sim.heartbeats.load();
    double secs = absl::ToDoubleSeconds(absl::Now() - t0);
    MemoryFigures m = ReadMemory(pid_);
    rss.values.push_back(m.rss_mib);
    rss_per.values.push_back(m.rss_mib * 1024 / agents_);
    // A window shorter than the heartbeat interval may see none: no figure then.
    if (h1 > h0) cpu_hb.values.push_back((c1 - c0) * 1e6 / (h1 - h0));
    cpu_pct.values.push_back((c1 - c0) * 100 / secs);
    hb_rate.values.push_back((h1 - h0) / secs);
  }

  note("dispatch");
  Figure& p50 = Add("dispatch to agent, p50", "ms");
  Figure& p99 = targets ? Add("dispatch to agent, p99", "ms", "< 100", 100)
                        : Add("dispatch to agent, p99", "ms");
  Figure& last_arrival = Add("dispatch to agent, last", "ms");
  Figure& last_result = targets ? Add("submit to last result stored", "ms", "< 1000", 1000)
                                : Add("submit to last result stored", "ms");
  for (int r = 0; r < repeats; ++r) {
    absl::Time t0 = absl::Now();
    absl::StatusOr<v1::Job> job = Submit({"true"});
    if (!job.ok()) return fail(job.status());
    absl::StatusOr<v1::Job> done = WaitJob(job->id());
    if (!done.ok()) return fail(done.status());
    if (absl::Status s = CheckJob(*done); !s.ok()) return fail(s);
    std::vector<absl::Time> arrivals = sim.TakeArrivals(job->id());
    if (static_cast<int>(arrivals.size()) != agents_) {
      return absl::InternalError(absl::StrCat("job ", job->id(), " reached ", arrivals.size(),
                                              " of ", agents_, " sessions"));
    }
    std::vector<double> ms;
    for (absl::Time t : arrivals) ms.push_back(absl::ToDoubleMilliseconds(t - t0));
    p50.values.push_back(Percentile(ms, 50));
    p99.values.push_back(Percentile(ms, 99));
    last_arrival.values.push_back(Percentile(ms, 100));
    last_result.values.push_back(
        static_cast<double>(done->finished_unix_ms() - absl::ToUnixMillis(t0)));
  }

  note("throughput");
  // --rounds jobs at once (none with --rounds 0).
  Figure& cps = Add("commands stored, sustained", "cmd/s");
  cps.higher_better = true;
  for (int r = 0; r < repeats && options_.rounds > 0; ++r) {
    absl::Time t0 = absl::Now();
    std::vector<std::string> ids;
    for (int i = 0; i < options_.rounds; ++i) {
      absl::StatusOr<v1::Job> job = Submit({"echo", "fleet_sim"});
      if (!job.ok()) return fail(job.status());
      ids.push_back(job->id());
    }
    int64_t end_ms = 0;
    for (const std::string& id : ids) {
      absl::StatusOr<v1::Job> done = WaitJob(id);
      if (!done.ok()) return fail(done.status());
      if (absl::Status s = CheckJob(*done); !s.ok()) return fail(s);
      end_ms = std::max(end_ms, done->finished_unix_ms());
      sim.TakeArrivals(id);
    }
    double secs = std::max(1e-3, (end_ms - absl::ToUnixMillis(t0)) / 1000.0);
    cps.values.push_back(static_cast<double>(agents_) * options_.rounds / secs);
  }

  note("scrape");
  Figure& scrape = Add("/metrics scrape", "ms");
  Figure& scrape_size = Add("/metrics size", "KiB");
  if (!metrics_address_.empty()) {
    for (int r = 0; r < repeats; ++r) {
      absl::Time t0 = absl::Now();
      absl::StatusOr<std::string> body = HttpGet(metrics_address_, "/metrics");
      if (!body.ok()) return fail(body.status());
      scrape.values.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
      scrape_size.values.push_back(body->size() / 1024.0);
    }
  }
  Figure& hwm = Add("controller RSS peak (VmHWM)", "MiB", "< 2048", 2048);
  hwm.values.push_back(ReadMemory(pid_).hwm_mib);
  Add("simulator CPU, whole run", "s").values.push_back(SelfCpuSeconds());
  // Sessions that ended by themselves (a keepalive timeout, the controller closing them) and
  // connected again, as an agent does.
  Add("session reconnects, whole run", "count").values.push_back(sim.reconnects.load());

  if (std::string errors = sim.ProtocolErrors(); !errors.empty()) {
    return absl::InternalError(errors);
  }
  sim.DisconnectAll();
  if (int64_t unacked = sim.unacked_at_end.load(); unacked > 0) {
    return absl::InternalError(
        absl::StrCat(unacked, " sequenced items were never acknowledged by the controller"));
  }
  RunResult result;
  result.agents = agents_;
  result.controller = address_;
  result.figures.assign(figures_.begin(), figures_.end());
  return result;
}

// ---- output and flags ----------------------------------------------------------------------

std::string RerunCommand(const Options& o) {
  if (o.quick) return "./build/bench/fleet_sim --quick";
  std::string cmd = "./build/bench/fleet_sim";
  for (int n : o.agents) absl::StrAppend(&cmd, " --agents ", n);
  absl::StrAppend(&cmd, " --repeats ", o.repeats);
  if (o.idle_seconds != 60) absl::StrAppend(&cmd, " --idle-seconds ", o.idle_seconds);
  if (o.rounds != 5) absl::StrAppend(&cmd, " --rounds ", o.rounds);
  if (!o.heartbeat.empty()) absl::StrAppend(&cmd, " --heartbeat ", o.heartbeat);
  if (!o.metrics_interval.empty())
    absl::StrAppend(&cmd, " --metrics-interval ", o.metrics_interval);
  if (!o.controller.empty()) {
    absl::StrAppend(&cmd, " --controller ", o.controller, " --controller-pid ", o.controller_pid,
                    " --metrics-address ", o.metrics_address);
  }
  return cmd;
}

void PrintTable(const Options& o, const RunResult& r) {
  printf("\nkfleet fleet_sim: %d agents on %s, %d repeat(s)\n", r.agents, r.controller.c_str(),
         o.repeats);
  printf("%-32s %-11s %11s %11s %11s  %-8s %s\n", "figure", "unit", "min", "median", "max",
         "target", "");
  for (const Figure& f : r.figures) {
    if (f.values.empty()) continue;
    printf("%-32s %-11s %11.2f %11.2f %11.2f  %-8s %s\n", f.name.c_str(), f.unit.c_str(), f.Min(),
           f.Median(), f.Max(), f.target.c_str(), f.Verdict().c_str());
  }
}

std::string Json(const Options& o, const std::vector<RunResult>& results) {
  std::string out = "{\"bench\":\"fleet_sim\",\"repeats\":" + std::to_string(o.repeats) +
                    ",\"rerun\":\"" + RerunCommand(o) + "\",\"runs\":[";
  for (size_t i = 0; i < results.size(); ++i) {
    const RunResult& r = results[i];
    absl::StrAppend(&out, i ? "," : "", "{\"agents\":", r.agents, ",\"figures\":[");
    bool first = true;
    for (const Figure& f : r.figures) {
      if (f.values.empty()) continue;
      absl::StrAppend(&out, first ? "" : ",", "{\"name\":\"", f.name, "\",\"unit\":\"", f.unit,
                      "\",\"min\":", f.Min(), ",\"median\":", f.Median(), ",\"max\":", f.Max(),
                      ",\"values\":[", absl::StrJoin(f.values, ","), "]",
                      f.higher_better ? ",\"better\":\"higher\"" : "");
      if (!f.target.empty()) {
        absl::StrAppend(&out, ",\"target\":\"", f.target,
                        "\",\"pass\":", f.Verdict() == "PASS" ? "true" : "false");
      }
      absl::StrAppend(&out, "}");
      first = false;
    }
    absl::StrAppend(&out, "]}");
  }
  return out + "]}\n";
}

constexpr char kUsage[] =
    "usage: fleet_sim [--agents N]... [--repeats 5] [--quick] [-o json] [--idle-seconds 60]\n"
    "                 [--rounds 5] [--cq-threads 2] [--connect-window 200] [--heartbeat DUR]\n"
    "                 [--metrics-interval DUR] [--controller-binary PATH]\n"
    "                 [--controller HOST:PORT --controller-pid PID --metrics-address HOST:PORT]\n"
    "--rounds 0 skips the throughput figure.\n";

bool ParseFlags(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (size_t eq = arg.find('='); absl::StartsWith(arg, "--") && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto next = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) return false;
      value = argv[++i];
      return true;
    };
    int n = 0;
    double d = 0;
    if (arg == "--quick") {
      o->quick = true;
    } else if (arg == "-o" || arg == "--output") {
      if (!next() || (value != "json" && value != "table")) return false;
      o->json = value == "json";
    } else if (arg == "--agents") {
      if (!next() || !absl::SimpleAtoi(value, &n) || n <= 0) return false;
      o->agents.push_back(n);
    } else if (arg == "--repeats") {
      if (!next() || !absl::SimpleAtoi(value, &o->repeats) || o->repeats <= 0) return false;
    } else if (arg == "--idle-seconds") {
      if (!next() || !absl::SimpleAtod(value, &d) || d <= 0) return false;
      o->idle_seconds = d;
    } else if (arg == "--rounds") {
      if (!next() || !absl::SimpleAtoi(value, &o->rounds) || o->rounds < 0) return false;
    } else if (arg == "--cq-threads") {
      if (!next() || !absl::SimpleAtoi(value, &o->cq_threads) || o->cq_threads <= 0) return false;
    } else if (arg == "--connect-window") {
      if (!next() || !absl::SimpleAtoi(value, &o->connect_window) || o->connect_window <= 0)
        return false;
    } else if (arg == "--heartbeat") {
      if (!next()) return false;
      o->heartbeat = value;
    } else if (arg == "--metrics-interval") {
      if (!next()) return false;
      o->metrics_interval = value;
    } else if (arg == "--controller-binary") {
      if (!next()) return false;
      o->controller_binary = value;
    } else if (arg == "--controller") {
      if (!next()) return false;
      o->controller = value;
    } else if (arg == "--controller-pid") {
      if (!next() || !absl::SimpleAtoi(value, &o->controller_pid)) return false;
    } else if (arg == "--metrics-address") {
      if (!next()) return false;
      o->metrics_address = value;
    } else {
      return false;
    }
  }
  return true;
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(kUsage, stdout);
      return 0;
    }
  }
  if (!ParseFlags(argc, argv, &o)) {
    fputs(kUsage, stderr);
    return 2;
  }
  if (!o.controller.empty() && o.controller_pid <= 0) {
    fprintf(stderr,
            "fleet_sim: --controller needs --controller-pid (its RSS and CPU are read "
            "from /proc/PID)\n");
    return 2;
  }
  if (o.quick) {
    if (o.agents.empty()) o.agents = {50};
    o.repeats = 1;
    o.idle_seconds = 3;
    o.rounds = 3;
    if (o.heartbeat.empty()) o.heartbeat = "1s";
    if (o.metrics_interval.empty()) o.metrics_interval = "1s";
  }
  if (o.agents.empty()) o.agents = {100, 1000};
  if (o.controller_binary.empty()) {
    std::error_code ec;
    std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    o.controller_binary = (self.parent_path() / ".." / "controller" / "kfleet-controller").string();
  }
  signal(SIGPIPE, SIG_IGN);
  std::vector<RunResult> results;
  for (int n : o.agents) {
    fprintf(stderr, "fleet_sim: %d agents...\n", n);
    Bench bench(o, n);
    absl::StatusOr<RunResult> r = bench.Run();
    if (!r.ok()) {
      if (!o.json) PrintTable(o, bench.Partial());
      fprintf(stderr, "fleet_sim: %d agents: %s\n", n, r.status().ToString().c_str());
      return 1;
    }
    if (!o.json) PrintTable(o, *r);
    results.push_back(*std::move(r));
  }
  if (o.json) {
    fputs(Json(o, results).c_str(), stdout);
  } else {
    printf(
        "\nTargets: RSS < 2 GiB at 10,000 agents; dispatch p99 < 100 ms and last result "
        "< 1 s (judged on the median of the repeats, for 1,000 agents or fewer).\n");
    printf("rerun: %s\n", RerunCommand(o).c_str());
  }
  return 0;
}

}  // namespace
}  // namespace kfleet::bench

int main(int argc, char** argv) { return kfleet::bench::Main(argc, argv); }
