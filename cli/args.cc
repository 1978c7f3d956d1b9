#include "cli/args.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/suggest.h"

namespace kfleet::cli {
namespace {

std::string SeeHelp(const CommandSpec* command) {
  return command ? absl::StrCat("; see kctl ", command->name, " --help") : "; see kctl --help";
}

std::string Where(const CommandSpec* command) {
  return command ? absl::StrCat(command->name, ": ") : "";
}

std::string Spelled(const FlagSpec& flag, bool as_short) {
  return as_short ? absl::StrCat("-", std::string(1, flag.short_name))
                  : absl::StrCat("--", flag.name);
}

// Every documented spelling a user could have meant: "--host", "-l", ...
std::vector<std::string> FlagSpellings(const CommandSpec* command) {
  std::vector<std::string> out;
  auto add = [&out](const std::vector<FlagSpec>& flags) {
    for (const FlagSpec& f : flags) {
      if (f.hidden) continue;
      out.push_back(Spelled(f, false));
      if (f.short_name != 0) out.push_back(Spelled(f, true));
    }
  };
  if (command) add(command->flags);
  add(GlobalFlags());
  return out;
}

absl::Status UnknownFlag(absl::string_view typed, const CommandSpec* command,
                         const std::vector<CommandSpec>& commands) {
  std::string spelled(typed.substr(0, typed.find('=')));
  std::string message = absl::StrCat(Where(command), "unknown flag \"", spelled, "\"",
                                     DidYouMean(spelled, FlagSpellings(command)));
  if (command == nullptr) {
    // A command's flag written before the command name.
    for (const CommandSpec& c : commands) {
      for (const std::string& s : FlagSpellings(&c)) {
        if (s != spelled) continue;
        return absl::InvalidArgumentError(
            absl::StrCat("flag \"", spelled,
                         "\" belongs to a command: put it after the command name, e.g. kctl ",
                         c.name, " ", spelled, SeeHelp(nullptr)));
      }
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(message, SeeHelp(command)));
}

absl::StatusOr<const CommandSpec*> FindCommand(absl::string_view name,
                                               const std::vector<CommandSpec>& commands) {
  std::vector<std::string> names;
  for (const CommandSpec& c : commands) {
    if (c.name == name) return &c;
    names.push_back(c.name);
  }
  for (const std::string& planned : PlannedCommands()) {
    if (planned == name) {
      return absl::InvalidArgumentError(absl::StrCat(
          "command \"", name, "\" is not available in this version of kctl yet; see kctl --help"));
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown command \"", name, "\"", DidYouMean(name, names), "; see kctl --help"));
}

absl::Status ApplyGlobal(const FlagSpec& flag, const std::string& value, Invocation& inv) {
  if (flag.name == "controller") {
    if (value.empty()) {
      return absl::InvalidArgumentError("--controller needs HOST:PORT, e.g. 127.0.0.1:7400");
    }
    inv.globals.controller = value;
  } else if (flag.name == "config") {
    if (value.empty()) {
      return absl::InvalidArgumentError(
          "--config needs the kctl config file, e.g. --config /var/lib/kfleet/kctl.yaml");
    }
    inv.globals.config = value;
  } else if (flag.name == "insecure") {
    inv.globals.insecure = true;
  } else if (flag.name == "output") {
    absl::StatusOr<OutputFormat> format = ParseOutputFormat(value);
    if (!format.ok()) return format.status();
    inv.globals.output = *format;
  } else if (flag.name == "help") {
    inv.help = true;
  }
  return absl::OkStatus();
}

bool IsGlobal(const FlagSpec& flag) {
  for (const FlagSpec& g : GlobalFlags()) {
    if (&g == &flag) return true;
  }
  return false;
}

absl::Status CheckArgs(const Invocation& inv) {
  const CommandSpec& c = *inv.command;
  int n = static_cast<int>(inv.args.size());
  if (n > c.max_args) {
    const std::string& extra = inv.args[c.max_args];
    if (c.takes_argv) {
      return absl::InvalidArgumentError(absl::StrCat(c.name, ": unexpected argument \"", extra,
                                                     "\": put the command to run after \"--\", "
                                                     "e.g. kctl ",
                                                     c.name, " ", c.argv_example));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(c.name, ": unexpected argument \"", extra, "\"", SeeHelp(&c)));
  }
  if (n < c.min_args) {
    return absl::InvalidArgumentError(absl::StrCat(c.name, ": missing ", c.args_hint, SeeHelp(&c)));
  }
  if (c.takes_argv && !c.argv_optional && inv.argv.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.name, ": missing the command to run after \"--\", e.g. kctl ", c.name, " ",
                     c.argv_example, SeeHelp(&c)));
  }
  return absl::OkStatus();
}

}  // namespace

bool Invocation::Has(absl::string_view flag) const { return flags.count(std::string(flag)) > 0; }

std::string Invocation::Get(absl::string_view flag, absl::string_view fallback) const {
  auto it = flags.find(std::string(flag));
  return it == flags.end() ? std::string(fallback) : it->second.back();
}

const std::vector<std::string>& Invocation::GetAll(absl::string_view flag) const {
  static const auto* const kNone = new std::vector<std::string>();
  auto it = flags.find(std::string(flag));
  return it == flags.end() ? *kNone : it->second;
}

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view text) {
  if (text == "table") return OutputFormat::kTable;
  if (text == "wide") return OutputFormat::kWide;
  if (text == "json") return OutputFormat::kJson;
  return absl::InvalidArgumentError(absl::StrCat("invalid output format \"", text, "\"",
                                                 DidYouMean(text, {"table", "wide", "json"}),
                                                 " (expected table, wide or json)"));
}

absl::StatusOr<Invocation> ParseArgs(const std::vector<std::string>& args,
                                     const std::vector<CommandSpec>& commands) {
  Invocation inv;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      if (inv.command == nullptr || !inv.command->takes_argv) {
        return absl::InvalidArgumentError(absl::StrCat(
            Where(inv.command),
            "\"--\" is only used by kctl exec and kctl boot, before the command to run",
            SeeHelp(inv.command)));
      }
      inv.has_argv = true;
      inv.argv.assign(args.begin() + i + 1, args.end());
      break;
    }
    if (a.size() < 2 || a[0] != '-') {
      if (inv.command == nullptr) {
        absl::StatusOr<const CommandSpec*> command = FindCommand(a, commands);
        if (!command.ok()) return command.status();
        inv.command = *command;
      } else {
        inv.args.push_back(a);
        // Report a surplus argument at once: for exec it is a command line missing its "--",
        // whose own flags ("uname -r") would otherwise be reported as unknown flags.
        if (static_cast<int>(inv.args.size()) > inv.command->max_args) {
          auto rest_end = std::find(args.begin() + i, args.end(), "--");
          bool help_follows = std::find_if(args.begin() + i, rest_end, [](const std::string& w) {
                                return w == "--help" || w == "-h";
                              }) != rest_end;
          if (!help_follows) return CheckArgs(inv);
        }
      }
      continue;
    }
    // "--name", "--name=value", "-n", "-nVALUE", "-n=VALUE".
    bool is_long = absl::StartsWith(a, "--");
    std::string name;
    std::optional<std::string> inline_value;
    if (is_long) {
      size_t eq = a.find('=');
      name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      if (eq != std::string::npos) inline_value = a.substr(eq + 1);
    } else {
      name = a.substr(1, 1);
      if (a.size() > 2) inline_value = a.substr(a[2] == '=' ? 3 : 2);
    }
    const FlagSpec* flag = name.empty() ? nullptr : FindFlag(inv.command, name);
    if (flag == nullptr || (!is_long && flag->short_name == 0)) {
      return UnknownFlag(a, inv.command, commands);
    }
    std::string spelled = Spelled(*flag, !is_long);
    std::string value;
    if (flag->value_name.empty()) {
      if (inline_value) {
        if (!is_long) return UnknownFlag(a, inv.command, commands);  // e.g. "-fw"
        return absl::InvalidArgumentError(absl::StrCat(Where(inv.command), "flag ", spelled,
                                                       " takes no value", SeeHelp(inv.command)));
      }
    } else if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat(Where(inv.command), "flag ", spelled,
                                                     " needs a value (", flag->value_name, ")",
                                                     SeeHelp(inv.command)));
    }
    if (IsGlobal(*flag)) {
      if (absl::Status s = ApplyGlobal(*flag, value, inv); !s.ok()) return s;
    } else {
      inv.flags[flag->name].push_back(value);
    }
  }
  if (inv.help || inv.command == nullptr) return inv;
  if (absl::Status s = CheckArgs(inv); !s.ok()) return s;
  return inv;
}

}  // namespace kfleet::cli
