// Ownership of C handles (OpenSSL's and the like): std::unique_ptr with the library's free
// function as the deleter, e.g. `using BioPtr = std::unique_ptr<BIO, Free<BIO_free_all>>`.
#ifndef KFLEET_COMMON_OPENSSL_HANDLES_H_
#define KFLEET_COMMON_OPENSSL_HANDLES_H_

#include <openssl/bio.h>

#include <memory>

namespace kfleet {

template <auto kFree>
struct Free {
  template <typename T>
  void operator()(T* p) const {
    kFree(p);
  }
};

using BioPtr = std::unique_ptr<BIO, Free<BIO_free_all>>;

}  // namespace kfleet

#endif  // KFLEET_COMMON_OPENSSL_HANDLES_H_
