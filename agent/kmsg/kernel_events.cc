#include "agent/kmsg/kernel_events.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "agent/kmsg/kernel_reports.h"

namespace kfleet::agent {
namespace {

constexpr absl::string_view kTruncated = "[truncated]";
// Log levels above this (notice, info, debug) are not what reports are printed at, except for
// indented and report-like lines.
constexpr int kWarningLevel = 4;

std::optional<UserspaceKill> ParseUserspaceKill(absl::string_view line) {
  std::optional<UserspaceKill> kill = ParseEarlyoomLine(line);
  if (!kill) kill = ParseSystemdOomdLine(line);
  if (kill && kill->message.size() > kMaxKmsgRecordBytes) kill->message.resize(kMaxKmsgRecordBytes);
  return kill;
}

// `lines` joined by newlines, cut to kMaxDetailBytes.
std::string BoundedDetail(const std::vector<absl::string_view>& lines) {
  std::string detail = absl::StrJoin(lines, "\n");
  if (detail.size() > kMaxDetailBytes) detail.resize(kMaxDetailBytes);
  return detail;
}

}  // namespace

KernelEventParser::KernelEventParser(std::string boot_id, int64_t boot_time_unix_ms)
    : boot_id_(std::move(boot_id)), boot_time_unix_ms_(boot_time_unix_ms) {}

std::vector<kfleet::v1::KernelEvent> KernelEventParser::Feed(const KmsgRecord& record) {
  std::vector<kfleet::v1::KernelEvent> out;
  if (record.facility != 0) {
    if (std::optional<UserspaceKill> kill = ParseUserspaceKill(record.message)) {
      kfleet::v1::KernelEvent event = NewEvent("oom", record);
      event.set_message(kill->message);
      *event.mutable_oom() = std::move(kill->oom);
      out.push_back(std::move(event));
    }
    return out;
  }
  if (FeedOom(record, &out)) return out;

  const absl::string_view message = record.message;
  if (report_) {
    if (EndsReport(report_->event.kind(), message)) {
      AddLine(message);
      CloseReport(&out);
      return out;
    }
    if (ContinueReport(record)) return out;
    CloseReport(&out);
  }
  absl::string_view kind = ReportKind(message);
  if (!kind.empty()) {
    OpenReportAt(record, kind);
  } else if (IsCutHere(message)) {
    after_cut_here_ = true;
    preamble_.clear();
  } else if (after_cut_here_ && preamble_.empty() && !message.empty()) {
    preamble_ = std::string(message);
  } else {
    after_cut_here_ = false;
    preamble_.clear();
  }
  return out;
}

std::vector<kfleet::v1::KernelEvent> KernelEventParser::FeedLine(absl::string_view line,
                                                                 int64_t time_unix_ms) {
  std::vector<kfleet::v1::KernelEvent> out;
  std::optional<UserspaceKill> kill = ParseUserspaceKill(line);
  if (!kill) return out;
  kfleet::v1::KernelEvent event;
  event.set_kind("oom");
  event.set_time_unix_ms(time_unix_ms);
  event.set_boot_id(boot_id_);
  event.set_message(kill->message);
  *event.mutable_oom() = std::move(kill->oom);
  out.push_back(std::move(event));
  return out;
}

std::vector<kfleet::v1::KernelEvent> KernelEventParser::Flush() {
  std::vector<kfleet::v1::KernelEvent> out;
  CloseReport(&out);
  after_cut_here_ = false;
  preamble_.clear();
  return out;
}

bool KernelEventParser::FeedOom(const KmsgRecord& record,
                                std::vector<kfleet::v1::KernelEvent>* out) {
  // 4.19 prints the choice line right before the kill, so it holds for one record only.
  std::optional<OomChoice> choice = std::exchange(choice_, std::nullopt);
  std::string choice_line = std::exchange(choice_line_, std::string());
  const absl::string_view message = record.message;
  if (IsOomHeader(message)) {
    CloseReport(out);
    oom_header_ = std::string(message);
    summary_.reset();
    summary_line_.clear();
    return true;
  }
  if (std::optional<OomSummary> summary = ParseOomSummary(message)) {
    CloseReport(out);
    summary_ = std::move(summary);
    summary_line_ = std::string(message);
    return true;
  }
  if (std::optional<OomChoice> next = ParseOomChoiceLine(message)) {
    CloseReport(out);
    choice_ = next;
    choice_line_ = std::string(message);
    return true;
  }
  std::optional<kfleet::v1::OomKill> kill = ParseOomKilledLine(message);
  if (!kill) return false;
  CloseReport(out);

  // The summary names the victim in 5.x and later, and in 4.19 the process chosen, whose child
  // may have been killed instead: then only what describes the whole OOM applies.
  const bool summary_names_victim = summary_ && summary_->pid != 0 && summary_->pid == kill->pid();
  const bool summary_names_choice =
      summary_ && choice && summary_->pid != 0 && summary_->pid == choice->pid;
  std::vector<absl::string_view> detail;
  if (!oom_header_.empty()) detail.push_back(oom_header_);
  if (summary_names_victim || summary_names_choice) {
    detail.push_back(summary_line_);
    kill->set_constraint(summary_->constraint);
    kill->set_oom_memcg(summary_->oom_memcg);
    if (summary_names_victim) {
      kill->set_task_memcg(summary_->task_memcg);
      // 4.19's line has no UID.
      if (!absl::StrContains(message, "UID:") && summary_->uid >= 0) kill->set_uid(summary_->uid);
    }
  }
  if (choice) detail.push_back(choice_line);
  if (kill->constraint() == "CONSTRAINT_MEMCG" || (choice && choice->memcg)) kill->set_memcg(true);

  kfleet::v1::KernelEvent event = NewEvent("oom", record);
  event.set_message(std::string(message));
  event.set_detail(BoundedDetail(detail));
  *event.mutable_oom() = *std::move(kill);
  out->push_back(std::move(event));
  oom_header_.clear();
  summary_.reset();
  summary_line_.clear();
  return true;
}

bool KernelEventParser::ContinueReport(const KmsgRecord& record) {
  OpenReport& report = *report_;
  const absl::string_view message = record.message;
  if (record.timestamp_us > report.last_timestamp_us + kReportGapUs) return false;
  if (!ReportKind(message).empty()) {
    const bool die = report.event.kind() == "oops" || report.event.kind() == "bug";
    if (!(die && IsDieLine(message))) return false;
  } else if (IsCutHere(message)) {
    return false;
  } else if (record.priority > kWarningLevel && record.priority != report.priority &&
             !LooksLikeReportLine(message)) {
    return false;
  }
  AddLine(message);
  report.last_timestamp_us = std::max(report.last_timestamp_us, record.timestamp_us);
  return true;
}

void KernelEventParser::OpenReportAt(const KmsgRecord& record, absl::string_view kind) {
  report_.emplace();
  report_->event = NewEvent(kind, record);
  report_->event.set_message(record.message);
  report_->priority = record.priority;
  report_->last_timestamp_us = record.timestamp_us;
  if (after_cut_here_ && !preamble_.empty() && (kind == "warn" || kind == "bug")) {
    AddLine(preamble_);
  }
  after_cut_here_ = false;
  preamble_.clear();
}

void KernelEventParser::AddLine(absl::string_view line) {
  OpenReport& report = *report_;
  if (report.truncated) return;
  // Room is kept for the marker, so that detail stays within both caps.
  if (report.lines.size() + 1 >= static_cast<size_t>(kMaxDetailLines) ||
      report.bytes + line.size() + 1 + kTruncated.size() > kMaxDetailBytes) {
    report.truncated = true;
    return;
  }
  report.lines.emplace_back(line);
  report.bytes += line.size() + 1;
}

void KernelEventParser::CloseReport(std::vector<kfleet::v1::KernelEvent>* out) {
  if (!report_) return;
  if (report_->truncated) report_->lines.emplace_back(kTruncated);
  report_->event.set_detail(absl::StrJoin(report_->lines, "\n"));
  out->push_back(std::move(report_->event));
  report_.reset();
}

kfleet::v1::KernelEvent KernelEventParser::NewEvent(absl::string_view kind,
                                                    const KmsgRecord& record) const {
  kfleet::v1::KernelEvent event;
  event.set_kind(std::string(kind));
  event.set_time_unix_ms(boot_time_unix_ms_ + static_cast<int64_t>(record.timestamp_us / 1000));
  event.set_boot_id(boot_id_);
  event.set_kmsg_seq(record.seq);
  return event;
}

}  // namespace kfleet::agent
