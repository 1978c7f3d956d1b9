#include "agent/kmsg/kmsg_reader.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "agent/kmsg/fake_kmsg_source.h"
#include "agent/kmsg/kmsg_cursor.h"

namespace kfleet::agent {
namespace {

using ::testing::ElementsAre;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kfleet-kmsg-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string Record(uint64_t seq, const std::string& message = "msg") {
  return absl::StrCat("6,", seq, ",", seq * 1000, ",-;", message, "\n");
}

// A reader over a fake source; `source` is left pointing at the fake.
std::unique_ptr<KmsgReader> FakeReader(FakeKmsgSource** source) {
  auto fake = std::make_unique<FakeKmsgSource>();
  *source = fake.get();
  absl::StatusOr<std::unique_ptr<KmsgReader>> reader = KmsgReader::Create(std::move(fake));
  EXPECT_TRUE(reader.ok()) << reader.status();
  return *std::move(reader);
}

// Every seq `reader` delivers until it has nothing for `wait`.
std::vector<uint64_t> DrainSeqs(KmsgReader& reader, absl::Duration wait = absl::ZeroDuration()) {
  std::vector<uint64_t> seqs;
  while (true) {
    absl::StatusOr<std::optional<KmsgRecord>> next = reader.Next(wait);
    EXPECT_TRUE(next.ok()) << next.status();
    if (!next.ok() || !next->has_value()) return seqs;
    seqs.push_back((*next)->seq);
  }
}

void WriteFile(const std::string& path, const std::string& data, bool append = false) {
  std::ofstream(path, std::ios::binary | (append ? std::ios::app : std::ios::trunc)) << data;
}

// Validates that records come out in order, parsed, and that Next times out with nullopt.
TEST(KmsgReaderTest, DeliversRecordsThenTimesOut) {
  FakeKmsgSource* source;
  std::unique_ptr<KmsgReader> reader = FakeReader(&source);
  source->AddRecord(Record(1, "first"));
  source->AddRecord(Record(2, "second"));
  absl::StatusOr<std::optional<KmsgRecord>> first = reader->Next(absl::ZeroDuration());
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->message, "first");
  EXPECT_THAT(DrainSeqs(*reader, absl::Milliseconds(30)), ElementsAre(2));
  EXPECT_EQ(reader->last_seq(), 2u);
  EXPECT_EQ(reader->lost(), 0u);
}

// Validates the EPIPE of /dev/kmsg: counted as an overrun, reading goes on at the oldest record
// left, and the records skipped count as lost.
TEST(KmsgReaderTest, CountsRecordsOverwrittenBeforeRead) {
  FakeKmsgSource* source;
  std::unique_ptr<KmsgReader> reader = FakeReader(&source);
  source->AddRecord(Record(1));
  source->AddRecord(Record(2));
  source->AddError(EPIPE);
  source->AddRecord(Record(7));
  source->AddRecord(Record(8));
  EXPECT_THAT(DrainSeqs(*reader), ElementsAre(1, 2, 7, 8));
  EXPECT_EQ(reader->overruns(), 1u);
  EXPECT_EQ(reader->lost(), 4u);
}

// Validates that a record that does not parse is skipped and counted, and that reading goes on.
TEST(KmsgReaderTest, SkipsMalformedRecords) {
  FakeKmsgSource* source;
  std::unique_ptr<KmsgReader> reader = FakeReader(&source);
  source->AddRecord("garbage without header\n");
  source->AddRecord(Record(3));
  EXPECT_THAT(DrainSeqs(*reader), ElementsAre(3));
  EXPECT_EQ(reader->malformed(), 1u);
}

// Validates that an error other than "nothing ready" and EPIPE ends the stream with a status.
TEST(KmsgReaderTest, ReportsReadErrors) {
  FakeKmsgSource* source;
  std::unique_ptr<KmsgReader> reader = FakeReader(&source);
  source->AddError(EIO);
  absl::StatusOr<std::optional<KmsgRecord>> next = reader->Next(absl::ZeroDuration());
  ASSERT_FALSE(next.ok());
  EXPECT_THAT(next.status().message(), ::testing::HasSubstr("read kmsg"));
}

// Validates SeekAfter: records up to the cursor are skipped, records the kernel no longer holds
// count as lost, and records never come twice.
TEST(KmsgReaderTest, SeekAfterSkipsWhatWasDelivered) {
  FakeKmsgSource* source;
  std::unique_ptr<KmsgReader> reader = FakeReader(&source);
  reader->SeekAfter(3);
  for (uint64_t seq : {1, 2, 3, 4, 5, 5, 4}) source->AddRecord(Record(seq));
  EXPECT_THAT(DrainSeqs(*reader), ElementsAre(4, 5));
  EXPECT_EQ(reader->lost(), 0u);

  std::unique_ptr<KmsgReader> after_wrap = FakeReader(&source);
  after_wrap->SeekAfter(3);
  source->AddRecord(Record(6));
  EXPECT_THAT(DrainSeqs(*after_wrap), ElementsAre(6));
  EXPECT_EQ(after_wrap->lost(), 2u);
}

// Validates resuming through a saved cursor: the same boot continues after it without
// duplicates, another boot reads its log from the start.
TEST(KmsgReaderTest, ResumesFromSavedCursor) {
  TempDir dir;
  const std::string log = dir.path() + "/kmsg";
  const std::string cursor_path = dir.path() + "/cursor";
  WriteFile(log, Record(1) + Record(2) + Record(3) + Record(4) + Record(5));

  absl::StatusOr<std::unique_ptr<KmsgReader>> first = KmsgReader::Open(log);
  ASSERT_TRUE(first.ok()) << first.status();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*first)->Next(absl::ZeroDuration()).ok());
  ASSERT_TRUE(SaveCursor(cursor_path, "boot-a", *(*first)->last_seq()).ok());

  absl::StatusOr<KmsgCursor> cursor = LoadCursor(cursor_path);
  ASSERT_TRUE(cursor.ok()) << cursor.status();
  absl::StatusOr<std::unique_ptr<KmsgReader>> same_boot = KmsgReader::Open(log);
  ASSERT_TRUE(same_boot.ok());
  std::optional<uint64_t> after = ResumeAfter(*cursor, "boot-a");
  ASSERT_EQ(after, 3u);
  (*same_boot)->SeekAfter(*after);
  EXPECT_THAT(DrainSeqs(**same_boot), ElementsAre(4, 5));

  EXPECT_EQ(ResumeAfter(*cursor, "boot-b"), std::nullopt);
  absl::StatusOr<std::unique_ptr<KmsgReader>> new_boot = KmsgReader::Open(log);
  ASSERT_TRUE(new_boot.ok());
  EXPECT_THAT(DrainSeqs(**new_boot), ElementsAre(1, 2, 3, 4, 5));
}

// Validates the file form: dictionary lines stay with their record, empty lines are skipped, an
// oversized line is dropped and counted, and lines appended later are picked up.
TEST(KmsgReaderTest, ReadsRecordFilesAndFollowsThem) {
  TempDir dir;
  const std::string log = dir.path() + "/kmsg";
  WriteFile(log, "6,1,10,-;with dict\n SUBSYSTEM=pci\n DEVICE=+pci:0000:00:01.0\n\n" +
                     absl::StrCat("6,2,20,-;", std::string(70000, 'x'), "\n") + Record(3));
  absl::StatusOr<std::unique_ptr<KmsgReader>> reader = KmsgReader::Open(log);
  ASSERT_TRUE(reader.ok()) << reader.status();
  absl::StatusOr<std::optional<KmsgRecord>> first = (*reader)->Next(absl::ZeroDuration());
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->dict.size(), 2u);
  EXPECT_THAT(DrainSeqs(**reader), ElementsAre(3));
  EXPECT_EQ((*reader)->malformed(), 1u);

  WriteFile(log, Record(4), /*append=*/true);
  EXPECT_THAT(DrainSeqs(**reader, absl::Milliseconds(200)), ElementsAre(4));
}

// Validates that a record written to a FIFO wakes a Next that waits on it.
TEST(KmsgReaderTest, WakesWhenAFifoGetsARecord) {
  TempDir dir;
  const std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  absl::StatusOr<std::unique_ptr<KmsgReader>> reader = KmsgReader::Open(fifo);
  ASSERT_TRUE(reader.ok()) << reader.status();
  int writer = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(writer, 0);
  absl::StatusOr<std::optional<KmsgRecord>> got;
  absl::Notification done;
  std::thread waiter([&] {
    got = (*reader)->Next(absl::Seconds(30));
    done.Notify();
  });
  const std::string record = Record(9, "through the fifo");
  ASSERT_EQ(::write(writer, record.data(), record.size()), static_cast<ssize_t>(record.size()));
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  waiter.join();
  ::close(writer);
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status();
  EXPECT_EQ((*got)->message, "through the fifo");
}

// Validates that Stop() from another thread wakes a Next that waits for ever, and that every
// later Next is cancelled too.
TEST(KmsgReaderTest, StopWakesABlockedNext) {
  TempDir dir;
  const std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  absl::StatusOr<std::unique_ptr<KmsgReader>> reader = KmsgReader::Open(fifo);
  ASSERT_TRUE(reader.ok()) << reader.status();
  int writer = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);  // so that reads say EAGAIN
  ASSERT_GE(writer, 0);
  absl::StatusOr<std::optional<KmsgRecord>> got;
  absl::Notification done;
  std::thread waiter([&] {
    got = (*reader)->Next(absl::InfiniteDuration());
    done.Notify();
  });
  EXPECT_FALSE(done.WaitForNotificationWithTimeout(absl::Milliseconds(100)));
  (*reader)->Stop();
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  waiter.join();
  ::close(writer);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ((*reader)->Next(absl::ZeroDuration()).status().code(), absl::StatusCode::kCancelled);
}

// Validates against this machine's kernel: /dev/kmsg's records parse, in increasing seq, with a
// buffer the kernel accepts; a second reader resumed after the last one repeats none.
TEST(KmsgReaderTest, ReadsThisMachinesDevKmsg) {
  absl::StatusOr<std::unique_ptr<KmsgReader>> reader = KmsgReader::Open("/dev/kmsg");
  if (!reader.ok()) {
    GTEST_SKIP() << "/dev/kmsg is not readable here: " << reader.status();
  }
  std::vector<uint64_t> seqs;
  while (seqs.size() < 100000) {
    absl::StatusOr<std::optional<KmsgRecord>> next = (*reader)->Next(absl::ZeroDuration());
    if (!next.ok() && next.status().code() == absl::StatusCode::kPermissionDenied) {
      GTEST_SKIP() << "reading /dev/kmsg is not permitted here: " << next.status();
    }
    ASSERT_TRUE(next.ok()) << next.status();
    if (!next->has_value()) break;
    seqs.push_back((*next)->seq);
  }
  ASSERT_FALSE(seqs.empty());
  for (size_t i = 1; i < seqs.size(); ++i) ASSERT_LT(seqs[i - 1], seqs[i]);
  EXPECT_EQ((*reader)->malformed(), 0u);

  absl::StatusOr<std::unique_ptr<KmsgReader>> resumed = KmsgReader::Open("/dev/kmsg");
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  (*resumed)->SeekAfter(seqs.back());
  absl::StatusOr<std::optional<KmsgRecord>> next = (*resumed)->Next(absl::ZeroDuration());
  ASSERT_TRUE(next.ok()) << next.status();
  if (next->has_value()) {
    EXPECT_GT((*next)->seq, seqs.back());
  }
}

// Validates that caught_up() turns true only once a read found nothing waiting: the records the
// source held at first are read before it, a record written later after it; a file at its end
// counts as caught up too.
TEST(KmsgReaderTest, CaughtUpOnceTheBacklogIsRead) {
  FakeKmsgSource* source;
  std::unique_ptr<KmsgReader> reader = FakeReader(&source);
  source->AddRecord(Record(1));
  source->AddRecord(Record(2));
  for (uint64_t seq : {1, 2}) {
    absl::StatusOr<std::optional<KmsgRecord>> next = reader->Next(absl::ZeroDuration());
    ASSERT_TRUE(next.ok() && next->has_value());
    EXPECT_EQ((*next)->seq, seq);
    EXPECT_FALSE(reader->caught_up()) << seq;
  }
  EXPECT_THAT(DrainSeqs(*reader), ElementsAre());
  EXPECT_TRUE(reader->caught_up());
  source->AddRecord(Record(3));
  EXPECT_THAT(DrainSeqs(*reader), ElementsAre(3));
  EXPECT_TRUE(reader->caught_up());

  TempDir dir;
  WriteFile(dir.path() + "/kmsg", Record(7));
  absl::StatusOr<std::unique_ptr<KmsgReader>> file = KmsgReader::Open(dir.path() + "/kmsg");
  ASSERT_TRUE(file.ok()) << file.status();
  absl::StatusOr<std::optional<KmsgRecord>> next = (*file)->Next(absl::ZeroDuration());
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_FALSE((*file)->caught_up());
  EXPECT_THAT(DrainSeqs(**file), ElementsAre());
  EXPECT_TRUE((*file)->caught_up());
}

// Validates the boot time estimate: in the past, and steady from one call to the next.
TEST(KmsgReaderTest, EstimatesBootTime) {
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  const int64_t boot_ms = EstimateBootTimeUnixMs();
  EXPECT_LE(boot_ms, now_ms);
  EXPECT_GT(boot_ms, 0);
  EXPECT_NEAR(static_cast<double>(EstimateBootTimeUnixMs()), static_cast<double>(boot_ms), 50);
}

}  // namespace
}  // namespace kfleet::agent
