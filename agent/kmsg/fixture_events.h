// Helpers for the tests that run the event parser over the log excerpts in testdata/.
#ifndef KFLEET_AGENT_KMSG_FIXTURE_EVENTS_H_
#define KFLEET_AGENT_KMSG_FIXTURE_EVENTS_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/kmsg/kernel_events.h"
#include "agent/kmsg/kmsg_record.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"

namespace kfleet::agent::fixtures {

// The boot time the fixtures' events are timed from.
inline constexpr int64_t kBoot = 1'700'000'000'000;

// The content of testdata/`name`.
inline std::string ReadFixture(const std::string& name) {
  std::ifstream in(absl::StrCat(KFLEET_KMSG_TESTDATA, "/", name), std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The events of a kmsg or dmesg fixture, fed in order and flushed at the end.
inline std::vector<v1::KernelEvent> EventsOf(const std::string& name) {
  absl::StatusOr<std::vector<KmsgRecord>> records = ParseKmsgText(ReadFixture(name));
  EXPECT_TRUE(records.ok()) << name << ": " << records.status();
  KernelEventParser parser("boot-x", kBoot);
  std::vector<v1::KernelEvent> events;
  for (const KmsgRecord& record : records.value_or(std::vector<KmsgRecord>())) {
    for (v1::KernelEvent& e : parser.Feed(record)) events.push_back(std::move(e));
  }
  for (v1::KernelEvent& e : parser.Flush()) events.push_back(std::move(e));
  return events;
}

// An OomKill from its text format.
inline v1::OomKill Oom(const std::string& text) {
  v1::OomKill oom;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &oom)) << text;
  return oom;
}

// Expects `event` to be the OOM kill of record `seq`, timed kBoot + `time_ms`, described by
// `oom_text` exactly.
inline void ExpectOom(const v1::KernelEvent& event, uint64_t seq, int64_t time_ms,
                      const std::string& oom_text) {
  EXPECT_EQ(event.kind(), "oom");
  EXPECT_EQ(event.kmsg_seq(), seq);
  EXPECT_EQ(event.time_unix_ms(), kBoot + time_ms);
  EXPECT_EQ(event.boot_id(), "boot-x");
  v1::OomKill expected = Oom(oom_text);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(event.oom(), expected))
      << "got:\n"
      << event.oom().DebugString() << "want:\n"
      << expected.DebugString();
}

// The lines of the event's detail.
inline std::vector<std::string> DetailLines(const v1::KernelEvent& event) {
  if (event.detail().empty()) return {};
  return absl::StrSplit(event.detail(), '\n');
}

}  // namespace kfleet::agent::fixtures

#endif  // KFLEET_AGENT_KMSG_FIXTURE_EVENTS_H_
