// `kctl schedule runs NAME [--host H] [--limit N] [-f]`.
#include <algorithm>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/exit_codes.h"
#include "cli/json.h"
#include "cli/reconnector.h"
#include "cli/schedule_command.h"
#include "cli/schedule_view.h"
#include "cli/sigint.h"
#include "common/status_macros.h"

namespace kfleet::cli {
namespace {

constexpr absl::Duration kPollInterval = absl::Seconds(1);
constexpr uint32_t kDefaultLimit = 20;
constexpr uint32_t kMaxLimit = 1000;
constexpr uint32_t kPageSize = 100;

absl::Status PrintLine(const v1::ScheduleRun& run, bool json, Io& io) {
  if (json) {
    ASSIGN_OR_RETURN(std::string line, ToJson(run, JsonStyle::kLine));
    io.out << line;
  } else {
    io.out << FormatRunLine(run, io.now(), io.tz) << "\n";
  }
  return absl::OkStatus();
}

// Prints the newest runs, then every run that starts or ends, asking every second for changes
// after the last one printed: the controller numbers them as it stores them, so nothing is
// missed or printed twice, across a controller restart too. Ends with exit 0 on Ctrl-C.
absl::StatusOr<int> Follow(v1::ListScheduleRunsRequest request, FleetClient& fleet, Context& ctx,
                           bool json) {
  SigintCatcher sigint;
  Reconnector reconnector(ctx.io, fleet.address());
  uint64_t last_change = 0;
  bool first = true;
  while (!sigint.caught()) {
    absl::StatusOr<v1::ListScheduleRunsResponse> runs;
    absl::Status s = reconnector.Run([&] {
      if (sigint.caught()) return absl::CancelledError("interrupted");
      runs = fleet.ListScheduleRuns(request);
      if (runs.ok()) reconnector.Connected();
      // A controller that is stopping cancels the calls in flight: wait for it as for one that
      // cannot be reached.
      if (absl::IsCancelled(runs.status())) return absl::UnavailableError(runs.status().message());
      return runs.status();
    });
    if (sigint.caught()) break;
    if (!s.ok()) return s;
    uint64_t before = last_change;
    for (const v1::ScheduleRun& run : runs->runs()) {
      if (!first && run.change() <= before) continue;  // a controller that ignored after_change
      RETURN_IF_ERROR(PrintLine(run, json, ctx.io));
      last_change = std::max(last_change, run.change());
    }
    ctx.io.out.flush();
    bool more = !first && static_cast<uint32_t>(runs->runs_size()) >= kPageSize;
    first = false;
    // With nothing printed yet (last_change 0) this asks for the newest runs, all of them new.
    request.set_after_change(last_change);
    request.set_limit(kPageSize);
    if (!more && sigint.SleepUnlessInterrupted(ctx.io, kPollInterval)) break;
  }
  return kExitOk;
}

}  // namespace

absl::StatusOr<int> RunScheduleRuns(const Invocation& inv, Context& ctx) {
  v1::ListScheduleRunsRequest request;
  request.set_name(inv.args[1]);
  request.set_host(inv.Get("host"));
  uint32_t limit = kDefaultLimit;
  if (inv.Has("limit") &&
      (!absl::SimpleAtoi(inv.Get("limit"), &limit) || limit == 0 || limit > kMaxLimit)) {
    return absl::InvalidArgumentError(absl::StrCat("schedule runs: --limit: \"", inv.Get("limit"),
                                                   "\" is not a number from 1 to ", kMaxLimit));
  }
  request.set_limit(limit);
  bool json = inv.globals.output == OutputFormat::kJson;
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  if (inv.Has("follow")) return Follow(request, *fleet, ctx, json);

  ASSIGN_OR_RETURN(v1::ListScheduleRunsResponse runs, fleet->ListScheduleRuns(request));
  if (json) {
    ASSIGN_OR_RETURN(std::string text, ToJson(runs, JsonStyle::kPretty));
    ctx.io.out << text;
    return kExitOk;
  }
  if (runs.runs().empty()) {
    ctx.io.err << "No runs of " << request.name()
               << (request.host().empty() ? "" : absl::StrCat(" on ", request.host())) << " yet.\n";
    return kExitOk;
  }
  ctx.io.out << RenderRunsTable(runs, inv.globals.output == OutputFormat::kWide, ctx.io.now(),
                                ctx.io.tz);
  return kExitOk;
}

}  // namespace kfleet::cli
