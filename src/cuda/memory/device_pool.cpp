// tunekit's device pool: pool_core (size classes, coalescing arena, per-stream
// caches, statistics, checks) over cudaMalloc / cudaFree, with CUDA events as
// the stream-ordering markers. See pool_core.hpp for why reuse is safe.

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "cuda/detail/cuda_check.hpp"
#include "cuda/memory/pool_core.hpp"
#include "tunekit/cuda/memory/resource.hpp"
#include "tunekit/error.hpp"

namespace tunekit::cuda {

// ---------------------------------------------------------------- device_scope

detail::device_scope::device_scope(int device) {
  int current = 0;
  TUNEKIT_CUDA_CHECK(cudaGetDevice(&current));
  if (current == device) return;
  TUNEKIT_CUDA_CHECK(cudaSetDevice(device));
  previous_ = current;
}

detail::device_scope::~device_scope() {
  if (previous_ >= 0) TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaSetDevice(previous_));
}

void detail::check_device_ordinal(int device) {
  int count = 0;
  TUNEKIT_CUDA_CHECK(cudaGetDeviceCount(&count));
  if (device < 0 || device >= count)
    throw invalid_argument("memory resource: no CUDA device " + std::to_string(device) + " (" + std::to_string(count) +
                           " visible)");
}

namespace {

const auto per_thread_stream = reinterpret_cast<stream_handle>(cudaStreamPerThread);

// cudaStreamPerThread is one handle value naming a different stream in each
// thread, so the pool keys it per thread. Real handles are pointers aligned to
// at least 8 bytes (or 0, 1, 2), so keys ending in binary 011 never collide;
// the counter never repeats, so a new thread never inherits an old one's key.
constexpr detail::stream_key per_thread_tag = 0x3;

detail::stream_key this_thread_key() {
  static std::atomic<detail::stream_key> next{1};
  thread_local const detail::stream_key key = (next.fetch_add(1, std::memory_order_relaxed) << 3) | per_thread_tag;
  return key;
}

bool is_per_thread_key(detail::stream_key key) { return key != detail::no_stream && (key & 0x7) == per_thread_tag; }

cudaStream_t to_stream(detail::stream_key key) { return reinterpret_cast<cudaStream_t>(key); }

/// cudaMalloc upstream and event markers for one device.
class cuda_pool_platform final : public detail::pool_platform {
 public:
  explicit cuda_pool_platform(int device) : device_(device) {
    detail::check_device_ordinal(device);
    const detail::device_scope scope(device_);
    // No timing: cheaper to record, and markers are only ever waited on.
    TUNEKIT_CUDA_CHECK(cudaEventCreateWithFlags(&marker_, cudaEventDisableTiming));
  }

  ~cuda_pool_platform() override {
    TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaEventDestroy(marker_));
    for (const auto& [key, event] : per_thread_markers_) TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaEventDestroy(event));
  }

  cuda_pool_platform(const cuda_pool_platform&) = delete;
  cuda_pool_platform& operator=(const cuda_pool_platform&) = delete;

  /// Before a block freed on this thread's per-thread stream enters the cache:
  /// a marker after everything this thread queued there so far. Waiting on a
  /// later record of the same event is still correct (it covers more).
  void record_per_thread_marker(detail::stream_key key) {
    cudaEvent_t event = nullptr;
    {
      const std::lock_guard lock(per_thread_guard_);
      auto& slot = per_thread_markers_[key];
      if (slot == nullptr) {
        const cudaError_t status = cudaEventCreateWithFlags(&slot, cudaEventDisableTiming);
        if (status != cudaSuccess) {
          per_thread_markers_.erase(key);
          TUNEKIT_CUDA_CHECK(status);
        }
      }
      event = slot;
    }
    TUNEKIT_CUDA_CHECK(cudaEventRecord(event, cudaStreamPerThread));
  }

 private:
  void* do_allocate_upstream(std::size_t bytes) override {
    const detail::device_scope scope(device_);
    void* memory = nullptr;
    const cudaError_t status = cudaMalloc(&memory, bytes);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // not sticky, but later checks must not see it
      return nullptr;
    }
    TUNEKIT_CUDA_CHECK(status);
    return memory;
  }

  void do_free_upstream(void* pointer, std::size_t) noexcept override {
    int current = -1;
    if (cudaGetDevice(&current) == cudaSuccess && current != device_) (void)cudaSetDevice(device_);
    TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaFree(pointer));
    if (current >= 0 && current != device_) (void)cudaSetDevice(current);
  }

  void do_order_after(detail::stream_key waiter, detail::stream_key owner) override {
    cudaEvent_t marker = marker_;
    if (is_per_thread_key(owner)) {
      // Recorded when that thread freed (see record_per_thread_marker): no
      // other thread can record on its per-thread stream.
      const std::lock_guard lock(per_thread_guard_);
      marker = per_thread_markers_.at(owner);
    } else {
      // One event serves every steal: a wait captures the event's state when
      // it is issued, so re-recording it later never affects earlier waits,
      // and the core's mutex serialises the record-and-wait pairs.
      const detail::device_scope scope(device_);
      TUNEKIT_CUDA_CHECK(cudaEventRecord(marker_, to_stream(owner)));
    }
    if (is_per_thread_key(waiter)) {
      // The allocating thread's own per-thread stream, on its current device.
      TUNEKIT_CUDA_CHECK(cudaStreamWaitEvent(cudaStreamPerThread, marker, 0));
    } else {
      const detail::device_scope scope(device_);
      TUNEKIT_CUDA_CHECK(cudaStreamWaitEvent(to_stream(waiter), marker, 0));
    }
  }

  void do_synchronize() override {
    const detail::device_scope scope(device_);
    TUNEKIT_CUDA_CHECK(cudaDeviceSynchronize());
  }

  int device_;
  cudaEvent_t marker_ = nullptr;
  std::mutex per_thread_guard_;
  /// One event per thread that freed on its per-thread stream; kept until the
  /// pool dies (a few bytes per thread).
  std::unordered_map<detail::stream_key, cudaEvent_t> per_thread_markers_;
};

class device_pool final : public device_memory_resource {
 public:
  explicit device_pool(const device_pool_options& options)
      : platform_(options.device),
        core_(platform_, {.maximum_bytes = options.maximum_bytes, .checks = options.checks}) {}

 private:
  [[nodiscard]] std::string_view do_name() const override { return "device_pool"; }

  [[nodiscard]] void* do_allocate(std::size_t bytes, stream_handle stream) override {
    return core_.allocate(bytes, key_of(stream));
  }

  void do_deallocate(void* pointer, std::size_t bytes, stream_handle stream) override {
    const detail::stream_key key = key_of(stream);
    if (is_per_thread_key(key)) platform_.record_per_thread_marker(key);
    core_.deallocate(pointer, bytes, key);
  }

  [[nodiscard]] memory_statistics do_statistics() const override { return core_.statistics(); }
  void do_release() override { core_.release(); }

  static detail::stream_key key_of(stream_handle stream) {
    return stream == per_thread_stream ? this_thread_key() : reinterpret_cast<detail::stream_key>(stream);
  }

  cuda_pool_platform platform_;  ///< declared first: the core uses it until its own destruction
  detail::pool_core core_;
};

}  // namespace

std::unique_ptr<device_memory_resource> make_device_pool(const device_pool_options& options) {
  return std::make_unique<device_pool>(options);
}

}  // namespace tunekit::cuda
