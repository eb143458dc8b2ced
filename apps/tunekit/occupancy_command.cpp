// tunekit occupancy (--arch sm_XY | --device N) --threads T --regs R
//                   [--smem BYTES] [--smem-static BYTES] [--barriers N] [--json]
#include <fmt/format.h>
#include <fmt/ostream.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>

#include "commands.hpp"
#include "properties_json.hpp"
#include "tunekit/cuda/architecture.hpp"
#include "tunekit/cuda/device.hpp"
#include "tunekit/cuda/occupancy.hpp"
#include "tunekit/error.hpp"

namespace tunekit::app {

namespace {

struct occupancy_options {
  std::string arch;
  std::optional<std::int64_t> device;
  std::optional<std::int64_t> threads;
  std::int64_t registers = 0;
  std::int64_t dynamic_shared = 0;
  std::int64_t static_shared = 0;
  std::int64_t barriers = 1;
  bool json = false;
};

// Sizes are parsed signed so a negative number gets our message, not a wrap.
[[maybe_unused]] std::int64_t checked(std::int64_t value, std::int64_t low, std::int64_t high, const char* what) {
  if (value < low || value > high)
    throw tunekit::invalid_argument(fmt::format("{} must be {}..{}, got {}", what, low, high, value));
  return value;
}

#ifdef TUNEKIT_HAS_CUDA
nlohmann::ordered_json limit_json(int bound) {
  return bound == cuda::occupancy_bounds::unlimited ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(bound);
}

nlohmann::ordered_json result_json(const cuda::occupancy_result& result) {
  nlohmann::ordered_json json;
  json["active_blocks_per_sm"] = result.active_blocks_per_multiprocessor;
  json["active_warps_per_sm"] = result.active_warps_per_multiprocessor;
  json["max_warps_per_sm"] = result.max_warps_per_multiprocessor;
  json["occupancy"] = result.occupancy;
  json["limiter"] = cuda::to_string(result.limiter);
  auto limiters = nlohmann::ordered_json::array();
  for (auto limiter : result.limiters) limiters.push_back(cuda::to_string(limiter));
  json["limiters"] = limiters;
  json["block_limits"] = {{"warps", limit_json(result.bounds.warps)},
                          {"registers", limit_json(result.bounds.registers)},
                          {"shared_memory", limit_json(result.bounds.shared_memory)},
                          {"blocks", limit_json(result.bounds.blocks)},
                          {"barriers", limit_json(result.bounds.barriers)}};
  json["allocated_registers_per_block"] = result.allocated_registers_per_block;
  json["allocated_shared_bytes_per_block"] = result.allocated_shared_bytes_per_block;
  return json;
}

cuda::device_properties choose_device(const occupancy_options& options, std::ostream& note) {
  if (!options.arch.empty()) return cuda::architecture(options.arch);
  if (options.device)
    return cuda::live_device(static_cast<int>(checked(*options.device, 0, 1023, "--device")));
  // Neither named: the first GPU here, else Hopper from the table.
  if (cuda::device_count() > 0) return cuda::live_device(0);
  note << "no CUDA device found: using the architecture table's sm_90\n";
  return cuda::architecture("sm_90");
}

int run_occupancy(const occupancy_options& options, std::ostream& out) {
  const cuda::kernel_resources kernel{
      static_cast<int>(checked(options.registers, 0, 65536, "--regs")),
      static_cast<std::uint64_t>(checked(options.static_shared, 0, std::int64_t{1} << 30, "--smem-static")),
      static_cast<int>(checked(options.barriers, 0, 16, "--barriers"))};
  const auto dynamic_shared =
      static_cast<std::uint64_t>(checked(options.dynamic_shared, 0, std::int64_t{1} << 30, "--smem"));
  if (options.threads) checked(*options.threads, 1, 1024, "--threads");
  std::ostringstream note;
  const auto device = choose_device(options, note);
  const std::string arch = device.capability.architecture_name();

  nlohmann::ordered_json json;
  json["arch"] = arch;
  json["device"] = device.name;
  json["origin"] = device.origin == cuda::properties_origin::live_device ? "live_device" : "architecture_table";
  json["registers_per_thread"] = kernel.registers_per_thread;
  json["static_shared_bytes"] = kernel.static_shared_bytes;
  json["dynamic_shared_bytes"] = dynamic_shared;
  json["shared_bytes_per_block"] = kernel.static_shared_bytes + dynamic_shared;

  if (options.threads) {
    const int threads = static_cast<int>(*options.threads);
    const auto result = cuda::compute_occupancy(device, kernel, {threads, dynamic_shared});
    if (options.json) {
      json["threads_per_block"] = threads;
      json.update(result_json(result));
      out << json.dump(2) << '\n';
      return 0;
    }
    out << note.str();
    fmt::print(out, "{} ({}): {} threads, {} registers/thread, {} B static + {} B dynamic shared memory\n", arch,
               device.name, threads, kernel.registers_per_thread, kernel.static_shared_bytes, dynamic_shared);
    fmt::print(out, "  {} blocks/SM, {} of {} warps: occupancy {:.1f}%, limited by {}\n",
               result.active_blocks_per_multiprocessor, result.active_warps_per_multiprocessor,
               result.max_warps_per_multiprocessor, 100.0 * result.occupancy, cuda::to_string(result.limiter));
    auto show = [](int bound) { return bound == cuda::occupancy_bounds::unlimited ? std::string("-") : std::to_string(bound); };
    fmt::print(out, "  blocks/SM allowed by: warps {}, registers {}, shared memory {}, blocks {}, barriers {}\n",
               show(result.bounds.warps), show(result.bounds.registers), show(result.bounds.shared_memory),
               show(result.bounds.blocks), show(result.bounds.barriers));
    return 0;
  }

  const auto recommendation = cuda::recommend_block_size(device, kernel, dynamic_shared);
  if (options.json) {
    auto rows = nlohmann::ordered_json::array();
    for (const auto& row : recommendation.rows) {
      nlohmann::ordered_json entry;
      entry["threads_per_block"] = row.threads_per_block;
      entry.update(result_json(row.result));
      entry["best"] = row.best;
      rows.push_back(entry);
    }
    json["table"] = rows;
    json["recommended_threads_per_block"] = recommendation.recommended_threads_per_block;
    json["reason"] = recommendation.reason;
    out << json.dump(2) << '\n';
    return 0;
  }
  out << note.str();
  fmt::print(out, "occupancy on {} ({}, {}): {} registers/thread, {} B static + {} B dynamic shared memory\n", arch,
             device.name, origin_text(device), kernel.registers_per_thread, kernel.static_shared_bytes,
             dynamic_shared);
  fmt::print(out, "{:>7}  {:>9}  {:>8}  {:>9}  {}\n", "threads", "blocks/SM", "warps/SM", "occupancy",
             "limited by (* = highest occupancy)");
  for (const auto& row : recommendation.rows)
    fmt::print(out, "{:>7}  {:>9}  {:>8}  {:>8.1f}%  {}{}\n", row.threads_per_block,
               row.result.active_blocks_per_multiprocessor, row.result.active_warps_per_multiprocessor,
               100.0 * row.result.occupancy, cuda::to_string(row.result.limiter), row.best ? " *" : "");
  if (recommendation.recommended_threads_per_block > 0)
    fmt::print(out, "recommended: {}\n", recommendation.reason);
  else
    fmt::print(out, "no recommendation: {}\n", recommendation.reason);
  return 0;
}
#else
int run_occupancy(const occupancy_options&, std::ostream&) {
  throw tunekit::invalid_argument("occupancy needs the CUDA layer; rebuild with TUNEKIT_ENABLE_CUDA=ON");
}
#endif

}  // namespace

void add_occupancy_command(CLI::App& app, command_action& action, std::ostream& out) {
  auto options = std::make_shared<occupancy_options>();
  auto* command = app.add_subcommand(
      "occupancy",
      "Resident blocks and warps per SM exactly as CUDA computes them, the limiting resource, and a block-size "
      "recommendation (a table over 32..1024 threads when --threads is not given)");
  auto* arch = command->add_option("--arch", options->arch, "Architecture from the offline table: sm_70 … sm_120");
  auto* device = command->add_option("--device", options->device, "CUDA ordinal of a live device");
  arch->excludes(device);
  command->add_option("--threads", options->threads, "Threads per block, 1..1024");
  command->add_option("--regs", options->registers, "Registers per thread")->required();
  command->add_option("--smem", options->dynamic_shared, "Dynamic shared memory per block, bytes (default 0)");
  command->add_option("--smem-static", options->static_shared, "Static shared memory per block, bytes (default 0)");
  command->add_option("--barriers", options->barriers, "Block barriers the kernel uses (default 1)");
  command->add_flag("--json", options->json, "Print one JSON object");
  command->callback([options, &action, &out] { action = [options, &out] { return run_occupancy(*options, out); }; });
}

}  // namespace tunekit::app
