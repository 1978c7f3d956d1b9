// SqliteStore: the hosts' timelines. Kernel events are stored once per kmsg record, whichever
// agents on the machine report it.
#include <sqlite3.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "controller/store/sqlite_store.h"

namespace kfleet::controller {
namespace {

constexpr char kEventColumns[] =
    "host_id, host_name, time_ms, kind, message, command_id, oom, detail, id, before_agent, "
    "boot_id, kmsg_seq, unit";

v1::Event EventFromRow(const Stmt& s) {
  v1::Event e;
  e.set_host_id(s.Text(0));
  e.set_host_name(s.Text(1));
  e.set_time_unix_ms(s.Int(2));
  e.set_kind(s.Text(3));
  e.set_message(s.Text(4));
  e.set_command_id(s.Text(5));
  if (!s.IsNull(6)) e.mutable_oom()->ParseFromString(s.Blob(6));
  e.set_detail(s.Text(7));
  e.set_id(static_cast<uint64_t>(s.Int(8)));
  e.set_before_agent(s.Int(9) != 0);
  e.set_boot_id(s.Text(10));
  e.set_kmsg_seq(static_cast<uint64_t>(s.Int(11)));
  e.set_unit(s.Text(12));
  return e;
}

// What a copy of a kernel record tells: the command or watched unit it hit, else that it is news,
// else only history. The copy that tells more is kept.
int Weight(const v1::Event& e) {
  if (!e.command_id().empty() || !e.unit().empty()) return 2;
  return e.before_agent() ? 0 : 1;
}

}  // namespace

absl::Status SqliteStore::AddEventLocked(const v1::Event& e) {
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), R"sql(
INSERT INTO events (host_id, host_name, time_ms, kind, message, command_id, oom, detail,
                    before_agent, boot_id, kmsg_seq, unit)
VALUES (?1, COALESCE((SELECT name FROM hosts WHERE id = ?1), ?2), ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,
        ?11, ?12))sql"));
  s.Bind(1, e.host_id())
      .Bind(2, e.host_name())
      .Bind(3, e.time_unix_ms())
      .Bind(4, e.kind())
      .Bind(5, e.message())
      .Bind(6, e.command_id())
      .Bind(8, e.detail())
      .Bind(9, int64_t{e.before_agent() ? 1 : 0})
      .Bind(10, e.boot_id())
      .Bind(11, static_cast<int64_t>(e.kmsg_seq()))
      .Bind(12, e.unit());
  if (e.has_oom()) s.BindBlob(7, e.oom().SerializeAsString());
  return s.Run();
}

absl::StatusOr<std::optional<v1::Event>> SqliteStore::EventOfRecordLocked(
    const std::string& boot_id, uint64_t seq) {
  // The conditions of the partial index events_by_record, so that it is used.
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), absl::StrCat("SELECT ", kEventColumns, R"sql(
 FROM events WHERE boot_id = ?1 AND kmsg_seq = ?2 AND kmsg_seq > 0 AND boot_id != '')sql")));
  s.Bind(1, boot_id).Bind(2, static_cast<int64_t>(seq));
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<v1::Event>();
  return std::optional<v1::Event>(EventFromRow(s));
}

absl::Status SqliteStore::AddKernelEventLocked(const std::string& host_id, const v1::KernelEvent& k,
                                               ApplyOutcome* outcome) {
  v1::Event e;
  e.set_host_id(host_id);
  e.set_time_unix_ms(k.time_unix_ms());
  e.set_kind(k.kind());
  e.set_message(k.message());
  e.set_command_id(k.command_id());
  if (k.has_oom()) *e.mutable_oom() = k.oom();
  e.set_detail(k.detail());
  e.set_before_agent(k.before_agent());
  e.set_boot_id(k.boot_id());
  e.set_kmsg_seq(k.kmsg_seq());
  e.set_unit(k.unit());
  if (!e.command_id().empty()) {
    // An agent names only its own commands; one that names another host's (an older agent on a
    // machine it shares with another) is not believed: such a copy would win over the owner's.
    ASSIGN_OR_RETURN(
        Stmt own,
        Stmt::Prepare(db_.get(), "SELECT 1 FROM commands WHERE id = ?1 AND host_id = ?2"));
    own.Bind(1, e.command_id()).Bind(2, host_id);
    ASSIGN_OR_RETURN(bool ours, own.Step());
    if (!ours) e.clear_command_id();
  }

  std::optional<v1::Event> stored;
  // Events of no kmsg record (agent_killed, a userspace killer's journal line) have no identity.
  if (e.kmsg_seq() != 0 && !e.boot_id().empty()) {
    ASSIGN_OR_RETURN(stored, EventOfRecordLocked(e.boot_id(), e.kmsg_seq()));
  }
  if (stored.has_value()) {
    KernelEventClash clash;
    clash.stored = *stored;
    // A copy that tells no more is dropped; its item is applied all the same (acknowledged), so
    // that the agent's outbox moves past it.
    if (Weight(e) <= Weight(*stored)) {
      clash.reported = std::move(e);
      outcome->event_clashes.push_back(std::move(clash));
      return absl::OkStatus();
    }
    // A new row, not an update: `kctl events -f` follows ids, and shows the better copy too.
    ASSIGN_OR_RETURN(Stmt drop, Stmt::Prepare(db_.get(), "DELETE FROM events WHERE id = ?1"));
    drop.Bind(1, static_cast<int64_t>(stored->id()));
    RETURN_IF_ERROR(drop.Run());
    clash.replaced = true;
    outcome->event_clashes.push_back(std::move(clash));
  }
  RETURN_IF_ERROR(AddEventLocked(e));
  e.set_id(static_cast<uint64_t>(sqlite3_last_insert_rowid(db_.get())));
  if (stored.has_value()) outcome->event_clashes.back().reported = e;
  if (e.before_agent()) {
    outcome->history_events.push_back(std::move(e));
  } else if (!stored.has_value() || stored->before_agent()) {
    // News that was not news before: counted now, once.
    outcome->events.push_back(std::move(e));
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::AddEvent(const v1::Event& event) {
  absl::MutexLock lock(&mu_);
  return AddEventLocked(event);
}

absl::StatusOr<std::vector<v1::Event>> SqliteStore::ListEvents(const std::string& host_id,
                                                               const std::string& kind, int limit,
                                                               uint64_t after_id) {
  absl::MutexLock lock(&mu_);
  // Newest `limit` (shown oldest first), or, following, the oldest `limit` after `after_id`.
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), absl::StrCat("SELECT ", kEventColumns, R"sql(
 FROM (
  SELECT * FROM events WHERE (?1 = '' OR host_id = ?1) AND (?2 = '' OR kind = ?2) AND id > ?4
  ORDER BY CASE WHEN ?4 > 0 THEN id ELSE -id END LIMIT ?3) ORDER BY id)sql")));
  s.Bind(1, host_id).Bind(2, kind).Bind(3, int64_t{limit}).Bind(4, static_cast<int64_t>(after_id));
  std::vector<v1::Event> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(EventFromRow(s));
  }
  return out;
}

}  // namespace kfleet::controller
