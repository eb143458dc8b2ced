#include "cuda/memory/pinned_core.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <new>
#include <string>
#include <utility>

#include "tunekit/error.hpp"

namespace tunekit::cuda::detail {

struct thread_bins {
  // Only the owner thread stores into a slot (into an empty one); the owner
  // and the core (release, retire) take out with an exchange.
  std::array<std::array<std::atomic<void*>, pinned_core::max_thread_slots>, pinned_core::class_count> slots{};
};

namespace {

constexpr std::size_t largest_request = std::size_t{1} << pinned_core::largest_class_log2;

std::atomic<std::uint64_t> next_pool_id{1};

void raise_peak(std::atomic<std::uint64_t>& peak, std::uint64_t now) noexcept {
  auto seen = peak.load(std::memory_order_relaxed);
  while (now > seen && !peak.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
  }
}

// Set when this thread's cache list has been destroyed (thread exit): a pool
// used afterwards, from another thread_local's destructor, goes to the shared
// lists. constinit and trivially destructible, so it is valid to the end.
thread_local constinit bool thread_caches_gone = false;

}  // namespace

struct thread_caches {
  struct entry {
    std::uint64_t pool_id = 0;
    thread_bins* bins = nullptr;  ///< owned by the core; used only while the pool is proven alive
    std::weak_ptr<pinned_core> owner;
  };
  std::vector<entry> entries;

  thread_caches() = default;
  thread_caches(const thread_caches&) = delete;
  thread_caches& operator=(const thread_caches&) = delete;

  // Thread exit: cached blocks go back to their pools' shared lists; entries
  // of pools already gone are forgotten (those pools unpinned the blocks).
  ~thread_caches() {
    thread_caches_gone = true;
    for (auto& cache : entries)
      if (const auto core = cache.owner.lock()) core->retire(cache.bins);
  }

  static thread_caches& local() {
    thread_local thread_caches caches;
    return caches;
  }
};

// ---------------------------------------------------------------- construction

pinned_core::pinned_core(std::unique_ptr<pinned_upstream> upstream, const pinned_core_options& options)
    : id_(next_pool_id.fetch_add(1, std::memory_order_relaxed)), upstream_(std::move(upstream)),
      maximum_bytes_(options.maximum_bytes), checks_(options.checks) {
  if (upstream_ == nullptr) throw invalid_argument("pinned pool: no upstream");
}

pinned_core::~pinned_core() { shutdown(); }

std::shared_ptr<pinned_core> pinned_core::create(std::unique_ptr<pinned_upstream> upstream,
                                                 const pinned_core_options& options) {
  return std::make_shared<pinned_core>(std::move(upstream), options);
}

std::size_t pinned_core::class_of(std::size_t bytes) noexcept {
  if (bytes <= (std::size_t{1} << smallest_class_log2)) return 0;
  return static_cast<std::size_t>(std::bit_width(bytes - 1)) - smallest_class_log2;
}

// ---------------------------------------------------------------- thread caches

thread_bins* pinned_core::local_bins() {
  if (thread_caches_gone) return nullptr;
  for (const auto& cache : thread_caches::local().entries)
    if (cache.pool_id == id_) return cache.bins;
  return register_thread();
}

thread_bins* pinned_core::register_thread() {
  auto self = weak_from_this();
  if (self.expired()) throw error("pinned pool: the core must be owned by a std::shared_ptr");
  auto& entries = thread_caches::local().entries;
  try {
    // Forget the caches of pools that are gone: they unpinned their blocks.
    std::erase_if(entries, [](const thread_caches::entry& cache) { return cache.owner.expired(); });
    entries.reserve(entries.size() + 1);
    auto bins = std::make_unique<thread_bins>();
    auto* raw = bins.get();
    {
      const std::lock_guard lock(mutex_);
      threads_.push_back(std::move(bins));
    }
    entries.push_back({.pool_id = id_, .bins = raw, .owner = std::move(self)});  // reserved: cannot throw
    return raw;
  } catch (const std::bad_alloc&) {
    return nullptr;  // no cache for this thread: the shared lists still work
  }
}

void pinned_core::retire(thread_bins* bins) noexcept {
  const std::lock_guard lock(mutex_);
  if (!alive_) return;  // shut down: the blocks are unpinned already
  for (std::size_t size_class = 0; size_class < class_count; ++size_class)
    for (auto& slot : bins->slots[size_class])
      if (void* pointer = slot.exchange(nullptr, std::memory_order_acquire)) {
        try {
          shared_[size_class].push_back(pointer);
        } catch (const std::bad_alloc&) {
          unpin_locked(pointer, size_class);
        }
      }
  const auto found = std::find_if(threads_.begin(), threads_.end(),
                                  [bins](const std::unique_ptr<thread_bins>& owned) { return owned.get() == bins; });
  if (found != threads_.end()) threads_.erase(found);
}

// ---------------------------------------------------------------- allocate / deallocate

void* pinned_core::allocate(std::size_t bytes) {
  if (bytes == 0) throw invalid_argument("pinned pool: allocation of 0 bytes");
  if (bytes > largest_request)
    throw out_of_memory(bytes, "pinned pool: " + std::to_string(bytes) + " bytes is more than the largest class (" +
                                   std::to_string(largest_request) + " bytes)");
  const std::size_t size_class = class_of(bytes);
  void* pointer = nullptr;
  if (auto* bins = local_bins()) {
    const std::size_t slots = thread_slots(size_class);
    for (std::size_t i = 0; i < slots && pointer == nullptr; ++i) {
      auto& slot = bins->slots[size_class][i];
      if (slot.load(std::memory_order_relaxed) != nullptr) pointer = slot.exchange(nullptr, std::memory_order_acquire);
    }
  }
  if (pointer == nullptr) pointer = take_shared(size_class);
  const bool hit = pointer != nullptr;
  if (pointer == nullptr) pointer = grow(size_class, bytes);
  if (checks_) mark_handed_out(pointer, bytes);

  (hit ? hits_ : misses_).fetch_add(1, std::memory_order_relaxed);
  allocations_.fetch_add(1, std::memory_order_relaxed);
  current_count_.fetch_add(1, std::memory_order_relaxed);
  raise_peak(peak_bytes_, current_bytes_.fetch_add(bytes, std::memory_order_relaxed) + bytes);
  return pointer;
}

void pinned_core::deallocate(void* pointer, std::size_t bytes) {
  if (pointer == nullptr) throw invalid_argument("pinned pool: deallocate of a null pointer");
  if (bytes == 0 || bytes > largest_request)
    throw invalid_argument("pinned pool: deallocate of " + std::to_string(bytes) +
                           " bytes, a size no allocation can have");
  const std::size_t size_class = class_of(bytes);
  if (checks_) check_and_mark_returned(pointer, bytes);

  current_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
  current_count_.fetch_sub(1, std::memory_order_relaxed);
  deallocations_.fetch_add(1, std::memory_order_relaxed);

  if (auto* bins = local_bins()) {
    const std::size_t slots = thread_slots(size_class);
    for (std::size_t i = 0; i < slots; ++i) {
      auto& slot = bins->slots[size_class][i];
      // Only this thread fills its slots, so an empty slot stays empty until
      // the store; a concurrent release() that takes it after is fine.
      if (slot.load(std::memory_order_relaxed) == nullptr) {
        slot.store(pointer, std::memory_order_release);
        return;
      }
    }
  }
  give_shared(size_class, pointer);
}

void* pinned_core::take_shared(std::size_t size_class) {
  const std::lock_guard lock(mutex_);
  auto& list = shared_[size_class];
  if (list.empty()) return nullptr;
  void* pointer = list.back();
  list.pop_back();
  return pointer;
}

void pinned_core::give_shared(std::size_t size_class, void* pointer) {
  const std::lock_guard lock(mutex_);
  try {
    shared_[size_class].push_back(pointer);
  } catch (const std::bad_alloc&) {
    unpin_locked(pointer, size_class);  // no room to keep it: give it back instead
  }
}

void* pinned_core::grow(std::size_t size_class, std::size_t requested) {
  const std::uint64_t bytes = class_bytes(size_class);
  if (maximum_bytes_ != 0 && bytes > maximum_bytes_)  // releasing cannot help
    throw out_of_memory(requested, "pinned pool: " + std::to_string(requested) + " bytes (class " +
                                       std::to_string(bytes) + ") exceed the limit of " +
                                       std::to_string(maximum_bytes_) + " bytes");
  for (int attempt = 0;; ++attempt) {
    bool over_limit = false;
    {
      // Reserve before pinning, so that threads pinning at once respect the
      // limit; the pin itself (milliseconds) runs without the lock.
      const std::lock_guard lock(mutex_);
      const auto reserved = reserved_bytes_.load(std::memory_order_relaxed);
      over_limit = maximum_bytes_ != 0 && reserved + bytes > maximum_bytes_;
      if (!over_limit) reserved_bytes_.store(reserved + bytes, std::memory_order_relaxed);
    }
    if (!over_limit) {
      void* pointer = nullptr;
      try {
        pointer = upstream_->pin(static_cast<std::size_t>(bytes));
      } catch (...) {
        const std::lock_guard lock(mutex_);
        reserved_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
        throw;
      }
      const std::lock_guard lock(mutex_);
      if (pointer != nullptr) {
        try {
          registry_.emplace(pointer, block{.size_class = size_class, .requested = 0, .handed_out = false});
        } catch (...) {
          reserved_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
          upstream_->unpin(pointer, static_cast<std::size_t>(bytes));
          throw;
        }
        upstream_allocations_.fetch_add(1, std::memory_order_relaxed);
        return pointer;
      }
      reserved_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
    }
    if (attempt == 1) {
      const std::string reason =
          over_limit ? "would exceed the limit of " + std::to_string(maximum_bytes_) + " bytes (" +
                           std::to_string(reserved_bytes_.load(std::memory_order_relaxed)) + " reserved)"
                     : "could not be pinned: the system has no more page-locked memory";
      throw out_of_memory(requested, "pinned pool: " + std::to_string(requested) + " bytes (class " +
                                         std::to_string(bytes) + ") " + reason +
                                         ", even after releasing the cache");
    }
    release();
  }
}

// ---------------------------------------------------------------- checks

void pinned_core::mark_handed_out(void* pointer, std::size_t bytes) {
  const std::lock_guard lock(mutex_);
  auto& entry = registry_.at(pointer);  // pinned by this core: it came from a list or the upstream
  entry.handed_out = true;
  entry.requested = bytes;
}

void pinned_core::check_and_mark_returned(void* pointer, std::size_t bytes) {
  const std::lock_guard lock(mutex_);
  const auto found = registry_.find(pointer);
  if (found == registry_.end())
    throw invalid_argument("pinned pool: deallocate of a pointer this pool did not allocate");
  auto& entry = found->second;
  if (!entry.handed_out)
    throw invalid_argument("pinned pool: deallocate of a buffer that is not allocated (freed twice?)");
  if (entry.requested != bytes)
    throw invalid_argument("pinned pool: deallocate of " + std::to_string(bytes) + " bytes of a buffer allocated with " +
                           std::to_string(entry.requested));
  entry.handed_out = false;
}

// ---------------------------------------------------------------- release / shutdown

void pinned_core::unpin_locked(void* pointer, std::size_t size_class) noexcept {
  registry_.erase(pointer);
  reserved_bytes_.fetch_sub(class_bytes(size_class), std::memory_order_relaxed);
  upstream_->unpin(pointer, class_bytes(size_class));
}

void pinned_core::release() {
  std::vector<std::pair<void*, std::size_t>> released;
  {
    const std::lock_guard lock(mutex_);
    releases_.fetch_add(1, std::memory_order_relaxed);
    std::size_t most = threads_.size() * class_count * max_thread_slots;
    for (const auto& list : shared_) most += list.size();
    released.reserve(most);  // nothing below allocates: no block is lost to an exception
    for (auto& bins : threads_)
      for (std::size_t size_class = 0; size_class < class_count; ++size_class)
        for (auto& slot : bins->slots[size_class])
          if (void* pointer = slot.exchange(nullptr, std::memory_order_acquire))
            released.emplace_back(pointer, size_class);
    for (std::size_t size_class = 0; size_class < class_count; ++size_class) {
      for (void* pointer : shared_[size_class]) released.emplace_back(pointer, size_class);
      shared_[size_class].clear();
    }
    for (const auto& [pointer, size_class] : released) {
      registry_.erase(pointer);
      reserved_bytes_.fetch_sub(class_bytes(size_class), std::memory_order_relaxed);
    }
  }
  // Unpinning takes milliseconds for large blocks: outside the lock.
  for (const auto& [pointer, size_class] : released) upstream_->unpin(pointer, class_bytes(size_class));
}

void pinned_core::shutdown() noexcept {
  std::unordered_map<void*, block> pinned;
  {
    const std::lock_guard lock(mutex_);
    if (!alive_) return;
    alive_ = false;
    pinned.swap(registry_);
    for (auto& list : shared_) std::vector<void*>().swap(list);
    // The bins stay (threads may still hold pointers to them) but are
    // emptied: the blocks in them are unpinned below.
    for (auto& bins : threads_)
      for (auto& slots : bins->slots)
        for (auto& slot : slots) slot.store(nullptr, std::memory_order_relaxed);
    reserved_bytes_.store(0, std::memory_order_relaxed);
  }
  if (checks_) {
    std::size_t handed_out = 0;
    std::size_t bytes = 0;
    for (const auto& [pointer, entry] : pinned)
      if (entry.handed_out) {
        ++handed_out;
        bytes += entry.requested;
      }
    if (handed_out != 0)
      std::fprintf(stderr, "tunekit: pinned pool destroyed with %zu buffer(s) (%zu bytes) still allocated\n",
                   handed_out, bytes);
  }
  for (const auto& [pointer, entry] : pinned) upstream_->unpin(pointer, class_bytes(entry.size_class));
}

// ---------------------------------------------------------------- statistics

memory_statistics pinned_core::statistics() const {
  constexpr auto relaxed = std::memory_order_relaxed;
  return {.current_bytes = current_bytes_.load(relaxed),
          .peak_bytes = peak_bytes_.load(relaxed),
          .current_count = current_count_.load(relaxed),
          .allocations = allocations_.load(relaxed),
          .deallocations = deallocations_.load(relaxed),
          .hits = hits_.load(relaxed),
          .misses = misses_.load(relaxed),
          .reserved_bytes = reserved_bytes_.load(relaxed),
          .upstream_allocations = upstream_allocations_.load(relaxed),
          .releases = releases_.load(relaxed)};
}

std::size_t pinned_core::shared_blocks() const {
  const std::lock_guard lock(mutex_);
  std::size_t count = 0;
  for (const auto& list : shared_) count += list.size();
  return count;
}

}  // namespace tunekit::cuda::detail
