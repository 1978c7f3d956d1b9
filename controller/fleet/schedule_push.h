// Sends agents their schedules (DESIGN.md, "Schedules"): a host's whole set, in Welcome and as
// ControllerMessage.schedules whenever a schedule that applies to it is added, changed or
// removed. The agent drops what is missing from the set, so each message must be the latest
// whole set: reading a set and queueing it happen under one lock, so sets reach a session in the
// order they were read.
#ifndef KFLEET_CONTROLLER_FLEET_SCHEDULE_PUSH_H_
#define KFLEET_CONTROLLER_FLEET_SCHEDULE_PUSH_H_

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "controller/fleet/fleet.h"
#include "controller/store/store.h"
#include "kfleet/v1/agent.pb.h"

namespace kfleet::controller {

class SchedulePusher {
 public:
  // Both outlive the pusher.
  SchedulePusher(Store* store, Fleet* fleet) : store_(store), fleet_(fleet) {}

  // Sends each of the hosts that is connected its set; the others get theirs in Welcome. Errors
  // are logged: the next change or session sends the set again. Thread-safe; may block on the
  // store (call it on the executor).
  void Push(const std::vector<std::string>& host_ids);

  // A session of `host_id` has just attached after a Welcome that carried `sent`: sends the set
  // again if it changed in between (a change pushed before the session attached missed it).
  void Resync(const std::string& host_id, const kfleet::v1::ScheduleSet& sent);

 private:
  Store* const store_;
  Fleet* const fleet_;
  absl::Mutex mu_;  // held from reading a set to queueing it
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_FLEET_SCHEDULE_PUSH_H_
