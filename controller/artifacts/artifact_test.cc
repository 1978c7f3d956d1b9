// The artifact store end to end: a real gRPC server on 127.0.0.1 port 0 serving
// ArtifactServiceImpl over a BlobStore and ArtifactIndex in a temporary directory, spoken to by
// the generated stub (for streams the client library would never send) and by the client library
// (common/artifact_client.h). The only fake is the command owner lookup of the main store.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/artifact_client.h"
#include "common/credentials.h"
#include "common/executor.h"
#include "common/files.h"
#include "common/sha256.h"
#include "controller/artifacts/artifact_index.h"
#include "controller/artifacts/artifact_service.h"
#include "controller/artifacts/blob_store.h"
#include "kfleet/v1/artifacts.grpc.pb.h"

namespace kfleet::controller {
namespace {

namespace fs = std::filesystem;

constexpr std::chrono::seconds kRpcTimeout(10);
constexpr uint64_t kMaxBlobBytes = 8 << 20;  // a small limit, to test it without big files

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + kRpcTimeout;
}

std::string Bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

std::string Sha(const std::string& data) {
  absl::StatusOr<Sha256> h = Sha256::Create();
  h->Update(data);
  return *h->FinishHex();
}

v1::UploadHeader Header(const std::string& name, const std::string& data,
                        const std::string& command_id = "") {
  v1::UploadHeader h;
  h.set_name(name);
  h.set_kind("file");
  h.set_sha256(Sha(data));
  h.set_size(data.size());
  h.set_command_id(command_id);
  return h;
}

// Splits `data` into messages of at most 1 MiB.
std::vector<std::string> Chunks(const std::string& data) {
  std::vector<std::string> out;
  for (size_t i = 0; i < data.size(); i += kArtifactChunkBytes) {
    out.push_back(data.substr(i, kArtifactChunkBytes));
  }
  return out;
}

class ArtifactTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/kfleet-artifact-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    root_ = dir_ + "/artifacts";
    absl::StatusOr<std::unique_ptr<BlobStore>> blobs =
        BlobStore::Open(BlobStore::Options{root_, kMaxBlobBytes});
    ASSERT_TRUE(blobs.ok()) << blobs.status();
    blobs_ = std::move(*blobs);
    owners_ = {{"c-1", {"j-1", "host-a"}}, {"c-2", {"j-1", "host-b"}}, {"c-3", {"j-2", "host-a"}}};
    CommandOwnerFn owner = [this](const std::string& id) -> absl::StatusOr<CommandOwner> {
      auto it = owners_.find(id);
      if (it == owners_.end()) return absl::NotFoundError("no such command");
      return it->second;
    };
    absl::StatusOr<std::unique_ptr<ArtifactIndex>> index =
        ArtifactIndex::Open(root_ + "/index.db", blobs_.get(), owner);
    ASSERT_TRUE(index.ok()) << index.status();
    index_ = std::move(*index);
    executor_ = std::make_unique<Executor>(2);
    service_ = std::make_unique<ArtifactServiceImpl>(
        ArtifactServiceImpl::Deps{blobs_.get(), index_.get(), executor_.get()});

    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
    builder.SetMaxSendMessageSize(kMaxMessageBytes);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port, 0);
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        MakeChannel(TransportSecurity{/*insecure=*/true}, "127.0.0.1:" + std::to_string(port));
    ASSERT_TRUE(channel.ok()) << channel.status();
    stub_ = v1::ArtifactService::NewStub(*channel);
    options_.backoff_min = absl::Milliseconds(10);
    options_.backoff_max = absl::Milliseconds(100);
    options_.max_attempts = 20;
  }

  void TearDown() override {
    stub_.reset();
    // The server first (no new calls; open ones end), then the executor that finishes them.
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_.reset();
    executor_.reset();
    service_.reset();
    index_.reset();
    blobs_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string WriteTemp(const std::string& name, const std::string& data) {
    std::string path = dir_ + "/" + name;
    EXPECT_TRUE(WriteFileAtomic(path, data).ok());
    return path;
  }

  // Sends `header`, then `chunks`, then half-closes.
  grpc::Status RawUpload(const v1::UploadHeader& header, const std::vector<std::string>& chunks,
                         v1::UploadResponse* resp = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::UploadResponse ignored;
    auto writer = stub_->Upload(&ctx, resp ? resp : &ignored);
    v1::UploadRequest req;
    *req.mutable_header() = header;
    bool ok = writer->Write(req);
    for (const std::string& c : chunks) {
      if (!ok) break;
      req.set_data(c);
      ok = writer->Write(req);
    }
    if (ok) writer->WritesDone();
    return writer->Finish();
  }

  v1::StatResponse Stat(const std::string& sha256) {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::StatRequest req;
    req.set_sha256(sha256);
    v1::StatResponse resp;
    grpc::Status s = stub_->Stat(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  int BlobFiles() {
    int n = 0;
    for (const auto& e : fs::recursive_directory_iterator(root_ + "/sha256")) {
      if (e.is_regular_file()) ++n;
    }
    return n;
  }

  std::string ReadAll(const std::string& path) {
    absl::StatusOr<std::string> data = ReadFile(path, 64 << 20);
    EXPECT_TRUE(data.ok()) << data.status();
    return data.ok() ? *data : "";
  }

  std::string dir_;
  std::string root_;
  std::map<std::string, CommandOwner> owners_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<ArtifactIndex> index_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<ArtifactServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::ArtifactService::Stub> stub_;
  TransferOptions options_;
};

// Validates that data not matching the header's sha256 is refused with DATA_LOSS, and that
// nothing of it stays: Stat says not stored with no partial bytes, and no file is left on disk.
TEST_F(ArtifactTest, CorruptUploadIsDataLossAndLeavesNothing) {
  std::string data = Bytes(1500000, 1);
  std::string corrupt = data;
  corrupt[700000] ^= 0x55;
  v1::UploadHeader header = Header("vmlinuz", data);
  grpc::Status s = RawUpload(header, Chunks(corrupt));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "upload of vmlinuz: sha256 is " + Sha(corrupt) +
                                                       ", expected " + Sha(data) +
                                                       "; nothing stored"))
      << s.error_message();
  v1::StatResponse stat = Stat(Sha(data));
  EXPECT_FALSE(stat.stored());
  EXPECT_EQ(stat.partial_bytes(), 0u);
  EXPECT_FALSE(fs::exists(blobs_->PartialPath(Sha(data))));
  EXPECT_EQ(BlobFiles(), 0);
}

// Validates that more data than the header's size is DATA_LOSS and leaves no partial.
TEST_F(ArtifactTest, UploadLongerThanItsSizeIsDataLoss) {
  std::string data = Bytes(1000, 2);
  grpc::Status s = RawUpload(Header("config", data), {data, "x"});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DATA_LOSS) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "more data than the declared size of 1000"));
  EXPECT_FALSE(fs::exists(blobs_->PartialPath(Sha(data))));
}

// Validates that an upload whose stream is cancelled halfway keeps what arrived (Stat's
// partial_bytes), that a resume from the wrong offset is refused naming both numbers, and that
// UploadFile resumes from partial_bytes, sending only the rest, and stores a verified blob.
TEST_F(ArtifactTest, InterruptedUploadResumesFromPartialBytes) {
  std::string data = Bytes(3 * kArtifactChunkBytes + 123, 3);
  std::string sha = Sha(data);
  const uint64_t half = kArtifactChunkBytes + kArtifactChunkBytes / 2;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::UploadResponse resp;
    auto writer = stub_->Upload(&ctx, &resp);
    v1::UploadRequest req;
    *req.mutable_header() = Header("modules.tar.gz", data, "c-1");
    ASSERT_TRUE(writer->Write(req));
    for (const std::string& c : Chunks(data.substr(0, half))) {
      req.set_data(c);
      ASSERT_TRUE(writer->Write(req));
    }
    // The server stores chunks on its executor: wait (bounded) until both are on disk, so that
    // the cancel below interrupts an upload with a known partial.
    absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (Stat(sha).partial_bytes() < half && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    ASSERT_EQ(Stat(sha).partial_bytes(), half);
    ctx.TryCancel();
    EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  v1::StatResponse stat = Stat(sha);
  EXPECT_FALSE(stat.stored());
  EXPECT_EQ(stat.partial_bytes(), half);

  v1::UploadHeader wrong = Header("modules.tar.gz", data, "c-1");
  wrong.set_offset(1000);
  // Retry while the cancelled call still holds the upload (ABORTED) until it has let go.
  grpc::Status s;
  for (int i = 0; i < 200; ++i) {
    s = RawUpload(wrong, {});
    if (s.error_code() != grpc::StatusCode::ABORTED) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "header offset 1000"));
  EXPECT_TRUE(absl::StrContains(s.error_message(), "resume from offset " + std::to_string(half)));

  std::vector<uint64_t> progress;
  TransferOptions options = options_;
  options.progress = [&](uint64_t done, uint64_t total) {
    EXPECT_EQ(total, data.size());
    progress.push_back(done);
  };
  absl::StatusOr<UploadResult> up = UploadFile(*stub_, WriteTemp("modules.tar.gz", data),
                                               "modules.tar.gz", "modules", "c-1", options);
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_FALSE(up->deduplicated);
  EXPECT_EQ(up->bytes_sent, data.size() - half);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.front(), half);
  EXPECT_EQ(progress.back(), data.size());
  EXPECT_EQ(up->artifact.sha256(), sha);
  EXPECT_EQ(up->artifact.size(), data.size());
  EXPECT_EQ(up->artifact.kind(), "modules");

  stat = Stat(sha);
  EXPECT_TRUE(stat.stored());
  EXPECT_EQ(stat.size(), data.size());
  EXPECT_EQ(ReadAll(blobs_->BlobPath(sha)), data);
  EXPECT_FALSE(fs::exists(blobs_->PartialPath(sha)));
  EXPECT_EQ(service_->counters().bytes_received.load(), data.size());
}

// Validates that DownloadFile resumes a .part left by an interrupted download: only the rest
// crosses the wire (the server saw a non-zero offset), and the result is verified and in place.
TEST_F(ArtifactTest, InterruptedDownloadResumes) {
  std::string data = Bytes(2 * kArtifactChunkBytes + kArtifactChunkBytes / 2, 4);
  ASSERT_TRUE(UploadFile(*stub_, WriteTemp("src", data), "vmlinuz", "kernel", "", options_).ok());
  std::string dest = dir_ + "/vmlinuz";
  const size_t kept = kArtifactChunkBytes + 7;
  ASSERT_TRUE(WriteFileAtomic(dest + ".part", data.substr(0, kept)).ok());

  std::vector<uint64_t> progress;
  TransferOptions options = options_;
  options.progress = [&](uint64_t done, uint64_t) { progress.push_back(done); };
  absl::Status s = DownloadFile(*stub_, Sha(data), dest, options);
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.front(), kept);
  EXPECT_EQ(progress.back(), data.size());
  EXPECT_EQ(service_->counters().downloads_resumed.load(), 1u);
  EXPECT_EQ(service_->counters().bytes_sent.load(), data.size() - kept);
  EXPECT_EQ(ReadAll(dest), data);
  EXPECT_FALSE(fs::exists(dest + ".part"));
}

// Validates that a .part that is not a prefix of the blob fails verification: DATA_LOSS, the
// .part is removed and nothing appears at the destination.
TEST_F(ArtifactTest, DownloadOverWrongPartialIsDataLoss) {
  std::string data = Bytes(300000, 5);
  ASSERT_TRUE(UploadFile(*stub_, WriteTemp("src", data), "config", "config", "", options_).ok());
  std::string dest = dir_ + "/config";
  std::string wrong = data.substr(0, 1000);
  wrong[10] ^= 1;
  ASSERT_TRUE(WriteFileAtomic(dest + ".part", wrong).ok());
  absl::Status s = DownloadFile(*stub_, Sha(data), dest, options_);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_FALSE(fs::exists(dest + ".part"));
  EXPECT_FALSE(fs::exists(dest));
  // A second try starts over and succeeds.
  ASSERT_TRUE(DownloadFile(*stub_, Sha(data), dest, options_).ok());
  EXPECT_EQ(ReadAll(dest), data);
}

// Validates that downloading a blob the controller does not have is NOT_FOUND.
TEST_F(ArtifactTest, DownloadOfUnknownBlobIsNotFound) {
  absl::Status s = DownloadFile(*stub_, Sha("nothing"), dir_ + "/x", options_);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_FALSE(fs::exists(dir_ + "/x.part"));
}

// Validates that equal content is stored once: the second upload sends no data and says
// deduplicated, and exactly one blob file exists.
TEST_F(ArtifactTest, EqualUploadsAreStoredOnce) {
  std::string data = Bytes(1200000, 6);
  absl::StatusOr<UploadResult> first =
      UploadFile(*stub_, WriteTemp("a", data), "a.bin", "file", "c-1", options_);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->deduplicated);
  EXPECT_EQ(first->bytes_sent, data.size());
  absl::StatusOr<UploadResult> second =
      UploadFile(*stub_, WriteTemp("b", data), "b.bin", "file", "c-2", options_);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->deduplicated);
  EXPECT_EQ(second->bytes_sent, 0u);
  EXPECT_EQ(BlobFiles(), 1);
  // The deduplicated upload still links the blob to its command.
  v1::ListArtifactsRequest req;
  req.set_command_id("c-2");
  absl::StatusOr<v1::ListArtifactsResponse> list = index_->ListArtifacts(req);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->artifacts_size(), 1);
  EXPECT_EQ(list->artifacts(0).artifact().name(), "b.bin");

  // A client that sends the data anyway is answered deduplicated without the data being stored.
  v1::UploadResponse resp;
  grpc::Status s = RawUpload(Header("c.bin", data), Chunks(data), &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(resp.deduplicated());
  EXPECT_EQ(service_->counters().bytes_received.load(), data.size());
}

// Validates that concurrent uploads of the same content all succeed and store one blob: the
// per-sha256 lock turns the losers away (ABORTED), and their retry finds the blob stored.
TEST_F(ArtifactTest, ConcurrentEqualUploadsStoreOneBlob) {
  std::string data = Bytes(3 * kArtifactChunkBytes, 7);
  std::string path = WriteTemp("same", data);
  std::vector<absl::StatusOr<UploadResult>> results(3, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      results[i] = UploadFile(*stub_, path, "same-" + std::to_string(i), "file", "c-1", options_);
    });
  }
  for (std::thread& t : threads) t.join();
  int stored = 0;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    if (!r->deduplicated) ++stored;
  }
  EXPECT_EQ(stored, 1);
  EXPECT_EQ(BlobFiles(), 1);
  EXPECT_EQ(ReadAll(blobs_->BlobPath(Sha(data))), data);
}

// Validates that unsafe or malformed names, hashes and sizes are refused with INVALID_ARGUMENT
// and a message that names the problem, before any byte is stored.
TEST_F(ArtifactTest, BadHeadersAreRefused) {
  std::string data = "kernel";
  struct Case {
    std::string name;
    std::string expect;
  };
  for (const Case& c : std::vector<Case>{{"../etc/passwd", "contains \"/\""},
                                         {"a/b", "contains \"/\""},
                                         {"..", "is a directory reference"},
                                         {".", "is a directory reference"},
                                         {"", "artifact name is empty"},
                                         {"a b", "outside [A-Za-z0-9._+-]"},
                                         {std::string(256, 'x'), "use at most 255 bytes"}}) {
    grpc::Status s = RawUpload(Header(c.name, data), {data});
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_TRUE(absl::StrContains(s.error_message(), c.expect))
        << c.name << ": " << s.error_message();
  }
  // The client library refuses the same way.
  absl::StatusOr<UploadResult> up =
      UploadFile(*stub_, WriteTemp("x", data), "../etc/passwd", "file", "", options_);
  EXPECT_EQ(up.status().code(), absl::StatusCode::kInvalidArgument) << up.status();

  v1::UploadHeader upper = Header("vmlinuz", data);
  upper.set_sha256(std::string(64, 'A'));
  grpc::Status s = RawUpload(upper, {data});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "expected 64 lower-case hex digits"))
      << s.error_message();

  v1::UploadHeader big = Header("vmlinuz", data);
  big.set_size(kMaxBlobBytes + 1);
  s = RawUpload(big, {});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "over the artifact limit of 8388608 bytes"))
      << s.error_message();

  v1::UploadRequest no_header;
  no_header.set_data("x");
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline());
  v1::UploadResponse resp;
  auto writer = stub_->Upload(&ctx, &resp);
  writer->Write(no_header);
  writer->WritesDone();
  s = writer->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "first upload message must be an UploadHeader"));

  EXPECT_EQ(BlobFiles(), 0);
  EXPECT_TRUE(fs::is_empty(root_ + "/partial"));
}

// Validates that a data message over 1 MiB is refused and the bytes before it are kept.
TEST_F(ArtifactTest, OversizedDataMessageIsRefused) {
  std::string data = Bytes(2 * kArtifactChunkBytes + 1, 8);
  grpc::Status s = RawUpload(Header("big", data), {data.substr(0, 10), data.substr(10)});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "send at most 1048576 bytes per message"))
      << s.error_message();
  EXPECT_EQ(Stat(Sha(data)).partial_bytes(), 10u);
}

// Validates that uploads name a known command: an unknown one is NOT_FOUND before any data is
// stored, and another blob under a name the command already used is ALREADY_EXISTS.
TEST_F(ArtifactTest, UploadChecksTheCommand) {
  std::string data = Bytes(5000, 9);
  grpc::Status s = RawUpload(Header("log.txt", data, "c-404"), {data});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "no command \"c-404\""));
  EXPECT_EQ(BlobFiles(), 0);

  ASSERT_TRUE(RawUpload(Header("log.txt", data, "c-1"), {data}).ok());
  std::string other = Bytes(5000, 10);
  s = RawUpload(Header("log.txt", other, "c-1"), {other});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "already has an artifact log.txt"));
  // Sending the same artifact again is fine (a retry after a lost answer).
  v1::UploadResponse resp;
  ASSERT_TRUE(RawUpload(Header("log.txt", data, "c-1"), {}, &resp).ok());
  EXPECT_TRUE(resp.deduplicated());
}

v1::KernelBuild Build(const std::string& identity, const std::vector<v1::Artifact>& artifacts) {
  v1::KernelBuild b;
  b.set_identity(identity);
  b.set_release("6.9.0-kfleet");
  b.set_builder("host-a");
  b.set_build_ms(123456);
  b.set_source("/src/linux at abc123");
  b.set_reused(true);
  for (const v1::Artifact& a : artifacts) *b.add_artifacts() = a;
  return b;
}

// Validates that a recorded build comes back from LookupBuild by identity (over the wire), that
// an unknown identity is NOT_FOUND, and that a build whose blob is missing is refused.
TEST_F(ArtifactTest, RecordAndLookupBuild) {
  std::string kernel = Bytes(400000, 11);
  std::string config = "CONFIG_X=y\n";
  absl::StatusOr<UploadResult> k =
      UploadFile(*stub_, WriteTemp("k", kernel), "vmlinuz", "kernel", "", options_);
  absl::StatusOr<UploadResult> c =
      UploadFile(*stub_, WriteTemp("c", config), "config", "config", "", options_);
  ASSERT_TRUE(k.ok() && c.ok());
  std::string identity = Sha("inputs");
  v1::KernelBuild build = Build(identity, {k->artifact, c->artifact});
  ASSERT_TRUE(service_->index()->RecordBuild(build, "c-1").ok());

  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline());
  v1::LookupBuildRequest req;
  req.set_identity(identity);
  v1::KernelBuild got;
  grpc::Status s = stub_->LookupBuild(&ctx, req, &got);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::KernelBuild want = build;
  want.set_reused(false);
  EXPECT_EQ(got.SerializeAsString(), want.SerializeAsString()) << got.DebugString();

  // The build's artifacts are linked to the command that built it.
  v1::ListArtifactsRequest list_req;
  list_req.set_command_id("c-1");
  absl::StatusOr<v1::ListArtifactsResponse> list = index_->ListArtifacts(list_req);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->artifacts_size(), 2);

  grpc::ClientContext ctx2;
  ctx2.set_deadline(Deadline());
  req.set_identity(Sha("other inputs"));
  s = stub_->LookupBuild(&ctx2, req, &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);

  v1::Artifact missing;
  missing.set_name("modules.tar.gz");
  missing.set_kind("modules");
  missing.set_sha256(Sha("never uploaded"));
  missing.set_size(14);
  absl::Status refused = index_->RecordBuild(Build(Sha("third"), {k->artifact, missing}), "c-1");
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "modules.tar.gz"));
  EXPECT_TRUE(absl::StrContains(refused.message(), "is not in the artifact store"));
  EXPECT_EQ(index_->LookupBuild(Sha("third")).status().code(), absl::StatusCode::kNotFound);
}

// Validates ListArtifacts over the wire: by job (every command's artifacts, with command and
// host) and by command; neither is INVALID_ARGUMENT.
TEST_F(ArtifactTest, ListArtifactsByJobAndCommand) {
  ASSERT_TRUE(UploadFile(*stub_, WriteTemp("1", "one"), "one.txt", "file", "c-1", options_).ok());
  ASSERT_TRUE(UploadFile(*stub_, WriteTemp("2", "two"), "two.txt", "file", "c-2", options_).ok());
  ASSERT_TRUE(
      UploadFile(*stub_, WriteTemp("3", "three"), "three.txt", "file", "c-3", options_).ok());

  auto list = [&](const v1::ListArtifactsRequest& req, v1::ListArtifactsResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    return stub_->ListArtifacts(&ctx, req, resp);
  };
  v1::ListArtifactsRequest by_job;
  by_job.set_job_id("j-1");
  v1::ListArtifactsResponse resp;
  ASSERT_TRUE(list(by_job, &resp).ok());
  ASSERT_EQ(resp.artifacts_size(), 2);
  EXPECT_EQ(resp.artifacts(0).command_id(), "c-1");
  EXPECT_EQ(resp.artifacts(0).host_name(), "host-a");
  EXPECT_EQ(resp.artifacts(0).job_id(), "j-1");
  EXPECT_EQ(resp.artifacts(0).artifact().name(), "one.txt");
  EXPECT_EQ(resp.artifacts(0).artifact().sha256(), Sha("one"));
  EXPECT_EQ(resp.artifacts(0).artifact().size(), 3u);
  EXPECT_EQ(resp.artifacts(1).command_id(), "c-2");
  EXPECT_EQ(resp.artifacts(1).host_name(), "host-b");

  v1::ListArtifactsRequest by_command;
  by_command.set_command_id("c-3");
  resp.Clear();
  ASSERT_TRUE(list(by_command, &resp).ok());
  ASSERT_EQ(resp.artifacts_size(), 1);
  EXPECT_EQ(resp.artifacts(0).artifact().name(), "three.txt");
  EXPECT_EQ(resp.artifacts(0).job_id(), "j-2");

  EXPECT_EQ(list(v1::ListArtifactsRequest(), &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

// Validates that the index survives a reopen (its own database with migrations).
TEST_F(ArtifactTest, IndexReopens) {
  ASSERT_TRUE(UploadFile(*stub_, WriteTemp("1", "one"), "one.txt", "file", "c-1", options_).ok());
  absl::StatusOr<std::unique_ptr<ArtifactIndex>> again = ArtifactIndex::Open(
      root_ + "/index.db", blobs_.get(),
      [](const std::string&) -> absl::StatusOr<CommandOwner> { return CommandOwner{}; });
  ASSERT_TRUE(again.ok()) << again.status();
  v1::ListArtifactsRequest req;
  req.set_job_id("j-1");
  absl::StatusOr<v1::ListArtifactsResponse> list = (*again)->ListArtifacts(req);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->artifacts_size(), 1);
}

}  // namespace
}  // namespace kfleet::controller
