#include "tunekit/tuner.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <set>

#include "tunekit/error.hpp"

namespace {

using tunekit::budget;
using tunekit::evaluation_status;
using tunekit::recorded_result;

const std::filesystem::path recorded_directory = TUNEKIT_SOURCE_DIR "/../shared/data/searchspaces";

TEST(Budget, ParsesCountsAndPercentages) {
  EXPECT_EQ(budget::parse("100").evaluations, 100u);
  EXPECT_FALSE(budget::parse("100").fraction.has_value());
  EXPECT_DOUBLE_EQ(*budget::parse("5%").fraction, 0.05);
  EXPECT_DOUBLE_EQ(*budget::parse("2.5%").fraction, 0.025);
  EXPECT_DOUBLE_EQ(*budget::parse("30s").time, 30000.0);
  EXPECT_DOUBLE_EQ(*budget::parse("0.5s").time, 500.0);
  EXPECT_FALSE(budget::parse("30s").evaluations.has_value());
  for (const char* bad : {"", "0", "-3", "abc", "5%%", "0%", "101%", "%", "1e3", "12x", "-5%", "s", "0s", "-1s", "5ss", "infs"})
    EXPECT_THROW((void)budget::parse(bad), tunekit::invalid_argument) << bad;
}

TEST(Budget, FractionsRoundToTheNearestCountWithinTheSpace) {
  // The recorded gemm space has 17,956 configurations: 2% and 5% are 359 and 898.
  EXPECT_EQ(budget::parse("2%").evaluation_limit(17956), 359u);
  EXPECT_EQ(budget::parse("5%").evaluation_limit(17956), 898u);
  EXPECT_EQ(budget::parse("5%").evaluation_limit(6768), 338u);
  EXPECT_EQ(budget::parse("2%").evaluation_limit(4092), 82u);
  EXPECT_EQ(budget::parse("1%").evaluation_limit(10), 1u);   // never zero
  EXPECT_EQ(budget::parse("500").evaluation_limit(10), 10u);  // never past the space
  budget both = budget::parse("50%");
  both.evaluations = 3;
  EXPECT_EQ(both.evaluation_limit(100), 3u);
  EXPECT_EQ(budget{}.evaluation_limit(42), 42u);
}

std::vector<recorded_result> results_of(std::initializer_list<double> times) {
  std::vector<recorded_result> results;
  for (double time : times) {
    recorded_result result;
    if (std::isnan(time)) result.status = evaluation_status::launch_error;
    result.time = std::isnan(time) ? 0.0 : time;
    results.push_back(result);
  }
  return results;
}

// Enumerates every subset: the definition the closed form must equal.
double brute_force_expected_best(const std::vector<recorded_result>& results, std::size_t count) {
  const std::size_t n = results.size();
  double sum = 0.0;
  double subsets = 0.0;
  for (unsigned mask = 0; mask < (1u << n); ++mask) {
    if (static_cast<std::size_t>(__builtin_popcount(mask)) != count) continue;
    double best = INFINITY;
    for (std::size_t i = 0; i < n; ++i)
      if ((mask >> i & 1u) && results[i].status == evaluation_status::ok) best = std::min(best, results[i].time);
    if (std::isinf(best)) continue;  // conditioned on at least one ok
    sum += best;
    subsets += 1.0;
  }
  return sum / subsets;
}

TEST(ExpectedRandomBest, EqualsEnumerationOfEverySubset) {
  const auto results = results_of({5.0, 3.0, NAN, 9.0, 1.5, 7.0, NAN, 4.0, 2.0, 8.0, 6.5});
  for (std::size_t count = 1; count <= results.size(); ++count)
    EXPECT_NEAR(*tunekit::expected_random_best(results, count), brute_force_expected_best(results, count), 1e-9)
        << count;
  EXPECT_FALSE(tunekit::expected_random_best(results_of({NAN, NAN}), 1).has_value());
  EXPECT_DOUBLE_EQ(*tunekit::expected_random_best(results, results.size()), 1.5);
}

tunekit::recorded_space small_recorded() {
  tunekit::space_definition definition;
  definition.parameters = {{"x", {std::int64_t{1}, std::int64_t{2}, std::int64_t{3}, std::int64_t{4}}},
                           {"y", {std::int64_t{1}, std::int64_t{2}, std::int64_t{3}}}};
  tunekit::recorded_space recorded{"gpu", "k", "time", tunekit::search_space::enumerate(definition), {}};
  for (std::size_t i = 0; i < recorded.space.size(); ++i) {
    recorded_result result;
    result.time = 10.0 + static_cast<double>((i * 7) % 12);
    result.compile_time = 100.0;
    result.benchmark_time = 5.0;
    if (i == 3) result.status = evaluation_status::compile_error;
    recorded.results.push_back(result);
  }
  return recorded;
}

TEST(Tune, TimeBudgetChargesRecordedCostAndStopsAfterCrossingIt) {
  const auto recorded = small_recorded();
  auto search = tunekit::make_strategy("brute_force");
  budget limits;
  limits.time = 300.0;  // each evaluation costs 105 ms: the third crosses it
  const auto run = tunekit::tune(*search, recorded.space, tunekit::replay_evaluator(recorded), limits, 0);
  EXPECT_EQ(run.evaluations, 3u);
  EXPECT_DOUBLE_EQ(run.cost, 315.0);
}

TEST(Tune, TraceRecordsEachImprovementAndTheBestIsTheRecordedOne) {
  const auto recorded = small_recorded();
  auto search = tunekit::make_strategy("random");
  const auto run = tunekit::tune(*search, recorded.space, tunekit::replay_evaluator(recorded), budget{}, 7);
  ASSERT_EQ(run.evaluations, recorded.space.size());
  ASSERT_TRUE(run.best_index.has_value());
  EXPECT_EQ(run.best, *tunekit::recorded_optimum(recorded));
  EXPECT_EQ(recorded.results[*run.best_index].time, run.best);
  ASSERT_FALSE(run.trace.empty());
  EXPECT_EQ(run.trace.back().best, run.best);
  for (std::size_t i = 1; i < run.trace.size(); ++i) {
    EXPECT_GT(run.trace[i].evaluation, run.trace[i - 1].evaluation);
    EXPECT_LT(run.trace[i].best, run.trace[i - 1].best);
  }
}

TEST(ScoreReplay, ExhaustiveRunsScoreOneAndRandomScoresNearZeroOnAverage) {
  const auto recorded = small_recorded();
  auto search = tunekit::make_strategy("random");
  std::vector<tunekit::tuning_run> full;
  std::vector<tunekit::tuning_run> partial;
  budget four;
  four.evaluations = 4;
  for (std::uint64_t seed = 0; seed < 4000; ++seed) {
    if (seed < 5) full.push_back(tunekit::tune(*search, recorded.space, tunekit::replay_evaluator(recorded), budget{}, seed));
    partial.push_back(tunekit::tune(*search, recorded.space, tunekit::replay_evaluator(recorded), four, seed));
  }
  const auto exhaustive = tunekit::score_replay(recorded, full, recorded.space.size());
  EXPECT_EQ(exhaustive.median_ratio, 1.0);
  EXPECT_EQ(exhaustive.within_5, 1.0);
  EXPECT_EQ(exhaustive.normalised_median, 1.0);
  const auto sampled = tunekit::score_replay(recorded, partial, 4);
  EXPECT_NEAR(sampled.normalised_mean, 0.0, 0.05);  // random's expected score is zero by construction
  EXPECT_GT(sampled.median_ratio, 1.0);
}

TEST(Replay, EveryRecordedSpaceReplaysAndRandomMatchesItsExpectation) {
  if (!std::filesystem::exists(recorded_directory)) GTEST_SKIP() << "no recorded spaces at " << recorded_directory;
  for (const char* name : {"convolution", "gemm", "pnpoly"}) {
    const auto recorded =
        tunekit::load_kernel_tuner_cache(recorded_directory / (std::string(name) + "_RTX_3090.json.gz"));
    auto search = tunekit::make_strategy("random");
    const budget five = budget::parse("5%");
    std::vector<tunekit::tuning_run> runs;
    for (std::uint64_t seed = 0; seed < 200; ++seed)
      runs.push_back(tunekit::tune(*search, recorded.space, tunekit::replay_evaluator(recorded), five, seed));
    for (const auto& run : runs) ASSERT_EQ(run.evaluations, five.evaluation_limit(recorded.space.size()));
    const auto score = tunekit::score_replay(recorded, runs, five.evaluation_limit(recorded.space.size()));
    EXPECT_NEAR(score.normalised_mean, 0.0, 0.25) << name;
  }
}

}  // namespace
