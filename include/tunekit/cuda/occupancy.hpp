#pragma once
// Occupancy exactly as CUDA computes it (the toolkit's cuda_occupancy.h is the
// engine), the factor that limits it, and block-size recommendations.
//
//   const auto& hopper = tunekit::cuda::architecture("sm_90");
//   auto result = tunekit::cuda::compute_occupancy(hopper, {.registers_per_thread = 64},
//                                                  {.threads_per_block = 256});
//   // result.active_blocks_per_multiprocessor == 4, result.limiter == registers

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tunekit/cuda/device_properties.hpp"

namespace tunekit::cuda {

/// What a compiled kernel uses (from cudaFuncGetAttributes or the compiler report).
struct kernel_resources {
  int registers_per_thread = 0;
  std::uint64_t static_shared_bytes = 0;
  int block_barriers = 1;  ///< named barriers the kernel uses; __syncthreads is one
};

/// How the kernel is launched.
struct launch_shape {
  int threads_per_block = 0;
  std::uint64_t dynamic_shared_bytes = 0;
};

/// The resources that can bound the number of resident blocks, in the order of
/// CUDA's cudaOccLimitingFactor.
enum class occupancy_limiter { warps, registers, shared_memory, blocks, barriers };

/// "warps", "registers", "shared_memory", "blocks" or "barriers".
[[nodiscard]] std::string_view to_string(occupancy_limiter limiter);

/// Blocks-per-SM bound of each resource; `unlimited` when the resource is unused.
struct occupancy_bounds {
  static constexpr int unlimited = -1;
  int warps = unlimited;
  int registers = unlimited;
  int shared_memory = unlimited;
  int blocks = unlimited;
  int barriers = unlimited;
};

struct occupancy_result {
  int active_blocks_per_multiprocessor = 0;
  int active_warps_per_multiprocessor = 0;
  int max_warps_per_multiprocessor = 0;
  double occupancy = 0.0;  ///< active warps / max warps, 0..1
  /// The binding resource: the first of `limiters` in cudaOccLimitingFactor
  /// order. When no block fits, the resource that forbids it.
  occupancy_limiter limiter = occupancy_limiter::warps;
  std::vector<occupancy_limiter> limiters;  ///< every resource at the bound
  occupancy_bounds bounds;
  int allocated_registers_per_block = 0;
  std::uint64_t allocated_shared_bytes_per_block = 0;  ///< static + dynamic + reserved, rounded

  bool operator==(const occupancy_result&) const = default;
};

/// Resident blocks per SM of a launch, as cudaOccupancyMaxActiveBlocksPerMultiprocessor
/// answers for a kernel that opted in to the device's full dynamic shared memory.
/// A launch that cannot run answers 0 blocks. Throws tunekit::invalid_argument
/// for nonsensical input (threads outside 1..max, negative or absurd sizes) and
/// for a compute capability the engine does not know.
[[nodiscard]] occupancy_result compute_occupancy(const device_properties& device,
                                                 const kernel_resources& kernel,
                                                 const launch_shape& launch);

/// One row of a block-size sweep.
struct occupancy_row {
  int threads_per_block = 0;
  occupancy_result result;
  bool best = false;  ///< reaches the highest occupancy of the sweep
};

struct block_size_recommendation {
  std::vector<occupancy_row> rows;
  int recommended_threads_per_block = 0;  ///< 0 when no block size can run
  std::string reason;
};

/// Sweeps block sizes step, 2·step, … up to the device's maximum, marks those
/// with the highest occupancy and recommends the smallest of them: at equal
/// occupancy, smaller blocks leave more blocks per SM, which evens out the
/// last wave and the waits at barriers.
[[nodiscard]] block_size_recommendation recommend_block_size(const device_properties& device,
                                                             const kernel_resources& kernel,
                                                             std::uint64_t dynamic_shared_bytes,
                                                             int step = 32);

}  // namespace tunekit::cuda
