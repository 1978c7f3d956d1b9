#include "controller/fleet/schedule_push.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace kfleet::controller {

void SchedulePusher::Push(const std::vector<std::string>& host_ids) {
  absl::MutexLock lock(&mu_);
  for (const std::string& host_id : host_ids) {
    if (!fleet_->IsOnline(host_id)) continue;
    absl::StatusOr<v1::ScheduleSet> set = store_->ScheduleSetFor(host_id);
    if (!set.ok()) {
      LogWarning(absl::StrCat("schedules of host ", host_id, ": ", set.status().ToString()));
      continue;
    }
    v1::ControllerMessage m;
    *m.mutable_schedules() = *std::move(set);
    fleet_->Send(host_id, std::move(m));
  }
}

void SchedulePusher::Resync(const std::string& host_id, const v1::ScheduleSet& sent) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<v1::ScheduleSet> set = store_->ScheduleSetFor(host_id);
  if (!set.ok()) {
    LogWarning(absl::StrCat("schedules of host ", host_id, ": ", set.status().ToString()));
    return;
  }
  if (set->SerializeAsString() == sent.SerializeAsString()) return;
  v1::ControllerMessage m;
  *m.mutable_schedules() = *std::move(set);
  fleet_->Send(host_id, std::move(m));
}

}  // namespace kfleet::controller
