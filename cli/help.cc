#include "cli/help.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/exit_codes.h"

namespace kfleet::cli {
namespace {

constexpr size_t kIndent = 4;

std::string FlagUsage(const FlagSpec& f) {
  std::string s;
  if (f.short_name != 0) absl::StrAppend(&s, "-", std::string(1, f.short_name), ", ");
  absl::StrAppend(&s, "--", f.name);
  if (!f.value_name.empty()) absl::StrAppend(&s, " ", f.value_name);
  return s;
}

std::string FlagList(const std::vector<FlagSpec>& flags) {
  std::string out;
  for (const FlagSpec& f : flags) {
    if (f.hidden) continue;
    absl::StrAppend(&out, std::string(kIndent, ' '), FlagUsage(f), "\n");
    std::string help = f.help;
    if (f.repeatable) absl::StrAppend(&help, " May be repeated.");
    absl::StrAppend(&out, Wrap(help, 2 * kIndent));
  }
  return out;
}

std::string Section(absl::string_view title, absl::string_view body) {
  return absl::StrCat(title, "\n", body, "\n");
}

constexpr char kEnvironment[] =
    "KFLEET_CONFIG\n"
    "    The config file to read, when --config is not given.\n"
    "KFLEET_CONTROLLER\n"
    "    The controller's HOST:PORT, when --controller is not given.\n"
    "KFLEET_INSECURE\n"
    "    1 or true: as --insecure; 0 or false: not, even if the config file says so.\n"
    "XDG_CONFIG_HOME, HOME\n"
    "    Where the default config file is looked for.\n";

constexpr char kFiles[] =
    "~/.config/kfleet/kctl.yaml ($XDG_CONFIG_HOME/kfleet/kctl.yaml when set)\n"
    "    The default config file; --config FILE or KFLEET_CONFIG names another, such as the\n"
    "    STATE_DIR/kctl.yaml the controller writes on first start. `key: value` lines:\n"
    "    `controller: HOST:PORT`, `insecure: true|false`, `ca: FILE` (the controller's CA),\n"
    "    `cert: FILE` and `key: FILE` (kctl's certificate and key), `server_name: NAME` (the\n"
    "    name on the controller's certificate, when not the address's host). Relative paths\n"
    "    are relative to the config file's directory. Flags win over the environment, the\n"
    "    environment over this file.\n";

std::string Indented(absl::string_view text) {
  std::string out;
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty()) {
      out += "\n";
    } else {
      absl::StrAppend(&out, std::string(kIndent, ' '), line, "\n");
    }
  }
  return out;
}

}  // namespace

std::string Wrap(absl::string_view text, size_t indent, size_t width) {
  std::string out;
  std::string pad(indent, ' ');
  std::vector<absl::string_view> paragraphs = absl::StrSplit(text, "\n\n");
  for (size_t p = 0; p < paragraphs.size(); ++p) {
    if (p > 0) out += "\n";
    std::string line;
    for (absl::string_view raw : absl::StrSplit(paragraphs[p], '\n')) {
      if (!raw.empty() && raw[0] == ' ') {  // preformatted
        if (!line.empty()) absl::StrAppend(&out, pad, line, "\n");
        line.clear();
        absl::StrAppend(&out, pad, raw, "\n");
        continue;
      }
      for (absl::string_view word : absl::StrSplit(raw, ' ', absl::SkipEmpty())) {
        if (!line.empty() && indent + line.size() + 1 + word.size() > width) {
          absl::StrAppend(&out, pad, line, "\n");
          line.clear();
        }
        if (!line.empty()) line += ' ';
        absl::StrAppend(&line, word);
      }
    }
    if (!line.empty()) absl::StrAppend(&out, pad, line, "\n");
  }
  return out;
}

std::string RenderOverview(const std::vector<CommandSpec>& commands) {
  std::string out = Section(
      "NAME", Wrap("kctl - run commands, jobs and kernel tests on a kfleet fleet", kIndent));
  absl::StrAppend(&out, Section("SYNOPSIS", Wrap("kctl [--controller HOST:PORT] [--config FILE] "
                                                 "[--insecure] [-o table|wide|json] COMMAND "
                                                 "[ARGS...]",
                                                 kIndent)));
  absl::StrAppend(
      &out,
      Section("DESCRIPTION",
              Wrap("kctl talks to the kfleet controller's admin API, over mutual TLS with the "
                   "CA, certificate and key its config file names. Global flags may come before "
                   "or after the command name. Run `kctl COMMAND --help` for a command's page; "
                   "docs/kctl.md has all of them.",
                   kIndent)));
  size_t width = 0;
  for (const CommandSpec& c : commands) width = std::max(width, c.name.size());
  std::string list;
  for (const CommandSpec& c : commands) {
    absl::StrAppend(&list, std::string(kIndent, ' '), c.name,
                    std::string(width + 3 - c.name.size(), ' '), c.summary, "\n");
  }
  absl::StrAppend(&out, Section("COMMANDS", list));
  absl::StrAppend(&out, Section("GLOBAL FLAGS", FlagList(GlobalFlags())));
  absl::StrAppend(&out, Section("ENVIRONMENT", Indented(kEnvironment)));
  absl::StrAppend(&out, Section("FILES", Indented(kFiles)));
  std::string codes;
  for (int code = kExitOk; code <= kExitLast; ++code) {
    absl::StrAppend(&codes, std::string(kIndent, ' '), code, "   ", ExitCodeMeaning(code), "\n");
  }
  absl::StrAppend(&out, Section("EXIT STATUS", codes));
  absl::StrAppend(&out,
                  Section("EXAMPLES", Indented("kctl --config /var/lib/kfleet/kctl.yaml hosts\n"
                                               "kctl hosts\n"
                                               "kctl exec -l pool=local -- uname -r\n"
                                               "kctl jobs\n"
                                               "kctl job j-3f2a9c01d4e5b677 --watch\n")));
  out.pop_back();  // no blank line at the very end
  return out;
}

std::string RenderCommandHelp(const CommandSpec& c) {
  std::string out = Section("NAME", Wrap(absl::StrCat("kctl ", c.name, " - ", c.summary), kIndent));
  absl::StrAppend(&out, Section("SYNOPSIS", Wrap(absl::StrCat("kctl ", c.synopsis), kIndent)));
  absl::StrAppend(&out, Section("DESCRIPTION", Wrap(c.description, kIndent)));
  std::string options = FlagList(c.flags);
  if (!options.empty()) absl::StrAppend(&out, Section("OPTIONS", options));
  if (c.needs_controller) absl::StrAppend(&out, Section("GLOBAL FLAGS", FlagList(GlobalFlags())));
  std::string codes;
  for (const auto& [code, meaning] : c.exit_codes) {
    absl::StrAppend(&codes, std::string(kIndent, ' '), code, "   ",
                    meaning.empty() ? ExitCodeMeaning(code) : meaning, "\n");
  }
  if (!codes.empty()) absl::StrAppend(&out, Section("EXIT STATUS", codes));
  if (!c.examples.empty()) absl::StrAppend(&out, Section("EXAMPLES", Indented(c.examples)));
  out.pop_back();
  return out;
}

}  // namespace kfleet::cli
