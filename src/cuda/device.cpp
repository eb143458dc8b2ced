#include "tunekit/cuda/device.hpp"

#include <cuda_runtime_api.h>

#include <string>

#include "cuda/detail/cuda_check.hpp"
#include "tunekit/error.hpp"

namespace tunekit::cuda {

namespace {

// The static runtime loads libcuda lazily, so this is where a machine without
// a driver shows up: as an error code, which we turn into a reason.
std::string describe_unavailable(cudaError_t status) {
  switch (status) {
    case cudaErrorNoDevice:
      return "no CUDA device found";
    case cudaErrorInsufficientDriver:
      return "no CUDA device found (no usable NVIDIA driver on this machine)";
    default:
      return std::string("no CUDA device found (") + cudaGetErrorName(status) + ": " +
             cudaGetErrorString(status) + ")";
  }
}

int attribute(cudaDeviceAttr which, int ordinal) {
  int value = 0;
  TUNEKIT_CUDA_CHECK(cudaDeviceGetAttribute(&value, which, ordinal));
  return value;
}

device_properties read_device(int ordinal) {
  cudaDeviceProp raw{};
  TUNEKIT_CUDA_CHECK(cudaGetDeviceProperties(&raw, ordinal));
  device_properties properties;
  properties.name = raw.name;
  properties.capability = {raw.major, raw.minor};
  properties.origin = properties_origin::live_device;
  properties.device_ordinal = ordinal;
  properties.multiprocessor_count = raw.multiProcessorCount;
  // CUDA 13 dropped the clock fields from cudaDeviceProp; attributes remain.
  properties.sm_clock_khz = attribute(cudaDevAttrClockRate, ordinal);
  properties.memory_clock_khz = attribute(cudaDevAttrMemoryClockRate, ordinal);
  properties.memory_bus_width_bits = raw.memoryBusWidth;
  properties.global_memory_bytes = raw.totalGlobalMem;
  properties.l2_cache_bytes = static_cast<std::uint64_t>(raw.l2CacheSize);
  properties.shared_memory_per_multiprocessor = raw.sharedMemPerMultiprocessor;
  properties.shared_memory_per_block = raw.sharedMemPerBlock;
  properties.shared_memory_per_block_optin = raw.sharedMemPerBlockOptin;
  properties.reserved_shared_memory_per_block = raw.reservedSharedMemPerBlock;
  properties.registers_per_multiprocessor = raw.regsPerMultiprocessor;
  properties.registers_per_block = raw.regsPerBlock;
  properties.warp_size = raw.warpSize;
  properties.max_threads_per_block = raw.maxThreadsPerBlock;
  properties.max_threads_per_multiprocessor = raw.maxThreadsPerMultiProcessor;
  properties.max_blocks_per_multiprocessor = raw.maxBlocksPerMultiProcessor;
  properties.copy_engines = raw.asyncEngineCount;
  return properties;
}

}  // namespace

int device_count() noexcept {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return 0;
  }
  return count;
}

device_inventory query_devices() {
  device_inventory inventory;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    inventory.unavailable_reason = describe_unavailable(status);
    return inventory;
  }
  if (count == 0) {
    inventory.unavailable_reason = describe_unavailable(cudaErrorNoDevice);
    return inventory;
  }
  inventory.devices.reserve(static_cast<std::size_t>(count));
  for (int ordinal = 0; ordinal < count; ++ordinal) inventory.devices.push_back(read_device(ordinal));
  return inventory;
}

device_properties live_device(int ordinal) {
  const int count = device_count();
  if (ordinal < 0 || ordinal >= count)
    throw invalid_argument("no CUDA device " + std::to_string(ordinal) + " (this machine has " +
                           std::to_string(count) + ")");
  return read_device(ordinal);
}

}  // namespace tunekit::cuda
