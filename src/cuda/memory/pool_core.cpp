#include "cuda/memory/pool_core.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <iterator>
#include <string>

#include "tunekit/error.hpp"

namespace tunekit::cuda::detail {

namespace {

// The device hands out memory in 2 MiB pages; chunks are rounded to them.
constexpr std::size_t upstream_granularity = std::size_t{2} << 20;
// Requests above this cannot be rounded up without overflowing: no device has them.
constexpr std::size_t largest_request = ~std::size_t{0} - 2 * upstream_granularity;

constexpr std::size_t round_up(std::size_t bytes, std::size_t multiple) {
  return (bytes + multiple - 1) / multiple * multiple;
}

std::uintptr_t address_of(const void* pointer) { return reinterpret_cast<std::uintptr_t>(pointer); }
void* pointer_to(std::uintptr_t address) { return reinterpret_cast<void*>(address); }

std::string describe(const void* pointer) {
  char text[32];
  std::snprintf(text, sizeof text, "%p", pointer);
  return text;
}

}  // namespace

// ---------------------------------------------------------------- coalescing_arena

void coalescing_arena::add_chunk(std::uintptr_t base, std::size_t bytes) {
  chunks_.emplace(base, bytes);
  reserved_bytes_ += bytes;
  insert_free(base, {.bytes = bytes, .chunk_base = base, .owner = no_stream});
}

void coalescing_arena::insert_free(std::uintptr_t address, const free_range& range) {
  free_.emplace(address, range);
  free_by_owner_[range.owner].emplace(range.bytes, address);
}

void coalescing_arena::erase_free(std::map<std::uintptr_t, free_range>::iterator position) {
  const auto owner = free_by_owner_.find(position->second.owner);
  owner->second.erase({position->second.bytes, position->first});
  if (owner->second.empty()) free_by_owner_.erase(owner);  // keeps owner_with_fit's scan short
  free_.erase(position);
}

std::optional<std::pair<std::size_t, std::uintptr_t>> coalescing_arena::best_fit(const size_index& index,
                                                                                 std::size_t bytes) {
  const auto fit = index.lower_bound({bytes, 0});
  if (fit == index.end()) return std::nullopt;
  return *fit;
}

std::uintptr_t coalescing_arena::carve(std::uintptr_t address, std::size_t bytes) {
  const auto position = free_.find(address);
  const free_range range = position->second;
  erase_free(position);
  // Split: the front is handed out, the rest stays free with the same owner.
  if (range.bytes > bytes)
    insert_free(address + bytes, {.bytes = range.bytes - bytes, .chunk_base = range.chunk_base, .owner = range.owner});
  taken_.emplace(address, taken_range{.bytes = bytes, .chunk_base = range.chunk_base});
  return address;
}

std::uintptr_t coalescing_arena::take(std::size_t bytes, stream_key stream) {
  std::optional<std::pair<std::size_t, std::uintptr_t>> best;
  for (const stream_key owner : {stream, no_stream}) {
    const auto index = free_by_owner_.find(owner);
    if (index == free_by_owner_.end()) continue;
    const auto fit = best_fit(index->second, bytes);
    if (fit && (!best || *fit < *best)) best = fit;
  }
  return best ? carve(best->second, bytes) : 0;
}

std::optional<stream_key> coalescing_arena::owner_with_fit(std::size_t bytes, stream_key stream) const {
  std::optional<stream_key> best_owner;
  std::size_t best_bytes = 0;
  for (const auto& [owner, index] : free_by_owner_) {
    if (owner == stream || owner == no_stream) continue;
    const auto fit = best_fit(index, bytes);
    if (fit && (!best_owner || fit->first < best_bytes)) {
      best_owner = owner;
      best_bytes = fit->first;
    }
  }
  return best_owner;
}

std::uintptr_t coalescing_arena::take_from(std::size_t bytes, stream_key owner) {
  const auto index = free_by_owner_.find(owner);
  if (index == free_by_owner_.end()) return 0;
  const auto fit = best_fit(index->second, bytes);
  return fit ? carve(fit->second, bytes) : 0;
}

void coalescing_arena::give_back(std::uintptr_t address, std::size_t bytes, stream_key owner) {
  const auto taken = taken_.find(address);
  if (taken == taken_.end() || taken->second.bytes != bytes)
    throw invalid_argument("device pool: range at " + describe(pointer_to(address)) + " of " + std::to_string(bytes) +
                           " bytes was not handed out by the arena");
  const std::uintptr_t chunk_base = taken->second.chunk_base;
  taken_.erase(taken);

  std::uintptr_t start = address;
  free_range range{.bytes = bytes, .chunk_base = chunk_base, .owner = owner};
  // Same chunk only (adjacent chunks go upstream separately); owners must
  // agree or one side be ownerless, and the merged range keeps the owner.
  const auto mergeable = [&](const free_range& neighbour) {
    return neighbour.chunk_base == chunk_base &&
           (neighbour.owner == range.owner || neighbour.owner == no_stream || range.owner == no_stream);
  };
  const auto absorb = [&](const free_range& neighbour) {
    range.bytes += neighbour.bytes;
    if (range.owner == no_stream) range.owner = neighbour.owner;
  };
  if (const auto next = free_.find(address + bytes); next != free_.end() && mergeable(next->second)) {
    absorb(next->second);
    erase_free(next);
  }
  if (const auto after = free_.lower_bound(address); after != free_.begin()) {
    const auto previous = std::prev(after);
    if (previous->first + previous->second.bytes == address && mergeable(previous->second)) {
      start = previous->first;
      absorb(previous->second);
      erase_free(previous);
    }
  }
  insert_free(start, range);
}

void coalescing_arena::forget_owners() {
  std::map<std::uintptr_t, free_range> merged;
  for (const auto& [address, range] : free_) {
    if (!merged.empty()) {
      auto& last = std::prev(merged.end())->second;
      if (std::prev(merged.end())->first + last.bytes == address && last.chunk_base == range.chunk_base) {
        last.bytes += range.bytes;
        continue;
      }
    }
    merged.emplace_hint(merged.end(), address,
                        free_range{.bytes = range.bytes, .chunk_base = range.chunk_base, .owner = no_stream});
  }
  free_ = std::move(merged);
  free_by_owner_.clear();
  for (const auto& [address, range] : free_) free_by_owner_[no_stream].emplace(range.bytes, address);
}

std::vector<coalescing_arena::chunk> coalescing_arena::remove_free_chunks() {
  std::vector<chunk> removed;
  for (auto position = chunks_.begin(); position != chunks_.end();) {
    const auto range = free_.find(position->first);
    if (range != free_.end() && range->second.bytes == position->second) {
      erase_free(range);
      removed.push_back({.base = position->first, .bytes = position->second});
      reserved_bytes_ -= position->second;
      position = chunks_.erase(position);
    } else {
      ++position;
    }
  }
  return removed;
}

std::vector<coalescing_arena::chunk> coalescing_arena::remove_all_chunks() {
  std::vector<chunk> removed;
  removed.reserve(chunks_.size());
  for (const auto& [base, bytes] : chunks_) removed.push_back({.base = base, .bytes = bytes});
  chunks_.clear();
  free_.clear();
  free_by_owner_.clear();
  taken_.clear();
  reserved_bytes_ = 0;
  return removed;
}

bool coalescing_arena::holds(std::uintptr_t address) const {
  auto position = chunks_.upper_bound(address);
  if (position == chunks_.begin()) return false;
  --position;
  return address < position->first + position->second;
}

std::size_t coalescing_arena::free_bytes() const {
  std::size_t total = 0;
  for (const auto& entry : free_) total += entry.second.bytes;
  return total;
}

std::optional<stream_key> coalescing_arena::owner_at(std::uintptr_t address) const {
  const auto range = free_.find(address);
  if (range == free_.end()) return std::nullopt;
  return range->second.owner;
}

// ---------------------------------------------------------------- pool_core

pool_core::pool_core(pool_platform& platform, const pool_core_options& options)
    : platform_(platform), options_(options) {
  if (options.small_chunk_bytes < largest_class_bytes || options.small_chunk_bytes % block_alignment != 0)
    throw invalid_argument("device pool: small_chunk_bytes must be a multiple of 256 of at least 1 MiB");
  if (options.large_chunk_bytes % block_alignment != 0)
    throw invalid_argument("device pool: large_chunk_bytes must be a multiple of 256");
}

pool_core::~pool_core() {
  if (options_.checks && statistics_.current_count > 0)
    std::fprintf(stderr, "tunekit: device pool destroyed with %llu block(s) (%llu bytes) still allocated\n",
                 static_cast<unsigned long long>(statistics_.current_count),
                 static_cast<unsigned long long>(statistics_.current_bytes));
  // Work queued before the destruction may still use the memory.
  try {
    platform_.synchronize();
  } catch (const std::exception& failure) {
    std::fprintf(stderr, "tunekit: device pool: %s\n", failure.what());
  }
  for (auto* arena : {&small_, &large_})
    for (const auto& chunk : arena->remove_all_chunks()) platform_.free_upstream(pointer_to(chunk.base), chunk.bytes);
}

pool_core::stream_cache& pool_core::cache_for(stream_key stream) {
  if (last_cache_ != nullptr && last_cache_->stream == stream) return *last_cache_;
  // A linear scan: programs use a handful of streams.
  for (const auto& cache : streams_) {
    if (cache->stream == stream) {
      last_cache_ = cache.get();
      return *cache;
    }
  }
  streams_.push_back(std::make_unique<stream_cache>());
  last_cache_ = streams_.back().get();
  last_cache_->stream = stream;
  return *last_cache_;
}

void* pool_core::allocate(std::size_t bytes, stream_key stream) {
  if (bytes == 0) throw invalid_argument("device pool: allocate of 0 bytes");
  if (bytes > largest_request)
    throw out_of_memory(bytes, "device pool: " + std::to_string(bytes) + " bytes is more than any device holds");
  const std::lock_guard lock(mutex_);
  void* pointer = nullptr;
  {
    // The fast path: a block this stream cached, no CUDA call.
    stream_cache& cache = cache_for(stream);
    if (bytes <= largest_class_bytes) {
      auto& list = cache.small[size_class_index(bytes)];
      if (!list.empty()) {
        pointer = list.back();
        list.pop_back();
      }
    } else {
      const std::size_t block = round_up(bytes, block_alignment);
      auto& large = cache.large;
      for (auto entry = large.rbegin(); entry != large.rend(); ++entry) {  // the newest first
        if (entry->bytes == block) {
          pointer = entry->pointer;
          large.erase(std::next(entry).base());
          break;
        }
      }
    }
  }
  bool from_upstream = false;
  if (pointer == nullptr) pointer = allocate_slow(bytes, stream, from_upstream);
  if (options_.checks) live_.emplace(pointer, bytes);
  ++statistics_.allocations;
  ++(from_upstream ? statistics_.misses : statistics_.hits);
  statistics_.current_bytes += bytes;
  ++statistics_.current_count;
  statistics_.peak_bytes = std::max(statistics_.peak_bytes, statistics_.current_bytes);
  return pointer;
}

void* pool_core::allocate_slow(std::size_t bytes, stream_key stream, bool& from_upstream) {
  const bool small = bytes <= largest_class_bytes;
  const std::size_t index = small ? size_class_index(bytes) : 0;
  const std::size_t block = small ? size_class_bytes(index) : round_up(bytes, block_alignment);
  coalescing_arena& arena = small ? small_ : large_;
  const std::size_t chunk_bytes = small ? options_.small_chunk_bytes : options_.large_chunk_bytes;
  const auto flush = [&](stream_cache& cache) { small ? flush_small(cache) : flush_large(cache); };

  for (int attempt = 0;; ++attempt) {
    // Without any wait: free ranges of this stream or ownerless ones...
    if (const auto address = arena.take(block, stream)) return pointer_to(address);
    // ...then this stream's own cached blocks, coalesced.
    flush(cache_for(stream));
    if (const auto address = arena.take(block, stream)) return pointer_to(address);
    // With a wait on another stream: a cached block of the class, else a range.
    if (small) {
      if (void* stolen = steal_small(index, stream)) return stolen;
    }
    for (const auto& cache : streams_) flush(*cache);
    if (const auto owner = arena.owner_with_fit(block, stream)) {
      platform_.order_after(stream, *owner);
      return pointer_to(arena.take_from(block, *owner));
    }
    if (grow(arena, block, chunk_bytes)) {
      from_upstream = true;
      return pointer_to(arena.take(block, stream));
    }
    if (attempt == 1) {
      const std::uint64_t reserved = small_.reserved_bytes() + large_.reserved_bytes();
      std::string message = "device pool: out of memory allocating " + std::to_string(bytes) + " bytes (" +
                            std::to_string(reserved) + " bytes reserved";
      if (options_.maximum_bytes != 0) message += " of a maximum of " + std::to_string(options_.maximum_bytes);
      throw out_of_memory(bytes, message + ", after releasing the cache and trying again)");
    }
    release_locked();
  }
}

void* pool_core::steal_small(std::size_t index, stream_key stream) {
  stream_cache& own = cache_for(stream);
  for (const auto& other : streams_) {
    if (other.get() == &own || other->small[index].empty()) continue;
    platform_.order_after(stream, other->stream);
    // The marker covers all of `other`'s cache, but only this class moves:
    // the rest stays where its own stream reuses it without a wait.
    auto& from = other->small[index];
    auto& to = own.small[index];
    to.insert(to.end(), from.begin(), from.end());
    from.clear();
    void* pointer = to.back();
    to.pop_back();
    return pointer;
  }
  return nullptr;
}

void pool_core::flush_small(stream_cache& cache) {
  for (std::size_t index = 0; index < size_class_count; ++index) {
    for (void* pointer : cache.small[index])
      small_.give_back(address_of(pointer), size_class_bytes(index), cache.stream);
    cache.small[index].clear();
  }
}

void pool_core::flush_large(stream_cache& cache) {
  for (const auto& block : cache.large) large_.give_back(address_of(block.pointer), block.bytes, cache.stream);
  cache.large.clear();
}

bool pool_core::grow(coalescing_arena& arena, std::size_t block_bytes, std::size_t chunk_bytes) {
  // The preferred chunk first, then smaller ones down to the block itself:
  // they may still fit under the maximum or in what the device has left.
  const std::size_t rounded = round_up(block_bytes, upstream_granularity);
  const std::array<std::size_t, 3> candidates{std::max(rounded, chunk_bytes), rounded, block_bytes};
  std::size_t tried = 0;
  for (const std::size_t size : candidates) {
    if (size == tried) continue;
    tried = size;
    const std::uint64_t reserved = small_.reserved_bytes() + large_.reserved_bytes();
    if (options_.maximum_bytes != 0 && reserved + size > options_.maximum_bytes) continue;
    void* memory = platform_.allocate_upstream(size);
    if (memory == nullptr) continue;
    if (address_of(memory) % block_alignment != 0) {
      platform_.free_upstream(memory, size);
      throw error("device pool: upstream memory at " + describe(memory) + " is not aligned to 256 bytes");
    }
    arena.add_chunk(address_of(memory), size);
    ++statistics_.upstream_allocations;
    return true;
  }
  return false;
}

void pool_core::deallocate(void* pointer, std::size_t bytes, stream_key stream) {
  if (pointer == nullptr) throw invalid_argument("device pool: deallocate of a null pointer");
  const std::lock_guard lock(mutex_);
  if (options_.checks) check_deallocation(pointer, bytes);
  stream_cache& cache = cache_for(stream);
  if (bytes <= largest_class_bytes) {
    cache.small[size_class_index(bytes)].push_back(pointer);
  } else {
    const std::size_t block = round_up(bytes, block_alignment);
    if (options_.large_cache_entries == 0) {
      large_.give_back(address_of(pointer), block, stream);
    } else {
      // The oldest cached block coalesces back: a bounded cache keeps the
      // fast path for repeated sizes without hoarding the arena.
      if (cache.large.size() >= options_.large_cache_entries) {
        large_.give_back(address_of(cache.large.front().pointer), cache.large.front().bytes, stream);
        cache.large.erase(cache.large.begin());
      }
      cache.large.push_back({.bytes = block, .pointer = pointer});
    }
  }
  ++statistics_.deallocations;
  statistics_.current_bytes -= bytes;
  --statistics_.current_count;
}

void pool_core::check_deallocation(void* pointer, std::size_t bytes) {
  const auto live = live_.find(pointer);
  if (live == live_.end()) {
    const std::uintptr_t address = address_of(pointer);
    bool cached = small_.is_free_start(address) || large_.is_free_start(address);
    for (const auto& cache : streams_) {
      for (const auto& list : cache->small)
        cached = cached || std::find(list.begin(), list.end(), pointer) != list.end();
      for (const auto& block : cache->large) cached = cached || block.pointer == pointer;
    }
    if (cached) throw invalid_argument("device pool: double free of " + describe(pointer));
    if (small_.holds(address) || large_.holds(address))
      throw invalid_argument("device pool: " + describe(pointer) +
                             " lies in the pool but is not an allocation handed out now (a double free, or a pointer "
                             "into a block)");
    throw invalid_argument("device pool: foreign pointer " + describe(pointer) + " was not allocated by this pool");
  }
  if (live->second != bytes)
    throw invalid_argument("device pool: " + describe(pointer) + " allocated with " + std::to_string(live->second) +
                           " bytes, deallocated with " + std::to_string(bytes));
  live_.erase(live);
}

memory_statistics pool_core::statistics() const {
  const std::lock_guard lock(mutex_);
  memory_statistics result = statistics_;
  result.reserved_bytes = small_.reserved_bytes() + large_.reserved_bytes();
  return result;
}

void pool_core::release() {
  const std::lock_guard lock(mutex_);
  release_locked();
}

void pool_core::release_locked() {
  // Everything freed before this point was queued before it: after the
  // synchronisation no cached block is in use, so owners can be forgotten.
  platform_.synchronize();
  for (const auto& cache : streams_) {
    flush_small(*cache);
    flush_large(*cache);
  }
  // Forgetting the streams also drops handles of streams destroyed since.
  streams_.clear();
  last_cache_ = nullptr;
  for (auto* arena : {&small_, &large_}) {
    arena->forget_owners();
    for (const auto& chunk : arena->remove_free_chunks()) platform_.free_upstream(pointer_to(chunk.base), chunk.bytes);
  }
  ++statistics_.releases;
}

pool_layout pool_core::layout() const {
  const std::lock_guard lock(mutex_);
  pool_layout result;
  result.small_chunks = small_.chunk_count();
  result.large_chunks = large_.chunk_count();
  result.small_free_ranges = small_.free_range_count();
  result.large_free_ranges = large_.free_range_count();
  result.streams = streams_.size();
  for (const auto& cache : streams_) {
    for (const auto& list : cache->small) result.cached_blocks += list.size();
    result.cached_blocks += cache->large.size();
  }
  return result;
}

}  // namespace tunekit::cuda::detail
