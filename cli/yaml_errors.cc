#include "cli/yaml_errors.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace kfleet::cli::internal {
namespace {

constexpr int kMaxErrors = 50;

}  // namespace

Pos PosOf(const YAML::Node& node, Pos fallback) {
  const YAML::Mark m = node.Mark();
  if (m.is_null() || m.line < 0 || m.column < 0) return fallback;
  return Pos{m.line + 1, m.column + 1};
}

Pos PosOf(const YAML::Mark& mark) {
  return mark.is_null() ? Pos{} : Pos{mark.line + 1, mark.column + 1};
}

Pos ValuePos(const YAML::Node& value, Pos key) { return value.IsNull() ? key : PosOf(value, key); }

std::string Join(absl::string_view path, absl::string_view field) {
  return path.empty() ? std::string(field) : absl::StrCat(path, ".", field);
}

std::string JoinKey(absl::string_view path, absl::string_view key) {
  bool plain = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '_' || c == '-';
  });
  return plain ? Join(path, key) : absl::StrCat(path, "[\"", absl::CHexEscape(key), "\"]");
}

std::string Quote(absl::string_view text) {
  constexpr size_t kMaxShown = 40;
  if (text.size() <= kMaxShown) return absl::StrCat("\"", absl::CHexEscape(text), "\"");
  return absl::StrCat("\"", absl::CHexEscape(text.substr(0, kMaxShown - 3)), "...\"");
}

std::string Describe(const YAML::Node& node) {
  if (node.IsScalar()) return Quote(node.Scalar());
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a map";
  return "nothing";
}

void YamlErrors::Report(Pos pos, absl::string_view path, absl::string_view problem) {
  errors_.push_back(
      Problem{pos, path.empty() ? std::string(problem) : absl::StrCat(path, ": ", problem)});
}

void YamlErrors::Error(Pos pos, absl::string_view path, absl::string_view problem) {
  Report(pos, path, problem);
  poisoned_.insert(std::string(path));
}

absl::Status YamlErrors::status() const {
  std::vector<const Problem*> sorted;
  for (const Problem& e : errors_) sorted.push_back(&e);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Problem* a, const Problem* b) {
    return std::make_pair(a->pos.line, a->pos.col) < std::make_pair(b->pos.line, b->pos.col);
  });
  std::vector<std::string> lines;
  for (const Problem* e : sorted) {
    if (lines.size() == kMaxErrors) {
      lines.push_back(absl::StrCat(file_, ": ", sorted.size() - kMaxErrors, " more errors"));
      break;
    }
    lines.push_back(absl::StrCat(file_, ":", e->pos.line, ":", e->pos.col, ": ", e->text));
  }
  return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
}

bool YamlErrors::Poisoned(const std::string& path) const {
  for (std::string p = path;;) {
    if (poisoned_.count(p) != 0) return true;
    if (p.empty()) break;
    size_t cut = p.find_last_of(".[");
    p.resize(cut == std::string::npos ? 0 : cut);
  }
  for (auto it = poisoned_.lower_bound(path); it != poisoned_.end(); ++it) {
    if (!absl::StartsWith(*it, path)) break;
    if (it->size() > path.size() && ((*it)[path.size()] == '.' || (*it)[path.size()] == '[')) {
      return true;
    }
  }
  return false;
}

void YamlErrors::Record(const std::string& path, Pos pos, absl::string_view display) {
  locations_[path] = Location{display.empty() ? path : std::string(display), pos};
}

Pos YamlErrors::PosFor(std::string path) const {
  while (!path.empty()) {
    auto it = locations_.find(path);
    if (it != locations_.end()) return it->second.pos;
    size_t cut = path.find_last_of(".[");
    path.resize(cut == std::string::npos ? 0 : cut);
  }
  return root_;
}

std::string YamlErrors::Display(const std::string& path) const {
  auto it = locations_.find(path);
  return it == locations_.end() ? path : it->second.display;
}

}  // namespace kfleet::cli::internal
