#pragma once
// Telemetry from NVML, loaded with dlopen: binaries start and run on machines
// without the NVIDIA driver, where telemetry is simply off. Plain C++.
//
//   auto nvml = tunekit::cuda::open_nvml_telemetry(0);
//   if (!nvml.source) std::cerr << "telemetry off: " << nvml.unavailable_reason << '\n';
//   auto timing = tunekit::measure::measure(timer, criterion, nvml.source.get());

#include <memory>
#include <string>

#include "tunekit/measure/engine.hpp"

namespace tunekit::cuda {

/// A telemetry source, or none with the reason why.
struct nvml_telemetry {
  std::unique_ptr<measure::telemetry_source> source;
  std::string unavailable_reason;  ///< set when source is null
};

/// NVML telemetry of CUDA device `ordinal` (matched by PCI bus id, so
/// CUDA_VISIBLE_DEVICES and NVML's own order cannot disagree). Never
/// throws: no library, no driver or no such device gives a null source.
[[nodiscard]] nvml_telemetry open_nvml_telemetry(int ordinal);

/// The driver's version as NVML reports it ("580.65.06"); empty without NVML.
[[nodiscard]] std::string nvml_driver_version();

}  // namespace tunekit::cuda
