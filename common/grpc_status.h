// The one place that converts between absl::Status and grpc::Status.
#ifndef KFLEET_COMMON_GRPC_STATUS_H_
#define KFLEET_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace kfleet {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status ToAbslStatus(const grpc::Status& status);

}  // namespace kfleet

#endif  // KFLEET_COMMON_GRPC_STATUS_H_
