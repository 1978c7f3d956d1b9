#include "agent/suites/fstests_results.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/suites/xml_reader.h"
#include "common/files.h"

namespace kfleet::agent {
namespace {

// Appends `text` to `detail` ("\n" between parts), within kMaxTestDetailBytes. Leading blank
// lines and trailing space go; the indentation of a diff's first line stays.
void AppendDetail(std::string& detail, absl::string_view text) {
  text = absl::StripTrailingAsciiWhitespace(text);
  while (!text.empty() && (text[0] == '\n' || text[0] == '\r')) text.remove_prefix(1);
  if (text.empty() || detail.size() >= kMaxTestDetailBytes) return;
  if (!detail.empty()) detail += '\n';
  const size_t room = kMaxTestDetailBytes - std::min(detail.size(), kMaxTestDetailBytes);
  detail.append(text.data(), std::min(text.size(), room));
}

std::string SectionName(absl::string_view section) {
  return section == "-no-sections-" ? "" : std::string(section);
}

int64_t SecondsToMs(absl::string_view text) {
  double seconds;
  if (!absl::SimpleAtod(absl::StripAsciiWhitespace(text), &seconds) || !(seconds >= 0) ||
      seconds > 1e9) {
    return -1;
  }
  return std::llround(seconds * 1000);
}

// Builds TestResults from the events of a result.xml.
class XunitHandler : public XmlHandler {
 public:
  explicit XunitHandler(std::vector<TestResult>& out) : out_(out) {}
  bool incomplete_section() const { return incomplete_; }

  absl::Status StartElement(absl::string_view name, const XmlAttributes& attrs) override {
    capture_ = nullptr;
    if (name == "testsuite") {
      section_.reset();
      // fstests rewrites result.xml before each test with an empty time: the section never ended.
      if (XmlAttribute(attrs, "time", "0").empty()) incomplete_ = true;
    } else if (name == "property" && XmlAttribute(attrs, "name") == "SECTION") {
      section_ = SectionName(XmlAttribute(attrs, "value"));
    } else if (name == "testcase") {
      if (in_case_) return absl::InvalidArgumentError("<testcase> inside <testcase>");
      if (out_.size() >= kMaxFstestsResults) {
        return absl::ResourceExhaustedError(
            absl::StrCat("more than ", kMaxFstestsResults, " tests"));
      }
      absl::string_view test = XmlAttribute(attrs, "name");
      if (test.empty()) return absl::InvalidArgumentError("<testcase> without a name attribute");
      in_case_ = true;
      current_ = TestResult{kFstestsSuite, "", std::string(test), TestStatus::kPass};
      current_.duration_ms = SecondsToMs(XmlAttribute(attrs, "time"));
      classname_ = std::string(XmlAttribute(attrs, "classname"));
      message_.clear();
      diff_.clear();
      kernel_log_.clear();
    } else if (in_case_) {
      if (name == "failure" || name == "error" || name == "skipped") {
        current_.status = name == "failure" ? TestStatus::kFail
                          : name == "error" ? TestStatus::kError
                                            : TestStatus::kSkip;
        AppendDetail(message_, XmlAttribute(attrs, "message"));
        capture_ = &message_;
      } else if (name == "system-err") {
        capture_ = &diff_;  // the .out.bad diff (or, before kernel-log existed, the dmesg)
      } else if (name == "kernel-log") {
        capture_ = &kernel_log_;
      }
    }
    return absl::OkStatus();
  }

  absl::Status EndElement(absl::string_view name) override {
    capture_ = nullptr;
    if (name != "testcase") return absl::OkStatus();
    in_case_ = false;
    if (section_.has_value()) {
      current_.section = *section_;
    } else if (absl::string_view c = classname_; absl::ConsumePrefix(&c, "xfstests.")) {
      current_.section = c == "global" ? "" : std::string(c);
    }
    if (current_.status != TestStatus::kPass) {
      AppendDetail(current_.detail, message_);
      AppendDetail(current_.detail, diff_);
      AppendDetail(current_.detail, kernel_log_);
    }
    out_.push_back(std::move(current_));
    return absl::OkStatus();
  }

  absl::Status Text(absl::string_view text) override {
    if (capture_ != nullptr && capture_->size() < kMaxTestDetailBytes) {
      capture_->append(text.data(), std::min(text.size(), kMaxTestDetailBytes - capture_->size()));
    }
    return absl::OkStatus();
  }

 private:
  std::vector<TestResult>& out_;
  std::optional<std::string> section_;  // the SECTION property of the current <testsuite>
  bool incomplete_ = false;
  bool in_case_ = false;
  TestResult current_{};
  std::string classname_, message_, diff_, kernel_log_;
  std::string* capture_ = nullptr;  // where character data goes
};

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool IsSafeRelative(absl::string_view path) {
  if (absl::StartsWith(path, "/") || absl::StrContains(path, absl::string_view("\0", 1))) {
    return false;
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") return false;
  }
  return true;
}

// "generic/001", "xfs/123-some-name": a test directory, '/', three or more digits, an optional
// "-suffix". Returns the length of the id at the start of `line`, 0 if there is none.
size_t TestIdLength(absl::string_view line) {
  size_t i = 0;
  while (i < line.size() &&
         (absl::ascii_islower(line[i]) || absl::ascii_isdigit(line[i]) || line[i] == '_')) {
    ++i;
  }
  if (i == 0 || i >= line.size() || line[i] != '/') return 0;
  size_t digits = ++i;
  while (i < line.size() && absl::ascii_isdigit(line[i])) ++i;
  if (i - digits < 3) return 0;
  if (i < line.size() && line[i] == '-') {
    while (i < line.size() && !absl::ascii_isspace(line[i])) ++i;
  }
  return i == line.size() || absl::ascii_isspace(line[i]) ? i : 0;
}

// "12s": a duration as check prints it.
bool IsSeconds(absl::string_view word, int64_t* seconds) {
  return absl::ConsumeSuffix(&word, "s") && !word.empty() &&
         absl::c_all_of(word, [](char c) { return absl::ascii_isdigit(c); }) &&
         absl::SimpleAtoi(word, seconds);
}

// Drops check -T's "[10:00:01]" stamps and the "3s ..." of the previous run.
std::string CleanRest(absl::string_view rest) {
  std::vector<absl::string_view> words;
  for (absl::string_view word : absl::StrSplit(rest, ' ', absl::SkipEmpty())) {
    if (word.size() == 10 && word[0] == '[' && word[3] == ':' && word[6] == ':' && word[9] == ']') {
      continue;
    }
    words.push_back(word);
  }
  int64_t unused;
  if (words.size() >= 2 && IsSeconds(words[0], &unused) && words[1] == "...") {
    words.erase(words.begin(), words.begin() + 2);
  }
  return absl::StrJoin(words, " ");
}

}  // namespace

FstestsResults ParseFstestsXml(absl::string_view xml) {
  FstestsResults parsed;
  XunitHandler handler(parsed.results);
  XmlLimits limits;
  limits.max_input_bytes = kMaxFstestsXmlBytes;
  parsed.status = ReadXml(xml, handler, limits);
  if (parsed.status.ok() && handler.incomplete_section()) {
    parsed.status = absl::DataLossError(
        "a <testsuite> has an empty time: check stopped before the section finished, the test "
        "that was running has no result");
  }
  return parsed;
}

FstestsResults ReadFstestsXmlResults(const std::string& result_base) {
  FstestsResults all;
  std::vector<std::string> files = {result_base + "/result.xml"};
  std::error_code ec;
  for (const std::filesystem::directory_entry& entry :
       std::filesystem::directory_iterator(result_base, ec)) {
    if (entry.is_directory(ec)) files.push_back(entry.path().string() + "/result.xml");
    if (files.size() > 1024) break;
  }
  std::sort(files.begin() + 1, files.end());
  bool found = false;
  for (const std::string& file : files) {
    if (!IsRegularFile(file)) continue;
    found = true;
    absl::StatusOr<std::string> xml = ReadFile(file, kMaxFstestsXmlBytes);
    FstestsResults one = xml.ok() ? ParseFstestsXml(*xml) : FstestsResults{{}, xml.status()};
    for (TestResult& r : one.results) all.results.push_back(std::move(r));
    if (!one.status.ok() && all.status.ok()) {
      all.status = absl::Status(one.status.code(), absl::StrCat(file, ": ", one.status.message()));
    }
  }
  if (!found) {
    all.status = absl::NotFoundError(absl::StrCat(
        "no result.xml in ", result_base,
        " or its section directories: check wrote none (it stopped before its first test)"));
  }
  return all;
}

std::vector<TestResult> FstestsOutputParser::Feed(absl::string_view chunk) {
  lines_.Feed(chunk, [this](absl::string_view line) { Line(line); });
  return std::exchange(out_, {});
}

std::vector<TestResult> FstestsOutputParser::Finish() {
  lines_.Finish([this](absl::string_view line) { Line(line); });
  FlushPending();
  FlushSummary();
  return std::exchange(out_, {});
}

void FstestsOutputParser::Line(absl::string_view line) {
  absl::ConsumeSuffix(&line, "\r");
  absl::string_view trimmed = absl::StripAsciiWhitespace(line);
  if (trimmed.empty()) return;  // check prints blank lines between a failure and its hints
  if (absl::ConsumePrefix(&trimmed, "SECTION       -- ")) {
    FlushPending();
    FlushSummary();
    section_ = SectionName(absl::StripAsciiWhitespace(trimmed));
    return;
  }
  std::vector<std::string>* list = nullptr;
  if (absl::ConsumePrefix(&trimmed, "Ran:")) {
    FlushSummary();  // a new summary
    list = &summary_.ran;
  } else if (absl::ConsumePrefix(&trimmed, "Not run:")) {
    list = &summary_.not_run;
  } else if (absl::ConsumePrefix(&trimmed, "Failures:")) {
    list = &summary_.failures;
  }
  if (list != nullptr || trimmed == "Interrupted!") {
    FlushPending();
    summary_.active = true;
    if (list == nullptr) summary_.interrupted = true;
    for (absl::string_view name : absl::StrSplit(trimmed, ' ', absl::SkipEmpty())) {
      if (list != nullptr && list->size() < kMaxFstestsResults) list->emplace_back(name);
    }
    return;
  }
  if ((absl::StartsWith(trimmed, "Failed ") || absl::StartsWith(trimmed, "Passed all ")) &&
      absl::EndsWith(trimmed, " tests")) {
    FlushPending();
    FlushSummary();
    return;
  }
  if (size_t id = TestIdLength(line); id > 0) {
    FlushPending();
    FlushSummary();
    absl::string_view rest = line.substr(id);
    // An interrupted check appends its summary to the unfinished test line.
    size_t ran = rest.find("Ran: ");
    TestLine(line.substr(0, id), rest.substr(0, ran));
    if (ran != absl::string_view::npos) Line(rest.substr(ran));
    return;
  }
  if (absl::StartsWith(trimmed, "Kernel version:")) {
    // check.log starts each section's summary so, without naming the section: the same test may
    // be listed again.
    FlushPending();
    FlushSummary();
    reported_.clear();
    return;
  }
  static constexpr absl::string_view kHeaders[] = {
      "FSTYP ",      "PLATFORM ", "MKFS_OPTIONS ", "MOUNT_OPTIONS ",
      "RECREATING ", "=====",     "Xunit report:"};
  for (absl::string_view header : kHeaders) {
    if (absl::StartsWith(trimmed, header)) {
      FlushPending();
      return;
    }
  }
  // A failure's diff (indented by four), hints or check messages; check -T puts a skip reason on
  // its own line. Anything printed where a running test's time should be means it failed.
  if (!has_pending_) return;
  if (pending_running_) {
    pending_running_ = false;
    pending_.status = TestStatus::kFail;
    pending_.detail.clear();
  }
  if (pending_.status == TestStatus::kFail) {
    absl::ConsumePrefix(&line, "    ");
    AppendDetail(pending_.detail, line);
  } else if (pending_.detail.empty()) {
    absl::ConsumePrefix(&trimmed, absl::StrCat(pending_.name, " -- "));
    AppendDetail(pending_.detail, trimmed);
  }
}

void FstestsOutputParser::TestLine(absl::string_view name, absl::string_view rest) {
  std::string clean = CleanRest(rest);
  absl::string_view text = clean;
  TestResult result{kFstestsSuite, section_, std::string(name), TestStatus::kPass};
  int64_t seconds;
  if (absl::StrContains(text, "[expunged]")) {
    result.status = TestStatus::kSkip;
    result.detail = "expunged";
  } else if (size_t at = text.find("[not run]"); at != absl::string_view::npos) {
    result.status = TestStatus::kSkip;
    AppendDetail(result.detail, absl::StripLeadingAsciiWhitespace(text.substr(at + 9)));
    if (result.detail.empty()) {  // check -T: the reason is on the next line
      pending_ = std::move(result);
      has_pending_ = true;
      return;
    }
  } else if (text.empty()) {  // still running: its outcome ends the line later
    result.status = TestStatus::kError;
    result.detail =
        "no result: the test did not finish (check was interrupted or the machine "
        "stopped)";
    pending_ = std::move(result);
    has_pending_ = pending_running_ = true;
    return;
  } else if (IsSeconds(text, &seconds)) {
    result.duration_ms = seconds * 1000;
  } else if (absl::StrContains(text, "no such test")) {
    result.status = TestStatus::kError;
    result.detail = std::string(text);
  } else {  // "- output mismatch", "[failed, exit status 1]", "_check_dmesg: ...", ...
    result.status = TestStatus::kFail;
    AppendDetail(result.detail, text);
    pending_ = std::move(result);
    has_pending_ = true;
    return;
  }
  Emit(std::move(result));
}

void FstestsOutputParser::Emit(TestResult result) {
  if (reported_.size() < kMaxFstestsResults) {
    reported_.insert(absl::StrCat(result.section, "\n", result.name));
  }
  out_.push_back(std::move(result));
}

void FstestsOutputParser::FlushPending() {
  if (!has_pending_) return;
  has_pending_ = pending_running_ = false;
  if (pending_.status == TestStatus::kSkip && pending_.detail.empty()) pending_.detail = "not run";
  Emit(std::move(pending_));
}

void FstestsOutputParser::FlushSummary() {
  Summary summary = std::exchange(summary_, {});
  if (!summary.active) return;
  absl::flat_hash_set<absl::string_view> failed(summary.failures.begin(), summary.failures.end());
  absl::flat_hash_set<absl::string_view> skipped(summary.not_run.begin(), summary.not_run.end());
  for (size_t i = 0; i < summary.ran.size(); ++i) {
    const std::string& name = summary.ran[i];
    if (reported_.contains(absl::StrCat(section_, "\n", name))) continue;
    TestResult result{kFstestsSuite, section_, name, TestStatus::kPass};
    if (failed.contains(name)) {
      result.status = TestStatus::kFail;
      result.detail = "listed in Failures";
    } else if (skipped.contains(name)) {
      result.status = TestStatus::kSkip;
      result.detail = "not run";
    } else if (summary.interrupted && i + 1 == summary.ran.size()) {
      result.status = TestStatus::kError;
      result.detail = "interrupted: check stopped while this test ran";
    }
    Emit(std::move(result));
  }
}

std::vector<TestResult> ParseFstestsOutput(absl::string_view text) {
  FstestsOutputParser parser;
  std::vector<TestResult> results = parser.Feed(text);
  for (TestResult& r : parser.Finish()) results.push_back(std::move(r));
  return results;
}

std::vector<std::string> FstestsFailureFiles(const std::string& result_base,
                                             const std::vector<TestResult>& results) {
  static constexpr absl::string_view kSuffixes[] = {".out.bad",  ".full",      ".dmesg",
                                                    ".kmemleak", ".mountfail", ".hints"};
  std::vector<std::string> files;
  for (const TestResult& r : results) {
    if (r.status != TestStatus::kFail && r.status != TestStatus::kError) continue;
    if (r.name.empty() || !IsSafeRelative(r.name) || !IsSafeRelative(r.section)) continue;
    std::string stem = r.section.empty() ? absl::StrCat(result_base, "/", r.name)
                                         : absl::StrCat(result_base, "/", r.section, "/", r.name);
    for (absl::string_view suffix : kSuffixes) {
      std::string path = absl::StrCat(stem, suffix);
      if (IsRegularFile(path)) files.push_back(std::move(path));
    }
  }
  return files;
}

std::string FstestsDetailWithArtifacts(
    absl::string_view detail, absl::string_view result_base,
    const std::function<std::string(absl::string_view relative)>& name_of,
    const std::function<std::string(absl::string_view name)>& how_to_get) {
  if (result_base.empty()) return std::string(detail);
  const std::string prefix = absl::StrCat(result_base, "/");
  std::string out;
  size_t at = 0;
  while (true) {
    size_t found = detail.find(prefix, at);
    if (found == absl::string_view::npos) break;
    size_t end = detail.find_first_of(" \t\n)'\"", found + prefix.size());
    if (end == absl::string_view::npos) end = detail.size();
    absl::string_view rel = detail.substr(found + prefix.size(), end - found - prefix.size());
    if (rel.empty() || !IsSafeRelative(rel)) {
      out.append(detail.data() + at, found + prefix.size() - at);
      at = found + prefix.size();
      continue;
    }
    out.append(detail.data() + at, found - at);
    const std::string name = name_of(rel);
    const bool see = absl::EndsWith(out, "(see ") && end < detail.size() && detail[end] == ')';
    if (see) {
      absl::StrAppend(&out, "artifact ", name, ": ", how_to_get(name));
    } else {
      out += name;
    }
    at = end;
  }
  out.append(detail.data() + at, detail.size() - at);
  return out;
}

}  // namespace kfleet::agent
