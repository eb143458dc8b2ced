// The CUDA driver's stream-ordered pool (cudaMallocFromPoolAsync /
// cudaFreeAsync on a pool of our own) and plain cudaMalloc / cudaFree, behind
// the same interface as tunekit's device pool, so a program picks by factory.

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "cuda/detail/cuda_check.hpp"
#include "cuda/memory/pool_core.hpp"
#include "tunekit/cuda/memory/resource.hpp"
#include "tunekit/error.hpp"

namespace tunekit::cuda {

namespace {

std::string describe(const void* pointer) {
  char text[32];
  std::snprintf(text, sizeof text, "%p", pointer);
  return text;
}

/// The statistics and, with checks on, the live allocations of a resource
/// that has no bookkeeping of its own. One mutex: both resources it serves
/// spend far longer in the driver than here.
class allocation_ledger {
 public:
  allocation_ledger(std::string_view owner, bool checks) : owner_(owner), checks_(checks) {}

  ~allocation_ledger() {
    if (checks_ && statistics_.current_count > 0)
      std::fprintf(stderr, "tunekit: %s destroyed with %llu block(s) (%llu bytes) still allocated\n",
                   std::string(owner_).c_str(), static_cast<unsigned long long>(statistics_.current_count),
                   static_cast<unsigned long long>(statistics_.current_bytes));
  }

  allocation_ledger(const allocation_ledger&) = delete;
  allocation_ledger& operator=(const allocation_ledger&) = delete;

  void allocated(void* pointer, std::size_t bytes, bool from_upstream) {
    const std::lock_guard lock(mutex_);
    if (checks_) live_.emplace(pointer, bytes);
    ++statistics_.allocations;
    if (from_upstream) {
      ++statistics_.misses;
      ++statistics_.upstream_allocations;
    }
    statistics_.current_bytes += bytes;
    ++statistics_.current_count;
    statistics_.peak_bytes = std::max(statistics_.peak_bytes, statistics_.current_bytes);
  }

  /// Throws tunekit::invalid_argument (checks on) for a pointer not handed out
  /// now or a size that differs; the caller frees only after this returns.
  void deallocated(void* pointer, std::size_t bytes) {
    if (pointer == nullptr) throw invalid_argument(std::string(owner_) + ": deallocate of a null pointer");
    const std::lock_guard lock(mutex_);
    if (checks_) {
      const auto live = live_.find(pointer);
      if (live == live_.end())
        throw invalid_argument(std::string(owner_) + ": " + describe(pointer) +
                               " is not allocated here now (a foreign pointer or a double free)");
      if (live->second != bytes)
        throw invalid_argument(std::string(owner_) + ": " + describe(pointer) + " allocated with " +
                               std::to_string(live->second) + " bytes, deallocated with " + std::to_string(bytes));
      live_.erase(live);
    }
    ++statistics_.deallocations;
    statistics_.current_bytes -= bytes;
    --statistics_.current_count;
  }

  void released() {
    const std::lock_guard lock(mutex_);
    ++statistics_.releases;
  }

  [[nodiscard]] memory_statistics statistics() const {
    const std::lock_guard lock(mutex_);
    return statistics_;
  }

 private:
  std::string_view owner_;
  bool checks_;
  mutable std::mutex mutex_;
  std::unordered_map<void*, std::size_t> live_;
  memory_statistics statistics_;
};

void check_request(std::string_view owner, std::size_t bytes) {
  if (bytes == 0) throw invalid_argument(std::string(owner) + ": allocate of 0 bytes");
}

[[noreturn]] void throw_out_of_memory(std::string_view owner, std::size_t bytes) {
  throw out_of_memory(bytes, std::string(owner) + ": out of device memory allocating " + std::to_string(bytes) +
                                 " bytes, after releasing the cache and trying again");
}

// ---------------------------------------------------------------- async pool

/// cudaMallocFromPoolAsync on a pool created for this resource (not the
/// device's default pool, which other code may trim or reconfigure), with
/// cudaMemPoolAttrReleaseThreshold = options.release_threshold so the driver
/// keeps memory across synchronisations. Statistics: bytes and counts are kept
/// here; hits, misses and upstream_allocations stay 0 because the driver does
/// not say which allocations it served from its cache; reserved_bytes is the
/// driver's cudaMemPoolAttrReservedMemCurrent.
class async_pool final : public device_memory_resource {
 public:
  explicit async_pool(const async_pool_options& options)
      : device_(options.device), ledger_("async_pool", default_memory_checks) {
    detail::check_device_ordinal(device_);
    int supported = 0;
    TUNEKIT_CUDA_CHECK(cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, device_));
    if (supported == 0)
      throw error("async_pool: device " + std::to_string(device_) + " does not support stream-ordered memory pools");
    cudaMemPoolProps properties{};
    properties.allocType = cudaMemAllocationTypePinned;
    properties.handleTypes = cudaMemHandleTypeNone;
    properties.location.type = cudaMemLocationTypeDevice;
    properties.location.id = device_;
    TUNEKIT_CUDA_CHECK(cudaMemPoolCreate(&pool_, &properties));
    std::uint64_t threshold = options.release_threshold;  // the attribute is a 64-bit value (cuuint64_t)
    const cudaError_t status = cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &threshold);
    if (status != cudaSuccess) {
      TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaMemPoolDestroy(pool_));
      TUNEKIT_CUDA_CHECK(status);
    }
  }

  ~async_pool() override {
    // Frees still queued complete first; the driver keeps the pool's memory
    // until the last of them is done.
    TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaMemPoolDestroy(pool_));
  }

  async_pool(const async_pool&) = delete;
  async_pool& operator=(const async_pool&) = delete;

 private:
  [[nodiscard]] std::string_view do_name() const override { return "async_pool"; }

  [[nodiscard]] void* do_allocate(std::size_t bytes, stream_handle stream) override {
    check_request("async_pool", bytes);
    void* pointer = nullptr;
    if (!try_allocate(&pointer, bytes, stream)) {
      do_release();
      if (!try_allocate(&pointer, bytes, stream)) throw_out_of_memory("async_pool", bytes);
    }
    ledger_.allocated(pointer, bytes, false);
    return pointer;
  }

  bool try_allocate(void** pointer, std::size_t bytes, stream_handle stream) {
    const cudaError_t status =
        cudaMallocFromPoolAsync(pointer, bytes, pool_, reinterpret_cast<cudaStream_t>(stream));
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      return false;
    }
    TUNEKIT_CUDA_CHECK(status);
    return true;
  }

  void do_deallocate(void* pointer, std::size_t bytes, stream_handle stream) override {
    ledger_.deallocated(pointer, bytes);
    TUNEKIT_CUDA_CHECK(cudaFreeAsync(pointer, reinterpret_cast<cudaStream_t>(stream)));
  }

  [[nodiscard]] memory_statistics do_statistics() const override {
    memory_statistics result = ledger_.statistics();
    std::uint64_t reserved = 0;
    TUNEKIT_CUDA_CHECK(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrReservedMemCurrent, &reserved));
    result.reserved_bytes = reserved;
    return result;
  }

  void do_release() override {
    // Trimming returns only memory whose frees have completed: finish them.
    {
      const detail::device_scope scope(device_);
      TUNEKIT_CUDA_CHECK(cudaDeviceSynchronize());
    }
    TUNEKIT_CUDA_CHECK(cudaMemPoolTrimTo(pool_, 0));
    ledger_.released();
  }

  int device_;
  cudaMemPool_t pool_ = nullptr;
  allocation_ledger ledger_;
};

// ---------------------------------------------------------------- plain cudaMalloc

/// cudaMalloc / cudaFree. Nothing is cached: every allocation is a miss, and
/// reserved_bytes equals current_bytes (what was asked for; the driver's own
/// rounding is invisible here).
class plain_device_resource final : public device_memory_resource {
 public:
  explicit plain_device_resource(int device) : device_(device), ledger_("plain_device", default_memory_checks) {
    detail::check_device_ordinal(device_);
  }

 private:
  [[nodiscard]] std::string_view do_name() const override { return "plain_device"; }

  [[nodiscard]] void* do_allocate(std::size_t bytes, stream_handle) override {
    check_request("plain_device", bytes);
    const detail::device_scope scope(device_);
    void* pointer = nullptr;
    if (!try_allocate(&pointer, bytes)) {
      // Nothing cached to give back, but the same contract as the pools: a
      // release (counted) and one more try, since memory freed elsewhere in
      // the meantime may now suffice.
      do_release();
      if (!try_allocate(&pointer, bytes)) throw_out_of_memory("plain_device", bytes);
    }
    ledger_.allocated(pointer, bytes, true);
    return pointer;
  }

  static bool try_allocate(void** pointer, std::size_t bytes) {
    const cudaError_t status = cudaMalloc(pointer, bytes);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      return false;
    }
    TUNEKIT_CUDA_CHECK(status);
    return true;
  }

  void do_deallocate(void* pointer, std::size_t bytes, stream_handle stream) override {
    ledger_.deallocated(pointer, bytes);
    const detail::device_scope scope(device_);
    // The memory may still be in use by work queued on `stream`; cudaFree
    // does not promise to wait for a non-blocking stream.
    TUNEKIT_CUDA_CHECK(cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(stream)));
    TUNEKIT_CUDA_CHECK(cudaFree(pointer));
  }

  [[nodiscard]] memory_statistics do_statistics() const override {
    memory_statistics result = ledger_.statistics();
    result.reserved_bytes = result.current_bytes;
    return result;
  }

  void do_release() override { ledger_.released(); }

  int device_;
  allocation_ledger ledger_;
};

}  // namespace

std::unique_ptr<device_memory_resource> make_async_pool(const async_pool_options& options) {
  return std::make_unique<async_pool>(options);
}

std::unique_ptr<device_memory_resource> make_plain_device_resource(int device) {
  return std::make_unique<plain_device_resource>(device);
}

}  // namespace tunekit::cuda
