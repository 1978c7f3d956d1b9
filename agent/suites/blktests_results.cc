#include "agent/suites/blktests_results.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/files.h"

namespace kfleet::agent {
namespace {

constexpr size_t kMaxDirEntries = 1'000'000;

void AppendDetail(std::string& detail, absl::string_view text) {
  text = absl::StripTrailingAsciiWhitespace(text);
  if (text.empty() || detail.size() >= kMaxTestDetailBytes) return;
  if (!detail.empty()) detail += '\n';
  const size_t room = kMaxTestDetailBytes - std::min(detail.size(), kMaxTestDetailBytes);
  detail.append(text.data(), std::min(text.size(), room));
}

// "1.234s" (bash's TIMEFORMAT=%Rs) in milliseconds, -1 if it is not one.
int64_t RuntimeMs(absl::string_view text) {
  double seconds;
  if (!absl::ConsumeSuffix(&text, "s") || !absl::SimpleAtod(text, &seconds) || !(seconds >= 0) ||
      seconds > 1e9) {
    return -1;
  }
  return std::llround(seconds * 1000);
}

// The first kMaxTestDetailBytes of a file, "" if it cannot be read.
std::string Head(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out(kMaxTestDetailBytes, '\0');
  ssize_t n;
  do {
    n = ::read(fd, out.data(), out.size());
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool IsTestFileName(absl::string_view name) {
  return name.size() == 3 && absl::c_all_of(name, [](char c) { return absl::ascii_isdigit(c); });
}

bool IsSafeComponent(absl::string_view part) {
  return !part.empty() && part != "." && part != ".." && !absl::StrContains(part, '/') &&
         !absl::StrContains(part, absl::string_view("\0", 1));
}

std::string SectionOf(absl::string_view device_dir) {
  return device_dir == "nodev" ? "" : std::string(device_dir);
}

std::vector<std::string> SortedEntries(const std::filesystem::path& dir, bool dirs,
                                       size_t& budget) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (budget == 0) break;
    --budget;
    if (entry.is_directory(ec) == dirs) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Removes terminal escapes: check colours its status when stdout is a terminal.
std::string StripEscapes(absl::string_view line) {
  std::string out;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] != '\x1b') {
      out += line[i];
    } else if (i + 1 < line.size() && line[i + 1] == '[') {
      i += 2;
      while (i < line.size() && !(line[i] >= '@' && line[i] <= '~')) ++i;
    } else {
      i += 2;  // ESC ( B and other two-byte forms
    }
  }
  return out;
}

}  // namespace

TestResult ParseBlktestsRunFile(absl::string_view contents) {
  TestResult result{kBlktestsSuite, "", "", TestStatus::kError};
  std::string status, reason, exit_status;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits('\t', 1));
    if (kv.first == "status") status = std::string(absl::StripAsciiWhitespace(kv.second));
    if (kv.first == "reason") reason = std::string(absl::StripAsciiWhitespace(kv.second));
    if (kv.first == "exit_status") exit_status = std::string(absl::StripAsciiWhitespace(kv.second));
    if (kv.first == "runtime")
      result.duration_ms = RuntimeMs(absl::StripAsciiWhitespace(kv.second));
  }
  if (status == "pass") {
    result.status = TestStatus::kPass;
  } else if (status == "fail") {
    result.status = TestStatus::kFail;
    if (reason == "output") {
      result.detail = "output mismatch";
    } else if (reason == "exit") {
      result.detail = absl::StrCat("exited with status ", exit_status);
    } else if (reason == "dmesg") {
      result.detail = "something found in dmesg";
    } else if (reason == "kmemleak") {
      result.detail = "kmemleak detected";
    } else {
      AppendDetail(result.detail, reason.empty() ? "failed" : reason);
    }
  } else if (status == "not run") {
    result.status = TestStatus::kSkip;
    AppendDetail(result.detail, reason.empty() ? "not run" : reason);
  } else if (status.empty()) {
    result.detail = "no status: the test did not finish";
  } else {
    AppendDetail(result.detail, absl::StrCat("unknown status \"", status, "\""));
  }
  return result;
}

absl::StatusOr<std::vector<TestResult>> ReadBlktestsResults(const std::string& results_dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(results_dir, ec)) {
    return absl::NotFoundError(absl::StrCat("blktests results directory ", results_dir,
                                            " does not exist (check -o DIR writes it)"));
  }
  std::vector<TestResult> results;
  size_t budget = kMaxDirEntries;
  for (const std::string& device : SortedEntries(results_dir, true, budget)) {
    const std::filesystem::path device_dir = std::filesystem::path(results_dir) / device;
    for (const std::string& group : SortedEntries(device_dir, true, budget)) {
      const std::filesystem::path group_dir = device_dir / group;
      std::vector<std::string> files = SortedEntries(group_dir, false, budget);
      for (const std::string& file : files) {
        absl::string_view test = file;
        // <NNN>.out exists only while the test runs: check moves or removes it afterwards.
        const bool unfinished = absl::ConsumeSuffix(&test, ".out") && IsTestFileName(test) &&
                                !std::binary_search(files.begin(), files.end(), std::string(test));
        if (!IsTestFileName(test) || (test.size() != file.size() && !unfinished)) continue;
        if (results.size() >= kMaxBlktestsResults) {
          return absl::ResourceExhaustedError(
              absl::StrCat(results_dir, " holds more than ", kMaxBlktestsResults, " test results"));
        }
        const std::string stem = (group_dir / std::string(test)).string();
        TestResult result;
        if (unfinished) {
          result = ParseBlktestsRunFile("");
          result.detail = "no status: the test was running when the run stopped";
        } else if (absl::StatusOr<std::string> contents = ReadFile(stem, kMaxBlktestsRunFileBytes);
                   contents.ok()) {
          result = ParseBlktestsRunFile(*contents);
        } else {
          result = ParseBlktestsRunFile("");
          AppendDetail(result.detail, contents.status().ToString());
        }
        result.section = SectionOf(device);
        result.name = absl::StrCat(group, "/", test);
        if (result.status == TestStatus::kFail) {
          for (absl::string_view suffix : {".out.bad", ".dmesg", ".kmemleak"}) {
            AppendDetail(result.detail, Head(absl::StrCat(stem, suffix)));
          }
        }
        results.push_back(std::move(result));
      }
    }
  }
  return results;
}

std::vector<TestResult> BlktestsOutputParser::Feed(absl::string_view chunk) {
  lines_.Feed(chunk, [this](absl::string_view line) { Line(line); });
  return std::exchange(out_, {});
}

std::vector<TestResult> BlktestsOutputParser::Finish() {
  lines_.Finish([this](absl::string_view line) { Line(line); });
  FlushPending();
  if (running_.has_value()) {
    running_->detail =
        "no result: the test did not finish (check was interrupted or the machine "
        "stopped)";
    out_.push_back(*std::move(running_));
    running_.reset();
  }
  return std::exchange(out_, {});
}

void BlktestsOutputParser::Line(absl::string_view raw) {
  const std::string clean = StripEscapes(raw);
  absl::string_view line = absl::StripTrailingAsciiWhitespace(clean);
  if (line.empty()) return;
  if (absl::ascii_isspace(line[0])) {   // indented: key lines, then reasons or the diff
    if (!pending_.has_value()) return;  // the previous run's values, before the test runs
    absl::string_view text = absl::StripLeadingAsciiWhitespace(line);
    if (in_keys_ && text != "..." && absl::StrContains(text, "  ...")) {
      if (absl::ConsumePrefix(&text, "runtime ")) {
        std::vector<absl::string_view> words = absl::StrSplit(text, ' ', absl::SkipEmpty());
        if (words.size() >= 2 && words[words.size() - 2] == "...") {
          pending_->duration_ms = RuntimeMs(words.back());
        }
      }
      return;
    }
    in_keys_ = false;
    if (pending_->status != TestStatus::kPass) AppendDetail(pending_->detail, text);
    return;
  }
  FlushPending();
  // "<group>/<NNN or ***>[ => dev...][ (condition)][ (description)][ [status]]"
  std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
  if (!absl::StrContains(words[0], '/') || absl::StartsWith(words[0], "/") ||
      absl::StartsWith(words[0], ".")) {
    return;  // "2 failures: ...", "./check: warning", ...
  }
  TestResult result{kBlktestsSuite, "", std::string(words[0]), TestStatus::kError};
  std::vector<absl::string_view> devices;
  size_t i = 1;
  if (i < words.size() && words[i] == "=>") {
    for (++i; i < words.size() && words[i][0] != '(' && words[i][0] != '['; ++i) {
      devices.push_back(words[i]);
    }
  }
  absl::string_view rest = absl::StripLeadingAsciiWhitespace(
      i < words.size() ? line.substr(words[i].data() - line.data()) : absl::string_view());
  // A condition comes before the description when there are two parenthesised groups.
  std::string condition;
  if (absl::StartsWith(rest, "(")) {
    size_t close = rest.find(") (");
    if (close != absl::string_view::npos) condition = std::string(rest.substr(1, close - 1));
  }
  std::string section = devices.empty() ? "nodev" : absl::StrJoin(devices, "_");
  if (!condition.empty()) {
    absl::StrAppend(&section, "_", absl::StrReplaceAll(condition, {{" ", "_"}, {"=", "_"}}));
  }
  result.section = SectionOf(section);
  std::string status;
  if (absl::EndsWith(rest, "]")) {
    size_t open = rest.rfind('[');
    if (open != absl::string_view::npos) {
      status = std::string(rest.substr(open + 1, rest.size() - open - 2));
    }
  }
  if (status == "passed") {
    result.status = TestStatus::kPass;
  } else if (status == "failed") {
    result.status = TestStatus::kFail;
  } else if (status == "not run") {
    result.status = TestStatus::kSkip;
  } else {
    running_ = std::move(result);  // announced; its status line follows when it ends
    return;
  }
  running_.reset();
  pending_ = std::move(result);
  in_keys_ = true;
}

void BlktestsOutputParser::FlushPending() {
  if (!pending_.has_value()) return;
  if (pending_->status == TestStatus::kSkip && pending_->detail.empty()) {
    pending_->detail = "not run";
  }
  out_.push_back(*std::move(pending_));
  pending_.reset();
}

std::vector<TestResult> ParseBlktestsOutput(absl::string_view text) {
  BlktestsOutputParser parser;
  std::vector<TestResult> results = parser.Feed(text);
  for (TestResult& r : parser.Finish()) results.push_back(std::move(r));
  return results;
}

std::vector<std::string> BlktestsFailureFiles(const std::string& results_dir,
                                              const std::vector<TestResult>& results) {
  std::vector<std::string> files;
  for (const TestResult& r : results) {
    if (r.status != TestStatus::kFail && r.status != TestStatus::kError) continue;
    std::pair<absl::string_view, absl::string_view> parts =
        absl::StrSplit(r.name, absl::MaxSplits('/', 1));
    const std::string device = r.section.empty() ? "nodev" : r.section;
    if (!IsSafeComponent(device) || !IsSafeComponent(parts.first) ||
        !IsTestFileName(parts.second)) {
      continue;
    }
    const std::string stem = absl::StrCat(results_dir, "/", device, "/", r.name);
    for (absl::string_view suffix : {"", ".out", ".out.bad", ".full", ".dmesg", ".kmemleak"}) {
      std::string path = absl::StrCat(stem, suffix);
      if (IsRegularFile(path)) files.push_back(std::move(path));
    }
  }
  return files;
}

}  // namespace kfleet::agent
