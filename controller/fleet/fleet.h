// Which agents are connected, and whether each host is alive. Sessions attach here after Hello;
// anything that must reach an agent (commands, cancels) goes through Send. A sweeper marks a host
// offline after `offline_after_missed` heartbeat intervals without a word from it.
#ifndef KFLEET_CONTROLLER_FLEET_FLEET_H_
#define KFLEET_CONTROLLER_FLEET_FLEET_H_

#include <grpcpp/support/status.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controller/fleet/change_feed.h"
#include "controller/store/store.h"
#include "kfleet/v1/agent.pb.h"

namespace kfleet::controller {

// The sending half of an agent session. Implemented by the session reactor.
class SessionHandle {
 public:
  virtual ~SessionHandle() = default;
  // Queues a message for the agent; dropped if the session already ended. Thread-safe.
  virtual void Send(kfleet::v1::ControllerMessage message) = 0;
  // Ends the session with `status` after queued messages. Thread-safe, idempotent.
  virtual void Close(const grpc::Status& status) = 0;
};

// A host whose session ended is offline this long after, unless its agent reconnects.
inline constexpr absl::Duration kReconnectGrace = absl::Seconds(3);

struct LivenessSettings {
  absl::Duration heartbeat = absl::Seconds(10);
  int offline_after_missed = 3;
};

class Fleet {
 public:
  Fleet(Store* store, ChangeFeed* feed, LivenessSettings settings);
  ~Fleet();  // stops the sweeper

  const LivenessSettings& settings() const { return settings_; }

  // A session said Hello for `host_id`. An older session of the same host is closed.
  void Attach(const std::string& host_id, std::shared_ptr<SessionHandle> session);
  // The session ended; no-op if a newer session has attached since.
  void Detach(const std::string& host_id, const SessionHandle* session);
  // Any message from the host's agent: it is alive (and online again if it was offline).
  void Heard(const std::string& host_id);
  // Sends to the host's current session; false if it has none.
  bool Send(const std::string& host_id, kfleet::v1::ControllerMessage message);
  bool IsOnline(const std::string& host_id) const;
  // Ends the host's current session with `status` (its certificate was revoked); false if it has
  // none.
  bool Disconnect(const std::string& host_id, const grpc::Status& status);
  int connected() const;

  // Gets the test results the sweeper records for a lost host (its sharded tests, as errors),
  // on the sweeper thread. Call before Start.
  void SetTestResultsObserver(std::function<void(const std::vector<StoredTestResult>&)> observer) {
    test_results_observer_ = std::move(observer);
  }

  // Starts the sweeper thread; Stop (or the destructor) ends it.
  void Start();
  void Stop();
  // One sweep at `now`: hosts silent past the limit are marked offline. Public for tests.
  void Sweep(absl::Time now);

 private:
  struct Entry {
    std::shared_ptr<SessionHandle> session;  // null when no session is attached
    absl::Time last_heard;
    bool online = false;
  };
  void SetState(const std::string& host_id, kfleet::v1::HostState state, absl::Time when);

  Store* store_;
  ChangeFeed* feed_;
  const LivenessSettings settings_;
  std::function<void(const std::vector<StoredTestResult>&)> test_results_observer_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> hosts_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread sweeper_;
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_FLEET_FLEET_H_
