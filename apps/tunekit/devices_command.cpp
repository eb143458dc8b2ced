// tunekit devices [--json] [--arch NAME | --table]
#include <ostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "tunekit/error.hpp"
#include "properties_json.hpp"
#include "tunekit/cuda/architecture.hpp"
#include "tunekit/cuda/device.hpp"

namespace tunekit::app {

namespace {

struct devices_options {
  bool json = false;
  std::string arch;
  bool table = false;
};

int run_devices(const devices_options& options, std::ostream& out) {
#ifdef TUNEKIT_HAS_CUDA
  std::vector<cuda::device_properties> devices;
  std::string none_reason;
  if (!options.arch.empty()) {
    devices.push_back(cuda::architecture(options.arch));
  } else if (options.table) {
    const auto table = cuda::architecture_table();
    devices.assign(table.begin(), table.end());
  } else {
    auto inventory = cuda::query_devices();
    devices = std::move(inventory.devices);
    none_reason = inventory.unavailable_reason;
  }
#else
  std::vector<cuda::device_properties> devices;
  const std::string none_reason = "no CUDA device found (tunekit was built without the CUDA layer)";
  if (!options.arch.empty() || options.table)
    throw tunekit::invalid_argument("the architecture table needs the CUDA layer; rebuild with TUNEKIT_ENABLE_CUDA=ON");
#endif
  if (options.json) {
    auto list = nlohmann::ordered_json::array();
    for (const auto& device : devices) list.push_back(to_json(device));
    out << list.dump(2) << '\n';
    return 0;
  }
  if (devices.empty()) {
    out << none_reason << '\n';
    return 0;
  }
  for (std::size_t i = 0; i < devices.size(); ++i) {
    if (i > 0) out << '\n';
    print_device_report(out, devices[i]);
  }
  return 0;
}

}  // namespace

void add_devices_command(CLI::App& app, command_action& action, std::ostream& out) {
  auto options = std::make_shared<devices_options>();
  auto* command = app.add_subcommand("devices", "Report the CUDA devices of this machine (or the architecture table)");
  command->add_flag("--json", options->json, "Print a JSON array ([] when there is no device)");
  auto* arch = command->add_option("--arch", options->arch, "Report an architecture from the offline table, e.g. sm_90");
  auto* table = command->add_flag("--table", options->table, "Report every architecture of the offline table");
  arch->excludes(table);
  command->callback([options, &action, &out] { action = [options, &out] { return run_devices(*options, out); }; });
}

}  // namespace tunekit::app
