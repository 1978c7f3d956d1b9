#include "common/daemon_flags.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/daemon_config.h"

ABSL_FLAG(std::string, dft_listen, "127.0.0.1:7400", "gRPC address for agents and kctl");
ABSL_FLAG(std::string, dft_heartbeat, "10s", "agent heartbeat interval");
ABSL_FLAG(std::string, dft_state_dir, "/var/lib/kfleet", "directory for the database and logs");
ABSL_FLAG(std::string, dft_config, "", "config file (YAML)");
ABSL_FLAG(bool, dft_insecure, false,
          "plaintext gRPC, every caller an admin; accepted only on loopback addresses (without it: "
          "mutual TLS with the controller's own CA in STATE_DIR/pki), and this help is long enough "
          "to be wrapped twice at one hundred columns");
ABSL_FLAG(bool, dft_builder, true, "start a local builder");
ABSL_FLAG(std::vector<std::string>, dft_san, {}, "more names for the server certificate");
ABSL_FLAG(std::string, dft_prefix, "-x: y", "a default that YAML must quote");

namespace kfleet {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

DaemonSpec TestSpec() {
  return DaemonSpec{
      .name = "kfleet-test",
      .version = "1.2.3",
      .summary = "a daemon for tests",
      .synopsis = "[--dft-listen HOST:PORT] [OPTION...]",
      .description = "Serves nothing.\n\nStops on SIGTERM.",
      .groups = {{"Network", {"dft-listen HOST:PORT", "dft-heartbeat DURATION"}},
                 {"State", {"dft-state-dir DIR", "dft-config FILE"}},
                 {"Security", {"dft-insecure", "dft-builder", "dft-san NAME,...", "dft-prefix"}}},
      .config_flag = "dft-config",
      .config_path = "/etc/kfleet/test.yaml",
      .config_text = "It also holds `pools`.",
      .reserved_keys = {"pools"},
      .config_example_tail = "#pools: {}\n",
      .files = {{"/etc/kfleet/test.yaml", "The config file."}},
      .exit_codes = {{0, "Stopped."}, {2, "A bad flag."}},
      .see_also = {"kfleet-agent(8)", "kctl(1)"},
      .main_file = __FILE__,
  };
}

// Validates that a spec covering every flag of its main file passes, and that a flag of the main
// file missing from the groups, a flag listed twice or a name that is not a flag is reported:
// this is what keeps a daemon's new flag from going undocumented.
TEST(DaemonFlagsTest, ValidateSpecFindsMissingAndExtraFlags) {
  EXPECT_TRUE(ValidateSpec(TestSpec()).ok()) << ValidateSpec(TestSpec());

  DaemonSpec missing = TestSpec();
  missing.groups[2].flags.pop_back();
  EXPECT_THAT(ValidateSpec(missing).message(), HasSubstr("--dft-prefix"));

  DaemonSpec twice = TestSpec();
  twice.groups[0].flags.push_back("dft-insecure");
  EXPECT_THAT(ValidateSpec(twice).message(), HasSubstr("--dft-insecure is in two help groups"));

  DaemonSpec unknown = TestSpec();
  unknown.groups[0].flags.push_back("dft-lisen HOST:PORT");
  EXPECT_THAT(ValidateSpec(unknown).message(), HasSubstr("--dft-lisen, which is not a flag"));

  DaemonSpec other_file = TestSpec();
  other_file.main_file = "somewhere/else.cc";
  other_file.groups[2].flags.pop_back();
  EXPECT_TRUE(ValidateSpec(other_file).ok());  // only the main file's flags must be covered
}

// Validates the order of --help (usage, description, groups, help options, config file, exit
// status), that flags are spelled with dashes and show their value, default and help, and that
// no line passes 100 columns.
TEST(DaemonFlagsTest, HelpListsGroupsInOrder) {
  std::string help = RenderHelp(TestSpec());
  std::vector<std::string> order = {"kfleet-test 1.2.3 - a daemon for tests",
                                    "Usage: kfleet-test [--dft-listen",
                                    "Serves nothing.",
                                    "\nNetwork:\n",
                                    "  --dft-listen HOST:PORT  (default: 127.0.0.1:7400)\n"
                                    "      gRPC address for agents and kctl\n",
                                    "  --dft-heartbeat DURATION  (default: 10s)",
                                    "\nState:\n",
                                    "  --dft-config FILE\n",
                                    "\nSecurity:\n",
                                    "  --dft-insecure  (default: false)\n",
                                    "  --dft-san NAME,...\n",
                                    "\nHelp:\n",
                                    "  --print-config\n",
                                    "\nConfig file:\n",
                                    "It also holds `pools`.",
                                    "\nExit status:\n  0  Stopped.\n  2  A bad flag.\n"};
  size_t at = 0;
  for (const std::string& part : order) {
    size_t found = help.find(part, at);
    ASSERT_NE(found, std::string::npos) << "missing or out of order: " << part << "\n" << help;
    at = found + part.size();
  }
  EXPECT_THAT(help, Not(HasSubstr("dft_")));
  for (absl::string_view line : absl::StrSplit(help, '\n')) {
    EXPECT_LE(line.size(), 100u) << line;
  }
}

// Validates the man page: title, the sections of a section 8 page, one .SS per group and one .TP
// per flag with escaped dashes, and the defaults.
TEST(DaemonFlagsTest, ManPageHasSectionsAndEveryFlag) {
  std::string man = RenderManPage(TestSpec());
  EXPECT_EQ(man.rfind(".TH \"KFLEET-TEST\" \"8\"", 0), 0u) << man;
  for (const char* part :
       {".SH NAME\nkfleet\\-test \\- a daemon for tests\n", ".SH SYNOPSIS\n.B kfleet\\-test\n",
        ".SH DESCRIPTION\nServes nothing.\n.PP\nStops on SIGTERM.\n", ".SH OPTIONS\n",
        ".SS \"Network\"\n.TP\n\\fB\\-\\-dft\\-listen\\fR \\fIHOST:PORT\\fR (default: "
        "\\fB127.0.0.1:7400\\fR)\ngRPC address for agents and kctl\n",
        ".SS \"Help\"\n", ".SH CONFIGURATION\n", ".SH FILES\n.TP\n.I \\%/etc/kfleet/test.yaml\n",
        ".SH \"EXIT STATUS\"\n.TP\n.B 0\n",
        ".SH \"SEE ALSO\"\n.BR kfleet\\-agent (8),\n.BR kctl (1)\n"}) {
    EXPECT_THAT(man, HasSubstr(part));
  }
  for (const FlagEntry& flag : SpecFlags(TestSpec())) {
    EXPECT_THAT(man, HasSubstr(absl::StrReplaceAll(absl::StrCat("\\fB--", flag.name, "\\fR"),
                                                   {{"-", "\\-"}})));
  }
  EXPECT_THAT(man, Not(HasSubstr("\n\n")));  // a blank line is a roff break
}

// Validates that the example config file lists every key but the config flag, commented out at
// its default, and that uncommented it reads back to the same values.
TEST(DaemonFlagsTest, ConfigExampleReadsBackAsDefaults) {
  absl::FlagSaver saver;
  std::string example = RenderConfigExample(TestSpec());
  EXPECT_THAT(example, HasSubstr("#dft-listen: 127.0.0.1:7400\n"));
  EXPECT_THAT(example, HasSubstr("#dft-san: []\n"));
  EXPECT_THAT(example, HasSubstr("#dft-prefix: \"-x: y\"\n"));
  EXPECT_THAT(example, HasSubstr("\n## Security\n"));
  EXPECT_THAT(example, Not(HasSubstr("#dft-config:")));
  EXPECT_TRUE(absl::EndsWith(example, "\n\n#pools: {}\n")) << example;
  for (absl::string_view line : absl::StrSplit(example, '\n')) {
    EXPECT_LE(line.size(), 100u) << line;
  }

  absl::SetFlag(&FLAGS_dft_prefix, "changed");
  absl::SetFlag(&FLAGS_dft_builder, false);
  absl::SetFlag(&FLAGS_dft_san, {"a"});
  std::string uncommented;
  for (absl::string_view line : absl::StrSplit(example, '\n')) {
    if (absl::StartsWith(line, "#dft-")) absl::StrAppend(&uncommented, line.substr(1), "\n");
  }
  ASSERT_TRUE(ApplyConfigText(TestSpec(), uncommented, "example.yaml").ok()) << uncommented;
  EXPECT_EQ(absl::GetFlag(FLAGS_dft_prefix), "-x: y");
  EXPECT_TRUE(absl::GetFlag(FLAGS_dft_builder));
  EXPECT_TRUE(absl::GetFlag(FLAGS_dft_san).empty());
  EXPECT_EQ(absl::GetFlag(FLAGS_dft_listen), "127.0.0.1:7400");
}

}  // namespace
}  // namespace kfleet
