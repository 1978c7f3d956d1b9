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
    deps.image = [](const std::string&) -> absl::StatusOr<BootImage> {
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

  // Declared first, destroyed last: the feed posts to it.
  Executor executor_{1};
  std::string dir_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<LogStore> logs_;
  std::unique_ptr<ChangeFeed> feed_;
  std::unique_ptr<Fleet> fleet_;
  ProviderRecord record_;
  std::unique_ptr<PoolManager> pools_;
};

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

}  // namespace
}  // namespace kfleet::controller::provision
