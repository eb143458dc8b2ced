#pragma once
// A pool of page-locked host memory: staging buffers for transfers at full
// bus speed without paying cudaMallocHost (tens of ms for tens of MiB) each
// time. Size classes of powers of two; each thread keeps a small cache per
// class, so handing a buffer out and taking it back takes no lock on the fast
// path; the pool grows on demand up to its limit. Plain C++: no CUDA header.
//
//   tunekit::cuda::pinned_pool staging({.maximum_bytes = 1ull << 30});
//   void* buffer = staging.allocate(64 << 20);
//   ... cudaMemcpyAsync(device, buffer, 64 << 20, cudaMemcpyHostToDevice, stream) ...
//   staging.deallocate(buffer, 64 << 20);   // after the copy is done

#include <cstddef>
#include <cstdint>
#include <memory>

#include "tunekit/cuda/memory/resource.hpp"

namespace tunekit::cuda {

struct pinned_pool_options {
  std::uint64_t maximum_bytes = 0;  ///< page-locked bytes the pool may hold; 0: no limit
  /// How new memory is pinned: cudaHostAlloc, or malloc + cudaHostRegister.
  /// Registering is the default: on an H200 host pinning and freeing 64 MiB
  /// took 9.7 ms that way against 14.9 ms by cudaHostAlloc
  /// (bench/results/h200/memory.json, "pinned").
  enum class method { host_alloc, host_register } pinning = method::host_register;
  bool checks = default_memory_checks;  ///< double free / foreign pointer detection
};

/// Thread-safe. Destroying the pool frees everything it holds; buffers still
/// handed out then are a caller's bug (reported on stderr with checks on).
class pinned_pool {
 public:
  explicit pinned_pool(const pinned_pool_options& options = {});
  ~pinned_pool();
  pinned_pool(const pinned_pool&) = delete;
  pinned_pool& operator=(const pinned_pool&) = delete;

  /// `bytes` (> 0) of page-locked memory, 256-byte aligned. Throws
  /// tunekit::out_of_memory past the limit or when pinning fails after
  /// releasing the cache and trying once more.
  /// A request takes a block of its class: the next power of two, at least
  /// 4 KiB (pinning is page-granular). A class larger than maximum_bytes
  /// fails at once; a CUDA failure other than out of memory (no driver, no
  /// device) throws tunekit::cuda_error.
  [[nodiscard]] void* allocate(std::size_t bytes);
  /// Returns a buffer allocated with the same size. With checks on, a pointer
  /// not allocated here, one freed twice or another size throws
  /// tunekit::invalid_argument.
  void deallocate(void* pointer, std::size_t bytes);
  [[nodiscard]] memory_statistics statistics() const;
  /// Unpins and frees what is cached and unused (every thread's cache).
  void release();

 private:
  struct state;
  std::shared_ptr<state> state_;  ///< shared with the per-thread caches, which may outlive the pool
};

}  // namespace tunekit::cuda
