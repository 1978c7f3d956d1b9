// Where kctl finds its controller and how it talks to it. The config file is --config FILE, else
// $KFLEET_CONFIG, else ~/.config/kfleet/kctl.yaml. The controller address is --controller, else
// $KFLEET_CONTROLLER, else `controller:` in the config file, else 127.0.0.1:7400; the same order
// for --insecure, $KFLEET_INSECURE and `insecure:`. The TLS settings (`ca:`, `cert:`, `key:`,
// `server_name:`) come from the config file only.
#ifndef KFLEET_CLI_CONFIG_H_
#define KFLEET_CLI_CONFIG_H_

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cli/args.h"
#include "common/credentials.h"

namespace kfleet::cli {

inline constexpr char kDefaultController[] = "127.0.0.1:7400";

// Largest config file, and largest PEM file it names, that kctl reads.
inline constexpr size_t kMaxConfigBytes = 64 << 10;
inline constexpr size_t kMaxPemFileBytes = 64 << 10;

// Reads an environment variable; nullopt when unset. Tests pass a map instead of the process's.
using EnvLookup = std::function<std::optional<std::string>(absl::string_view name)>;

// The process environment (std::getenv).
EnvLookup ProcessEnv();

struct ConfigFile {
  std::optional<std::string> controller;
  std::optional<bool> insecure;
  // Paths as written in the file (relative to the file's directory unless absolute).
  std::optional<std::string> ca;
  std::optional<std::string> cert;
  std::optional<std::string> key;
  std::optional<std::string> server_name;
};

// Parses the config file's text: `key: value` lines (values may be quoted), blank lines and
// `# comments`. Known keys: controller, insecure, ca, cert, key, server_name. Errors name `path`,
// the line and the fix.
absl::StatusOr<ConfigFile> ParseConfigFile(absl::string_view text, absl::string_view path);

// $XDG_CONFIG_HOME/kfleet/kctl.yaml if XDG_CONFIG_HOME is set, else $HOME/.config/kfleet/kctl.yaml;
// "" if neither is set.
std::string ConfigFilePath(const EnvLookup& env);

// The config file kctl reads.
struct ConfigChoice {
  std::string path;       // "" when there is none to read
  std::string source;     // "--config", "KFLEET_CONFIG" or "the default"
  bool required = false;  // named by the user: a missing file is an error
};

// --config, else $KFLEET_CONFIG (when not empty), else ConfigFilePath(env).
ConfigChoice ChooseConfigFile(const GlobalOptions& flags, const EnvLookup& env);

// `path` as a config file at `config_path` means it: absolute paths and "~/..." (with $HOME) as
// they are, others relative to the config file's directory.
std::string ResolveConfigPath(absl::string_view path, absl::string_view config_path,
                              const EnvLookup& env);

struct Connection {
  std::string controller;  // HOST:PORT
  bool insecure = false;
  std::string source;       // where `controller` came from, e.g. "--controller", for messages
  std::string config_path;  // the config file that was read; "" when none was
  // TLS, from the config file; not read when insecure. ca_pem verifies the controller; cert_pem
  // and key_pem are kctl's identity (both or neither).
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
  std::string server_name;  // the name the controller's certificate must carry, when set
};

// Resolves the controller address and transport from flags, environment and config file, in that
// order, and reads the PEM files the config file names. A missing default config file is not an
// error; a config file named by --config or KFLEET_CONFIG that is missing, an unreadable or
// malformed one, and PEM files that cannot be read are (InvalidArgument, naming the file and key).
absl::StatusOr<Connection> ResolveConnection(const GlobalOptions& flags, const EnvLookup& env);

// The transport settings for MakeChannel. InvalidArgument, saying how to get TLS settings, when
// the connection is neither insecure nor has a CA.
absl::StatusOr<TransportSecurity> TransportFor(const Connection& connection);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_CONFIG_H_
