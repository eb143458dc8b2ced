#pragma once
// Memory resources: one interface for device memory, whatever hands it out
// (tunekit's stream-ordered pool, the CUDA async pool, plain cudaMalloc), and
// the statistics every resource keeps, as RMM's statistics adaptor does.
// Plain C++: no CUDA header.
//
//   auto pool = tunekit::cuda::make_device_pool({.device = 0});
//   void* p = pool->allocate(1 << 20, stream);
//   ... kernels on `stream` use p ...
//   pool->deallocate(p, 1 << 20, stream);   // reusable on `stream` at once, elsewhere once `stream` passes this point
//   auto stats = pool->statistics();        // current, peak, hits, misses...

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

struct CUstream_st;

namespace tunekit::cuda {

using stream_handle = CUstream_st*;

/// What a resource has done. Bytes are the sizes callers asked for;
/// reserved_bytes is what the resource holds from upstream (handed out + cached).
struct memory_statistics {
  std::uint64_t current_bytes = 0;   ///< handed out now
  std::uint64_t peak_bytes = 0;      ///< the most handed out at once
  std::uint64_t current_count = 0;   ///< allocations handed out now
  std::uint64_t allocations = 0;     ///< allocate() calls that returned memory
  std::uint64_t deallocations = 0;
  std::uint64_t hits = 0;            ///< allocations served from the cache
  std::uint64_t misses = 0;          ///< allocations that went upstream
  std::uint64_t reserved_bytes = 0;  ///< held from upstream now
  std::uint64_t upstream_allocations = 0;
  std::uint64_t releases = 0;        ///< release() calls, explicit or on out of memory
};

/// Device memory, stream-ordered. Thread-safe.
class device_memory_resource {
 public:
  device_memory_resource() = default;
  virtual ~device_memory_resource() = default;
  device_memory_resource(const device_memory_resource&) = delete;
  device_memory_resource& operator=(const device_memory_resource&) = delete;

  [[nodiscard]] std::string_view name() const { return do_name(); }
  /// `bytes` (> 0) usable on `stream`, aligned to 256 bytes. Throws
  /// tunekit::out_of_memory when the device has no more, after the resource
  /// released what it caches and tried once more, or when the resource's
  /// maximum would be exceeded.
  [[nodiscard]] void* allocate(std::size_t bytes, stream_handle stream) { return do_allocate(bytes, stream); }
  /// Returns memory allocated with the same size. The memory may still be in
  /// use by work queued on `stream`: it is reused on `stream` at once, and on
  /// another stream only once `stream` has passed this point. With checks on,
  /// a pointer not allocated here, or freed twice, throws tunekit::invalid_argument.
  void deallocate(void* pointer, std::size_t bytes, stream_handle stream) { do_deallocate(pointer, bytes, stream); }
  [[nodiscard]] memory_statistics statistics() const { return do_statistics(); }
  /// Gives back to the upstream what is cached and unused.
  void release() { do_release(); }

 private:
  [[nodiscard]] virtual std::string_view do_name() const = 0;
  [[nodiscard]] virtual void* do_allocate(std::size_t bytes, stream_handle stream) = 0;
  virtual void do_deallocate(void* pointer, std::size_t bytes, stream_handle stream) = 0;
  [[nodiscard]] virtual memory_statistics do_statistics() const = 0;
  virtual void do_release() = 0;
};

/// Checks of frees (double free, foreign pointer): on in debug builds.
#if defined(NDEBUG)
inline constexpr bool default_memory_checks = false;
#else
inline constexpr bool default_memory_checks = true;
#endif

struct device_pool_options {
  int device = 0;
  std::uint64_t maximum_bytes = 0;  ///< 0: no limit but the device's
  bool checks = default_memory_checks;
};

/// tunekit's pool: size classes for small blocks, a coalescing arena for
/// large ones, stream-ordered reuse through events. name() is "device_pool".
///
/// Memory freed on stream S is reused on S at once, with no CUDA call. Another
/// stream gets it only after the pool records an event on S at that moment
/// and makes the new stream wait for it, so S must still exist then: before
/// destroying a stream that freed memory into the pool, call release() (or
/// keep such streams as long as the pool). Stream 0 is the legacy default
/// stream; cudaStreamPerThread is a different stream in each thread, so a
/// free on it records an event at once (about a microsecond).
/// Out of memory (the device's, or `maximum_bytes` of reserved memory): the
/// pool releases its cache, tries once more, then throws tunekit::out_of_memory.
[[nodiscard]] std::unique_ptr<device_memory_resource> make_device_pool(const device_pool_options& options = {});

struct async_pool_options {
  int device = 0;
  /// The pool keeps this much across synchronisations instead of returning it
  /// (cudaMemPoolAttrReleaseThreshold); default: all of it.
  std::uint64_t release_threshold = UINT64_MAX;
};

/// The CUDA driver's own pool (cudaMallocAsync / cudaFreeAsync) behind the
/// same interface: a pool created for this resource, not the device's default
/// one. name() is "async_pool". The driver does not say which allocations it
/// served from its cache: hits, misses and upstream_allocations stay 0, and
/// reserved_bytes is the driver's own figure. Checks follow default_memory_checks.
[[nodiscard]] std::unique_ptr<device_memory_resource> make_async_pool(const async_pool_options& options = {});

/// cudaMalloc / cudaFree, synchronous: the baseline the pools are measured against.
/// name() is "plain_device"; every allocation is a miss; deallocate waits for
/// its stream before cudaFree. Checks follow default_memory_checks.
[[nodiscard]] std::unique_ptr<device_memory_resource> make_plain_device_resource(int device = 0);

}  // namespace tunekit::cuda
