#pragma once
// What tunekit knows about a GPU: the limits occupancy needs, plus the figures
// a roofline needs (clocks, memory bus, caches). Plain C++: no CUDA include.

#include <compare>
#include <cstdint>
#include <string>

namespace tunekit::cuda {

/// A compute capability such as 9.0; prints as "sm_90".
struct compute_capability {
  int major = 0;
  int minor = 0;

  [[nodiscard]] std::string architecture_name() const;  ///< e.g. "sm_90"
  auto operator<=>(const compute_capability&) const = default;
};

/// Where a set of properties came from. A live device's own answers take
/// precedence over the offline architecture table.
enum class properties_origin { live_device, architecture_table };

/// Limits and figures of one GPU (live) or one architecture (offline table).
struct device_properties {
  std::string name;
  compute_capability capability;
  properties_origin origin = properties_origin::architecture_table;
  int device_ordinal = -1;  ///< CUDA ordinal of a live device, -1 for the table

  int multiprocessor_count = 0;
  int sm_clock_khz = 0;      ///< peak SM clock
  int memory_clock_khz = 0;  ///< peak memory clock
  int memory_bus_width_bits = 0;
  std::uint64_t global_memory_bytes = 0;
  std::uint64_t l2_cache_bytes = 0;

  std::uint64_t shared_memory_per_multiprocessor = 0;
  std::uint64_t shared_memory_per_block = 0;           ///< default per-block limit
  std::uint64_t shared_memory_per_block_optin = 0;     ///< limit after opting in
  std::uint64_t reserved_shared_memory_per_block = 0;  ///< taken by the driver per block

  int registers_per_multiprocessor = 0;
  int registers_per_block = 0;
  int warp_size = 32;
  int max_threads_per_block = 0;
  int max_threads_per_multiprocessor = 0;
  int max_blocks_per_multiprocessor = 0;
  int copy_engines = 0;  ///< asynchronous copy engines

  /// Theoretical DRAM bandwidth: 2 (double data rate) × memory clock × bus width / 8.
  [[nodiscard]] double memory_bandwidth_bytes_per_second() const {
    return 2.0 * memory_clock_khz * 1000.0 * memory_bus_width_bits / 8.0;
  }

  /// Warps an SM can hold: max threads per SM / warp size.
  [[nodiscard]] int max_warps_per_multiprocessor() const {
    return warp_size > 0 ? max_threads_per_multiprocessor / warp_size : 0;
  }

  bool operator==(const device_properties&) const = default;
};

}  // namespace tunekit::cuda
