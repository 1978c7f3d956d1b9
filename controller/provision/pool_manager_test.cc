#include "controller/provision/pool_manager.h"

#include <stdlib.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/executor.h"
#include "common/files.h"
#include "controller/provision/guest_files.h"
#include "controller/store/sqlite_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kfleet::controller::provision {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

// What the fake provider was asked to do; outlives the providers the pool manager owns.
struct ProviderRecord {
  absl::Mutex mu;
  std::vector<GuestSpec> created ABSL_GUARDED_BY(mu);
  std::vector<std::string> destroyed ABSL_GUARDED_BY(mu);
  absl::Status create_result ABSL_GUARDED_BY(mu);
};

class FakeProvider : public Provider {
 public:
  explicit FakeProvider(ProviderRecord* record) : record_(record) {}

  absl::StatusOr<GuestInfo> Create(const GuestSpec& spec) override {
    absl::MutexLock lock(&record_->mu);
    record_->created.push_back(spec);
    if (!record_->create_result.ok()) return record_->create_result;
    return GuestInfo{spec.name, true, "tcg", ""};
  }
  absl::Status Destroy(const std::string& name) override {
    absl::MutexLock lock(&record_->mu);
    record_->destroyed.push_back(name);
    return absl::OkStatus();
  }
  absl::Status PowerCycle(const std::string&) override { return absl::OkStatus(); }
  absl::Status SetKernel(const std::string&, const std::string&, const std::string&) override {
    return absl::OkStatus();
  }
  absl::Status BootOnce(const std::string&, const std::string&, const std::string&,
                        const std::string&) override {
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ConsoleLog(const std::string&, size_t) override {
    return std::string();
  }
  absl::StatusOr<std::vector<GuestInfo>> List() override { return std::vector<GuestInfo>(); }

 private:
  ProviderRecord* const record_;
};

// What the enrolment hooks were called with.
struct EnrolCall {
  std::string name;
  std::string host_id;
  std::map<std::string, std::string> labels;
};

class PoolManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kfleet-pools-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(dir_ + "/kfleet.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ASSERT_TRUE(MakeDirs(dir_ + "/logs").ok());
    logs_ = std::make_unique<LogStore>(dir_ + "/logs");
    feed_ = std::make_unique<ChangeFeed>(&executor_);
    fleet_ = std::make_unique<Fleet>(store_.get(), feed_.get(), LivenessSettings{});
  }

  void TearDown() override {
    pools_.reset();
    fleet_.reset();
    EXPECT_TRUE(RemoveTree(dir_).ok());
  }

  // A pool manager with the default pool (labelled role=guest too) and the given hooks.
  void Start(decltype(PoolManager::Deps::enrol) enrol, decltype(PoolManager::Deps::forget) forget) {
    std::vector<PoolConfig> pools = DefaultPools();
    pools[0].labels["role"] = "guest";
    PoolManager::Deps deps;
    deps.store = store_.get();
    deps.logs = logs_.get();
    deps.fleet = fleet_.get();
    deps.feed = feed_.get();
    deps.make_provider = [this](const PoolConfig&) -> absl::StatusOr<std::unique_ptr<Provider>> {
      return std::make_unique<FakeProvider>(&record_);
    };
    deps.image = [this](const std::string&) -> absl::StatusOr<BootImage> {
      ++image_calls_;
      if (!image_result_.ok()) return image_result_;
      return BootImage{"/images/vmlinuz", "/images/initrd.img", "", "quiet"};
    };
    deps.enrol = std::move(enrol);
    deps.forget = std::move(forget);
    pools_ = std::make_unique<PoolManager>(std::move(pools), std::move(deps));
    pools_->set_controller_port(7400);
  }

  // Brings one guest of the default pool up and runs the round that creates it.
  v1::Guest BringOneUp() {
    absl::StatusOr<std::vector<v1::Guest>> guests = pools_->Bringup("local", 1);
    EXPECT_TRUE(guests.ok()) << guests.status();
    if (!guests.ok() || guests->size() != 1) return v1::Guest();
    pools_->Tick(absl::Now());
    return StoredGuest(guests->front().name());
  }

  v1::Guest StoredGuest(const std::string& name) {
    absl::StatusOr<std::vector<v1::Guest>> guests = store_->ListGuests();
    EXPECT_TRUE(guests.ok()) << guests.status();
    for (const v1::Guest& g : guests.value_or(std::vector<v1::Guest>())) {
      if (g.name() == name) return g;
    }
    ADD_FAILURE() << "no stored guest " << name;
    return v1::Guest();
  }

  std::vector<GuestSpec> Created() {
    absl::MutexLock lock(&record_.mu);
    return record_.created;
  }

  v1::Pool LocalPool() {
    absl::StatusOr<std::vector<v1::Pool>> pools = pools_->ListPools();
    EXPECT_TRUE(pools.ok()) << pools.status();
    if (!pools.ok() || pools->empty()) return v1::Pool();
    return pools->front();
  }

  // When the pool manager makes its next bring-up attempt in the default pool (the ms after the
  // one ListPools says, which truncates to ms).
  absl::Time NextAttempt() { return absl::FromUnixMillis(LocalPool().next_attempt_unix_ms() + 1); }

  // Runs Tick at `now`; returns whether it tried to get the pool's image.
  bool TickTried(absl::Time now) {
    int before = image_calls_;
    pools_->Tick(now);
    return image_calls_ > before;
  }

  std::vector<v1::Event> FailedEvents() {
    absl::StatusOr<std::vector<v1::Event>> events = store_->ListEvents("", "guest_failed", 1000, 0);
    EXPECT_TRUE(events.ok()) << events.status();
    return events.value_or(std::vector<v1::Event>());
  }

  // The agent of `guest` says Hello, as it does when its guest has booted.
  void Registers(const v1::Guest& guest, absl::Time now) {
    v1::Hello hello;
    hello.set_host_id(guest.host_id());
    hello.set_name(guest.name());
    hello.set_boot_id("b-1");
    ASSERT_TRUE(store_->RegisterHost(hello, absl::ToUnixMillis(now)).ok());
  }

  // Declared first, destroyed last: the feed posts to it.
  Executor executor_{1};
  std::string dir_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<LogStore> logs_;
  std::unique_ptr<ChangeFeed> feed_;
  std::unique_ptr<Fleet> fleet_;
  ProviderRecord record_;
  absl::Status image_result_;  // what getting an image answers (OK: an image)
  int image_calls_ = 0;
  std::unique_ptr<PoolManager> pools_;
};

constexpr char kNoRecipe[] =
    "the image recipe deploy/image/tiny/build.sh was not found: pass --image-recipes DIR";

// Validates that a created guest's spec carries the token and CA that enrol made for that guest
// (its name, host id and the pool's labels), as fw_cfg entries and nowhere else.
TEST_F(PoolManagerTest, CreatedGuestCarriesItsEnrolment) {
  std::vector<EnrolCall> calls;
  Start(
      [&calls](const v1::Guest& guest,
               const std::map<std::string, std::string>& labels) -> absl::StatusOr<GuestEnrolment> {
        calls.push_back({guest.name(), guest.host_id(), labels});
        return GuestEnrolment{absl::StrCat("kft_for_", guest.name()), "-----BEGIN CERT-----\n"};
      },
      nullptr);
  v1::Guest guest = BringOneUp();
  EXPECT_EQ(guest.state(), "running") << guest.detail();

  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].name, "local-1");
  EXPECT_EQ(calls[0].host_id, guest.host_id());
  EXPECT_THAT(calls[0].labels, UnorderedElementsAre(Pair("pool", "local"), Pair("role", "guest")));

  std::vector<GuestSpec> created = Created();
  ASSERT_EQ(created.size(), 1u);
  const GuestSpec& spec = created[0];
  EXPECT_EQ(spec.settings.at("kfleet.host_id"), guest.host_id());
  EXPECT_THAT(spec.fw_cfg, ElementsAre(Pair(kCaCertFwCfgName, "-----BEGIN CERT-----\n"),
                                       Pair(kTokenFwCfgName, "kft_for_local-1")));
  EXPECT_THAT(spec.cmdline, Not(HasSubstr("kft_")));
  for (const auto& [key, value] : spec.settings) {
    EXPECT_THAT(value, Not(HasSubstr("kft_"))) << key;
  }
}

// Validates that without an enrol hook (a plaintext controller) guests get no fw_cfg entries.
TEST_F(PoolManagerTest, NoEnrolmentWithoutHook) {
  Start(nullptr, nullptr);
  EXPECT_EQ(BringOneUp().state(), "running");
  std::vector<GuestSpec> created = Created();
  ASSERT_EQ(created.size(), 1u);
  EXPECT_THAT(created[0].fw_cfg, IsEmpty());
}

// Validates that a failed enrolment fails the guest, with the reason, before any provider call.
TEST_F(PoolManagerTest, EnrolmentFailureFailsTheGuest) {
  Start([](const v1::Guest&, const std::map<std::string, std::string>&)
            -> absl::StatusOr<GuestEnrolment> { return absl::UnavailableError("CA not ready"); },
        nullptr);
  v1::Guest guest = BringOneUp();
  EXPECT_EQ(guest.state(), "failed");
  EXPECT_THAT(guest.detail(), HasSubstr("enrolment of guest local-1: CA not ready"));
  EXPECT_THAT(Created(), IsEmpty());
}

// Validates that destroying a guest forgets it only after the provider destroyed it.
TEST_F(PoolManagerTest, ForgetsDestroyedGuest) {
  std::vector<std::string> forgotten;
  Start(
      [](const v1::Guest&,
         const std::map<std::string, std::string>&) -> absl::StatusOr<GuestEnrolment> {
        return GuestEnrolment{"kft", "pem"};
      },
      [this, &forgotten](const v1::Guest& guest) {
        absl::MutexLock lock(&record_.mu);
        EXPECT_THAT(record_.destroyed, ElementsAre(guest.name())) << "forgotten before destroyed";
        forgotten.push_back(guest.host_id());
      });
  v1::Guest guest = BringOneUp();
  ASSERT_EQ(guest.state(), "running");
  EXPECT_THAT(forgotten, IsEmpty());
  absl::StatusOr<std::vector<std::string>> destroyed = pools_->Destroy("local-1");
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_THAT(forgotten, ElementsAre(guest.host_id()));
}

// Validates that a guest the provider could not create does not keep a working token.
TEST_F(PoolManagerTest, ForgetsGuestWhoseCreationFailed) {
  {
    absl::MutexLock lock(&record_.mu);
    record_.create_result = absl::UnavailableError("no capacity");
  }
  std::vector<std::string> forgotten;
  Start(
      [](const v1::Guest&,
         const std::map<std::string, std::string>&) -> absl::StatusOr<GuestEnrolment> {
        return GuestEnrolment{"kft", "pem"};
      },
      [&forgotten](const v1::Guest& guest) { forgotten.push_back(guest.name()); });
  v1::Guest guest = BringOneUp();
  EXPECT_EQ(guest.state(), "failed");
  EXPECT_THAT(guest.detail(), HasSubstr("no capacity"));
  EXPECT_THAT(forgotten, ElementsAre("local-1"));
}

// Validates that a guest whose image cannot be built stays "creating" with the reason, and that
// the pool tries again after 1 s, 2 s, 4 s, 8 s (each up to a quarter shorter), not every tick.
TEST_F(PoolManagerTest, ImageFailureBacksOffExponentially) {
  image_result_ = absl::FailedPreconditionError(kNoRecipe);
  Start(nullptr, nullptr);
  ASSERT_TRUE(pools_->Bringup("local", 1).ok());
  absl::Time t0 = absl::Now();
  std::vector<absl::Duration> tries;
  for (absl::Duration d; d <= absl::Seconds(20); d += absl::Milliseconds(100)) {
    if (TickTried(t0 + d)) tries.push_back(d);
  }
  ASSERT_EQ(tries.size(), 5u) << "expected tries at about 0, 1, 3, 7 and 15 s";
  absl::Duration step = absl::Seconds(1);
  for (size_t i = 1; i < tries.size(); ++i, step *= 2) {
    EXPECT_GE(tries[i] - tries[i - 1], step * 0.75) << i;
    EXPECT_LE(tries[i] - tries[i - 1], step + absl::Milliseconds(100)) << i;
  }
  v1::Guest guest = StoredGuest("local-1");
  EXPECT_EQ(guest.state(), "creating");
  EXPECT_EQ(guest.detail(), absl::StrCat("building the tiny image: ", kNoRecipe));
  EXPECT_THAT(Created(), IsEmpty());
}

// Validates that the backoff stops doubling at 5 minutes.
TEST_F(PoolManagerTest, BackoffIsCappedAtFiveMinutes) {
  image_result_ = absl::FailedPreconditionError(kNoRecipe);
  Start(nullptr, nullptr);
  ASSERT_TRUE(pools_->Bringup("local", 1).ok());
  absl::Time now = absl::Now();
  absl::Time last = now;
  std::vector<absl::Duration> gaps;
  for (int attempt = 0; attempt < 14; ++attempt) {
    ASSERT_TRUE(TickTried(now)) << attempt;
    gaps.push_back(now - last);
    last = now;
    absl::Time next = NextAttempt();
    EXPECT_FALSE(TickTried(next - absl::Milliseconds(2))) << "tried before the backoff ended";
    now = next;
  }
  EXPECT_EQ(LocalPool().failed_attempts(), 14u);
  // Gaps: 0, 1s, 2s, 4s ... 256s, then 300s (each up to a quarter shorter).
  EXPECT_GE(gaps[9], absl::Seconds(256) * 0.75);
  for (size_t i = 10; i < gaps.size(); ++i) {
    EXPECT_LE(gaps[i], absl::Minutes(5) + absl::Milliseconds(2)) << i;
    EXPECT_GE(gaps[i], absl::Minutes(5) * 0.75) << i;
  }
}

// Validates that a failing bring-up stores a guest_failed event naming the pool, the guest and
// the error when it first happens, after 2, 4, 8... attempts with the same error (saying so),
// and again when the error changes.
TEST_F(PoolManagerTest, FailedEventsWhenErrorFirstHappensChangesAndRepeats) {
  image_result_ = absl::FailedPreconditionError(kNoRecipe);
  Start(nullptr, nullptr);
  ASSERT_TRUE(pools_->Bringup("local", 1).ok());
  absl::Time now = absl::Now();
  std::vector<size_t> events_after;  // after attempt 1, 2, ...
  for (int attempt = 1; attempt <= 9; ++attempt) {
    ASSERT_TRUE(TickTried(now)) << attempt;
    events_after.push_back(FailedEvents().size());
    now = NextAttempt();
  }
  EXPECT_THAT(events_after, ElementsAre(1, 2, 2, 3, 3, 3, 3, 4, 4));
  std::vector<v1::Event> events = FailedEvents();
  ASSERT_EQ(events.size(), 4u);
  v1::Guest guest = StoredGuest("local-1");
  EXPECT_EQ(events[0].kind(), "guest_failed");
  EXPECT_EQ(events[0].host_id(), guest.host_id());
  EXPECT_EQ(events[0].host_name(), "local-1");
  EXPECT_THAT(events[0].message(),
              HasSubstr(absl::StrCat("pool local, guest local-1: building the tiny image: ",
                                     kNoRecipe, " (attempt 1; next attempt in ")));
  EXPECT_THAT(events[1].message(), HasSubstr("(attempt 2, the same error 2 times in a row for "));
  EXPECT_THAT(events[3].message(), HasSubstr("(attempt 8, the same error 8 times in a row for "));

  image_result_ = absl::InternalError("building the tiny image failed (exit 1)");
  ASSERT_TRUE(TickTried(now));
  events = FailedEvents();
  ASSERT_EQ(events.size(), 5u) << "a changed error is stored at once";
  EXPECT_THAT(events[4].message(), HasSubstr("failed (exit 1) (attempt 10; next attempt in "));
}

// Validates that ListPools shows the pool's last error, its guest, when, and the attempts, until
// a guest of the pool registers; and that the backoff starts again at 1 s after that.
TEST_F(PoolManagerTest, PoolShowsLastErrorUntilAGuestRegisters) {
  image_result_ = absl::FailedPreconditionError(kNoRecipe);
  Start(nullptr, nullptr);
  ASSERT_TRUE(pools_->Bringup("local", 1).ok());
  absl::Time now = absl::Now();
  for (int attempt = 0; attempt < 5; ++attempt) {
    ASSERT_TRUE(TickTried(now));
    if (attempt < 4) now = NextAttempt();
  }
  v1::Pool pool = LocalPool();
  EXPECT_EQ(pool.last_error(), absl::StrCat("building the tiny image: ", kNoRecipe));
  EXPECT_EQ(pool.last_error_guest(), "local-1");
  EXPECT_EQ(pool.last_error_unix_ms(), absl::ToUnixMillis(now));
  EXPECT_EQ(pool.failed_attempts(), 5u);
  EXPECT_GE(pool.next_attempt_unix_ms(), absl::ToUnixMillis(now + absl::Seconds(12)));
  EXPECT_LE(pool.next_attempt_unix_ms(), absl::ToUnixMillis(now + absl::Seconds(16)));

  // The image is there now: the guest is made, but the pool's trouble lasts until it registers.
  image_result_ = absl::OkStatus();
  now = NextAttempt();
  ASSERT_TRUE(TickTried(now));
  v1::Guest guest = StoredGuest("local-1");
  EXPECT_EQ(guest.state(), "running");
  EXPECT_EQ(guest.detail(), "");
  EXPECT_EQ(LocalPool().failed_attempts(), 5u);

  Registers(guest, now);
  pools_->Tick(now + absl::Seconds(1));
  pool = LocalPool();
  EXPECT_EQ(pool.last_error(), "");
  EXPECT_EQ(pool.last_error_guest(), "");
  EXPECT_EQ(pool.failed_attempts(), 0u);
  EXPECT_EQ(pool.next_attempt_unix_ms(), 0);

  image_result_ = absl::FailedPreconditionError(kNoRecipe);
  ASSERT_TRUE(pools_->Bringup("local", 1).ok());
  now += absl::Seconds(2);
  ASSERT_TRUE(TickTried(now));
  EXPECT_EQ(LocalPool().failed_attempts(), 1u);
  EXPECT_LE(NextAttempt(), now + absl::Seconds(1) + absl::Milliseconds(1)) << "backoff reset";
}

// Validates that a bring-up asked for while the pool backs off is tried at the next tick.
TEST_F(PoolManagerTest, BringupTriesAgainAtOnce) {
  image_result_ = absl::FailedPreconditionError(kNoRecipe);
  Start(nullptr, nullptr);
  ASSERT_TRUE(pools_->Bringup("local", 1).ok());
  absl::Time now = absl::Now();
  for (int attempt = 0; attempt < 6; ++attempt) {
    ASSERT_TRUE(TickTried(now));
    if (attempt < 5) now = NextAttempt();
  }
  EXPECT_FALSE(TickTried(now + absl::Seconds(1))) << "backing off for 24..32 s";
  ASSERT_TRUE(pools_->Bringup("local", 1).ok());
  EXPECT_TRUE(TickTried(now + absl::Seconds(2)));
  EXPECT_EQ(LocalPool().failed_attempts(), 7u) << "the backoff goes on from where it was";
}

// Validates that a guest the provider could not create fails with the provider's error, which
// also becomes the pool's last error and a guest_failed event.
TEST_F(PoolManagerTest, ProviderFailureIsStoredAsEvent) {
  {
    absl::MutexLock lock(&record_.mu);
    record_.create_result = absl::UnavailableError("no capacity");
  }
  Start(nullptr, nullptr);
  v1::Guest guest = BringOneUp();
  EXPECT_EQ(guest.state(), "failed");
  EXPECT_EQ(guest.detail(), "creating it with the libvirt provider: no capacity");
  v1::Pool pool = LocalPool();
  EXPECT_EQ(pool.last_error(), guest.detail());
  EXPECT_EQ(pool.failed_attempts(), 1u);
  std::vector<v1::Event> events = FailedEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0].message(),
              HasSubstr("pool local, guest local-1: creating it with the libvirt provider: no "
                        "capacity (attempt 1; next attempt in "));
}

// Validates that a guest whose agent never registers fails at the boot timeout, as a failed
// bring-up of its pool with an event.
TEST_F(PoolManagerTest, BootTimeoutIsAFailedBringup) {
  Start(nullptr, nullptr);
  v1::Guest guest = BringOneUp();
  ASSERT_EQ(guest.state(), "running");
  pools_->Tick(absl::FromUnixMillis(guest.created_unix_ms()) + absl::Minutes(5) + absl::Seconds(1));
  guest = StoredGuest("local-1");
  EXPECT_EQ(guest.state(), "failed");
  EXPECT_THAT(guest.detail(), HasSubstr("never registered within the boot timeout (5m)"));
  EXPECT_EQ(LocalPool().failed_attempts(), 1u);
  std::vector<v1::Event> events = FailedEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0].message(), HasSubstr("pool local, guest local-1: its agent never"));
}

}  // namespace
}  // namespace kfleet::controller::provision
