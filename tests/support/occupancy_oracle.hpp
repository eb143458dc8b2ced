#pragma once
// Test oracle: the toolkit's cuda_occupancy.h called directly, fed limits
// written out here independently of tunekit's architecture table (from the
// CUDA C++ Programming Guide's per-compute-capability table), so a wrong
// table entry or a wrong mapping into the engine fails the tests.

#include <cuda_occupancy.h>

#include <array>
#include <cstddef>
#include <string>

namespace oracle {

struct arch_limits {
  const char* name;
  int major, minor;
  int threads_per_sm;
  std::size_t smem_per_sm, smem_optin, smem_reserved;
  int blocks_per_sm;
};

inline constexpr std::array<arch_limits, 8> architectures{{
    {"sm_70", 7, 0, 2048, 98304, 98304, 0, 32},
    {"sm_75", 7, 5, 1024, 65536, 65536, 0, 16},
    {"sm_80", 8, 0, 2048, 167936, 166912, 1024, 32},
    {"sm_86", 8, 6, 1536, 102400, 101376, 1024, 16},
    {"sm_89", 8, 9, 1536, 102400, 101376, 1024, 24},
    {"sm_90", 9, 0, 2048, 233472, 232448, 1024, 32},
    {"sm_100", 10, 0, 2048, 233472, 232448, 1024, 32},
    {"sm_120", 12, 0, 1536, 102400, 101376, 1024, 24},
}};

struct answer {
  int blocks = 0;
  unsigned limiting_factors = 0;
};

inline cudaOccDeviceProp device_for(const arch_limits& arch) {
  cudaOccDeviceProp device;
  device.computeMajor = arch.major;
  device.computeMinor = arch.minor;
  device.maxThreadsPerBlock = 1024;
  device.maxThreadsPerMultiprocessor = arch.threads_per_sm;
  device.regsPerBlock = 65536;
  device.regsPerMultiprocessor = 65536;
  device.warpSize = 32;
  device.sharedMemPerBlock = 49152;
  device.sharedMemPerMultiprocessor = arch.smem_per_sm;
  device.numSms = 1;
  device.sharedMemPerBlockOptin = arch.smem_optin;
  device.reservedSharedMemPerBlock = arch.smem_reserved;
  return device;
}

/// Blocks per SM for a kernel that opted in to the full dynamic shared memory.
inline answer occupancy(const arch_limits& arch, int threads, int registers, std::size_t static_smem,
                        std::size_t dynamic_smem, int barriers = 1) {
  const cudaOccDeviceProp device = device_for(arch);
  cudaOccFuncAttributes attributes;
  attributes.maxThreadsPerBlock = 1024;
  attributes.numRegs = registers;
  attributes.sharedSizeBytes = static_smem;
  attributes.shmemLimitConfig = FUNC_SHMEM_LIMIT_OPTIN;
  attributes.maxDynamicSharedSizeBytes = arch.smem_optin > static_smem ? arch.smem_optin - static_smem : 0;
  attributes.numBlockBarriers = barriers;
  cudaOccDeviceState state;
  cudaOccResult result{};
  if (cudaOccMaxActiveBlocksPerMultiprocessor(&result, &device, &attributes, &state, threads, dynamic_smem) !=
      CUDA_OCC_SUCCESS)
    return {-1, 0};
  return {result.activeBlocksPerMultiprocessor, result.limitingFactors};
}

}  // namespace oracle
