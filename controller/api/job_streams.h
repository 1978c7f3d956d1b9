// The admin API's server-streaming calls: WatchJob and TailLogs. Each is a write reactor that
// keeps one write in flight, reads state on the executor, and waits on the change feed when it has
// nothing new to send.
#ifndef KFLEET_CONTROLLER_API_JOB_STREAMS_H_
#define KFLEET_CONTROLLER_API_JOB_STREAMS_H_

#include <grpcpp/grpcpp.h>

#include <functional>

#include "common/executor.h"
#include "controller/fleet/change_feed.h"
#include "controller/logs/log_store.h"
#include "controller/store/store.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::controller {

struct JobStreamDeps {
  Store* store;
  LogStore* logs;
  Executor* executor;
  ChangeFeed* feed;
  // Checked before each update: a non-OK status ends the stream with it (the caller's
  // certificate was revoked). Unset: always allowed.
  std::function<absl::Status()> still_allowed;
};

// Largest piece of log in one LogData message.
inline constexpr size_t kTailChunkBytes = 256 << 10;

// Sends the job, then again after each change, and finishes when it has ended.
grpc::ServerWriteReactor<kfleet::v1::Job>* StartWatchJob(JobStreamDeps deps,
                                                         const kfleet::v1::GetJobRequest& req);

// Sends the stored log bytes of a job's commands (or of one command) in order; with follow, waits
// for more until they ended, then sends a message with `end` set and the job.
grpc::ServerWriteReactor<kfleet::v1::LogData>* StartTailLogs(
    JobStreamDeps deps, const kfleet::v1::TailLogsRequest& req);

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_API_JOB_STREAMS_H_
