#include "tunekit/cuda/occupancy.hpp"

#include <gtest/gtest.h>

#include <random>

#include "occupancy_oracle.hpp"
#include "tunekit/cuda/architecture.hpp"
#include "tunekit/error.hpp"

namespace tc = tunekit::cuda;

namespace {

// The limiter tunekit names must be one of the engine's limiting factors.
unsigned bit_of(tc::occupancy_limiter limiter) {
  switch (limiter) {
    case tc::occupancy_limiter::warps: return OCC_LIMIT_WARPS;
    case tc::occupancy_limiter::registers: return OCC_LIMIT_REGISTERS;
    case tc::occupancy_limiter::shared_memory: return OCC_LIMIT_SHARED_MEMORY;
    case tc::occupancy_limiter::blocks: return OCC_LIMIT_BLOCKS;
    case tc::occupancy_limiter::barriers: return OCC_LIMIT_BARRIERS;
  }
  return 0;
}

}  // namespace

TEST(Occupancy, KnownHopperAnswers) {
  const auto& hopper = tc::architecture("sm_90");
  // 64 registers × 256 threads: 16384 registers per block, 4 fit in 65536.
  auto result = tc::compute_occupancy(hopper, {64, 0, 1}, {256, 0});
  EXPECT_EQ(result.active_blocks_per_multiprocessor, 4);
  EXPECT_EQ(result.active_warps_per_multiprocessor, 32);
  EXPECT_DOUBLE_EQ(result.occupancy, 0.5);
  EXPECT_EQ(result.limiter, tc::occupancy_limiter::registers);

  // 32 threads, few registers: the 32-blocks-per-SM limit binds.
  result = tc::compute_occupancy(hopper, {16, 0, 1}, {32, 0});
  EXPECT_EQ(result.active_blocks_per_multiprocessor, 32);
  EXPECT_EQ(result.limiter, tc::occupancy_limiter::blocks);

  // 100 KB of dynamic shared memory (+1 KiB reserved): two blocks in 228 KiB.
  result = tc::compute_occupancy(hopper, {32, 0, 1}, {128, 100 * 1024});
  EXPECT_EQ(result.active_blocks_per_multiprocessor, 2);
  EXPECT_EQ(result.limiter, tc::occupancy_limiter::shared_memory);
  EXPECT_EQ(result.allocated_shared_bytes_per_block, 101u * 1024u);

  // Full occupancy: warps bind.
  result = tc::compute_occupancy(hopper, {32, 0, 1}, {1024, 0});
  EXPECT_EQ(result.active_blocks_per_multiprocessor, 2);
  EXPECT_DOUBLE_EQ(result.occupancy, 1.0);
  EXPECT_EQ(result.limiter, tc::occupancy_limiter::warps);
}

TEST(Occupancy, ImpossibleLaunchesAnswerZeroWithTheForbiddingLimiter) {
  const auto& hopper = tc::architecture("sm_90");
  auto result = tc::compute_occupancy(hopper, {128, 0, 1}, {1024, 0});  // 131072 registers per block
  EXPECT_EQ(result.active_blocks_per_multiprocessor, 0);
  EXPECT_EQ(result.limiter, tc::occupancy_limiter::registers);
  EXPECT_DOUBLE_EQ(result.occupancy, 0.0);

  result = tc::compute_occupancy(hopper, {32, 0, 1}, {256, 300 * 1024});  // beyond the opt-in limit
  EXPECT_EQ(result.active_blocks_per_multiprocessor, 0);
  EXPECT_EQ(result.limiter, tc::occupancy_limiter::shared_memory);

  result = tc::compute_occupancy(hopper, {300, 0, 1}, {32, 0});  // beyond 255 registers per thread
  EXPECT_EQ(result.active_blocks_per_multiprocessor, 0);
  EXPECT_EQ(result.limiter, tc::occupancy_limiter::registers);
}

TEST(Occupancy, BarriersCanBind) {
  // Hopper has two barrier slots per block slot; a kernel using 16 named
  // barriers fits 4 blocks of 32 threads by barriers alone.
  const auto result = tc::compute_occupancy(tc::architecture("sm_90"), {16, 0, 16}, {32, 0});
  EXPECT_EQ(result.active_blocks_per_multiprocessor, 4);
  EXPECT_EQ(result.limiter, tc::occupancy_limiter::barriers);
}

TEST(Occupancy, RejectsNonsense) {
  const auto& hopper = tc::architecture("sm_90");
  EXPECT_THROW((void)tc::compute_occupancy(hopper, {32, 0, 1}, {0, 0}), tunekit::invalid_argument);
  EXPECT_THROW((void)tc::compute_occupancy(hopper, {32, 0, 1}, {1025, 0}), tunekit::invalid_argument);
  EXPECT_THROW((void)tc::compute_occupancy(hopper, {-1, 0, 1}, {32, 0}), tunekit::invalid_argument);
  EXPECT_THROW((void)tc::compute_occupancy(hopper, {32, 0, 1}, {32, std::uint64_t{1} << 31}),
               tunekit::invalid_argument);
  auto unknown = hopper;
  unknown.capability = {4, 0};
  EXPECT_THROW((void)tc::compute_occupancy(unknown, {32, 0, 1}, {32, 0}), tunekit::invalid_argument);
}

// The engine contract: for random launches on every listed architecture,
// tunekit's answer is the toolkit's, and the limiter is one CUDA names.
TEST(Occupancy, EqualsCudaOccupancyHeaderOnEveryArchitecture) {
  std::mt19937_64 random(20261121);
  std::uniform_int_distribution<int> threads(1, 1024);
  std::uniform_int_distribution<int> registers(0, 260);
  std::uniform_int_distribution<int> smem_kind(0, 3);
  int checked = 0;
  for (const auto& arch : oracle::architectures) {
    const auto& device = tc::architecture(arch.name);
    for (int i = 0; i < 5000; ++i) {
      const int t = threads(random);
      const int r = registers(random);
      const auto static_smem = static_cast<std::size_t>(smem_kind(random) == 0 ? random() % 49153 : 0);
      const auto dynamic_smem = static_cast<std::size_t>(smem_kind(random) == 0 ? 0 : random() % (arch.smem_optin + 4096));
      const auto expected = oracle::occupancy(arch, t, r, static_smem, dynamic_smem);
      const auto actual = tc::compute_occupancy(device, {r, static_smem, 1}, {t, dynamic_smem});
      ASSERT_EQ(actual.active_blocks_per_multiprocessor, expected.blocks)
          << arch.name << " threads " << t << " regs " << r << " static " << static_smem << " dynamic " << dynamic_smem;
      ASSERT_NE(expected.limiting_factors & bit_of(actual.limiter), 0u) << arch.name;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 40000);
}

TEST(RecommendBlockSize, PrefersTheSmallestBlockAtTheBestOccupancy) {
  const auto& hopper = tc::architecture("sm_90");
  const auto recommendation = tc::recommend_block_size(hopper, {32, 0, 1}, 0);
  ASSERT_EQ(recommendation.rows.size(), 32u);
  // 32 registers: full occupancy from 64 threads up (32 blocks × 2 warps).
  EXPECT_EQ(recommendation.recommended_threads_per_block, 64);
  EXPECT_FALSE(recommendation.rows[0].best);  // 32 threads: 32 blocks × 1 warp = 50%
  EXPECT_TRUE(recommendation.rows[1].best);
  EXPECT_NE(recommendation.reason.find("64 threads"), std::string::npos);
}

TEST(RecommendBlockSize, SaysSoWhenNothingRuns) {
  const auto& hopper = tc::architecture("sm_90");
  const auto recommendation = tc::recommend_block_size(hopper, {32, 0, 1}, 400 * 1024);
  EXPECT_EQ(recommendation.recommended_threads_per_block, 0);
  for (const auto& row : recommendation.rows) EXPECT_FALSE(row.best);
  EXPECT_FALSE(recommendation.reason.empty());
}
