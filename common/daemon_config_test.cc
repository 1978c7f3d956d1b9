#include "common/daemon_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"

ABSL_FLAG(std::string, dct_state_dir, "/var/lib/kfleet", "state");
ABSL_FLAG(bool, dct_insecure, false, "plaintext");
ABSL_FLAG(std::vector<std::string>, dct_san, {}, "more names");
ABSL_FLAG(std::string, dct_heartbeat, "10s", "heartbeat");
ABSL_FLAG(int, dct_count, 1, "how many");
ABSL_FLAG(std::string, dct_config, "", "config file");

namespace kfleet {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

DaemonSpec TestSpec() {
  return DaemonSpec{
      .name = "kfleet-test",
      .groups = {{"All",
                  {"dct-state-dir DIR", "dct-insecure", "dct-san NAME,...",
                   "dct-heartbeat DURATION", "dct-count N", "dct-config FILE"}}},
      .config_flag = "dct-config",
      .reserved_keys = {"pools"},
      .main_file = __FILE__,
  };
}

std::string WriteFile(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

absl::Status Apply(const std::string& text) {
  return ApplyConfigText(TestSpec(), text, "kfleet.yaml");
}

// Validates that the file is read before the command line, which overrides it, and that lists
// may be YAML sequences.
TEST(DaemonConfigTest, FileFirstThenCommandLine) {
  absl::FlagSaver saver;
  std::string path = WriteFile("first.yaml",
                               "# comment\n"
                               "dct-state-dir: /srv/a\n"
                               "dct-insecure: true\n"
                               "dct-san: [a.example, 10.0.0.1]\n"
                               "dct-heartbeat: 5s\n"
                               "pools:\n"
                               "  local: {max: 3}\n");
  auto action = ParseDaemonArgs(
      TestSpec(), {"prog", "--dct-state-dir=/srv/b", "--dct-config", path, "--dct_count", "4"});
  ASSERT_TRUE(action.ok()) << action.status();
  EXPECT_EQ(*action, DaemonAction::kRun);
  EXPECT_EQ(absl::GetFlag(FLAGS_dct_state_dir), "/srv/b");
  EXPECT_TRUE(absl::GetFlag(FLAGS_dct_insecure));
  EXPECT_EQ(absl::GetFlag(FLAGS_dct_san), (std::vector<std::string>{"a.example", "10.0.0.1"}));
  EXPECT_EQ(absl::GetFlag(FLAGS_dct_heartbeat), "5s");
  EXPECT_EQ(absl::GetFlag(FLAGS_dct_count), 4);
  EXPECT_EQ(absl::GetFlag(FLAGS_dct_config), path);
}

// Validates the other spellings of values: a comma-separated list, quoted empty strings, and
// files that hold nothing (empty, comments only).
TEST(DaemonConfigTest, ValueSpellings) {
  absl::FlagSaver saver;
  ASSERT_TRUE(Apply("dct-san: a,b\ndct-state-dir: \"\"\n").ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_dct_san), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(absl::GetFlag(FLAGS_dct_state_dir), "");
  EXPECT_TRUE(Apply("").ok());
  EXPECT_TRUE(Apply("# nothing\n#dct-count: 3\n").ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_dct_count), 1);
}

// Validates that an unknown key names the file, its line and the closest key.
TEST(DaemonConfigTest, UnknownKeyNamesLineAndClosestKey) {
  absl::FlagSaver saver;
  absl::Status s = Apply("dct-insecure: false\ndct-stat-dir: /x\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      s.message(),
      HasSubstr("kfleet.yaml:2: unknown key \"dct-stat-dir\" (did you mean dct-state-dir?)"));
  EXPECT_THAT(Apply("dct_state_dir: /x\n").message(), HasSubstr("did you mean dct-state-dir?"));
  EXPECT_THAT(Apply("pool: {}\n").message(), HasSubstr("did you mean pools?"));
  EXPECT_THAT(Apply("zzz: 1\n").message(), Not(HasSubstr("did you mean")));
}

// Validates that a bad value names the file, the line, the key and the parser's complaint.
TEST(DaemonConfigTest, BadValuesNameLineAndKey) {
  absl::FlagSaver saver;
  EXPECT_THAT(Apply("\ndct-count: many\n").message(), HasSubstr("kfleet.yaml:2: dct-count: "));
  EXPECT_THAT(Apply("dct-insecure: maybe\n").message(), HasSubstr("kfleet.yaml:1: dct-insecure: "));
  EXPECT_THAT(Apply("dct-heartbeat: 10x\n").message(), HasSubstr("kfleet.yaml:1: dct-heartbeat: "));
  EXPECT_TRUE(Apply("dct-heartbeat: 0\n").ok());  // the daemon decides what 0 means
  EXPECT_THAT(Apply("dct-state-dir:\n").message(), HasSubstr("no value (write \"\""));
  EXPECT_THAT(Apply("dct-state-dir: {a: b}\n").message(), HasSubstr("not a mapping"));
  EXPECT_THAT(Apply("dct-san: [a, [b]]\n").message(), HasSubstr("list items are plain values"));
  EXPECT_THAT(Apply("dct-count: 2\ndct-count: 3\n").message(),
              HasSubstr("kfleet.yaml:2: dct-count: given twice (first on line 1)"));
}

// Validates the file's shape: a mapping, no includes, valid YAML.
TEST(DaemonConfigTest, RefusesOtherShapesAndIncludes) {
  absl::FlagSaver saver;
  EXPECT_THAT(Apply("- a\n- b\n").message(), HasSubstr("kfleet.yaml:1: expected a mapping"));
  EXPECT_THAT(Apply("just text\n").message(), HasSubstr("expected a mapping"));
  EXPECT_THAT(Apply("dct-config: other.yaml\n").message(),
              HasSubstr("kfleet.yaml:1: dct-config: a config file cannot name another one"));
  EXPECT_THAT(Apply("a: [unclosed\n").message(), HasSubstr("(is it YAML?)"));
  EXPECT_TRUE(Apply("pools:\n  anything: [goes, here]\n").ok());  // reserved: the daemon's own
}

// Validates that a missing file and a file over 1 MiB are refused before anything is applied.
TEST(DaemonConfigTest, FileErrors) {
  absl::FlagSaver saver;
  absl::Status missing = ApplyConfigFile(TestSpec(), ::testing::TempDir() + "/no-such.yaml");
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("--dct-config: "));

  std::string big = WriteFile("big.yaml", "dct-count: 5\n" + std::string(kMaxConfigFileBytes, '#'));
  absl::Status too_big = ApplyConfigFile(TestSpec(), big);
  EXPECT_EQ(too_big.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(too_big.message(), HasSubstr("larger than 1 MiB"));
  EXPECT_EQ(absl::GetFlag(FLAGS_dct_count), 1);
}

// Validates the command line: help options win over everything, booleans, and errors that name
// the flag and the fix.
TEST(DaemonConfigTest, CommandLine) {
  absl::FlagSaver saver;
  EXPECT_EQ(*ParseDaemonArgs(TestSpec(), {"prog", "--bogus", "-h"}), DaemonAction::kHelp);
  EXPECT_EQ(*ParseDaemonArgs(TestSpec(), {"prog", "--helpfull"}), DaemonAction::kHelp);
  EXPECT_EQ(*ParseDaemonArgs(TestSpec(), {"prog", "--version"}), DaemonAction::kVersion);
  EXPECT_EQ(*ParseDaemonArgs(TestSpec(), {"prog", "--man"}), DaemonAction::kMan);
  EXPECT_EQ(*ParseDaemonArgs(TestSpec(), {"prog", "--print-config"}), DaemonAction::kPrintConfig);

  ASSERT_TRUE(ParseDaemonArgs(TestSpec(), {"prog", "--dct-insecure"}).ok());
  EXPECT_TRUE(absl::GetFlag(FLAGS_dct_insecure));
  ASSERT_TRUE(ParseDaemonArgs(TestSpec(), {"prog", "--nodct-insecure"}).ok());
  EXPECT_FALSE(absl::GetFlag(FLAGS_dct_insecure));
  ASSERT_TRUE(ParseDaemonArgs(TestSpec(), {"prog", "-dct-insecure=true"}).ok());
  EXPECT_TRUE(absl::GetFlag(FLAGS_dct_insecure));

  EXPECT_THAT(ParseDaemonArgs(TestSpec(), {"prog", "--dct-stat-dir=/x"}).status().message(),
              HasSubstr("--dct-stat-dir: unknown flag (did you mean --dct-state-dir?)"));
  EXPECT_THAT(ParseDaemonArgs(TestSpec(), {"prog", "--dct-count"}).status().message(),
              HasSubstr("--dct-count needs a value: --dct-count N"));
  EXPECT_THAT(ParseDaemonArgs(TestSpec(), {"prog", "--dct-count=x"}).status().message(),
              HasSubstr("--dct-count: "));
  EXPECT_THAT(ParseDaemonArgs(TestSpec(), {"prog", "--dct-heartbeat", "soon"}).status().message(),
              HasSubstr("--dct-heartbeat: "));
  EXPECT_THAT(ParseDaemonArgs(TestSpec(), {"prog", "stray"}).status().message(),
              HasSubstr("unexpected argument \"stray\""));
  EXPECT_THAT(ParseDaemonArgs(TestSpec(), {"prog", "--", "x"}).status().message(),
              HasSubstr("unexpected argument \"x\""));
  EXPECT_THAT(ParseDaemonArgs(TestSpec(), {"prog", "--flagfile=x"}).status().message(),
              HasSubstr("unknown flag"));
}

// Validates that a config file error stops the command line before it applies.
TEST(DaemonConfigTest, ConfigErrorFromCommandLine) {
  absl::FlagSaver saver;
  std::string path = WriteFile("bad.yaml", "dct-count: 7\ndct-colour: red\n");
  auto action = ParseDaemonArgs(TestSpec(), {"prog", "--dct-config=" + path});
  EXPECT_THAT(action.status().message(), HasSubstr(path + ":2: unknown key \"dct-colour\""));
}

// Validates which words count as typos of which names.
TEST(DaemonConfigTest, ClosestName) {
  std::vector<std::string> names = {"state-dir", "listen", "metrics-listen", "tls-ca",
                                    "tls-ca-key"};
  EXPECT_EQ(ClosestName("stat-dir", names), "state-dir");
  EXPECT_EQ(ClosestName("state_dir", names), "state-dir");
  EXPECT_EQ(ClosestName("lsiten", names), "listen");
  EXPECT_EQ(ClosestName("metrics", names), "metrics-listen");  // the only name it starts
  EXPECT_EQ(ClosestName("tls-c", names), "tls-ca");
  EXPECT_EQ(ClosestName("xy", names), "");
  EXPECT_EQ(ClosestName("colour", names), "");
}

// Validates that the keys a daemon's own parts may skip are its flags, not absl's.
TEST(DaemonConfigTest, RegisteredFlagKeys) {
  std::set<std::string> keys = RegisteredFlagKeys();
  EXPECT_EQ(keys.count("dct-state-dir"), 1u);
  EXPECT_EQ(keys.count("flagfile"), 0u);
  EXPECT_EQ(keys.count("helpfull"), 0u);
}

}  // namespace
}  // namespace kfleet
