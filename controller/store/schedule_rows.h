// Rows of the schedule tables as messages, for SqliteStore's schedule methods
// (sqlite_store_schedules.cc, sqlite_store_schedule_runs.cc). Each function runs inside a
// transaction or lock the caller holds.
#ifndef KFLEET_CONTROLLER_STORE_SCHEDULE_ROWS_H_
#define KFLEET_CONTROLLER_STORE_SCHEDULE_ROWS_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kfleet/v1/agent.pb.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::controller {

// A schedule row: its id and the schedule as stored (no hosts).
struct ScheduleRow {
  int64_t id = 0;
  kfleet::v1::Schedule schedule;
};

// The live schedule named `name`; NotFound names it and how to list them.
absl::StatusOr<ScheduleRow> LoadLiveSchedule(sqlite3* db, const std::string& name);
// Every live schedule, by name.
absl::StatusOr<std::vector<ScheduleRow>> LoadLiveSchedules(sqlite3* db);

// Whether the schedule's selector takes the host: its name is listed, or it carries the labels.
bool ScheduleApplies(const kfleet::v1::Schedule& schedule, const kfleet::v1::Host& host);

// Every host record with its labels (id, name, state, labels only), by name; with `only_id`, that
// host's alone (none if it does not exist).
absl::StatusOr<std::vector<kfleet::v1::Host>> LoadHostLabels(sqlite3* db,
                                                             const std::string& only_id = "");

// Fills schedule.hosts: the hosts it applies to now and those that ran it, each with its stored
// runs and last run. `hosts` is LoadHostLabels'.
absl::Status FillScheduleHosts(sqlite3* db, const std::vector<kfleet::v1::Host>& hosts,
                               kfleet::v1::Schedule* schedule);

// The ids of the hosts the schedule applies to now or was sent to.
absl::StatusOr<std::vector<std::string>> ScheduleTargets(sqlite3* db, const ScheduleRow& row);

// Advances the global counter `which` ("revision" or "change_seq") and returns its new value.
absl::StatusOr<uint64_t> NextScheduleCounter(sqlite3* db, absl::string_view which);

// Runs matching `where` over schedule_runs r (binds ?1 text, ?2 text, ?3 and ?4 integers), in
// `order` (an ORDER BY clause over r), with their commands' step, state and result.
absl::StatusOr<std::vector<kfleet::v1::ScheduleRun>> LoadScheduleRuns(
    sqlite3* db, absl::string_view where, absl::string_view order, const std::string& text1,
    const std::string& text2, int64_t int3, int64_t int4);

// How a run ended, in one word: "oom" (its process was OOM-killed), "timeout", "pass",
// "cancelled" or "fail".
std::string RunOutcome(const kfleet::v1::CommandResult& result);

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_STORE_SCHEDULE_ROWS_H_
