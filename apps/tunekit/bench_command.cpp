// tunekit bench SPEC.toml [--config k=v,...] [--store DB] [--device N] [--min-seconds S] [--json FILE]
#include <fmt/format.h>

#include <fstream>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "tunekit/error.hpp"
#include "tunekit/measure/results.hpp"
#include "tunekit/runner.hpp"
#include "tunekit/spec.hpp"

namespace tunekit::app {

namespace {

struct bench_command_options {
  std::string spec;
  std::string config;
  std::string store;
  std::string device = "0";
  double min_seconds = 1.0;
  std::string json;
};

int run_bench_command(const bench_command_options& options, std::ostream& out) {
  const auto spec = load_spec(options.spec);
  bench_options settings;
  settings.config = parse_assignments(options.config, "--config");
  settings.store = options.store;
  settings.min_seconds = options.min_seconds;
  if (spec.backend == backend_kind::cuda) settings.devices = parse_devices(options.device);
  const auto report = run_bench(spec, settings);
  const auto& outcome = report.outcome;
  out << fmt::format("{} on {}, problem {}, {} configuration {}\n", report.kernel, report.device.name, report.problem,
                     report.from_store ? "stored best" : "given", [&] {
                       std::string text;
                       for (const auto& [name, value] : report.configuration.config)
                         text += (text.empty() ? "" : ", ") + name + "=" + to_string(value);
                       return text;
                     }());
  if (outcome.status != evaluation_status::ok) {
    out << fmt::format("failed: {}: {}\n", to_string(outcome.status), outcome.message);
    return 1;
  }
  measure::measurement_result result;
  result.name = report.kernel;
  for (const auto& [name, value] : report.configuration.config) {
    const auto* text = std::get_if<std::string>(&value);
    result.params.emplace_back(name, text != nullptr ? nlohmann::json(*text).dump() : to_string(value));
  }
  result.samples_us = outcome.samples_us;
  const auto detail = nlohmann::json::parse(outcome.detail);
  if (detail.contains("telemetry")) result.telemetry = detail["telemetry"].dump();
  measure::summarize_result(result);
  out << fmt::format("median {:.3f} us over {} samples (cv {:.4f}, min {:.3f}, max {:.3f})\n",
                     result.statistics.median, result.samples_us.size(), result.statistics.cv, result.statistics.min,
                     result.statistics.max);
  if (!options.json.empty()) {
    measure::result_file file;
    nlohmann::json device = {{"name", report.device.name},
                             {"architecture", report.device.architecture},
                             {"driver", report.device.driver},
                             {"problem", nlohmann::json::parse(report.problem)}};
    if (detail.contains("resources")) device["resources"] = detail["resources"];
    file.device = device.dump();
    file.results.push_back(std::move(result));
    std::ofstream json_file(options.json);
    measure::write_json(file, json_file);
    if (!json_file) throw error("cannot write '" + options.json + "'");
  }
  return 0;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> parse_assignments(const std::string& text, const std::string& option) {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream items(text);
  for (std::string item; std::getline(items, item, ',');) {
    const auto equals = item.find('=');
    if (equals == std::string::npos || equals == 0 || equals + 1 == item.size())
      throw invalid_argument(option + ": '" + item + "' is not name=value");
    out.emplace_back(item.substr(0, equals), item.substr(equals + 1));
  }
  return out;
}

void add_bench_command(CLI::App& app, command_action& action, std::ostream& out) {
  auto options = std::make_shared<bench_command_options>();
  auto* command = app.add_subcommand("bench", "Measure one configuration of a spec (default: the stored best)");
  command->add_option("spec", options->spec, "Tuning spec (TOML)")->required();
  command->add_option("--config", options->config, "name=value,... (other parameters: the baseline's)");
  command->add_option("--store", options->store, "Results store (default: $TUNEKIT_STORE or the XDG data directory)");
  command->add_option("--device", options->device, "GPU to measure on (cuda specs; default 0)");
  command->add_option("--min-seconds", options->min_seconds, "Least measuring time (default 1)");
  command->add_option("--json", options->json, "Write a result file (tunekit compare reads it)");
  command->callback([options, &action, &out] { action = [options, &out] { return run_bench_command(*options, out); }; });
}

}  // namespace tunekit::app
