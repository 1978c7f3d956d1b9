#include "common/daemon_flags.h"

#include <map>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/roff.h"

namespace kfleet {
namespace {

constexpr size_t kWidth = 100;
constexpr size_t kIndent = 2;
constexpr size_t kHelpIndent = 6;

// A flag as the docs show it: the spec's entry plus what absl knows of it.
struct FlagDoc {
  std::string name;
  std::string value_name;
  std::string help;
  std::string default_value;
  bool is_bool = false;
  bool is_list = false;
};

FlagDoc Describe(const FlagEntry& entry) {
  FlagDoc doc{.name = entry.name, .value_name = entry.value_name};
  const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(UnderscoreName(entry.name));
  if (flag == nullptr) return doc;  // ValidateSpec reports it
  doc.help = flag->Help();
  doc.default_value = flag->DefaultValue();
  doc.is_bool = flag->IsOfType<bool>();
  doc.is_list = flag->IsOfType<std::vector<std::string>>();
  if (!doc.is_bool && doc.value_name.empty()) doc.value_name = "VALUE";
  if (doc.is_bool) doc.value_name.clear();
  return doc;
}

// The options every daemon answers before it reads any flag.
struct HelpOption {
  std::string usage;  // "-h, --help"
  std::string help;
};

std::vector<HelpOption> HelpOptions(const DaemonSpec& spec) {
  return {
      {"-h, --help", "print this help and exit (--helpfull: the same)"},
      {"--version", absl::StrCat("print \"", spec.name, " ", spec.version, "\" and exit")},
      {"--man", "print the man page (roff) and exit"},
      {"--print-config",
       "print a config file with every key commented out at its default, and exit"},
  };
}

constexpr char kHelpOptionsTitle[] = "Help";

constexpr char kFlagSyntax[] =
    "Flags are written --name VALUE or --name=VALUE, with dashes or underscores; a boolean flag "
    "alone means true, --name=false turns it off.";

// Word-wraps `text` to kWidth columns: the first line after `first`, the others after `rest`.
// Paragraphs are separated by blank lines; lines that start with a space are kept as they are.
std::string Wrap(absl::string_view text, absl::string_view first, absl::string_view rest) {
  std::string out;
  std::string prefix(first);
  std::string line;
  auto flush = [&] {
    if (line.empty()) return;
    absl::StrAppend(&out, prefix, line, "\n");
    prefix = std::string(rest);
    line.clear();
  };
  std::vector<absl::string_view> paragraphs =
      absl::StrSplit(absl::StripTrailingAsciiWhitespace(text), "\n\n");
  for (size_t p = 0; p < paragraphs.size(); ++p) {
    if (p > 0) out += "\n";
    for (absl::string_view raw : absl::StrSplit(paragraphs[p], '\n')) {
      if (!raw.empty() && raw[0] == ' ') {
        flush();
        absl::StrAppend(&out, rest, raw, "\n");
        continue;
      }
      for (absl::string_view word : absl::StrSplit(raw, ' ', absl::SkipEmpty())) {
        if (!line.empty() && prefix.size() + line.size() + 1 + word.size() > kWidth) flush();
        if (!line.empty()) line += ' ';
        absl::StrAppend(&line, word);
      }
    }
    flush();
  }
  return out;
}

std::string Wrap(absl::string_view text, size_t indent) {
  std::string pad(indent, ' ');
  return Wrap(text, pad, pad);
}

std::string FlagUsage(const FlagDoc& doc) {
  return doc.value_name.empty() ? absl::StrCat("--", doc.name)
                                : absl::StrCat("--", doc.name, " ", doc.value_name);
}

// Why a config file is worth having and how it reads, for --help and the man page.
std::string ConfigParagraphs(const DaemonSpec& spec) {
  std::string example = "state-dir: /var/lib/kfleet";
  for (const FlagEntry& entry : SpecFlags(spec)) {
    FlagDoc doc = Describe(entry);
    if (!doc.is_bool && !doc.is_list && !doc.default_value.empty()) {
      example = absl::StrCat(doc.name, ": ", doc.default_value);
      break;
    }
  }
  std::string text = absl::StrCat(
      "--", spec.config_flag,
      " FILE reads flags from a YAML file first; the command line overrides it. Each top-level "
      "key is a flag's name with dashes (`",
      example,
      "`); booleans are true or false, durations strings such as 30s, lists `[a, b]` or `a,b`. A "
      "key that is not a flag (or is `",
      spec.config_flag,
      "`: there are no includes), a bad value, or a file larger than 1 MiB stops ", spec.name,
      " with exit status 2 and an error that names the file and the line.");
  if (!spec.config_text.empty()) absl::StrAppend(&text, "\n\n", spec.config_text);
  absl::StrAppend(
      &text, "\n\n`", spec.name,
      " --print-config` prints a config file with every key commented out at its "
      "default",
      spec.config_path.empty() ? "" : absl::StrCat(", as installed in ", spec.config_path), ".");
  return text;
}

// A default value as a YAML scalar that reads back as the same string.
std::string YamlValue(const FlagDoc& doc) {
  const std::string& v = doc.default_value;
  if (doc.is_bool) return v;
  if (doc.is_list) {
    std::vector<std::string> items = absl::StrSplit(v, ',', absl::SkipEmpty());
    return absl::StrCat("[", absl::StrJoin(items, ", "), "]");
  }
  static const auto* const kPlainWords =
      new std::vector<std::string>{"true", "false", "yes", "no", "on", "off", "null", "~"};
  bool quote = v.empty() || absl::ascii_isspace(v.front()) || absl::ascii_isspace(v.back()) ||
               absl::StrContains("-?:,[]{}#&*!|>'\"%@`", v.front()) || absl::StrContains(v, ": ") ||
               absl::StrContains(v, " #");
  for (const std::string& word : *kPlainWords) quote = quote || absl::EqualsIgnoreCase(v, word);
  if (!quote) return v;
  return absl::StrCat("\"", absl::StrReplaceAll(v, {{"\\", "\\\\"}, {"\"", "\\\""}}), "\"");
}

// absl reports a flag's file without leading slashes (its usage config normalizes it).
absl::string_view WithoutLeadingSlashes(absl::string_view path) {
  size_t start = path.find_first_not_of("/\\");
  return start == absl::string_view::npos ? "" : path.substr(start);
}

std::string ManOption(absl::string_view usage, absl::string_view value_name) {
  std::string out = absl::StrCat("\\fB", RoffEscape(usage), "\\fR");
  if (!value_name.empty()) absl::StrAppend(&out, " \\fI", RoffEscape(value_name), "\\fR");
  return out;
}

}  // namespace

std::vector<FlagEntry> SpecFlags(const DaemonSpec& spec) {
  std::vector<FlagEntry> out;
  for (const HelpGroup& group : spec.groups) {
    for (const std::string& flag : group.flags) {
      std::pair<std::string, std::string> parts = absl::StrSplit(flag, absl::MaxSplits(' ', 1));
      out.push_back({std::move(parts.first), std::move(parts.second)});
    }
  }
  return out;
}

std::string UnderscoreName(absl::string_view dashed) {
  return absl::StrReplaceAll(dashed, {{"-", "_"}});
}

absl::Status ValidateSpec(const DaemonSpec& spec) {
  std::map<std::string, std::string> group_of;
  for (const HelpGroup& group : spec.groups) {
    for (const FlagEntry& entry : SpecFlags(DaemonSpec{.groups = {group}})) {
      if (absl::FindCommandLineFlag(UnderscoreName(entry.name)) == nullptr) {
        return absl::InternalError(absl::StrCat("help group \"", group.title, "\" lists --",
                                                entry.name, ", which is not a flag"));
      }
      auto [it, added] = group_of.emplace(entry.name, group.title);
      if (!added) {
        return absl::InternalError(absl::StrCat("--", entry.name, " is in two help groups: \"",
                                                it->second, "\" and \"", group.title, "\""));
      }
    }
  }
  if (!spec.config_flag.empty() && group_of.count(spec.config_flag) == 0) {
    return absl::InternalError(
        absl::StrCat("the config flag --", spec.config_flag, " is in no help group"));
  }
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (flag->IsRetired() ||
        WithoutLeadingSlashes(flag->Filename()) != WithoutLeadingSlashes(spec.main_file)) {
      continue;
    }
    std::string dashed = absl::StrReplaceAll(name, {{"_", "-"}});
    if (group_of.count(dashed) == 0) {
      return absl::InternalError(
          absl::StrCat("--", dashed, " (", spec.main_file, ") is in no help group of ", spec.name));
    }
  }
  return absl::OkStatus();
}

std::string RenderHelp(const DaemonSpec& spec) {
  std::string out = absl::StrCat(spec.name, " ", spec.version, " - ", spec.summary, "\n\n");
  absl::StrAppend(&out, Wrap(absl::StrCat(spec.name, " ", spec.synopsis),
                             "Usage: ", std::string(7 + spec.name.size() + 1, ' ')));
  absl::StrAppend(&out, "\n", Wrap(spec.description, 0), "\n", Wrap(kFlagSyntax, 0));
  for (const HelpGroup& group : spec.groups) {
    absl::StrAppend(&out, "\n", group.title, ":\n");
    for (const FlagEntry& entry : SpecFlags(DaemonSpec{.groups = {group}})) {
      FlagDoc doc = Describe(entry);
      std::string head = absl::StrCat(std::string(kIndent, ' '), FlagUsage(doc));
      if (!doc.default_value.empty())
        absl::StrAppend(&head, "  (default: ", doc.default_value, ")");
      absl::StrAppend(&out, head, "\n", Wrap(doc.help, kHelpIndent));
    }
  }
  absl::StrAppend(&out, "\n", kHelpOptionsTitle, ":\n");
  for (const HelpOption& option : HelpOptions(spec)) {
    absl::StrAppend(&out, std::string(kIndent, ' '), option.usage, "\n",
                    Wrap(option.help, kHelpIndent));
  }
  if (!spec.config_flag.empty()) {
    absl::StrAppend(&out, "\nConfig file:\n", Wrap(ConfigParagraphs(spec), kIndent));
  }
  absl::StrAppend(&out, "\nExit status:\n");
  for (const auto& [code, meaning] : spec.exit_codes) {
    absl::StrAppend(&out, Wrap(meaning, absl::StrCat("  ", code, "  "), std::string(5, ' ')));
  }
  return out;
}

std::string RenderManPage(const DaemonSpec& spec) {
  std::string out = RoffTitle(spec.name, 8, spec.version);
  absl::StrAppend(&out, ".SH NAME\n", RoffEscape(spec.name), " \\- ", RoffEscape(spec.summary),
                  "\n");
  absl::StrAppend(&out, ".SH SYNOPSIS\n.B ", RoffEscape(spec.name), "\n", RoffEscape(spec.synopsis),
                  "\n");
  absl::StrAppend(&out, ".SH DESCRIPTION\n",
                  RoffParagraphs(absl::StrCat(spec.description, "\n\n", kFlagSyntax)));
  absl::StrAppend(&out, ".SH OPTIONS\n");
  for (const HelpGroup& group : spec.groups) {
    absl::StrAppend(&out, ".SS \"", RoffEscape(group.title), "\"\n");
    for (const FlagEntry& entry : SpecFlags(DaemonSpec{.groups = {group}})) {
      FlagDoc doc = Describe(entry);
      std::string head = ManOption(absl::StrCat("--", doc.name), doc.value_name);
      if (!doc.default_value.empty()) {
        absl::StrAppend(&head, " (default: \\fB", RoffEscape(doc.default_value), "\\fR)");
      }
      absl::StrAppend(&out, ".TP\n", head, "\n", RoffParagraphs(doc.help, ".IP"));
    }
  }
  absl::StrAppend(&out, ".SS \"", kHelpOptionsTitle, "\"\n");
  for (const HelpOption& option : HelpOptions(spec)) {
    absl::StrAppend(&out, ".TP\n", ManOption(option.usage, ""), "\n",
                    RoffParagraphs(option.help, ".IP"));
  }
  if (!spec.config_flag.empty()) {
    absl::StrAppend(&out, ".SH CONFIGURATION\n", RoffParagraphs(ConfigParagraphs(spec)));
  }
  if (!spec.files.empty()) {
    absl::StrAppend(&out, ".SH FILES\n");
    for (const auto& [path, what] : spec.files) {
      // \% keeps a path from being hyphenated.
      absl::StrAppend(&out, ".TP\n.I \\%", RoffEscape(path), "\n", RoffParagraphs(what, ".IP"));
    }
  }
  absl::StrAppend(&out, ".SH \"EXIT STATUS\"\n");
  for (const auto& [code, meaning] : spec.exit_codes) {
    absl::StrAppend(&out, ".TP\n.B ", code, "\n", RoffParagraphs(meaning, ".IP"));
  }
  if (!spec.see_also.empty()) {
    absl::StrAppend(&out, ".SH \"SEE ALSO\"\n");
    for (size_t i = 0; i < spec.see_also.size(); ++i) {
      std::pair<std::string, std::string> ref =
          absl::StrSplit(spec.see_also[i], absl::MaxSplits('(', 1));
      absl::StrAppend(&out, ".BR ", RoffEscape(ref.first), " (", ref.second,
                      i + 1 < spec.see_also.size() ? "," : "", "\n");
    }
  }
  return out;
}

std::string RenderConfigExample(const DaemonSpec& spec) {
  std::string out =
      Wrap(absl::StrCat(spec.name, " configuration (YAML)",
                        spec.config_path.empty() ? "" : absl::StrCat(": ", spec.config_path),
                        ", read with --", spec.config_flag, " FILE.\n\nEach key is a flag of ",
                        spec.name,
                        " with dashes; flags on the command line override the file. Every key is "
                        "shown commented out at its default: remove the # to set it. ",
                        spec.name, " --help and ", spec.name, "(8) explain them; ", spec.name,
                        " --print-config prints this file."),
           "# ", "# ");
  absl::StrReplaceAll({{"\n\n", "\n#\n"}}, &out);
  for (const HelpGroup& group : spec.groups) {
    absl::StrAppend(&out, "\n## ", group.title, "\n");
    for (const FlagEntry& entry : SpecFlags(DaemonSpec{.groups = {group}})) {
      if (entry.name == spec.config_flag) continue;  // a config file names no other
      FlagDoc doc = Describe(entry);
      absl::StrAppend(&out, "\n", Wrap(doc.help, "# ", "# "), "#", doc.name, ": ", YamlValue(doc),
                      "\n");
    }
  }
  if (!spec.config_example_tail.empty()) absl::StrAppend(&out, "\n", spec.config_example_tail);
  return out;
}

}  // namespace kfleet
