#include "controller/api/job_streams.h"

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"

namespace kfleet::controller {
namespace {

// Shared shape of both streams: Pump() runs on the executor, either starts one write or waits on
// the feed; OnWriteDone schedules the next Pump. The reactor owns itself until OnDone.
template <typename Msg>
class StreamReactor : public grpc::ServerWriteReactor<Msg>,
                      public std::enable_shared_from_this<StreamReactor<Msg>> {
 public:
  explicit StreamReactor(JobStreamDeps deps) : deps_(deps) {}
  virtual ~StreamReactor() = default;

  void Begin() {
    self_ = this->shared_from_this();
    Schedule();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      End(grpc::Status(grpc::StatusCode::CANCELLED, "stream closed"));
      return;
    }
    bool last;
    {
      absl::MutexLock lock(&mu_);
      last = last_;
    }
    if (last) {
      End(grpc::Status::OK);
    } else {
      Schedule();
    }
  }

  void OnCancel() override { End(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled")); }

  void OnDone() override { std::shared_ptr<StreamReactor> keep = std::move(self_); }

 protected:
  // Reads state and calls Write, Wait or End. Runs on the executor.
  virtual void Pump() = 0;

  void Schedule() {
    deps_.executor->Post([self = this->shared_from_this()] {
      {
        absl::MutexLock lock(&self->mu_);
        if (self->ended_) return;
      }
      if (self->deps_.still_allowed) {
        if (absl::Status s = self->deps_.still_allowed(); !s.ok()) {
          self->End(ToGrpcStatus(s));
          return;
        }
      }
      self->Pump();
    });
  }

  void Write(Msg msg, bool last) {
    absl::MutexLock lock(&mu_);
    if (ended_) return;
    out_ = std::move(msg);
    last_ = last;
    this->StartWrite(&out_);
  }

  void Wait(uint64_t seen_version) {
    deps_.feed->WhenChangedSince(seen_version,
                                 [self = this->shared_from_this()] { self->Schedule(); });
  }

  void End(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    if (ended_) return;
    ended_ = true;
    this->Finish(status);
  }

  const JobStreamDeps deps_;

 private:
  std::shared_ptr<StreamReactor> self_;
  absl::Mutex mu_;
  Msg out_ ABSL_GUARDED_BY(mu_);
  bool last_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

class WatchJobReactor final : public StreamReactor<v1::Job> {
 public:
  WatchJobReactor(JobStreamDeps deps, std::string job_id)
      : StreamReactor(deps), job_id_(std::move(job_id)) {}

 private:
  void Pump() override {
    uint64_t version = deps_.feed->version();
    absl::StatusOr<v1::Job> job = deps_.store->GetJob(job_id_);
    if (!job.ok()) {
      End(ToGrpcStatus(job.status()));
      return;
    }
    std::string bytes = job->SerializeAsString();
    if (bytes == last_sent_) {
      Wait(version);
      return;
    }
    last_sent_ = std::move(bytes);
    bool done = job->state() == v1::JOB_DONE;
    Write(*std::move(job), done);
  }

  const std::string job_id_;
  std::string last_sent_;  // only Pump touches it, and Pumps never overlap
};

class TailLogsReactor final : public StreamReactor<v1::LogData> {
 public:
  TailLogsReactor(JobStreamDeps deps, v1::TailLogsRequest req)
      : StreamReactor(deps), req_(std::move(req)) {
    for (int s : req_.streams()) streams_.push_back(static_cast<v1::LogStream>(s));
    if (streams_.empty()) streams_ = {v1::STDOUT, v1::STDERR};
  }

 private:
  void Pump() override {
    uint64_t version = deps_.feed->version();
    // State first, then sizes: a command is finished only after all its log was stored, so
    // sizes read after seeing it finished are final.
    v1::Job job;
    std::vector<v1::CommandInfo> commands;
    bool ended;
    if (req_.has_command_id()) {
      absl::StatusOr<v1::CommandInfo> c = deps_.store->GetCommand(req_.command_id());
      if (!c.ok()) return End(ToGrpcStatus(c.status()));
      ended = c->state() == v1::COMMAND_FINISHED || c->state() == v1::COMMAND_SKIPPED;
      absl::StatusOr<v1::Job> j = deps_.store->GetJob(c->job_id());
      if (j.ok()) job = *std::move(j);
      commands.push_back(*std::move(c));
    } else {
      absl::StatusOr<v1::Job> j = deps_.store->GetJob(req_.job_id());
      if (!j.ok()) return End(ToGrpcStatus(j.status()));
      job = *std::move(j);
      ended = job.state() == v1::JOB_DONE;
      commands.assign(job.commands().begin(), job.commands().end());
    }
    for (const v1::CommandInfo& c : commands) {
      for (v1::LogStream stream : streams_) {
        uint64_t& offset = offsets_[{c.id(), stream}];
        if (deps_.logs->Size(c.id(), stream) <= offset) continue;
        absl::StatusOr<std::string> data =
            deps_.logs->Read(c.id(), stream, offset, kTailChunkBytes);
        if (!data.ok()) return End(ToGrpcStatus(data.status()));
        v1::LogData msg;
        msg.set_command_id(c.id());
        msg.set_host_name(c.host_name());
        msg.set_stream(stream);
        msg.set_offset(offset);
        offset += data->size();
        msg.set_data(*std::move(data));
        return Write(std::move(msg), false);
      }
    }
    if (ended || !req_.follow()) {
      v1::LogData end;
      end.set_end(true);
      *end.mutable_job() = std::move(job);
      return Write(std::move(end), true);
    }
    Wait(version);
  }

  const v1::TailLogsRequest req_;
  std::vector<v1::LogStream> streams_;
  std::map<std::pair<std::string, int>, uint64_t> offsets_;  // only Pump touches it
};

}  // namespace

grpc::ServerWriteReactor<v1::Job>* StartWatchJob(JobStreamDeps deps, const v1::GetJobRequest& req) {
  auto r = std::make_shared<WatchJobReactor>(deps, req.id());
  r->Begin();
  return r.get();
}

grpc::ServerWriteReactor<v1::LogData>* StartTailLogs(JobStreamDeps deps,
                                                     const v1::TailLogsRequest& req) {
  auto r = std::make_shared<TailLogsReactor>(deps, req);
  r->Begin();
  return r.get();
}

}  // namespace kfleet::controller
