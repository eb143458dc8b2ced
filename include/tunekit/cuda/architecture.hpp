#pragma once
// The offline architecture table: limits of sm_70 … sm_120, usable with no GPU
// and no driver. Figures that vary by product (SM count, clocks, memory) are
// those of one representative product, named in each entry.

#include <optional>
#include <span>
#include <string_view>

#include "tunekit/cuda/device_properties.hpp"

namespace tunekit::cuda {

/// Every architecture in the table, oldest first.
[[nodiscard]] std::span<const device_properties> architecture_table();

/// Parses "sm_90", "sm_90a", "compute_90", "90" or "9.0"; nullopt when malformed.
[[nodiscard]] std::optional<compute_capability> parse_architecture(std::string_view text);

/// The table entry of an architecture named as parse_architecture accepts.
/// Throws tunekit::invalid_argument for malformed or unknown names.
///
///   const auto& hopper = tunekit::cuda::architecture("sm_90");
[[nodiscard]] const device_properties& architecture(std::string_view name);

/// The table entry of a compute capability, or nullptr when it has none.
[[nodiscard]] const device_properties* find_architecture(compute_capability capability);

}  // namespace tunekit::cuda
