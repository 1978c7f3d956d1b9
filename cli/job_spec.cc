#include "cli/job_spec.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/suggest.h"
#include "common/duration.h"
#include "common/ids.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace kfleet::cli {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::OneofDescriptor;
using google::protobuf::Reflection;

constexpr int kMaxErrors = 50;
// Anchors and aliases let a small file expand into a large tree; the walk stops past these.
constexpr size_t kMaxNodes = 1'000'000;
constexpr size_t kMaxScalarBytes = size_t{16} << 20;
// These mirror ValidateJobSpec (controller/api/fleet_service.cc), so that a spec that parses here
// is not refused by the controller for its size, and the error can name a line.
constexpr int kMaxSteps = 100;
constexpr int kMaxArgs = 4096;
constexpr uint32_t kMaxCount = 1000;
constexpr size_t kMaxNameBytes = 128;

constexpr char kTimeout[] = "timeout";
// Fields of step kinds that the controller fills in when the job is submitted (common.proto).
constexpr std::pair<const char*, const char*> kControllerFields[] = {
    {"kernel_build", "source"},
    {"kernel_install", "build"},
    {"kernel_install", "via_provider"},
    {"reboot", "via_provider"},
};
constexpr char kHostsExpected[] =
    "expected exactly one of all: true, names: [h1, h2] or labels: {pool: local}";

struct Pos {
  int line = 1;
  int col = 1;
};

Pos PosOf(const YAML::Node& node, Pos fallback) {
  const YAML::Mark m = node.Mark();
  if (m.is_null() || m.line < 0 || m.column < 0) return fallback;
  return Pos{m.line + 1, m.column + 1};
}

// yaml-cpp marks a missing value (`reboot:` at the end of a line) with the next token, which may
// be lines below: point at the key instead.
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

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : 9;
    if (n == 9 || i + n >= s.size()) return false;
    uint32_t cp = n == 0 ? c : c & (0x3f >> n);
    for (size_t k = 1; k <= n; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

std::vector<std::string> FieldNames(const Descriptor* d) {
  std::vector<std::string> names;
  for (int i = 0; i < d->field_count(); ++i) names.push_back(d->field(i)->name());
  return names;
}

std::vector<std::string> StepKinds() {
  std::vector<std::string> kinds;
  const OneofDescriptor* kind = v1::Step::descriptor()->FindOneofByName("kind");
  for (int i = 0; i < kind->field_count(); ++i) kinds.push_back(kind->field(i)->name());
  std::sort(kinds.begin(), kinds.end());
  return kinds;
}

// `, did you mean "X"?` for a likely typo of a candidate or of its last word ("biuld" for
// kernel_build), or "".
std::string Suggestion(absl::string_view word, const std::vector<std::string>& candidates) {
  std::optional<std::string> best = SuggestClosest(word, candidates);
  if (!best) {
    std::vector<std::string> last_words;
    for (const std::string& c : candidates) last_words.push_back(c.substr(c.rfind('_') + 1));
    std::optional<std::string> last = SuggestClosest(word, last_words);
    if (last && std::count(last_words.begin(), last_words.end(), *last) == 1) {
      best =
          candidates[std::find(last_words.begin(), last_words.end(), *last) - last_words.begin()];
    }
  }
  return best && *best != word ? absl::StrCat(", did you mean \"", *best, "\"?") : "";
}

// What a scalar field takes, for "(expected ...)".
std::string Expected(const FieldDescriptor* f) {
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return "a string";
    case FieldDescriptor::CPPTYPE_BOOL:
      return "true or false";
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat("a whole number from ", std::numeric_limits<int32_t>::min(), " to ",
                          std::numeric_limits<int32_t>::max());
    case FieldDescriptor::CPPTYPE_INT64:
      return "a whole number";
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat("a whole number from 0 to ", std::numeric_limits<uint32_t>::max());
    case FieldDescriptor::CPPTYPE_UINT64:
      return "a whole number from 0";
    case FieldDescriptor::CPPTYPE_FLOAT:
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return "a number";
    case FieldDescriptor::CPPTYPE_ENUM: {
      std::vector<std::string> values;
      for (int i = 0; i < f->enum_type()->value_count(); ++i) {
        values.push_back(f->enum_type()->value(i)->name());
      }
      return absl::StrCat("one of ", absl::StrJoin(values, ", "));
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return absl::StrCat("a map with fields ", absl::StrJoin(FieldNames(f->message_type()), ", "));
  }
  return "a value";
}

class SpecParser {
 public:
  explicit SpecParser(absl::string_view file) : file_(file) {}

  // Maps the document onto `spec` and checks it. Errors are collected, not returned.
  // yaml-cpp may throw (it should not, for the calls made here): the caller catches.
  void Parse(const YAML::Node& root, v1::JobSpec* spec) {
    if (root.IsNull()) {
      Error(Pos{}, "", "the file has no job spec (expected a map with name, hosts, steps)");
      return;
    }
    root_ = PosOf(root, Pos{});
    if (!CheckShape(root, 1)) return;
    if (!root.IsMap()) {
      Error(root_, "",
            absl::StrCat(Describe(root), " is not a job spec (expected a map with fields ",
                         absl::StrJoin(FieldNames(v1::JobSpec::descriptor()), ", "), ")"));
      return;
    }
    ParseMessage(root, root_, "", spec, nullptr);
    Check(*spec);
  }

  // Reports an error without marking a path as bad.
  void Report(Pos pos, absl::string_view path, absl::string_view problem) {
    errors_.push_back(
        Problem{pos, path.empty() ? std::string(problem) : absl::StrCat(path, ": ", problem)});
  }

  // Reports an error and marks `path` as bad, so that checks depending on it stay quiet.
  void Error(Pos pos, absl::string_view path, absl::string_view problem) {
    Report(pos, path, problem);
    poisoned_.insert(std::string(path));
  }

  bool failed() const { return !errors_.empty(); }

  absl::Status status() const {
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

 private:
  struct Problem {
    Pos pos;
    std::string text;
  };
  // The step whose kind is being mapped: a `timeout` key in the kind's map is the step's.
  struct StepContext {
    v1::Step* step;
    std::string path;  // steps[N]
  };
  struct Location {
    std::string display;  // the path as written (steps[0].reboot.timeout)
    Pos pos;
  };

  void Record(const std::string& path, Pos pos, absl::string_view display = "") {
    locations_[path] = Location{display.empty() ? path : std::string(display), pos};
  }

  // True if `path`, one of its parents, or one of its children had an error.
  bool Poisoned(const std::string& path) const {
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

  bool Given(const std::string& path) const { return locations_.count(path) != 0; }

  // Where `path` was written, or where its closest written parent was.
  Pos PosFor(std::string path) const {
    while (!path.empty()) {
      auto it = locations_.find(path);
      if (it != locations_.end()) return it->second.pos;
      size_t cut = path.find_last_of(".[");
      path.resize(cut == std::string::npos ? 0 : cut);
    }
    return root_;
  }

  std::string Display(const std::string& path) const {
    auto it = locations_.find(path);
    return it == locations_.end() ? path : it->second.display;
  }

  // Depth and size of the tree as the walk below will see it (aliases repeat their anchor's
  // subtree). Stops at the first problem: the rest of the walk would not be bounded.
  bool CheckShape(const YAML::Node& node, int depth) {
    scalar_bytes_ += node.IsScalar() ? node.Scalar().size() : 0;
    if (++nodes_ > kMaxNodes || scalar_bytes_ > kMaxScalarBytes) {
      Error(PosOf(node, root_), "",
            absl::StrCat("the document expands to more than ", kMaxNodes, " nodes or ",
                         kMaxScalarBytes >> 20,
                         " MiB of text (expected a smaller job; aliases repeat what they name)"));
      return false;
    }
    if (!node.IsSequence() && !node.IsMap()) return true;
    if (depth > kMaxJobSpecDepth) {
      Error(PosOf(node, root_), "",
            absl::StrCat("lists and maps are nested deeper than ", kMaxJobSpecDepth,
                         " levels (expected at most ", kMaxJobSpecDepth, ")"));
      return false;
    }
    for (const auto& item : node) {
      if (node.IsSequence()) {
        if (!CheckShape(item, depth + 1)) return false;
      } else if (!CheckShape(item.first, depth + 1) || !CheckShape(item.second, depth + 1)) {
        return false;
      }
    }
    return true;
  }

  // Maps a YAML map onto `msg`, field by field. With `step` set, `msg` is the kind of that step
  // and a `timeout` key in it is the step's timeout: DESIGN.md writes `- reboot: {timeout: 5m}`,
  // and `- {reboot: {}, timeout: 5m}` (Step.timeout beside the kind) means the same.
  void ParseMessage(const YAML::Node& node, Pos pos, const std::string& path, Message* msg,
                    const StepContext* step) {
    const Descriptor* d = msg->GetDescriptor();
    bool inline_timeout = step != nullptr && d->FindFieldByName(kTimeout) == nullptr;
    if (node.IsNull()) return;  // `kernel_build:` is an empty KernelBuildStep
    std::vector<std::string> allowed = FieldNames(d);
    if (inline_timeout) allowed.push_back(kTimeout);
    if (!node.IsMap()) {
      Error(pos, path,
            absl::StrCat(Describe(node), " is not a map (expected a map with fields ",
                         absl::StrJoin(allowed, ", "), ")"));
      return;
    }
    std::map<std::string, Pos> seen;
    std::map<const OneofDescriptor*, const FieldDescriptor*> oneofs;
    for (const auto& kv : node) {
      Pos key_pos = PosOf(kv.first, pos);
      if (!kv.first.IsScalar()) {
        Error(key_pos, path,
              absl::StrCat(Describe(kv.first), " is not a field name (expected one of ",
                           absl::StrJoin(allowed, ", "), ")"));
        continue;
      }
      const std::string& name = kv.first.Scalar();
      const FieldDescriptor* f = d->FindFieldByName(name);
      if (f == nullptr && !(inline_timeout && name == kTimeout)) {
        Report(key_pos, path,
               absl::StrCat("unknown field ", Quote(name), Suggestion(name, allowed),
                            " (expected one of ", absl::StrJoin(allowed, ", "), ")"));
        poisoned_.insert(JoinKey(path, name));
        continue;
      }
      std::string field_path = Join(path, name);
      if (!CheckUnique(&seen, name, key_pos, field_path)) continue;
      Pos value_pos = ValuePos(kv.second, key_pos);
      if (f == nullptr) {
        ParseStepTimeout(kv.second, value_pos, field_path, *step);
        continue;
      }
      if (const OneofDescriptor* o = f->real_containing_oneof()) {
        auto [it, first] = oneofs.emplace(o, f);
        if (!first) {
          Error(key_pos, field_path,
                absl::StrCat("cannot be given with ", it->second->name(), " (expected one of ",
                             absl::StrJoin(OneofFieldNames(o), ", "), ")"));
          continue;
        }
      }
      ParseField(kv.second, value_pos, field_path, f, msg);
    }
    for (int i = 0; i < d->real_oneof_decl_count(); ++i) {
      const OneofDescriptor* o = d->oneof_decl(i);
      if (oneofs.count(o) == 0 && !Poisoned(path)) {
        Error(pos, path,
              absl::StrCat("no ", o->name(), " (expected one of ",
                           absl::StrJoin(OneofFieldNames(o), ", "), ")"));
      }
    }
  }

  static std::vector<std::string> OneofFieldNames(const OneofDescriptor* o) {
    std::vector<std::string> names;
    for (int i = 0; i < o->field_count(); ++i) names.push_back(o->field(i)->name());
    return names;
  }

  bool CheckUnique(std::map<std::string, Pos>* seen, const std::string& key, Pos pos,
                   const std::string& path) {
    auto [it, first] = seen->emplace(key, pos);
    if (!first) {
      Error(pos, path,
            absl::StrCat("is given twice (expected it once; it is first on line ", it->second.line,
                         ")"));
    }
    return first;
  }

  void ParseField(const YAML::Node& value, Pos pos, const std::string& path,
                  const FieldDescriptor* f, Message* msg) {
    Record(path, pos);
    if (f->is_map()) {
      ParseMapField(value, pos, path, f, msg);
    } else if (f->is_repeated()) {
      if (!value.IsSequence()) {
        Error(pos, path,
              absl::StrCat(
                  Describe(value), " is not a list (expected a list of ",
                  f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ? "maps" : "values", ", e.g. ",
                  f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ? "[{...}, {...}]" : "[a, b]",
                  ")"));
        return;
      }
      int i = 0;
      for (const YAML::Node& item : value) {
        std::string item_path = absl::StrCat(path, "[", i++, "]");
        Pos item_pos = PosOf(item, pos);
        Record(item_path, item_pos);
        if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
          SetScalar(item, item_pos, item_path, f, msg);
        } else if (f->message_type() == v1::Step::descriptor()) {
          ParseStep(item, item_pos, item_path,
                    static_cast<v1::Step*>(msg->GetReflection()->AddMessage(msg, f)));
        } else {
          ParseMessage(item, item_pos, item_path, msg->GetReflection()->AddMessage(msg, f),
                       nullptr);
        }
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      ParseMessage(value, pos, path, msg->GetReflection()->MutableMessage(msg, f), nullptr);
    } else {
      SetScalar(value, pos, path, f, msg);
    }
  }

  void ParseMapField(const YAML::Node& value, Pos pos, const std::string& path,
                     const FieldDescriptor* f, Message* msg) {
    if (!value.IsMap()) {
      Error(pos, path,
            absl::StrCat(Describe(value),
                         " is not a map (expected a map of key: value, e.g. {pool: local})"));
      return;
    }
    const FieldDescriptor* key_field = f->message_type()->map_key();
    const FieldDescriptor* value_field = f->message_type()->map_value();
    std::map<std::string, Pos> seen;
    for (const auto& kv : value) {
      Pos key_pos = PosOf(kv.first, pos);
      if (!kv.first.IsScalar()) {
        Error(key_pos, path, absl::StrCat(Describe(kv.first), " is not a key (expected a string)"));
        continue;
      }
      std::string entry_path = JoinKey(path, kv.first.Scalar());
      if (!CheckUnique(&seen, kv.first.Scalar(), key_pos, entry_path)) continue;
      Pos value_pos = ValuePos(kv.second, key_pos);
      Record(entry_path, key_pos);  // the checks after the mapping are about keys
      Message* entry = msg->GetReflection()->AddMessage(msg, f);
      SetScalar(kv.first, key_pos, entry_path, key_field, entry);
      SetScalar(kv.second, value_pos, entry_path, value_field, entry);
    }
  }

  // Sets (or, for a repeated field, adds) a scalar field from the YAML scalar `v`.
  void SetScalar(const YAML::Node& v, Pos pos, const std::string& path, const FieldDescriptor* f,
                 Message* msg) {
    if (!v.IsScalar()) {
      Error(pos, path,
            v.IsNull()
                ? absl::StrCat("has no value (expected ", Expected(f), ")")
                : absl::StrCat(Describe(v), " is not a single value (expected ", Expected(f), ")"));
      return;
    }
    const std::string& text = v.Scalar();
    const Reflection* r = msg->GetReflection();
    bool rep = f->is_repeated();
    bool ok = true;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        if (f->type() == FieldDescriptor::TYPE_STRING && !IsValidUtf8(text)) {
          Error(pos, path, absl::StrCat(Quote(text), " is not UTF-8 text (expected a string)"));
          return;
        }
        rep ? r->AddString(msg, f, text) : r->SetString(msg, f, text);
        break;
      case FieldDescriptor::CPPTYPE_BOOL: {
        bool b = text == "true" || text == "True" || text == "TRUE";
        ok = b || text == "false" || text == "False" || text == "FALSE";
        if (ok) rep ? r->AddBool(msg, f, b) : r->SetBool(msg, f, b);
        break;
      }
      case FieldDescriptor::CPPTYPE_INT32: {
        int32_t n = 0;
        ok = absl::SimpleAtoi(text, &n);
        if (ok) rep ? r->AddInt32(msg, f, n) : r->SetInt32(msg, f, n);
        break;
      }
      case FieldDescriptor::CPPTYPE_INT64: {
        int64_t n = 0;
        ok = absl::SimpleAtoi(text, &n);
        if (ok) rep ? r->AddInt64(msg, f, n) : r->SetInt64(msg, f, n);
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT32: {
        uint32_t n = 0;
        ok = absl::SimpleAtoi(text, &n);
        if (ok) rep ? r->AddUInt32(msg, f, n) : r->SetUInt32(msg, f, n);
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT64: {
        uint64_t n = 0;
        ok = absl::SimpleAtoi(text, &n);
        if (ok) rep ? r->AddUInt64(msg, f, n) : r->SetUInt64(msg, f, n);
        break;
      }
      case FieldDescriptor::CPPTYPE_FLOAT: {
        float n = 0;
        ok = absl::SimpleAtof(text, &n);
        if (ok) rep ? r->AddFloat(msg, f, n) : r->SetFloat(msg, f, n);
        break;
      }
      case FieldDescriptor::CPPTYPE_DOUBLE: {
        double n = 0;
        ok = absl::SimpleAtod(text, &n);
        if (ok) rep ? r->AddDouble(msg, f, n) : r->SetDouble(msg, f, n);
        break;
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const auto* e = f->enum_type()->FindValueByName(text);
        ok = e != nullptr;
        if (ok) rep ? r->AddEnum(msg, f, e) : r->SetEnum(msg, f, e);
        break;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        ok = false;
        break;
    }
    if (!ok) {
      Error(pos, path,
            absl::StrCat(Quote(text), " is not ",
                         f->cpp_type() == FieldDescriptor::CPPTYPE_BOOL ? "a boolean"
                         : f->cpp_type() == FieldDescriptor::CPPTYPE_ENUM
                             ? "a valid value"
                             : absl::StrCat("a ", f->type_name()),
                         " (expected ", Expected(f), ")"));
    }
  }

  // A step is a map with exactly one key naming its kind, and optionally the Step's other
  // fields (timeout) beside it.
  void ParseStep(const YAML::Node& node, Pos pos, const std::string& path, v1::Step* step) {
    const std::vector<std::string> kinds = StepKinds();
    std::string expected = absl::StrCat("expected one of ", absl::StrJoin(kinds, ", "));
    const Descriptor* d = step->GetDescriptor();
    const OneofDescriptor* kind_oneof = d->FindOneofByName("kind");
    if (!node.IsMap()) {
      bool is_kind =
          node.IsScalar() && std::find(kinds.begin(), kinds.end(), node.Scalar()) != kinds.end();
      Error(pos, path,
            is_kind ? absl::StrCat(Describe(node), " is not a step (expected a map: - ",
                                   node.Scalar(), ": {})")
                    : absl::StrCat(Describe(node),
                                   " is not a step (expected a map with one step "
                                   "kind, e.g. - exec: [uname, -r]; ",
                                   expected, ")"));
      return;
    }
    const FieldDescriptor* kind = nullptr;
    std::optional<YAML::Node> kind_value;
    Pos kind_pos;
    std::map<std::string, Pos> seen;
    std::vector<std::pair<std::string, Pos>> unknown;
    for (const auto& kv : node) {
      Pos key_pos = PosOf(kv.first, pos);
      if (!kv.first.IsScalar()) {
        Error(key_pos, path,
              absl::StrCat(Describe(kv.first), " is not a step kind (", expected, ")"));
        continue;
      }
      const std::string& name = kv.first.Scalar();
      const FieldDescriptor* f = d->FindFieldByName(name);
      if (f == nullptr) {
        unknown.emplace_back(name, key_pos);  // a kind or a field: known after the loop
        continue;
      }
      if (!CheckUnique(&seen, name, key_pos, Join(path, name))) continue;
      if (f->containing_oneof() == kind_oneof) {
        if (kind != nullptr) {
          Error(key_pos, path,
                absl::StrCat("has two step kinds, ", kind->name(), " and ", name,
                             " (expected one kind per step; write each as its own - item)"));
          continue;
        }
        kind = f;
        kind_value.emplace(kv.second);
        kind_pos = key_pos;
        continue;
      }
      ParseField(kv.second, ValuePos(kv.second, key_pos), Join(path, name), f, step);
    }
    std::string kind_path = kind == nullptr ? "" : Join(path, kind->name());
    for (const auto& [name, key_pos] : unknown) {
      std::string problem =
          absl::StrCat(Quote(name), Suggestion(name, FieldNames(d)), KindFieldHint(name));
      if (kind == nullptr) {
        Error(key_pos, path, absl::StrCat("unknown step kind ", problem, " (", expected, ")"));
        continue;
      }
      std::vector<std::string> beside;
      for (int i = 0; i < d->field_count(); ++i) {
        if (d->field(i)->containing_oneof() != kind_oneof) beside.push_back(d->field(i)->name());
      }
      Report(key_pos, path,
             absl::StrCat("unknown field ", problem, " (expected ", kind->name(), " and ",
                          absl::StrJoin(beside, ", "), " only)"));
      poisoned_.insert(JoinKey(path, name));
      // A field of the kind written beside it: the kind is missing what it holds.
      if (!KindFieldHint(name).empty()) poisoned_.insert(kind_path);
    }
    if (kind == nullptr) {
      if (!Poisoned(path)) Error(pos, path, absl::StrCat("has no step kind (", expected, ")"));
      return;
    }
    Pos value_pos = ValuePos(*kind_value, kind_pos);
    Record(kind_path, kind_pos);  // errors about the kind as a whole point at its name
    Message* kind_msg = step->GetReflection()->MutableMessage(step, kind);
    if (kind->message_type() == v1::ExecStep::descriptor() && !kind_value->IsMap() &&
        !kind_value->IsNull()) {
      ParseExecShorthand(*kind_value, value_pos, kind_path, static_cast<v1::ExecStep*>(kind_msg));
      return;
    }
    StepContext context{step, path};
    ParseMessage(*kind_value, value_pos, kind_path, kind_msg, &context);
  }

  // `" is a field of exec: indent it under exec"` when a kind's field was written beside the
  // kind (`- exec:` then `  argv: [...]` at the same indentation).
  static std::string KindFieldHint(const std::string& name) {
    const OneofDescriptor* o = v1::Step::descriptor()->FindOneofByName("kind");
    for (int i = 0; i < o->field_count(); ++i) {
      if (o->field(i)->message_type()->FindFieldByName(name) != nullptr) {
        return absl::StrCat("; ", name, " is a field of ", o->field(i)->name(),
                            ": indent it under ", o->field(i)->name());
      }
    }
    return "";
  }

  // `exec: "make -j8 check"` runs the string with /bin/sh -c; `exec: [uname, -r]` is the argv.
  void ParseExecShorthand(const YAML::Node& value, Pos pos, const std::string& path,
                          v1::ExecStep* exec) {
    const FieldDescriptor* argv = v1::ExecStep::descriptor()->FindFieldByName("argv");
    if (value.IsSequence()) {
      ParseField(value, pos, Join(path, "argv"), argv, exec);
      return;
    }
    const std::string& command = value.Scalar();
    if (command.find_first_not_of(" \t\r\n") == std::string::npos) {
      Error(pos, path,
            "is an empty command (expected a shell command, an argv list such as [uname, -r], or "
            "a map with argv)");
      return;
    }
    if (!IsValidUtf8(command)) {
      Error(pos, path, absl::StrCat(Quote(command), " is not UTF-8 text (expected a string)"));
      return;
    }
    Record(Join(path, "argv"), pos);
    exec->add_argv("/bin/sh");
    exec->add_argv("-c");
    exec->add_argv(command);
  }

  void ParseStepTimeout(const YAML::Node& value, Pos pos, const std::string& display,
                        const StepContext& step) {
    std::string canonical = Join(step.path, kTimeout);
    if (Given(canonical)) {
      Error(pos, display,
            absl::StrCat("is given twice, beside the step kind on line ",
                         locations_.at(canonical).pos.line,
                         " and inside it (expected it once, either place)"));
      poisoned_.insert(canonical);
      return;
    }
    Record(canonical, pos, display);
    const FieldDescriptor* f = v1::Step::descriptor()->FindFieldByName(kTimeout);
    size_t errors = errors_.size();
    SetScalar(value, pos, display, f, step.step);
    if (errors_.size() != errors) poisoned_.insert(canonical);
  }

  // Checks across fields, after the mapping.
  void Check(const v1::JobSpec& spec) {
    if (Given("name") && !Poisoned("name")) {
      const std::string& name = spec.name();
      bool control = std::any_of(name.begin(), name.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
      });
      if (name.empty() || name.size() > kMaxNameBytes || control) {
        Error(PosFor("name"), "name",
              absl::StrCat(name.empty() ? "is empty"
                           : control    ? "has control characters"
                                        : "is too long",
                           " (expected 1 to ", kMaxNameBytes, " printable characters)"));
      }
    }
    CheckHosts(spec);
    CheckSteps(spec);
  }

  void CheckHosts(const v1::JobSpec& spec) {
    if (!spec.has_hosts()) {
      if (!Poisoned("hosts")) {
        Error(root_, "hosts", absl::StrCat("is missing (", kHostsExpected, ")"));
      }
      return;
    }
    if (Poisoned("hosts")) return;
    const v1::HostSelector& sel = spec.hosts();
    std::vector<std::string> given;
    if (sel.all()) given.push_back("all");
    if (!sel.names().empty()) given.push_back("names");
    if (!sel.labels().empty()) given.push_back("labels");
    if (given.size() != 1) {
      Error(PosFor("hosts"), "hosts",
            given.empty() ? absl::StrCat("chooses no hosts (", kHostsExpected, ")")
                          : absl::StrCat("combines ", absl::StrJoin(given, " and "), " (",
                                         kHostsExpected, ")"));
    }
    if (Given("hosts.count") && sel.labels().empty() && given.size() == 1) {
      Error(PosFor("hosts.count"), "hosts.count",
            "needs labels: it picks that many hosts carrying them (expected labels: {k: v} "
            "beside count)");
    } else if (sel.count() > kMaxCount) {
      Error(PosFor("hosts.count"), "hosts.count",
            absl::StrCat(sel.count(), " is too many (expected at most ", kMaxCount, ")"));
    }
    std::set<std::string> names;
    for (int i = 0; i < sel.names_size(); ++i) {
      std::string path = absl::StrCat("hosts.names[", i, "]");
      if (!IsValidId(sel.names(i))) {
        Error(PosFor(path), path,
              absl::StrCat(Quote(sel.names(i)),
                           " is not a host name (expected 1 to 64 of A-Z a-z 0-9 . _ -)"));
      } else if (!names.insert(sel.names(i)).second) {
        Error(PosFor(path), path,
              absl::StrCat(Quote(sel.names(i)), " is given twice (expected each host once)"));
      }
    }
    for (const auto& [key, value] : sel.labels()) {
      if (key.empty() || key.find('=') != std::string::npos || key.find(',') != std::string::npos) {
        std::string path = JoinKey("hosts.labels", key);
        Error(PosFor(path), path,
              absl::StrCat(Quote(key), " is not a label name (expected a name without = or ,)"));
      }
    }
  }

  void CheckSteps(const v1::JobSpec& spec) {
    if (spec.steps().empty()) {
      if (!Poisoned("steps")) {
        Error(PosFor("steps"), "steps",
              absl::StrCat(Given("steps") ? "is empty" : "is missing",
                           " (expected a list of at least one step, e.g. - exec: [uname, -r])"));
      }
    } else if (spec.steps_size() > kMaxSteps) {
      Error(PosFor("steps"), "steps",
            absl::StrCat("has ", spec.steps_size(), " steps (expected at most ", kMaxSteps, ")"));
    }
    // Ordering checks need every step's kind: after an unknown kind they would only mislead.
    bool kinds_known = true;
    bool has_build = false;
    for (int i = 0; i < spec.steps_size(); ++i) {
      std::string path = absl::StrCat("steps[", i, "]");
      kinds_known = kinds_known && poisoned_.count(path) == 0 &&
                    spec.steps(i).kind_case() != v1::Step::KIND_NOT_SET;
      has_build = has_build || spec.steps(i).has_kernel_build();
    }
    bool build_before = false;
    for (int i = 0; i < spec.steps_size(); ++i) {
      CheckStep(spec, i, kinds_known, build_before);
      build_before = build_before || spec.steps(i).has_kernel_build();
    }
    if (spec.has_kernel() && !Poisoned("kernel")) {
      const v1::KernelSource& k = spec.kernel();
      if (k.tree().empty()) {
        Error(PosFor("kernel.tree"), Given("kernel.tree") ? "kernel.tree" : "kernel",
              absl::StrCat(Given("kernel.tree") ? "is empty" : "has no tree",
                           " (expected tree: a kernel source directory or git URL, e.g. "
                           "tree: /src/linux)"));
      }
      if (!has_build && kinds_known && !spec.steps().empty()) {
        Error(PosFor("kernel"), "kernel",
              "is unused: no step builds it (expected - kernel_build: {} as the first step, or "
              "no kernel)");
      }
    }
  }

  void CheckStep(const v1::JobSpec& spec, int i, bool kinds_known, bool build_before) {
    const v1::Step& step = spec.steps(i);
    std::string path = absl::StrCat("steps[", i, "]");
    std::string timeout = Join(path, kTimeout);
    if (Given(timeout) && !Poisoned(timeout) && !ParseDuration(step.timeout()).ok()) {
      Error(PosFor(timeout), Display(timeout),
            absl::StrCat(Quote(step.timeout()),
                         " is not a duration (expected a number and a unit: 30s, 5m, 2h)"));
    }
    if (poisoned_.count(path) != 0) return;
    for (const auto& [kind, field] : kControllerFields) {
      std::string f = absl::StrCat(path, ".", kind, ".", field);
      if (Given(f)) {
        Error(PosFor(f), f,
              absl::StrCat("is filled in by the controller (expected ",
                           field == absl::string_view("source") ? "the job's kernel: field instead"
                                                                : absl::StrCat("no ", field),
                           ")"));
      }
    }
    switch (step.kind_case()) {
      case v1::Step::kExec:
        if (!Poisoned(Join(path, "exec"))) CheckExec(step.exec(), Join(path, "exec"));
        break;
      case v1::Step::kKernelBuild: {
        std::string kind = Join(path, "kernel_build");
        if (i != 0) {
          Error(PosFor(kind), kind,
                absl::StrCat("is step ", i + 1,
                             " (expected kernel_build only as the first step: it builds once, "
                             "before the steps that install the kernel)"));
        } else if (!spec.has_kernel() && !Poisoned("kernel")) {
          Error(PosFor(kind), kind,
                "has no kernel to build (expected the job's kernel: {tree: /src/linux, ...} "
                "beside steps)");
        }
        break;
      }
      case v1::Step::kKernelInstall: {
        std::string kind = Join(path, "kernel_install");
        if (!build_before && kinds_known) {
          Error(PosFor(kind), kind,
                "has no kernel to install (expected a kernel_build step before it, as the first "
                "step)");
        }
        break;
      }
      case v1::Step::kReboot:
      case v1::Step::KIND_NOT_SET:
        break;
    }
  }

  void CheckExec(const v1::ExecStep& exec, const std::string& path) {
    std::string argv = Join(path, "argv");
    if (exec.argv().empty()) {
      Error(PosFor(argv), Given(argv) ? argv : path,
            absl::StrCat(Given(argv) ? "is empty" : "has no argv",
                         " (expected a command: exec: [uname, -r], exec: \"uname -r\" or "
                         "exec: {argv: [uname, -r]})"));
    } else if (exec.argv(0).empty()) {
      std::string first = absl::StrCat(argv, "[0]");
      Error(PosFor(first), first, "is empty (expected the program to run, e.g. uname)");
    } else if (exec.argv_size() > kMaxArgs) {
      Error(PosFor(argv), argv,
            absl::StrCat("has ", exec.argv_size(), " words (expected at most ", kMaxArgs, ")"));
    }
    for (const auto& [key, value] : exec.env()) {
      if (key.empty() || key.find('=') != std::string::npos) {
        std::string var = JoinKey(Join(path, "env"), key);
        Error(PosFor(var), var,
              absl::StrCat(Quote(key), " is not a variable name (expected a name without =)"));
      }
    }
  }

  std::string file_;
  Pos root_;
  std::vector<Problem> errors_;
  std::set<std::string> poisoned_;
  std::map<std::string, Location> locations_;
  size_t nodes_ = 0;
  size_t scalar_bytes_ = 0;
};

// The emitter: the reverse of the mapping above.
void EmitFields(const Message& msg, YAML::Emitter* out, const v1::Step* step);

// Opens a map for `msg`'s fields: `{}` when there are none (`- kernel_build: {}`).
void BeginMap(const Message& msg, bool has_timeout, YAML::Emitter* out) {
  std::vector<const FieldDescriptor*> fields;
  msg.GetReflection()->ListFields(msg, &fields);
  if (fields.empty() && !has_timeout) *out << YAML::Flow;
  *out << YAML::BeginMap;
}

// True for strings to write double-quoted: those other YAML readers would take for a number, a
// boolean or null (ParseJobSpec reads them as strings either way), and those with control
// characters, which yaml-cpp 0.7 may otherwise write plain (a plain "a\r" reads back as "a").
bool NeedsQuotes(const std::string& s) {
  static constexpr const char* kWords[] = {"true", "false", "yes", "no",   "on",
                                           "off",  "y",     "n",   "null", "~"};
  double d;
  std::string lower = absl::AsciiStrToLower(s);
  return absl::SimpleAtod(s, &d) ||
         std::find_if(std::begin(kWords), std::end(kWords),
                      [&](const char* w) { return lower == w; }) != std::end(kWords) ||
         std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

void EmitScalar(const Message& msg, const FieldDescriptor* f, int index, YAML::Emitter* out) {
  const Reflection* r = msg.GetReflection();
  bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: {
      const std::string& s = rep ? r->GetRepeatedString(msg, f, index) : r->GetString(msg, f);
      if (NeedsQuotes(s)) *out << YAML::DoubleQuoted;
      *out << s;
      break;
    }
    case FieldDescriptor::CPPTYPE_BOOL:
      *out << ((rep ? r->GetRepeatedBool(msg, f, index) : r->GetBool(msg, f)) ? "true" : "false");
      break;
    case FieldDescriptor::CPPTYPE_INT32:
      *out << (rep ? r->GetRepeatedInt32(msg, f, index) : r->GetInt32(msg, f));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      *out << (rep ? r->GetRepeatedInt64(msg, f, index) : r->GetInt64(msg, f));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      *out << (rep ? r->GetRepeatedUInt32(msg, f, index) : r->GetUInt32(msg, f));
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      *out << (rep ? r->GetRepeatedUInt64(msg, f, index) : r->GetUInt64(msg, f));
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      *out << absl::StrCat(rep ? r->GetRepeatedFloat(msg, f, index) : r->GetFloat(msg, f));
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      *out << absl::StrCat(rep ? r->GetRepeatedDouble(msg, f, index) : r->GetDouble(msg, f));
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      *out << (rep ? r->GetRepeatedEnum(msg, f, index) : r->GetEnum(msg, f))->name();
      break;
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
}

void EmitStep(const v1::Step& step, YAML::Emitter* out) {
  *out << YAML::BeginMap;
  const Reflection* r = step.GetReflection();
  const FieldDescriptor* kind =
      r->GetOneofFieldDescriptor(step, step.GetDescriptor()->FindOneofByName("kind"));
  if (kind != nullptr) {
    *out << YAML::Key << kind->name() << YAML::Value;
    BeginMap(r->GetMessage(step, kind), !step.timeout().empty(), out);
    EmitFields(r->GetMessage(step, kind), out, &step);
    *out << YAML::EndMap;
  } else if (!step.timeout().empty()) {
    *out << YAML::Key << kTimeout << YAML::Value << step.timeout();
  }
  *out << YAML::EndMap;
}

// Emits the fields of `msg` into the open map. With `step`, `msg` is the step's kind and the step's
// timeout goes beside its fields, as DESIGN.md writes it.
void EmitFields(const Message& msg, YAML::Emitter* out, const v1::Step* step) {
  const Reflection* r = msg.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(msg, &fields);
  for (const FieldDescriptor* f : fields) {
    *out << YAML::Key << f->name() << YAML::Value;
    if (f->is_map()) {
      std::vector<std::pair<std::string, const Message*>> entries;
      for (int i = 0; i < r->FieldSize(msg, f); ++i) {
        const Message& entry = r->GetRepeatedMessage(msg, f, i);
        const FieldDescriptor* key = f->message_type()->map_key();
        std::string k = key->cpp_type() == FieldDescriptor::CPPTYPE_STRING
                            ? entry.GetReflection()->GetString(entry, key)
                            : absl::StrCat(i);  // only string keys occur in kfleet's protos
        entries.emplace_back(std::move(k), &entry);
      }
      std::sort(entries.begin(), entries.end());
      *out << YAML::BeginMap;
      for (const auto& [k, entry] : entries) {
        *out << YAML::Key;
        EmitScalar(*entry, f->message_type()->map_key(), -1, out);
        *out << YAML::Value;
        EmitScalar(*entry, f->message_type()->map_value(), -1, out);
      }
      *out << YAML::EndMap;
    } else if (f->is_repeated() && f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      *out << YAML::BeginSeq;
      for (int i = 0; i < r->FieldSize(msg, f); ++i) {
        const Message& item = r->GetRepeatedMessage(msg, f, i);
        if (f->message_type() == v1::Step::descriptor()) {
          EmitStep(static_cast<const v1::Step&>(item), out);
        } else {
          BeginMap(item, false, out);
          EmitFields(item, out, nullptr);
          *out << YAML::EndMap;
        }
      }
      *out << YAML::EndSeq;
    } else if (f->is_repeated()) {
      *out << YAML::Flow << YAML::BeginSeq;
      for (int i = 0; i < r->FieldSize(msg, f); ++i) EmitScalar(msg, f, i, out);
      *out << YAML::EndSeq;
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      BeginMap(r->GetMessage(msg, f), false, out);
      EmitFields(r->GetMessage(msg, f), out, nullptr);
      *out << YAML::EndMap;
    } else {
      EmitScalar(msg, f, -1, out);
    }
  }
  if (step != nullptr && !step->timeout().empty()) {
    *out << YAML::Key << kTimeout << YAML::Value << step->timeout();
  }
}

// Sees the documents of a stream without building them. Needed because yaml-cpp 0.7 never consumes
// a stray `,` outside a flow collection: each HandleNextDocument then returns the same empty
// document again (YAML::LoadAll loops forever on ","), which this detects.
class DocumentScan : public YAML::EventHandler {
 public:
  struct Document {
    YAML::Mark start;
    YAML::Mark first;  // of its first node
    int nodes = 0;
    bool only_null = true;
  };

  // Scans at most `max` documents. Throws what yaml-cpp throws.
  explicit DocumentScan(const std::string& text, int max) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    while (static_cast<int>(docs_.size()) < max && parser.HandleNextDocument(*this)) {
    }
  }

  const std::vector<Document>& docs() const { return docs_; }

  // Where the parser stopped making progress, if it did.
  std::optional<YAML::Mark> Stuck() const {
    for (size_t i = 1; i < docs_.size(); ++i) {
      const Document& a = docs_[i - 1];
      const Document& b = docs_[i];
      if (a.only_null && b.only_null && a.nodes == 1 && b.nodes == 1 &&
          a.first.pos == b.first.pos) {
        return b.first;
      }
    }
    return std::nullopt;
  }

  void OnDocumentStart(const YAML::Mark& mark) override { docs_.push_back(Document{mark}); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark, true); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark, false); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Node(mark, false);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Node(mark, false);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Node(mark, false);
  }
  void OnMapEnd() override {}

 private:
  void Node(const YAML::Mark& mark, bool null) {
    if (docs_.empty()) return;
    Document& d = docs_.back();
    if (d.nodes++ == 0) d.first = mark;
    d.only_null = d.only_null && null;
  }

  std::vector<Document> docs_;
};

Pos PosOf(const YAML::Mark& m) { return m.is_null() ? Pos{} : Pos{m.line + 1, m.column + 1}; }

// The first document of `text`, or nullopt after reporting why there is none to map.
std::optional<YAML::Node> Load(const std::string& text, SpecParser* parser) {
  // yaml-cpp throws; nothing thrown leaves this function.
  try {
    DocumentScan scan(text, 3);
    if (std::optional<YAML::Mark> stuck = scan.Stuck()) {
      parser->Error(PosOf(*stuck), "",
                    absl::StrCat("YAML syntax error: unexpected ",
                                 Quote(absl::string_view(text).substr(stuck->pos, 1))));
      return std::nullopt;
    }
    if (scan.docs().size() > 1) {
      parser->Report(PosOf(scan.docs()[1].start), "",
                     "the file has more than one YAML document (expected one job spec per file)");
    }
    return YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    parser->Error(PosOf(e.mark), "",
                  absl::StrCat("lists and maps are nested deeper than ", kMaxJobSpecDepth,
                               " levels (expected at most ", kMaxJobSpecDepth, ")"));
  } catch (const YAML::Exception& e) {
    parser->Error(PosOf(e.mark), "", absl::StrCat("YAML syntax error: ", e.msg));
  } catch (const std::exception& e) {
    parser->Error(Pos{}, "", absl::StrCat("YAML syntax error: ", e.what()));
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<v1::JobSpec> ParseJobSpec(absl::string_view yaml_text, absl::string_view file_name) {
  SpecParser parser(file_name);
  if (yaml_text.size() > kMaxJobSpecBytes) {
    parser.Error(Pos{}, "",
                 absl::StrCat("the file is ", yaml_text.size(), " bytes (expected at most ",
                              kMaxJobSpecBytes, " bytes, 1 MiB)"));
    return parser.status();
  }
  std::optional<YAML::Node> root = Load(std::string(yaml_text), &parser);
  if (!root) return parser.status();
  v1::JobSpec spec;
  try {
    parser.Parse(*root, &spec);
  } catch (const YAML::Exception& e) {
    parser.Error(PosOf(e.mark), "", absl::StrCat("YAML error: ", e.msg));
  } catch (const std::exception& e) {
    parser.Error(Pos{}, "", absl::StrCat("YAML error: ", e.what()));
  }
  if (parser.failed()) return parser.status();
  return spec;
}

std::string JobSpecToYaml(const v1::JobSpec& spec) {
  YAML::Emitter out;
  out.SetIndent(2);
  out.SetSeqFormat(YAML::Block);
  out << YAML::BeginMap;
  EmitFields(spec, &out, nullptr);
  out << YAML::EndMap;
  return absl::StrCat(out.c_str(), "\n");
}

}  // namespace kfleet::cli
