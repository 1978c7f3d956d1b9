// SHA-256 over OpenSSL EVP: incremental hashing, whole files, and the hex form artifacts use.
#ifndef KFLEET_COMMON_SHA256_H_
#define KFLEET_COMMON_SHA256_H_

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kfleet {

// True if `hex` is 64 lower-case hex digits, the form every sha256 takes in kfleet.
bool IsSha256Hex(absl::string_view hex);

// An incremental SHA-256. Not thread-safe.
class Sha256 {
 public:
  static absl::StatusOr<Sha256> Create();

  void Update(absl::string_view data);
  // The digest of everything passed to Update, as lower-case hex. The hasher is spent after it.
  absl::StatusOr<std::string> FinishHex();

 private:
  struct CtxFree {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  explicit Sha256(std::unique_ptr<EVP_MD_CTX, CtxFree> ctx) : ctx_(std::move(ctx)) {}

  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx_;
  bool failed_ = false;
};

struct FileDigest {
  std::string sha256;
  uint64_t size = 0;
};

// The sha256 and size of the file at `path`, read in 1 MiB pieces.
absl::StatusOr<FileDigest> Sha256OfFile(const std::string& path);

// Feeds the first `length` bytes of the open file `fd` to `hasher` (pread; the file offset is not
// moved). Fewer bytes in the file is DataLoss.
absl::Status HashFilePrefix(int fd, uint64_t length, Sha256& hasher, absl::string_view what);

}  // namespace kfleet

#endif  // KFLEET_COMMON_SHA256_H_
