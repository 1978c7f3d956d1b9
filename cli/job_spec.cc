#include "cli/job_spec.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <exception>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/job_spec_checks.h"
#include "cli/job_spec_yaml.h"
#include "cli/yaml_errors.h"
#include "cli/yaml_proto.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace kfleet::cli {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::OneofDescriptor;
using internal::CheckJobSpec;
using internal::Describe;
using internal::FieldNames;
using internal::IsValidUtf8;
using internal::Join;
using internal::JoinKey;
using internal::kStepKindOneof;
using internal::kStepTimeout;
using internal::Pos;
using internal::PosOf;
using internal::Quote;
using internal::Suggestion;
using internal::ValuePos;
using internal::YamlErrors;
using internal::YamlProtoMapper;

std::vector<std::string> StepKinds() {
  std::vector<std::string> kinds;
  const OneofDescriptor* kind = v1::Step::descriptor()->FindOneofByName(kStepKindOneof);
  for (int i = 0; i < kind->field_count(); ++i) kinds.push_back(kind->field(i)->name());
  std::sort(kinds.begin(), kinds.end());
  return kinds;
}

// `" is a field of exec: indent it under exec"` when a kind's field was written beside the
// kind (`- exec:` then `  argv: [...]` at the same indentation).
std::string KindFieldHint(const std::string& name) {
  const OneofDescriptor* o = v1::Step::descriptor()->FindOneofByName(kStepKindOneof);
  for (int i = 0; i < o->field_count(); ++i) {
    if (o->field(i)->message_type()->FindFieldByName(name) != nullptr) {
      return absl::StrCat("; ", name, " is a field of ", o->field(i)->name(), ": indent it under ",
                          o->field(i)->name());
    }
  }
  return "";
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

// The first document of `text`, or nullopt after reporting why there is none to map.
std::optional<YAML::Node> Load(const std::string& text, YamlErrors* errors) {
  // yaml-cpp throws; nothing thrown leaves this function.
  try {
    DocumentScan scan(text, 3);
    if (std::optional<YAML::Mark> stuck = scan.Stuck()) {
      errors->Error(PosOf(*stuck), "",
                    absl::StrCat("YAML syntax error: unexpected ",
                                 Quote(absl::string_view(text).substr(stuck->pos, 1))));
      return std::nullopt;
    }
    if (scan.docs().size() > 1) {
      errors->Report(PosOf(scan.docs()[1].start), "",
                     "the file has more than one YAML document (expected one job spec per file)");
    }
    return YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    errors->Error(PosOf(e.mark), "",
                  absl::StrCat("lists and maps are nested deeper than ", kMaxJobSpecDepth,
                               " levels (expected at most ", kMaxJobSpecDepth, ")"));
  } catch (const YAML::Exception& e) {
    errors->Error(PosOf(e.mark), "", absl::StrCat("YAML syntax error: ", e.msg));
  } catch (const std::exception& e) {
    errors->Error(Pos{}, "", absl::StrCat("YAML syntax error: ", e.what()));
  }
  return std::nullopt;
}

// The generic mapping plus the forms of a step, which the proto alone does not give; then the
// checks across fields (job_spec_checks.h).
class SpecParser : public YamlProtoMapper {
 public:
  explicit SpecParser(YamlErrors* errors) : YamlProtoMapper(errors, kMaxJobSpecDepth) {}

  // Maps the document onto `spec` and checks it. Errors are collected, not returned.
  // yaml-cpp may throw (it should not, for the calls made here): the caller catches.
  void Parse(const YAML::Node& root, v1::JobSpec* spec) {
    if (root.IsNull()) {
      errors().Error(Pos{}, "",
                     "the file has no job spec (expected a map with name, hosts, steps)");
      return;
    }
    errors().set_root(PosOf(root, Pos{}));
    if (!CheckShape(root, 1)) return;
    if (!root.IsMap()) {
      errors().Error(errors().root(), "",
                     absl::StrCat(Describe(root), " is not a job spec (expected a map with fields ",
                                  absl::StrJoin(FieldNames(v1::JobSpec::descriptor()), ", "), ")"));
      return;
    }
    ParseMessage(root, errors().root(), "", spec, nullptr);
    CheckJobSpec(*spec, &errors());
  }

 protected:
  void ParseListItem(const YAML::Node& item, Pos pos, const std::string& path,
                     Message* msg) override {
    if (msg->GetDescriptor() == v1::Step::descriptor()) {
      ParseStep(item, pos, path, static_cast<v1::Step*>(msg));
    } else {
      YamlProtoMapper::ParseListItem(item, pos, path, msg);
    }
  }

 private:
  // A step is a map with exactly one key naming its kind, and optionally the Step's other
  // fields (timeout) beside it.
  void ParseStep(const YAML::Node& node, Pos pos, const std::string& path, v1::Step* step) {
    const std::vector<std::string> kinds = StepKinds();
    std::string expected = absl::StrCat("expected one of ", absl::StrJoin(kinds, ", "));
    const Descriptor* d = step->GetDescriptor();
    const OneofDescriptor* kind_oneof = d->FindOneofByName(kStepKindOneof);
    if (!node.IsMap()) {
      bool is_kind =
          node.IsScalar() && std::find(kinds.begin(), kinds.end(), node.Scalar()) != kinds.end();
      errors().Error(pos, path,
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
        errors().Error(key_pos, path,
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
          errors().Error(key_pos, path,
                         absl::StrCat("has two step kinds, ", kind->name(), " and ", name,
                                      " (expected one kind per step; write each as its own - "
                                      "item)"));
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
        errors().Error(key_pos, path,
                       absl::StrCat("unknown step kind ", problem, " (", expected, ")"));
        continue;
      }
      std::vector<std::string> allowed = {kind->name()};
      for (int i = 0; i < d->field_count(); ++i) {
        if (d->field(i)->containing_oneof() != kind_oneof) allowed.push_back(d->field(i)->name());
      }
      std::string last = allowed.back();
      allowed.pop_back();
      errors().Report(key_pos, path,
                      absl::StrCat("unknown field ", problem, " (expected ",
                                   absl::StrJoin(allowed, ", "), " and ", last, " only)"));
      errors().MarkBad(JoinKey(path, name));
      // A field of the kind written beside it: the kind is missing what it holds.
      if (!KindFieldHint(name).empty()) errors().MarkBad(kind_path);
    }
    if (kind == nullptr) {
      if (!errors().Poisoned(path)) {
        errors().Error(pos, path, absl::StrCat("has no step kind (", expected, ")"));
      }
      return;
    }
    Pos value_pos = ValuePos(*kind_value, kind_pos);
    errors().Record(kind_path, kind_pos);  // errors about the kind as a whole point at its name
    Message* kind_msg = step->GetReflection()->MutableMessage(step, kind);
    if (kind->message_type() == v1::ExecStep::descriptor() && !kind_value->IsMap() &&
        !kind_value->IsNull()) {
      ParseExecShorthand(*kind_value, value_pos, kind_path, static_cast<v1::ExecStep*>(kind_msg));
      return;
    }
    // A `timeout` key in the kind's map is the step's: DESIGN.md writes `- reboot: {timeout: 5m}`,
    // and `- {reboot: {}, timeout: 5m}` (Step.timeout beside the kind) means the same.
    auto parse_timeout = [&](const YAML::Node& value, Pos timeout_pos, const std::string& display) {
      ParseStepTimeout(value, timeout_pos, display, path, step);
    };
    YamlProtoMapper::ExtraKey timeout{kStepTimeout, parse_timeout};
    ParseMessage(*kind_value, value_pos, kind_path, kind_msg, &timeout);
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
      errors().Error(pos, path,
                     "is an empty command (expected a shell command, an argv list such as [uname, "
                     "-r], or a map with argv)");
      return;
    }
    if (!IsValidUtf8(command)) {
      errors().Error(pos, path,
                     absl::StrCat(Quote(command), " is not UTF-8 text (expected a string)"));
      return;
    }
    errors().Record(Join(path, "argv"), pos);
    exec->add_argv("/bin/sh");
    exec->add_argv("-c");
    exec->add_argv(command);
  }

  // A timeout written inside the kind's map of the step at `step_path`; `display` is its path as
  // written.
  void ParseStepTimeout(const YAML::Node& value, Pos pos, const std::string& display,
                        const std::string& step_path, v1::Step* step) {
    std::string canonical = Join(step_path, kStepTimeout);
    if (errors().Given(canonical)) {
      errors().Error(pos, display,
                     absl::StrCat("is given twice, beside the step kind on line ",
                                  errors().PosFor(canonical).line,
                                  " and inside it (expected it once, either place)"));
      errors().MarkBad(canonical);
      return;
    }
    errors().Record(canonical, pos, display);
    const FieldDescriptor* f = v1::Step::descriptor()->FindFieldByName(kStepTimeout);
    size_t count = errors().count();
    SetScalar(value, pos, display, f, step);
    if (errors().count() != count) errors().MarkBad(canonical);
  }
};

}  // namespace

absl::StatusOr<v1::JobSpec> ParseJobSpec(absl::string_view yaml_text, absl::string_view file_name) {
  YamlErrors errors(file_name);
  if (yaml_text.size() > kMaxJobSpecBytes) {
    errors.Error(Pos{}, "",
                 absl::StrCat("the file is ", yaml_text.size(), " bytes (expected at most ",
                              kMaxJobSpecBytes, " bytes, 1 MiB)"));
    return errors.status();
  }
  SpecParser parser(&errors);
  std::optional<YAML::Node> root = Load(std::string(yaml_text), &errors);
  if (!root) return errors.status();
  v1::JobSpec spec;
  try {
    parser.Parse(*root, &spec);
  } catch (const YAML::Exception& e) {
    errors.Error(PosOf(e.mark), "", absl::StrCat("YAML error: ", e.msg));
  } catch (const std::exception& e) {
    errors.Error(Pos{}, "", absl::StrCat("YAML error: ", e.what()));
  }
  if (errors.failed()) return errors.status();
  return spec;
}

}  // namespace kfleet::cli
