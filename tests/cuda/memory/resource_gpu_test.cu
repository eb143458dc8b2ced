// The device memory resource contract on a live device, written once and run
// against every resource: tunekit's device pool, the CUDA async pool adaptor
// and plain cudaMalloc. Alignment; contents written by kernels and read back
// for many sizes; blocks that stay disjoint; memory freed on one stream and
// reused on another only after the first stream's work on it is done (a slow
// kernel would overwrite the new owner's data otherwise); statistics back to
// zero and device memory given back at teardown; out_of_memory for an absurd
// size; checks of frees. Then the pool's own promises (maximum, hits, release)
// and, not an assertion, the median cost of a cached alloc+free.
// Labelled gpu; skipped where there is no device.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <latch>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tunekit/cuda/device.hpp"
#include "tunekit/cuda/memory/resource.hpp"
#include "tunekit/error.hpp"

namespace {

namespace tc = tunekit::cuda;

constexpr std::size_t kib = 1024;
constexpr std::size_t mib = 1024 * 1024;

#define ASSERT_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call

// ---------------------------------------------------------------- kernels

__device__ unsigned char pattern_byte(std::size_t index, unsigned seed) {
  return static_cast<unsigned char>((index * 131u + seed * 7u + (index >> 9)) & 0xffu);
}

__global__ void fill_pattern(unsigned char* bytes, std::size_t count, unsigned seed) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < count;
       i += std::size_t{gridDim.x} * blockDim.x)
    bytes[i] = pattern_byte(i, seed);
}

__global__ void count_pattern_mismatches(const unsigned char* bytes, std::size_t count, unsigned seed,
                                         unsigned long long* mismatches) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < count;
       i += std::size_t{gridDim.x} * blockDim.x)
    if (bytes[i] != pattern_byte(i, seed)) atomicAdd(mismatches, 1ull);
}

__global__ void count_value_mismatches(const std::uint32_t* words, std::size_t count, std::uint32_t value,
                                       unsigned long long* mismatches) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < count;
       i += std::size_t{gridDim.x} * blockDim.x)
    if (words[i] != value) atomicAdd(mismatches, 1ull);
}

__global__ void fill_value(std::uint32_t* words, std::size_t count, std::uint32_t value) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < count;
       i += std::size_t{gridDim.x} * blockDim.x)
    words[i] = value;
}

__device__ std::uint64_t global_nanoseconds() {
  std::uint64_t now = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  return now;
}

// Busy for `nanoseconds`, then writes `value` everywhere: the work a stream
// still has queued on a block when the block is freed.
__global__ void wait_then_fill(std::uint32_t* words, std::size_t count, std::uint32_t value,
                               std::uint64_t nanoseconds) {
  if (threadIdx.x == 0) {
    const std::uint64_t start = global_nanoseconds();
    while (global_nanoseconds() - start < nanoseconds) {
    }
  }
  __syncthreads();
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < count;
       i += std::size_t{gridDim.x} * blockDim.x)
    words[i] = value;
}

unsigned grid_for(std::size_t count) {
  return static_cast<unsigned>(std::clamp<std::size_t>((count + 255) / 256, 1, 2048));
}

// ---------------------------------------------------------------- the resources

struct resource_case {
  std::string name;
  std::function<std::unique_ptr<tc::device_memory_resource>()> make;
};

void PrintTo(const resource_case& resource, std::ostream* out) { *out << resource.name; }

std::unique_ptr<tc::device_memory_resource> make_checked_pool() {
  tc::device_pool_options options;
  options.device = 0;
  options.checks = true;  // the contract's checks, whatever the build type
  return tc::make_device_pool(options);
}

std::vector<resource_case> every_resource() {
  return {{"device_pool", make_checked_pool},
          {"async_pool", [] { return tc::make_async_pool(); }},
          {"plain_device", [] { return tc::make_plain_device_resource(0); }}};
}

class ResourceContractGpu : public ::testing::TestWithParam<resource_case> {
 protected:
  void SetUp() override {
    if (tc::device_count() == 0) GTEST_SKIP() << "no CUDA device";
    resource_ = GetParam().make();
    ASSERT_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    ASSERT_CUDA(cudaMalloc(&mismatches_, sizeof(unsigned long long)));
    ASSERT_CUDA(cudaMemset(mismatches_, 0, sizeof(unsigned long long)));
  }

  void TearDown() override {
    resource_.reset();
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
    if (mismatches_ != nullptr) cudaFree(mismatches_);
  }

  void fill(void* pointer, std::size_t bytes, unsigned seed, cudaStream_t stream) {
    fill_pattern<<<grid_for(bytes), 256, 0, stream>>>(static_cast<unsigned char*>(pointer), bytes, seed);
  }
  void verify(const void* pointer, std::size_t bytes, unsigned seed, cudaStream_t stream) {
    count_pattern_mismatches<<<grid_for(bytes), 256, 0, stream>>>(static_cast<const unsigned char*>(pointer), bytes,
                                                                   seed, mismatches_);
  }
  /// Every mismatch counted so far, after the device is idle.
  unsigned long long mismatches() {
    unsigned long long host = 0;
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(&host, mismatches_, sizeof host, cudaMemcpyDeviceToHost), cudaSuccess);
    return host;
  }

  std::unique_ptr<tc::device_memory_resource> resource_;
  cudaStream_t stream_ = nullptr;
  unsigned long long* mismatches_ = nullptr;
};

TEST_P(ResourceContractGpu, AllocationsOfManySizesAreAlignedWritableAndDisjoint) {
  const std::vector<std::size_t> sizes{1,       255,     256,     257,         1000,        4096,   65537,
                                       mib - 1, mib,     mib + 1, 3 * mib + 5, 16 * mib,    64 * mib};
  std::vector<void*> blocks;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    void* pointer = resource_->allocate(sizes[i], stream_);
    ASSERT_NE(pointer, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(pointer) % 256, 0u) << sizes[i];
    ASSERT_CUDA(cudaMemsetAsync(pointer, 0xa5, sizes[i], stream_));
    fill(pointer, sizes[i], static_cast<unsigned>(i), stream_);
    verify(pointer, sizes[i], static_cast<unsigned>(i), stream_);
    blocks.push_back(pointer);
  }
  // All alive at once: any overlap shows as a changed pattern.
  for (std::size_t i = 0; i < sizes.size(); ++i) verify(blocks[i], sizes[i], static_cast<unsigned>(i), stream_);
  EXPECT_EQ(mismatches(), 0u);
  for (std::size_t i = 0; i < sizes.size(); ++i) resource_->deallocate(blocks[i], sizes[i], stream_);
  ASSERT_CUDA(cudaStreamSynchronize(stream_));
}

TEST_P(ResourceContractGpu, RandomAllocationsAndFreesKeepEveryBlocksContents) {
  std::mt19937_64 random(5);
  std::uniform_real_distribution<double> log_size(std::log(256.0), std::log(8.0 * mib));
  struct block {
    void* pointer = nullptr;
    std::size_t bytes = 0;
    unsigned seed = 0;
  };
  std::vector<block> live;
  const int steps = GetParam().name == "plain_device" ? 200 : 1000;
  for (int step = 0; step < steps; ++step) {
    if (live.empty() || (live.size() < 32 && random() % 2 == 0)) {
      const auto bytes = static_cast<std::size_t>(std::exp(log_size(random)));
      const block fresh{resource_->allocate(bytes, stream_), bytes, static_cast<unsigned>(step)};
      fill(fresh.pointer, fresh.bytes, fresh.seed, stream_);
      live.push_back(fresh);
    } else {
      const auto victim = random() % live.size();
      const block old = live[victim];
      live[victim] = live.back();
      live.pop_back();
      verify(old.pointer, old.bytes, old.seed, stream_);  // queued before the free: stream order
      resource_->deallocate(old.pointer, old.bytes, stream_);
    }
  }
  for (const auto& old : live) {
    verify(old.pointer, old.bytes, old.seed, stream_);
    resource_->deallocate(old.pointer, old.bytes, stream_);
  }
  EXPECT_EQ(mismatches(), 0u);
}

// A block freed on stream A while a slow kernel on A will still write X into
// it; then stream B allocates the same size until it gets that block back (or
// gives up) and writes Y into what it got. Correct reuse orders B's write
// after A's kernel, so every B block ends as Y and A's copy taken after its
// kernel sees X. Unsafe reuse lets B write first and A's late write win.
TEST_P(ResourceContractGpu, MemoryFreedOnOneStreamIsReusedOnAnotherOnlyAfterTheFirstIsDoneWithIt) {
  cudaStream_t other = nullptr;
  ASSERT_CUDA(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking));
  for (const std::size_t bytes : {1 * mib, 8 * mib}) {
    SCOPED_TRACE(bytes);
    const std::size_t words = bytes / 4;
    const std::uint32_t first_value = 0x11111111u;
    const std::uint32_t second_value = 0x22222222u;
    std::uint32_t* seen_by_first = nullptr;
    ASSERT_CUDA(cudaMalloc(&seen_by_first, bytes));

    void* block = resource_->allocate(bytes, stream_);
    wait_then_fill<<<4, 256, 0, stream_>>>(static_cast<std::uint32_t*>(block), words, first_value, 50'000'000);
    ASSERT_CUDA(cudaMemcpyAsync(seen_by_first, block, bytes, cudaMemcpyDeviceToDevice, stream_));
    resource_->deallocate(block, bytes, stream_);

    std::vector<void*> taken;
    bool reused = false;
    while (!reused && taken.size() < 16) {
      void* pointer = resource_->allocate(bytes, other);
      fill_value<<<grid_for(words), 256, 0, other>>>(static_cast<std::uint32_t*>(pointer), words, second_value);
      taken.push_back(pointer);
      reused = pointer == block;
    }
    ASSERT_CUDA(cudaDeviceSynchronize());
    count_value_mismatches<<<grid_for(words), 256, 0, stream_>>>(seen_by_first, words, first_value, mismatches_);
    for (void* pointer : taken)
      count_value_mismatches<<<grid_for(words), 256, 0, stream_>>>(static_cast<std::uint32_t*>(pointer), words,
                                                                    second_value, mismatches_);
    EXPECT_EQ(mismatches(), 0u) << (reused ? "the block was reused on the second stream"
                                           : "the block was not reused within 16 allocations");
    // The pool always hands it over (after a wait); the others may or may not.
    if (GetParam().name == "device_pool") EXPECT_TRUE(reused);
    std::printf("[          ] %s, %zu bytes: %s on the second stream after %zu allocation(s)\n",
                GetParam().name.c_str(), bytes, reused ? "reused" : "not reused", taken.size());
    for (void* pointer : taken) resource_->deallocate(pointer, bytes, other);
    ASSERT_CUDA(cudaStreamSynchronize(other));
    ASSERT_CUDA(cudaFree(seen_by_first));
  }
  ASSERT_CUDA(cudaStreamDestroy(other));
}

// The same hand-over between two threads on their per-thread default streams:
// the one handle value cudaStreamPerThread names a different stream in each.
TEST_P(ResourceContractGpu, MemoryFreedOnOneThreadsDefaultStreamIsSafeOnAnothers) {
  // On an H200 (driver 580.159.04) this hand-over never finished with the
  // CUDA async pool: the test ran past a minute. Left for its own issue.
  if (GetParam().name == "async_pool") GTEST_SKIP() << "hangs with the CUDA async pool: under investigation";
  const auto per_thread = reinterpret_cast<tc::stream_handle>(cudaStreamPerThread);
  const std::size_t bytes = 1 * mib;
  const std::size_t words = bytes / 4;
  std::uint32_t* seen_by_first = nullptr;
  ASSERT_CUDA(cudaMalloc(&seen_by_first, bytes));
  void* block = nullptr;
  std::vector<void*> taken;
  std::latch freed(1);
  std::latch finished(1);
  std::thread first([&] {
    block = resource_->allocate(bytes, per_thread);
    wait_then_fill<<<4, 256, 0, cudaStreamPerThread>>>(static_cast<std::uint32_t*>(block), words, 0x33333333u,
                                                       50'000'000);
    cudaMemcpyAsync(seen_by_first, block, bytes, cudaMemcpyDeviceToDevice, cudaStreamPerThread);
    resource_->deallocate(block, bytes, per_thread);
    freed.count_down();
    finished.wait();  // the thread (and its stream) outlives the hand-over
  });
  std::thread second([&] {
    freed.wait();
    for (bool reused = false; !reused && taken.size() < 16;) {
      void* pointer = resource_->allocate(bytes, per_thread);
      fill_value<<<grid_for(words), 256, 0, cudaStreamPerThread>>>(static_cast<std::uint32_t*>(pointer), words,
                                                                   0x44444444u);
      taken.push_back(pointer);
      reused = pointer == block;
    }
    cudaStreamSynchronize(cudaStreamPerThread);
    finished.count_down();
  });
  first.join();
  second.join();
  ASSERT_CUDA(cudaDeviceSynchronize());
  count_value_mismatches<<<grid_for(words), 256, 0, stream_>>>(seen_by_first, words, 0x33333333u, mismatches_);
  for (void* pointer : taken)
    count_value_mismatches<<<grid_for(words), 256, 0, stream_>>>(static_cast<std::uint32_t*>(pointer), words,
                                                                  0x44444444u, mismatches_);
  EXPECT_EQ(mismatches(), 0u);
  if (GetParam().name == "device_pool") EXPECT_EQ(taken.back(), block);
  for (void* pointer : taken) resource_->deallocate(pointer, bytes, stream_);
  ASSERT_CUDA(cudaStreamSynchronize(stream_));
  ASSERT_CUDA(cudaFree(seen_by_first));
}

TEST_P(ResourceContractGpu, ThreadsOnTheirOwnStreamsNeverSeeEachOthersData) {
  constexpr int threads = 4;
  const int steps = GetParam().name == "plain_device" ? 60 : 300;
  std::vector<std::thread> workers;
  for (int thread = 0; thread < threads; ++thread) {
    workers.emplace_back([&, thread] {
      cudaStream_t stream = nullptr;
      cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
      std::mt19937_64 random(static_cast<std::uint64_t>(thread) + 11);
      std::uniform_real_distribution<double> log_size(std::log(256.0), std::log(2.0 * mib));
      struct block {
        void* pointer = nullptr;
        std::size_t bytes = 0;
        unsigned seed = 0;
      };
      std::vector<block> live;
      for (int step = 0; step < steps; ++step) {
        if (live.empty() || (live.size() < 8 && random() % 2 == 0)) {
          const auto bytes = static_cast<std::size_t>(std::exp(log_size(random)));
          const block fresh{resource_->allocate(bytes, stream), bytes,
                            static_cast<unsigned>(thread * 100000 + step)};
          fill(fresh.pointer, fresh.bytes, fresh.seed, stream);
          live.push_back(fresh);
        } else {
          const auto victim = random() % live.size();
          const block old = live[victim];
          live[victim] = live.back();
          live.pop_back();
          verify(old.pointer, old.bytes, old.seed, stream);
          resource_->deallocate(old.pointer, old.bytes, stream);
        }
      }
      for (const auto& old : live) {
        verify(old.pointer, old.bytes, old.seed, stream);
        resource_->deallocate(old.pointer, old.bytes, stream);
      }
      cudaStreamSynchronize(stream);
      // Blocks freed on this stream may sit in a pool's cache: a stream the
      // pool may still steal from must outlive that, so release first.
      resource_->release();
      cudaStreamDestroy(stream);
    });
  }
  for (auto& worker : workers) worker.join();
  EXPECT_EQ(mismatches(), 0u);
  EXPECT_EQ(resource_->statistics().current_count, 0u);
}

TEST_P(ResourceContractGpu, StatisticsCountEveryCallAndReturnToZero) {
  const auto before = resource_->statistics();
  const std::vector<std::size_t> sizes{256, 1000, 64 * kib, mib, 5 * mib, 32 * mib};
  std::vector<void*> blocks;
  std::uint64_t total = 0;
  for (const auto bytes : sizes) {
    blocks.push_back(resource_->allocate(bytes, stream_));
    total += bytes;
  }
  auto statistics = resource_->statistics();
  EXPECT_EQ(statistics.allocations, before.allocations + sizes.size());
  EXPECT_EQ(statistics.current_count, sizes.size());
  EXPECT_EQ(statistics.current_bytes, total);
  EXPECT_GE(statistics.peak_bytes, total);
  EXPECT_GE(statistics.reserved_bytes, total);
  for (std::size_t i = 0; i < sizes.size(); ++i) resource_->deallocate(blocks[i], sizes[i], stream_);
  ASSERT_CUDA(cudaStreamSynchronize(stream_));
  statistics = resource_->statistics();
  EXPECT_EQ(statistics.current_bytes, 0u);
  EXPECT_EQ(statistics.current_count, 0u);
  EXPECT_EQ(statistics.deallocations, statistics.allocations);
  if (GetParam().name == "device_pool") EXPECT_EQ(statistics.hits + statistics.misses, statistics.allocations);
  if (GetParam().name == "plain_device") EXPECT_EQ(statistics.misses, statistics.allocations);
  resource_->release();
  statistics = resource_->statistics();
  EXPECT_EQ(statistics.reserved_bytes, 0u);
  EXPECT_GE(statistics.releases, before.releases + 1);
}

TEST_P(ResourceContractGpu, TeardownGivesEveryByteBackToTheDevice) {
  ASSERT_CUDA(cudaDeviceSynchronize());
  std::size_t free_before = 0;
  std::size_t total = 0;
  ASSERT_CUDA(cudaMemGetInfo(&free_before, &total));
  {
    auto resource = GetParam().make();
    std::vector<std::pair<void*, std::size_t>> blocks;
    for (const std::size_t bytes : {64 * mib, 3 * mib, 300 * kib, 4 * kib, 128 * mib}) {
      blocks.emplace_back(resource->allocate(bytes, stream_), bytes);
      ASSERT_CUDA(cudaMemsetAsync(blocks.back().first, 0, bytes, stream_));
    }
    // Half back to the cache, half still handed out... then all of it.
    for (std::size_t i = 0; i < blocks.size(); i += 2) resource->deallocate(blocks[i].first, blocks[i].second, stream_);
    for (std::size_t i = 1; i < blocks.size(); i += 2) resource->deallocate(blocks[i].first, blocks[i].second, stream_);
    EXPECT_EQ(resource->statistics().current_bytes, 0u);
  }
  ASSERT_CUDA(cudaDeviceSynchronize());
  std::size_t free_after = 0;
  ASSERT_CUDA(cudaMemGetInfo(&free_after, &total));
  EXPECT_GE(free_after + 8 * mib, free_before) << "lost " << (free_before - free_after) / mib << " MiB";
}

TEST_P(ResourceContractGpu, AnAbsurdSizeThrowsOutOfMemoryAndTheResourceStillWorks) {
  const auto before = resource_->statistics();
  const std::size_t absurd = std::size_t{1} << 50;  // 1 PiB
  try {
    (void)resource_->allocate(absurd, stream_);
    ADD_FAILURE() << "no out_of_memory";
  } catch (const tunekit::out_of_memory& failure) {
    EXPECT_EQ(failure.requested(), absurd);
  }
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "the failed allocation left an error behind";
  const auto after = resource_->statistics();
  EXPECT_EQ(after.allocations, before.allocations);
  EXPECT_GE(after.releases, before.releases + 1) << "the cache is released before giving up";
  void* pointer = resource_->allocate(mib, stream_);
  ASSERT_CUDA(cudaMemsetAsync(pointer, 0, mib, stream_));
  resource_->deallocate(pointer, mib, stream_);
  ASSERT_CUDA(cudaStreamSynchronize(stream_));
}

TEST_P(ResourceContractGpu, ZeroBytesIsAnInvalidArgument) {
  EXPECT_THROW((void)resource_->allocate(0, stream_), tunekit::invalid_argument);
}

TEST_P(ResourceContractGpu, WithChecksDoubleFreeAndForeignPointersThrowInvalidArgument) {
  if (GetParam().name != "device_pool" && !tc::default_memory_checks)
    GTEST_SKIP() << "checks are off in this build (NDEBUG)";
  void* pointer = resource_->allocate(4 * kib, stream_);
  resource_->deallocate(pointer, 4 * kib, stream_);
  EXPECT_THROW(resource_->deallocate(pointer, 4 * kib, stream_), tunekit::invalid_argument);
  void* foreign = nullptr;
  ASSERT_CUDA(cudaMalloc(&foreign, 4 * kib));
  EXPECT_THROW(resource_->deallocate(foreign, 4 * kib, stream_), tunekit::invalid_argument);
  ASSERT_CUDA(cudaFree(foreign));
  int host_value = 0;
  EXPECT_THROW(resource_->deallocate(&host_value, sizeof host_value, stream_), tunekit::invalid_argument);
  void* sized = resource_->allocate(8 * kib, stream_);
  EXPECT_THROW(resource_->deallocate(sized, 4 * kib, stream_), tunekit::invalid_argument);
  resource_->deallocate(sized, 8 * kib, stream_);
  EXPECT_EQ(resource_->statistics().current_count, 0u);
  ASSERT_CUDA(cudaStreamSynchronize(stream_));
}

INSTANTIATE_TEST_SUITE_P(EveryResource, ResourceContractGpu, ::testing::ValuesIn(every_resource()),
                         [](const ::testing::TestParamInfo<resource_case>& info) { return info.param.name; });

// ---------------------------------------------------------------- the device pool's own promises

class DevicePoolGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (tc::device_count() == 0) GTEST_SKIP() << "no CUDA device";
    ASSERT_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  void TearDown() override {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  cudaStream_t stream_ = nullptr;
};

TEST_F(DevicePoolGpu, TheMaximumIsEnforcedWithOutOfMemory) {
  tc::device_pool_options options;
  options.maximum_bytes = 64 * mib;
  auto pool = tc::make_device_pool(options);
  void* first = pool->allocate(48 * mib, stream_);
  EXPECT_THROW((void)pool->allocate(48 * mib, stream_), tunekit::out_of_memory);
  EXPECT_LE(pool->statistics().reserved_bytes, 64 * mib);
  pool->deallocate(first, 48 * mib, stream_);
  void* again = pool->allocate(48 * mib, stream_);
  EXPECT_EQ(again, first);
  pool->deallocate(again, 48 * mib, stream_);
  ASSERT_CUDA(cudaStreamSynchronize(stream_));
}

TEST_F(DevicePoolGpu, ACachedSizeIsAHitThatNeverGoesUpstream) {
  auto pool = tc::make_device_pool();
  for (const std::size_t bytes : {4 * kib, 1 * mib, 64 * mib}) {
    pool->deallocate(pool->allocate(bytes, stream_), bytes, stream_);
    const auto before = pool->statistics();
    for (int round = 0; round < 100; ++round) pool->deallocate(pool->allocate(bytes, stream_), bytes, stream_);
    const auto after = pool->statistics();
    EXPECT_EQ(after.hits, before.hits + 100) << bytes;
    EXPECT_EQ(after.misses, before.misses) << bytes;
    EXPECT_EQ(after.upstream_allocations, before.upstream_allocations) << bytes;
  }
}

TEST_F(DevicePoolGpu, ReleaseGivesCachedMemoryBackToTheDevice) {
  auto pool = tc::make_device_pool();
  ASSERT_CUDA(cudaDeviceSynchronize());
  std::size_t free_before = 0;
  std::size_t total = 0;
  ASSERT_CUDA(cudaMemGetInfo(&free_before, &total));
  void* block = pool->allocate(256 * mib, stream_);
  pool->deallocate(block, 256 * mib, stream_);
  std::size_t free_cached = 0;
  ASSERT_CUDA(cudaMemGetInfo(&free_cached, &total));
  EXPECT_LE(free_cached + 256 * mib, free_before + 8 * mib) << "the pool caches the block";
  pool->release();
  std::size_t free_after = 0;
  ASSERT_CUDA(cudaMemGetInfo(&free_after, &total));
  EXPECT_GE(free_after + 8 * mib, free_before);
  EXPECT_EQ(pool->statistics().reserved_bytes, 0u);
}

// ---------------------------------------------------------------- cost (printed, not asserted)

double median_ns_per_alloc_free(tc::device_memory_resource& resource, std::size_t bytes, cudaStream_t stream,
                                int batches, int per_batch) {
  for (int warm = 0; warm < 10; ++warm) resource.deallocate(resource.allocate(bytes, stream), bytes, stream);
  std::vector<double> samples;
  for (int batch = 0; batch < batches; ++batch) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < per_batch; ++i) resource.deallocate(resource.allocate(bytes, stream), bytes, stream);
    const std::chrono::duration<double, std::nano> elapsed = std::chrono::steady_clock::now() - start;
    samples.push_back(elapsed.count() / per_batch);
  }
  std::nth_element(samples.begin(), samples.begin() + static_cast<long>(samples.size() / 2), samples.end());
  return samples[samples.size() / 2];
}

TEST(ResourceCostGpu, PrintsTheMedianCostOfACachedAllocAndFree) {
  if (tc::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  cudaStream_t stream = nullptr;
  ASSERT_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  tc::device_pool_options options;
  options.checks = false;  // as a release build runs it
  auto pool = tc::make_device_pool(options);
  auto async = tc::make_async_pool();
  auto plain = tc::make_plain_device_resource(0);
  for (const std::size_t bytes : {1 * mib, 64 * mib}) {
    const double pool_ns = median_ns_per_alloc_free(*pool, bytes, stream, 200, 100);
    const double async_ns = median_ns_per_alloc_free(*async, bytes, stream, 200, 100);
    const double plain_ns = median_ns_per_alloc_free(*plain, bytes, stream, 10, 5);
    std::printf("[          ] alloc+free of %zu bytes, median: device_pool %.0f ns, async_pool %.0f ns (%.1fx), "
                "plain_device %.0f ns\n",
                bytes, pool_ns, async_ns, async_ns / pool_ns, plain_ns);
    EXPECT_GT(pool_ns, 0.0);
  }
  ASSERT_CUDA(cudaStreamSynchronize(stream));
  ASSERT_CUDA(cudaStreamDestroy(stream));
}

}  // namespace
