#include "cli/job_follow.h"

#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "cli/exit_codes.h"
#include "cli/job_progress.h"
#include "cli/json.h"
#include "cli/line_prefixer.h"
#include "cli/live_screen.h"
#include "cli/reconnector.h"
#include "cli/results_command.h"
#include "common/status_macros.h"

namespace kfleet::cli {
namespace {

constexpr absl::Duration kRedrawInterval = absl::Seconds(1);

// The progress table on a terminal: redrawn in place on every change, and every second so that
// the elapsed time of running commands counts up. Show() is called from kctl's thread; the
// redraws of the timer come from a thread of its own, hence the lock around io.out.
class LiveTable {
 public:
  LiveTable(Io& io, bool wide)
      : io_(io), wide_(wide), screen_(io.out, LiveScreen::Mode::kInline, io.columns) {}
  LiveTable(const LiveTable&) = delete;
  LiveTable& operator=(const LiveTable&) = delete;
  ~LiveTable() { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }

  void Show(const v1::Job& job) {
    absl::MutexLock lock(&mu_);
    job_ = job;
    RedrawLocked();
  }

  // Stops the timer; the table stays as last drawn. Idempotent.
  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    absl::MutexLock lock(&mu_);
    while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), kRedrawInterval)) RedrawLocked();
  }

  void RedrawLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!job_) return;
    screen_.Draw(RenderProgressTable(*job_, wide_, io_.now(), io_.columns()));
  }

  Io& io_;
  const bool wide_;
  absl::Mutex mu_;
  LiveScreen screen_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::Job> job_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// The output of the job's exec steps (what `kctl boot -- ARGV` ran on the new kernel), each line
// prefixed by its host as `kctl exec` prints it; stderr lines go to stderr.
absl::Status PrintExecOutput(FleetClient& fleet, const v1::Job& job, Io& io) {
  LinePrefixer prefixer(io.out, io.err);
  bool any = false;
  for (const v1::CommandInfo& c : job.commands()) {
    if (c.step().has_exec() && c.state() == v1::COMMAND_FINISHED) {
      prefixer.AddHost(c.host_name());
      any = true;
    }
  }
  if (!any) return absl::OkStatus();
  io.out << "\n";
  for (const v1::CommandInfo& c : job.commands()) {
    if (!c.step().has_exec() || c.state() != v1::COMMAND_FINISHED) continue;
    v1::TailLogsRequest req;
    req.set_command_id(c.id());
    req.add_streams(v1::STDOUT);
    req.add_streams(v1::STDERR);
    RETURN_IF_ERROR(fleet.TailLogs(req, [&](const v1::LogData& d) {
      prefixer.Write(d.command_id(), d.stream(), c.host_name(), d.stream() == v1::STDERR, d.data());
      return absl::OkStatus();
    }));
  }
  prefixer.Flush();
  return absl::OkStatus();
}

bool HasTestSteps(const v1::Job& job) {
  for (const v1::Step& step : job.spec().steps()) {
    if (step.has_test()) return true;
  }
  for (const v1::CommandInfo& c : job.commands()) {
    if (c.step().has_test()) return true;
  }
  return false;
}

// The results of the job's test steps, as `kctl results JOB` prints them. Not having them does
// not change the job's verdict: kctl says so and goes on.
void PrintTestResults(FleetClient& fleet, const v1::Job& job, Io& io) {
  absl::StatusOr<v1::GetResultsResponse> results = fleet.GetResults(job.id());
  if (!results.ok()) {
    io.err << "kctl: cannot show the test results (kctl results " << job.id()
           << " may): " << results.status().message() << "\n";
    return;
  }
  if (results->job().id().empty()) *results->mutable_job() = job;
  io.out << "\n" << RenderResultsReport(*results, /*all=*/false);
}

}  // namespace

absl::StatusOr<int> SubmitAndFollow(const v1::JobSpec& spec, OutputFormat output, Context& ctx) {
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::Job submitted, fleet->SubmitJob(spec));
  const std::string id = submitted.id();
  ctx.io.err << "job " << id << " submitted\n";
  ctx.io.err.flush();

  bool json = output == OutputFormat::kJson;
  std::unique_ptr<LiveTable> live;
  if (!json && ctx.io.out_is_tty) {
    live = std::make_unique<LiveTable>(ctx.io, output == OutputFormat::kWide);
    live->Start();
  }
  ProgressLog log;
  std::optional<v1::Job> last;
  auto show = [&](const v1::Job& job) {
    last = job;
    if (json) return;
    if (live) {
      live->Show(job);
    } else {
      ctx.io.out << log.Update(job, ctx.io.now());
      ctx.io.out.flush();
    }
  };
  show(submitted);

  // The controller answered SubmitJob, so losing it from now on means waiting for it to return.
  // WatchJob starts with the job as it is, so asking again after a reconnect loses nothing.
  Reconnector reconnector(ctx.io, fleet->address());
  reconnector.Connected();
  absl::Status watched = reconnector.Run([&] {
    return fleet->WatchJob(id, [&](const v1::Job& job) {
      reconnector.Connected();
      show(job);
      return absl::OkStatus();
    });
  });
  if (watched.ok() && (!last || last->state() != v1::JOB_DONE)) {
    // The stream ended without the job: ask for it once before giving up.
    absl::StatusOr<v1::Job> job = fleet->GetJob(id);
    if (job.ok()) show(*job);
  }
  if (live) live->Stop();
  if (!last || last->state() != v1::JOB_DONE) {
    if (!watched.ok()) return watched;
    return WithExitCode(
        absl::UnavailableError(absl::StrCat("WatchJob: the stream ended before job ", id,
                                            " did; follow it with kctl job ", id, " --watch")),
        kExitUnreachable);
  }
  if (json) {
    ASSIGN_OR_RETURN(std::string text, ToJson(*last, JsonStyle::kPretty));
    ctx.io.out << text;
  } else {
    RETURN_IF_ERROR(PrintExecOutput(*fleet, *last, ctx.io));
    if (HasTestSteps(*last)) PrintTestResults(*fleet, *last, ctx.io);
    ctx.io.out << "\n" << RenderJobReport(*last, ctx.io.now(), output == OutputFormat::kWide);
  }
  ctx.io.out.flush();
  return ExitCodeForVerdict(last->verdict());
}

}  // namespace kfleet::cli
