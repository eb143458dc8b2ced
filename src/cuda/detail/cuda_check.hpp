#pragma once
// Internal: the one throwing CUDA check and its non-throwing twin for
// destructors. Not installed; public headers never include CUDA headers.

#include <cuda_runtime_api.h>

#include <cstdio>
#include <string>

#include "tunekit/error.hpp"

namespace tunekit::cuda::detail {

[[noreturn]] inline void throw_cuda_error(cudaError_t status, const char* call, const char* file,
                                          int line) {
  throw cuda_error(static_cast<int>(status),
                   std::string(call) + " failed: " + cudaGetErrorName(status) + " (" +
                       cudaGetErrorString(status) + ") at " + file + ":" + std::to_string(line));
}

}  // namespace tunekit::cuda::detail

/// Throws tunekit::cuda_error when the call does not return cudaSuccess.
#define TUNEKIT_CUDA_CHECK(call)                                                       \
  do {                                                                                 \
    const cudaError_t tunekit_status_ = (call);                                        \
    if (tunekit_status_ != cudaSuccess)                                                \
      ::tunekit::cuda::detail::throw_cuda_error(tunekit_status_, #call, __FILE__, __LINE__); \
  } while (false)

/// For destructors and other noexcept paths: reports on stderr, never throws.
#define TUNEKIT_CUDA_CHECK_NOEXCEPT(call)                                                     \
  do {                                                                                        \
    const cudaError_t tunekit_status_ = (call);                                               \
    if (tunekit_status_ != cudaSuccess)                                                       \
      std::fprintf(stderr, "tunekit: %s failed: %s at %s:%d\n", #call,                        \
                   cudaGetErrorName(tunekit_status_), __FILE__, __LINE__);                    \
  } while (false)
