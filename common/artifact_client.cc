#include "common/artifact_client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/grpc_status.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace kfleet {
namespace {

using kfleet::v1::ArtifactService;

constexpr size_t kChunkBytes = 1 << 20;  // the server's limit per data message

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Errors a later attempt may not see: the controller restarting or unreachable, another upload of
// the same blob in progress, a stream that broke or ran out of time.
bool Retryable(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsAborted(s) || absl::IsDeadlineExceeded(s) ||
         absl::IsCancelled(s);
}

absl::Status WithContext(const absl::Status& s, absl::string_view what) {
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

// The wait before attempt `attempt` (1 for the first retry): backoff_min doubling up to
// backoff_max, drawn from [d/2, d] so that many clients do not retry in lockstep.
absl::Status Backoff(int attempt, const TransferOptions& o) {
  absl::Duration d = o.backoff_min;
  for (int i = 1; i < attempt && d < o.backoff_max; ++i) d *= 2;
  d = std::min(d, o.backoff_max);
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  d = d / 2 + d / 2 * std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  if (o.stop != nullptr) {
    if (o.stop->WaitForNotificationWithTimeout(d)) return absl::CancelledError("stopped");
  } else {
    absl::SleepFor(d);
  }
  return absl::OkStatus();
}

std::chrono::system_clock::time_point StreamDeadline(const TransferOptions& o, uint64_t bytes) {
  absl::Duration transfer =
      absl::Seconds(static_cast<double>(bytes) /
                    static_cast<double>(std::max<uint64_t>(o.min_bytes_per_second, 1)));
  return absl::ToChronoTime(absl::Now() + o.stream_timeout_base + transfer);
}

void Progress(const TransferOptions& o, uint64_t done, uint64_t total) {
  if (o.progress) o.progress(done, total);
}

absl::StatusOr<v1::StatResponse> CallStat(ArtifactService::StubInterface& stub,
                                          const std::string& sha256, const TransferOptions& o) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + o.rpc_timeout));
  v1::StatRequest req;
  req.set_sha256(sha256);
  v1::StatResponse resp;
  grpc::Status s = stub.Stat(&ctx, req, &resp);
  if (!s.ok()) return ToAbslStatus(s);
  return resp;
}

// One Upload call: the header, then the file from `offset` (nothing if `stored`).
absl::Status SendUpload(ArtifactService::StubInterface& stub, int fd, const FileDigest& digest,
                        uint64_t offset, bool stored, const v1::UploadHeader& header_template,
                        const TransferOptions& o, UploadResult* result) {
  uint64_t remaining = stored || offset >= digest.size ? 0 : digest.size - offset;
  grpc::ClientContext ctx;
  ctx.set_deadline(StreamDeadline(o, remaining));
  v1::UploadResponse resp;
  std::unique_ptr<grpc::ClientWriterInterface<v1::UploadRequest>> writer = stub.Upload(&ctx, &resp);
  v1::UploadRequest req;
  *req.mutable_header() = header_template;
  req.mutable_header()->set_offset(offset);
  bool ok = writer->Write(req);
  Progress(o, digest.size - remaining, digest.size);
  std::string buf(kChunkBytes, '\0');
  absl::Status local;
  while (ok && remaining > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), remaining));
    ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      local = n < 0 ? ErrnoStatus("read", errno)
                    : absl::DataLossError("the file shrank while it was uploaded");
      ctx.TryCancel();
      break;
    }
    req.set_data(buf.data(), static_cast<size_t>(n));
    ok = writer->Write(req);
    if (!ok) break;  // the stream broke, or the server finished early; Finish tells which
    offset += static_cast<uint64_t>(n);
    remaining -= static_cast<uint64_t>(n);
    result->bytes_sent += static_cast<uint64_t>(n);
    Progress(o, offset, digest.size);
  }
  if (ok) writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!local.ok()) return local;
  if (!status.ok()) return ToAbslStatus(status);
  result->artifact = resp.artifact();
  result->deduplicated = resp.deduplicated();
  return absl::OkStatus();
}

// One Download call from `*offset`, writing to `fd` at the same offsets and advancing `*offset`.
// Returns the call's status, or a local failure (a write error; DATA_LOSS for a chunk that does
// not continue the file) which also cancels the call.
absl::Status ReceiveOnce(ArtifactService::StubInterface& stub, const std::string& sha256,
                         uint64_t size, int fd, const std::string& part, const TransferOptions& o,
                         uint64_t* offset) {
  grpc::ClientContext ctx;
  ctx.set_deadline(StreamDeadline(o, size - *offset));
  v1::DownloadRequest req;
  req.set_sha256(sha256);
  req.set_command_id(o.command_id);
  req.set_offset(*offset);
  std::unique_ptr<grpc::ClientReaderInterface<v1::DownloadChunk>> reader = stub.Download(&ctx, req);
  v1::DownloadChunk chunk;
  absl::Status local;
  bool first = true;
  while (local.ok() && reader->Read(&chunk)) {
    const std::string& data = chunk.data();
    if (chunk.offset() != *offset || (first && chunk.size() != size) ||
        data.size() > size - *offset) {
      local = absl::DataLossError(absl::StrCat(
          "the controller sent ", data.size(), " bytes at offset ", chunk.offset(), " (size ",
          chunk.size(), "); expected offset ", *offset, " of ", size, " bytes"));
      break;
    }
    first = false;
    for (size_t done = 0; done < data.size() && local.ok();) {
      ssize_t n =
          ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(*offset + done));
      if (n < 0 && errno != EINTR) local = ErrnoStatus(absl::StrCat("write ", part), errno);
      if (n > 0) done += static_cast<size_t>(n);
    }
    if (!local.ok()) break;
    *offset += data.size();
    Progress(o, *offset, size);
  }
  if (!local.ok()) ctx.TryCancel();
  grpc::Status status = reader->Finish();
  if (!local.ok()) return local;
  if (status.ok() && *offset != size) {
    return absl::UnavailableError(
        absl::StrCat("the download stream ended at ", *offset, " of ", size, " bytes"));
  }
  return ToAbslStatus(status);
}

}  // namespace

absl::StatusOr<UploadResult> UploadFile(ArtifactService::StubInterface& stub,
                                        const std::string& path, const std::string& name,
                                        const std::string& kind, const std::string& command_id,
                                        const TransferOptions& options) {
  std::string what = absl::StrCat("upload of ", path, " as ", name);
  ASSIGN_OR_RETURN(FileDigest digest, Sha256OfFile(path));
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) return ErrnoStatus(absl::StrCat("open ", path), errno);
  v1::UploadHeader header;
  header.set_sha256(digest.sha256);
  header.set_size(digest.size);
  header.set_name(name);
  header.set_kind(kind);
  header.set_command_id(command_id);

  UploadResult result;
  absl::Status last;
  // ABORTED means another client is uploading the same blob. Waiting for it does not use up
  // attempts, for as long as that upload may legitimately take (the stream deadline of the size).
  absl::Time busy_deadline = absl::FromChrono(StreamDeadline(options, digest.size));
  int failures = 0;
  for (int retry = 0;; ++retry) {
    if (retry > 0) RETURN_IF_ERROR(WithContext(Backoff(retry, options), what));
    absl::StatusOr<v1::StatResponse> stat = CallStat(stub, digest.sha256, options);
    uint64_t offset = 0;
    if (stat.ok()) {
      offset = stat->stored() ? digest.size : stat->partial_bytes();
      last = SendUpload(stub, f.fd, digest, offset, stat->stored(), header, options, &result);
      if (last.ok()) return result;
    } else {
      last = stat.status();
    }
    if (absl::IsAborted(last) && absl::Now() < busy_deadline) continue;
    // Worth another attempt, which asks Stat again: a broken stream; a partial that moved under
    // us (FAILED_PRECONDITION: another client resumed it); a resumed partial that failed
    // verification (the server deleted it, so the next attempt starts from 0).
    bool again = Retryable(last) || (stat.ok() && absl::IsFailedPrecondition(last)) ||
                 (absl::IsDataLoss(last) && offset > 0);
    if (!again) return WithContext(last, what);
    if (++failures >= std::max(options.max_attempts, 1)) break;
  }
  return WithContext(last,
                     absl::StrCat(what, " (gave up after ", options.max_attempts, " attempts)"));
}

absl::Status DownloadFile(ArtifactService::StubInterface& stub, const std::string& sha256,
                          const std::string& dest_path, const TransferOptions& options) {
  std::string what = absl::StrCat("download of ", sha256, " to ", dest_path);
  std::string part = dest_path + ".part";
  Fd f;  // opened once the controller has the blob, so that NOT_FOUND leaves no empty .part
  absl::Status last;
  bool complete = false;
  uint64_t size = 0;
  for (int attempt = 0; attempt < std::max(options.max_attempts, 1) && !complete; ++attempt) {
    if (attempt > 0) RETURN_IF_ERROR(WithContext(Backoff(attempt, options), what));
    absl::StatusOr<v1::StatResponse> stat = CallStat(stub, sha256, options);
    if (!stat.ok()) {
      last = stat.status();
      if (Retryable(last)) continue;
      return WithContext(last, what);
    }
    if (!stat->stored()) {
      return absl::NotFoundError(
          absl::StrCat(what, ": the controller has no artifact with this sha256"));
    }
    size = stat->size();
    if (f.fd < 0) {
      f.fd = ::open(part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (f.fd < 0) return ErrnoStatus(absl::StrCat("open ", part), errno);
    }
    struct stat st;
    if (::fstat(f.fd, &st) != 0) return ErrnoStatus(absl::StrCat("stat ", part), errno);
    uint64_t offset = static_cast<uint64_t>(st.st_size);
    if (offset > size) {
      // Longer than the blob: not a prefix of it. Start over.
      if (::ftruncate(f.fd, 0) != 0) return ErrnoStatus(absl::StrCat("truncate ", part), errno);
      offset = 0;
    }
    Progress(options, offset, size);
    last = offset == size ? absl::OkStatus()
                          : ReceiveOnce(stub, sha256, size, f.fd, part, options, &offset);
    // What arrived is kept for the next attempt (or a later call), even after a failure.
    if (::fdatasync(f.fd) != 0) return ErrnoStatus(absl::StrCat("fdatasync ", part), errno);
    if (last.ok()) {
      complete = true;
    } else if (absl::IsDataLoss(last)) {
      ::unlink(part.c_str());
      return WithContext(last, what);
    } else if (absl::IsOutOfRange(last)) {
      // The controller's blob is shorter than our .part: start over.
      if (::ftruncate(f.fd, 0) != 0) return ErrnoStatus(absl::StrCat("truncate ", part), errno);
    } else if (!Retryable(last)) {
      return WithContext(last, what);
    }
  }
  if (!complete) {
    return WithContext(last, absl::StrCat(what, " (gave up after ", options.max_attempts,
                                          " attempts; the bytes received are kept in ", part, ")"));
  }
  ::close(f.fd);
  f.fd = -1;
  ASSIGN_OR_RETURN(FileDigest got, Sha256OfFile(part));
  if (got.sha256 != sha256 || got.size != size) {
    ::unlink(part.c_str());
    return absl::DataLossError(absl::StrCat(what, ": got ", got.size, " bytes with sha256 ",
                                            got.sha256, ", expected ", size, " bytes with sha256 ",
                                            sha256, "; the partial file was removed"));
  }
  if (::rename(part.c_str(), dest_path.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("rename ", part, " to ", dest_path), errno);
  }
  size_t slash = dest_path.rfind('/');
  return SyncDir(slash == std::string::npos ? "." : dest_path.substr(0, slash == 0 ? 1 : slash));
}

}  // namespace kfleet
