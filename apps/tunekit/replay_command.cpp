// tunekit replay --cache FILE [--strategy NAME] [--budget N | --budget P% | --budget Ns]...
//                [--time MS] [--seeds K] [--seed S] [--store DB] [--score] [--json]
//
// Replays a recorded search space (Kernel Tuner cache or T4 results, .json or .json.gz):
// the strategy runs as if tuning, each evaluation answered by the record.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "commands.hpp"
#include "parameter_json.hpp"
#include "tunekit/error.hpp"
#include "tunekit/replay.hpp"
#include "tunekit/store.hpp"
#include "tunekit/strategy.hpp"
#include "tunekit/tuner.hpp"

namespace tunekit::app {

namespace {

using json = nlohmann::ordered_json;

struct replay_options {
  std::string cache;
  std::string strategy = "auto";
  std::vector<std::string> budgets;
  std::optional<double> time;
  std::int64_t seeds = 1;
  std::int64_t seed = 0;
  std::string store;  ///< empty: replay writes nowhere
  bool score = false;
  bool json = false;
};

json number_or_null(double value) { return std::isfinite(value) ? json(value) : json(nullptr); }

json run_json(const recorded_space& recorded, const tuning_run& run) {
  json config = json::object();
  if (run.best_index) {
    const configuration chosen = recorded.space.at(*run.best_index);
    const auto& parameters = recorded.space.parameters();
    for (std::size_t p = 0; p < parameters.size(); ++p)
      config[parameters[p].name] = parameter_json(parameters[p].values[chosen.value_indices[p]]);
  }
  json trace = json::array();
  for (const auto& point : run.trace) trace.push_back(json::array({point.evaluation, point.best}));
  return json{{"seed", run.seed},      {"evaluations", run.evaluations}, {"best", number_or_null(run.best)},
              {"best_config", config}, {"trace", trace},                 {"cost_ms", run.cost}};
}

json score_json(const replay_score& score) {
  return json{{"budget", score.budget},
              {"runs", score.runs},
              {"median_ratio", number_or_null(score.median_ratio)},
              {"within_5", score.within_5},
              {"within_10", score.within_10},
              {"random_expected", score.random_expected},
              {"normalised_median", number_or_null(score.normalised_median)},
              {"normalised_mean", number_or_null(score.normalised_mean)},
              {"strategy_ms_per_proposal", score.strategy_ms_per_proposal}};
}

int run_replay(const replay_options& options, std::ostream& out) {
  if (options.seeds < 1 || options.seeds > 100000)
    throw invalid_argument(fmt::format("--seeds must be 1..100000, got {}", options.seeds));
  if (options.seed < 0) throw invalid_argument(fmt::format("--seed must be >= 0, got {}", options.seed));
  if (options.time && !(*options.time > 0.0)) throw invalid_argument("--time must be a positive number of ms");
  auto search = make_strategy(options.strategy);  // an unknown name fails before the file is read
  std::vector<budget> budgets;
  for (const auto& text : options.budgets) budgets.push_back(budget::parse(text));
  if (budgets.empty()) budgets.push_back(budget::parse("5%"));
  if (options.time)
    for (auto& each : budgets) each.time = options.time;

  using clock = std::chrono::steady_clock;
  const auto loading = clock::now();
  const recorded_space recorded = load_recorded_space(options.cache);
  const double load_seconds = std::chrono::duration<double>(clock::now() - loading).count();
  const std::size_t valid = static_cast<std::size_t>(std::count_if(
      recorded.results.begin(), recorded.results.end(),
      [](const recorded_result& each) { return each.status == evaluation_status::ok; }));
  const std::optional<double> optimum = recorded_optimum(recorded);
  const json space{{"configurations", recorded.space.size()},
                   {"valid", valid},
                   {"failed", recorded.space.size() - valid},
                   {"optimum", optimum ? json(*optimum) : json(nullptr)}};
  evaluator evaluate = replay_evaluator(recorded);
  // With a store, every replayed result is recorded as it arrives and a
  // result already stored is not evaluated again: a killed session resumes.
  std::optional<results_store> store;
  if (!options.store.empty()) {
    store.emplace(results_store::open(options.store));
    std::string parameters_text;
    for (const auto& each : recorded.space.parameters()) {
      parameters_text += each.name + ':';
      for (const auto& value : each.values) parameters_text += to_string(value) + ',';
      parameters_text += ';';
    }
    const store_key key{{recorded.device_name, "", ""},
                        {recorded.kernel_name.empty() ? std::string("replay") : recorded.kernel_name,
                         source_hash(parameters_text, "replay")},
                        "replay"};
    store->describe(key, recorded.space.parameters(), recorded.objective);
    evaluate = stored_evaluator(*store, key, recorded.space, evaluate);
  }

  json documents = json::array();
  json scores = json::array();
  for (const auto& limits : budgets) {
    const std::size_t limit = limits.evaluation_limit(recorded.space.size());
    std::vector<tuning_run> runs;
    const auto tuning = clock::now();
    for (std::int64_t k = 0; k < options.seeds; ++k)
      runs.push_back(tune(*search, recorded.space, evaluate, limits, static_cast<std::uint64_t>(options.seed + k)));
    const double seconds_per_run =
        std::chrono::duration<double>(clock::now() - tuning).count() / static_cast<double>(options.seeds);
    if (options.score) {
      if (!optimum) throw invalid_argument("'" + options.cache + "' has no ok configuration to score against");
      const replay_score score = score_replay(recorded, runs, limit);
      if (options.json) {
        scores.push_back(score_json(score));
        scores.back()["seconds_per_run"] = seconds_per_run;
      } else {
        out << fmt::format(
            "{:<20} budget {:>6}  runs {:>3}  median best/optimum {:.4f}  within 5% {:>5.1f}%  within 10% "
            "{:>5.1f}%  normalised {:.3f}  ({:.3f} ms/proposal)\n",
            search->name(), limit, score.runs, score.median_ratio, 100.0 * score.within_5,
            100.0 * score.within_10, score.normalised_median, score.strategy_ms_per_proposal);
      }
      continue;
    }
    if (options.json) {
      json document{{"space", space}, {"strategy", std::string(search->name())}, {"budget", limit}};
      json runs_json = json::array();
      for (const auto& run : runs) runs_json.push_back(run_json(recorded, run));
      document["runs"] = std::move(runs_json);
      documents.push_back(std::move(document));
    } else {
      out << fmt::format("{} over {} ({} configurations, {} ok, optimum {}), budget {}\n", search->name(),
                         options.cache, recorded.space.size(), valid,
                         optimum ? fmt::format("{:.6g}", *optimum) : std::string("none"), limit);
      for (const auto& run : runs)
        out << fmt::format("  seed {:>4}: best {:.6g} after {} evaluations ({})\n", run.seed, run.best,
                           run.evaluations, run.best_index ? recorded.space.describe(*run.best_index) : "none ok");
    }
  }
  if (options.json) {
    if (options.score)
      out << json{{"space", space},
                  {"strategy", std::string(search->name())},
                  {"load_seconds", load_seconds},
                  {"scores", scores}}
                 .dump()
          << '\n';
    else
      out << (documents.size() == 1 ? documents.front() : documents).dump() << '\n';
  }
  return success;
}

}  // namespace

void add_replay_command(CLI::App& app, command_action& action, std::ostream& out) {
  auto options = std::make_shared<replay_options>();
  CLI::App* command = app.add_subcommand("replay", "Run a strategy over a recorded search space");
  command->add_option("--cache", options->cache, "Kernel Tuner cache file or T4 results file (.json or .json.gz)")->required();
  command->add_option("--strategy", options->strategy, "Search strategy (default auto)");
  command->add_option("--budget", options->budgets,
                      "Distinct configurations to evaluate, failed ones included: N or P%, or Ns of recorded cost (repeatable; default 5%)");
  command->add_option("--time", options->time, "Also stop once the recorded evaluation cost reaches MS");
  command->add_option("--seeds", options->seeds, "Number of runs, seeds S, S+1, ... (default 1)");
  command->add_option("--seed", options->seed, "First seed (default 0)");
  command->add_option("--store", options->store,
                      "Record each replayed result in this results store and reuse what it holds (resume)");
  command->add_flag("--score", options->score, "Summarise the runs against the optimum and random sampling");
  command->add_flag("--json", options->json, "One JSON object on stdout");
  command->callback([options, &action, &out] { action = [options, &out] { return run_replay(*options, out); }; });
}

}  // namespace tunekit::app
