#include "tunekit/cuda/architecture.hpp"

#include <gtest/gtest.h>

#include <cuda_occupancy.h>

#include "occupancy_oracle.hpp"
#include "tunekit/error.hpp"

namespace tc = tunekit::cuda;

TEST(ParseArchitecture, AcceptsTheUsualSpellings) {
  EXPECT_EQ(tc::parse_architecture("sm_90"), (tc::compute_capability{9, 0}));
  EXPECT_EQ(tc::parse_architecture("sm_90a"), (tc::compute_capability{9, 0}));
  EXPECT_EQ(tc::parse_architecture("compute_86"), (tc::compute_capability{8, 6}));
  EXPECT_EQ(tc::parse_architecture("120"), (tc::compute_capability{12, 0}));
  EXPECT_EQ(tc::parse_architecture("sm_100f"), (tc::compute_capability{10, 0}));
  EXPECT_EQ(tc::parse_architecture("7.5"), (tc::compute_capability{7, 5}));
}

TEST(ParseArchitecture, RejectsMalformedNames) {
  for (const char* bad : {"", "sm_", "sm_9", "sm_x0", "sm_-90", "sm_9000", "9.", ".5", "9.10", "a", "sm_90b", "0.5",
                          "sm_09", " sm_90"})
    EXPECT_FALSE(tc::parse_architecture(bad).has_value()) << bad;
}

TEST(Architecture, UnknownNamesThrowInvalidArgumentNamingTheKnownOnes) {
  try {
    (void)tc::architecture("sm_61");
    FAIL() << "sm_61 is not in the table";
  } catch (const tunekit::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("sm_90"), std::string::npos);
  }
  EXPECT_THROW((void)tc::architecture("garbage"), tunekit::invalid_argument);
}

TEST(ArchitectureTable, HoldsEveryListedArchitectureOnce) {
  const auto table = tc::architecture_table();
  ASSERT_EQ(table.size(), oracle::architectures.size());
  for (std::size_t i = 0; i < table.size(); ++i) {
    EXPECT_EQ(table[i].capability.architecture_name(), oracle::architectures[i].name);
    EXPECT_EQ(&tc::architecture(oracle::architectures[i].name), &table[i]);
    EXPECT_EQ(table[i].origin, tc::properties_origin::architecture_table);
  }
}

TEST(ArchitectureTable, OccupancyLimitsMatchTheProgrammingGuide) {
  for (const auto& expected : oracle::architectures) {
    SCOPED_TRACE(expected.name);
    const auto& entry = tc::architecture(expected.name);
    EXPECT_EQ(entry.max_threads_per_multiprocessor, expected.threads_per_sm);
    EXPECT_EQ(entry.shared_memory_per_multiprocessor, expected.smem_per_sm);
    EXPECT_EQ(entry.shared_memory_per_block_optin, expected.smem_optin);
    EXPECT_EQ(entry.reserved_shared_memory_per_block, expected.smem_reserved);
    EXPECT_EQ(entry.shared_memory_per_block, 49152u);
    EXPECT_EQ(entry.registers_per_multiprocessor, 65536);
    EXPECT_EQ(entry.registers_per_block, 65536);
    EXPECT_EQ(entry.max_threads_per_block, 1024);
    EXPECT_EQ(entry.warp_size, 32);
    // The table's block limit must agree with the engine's own.
    const cudaOccDeviceProp device = oracle::device_for(expected);
    int engine_blocks = 0;
    ASSERT_EQ(cudaOccMaxBlocksPerMultiprocessor(&engine_blocks, &device), CUDA_OCC_SUCCESS);
    EXPECT_EQ(entry.max_blocks_per_multiprocessor, engine_blocks);
    EXPECT_EQ(entry.max_blocks_per_multiprocessor, expected.blocks_per_sm);
    // Roofline figures must be filled in, not left at zero.
    EXPECT_GT(entry.multiprocessor_count, 0);
    EXPECT_GT(entry.sm_clock_khz, 0);
    EXPECT_GT(entry.l2_cache_bytes, 0u);
    EXPECT_GT(entry.global_memory_bytes, 0u);
    EXPECT_GT(entry.copy_engines, 0);
  }
}

TEST(DeviceProperties, TheoreticalBandwidthIsTwiceClockTimesBusWidth) {
  const auto& hopper = tc::architecture("sm_90");
  // H100 SXM: 2 × 2619 MHz × 5120 bit / 8 = 3352.3 GB/s.
  EXPECT_NEAR(hopper.memory_bandwidth_bytes_per_second() / 1e9, 3352.32, 0.01);
  EXPECT_EQ(hopper.max_warps_per_multiprocessor(), 64);
}
