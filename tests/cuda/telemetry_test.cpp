// NVML telemetry opens or says why not, and never throws: on a machine with
// no driver it is simply off.
#include <gtest/gtest.h>

#include "tunekit/cuda/device.hpp"
#include "tunekit/cuda/telemetry.hpp"

namespace tc = tunekit::cuda;

TEST(NvmlTelemetry, IsOffWithAReasonWhereThereIsNoDevice) {
  if (tc::device_count() > 0) GTEST_SKIP() << "a device is present: see cuda_timer_gpu_test";
  const auto nvml = tc::open_nvml_telemetry(0);
  EXPECT_EQ(nvml.source, nullptr);
  EXPECT_FALSE(nvml.unavailable_reason.empty());
}

TEST(NvmlTelemetry, AnUnknownDeviceIsOffNotAnError) {
  const auto nvml = tc::open_nvml_telemetry(4096);
  EXPECT_EQ(nvml.source, nullptr);
  EXPECT_FALSE(nvml.unavailable_reason.empty());
}
