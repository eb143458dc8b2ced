// Live-device checks; labelled gpu, skipped where there is no device.
#include <gtest/gtest.h>

#include "tunekit/cuda/architecture.hpp"
#include "tunekit/cuda/device.hpp"

namespace tc = tunekit::cuda;

TEST(LiveDeviceGpu, ReportsEveryFieldAndAgreesWithTheTableOnArchitecturalLimits) {
  if (tc::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const auto device = tc::live_device(0);
  EXPECT_EQ(device.origin, tc::properties_origin::live_device);
  EXPECT_EQ(device.device_ordinal, 0);
  EXPECT_FALSE(device.name.empty());
  EXPECT_GT(device.multiprocessor_count, 0);
  EXPECT_GT(device.sm_clock_khz, 0);
  EXPECT_GT(device.memory_clock_khz, 0);
  EXPECT_GT(device.memory_bus_width_bits, 0);
  EXPECT_GT(device.global_memory_bytes, 0u);
  EXPECT_GT(device.l2_cache_bytes, 0u);
  EXPECT_GT(device.copy_engines, 0);
  const auto* entry = tc::find_architecture(device.capability);
  if (entry == nullptr) GTEST_SKIP() << device.capability.architecture_name() << " is not in the table";
  // Per-SM limits are the architecture's; the table must not contradict the chip.
  EXPECT_EQ(device.max_threads_per_multiprocessor, entry->max_threads_per_multiprocessor);
  EXPECT_EQ(device.shared_memory_per_multiprocessor, entry->shared_memory_per_multiprocessor);
  EXPECT_EQ(device.shared_memory_per_block_optin, entry->shared_memory_per_block_optin);
  EXPECT_EQ(device.reserved_shared_memory_per_block, entry->reserved_shared_memory_per_block);
  EXPECT_EQ(device.registers_per_multiprocessor, entry->registers_per_multiprocessor);
  EXPECT_EQ(device.max_blocks_per_multiprocessor, entry->max_blocks_per_multiprocessor);
}
