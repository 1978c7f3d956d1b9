#include "cli/yaml_proto.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/suggest.h"

namespace kfleet::cli::internal {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::OneofDescriptor;
using google::protobuf::Reflection;

// Anchors and aliases let a small file expand into a large tree; the walk stops past these.
constexpr size_t kMaxNodes = 1'000'000;
constexpr size_t kMaxScalarBytes = size_t{16} << 20;

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

std::vector<std::string> OneofFieldNames(const OneofDescriptor* o) {
  std::vector<std::string> names;
  for (int i = 0; i < o->field_count(); ++i) names.push_back(o->field(i)->name());
  return names;
}

}  // namespace

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

bool YamlProtoMapper::CheckShape(const YAML::Node& node, int depth) {
  scalar_bytes_ += node.IsScalar() ? node.Scalar().size() : 0;
  if (++nodes_ > kMaxNodes || scalar_bytes_ > kMaxScalarBytes) {
    errors_.Error(PosOf(node, errors_.root()), "",
                  absl::StrCat("the document expands to more than ", kMaxNodes, " nodes or ",
                               kMaxScalarBytes >> 20,
                               " MiB of text (expected a smaller job; aliases repeat what they "
                               "name)"));
    return false;
  }
  if (!node.IsSequence() && !node.IsMap()) return true;
  if (depth > max_depth_) {
    errors_.Error(PosOf(node, errors_.root()), "",
                  absl::StrCat("lists and maps are nested deeper than ", max_depth_,
                               " levels (expected at most ", max_depth_, ")"));
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

void YamlProtoMapper::ParseMessage(const YAML::Node& node, Pos pos, const std::string& path,
                                   Message* msg, const ExtraKey* extra) {
  const Descriptor* d = msg->GetDescriptor();
  bool has_extra = extra != nullptr && d->FindFieldByName(extra->name) == nullptr;
  if (node.IsNull()) return;  // `kernel_build:` is an empty KernelBuildStep
  std::vector<std::string> allowed = FieldNames(d);
  if (has_extra) allowed.push_back(extra->name);
  if (!node.IsMap()) {
    errors_.Error(pos, path,
                  absl::StrCat(Describe(node), " is not a map (expected a map with fields ",
                               absl::StrJoin(allowed, ", "), ")"));
    return;
  }
  std::map<std::string, Pos> seen;
  std::map<const OneofDescriptor*, const FieldDescriptor*> oneofs;
  for (const auto& kv : node) {
    Pos key_pos = PosOf(kv.first, pos);
    if (!kv.first.IsScalar()) {
      errors_.Error(key_pos, path,
                    absl::StrCat(Describe(kv.first), " is not a field name (expected one of ",
                                 absl::StrJoin(allowed, ", "), ")"));
      continue;
    }
    const std::string& name = kv.first.Scalar();
    const FieldDescriptor* f = d->FindFieldByName(name);
    if (f == nullptr && !(has_extra && name == extra->name)) {
      errors_.Report(key_pos, path,
                     absl::StrCat("unknown field ", Quote(name), Suggestion(name, allowed),
                                  " (expected one of ", absl::StrJoin(allowed, ", "), ")"));
      errors_.MarkBad(JoinKey(path, name));
      continue;
    }
    std::string field_path = Join(path, name);
    if (!CheckUnique(&seen, name, key_pos, field_path)) continue;
    Pos value_pos = ValuePos(kv.second, key_pos);
    if (f == nullptr) {
      extra->parse(kv.second, value_pos, field_path);
      continue;
    }
    if (const OneofDescriptor* o = f->real_containing_oneof()) {
      auto [it, first] = oneofs.emplace(o, f);
      if (!first) {
        errors_.Error(
            key_pos, field_path,
            absl::StrCat("cannot be given with ", it->second->name(), " (expected one of ",
                         absl::StrJoin(OneofFieldNames(o), ", "), ")"));
        continue;
      }
    }
    ParseField(kv.second, value_pos, field_path, f, msg);
  }
  for (int i = 0; i < d->real_oneof_decl_count(); ++i) {
    const OneofDescriptor* o = d->oneof_decl(i);
    if (oneofs.count(o) == 0 && !errors_.Poisoned(path)) {
      errors_.Error(pos, path,
                    absl::StrCat("no ", o->name(), " (expected one of ",
                                 absl::StrJoin(OneofFieldNames(o), ", "), ")"));
    }
  }
}

bool YamlProtoMapper::CheckUnique(std::map<std::string, Pos>* seen, const std::string& key, Pos pos,
                                  const std::string& path) {
  auto [it, first] = seen->emplace(key, pos);
  if (!first) {
    errors_.Error(pos, path,
                  absl::StrCat("is given twice (expected it once; it is first on line ",
                               it->second.line, ")"));
  }
  return first;
}

void YamlProtoMapper::ParseField(const YAML::Node& value, Pos pos, const std::string& path,
                                 const FieldDescriptor* f, Message* msg) {
  errors_.Record(path, pos);
  if (f->is_map()) {
    ParseMapField(value, pos, path, f, msg);
  } else if (f->is_repeated()) {
    if (!value.IsSequence()) {
      errors_.Error(
          pos, path,
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
      errors_.Record(item_path, item_pos);
      if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
        SetScalar(item, item_pos, item_path, f, msg);
      } else {
        ParseListItem(item, item_pos, item_path, msg->GetReflection()->AddMessage(msg, f));
      }
    }
  } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    ParseMessage(value, pos, path, msg->GetReflection()->MutableMessage(msg, f), nullptr);
  } else {
    SetScalar(value, pos, path, f, msg);
  }
}

void YamlProtoMapper::ParseListItem(const YAML::Node& item, Pos pos, const std::string& path,
                                    Message* msg) {
  ParseMessage(item, pos, path, msg, nullptr);
}

void YamlProtoMapper::ParseMapField(const YAML::Node& value, Pos pos, const std::string& path,
                                    const FieldDescriptor* f, Message* msg) {
  if (!value.IsMap()) {
    errors_.Error(pos, path,
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
      errors_.Error(key_pos, path,
                    absl::StrCat(Describe(kv.first), " is not a key (expected a string)"));
      continue;
    }
    std::string entry_path = JoinKey(path, kv.first.Scalar());
    if (!CheckUnique(&seen, kv.first.Scalar(), key_pos, entry_path)) continue;
    Pos value_pos = ValuePos(kv.second, key_pos);
    errors_.Record(entry_path, key_pos);  // the checks after the mapping are about keys
    Message* entry = msg->GetReflection()->AddMessage(msg, f);
    SetScalar(kv.first, key_pos, entry_path, key_field, entry);
    SetScalar(kv.second, value_pos, entry_path, value_field, entry);
  }
}

void YamlProtoMapper::SetScalar(const YAML::Node& v, Pos pos, const std::string& path,
                                const FieldDescriptor* f, Message* msg) {
  if (!v.IsScalar()) {
    errors_.Error(pos, path,
                  v.IsNull() ? absl::StrCat("has no value (expected ", Expected(f), ")")
                             : absl::StrCat(Describe(v), " is not a single value (expected ",
                                            Expected(f), ")"));
    return;
  }
  const std::string& text = v.Scalar();
  const Reflection* r = msg->GetReflection();
  bool rep = f->is_repeated();
  bool ok = true;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      if (f->type() == FieldDescriptor::TYPE_STRING && !IsValidUtf8(text)) {
        errors_.Error(pos, path,
                      absl::StrCat(Quote(text), " is not UTF-8 text (expected a string)"));
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
    errors_.Error(pos, path,
                  absl::StrCat(Quote(text), " is not ",
                               f->cpp_type() == FieldDescriptor::CPPTYPE_BOOL ? "a boolean"
                               : f->cpp_type() == FieldDescriptor::CPPTYPE_ENUM
                                   ? "a valid value"
                                   : absl::StrCat("a ", f->type_name()),
                               " (expected ", Expected(f), ")"));
  }
}

}  // namespace kfleet::cli::internal
