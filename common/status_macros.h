// RETURN_IF_ERROR and ASSIGN_OR_RETURN: Debian's abseil ships no status macros.
#ifndef KFLEET_COMMON_STATUS_MACROS_H_
#define KFLEET_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define KFLEET_CONCAT_INNER_(a, b) a##b
#define KFLEET_CONCAT_(a, b) KFLEET_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function if `expr` is not OK.
#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status kfleet_status_ = (expr);          \
    if (!kfleet_status_.ok()) return kfleet_status_; \
  } while (0)

// `lhs` = value of the StatusOr `rexpr`, or returns its status from the enclosing function.
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  KFLEET_ASSIGN_OR_RETURN_IMPL_(KFLEET_CONCAT_(kfleet_statusor_, __LINE__), lhs, rexpr)

#define KFLEET_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                  \
  if (!statusor.ok()) return statusor.status();             \
  lhs = std::move(statusor).value()

#endif  // KFLEET_COMMON_STATUS_MACROS_H_
