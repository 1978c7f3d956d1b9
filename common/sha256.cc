#include "common/sha256.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace kfleet {

bool IsSha256Hex(absl::string_view hex) {
  if (hex.size() != 64) return false;
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::StatusOr<Sha256> Sha256::Create() {
  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx(EVP_MD_CTX_new());
  if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return absl::InternalError("OpenSSL: cannot start a SHA-256 digest");
  }
  return Sha256(std::move(ctx));
}

void Sha256::Update(absl::string_view data) {
  if (data.empty() || failed_) return;
  // Only reported by FinishHex, so that callers can feed data without checking each piece.
  if (EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) != 1) failed_ = true;
}

absl::StatusOr<std::string> Sha256::FinishHex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (failed_ || ctx_ == nullptr || EVP_DigestFinal_ex(ctx_.get(), digest, &length) != 1) {
    return absl::InternalError("OpenSSL: the SHA-256 digest failed");
  }
  ctx_.reset();
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), length));
}

absl::Status HashFilePrefix(int fd, uint64_t length, Sha256& hasher, absl::string_view what) {
  std::string buf(1 << 20, '\0');
  uint64_t done = 0;
  while (done < length) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), length - done));
    ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(absl::StrCat("read ", what), errno);
    }
    if (n == 0) {
      return absl::DataLossError(
          absl::StrCat(what, " ended after ", done, " bytes, expected ", length));
    }
    hasher.Update(absl::string_view(buf.data(), static_cast<size_t>(n)));
    done += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<FileDigest> Sha256OfFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(absl::StrCat("open ", path), errno);
  FileDigest out;
  absl::Status s = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Sha256 hasher, Sha256::Create());
    std::string buf(1 << 20, '\0');
    while (true) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(absl::StrCat("read ", path), errno);
      }
      if (n == 0) break;
      hasher.Update(absl::string_view(buf.data(), static_cast<size_t>(n)));
      out.size += static_cast<uint64_t>(n);
    }
    ASSIGN_OR_RETURN(out.sha256, hasher.FinishHex());
    return absl::OkStatus();
  }();
  ::close(fd);
  if (!s.ok()) return s;
  return out;
}

}  // namespace kfleet
