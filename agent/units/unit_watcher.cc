#include "agent/units/unit_watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace kfleet::agent {
namespace {

constexpr char kSystemd[] = "org.freedesktop.systemd1";
constexpr char kManagerPath[] = "/org/freedesktop/systemd1";
constexpr char kManager[] = "org.freedesktop.systemd1.Manager";
constexpr char kUnitIface[] = "org.freedesktop.systemd1.Unit";
constexpr char kServiceIface[] = "org.freedesktop.systemd1.Service";
constexpr char kTimerIface[] = "org.freedesktop.systemd1.Timer";
constexpr char kUnitPathPrefix[] = "/org/freedesktop/systemd1/unit";
// A reconnect after the connection to systemd broke (systemd re-executed, say).
constexpr absl::Duration kReconnectEvery = absl::Seconds(5);

std::string Errno(int r) { return std::strerror(r < 0 ? -r : r); }

uint64_t NowUs() { return static_cast<uint64_t>(absl::ToUnixMicros(absl::Now())); }

struct BusDeleter {
  void operator()(sd_bus* bus) const { sd_bus_flush_close_unref(bus); }
};
using BusPtr = std::unique_ptr<sd_bus, BusDeleter>;

struct MessageDeleter {
  void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
using MessagePtr = std::unique_ptr<sd_bus_message, MessageDeleter>;

// An sd_bus_error freed on scope exit.
struct BusError {
  sd_bus_error e = SD_BUS_ERROR_NULL;
  ~BusError() { sd_bus_error_free(&e); }
  std::string text(int r) const { return e.message != nullptr ? std::string(e.message) : Errno(r); }
};

// systemd's own way for root (systemctl's): its private socket, which needs no dbus-daemon;
// else, or if that fails, the system bus.
absl::StatusOr<BusPtr> Connect() {
  if (::geteuid() == 0 && ::access("/run/systemd/private", F_OK) == 0) {
    sd_bus* raw = nullptr;
    if (sd_bus_new(&raw) >= 0) {
      BusPtr bus(raw);
      if (sd_bus_set_address(bus.get(), "unix:path=/run/systemd/private") >= 0 &&
          sd_bus_start(bus.get()) >= 0) {
        return bus;
      }
    }
  }
  sd_bus* raw = nullptr;
  int r = sd_bus_open_system(&raw);
  if (r < 0) {
    return absl::UnavailableError(absl::StrCat(
        "--watch-units: cannot reach systemd (its private socket /run/systemd/private, or the "
        "system bus): ",
        Errno(r), "; run the agent as root, or start dbus (systemctl start dbus)"));
  }
  return BusPtr(raw);
}

std::string UnitPath(const std::string& unit) {
  char* path = nullptr;
  if (sd_bus_path_encode(kUnitPathPrefix, unit.c_str(), &path) < 0) return "";
  std::string out(path);
  free(path);
  return out;
}

std::string GetString(sd_bus* bus, const std::string& path, const char* iface, const char* prop) {
  BusError err;
  char* value = nullptr;
  if (sd_bus_get_property_string(bus, kSystemd, path.c_str(), iface, prop, &err.e, &value) < 0) {
    return "";
  }
  std::string out(value);
  free(value);
  return out;
}

template <typename T>
T GetTrivial(sd_bus* bus, const std::string& path, const char* iface, const char* prop, char type) {
  BusError err;
  T value{};
  if (sd_bus_get_property_trivial(bus, kSystemd, path.c_str(), iface, prop, &err.e, type, &value) <
      0) {
    return T{};
  }
  return value;
}

std::vector<std::string> GetStrv(sd_bus* bus, const std::string& path, const char* iface,
                                 const char* prop) {
  BusError err;
  char** values = nullptr;
  std::vector<std::string> out;
  if (sd_bus_get_property_strv(bus, kSystemd, path.c_str(), iface, prop, &err.e, &values) < 0) {
    return out;
  }
  for (char** v = values; v != nullptr && *v != nullptr; ++v) {
    out.emplace_back(*v);
    free(*v);
  }
  free(values);
  return out;
}

// The interval of a timer's monotonic trigger: OnUnitInactiveSec first (the spacing after the
// last run ended), else OnUnitActiveSec, else the first one. 0 if none.
uint64_t TimerInterval(sd_bus* bus, const std::string& path) {
  BusError err;
  sd_bus_message* raw = nullptr;
  if (sd_bus_get_property(bus, kSystemd, path.c_str(), kTimerIface, "TimersMonotonic", &err.e, &raw,
                          "a(stt)") < 0) {
    return 0;
  }
  MessagePtr reply(raw);
  if (sd_bus_message_enter_container(reply.get(), 'a', "(stt)") < 0) return 0;
  std::map<std::string, uint64_t> by_base;
  const char* base = nullptr;
  uint64_t value = 0;
  uint64_t next = 0;
  while (sd_bus_message_read(reply.get(), "(stt)", &base, &value, &next) > 0) {
    by_base.emplace(base, value);
  }
  for (const char* wanted : {"OnUnitInactiveUSec", "OnUnitActiveUSec"}) {
    auto it = by_base.find(wanted);
    if (it != by_base.end()) return it->second;
  }
  return by_base.empty() ? 0 : by_base.begin()->second;
}

// The units loaded now whose names match `patterns` (ListUnitsByPatterns).
absl::StatusOr<std::vector<std::string>> ListUnits(sd_bus* bus,
                                                   const std::vector<std::string>& patterns) {
  sd_bus_message* raw = nullptr;
  int r = sd_bus_message_new_method_call(bus, &raw, kSystemd, kManagerPath, kManager,
                                         "ListUnitsByPatterns");
  if (r < 0) return absl::InternalError(absl::StrCat("ListUnitsByPatterns: ", Errno(r)));
  MessagePtr call(raw);
  std::vector<char*> states = {nullptr};
  std::vector<char*> globs;
  for (const std::string& p : patterns) globs.push_back(const_cast<char*>(p.c_str()));
  globs.push_back(nullptr);
  if ((r = sd_bus_message_append_strv(call.get(), states.data())) < 0 ||
      (r = sd_bus_message_append_strv(call.get(), globs.data())) < 0) {
    return absl::InternalError(absl::StrCat("ListUnitsByPatterns: ", Errno(r)));
  }
  BusError err;
  sd_bus_message* reply_raw = nullptr;
  r = sd_bus_call(bus, call.get(), 0, &err.e, &reply_raw);
  if (r < 0) {
    return absl::UnavailableError(
        absl::StrCat("--watch-units: systemd's ListUnitsByPatterns failed: ", err.text(r)));
  }
  MessagePtr reply(reply_raw);
  std::vector<std::string> names;
  if (sd_bus_message_enter_container(reply.get(), 'a', "(ssssssouso)") < 0) return names;
  const char *name, *description, *load, *active, *sub, *following, *path, *job_type, *job_path;
  uint32_t job_id = 0;
  while (sd_bus_message_read(reply.get(), "(ssssssouso)", &name, &description, &load, &active, &sub,
                             &following, &path, &job_id, &job_type, &job_path) > 0) {
    names.emplace_back(name);
  }
  return names;
}

// memory.peak of a cgroup (cgroup v2, Linux 5.19 and later), else memory.current. 0 if neither.
uint64_t ReadMemory(const std::string& root, const std::string& cgroup) {
  for (const char* file : {"/memory.peak", "/memory.current"}) {
    absl::StatusOr<std::string> text = ReadFile(absl::StrCat(root, cgroup, file), 64);
    uint64_t value = 0;
    if (text.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &value)) return value;
  }
  return 0;
}

}  // namespace

struct UnitWatcher::Impl {
  UnitWatcherOptions options;
  UnitTracker* tracker = nullptr;
  UnitWatcherHooks hooks;
  BusPtr bus;
  std::vector<sd_bus_slot*> slots;
  int stop_fd = -1;
  std::thread thread;
  std::atomic<bool> stopped{false};

  // Object path (a unit's or its timer's) -> the watched unit to read again when it changes.
  std::map<std::string, std::string> path_to_unit;
  std::set<std::string> dirty;  // units to read again
  bool relist = false;          // systemd reloaded: list the units again
  absl::Time next_memory_read = absl::InfinitePast();
  absl::Time next_reconnect = absl::InfinitePast();
  std::set<std::string> refused;  // matched past kMaxWatchedUnits, warned about once

  ~Impl() { DropBus(); }

  void Warn(const std::string& text) {
    if (hooks.warn) hooks.warn(text);
  }

  absl::Status Subscribe() {
    BusError err;
    int r = sd_bus_call_method(bus.get(), kSystemd, kManagerPath, kManager, "Subscribe", &err.e,
                               nullptr, "");
    if (r < 0) {
      return absl::UnavailableError(
          absl::StrCat("--watch-units: systemd refused Subscribe: ", err.text(r)));
    }
    // No sender in the matches: messages on systemd's private socket carry none.
    struct Match {
      const char* path;
      const char* iface;
      const char* member;
      sd_bus_message_handler_t handler;
    };
    const Match matches[] = {
        {nullptr, "org.freedesktop.DBus.Properties", "PropertiesChanged", &Impl::OnChanged},
        {kManagerPath, kManager, "UnitNew", &Impl::OnUnitNew},
        {kManagerPath, kManager, "Reloading", &Impl::OnReloading},
    };
    for (const Match& m : matches) {
      sd_bus_slot* slot = nullptr;
      r = sd_bus_match_signal(bus.get(), &slot, nullptr, m.path, m.iface, m.member, m.handler,
                              this);
      if (r < 0) {
        return absl::UnavailableError(
            absl::StrCat("--watch-units: cannot follow systemd's ", m.member, ": ", Errno(r)));
      }
      slots.push_back(slot);
    }
    return absl::OkStatus();
  }

  void DropBus() {
    for (sd_bus_slot* slot : slots) sd_bus_slot_unref(slot);
    slots.clear();
    bus.reset();
  }

  static int OnChanged(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<Impl*>(userdata);
    const char* path = sd_bus_message_get_path(m);
    if (path == nullptr) return 0;
    auto it = self->path_to_unit.find(path);
    if (it != self->path_to_unit.end()) self->dirty.insert(it->second);
    return 0;
  }

  static int OnUnitNew(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<Impl*>(userdata);
    const char* name = nullptr;
    const char* path = nullptr;
    if (sd_bus_message_read(m, "so", &name, &path) < 0) return 0;
    if (UnitMatches(self->options.patterns, name) && !self->tracker->Watches(name)) {
      self->dirty.insert(name);
    }
    return 0;
  }

  static int OnReloading(sd_bus_message* m, void* userdata, sd_bus_error*) {
    int active = 0;
    if (sd_bus_message_read(m, "b", &active) >= 0 && !active) {
      static_cast<Impl*>(userdata)->relist = true;
    }
    return 0;
  }

  // Lists the matching units and marks them to be read; the names of patterns that match none.
  absl::StatusOr<std::vector<std::string>> List() {
    std::vector<std::string> unmatched;
    ASSIGN_OR_RETURN(std::vector<std::string> names, ListUnits(bus.get(), options.patterns));
    for (const std::string& name : names) {
      if (UnitMatches(options.patterns, name)) dirty.insert(name);
    }
    for (const std::string& pattern : options.patterns) {
      bool any = false;
      for (const std::string& name : names) any |= UnitMatches({pattern}, name);
      if (!any) unmatched.push_back(pattern);
    }
    return unmatched;
  }

  void Read(const std::string& name) {
    sd_bus* b = bus.get();
    const std::string path = UnitPath(name);
    if (path.empty()) return;
    UnitSnapshot s;
    s.name = name;
    if (GetString(b, path, kUnitIface, "LoadState") == "not-found") return;
    s.active_state = GetString(b, path, kUnitIface, "ActiveState");
    s.result = GetString(b, path, kServiceIface, "Result");
    s.exec_start_us = GetTrivial<uint64_t>(b, path, kServiceIface, "ExecMainStartTimestamp", 't');
    s.exec_exit_us = GetTrivial<uint64_t>(b, path, kServiceIface, "ExecMainExitTimestamp", 't');
    s.exec_status = GetTrivial<int32_t>(b, path, kServiceIface, "ExecMainStatus", 'i');
    s.cgroup = GetString(b, path, kServiceIface, "ControlGroup");
    for (const std::string& by : GetStrv(b, path, kUnitIface, "TriggeredBy")) {
      if (!absl::EndsWith(by, ".timer")) continue;
      s.timer = by;
      const std::string timer_path = UnitPath(by);
      s.timer_last_trigger_us =
          GetTrivial<uint64_t>(b, timer_path, kTimerIface, "LastTriggerUSec", 't');
      s.timer_interval_us = TimerInterval(b, timer_path);
      path_to_unit[timer_path] = name;
      break;
    }
    if (!tracker->Observe(s)) {
      if (refused.insert(name).second) {
        Warn(absl::StrCat("--watch-units: ", name, " is left out: ", kMaxWatchedUnits,
                          " units are watched already (narrow the patterns)"));
      }
      return;
    }
    path_to_unit[path] = name;
    // A unit that just started: its memory from the start.
    if (s.active_state == "activating" || s.active_state == "active") {
      next_memory_read = absl::InfinitePast();
    }
  }

  void ReadMemory() {
    for (const auto& [unit, cgroup] : tracker->RunningCgroups()) {
      uint64_t bytes = ::kfleet::agent::ReadMemory(options.cgroup_root, cgroup);
      if (bytes > 0) tracker->ObserveMemory(unit, bytes);
    }
  }

  bool Reconnect() {
    absl::StatusOr<BusPtr> b = Connect();
    if (!b.ok()) return false;
    bus = *std::move(b);
    if (!Subscribe().ok()) {
      DropBus();
      return false;
    }
    relist = true;
    return true;
  }

  void Loop() {
    while (!stopped.load()) {
      if (bus == nullptr && absl::Now() >= next_reconnect) {
        next_reconnect = absl::Now() + kReconnectEvery;
        if (Reconnect()) Warn("--watch-units: connected to systemd again");
      }
      if (bus != nullptr) {
        int r = 0;
        while ((r = sd_bus_process(bus.get(), nullptr)) > 0) {
        }
        if (r < 0) {
          Warn(absl::StrCat("--watch-units: lost the connection to systemd (", Errno(r),
                            "); reconnecting"));
          DropBus();
          next_reconnect = absl::Now() + kReconnectEvery;
          continue;
        }
        if (relist) {
          relist = false;
          List().IgnoreError();
        }
        std::set<std::string> now = std::move(dirty);
        dirty.clear();
        for (const std::string& name : now) Read(name);
      }
      const bool running = !tracker->RunningCgroups().empty();
      if (running && absl::Now() >= next_memory_read) {
        ReadMemory();
        next_memory_read = absl::Now() + options.memory_interval;
      }
      for (const UnitRun& run : tracker->TakeSettledRuns(NowUs())) {
        if (hooks.on_run) hooks.on_run(run);
      }
      Wait(running);
    }
  }

  // Until the bus has something, a running unit's memory is due, a run settles, or Stop.
  void Wait(bool running) {
    absl::Time until = absl::InfiniteFuture();
    if (running) until = std::min(until, next_memory_read);
    if (std::optional<uint64_t> settle = tracker->NextSettleUs()) {
      until = std::min(until, absl::FromUnixMicros(static_cast<int64_t>(*settle)));
    }
    if (bus == nullptr) until = std::min(until, next_reconnect);
    pollfd fds[2] = {{stop_fd, POLLIN, 0}, {-1, 0, 0}};
    int n = 1;
    if (bus != nullptr) {
      fds[1].fd = sd_bus_get_fd(bus.get());
      int events = sd_bus_get_events(bus.get());
      fds[1].events = static_cast<short>(events < 0 ? POLLIN : events);
      uint64_t bus_timeout = 0;
      if (sd_bus_get_timeout(bus.get(), &bus_timeout) >= 0 && bus_timeout != UINT64_MAX) {
        // CLOCK_MONOTONIC µs: relative to now.
        timespec ts{};
        ::clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now_mono =
            static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
        absl::Duration left = bus_timeout > now_mono
                                  ? absl::Microseconds(static_cast<int64_t>(bus_timeout - now_mono))
                                  : absl::ZeroDuration();
        until = std::min(until, absl::Now() + left);
      }
      n = 2;
    }
    int timeout_ms = -1;
    if (until != absl::InfiniteFuture()) {
      absl::Duration left = std::max(absl::ZeroDuration(), until - absl::Now());
      timeout_ms =
          static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))));
    }
    ::poll(fds, static_cast<nfds_t>(n), timeout_ms);
  }
};

absl::Status UnitWatcher::CheckHost(const UnitWatcherOptions& options) {
  if (::access(options.systemd_run_dir.c_str(), F_OK) == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "--watch-units: this host does not run systemd (no ", options.systemd_run_dir,
      "), so it has no units to watch; drop --watch-units, or run the commands as kfleet "
      "schedules (kctl schedule add NAME --host HOST --every-after 5m -- CMD...)"));
}

absl::StatusOr<std::unique_ptr<UnitWatcher>> UnitWatcher::Start(UnitWatcherOptions options,
                                                                UnitTracker* tracker,
                                                                UnitWatcherHooks hooks) {
  RETURN_IF_ERROR(CheckHost(options));
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->tracker = tracker;
  impl->hooks = std::move(hooks);
  ASSIGN_OR_RETURN(impl->bus, Connect());
  RETURN_IF_ERROR(impl->Subscribe());
  ASSIGN_OR_RETURN(std::vector<std::string> unmatched, impl->List());
  for (const std::string& pattern : unmatched) {
    impl->Warn(absl::StrCat("--watch-units: \"", pattern,
                            "\" matches no unit systemd has loaded now; it is watched when one "
                            "is loaded (check the name: systemctl list-units --all '",
                            pattern, "')"));
  }
  impl->stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl->stop_fd < 0) return absl::InternalError(absl::StrCat("eventfd: ", Errno(errno)));
  Impl* p = impl.get();
  impl->thread = std::thread([p] { p->Loop(); });
  return std::unique_ptr<UnitWatcher>(new UnitWatcher(std::move(impl)));
}

UnitWatcher::UnitWatcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

UnitWatcher::~UnitWatcher() { Stop(); }

void UnitWatcher::Stop() {
  if (impl_->stopped.exchange(true)) return;
  uint64_t one = 1;
  // An eventfd write fails only when the counter would overflow: it is readable then anyway.
  (void)!::write(impl_->stop_fd, &one, sizeof one);
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->DropBus();
  ::close(impl_->stop_fd);
}

}  // namespace kfleet::agent
