// tunekit workload NAME [--size seed|large|k=v,...] [--seed S] --dump DIR
// Writes a workload's inputs and outputs as .npy files with a params.json:
// the GPU's outputs (the stored best configuration, else the baseline, run
// and verified against the float64 reference) where there is a GPU, else the
// reference's. Anyone can check the kernels with numpy against their own code.
#include <fmt/format.h>

#include <fstream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "tunekit/error.hpp"
#include "tunekit/host/backend.hpp"
#include "tunekit/profile.hpp"
#include "tunekit/runner.hpp"
#include "tunekit/spec.hpp"
#include "tunekit/store.hpp"
#if defined(TUNEKIT_HAS_CUDA)
#include "tunekit/cuda/backend.hpp"
#endif

namespace tunekit::app {

namespace {

using nlohmann::json;

struct workload_options {
  std::string name;
  std::string size = "seed";
  std::uint64_t seed = 0;
  std::string dump;
  std::string manifest = "kernels/suite.toml";
  std::string store;
  int device = 0;
  bool reference = false;
};

// "n=1000,k=5": the seed spec's problem with these values.
void resize(kernel_spec& spec, const std::string& text) {
  for (const auto& [key, number] : parse_assignments(text, "--size")) {
    auto at = std::find_if(spec.problem.begin(), spec.problem.end(), [&](const auto& p) { return p.first == key; });
    if (at == spec.problem.end()) throw invalid_argument("--size: the problem has no '" + key + "'");
    std::size_t used = 0;
    double value = 0.0;
    try {
      value = std::stod(number, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != number.size()) throw invalid_argument("--size: '" + key + "=" + number + "' is not a number");
    at->second = value;
  }
}

int run_workload(const workload_options& options, std::ostream& out) {
  const auto suite = profile::load_suite(options.manifest);
  const bool large = options.size == "large";
  std::optional<std::filesystem::path> path;
  for (const auto& entry : suite)
    if (entry.workload == options.name && entry.size == (large ? "large" : "seed") && !path) path = entry.spec;
  if (!path) throw invalid_argument("no workload '" + options.name + "' in " + options.manifest);
  auto spec = load_spec(*path);
  if (options.size != "seed" && !large) resize(spec, options.size);
  // --seed S: other inputs of the same kind, every generated buffer's seed moved by S.
  for (auto& argument : spec.arguments)
    if (!argument.scalar) argument.init.seed += options.seed * 0x9E3779B9ULL;
  spec.dump_directory = options.dump;
  const auto space = search_space::enumerate(space_of(spec));  // throws when --size breaks every constraint

  bool gpu = false;
#if defined(TUNEKIT_HAS_CUDA)
  gpu = !options.reference && spec.backend == backend_kind::cuda && cuda::count_devices_without_context() > options.device;
#endif
  json params = {{"workload", options.name}, {"spec", path->string()}, {"seed", options.seed},
                 {"problem", json::parse(spec.problem_text())}};
  if (gpu) {
    bench_options settings;
    settings.store = options.store;
    settings.devices = {options.device};
    settings.min_seconds = 0.01;
    settings.baseline_when_untuned = true;
    const auto report = run_bench(spec, settings);
    if (report.outcome.status != evaluation_status::ok)
      throw error(fmt::format("the kernel failed: {}: {}", to_string(report.outcome.status), report.outcome.message));
    params["outputs_from"] = "gpu";
    params["device"] = report.device.name;
    json config = json::object();
    for (const auto& [name, value] : report.configuration.config) config[name] = to_string(value);
    params["config"] = config;
  } else {
    const std::filesystem::path store = options.store.empty() ? default_store_path() : std::filesystem::path(options.store);
    const host::compiler compiler(store.string() + ".cache");
    (void)host::dump_reference(spec, space, baseline_index(spec, space), compiler);
    params["outputs_from"] = "reference";
  }
  json files = json::array();
  for (const auto& argument : spec.arguments) {
    if (argument.scalar) continue;
    files.push_back({{"file", argument.name + ".npy"}, {"type", std::string(to_string(argument.type))},
                     {"role", argument.direction == argument_direction::in ? "input" : "output"}});
    if (argument.direction != argument_direction::in)
      files.push_back({{"file", argument.name + "_reference.npy"}, {"type", std::string(to_string(argument.type))},
                       {"role", "reference"}});
  }
  params["files"] = files;
  std::ofstream(std::filesystem::path(options.dump) / "params.json") << params.dump(1) << '\n';
  out << fmt::format("{} ({}): {} files in {}, outputs from the {}\n", options.name, path->filename().string(),
                     files.size(), options.dump, gpu ? "GPU (verified against the reference)" : "float64 reference");
  return 0;
}

}  // namespace

void add_workload_command(CLI::App& app, command_action& action, std::ostream& out) {
  auto options = std::make_shared<workload_options>();
  auto* command = app.add_subcommand(
      "workload", "Write a suite workload's inputs and outputs (the GPU's, else the float64 reference's) as .npy files");
  command->add_option("name", options->name, "The workload (kernels/suite.toml)")->required();
  command->add_option("--size", options->size, "seed, large, or name=value,... over the seed size (default seed)");
  command->add_option("--seed", options->seed, "Move every input's random seed (default 0: the spec's inputs)");
  command->add_option("--dump", options->dump, "Folder for the .npy files and params.json")->required();
  command->add_option("--manifest", options->manifest, "The suite manifest (default kernels/suite.toml)");
  command->add_option("--store", options->store, "Results store (default: $TUNEKIT_STORE or the XDG data directory)");
  command->add_option("--device", options->device, "GPU (default 0)");
  command->add_flag("--reference", options->reference, "Outputs from the reference even where there is a GPU");
  command->callback([options, &action, &out] { action = [options, &out] { return run_workload(*options, out); }; });
}

}  // namespace tunekit::app
