// Maps a YAML document onto a protobuf message by reflection, so that the proto is the schema:
// map keys are field names; scalars must fit the field's type; repeated fields take lists, map
// fields maps of scalars, message fields maps (or nothing, for an empty message); each real oneof
// takes exactly one of its fields. Errors go to a YamlErrors with the position of the node at
// fault, and the walk goes on past them so that one pass finds them all. Internal to kfleet_cli:
// the job spec parser (job_spec.cc) builds on it.
#ifndef KFLEET_CLI_YAML_PROTO_H_
#define KFLEET_CLI_YAML_PROTO_H_

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "cli/yaml_errors.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace kfleet::cli::internal {

// True if `s` is well-formed UTF-8 (no overlong forms, surrogates, or code points past U+10FFFF).
bool IsValidUtf8(absl::string_view s);

// The names of `d`'s fields, in declaration order.
std::vector<std::string> FieldNames(const google::protobuf::Descriptor* d);

// `, did you mean "X"?` for a likely typo of a candidate or of its last word ("biuld" for
// kernel_build), or "".
std::string Suggestion(absl::string_view word, const std::vector<std::string>& candidates);

// Maps one document: CheckShape counts nodes across its calls. Not thread-safe.
class YamlProtoMapper {
 public:
  // A key that a map takes beside the fields of its message, when the message has no field of
  // that name. Its value goes to `parse` with the value's position and the key's path.
  struct ExtraKey {
    const char* name;
    absl::FunctionRef<void(const YAML::Node& value, Pos pos, const std::string& path)> parse;
  };

  // Errors go to `errors`, which must outlive the mapper. Lists and maps nested deeper than
  // `max_depth` are refused.
  YamlProtoMapper(YamlErrors* errors, int max_depth) : errors_(*errors), max_depth_(max_depth) {}
  virtual ~YamlProtoMapper() = default;

  YamlProtoMapper(const YamlProtoMapper&) = delete;
  YamlProtoMapper& operator=(const YamlProtoMapper&) = delete;

  // Checks the depth and size of the tree as the walk will see it (aliases repeat their anchor's
  // subtree), starting at `depth` for `node`. Stops at the first problem and returns false: the
  // walk would not be bounded. Call it once, on the root, before mapping.
  bool CheckShape(const YAML::Node& node, int depth);

  // Maps the YAML map `node`, found at `pos`, onto `msg`, field by field; `path` names `msg` in
  // errors ("" for the root). A null node leaves `msg` empty. With `extra`, `node` may also have
  // the key extra->name.
  void ParseMessage(const YAML::Node& node, Pos pos, const std::string& path,
                    google::protobuf::Message* msg, const ExtraKey* extra);

  // Maps `value` onto the field `f` of `msg`, and records `path` as written at `pos`.
  void ParseField(const YAML::Node& value, Pos pos, const std::string& path,
                  const google::protobuf::FieldDescriptor* f, google::protobuf::Message* msg);

  // Sets (or, for a repeated field, adds) the scalar field `f` of `msg` from the YAML scalar `v`.
  void SetScalar(const YAML::Node& v, Pos pos, const std::string& path,
                 const google::protobuf::FieldDescriptor* f, google::protobuf::Message* msg);

  // Adds `key` to `seen`, or reports at `pos` that `path` is given twice and returns false.
  bool CheckUnique(std::map<std::string, Pos>* seen, const std::string& key, Pos pos,
                   const std::string& path);

 protected:
  // Maps `item`, an element of a repeated message field, onto `msg`, the element just added.
  // Override it for messages written some other way; this one calls ParseMessage.
  virtual void ParseListItem(const YAML::Node& item, Pos pos, const std::string& path,
                             google::protobuf::Message* msg);

  YamlErrors& errors() { return errors_; }

 private:
  void ParseMapField(const YAML::Node& value, Pos pos, const std::string& path,
                     const google::protobuf::FieldDescriptor* f, google::protobuf::Message* msg);

  YamlErrors& errors_;
  const int max_depth_;
  size_t nodes_ = 0;
  size_t scalar_bytes_ = 0;
};

}  // namespace kfleet::cli::internal

#endif  // KFLEET_CLI_YAML_PROTO_H_
