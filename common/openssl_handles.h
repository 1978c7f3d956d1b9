// Ownership of C handles (OpenSSL's and the like): std::unique_ptr with the library's free
// function as the deleter, e.g. `using BioPtr = std::unique_ptr<BIO, Free<BIO_free_all>>`; and
// OpenSSL's error queue as text.
#ifndef KFLEET_COMMON_OPENSSL_HANDLES_H_
#define KFLEET_COMMON_OPENSSL_HANDLES_H_

#include <openssl/bio.h>
#include <openssl/err.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"

namespace kfleet {

template <auto kFree>
struct Free {
  template <typename T>
  void operator()(T* p) const {
    kFree(p);
  }
};

using BioPtr = std::unique_ptr<BIO, Free<BIO_free_all>>;

// The errors OpenSSL queued on this thread, oldest first; the queue is empty afterwards.
inline std::string TakeOpenSslErrors() {
  std::vector<std::string> parts;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    parts.push_back(buf);
  }
  return parts.empty() ? "no detail from OpenSSL" : absl::StrJoin(parts, "; ");
}

}  // namespace kfleet

#endif  // KFLEET_COMMON_OPENSSL_HANDLES_H_
