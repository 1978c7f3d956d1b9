#include "cli/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "cli/exit_codes.h"
#include "common/files.h"

namespace kfleet::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kCaPem[] = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
constexpr char kCertPem[] = "-----BEGIN CERTIFICATE-----\nADMIN\n-----END CERTIFICATE-----\n";
constexpr char kKeyPem[] = "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n";

// The kctl.yaml the controller writes on first start, with its PKI beside it.
constexpr char kControllerConfig[] =
    "# kctl configuration for the kfleet controller (kctl --config THIS_FILE)\n"
    "controller: 127.0.0.1:7400\n"
    "ca: pki/ca.crt\n"
    "cert: pki/admin.crt\n"
    "key: pki/admin.key\n";

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kctl_config_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    home_ = tmpl;
    vars_["HOME"] = home_;
  }
  void TearDown() override { std::filesystem::remove_all(home_); }

  void Write(const std::string& path, const std::string& text) {
    std::string dir = path.substr(0, path.rfind('/'));
    ASSERT_TRUE(MakeDirs(dir).ok());
    ASSERT_TRUE(WriteFileAtomic(path, text).ok());
  }

  // A state dir as the controller leaves it: STATE/kctl.yaml and STATE/pki/{ca,admin}.*.
  std::string WriteStateDir(const std::string& config_text = kControllerConfig) {
    std::string state = home_ + "/state";
    Write(state + "/pki/ca.crt", kCaPem);
    Write(state + "/pki/admin.crt", kCertPem);
    Write(state + "/pki/admin.key", kKeyPem);
    Write(state + "/kctl.yaml", config_text);
    return state + "/kctl.yaml";
  }

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
                "\"controller\"?) (expected controller, insecure, ca, cert, key or server_name)");

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

// Validates the file the controller writes: address from the file, the PEM contents of ca, cert
// and key read relative to the file's directory, and a TLS transport made of them.
TEST_F(ConfigTest, ControllerWrittenFile) {
  std::string path = WriteStateDir(absl::StrCat(kControllerConfig, "server_name: kfleet.lab\n"));
  GlobalOptions flags;
  flags.config = path;
  auto c = ResolveConnection(flags, Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->controller, "127.0.0.1:7400");
  EXPECT_EQ(c->source, path);
  EXPECT_EQ(c->config_path, path);
  EXPECT_FALSE(c->insecure);
  EXPECT_EQ(c->ca_pem, kCaPem);
  EXPECT_EQ(c->cert_pem, kCertPem);
  EXPECT_EQ(c->key_pem, kKeyPem);
  EXPECT_EQ(c->server_name, "kfleet.lab");

  auto security = TransportFor(*c);
  ASSERT_TRUE(security.ok()) << security.status();
  EXPECT_FALSE(security->insecure);
  EXPECT_EQ(security->ca_pem, kCaPem);
  EXPECT_EQ(security->cert_pem, kCertPem);
  EXPECT_EQ(security->key_pem, kKeyPem);
  EXPECT_EQ(security->server_name, "kfleet.lab");
}

// Validates how the config file's paths are resolved: absolute as they are, ~/ from HOME, others
// from the config file's directory (also when the config file was named by a relative path).
TEST_F(ConfigTest, RelativePaths) {
  EXPECT_EQ(ResolveConfigPath("pki/ca.crt", "/var/lib/kfleet/kctl.yaml", Env()),
            "/var/lib/kfleet/pki/ca.crt");
  EXPECT_EQ(ResolveConfigPath("/etc/kfleet/ca.crt", "/var/lib/kfleet/kctl.yaml", Env()),
            "/etc/kfleet/ca.crt");
  EXPECT_EQ(ResolveConfigPath("~/ca.crt", "/var/lib/kfleet/kctl.yaml", Env()), home_ + "/ca.crt");
  EXPECT_EQ(ResolveConfigPath("ca.crt", "kfleet-alice/kctl.yaml", Env()), "kfleet-alice/ca.crt");
  EXPECT_EQ(ResolveConfigPath("ca.crt", "kctl.yaml", Env()), "ca.crt");
  EXPECT_EQ(ResolveConfigPath("ca.crt", "/kctl.yaml", Env()), "/ca.crt");

  // Absolute paths in the file work wherever the file is.
  std::string state = home_ + "/state";
  WriteStateDir(absl::StrCat("ca: ", state, "/pki/ca.crt\ncert: ", state,
                             "/pki/admin.crt\nkey: ", state, "/pki/admin.key\n"));
  Write(home_ + "/elsewhere/kctl.yaml", absl::StrCat("ca: ", state, "/pki/ca.crt\n"));
  GlobalOptions flags;
  flags.config = home_ + "/elsewhere/kctl.yaml";
  auto c = ResolveConnection(flags, Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ca_pem, kCaPem);
  EXPECT_EQ(c->cert_pem, "");
}

// Validates that a missing PEM file is an error naming the config file, the key and the path.
TEST_F(ConfigTest, MissingCertFile) {
  std::string path = WriteStateDir();
  ASSERT_EQ(std::remove((home_ + "/state/pki/admin.crt").c_str()), 0);
  GlobalOptions flags;
  flags.config = path;
  auto c = ResolveConnection(flags, Env());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            path + ": cert: cannot read " + home_ +
                "/state/pki/admin.crt: No such file or directory (a relative path is read from "
                "the config file's directory)");
  EXPECT_EQ(ExitCodeForStatus(c.status()), kExitUsage);

  // Plaintext reads no TLS file, so a broken one does not stand in its way.
  flags.insecure = true;
  EXPECT_TRUE(ResolveConnection(flags, Env()).ok());
}

// Validates the checks on the PEM files: their size is bounded, they must be PEM, and cert and key
// come together.
TEST_F(ConfigTest, PemFileChecks) {
  std::string path = WriteStateDir();
  GlobalOptions flags;
  flags.config = path;
  Write(home_ + "/state/pki/ca.crt", std::string(kMaxPemFileBytes + 1, 'x'));
  EXPECT_THAT(ResolveConnection(flags, Env()).status().message(),
              HasSubstr(": ca: cannot read " + home_ + "/state/pki/ca.crt: "));
  EXPECT_THAT(ResolveConnection(flags, Env()).status().message(),
              HasSubstr("larger than the limit of 65536 bytes"));

  Write(home_ + "/state/pki/ca.crt", "not a certificate\n");
  EXPECT_EQ(
      ResolveConnection(flags, Env()).status().message(),
      path + ": ca: " + home_ + "/state/pki/ca.crt is not a PEM file (it has no -----BEGIN line)");

  Write(path, "ca: pki/ca.crt\ncert: pki/admin.crt\n");
  EXPECT_EQ(ResolveConnection(flags, Env()).status().message(),
            path +
                ": cert is set but key is not: give both, kctl's certificate (cert:) and its "
                "private key (key:)");
}

// Validates that a mistyped key gets a suggestion and the list of keys.
TEST_F(ConfigTest, UnknownKeySuggestion) {
  EXPECT_EQ(ParseConfigFile("ca: ca.crt\ncetr: a.crt\n", "f").status().message(),
            "f line 2: unknown key \"cetr\" (did you mean \"cert\"?) (expected controller, "
            "insecure, ca, cert, key or server_name)");
  EXPECT_THAT(ParseConfigFile("server-name: x\n", "f").status().message(),
              HasSubstr("(did you mean \"server_name\"?)"));
  EXPECT_THAT(ParseConfigFile("key:\n", "f").status().message(),
              HasSubstr("f line 1: key needs a file name"));
}

// Validates which config file is read: --config, else KFLEET_CONFIG, else the default; and that
// --controller still wins over the file's controller.
TEST_F(ConfigTest, ConfigFileOrder) {
  WriteConfig("controller: 127.0.0.1:1\n");
  Write(home_ + "/env.yaml", "controller: 127.0.0.1:2\n");
  Write(home_ + "/flag.yaml", "controller: 127.0.0.1:3\n");
  GlobalOptions flags;
  auto c = ResolveConnection(flags, Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->controller, "127.0.0.1:1");

  vars_["KFLEET_CONFIG"] = home_ + "/env.yaml";
  c = ResolveConnection(flags, Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->controller, "127.0.0.1:2");
  EXPECT_EQ(c->config_path, home_ + "/env.yaml");

  flags.config = home_ + "/flag.yaml";
  c = ResolveConnection(flags, Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->controller, "127.0.0.1:3");
  EXPECT_EQ(c->source, home_ + "/flag.yaml");

  flags.controller = "127.0.0.1:4";
  c = ResolveConnection(flags, Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->controller, "127.0.0.1:4");
  EXPECT_EQ(c->source, "--controller");
  EXPECT_EQ(c->config_path, home_ + "/flag.yaml");
}

// Validates that a config file the user named must exist, while the default one need not.
TEST_F(ConfigTest, NamedConfigFileMissing) {
  GlobalOptions flags;
  flags.config = home_ + "/nope.yaml";
  auto c = ResolveConnection(flags, Env());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "the config file " + home_ +
                "/nope.yaml (from --config) does not exist; the controller writes "
                "STATE_DIR/kctl.yaml on first start");
  EXPECT_EQ(ExitCodeForStatus(c.status()), kExitUsage);

  vars_["KFLEET_CONFIG"] = home_ + "/gone.yaml";
  EXPECT_THAT(std::string(ResolveConnection(GlobalOptions(), Env()).status().message()),
              StartsWith("the config file " + home_ + "/gone.yaml (from KFLEET_CONFIG)"));

  vars_["KFLEET_CONFIG"] = "";  // empty counts as unset
  EXPECT_TRUE(ResolveConnection(GlobalOptions(), Env()).ok());
}

// Validates that without --insecure and without a CA kctl says how to get TLS settings.
TEST_F(ConfigTest, NoTlsSettings) {
  auto c = ResolveConnection(GlobalOptions(), Env());
  ASSERT_TRUE(c.ok()) << c.status();
  auto security = TransportFor(*c);
  ASSERT_FALSE(security.ok());
  EXPECT_EQ(security.status().message(),
            "no TLS settings: use kctl --config STATE_DIR/kctl.yaml (the controller writes it on "
            "first start) or set KFLEET_CONFIG; --insecure only for a plaintext controller on "
            "loopback");
  EXPECT_EQ(ExitCodeForStatus(security.status()), kExitUsage);

  WriteConfig("controller: 127.0.0.1:7400\n");
  c = ResolveConnection(GlobalOptions(), Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(std::string(TransportFor(*c).status().message()),
              StartsWith("no TLS settings (the config file " + home_ +
                         "/.config/kfleet/kctl.yaml has no ca:): use kctl --config"));

  c->insecure = true;
  auto plain = TransportFor(*c);
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->insecure);
}

}  // namespace
}  // namespace kfleet::cli
