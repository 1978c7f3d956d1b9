#include "cli/config.h"

#include <sys/stat.h>

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/suggest.h"
#include "common/files.h"

namespace kfleet::cli {
namespace {

constexpr size_t kMaxConfigBytes = 64 << 10;

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
    } else {
      return absl::InvalidArgumentError(absl::StrCat(where, "unknown key \"", key, "\"",
                                                     DidYouMean(key, {"controller", "insecure"}),
                                                     " (expected controller or insecure)"));
    }
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

absl::StatusOr<Connection> ResolveConnection(const GlobalOptions& flags, const EnvLookup& env) {
  ConfigFile file;
  std::string path = ConfigFilePath(env);
  struct stat st;
  if (!path.empty() && stat(path.c_str(), &st) == 0) {
    absl::StatusOr<std::string> text = ReadFile(path, kMaxConfigBytes);
    if (!text.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot read the config file ", path, ": ", text.status().message()));
    }
    absl::StatusOr<ConfigFile> parsed = ParseConfigFile(*text, path);
    if (!parsed.ok()) return parsed.status();
    file = *std::move(parsed);
  }

  Connection c;
  std::optional<std::string> env_controller = env("KFLEET_CONTROLLER");
  if (flags.controller) {
    c.controller = *flags.controller;
    c.source = "--controller";
  } else if (env_controller && !env_controller->empty()) {
    c.controller = *env_controller;
    c.source = "KFLEET_CONTROLLER";
  } else if (file.controller) {
    c.controller = *file.controller;
    c.source = path;
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
  return c;
}

}  // namespace kfleet::cli
