// tunekit tune SPEC.toml [--strategy NAME] [--budget N|P%|Ns] [--seed S] [--store DB] [--device N|all] [--json FILE]
//              [--log FILE]
#include <fmt/format.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "tunekit/error.hpp"
#include "tunekit/runner.hpp"
#include "tunekit/spec.hpp"
#if defined(TUNEKIT_HAS_CUDA)
#include "tunekit/cuda/backend.hpp"
#endif

namespace tunekit::app {

namespace {

struct tune_command_options {
  std::string spec;
  std::string strategy = "auto";
  std::string budget = "5%";
  std::uint64_t seed = 0;
  std::string store;
  std::string json;
  std::string log;
  std::string device = "0";
  std::size_t compile_threads = 0;
};


std::string config_text(const timed_configuration& each) {
  std::string text;
  for (const auto& [name, value] : each.config) {
    if (!text.empty()) text += ", ";
    text += name;
    text += '=';
    text += to_string(value);
  }
  return text;
}

int run_tune(const tune_command_options& options, std::ostream& out) {
  const auto spec = load_spec(options.spec);
  tune_options settings;
  settings.strategy = options.strategy;
  settings.limit = budget::parse(options.budget);
  settings.seed = options.seed;
  settings.store = options.store;
  settings.compile_threads = options.compile_threads;
  if (spec.backend == backend_kind::cuda) settings.devices = parse_devices(options.device);
  if (isatty(STDERR_FILENO) != 0) {
    settings.progress = &std::cerr;
    settings.progress_is_terminal = true;
  }
  std::ofstream log;
  if (!options.log.empty()) {
    log.open(options.log);
    if (!log) throw invalid_argument("--log: cannot write '" + options.log + "'");
    settings.log = &log;
  }
  const auto report = run_tuning(spec, settings);
  if (!options.json.empty()) {
    std::ofstream file(options.json);
    file << to_json(report) << '\n';
    if (!file) throw error("cannot write '" + options.json + "'");
  }
  out << fmt::format("{} on {}, problem {}: {} evaluations, {} measured now", report.kernel, report.device,
                     report.problem, report.evaluations, report.measured);
  std::string failures;
  for (const auto& [name, count] : report.failures) failures += fmt::format("{}{} {}", failures.empty() ? "" : ", ", count, name);
  out << (failures.empty() ? std::string() : "; failures: " + failures) << '\n';
  if (report.best) out << fmt::format("best      {:12.3f} us  {}\n", report.best->time_us, config_text(*report.best));
  if (report.baseline)
    out << fmt::format("baseline  {:12.3f} us  {}\n", report.baseline->time_us, config_text(*report.baseline));
  if (report.speedup) out << fmt::format("speedup   {:.2f}x (baseline time / best time)\n", *report.speedup);
  if (report.objective != "time" && report.best_objective)
    out << fmt::format("objective {} ({}): best {:.4g}, baseline {}\n", report.objective, report.maximize ? "max" : "min",
                       *report.best_objective,
                       report.baseline_objective ? fmt::format("{:.4g}", *report.baseline_objective) : "none");
  if (report.measured > 0)
    out << fmt::format("wall      {:.1f} s; bound 1.2 x max(compile {:.1f} s / {} threads, measure {:.1f} s / {} lanes) = {:.1f} s\n",
                       report.seconds, report.compile_seconds, report.compile_threads, report.measure_seconds,
                       report.lanes, report.bound_seconds());
  if (!report.best) out << "no configuration ran correctly\n";
  return report.best ? 0 : 1;
}

}  // namespace

std::vector<int> parse_devices(const std::string& text) {
  if (text == "all") {
#if defined(TUNEKIT_HAS_CUDA)
    const int count = cuda::count_devices_without_context();
#else
    const int count = 0;
#endif
    if (count == 0) throw error("--device all: no GPU here");
    std::vector<int> all(static_cast<std::size_t>(count));
    for (int d = 0; d < count; ++d) all[static_cast<std::size_t>(d)] = d;
    return all;
  }
  std::size_t used = 0;
  int ordinal = -1;
  try {
    ordinal = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || ordinal < 0) throw invalid_argument("--device '" + text + "' is neither a GPU number nor all");
  return {ordinal};
}

void add_tune_command(CLI::App& app, command_action& action, std::ostream& out) {
  auto options = std::make_shared<tune_command_options>();
  auto* command = app.add_subcommand("tune", "Tune a kernel described by a spec: compile, verify, measure, store");
  command->add_option("spec", options->spec, "Tuning spec (TOML)")->required();
  command->add_option("--strategy", options->strategy, "Search strategy (default auto)");
  command->add_option("--budget", options->budget, "N evaluations, P% of the space, or Ns of evaluation time (default 5%)");
  command->add_option("--seed", options->seed, "Seed of the strategy (default 0)");
  command->add_option("--store", options->store, "Results store (default: $TUNEKIT_STORE or the XDG data directory)");
  command->add_option("--device", options->device, "GPU to tune on (cuda specs): a number, or all (default 0)");
  command->add_option("--compile-threads", options->compile_threads, "Compile threads (default: the hardware threads)");
  command->add_option("--json", options->json, "Write the session report as JSON to FILE");
  command->add_option("--log", options->log, "Write a line per evaluation to FILE as it arrives, failures with their message");
  command->callback([options, &action, &out] { action = [options, &out] { return run_tune(*options, out); }; });
}

}  // namespace tunekit::app
