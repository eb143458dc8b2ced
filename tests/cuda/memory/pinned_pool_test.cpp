// The pinned pool's logic on the CPU: the core behind tunekit::cuda::pinned_pool
// with a malloc-based fake upstream that counts what is outstanding and can be
// made to fail. The GPU half is pinned_pool_gpu_test.cpp.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

// Internal header, not on the tests' include path: reached beside the sources.
#include "../../../src/cuda/memory/pinned_core.hpp"
#include "tunekit/error.hpp"

namespace {

using tunekit::cuda::detail::pinned_core;
using tunekit::cuda::detail::pinned_core_options;

constexpr std::size_t kib = 1024;
constexpr std::size_t mib = 1024 * 1024;

/// What the fake upstream did; outlives the upstream (which the core owns).
struct upstream_ledger {
  std::mutex guard;
  std::set<void*> pinned;                  ///< under guard
  std::atomic<std::int64_t> outstanding{0};
  std::atomic<std::int64_t> outstanding_bytes{0};
  std::atomic<std::int64_t> pins{0};      ///< successful
  std::atomic<std::int64_t> attempts{0};  ///< pin calls, failed ones included
  std::atomic<std::int64_t> bad_unpins{0};
  std::atomic<std::int64_t> capacity_bytes{0};  ///< the "system" has no more than this; 0: unlimited
  std::atomic<bool> fail_always{false};
  std::atomic<bool> throw_next{false};
};

class fake_upstream final : public tunekit::cuda::detail::pinned_upstream {
 public:
  explicit fake_upstream(std::shared_ptr<upstream_ledger> ledger) : ledger_(std::move(ledger)) {}

 private:
  void* do_pin(std::size_t bytes) override {
    ++ledger_->attempts;
    if (ledger_->throw_next.exchange(false)) throw tunekit::error("fake upstream: driver gone");
    if (ledger_->fail_always) return nullptr;
    const auto capacity = ledger_->capacity_bytes.load();
    if (capacity != 0 && ledger_->outstanding_bytes + static_cast<std::int64_t>(bytes) > capacity) return nullptr;
    void* pointer = std::aligned_alloc(4096, bytes);
    if (pointer == nullptr) return nullptr;
    {
      const std::lock_guard lock(ledger_->guard);
      ledger_->pinned.insert(pointer);
    }
    ++ledger_->outstanding;
    ++ledger_->pins;
    ledger_->outstanding_bytes += static_cast<std::int64_t>(bytes);
    return pointer;
  }

  void do_unpin(void* pointer, std::size_t bytes) noexcept override {
    {
      const std::lock_guard lock(ledger_->guard);
      if (ledger_->pinned.erase(pointer) != 1) {
        ++ledger_->bad_unpins;
        return;
      }
    }
    --ledger_->outstanding;
    ledger_->outstanding_bytes -= static_cast<std::int64_t>(bytes);
    std::free(pointer);
  }

  std::shared_ptr<upstream_ledger> ledger_;
};

struct fixture_pool {
  std::shared_ptr<upstream_ledger> ledger = std::make_shared<upstream_ledger>();
  std::shared_ptr<pinned_core> core;

  explicit fixture_pool(pinned_core_options options = {.maximum_bytes = 0, .checks = true}) {
    core = pinned_core::create(std::make_unique<fake_upstream>(ledger), options);
  }
  fixture_pool(const fixture_pool&) = delete;
  fixture_pool& operator=(const fixture_pool&) = delete;
  // What pinned_pool's destructor does.
  ~fixture_pool() { destroy(); }
  void destroy() {
    if (core == nullptr) return;
    core->shutdown();
    core.reset();
  }
  [[nodiscard]] bool is_pinned(void* pointer) {
    const std::lock_guard lock(ledger->guard);
    return ledger->pinned.contains(pointer);
  }
};

// ---------------------------------------------------------------- classes

TEST(PinnedCore, SizeClassesArePowersOfTwoFromAPage) {
  EXPECT_EQ(pinned_core::class_of(1), 0u);
  EXPECT_EQ(pinned_core::class_of(4096), 0u);
  EXPECT_EQ(pinned_core::class_of(4097), 1u);
  EXPECT_EQ(pinned_core::class_of(8192), 1u);
  EXPECT_EQ(pinned_core::class_of(mib), 8u);
  EXPECT_EQ(pinned_core::class_of(mib + 1), 9u);
  EXPECT_EQ(pinned_core::class_bytes(0), 4096u);
  EXPECT_EQ(pinned_core::class_bytes(pinned_core::class_of(3 * mib)), 4 * mib);
  EXPECT_EQ(pinned_core::class_bytes(pinned_core::class_of(std::size_t{1} << 30)), std::size_t{1} << 30);
  const std::size_t largest = std::size_t{1} << pinned_core::largest_class_log2;
  EXPECT_EQ(pinned_core::class_of(largest), pinned_core::class_count - 1);
  EXPECT_EQ(pinned_core::class_bytes(pinned_core::class_count - 1), largest);
}

TEST(PinnedCore, RejectsZeroBytesAndSizesBeyondTheLargestClass) {
  fixture_pool pool;
  EXPECT_THROW(static_cast<void>(pool.core->allocate(0)), tunekit::invalid_argument);
  try {
    static_cast<void>(pool.core->allocate((std::size_t{1} << pinned_core::largest_class_log2) + 1));
    FAIL() << "no exception";
  } catch (const tunekit::out_of_memory& error) {
    EXPECT_EQ(error.requested(), (std::size_t{1} << pinned_core::largest_class_log2) + 1);
  }
  EXPECT_EQ(pool.ledger->attempts, 0);
}

// ---------------------------------------------------------------- reuse

TEST(PinnedCore, AFreedBufferIsReusedForAnyRequestOfItsClass) {
  fixture_pool pool;
  void* first = pool.core->allocate(1000);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(first) % 256, 0u);
  std::memset(first, 0xab, 4096);  // the whole class is usable
  pool.core->deallocate(first, 1000);
  void* second = pool.core->allocate(3000);
  EXPECT_EQ(second, first);
  pool.core->deallocate(second, 3000);
  void* other_class = pool.core->allocate(5000);
  EXPECT_NE(other_class, first);
  pool.core->deallocate(other_class, 5000);

  const auto stats = pool.core->statistics();
  EXPECT_EQ(stats.misses, 2u);
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.upstream_allocations, 2u);
  EXPECT_EQ(stats.reserved_bytes, 4096u + 8192u);
  EXPECT_EQ(pool.ledger->pins, 2);
}

TEST(PinnedCore, TheThreadCacheServesRepeatsWithoutTheSharedLists) {
  fixture_pool pool({.maximum_bytes = 0, .checks = false});
  for (int i = 0; i < 100; ++i) {
    void* buffer = pool.core->allocate(64 * kib);
    pool.core->deallocate(buffer, 64 * kib);
    EXPECT_EQ(pool.core->shared_blocks(), 0u) << "the block should sit in this thread's cache";
  }
  const auto stats = pool.core->statistics();
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.hits, 99u);
  EXPECT_EQ(stats.allocations, 100u);
  EXPECT_EQ(stats.deallocations, 100u);
}

TEST(PinnedCore, WhatTheThreadCacheCannotHoldGoesToTheSharedLists) {
  fixture_pool pool;
  const std::size_t slots = pinned_core::thread_slots(pinned_core::class_of(4096));
  std::vector<void*> buffers;
  for (std::size_t i = 0; i < slots + 2; ++i) buffers.push_back(pool.core->allocate(4096));
  for (void* buffer : buffers) pool.core->deallocate(buffer, 4096);
  EXPECT_EQ(pool.core->shared_blocks(), 2u);
  // All come back as hits: the thread's first, then the shared lists.
  for (auto& buffer : buffers) buffer = pool.core->allocate(4096);
  EXPECT_EQ(pool.core->shared_blocks(), 0u);
  EXPECT_EQ(pool.core->statistics().hits, slots + 2);
  EXPECT_EQ(pool.ledger->pins, static_cast<std::int64_t>(slots + 2));
  for (void* buffer : buffers) pool.core->deallocate(buffer, 4096);
  // Large classes keep fewer per thread, so other threads can have them.
  EXPECT_EQ(pinned_core::thread_slots(pinned_core::class_of(4 * mib)), 4u);
  EXPECT_EQ(pinned_core::thread_slots(pinned_core::class_of(64 * mib)), 2u);
}

TEST(PinnedCore, SeveralPoolsInOneThreadKeepSeparateCaches) {
  fixture_pool a;
  fixture_pool b;
  void* from_a = a.core->allocate(4096);
  a.core->deallocate(from_a, 4096);
  void* from_b = b.core->allocate(4096);
  EXPECT_NE(from_b, from_a);
  EXPECT_EQ(b.core->statistics().misses, 1u);
  b.core->deallocate(from_b, 4096);
  EXPECT_EQ(a.core->allocate(4096), from_a);
  a.core->deallocate(from_a, 4096);
}

// ---------------------------------------------------------------- threads

TEST(PinnedCore, ABufferFreedOnAnotherThreadIsReusedThere) {
  fixture_pool pool;
  void* buffer = nullptr;
  std::thread([&] { buffer = pool.core->allocate(32 * kib); }).join();
  std::thread([&] {
    pool.core->deallocate(buffer, 32 * kib);
    EXPECT_EQ(pool.core->shared_blocks(), 0u);  // in this thread's cache
    void* again = pool.core->allocate(32 * kib);
    EXPECT_EQ(again, buffer);
    pool.core->deallocate(again, 32 * kib);
  }).join();
  const auto stats = pool.core->statistics();
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.current_bytes, 0u);
}

TEST(PinnedCore, AThreadThatExitsGivesItsCacheBack) {
  fixture_pool pool;
  void* buffer = nullptr;
  std::thread([&] {
    buffer = pool.core->allocate(128 * kib);
    pool.core->deallocate(buffer, 128 * kib);
    EXPECT_EQ(pool.core->shared_blocks(), 0u);
  }).join();
  EXPECT_EQ(pool.core->shared_blocks(), 1u);
  void* again = pool.core->allocate(128 * kib);
  EXPECT_EQ(again, buffer);
  EXPECT_EQ(pool.core->statistics().hits, 1u);
  EXPECT_EQ(pool.ledger->pins, 1);
  pool.core->deallocate(again, 128 * kib);
}

TEST(PinnedCore, ReleaseReachesEveryThreadsCache) {
  fixture_pool pool;
  std::latch cached(1);
  std::latch released(1);
  std::thread worker([&] {
    void* buffer = pool.core->allocate(16 * kib);
    pool.core->deallocate(buffer, 16 * kib);
    cached.count_down();
    released.wait();
    // The slot was emptied by release(): this must go upstream, not reuse a stale pointer.
    void* fresh = pool.core->allocate(16 * kib);
    EXPECT_TRUE(pool.is_pinned(fresh));
    pool.core->deallocate(fresh, 16 * kib);
  });
  cached.wait();
  EXPECT_EQ(pool.ledger->outstanding, 1);
  pool.core->release();
  EXPECT_EQ(pool.ledger->outstanding, 0);
  EXPECT_EQ(pool.core->statistics().reserved_bytes, 0u);
  released.count_down();
  worker.join();
  EXPECT_EQ(pool.core->statistics().misses, 2u);
  EXPECT_EQ(pool.core->statistics().releases, 1u);
}

TEST(PinnedCore, APoolDestroyedBeforeAThreadThatCachesItLeaksNothing) {
  auto ledger = std::make_shared<upstream_ledger>();
  std::latch cached(1);
  std::latch destroyed(1);
  std::weak_ptr<pinned_core> watch;
  {
    fixture_pool pool;
    ledger = pool.ledger;
    watch = pool.core;
    std::thread worker([&] {
      void* buffer = pool.core->allocate(256 * kib);
      pool.core->deallocate(buffer, 256 * kib);
      cached.count_down();
      destroyed.wait();
      // This thread's entry for the dead pool is stale; a new pool must work
      // (registering purges it) and exiting must not touch the dead one.
      fixture_pool other;
      void* other_buffer = other.core->allocate(256 * kib);
      other.core->deallocate(other_buffer, 256 * kib);
      other.destroy();
      EXPECT_EQ(other.ledger->outstanding, 0);
    });
    cached.wait();
    EXPECT_EQ(ledger->outstanding, 1);
    pool.destroy();
    EXPECT_TRUE(watch.expired());
    EXPECT_EQ(ledger->outstanding, 0);
    destroyed.count_down();
    worker.join();
  }
  EXPECT_EQ(ledger->outstanding, 0);
  EXPECT_EQ(ledger->bad_unpins, 0);
}

TEST(PinnedCore, AThreadExitingAfterItsPoolDiedForgetsTheCache) {
  auto ledger = std::make_shared<upstream_ledger>();
  std::latch cached(1);
  std::latch destroyed(1);
  std::thread worker;
  {
    fixture_pool pool;
    ledger = pool.ledger;
    worker = std::thread([&pool, &cached, &destroyed] {
      void* buffer = pool.core->allocate(4096);
      pool.core->deallocate(buffer, 4096);
      cached.count_down();
      destroyed.wait();  // exits with a cache entry of a dead pool
    });
    cached.wait();
  }
  EXPECT_EQ(ledger->outstanding, 0);
  destroyed.count_down();
  worker.join();
  EXPECT_EQ(ledger->bad_unpins, 0);
}

TEST(PinnedCore, ThreadsExitingWhileThePoolIsDestroyedLeakNothing) {
  for (int round = 0; round < 20; ++round) {
    auto ledger = std::make_shared<upstream_ledger>();
    std::vector<std::thread> workers;
    std::barrier start(5);  // outlives the threads' waits
    {
      fixture_pool pool;
      ledger = pool.ledger;
      for (int t = 0; t < 4; ++t)
        workers.emplace_back([&pool, &start] {
          auto core = pool.core;  // copied before the pool goes: the thread may hold the last reference
          void* buffer = core->allocate(8192);
          core->deallocate(buffer, 8192);
          start.arrive_and_wait();
        });
      start.arrive_and_wait();
    }  // destroyed while the threads exit
    for (auto& worker : workers) worker.join();
    EXPECT_EQ(ledger->outstanding, 0);
    EXPECT_EQ(ledger->bad_unpins, 0);
  }
}

// ---------------------------------------------------------------- out of memory

TEST(PinnedCore, AtTheLimitThePoolReleasesItsCacheAndTriesOnceMore) {
  fixture_pool pool({.maximum_bytes = 64 * kib, .checks = true});
  void* small = pool.core->allocate(32 * kib);
  pool.core->deallocate(small, 32 * kib);  // cached: 32 KiB reserved
  void* large = pool.core->allocate(64 * kib);  // 96 > 64: release, then fits
  EXPECT_EQ(pool.core->statistics().releases, 1u);
  EXPECT_EQ(pool.core->statistics().reserved_bytes, 64 * kib);
  EXPECT_EQ(pool.ledger->outstanding, 1);
  try {
    static_cast<void>(pool.core->allocate(4096));
    FAIL() << "no exception";
  } catch (const tunekit::out_of_memory& error) {
    EXPECT_EQ(error.requested(), 4096u);
    EXPECT_NE(std::string(error.what()).find("limit"), std::string::npos) << error.what();
  }
  EXPECT_EQ(pool.core->statistics().releases, 2u);
  const auto stats = pool.core->statistics();
  EXPECT_EQ(stats.allocations, 2u);
  EXPECT_EQ(stats.current_bytes, 64 * kib);
  EXPECT_EQ(stats.reserved_bytes, 64 * kib);
  pool.core->deallocate(large, 64 * kib);
}

TEST(PinnedCore, AClassLargerThanTheLimitFailsWithoutReleasing) {
  fixture_pool pool({.maximum_bytes = 100 * kib, .checks = true});
  void* cached = pool.core->allocate(4096);
  pool.core->deallocate(cached, 4096);
  EXPECT_THROW(static_cast<void>(pool.core->allocate(100 * kib)), tunekit::out_of_memory);  // class 128 KiB
  EXPECT_EQ(pool.core->statistics().releases, 0u);
  EXPECT_EQ(pool.ledger->outstanding, 1);
}

TEST(PinnedCore, WhenTheUpstreamFailsThePoolReleasesAndRetriesOnce) {
  fixture_pool pool;
  pool.ledger->capacity_bytes = 64 * kib;
  void* small = pool.core->allocate(32 * kib);
  pool.core->deallocate(small, 32 * kib);
  void* large = pool.core->allocate(64 * kib);  // the "system" is full until the cache goes
  EXPECT_EQ(pool.ledger->attempts, 3);
  EXPECT_EQ(pool.core->statistics().releases, 1u);
  pool.core->deallocate(large, 64 * kib);

  pool.ledger->fail_always = true;
  const auto attempts = pool.ledger->attempts.load();
  try {
    static_cast<void>(pool.core->allocate(mib));
    FAIL() << "no exception";
  } catch (const tunekit::out_of_memory& error) {
    EXPECT_EQ(error.requested(), mib);
  }
  EXPECT_EQ(pool.ledger->attempts - attempts, 2) << "one try, release, one more";
  EXPECT_EQ(pool.core->statistics().releases, 2u);
  EXPECT_EQ(pool.ledger->outstanding, 0);  // the released cache
  const auto stats = pool.core->statistics();
  EXPECT_EQ(stats.reserved_bytes, 0u);
  EXPECT_EQ(stats.current_bytes, 0u);
  EXPECT_EQ(stats.allocations, 2u);
}

TEST(PinnedCore, AnUpstreamErrorOtherThanOutOfMemoryPropagatesAndReservesNothing) {
  fixture_pool pool;
  pool.ledger->throw_next = true;
  EXPECT_THROW(static_cast<void>(pool.core->allocate(4096)), tunekit::error);
  EXPECT_EQ(pool.core->statistics().reserved_bytes, 0u);
  EXPECT_EQ(pool.core->statistics().releases, 0u);
  void* buffer = pool.core->allocate(4096);
  pool.core->deallocate(buffer, 4096);
}

// ---------------------------------------------------------------- checks

TEST(PinnedCore, ChecksCatchDoubleFreesForeignPointersAndSizeMismatches) {
  fixture_pool pool({.maximum_bytes = 0, .checks = true});
  void* buffer = pool.core->allocate(10 * kib);
  EXPECT_THROW(pool.core->deallocate(buffer, 12 * kib), tunekit::invalid_argument);  // same class, other size
  int local = 0;
  EXPECT_THROW(pool.core->deallocate(&local, 4), tunekit::invalid_argument);
  EXPECT_THROW(pool.core->deallocate(static_cast<char*>(buffer) + 256, 10 * kib), tunekit::invalid_argument);
  EXPECT_THROW(pool.core->deallocate(nullptr, 10 * kib), tunekit::invalid_argument);
  EXPECT_EQ(pool.core->statistics().deallocations, 0u);
  pool.core->deallocate(buffer, 10 * kib);
  EXPECT_THROW(pool.core->deallocate(buffer, 10 * kib), tunekit::invalid_argument);
  // Freed twice from another thread too (its cache is not where the check lives).
  std::thread([&] { EXPECT_THROW(pool.core->deallocate(buffer, 10 * kib), tunekit::invalid_argument); }).join();
  const auto stats = pool.core->statistics();
  EXPECT_EQ(stats.deallocations, 1u);
  EXPECT_EQ(stats.current_bytes, 0u);
  EXPECT_EQ(stats.current_count, 0u);
  void* again = pool.core->allocate(10 * kib);
  EXPECT_EQ(again, buffer);
  pool.core->deallocate(again, 10 * kib);
}

TEST(PinnedCore, DestroyingThePoolFreesBuffersStillHandedOutAndSaysSo) {
  fixture_pool pool({.maximum_bytes = 0, .checks = true});
  auto ledger = pool.ledger;
  static_cast<void>(pool.core->allocate(4096));
  static_cast<void>(pool.core->allocate(mib));
  testing::internal::CaptureStderr();
  pool.destroy();
  const std::string report = testing::internal::GetCapturedStderr();
  EXPECT_NE(report.find("2 buffer(s)"), std::string::npos) << report;
  EXPECT_EQ(ledger->outstanding, 0);
}

// ---------------------------------------------------------------- statistics

TEST(PinnedCore, StatisticsAreExactAfterAScriptAndReturnToZero) {
  fixture_pool pool({.maximum_bytes = 0, .checks = true});
  auto ledger = pool.ledger;
  void* a = pool.core->allocate(3000);      // miss, class 4 KiB
  void* b = pool.core->allocate(100 * kib); // miss, class 128 KiB
  pool.core->deallocate(a, 3000);
  void* c = pool.core->allocate(4096);      // hit (a)
  void* d = pool.core->allocate(1);         // miss, class 4 KiB
  pool.core->deallocate(b, 100 * kib);
  pool.core->deallocate(c, 4096);
  pool.core->deallocate(d, 1);

  auto stats = pool.core->statistics();
  EXPECT_EQ(stats.current_bytes, 0u);
  EXPECT_EQ(stats.current_count, 0u);
  EXPECT_EQ(stats.peak_bytes, 4096u + 100 * kib + 1);  // b + c + d
  EXPECT_EQ(stats.allocations, 4u);
  EXPECT_EQ(stats.deallocations, 4u);
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 3u);
  EXPECT_EQ(stats.upstream_allocations, 3u);
  EXPECT_EQ(stats.reserved_bytes, 2 * 4096u + 128 * kib);
  EXPECT_EQ(stats.releases, 0u);

  pool.core->release();
  stats = pool.core->statistics();
  EXPECT_EQ(stats.reserved_bytes, 0u);
  EXPECT_EQ(stats.releases, 1u);
  EXPECT_EQ(ledger->outstanding, 0);

  void* e = pool.core->allocate(2 * mib);
  pool.core->deallocate(e, 2 * mib);
  pool.destroy();
  EXPECT_EQ(ledger->outstanding, 0);
  EXPECT_EQ(ledger->outstanding_bytes, 0);
  EXPECT_EQ(ledger->bad_unpins, 0);
}

TEST(PinnedCore, ShutdownBringsReservedBytesToZero) {
  fixture_pool pool;
  void* buffer = pool.core->allocate(mib);
  pool.core->deallocate(buffer, mib);
  auto core = pool.core;  // keep it readable after the "pool" is gone
  pool.destroy();
  const auto stats = core->statistics();
  EXPECT_EQ(stats.reserved_bytes, 0u);
  EXPECT_EQ(stats.current_bytes, 0u);
  EXPECT_EQ(pool.ledger->outstanding, 0);
}

// ---------------------------------------------------------------- stress

class PinnedCoreStress : public testing::TestWithParam<bool> {};

TEST_P(PinnedCoreStress, ManyThreadsNeverShareABufferAndLeakNothing) {
  fixture_pool pool({.maximum_bytes = 0, .checks = GetParam()});
  auto ledger = pool.ledger;
  constexpr int threads = 6;
  constexpr int iterations = 4000;
  std::atomic<bool> done{false};
  std::thread releaser([&] {
    while (!done.load()) {
      pool.core->release();
      std::this_thread::yield();
    }
  });
  struct held {
    std::uint64_t* pointer;
    std::size_t bytes;
    std::uint64_t stamp;
  };
  // Buffers one thread hands to another, which frees them: cross-thread frees under load.
  std::mutex handoff_guard;
  std::vector<held> handoff;
  std::atomic<int> corrupted{0};
  const auto check_and_free = [&](const held& victim) {
    if (victim.pointer[0] != victim.stamp || victim.pointer[(victim.bytes - 8) / 8] != victim.stamp) ++corrupted;
    pool.core->deallocate(victim.pointer, victim.bytes);
  };
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      std::mt19937 random(static_cast<unsigned>(t) + 1);
      std::vector<held> live;
      for (int i = 0; i < iterations; ++i) {
        if (live.size() < 8 && (live.empty() || random() % 2 == 0)) {
          const std::size_t bytes = std::size_t{1} << (4 + random() % 15);  // 16 B .. 256 KiB
          auto* pointer = static_cast<std::uint64_t*>(pool.core->allocate(bytes));
          const std::uint64_t stamp = (static_cast<std::uint64_t>(t) << 32) | static_cast<std::uint64_t>(i);
          pointer[0] = stamp;
          pointer[(bytes - 8) / 8] = stamp;
          live.push_back({pointer, bytes, stamp});
          continue;
        }
        const std::size_t index = random() % live.size();
        const held victim = live[index];
        live[index] = live.back();
        live.pop_back();
        const auto choice = random() % 8;
        if (choice == 0) {
          const std::lock_guard lock(handoff_guard);
          handoff.push_back(victim);
          continue;
        }
        check_and_free(victim);
        if (choice == 1) {
          std::vector<held> taken;
          {
            const std::lock_guard lock(handoff_guard);
            taken.swap(handoff);
          }
          for (const auto& other : taken) check_and_free(other);
        }
      }
      for (const auto& victim : live) check_and_free(victim);
    });
  for (auto& worker : workers) worker.join();
  done = true;
  releaser.join();
  for (const auto& victim : handoff) check_and_free(victim);

  EXPECT_EQ(corrupted, 0) << "two threads held the same buffer";
  const auto stats = pool.core->statistics();
  EXPECT_EQ(stats.current_bytes, 0u);
  EXPECT_EQ(stats.current_count, 0u);
  EXPECT_EQ(stats.allocations, stats.deallocations);
  EXPECT_EQ(stats.hits + stats.misses, stats.allocations);
  EXPECT_EQ(stats.misses, stats.upstream_allocations);
  // The workers have exited: their caches are back in the shared lists.
  std::int64_t cached_bytes = ledger->outstanding_bytes;
  EXPECT_EQ(stats.reserved_bytes, static_cast<std::uint64_t>(cached_bytes));
  pool.destroy();
  EXPECT_EQ(ledger->outstanding, 0);
  EXPECT_EQ(ledger->bad_unpins, 0);
}

INSTANTIATE_TEST_SUITE_P(ChecksOnAndOff, PinnedCoreStress, testing::Bool(),
                         [](const testing::TestParamInfo<bool>& param) { return param.param ? "checks" : "no_checks"; });

}  // namespace
