#include "cli/args.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "cli/exec_command.h"
#include "cli/kctl.h"

namespace kfleet::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

class ArgsTest : public ::testing::Test {
 protected:
  absl::StatusOr<Invocation> Parse(std::vector<std::string> args) {
    return ParseArgs(args, commands_);
  }
  std::string Error(std::vector<std::string> args) {
    absl::StatusOr<Invocation> inv = Parse(std::move(args));
    EXPECT_FALSE(inv.ok());
    EXPECT_EQ(inv.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(inv.status().message());
  }

  std::vector<CommandSpec> commands_ = AllCommands();
};

// Validates that global flags work before the command name.
TEST_F(ArgsTest, GlobalFlagsBeforeCommand) {
  auto inv = Parse({"--controller", "10.0.0.1:7400", "--insecure", "-o", "json", "hosts"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command->name, "hosts");
  EXPECT_EQ(inv->globals.controller, "10.0.0.1:7400");
  EXPECT_TRUE(inv->globals.insecure);
  EXPECT_EQ(inv->globals.output, OutputFormat::kJson);
}

// Validates that global flags work after the command name, in every spelling.
TEST_F(ArgsTest, GlobalFlagsAfterCommand) {
  auto inv = Parse({"hosts", "--controller=h:1", "--output=wide", "--insecure"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->globals.controller, "h:1");
  EXPECT_EQ(inv->globals.output, OutputFormat::kWide);
  EXPECT_TRUE(inv->globals.insecure);

  inv = Parse({"jobs", "-ojson"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->globals.output, OutputFormat::kJson);
}

// Validates that command flags and positional arguments mix in any order.
TEST_F(ArgsTest, CommandFlagsAndPositionals) {
  auto inv = Parse({"logs", "-f", "j-1", "--stream", "stdout", "--stream=kmsg"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command->name, "logs");
  EXPECT_THAT(inv->args, ElementsAre("j-1"));
  EXPECT_TRUE(inv->Has("follow"));
  EXPECT_THAT(inv->GetAll("stream"), ElementsAre("stdout", "kmsg"));
  EXPECT_FALSE(inv->Has("watch"));
}

// Validates that everything after "--" is the command's argv, even words that look like flags.
TEST_F(ArgsTest, DoubleDashEndsFlags) {
  auto inv = Parse({"exec", "--all", "-o", "json", "--", "ls", "-o", "json", "--help", "--"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_TRUE(inv->has_argv);
  EXPECT_THAT(inv->argv, ElementsAre("ls", "-o", "json", "--help", "--"));
  EXPECT_EQ(inv->globals.output, OutputFormat::kJson);
  EXPECT_FALSE(inv->help);
}

// Validates that exec needs "--" and says where the command goes.
TEST_F(ArgsTest, ExecWithoutDoubleDash) {
  EXPECT_EQ(Error({"exec", "--all", "uname", "-r"}),
            "exec: unexpected argument \"uname\": put the command to run after \"--\", e.g. kctl "
            "exec --all -- uname -r");
  EXPECT_THAT(Error({"exec", "--all", "--"}), HasSubstr("missing the command to run"));
  EXPECT_THAT(Error({"hosts", "--", "x"}), HasSubstr("\"--\" is only used by kctl exec"));
}

// Validates that -l merges k=v,k2=v2 and repeated flags into one selector.
TEST_F(ArgsTest, LabelsMerge) {
  auto inv = Parse({"exec", "-l", "pool=local,role=guest", "-l", "arch=x86_64",
                    "--label=pool=local", "--", "true"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  auto spec = BuildExecJob(*inv);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(
      spec->hosts().labels(),
      UnorderedElementsAre(Pair("pool", "local"), Pair("role", "guest"), Pair("arch", "x86_64")));
  EXPECT_FALSE(spec->hosts().all());
  EXPECT_THAT(spec->hosts().names(), IsEmpty());
  ASSERT_EQ(spec->steps_size(), 1);
  EXPECT_THAT(spec->steps(0).exec().argv(), ElementsAre("true"));
  EXPECT_EQ(spec->name(), "exec true");
}

// Validates that the exec job carries hosts, a validated timeout and the name.
TEST_F(ArgsTest, ExecJob) {
  auto inv = Parse({"exec", "--host", "a", "--host", "b,c", "--timeout", "90s", "--name", "smoke",
                    "--", "uname", "-r"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  auto spec = BuildExecJob(*inv);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(spec->hosts().names(), ElementsAre("a", "b", "c"));
  EXPECT_EQ(spec->steps(0).timeout(), "90s");
  EXPECT_THAT(spec->steps(0).exec().argv(), ElementsAre("uname", "-r"));
  EXPECT_EQ(spec->name(), "smoke");
}

// Validates the message for a bad --timeout: it names the flag, the text and the accepted forms.
TEST_F(ArgsTest, BadDuration) {
  auto inv = Parse({"exec", "--all", "--timeout", "5 minutes", "--", "true"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  auto spec = BuildExecJob(*inv);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(spec.status().message(),
            "exec: --timeout: invalid duration \"5 minutes\": write a positive number with a unit, "
            "e.g. 500ms, 30s, 5m, 2h or 1h30m");
}

// Validates that --memory-max is checked as a size and lands in the step as the agent reads it.
TEST_F(ArgsTest, MemoryMax) {
  auto inv = Parse({"exec", "--all", "--memory-max", "1g", "--", "true"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  absl::StatusOr<v1::JobSpec> spec = BuildExecJob(*inv);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->steps(0).memory_max(), "1G");
  inv = Parse({"exec", "--all", "--memory-max", "1.5G", "--", "true"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(BuildExecJob(*inv).status().message(),
            "exec: --memory-max: invalid size \"1.5G\": write a number of bytes with an optional "
            "K, M, G or T suffix, e.g. 64M or 1G");
}

// Validates the suggestion for a mistyped command.
TEST_F(ArgsTest, UnknownCommandSuggests) {
  EXPECT_EQ(Error({"hsots"}),
            "unknown command \"hsots\" (did you mean \"hosts\"?); see kctl --help");
  EXPECT_EQ(Error({"--insecure", "jbos"}),
            "unknown command \"jbos\" (did you mean \"jobs\"?); see kctl --help");
  EXPECT_EQ(Error({"frobnicate"}), "unknown command \"frobnicate\"; see kctl --help");
  EXPECT_THAT(Error({"pki", "init"}), HasSubstr("not available in this version"));
}

// Validates the messages for unknown flags, misplaced flags and missing values.
TEST_F(ArgsTest, FlagErrors) {
  EXPECT_EQ(Error({"exec", "--hots", "a", "--", "true"}),
            "exec: unknown flag \"--hots\" (did you mean \"--host\"?); see kctl exec --help");
  EXPECT_EQ(Error({"--all", "exec"}),
            "flag \"--all\" belongs to a command: put it after the command name, e.g. kctl exec "
            "--all; see kctl --help");
  EXPECT_EQ(Error({"exec", "--all", "--timeout"}),
            "exec: flag --timeout needs a value (DURATION); see kctl exec --help");
  EXPECT_EQ(Error({"hosts", "--insecure=yes"}),
            "hosts: flag --insecure takes no value; see kctl hosts --help");
  EXPECT_EQ(Error({"-o", "yaml", "hosts"}),
            "invalid output format \"yaml\" (expected table, wide or json)");
  EXPECT_THAT(Error({"-o", "jsno", "hosts"}), HasSubstr("(did you mean \"json\"?)"));
  EXPECT_EQ(Error({"exec", "--memory-mx", "1G"}),
            "exec: unknown flag \"--memory-mx\" (did you mean \"--memory-max\"?); see kctl exec "
            "--help");
  // Hidden flags are never suggested.
  commands_[0].flags.push_back({.name = "secret-knob", .hidden = true});
  EXPECT_EQ(Error({commands_[0].name, "--secret-knb"}),
            absl::StrCat(commands_[0].name, ": unknown flag \"--secret-knb\"; see kctl ",
                         commands_[0].name, " --help"));
}

// Validates positional argument counts.
TEST_F(ArgsTest, PositionalCounts) {
  EXPECT_EQ(Error({"job"}),
            "job: missing the job ID, e.g. kctl job j-3f2a9c01d4e5b677; see kctl job --help");
  EXPECT_EQ(Error({"job", "j-1", "j-2"}), "job: unexpected argument \"j-2\"; see kctl job --help");
  EXPECT_EQ(Error({"hosts", "revoke", "h", "extra"}),
            "hosts: unexpected argument \"extra\"; see kctl hosts --help");
  EXPECT_EQ(Error({"user"}),
            "user: missing the subcommand: kctl user create NAME --role ROLE, or kctl user revoke "
            "NAME; see kctl user --help");
}

// Validates --config: a global flag before or after the command, except after `boot`, whose own
// --config names a kernel configuration.
TEST_F(ArgsTest, ConfigFlag) {
  auto inv = Parse({"--config", "/var/lib/kfleet/kctl.yaml", "hosts"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->globals.config, "/var/lib/kfleet/kctl.yaml");
  inv = Parse({"whoami", "--config=k.yaml"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->globals.config, "k.yaml");

  inv = Parse({"--config", "k.yaml", "boot", "--tree", "/src/linux", "--config", "defconfig", "-l",
               "pool=local"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->globals.config, "k.yaml");
  EXPECT_EQ(inv->Get("config"), "defconfig");

  EXPECT_EQ(Error({"--config", "", "hosts"}),
            "--config needs the kctl config file, e.g. --config /var/lib/kfleet/kctl.yaml");
}

// Validates the flags of the access commands and where they go.
TEST_F(ArgsTest, AccessCommands) {
  auto inv = Parse({"token", "create", "-l", "pool=lab", "--labels", "role=mail", "--uses", "2"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command->name, "token");
  EXPECT_THAT(inv->args, ElementsAre("create"));
  EXPECT_THAT(inv->GetAll("labels"), ElementsAre("pool=lab", "role=mail"));
  inv = Parse({"user", "create", "alice", "--role", "viewer", "--out", "d"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_THAT(inv->args, ElementsAre("create", "alice"));
  EXPECT_EQ(inv->Get("role"), "viewer");
  inv = Parse({"hosts", "revoke", "guest-1", "-o", "json"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_THAT(inv->args, ElementsAre("revoke", "guest-1"));
  EXPECT_EQ(Error({"audit", "--sinse", "1h"}),
            "audit: unknown flag \"--sinse\" (did you mean \"--since\"?); see kctl audit --help");
  EXPECT_EQ(Error({"whoami", "me"}), "whoami: unexpected argument \"me\"; see kctl whoami --help");
}

// Validates that --help wins over missing arguments, before or after the command.
TEST_F(ArgsTest, Help) {
  auto inv = Parse({"job", "--help"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_TRUE(inv->help);
  EXPECT_EQ(inv->command->name, "job");
  inv = Parse({"-h"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_TRUE(inv->help);
  EXPECT_EQ(inv->command, nullptr);
}

}  // namespace
}  // namespace kfleet::cli
