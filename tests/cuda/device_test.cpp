#include "tunekit/cuda/device.hpp"

#include <gtest/gtest.h>

#include "tunekit/error.hpp"

namespace tc = tunekit::cuda;

// Runs everywhere: with no device the answer is an empty list and a reason.
TEST(QueryDevices, AnswersWithoutThrowingWhateverTheMachine) {
  const auto inventory = tc::query_devices();
  EXPECT_EQ(static_cast<int>(inventory.devices.size()), tc::device_count());
  if (inventory.devices.empty()) {
    EXPECT_NE(inventory.unavailable_reason.find("no CUDA device"), std::string::npos);
  } else {
    EXPECT_TRUE(inventory.unavailable_reason.empty());
  }
}

TEST(LiveDevice, OutOfRangeOrdinalIsInvalidArgument) {
  EXPECT_THROW((void)tc::live_device(-1), tunekit::invalid_argument);
  EXPECT_THROW((void)tc::live_device(tc::device_count()), tunekit::invalid_argument);
}
