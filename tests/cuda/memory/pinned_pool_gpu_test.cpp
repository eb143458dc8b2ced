// The pinned pool on a live device, for both pinning methods: the buffers are
// page-locked, copies through them are exact, nothing stays pinned after
// release, and (printed, not asserted) what reuse costs against pinning anew.
// Labelled gpu; skipped where there is no device. The logic is tested on the
// CPU in pinned_pool_test.cpp.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tunekit/cuda/device.hpp"
#include "tunekit/cuda/memory/pinned_pool.hpp"
#include "tunekit/error.hpp"

namespace {

namespace tc = tunekit::cuda;
using pinning_method = tc::pinned_pool_options::method;

constexpr std::size_t mib = std::size_t{1} << 20;

#define ASSERT_CUDA_OK(call)                                                     \
  do {                                                                           \
    const cudaError_t status_of_call = (call);                                   \
    ASSERT_EQ(status_of_call, cudaSuccess) << #call << ": " << cudaGetErrorName(status_of_call); \
  } while (false)

std::string method_name(pinning_method method) {
  return method == pinning_method::host_alloc ? "host_alloc" : "host_register";
}

cudaMemoryType memory_type(const void* pointer) {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, pointer) != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    return cudaMemoryTypeUnregistered;
  }
  return attributes.type;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

using clock_type = std::chrono::steady_clock;

double elapsed_ns(clock_type::time_point from) {
  return std::chrono::duration<double, std::nano>(clock_type::now() - from).count();
}

class PinnedPoolGpu : public testing::TestWithParam<pinning_method> {
 protected:
  void SetUp() override {
    if (tc::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
  [[nodiscard]] tc::pinned_pool_options options(std::uint64_t maximum_bytes = 0) const {
    return {.maximum_bytes = maximum_bytes, .pinning = GetParam(), .checks = true};
  }
};

TEST_P(PinnedPoolGpu, BuffersArePageLockedHostMemory) {
  tc::pinned_pool pool(options());
  for (const std::size_t bytes : {std::size_t{1}, std::size_t{4096}, mib + 5, 64 * mib}) {
    void* buffer = pool.allocate(bytes);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(buffer) % 256, 0u);
    EXPECT_EQ(memory_type(buffer), cudaMemoryTypeHost) << bytes << " bytes";
    // The last byte of the request is pinned too.
    EXPECT_EQ(memory_type(static_cast<char*>(buffer) + bytes - 1), cudaMemoryTypeHost) << bytes << " bytes";
    pool.deallocate(buffer, bytes);
  }
  EXPECT_EQ(pool.statistics().current_bytes, 0u);
}

TEST_P(PinnedPoolGpu, AsyncCopiesThroughPooledBuffersAreExact) {
  tc::pinned_pool pool(options());
  const std::size_t bytes = 16 * mib + 12345;
  cudaStream_t stream = nullptr;
  ASSERT_CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  void* device = nullptr;
  ASSERT_CUDA_OK(cudaMalloc(&device, bytes));
  for (unsigned round = 0; round < 4; ++round) {
    auto* source = static_cast<unsigned char*>(pool.allocate(bytes));
    auto* back = static_cast<unsigned char*>(pool.allocate(bytes));
    for (std::size_t i = 0; i < bytes; ++i) source[i] = static_cast<unsigned char>((i * 131 + round * 7) >> 3);
    std::memset(back, 0, bytes);
    ASSERT_CUDA_OK(cudaMemcpyAsync(device, source, bytes, cudaMemcpyHostToDevice, stream));
    ASSERT_CUDA_OK(cudaMemcpyAsync(back, device, bytes, cudaMemcpyDeviceToHost, stream));
    ASSERT_CUDA_OK(cudaStreamSynchronize(stream));
    EXPECT_EQ(std::memcmp(source, back, bytes), 0) << "round " << round;
    // Returned only once the copies are done, as the pool's contract asks.
    pool.deallocate(back, bytes);
    pool.deallocate(source, bytes);
  }
  ASSERT_CUDA_OK(cudaFree(device));
  ASSERT_CUDA_OK(cudaStreamDestroy(stream));
  const auto stats = pool.statistics();
  EXPECT_EQ(stats.misses, 2u);
  EXPECT_EQ(stats.hits, 6u);
  EXPECT_EQ(stats.current_bytes, 0u);
  EXPECT_EQ(stats.current_count, 0u);
}

TEST_P(PinnedPoolGpu, StatisticsReturnToZeroAndReleaseUnpins) {
  tc::pinned_pool pool(options());
  std::vector<void*> buffers;
  for (const std::size_t bytes : {4096 * std::size_t{3}, 2 * mib, 32 * mib}) buffers.push_back(pool.allocate(bytes));
  EXPECT_EQ(pool.statistics().current_count, 3u);
  EXPECT_EQ(pool.statistics().reserved_bytes, 16384u + 2 * mib + 32 * mib);
  pool.deallocate(buffers[0], 4096 * std::size_t{3});
  pool.deallocate(buffers[1], 2 * mib);
  pool.deallocate(buffers[2], 32 * mib);
  EXPECT_EQ(pool.statistics().current_bytes, 0u);
  pool.release();
  const auto stats = pool.statistics();
  EXPECT_EQ(stats.reserved_bytes, 0u);
  EXPECT_EQ(stats.current_bytes, 0u);
  EXPECT_EQ(stats.current_count, 0u);
  EXPECT_EQ(stats.allocations, stats.deallocations);
  // Nothing is registered with the driver any more.
  for (void* buffer : buffers) EXPECT_EQ(memory_type(buffer), cudaMemoryTypeUnregistered);
}

TEST_P(PinnedPoolGpu, TheLimitGivesATypedOutOfMemory) {
  tc::pinned_pool pool(options(8 * mib));
  void* first = pool.allocate(4 * mib);
  void* second = pool.allocate(4 * mib);
  try {
    static_cast<void>(pool.allocate(4 * mib));
    FAIL() << "no exception";
  } catch (const tunekit::out_of_memory& error) {
    EXPECT_EQ(error.requested(), 4 * mib);
  }
  EXPECT_EQ(pool.statistics().releases, 1u);
  pool.deallocate(first, 4 * mib);
  pool.deallocate(second, 4 * mib);
  // The runtime's error state is clean: the failure was the pool's, not a CUDA error.
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

TEST_P(PinnedPoolGpu, ChecksCatchADoubleFree) {
  tc::pinned_pool pool(options());
  void* buffer = pool.allocate(mib);
  pool.deallocate(buffer, mib);
  EXPECT_THROW(pool.deallocate(buffer, mib), tunekit::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(BothMethods, PinnedPoolGpu,
                         testing::Values(pinning_method::host_alloc, pinning_method::host_register),
                         [](const testing::TestParamInfo<pinning_method>& param) { return method_name(param.param); });

// Where CUDA cannot run, allocate says why with a typed CUDA error (not an
// out_of_memory: retrying cannot help), and the pool holds nothing.
TEST(PinnedPoolWithoutDevice, AllocateThrowsACudaError) {
  if (tc::device_count() != 0) GTEST_SKIP() << "a device is present";
  for (const auto method : {pinning_method::host_alloc, pinning_method::host_register}) {
    tc::pinned_pool pool({.maximum_bytes = 0, .pinning = method, .checks = true});
    EXPECT_THROW(static_cast<void>(pool.allocate(mib)), tunekit::cuda_error) << method_name(method);
    EXPECT_EQ(pool.statistics().reserved_bytes, 0u);
    EXPECT_EQ(pool.statistics().releases, 0u);
  }
}

// Printed, not asserted: the figures behind "pinned pool reuse <= 1 us" and
// "which pinning method is faster". Run with --gtest_filter=*Timing* -V.
TEST(PinnedPoolGpuTiming, ReuseAgainstPinningAnew) {
  if (tc::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  constexpr std::size_t bytes = 64 * mib;

  for (const bool checks : {false, true}) {
    tc::pinned_pool pool({.maximum_bytes = 0, .pinning = pinning_method::host_alloc, .checks = checks});
    pool.deallocate(pool.allocate(bytes), bytes);  // pinned once, cached from now on
    constexpr int batches = 200;
    constexpr int per_batch = 100;
    std::vector<double> per_operation;
    for (int batch = 0; batch < batches; ++batch) {
      const auto start = clock_type::now();
      for (int i = 0; i < per_batch; ++i) {
        void* buffer = pool.allocate(bytes);
        pool.deallocate(buffer, bytes);
      }
      per_operation.push_back(elapsed_ns(start) / per_batch);
    }
    const double reuse_ns = median(per_operation);
    std::printf("pinned pool reuse, 64 MiB, checks %s: allocate+deallocate median %.1f ns\n", checks ? "on" : "off",
                reuse_ns);
    RecordProperty(checks ? "reuse_ns_checks" : "reuse_ns", std::to_string(reuse_ns));
    EXPECT_EQ(pool.statistics().misses, 1u);
  }

  std::vector<double> malloc_host;
  for (int i = 0; i < 10; ++i) {
    void* buffer = nullptr;
    const auto start = clock_type::now();
    ASSERT_CUDA_OK(cudaMallocHost(&buffer, bytes));
    ASSERT_CUDA_OK(cudaFreeHost(buffer));
    malloc_host.push_back(elapsed_ns(start));
  }
  std::printf("cudaMallocHost + cudaFreeHost, 64 MiB: median %.0f ns\n", median(malloc_host));
  RecordProperty("malloc_host_free_ns", std::to_string(median(malloc_host)));

  for (const auto method : {pinning_method::host_alloc, pinning_method::host_register}) {
    std::vector<double> pin;
    std::vector<double> unpin;
    for (int i = 0; i < 10; ++i) {
      tc::pinned_pool pool({.maximum_bytes = 0, .pinning = method, .checks = false});
      auto start = clock_type::now();
      void* buffer = pool.allocate(bytes);  // a miss: pins
      pin.push_back(elapsed_ns(start));
      pool.deallocate(buffer, bytes);
      start = clock_type::now();
      pool.release();  // unpins
      unpin.push_back(elapsed_ns(start));
    }
    std::printf("pin 64 MiB by %s: median %.0f ns (unpin %.0f ns)\n", method_name(method).c_str(), median(pin),
                median(unpin));
    RecordProperty("pin_ns_" + method_name(method), std::to_string(median(pin)));
  }
}

}  // namespace
