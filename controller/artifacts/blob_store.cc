#include "controller/artifacts/blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace kfleet::controller {
namespace {

constexpr size_t kMaxNameBytes = 255;
constexpr size_t kMaxKindBytes = 64;

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '+' || c == '-';
}

// The size of the file at `path`, or nullopt if there is none.
absl::StatusOr<std::optional<uint64_t>> FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::optional<uint64_t>();
    return ErrnoStatus(absl::StrCat("stat ", path), errno);
  }
  return std::optional<uint64_t>(static_cast<uint64_t>(st.st_size));
}

std::string Dirname(const std::string& path) { return path.substr(0, path.rfind('/')); }

}  // namespace

absl::Status ValidateArtifactName(absl::string_view name) {
  if (name.empty()) {
    return absl::InvalidArgumentError("artifact name is empty: give the file a name, e.g. vmlinuz");
  }
  if (name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("artifact name \"", name.substr(0, 40),
                                                   "...\" is ", name.size(),
                                                   " bytes long: use at most 255 bytes"));
  }
  if (name == "." || name == "..") {
    return absl::InvalidArgumentError(absl::StrCat(
        "artifact name \"", name, "\" is a directory reference: name the file itself"));
  }
  for (char c : name) {
    if (c == '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("artifact name \"", name,
                       "\" contains \"/\": give a plain file name without directories"));
    }
    if (!IsNameChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "artifact name \"", name, "\" contains a character outside [A-Za-z0-9._+-] (byte ",
          static_cast<int>(static_cast<unsigned char>(c)), "): rename the file"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateArtifactKind(absl::string_view kind) {
  bool ok = kind.size() <= kMaxKindBytes;
  for (char c : kind) ok = ok && IsNameChar(c) && c != '+';
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("artifact kind \"", kind.substr(0, 64),
                     "\" is not up to 64 characters of [A-Za-z0-9._-]: use a kind such as "
                     "kernel, modules, config, system_map, release or file"));
  }
  return absl::OkStatus();
}

absl::Status ValidateSha256(absl::string_view sha256, absl::string_view what) {
  if (IsSha256Hex(sha256)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, " \"", sha256.substr(0, 80),
                   "\" is not a sha256: expected 64 lower-case hex digits (sha256sum prints it)"));
}

BlobUpload::BlobUpload(BlobStore* store, UploadSpec spec) : store_(store), spec_(std::move(spec)) {}

BlobUpload::~BlobUpload() {
  if (fd_ >= 0) ::close(fd_);
  store_->Unlock(spec_.sha256);
}

void BlobUpload::Discard() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(store_->PartialPath(spec_.sha256).c_str());
}

absl::Status BlobUpload::Append(absl::string_view data) {
  if (fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("upload of ", spec_.name, " is not open for data"));
  }
  if (data.size() > spec_.size - received_) {
    Discard();
    return absl::DataLossError(absl::StrCat("upload of ", spec_.name,
                                            ": more data than the declared size of ", spec_.size,
                                            " bytes; nothing stored"));
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(received_ + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(absl::StrCat("write ", store_->PartialPath(spec_.sha256)), errno);
    }
    done += static_cast<size_t>(n);
  }
  hasher_->Update(data);
  received_ += data.size();
  return absl::OkStatus();
}

absl::Status BlobUpload::Suspend() {
  if (fd_ < 0) return absl::OkStatus();
  std::string partial = store_->PartialPath(spec_.sha256);
  int rc = ::fdatasync(fd_);
  int err = errno;
  ::close(fd_);
  fd_ = -1;
  if (rc != 0) return ErrnoStatus(absl::StrCat("fdatasync ", partial), err);
  return absl::OkStatus();
}

absl::Status BlobUpload::Commit() {
  if (fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("upload of ", spec_.name, " is not open for data"));
  }
  if (received_ < spec_.size) {
    RETURN_IF_ERROR(Suspend());
    return absl::FailedPreconditionError(
        absl::StrCat("upload of ", spec_.name, " ended after ", received_, " of ", spec_.size,
                     " bytes: they are kept; send the rest from offset ", received_));
  }
  std::string partial = store_->PartialPath(spec_.sha256);
  std::string blob = store_->BlobPath(spec_.sha256);
  ASSIGN_OR_RETURN(std::string got, hasher_->FinishHex());
  if (got != spec_.sha256) {
    Discard();
    return absl::DataLossError(absl::StrCat("upload of ", spec_.name, ": sha256 is ", got,
                                            ", expected ", spec_.sha256, "; nothing stored"));
  }
  // Durable content before the rename makes it visible, then durable directory entries.
  if (::fchmod(fd_, 0444) != 0) return ErrnoStatus(absl::StrCat("chmod ", partial), errno);
  if (::fsync(fd_) != 0) return ErrnoStatus(absl::StrCat("fsync ", partial), errno);
  ::close(fd_);
  fd_ = -1;
  std::string dir = Dirname(blob);
  RETURN_IF_ERROR(MakeDirs(dir));
  if (::rename(partial.c_str(), blob.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("rename ", partial, " to ", blob), errno);
  }
  RETURN_IF_ERROR(SyncDir(dir));
  RETURN_IF_ERROR(SyncDir(Dirname(dir)));  // the new <2 hex> directory, if it is new
  return SyncDir(Dirname(partial));
}

absl::StatusOr<std::string> BlobReader::Read(uint64_t offset, size_t max_bytes) const {
  if (offset >= size_) return std::string();
  std::string out(static_cast<size_t>(std::min<uint64_t>(max_bytes, size_ - offset)), '\0');
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::pread(fd_, out.data() + got, out.size() - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(absl::StrCat("read ", path_), errno);
    }
    if (n == 0) {
      return absl::DataLossError(absl::StrCat("blob ", path_, " is shorter than its ", size_,
                                              " bytes: it was truncated on disk"));
    }
    got += static_cast<size_t>(n);
  }
  return out;
}

BlobReader::~BlobReader() { ::close(fd_); }

absl::StatusOr<std::unique_ptr<BlobStore>> BlobStore::Open(Options options) {
  if (options.root.empty()) return absl::InvalidArgumentError("artifact store root is empty");
  RETURN_IF_ERROR(MakeDirs(options.root + "/sha256"));
  RETURN_IF_ERROR(MakeDirs(options.root + "/partial"));
  return std::unique_ptr<BlobStore>(new BlobStore(std::move(options)));
}

std::string BlobStore::BlobPath(const std::string& sha256) const {
  return absl::StrCat(options_.root, "/sha256/", sha256.substr(0, 2), "/", sha256);
}

std::string BlobStore::PartialPath(const std::string& sha256) const {
  return absl::StrCat(options_.root, "/partial/", sha256, ".part");
}

absl::StatusOr<BlobStat> BlobStore::Stat(const std::string& sha256) const {
  RETURN_IF_ERROR(ValidateSha256(sha256, "sha256"));
  BlobStat stat;
  ASSIGN_OR_RETURN(std::optional<uint64_t> blob, FileSize(BlobPath(sha256)));
  if (blob.has_value()) {
    stat.stored = true;
    stat.size = *blob;
    return stat;
  }
  ASSIGN_OR_RETURN(std::optional<uint64_t> partial, FileSize(PartialPath(sha256)));
  stat.partial_bytes = partial.value_or(0);
  return stat;
}

absl::StatusOr<std::unique_ptr<BlobReader>> BlobStore::OpenBlob(const std::string& sha256) const {
  RETURN_IF_ERROR(ValidateSha256(sha256, "sha256"));
  std::string path = BlobPath(sha256);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat("no blob with sha256 ", sha256, " is stored"));
    }
    return ErrnoStatus(absl::StrCat("open ", path), errno);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus(absl::StrCat("stat ", path), err);
  }
  return std::unique_ptr<BlobReader>(
      new BlobReader(fd, static_cast<uint64_t>(st.st_size), std::move(path)));
}

absl::StatusOr<std::unique_ptr<BlobUpload>> BlobStore::BeginUpload(const UploadSpec& spec) {
  RETURN_IF_ERROR(ValidateArtifactName(spec.name));
  RETURN_IF_ERROR(ValidateSha256(spec.sha256, absl::StrCat("sha256 of ", spec.name)));
  if (spec.size > options_.max_blob_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "upload of ", spec.name, ": size ", spec.size, " bytes is over the artifact limit of ",
        options_.max_blob_bytes, " bytes: compress or split the file"));
  }
  {
    absl::MutexLock lock(&mu_);
    if (!uploading_.insert(spec.sha256).second) {
      return absl::AbortedError(absl::StrCat(
          "upload of ", spec.name, ": another upload of sha256 ", spec.sha256,
          " is in progress; retry when it ends (Stat then says stored, or where to resume)"));
    }
  }
  // From here `up` owns the lock: every return below releases it unless it hands `up` over.
  std::unique_ptr<BlobUpload> up(new BlobUpload(this, spec));
  ASSIGN_OR_RETURN(std::optional<uint64_t> stored, FileSize(BlobPath(spec.sha256)));
  if (stored.has_value()) {
    if (*stored != spec.size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "upload of ", spec.name, ": sha256 ", spec.sha256, " is stored with ", *stored,
          " bytes, but the header says ", spec.size, ": send the file's real size"));
    }
    up->deduplicated_ = true;
    return up;
  }
  std::string partial = PartialPath(spec.sha256);
  ASSIGN_OR_RETURN(std::optional<uint64_t> kept, FileSize(partial));
  uint64_t partial_bytes = kept.value_or(0);
  if (spec.offset != partial_bytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "upload of ", spec.name, ": header offset ", spec.offset, " does not match the ",
        partial_bytes, " bytes kept of an earlier upload: resume from offset ", partial_bytes,
        " (Stat's partial_bytes)"));
  }
  if (partial_bytes > spec.size) {
    ::unlink(partial.c_str());
    return absl::FailedPreconditionError(
        absl::StrCat("upload of ", spec.name, ": the ", partial_bytes,
                     " bytes kept of an earlier upload are more than its size ", spec.size,
                     "; they were discarded: start again from offset 0"));
  }
  up->fd_ = ::open(partial.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (up->fd_ < 0) return ErrnoStatus(absl::StrCat("open ", partial), errno);
  ASSIGN_OR_RETURN(Sha256 hasher, Sha256::Create());
  up->hasher_.emplace(std::move(hasher));
  // The hash state is not kept across uploads: a resume re-reads what the earlier one stored.
  RETURN_IF_ERROR(HashFilePrefix(up->fd_, partial_bytes, *up->hasher_, partial));
  up->received_ = partial_bytes;
  return up;
}

void BlobStore::Unlock(const std::string& sha256) {
  absl::MutexLock lock(&mu_);
  uploading_.erase(sha256);
}

}  // namespace kfleet::controller
