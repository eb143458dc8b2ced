// The device pool's logic on the CPU: pool_core and its coalescing arena with
// a fake upstream (bump-allocated addresses that are never dereferenced, so
// chunks can be adjacent on purpose) and fake streams whose ordering calls
// are recorded. The GPU half is resource_gpu_test.cu.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// Internal header, not on the tests' include path: reached beside the sources.
#include "../../../src/cuda/memory/pool_core.hpp"
#include "tunekit/error.hpp"

namespace {

namespace detail = tunekit::cuda::detail;
using detail::coalescing_arena;
using detail::pool_core;
using detail::pool_core_options;
using detail::stream_key;

constexpr std::size_t kib = 1024;
constexpr std::size_t mib = 1024 * 1024;
constexpr stream_key stream_a = 0x1000;
constexpr stream_key stream_b = 0x2000;
constexpr stream_key stream_c = 0x3000;

/// Upstream memory and stream ordering, recorded. Thread-safe.
class fake_platform final : public detail::pool_platform {
 public:
  std::uint64_t budget_bytes = UINT64_MAX;  ///< the "device" has no more than this
  std::function<void(stream_key, stream_key)> on_wait;  ///< called under the pool's lock
  std::function<void()> on_synchronize;

  // (defined before its callers: its return type is deduced)
  template <typename Function>
  auto locked(Function&& function) const {
    const std::lock_guard lock(mutex_);
    return function();
  }

  std::uint64_t outstanding_bytes() const { return locked([&] { return outstanding_bytes_; }); }
  std::size_t outstanding_chunks() const { return locked([&] { return chunks_.size(); }); }
  std::size_t upstream_calls() const { return locked([&] { return upstream_calls_; }); }
  std::size_t synchronizations() const { return locked([&] { return synchronizations_; }); }
  std::size_t bad_frees() const { return locked([&] { return bad_frees_; }); }
  std::vector<std::pair<stream_key, stream_key>> waits() const { return locked([&] { return waits_; }); }

 private:
  void* do_allocate_upstream(std::size_t bytes) override {
    const std::lock_guard lock(mutex_);
    ++upstream_calls_;
    if (outstanding_bytes_ + bytes > budget_bytes) return nullptr;
    // Bump allocation: consecutive chunks touch, which the arena must not merge across.
    const std::uintptr_t address = next_;
    next_ += bytes;
    outstanding_bytes_ += bytes;
    chunks_.emplace(address, bytes);
    return reinterpret_cast<void*>(address);
  }

  void do_free_upstream(void* pointer, std::size_t bytes) noexcept override {
    const std::lock_guard lock(mutex_);
    const auto chunk = chunks_.find(reinterpret_cast<std::uintptr_t>(pointer));
    if (chunk == chunks_.end() || chunk->second != bytes) {
      ++bad_frees_;
      return;
    }
    outstanding_bytes_ -= bytes;
    chunks_.erase(chunk);
  }

  void do_order_after(stream_key waiter, stream_key owner) override {
    {
      const std::lock_guard lock(mutex_);
      waits_.emplace_back(waiter, owner);
    }
    if (on_wait) on_wait(waiter, owner);
  }

  void do_synchronize() override {
    {
      const std::lock_guard lock(mutex_);
      ++synchronizations_;
    }
    if (on_synchronize) on_synchronize();
  }

  mutable std::mutex mutex_;
  std::uintptr_t next_ = std::uintptr_t{1} << 40;
  std::uint64_t outstanding_bytes_ = 0;
  std::map<std::uintptr_t, std::size_t> chunks_;
  std::size_t upstream_calls_ = 0;
  std::size_t synchronizations_ = 0;
  std::size_t bad_frees_ = 0;
  std::vector<std::pair<stream_key, stream_key>> waits_;
};

std::uintptr_t address_of(const void* pointer) { return reinterpret_cast<std::uintptr_t>(pointer); }

pool_core_options with_checks(pool_core_options options = {}) {
  options.checks = true;
  return options;
}

// ---------------------------------------------------------------- size classes

TEST(SizeClasses, EveryRequestGetsTheSmallestFittingClassAlignedTo256WastingAtMostAQuarter) {
  for (std::size_t bytes = 1; bytes <= detail::largest_class_bytes; bytes += bytes < 8 * kib ? 1 : 97) {
    const std::size_t index = detail::size_class_index(bytes);
    ASSERT_LT(index, detail::size_class_count) << bytes;
    const std::size_t block = detail::size_class_bytes(index);
    ASSERT_GE(block, bytes) << bytes;
    ASSERT_EQ(block % detail::block_alignment, 0u) << bytes;
    if (index > 0) {
      ASSERT_LT(detail::size_class_bytes(index - 1), bytes) << bytes;
    }
    if (bytes > kib) {
      ASSERT_LE(block - bytes, bytes / 4) << bytes;
    }
  }
  EXPECT_EQ(detail::size_class_index(detail::largest_class_bytes), detail::size_class_count - 1);
}

TEST(SizeClasses, ClassesIncreaseAndEachBoundaryMapsToItsOwnClass) {
  EXPECT_EQ(detail::size_class_bytes(0), 256u);
  EXPECT_EQ(detail::size_class_bytes(4), 1280u);
  EXPECT_EQ(detail::size_class_bytes(7), 2048u);
  for (std::size_t index = 0; index < detail::size_class_count; ++index) {
    const std::size_t block = detail::size_class_bytes(index);
    EXPECT_EQ(detail::size_class_index(block), index);
    if (index + 1 < detail::size_class_count) {
      EXPECT_LT(block, detail::size_class_bytes(index + 1));
      EXPECT_EQ(detail::size_class_index(block + 1), index + 1);
    }
  }
}

// ---------------------------------------------------------------- coalescing arena

constexpr std::uintptr_t arena_base = std::uintptr_t{1} << 32;

TEST(CoalescingArena, BestFitSplitsOnTakeAndGiveBackMergesNeighbours) {
  coalescing_arena arena;
  arena.add_chunk(arena_base, 64 * mib);
  std::vector<std::uintptr_t> blocks;
  for (int i = 0; i < 4; ++i) blocks.push_back(arena.take(8 * mib, stream_a));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(blocks[i], arena_base + static_cast<std::uintptr_t>(i) * 8 * mib);
  EXPECT_EQ(arena.free_range_count(), 1u);  // the tail [32, 64) MiB
  EXPECT_EQ(arena.free_bytes(), 32 * mib);

  arena.give_back(blocks[0], 8 * mib, stream_a);
  arena.give_back(blocks[2], 8 * mib, stream_a);
  EXPECT_EQ(arena.free_range_count(), 3u);  // [0,8) [16,24) [32,64)
  // Best fit: an 8 MiB hole, not the 32 MiB tail; the lowest address of equals.
  const std::uintptr_t fit = arena.take(6 * mib, stream_a);
  EXPECT_EQ(fit, blocks[0]);
  EXPECT_EQ(arena.free_range_count(), 3u);  // [6,8) [16,24) [32,64)
  arena.give_back(fit, 6 * mib, stream_a);
  EXPECT_EQ(arena.free_range_count(), 3u);  // merged back into [0,8)

  arena.give_back(blocks[1], 8 * mib, stream_a);  // joins both sides: [0,24)
  EXPECT_EQ(arena.free_range_count(), 2u);
  arena.give_back(blocks[3], 8 * mib, stream_a);
  EXPECT_EQ(arena.free_range_count(), 1u);
  EXPECT_EQ(arena.free_bytes(), 64 * mib);
  EXPECT_EQ(arena.taken_count(), 0u);
  // The ownerless tail merged into stream A's range: it belongs to A now.
  EXPECT_EQ(arena.owner_at(arena_base), stream_a);

  const auto chunks = arena.remove_free_chunks();
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].base, arena_base);
  EXPECT_EQ(chunks[0].bytes, 64 * mib);
  EXPECT_EQ(arena.reserved_bytes(), 0u);
}

TEST(CoalescingArena, ManySmallRangesFreedInRandomOrderCoalesceBackIntoOne) {
  coalescing_arena arena;
  arena.add_chunk(arena_base, 64 * mib);
  std::vector<std::uintptr_t> blocks;
  for (int i = 0; i < 256; ++i) blocks.push_back(arena.take(256 * kib, stream_a));
  EXPECT_EQ(arena.free_range_count(), 0u);
  std::mt19937 random(7);
  std::shuffle(blocks.begin(), blocks.end(), random);
  std::size_t most_ranges = 0;
  for (const auto block : blocks) {
    arena.give_back(block, 256 * kib, stream_a);
    most_ranges = std::max(most_ranges, arena.free_range_count());
  }
  EXPECT_GT(most_ranges, 10u);  // it did fragment on the way
  EXPECT_EQ(arena.free_range_count(), 1u);
  EXPECT_EQ(arena.free_bytes(), 64 * mib);
  EXPECT_EQ(arena.take(64 * mib, stream_a), arena_base);
}

TEST(CoalescingArena, AdjacentChunksNeverMergeSoEachGoesBackUpstreamWhole) {
  coalescing_arena arena;
  arena.add_chunk(arena_base, 4 * mib);
  arena.add_chunk(arena_base + 4 * mib, 4 * mib);
  const auto first = arena.take(4 * mib, stream_a);
  const auto second = arena.take(4 * mib, stream_a);
  EXPECT_EQ(arena.take(8 * mib, stream_a), 0u);
  arena.give_back(first, 4 * mib, stream_a);
  arena.give_back(second, 4 * mib, stream_a);
  EXPECT_EQ(arena.free_range_count(), 2u);
  arena.forget_owners();
  EXPECT_EQ(arena.free_range_count(), 2u);
  EXPECT_EQ(arena.take(8 * mib, stream_a), 0u);
  const auto chunks = arena.remove_free_chunks();
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].bytes + chunks[1].bytes, 8 * mib);
  EXPECT_EQ(arena.chunk_count(), 0u);
}

TEST(CoalescingArena, RangesOfDifferentStreamsStayApartAndAreTakenOnlyThroughTheirOwner) {
  coalescing_arena arena;
  arena.add_chunk(arena_base, 16 * mib);
  std::vector<std::uintptr_t> blocks;
  for (int i = 0; i < 4; ++i) blocks.push_back(arena.take(4 * mib, stream_c));
  arena.give_back(blocks[0], 4 * mib, stream_a);
  arena.give_back(blocks[1], 4 * mib, stream_b);
  EXPECT_EQ(arena.free_range_count(), 2u);  // A's and B's do not merge
  arena.give_back(blocks[2], 4 * mib, detail::no_stream);
  EXPECT_EQ(arena.free_range_count(), 2u);  // the ownerless one joins B's
  EXPECT_EQ(arena.owner_at(blocks[1]), stream_b);

  // C finds nothing usable without a wait...
  EXPECT_EQ(arena.take(4 * mib, stream_c), 0u);
  // ...A's 4 MiB fits best among other owners; B's 8 MiB for bigger requests.
  EXPECT_EQ(arena.owner_with_fit(4 * mib, stream_c), stream_a);
  EXPECT_EQ(arena.owner_with_fit(6 * mib, stream_c), stream_b);
  EXPECT_EQ(arena.owner_with_fit(12 * mib, stream_c), std::nullopt);
  EXPECT_EQ(arena.owner_with_fit(4 * mib, stream_a), stream_b);  // never its own
  // A takes its own range at once.
  const auto own = arena.take(4 * mib, stream_a);
  EXPECT_EQ(own, blocks[0]);
  arena.give_back(own, 4 * mib, stream_a);
  const auto stolen = arena.take_from(6 * mib, stream_b);
  EXPECT_EQ(stolen, blocks[1]);
  EXPECT_EQ(arena.owner_at(blocks[1] + 6 * mib), stream_b);  // the rest stays B's
  arena.give_back(stolen, 6 * mib, stream_c);
  arena.give_back(blocks[3], 4 * mib, stream_c);

  arena.forget_owners();  // after a synchronisation: one ownerless range
  EXPECT_EQ(arena.free_range_count(), 1u);
  EXPECT_EQ(arena.owner_at(arena_base), detail::no_stream);
  EXPECT_EQ(arena.take(16 * mib, stream_b), arena_base);
}

TEST(CoalescingArena, GivingBackWhatWasNotTakenThrows) {
  coalescing_arena arena;
  arena.add_chunk(arena_base, 4 * mib);
  const auto block = arena.take(1 * mib, stream_a);
  EXPECT_THROW(arena.give_back(block, 2 * mib, stream_a), tunekit::invalid_argument);
  EXPECT_THROW(arena.give_back(block + 256, 1 * mib, stream_a), tunekit::invalid_argument);
  arena.give_back(block, 1 * mib, stream_a);
  EXPECT_THROW(arena.give_back(block, 1 * mib, stream_a), tunekit::invalid_argument);
  EXPECT_TRUE(arena.holds(block + 3 * mib));
  EXPECT_FALSE(arena.holds(block + 4 * mib));
  EXPECT_FALSE(arena.holds(block - 1));
}

// ---------------------------------------------------------------- pool core: reuse and ordering

TEST(DevicePoolCore, SameStreamReuseIsImmediateAndNeedsNoWaitNorUpstream) {
  fake_platform platform;
  pool_core pool(platform, with_checks());
  for (const std::size_t bytes : {std::size_t{1000}, 300 * kib, 8 * mib}) {
    void* first = pool.allocate(bytes, stream_a);
    pool.deallocate(first, bytes, stream_a);
    const std::size_t calls = platform.upstream_calls();
    void* second = pool.allocate(bytes, stream_a);
    EXPECT_EQ(second, first) << bytes;
    EXPECT_EQ(platform.upstream_calls(), calls);
    pool.deallocate(second, bytes, stream_a);
  }
  EXPECT_TRUE(platform.waits().empty());
  EXPECT_EQ(platform.synchronizations(), 0u);
}

TEST(DevicePoolCore, FreshMemoryIsUsedOnAnyStreamWithoutAWait) {
  fake_platform platform;
  pool_core pool(platform, with_checks());
  void* on_a = pool.allocate(4 * kib, stream_a);
  void* on_b = pool.allocate(4 * kib, stream_b);  // the same chunk, ownerless
  void* large_a = pool.allocate(3 * mib, stream_a);
  void* large_b = pool.allocate(3 * mib, stream_b);
  EXPECT_TRUE(platform.waits().empty());
  EXPECT_EQ(platform.upstream_calls(), 2u);  // one small chunk, one large
  pool.deallocate(on_a, 4 * kib, stream_a);
  pool.deallocate(on_b, 4 * kib, stream_b);
  pool.deallocate(large_a, 3 * mib, stream_a);
  pool.deallocate(large_b, 3 * mib, stream_b);
}

TEST(DevicePoolCore, ASmallBlockFreedOnOneStreamIsReusedOnAnotherOnlyAfterAWait) {
  fake_platform platform;
  // Room for one 1 MiB block: the only memory B can get is the one A freed.
  pool_core pool(platform, with_checks({.maximum_bytes = 1 * mib}));
  void* block = pool.allocate(1 * mib, stream_a);
  pool.deallocate(block, 1 * mib, stream_a);
  std::vector<std::pair<stream_key, stream_key>> waits_when_reused;
  void* reused = pool.allocate(1 * mib, stream_b);
  waits_when_reused = platform.waits();
  EXPECT_EQ(reused, block);
  ASSERT_EQ(waits_when_reused.size(), 1u);
  EXPECT_EQ(waits_when_reused[0], std::make_pair(stream_b, stream_a));  // B waits for A
  EXPECT_EQ(platform.upstream_calls(), 1u);
  // Now B's: back on B needs nothing more.
  pool.deallocate(reused, 1 * mib, stream_b);
  EXPECT_EQ(pool.allocate(1 * mib, stream_b), block);
  EXPECT_EQ(platform.waits().size(), 1u);
  pool.deallocate(block, 1 * mib, stream_b);
}

TEST(DevicePoolCore, ALargeBlockFreedOnOneStreamIsReusedOnAnotherOnlyAfterAWait) {
  fake_platform platform;
  pool_core pool(platform, with_checks({.large_chunk_bytes = 8 * mib}));
  void* block = pool.allocate(8 * mib, stream_a);
  pool.deallocate(block, 8 * mib, stream_a);
  EXPECT_TRUE(platform.waits().empty());
  void* reused = pool.allocate(8 * mib, stream_b);
  EXPECT_EQ(reused, block);
  ASSERT_EQ(platform.waits().size(), 1u);
  EXPECT_EQ(platform.waits()[0], std::make_pair(stream_b, stream_a));
  EXPECT_EQ(platform.upstream_calls(), 1u);
  pool.deallocate(reused, 8 * mib, stream_b);
}

TEST(DevicePoolCore, CachedLargeBlocksCoalesceBeforeThePoolGrows) {
  fake_platform platform;
  pool_core pool(platform, with_checks());  // large chunks of 16 MiB
  void* first = pool.allocate(6 * mib, stream_a);
  void* second = pool.allocate(6 * mib, stream_a);
  EXPECT_EQ(platform.upstream_calls(), 1u);
  pool.deallocate(first, 6 * mib, stream_a);
  pool.deallocate(second, 6 * mib, stream_a);
  EXPECT_EQ(pool.layout().cached_blocks, 2u);
  // 12 MiB fits only once both cached blocks and the 4 MiB tail are one range.
  void* merged = pool.allocate(12 * mib, stream_a);
  EXPECT_EQ(merged, first);
  EXPECT_EQ(platform.upstream_calls(), 1u);
  EXPECT_EQ(pool.layout().large_chunks, 1u);
  EXPECT_EQ(pool.layout().large_free_ranges, 1u);  // the last 4 MiB
  pool.deallocate(merged, 12 * mib, stream_a);
}

// Checks every allocation against vector clocks of the streams: memory last
// used on stream X may be handed to stream Y only once Y is ordered after X's
// free (a wait on X, or on a stream already ordered after it, issued after the
// free; or a synchronisation). A random mix of streams, sizes, frees and
// releases under a maximum that forces releases on the way.
TEST(DevicePoolCore, MemoryChangesStreamsOnlyAfterTheNewStreamIsOrderedAfterTheFree) {
  fake_platform platform;
  std::uint64_t now = 0;
  std::uint64_t last_synchronization = 0;
  std::map<stream_key, std::map<stream_key, std::uint64_t>> clock;  // [Y][X]: Y ordered after X's work up to this time
  const auto order = [&](stream_key waiter, stream_key owner) {
    ++now;
    for (const auto& [stream, time] : clock[owner]) clock[waiter][stream] = std::max(clock[waiter][stream], time);
    clock[waiter][owner] = now;
  };
  platform.on_wait = order;
  platform.on_synchronize = [&] { last_synchronization = ++now; };
  struct used_range {
    std::uintptr_t end = 0;
    stream_key stream = 0;
    std::uint64_t freed_at = 0;
  };
  std::map<std::uintptr_t, used_range> freed;  // memory freed and not yet handed out again
  std::map<std::uintptr_t, std::uintptr_t> live_ranges;
  struct live_block {
    void* pointer = nullptr;
    std::size_t bytes = 0;
    stream_key stream = 0;
  };
  std::vector<live_block> live;

  pool_core pool(platform, with_checks({.maximum_bytes = 160 * mib}));
  const std::array streams{stream_a, stream_b, stream_c};
  std::mt19937_64 random(2024);
  std::uniform_real_distribution<double> log_size(std::log(256.0), std::log(24.0 * mib));
  std::size_t handovers = 0;
  std::size_t out_of_memory = 0;
  for (int step = 0; step < 20000; ++step) {
    const auto choice = random() % 100;
    if (choice < 1) {
      pool.release();
    } else if (live.empty() || (live.size() < 24 && choice < 55)) {
      const auto bytes = static_cast<std::size_t>(std::exp(log_size(random)));
      const stream_key stream = streams[random() % streams.size()];
      void* pointer = nullptr;
      try {
        pointer = pool.allocate(bytes, stream);
      } catch (const tunekit::out_of_memory&) {
        ++out_of_memory;
        continue;
      }
      const std::uintptr_t begin = address_of(pointer);
      const std::uintptr_t end = begin + bytes;
      // Disjoint from every live block.
      auto next_live = live_ranges.lower_bound(begin);
      ASSERT_TRUE(next_live == live_ranges.end() || next_live->first >= end) << "overlaps a live block";
      ASSERT_TRUE(next_live == live_ranges.begin() || std::prev(next_live)->second <= begin) << "overlaps a live block";
      live_ranges.emplace(begin, end);
      // Every freed range it overlaps: same stream, or ordered after the free.
      auto overlap = freed.upper_bound(begin);
      if (overlap != freed.begin() && std::prev(overlap)->second.end > begin) --overlap;
      while (overlap != freed.end() && overlap->first < end) {
        const auto range = overlap->second;
        const std::uintptr_t range_begin = overlap->first;
        if (range.stream != stream) {
          ++handovers;
          const std::uint64_t ordered = std::max(clock[stream][range.stream], last_synchronization);
          ASSERT_GT(ordered, range.freed_at) << "memory freed on stream " << range.stream << " handed to " << stream
                                             << " without a wait";
        }
        overlap = freed.erase(overlap);
        if (range_begin < begin) freed.emplace(range_begin, used_range{begin, range.stream, range.freed_at});
        if (range.end > end) overlap = freed.emplace(end, used_range{range.end, range.stream, range.freed_at}).first;
      }
      live.push_back({pointer, bytes, stream});
    } else {
      const auto victim = random() % live.size();
      const live_block block = live[victim];
      live[victim] = live.back();
      live.pop_back();
      // Usually freed on the stream that used it; sometimes on another, which
      // the program ordered after the first, as the contract asks.
      const stream_key stream = random() % 8 == 0 ? streams[random() % streams.size()] : block.stream;
      if (stream != block.stream) order(stream, block.stream);
      pool.deallocate(block.pointer, block.bytes, stream);
      live_ranges.erase(address_of(block.pointer));
      freed[address_of(block.pointer)] = {address_of(block.pointer) + block.bytes, stream, ++now};
    }
  }
  EXPECT_GT(handovers, 100u);  // the test did exercise cross-stream reuse
  EXPECT_GT(platform.waits().size(), 10u);
  std::printf("[          ] %zu cross-stream handovers, %zu waits, %zu out-of-memory at the maximum\n", handovers,
              platform.waits().size(), out_of_memory);
  for (const auto& block : live) pool.deallocate(block.pointer, block.bytes, block.stream);
  EXPECT_EQ(pool.statistics().current_bytes, 0u);
  pool.release();
  EXPECT_EQ(pool.statistics().reserved_bytes, 0u);
  EXPECT_EQ(platform.outstanding_bytes(), 0u);
  EXPECT_EQ(platform.bad_frees(), 0u);
}

// ---------------------------------------------------------------- release, maximum, out of memory

TEST(DevicePoolCore, ReleaseSynchronisesAndReturnsOnlyChunksNothingIsTakenFrom) {
  fake_platform platform;
  pool_core pool(platform, with_checks());
  void* small = pool.allocate(300 * kib, stream_a);  // a 4 MiB small chunk
  void* large = pool.allocate(20 * mib, stream_a);   // a 20 MiB chunk
  void* larger = pool.allocate(40 * mib, stream_b);  // a 40 MiB chunk
  EXPECT_EQ(pool.statistics().reserved_bytes, 64 * mib);
  pool.deallocate(large, 20 * mib, stream_a);
  pool.deallocate(larger, 40 * mib, stream_b);
  pool.release();
  EXPECT_EQ(platform.synchronizations(), 1u);
  EXPECT_EQ(pool.statistics().reserved_bytes, 4 * mib);
  EXPECT_EQ(platform.outstanding_bytes(), 4 * mib);
  const auto layout = pool.layout();
  EXPECT_EQ(layout.small_chunks, 1u);
  EXPECT_EQ(layout.large_chunks, 0u);
  EXPECT_EQ(layout.cached_blocks, 0u);
  EXPECT_EQ(layout.streams, 0u);  // forgotten: a destroyed stream is never touched again
  pool.deallocate(small, 300 * kib, stream_a);
  pool.release();
  EXPECT_EQ(pool.statistics().reserved_bytes, 0u);
  EXPECT_EQ(pool.statistics().releases, 2u);
  EXPECT_EQ(platform.outstanding_bytes(), 0u);
  EXPECT_EQ(platform.bad_frees(), 0u);
}

TEST(DevicePoolCore, AtTheMaximumThePoolReleasesItsCacheRetriesOnceThenThrowsOutOfMemory) {
  fake_platform platform;
  pool_core pool(platform, with_checks({.maximum_bytes = 32 * mib}));
  void* first = pool.allocate(20 * mib, stream_a);
  pool.deallocate(first, 20 * mib, stream_a);  // cached: 20 MiB reserved
  // 24 MiB more would exceed 32: the cached chunk goes back, then it fits.
  void* second = pool.allocate(24 * mib, stream_a);
  EXPECT_EQ(pool.statistics().releases, 1u);
  EXPECT_EQ(pool.statistics().reserved_bytes, 24 * mib);
  // 16 MiB more cannot fit even after a release.
  try {
    (void)pool.allocate(16 * mib, stream_a);
    ADD_FAILURE() << "no out_of_memory";
  } catch (const tunekit::out_of_memory& failure) {
    EXPECT_EQ(failure.requested(), 16 * mib);
  }
  const auto statistics = pool.statistics();
  EXPECT_EQ(statistics.releases, 2u);
  EXPECT_EQ(statistics.allocations, 2u);
  EXPECT_EQ(statistics.current_bytes, 24 * mib);
  EXPECT_LE(statistics.reserved_bytes, 32 * mib);
  // A chunk smaller than the preferred one still fits under the maximum.
  void* small = pool.allocate(1 * mib, stream_a);
  EXPECT_LE(pool.statistics().reserved_bytes, 32 * mib);
  pool.deallocate(small, 1 * mib, stream_a);
  pool.deallocate(second, 24 * mib, stream_a);
}

TEST(DevicePoolCore, WhenUpstreamFailsThePoolReleasesItsCacheAndRetriesExactlyOnce) {
  fake_platform platform;
  platform.budget_bytes = 64 * mib;
  pool_core pool(platform, with_checks());
  void* first = pool.allocate(40 * mib, stream_a);
  pool.deallocate(first, 40 * mib, stream_a);
  // Upstream refuses 48 MiB while the pool caches 40; after the release it gives it.
  void* second = pool.allocate(48 * mib, stream_b);
  EXPECT_EQ(pool.statistics().releases, 1u);
  EXPECT_EQ(platform.outstanding_bytes(), 48 * mib);
  // 32 MiB more: refused, released (nothing to give back), refused again, thrown.
  const std::size_t calls = platform.upstream_calls();
  EXPECT_THROW((void)pool.allocate(32 * mib, stream_b), tunekit::out_of_memory);
  EXPECT_EQ(platform.upstream_calls() - calls, 2u);  // one try, one retry
  EXPECT_EQ(pool.statistics().releases, 2u);
  // An absurd size: out_of_memory as well, never an overflow.
  EXPECT_THROW((void)pool.allocate(std::size_t{1} << 50, stream_b), tunekit::out_of_memory);
  EXPECT_THROW((void)pool.allocate(~std::size_t{0}, stream_b), tunekit::out_of_memory);
  pool.deallocate(second, 48 * mib, stream_b);
  EXPECT_EQ(pool.statistics().current_count, 0u);
}

// ---------------------------------------------------------------- checks

TEST(DevicePoolCore, WithChecksDoubleFreeForeignPointerAndWrongSizeThrowInvalidArgument) {
  fake_platform platform;
  pool_core pool(platform, with_checks());
  void* small = pool.allocate(1000, stream_a);
  void* large = pool.allocate(8 * mib, stream_a);
  pool.deallocate(small, 1000, stream_a);
  pool.deallocate(large, 8 * mib, stream_a);
  const auto statistics = pool.statistics();
  try {
    pool.deallocate(small, 1000, stream_a);
    ADD_FAILURE() << "no exception";
  } catch (const tunekit::invalid_argument& failure) {
    EXPECT_NE(std::string(failure.what()).find("double free"), std::string::npos) << failure.what();
  }
  EXPECT_THROW(pool.deallocate(large, 8 * mib, stream_b), tunekit::invalid_argument);
  int host_value = 0;
  try {
    pool.deallocate(&host_value, sizeof host_value, stream_a);
    ADD_FAILURE() << "no exception";
  } catch (const tunekit::invalid_argument& failure) {
    EXPECT_NE(std::string(failure.what()).find("foreign"), std::string::npos) << failure.what();
  }
  EXPECT_THROW(pool.deallocate(nullptr, 256, stream_a), tunekit::invalid_argument);
  void* block = pool.allocate(5000, stream_a);
  EXPECT_THROW(pool.deallocate(block, 6000, stream_a), tunekit::invalid_argument);
  EXPECT_THROW(pool.deallocate(static_cast<char*>(block) + 256, 4744, stream_a), tunekit::invalid_argument);
  pool.deallocate(block, 5000, stream_a);  // the right call still works
  const auto after = pool.statistics();
  EXPECT_EQ(after.deallocations, statistics.deallocations + 1);
  EXPECT_EQ(after.current_count, 0u);
  EXPECT_THROW((void)pool.allocate(0, stream_a), tunekit::invalid_argument);
}

TEST(DevicePoolCore, DestructionFreesEveryChunkAndReportsBlocksStillHandedOut) {
  fake_platform platform;
  auto pool = std::make_unique<pool_core>(platform, with_checks());
  (void)pool->allocate(1000, stream_a);  // leaked on purpose
  void* large = pool->allocate(8 * mib, stream_a);
  pool->deallocate(large, 8 * mib, stream_a);
  EXPECT_GT(platform.outstanding_bytes(), 0u);
  testing::internal::CaptureStderr();
  pool.reset();
  const std::string report = testing::internal::GetCapturedStderr();
  EXPECT_NE(report.find("1 block(s) (1000 bytes) still allocated"), std::string::npos) << report;
  EXPECT_EQ(platform.outstanding_bytes(), 0u);
  EXPECT_EQ(platform.outstanding_chunks(), 0u);
  EXPECT_EQ(platform.synchronizations(), 1u);
  EXPECT_EQ(platform.bad_frees(), 0u);
}

// ---------------------------------------------------------------- statistics

TEST(DevicePoolCore, StatisticsAreExactAfterAScriptedSequenceAndReturnToZero) {
  fake_platform platform;
  pool_core pool(platform, with_checks());
  void* a = pool.allocate(1000, stream_a);  // miss: 4 MiB small chunk
  void* b = pool.allocate(3 * mib, stream_a);  // miss: 16 MiB large chunk
  pool.deallocate(a, 1000, stream_a);
  void* c = pool.allocate(900, stream_a);  // hit: the same 1 KiB class
  EXPECT_EQ(c, a);
  pool.deallocate(b, 3 * mib, stream_a);
  void* d = pool.allocate(3 * mib, stream_a);  // hit: the cached large block
  EXPECT_EQ(d, b);
  void* e = pool.allocate(5 * mib, stream_b);  // hit: carved from the chunk's free rest
  auto statistics = pool.statistics();
  EXPECT_EQ(statistics.allocations, 5u);
  EXPECT_EQ(statistics.deallocations, 2u);
  EXPECT_EQ(statistics.hits, 3u);
  EXPECT_EQ(statistics.misses, 2u);
  EXPECT_EQ(statistics.upstream_allocations, 2u);
  EXPECT_EQ(statistics.current_count, 3u);
  EXPECT_EQ(statistics.current_bytes, 900 + 3 * mib + 5 * mib);
  EXPECT_EQ(statistics.peak_bytes, 900 + 3 * mib + 5 * mib);
  EXPECT_EQ(statistics.reserved_bytes, 20 * mib);
  EXPECT_EQ(statistics.releases, 0u);

  pool.deallocate(c, 900, stream_a);
  pool.deallocate(d, 3 * mib, stream_a);
  pool.deallocate(e, 5 * mib, stream_b);
  statistics = pool.statistics();
  EXPECT_EQ(statistics.current_bytes, 0u);
  EXPECT_EQ(statistics.current_count, 0u);
  EXPECT_EQ(statistics.deallocations, 5u);
  EXPECT_EQ(statistics.peak_bytes, 900 + 3 * mib + 5 * mib);
  EXPECT_EQ(statistics.reserved_bytes, 20 * mib);  // cached until released
  pool.release();
  statistics = pool.statistics();
  EXPECT_EQ(statistics.reserved_bytes, 0u);
  EXPECT_EQ(statistics.releases, 1u);
  EXPECT_EQ(platform.outstanding_bytes(), 0u);
}

// ---------------------------------------------------------------- threads

TEST(DevicePoolCore, ConcurrentAllocationsStayDisjointAndTheBooksBalance) {
  fake_platform platform;
  pool_core pool(platform, with_checks());
  std::mutex live_guard;
  std::map<std::uintptr_t, std::uintptr_t> live_ranges;
  std::atomic<std::uint64_t> allocations{0};
  std::atomic<bool> overlap{false};
  constexpr int threads = 8;
  constexpr int steps = 4000;
  std::vector<std::thread> workers;
  for (int thread = 0; thread < threads; ++thread) {
    workers.emplace_back([&, thread] {
      std::mt19937_64 random(static_cast<std::uint64_t>(thread) + 1);
      std::uniform_real_distribution<double> log_size(std::log(256.0), std::log(8.0 * mib));
      // Threads share streams two by two, as a program's workers may.
      const stream_key own_stream = stream_a + static_cast<stream_key>(thread / 2) * 0x1000;
      std::vector<std::pair<void*, std::size_t>> mine;
      for (int step = 0; step < steps; ++step) {
        if (thread == 0 && step % 1000 == 999) pool.release();
        if (mine.empty() || (mine.size() < 16 && random() % 2 == 0)) {
          const auto bytes = static_cast<std::size_t>(std::exp(log_size(random)));
          const stream_key stream = random() % 4 == 0 ? stream_a : own_stream;
          void* pointer = pool.allocate(bytes, stream);
          ++allocations;
          const std::lock_guard lock(live_guard);
          const std::uintptr_t begin = address_of(pointer);
          const auto next = live_ranges.lower_bound(begin);
          if ((next != live_ranges.end() && next->first < begin + bytes) ||
              (next != live_ranges.begin() && std::prev(next)->second > begin))
            overlap = true;
          live_ranges.emplace(begin, begin + bytes);
          mine.emplace_back(pointer, bytes);
        } else {
          const auto victim = random() % mine.size();
          const auto [pointer, bytes] = mine[victim];
          mine[victim] = mine.back();
          mine.pop_back();
          {
            // Out of the book before the pool may hand it to someone else.
            const std::lock_guard lock(live_guard);
            live_ranges.erase(address_of(pointer));
          }
          pool.deallocate(pointer, bytes, random() % 4 == 0 ? stream_b : own_stream);
        }
      }
      for (const auto& [pointer, bytes] : mine) {
        {
          const std::lock_guard lock(live_guard);
          live_ranges.erase(address_of(pointer));
        }
        pool.deallocate(pointer, bytes, own_stream);
      }
    });
  }
  for (auto& worker : workers) worker.join();
  EXPECT_FALSE(overlap.load());
  const auto statistics = pool.statistics();
  EXPECT_EQ(statistics.allocations, allocations.load());
  EXPECT_EQ(statistics.deallocations, allocations.load());
  EXPECT_EQ(statistics.hits + statistics.misses, statistics.allocations);
  EXPECT_EQ(statistics.current_bytes, 0u);
  EXPECT_EQ(statistics.current_count, 0u);
  EXPECT_EQ(statistics.upstream_allocations, statistics.misses);
  EXPECT_EQ(statistics.reserved_bytes, platform.outstanding_bytes());
  pool.release();
  EXPECT_EQ(pool.statistics().reserved_bytes, 0u);
  EXPECT_EQ(platform.outstanding_bytes(), 0u);
  EXPECT_EQ(platform.bad_frees(), 0u);
  const auto layout = pool.layout();
  EXPECT_EQ(layout.small_chunks + layout.large_chunks + layout.cached_blocks, 0u);
}

// Not an assertion: what the bookkeeping alone costs per cached alloc+free
// (the GPU test prints the same with the real upstream).
TEST(DevicePoolCore, ReportsTheCostOfTheCachedPath) {
  fake_platform platform;
  pool_core pool(platform, {.checks = false});
  for (const std::size_t bytes : {std::size_t{256}, 1 * mib, 64 * mib}) {
    pool.deallocate(pool.allocate(bytes, stream_a), bytes, stream_a);
    constexpr int rounds = 200000;
    const auto start = std::chrono::steady_clock::now();
    for (int round = 0; round < rounds; ++round) pool.deallocate(pool.allocate(bytes, stream_a), bytes, stream_a);
    const std::chrono::duration<double, std::nano> elapsed = std::chrono::steady_clock::now() - start;
    std::printf("[          ] cached alloc+free of %zu bytes: %.1f ns (CPU bookkeeping only)\n", bytes,
                elapsed.count() / rounds);
  }
  EXPECT_EQ(pool.statistics().misses, 2u);  // 256 B and 1 MiB share a small chunk
}

}  // namespace
