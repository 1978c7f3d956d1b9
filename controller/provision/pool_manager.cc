#include "controller/provision/pool_manager.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace kfleet::controller::provision {
namespace {

// A guest that stays offline this long is power-cycled (again at most this often).
constexpr absl::Duration kOfflinePowerCycleAfter = absl::Minutes(2);
constexpr size_t kConsoleTailBytes = 256 << 10;
// The backoff of a pool whose bring-up fails: the first retry after a second, doubling to five
// minutes, each cut by up to a quarter at random so that pools failing together drift apart.
constexpr absl::Duration kFirstRetry = absl::Seconds(1);
constexpr absl::Duration kMaxRetry = absl::Minutes(5);
constexpr double kMaxJitter = 0.25;
// Operations whose failures are counted. Bringing a guest up (its provider, image, creation,
// boot) is what a pool's backoff gates; destroy and power_cycle are retried per guest.
constexpr char kBringupOp[] = "bringup";
constexpr char kDestroyOp[] = "destroy";
constexpr char kPowerCycleOp[] = "power_cycle";

int64_t Ms(absl::Time t) { return absl::ToUnixMillis(t); }

bool Covers(const std::map<std::string, std::string>& pool_labels,
            const std::map<std::string, std::string>& want) {
  for (const auto& [k, v] : want) {
    auto it = pool_labels.find(k);
    if (it == pool_labels.end() || it->second != v) return false;
  }
  return true;
}

// The clock of a Tick, `now`, moved on by the real time since `since`: slow work (an image build)
// may take minutes, and what follows it happens that much later.
absl::Time Later(absl::Time now, absl::Time since) { return now + (absl::Now() - since); }

// "1s", "2m8s": a delay as people read it.
std::string Readable(absl::Duration d) {
  return absl::FormatDuration(
      absl::Trunc(d, d < absl::Seconds(10) ? absl::Milliseconds(100) : absl::Seconds(1)));
}

}  // namespace

PoolManager::PoolManager(std::vector<PoolConfig> pools, Deps deps)
    : pools_(std::move(pools)), deps_(std::move(deps)) {}

const PoolConfig* PoolManager::FindPool(const std::string& name) const {
  for (const PoolConfig& p : pools_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

void PoolManager::Event(const std::string& host_id, const std::string& kind,
                        const std::string& message, const std::string& command_id) {
  v1::Event e;
  e.set_host_id(host_id);
  // Before its agent registers, a guest's host has no record yet: name it after the guest.
  for (const v1::Guest& g : deps_.store->ListGuests().value_or(std::vector<v1::Guest>())) {
    if (g.host_id() == host_id) e.set_host_name(g.name());
  }
  e.set_time_unix_ms(Ms(absl::Now()));
  e.set_kind(kind);
  e.set_message(message);
  e.set_command_id(command_id);
  if (absl::Status s = deps_.store->AddEvent(e); !s.ok()) LogWarning(s.ToString());
  LogInfo(absl::StrCat("event ", kind, ": ", message));
}

void PoolManager::Act(ApplyOutcome& outcome) {
  for (Dispatch& d : outcome.dispatch) {
    v1::ControllerMessage m;
    *m.mutable_command() = std::move(d.command);
    deps_.fleet->Send(d.host_id, std::move(m));
  }
  deps_.feed->Publish();
}

absl::Duration PoolManager::NextDelay(int failures) {
  absl::Duration d = kFirstRetry;
  for (int i = 1; i < failures && d < kMaxRetry; ++i) d *= 2;
  d = std::min(d, kMaxRetry);
  return d * (1 - std::uniform_real_distribution<double>(0, kMaxJitter)(jitter_));
}

absl::Duration PoolManager::Failed(absl::Time now, const std::string& pool, const v1::Guest* guest,
                                   const std::string& op, const std::string& error) {
  std::string about =
      absl::StrCat("pool ", pool, guest ? absl::StrCat(", guest ", guest->name()) : "");
  absl::Duration delay;
  std::string note;
  bool store_event;
  {
    absl::MutexLock lock(&trouble_mu_);
    Trouble& t = trouble_[pool];
    t.error = error;
    t.guest = guest ? guest->name() : "";
    t.error_time = now;
    Trouble::Op& o = t.ops[op];
    ++o.failures;
    if (o.text != error) {
      o.text = error;
      o.same = 0;
      o.since = now;
    }
    ++o.same;
    delay = NextDelay(o.failures);
    if (op == kBringupOp) t.next_attempt = now + delay;
    // The first time, on a change, and after 2, 4, 8, ... repeats: a few events a day for an
    // error that lasts, each saying for how long.
    store_event = (o.same & (o.same - 1)) == 0;
    note = absl::StrCat("attempt ", o.failures,
                        o.same > 1 ? absl::StrCat(", the same error ", o.same,
                                                  " times in a row for ", Readable(now - o.since))
                                   : "",
                        "; next attempt in ", Readable(delay));
  }
  LogWarning(absl::StrCat(about, ": ", op, " failed: ", error, " (", note, ")"));
  if (store_event) {
    Event(guest ? guest->host_id() : "", "guest_failed",
          absl::StrCat(about, ": ", error, " (", note, ")"));
  }
  return delay;
}

void PoolManager::CameUp(const std::string& pool) {
  absl::MutexLock lock(&trouble_mu_);
  auto it = trouble_.find(pool);
  if (it == trouble_.end()) return;
  LogInfo(absl::StrCat("pool ", pool, ": a guest came up, clearing the last error (",
                       it->second.error, ") and the backoff"));
  trouble_.erase(it);
}

void PoolManager::Succeeded(const std::string& pool, const std::string& op) {
  absl::MutexLock lock(&trouble_mu_);
  auto it = trouble_.find(pool);
  if (it != trouble_.end()) it->second.ops.erase(op);
}

bool PoolManager::BackingOff(const std::string& pool, absl::Time now) {
  absl::MutexLock lock(&trouble_mu_);
  auto it = trouble_.find(pool);
  return it != trouble_.end() && now < it->second.next_attempt;
}

absl::StatusOr<Provider*> PoolManager::ProviderFor(const PoolConfig& pool) {
  auto it = providers_.find(pool.name);
  if (it != providers_.end()) return it->second.get();
  ASSIGN_OR_RETURN(std::unique_ptr<Provider> p, deps_.make_provider(pool));
  Provider* raw = p.get();
  providers_[pool.name] = std::move(p);
  return raw;
}

absl::StatusOr<std::vector<v1::Pool>> PoolManager::ListPools() {
  ASSIGN_OR_RETURN(std::vector<v1::Guest> guests, deps_.store->ListGuests());
  ASSIGN_OR_RETURN(auto waiting, deps_.store->WaitingSelectors());
  std::vector<v1::Pool> out;
  for (const PoolConfig& c : pools_) {
    v1::Pool& p = out.emplace_back();
    p.set_name(c.name);
    p.set_provider(c.provider);
    p.set_image(c.image);
    p.set_cpus(c.cpus);
    p.set_memory_mib(c.memory_mib);
    p.set_min(c.min);
    p.set_max(c.max);
    p.set_idle_timeout_ms(absl::ToInt64Milliseconds(c.idle_timeout));
    p.mutable_labels()->insert(c.labels.begin(), c.labels.end());
    for (const v1::Guest& g : guests) {
      if (g.pool() == c.name) *p.add_guests() = g;
    }
    for (const auto& sel : waiting)
      p.set_waiting_commands(p.waiting_commands() + Covers(c.labels, sel));
  }
  absl::MutexLock lock(&trouble_mu_);
  for (v1::Pool& p : out) {
    auto it = trouble_.find(p.name());
    if (it == trouble_.end()) continue;
    const Trouble& t = it->second;
    p.set_last_error(t.error);
    p.set_last_error_guest(t.guest);
    p.set_last_error_unix_ms(Ms(t.error_time));
    auto bringup = t.ops.find(kBringupOp);
    if (bringup != t.ops.end()) p.set_failed_attempts(bringup->second.failures);
    if (t.next_attempt != absl::InfinitePast()) p.set_next_attempt_unix_ms(Ms(t.next_attempt));
  }
  return out;
}

std::vector<v1::Guest> PoolManager::NewGuests(const PoolConfig& pool, int count,
                                              const std::vector<v1::Guest>& existing) {
  std::set<std::string> taken;
  for (const v1::Guest& g : existing) taken.insert(g.name());
  std::vector<v1::Guest> out;
  for (int n = 1; static_cast<int>(out.size()) < count; ++n) {
    std::string name = absl::StrCat(pool.name, "-", n);
    if (taken.count(name)) continue;
    v1::Guest& g = out.emplace_back();
    g.set_name(name);
    g.set_pool(pool.name);
    g.set_host_id(NewId("h-"));
    g.set_state("creating");
    g.set_created_unix_ms(Ms(absl::Now()));
  }
  return out;
}

absl::StatusOr<std::vector<v1::Guest>> PoolManager::Bringup(const std::string& pool_name,
                                                            int count) {
  const PoolConfig* pool = FindPool(pool_name);
  if (pool == nullptr) {
    std::vector<std::string> names;
    for (const PoolConfig& p : pools_) names.push_back(p.name);
    return absl::NotFoundError(absl::StrCat(
        "no pool \"", pool_name, "\" (pools: ", absl::StrJoin(names, ", "), "; see `kctl pools`)"));
  }
  ASSIGN_OR_RETURN(std::vector<v1::Guest> all, deps_.store->ListGuests());
  int have = 0;
  for (const v1::Guest& g : all) have += g.pool() == pool_name;
  if (have + count > static_cast<int>(pool->max)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("pool ", pool_name, " has ", have, " of at most ", pool->max,
                     " guests: bring up at most ", std::max(0, static_cast<int>(pool->max) - have),
                     " more, or raise max in the controller's config"));
  }
  std::vector<v1::Guest> created = NewGuests(*pool, count, all);
  for (const v1::Guest& g : created) RETURN_IF_ERROR(deps_.store->PutGuest(g));
  {
    // Someone asked (perhaps after fixing what failed): try at once rather than after the
    // backoff. A new failure continues the backoff where it was.
    absl::MutexLock lock(&trouble_mu_);
    auto it = trouble_.find(pool_name);
    if (it != trouble_.end()) it->second.next_attempt = absl::InfinitePast();
  }
  deps_.feed->Publish();
  return created;
}

absl::Status PoolManager::CreateGuest(absl::Time now, v1::Guest guest) {
  const absl::Time entered = absl::Now();
  const PoolConfig* pool = FindPool(guest.pool());
  if (pool == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("its pool ", guest.pool(), " is not in the controller's config any more"));
  }
  // Nothing is made for the guest before these two: on failure it stays "creating", the reason
  // in its detail, and is tried again when its pool's backoff allows.
  auto again = [&](const std::string& what, const absl::Status& why) -> absl::Status {
    absl::Status s(why.code(), absl::StrCat(what, ": ", why.message()));
    guest.set_detail(std::string(s.message()));
    RETURN_IF_ERROR(deps_.store->PutGuest(guest));
    return s;
  };
  absl::StatusOr<Provider*> provider = ProviderFor(*pool);
  if (!provider.ok()) {
    return again(absl::StrCat("opening the ", pool->provider, " provider"), provider.status());
  }
  absl::StatusOr<BootImage> image = deps_.image(pool->image);
  if (!image.ok()) {
    return again(absl::StrCat("building the ", pool->image, " image"), image.status());
  }
  guest.clear_detail();
  GuestSpec spec;
  spec.name = guest.name();
  spec.pool = pool->name;
  spec.cpus = pool->cpus;
  spec.memory_mib = pool->memory_mib;
  spec.disks = pool->disks;
  spec.kernel = image->kernel;
  spec.initrd = image->initrd;
  spec.base_image = image->base_image;
  spec.cmdline = image->cmdline;
  spec.controller_port = controller_port_;
  std::vector<std::string> labels;
  for (const auto& [k, v] : pool->labels) labels.push_back(absl::StrCat(k, "=", v));
  spec.settings["kfleet.host_id"] = guest.host_id();
  spec.settings["kfleet.name"] = guest.name();
  spec.settings["kfleet.labels"] = absl::StrJoin(labels, ",");
  // The agent reports it (HostFacts.boot_loader): kernels reach such a guest through the provider.
  if (!image->kernel.empty()) spec.settings["kfleet.boot"] = "direct";
  spec.settings["kfleet.controller"] =
      pool->provider == "libvirt" ? absl::StrCat(kGuestControllerIp, ":", controller_port_.load())
                                  : absl::StrCat("127.0.0.1:", controller_port_.load());
  auto fail = [&](const absl::Status& why) -> absl::Status {
    guest.set_state("failed");
    guest.set_detail(std::string(why.message()));
    RETURN_IF_ERROR(deps_.store->PutGuest(guest));
    return why;
  };
  // A token of its own, through fw_cfg: nothing secret is baked into the shared image, and
  // nothing goes on the kernel command line, which any process in the guest can read.
  if (deps_.enrol) {
    absl::StatusOr<GuestEnrolment> enrolment = deps_.enrol(guest, pool->labels);
    if (!enrolment.ok()) {
      return fail(absl::Status(
          enrolment.status().code(),
          absl::StrCat("enrolment of guest ", guest.name(), ": ", enrolment.status().message())));
    }
    if (enrolment->token.empty()) {
      return fail(absl::InternalError(
          absl::StrCat("enrolment of guest ", guest.name(), " gave it no token")));
    }
    spec.fw_cfg[kTokenFwCfgName] = std::move(enrolment->token);
    if (!enrolment->ca_pem.empty()) spec.fw_cfg[kCaCertFwCfgName] = std::move(enrolment->ca_pem);
  }
  LogInfo(absl::StrCat("pool ", pool->name, ": creating guest ", guest.name()));
  absl::StatusOr<GuestInfo> info = (*provider)->Create(spec);
  if (!info.ok()) {
    // Its token must not outlive the guest it was made for.
    if (deps_.enrol && deps_.forget) deps_.forget(guest);
    return fail(
        absl::Status(info.status().code(), absl::StrCat("creating it with the ", pool->provider,
                                                        " provider: ", info.status().message())));
  }
  guest.set_state("running");
  guest.set_accel(info->accel);
  // Its boot timeout runs from here, not from the bring-up: the image may have taken a while.
  now = Later(now, entered);
  guest.set_created_unix_ms(Ms(now));
  RETURN_IF_ERROR(deps_.store->PutGuest(guest));
  runtime_[guest.name()] = Runtime{now};
  Event(guest.host_id(), "guest_created",
        absl::StrCat(guest.name(), " created in pool ", pool->name, " (", info->accel, ")"));
  return absl::OkStatus();
}

absl::Status PoolManager::DestroyGuest(const v1::Guest& guest, const std::string& why) {
  const PoolConfig* pool = FindPool(guest.pool());
  if (pool != nullptr) {
    ASSIGN_OR_RETURN(Provider * provider, ProviderFor(*pool));
    RETURN_IF_ERROR(provider->Destroy(guest.name()));
  }
  if (deps_.forget) deps_.forget(guest);
  // Whatever ran there will not finish.
  absl::StatusOr<v1::Host> host = deps_.store->GetHost(guest.host_id());
  if (host.ok()) {
    for (const std::string& id : host->running_command_ids()) {
      v1::CommandResult r;
      r.set_verdict(v1::INFRA_ERROR);
      r.set_lost(true);
      r.set_exit_code(-1);
      r.set_detail(absl::StrCat("guest ", guest.name(), " was destroyed (", why, ")"));
      absl::StatusOr<ApplyOutcome> out = deps_.store->FinishCommand(id, r, Ms(absl::Now()));
      if (out.ok()) Act(*out);
    }
  }
  RETURN_IF_ERROR(deps_.store->DeleteGuest(guest.name()));
  RETURN_IF_ERROR(deps_.store->ForgetHost(guest.host_id()));
  runtime_.erase(guest.name());
  LogInfo(absl::StrCat("pool ", guest.pool(), ": destroyed guest ", guest.name(), " (", why, ")"));
  deps_.feed->Publish();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> PoolManager::Destroy(const std::string& name_or_pool) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::vector<v1::Guest> guests, deps_.store->ListGuests());
  bool is_pool = FindPool(name_or_pool) != nullptr;
  std::vector<std::string> destroyed;
  for (const v1::Guest& g : guests) {
    if (g.name() != name_or_pool && !(is_pool && g.pool() == name_or_pool)) continue;
    RETURN_IF_ERROR(DestroyGuest(g, "kctl destroy"));
    destroyed.push_back(g.name());
  }
  if (destroyed.empty() && !is_pool) {
    return absl::NotFoundError(absl::StrCat("no guest or pool \"", name_or_pool,
                                            "\": `kctl pools` lists pools and their guests"));
  }
  return destroyed;
}

void PoolManager::Autoscale(absl::Time now, const std::vector<v1::Guest>& guests) {
  absl::StatusOr<std::vector<std::map<std::string, std::string>>> waiting =
      deps_.store->WaitingSelectors();
  absl::StatusOr<std::set<std::string>> busy = deps_.store->BusyHosts();
  if (!waiting.ok() || !busy.ok()) return;
  for (const PoolConfig& pool : pools_) {
    int demand = 0;
    for (const auto& sel : *waiting) demand += Covers(pool.labels, sel);
    std::vector<const v1::Guest*> mine;
    int busy_guests = 0;
    for (const v1::Guest& g : guests) {
      if (g.pool() != pool.name || g.state() == "failed") continue;
      mine.push_back(&g);
      bool is_busy = busy->count(g.host_id()) > 0;
      busy_guests += is_busy;
      auto rt = runtime_.find(g.name());
      if (rt != runtime_.end() && is_busy) rt->second.last_busy = now;
    }
    // Enough guests for what runs and what waits, within [min, max].
    int target =
        std::clamp(busy_guests + demand, static_cast<int>(pool.min), static_cast<int>(pool.max));
    int have = static_cast<int>(mine.size());
    // A pool backing off grows again at its next attempt: each failed guest of a failed
    // bring-up leaves the count, so growing now would fail guest after guest.
    if (have < target && BackingOff(pool.name, now)) continue;
    if (have < target) {
      LogInfo(absl::StrCat("pool ", pool.name, ": ", demand, " commands wait, growing from ", have,
                           " to ", target, " guests"));
      for (const v1::Guest& g : NewGuests(pool, target - have, guests)) {
        if (absl::Status s = deps_.store->PutGuest(g); !s.ok()) LogWarning(s.ToString());
      }
      continue;
    }
    if (demand > 0) continue;
    // Shrink: idle running guests past the idle timeout, never below min.
    for (const v1::Guest* g : mine) {
      if (have <= static_cast<int>(pool.min)) break;
      auto rt = runtime_.find(g->name());
      if (g->state() != "running" || busy->count(g->host_id()) || rt == runtime_.end()) continue;
      if (now - rt->second.last_busy < pool.idle_timeout) continue;
      if (now < rt->second.provider_retry_at) continue;
      if (absl::Status s = DestroyGuest(*g, "idle timeout"); !s.ok()) {
        rt->second.provider_retry_at =
            now + Failed(now, pool.name, g, kDestroyOp,
                         absl::StrCat("destroying the idle guest: ", s.message()));
        continue;
      }
      Succeeded(pool.name, kDestroyOp);
      --have;
    }
  }
}

void PoolManager::HandleOverdueReboots(absl::Time now, const std::vector<v1::Guest>& guests) {
  absl::StatusOr<std::vector<v1::CommandInfo>> overdue = deps_.store->OverdueReboots(Ms(now));
  if (!overdue.ok()) return;
  for (const v1::CommandInfo& c : *overdue) {
    const v1::Guest* guest = nullptr;
    for (const v1::Guest& g : guests) {
      if (g.host_id() == c.host_id()) guest = &g;
    }
    v1::CommandResult r;
    r.set_verdict(v1::BOOT_FAILED);
    r.set_exit_code(-1);
    r.set_wall_ms(Ms(now) - (c.started_unix_ms() ? c.started_unix_ms() : c.created_unix_ms()));
    if (guest == nullptr) {
      r.set_detail(absl::StrCat(c.host_name(), " did not register again before the deadline (",
                                c.step().timeout().empty() ? "5m" : c.step().timeout(),
                                "); it is not a guest of a pool, so nobody can power-cycle it"));
    } else {
      const PoolConfig* pool = FindPool(guest->pool());
      absl::StatusOr<Provider*> provider =
          pool ? ProviderFor(*pool) : absl::NotFoundError("no pool");
      // The console up to now is the evidence: keep it with the command before the power-cycle.
      CopyConsoles({*guest});
      absl::Status cycled =
          provider.ok() ? (*provider)->PowerCycle(guest->name()) : provider.status();
      runtime_[guest->name()].last_power_cycle = now;
      if (!cycled.ok()) {
        Failed(now, guest->pool(), guest, kPowerCycleOp,
               absl::StrCat("power-cycling it after a reboot it did not come back from: ",
                            cycled.message()));
      }
      r.set_detail(absl::StrCat(
          c.host_name(), " did not register again before the deadline (",
          c.step().timeout().empty() ? "5m" : c.step().timeout(), "); ",
          cycled.ok() ? "power-cycled" : absl::StrCat("power-cycle failed: ", cycled.message()),
          "; console: kctl logs ", c.id(), " --stream console"));
      Event(c.host_id(), "power_cycle",
            absl::StrCat(guest->name(), " power-cycled: no registration after reboot"), c.id());
    }
    Event(c.host_id(), "boot_failed", r.detail(), c.id());
    absl::StatusOr<ApplyOutcome> out = deps_.store->FinishCommand(c.id(), r, Ms(now));
    if (out.ok()) Act(*out);
  }
}

void PoolManager::RunControllerCommands(absl::Time now, const std::vector<v1::Guest>& guests) {
  absl::StatusOr<std::vector<v1::CommandInfo>> pending = deps_.store->PendingControllerCommands();
  if (!pending.ok()) return;
  for (const v1::CommandInfo& c : *pending) {
    const v1::Guest* guest = nullptr;
    for (const v1::Guest& g : guests) {
      if (g.host_id() == c.host_id() && g.state() == "running") guest = &g;
    }
    const PoolConfig* pool = guest ? FindPool(guest->pool()) : nullptr;
    absl::StatusOr<Provider*> provider =
        pool ? ProviderFor(*pool)
             : absl::FailedPreconditionError(
                   absl::StrCat(c.host_name(), " is not a running guest of a pool"));
    if (c.step().has_kernel_install()) {
      InstallKernel(now, c, guest, pool, provider.status());
      continue;
    }
    const v1::RebootStep& reboot = c.step().reboot();
    absl::Status booted = provider.status();
    BootImage files;
    if (booted.ok() && reboot.via_provider()) {
      absl::StatusOr<BootImage> f = KernelFiles(c.step().reboot().expect_identity(), c, *pool);
      if (f.ok()) files = *std::move(f);
      booted = f.status();
    }
    if (booted.ok()) {
      if (absl::Status s = deps_.store->MarkStarted(c.id(), Ms(now)); !s.ok()) continue;
      booted = (*provider)->BootOnce(guest->name(), reboot.cmdline(), files.kernel, files.initrd);
    }
    if (booted.ok()) {
      runtime_[guest->name()].last_power_cycle = now;
      std::string what;
      if (reboot.via_provider()) absl::StrAppend(&what, " into kernel ", reboot.expect_release());
      if (!reboot.cmdline().empty()) {
        absl::StrAppend(&what, " with a one-time kernel command line: ", reboot.cmdline());
      }
      Event(c.host_id(), "reboot", absl::StrCat(guest->name(), " reset", what), c.id());
      continue;
    }
    v1::CommandResult r;
    r.set_verdict(v1::INFRA_ERROR);
    r.set_exit_code(-1);
    r.set_detail(absl::StrCat("reboot through the provider: ", booted.message()));
    absl::StatusOr<ApplyOutcome> out = deps_.store->FinishCommand(c.id(), r, Ms(now));
    if (out.ok()) Act(*out);
  }
}

absl::StatusOr<BootImage> PoolManager::KernelFiles(const std::string& identity,
                                                   const v1::CommandInfo& c,
                                                   const PoolConfig& pool) {
  ASSIGN_OR_RETURN(v1::Job job, deps_.store->GetJob(c.job_id()));
  if (job.build().identity() != identity || identity.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", c.job_id(), " has no stored kernel build ", identity.substr(0, 12)));
  }
  if (!deps_.kernel_boot_files) return absl::UnimplementedError("no artifact store");
  return deps_.kernel_boot_files(job.build(), pool.image);
}

void PoolManager::InstallKernel(absl::Time now, const v1::CommandInfo& c, const v1::Guest* guest,
                                const PoolConfig* pool, absl::Status usable) {
  const v1::KernelBuild& build = c.step().kernel_install().build();
  if (absl::Status s = deps_.store->MarkStarted(c.id(), Ms(now)); !s.ok()) return;
  absl::StatusOr<BootImage> files =
      usable.ok() ? KernelFiles(build.identity(), c, *pool) : absl::StatusOr<BootImage>(usable);
  v1::CommandResult r;
  r.set_wall_ms(absl::ToInt64Milliseconds(absl::Now() - now));
  if (files.ok()) {
    r.set_verdict(v1::PASS);
    r.set_detail(absl::StrCat("kernel ", build.release(), " ready for ", guest->name(),
                              "; the provider boots it once at the reboot step"));
    v1::LogChunk chunk;
    chunk.set_command_id(c.id());
    chunk.set_stream(v1::STDOUT);
    chunk.set_data(absl::StrCat("direct-boot guest ", guest->name(), ": kernel ", files->kernel,
                                "\ninitrd ", files->initrd, "\n"));
    if (auto s = deps_.logs->WriteDurable({&chunk}); !s.ok()) LogWarning(s.status().ToString());
  } else {
    r.set_verdict(v1::INFRA_ERROR);
    r.set_exit_code(-1);
    r.set_detail(absl::StrCat("install kernel ", build.release(),
                              " through the provider: ", files.status().message()));
  }
  absl::StatusOr<ApplyOutcome> out = deps_.store->FinishCommand(c.id(), r, Ms(now));
  if (out.ok()) Act(*out);
}

void PoolManager::CopyConsoles(const std::vector<v1::Guest>& guests) {
  for (const v1::Guest& g : guests) {
    if (g.state() != "running") continue;
    const PoolConfig* pool = FindPool(g.pool());
    if (pool == nullptr) continue;
    absl::StatusOr<Provider*> provider = ProviderFor(*pool);
    if (!provider.ok()) continue;
    absl::StatusOr<std::string> tail = (*provider)->ConsoleLog(g.name(), kConsoleTailBytes);
    if (!tail.ok()) continue;
    Runtime& rt = runtime_[g.name()];
    // The provider returns the tail of an append-only file: find what is new by its size.
    absl::StatusOr<v1::Host> host = deps_.store->GetHost(g.host_id());
    std::string fresh;
    if (tail->size() >= kConsoleTailBytes) {
      fresh = *tail;  // more than a tail's worth arrived, or we lost track: take what there is
    } else if (tail->size() > rt.console_offset) {
      fresh = tail->substr(rt.console_offset);
    } else if (tail->size() < rt.console_offset) {
      fresh = *tail;  // the file was replaced (power-cycle without append)
    }
    rt.console_offset = tail->size();
    if (fresh.empty() || !host.ok()) continue;
    for (const std::string& id : host->running_command_ids()) {
      v1::LogChunk chunk;
      chunk.set_command_id(id);
      chunk.set_stream(v1::CONSOLE);
      chunk.set_offset(deps_.logs->Size(id, v1::CONSOLE));
      chunk.set_data(fresh);
      if (auto s = deps_.logs->WriteDurable({&chunk}); !s.ok()) LogWarning(s.status().ToString());
    }
  }
}

void PoolManager::Tick(absl::Time now) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::vector<v1::Guest>> guests = deps_.store->ListGuests();
  if (!guests.ok()) return;
  for (const v1::Guest& g : *guests) {
    // One failure puts the pool's other creating guests off until its next attempt too.
    if (g.state() != "creating" || BackingOff(g.pool(), now)) continue;
    const absl::Time started = absl::Now();
    if (absl::Status s = CreateGuest(now, g); !s.ok()) {
      // The backoff runs from the failure: a build that failed after minutes is not retried at
      // once.
      Failed(Later(now, started), g.pool(), &g, kBringupOp, std::string(s.message()));
    }
    deps_.feed->Publish();
  }
  guests = deps_.store->ListGuests();
  if (!guests.ok()) return;
  for (v1::Guest& g : *guests) {
    if (g.state() != "running") continue;
    if (!runtime_.count(g.name())) runtime_[g.name()] = Runtime{now};  // after a restart
    absl::StatusOr<v1::Host> host = deps_.store->GetHost(g.host_id());
    if (host.ok() && g.registered_unix_ms() == 0) {
      g.set_registered_unix_ms(host->registered_unix_ms());
      deps_.store->PutGuest(g).IgnoreError();
      Event(g.host_id(), "guest_registered",
            absl::StrCat(g.name(), " registered ",
                         absl::FormatDuration(
                             absl::Milliseconds(host->registered_unix_ms() - g.created_unix_ms())),
                         " after it was created"));
      CameUp(g.pool());
    }
    const PoolConfig* pool = FindPool(g.pool());
    if (!host.ok() && pool &&
        now - absl::FromUnixMillis(g.created_unix_ms()) > pool->boot_timeout) {
      std::string console;
      if (auto p = ProviderFor(*pool); p.ok()) {
        console = (*p)->ConsoleLog(g.name(), 2000).value_or("");
      }
      LogWarning(absl::StrCat("guest ", g.name(), " never registered; console tail:\n", console));
      g.set_state("failed");
      g.set_detail(absl::StrCat("its agent never registered within the boot timeout (",
                                absl::FormatDuration(pool->boot_timeout),
                                "); the console's tail is in the controller's log"));
      deps_.store->PutGuest(g).IgnoreError();
      Failed(now, g.pool(), &g, kBringupOp, g.detail());
      deps_.feed->Publish();
      continue;
    }
    // Offline for long: power-cycle, at most every kOfflinePowerCycleAfter.
    Runtime& rt = runtime_[g.name()];
    if (host.ok() && host->state() == v1::OFFLINE && pool != nullptr &&
        now - absl::FromUnixMillis(host->last_seen_unix_ms()) > kOfflinePowerCycleAfter &&
        now - rt.last_power_cycle > kOfflinePowerCycleAfter && now >= rt.provider_retry_at) {
      absl::StatusOr<Provider*> p = ProviderFor(*pool);
      absl::Status cycled = p.ok() ? (*p)->PowerCycle(g.name()) : p.status();
      if (cycled.ok()) {
        Succeeded(g.pool(), kPowerCycleOp);
        rt.last_power_cycle = now;
        Event(g.host_id(), "power_cycle",
              absl::StrCat(g.name(), " power-cycled: offline since ",
                           absl::FormatTime(absl::FromUnixMillis(host->last_seen_unix_ms()))));
      } else {
        rt.provider_retry_at =
            now +
            Failed(now, g.pool(), &g, kPowerCycleOp,
                   absl::StrCat("power-cycling it, offline since ",
                                absl::FormatTime(absl::FromUnixMillis(host->last_seen_unix_ms())),
                                ": ", cycled.message()));
      }
    }
  }
  RunControllerCommands(now, *guests);
  HandleOverdueReboots(now, *guests);
  CopyConsoles(*guests);
  Autoscale(now, *guests);
}

}  // namespace kfleet::controller::provision
