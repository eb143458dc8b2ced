#pragma once
// Internal: the logic of tunekit::cuda::pinned_pool without CUDA, so that it
// is tested on machines with no GPU against a fake upstream. Not installed.
//
// The scheme
// ----------
// Size classes are powers of two from 4 KiB (pinning is page-granular: a
// smaller class would save nothing) to 64 TiB. Every block is one upstream
// allocation of its class's size; the core records each block it pinned in
// a registry (pointer -> class), so that tearing the pool down frees every
// block wherever it sits: handed out, in the shared lists or in any thread's
// cache.
//
// Thread caches. Each thread that uses a pool gets, once, a `thread_bins` for
// it: per class a few slots, each an atomic pointer. The core owns the bins
// (and lists them); the thread keeps, in a thread_local list keyed by the
// pool's id (unique over the process's life, never reused), a raw pointer to
// its bins and a weak_ptr to the core. The fast path takes no lock:
//   allocate   : the owner thread takes a block out of a slot (exchange);
//   deallocate : the owner thread stores a block into an empty slot.
// Only the owner puts blocks into its slots; anyone else (release(), out of
// memory) only takes them out, with an exchange too, under the core's mutex.
// So a block is never lost nor handed out twice, whoever wins the race, and
// release() does reach every thread's cache. When the thread's slots are
// empty (or full) the thread falls back to the shared lists, under the mutex.
//
// Lifetimes. The raw pointers in a thread's list are used only when that
// thread calls the pool, which proves the pool alive. A thread that exits
// gives its cached blocks back to the shared lists (thread_local destructor),
// after locking its weak_ptr and, under the mutex, checking that the pool
// was not shut down; a pool destroyed first has already unpinned every block
// it had, so a dead pool's entry is simply forgotten: at thread exit, or when
// the thread next registers with another pool (expired entries are purged).
//
// Checks (options.checks): the registry also says, per block, whether it is
// handed out and with what size; allocate and deallocate then take the mutex
// to keep that up to date, and a deallocate of a foreign pointer, of a block
// not handed out (a double free) or with another size throws
// tunekit::invalid_argument. Without checks the fast path takes no lock.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "tunekit/cuda/memory/resource.hpp"

namespace tunekit::cuda::detail {

/// Where page-locked memory comes from: cudaHostAlloc, malloc +
/// cudaHostRegister, or a fake in tests.
class pinned_upstream {
 public:
  pinned_upstream() = default;
  virtual ~pinned_upstream() = default;
  pinned_upstream(const pinned_upstream&) = delete;
  pinned_upstream& operator=(const pinned_upstream&) = delete;

  /// `bytes` (a multiple of 4 KiB) of page-locked memory aligned to at least
  /// 256 bytes, or nullptr when the system has none left. Other failures
  /// throw (tunekit::cuda_error).
  [[nodiscard]] void* pin(std::size_t bytes) { return do_pin(bytes); }
  /// Gives back what pin(bytes) returned. Never throws.
  void unpin(void* pointer, std::size_t bytes) noexcept { do_unpin(pointer, bytes); }

 private:
  [[nodiscard]] virtual void* do_pin(std::size_t bytes) = 0;
  virtual void do_unpin(void* pointer, std::size_t bytes) noexcept = 0;
};

struct pinned_core_options {
  std::uint64_t maximum_bytes = 0;  ///< reserved bytes the pool may hold; 0: no limit
  bool checks = default_memory_checks;
};

/// Per-thread cache of one pool: a few slots per class. Owned by the core.
struct thread_bins;
/// The thread_local list of a thread's caches (defined in pinned_core.cpp).
struct thread_caches;

/// The pool's state. Thread-safe. Must be owned by a std::shared_ptr (the
/// thread caches hold weak_ptrs to it): create() or std::make_shared.
///
///   auto core = pinned_core::create(std::make_unique<my_upstream>(), {.maximum_bytes = 1 << 30});
///   void* p = core->allocate(1 << 20);
///   core->deallocate(p, 1 << 20);
///   core->shutdown();   // what the pool's destructor does
class pinned_core : public std::enable_shared_from_this<pinned_core> {
 public:
  static constexpr std::size_t smallest_class_log2 = 12;  ///< 4 KiB
  static constexpr std::size_t largest_class_log2 = 46;   ///< 64 TiB
  static constexpr std::size_t class_count = largest_class_log2 - smallest_class_log2 + 1;
  static constexpr std::size_t max_thread_slots = 4;

  pinned_core(std::unique_ptr<pinned_upstream> upstream, const pinned_core_options& options);
  /// Unpins whatever is still pinned (shutdown()).
  ~pinned_core();
  pinned_core(const pinned_core&) = delete;
  pinned_core& operator=(const pinned_core&) = delete;

  [[nodiscard]] static std::shared_ptr<pinned_core> create(std::unique_ptr<pinned_upstream> upstream,
                                                           const pinned_core_options& options = {});

  /// The class of a request of `bytes` (1 .. 2^46): the smallest power of two
  /// >= bytes, at least 4 KiB, as an index from 0.
  [[nodiscard]] static std::size_t class_of(std::size_t bytes) noexcept;
  [[nodiscard]] static std::size_t class_bytes(std::size_t size_class) noexcept {
    return std::size_t{1} << (size_class + smallest_class_log2);
  }
  /// Blocks of a class a thread keeps for itself: four up to 4 MiB, two
  /// above (double buffering), so that large blocks stay reusable by others.
  [[nodiscard]] static std::size_t thread_slots(std::size_t size_class) noexcept {
    return class_bytes(size_class) <= (std::size_t{4} << 20) ? 4 : 2;
  }

  /// See pinned_pool::allocate: thread cache, else shared lists, else the
  /// upstream (past the limit or when the upstream has no more: release()
  /// and one more try, then tunekit::out_of_memory).
  [[nodiscard]] void* allocate(std::size_t bytes);
  /// See pinned_pool::deallocate. With checks on, a foreign pointer, a double
  /// free or a size mismatch throws tunekit::invalid_argument.
  void deallocate(void* pointer, std::size_t bytes);
  [[nodiscard]] memory_statistics statistics() const;
  /// Unpins every cached block: the shared lists and every thread's cache.
  void release();
  /// Unpins every block ever pinned and not yet unpinned, handed out or not
  /// (reported on stderr with checks on); the thread caches of this core are
  /// dead from then on. Idempotent. The pool's destructor.
  void shutdown() noexcept;

  /// Blocks in the shared lists (tests and diagnostics).
  [[nodiscard]] std::size_t shared_blocks() const;

 private:
  friend struct thread_caches;
  struct block {
    std::size_t size_class = 0;
    std::size_t requested = 0;  ///< with checks on: the size it was handed out with
    bool handed_out = false;    ///< with checks on
  };

  thread_bins* local_bins();
  thread_bins* register_thread();
  void retire(thread_bins* bins) noexcept;
  void* take_shared(std::size_t size_class);
  void give_shared(std::size_t size_class, void* pointer);
  void* grow(std::size_t size_class, std::size_t requested);
  void unpin_locked(void* pointer, std::size_t size_class) noexcept;
  void mark_handed_out(void* pointer, std::size_t bytes);
  void check_and_mark_returned(void* pointer, std::size_t bytes);

  const std::uint64_t id_;
  const std::unique_ptr<pinned_upstream> upstream_;
  const std::uint64_t maximum_bytes_;
  const bool checks_;

  mutable std::mutex mutex_;  ///< guards everything below but the counters
  bool alive_ = true;
  std::unordered_map<void*, block> registry_;  ///< every block pinned and not yet unpinned
  std::array<std::vector<void*>, class_count> shared_;
  std::vector<std::unique_ptr<thread_bins>> threads_;

  // Statistics: relaxed atomics, read without the lock.
  std::atomic<std::uint64_t> current_bytes_{0};
  std::atomic<std::uint64_t> peak_bytes_{0};
  std::atomic<std::uint64_t> current_count_{0};
  std::atomic<std::uint64_t> allocations_{0};
  std::atomic<std::uint64_t> deallocations_{0};
  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
  std::atomic<std::uint64_t> reserved_bytes_{0};  ///< changed under the mutex; includes pins in flight
  std::atomic<std::uint64_t> upstream_allocations_{0};
  std::atomic<std::uint64_t> releases_{0};
};

}  // namespace tunekit::cuda::detail
