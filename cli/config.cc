#include "cli/config.h"

#include <sys/stat.h>

#include <cstdlib>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/exit_codes.h"
#include "cli/suggest.h"
#include "common/files.h"

namespace kfleet::cli {
namespace {

const std::vector<std::string>& ConfigKeys() {
  static const auto* const kKeys =
      new std::vector<std::string>{"controller", "insecure", "ca", "cert", "key", "server_name"};
  return *kKeys;
}

absl::StatusOr<bool> ParseBool(absl::string_view text, absl::string_view where) {
  std::string v = absl::AsciiStrToLower(text);
  if (v == "true" || v == "yes" || v == "on" || v == "1") return true;
  if (v == "false" || v == "no" || v == "off" || v == "0" || v.empty()) return false;
  return absl::InvalidArgumentError(
      absl::StrCat(where, "\"", text, "\" is not a boolean (write true or false)"));
}

// Strips one pair of matching quotes.
absl::string_view Unquote(absl::string_view v) {
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
    return v.substr(1, v.size() - 2);
  }
  return v;
}

// "HOST:PORT" or "[V6]:PORT" with a port from 1 to 65535.
absl::Status CheckAddress(const std::string& address, const std::string& source) {
  size_t colon = address.rfind(':');
  int port = 0;
  bool ok = colon != std::string::npos && colon > 0 &&
            absl::SimpleAtoi(absl::string_view(address).substr(colon + 1), &port) && port > 0 &&
            port < 65536;
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("controller address \"", address, "\" (from ",
                                                 source,
                                                 ") is not HOST:PORT; write e.g. 127.0.0.1:7400"));
}

// The config file's text; nullopt when the default file does not exist.
absl::StatusOr<std::optional<std::string>> ReadConfigText(const ConfigChoice& choice) {
  if (choice.path.empty()) return std::nullopt;
  struct stat st;
  if (stat(choice.path.c_str(), &st) != 0) {
    if (!choice.required) return std::nullopt;
    return WithExitCode(
        absl::InvalidArgumentError(absl::StrCat(
            "the config file ", choice.path, " (from ", choice.source,
            ") does not exist; the controller writes STATE_DIR/kctl.yaml on first start")),
        kExitUsage);
  }
  absl::StatusOr<std::string> text = ReadFile(choice.path, kMaxConfigBytes);
  if (!text.ok()) {
    return WithExitCode(absl::InvalidArgumentError(
                            absl::StrCat("cannot read the config file ", choice.path, " (from ",
                                         choice.source, "): ", text.status().message())),
                        kExitUsage);
  }
  return std::optional<std::string>(*std::move(text));
}

// The PEM file that `key:` of the config file at `config_path` names.
absl::StatusOr<std::string> ReadPemFile(const std::string& config_path, absl::string_view key,
                                        const std::string& value, const EnvLookup& env) {
  std::string path = ResolveConfigPath(value, config_path, env);
  bool relative = !absl::StartsWith(value, "/") && !absl::StartsWith(value, "~/");
  absl::StatusOr<std::string> text = ReadFile(path, kMaxPemFileBytes);
  if (!text.ok()) {
    absl::string_view why = text.status().message();
    std::string opening = absl::StrCat("open ", path, ": ");
    if (absl::StartsWith(why, opening)) why.remove_prefix(opening.size());
    return WithExitCode(
        absl::InvalidArgumentError(absl::StrCat(
            config_path, ": ", key, ": cannot read ", path, ": ", why,
            relative ? " (a relative path is read from the config file's directory)" : "")),
        kExitUsage);
  }
  if (text->find("-----BEGIN ") == std::string::npos) {
    return WithExitCode(
        absl::InvalidArgumentError(absl::StrCat(config_path, ": ", key, ": ", path,
                                                " is not a PEM file (it has no -----BEGIN line)")),
        kExitUsage);
  }
  return *std::move(text);
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](absl::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

absl::StatusOr<ConfigFile> ParseConfigFile(absl::string_view text, absl::string_view path) {
  ConfigFile config;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    std::string where = absl::StrCat(path, " line ", line_number, ": ");
    // A '#' starts a comment when it begins the line or follows a blank.
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
        line = line.substr(0, i);
        break;
      }
    }
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line == "---") continue;
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "expected `key: value`, e.g. `controller: 127.0.0.1:7400`"));
    }
    absl::string_view key = absl::StripAsciiWhitespace(line.substr(0, colon));
    absl::string_view value = Unquote(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    if (key == "controller") {
      if (value.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, "controller needs HOST:PORT, e.g. `controller: 127.0.0.1:7400`"));
      }
      config.controller = std::string(value);
    } else if (key == "insecure") {
      absl::StatusOr<bool> b = ParseBool(value, absl::StrCat(where, "insecure: "));
      if (!b.ok()) return b.status();
      config.insecure = *b;
    } else if (key == "ca" || key == "cert" || key == "key") {
      if (value.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, key, " needs a file name, e.g. `", key, ": ",
            key == "ca" ? "pki/ca.crt" : (key == "cert" ? "pki/admin.crt" : "pki/admin.key"),
            "` (relative to the config file's directory)"));
      }
      std::optional<std::string>& field =
          key == "ca" ? config.ca : (key == "cert" ? config.cert : config.key);
      field = std::string(value);
    } else if (key == "server_name") {
      if (value.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where,
                         "server_name needs the name on the controller's certificate, e.g. "
                         "`server_name: kfleet-controller`, or leave the line out"));
      }
      config.server_name = std::string(value);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "unknown key \"", key, "\"", DidYouMean(key, ConfigKeys()),
                       " (expected controller, insecure, ca, cert, key or server_name)"));
    }
  }
  if (config.cert.has_value() != config.key.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": ", config.cert ? "cert" : "key", " is set but ", config.cert ? "key" : "cert",
        " is not: give both, kctl's certificate (cert:) and its private key (key:)"));
  }
  return config;
}

std::string ConfigFilePath(const EnvLookup& env) {
  std::optional<std::string> xdg = env("XDG_CONFIG_HOME");
  if (xdg && !xdg->empty()) return absl::StrCat(*xdg, "/kfleet/kctl.yaml");
  std::optional<std::string> home = env("HOME");
  if (home && !home->empty()) return absl::StrCat(*home, "/.config/kfleet/kctl.yaml");
  return "";
}

ConfigChoice ChooseConfigFile(const GlobalOptions& flags, const EnvLookup& env) {
  if (flags.config) return ConfigChoice{*flags.config, "--config", true};
  std::optional<std::string> env_config = env("KFLEET_CONFIG");
  if (env_config && !env_config->empty()) return ConfigChoice{*env_config, "KFLEET_CONFIG", true};
  return ConfigChoice{ConfigFilePath(env), "the default", false};
}

std::string ResolveConfigPath(absl::string_view path, absl::string_view config_path,
                              const EnvLookup& env) {
  if (absl::StartsWith(path, "/")) return std::string(path);
  if (absl::StartsWith(path, "~/")) {
    std::optional<std::string> home = env("HOME");
    if (home && !home->empty()) return absl::StrCat(*home, path.substr(1));
  }
  size_t slash = config_path.rfind('/');
  if (slash == absl::string_view::npos) return std::string(path);
  return absl::StrCat(config_path.substr(0, slash + 1), path);
}

absl::StatusOr<Connection> ResolveConnection(const GlobalOptions& flags, const EnvLookup& env) {
  ConfigChoice choice = ChooseConfigFile(flags, env);
  absl::StatusOr<std::optional<std::string>> text = ReadConfigText(choice);
  if (!text.ok()) return text.status();
  ConfigFile file;
  Connection c;
  if (text->has_value()) {
    absl::StatusOr<ConfigFile> parsed = ParseConfigFile(**text, choice.path);
    if (!parsed.ok()) return parsed.status();
    file = *std::move(parsed);
    c.config_path = choice.path;
  }

  std::optional<std::string> env_controller = env("KFLEET_CONTROLLER");
  if (flags.controller) {
    c.controller = *flags.controller;
    c.source = "--controller";
  } else if (env_controller && !env_controller->empty()) {
    c.controller = *env_controller;
    c.source = "KFLEET_CONTROLLER";
  } else if (file.controller) {
    c.controller = *file.controller;
    c.source = choice.path;
  } else {
    c.controller = kDefaultController;
    c.source = "the default";
  }

  if (absl::Status s = CheckAddress(c.controller, c.source); !s.ok()) return s;

  std::optional<std::string> env_insecure = env("KFLEET_INSECURE");
  if (flags.insecure) {
    c.insecure = true;
  } else if (env_insecure && !env_insecure->empty()) {
    absl::StatusOr<bool> b = ParseBool(*env_insecure, "KFLEET_INSECURE: ");
    if (!b.ok()) return b.status();
    c.insecure = *b;
  } else {
    c.insecure = file.insecure.value_or(false);
  }
  if (c.insecure) return c;  // plaintext has no use for the TLS files

  struct PemKey {
    const char* name;
    const std::optional<std::string>& value;
    std::string& pem;
  };
  for (const PemKey& k : {PemKey{"ca", file.ca, c.ca_pem}, PemKey{"cert", file.cert, c.cert_pem},
                          PemKey{"key", file.key, c.key_pem}}) {
    if (!k.value) continue;
    absl::StatusOr<std::string> pem = ReadPemFile(choice.path, k.name, *k.value, env);
    if (!pem.ok()) return pem.status();
    k.pem = *std::move(pem);
  }
  c.server_name = file.server_name.value_or("");
  return c;
}

absl::StatusOr<TransportSecurity> TransportFor(const Connection& connection) {
  if (connection.insecure) return TransportSecurity{.insecure = true};
  if (connection.ca_pem.empty()) {
    std::string which =
        connection.config_path.empty()
            ? ""
            : absl::StrCat(" (the config file ", connection.config_path, " has no ca:)");
    return WithExitCode(
        absl::InvalidArgumentError(absl::StrCat(
            "no TLS settings", which,
            ": use kctl --config STATE_DIR/kctl.yaml (the controller writes it on first start) "
            "or set KFLEET_CONFIG; --insecure only for a plaintext controller on loopback")),
        kExitUsage);
  }
  return TransportSecurity{.insecure = false,
                           .ca_pem = connection.ca_pem,
                           .cert_pem = connection.cert_pem,
                           .key_pem = connection.key_pem,
                           .server_name = connection.server_name};
}

}  // namespace kfleet::cli
