// Stopping criteria on synthetic sample streams: each stops, stops later
// with more noise, honours its minimums and its timeout; and the defaults
// give repeatable medians for short and long kernels.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <memory>
#include <vector>

#include "synthetic.hpp"
#include "tunekit/error.hpp"
#include "tunekit/measure/statistics.hpp"
#include "tunekit/measure/stopping.hpp"

namespace {

namespace measure = tunekit::measure;
using tunekit::testing::lognormal_timer;
using tunekit::testing::simulate_measurement;

constexpr double infinite = std::numeric_limits<double>::infinity();

// ---------------------------------------------------------------- shared contract

std::vector<std::unique_ptr<measure::stopping_criterion>> every_criterion() {
  std::vector<std::unique_ptr<measure::stopping_criterion>> all;
  all.push_back(std::make_unique<measure::fixed_count>(25));
  all.push_back(std::make_unique<measure::relative_noise>());
  measure::noise_options stddev;
  stddev.measure = measure::noise_measure::relative_stddev;
  all.push_back(std::make_unique<measure::relative_noise>(stddev));
  all.push_back(std::make_unique<measure::stability>());
  return all;
}

TEST(StoppingCriterion, RejectsBadSamplesAndTime) {
  for (auto& criterion : every_criterion()) {
    SCOPED_TRACE(std::string(criterion->name()));
    EXPECT_THROW(criterion->add(std::nan(""), 0.1), tunekit::invalid_argument);
    EXPECT_THROW(criterion->add(-1.0, 0.1), tunekit::invalid_argument);
    EXPECT_THROW(criterion->add(infinite, 0.1), tunekit::invalid_argument);
    EXPECT_THROW(criterion->add(1.0, std::nan("")), tunekit::invalid_argument);
    criterion->add(1.0, 0.2);
    EXPECT_THROW(criterion->add(1.0, 0.1), tunekit::invalid_argument) << "time went backwards";
    EXPECT_EQ(criterion->count(), 1u);
  }
}

TEST(StoppingCriterion, DecisionLatchesAndResetForgets) {
  for (auto& criterion : every_criterion()) {
    SCOPED_TRACE(std::string(criterion->name()));
    simulate_measurement(*criterion, 100.0, 0.001, 4);
    ASSERT_TRUE(criterion->done());
    const std::string reason = criterion->reason();
    const std::size_t count = criterion->count();
    EXPECT_NE(reason, "timeout");
    criterion->add(1e6, criterion->elapsed_seconds() + 100.0);  // far past any timeout
    EXPECT_EQ(criterion->reason(), reason);
    EXPECT_EQ(criterion->count(), count + 1);
    criterion->reset();
    EXPECT_FALSE(criterion->done());
    EXPECT_EQ(criterion->count(), 0u);
    EXPECT_TRUE(criterion->reason().empty());
    simulate_measurement(*criterion, 100.0, 0.001, 4);  // the same stream gives the same decision
    EXPECT_EQ(criterion->reason(), reason);
    EXPECT_EQ(criterion->count(), count);
  }
}

// ---------------------------------------------------------------- fixed count

TEST(FixedCount, StopsAtCountOrTimeout) {
  measure::fixed_count criterion(7);
  for (int i = 1; i <= 6; ++i) {
    criterion.add(1.0, i * 100.0);
    EXPECT_FALSE(criterion.done());
  }
  criterion.add(1.0, 700.0);
  EXPECT_EQ(criterion.reason(), "count");
  measure::fixed_count timed(100, 1.0);
  simulate_measurement(timed, 100'000.0, 0.01, 1);  // 100 ms per sample
  EXPECT_EQ(timed.reason(), "timeout");
  EXPECT_EQ(timed.count(), 10u);
  EXPECT_THROW(measure::fixed_count(0), tunekit::invalid_argument);
  EXPECT_THROW(measure::fixed_count(5, 0.0), tunekit::invalid_argument);
}

// ---------------------------------------------------------------- relative noise and stability

// Criteria free of the time minimum and timeout, so the sample count shows
// how noise alone drives them.
std::unique_ptr<measure::stopping_criterion> untimed(const std::string& which) {
  if (which == "noise") {
    measure::noise_options options;
    options.min_seconds = 0.0;
    options.timeout_seconds = 1e9;
    return std::make_unique<measure::relative_noise>(options);
  }
  measure::stability_options options;
  options.min_seconds = 0.0;
  options.timeout_seconds = 1e9;
  return std::make_unique<measure::stability>(options);
}

class NoiseDriven : public ::testing::TestWithParam<std::string> {};

TEST_P(NoiseDriven, StopsLaterWithMoreNoise) {
  const std::string expected_reason = GetParam() == "noise" ? "noise" : "stable";
  std::vector<double> mean_counts;
  for (double cv : {0.01, 0.03, 0.10}) {
    double total = 0;
    for (std::uint64_t seed = 1; seed <= 5; ++seed) {
      auto criterion = untimed(GetParam());
      simulate_measurement(*criterion, 1000.0, cv, seed);
      EXPECT_EQ(criterion->reason(), expected_reason) << "cv " << cv;
      total += static_cast<double>(criterion->count());
    }
    mean_counts.push_back(total / 5);
  }
  std::printf("[ counts   ] %s, no time limits: mean samples to stop at cv 1%%/3%%/10%%: %.1f / %.1f / %.1f\n",
              GetParam().c_str(), mean_counts[0], mean_counts[1], mean_counts[2]);
  // The median's uncertainty falls as 1/sqrt(n): 3x the noise needs ~9x the samples.
  EXPECT_LT(mean_counts[0] * 3, mean_counts[1]) << mean_counts[0] << " " << mean_counts[1];
  EXPECT_LT(mean_counts[1] * 3, mean_counts[2]) << mean_counts[1] << " " << mean_counts[2];
}

TEST_P(NoiseDriven, HonoursMinimumSamplesAndTime) {
  // Noise-free samples satisfy any precision at once: only the minimums hold them.
  auto criterion = untimed(GetParam());
  simulate_measurement(*criterion, 1000.0, 0.0, 1);
  EXPECT_EQ(criterion->count(), GetParam() == "noise" ? 10u : 20u) << "min_samples";
  measure::noise_options noise;
  noise.min_seconds = 0.25;
  measure::stability_options stable;
  stable.min_seconds = 0.25;
  std::unique_ptr<measure::stopping_criterion> timed;
  if (GetParam() == "noise")
    timed = std::make_unique<measure::relative_noise>(noise);
  else
    timed = std::make_unique<measure::stability>(stable);
  simulate_measurement(*timed, 1000.0, 0.0, 1, 0.0);  // 1 ms per sample, no overhead
  EXPECT_GE(timed->elapsed_seconds(), 0.25);
  EXPECT_LE(timed->count(), 250u * 106 / 100) << "stops within a checkpoint of the minimum";
}

TEST_P(NoiseDriven, GivesUpAtTheTimeout) {
  std::unique_ptr<measure::stopping_criterion> criterion;
  if (GetParam() == "noise") {
    measure::noise_options options;
    options.max_noise = 1e-5;
    options.timeout_seconds = 2.0;
    criterion = std::make_unique<measure::relative_noise>(options);
  } else {
    measure::stability_options options;
    options.max_noise = 1e-5;
    options.timeout_seconds = 2.0;
    criterion = std::make_unique<measure::stability>(options);
  }
  simulate_measurement(*criterion, 10'000.0, 0.10, 3);
  EXPECT_EQ(criterion->reason(), "timeout");
  EXPECT_GE(criterion->elapsed_seconds(), 2.0);
  EXPECT_LT(criterion->elapsed_seconds(), 2.0 + 0.05) << "stops at the first sample past the timeout";

  // The timeout wins even before the minimum sample count: a 3 s kernel.
  std::unique_ptr<measure::stopping_criterion> bounded;
  if (GetParam() == "noise")
    bounded = std::make_unique<measure::relative_noise>();
  else
    bounded = std::make_unique<measure::stability>();
  simulate_measurement(*bounded, 3e6, 0.01, 3);
  EXPECT_EQ(bounded->reason(), "timeout");
  EXPECT_EQ(bounded->count(), 5u);
}

INSTANTIATE_TEST_SUITE_P(Criteria, NoiseDriven, ::testing::Values("noise", "stability"));

TEST(RelativeNoise, RelativeStddevStopsOnlyQuietKernels) {
  measure::noise_options options;
  options.measure = measure::noise_measure::relative_stddev;
  options.timeout_seconds = 3.0;
  measure::relative_noise quiet(options);
  simulate_measurement(quiet, 1000.0, 0.002, 1);
  EXPECT_EQ(quiet.reason(), "noise");
  EXPECT_LE(quiet.noise(), 0.005);
  measure::relative_noise noisy(options);
  simulate_measurement(noisy, 1000.0, 0.01, 1);
  EXPECT_EQ(noisy.reason(), "timeout") << "1% noise never drops under 0.5%";
  EXPECT_NEAR(noisy.noise(), 0.01, 0.002);
}

TEST(RelativeNoise, BadOptionsThrow) {
  measure::noise_options options;
  options.max_noise = 0;
  EXPECT_THROW(measure::relative_noise{options}, tunekit::invalid_argument);
  options = {};
  options.timeout_seconds = 0;
  EXPECT_THROW(measure::relative_noise{options}, tunekit::invalid_argument);
  options = {};
  options.confidence = 1.5;
  EXPECT_THROW(measure::relative_noise{options}, tunekit::invalid_argument);
  measure::stability_options stable;
  stable.blocks = 1;
  EXPECT_THROW(measure::stability{stable}, tunekit::invalid_argument);
  stable = {};
  stable.confidence = 0;
  EXPECT_THROW(measure::stability{stable}, tunekit::invalid_argument);
}

// A kernel slowing down steadily (a GPU heating up): the block medians keep
// moving apart, and the stability criterion refuses to call that stable,
// while the same noise without drift is stable within a second.
TEST(Stability, DriftIsNeverStable) {
  for (double drift : {0.0, 1e-4}) {  // +1% per 100 samples
    measure::stability_options options;
    options.timeout_seconds = 5.0;
    measure::stability criterion(options);
    lognormal_timer timer(1000.0, 0.01, 5);
    double elapsed_us = 0;
    for (std::size_t i = 0; !criterion.done(); ++i) {
      const double sample = timer() * (1.0 + drift * static_cast<double>(i));
      elapsed_us += sample;
      criterion.add(sample, elapsed_us * 1e-6);
    }
    if (drift == 0.0) {
      EXPECT_EQ(criterion.reason(), "stable");
      EXPECT_LT(criterion.elapsed_seconds(), 1.0);
    } else {
      EXPECT_EQ(criterion.reason(), "timeout");
      EXPECT_GT(criterion.noise(), 10 * options.max_noise);
    }
  }
}

// ---------------------------------------------------------------- the defaults

struct repeated {
  std::vector<double> medians;
  std::vector<std::size_t> counts;
  std::vector<double> seconds;
  std::vector<std::string> reasons;
};

template <typename Criterion>
repeated measure_five_times(double kernel_us, double cv) {
  repeated result;
  for (std::uint64_t run = 0; run < 5; ++run) {
    Criterion criterion;
    simulate_measurement(criterion, kernel_us, cv, 7000 + run);
    result.medians.push_back(measure::percentile(criterion.samples(), 50));
    result.counts.push_back(criterion.count());
    result.seconds.push_back(criterion.elapsed_seconds());
    result.reasons.push_back(criterion.reason());
  }
  return result;
}

double relative_spread(const std::vector<double>& values) {
  const auto [low, high] = std::minmax_element(values.begin(), values.end());
  return *high / *low - 1.0;
}

template <typename Criterion>
void expect_repeatable_defaults(const char* stop_reason) {
  // 10 us kernel, 5 us launch overhead: the 0.5 s minimum dominates.
  const auto short_kernel = measure_five_times<Criterion>(10.0, 0.01);
  EXPECT_LT(relative_spread(short_kernel.medians), 0.01);
  for (std::size_t run = 0; run < 5; ++run) {
    EXPECT_EQ(short_kernel.reasons[run], stop_reason);
    EXPECT_GE(short_kernel.seconds[run], 0.5);
    EXPECT_LT(short_kernel.seconds[run], 0.6) << "no more than the minimum and one checkpoint";
  }
  // 100 ms kernel: the noise decides; a few seconds, tens of samples.
  const auto long_kernel = measure_five_times<Criterion>(100'000.0, 0.01);
  EXPECT_LT(relative_spread(long_kernel.medians), 0.01);
  for (std::size_t run = 0; run < 5; ++run) {
    EXPECT_EQ(long_kernel.reasons[run], stop_reason);
    EXPECT_GE(long_kernel.counts[run], Criterion().options().min_samples);
    EXPECT_LE(long_kernel.counts[run], 60u);
  }
  // A quiet 100 ms kernel (0.3% noise) stops at or near the 10-sample minimum.
  std::printf("[ counts   ] %s defaults, 1%% noise: 10 us kernel %zu samples in %.3f s; 100 ms kernel %zu..%zu samples\n",
              stop_reason, short_kernel.counts[0], short_kernel.seconds[0],
              *std::min_element(long_kernel.counts.begin(), long_kernel.counts.end()),
              *std::max_element(long_kernel.counts.begin(), long_kernel.counts.end()));
  std::printf("[ counts   ] medians of five repeats: 10 us spread %.3f%%, 100 ms spread %.3f%%\n",
              100 * relative_spread(short_kernel.medians), 100 * relative_spread(long_kernel.medians));
  const auto quiet = measure_five_times<Criterion>(100'000.0, 0.003);
  for (std::size_t run = 0; run < 5; ++run) EXPECT_LE(quiet.counts[run], 20u);
}

// The same promise over many groups of five, not one lucky seed: the
// fraction of groups whose five medians agree within 1%.
template <typename Criterion>
double fraction_repeatable(double kernel_us, int groups) {
  int within = 0;
  for (int group = 0; group < groups; ++group) {
    std::vector<double> medians;
    for (int run = 0; run < 5; ++run) {
      Criterion criterion;
      simulate_measurement(criterion, kernel_us, 0.01, 100'000 + static_cast<std::uint64_t>(group * 5 + run));
      medians.push_back(measure::percentile(criterion.samples(), 50));
    }
    within += relative_spread(medians) < 0.01;
  }
  return within / static_cast<double>(groups);
}

template <typename Criterion>
void expect_mostly_repeatable(const char* label) {
  const double long_kernel = fraction_repeatable<Criterion>(100'000.0, 300);
  const double short_kernel = fraction_repeatable<Criterion>(10.0, 10);
  std::printf("[ counts   ] %s defaults, 1%% noise: five medians within 1%% in %.1f%% of groups (100 ms), "
              "%.1f%% (10 us)\n",
              label, 100 * long_kernel, 100 * short_kernel);
  EXPECT_GE(long_kernel, 0.92);
  EXPECT_EQ(short_kernel, 1.0);
}

TEST(Defaults, RelativeNoiseIsRepeatableOverManySeeds) { expect_mostly_repeatable<measure::relative_noise>("noise"); }

TEST(Defaults, StabilityIsRepeatableOverManySeeds) { expect_mostly_repeatable<measure::stability>("stable"); }

TEST(Defaults, RelativeNoiseMediansRepeatWithinOnePercent) {
  expect_repeatable_defaults<measure::relative_noise>("noise");
}

TEST(Defaults, StabilityMediansRepeatWithinOnePercent) { expect_repeatable_defaults<measure::stability>("stable"); }

}  // namespace
