// Where kctl finds its controller: --controller, else $KFLEET_CONTROLLER, else `controller:` in
// ~/.config/kfleet/kctl.yaml, else 127.0.0.1:7400. The same order for --insecure,
// $KFLEET_INSECURE and `insecure:`.
#ifndef KFLEET_CLI_CONFIG_H_
#define KFLEET_CLI_CONFIG_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cli/args.h"

namespace kfleet::cli {

inline constexpr char kDefaultController[] = "127.0.0.1:7400";

// Reads an environment variable; nullopt when unset. Tests pass a map instead of the process's.
using EnvLookup = std::function<std::optional<std::string>(absl::string_view name)>;

// The process environment (std::getenv).
EnvLookup ProcessEnv();

struct ConfigFile {
  std::optional<std::string> controller;
  std::optional<bool> insecure;
};

// Parses the config file's text: `key: value` lines (values may be quoted), blank lines and
// `# comments`. Known keys: controller, insecure. Errors name `path`, the line and the fix.
absl::StatusOr<ConfigFile> ParseConfigFile(absl::string_view text, absl::string_view path);

// $XDG_CONFIG_HOME/kfleet/kctl.yaml if XDG_CONFIG_HOME is set, else $HOME/.config/kfleet/kctl.yaml;
// "" if neither is set.
std::string ConfigFilePath(const EnvLookup& env);

struct Connection {
  std::string controller;  // HOST:PORT
  bool insecure = false;
  std::string source;  // where `controller` came from, e.g. "--controller", for messages
};

// Resolves the controller address and transport from flags, environment and config file, in that
// order. A missing config file is not an error; an unreadable or malformed one is.
absl::StatusOr<Connection> ResolveConnection(const GlobalOptions& flags, const EnvLookup& env);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_CONFIG_H_
