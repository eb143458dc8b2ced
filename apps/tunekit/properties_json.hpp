#pragma once
// JSON and text forms of device properties, shared by the commands.

#include <nlohmann/json.hpp>

#include <iosfwd>

#include "tunekit/cuda/device_properties.hpp"

namespace tunekit::app {

/// Every field of the properties, sizes in bytes, clocks in MHz, bandwidth in GB/s.
nlohmann::ordered_json to_json(const cuda::device_properties& device);

/// "live device 0" or "architecture table, representative product".
const char* origin_text(const cuda::device_properties& device);

/// The human report of one device, a header line then indented fields.
void print_device_report(std::ostream& out, const cuda::device_properties& device);

}  // namespace tunekit::app
