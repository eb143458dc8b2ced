#pragma once
// Internal: the few kernels the measurement layer needs, behind host
// functions so that only timer_kernels.cu is compiled by nvcc.

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace tunekit::cuda::detail {

/// Holds the stream until *release (host-mapped memory) turns non-zero, or
/// `timeout_ns` of GPU time passed; then sets *timed_out (host-mapped) to 1.
void launch_hold(cudaStream_t stream, const volatile int* release, int* timed_out, std::uint64_t timeout_ns);

/// Reads `bytes` (a multiple of 16) of `buffer` with `blocks` blocks: a read that evicts the L2.
void launch_flush_read(cudaStream_t stream, const void* buffer, std::size_t bytes, int blocks, float* sink);

/// Fills with uniform numbers in [low, high), a counter-based hash of (seed, index).
void launch_fill_uniform(cudaStream_t stream, float* data, std::size_t count, std::uint64_t seed, float low,
                         float high);
/// As launch_fill_uniform, stored as bfloat16 (round to nearest even).
void launch_fill_uniform_bf16(cudaStream_t stream, std::uint16_t* data, std::size_t count, std::uint64_t seed,
                              float low, float high);

}  // namespace tunekit::cuda::detail
