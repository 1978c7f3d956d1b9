#include "controller/fleet/fleet.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace kfleet::controller {

Fleet::Fleet(Store* store, ChangeFeed* feed, LivenessSettings settings)
    : store_(store), feed_(feed), settings_(settings) {}

Fleet::~Fleet() { Stop(); }

void Fleet::SetState(const std::string& host_id, v1::HostState state, absl::Time when) {
  // State transitions are rare (connect, silence); heartbeats themselves stay in memory.
  absl::Status s = store_->SetHostState(host_id, state, absl::ToUnixMillis(when));
  if (!s.ok()) LogError(absl::StrCat("recording host ", host_id, " state: ", s.ToString()));
  feed_->Publish();
}

void Fleet::Attach(const std::string& host_id, std::shared_ptr<SessionHandle> session) {
  std::shared_ptr<SessionHandle> old;
  {
    absl::MutexLock lock(&mu_);
    Entry& e = hosts_[host_id];
    old = std::move(e.session);
    e.session = std::move(session);
    e.last_heard = absl::Now();
    e.online = true;
  }
  if (old) old->Close(grpc::Status(grpc::StatusCode::ABORTED, "replaced by a newer session"));
}

void Fleet::Detach(const std::string& host_id, const SessionHandle* session) {
  absl::MutexLock lock(&mu_);
  auto it = hosts_.find(host_id);
  if (it == hosts_.end() || it->second.session.get() != session) return;
  it->second.session.reset();
  // Its agent went away (stopped, rebooting, or the link broke): offline after a short grace for a
  // reconnect, rather than after three heartbeats, so no new work is sent its way meanwhile.
  absl::Time offline_at = absl::Now() + kReconnectGrace;
  absl::Duration limit = settings_.heartbeat * settings_.offline_after_missed;
  if (it->second.last_heard > offline_at - limit) it->second.last_heard = offline_at - limit;
}

bool Fleet::Disconnect(const std::string& host_id, const grpc::Status& status) {
  std::shared_ptr<SessionHandle> session;
  {
    absl::MutexLock lock(&mu_);
    auto it = hosts_.find(host_id);
    if (it == hosts_.end() || it->second.session == nullptr) return false;
    session = it->second.session;
  }
  session->Close(status);
  return true;
}

void Fleet::Heard(const std::string& host_id) {
  absl::Time now = absl::Now();
  bool back_online = false;
  {
    absl::MutexLock lock(&mu_);
    Entry& e = hosts_[host_id];
    e.last_heard = now;
    if (!e.online && e.session) {
      e.online = true;
      back_online = true;
    }
  }
  if (back_online) SetState(host_id, v1::ONLINE, now);
}

bool Fleet::Send(const std::string& host_id, v1::ControllerMessage message) {
  // The pool manager does these itself (see RunsOnController).
  if (message.has_command() && RunsOnController(message.command().step())) return true;
  std::shared_ptr<SessionHandle> session;
  {
    absl::MutexLock lock(&mu_);
    auto it = hosts_.find(host_id);
    if (it == hosts_.end() || !it->second.session) return false;
    session = it->second.session;
  }
  session->Send(std::move(message));
  return true;
}

bool Fleet::IsOnline(const std::string& host_id) const {
  absl::MutexLock lock(&mu_);
  auto it = hosts_.find(host_id);
  return it != hosts_.end() && it->second.online;
}

int Fleet::connected() const {
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (const auto& [id, e] : hosts_) n += e.session != nullptr;
  return n;
}

void Fleet::Sweep(absl::Time now) {
  absl::Duration limit = settings_.heartbeat * settings_.offline_after_missed;
  std::vector<std::pair<std::string, absl::Time>> gone;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, e] : hosts_) {
      if (e.online && now - e.last_heard >= limit) {
        e.online = false;
        gone.emplace_back(id, e.last_heard);
      }
    }
  }
  for (const auto& [id, last] : gone) {
    SetState(id, v1::OFFLINE, last);
    // The tests a lost host was running for sharded steps end as errors; the others take over.
    absl::StatusOr<ApplyOutcome> lost = store_->HostLost(
        id,
        absl::StrCat("the host went offline while the test ran (nothing heard for ",
                     absl::FormatDuration(absl::Seconds(absl::ToInt64Seconds(now - last))),
                     "): its agent, kernel or machine stopped"),
        absl::ToUnixMillis(now));
    if (!lost.ok()) {
      LogError(absl::StrCat("host ", id, " lost: ", lost.status().ToString()));
      continue;
    }
    for (Dispatch& d : lost->dispatch) {
      v1::ControllerMessage m;
      *m.mutable_command() = std::move(d.command);
      Send(d.host_id, std::move(m));
    }
    if (test_results_observer_ && !lost->test_results.empty()) {
      test_results_observer_(lost->test_results);
    }
    feed_->Publish();
  }
}

void Fleet::Start() {
  sweeper_ = std::thread([this] {
    absl::MutexLock lock(&mu_);
    while (!stopping_) {
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Milliseconds(250));
      if (stopping_) break;
      mu_.Unlock();
      Sweep(absl::Now());
      mu_.Lock();
    }
  });
}

void Fleet::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (sweeper_.joinable()) sweeper_.join();
}

}  // namespace kfleet::controller
