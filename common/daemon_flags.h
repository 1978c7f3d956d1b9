// A daemon's flags as its users read them: grouped --help, a man page (section 8) and an example
// config file, all rendered from one DaemonSpec and the flags' own help strings (ABSL_FLAG), so
// that the three never disagree. Reading flags and config files is in common/daemon_config.h.
#ifndef KFLEET_COMMON_DAEMON_FLAGS_H_
#define KFLEET_COMMON_DAEMON_FLAGS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kfleet {

// One section of the options: a title and its flags, in the order they are listed.
struct HelpGroup {
  std::string title;  // "Network"
  // Flag names with dashes, each optionally followed by a space and the name of its value:
  // "listen HOST:PORT". Boolean flags take no value name; other flags default to VALUE. A value
  // named DURATION is checked with ParseDuration (common/duration.h) wherever it is read; "0"
  // passes too, for the daemon to accept or refuse.
  std::vector<std::string> flags;
};

struct DaemonSpec {
  std::string name;      // "kfleet-controller"
  std::string version;   // "0.1.0"
  std::string summary;   // for NAME: "the kfleet fleet controller"
  std::string synopsis;  // what follows the name in a usage line: "[--listen HOST:PORT] ..."
  // Paragraphs separated by blank lines; lines that start with a space are kept as they are.
  std::string description;
  std::vector<HelpGroup> groups;
  // The flag that names the config file (read before the command line); empty: none.
  std::string config_flag = "config";
  std::string config_path;  // where packages put the config file: "/etc/kfleet/controller.yaml"
  std::string config_text;  // more paragraphs about the config file: what else it holds
  // Top-level config keys that are not flags but read by the daemon itself ("pools").
  std::vector<std::string> reserved_keys;
  std::string config_example_tail;  // appended as it is to --print-config (a commented example)
  std::vector<std::pair<std::string, std::string>> files;  // FILES: path, what it is
  std::vector<std::pair<int, std::string>> exit_codes;     // EXIT STATUS: code, meaning
  std::vector<std::string> see_also;                       // "kctl(1)"
  std::string main_file;  // __FILE__ of the file whose ABSL_FLAGs the groups must cover
};

// A HelpGroup entry, split: {"listen", "HOST:PORT"}.
struct FlagEntry {
  std::string name;
  std::string value_name;  // empty for a boolean flag
};

// Every flag of every group, in order.
std::vector<FlagEntry> SpecFlags(const DaemonSpec& spec);

// "state-dir" -> "state_dir": the name absl registered the flag under.
std::string UnderscoreName(absl::string_view dashed);

// OK if every flag the groups name is registered, is listed once, and every flag registered from
// `main_file` is in a group; otherwise an error naming the flag. The daemon's flags must be
// registered (linked in) when this runs.
absl::Status ValidateSpec(const DaemonSpec& spec);

// --help: usage and description, the groups (each flag with its value, default and help), the
// help options, a "Config file" and an "Exit status" paragraph. Wrapped at 100 columns.
std::string RenderHelp(const DaemonSpec& spec);

// --man: the same as a roff man page of section 8.
std::string RenderManPage(const DaemonSpec& spec);

// --print-config: a YAML config file with every key commented out at its default, under its
// flag's help, then `config_example_tail`.
std::string RenderConfigExample(const DaemonSpec& spec);

}  // namespace kfleet

#endif  // KFLEET_COMMON_DAEMON_FLAGS_H_
