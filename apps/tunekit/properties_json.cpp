#include "properties_json.hpp"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <ostream>

namespace tunekit::app {

namespace {

std::string bytes_text(std::uint64_t bytes) {
  constexpr double KiB = 1024.0;
  if (bytes >= (std::uint64_t{1} << 30)) return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (KiB * KiB * KiB));
  if (bytes >= (std::uint64_t{1} << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (KiB * KiB));
  if (bytes >= 1024 && bytes % 1024 == 0) return fmt::format("{} KiB", bytes / 1024);
  return fmt::format("{} B", bytes);
}

}  // namespace

const char* origin_text(const cuda::device_properties& device) {
  return device.origin == cuda::properties_origin::live_device ? "live device"
                                                               : "architecture table, representative product";
}

nlohmann::ordered_json to_json(const cuda::device_properties& device) {
  nlohmann::ordered_json json;
  json["name"] = device.name;
  json["origin"] = device.origin == cuda::properties_origin::live_device ? "live_device" : "architecture_table";
  json["ordinal"] = device.device_ordinal;
  json["arch"] = device.capability.architecture_name();
  json["compute_capability"] = fmt::format("{}.{}", device.capability.major, device.capability.minor);
  json["multiprocessor_count"] = device.multiprocessor_count;
  json["sm_clock_mhz"] = device.sm_clock_khz / 1000.0;
  json["memory_clock_mhz"] = device.memory_clock_khz / 1000.0;
  json["memory_bytes"] = device.global_memory_bytes;
  json["memory_bus_width_bits"] = device.memory_bus_width_bits;
  json["memory_bandwidth_gbps"] = device.memory_bandwidth_bytes_per_second() / 1e9;
  json["l2_cache_bytes"] = device.l2_cache_bytes;
  json["shared_memory_per_multiprocessor_bytes"] = device.shared_memory_per_multiprocessor;
  json["shared_memory_per_block_bytes"] = device.shared_memory_per_block;
  json["shared_memory_per_block_optin_bytes"] = device.shared_memory_per_block_optin;
  json["reserved_shared_memory_per_block_bytes"] = device.reserved_shared_memory_per_block;
  json["registers_per_multiprocessor"] = device.registers_per_multiprocessor;
  json["registers_per_block"] = device.registers_per_block;
  json["warp_size"] = device.warp_size;
  json["max_threads_per_block"] = device.max_threads_per_block;
  json["max_threads_per_multiprocessor"] = device.max_threads_per_multiprocessor;
  json["max_warps_per_multiprocessor"] = device.max_warps_per_multiprocessor();
  json["max_blocks_per_multiprocessor"] = device.max_blocks_per_multiprocessor;
  json["copy_engines"] = device.copy_engines;
  return json;
}

void print_device_report(std::ostream& out, const cuda::device_properties& device) {
  if (device.origin == cuda::properties_origin::live_device)
    fmt::print(out, "device {}: {} ({}, live device)\n", device.device_ordinal, device.name,
               device.capability.architecture_name());
  else
    fmt::print(out, "{}: {} (architecture table, representative product)\n",
               device.capability.architecture_name(), device.name);
  fmt::print(out, "  compute capability   {}.{}\n", device.capability.major, device.capability.minor);
  fmt::print(out, "  multiprocessors      {}\n", device.multiprocessor_count);
  fmt::print(out, "  SM clock (peak)      {} MHz\n", device.sm_clock_khz / 1000);
  fmt::print(out, "  memory               {}, {}-bit bus at {} MHz\n", bytes_text(device.global_memory_bytes),
             device.memory_bus_width_bits, device.memory_clock_khz / 1000);
  fmt::print(out, "  memory bandwidth     {:.1f} GB/s theoretical (2 x clock x bus width / 8)\n",
             device.memory_bandwidth_bytes_per_second() / 1e9);
  fmt::print(out, "  L2 cache             {}\n", bytes_text(device.l2_cache_bytes));
  fmt::print(out, "  shared memory        {} per SM, {} per block, {} opt-in, {} reserved per block\n",
             bytes_text(device.shared_memory_per_multiprocessor), bytes_text(device.shared_memory_per_block),
             bytes_text(device.shared_memory_per_block_optin),
             bytes_text(device.reserved_shared_memory_per_block));
  fmt::print(out, "  registers            {} per SM, {} per block\n", device.registers_per_multiprocessor,
             device.registers_per_block);
  fmt::print(out, "  threads              {} per block, {} per SM ({} warps of {})\n",
             device.max_threads_per_block, device.max_threads_per_multiprocessor,
             device.max_warps_per_multiprocessor(), device.warp_size);
  fmt::print(out, "  blocks per SM        {}\n", device.max_blocks_per_multiprocessor);
  fmt::print(out, "  copy engines         {}\n", device.copy_engines);
}

}  // namespace tunekit::app
