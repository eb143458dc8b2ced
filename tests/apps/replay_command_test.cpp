// tunekit replay: the JSON contract later tooling depends on, scores, resume
// through a store, and bad input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "tunekit/replay.hpp"
#include "tunekit/tuner.hpp"

namespace {

using nlohmann::json;
using tunekit::testing::expect_bad_input;
using tunekit::testing::run_cli;

const std::string fixture = TUNEKIT_SOURCE_DIR "/tests/store/kernel_tuner_cache.json";
const std::string pnpoly = TUNEKIT_SOURCE_DIR "/../shared/data/searchspaces/pnpoly_RTX_3090.json.gz";

json replay_json(std::vector<std::string> arguments) {
  arguments.insert(arguments.begin(), "replay");
  const auto result = run_cli(arguments);
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_TRUE(result.err.empty()) << result.err;
  return json::parse(result.out);
}

// The recorded time of the configuration a run reports as its best.
double recorded_time_of(const tunekit::recorded_space& recorded, const json& config) {
  tunekit::configuration chosen;
  for (const auto& parameter : recorded.space.parameters()) {
    const json& value = config.at(parameter.name);
    std::uint32_t position = 0;
    for (; position < parameter.values.size(); ++position) {
      const auto& candidate = parameter.values[position];
      if ((value.is_number_integer() && std::holds_alternative<std::int64_t>(candidate) &&
           std::get<std::int64_t>(candidate) == value.get<std::int64_t>()) ||
          (value.is_number_float() && std::holds_alternative<double>(candidate) &&
           std::get<double>(candidate) == value.get<double>()) ||
          (value.is_string() && std::holds_alternative<std::string>(candidate) &&
           std::get<std::string>(candidate) == value.get<std::string>()))
        break;
    }
    EXPECT_LT(position, parameter.values.size()) << parameter.name << " = " << value;
    chosen.value_indices.push_back(position);
  }
  const auto index = recorded.space.find(chosen);
  EXPECT_TRUE(index.has_value());
  return index ? recorded.results[*index].time : NAN;
}

void expect_contract(const json& document, const tunekit::recorded_space& recorded, std::size_t budget,
                     const std::vector<std::int64_t>& seeds) {
  ASSERT_TRUE(document.is_object());
  const json& space = document.at("space");
  EXPECT_EQ(space.at("configurations").get<std::size_t>(), recorded.space.size());
  EXPECT_EQ(space.at("valid").get<std::size_t>() + space.at("failed").get<std::size_t>(), recorded.space.size());
  EXPECT_EQ(space.at("optimum").get<double>(), *tunekit::recorded_optimum(recorded));
  EXPECT_TRUE(document.at("strategy").is_string());
  EXPECT_EQ(document.at("budget").get<std::size_t>(), budget);
  const json& runs = document.at("runs");
  ASSERT_EQ(runs.size(), seeds.size());
  for (std::size_t r = 0; r < runs.size(); ++r) {
    const json& run = runs[r];
    EXPECT_EQ(run.at("seed").get<std::int64_t>(), seeds[r]);
    EXPECT_EQ(run.at("evaluations").get<std::size_t>(), budget);
    const double best = run.at("best").get<double>();
    EXPECT_EQ(recorded_time_of(recorded, run.at("best_config")), best);
    const json& trace = run.at("trace");
    ASSERT_FALSE(trace.empty());
    for (std::size_t i = 0; i < trace.size(); ++i) {
      ASSERT_EQ(trace[i].size(), 2u);
      EXPECT_GE(trace[i][0].get<std::size_t>(), 1u);
      EXPECT_LE(trace[i][0].get<std::size_t>(), budget);
      if (i > 0) {
        EXPECT_GT(trace[i][0].get<std::size_t>(), trace[i - 1][0].get<std::size_t>());
        EXPECT_LT(trace[i][1].get<double>(), trace[i - 1][1].get<double>());
      }
    }
    EXPECT_EQ(trace.back()[1].get<double>(), best);
  }
}

TEST(ReplayCommand, JsonKeepsTheContractForEveryStrategy) {
  const auto recorded = tunekit::load_kernel_tuner_cache(fixture);
  for (const char* strategy : {"auto", "brute_force", "random", "genetic_algorithm", "pso", "simulated_annealing",
                               "greedy_ils", "bayes_opt"}) {
    SCOPED_TRACE(strategy);
    const json document =
        replay_json({"--cache", fixture, "--strategy", strategy, "--budget", "4", "--seeds", "3", "--seed", "5", "--json"});
    EXPECT_EQ(document.at("strategy"), strategy);
    expect_contract(document, recorded, 4, {5, 6, 7});
  }
}

TEST(ReplayCommand, DefaultsAreAutoOneSeedFromZeroAndFivePercent) {
  if (!std::filesystem::exists(pnpoly)) GTEST_SKIP() << "no recorded pnpoly space";
  const auto recorded = tunekit::load_kernel_tuner_cache(pnpoly);
  const json document = replay_json({"--cache", pnpoly, "--json"});
  EXPECT_EQ(document.at("strategy"), "auto");
  expect_contract(document, recorded, 205, {0});  // 5% of 4,092
  const json two = replay_json({"--cache", pnpoly, "--budget", "2%", "--json"});
  expect_contract(two, recorded, 82, {0});
}

TEST(ReplayCommand, SameArgumentsSameOutput) {
  const std::vector<std::string> arguments{"replay", "--cache", fixture, "--strategy", "genetic_algorithm",
                                           "--budget", "5", "--seeds", "4", "--json"};
  EXPECT_EQ(run_cli(arguments).out, run_cli(arguments).out);
}

TEST(ReplayCommand, ScoreSummarisesEachBudget) {
  const json document =
      replay_json({"--cache", fixture, "--strategy", "random", "--budget", "100%", "--budget", "3", "--seeds", "5",
                   "--score", "--json"});
  const json& scores = document.at("scores");
  ASSERT_EQ(scores.size(), 2u);
  // The whole space: every run finds the optimum.
  EXPECT_EQ(scores[0].at("median_ratio").get<double>(), 1.0);
  EXPECT_EQ(scores[0].at("within_5").get<double>(), 1.0);
  EXPECT_EQ(scores[0].at("normalised_median").get<double>(), 1.0);
  EXPECT_EQ(scores[1].at("budget").get<int>(), 3);
  for (const char* key : {"median_ratio", "within_5", "within_10", "random_expected", "normalised_median",
                          "normalised_mean", "strategy_ms_per_proposal", "runs"})
    EXPECT_TRUE(scores[1].contains(key)) << key;
  const auto human = run_cli({"replay", "--cache", fixture, "--strategy", "random", "--budget", "3", "--score"});
  EXPECT_EQ(human.code, 0);
  EXPECT_NE(human.out.find("median best/optimum"), std::string::npos) << human.out;
}

TEST(ReplayCommand, AStoreResumesWhereASessionStopped) {
  if (!std::filesystem::exists(pnpoly)) GTEST_SKIP() << "no recorded pnpoly space";
  const auto store = std::filesystem::temp_directory_path() / ("tunekit_replay_store_" + std::to_string(::getpid()) + ".db");
  std::filesystem::remove(store);
  const std::vector<std::string> common{"--cache", pnpoly, "--strategy", "genetic_algorithm", "--seed", "3", "--json"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> arguments = common;
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    return replay_json(arguments);
  };
  const json fresh = with({"--budget", "120"});
  (void)with({"--budget", "50", "--store", store.string()});  // the session that stopped early
  const json resumed = with({"--budget", "120", "--store", store.string()});
  EXPECT_EQ(resumed.at("runs"), fresh.at("runs"));
  const auto listed = run_cli({"store", "list", "--store", store.string(), "--json"});
  const json problems = json::parse(listed.out).at("problems");
  ASSERT_EQ(problems.size(), 1u) << listed.out;
  EXPECT_EQ(problems[0].at("results").get<int>(), 120) << listed.out;
  std::filesystem::remove(store);
  std::filesystem::remove(store.string() + "-wal");
  std::filesystem::remove(store.string() + "-shm");
}

TEST(ReplayCommand, AT4FileReplaysLikeTheKernelTunerFileItWasMadeFrom) {
  const auto directory = std::filesystem::temp_directory_path() / ("tunekit_replay_t4_" + std::to_string(::getpid()));
  std::filesystem::create_directories(directory);
  const std::string store = (directory / "s.db").string();
  const std::string t4 = (directory / "fixture_t4.json").string();
  ASSERT_EQ(run_cli({"store", "import", fixture, "--store", store}).code, 0);
  const auto exported = run_cli({"store", "export", "--kernel", "fixture_kernel", "--format", "t4", "--output", t4, "--store", store});
  ASSERT_EQ(exported.code, 0) << exported.err;
  const std::vector<std::string> options{"--strategy", "random", "--budget", "5", "--seeds", "3", "--json"};
  std::vector<std::string> from_kt{"--cache", fixture};
  std::vector<std::string> from_t4{"--cache", t4};
  from_kt.insert(from_kt.end(), options.begin(), options.end());
  from_t4.insert(from_t4.end(), options.begin(), options.end());
  const json a = replay_json(from_kt);
  const json b = replay_json(from_t4);
  EXPECT_EQ(a.at("space"), b.at("space"));
  EXPECT_EQ(a.at("runs"), b.at("runs"));
  std::filesystem::remove_all(directory);
}

TEST(ReplayCommand, BadInputIsOneLineAndExitTwo) {
  const auto corrupt = std::filesystem::temp_directory_path() / ("tunekit_replay_bad_" + std::to_string(::getpid()) + ".json");
  std::ofstream(corrupt) << "{\"tune_params\": {\"x\": [1]}, \"cache\": {\"1\": {\"time\": [";
  expect_bad_input({"replay"});
  expect_bad_input({"replay", "--cache"});
  expect_bad_input({"replay", "--cache", "/nonexistent/file.json"});
  expect_bad_input({"replay", "--cache", corrupt.string()});
  expect_bad_input({"replay", "--cache", fixture, "--strategy", "annealing"});
  for (const char* budget : {"0", "-1", "0%", "150%", "ten", "5%%"})
    expect_bad_input({"replay", "--cache", fixture, "--budget", budget});
  expect_bad_input({"replay", "--cache", fixture, "--seeds", "0"});
  expect_bad_input({"replay", "--cache", fixture, "--seed", "-4"});
  expect_bad_input({"replay", "--cache", fixture, "--time", "0"});
  expect_bad_input({"replay", "--cache", fixture, "--store", corrupt.string()});
  std::filesystem::remove(corrupt);
}

}  // namespace
