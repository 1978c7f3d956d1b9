// The OOM killer's view of the agent and of its commands: the agent must survive an OOM that its
// commands cause, so that it can report it; the commands must stay killable.
#ifndef KFLEET_AGENT_EXEC_OOM_SCORE_H_
#define KFLEET_AGENT_EXEC_OOM_SCORE_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kfleet::agent {

// Writes -1000 to /proc/self/oom_score_adj: the OOM killer never picks the agent. Needs
// CAP_SYS_RESOURCE (PermissionDenied otherwise). The commands the agent starts later do not
// inherit it: SpawnChild sets theirs back to 0 (see spawn.h). Call once at start, before threads
// that fork.
absl::Status ProtectFromOomKiller();

// Our /proc/self/oom_score_adj.
absl::StatusOr<int> OomScoreAdj();

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_EXEC_OOM_SCORE_H_
