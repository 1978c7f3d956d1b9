// JobSpecToYaml (declared in job_spec.h): the reverse of the mapping in job_spec.cc.
#include "cli/job_spec_yaml.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/job_spec.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace kfleet::cli {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using internal::kStepKindOneof;
using internal::kStepMemoryMax;
using internal::kStepTimeout;

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
      r->GetOneofFieldDescriptor(step, step.GetDescriptor()->FindOneofByName(kStepKindOneof));
  if (kind != nullptr) {
    *out << YAML::Key << kind->name() << YAML::Value;
    BeginMap(r->GetMessage(step, kind), !step.timeout().empty(), out);
    EmitFields(r->GetMessage(step, kind), out, &step);
    *out << YAML::EndMap;
  } else if (!step.timeout().empty()) {
    *out << YAML::Key << kStepTimeout << YAML::Value << step.timeout();
  }
  if (!step.memory_max().empty()) {
    *out << YAML::Key << kStepMemoryMax << YAML::Value << step.memory_max();
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
    *out << YAML::Key << kStepTimeout << YAML::Value << step->timeout();
  }
}

}  // namespace

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
