#include "agent/outbox/outbox.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace kfleet::agent {
namespace {

using kfleet::v1::Ack;
using kfleet::v1::Items;
using kfleet::v1::LogChunk;
using kfleet::v1::LogStream;
using kfleet::v1::SequencedItem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kfleet-outbox-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

LogChunk Chunk(const std::string& command_id, LogStream stream, uint64_t offset,
               const std::string& data) {
  LogChunk chunk;
  chunk.set_command_id(command_id);
  chunk.set_stream(stream);
  chunk.set_offset(offset);
  chunk.set_data(data);
  return chunk;
}

SequencedItem Accepted(const std::string& command_id) {
  SequencedItem item;
  item.mutable_accepted()->set_command_id(command_id);
  return item;
}

Ack AckLog(const std::string& command_id, LogStream stream, uint64_t offset, uint64_t seq = 0) {
  Ack ack;
  ack.set_seq(seq);
  kfleet::v1::LogOffset* log = ack.add_logs();
  log->set_command_id(command_id);
  log->set_stream(stream);
  log->set_offset(offset);
  return ack;
}

Ack AckSeq(uint64_t seq) {
  Ack ack;
  ack.set_seq(seq);
  return ack;
}

// Bytes a log chunk occupies in the outbox's accounting.
uint64_t RecordBytes(const LogChunk& chunk) {
  kfleet::v1::OutboxRecord record;
  *record.mutable_log() = chunk;
  return record.ByteSizeLong();
}

std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::string name = entry.path().filename();
    if (entry.path().extension() == ".seg") names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::unique_ptr<Outbox> MustOpen(const OutboxOptions& options) {
  absl::StatusOr<std::unique_ptr<Outbox>> outbox = Outbox::Open(options);
  EXPECT_TRUE(outbox.ok()) << outbox.status();
  return outbox.ok() ? std::move(*outbox) : nullptr;
}

// Describes one batch: "cmd/stream@offset:data" for chunks, "seq N" for sequenced items.
std::vector<std::string> Describe(const Items& items) {
  std::vector<std::string> out;
  for (const LogChunk& c : items.logs()) {
    out.push_back(absl::StrCat(c.command_id(), "/", c.stream(), "@", c.offset(), ":", c.data()));
  }
  for (const SequencedItem& s : items.sequenced()) out.push_back(absl::StrCat("seq ", s.seq()));
  return out;
}

// Everything NextBatch has to send right now, batch after batch.
std::vector<std::string> Drain(Outbox& outbox) {
  std::vector<std::string> out;
  Items items;
  while (outbox.NextBatch(&items, 1 << 20, absl::ZeroDuration())) {
    for (std::string& s : Describe(items)) out.push_back(std::move(s));
    items.Clear();
  }
  return out;
}

// Validates that records come out in append order, that a batch never puts a chunk after a
// sequenced item, that batches respect max_bytes but hold at least one record, and that an idle
// NextBatch times out.
TEST(OutboxTest, NextBatchReturnsAppendOrder) {
  TempDir dir;
  std::unique_ptr<Outbox> outbox = MustOpen({dir.path()});
  ASSERT_TRUE(outbox->AppendLog(Chunk("c1", kfleet::v1::STDOUT, 0, "aaaa")).ok());
  ASSERT_TRUE(outbox->AppendLog(Chunk("c1", kfleet::v1::STDERR, 0, "bb")).ok());
  EXPECT_EQ(*outbox->AppendSequenced(Accepted("c1")), 1u);
  ASSERT_TRUE(outbox->AppendLog(Chunk("c1", kfleet::v1::STDOUT, 4, "cc")).ok());
  EXPECT_EQ(*outbox->AppendSequenced(Accepted("c2")), 2u);
  EXPECT_EQ(outbox->last_seq(), 2u);

  Items batch;
  ASSERT_TRUE(outbox->NextBatch(&batch, 1 << 20, absl::ZeroDuration()));
  EXPECT_THAT(Describe(batch), ElementsAre("c1/1@0:aaaa", "c1/2@0:bb", "seq 1"));
  batch.Clear();
  ASSERT_TRUE(outbox->NextBatch(&batch, 1 << 20, absl::ZeroDuration()));
  EXPECT_THAT(Describe(batch), ElementsAre("c1/1@4:cc", "seq 2"));
  batch.Clear();
  EXPECT_FALSE(outbox->NextBatch(&batch, 1 << 20, absl::ZeroDuration()));
  EXPECT_FALSE(outbox->NextBatch(&batch, 1 << 20, absl::Milliseconds(10)));

  outbox->Rewind();
  ASSERT_TRUE(outbox->NextBatch(&batch, 1, absl::ZeroDuration()));
  EXPECT_THAT(Describe(batch), ElementsAre("c1/1@0:aaaa"));
}

// Validates that a NextBatch waiting for records is woken by an append from another thread.
TEST(OutboxTest, NextBatchWaitsForAppend) {
  TempDir dir;
  std::unique_ptr<Outbox> outbox = MustOpen({dir.path()});
  Items batch;
  bool got = false;
  std::thread sender([&] { got = outbox->NextBatch(&batch, 1 << 20, absl::Seconds(60)); });
  ASSERT_TRUE(outbox->AppendLog(Chunk("c1", kfleet::v1::STDOUT, 0, "x")).ok());
  sender.join();
  EXPECT_TRUE(got);
  EXPECT_THAT(Describe(batch), ElementsAre("c1/1@0:x"));
}

// Validates that after Rewind the sender gets every unacknowledged record again, and only those.
TEST(OutboxTest, RewindResendsUnacknowledged) {
  TempDir dir;
  std::unique_ptr<Outbox> outbox = MustOpen({dir.path()});
  ASSERT_TRUE(outbox->AppendLog(Chunk("c1", kfleet::v1::STDOUT, 0, "one")).ok());
  ASSERT_TRUE(outbox->AppendSequenced(Accepted("c1")).ok());
  ASSERT_TRUE(outbox->AppendLog(Chunk("c1", kfleet::v1::STDOUT, 3, "two")).ok());
  EXPECT_THAT(Drain(*outbox), ElementsAre("c1/1@0:one", "seq 1", "c1/1@3:two"));
  EXPECT_THAT(Drain(*outbox), IsEmpty());

  outbox->Acknowledge(AckLog("c1", kfleet::v1::STDOUT, 3));
  outbox->Rewind();
  EXPECT_THAT(Drain(*outbox), ElementsAre("seq 1", "c1/1@3:two"));
  outbox->Acknowledge(AckSeq(1));
  outbox->Rewind();
  EXPECT_THAT(Drain(*outbox), ElementsAre("c1/1@3:two"));
}

// Validates that acknowledgements drop records, free bytes, delete fully acknowledged segment files
// except the one being written, and that acks about unknown records are ignored.
TEST(OutboxTest, AcknowledgeDropsRecordsAndDeletesSegments) {
  TempDir dir;
  // A segment ends after every record.
  std::unique_ptr<Outbox> outbox = MustOpen({dir.path(), 1 << 20, 1});
  const std::string data(10, 'x');
  std::vector<uint64_t> bytes;  // of each record, in append order
  for (uint64_t offset = 0; offset < 40; offset += 10) {
    LogChunk chunk = Chunk("c1", kfleet::v1::STDOUT, offset, data);
    ASSERT_TRUE(outbox->AppendLog(chunk).ok());
    bytes.push_back(RecordBytes(chunk));
  }
  LogChunk other = Chunk("c2", kfleet::v1::STDERR, 0, data);
  ASSERT_TRUE(outbox->AppendLog(other).ok());
  bytes.push_back(RecordBytes(other));
  const uint64_t all = bytes[0] + bytes[1] + bytes[2] + bytes[3] + bytes[4];
  EXPECT_EQ(outbox->unacked_bytes(), all);
  EXPECT_THAT(SegmentFiles(dir.path()), ElementsAre("00000001.seg", "00000002.seg", "00000003.seg",
                                                    "00000004.seg", "00000005.seg"));
  EXPECT_THAT(outbox->PendingCommandIds(), ElementsAre("c1", "c2"));

  // Unknown command, unknown stream, and a seq never assigned: nothing changes.
  outbox->Acknowledge(AckLog("nope", kfleet::v1::STDOUT, 100, 99));
  outbox->Acknowledge(AckLog("c1", kfleet::v1::KMSG, 100));
  EXPECT_EQ(outbox->unacked_bytes(), all);
  EXPECT_EQ(outbox->last_seq(), 0u);

  outbox->Acknowledge(AckLog("c1", kfleet::v1::STDOUT, 25));  // covers 0 and 10, not 20
  EXPECT_EQ(outbox->unacked_bytes(), all - bytes[0] - bytes[1]);
  EXPECT_THAT(SegmentFiles(dir.path()),
              ElementsAre("00000003.seg", "00000004.seg", "00000005.seg"));

  outbox->Acknowledge(AckLog("c2", kfleet::v1::STDERR, 10));
  EXPECT_THAT(outbox->PendingCommandIds(), ElementsAre("c1"));
  // c2's record sits in the segment being written, which stays.
  EXPECT_THAT(SegmentFiles(dir.path()),
              ElementsAre("00000003.seg", "00000004.seg", "00000005.seg"));
  outbox->Acknowledge(AckLog("c1", kfleet::v1::STDOUT, 40));
  EXPECT_EQ(outbox->unacked_bytes(), 0u);
  EXPECT_THAT(outbox->PendingCommandIds(), IsEmpty());
  EXPECT_THAT(SegmentFiles(dir.path()), ElementsAre("00000005.seg"));
  EXPECT_THAT(Drain(*outbox), IsEmpty());

  // Acks for seqs not assigned were ignored: numbering still starts at 1.
  EXPECT_EQ(*outbox->AppendSequenced(Accepted("c3")), 1u);
}

// Validates that reopening recovers exactly the unacknowledged records and that sequence numbers
// continue, never repeating, even once everything was acknowledged and the segments deleted.
TEST(OutboxTest, ReopenRecoversUnackedAndSeqContinues) {
  TempDir dir;
  {
    std::unique_ptr<Outbox> outbox = MustOpen({dir.path()});
    ASSERT_TRUE(outbox->AppendLog(Chunk("c1", kfleet::v1::STDOUT, 0, "hello")).ok());
    EXPECT_EQ(*outbox->AppendSequenced(Accepted("c1")), 1u);
    ASSERT_TRUE(outbox->AppendLog(Chunk("c1", kfleet::v1::STDOUT, 5, "world")).ok());
    EXPECT_EQ(*outbox->AppendSequenced(Accepted("c2")), 2u);
    outbox->Acknowledge(AckLog("c1", kfleet::v1::STDOUT, 5, 1));
  }
  {
    std::unique_ptr<Outbox> outbox = MustOpen({dir.path()});
    EXPECT_EQ(outbox->last_seq(), 2u);
    EXPECT_THAT(outbox->PendingCommandIds(), ElementsAre("c1"));
    EXPECT_THAT(Drain(*outbox), ElementsAre("c1/1@5:world", "seq 2"));
    EXPECT_EQ(*outbox->AppendSequenced(Accepted("c3")), 3u);
    outbox->Acknowledge(AckLog("c1", kfleet::v1::STDOUT, 10, 3));
    EXPECT_EQ(outbox->unacked_bytes(), 0u);
  }
  {
    // Every record was acknowledged, so opening deletes every segment...
    std::unique_ptr<Outbox> outbox = MustOpen({dir.path()});
    EXPECT_THAT(SegmentFiles(dir.path()), IsEmpty());
    EXPECT_THAT(Drain(*outbox), IsEmpty());
    EXPECT_THAT(outbox->PendingCommandIds(), IsEmpty());
    EXPECT_EQ(outbox->last_seq(), 3u);
  }
  {
    // ...and the counter still survives.
    std::unique_ptr<Outbox> outbox = MustOpen({dir.path()});
    EXPECT_EQ(outbox->last_seq(), 3u);
    EXPECT_EQ(*outbox->AppendSequenced(Accepted("c4")), 4u);
  }
}

// Validates that a record torn by a crash mid-write at the end of the last segment is cut off on
// reopen, keeping every whole record before it.
TEST(OutboxTest, TornTailIsTruncatedOnReopen) {
  TempDir dir;
  {
    std::unique_ptr<Outbox> outbox = MustOpen({dir.path()});
    for (uint64_t i = 0; i < 3; ++i) {
      ASSERT_TRUE(outbox->AppendLog(Chunk("c1", kfleet::v1::STDOUT, i, "x")).ok());
    }
  }
  ASSERT_THAT(SegmentFiles(dir.path()), ElementsAre("00000001.seg"));
  const std::string path = dir.path() + "/00000001.seg";
  const uintmax_t whole = std::filesystem::file_size(path);
  {
    // A header promising 50 bytes, then only 4 of them.
    std::ofstream f(path, std::ios::binary | std::ios::app);
    f.write(
        "\x32\0\0\0\x12\x34\x56\x78"
        "abcd",
        12);
  }
  {
    std::unique_ptr<Outbox> outbox = MustOpen({dir.path()});
    EXPECT_THAT(Drain(*outbox), ElementsAre("c1/1@0:x", "c1/1@1:x", "c1/1@2:x"));
  }
  EXPECT_EQ(std::filesystem::file_size(path), whole);

  // Half of the last record.
  std::filesystem::resize_file(path, whole - 3);
  {
    std::unique_ptr<Outbox> outbox = MustOpen({dir.path()});
    EXPECT_THAT(Drain(*outbox), ElementsAre("c1/1@0:x", "c1/1@1:x"));
  }
}

// Validates that a damaged record with more data after it is an error that names the file, rather
// than a silent loss of the records that follow.
TEST(OutboxTest, DamagedMiddleRecordIsAnErrorNamingTheFile) {
  TempDir dir;
  {
    std::unique_ptr<Outbox> outbox = MustOpen({dir.path()});
    for (uint64_t i = 0; i < 3; ++i) {
      ASSERT_TRUE(outbox->AppendLog(Chunk("c1", kfleet::v1::STDOUT, i, "payload")).ok());
    }
  }
  const std::string path = dir.path() + "/00000001.seg";
  {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(10);  // inside the first record's payload
    f.put('\xff');
  }
  absl::StatusOr<std::unique_ptr<Outbox>> outbox = Outbox::Open({dir.path()});
  ASSERT_FALSE(outbox.ok());
  EXPECT_EQ(outbox.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(outbox.status().message()), HasSubstr(path));
  EXPECT_THAT(std::string(outbox.status().message()), HasSubstr("byte offset 0"));
}

// Validates that a full outbox makes AppendLog wait until an acknowledgement frees space, that
// AppendSequenced never waits, and that no byte is lost.
TEST(OutboxTest, FullOutboxBlocksAppendUntilAcknowledged) {
  TempDir dir;
  const std::string data(100, 'd');
  const uint64_t record = RecordBytes(Chunk("c1", kfleet::v1::STDOUT, 100, data));
  std::unique_ptr<Outbox> outbox = MustOpen({dir.path(), 2 * record + 20});
  ASSERT_TRUE(outbox->AppendLog(Chunk("c1", kfleet::v1::STDOUT, 0, data)).ok());
  ASSERT_TRUE(outbox->AppendLog(Chunk("c1", kfleet::v1::STDOUT, 100, data)).ok());

  absl::Notification appended;
  absl::Status status;
  std::thread appender([&] {
    status = outbox->AppendLog(Chunk("c1", kfleet::v1::STDOUT, 200, data));
    appended.Notify();
  });
  // It cannot finish: nothing has been acknowledged.
  EXPECT_FALSE(appended.WaitForNotificationWithTimeout(absl::Milliseconds(100)));
  EXPECT_EQ(*outbox->AppendSequenced(Accepted("c1")), 1u);

  Items batch;  // NextBatch adds to it, so it ends up holding everything sent
  ASSERT_TRUE(outbox->NextBatch(&batch, 1 << 20, absl::ZeroDuration()));
  outbox->Acknowledge(AckLog("c1", kfleet::v1::STDOUT, 100));
  appended.WaitForNotification();
  appender.join();
  EXPECT_TRUE(status.ok()) << status;

  ASSERT_TRUE(outbox->NextBatch(&batch, 1 << 20, absl::ZeroDuration()));
  std::string received;
  for (const LogChunk& c : batch.logs()) {
    EXPECT_EQ(c.offset(), received.size());
    received += c.data();
  }
  EXPECT_EQ(received, data + data + data);
}

// Validates that several appenders, a state thread and a sender that acknowledges late and rewinds
// move every byte and every seq through a small outbox exactly once, in order.
TEST(OutboxTest, ConcurrentAppendersLoseNothing) {
  TempDir dir;
  std::unique_ptr<Outbox> outbox = MustOpen({dir.path(), 4096, 2048});
  constexpr int kAppenders = 4;
  constexpr int kChunks = 200;
  constexpr uint64_t kStates = 50;
  std::map<std::string, std::string> sent;
  for (int a = 0; a < kAppenders; ++a) {
    std::string& text = sent[absl::StrCat("c", a)];
    for (int i = 0; i < kChunks; ++i) text += std::string(1 + (i * 37 + a) % 300, 'a' + (i % 26));
  }

  std::vector<std::thread> threads;
  for (int a = 0; a < kAppenders; ++a) {
    threads.emplace_back([&, a] {
      const std::string id = absl::StrCat("c", a);
      const std::string& text = sent.at(id);
      size_t offset = 0;
      for (int i = 0; i < kChunks; ++i) {
        size_t size = 1 + (i * 37 + a) % 300;
        EXPECT_TRUE(
            outbox->AppendLog(Chunk(id, kfleet::v1::STDOUT, offset, text.substr(offset, size)))
                .ok());
        offset += size;
      }
    });
  }
  threads.emplace_back([&] {
    for (uint64_t i = 0; i < kStates; ++i) EXPECT_TRUE(outbox->AppendSequenced(Accepted("s")).ok());
  });

  size_t expected = 0;
  for (const auto& [id, text] : sent) expected += text.size();
  std::map<std::string, std::string> received;
  size_t total = 0;
  uint64_t last_seq = 0;
  auto acknowledge_all = [&] {
    Ack ack;
    ack.set_seq(last_seq);
    for (const auto& [id, text] : received) {
      kfleet::v1::LogOffset* log = ack.add_logs();
      log->set_command_id(id);
      log->set_stream(kfleet::v1::STDOUT);
      log->set_offset(text.size());
    }
    outbox->Acknowledge(ack);
  };
  for (int n = 1; total < expected || last_seq < kStates; ++n) {
    Items batch;
    if (!outbox->NextBatch(&batch, 1024, absl::ZeroDuration())) {
      // Nothing pending: appenders may be waiting for space, so acknowledge before waiting.
      acknowledge_all();
      if (!outbox->NextBatch(&batch, 1024, absl::Seconds(30))) {
        ADD_FAILURE() << "no progress after " << total << " of " << expected << " bytes";
        outbox->Close();
        break;
      }
    }
    for (const LogChunk& c : batch.logs()) {
      std::string& have = received[c.command_id()];
      if (c.offset() < have.size()) {  // resent after a rewind
        EXPECT_EQ(have.substr(c.offset(), c.data().size()), c.data());
        continue;
      }
      EXPECT_EQ(c.offset(), have.size()) << c.command_id();
      have += c.data();
      total += c.data().size();
    }
    for (const SequencedItem& s : batch.sequenced()) {
      if (s.seq() <= last_seq) continue;
      EXPECT_EQ(s.seq(), last_seq + 1);
      last_seq = s.seq();
    }
    if (n % 2 == 0) acknowledge_all();
    if (n % 5 == 0) outbox->Rewind();
  }
  for (std::thread& t : threads) t.join();
  acknowledge_all();
  EXPECT_EQ(outbox->unacked_bytes(), 0u);
  EXPECT_LE(SegmentFiles(dir.path()).size(), 1u);  // only the one being written
  EXPECT_EQ(received, sent);
  EXPECT_EQ(last_seq, kStates);
}

// Validates that Close wakes an appender blocked on a full outbox and a waiting sender, and that
// later calls fail fast.
TEST(OutboxTest, CloseWakesBlockedCallers) {
  TempDir dir;
  std::unique_ptr<Outbox> outbox = MustOpen({dir.path(), 1});
  ASSERT_TRUE(outbox->AppendLog(Chunk("c1", kfleet::v1::STDOUT, 0, "first")).ok());
  Items drained;
  ASSERT_TRUE(outbox->NextBatch(&drained, 1 << 20, absl::ZeroDuration()));

  absl::Status status;
  std::thread appender(
      [&] { status = outbox->AppendLog(Chunk("c1", kfleet::v1::STDOUT, 5, "second")); });
  bool got = true;
  std::thread sender([&] {
    Items batch;
    got = outbox->NextBatch(&batch, 1 << 20, absl::Hours(1));
  });
  outbox->Close();
  appender.join();
  sender.join();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_FALSE(got);
  EXPECT_EQ(outbox->AppendLog(Chunk("c1", kfleet::v1::STDOUT, 5, "x")).code(),
            absl::StatusCode::kCancelled);
  EXPECT_EQ(outbox->AppendSequenced(Accepted("c1")).status().code(), absl::StatusCode::kCancelled);
  Items batch;
  EXPECT_FALSE(outbox->NextBatch(&batch, 1 << 20, absl::Hours(1)));
}

// Validates that a chunk bigger than max_bytes is accepted into an empty outbox (no deadlock), and
// that malformed chunks are refused.
TEST(OutboxTest, OversizedChunkAcceptedWhenEmpty) {
  TempDir dir;
  std::unique_ptr<Outbox> outbox = MustOpen({dir.path(), 10});
  ASSERT_TRUE(outbox->AppendLog(Chunk("c1", kfleet::v1::STDOUT, 0, std::string(1000, 'z'))).ok());
  EXPECT_GT(outbox->unacked_bytes(), 1000u);

  absl::Status too_big = outbox->AppendLog(
      Chunk("c1", kfleet::v1::STDOUT, 1000, std::string(kMaxLogChunkBytes + 1, 'z')));
  EXPECT_EQ(too_big.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_big.message()), HasSubstr("c1"));
  EXPECT_EQ(outbox->AppendLog(Chunk("", kfleet::v1::STDOUT, 0, "x")).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(outbox->AppendSequenced(SequencedItem()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Validates that a second Outbox cannot open a directory that is already in use.
TEST(OutboxTest, DirectoryIsExclusive) {
  TempDir dir;
  std::unique_ptr<Outbox> outbox = MustOpen({dir.path()});
  absl::StatusOr<std::unique_ptr<Outbox>> second = Outbox::Open({dir.path()});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr(dir.path()));
}

}  // namespace
}  // namespace kfleet::agent

namespace kfleet::agent {
namespace {

// Validates that a Welcome's last_seq from an earlier life of the host moves numbering past it,
// durably across reopen, and never backwards.
TEST(OutboxAdvanceSeqTest, NumbersAfterTheControllersSeq) {
  char tmpl[] = "/tmp/kfleet-outbox-adv-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  {
    auto outbox = Outbox::Open(OutboxOptions{dir});
    ASSERT_TRUE(outbox.ok());
    (*outbox)->AdvanceSeq(57);
    kfleet::v1::SequencedItem item;
    item.mutable_accepted()->set_command_id("c-1");
    EXPECT_EQ(*(*outbox)->AppendSequenced(item), 58u);
    (*outbox)->AdvanceSeq(10);
    EXPECT_EQ(*(*outbox)->AppendSequenced(item), 59u);
  }
  auto reopened = Outbox::Open(OutboxOptions{dir});
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->last_seq(), 59u);
}

}  // namespace
}  // namespace kfleet::agent
