#pragma once
// Live devices. Works on machines with no driver and no GPU: the answer is
// then an empty list with the reason, never an exception or a crash.

#include <string>
#include <vector>

#include "tunekit/cuda/device_properties.hpp"

namespace tunekit::cuda {

/// The CUDA devices of this machine, or none with the reason why.
struct device_inventory {
  std::vector<device_properties> devices;
  std::string unavailable_reason;  ///< set when devices is empty
};

/// Queries every visible CUDA device (cudaGetDeviceProperties + attributes).
[[nodiscard]] device_inventory query_devices();

/// Number of visible devices; 0 when there is no driver or no device.
[[nodiscard]] int device_count() noexcept;

/// Live properties of device `ordinal`. Throws tunekit::invalid_argument when
/// there is no such device.
[[nodiscard]] device_properties live_device(int ordinal);

}  // namespace tunekit::cuda
