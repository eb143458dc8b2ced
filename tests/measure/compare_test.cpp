// compare: verdicts, matching, the statistical acceptance test (power and
// false alarms on synthetic noise), and `tunekit compare` on the command line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "synthetic.hpp"
#include "tunekit/error.hpp"
#include "tunekit/measure/results.hpp"
#include "tunekit/measure/stopping.hpp"

namespace {

namespace measure = tunekit::measure;
using nlohmann::json;
using tunekit::testing::expect_bad_input;
using tunekit::testing::lognormal_timer;
using tunekit::testing::run_cli;
using tunekit::testing::simulate_measurement;

std::vector<double> lognormal(double median, double cv, std::size_t count, std::uint64_t seed) {
  return lognormal_timer(median, cv, seed).take(count);
}

// ---------------------------------------------------------------- verdicts

TEST(CompareSamples, ClearCasesGetClearVerdicts) {
  const auto base = lognormal(100.0, 0.01, 30, 1);
  EXPECT_EQ(measure::compare_samples(base, lognormal(100.0, 0.01, 30, 2)).outcome, measure::verdict::same);
  const auto slower = measure::compare_samples(base, lognormal(105.0, 0.01, 30, 3));
  EXPECT_EQ(slower.outcome, measure::verdict::slower);
  EXPECT_NEAR(slower.change, 0.05, 0.01);
  EXPECT_LT(slower.p_slower, 1e-6);
  EXPECT_LT(slower.p_value, 1e-6);
  const auto faster = measure::compare_samples(base, lognormal(95.0, 0.01, 30, 4));
  EXPECT_EQ(faster.outcome, measure::verdict::faster);
  EXPECT_NEAR(faster.change, -0.05, 0.01);
  // A 1% change is below the 2% threshold: SAME, though the test sees it.
  const auto small = measure::compare_samples(base, lognormal(101.0, 0.002, 30, 5));
  EXPECT_EQ(small.outcome, measure::verdict::same);
}

TEST(CompareSamples, TooLittleEvidenceIsUnsure) {
  // 10% change, three samples a side: no rank test can reject at 1% with 3 + 3.
  const std::vector<double> base = {100, 101, 102};
  const std::vector<double> current = {110, 111, 112};
  const auto few = measure::compare_samples(base, current);
  EXPECT_EQ(few.outcome, measure::verdict::unsure);
  EXPECT_NEAR(few.p_slower, 0.05, 1e-12);
  // 20% noise, 10 samples: a 1% change of medians cannot vouch for "same".
  const auto noisy = measure::compare_samples(lognormal(100.0, 0.2, 10, 6), lognormal(100.0, 0.2, 10, 7));
  EXPECT_EQ(noisy.outcome, measure::verdict::unsure) << noisy.change;
}

TEST(CompareSamples, ThresholdAndLevelsAreChecked) {
  const std::vector<double> samples = {1, 2, 3};
  for (double threshold : {0.0, 1.0, -0.1, 2.0, std::nan("")}) {
    measure::compare_options options;
    options.threshold = threshold;
    EXPECT_THROW((void)measure::compare_samples(samples, samples, options), tunekit::invalid_argument) << threshold;
  }
  measure::compare_options options;
  options.alpha = 0.0;
  EXPECT_THROW((void)measure::compare_samples(samples, samples, options), tunekit::invalid_argument);
}

// ---------------------------------------------------------------- matching files

measure::measurement_result result(const std::string& name, std::vector<std::pair<std::string, std::string>> params,
                                   std::vector<double> samples) {
  measure::measurement_result each;
  each.name = name;
  each.params = std::move(params);
  each.samples_us = std::move(samples);
  measure::summarize_result(each);
  return each;
}

TEST(Compare, MatchesByNameAndCanonicalParamsAndListsTheRest) {
  measure::result_file base;
  base.results = {result("gemm", {{"block", "128"}, {"unroll", "2"}}, lognormal(100, 0.01, 30, 1)),
                  result("gemm", {{"block", "256"}, {"unroll", "2"}}, lognormal(90, 0.01, 30, 2)),
                  result("copy", {}, lognormal(10, 0.01, 30, 3)),
                  result("old", {}, lognormal(10, 0.01, 30, 4))};
  measure::result_file current;
  current.results = {result("copy", {}, lognormal(9, 0.01, 30, 5)),
                     result("gemm", {{"unroll", "2"}, {"block", "128.0"}}, lognormal(110, 0.01, 30, 6)),
                     result("gemm", {{"block", "256"}, {"unroll", "2"}}, lognormal(90, 0.01, 30, 7)),
                     result("new", {{"x", "\"a\""}}, lognormal(10, 0.01, 30, 8))};
  const auto diff = measure::compare(base, current);
  ASSERT_EQ(diff.pairs.size(), 3u);
  // Sorted by change, most slowed first.
  EXPECT_EQ(diff.pairs[0].name, "gemm");
  EXPECT_EQ(diff.pairs[0].params, R"({"block":128,"unroll":2})");
  EXPECT_EQ(diff.pairs[0].outcome, measure::verdict::slower);
  EXPECT_EQ(diff.pairs[1].params, R"({"block":256,"unroll":2})");
  EXPECT_EQ(diff.pairs[1].outcome, measure::verdict::same);
  EXPECT_EQ(diff.pairs[2].name, "copy");
  EXPECT_EQ(diff.pairs[2].outcome, measure::verdict::faster);
  ASSERT_EQ(diff.only_in_base.size(), 1u);
  EXPECT_EQ(diff.only_in_base[0].name, "old");
  ASSERT_EQ(diff.only_in_new.size(), 1u);
  EXPECT_EQ(diff.only_in_new[0].name, "new");
  EXPECT_EQ(diff.only_in_new[0].params, R"({"x":"a"})");
}

TEST(Compare, RepeatedResultIsBadInput) {
  measure::result_file file;
  file.results = {result("k", {{"a", "1"}}, {1, 2}), result("k", {{"a", "1.0"}}, {1, 2})};
  EXPECT_THROW((void)measure::compare(file, file), tunekit::invalid_argument);
}

// ---------------------------------------------------------------- acceptance

struct rates {
  double detected = 0;     ///< SLOWER for a 3% slowdown
  double false_slower = 0; ///< SLOWER on identical distributions
  double same = 0;         ///< SAME on identical distributions
  double unsure = 0;       ///< UNSURE on identical distributions
};

// 1,000 trials per noise level and scenario, each trial with fresh samples
// from its own seed. `samples_for` gives a trial's sample set.
template <typename Sampler>
rates trial_rates(Sampler&& samples_for, int trials = 1000) {
  rates result;
  for (int trial = 0; trial < trials; ++trial) {
    const auto seed = static_cast<std::uint64_t>(trial) * 4;
    const auto base = samples_for(100.0, seed);
    const auto same = measure::compare_samples(base, samples_for(100.0, seed + 1));
    const auto slowed = measure::compare_samples(samples_for(100.0, seed + 2), samples_for(103.0, seed + 3));
    result.detected += slowed.outcome == measure::verdict::slower;
    result.false_slower += same.outcome == measure::verdict::slower;
    result.same += same.outcome == measure::verdict::same;
    result.unsure += same.outcome == measure::verdict::unsure;
  }
  for (double* rate : {&result.detected, &result.false_slower, &result.same, &result.unsure}) *rate /= trials;
  return result;
}

void report(const char* label, double cv, const rates& measured) {
  std::printf("[ rates    ] %-28s cv %4.1f%%: 3%% slowdown detected %5.1f%%, false SLOWER %4.1f%%, "
              "identical judged SAME %5.1f%% / UNSURE %5.1f%%\n",
              label, 100 * cv, 100 * measured.detected, 100 * measured.false_slower, 100 * measured.same,
              100 * measured.unsure);
}

// The sample count: 30 per side, about what the default stopping criterion
// (relative_noise) collects for a long (~100 ms) kernel at 1% noise (10-60,
// ~30 on average). Shorter kernels give thousands, so 30 is the hard case;
// 50 is shown beside it.
TEST(CompareAcceptance, ThirtySamplesDetectThreePercentAndRarelyCryWolf) {
  for (std::size_t count : {30u, 50u}) {
    for (double cv : {0.01, 0.03, 0.10}) {
      const auto measured = trial_rates([cv, count](double median, std::uint64_t seed) {
        return lognormal(median, cv, count, 900'000 + seed);
      });
      report(count == 30 ? "30 samples a side" : "50 samples a side", cv, measured);
      if (cv == 0.01) {
        EXPECT_GE(measured.detected, 0.95);
      }
      EXPECT_LT(measured.false_slower, 0.05) << "cv " << cv;
    }
  }
}

// The same, with sample sets from the default criterion itself on a 100 ms
// kernel (noisier kernels run longer, up to the 15 s timeout).
TEST(CompareAcceptance, SamplesFromTheDefaultCriterion) {
  for (double cv : {0.01, 0.03, 0.10}) {
    std::size_t smallest = SIZE_MAX, largest = 0;
    const auto measured = trial_rates(
        [&](double median, std::uint64_t seed) {
          measure::relative_noise criterion;
          simulate_measurement(criterion, median * 1000.0, cv, 700'000 + seed);
          smallest = std::min(smallest, criterion.count());
          largest = std::max(largest, criterion.count());
          std::vector<double> samples(criterion.samples().begin(), criterion.samples().end());
          return samples;
        },
        300);
    report("default criterion, 100 ms", cv, measured);
    std::printf("[ rates    ]   samples per measurement: %zu..%zu\n", smallest, largest);
    if (cv == 0.01) {
      EXPECT_GE(measured.detected, 0.95);
    }
    EXPECT_LT(measured.false_slower, 0.05) << "cv " << cv;
  }
}

// ---------------------------------------------------------------- the command line

class CompareCli : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("tunekit-compare-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(directory_);
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  std::string write(const std::string& name, const std::string& text) const {
    const auto path = (directory_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  std::string write(const std::string& name, const measure::result_file& file) const {
    const auto path = (directory_ / name).string();
    measure::save_result_file(file, path);
    return path;
  }

  // base: a, b, gone; new: a (unchanged), b (slowed by 6% when `slow`), fresh.
  std::pair<std::string, std::string> files(bool slow) const {
    measure::result_file base;
    base.device = R"({"name":"test"})";
    base.results = {result("a", {{"n", "1"}}, lognormal(50, 0.01, 30, 1)),
                    result("b", {{"n", "2"}}, lognormal(80, 0.01, 30, 2)),
                    result("gone", {}, lognormal(5, 0.01, 30, 3))};
    measure::result_file current;
    current.results = {result("a", {{"n", "1"}}, lognormal(50, 0.01, 30, 4)),
                       result("b", {{"n", "2"}}, lognormal(slow ? 84.8 : 80, 0.01, 30, 5)),
                       result("fresh", {}, lognormal(5, 0.01, 30, 6))};
    return {write("base.json", base), write(slow ? "slow.json" : "same.json", current)};
  }

  std::filesystem::path directory_;
};

TEST_F(CompareCli, NoSlowdownExitsZeroAndListsUnmatched) {
  const auto [base, current] = files(false);
  const auto outcome = run_cli({"compare", base, current});
  EXPECT_EQ(outcome.code, 0) << outcome.err;
  EXPECT_TRUE(outcome.err.empty());
  EXPECT_NE(outcome.out.find("verdict"), std::string::npos);
  EXPECT_NE(outcome.out.find("SAME"), std::string::npos) << outcome.out;
  EXPECT_EQ(outcome.out.find("SLOWER"), std::string::npos) << outcome.out;
  EXPECT_NE(outcome.out.find("only in base: gone {}"), std::string::npos) << outcome.out;
  EXPECT_NE(outcome.out.find("only in new: fresh {}"), std::string::npos) << outcome.out;
  EXPECT_NE(outcome.out.find("2 compared"), std::string::npos) << outcome.out;
}

TEST_F(CompareCli, SlowdownExitsOneAndComesFirst) {
  const auto [base, current] = files(true);
  const auto outcome = run_cli({"compare", base, current});
  EXPECT_EQ(outcome.code, 1) << outcome.out << outcome.err;
  EXPECT_TRUE(outcome.err.empty());
  std::istringstream lines(outcome.out);
  std::string header, first;
  std::getline(lines, header);
  std::getline(lines, first);
  EXPECT_EQ(first.rfind("b ", 0), 0u) << outcome.out;
  EXPECT_NE(first.find("SLOWER"), std::string::npos) << first;
  EXPECT_NE(first.find("  +"), std::string::npos) << first;
  // A threshold above the change makes it no longer count.
  EXPECT_EQ(run_cli({"compare", base, current, "--threshold", "0.1"}).code, 0);
}

TEST_F(CompareCli, JsonHasEveryPairAndTheUnmatched) {
  const auto [base, current] = files(true);
  const auto outcome = run_cli({"compare", base, current, "--json"});
  EXPECT_EQ(outcome.code, 1);
  const json document = json::parse(outcome.out);
  EXPECT_EQ(document.at("base"), base);
  EXPECT_EQ(document.at("new"), current);
  EXPECT_EQ(document.at("threshold"), 0.02);
  EXPECT_EQ(document.at("alpha"), 0.01);
  ASSERT_EQ(document.at("pairs").size(), 2u);
  const json& first = document.at("pairs")[0];
  EXPECT_EQ(first.at("name"), "b");
  EXPECT_EQ(first.at("params"), json({{"n", 2}}));
  EXPECT_EQ(first.at("verdict"), "SLOWER");
  EXPECT_GT(first.at("change").get<double>(), 0.04);
  EXPECT_LT(first.at("p_value").get<double>(), 0.01);
  for (const char* key : {"count", "median_us", "mean_us", "stddev_us", "cv", "min_us", "max_us", "p99_us"}) {
    EXPECT_TRUE(first.at("base").at(key).is_number()) << key;
    EXPECT_TRUE(first.at("new").at(key).is_number()) << key;
  }
  EXPECT_EQ(first.at("base").at("count"), 30);
  EXPECT_EQ(document.at("pairs")[1].at("verdict"), "SAME");
  EXPECT_EQ(document.at("only_in_base"), json::parse(R"([{"name":"gone","params":{}}])"));
  EXPECT_EQ(document.at("only_in_new"), json::parse(R"([{"name":"fresh","params":{}}])"));
  EXPECT_EQ(document.at("verdicts"), json::parse(R"({"SLOWER":1,"FASTER":0,"SAME":1,"UNSURE":0})"));
}

TEST_F(CompareCli, BadInputIsOneLineAndExitTwo) {
  const auto [base, current] = files(false);
  expect_bad_input({"compare", base});
  expect_bad_input({"compare", base, (directory_ / "missing.json").string()});
  expect_bad_input({"compare", write("text.json", "hello"), current});
  expect_bad_input({"compare", base, write("shape.json", R"({"results":{"a":1}})")});
  expect_bad_input({"compare", base, write("array.json", "[]")});
  expect_bad_input(
      {"compare", base, write("strings.json", R"({"results":[{"name":"a","params":{"n":1},"samples_us":["1"]}]})")});
  expect_bad_input(
      {"compare", base, write("empty.json", R"({"results":[{"name":"a","params":{"n":1},"samples_us":[]}]})")});
  expect_bad_input({"compare", base, write("nothing.json", R"({"results":[]})")});
  expect_bad_input(
      {"compare", base, write("other.json", R"({"results":[{"name":"z","params":{},"samples_us":[1,2,3]}]})")});
  for (const char* threshold : {"0", "1", "-0.5", "1.5", "abc", "nan"})
    expect_bad_input({"compare", base, current, "--threshold", threshold});
  expect_bad_input({"compare", base, current, "--bogus"});
  const auto error = run_cli({"compare", base, write("samples.json", R"({"results":[{"name":"a","params":{},
                                                          "samples_us":[1,"x"]}]})")});
  EXPECT_NE(error.err.find("samples.json': results[0].samples_us[1]: expected a number, got string"),
            std::string::npos)
      << error.err;
  const auto nothing = run_cli({"compare", base, (directory_ / "nothing.json").string()});
  EXPECT_NE(nothing.err.find("no result"), std::string::npos) << nothing.err;
}

TEST_F(CompareCli, HelpNamesTheOptions) {
  const auto outcome = run_cli({"compare", "--help"});
  EXPECT_EQ(outcome.code, 0);
  EXPECT_NE(outcome.out.find("--threshold"), std::string::npos);
  EXPECT_NE(outcome.out.find("--json"), std::string::npos);
}

}  // namespace
