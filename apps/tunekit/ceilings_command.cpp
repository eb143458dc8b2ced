// tunekit ceilings [--device N] [--store DB] [--remeasure] [--json]
//
// What this device reaches: copy bandwidth and FP32/BF16 matrix product
// rates, measured once and kept in the results store; throughput reports
// quote achieved figures as a fraction of these.
#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "tunekit/error.hpp"
#include "tunekit/store.hpp"
#ifdef TUNEKIT_HAS_CUDA
#include "tunekit/cuda/ceilings.hpp"
#include "tunekit/cuda/device.hpp"
#endif

namespace tunekit::app {

namespace {

struct ceilings_options {
  int device = 0;
  std::string store;
  bool remeasure = false;
  bool json = false;
};

int run_ceilings(const ceilings_options& options, std::ostream& out) {
#ifdef TUNEKIT_HAS_CUDA
  const auto inventory = cuda::query_devices();
  if (inventory.devices.empty()) throw error("no device to measure: " + inventory.unavailable_reason);
  if (options.device < 0 || options.device >= static_cast<int>(inventory.devices.size()))
    throw invalid_argument("--device " + std::to_string(options.device) + ": this machine has devices 0.." +
                           std::to_string(inventory.devices.size() - 1));
  auto store = results_store::open(options.store.empty() ? default_store_path() : std::filesystem::path(options.store));
  const auto identity = cuda::live_identity(options.device);
  const bool cached = !options.remeasure && !store.ceilings(identity).empty();
  const auto values = cuda::device_ceilings(store, options.device, options.remeasure);
  const auto figure = [](const std::optional<double>& value) {
    return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
  };
  if (options.json) {
    nlohmann::ordered_json document;
    document["device"] = {{"name", identity.name}, {"architecture", identity.architecture}, {"driver", identity.driver}};
    document["from_store"] = cached;
    document["copy_gbps"] = figure(values.copy_gbps);
    document["fp32_tflops"] = figure(values.fp32_tflops);
    document["bf16_tflops"] = figure(values.bf16_tflops);
    out << document.dump(2) << '\n';
    return 0;
  }
  const auto text = [](const std::optional<double>& value, const char* unit) {
    return value ? fmt::format("{:.1f} {}", *value, unit) : std::string("not measured (no cuBLAS)");
  };
  out << fmt::format("{} ({}, driver {}): {}\n", identity.name, identity.architecture, identity.driver,
                     cached ? "from the store" : "measured now");
  out << fmt::format("  copy bandwidth   {}\n", text(values.copy_gbps, "GB/s"));
  out << fmt::format("  FP32 matmul      {}\n", text(values.fp32_tflops, "TFLOP/s"));
  out << fmt::format("  BF16 matmul      {}\n", text(values.bf16_tflops, "TFLOP/s"));
  return 0;
#else
  (void)options;
  (void)out;
  throw error("no device to measure: tunekit was built without the CUDA layer");
#endif
}

}  // namespace

void add_ceilings_command(CLI::App& app, command_action& action, std::ostream& out) {
  auto options = std::make_shared<ceilings_options>();
  auto* command = app.add_subcommand(
      "ceilings", "Measure (once, then read from the store) the device's copy bandwidth and matmul rates");
  command->add_option("--device", options->device, "CUDA device ordinal (default 0)");
  command->add_option("--store", options->store, "Results store (default: $TUNEKIT_STORE or the XDG data directory)");
  command->add_flag("--remeasure", options->remeasure, "Measure again and replace what the store holds");
  command->add_flag("--json", options->json, "One JSON object on stdout");
  command->callback([options, &action, &out] { action = [options, &out] { return run_ceilings(*options, out); }; });
}

}  // namespace tunekit::app
