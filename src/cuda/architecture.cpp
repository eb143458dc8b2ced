#include "tunekit/cuda/architecture.hpp"

#include <array>
#include <charconv>
#include <string>

#include "tunekit/error.hpp"

namespace tunekit::cuda {

std::string compute_capability::architecture_name() const {
  return "sm_" + std::to_string(major) + std::to_string(minor);
}

namespace {

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;
constexpr std::uint64_t GiB = 1024 * MiB;

// One row per architecture. The per-SM and per-block limits are the
// architecture's (CUDA C++ Programming Guide, "Technical Specifications per
// Compute Capability"); SM count, clocks, memory and L2 are those of the named
// representative product as cudaGetDeviceProperties reports it.
struct table_row {
  const char* product;
  int major, minor;
  int multiprocessors, sm_clock_mhz, memory_clock_mhz, bus_width_bits;
  std::uint64_t memory, l2;
  std::uint64_t smem_per_sm, smem_optin, smem_reserved;
  int threads_per_sm, blocks_per_sm, copy_engines;
};

constexpr std::array<table_row, 8> rows{{
    {"Tesla V100-SXM2-32GB", 7, 0, 80, 1530, 877, 4096, 32 * GiB, 6 * MiB, 96 * KiB, 96 * KiB, 0, 2048, 32, 6},
    {"Tesla T4", 7, 5, 40, 1590, 5001, 256, 16 * GiB, 4 * MiB, 64 * KiB, 64 * KiB, 0, 1024, 16, 3},
    {"NVIDIA A100-SXM4-40GB", 8, 0, 108, 1410, 1215, 5120, 40 * GiB, 40 * MiB, 164 * KiB, 163 * KiB, 1 * KiB, 2048, 32, 3},
    {"NVIDIA GeForce RTX 3090", 8, 6, 82, 1695, 9751, 384, 24 * GiB, 6 * MiB, 100 * KiB, 99 * KiB, 1 * KiB, 1536, 16, 2},
    {"NVIDIA GeForce RTX 4090", 8, 9, 128, 2520, 10501, 384, 24 * GiB, 72 * MiB, 100 * KiB, 99 * KiB, 1 * KiB, 1536, 24, 2},
    {"NVIDIA H100 80GB HBM3", 9, 0, 132, 1980, 2619, 5120, 80 * GiB, 50 * MiB, 228 * KiB, 227 * KiB, 1 * KiB, 2048, 32, 3},
    {"NVIDIA B200", 10, 0, 148, 1965, 3906, 8192, 180 * GiB, 126 * MiB, 228 * KiB, 227 * KiB, 1 * KiB, 2048, 32, 4},
    {"NVIDIA GeForce RTX 5090", 12, 0, 170, 2407, 14001, 512, 32 * GiB, 96 * MiB, 100 * KiB, 99 * KiB, 1 * KiB, 1536, 24, 2},
}};

device_properties from_row(const table_row& row) {
  device_properties properties;
  properties.name = row.product;
  properties.capability = {row.major, row.minor};
  properties.origin = properties_origin::architecture_table;
  properties.multiprocessor_count = row.multiprocessors;
  properties.sm_clock_khz = row.sm_clock_mhz * 1000;
  properties.memory_clock_khz = row.memory_clock_mhz * 1000;
  properties.memory_bus_width_bits = row.bus_width_bits;
  properties.global_memory_bytes = row.memory;
  properties.l2_cache_bytes = row.l2;
  properties.shared_memory_per_multiprocessor = row.smem_per_sm;
  properties.shared_memory_per_block = 48 * KiB;
  properties.shared_memory_per_block_optin = row.smem_optin;
  properties.reserved_shared_memory_per_block = row.smem_reserved;
  properties.registers_per_multiprocessor = 64 * 1024;
  properties.registers_per_block = 64 * 1024;
  properties.warp_size = 32;
  properties.max_threads_per_block = 1024;
  properties.max_threads_per_multiprocessor = row.threads_per_sm;
  properties.max_blocks_per_multiprocessor = row.blocks_per_sm;
  properties.copy_engines = row.copy_engines;
  return properties;
}

const std::array<device_properties, rows.size()>& table() {
  static const auto built = [] {
    std::array<device_properties, rows.size()> result;
    for (std::size_t i = 0; i < rows.size(); ++i) result[i] = from_row(rows[i]);
    return result;
  }();
  return built;
}

bool parse_int(std::string_view text, int& value) {
  if (text.empty()) return false;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc{} && end == text.data() + text.size();
}

}  // namespace

std::span<const device_properties> architecture_table() { return table(); }

std::optional<compute_capability> parse_architecture(std::string_view text) {
  for (std::string_view prefix : {"sm_", "compute_"}) {
    if (text.starts_with(prefix)) {
      text.remove_prefix(prefix.size());
      break;
    }
  }
  // Feature suffixes (sm_90a, sm_100f) name the same occupancy limits.
  if (!text.empty() && (text.back() == 'a' || text.back() == 'f')) text.remove_suffix(1);
  if (const auto dot = text.find('.'); dot != std::string_view::npos) {
    int major = 0;
    int minor = 0;
    if (!parse_int(text.substr(0, dot), major) || !parse_int(text.substr(dot + 1), minor))
      return std::nullopt;
    if (major <= 0 || minor < 0 || minor > 9) return std::nullopt;
    return compute_capability{major, minor};
  }
  int number = 0;
  if (text.size() < 2 || text.size() > 3 || !parse_int(text, number) || number < 10)
    return std::nullopt;
  return compute_capability{number / 10, number % 10};
}

const device_properties* find_architecture(compute_capability capability) {
  for (const auto& entry : table())
    if (entry.capability == capability) return &entry;
  return nullptr;
}

const device_properties& architecture(std::string_view name) {
  const auto capability = parse_architecture(name);
  const device_properties* entry = capability ? find_architecture(*capability) : nullptr;
  if (entry == nullptr) {
    std::string known;
    for (const auto& row : table()) known += (known.empty() ? "" : ", ") + row.capability.architecture_name();
    throw invalid_argument("unknown architecture '" + std::string(name) + "' (known: " + known + ")");
  }
  return *entry;
}

}  // namespace tunekit::cuda
