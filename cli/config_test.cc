#include "cli/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>

#include "common/files.h"

namespace kfleet::cli {
namespace {

using ::testing::HasSubstr;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kctl_config_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    home_ = tmpl;
    vars_["HOME"] = home_;
  }
  void TearDown() override { std::filesystem::remove_all(home_); }

  void WriteConfig(const std::string& text) {
    ASSERT_TRUE(MakeDirs(home_ + "/.config/kfleet").ok());
    ASSERT_TRUE(WriteFileAtomic(home_ + "/.config/kfleet/kctl.yaml", text).ok());
  }

  EnvLookup Env() {
    return [this](absl::string_view name) -> std::optional<std::string> {
      auto it = vars_.find(std::string(name));
      if (it == vars_.end()) return std::nullopt;
      return it->second;
    };
  }

  std::string home_;
  std::map<std::string, std::string> vars_;
};

// Validates the resolution order of the controller address: flag > env > config file > default.
TEST_F(ConfigTest, ControllerOrder) {
  GlobalOptions flags;
  auto c = ResolveConnection(flags, Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->controller, "127.0.0.1:7400");
  EXPECT_FALSE(c->insecure);

  WriteConfig("# kctl\ncontroller: 127.0.0.3:7000   # lab\n");
  c = ResolveConnection(flags, Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->controller, "127.0.0.3:7000");
  EXPECT_EQ(c->source, home_ + "/.config/kfleet/kctl.yaml");

  vars_["KFLEET_CONTROLLER"] = "127.0.0.2:7001";
  c = ResolveConnection(flags, Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->controller, "127.0.0.2:7001");
  EXPECT_EQ(c->source, "KFLEET_CONTROLLER");

  flags.controller = "127.0.0.1:7002";
  c = ResolveConnection(flags, Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->controller, "127.0.0.1:7002");
  EXPECT_EQ(c->source, "--controller");
}

// Validates the same order for insecure, including an environment that turns the file's value off.
TEST_F(ConfigTest, InsecureOrder) {
  WriteConfig("controller: \"localhost:7400\"\ninsecure: true\n");
  GlobalOptions flags;
  auto c = ResolveConnection(flags, Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->controller, "localhost:7400");
  EXPECT_TRUE(c->insecure);

  vars_["KFLEET_INSECURE"] = "0";
  c = ResolveConnection(flags, Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->insecure);

  flags.insecure = true;
  c = ResolveConnection(flags, Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->insecure);

  flags.insecure = false;
  vars_["KFLEET_INSECURE"] = "1";
  WriteConfig("insecure: false\n");
  c = ResolveConnection(flags, Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->insecure);
}

// Validates that XDG_CONFIG_HOME, when set, is where the file is read from.
TEST_F(ConfigTest, XdgConfigHome) {
  vars_["XDG_CONFIG_HOME"] = home_ + "/xdg";
  ASSERT_TRUE(MakeDirs(home_ + "/xdg/kfleet").ok());
  ASSERT_TRUE(WriteFileAtomic(home_ + "/xdg/kfleet/kctl.yaml", "controller: 127.0.0.9:1\n").ok());
  WriteConfig("controller: 127.0.0.8:1\n");
  auto c = ResolveConnection(GlobalOptions(), Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->controller, "127.0.0.9:1");
}

// Validates that a malformed file is an error naming the file, the line and the fix.
TEST_F(ConfigTest, MalformedFile) {
  WriteConfig("controller: 127.0.0.1:7400\n\ncontroler: x\n");
  auto c = ResolveConnection(GlobalOptions(), Env());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message(),
            home_ +
                "/.config/kfleet/kctl.yaml line 3: unknown key \"controler\" (did you mean "
                "\"controller\"?) (expected controller or insecure)");

  EXPECT_THAT(ParseConfigFile("just words\n", "f").status().message(),
              HasSubstr("f line 1: expected `key: value`"));
  EXPECT_THAT(ParseConfigFile("insecure: maybe\n", "f").status().message(),
              HasSubstr("f line 1: insecure: \"maybe\" is not a boolean"));
  EXPECT_THAT(ParseConfigFile("controller:\n", "f").status().message(),
              HasSubstr("controller needs HOST:PORT"));
}

// Validates that an address without a port is refused, naming where it came from.
TEST_F(ConfigTest, AddressNeedsPort) {
  GlobalOptions flags;
  flags.controller = "localhost";
  EXPECT_EQ(ResolveConnection(flags, Env()).status().message(),
            "controller address \"localhost\" (from --controller) is not HOST:PORT; write e.g. "
            "127.0.0.1:7400");
  vars_["KFLEET_CONTROLLER"] = "h:99999";
  EXPECT_THAT(ResolveConnection(GlobalOptions(), Env()).status().message(),
              HasSubstr("(from KFLEET_CONTROLLER)"));
  vars_["KFLEET_CONTROLLER"] = "[::1]:7400";
  EXPECT_TRUE(ResolveConnection(GlobalOptions(), Env()).ok());
}

// Validates that no HOME and no file still resolves to the default.
TEST_F(ConfigTest, NoHome) {
  vars_.clear();
  EXPECT_EQ(ConfigFilePath(Env()), "");
  auto c = ResolveConnection(GlobalOptions(), Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->controller, kDefaultController);
}

}  // namespace
}  // namespace kfleet::cli
