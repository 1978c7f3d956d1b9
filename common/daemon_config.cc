#include "common/daemon_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <optional>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "common/duration.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace kfleet {
namespace {

// Levenshtein distance where swapping two adjacent characters is one edit.
size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::vector<std::string> Names(const std::map<std::string, FlagEntry>& flags) {
  std::vector<std::string> names;
  for (const auto& [name, entry] : flags) names.push_back(name);
  return names;
}

std::map<std::string, FlagEntry> FlagsByName(const DaemonSpec& spec) {
  std::map<std::string, FlagEntry> out;
  for (FlagEntry& entry : SpecFlags(spec)) out.emplace(entry.name, std::move(entry));
  return out;
}

// Sets one flag from text. `where` starts the message: "--heartbeat" or "FILE:3: heartbeat".
absl::Status SetFlag(const FlagEntry& entry, const std::string& value, absl::string_view where) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(UnderscoreName(entry.name));
  if (flag == nullptr) {
    return absl::InternalError(absl::StrCat(where, ": not a registered flag"));
  }
  if (entry.value_name == "DURATION" && !IsZeroDuration(value)) {
    absl::StatusOr<absl::Duration> d = ParseDuration(value);
    if (!d.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": ", d.status().message()));
  }
  std::string error;
  if (!flag->ParseFrom(value, &error)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", error));
  }
  return absl::OkStatus();
}

// One flag of the command line.
struct Setting {
  const FlagEntry* entry;
  std::string value;
};

absl::StatusOr<std::vector<Setting>> ReadCommandLine(const DaemonSpec& spec,
                                                     const std::map<std::string, FlagEntry>& flags,
                                                     const std::vector<std::string>& args) {
  std::vector<Setting> out;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() < 2 || arg[0] != '-' || arg == "--") {
      size_t at = arg == "--" ? i + 1 : i;
      if (at >= args.size()) break;
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected argument \"", args[at], "\": ", spec.name, " takes only flags (see --help)"));
    }
    absl::string_view body = absl::StripPrefix(absl::StripPrefix(arg, "-"), "-");
    size_t eq = body.find('=');
    std::string name = absl::StrReplaceAll(body.substr(0, eq), {{"_", "-"}});
    bool has_value = eq != absl::string_view::npos;
    std::string value = has_value ? std::string(body.substr(eq + 1)) : "";
    auto it = flags.find(name);
    if (it == flags.end() && absl::StartsWith(name, "no") && !has_value) {
      // --noinsecure, as absl spells a boolean flag turned off.
      auto negated = flags.find(name.substr(2));
      if (negated != flags.end() && negated->second.value_name.empty()) {
        out.push_back({&negated->second, "false"});
        continue;
      }
    }
    if (it == flags.end()) {
      std::string closest = ClosestName(name, Names(flags));
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, ": unknown flag",
                       closest.empty() ? "" : absl::StrCat(" (did you mean --", closest, "?)"),
                       "; see ", spec.name, " --help"));
    }
    const FlagEntry& entry = it->second;
    if (!has_value && entry.value_name.empty()) {
      value = "true";
    } else if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value: --", name, " ", entry.value_name));
      }
      value = args[++i];
    }
    out.push_back({&entry, std::move(value)});
  }
  return out;
}

std::optional<DaemonAction> HelpOption(const std::vector<std::string>& args) {
  static const auto* const kOptions =
      new std::map<std::string, DaemonAction>{{"--help", DaemonAction::kHelp},
                                              {"-help", DaemonAction::kHelp},
                                              {"-h", DaemonAction::kHelp},
                                              {"--helpfull", DaemonAction::kHelp},
                                              {"-helpfull", DaemonAction::kHelp},
                                              {"--helpshort", DaemonAction::kHelp},
                                              {"--version", DaemonAction::kVersion},
                                              {"-version", DaemonAction::kVersion},
                                              {"--man", DaemonAction::kMan},
                                              {"--print-config", DaemonAction::kPrintConfig},
                                              {"--print_config", DaemonAction::kPrintConfig}};
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
    if (auto it = kOptions->find(args[i]); it != kOptions->end()) return it->second;
  }
  return std::nullopt;
}

// yaml-cpp reports errors by throwing: ApplyConfigText keeps every call to it inside its try.
absl::Status ApplyConfigNode(const DaemonSpec& spec, const YAML::Node& root,
                             absl::string_view file_name) {
  auto error = [&](const YAML::Node& node, absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_name, ":", node.Mark().line + 1, ": ", what));
  };
  if (!root || root.IsNull()) return absl::OkStatus();  // empty, or nothing but comments
  if (!root.IsMap()) {
    return error(root, "expected a mapping of flag names to values, such as `state-dir: DIR`");
  }
  std::map<std::string, FlagEntry> flags = FlagsByName(spec);
  std::map<std::string, int> seen;  // key -> line
  for (const auto& kv : root) {
    if (!kv.first.IsScalar()) return error(kv.first, "expected a flag name as the key");
    std::string key = kv.first.as<std::string>();
    int line = kv.first.Mark().line + 1;
    if (auto [it, added] = seen.emplace(key, line); !added) {
      return error(kv.first, absl::StrCat(key, ": given twice (first on line ", it->second, ")"));
    }
    if (std::find(spec.reserved_keys.begin(), spec.reserved_keys.end(), key) !=
        spec.reserved_keys.end()) {
      continue;
    }
    if (key == spec.config_flag) {
      return error(kv.first, absl::StrCat(key,
                                          ": a config file cannot name another one; "
                                          "give one file with --",
                                          key));
    }
    auto it = flags.find(key);
    if (it == flags.end()) {
      std::vector<std::string> names = Names(flags);
      names.erase(std::remove(names.begin(), names.end(), spec.config_flag), names.end());
      names.insert(names.end(), spec.reserved_keys.begin(), spec.reserved_keys.end());
      std::string closest = ClosestName(key, names);
      return error(
          kv.first,
          absl::StrCat("unknown key \"", key, "\"",
                       closest.empty() ? "" : absl::StrCat(" (did you mean ", closest, "?)"),
                       "; the keys are ", spec.name, "'s flags: see ", spec.name,
                       " --print-config"));
    }
    const YAML::Node& v = kv.second;
    std::string value;
    if (v.IsScalar()) {
      value = v.as<std::string>();
    } else if (v.IsSequence()) {
      std::vector<std::string> items;
      for (const YAML::Node& item : v) {
        if (!item.IsScalar() || absl::StrContains(item.as<std::string>(), ',')) {
          return error(item, absl::StrCat(key, ": list items are plain values without commas"));
        }
        items.push_back(item.as<std::string>());
      }
      value = absl::StrJoin(items, ",");
    } else if (v.IsNull()) {
      return error(kv.first, absl::StrCat(key, ": no value (write \"\" for an empty one)"));
    } else {
      return error(v, absl::StrCat(key, ": expected a value or a list, not a mapping"));
    }
    RETURN_IF_ERROR(SetFlag(it->second, value, absl::StrCat(file_name, ":", line, ": ", key)));
  }
  return absl::OkStatus();
}

}  // namespace

std::string ClosestName(absl::string_view word, const std::vector<std::string>& names) {
  std::string dashed = absl::StrReplaceAll(word, {{"_", "-"}});
  std::string best;
  size_t best_distance = 3;
  std::vector<const std::string*> prefixed;
  for (const std::string& name : names) {
    size_t d = EditDistance(dashed, name);
    if (d < best_distance) {
      best_distance = d;
      best = name;
    }
    if (!dashed.empty() && absl::StartsWith(name, dashed)) prefixed.push_back(&name);
  }
  if (!best.empty() && 2 * best_distance < std::max<size_t>(dashed.size(), 2)) return best;
  if (prefixed.size() == 1) return *prefixed[0];
  return "";
}

absl::Status ApplyConfigText(const DaemonSpec& spec, absl::string_view text,
                             absl::string_view file_name) {
  try {
    return ApplyConfigNode(spec, YAML::Load(std::string(text)), file_name);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_name, ":", e.mark.line + 1, ": ", e.msg, " (is it YAML?)"));
  }
}

absl::Status ApplyConfigFile(const DaemonSpec& spec, const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path, kMaxConfigFileBytes);
  if (absl::IsResourceExhausted(text.status())) {
    return absl::ResourceExhaustedError(
        absl::StrCat(path, ": larger than 1 MiB; is it the right file?"));
  }
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat("--", spec.config_flag, ": ", text.status().message()));
  }
  return ApplyConfigText(spec, *text, path);
}

absl::StatusOr<DaemonAction> ParseDaemonArgs(const DaemonSpec& spec,
                                             const std::vector<std::string>& args) {
  if (std::optional<DaemonAction> help = HelpOption(args)) return *help;
  std::map<std::string, FlagEntry> flags = FlagsByName(spec);
  ASSIGN_OR_RETURN(std::vector<Setting> settings, ReadCommandLine(spec, flags, args));
  // The file first, so that the command line overrides it.
  std::string config;
  for (const Setting& s : settings) {
    if (!spec.config_flag.empty() && s.entry->name == spec.config_flag) config = s.value;
  }
  if (!config.empty()) RETURN_IF_ERROR(ApplyConfigFile(spec, config));
  for (const Setting& s : settings) {
    RETURN_IF_ERROR(SetFlag(*s.entry, s.value, absl::StrCat("--", s.entry->name)));
  }
  return DaemonAction::kRun;
}

std::set<std::string> RegisteredFlagKeys() {
  std::set<std::string> out;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (flag->IsRetired() || absl::StrContains(flag->Filename(), "absl/flags/")) continue;
    out.insert(absl::StrReplaceAll(name, {{"_", "-"}}));
  }
  return out;
}

}  // namespace kfleet
