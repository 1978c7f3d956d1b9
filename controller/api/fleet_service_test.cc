#include "controller/api/fleet_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace kfleet::controller {
namespace {

v1::JobSpec Good() {
  v1::JobSpec spec;
  spec.mutable_hosts()->set_all(true);
  v1::Step* step = spec.add_steps();
  step->mutable_exec()->add_argv("uname");
  step->set_timeout("30s");
  return spec;
}

// Validates that job specs are checked field by field, and that errors name the field and fix.
TEST(ValidateJobSpecTest, NamesTheField) {
  EXPECT_TRUE(ValidateJobSpec(Good()).ok());

  v1::JobSpec no_steps = Good();
  no_steps.clear_steps();
  EXPECT_NE(ValidateJobSpec(no_steps).message().find("steps is empty"), std::string::npos);

  v1::JobSpec bad_timeout = Good();
  bad_timeout.mutable_steps(0)->set_timeout("soon");
  EXPECT_NE(ValidateJobSpec(bad_timeout).message().find("steps[0].timeout"), std::string::npos);

  v1::JobSpec empty_argv = Good();
  empty_argv.mutable_steps(0)->mutable_exec()->clear_argv();
  EXPECT_NE(ValidateJobSpec(empty_argv).message().find("steps[0].exec.argv is empty"),
            std::string::npos);

  v1::JobSpec two_selectors = Good();
  two_selectors.mutable_hosts()->add_names("a");
  EXPECT_NE(ValidateJobSpec(two_selectors).message().find("exactly one of all, names or labels"),
            std::string::npos);

  v1::JobSpec bad_name = Good();
  bad_name.mutable_hosts()->set_all(false);
  bad_name.mutable_hosts()->add_names("../x");
  EXPECT_EQ(ValidateJobSpec(bad_name).code(), absl::StatusCode::kInvalidArgument);

  v1::JobSpec no_kind = Good();
  no_kind.mutable_steps(0)->clear_exec();
  EXPECT_NE(ValidateJobSpec(no_kind).message().find("no step kind"), std::string::npos);
}

v1::Host MakeHost(const std::string& name, v1::HostState state, const std::string& role = "") {
  v1::Host h;
  h.set_id(absl::StrCat("h-", name));
  h.set_name(name);
  h.set_state(state);
  if (!role.empty()) (*h.mutable_labels())["role"] = role;
  (*h.mutable_labels())["pool"] = "local";
  return h;
}

// Validates that `all` takes the online test hosts and leaves out builders and offline hosts.
TEST(SelectOnlineHostsTest, AllLeavesOutBuilders) {
  std::vector<v1::Host> hosts = {MakeHost("local-builder", v1::ONLINE, "builder"),
                                 MakeHost("guest-1", v1::ONLINE, "guest"),
                                 MakeHost("guest-2", v1::OFFLINE), MakeHost("mail", v1::ONLINE)};
  v1::HostSelector all;
  all.set_all(true);
  absl::StatusOr<std::vector<std::string>> ids = SelectOnlineHosts(hosts, all);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, testing::ElementsAre("h-guest-1", "h-mail"));
  EXPECT_TRUE(IsBuilder(hosts[0]));
  EXPECT_FALSE(IsBuilder(hosts[1]));
}

// Validates that a builder is still taken when selected by its role=builder label.
TEST(SelectOnlineHostsTest, LabelSelectsBuilders) {
  std::vector<v1::Host> hosts = {MakeHost("local-builder", v1::ONLINE, "builder"),
                                 MakeHost("guest-1", v1::ONLINE)};
  v1::HostSelector by_role;
  (*by_role.mutable_labels())["role"] = "builder";
  absl::StatusOr<std::vector<std::string>> ids = SelectOnlineHosts(hosts, by_role);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, testing::ElementsAre("h-local-builder"));

  v1::HostSelector by_pool;
  (*by_pool.mutable_labels())["pool"] = "local";
  ids = SelectOnlineHosts(hosts, by_pool);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, testing::ElementsAre("h-local-builder", "h-guest-1"));
}

// Validates that `all` with only a builder online fails, naming the builder and how to target it.
TEST(SelectOnlineHostsTest, AllWithOnlyBuildersSaysHowToTargetThem) {
  std::vector<v1::Host> hosts = {MakeHost("local-builder", v1::ONLINE, "builder"),
                                 MakeHost("guest-1", v1::OFFLINE)};
  v1::HostSelector all;
  all.set_all(true);
  absl::StatusOr<std::vector<std::string>> ids = SelectOnlineHosts(hosts, all);
  ASSERT_EQ(ids.status().code(), absl::StatusCode::kFailedPrecondition) << ids.status();
  EXPECT_THAT(ids.status().message(), testing::HasSubstr("no test host is online"));
  EXPECT_THAT(ids.status().message(), testing::HasSubstr("leaves out builders"));
  EXPECT_THAT(ids.status().message(), testing::HasSubstr("online: local-builder"));
  EXPECT_THAT(ids.status().message(),
              testing::HasSubstr("--host local-builder or -l role=builder"));

  ids = SelectOnlineHosts({}, all);
  ASSERT_EQ(ids.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(ids.status().message(), testing::HasSubstr("start an agent"));
  EXPECT_THAT(ids.status().message(), testing::Not(testing::HasSubstr("online:")));

  v1::HostSelector by_pool;
  (*by_pool.mutable_labels())["pool"] = "far";
  ids = SelectOnlineHosts(hosts, by_pool);
  EXPECT_THAT(ids.status().message(), testing::HasSubstr("no online host carries labels pool=far"));
}

}  // namespace
}  // namespace kfleet::controller
