#pragma once
// Internal: the CUDA-free heart of tunekit's device pool. Everything here is
// bookkeeping over addresses it never dereferences: size classes, per-stream
// caches, the coalescing arena (split on allocate, merge on free), the
// statistics and the checks. CUDA enters only through pool_platform (upstream
// memory and stream ordering), so the CPU tests drive it with a fake upstream
// and fake streams. src/cuda/memory/device_pool.cpp plugs in cudaMalloc and
// events.
//
// Stream ordering (why reuse is safe)
// -----------------------------------
// Every free range and every cached block has an owner: the stream it was
// freed on. Work queued on that stream before the free may still use it, so:
//  - On its owner the block is reusable at once: the owner's later work runs
//    after its earlier work (stream order). The fast path is this case: one
//    uncontended mutex and a vector pop, no CUDA call.
//  - Another stream B may use it only after the pool calls
//    platform.order_after(B, owner): record a marker on the owner *now* and
//    make B wait for it (cudaEventRecord + cudaStreamWaitEvent). Everything
//    queued on the owner before now - which includes every kernel that used a
//    block freed there, since the free came after those launches - completes
//    before any work B queues after the allocation returns. Recording at steal
//    time rather than at every free keeps the free path free of CUDA calls; the
//    price is that B also waits for owner work queued after the free (over-
//    ordering, never under-ordering). A block freed on the per-thread default
//    stream is the exception: device_pool.cpp records its marker at free time,
//    because no other thread can record on that thread's stream later.
//  - Ownerless ranges (fresh upstream chunks, and everything after release(),
//    which synchronises the device first) are safe on every stream.
// The consequence: a stream that freed blocks must stay alive while the pool
// may still steal them (until they are reused or release() is called).
//
// Allocation order, cheapest first: the stream's own cache; a best-fit range
// of the arena owned by the stream or ownerless; the stream's own cache
// flushed into the arena and coalesced; (small) another stream's cached block
// of the class after a wait; every cache flushed, a range owned by another
// stream after a wait; a new upstream chunk; release() and all of it once more;
// else tunekit::out_of_memory.

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <atomic>
#include <mutex>
#include <thread>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tunekit/cuda/memory/resource.hpp"

namespace tunekit::cuda::detail {

/// A stream as the core sees it: a stream handle's value, or a synthetic key
/// (device_pool.cpp gives each thread's per-thread default stream its own).
using stream_key = std::uintptr_t;
/// The owner of memory that is safe on every stream.
inline constexpr stream_key no_stream = ~stream_key{0};

// ---------------------------------------------------------------- size classes
// Requests up to 1 MiB round up to a class: multiples of 256 up to 1 KiB, then
// four steps per power of two (1.25, 1.5, 1.75, 2 x 2^k), so rounding wastes
// at most a quarter and every class is a multiple of 256 (alignment of carved
// blocks). 44 classes. Larger requests go to the coalescing arena.

inline constexpr std::size_t block_alignment = 256;
inline constexpr std::size_t largest_class_bytes = std::size_t{1} << 20;
inline constexpr std::size_t size_class_count = 44;

/// The class of a request of 1..largest_class_bytes bytes.
[[nodiscard]] constexpr std::size_t size_class_index(std::size_t bytes) noexcept {
  if (bytes <= 1024) return bytes <= 256 ? 0 : (bytes - 1) / 256;
  const auto power = static_cast<std::size_t>(std::bit_width(bytes - 1)) - 1;  // 2^power < bytes <= 2^(power+1)
  const std::size_t step = std::size_t{1} << (power - 2);
  const std::size_t sub = (bytes - (std::size_t{1} << power) + step - 1) / step;  // 1..4
  return 4 + (power - 10) * 4 + (sub - 1);
}

/// The bytes of block that class `index` hands out.
[[nodiscard]] constexpr std::size_t size_class_bytes(std::size_t index) noexcept {
  if (index < 4) return (index + 1) * 256;
  const std::size_t power = 10 + (index - 4) / 4;
  const std::size_t sub = (index - 4) % 4 + 1;
  return (std::size_t{1} << power) + sub * (std::size_t{1} << (power - 2));
}

static_assert(size_class_bytes(size_class_count - 1) == largest_class_bytes);
static_assert(size_class_index(largest_class_bytes) == size_class_count - 1);

// ---------------------------------------------------------------- platform

/// What the core needs from the machine. device_pool.cpp implements it with
/// cudaMalloc / events; the tests with a fake.
class pool_platform {
 public:
  pool_platform() = default;
  virtual ~pool_platform() = default;
  pool_platform(const pool_platform&) = delete;
  pool_platform& operator=(const pool_platform&) = delete;

  /// `bytes` of fresh memory aligned to 256, or nullptr when the upstream is
  /// out of memory (any other failure throws).
  [[nodiscard]] void* allocate_upstream(std::size_t bytes) { return do_allocate_upstream(bytes); }
  void free_upstream(void* pointer, std::size_t bytes) noexcept { do_free_upstream(pointer, bytes); }
  /// Work `waiter` queues from now on runs after everything queued on `owner`
  /// so far (a marker recorded on `owner` now, waited for on `waiter`).
  void order_after(stream_key waiter, stream_key owner) { do_order_after(waiter, owner); }
  /// Waits until all work queued so far on every stream has finished.
  void synchronize() { do_synchronize(); }

 private:
  [[nodiscard]] virtual void* do_allocate_upstream(std::size_t bytes) = 0;
  virtual void do_free_upstream(void* pointer, std::size_t bytes) noexcept = 0;
  virtual void do_order_after(stream_key waiter, stream_key owner) = 0;
  virtual void do_synchronize() = 0;
};

// ---------------------------------------------------------------- arena

/// Free address ranges over upstream chunks: best fit, split on take, merge
/// with free neighbours of the same chunk on give_back (two chunks that happen
/// to be adjacent never merge: each goes back upstream whole). Not thread-safe:
/// the pool's mutex guards it. Addresses are plain integers, never touched.
///
/// Ownership (see the top of this file): a range freed on stream S belongs to
/// S. Neighbours merge when their owners are equal or one is ownerless; the
/// result then belongs to the owned side (safe on S at once, elsewhere after a
/// wait on S: what both halves allow). Ranges of two different streams stay
/// apart until release() forgets the owners.
class coalescing_arena {
 public:
  /// A whole upstream chunk.
  struct chunk {
    std::uintptr_t base = 0;
    std::size_t bytes = 0;
  };

  /// Adds a fresh chunk from upstream as one ownerless free range.
  void add_chunk(std::uintptr_t base, std::size_t bytes);
  /// Best fit of `bytes` among ranges usable on `stream` without a wait (its
  /// own and ownerless ones); the rest of the range stays free. 0 when none fits.
  [[nodiscard]] std::uintptr_t take(std::size_t bytes, stream_key stream);
  /// Another owner than `stream` (and than no_stream) with a range of at
  /// least `bytes`, the one with the best fit; nullopt when there is none.
  [[nodiscard]] std::optional<stream_key> owner_with_fit(std::size_t bytes, stream_key stream) const;
  /// Best fit of `bytes` among `owner`'s ranges: call only after ordering the
  /// taking stream after `owner`. The rest stays `owner`'s. 0 when none fits.
  [[nodiscard]] std::uintptr_t take_from(std::size_t bytes, stream_key owner);
  /// Frees a range that take() returned, owned from now on by `owner`.
  /// Throws tunekit::invalid_argument when it is not a taken range of that size.
  void give_back(std::uintptr_t address, std::size_t bytes, stream_key owner);
  /// Every free range becomes ownerless and neighbours merge: call only when
  /// all streams have been synchronised.
  void forget_owners();
  /// Removes and returns the chunks that are one free range (nothing taken).
  [[nodiscard]] std::vector<chunk> remove_free_chunks();
  /// Removes and returns every chunk, taken or not (destruction).
  [[nodiscard]] std::vector<chunk> remove_all_chunks();

  /// Whether `address` lies inside one of the chunks.
  [[nodiscard]] bool holds(std::uintptr_t address) const;
  /// Whether a free range starts at `address`.
  [[nodiscard]] bool is_free_start(std::uintptr_t address) const { return free_.contains(address); }
  [[nodiscard]] std::size_t chunk_count() const { return chunks_.size(); }
  [[nodiscard]] std::size_t free_range_count() const { return free_.size(); }
  [[nodiscard]] std::size_t taken_count() const { return taken_.size(); }
  [[nodiscard]] std::size_t free_bytes() const;
  [[nodiscard]] std::uint64_t reserved_bytes() const { return reserved_bytes_; }
  /// The owner of the free range starting at `address`; nullopt if none does.
  [[nodiscard]] std::optional<stream_key> owner_at(std::uintptr_t address) const;

 private:
  struct free_range {
    std::size_t bytes = 0;
    std::uintptr_t chunk_base = 0;
    stream_key owner = no_stream;
  };
  struct taken_range {
    std::size_t bytes = 0;
    std::uintptr_t chunk_base = 0;
  };
  using size_index = std::set<std::pair<std::size_t, std::uintptr_t>>;

  void insert_free(std::uintptr_t address, const free_range& range);
  void erase_free(std::map<std::uintptr_t, free_range>::iterator position);
  std::uintptr_t carve(std::uintptr_t address, std::size_t bytes);
  [[nodiscard]] static std::optional<std::pair<std::size_t, std::uintptr_t>> best_fit(const size_index& index,
                                                                                      std::size_t bytes);

  std::map<std::uintptr_t, std::size_t> chunks_;               ///< base -> bytes
  std::map<std::uintptr_t, free_range> free_;                  ///< by address, for neighbours
  std::map<stream_key, size_index> free_by_owner_;             ///< (bytes, address) per owner, for best fit
  std::unordered_map<std::uintptr_t, taken_range> taken_;      ///< handed to the pool
  std::uint64_t reserved_bytes_ = 0;
};

// ---------------------------------------------------------------- pool core

struct pool_core_options {
  std::uint64_t maximum_bytes = 0;  ///< reserved bytes may not exceed this; 0: no limit
  bool checks = default_memory_checks;
  /// Upstream chunk for size-class blocks (carved one block at a time).
  std::size_t small_chunk_bytes = std::size_t{4} << 20;
  /// Smallest upstream chunk for large requests; bigger ones get their size
  /// rounded up to 2 MiB (the device's allocation granularity).
  std::size_t large_chunk_bytes = std::size_t{16} << 20;
  /// Large blocks each stream keeps whole (reused on an exact size match)
  /// before the oldest is coalesced back into the arena.
  std::size_t large_cache_entries = 32;
};

/// What the pool holds, for tests and diagnostics.
struct pool_layout {
  std::size_t small_chunks = 0;
  std::size_t large_chunks = 0;
  std::size_t small_free_ranges = 0;
  std::size_t large_free_ranges = 0;
  std::size_t cached_blocks = 0;  ///< in per-stream caches, either kind
  std::size_t streams = 0;        ///< streams with a cache
};

/// A lock for critical sections of a few dozen instructions: one atomic
/// exchange to take it, a store to give it back (a std::mutex costs twice
/// that uncontended, which is most of a cached allocation). A waiter spins on
/// a plain load, then yields: the pool's slow paths (cudaMalloc, a device
/// synchronisation) hold it for long.
class spin_lock {
 public:
  void lock() noexcept {
    for (unsigned spins = 0; locked_.exchange(true, std::memory_order_acquire); ) {
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins > 64) std::this_thread::yield();
      }
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

/// The device pool without CUDA. Thread-safe: one mutex, held briefly on the
/// fast path and across platform calls on the slow paths.
class pool_core {
 public:
  pool_core(pool_platform& platform, const pool_core_options& options);
  /// Frees every chunk upstream (after platform.synchronize()); with checks
  /// on, reports blocks still handed out on stderr.
  ~pool_core();
  pool_core(const pool_core&) = delete;
  pool_core& operator=(const pool_core&) = delete;

  /// See device_memory_resource::allocate.
  [[nodiscard]] void* allocate(std::size_t bytes, stream_key stream);
  /// See device_memory_resource::deallocate.
  void deallocate(void* pointer, std::size_t bytes, stream_key stream);
  [[nodiscard]] memory_statistics statistics() const;
  /// Synchronises, returns every cached block to its arena, forgets owners and
  /// streams, and frees upstream the chunks nothing is taken from.
  void release();
  [[nodiscard]] pool_layout layout() const;

 private:
  struct large_block {
    std::size_t bytes = 0;
    void* pointer = nullptr;
  };
  struct stream_cache {
    stream_key stream = 0;
    std::array<std::vector<void*>, size_class_count> small{};
    std::vector<large_block> large{};  ///< oldest first
  };

  stream_cache& cache_for(stream_key stream);
  void* allocate_slow(std::size_t bytes, stream_key stream, bool& from_upstream);
  void* steal_small(std::size_t index, stream_key stream);
  void flush_small(stream_cache& cache);
  void flush_large(stream_cache& cache);
  bool grow(coalescing_arena& arena, std::size_t block_bytes, std::size_t chunk_bytes);
  void release_locked();
  void check_deallocation(void* pointer, std::size_t bytes);

  pool_platform& platform_;
  pool_core_options options_;
  mutable spin_lock mutex_;
  coalescing_arena small_;  ///< chunks carved into size-class blocks
  coalescing_arena large_;  ///< chunks for requests above largest_class_bytes
  std::vector<std::unique_ptr<stream_cache>> streams_;
  stream_cache* last_cache_ = nullptr;        ///< the last stream used: most calls repeat it
  std::unordered_map<void*, std::size_t> live_;  ///< checks only: handed out -> requested bytes
  memory_statistics statistics_;
};

}  // namespace tunekit::cuda::detail

namespace tunekit::cuda::detail {

/// Makes `device` current for a scope and restores the previous device after.
/// Used by the CUDA resources (device_pool.cpp defines it; declared in this
/// CUDA-free header so that async_pool.cpp shares it without a CUDA include).
class device_scope {
 public:
  explicit device_scope(int device);
  ~device_scope();
  device_scope(const device_scope&) = delete;
  device_scope& operator=(const device_scope&) = delete;

 private:
  int previous_ = -1;  ///< -1: nothing to restore
};

/// Throws tunekit::invalid_argument unless `device` is a visible CUDA device.
void check_device_ordinal(int device);

}  // namespace tunekit::cuda::detail
