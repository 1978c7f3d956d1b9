#include "agent/suites/tap.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace kfleet::agent {
namespace {

// Removes one nesting prefix: the runner's "# " (a bare "#" for an empty line) or TAP 14's four
// spaces.
bool StripPrefix(absl::string_view& s) {
  if (absl::StartsWith(s, "# ")) {
    s.remove_prefix(2);
  } else if (s == "#") {
    s = "";
  } else if (absl::StartsWith(s, "    ")) {
    s.remove_prefix(4);
  } else {
    return false;
  }
  return true;
}

bool StripPrefixes(absl::string_view& s, int n) {
  for (int i = 0; i < n; ++i) {
    if (!StripPrefix(s)) return false;
  }
  return true;
}

// Parses a leading run of digits, at most 18 of them so that it fits; -1 if there is none.
int64_t ConsumeNumber(absl::string_view& s) {
  size_t n = 0;
  while (n < s.size() && absl::ascii_isdigit(s[n])) ++n;
  int64_t value = -1;
  if (n == 0 || n > 18 || !absl::SimpleAtoi(s.substr(0, n), &value)) value = n == 0 ? -1 : 0;
  s.remove_prefix(n);
  return value;
}

bool IsPlan(absl::string_view s) {
  if (!absl::ConsumePrefix(&s, "1..")) return false;
  return ConsumeNumber(s) >= 0 && (s.empty() || s[0] == ' ' || s[0] == '\t' || s[0] == '#');
}

bool IsTestLine(absl::string_view s, bool* ok, absl::string_view* rest) {
  *ok = !absl::ConsumePrefix(&s, "not ");
  if (!absl::ConsumePrefix(&s, "ok")) return false;
  if (!s.empty() && s[0] != ' ' && s[0] != '\t') return false;
  *rest = absl::StripLeadingAsciiWhitespace(s);
  return true;
}

bool IsConstruct(absl::string_view s) {
  bool ok;
  absl::string_view rest;
  return absl::StartsWith(s, "TAP version ") || absl::StartsWith(s, "KTAP version ") || IsPlan(s) ||
         absl::StartsWith(s, "Bail out!") || IsTestLine(s, &ok, &rest);
}

// The last `max` bytes of `s`, starting on a line and UTF-8 boundary when there is one.
absl::string_view Tail(absl::string_view s, size_t max) {
  if (s.size() <= max) return s;
  s.remove_prefix(s.size() - max);
  size_t newline = s.find('\n');
  if (newline != absl::string_view::npos && newline + 1 < s.size()) s.remove_prefix(newline + 1);
  while (!s.empty() && (static_cast<unsigned char>(s[0]) & 0xC0) == 0x80) s.remove_prefix(1);
  return s;
}

// Appends `text` + "\n" to `detail` without letting it grow past kMaxTestDetailBytes.
void AppendBounded(std::string* detail, absl::string_view text) {
  if (text.empty() || detail->size() + 1 >= kMaxTestDetailBytes) return;
  if (!detail->empty()) detail->push_back('\n');
  size_t room = kMaxTestDetailBytes - detail->size();
  if (text.size() > room) {
    // Cut before the character that straddles the bound, not inside it.
    size_t cut = room;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text = text.substr(0, cut);
  }
  absl::StrAppend(detail, text);
}

// The last output lines of `recent` that fit in `max` bytes, without the final newline.
absl::string_view RecentTail(absl::string_view recent, size_t max) {
  absl::ConsumeSuffix(&recent, "\n");
  return Tail(recent, max);
}

void AppendRecent(std::string* recent, absl::string_view line) {
  absl::StrAppend(recent, Tail(line, kMaxTestDetailBytes), "\n");
  if (recent->size() > 2 * kMaxTestDetailBytes) {
    *recent = std::string(Tail(*recent, kMaxTestDetailBytes));
  }
}

std::string Unescape(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '#' || s[i + 1] == '\\')) ++i;
    out.push_back(s[i]);
  }
  return out;
}

// "KEYWORD reason" -> reason, case-insensitively; false if `directive` starts otherwise.
bool DirectiveIs(absl::string_view directive, absl::string_view keyword,
                 absl::string_view* reason) {
  if (!absl::StartsWithIgnoreCase(directive, keyword)) return false;
  *reason = absl::StripAsciiWhitespace(directive.substr(keyword.size()));
  return true;
}

bool Failed(TestStatus status) {
  return status == TestStatus::kFail || status == TestStatus::kError;
}

std::string WithReason(absl::string_view word, absl::string_view reason) {
  return reason.empty() ? std::string(word) : absl::StrCat(word, ": ", reason);
}

}  // namespace

TapParser::TapParser(std::string suite)
    : suite_(std::move(suite)), levels_(static_cast<size_t>(kMaxTapDepth) + 1) {}

std::vector<TestResult> TapParser::FeedLine(absl::string_view line) {
  return FeedLine(line, absl::InfinitePast());
}

std::vector<TestResult> TapParser::FeedLine(absl::string_view line, absl::Time now) {
  now_ = now;
  std::vector<TestResult> results;
  out_ = &results;
  absl::ConsumeSuffix(&line, "\n");
  absl::ConsumeSuffix(&line, "\r");
  Feed(line.substr(0, kMaxTapLineBytes));
  out_ = nullptr;
  return results;
}

std::vector<TestResult> TapParser::Finish() {
  std::vector<TestResult> results;
  out_ = &results;
  in_yaml_ = false;
  ReleaseHeld();
  CloseChildren(0, "no result: output ended");
  EmitMissing(0, absl::StrCat("not run: plan said ", levels_[0].plan));
  levels_.assign(levels_.size(), Level());
  emitted_ = 0;
  pending_total_ = 0;
  now_ = absl::InfinitePast();
  out_ = nullptr;
  return results;
}

void TapParser::Feed(absl::string_view line) {
  if (FeedYaml(line)) return;
  ReleaseHeld();
  // The construct's depth is the fewest prefixes that uncover one, at most one level deeper than
  // the deepest open stream.
  const int max_depth = std::min(OpenDepth() + 1, kMaxTapDepth);
  int depth = -1;
  absl::string_view body = line;
  for (int d = 0; d <= max_depth; ++d) {
    if (d > 0 && !StripPrefix(body)) break;
    if (IsConstruct(body)) {
      depth = d;
      break;
    }
  }
  if (depth < 0) {
    FeedComment(line);
    return;
  }
  absl::string_view outer = line;
  for (int d = 0; d < depth; ++d) {
    AppendRecent(&levels_[d].recent, outer);
    StripPrefix(outer);
  }
  Level& level = levels_[depth];
  if (depth > 0 && !level.open) {
    CloseChildren(depth, "no result line");
    level.open = true;
  }
  if (level.mark == absl::InfinitePast()) level.mark = now_;
  bool ok;
  absl::string_view rest;
  if (absl::StartsWith(body, "TAP version ") || absl::StartsWith(body, "KTAP version ")) {
    if (level.open && (level.plan >= 0 || level.last_number > 0)) {
      RestartStream(depth, "no result line");
    }
    level.open = true;
  } else if (IsPlan(body)) {
    level.open = true;
    absl::ConsumePrefix(&body, "1..");
    if (level.plan < 0) level.plan = ConsumeNumber(body);
  } else if (absl::ConsumePrefix(&body, "Bail out!")) {
    CloseChildren(depth, "no result line");
    EmitMissing(depth, WithReason("bail out", absl::StripAsciiWhitespace(body)));
    level.plan = -1;
    level.last_number = 0;
    level.seen.clear();
  } else if (IsTestLine(body, &ok, &rest)) {
    FeedTestLine(depth, ok, rest);
  }
}

bool TapParser::FeedYaml(absl::string_view line) {
  if (!held_.has_value()) return false;
  absl::string_view body = line;
  const bool nested = StripPrefixes(body, held_depth_) && (body.empty() || body[0] == ' ');
  if (!in_yaml_) {
    if (!nested || absl::StripAsciiWhitespace(body) != "---") return false;
    in_yaml_ = true;
    yaml_indent_ = body.find_first_not_of(' ');
    return true;
  }
  if (!nested) {  // a block that never ended
    in_yaml_ = false;
    return false;
  }
  if (absl::StripAsciiWhitespace(body) == "...") {
    in_yaml_ = false;
    ReleaseHeld();
    return true;
  }
  const size_t indent = std::min(yaml_indent_, body.find_first_not_of(' '));
  body.remove_prefix(std::min(indent, body.size()));
  double ms = 0;
  absl::string_view value = body;
  if (absl::ConsumePrefix(&value, "duration_ms:") &&
      absl::SimpleAtod(absl::StripAsciiWhitespace(value), &ms) && ms >= 0 && ms < 1e15) {
    held_->duration_ms = static_cast<int64_t>(ms);
  }
  // A passing test's YAML is noise in its detail; only its duration is kept.
  if (held_->status != TestStatus::kPass) AppendBounded(&held_->detail, body);
  return true;
}

void TapParser::FeedComment(absl::string_view line) {
  absl::string_view body = line;
  bool header_done = false;
  for (int d = 0; d <= kMaxTapDepth; ++d) {
    if (d > 0 && !StripPrefix(body)) break;
    if (d == 0 || Active(d)) AppendRecent(&levels_[d].recent, body);
    if (d == 0 || header_done) continue;
    absl::string_view text = body;
    if (absl::ConsumePrefix(&text, "selftests: ")) {
      // The runner's "# selftests: COLLECTION: TEST": the test that runs now, one level up.
      std::vector<absl::string_view> parts = absl::StrSplit(text, absl::MaxSplits(": ", 1));
      if (parts.size() == 2 && d == 1) levels_[0].section = std::string(parts[0]);
      Announce(d, parts.size() == 2 ? absl::StrCat(parts[0], ":", parts[1]) : std::string(text));
      header_done = true;
    } else if (absl::ConsumePrefix(&text, "Subtest: ")) {
      // TAP 14 puts it at the parent's indentation or, as node-tap does, at the child's.
      Announce(d == 1 || levels_[d - 1].open ? d : d - 1, absl::StripAsciiWhitespace(text));
      header_done = true;
    } else if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(text), "RUN ") &&
               absl::EndsWith(text, " ...")) {
      text = absl::StripLeadingAsciiWhitespace(text);
      text.remove_prefix(4);
      text.remove_suffix(4);
      levels_[d - 1].run_name = std::string(absl::StripAsciiWhitespace(text));
      levels_[d - 1].mark = now_;
      header_done = true;
    }
  }
}

void TapParser::FeedTestLine(int depth, bool ok, absl::string_view rest) {
  Level& level = levels_[depth];
  int64_t number = ConsumeNumber(rest);
  if (number < 0) number = level.last_number + 1;
  const size_t line_hash = absl::HashOf(ok, rest);
  if (depth > 0 && (depth == kMaxTapDepth || !Active(depth + 1))) {
    auto it = level.seen.find(number);
    if (it != level.seen.end() && it->second == line_hash) {
      // The same line again: a forked child flushed its copy of the test's stdout buffer, which
      // repeats what the test printed before the fork. It reports nothing new.
      level.last_number = number;
      level.recent.clear();
      level.run_name.clear();
      return;
    }
  }
  size_t hash = 0;
  while ((hash = rest.find('#', hash)) != absl::string_view::npos && hash > 0 &&
         rest[hash - 1] == '\\') {
    ++hash;
  }
  absl::string_view description = absl::StripAsciiWhitespace(rest.substr(0, hash));
  const absl::string_view directive =
      hash == absl::string_view::npos ? "" : absl::StripAsciiWhitespace(rest.substr(hash + 1));
  if (absl::ConsumePrefix(&description, "-")) {
    description = absl::StripLeadingAsciiWhitespace(description);
  }
  std::string rel;
  std::vector<absl::string_view> parts;
  if (depth == 0 && absl::ConsumePrefix(&description, "selftests: ")) {
    parts = absl::StrSplit(description, absl::MaxSplits(": ", 1));
  }
  if (parts.size() == 2) {
    level.section = std::string(parts[0]);
    rel = absl::StrCat(parts[0], ":", parts[1]);
  } else {
    rel = Unescape(description);
  }
  if (rel.empty()) rel = level.run_name.empty() ? absl::StrCat("#", number) : level.run_name;
  if (depth > 0) rel = UniqueName(depth, std::move(rel), number);

  TestResult result{suite_, levels_[0].section, rel, ok ? TestStatus::kPass : TestStatus::kFail};
  absl::string_view reason;
  if (DirectiveIs(directive, "SKIP", &reason)) {
    result.status = TestStatus::kSkip;
    result.detail = reason.empty() ? "skip" : std::string(reason);
  } else if (DirectiveIs(directive, "XFAIL", &reason)) {
    result.status = TestStatus::kPass;
    result.detail = WithReason("xfail", reason);
  } else if (DirectiveIs(directive, "TODO", &reason)) {
    result.status = ok ? TestStatus::kPass : TestStatus::kSkip;
    result.detail = WithReason("todo", reason);
  } else if (DirectiveIs(directive, "TIMEOUT", &reason)) {
    result.status = TestStatus::kFail;
    result.detail = WithReason("timeout", reason);
  } else if (!ok && DirectiveIs(directive, "error", &reason)) {
    result.status = TestStatus::kError;
    result.detail = WithReason("error", reason);
  } else {
    result.detail = std::string(directive.substr(0, 256));
  }
  const std::string head = std::move(result.detail);
  result.detail.clear();
  AppendBounded(&result.detail, head);

  // This line is the verdict on its own output: the nested stream closes under it.
  const bool failed = Failed(result.status);
  std::vector<TestResult> children;
  int64_t overruled = 0;
  if (depth < kMaxTapDepth && Active(depth + 1)) {
    children = CloseLevel(depth + 1, "no result line", failed, &overruled);
  }
  MarkSeen(depth, number, line_hash);
  for (TestResult& child : children) {
    child.name = absl::StrCat(rel, "/", child.name);
    Emit(depth, std::move(child));
  }
  if (overruled > 0) {
    AppendBounded(&result.detail, absl::StrCat("ok, though its output said not ok for ", overruled,
                                               overruled == 1 ? " subtest" : " subtests"));
  }
  const size_t used = result.detail.size() + 1;
  if (failed && used < kMaxTestDetailBytes) {
    AppendBounded(&result.detail, RecentTail(level.recent, kMaxTestDetailBytes - used));
  }
  if (now_ != absl::InfinitePast() && level.mark != absl::InfinitePast()) {
    result.duration_ms = absl::ToInt64Milliseconds(now_ - level.mark);
  }
  level.mark = now_;
  level.recent.clear();
  level.run_name.clear();
  held_ = std::move(result);
  held_depth_ = depth;
}

// Nested descriptions repeat (the same check run twice, or several programs of one script each
// numbering from 1); every result needs its own name, so a repeat gets " #N" after it.
std::string TapParser::UniqueName(int depth, std::string rel, int64_t number) {
  Level& level = levels_[depth];
  if (level.names.size() >= kMaxTapResults) return rel;
  if (!level.names.insert(absl::HashOf(rel)).second) {
    const std::string base = rel;
    rel = absl::StrCat(base, " #", number);
    for (int64_t k = 2; !level.names.insert(absl::HashOf(rel)).second && k < 100; ++k) {
      rel = absl::StrCat(base, " #", number, ".", k);
    }
  }
  return rel;
}

void TapParser::Announce(int depth, absl::string_view rel) {
  if (rel.empty()) return;
  if (Active(depth)) SynthesizeParent(depth - 1, "no result line");
  Level& level = levels_[depth];
  const Level& up = levels_[depth - 1];
  levels_[depth - 1].mark = now_;
  level.announced = true;
  level.parent_rel = std::string(rel);
  level.parent_known = depth == 1 || up.parent_known;
  if (depth == 1) {
    level.parent_name = level.parent_rel;
  } else if (up.parent_known) {
    level.parent_name = absl::StrCat(up.parent_name, "/", rel);
  }
}

void TapParser::RestartStream(int depth, absl::string_view why) {
  CloseChildren(depth, why);
  Level& level = levels_[depth];
  EmitMissing(depth, absl::StrCat("not run: plan said ", level.plan));
  level.plan = -1;
  level.last_number = 0;
  level.seen.clear();
}

std::vector<TestResult> TapParser::CloseLevel(int depth, absl::string_view why, bool parent_failed,
                                              int64_t* overruled) {
  CloseChildren(depth, why);
  Level& level = levels_[depth];
  if (parent_failed) EmitMissing(depth, absl::StrCat("not run: plan said ", level.plan));
  std::vector<TestResult> doubtful = std::move(level.doubtful);
  level.doubtful.clear();
  pending_total_ -= static_cast<int64_t>(doubtful.size());
  for (TestResult& result : doubtful) {
    if (!parent_failed && Failed(result.status)) {
      // The parent's own line says ok: what its output claimed otherwise is not a result.
      if (overruled != nullptr) ++*overruled;
      continue;
    }
    EmitNow(depth, std::move(result));
  }
  std::vector<TestResult> pending = std::move(level.pending);
  pending_total_ -= static_cast<int64_t>(pending.size());
  levels_[depth] = Level();
  return pending;
}

void TapParser::CloseChildren(int depth, absl::string_view why) {
  if (depth < kMaxTapDepth && Active(depth + 1)) SynthesizeParent(depth, why);
}

// The test at `depth` whose output is the stream at depth + 1 never printed its own test line.
void TapParser::SynthesizeParent(int depth, absl::string_view why) {
  Level& level = levels_[depth];
  const int64_t number = level.last_number + 1;
  const Level& child = levels_[depth + 1];
  std::string rel = child.announced ? child.parent_rel : absl::StrCat("#", number);
  std::vector<TestResult> children = CloseLevel(depth + 1, why, /*parent_failed=*/true);
  MarkSeen(depth, number);
  for (TestResult& result : children) {
    result.name = absl::StrCat(rel, "/", result.name);
    Emit(depth, std::move(result));
  }
  TestResult result{suite_, levels_[0].section, std::move(rel), TestStatus::kError};
  result.detail = std::string(why);
  AppendBounded(&result.detail, RecentTail(level.recent, kMaxTestDetailBytes - why.size() - 1));
  level.recent.clear();
  level.run_name.clear();
  Emit(depth, std::move(result));
}

void TapParser::EmitMissing(int depth, absl::string_view why) {
  constexpr int64_t kMaxMissingPerStream = 1000;
  const Level& level = levels_[depth];
  if (level.plan <= 0 || level.seen.size() >= kMaxTapResults) return;
  // A nested plan followed by no test line announced output in another form (kselftest.h's
  // counters with printed "PASS:" lines): nothing of it is missing.
  if (depth > 0 && level.seen.empty()) return;
  int64_t reported = 0;
  for (int64_t n = 1; n <= level.plan; ++n) {
    if (level.seen.contains(n)) continue;
    const std::string prefix = depth == 0 && !level.section.empty() ? level.section + ":" : "";
    TestResult result{suite_, levels_[0].section, absl::StrCat(prefix, "#", n), TestStatus::kError};
    AppendBounded(&result.detail, why);
    if (++reported == kMaxMissingPerStream && n < level.plan) {
      // An implausible plan: one result for the rest of it.
      absl::StrAppend(&result.name, "..#", level.plan);
      Emit(depth, std::move(result));
      return;
    }
    Emit(depth, std::move(result));
  }
}

void TapParser::MarkSeen(int depth, int64_t number, size_t line_hash) {
  Level& level = levels_[depth];
  level.last_number = number;
  if (level.seen.size() < kMaxTapResults) level.seen.emplace(number, line_hash);
}

void TapParser::ReleaseHeld() {
  in_yaml_ = false;
  if (!held_.has_value()) return;
  TestResult result = std::move(*held_);
  held_.reset();
  Emit(held_depth_, std::move(result));
}

void TapParser::Emit(int depth, TestResult result) {
  if (depth > 0 && (Failed(result.status) || !levels_[depth].doubtful.empty())) {
    // Judged by the parent's own line, when it comes; what follows waits with it, in order.
    if (pending_total_ >= static_cast<int64_t>(kMaxTapResults)) {
      ++dropped_;
    } else {
      ++pending_total_;
      levels_[depth].doubtful.push_back(std::move(result));
    }
    return;
  }
  EmitNow(depth, std::move(result));
}

void TapParser::EmitNow(int depth, TestResult result) {
  Level& level = levels_[depth];
  if (depth == 0 || level.parent_known) {
    if (depth > 0) result.name = absl::StrCat(level.parent_name, "/", result.name);
    Output(std::move(result));
  } else if (pending_total_ >= static_cast<int64_t>(kMaxTapResults)) {
    ++dropped_;
  } else {
    ++pending_total_;
    level.pending.push_back(std::move(result));
  }
}

void TapParser::Output(TestResult result) {
  if (emitted_ >= static_cast<int64_t>(kMaxTapResults)) {
    ++dropped_;
    return;
  }
  ++emitted_;
  out_->push_back(std::move(result));
}

bool TapParser::Active(int depth) const {
  const Level& level = levels_[depth];
  return level.open || level.announced || !level.pending.empty() || !level.doubtful.empty();
}

int TapParser::OpenDepth() const {
  int depth = 0;
  for (int d = 1; d <= kMaxTapDepth && levels_[d].open; ++d) depth = d;
  return depth;
}

std::vector<TestResult> ParseTap(absl::string_view text, std::string suite) {
  TapParser parser(std::move(suite));
  std::vector<TestResult> results;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<TestResult> more = parser.FeedLine(line);
    std::move(more.begin(), more.end(), std::back_inserter(results));
  }
  std::vector<TestResult> rest = parser.Finish();
  std::move(rest.begin(), rest.end(), std::back_inserter(results));
  return results;
}

}  // namespace kfleet::agent
