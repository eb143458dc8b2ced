#include "tunekit/cuda/occupancy.hpp"

// The toolkit's own occupancy calculator, a header-only C/C++ file with no
// runtime dependency: the engine, so answers match CUDA by construction.
#include <cuda_occupancy.h>

#include <algorithm>
#include <climits>
#include <utility>
#include <string>

#include "tunekit/error.hpp"

namespace tunekit::cuda {

namespace {

// cuda_occupancy.h rounds shared memory through int; keep inputs far from overflow.
constexpr std::uint64_t max_shared_bytes = std::uint64_t{1} << 30;
// Beyond this, registers × warp size × warps overflows int inside the engine.
constexpr int max_registers_per_thread = 64 * 1024;

cudaOccDeviceProp to_engine(const device_properties& device) {
  cudaOccDeviceProp engine;
  engine.computeMajor = device.capability.major;
  engine.computeMinor = device.capability.minor;
  engine.maxThreadsPerBlock = device.max_threads_per_block;
  engine.maxThreadsPerMultiprocessor = device.max_threads_per_multiprocessor;
  engine.regsPerBlock = device.registers_per_block;
  engine.regsPerMultiprocessor = device.registers_per_multiprocessor;
  engine.warpSize = device.warp_size;
  engine.sharedMemPerBlock = device.shared_memory_per_block;
  engine.sharedMemPerMultiprocessor = device.shared_memory_per_multiprocessor;
  engine.numSms = device.multiprocessor_count;
  engine.sharedMemPerBlockOptin = device.shared_memory_per_block_optin;
  engine.reservedSharedMemPerBlock = device.reserved_shared_memory_per_block;
  return engine;
}

int bound(int engine_value) {
  return engine_value == INT_MAX ? occupancy_bounds::unlimited : engine_value;
}

void validate(const device_properties& device, const kernel_resources& kernel, const launch_shape& launch) {
  if (launch.threads_per_block <= 0 || launch.threads_per_block > device.max_threads_per_block)
    throw invalid_argument("threads per block must be 1.." + std::to_string(device.max_threads_per_block) +
                           ", got " + std::to_string(launch.threads_per_block));
  if (kernel.registers_per_thread < 0 || kernel.registers_per_thread > max_registers_per_thread)
    throw invalid_argument("registers per thread must be 0.." + std::to_string(max_registers_per_thread) +
                           ", got " + std::to_string(kernel.registers_per_thread));
  if (kernel.static_shared_bytes > max_shared_bytes || launch.dynamic_shared_bytes > max_shared_bytes)
    throw invalid_argument("shared memory per block must be at most 1 GiB");
  if (kernel.block_barriers < 0 || kernel.block_barriers > 16)
    throw invalid_argument("block barriers must be 0..16, got " + std::to_string(kernel.block_barriers));
}

}  // namespace

std::string_view to_string(occupancy_limiter limiter) {
  switch (limiter) {
    case occupancy_limiter::warps: return "warps";
    case occupancy_limiter::registers: return "registers";
    case occupancy_limiter::shared_memory: return "shared_memory";
    case occupancy_limiter::blocks: return "blocks";
    case occupancy_limiter::barriers: return "barriers";
  }
  return "unknown";
}

occupancy_result compute_occupancy(const device_properties& device, const kernel_resources& kernel,
                                   const launch_shape& launch) {
  validate(device, kernel, launch);

  const cudaOccDeviceProp engine_device = to_engine(device);
  cudaOccFuncAttributes attributes;
  attributes.maxThreadsPerBlock = device.max_threads_per_block;
  attributes.numRegs = kernel.registers_per_thread;
  attributes.sharedSizeBytes = kernel.static_shared_bytes;
  attributes.partitionedGCConfig = PARTITIONED_GC_OFF;
  // As if the kernel raised cudaFuncAttributeMaxDynamicSharedMemorySize to
  // everything the device allows: the question asked is what the hardware can
  // hold, not what a default attribute permits.
  attributes.shmemLimitConfig = FUNC_SHMEM_LIMIT_OPTIN;
  const std::uint64_t optin = device.shared_memory_per_block_optin;
  attributes.maxDynamicSharedSizeBytes = optin > kernel.static_shared_bytes ? optin - kernel.static_shared_bytes : 0;
  attributes.numBlockBarriers = kernel.block_barriers;
  const cudaOccDeviceState state;

  cudaOccResult engine_result{};
  const cudaOccError status = cudaOccMaxActiveBlocksPerMultiprocessor(
      &engine_result, &engine_device, &attributes, &state, launch.threads_per_block,
      launch.dynamic_shared_bytes);
  if (status == CUDA_OCC_ERROR_UNKNOWN_DEVICE)
    throw invalid_argument("the occupancy engine does not know compute capability " +
                           device.capability.architecture_name());
  if (status != CUDA_OCC_SUCCESS)
    throw invalid_argument("the occupancy engine rejected the device properties of " + device.name);

  occupancy_result result;
  result.active_blocks_per_multiprocessor = engine_result.activeBlocksPerMultiprocessor;
  const int warps_per_block = (launch.threads_per_block + device.warp_size - 1) / device.warp_size;
  result.active_warps_per_multiprocessor = result.active_blocks_per_multiprocessor * warps_per_block;
  result.max_warps_per_multiprocessor = device.max_warps_per_multiprocessor();
  result.occupancy = result.max_warps_per_multiprocessor > 0
                         ? static_cast<double>(result.active_warps_per_multiprocessor) /
                               result.max_warps_per_multiprocessor
                         : 0.0;
  result.bounds = {bound(engine_result.blockLimitWarps), bound(engine_result.blockLimitRegs),
                   bound(engine_result.blockLimitSharedMem), bound(engine_result.blockLimitBlocks),
                   bound(engine_result.blockLimitBarriers)};
  result.allocated_registers_per_block = engine_result.allocatedRegistersPerBlock;
  result.allocated_shared_bytes_per_block = engine_result.allocatedSharedMemPerBlock;

  // Named from the per-resource bounds rather than CUDA's bit mask: the mask
  // keeps a pre-barrier bit (e.g. "blocks") even when barriers cut the count.
  const std::pair<int, occupancy_limiter> bounds[] = {
      {result.bounds.warps, occupancy_limiter::warps},
      {result.bounds.registers, occupancy_limiter::registers},
      {result.bounds.shared_memory, occupancy_limiter::shared_memory},
      {result.bounds.blocks, occupancy_limiter::blocks},
      {result.bounds.barriers, occupancy_limiter::barriers}};
  for (const auto& [blocks, limiter] : bounds)
    if (blocks == result.active_blocks_per_multiprocessor) result.limiters.push_back(limiter);
  if (!result.limiters.empty()) result.limiter = result.limiters.front();
  return result;
}

block_size_recommendation recommend_block_size(const device_properties& device, const kernel_resources& kernel,
                                               std::uint64_t dynamic_shared_bytes, int step) {
  if (step <= 0 || step > device.max_threads_per_block)
    throw invalid_argument("block size step must be 1.." + std::to_string(device.max_threads_per_block));
  block_size_recommendation recommendation;
  int best_warps = 0;  // compared as integers: occupancy is warps / a constant
  for (int threads = step; threads <= device.max_threads_per_block; threads += step) {
    occupancy_row row{threads, compute_occupancy(device, kernel, {threads, dynamic_shared_bytes}), false};
    best_warps = std::max(best_warps, row.result.active_warps_per_multiprocessor);
    recommendation.rows.push_back(std::move(row));
  }
  for (auto& row : recommendation.rows) {
    row.best = best_warps > 0 && row.result.active_warps_per_multiprocessor == best_warps;
    if (row.best && recommendation.recommended_threads_per_block == 0)
      recommendation.recommended_threads_per_block = row.threads_per_block;
  }
  if (recommendation.recommended_threads_per_block == 0) {
    recommendation.reason = "no block size can run: every size is limited to 0 blocks per SM";
    return recommendation;
  }
  const auto& chosen = *std::find_if(recommendation.rows.begin(), recommendation.rows.end(),
                                     [&](const occupancy_row& row) {
                                       return row.threads_per_block ==
                                              recommendation.recommended_threads_per_block;
                                     });
  const auto best_count = std::count_if(recommendation.rows.begin(), recommendation.rows.end(),
                                        [](const occupancy_row& row) { return row.best; });
  const int percent = static_cast<int>(chosen.result.occupancy * 100.0 + 0.5);
  recommendation.reason =
      std::to_string(chosen.threads_per_block) + " threads: the smallest of the " + std::to_string(best_count) +
      " block size" + (best_count == 1 ? "" : "s") + " reaching the highest occupancy (" + std::to_string(percent) +
      "%, " + std::to_string(chosen.result.active_blocks_per_multiprocessor) + " blocks/SM, limited by " +
      std::string(to_string(chosen.result.limiter)) +
      "); smaller blocks at equal occupancy mean more resident blocks per SM, so barrier stalls "
      "overlap and the last wave is finer-grained";
  return recommendation;
}

}  // namespace tunekit::cuda
