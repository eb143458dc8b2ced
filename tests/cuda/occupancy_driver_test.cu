// GPU check of the occupancy engine against the live driver:
// cudaOccupancyMaxActiveBlocksPerMultiprocessor on real kernels compiled with
// many register counts (__maxnreg__) and static shared sizes, over block sizes
// × dynamic shared memory. Every combination must agree.
// With TUNEKIT_OCCUPANCY_REPORT=path it writes the run's summary as JSON.

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "tunekit/cuda/device.hpp"
#include "tunekit/cuda/occupancy.hpp"

namespace tc = tunekit::cuda;

namespace {

#define CHECK_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call

// R live accumulators under a cap of R registers: the kernel wants about R
// registers, so the compiler lands on (or near) the cap.
template <int R, int STATIC_BYTES>
__global__ void __maxnreg__(R) register_pressure(float* out, const float* in, int n) {
  constexpr int live = R > 8 ? R - 8 : 1;
  float acc[live];
#pragma unroll
  for (int i = 0; i < live; ++i) acc[i] = in[(threadIdx.x + i * 131) % n];
#pragma unroll
  for (int round = 0; round < 2; ++round)
#pragma unroll
    for (int i = 0; i < live; ++i) acc[i] = acc[i] * acc[(i + 7) % live] + acc[(i + 3) % live];
  if constexpr (STATIC_BYTES > 0) {
    __shared__ float staged[STATIC_BYTES / 4];
    for (int i = threadIdx.x; i < STATIC_BYTES / 4; i += blockDim.x) staged[i] = acc[0] + static_cast<float>(i);
    __syncthreads();
    acc[0] += staged[(threadIdx.x * 17) % (STATIC_BYTES / 4)];
  } else {
    __syncthreads();
  }
  float sum = 0.0f;
#pragma unroll
  for (int i = 0; i < live; ++i) sum += acc[i];
  out[blockIdx.x * blockDim.x + threadIdx.x] = sum;
}

struct kernel_variant {
  const void* function;
  int register_cap;
  int static_bytes;
};

template <int R, int S>
kernel_variant variant() {
  return {reinterpret_cast<const void*>(&register_pressure<R, S>), R, S};
}

std::vector<kernel_variant> variants() {
  return {variant<16, 0>(),     variant<24, 0>(),     variant<32, 0>(),     variant<37, 0>(),
          variant<40, 0>(),     variant<48, 0>(),     variant<56, 0>(),     variant<64, 0>(),
          variant<72, 0>(),     variant<80, 0>(),     variant<90, 0>(),     variant<96, 0>(),
          variant<104, 0>(),    variant<112, 0>(),    variant<128, 0>(),    variant<136, 0>(),
          variant<152, 0>(),    variant<168, 0>(),    variant<184, 0>(),    variant<200, 0>(),
          variant<216, 0>(),    variant<232, 0>(),    variant<248, 0>(),    variant<255, 0>(),
          variant<32, 12288>(), variant<64, 12288>(), variant<128, 12288>(), variant<255, 12288>(),
          variant<32, 40960>(), variant<64, 40960>(), variant<128, 40960>(), variant<255, 40960>()};
}

}  // namespace

TEST(OccupancyDriverGpu, EqualsCudaOccupancyMaxActiveBlocksPerMultiprocessor) {
  if (tc::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  CHECK_CUDA(cudaSetDevice(0));
  const auto device = tc::live_device(0);

  std::vector<int> block_sizes{1, 31, 33, 100, 250, 500, 999};
  for (int threads = 32; threads <= device.max_threads_per_block; threads += 32) block_sizes.push_back(threads);
  const auto optin = static_cast<long long>(device.shared_memory_per_block_optin);

  long long combinations = 0;
  long long matches = 0;
  long long driver_errors = 0;
  std::set<int> register_counts;
  std::set<long long> dynamic_values;
  std::map<std::string, long long> limiters;
  nlohmann::ordered_json mismatches = nlohmann::ordered_json::array();

  for (const auto& kernel : variants()) {
    cudaFuncAttributes attributes{};
    CHECK_CUDA(cudaFuncGetAttributes(&attributes, kernel.function));
    const long long max_dynamic = optin - static_cast<long long>(attributes.sharedSizeBytes);
    // Opt in to the full dynamic shared memory, as tunekit's model assumes.
    CHECK_CUDA(cudaFuncSetAttribute(kernel.function, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(max_dynamic)));
    register_counts.insert(attributes.numRegs);
    const std::vector<long long> dynamic_sizes{0,          1,          1000,       4096,          12000,
                                               24576,      49152,      60000,      80000,         102400,
                                               116736,     150000,     200000,     max_dynamic,   max_dynamic + 1};
    for (int threads : block_sizes) {
      for (long long dynamic : dynamic_sizes) {
        if (dynamic < 0) continue;
        dynamic_values.insert(dynamic);
        int driver_blocks = -1;
        const cudaError_t status = cudaOccupancyMaxActiveBlocksPerMultiprocessor(
            &driver_blocks, kernel.function, threads, static_cast<size_t>(dynamic));
        if (status != cudaSuccess) {
          (void)cudaGetLastError();
          ++driver_errors;
          driver_blocks = 0;  // the driver refuses what cannot launch
        }
        const auto model = tc::compute_occupancy(
            device, {attributes.numRegs, static_cast<std::uint64_t>(attributes.sharedSizeBytes), 1},
            {threads, static_cast<std::uint64_t>(dynamic)});
        ++combinations;
        ++limiters[std::string(tc::to_string(model.limiter))];
        if (model.active_blocks_per_multiprocessor == driver_blocks) {
          ++matches;
        } else if (mismatches.size() < 50) {
          mismatches.push_back({{"registers", attributes.numRegs},
                                {"static_shared_bytes", attributes.sharedSizeBytes},
                                {"threads", threads},
                                {"dynamic_shared_bytes", dynamic},
                                {"driver", driver_blocks},
                                {"tunekit", model.active_blocks_per_multiprocessor},
                                {"driver_status", cudaGetErrorName(status)}});
        }
      }
    }
  }

  int driver_version = 0;
  int runtime_version = 0;
  CHECK_CUDA(cudaDriverGetVersion(&driver_version));
  CHECK_CUDA(cudaRuntimeGetVersion(&runtime_version));
  nlohmann::ordered_json summary;
  summary["check"] = "tunekit compute_occupancy vs cudaOccupancyMaxActiveBlocksPerMultiprocessor";
  summary["produced_by"] = "TUNEKIT_OCCUPANCY_REPORT=FILE build/tests/cuda_occupancy_driver_test";
  summary["device"] = device.name;
  summary["arch"] = device.capability.architecture_name();
  summary["driver_version"] = driver_version;
  summary["runtime_version"] = runtime_version;
  summary["combinations"] = combinations;
  summary["equal"] = matches;
  summary["equal_fraction"] = combinations > 0 ? static_cast<double>(matches) / static_cast<double>(combinations) : 0.0;
  summary["driver_refusals_counted_as_zero"] = driver_errors;
  summary["kernels"] = variants().size();
  summary["distinct_register_counts"] = register_counts;
  summary["block_sizes"] = block_sizes;
  summary["dynamic_shared_bytes"] = dynamic_values;
  summary["limiters_seen"] = limiters;
  summary["mismatches"] = mismatches;
  if (const char* path = std::getenv("TUNEKIT_OCCUPANCY_REPORT")) {
    std::ofstream(path) << summary.dump(2) << '\n';
  }
  std::printf("occupancy vs driver: %lld of %lld combinations equal (%zu register counts)\n", matches,
              combinations, register_counts.size());
  EXPECT_GE(combinations, 10000);
  EXPECT_EQ(matches, combinations) << summary["mismatches"].dump();
  EXPECT_GE(register_counts.size(), 16u);
}
