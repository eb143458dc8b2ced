// Statistics of timing samples: hand-computed values, brute force, and the
// Mann-Whitney U test against full enumeration.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "synthetic.hpp"
#include "tunekit/error.hpp"
#include "tunekit/measure/statistics.hpp"

namespace {

namespace measure = tunekit::measure;
using tunekit::testing::lognormal_timer;

// ---------------------------------------------------------------- percentiles

TEST(Percentile, HandComputedLinearInterpolation) {
  const std::vector<double> one_to_ten = {7, 3, 10, 1, 5, 9, 2, 8, 4, 6};  // order does not matter
  EXPECT_DOUBLE_EQ(measure::percentile(one_to_ten, 0), 1.0);
  EXPECT_DOUBLE_EQ(measure::percentile(one_to_ten, 100), 10.0);
  EXPECT_DOUBLE_EQ(measure::percentile(one_to_ten, 50), 5.5);
  EXPECT_DOUBLE_EQ(measure::percentile(one_to_ten, 90), 9.1);    // rank 8.1
  EXPECT_DOUBLE_EQ(measure::percentile(one_to_ten, 1), 1.09);    // rank 0.09
  EXPECT_DOUBLE_EQ(measure::percentile(one_to_ten, 99), 9.91);   // rank 8.91
  EXPECT_DOUBLE_EQ(measure::percentile(one_to_ten, 99.9), 9.991);
  const std::vector<double> five = {15, 20, 35, 40, 50};
  EXPECT_DOUBLE_EQ(measure::percentile(five, 40), 29.0);  // rank 1.6: 20 + 0.6 * 15
  EXPECT_DOUBLE_EQ(measure::percentile(five, 25), 20.0);
  EXPECT_DOUBLE_EQ(measure::percentile(five, 75), 40.0);
  EXPECT_DOUBLE_EQ(measure::percentile(std::vector<double>{42.0}, 37.0), 42.0);
}

TEST(Percentile, BadInputThrows) {
  EXPECT_THROW((void)measure::percentile(std::vector<double>{}, 50), tunekit::invalid_argument);
  EXPECT_THROW((void)measure::percentile(std::vector<double>{1, 2}, -1), tunekit::invalid_argument);
  EXPECT_THROW((void)measure::percentile(std::vector<double>{1, 2}, 100.5), tunekit::invalid_argument);
  EXPECT_THROW((void)measure::percentile(std::vector<double>{1, 2}, std::nan("")), tunekit::invalid_argument);
  EXPECT_THROW((void)measure::percentile(std::vector<double>{1, std::nan("")}, 50), tunekit::invalid_argument);
  EXPECT_THROW((void)measure::percentile(std::vector<double>{1, INFINITY}, 50), tunekit::invalid_argument);
}

// Brute force: the linear interpolation percentile p of n distinct sorted
// values is the v at which the piecewise-linear rank function through
// (x[i], i) reaches (n - 1) q / 100.
TEST(Percentile, AgreesWithTheRankFunctionByBruteForce) {
  lognormal_timer timer(100.0, 0.2, 11);
  for (std::size_t n : {2u, 3u, 7u, 10u, 64u, 301u}) {
    auto samples = timer.take(n);
    auto sorted = samples;
    std::sort(sorted.begin(), sorted.end());
    for (double q = 0.0; q <= 100.0; q += 0.5) {
      const double value = measure::percentile(samples, q);
      // The rank of `value`, counted from scratch.
      std::size_t below = 0;
      for (double each : samples)
        if (each <= value) ++below;
      ASSERT_GE(below, 1u);
      const std::size_t i = below - 1;
      double rank = static_cast<double>(i);
      if (i + 1 < n) rank += (value - sorted[i]) / (sorted[i + 1] - sorted[i]);
      EXPECT_NEAR(rank, static_cast<double>(n - 1) * q / 100.0, 1e-9) << "n=" << n << " q=" << q;
    }
  }
}

// ---------------------------------------------------------------- summary

TEST(Summary, HandComputed) {
  const std::vector<double> five = {40, 15, 50, 35, 20};
  const auto stats = measure::summarize(five);
  EXPECT_EQ(stats.count, 5u);
  EXPECT_DOUBLE_EQ(stats.mean, 32.0);
  EXPECT_DOUBLE_EQ(stats.median, 35.0);
  EXPECT_DOUBLE_EQ(stats.p50, 35.0);
  EXPECT_NEAR(stats.stddev, std::sqrt(830.0 / 4.0), 1e-12);  // deviations -17 -12 3 8 18
  EXPECT_NEAR(stats.cv, std::sqrt(830.0 / 4.0) / 32.0, 1e-12);
  EXPECT_EQ(stats.min, 15.0);
  EXPECT_EQ(stats.max, 50.0);
  EXPECT_DOUBLE_EQ(stats.iqr, 20.0);
  EXPECT_DOUBLE_EQ(stats.p1, 15.2);   // rank 0.04
  EXPECT_DOUBLE_EQ(stats.p5, 16.0);   // rank 0.2
  EXPECT_DOUBLE_EQ(stats.p90, 46.0);  // rank 3.6
  EXPECT_DOUBLE_EQ(stats.p99, 49.6);
  EXPECT_DOUBLE_EQ(stats.p99_9, 49.96);
  ASSERT_TRUE(stats.median_interval.has_value());
  EXPECT_LE(stats.median_interval->low, stats.median);
  EXPECT_GE(stats.median_interval->high, stats.median);
  EXPECT_EQ(stats.median_interval->level, 0.95);
}

TEST(Summary, OneSampleAndConstantSamples) {
  const auto one = measure::summarize(std::vector<double>{3.5});
  EXPECT_EQ(one.count, 1u);
  EXPECT_EQ(one.median, 3.5);
  EXPECT_EQ(one.stddev, 0.0);
  EXPECT_EQ(one.cv, 0.0);
  EXPECT_EQ(one.iqr, 0.0);
  EXPECT_EQ(one.median_interval, (measure::interval{3.5, 3.5, 0.95}));
  const auto zeros = measure::summarize(std::vector<double>{0, 0, 0});
  EXPECT_EQ(zeros.cv, 0.0);  // a zero mean gives cv 0, not NaN
}

TEST(Summary, BadInputThrows) {
  EXPECT_THROW((void)measure::summarize(std::vector<double>{}), tunekit::invalid_argument);
  EXPECT_THROW((void)measure::summarize(std::vector<double>{1.0, std::nan("")}), tunekit::invalid_argument);
  measure::summary_options bad;
  bad.confidence = 1.0;
  EXPECT_THROW((void)measure::summarize(std::vector<double>{1.0}, bad), tunekit::invalid_argument);
}

TEST(Summary, MomentsAgreeWithLongDoubleBruteForce) {
  lognormal_timer timer(1e5, 0.03, 5);  // large mean, small spread: where naive formulas lose digits
  const auto samples = timer.take(5000);
  long double sum = 0;
  for (double each : samples) sum += each;
  const long double mean = sum / static_cast<long double>(samples.size());
  long double squares = 0;
  for (double each : samples) squares += (each - mean) * (each - mean);
  const double stddev = static_cast<double>(std::sqrt(squares / static_cast<long double>(samples.size() - 1)));
  measure::summary_options fast;
  fast.bootstrap_resamples = 0;
  const auto stats = measure::summarize(samples, fast);
  EXPECT_NEAR(stats.mean, static_cast<double>(mean), 1e-9 * static_cast<double>(mean));
  EXPECT_NEAR(stats.stddev, stddev, 1e-9 * stddev);
  EXPECT_EQ(stats.min, *std::min_element(samples.begin(), samples.end()));
  EXPECT_EQ(stats.max, *std::max_element(samples.begin(), samples.end()));
  EXPECT_FALSE(stats.median_interval.has_value());
}

// ---------------------------------------------------------------- intervals of the median

TEST(MedianInterval, BootstrapIsDeterministicAndCovers) {
  lognormal_timer timer(10.0, 0.05, 3);
  const auto samples = timer.take(40);
  const auto first = measure::bootstrap_median_interval(samples, 2000, 0.95, 17);
  const auto again = measure::bootstrap_median_interval(samples, 2000, 0.95, 17);
  const auto other_seed = measure::bootstrap_median_interval(samples, 2000, 0.95, 18);
  EXPECT_EQ(first, again);
  EXPECT_NE(first, other_seed);
  const double median = measure::percentile(samples, 50);
  EXPECT_LT(first.low, median);
  EXPECT_GT(first.high, median);
  const auto wider = measure::bootstrap_median_interval(samples, 2000, 0.99, 17);
  EXPECT_LE(wider.low, first.low);
  EXPECT_GE(wider.high, first.high);
  EXPECT_THROW((void)measure::bootstrap_median_interval(samples, 0, 0.95, 1), tunekit::invalid_argument);
  EXPECT_THROW((void)measure::bootstrap_median_interval(samples, 10, 0.0, 1), tunekit::invalid_argument);
}

// The true median of the simulated distribution is 10; a 95% interval built
// from 60 samples should contain it in about 95% of repetitions.
TEST(MedianInterval, CoverageIsNearNominal) {
  int bootstrap_hits = 0;
  int rank_hits = 0;
  const int trials = 400;
  for (int trial = 0; trial < trials; ++trial) {
    lognormal_timer timer(10.0, 0.05, 1000 + static_cast<std::uint64_t>(trial));
    auto samples = timer.take(60);
    const auto bootstrap = measure::bootstrap_median_interval(samples, 500, 0.95, 7);
    bootstrap_hits += bootstrap.low <= 10.0 && 10.0 <= bootstrap.high;
    std::sort(samples.begin(), samples.end());
    const auto rank = measure::median_rank_interval(samples, 0.95);
    rank_hits += rank.low <= 10.0 && 10.0 <= rank.high;
  }
  EXPECT_NEAR(bootstrap_hits / double(trials), 0.95, 0.04);
  EXPECT_GE(rank_hits / double(trials), 0.93);  // guaranteed >= 95% in expectation
}

TEST(MedianInterval, RankIntervalHandComputed) {
  std::vector<double> ten(10);
  std::iota(ten.begin(), ten.end(), 1.0);
  // P(B <= 1) = 11/1024 <= 0.025 < P(B <= 2) = 56/1024: ranks 2 and 9.
  auto bounds = measure::median_rank_interval(ten, 0.95);
  EXPECT_EQ(bounds.low, 2.0);
  EXPECT_EQ(bounds.high, 9.0);
  EXPECT_DOUBLE_EQ(bounds.level, 1.0 - 22.0 / 1024.0);
  // Six samples: only [min, max] has 95%: 1 - 2/64.
  bounds = measure::median_rank_interval(std::vector<double>{1, 2, 3, 4, 5, 6}, 0.95);
  EXPECT_EQ(bounds, (measure::interval{1, 6, 1.0 - 2.0 / 64.0}));
  // Five samples cannot reach 95%: [min, max] and its true coverage 1 - 2/32.
  bounds = measure::median_rank_interval(std::vector<double>{1, 2, 3, 4, 5}, 0.95);
  EXPECT_EQ(bounds, (measure::interval{1, 5, 1.0 - 2.0 / 32.0}));
  bounds = measure::median_rank_interval(std::vector<double>{4}, 0.95);
  EXPECT_EQ(bounds, (measure::interval{4, 4, 0.0}));
}

TEST(MedianInterval, NormalApproximationContinuesTheExactRanks) {
  for (std::size_t n : {999u, 1000u, 1001u, 1002u, 5000u}) {
    std::vector<double> ranks(n);
    std::iota(ranks.begin(), ranks.end(), 1.0);
    const auto bounds = measure::median_rank_interval(ranks, 0.95);
    // The classic approximation n/2 -+ 1.96 sqrt(n) / 2, within a rank or two.
    const double half_width = 1.959964 * std::sqrt(static_cast<double>(n)) / 2.0;
    EXPECT_NEAR(bounds.low, static_cast<double>(n) / 2.0 - half_width, 2.0) << n;
    EXPECT_NEAR(bounds.high, static_cast<double>(n) / 2.0 + half_width + 1.0, 2.0) << n;
    EXPECT_EQ(bounds.low + bounds.high, static_cast<double>(n + 1)) << "symmetric in rank, n=" << n;
  }
}

TEST(Normal, TailAndQuantile) {
  EXPECT_NEAR(measure::normal_upper_tail(0.0), 0.5, 1e-15);
  EXPECT_NEAR(measure::normal_upper_tail(1.959963984540054), 0.025, 1e-12);
  EXPECT_NEAR(measure::normal_upper_tail(8.0) / 6.22096057427178e-16, 1.0, 1e-9);
  EXPECT_NEAR(measure::normal_quantile(0.975), 1.959963984540054, 1e-9);
  EXPECT_NEAR(measure::normal_quantile(0.01), -2.326347874040841, 1e-9);
  EXPECT_NEAR(measure::normal_quantile(1e-10), -6.361340902404056, 1e-8);
  EXPECT_THROW((void)measure::normal_quantile(0.0), tunekit::invalid_argument);
  EXPECT_THROW((void)measure::normal_quantile(1.0), tunekit::invalid_argument);
}

TEST(StudentT, QuantilesMatchTables) {
  EXPECT_NEAR(measure::student_t_quantile(0.975, 1), 12.706204736, 1e-6);
  EXPECT_NEAR(measure::student_t_quantile(0.975, 2), 4.302652730, 1e-7);
  EXPECT_NEAR(measure::student_t_quantile(0.975, 3), 3.182446305, 1e-7);
  EXPECT_NEAR(measure::student_t_quantile(0.975, 9), 2.262157163, 1e-7);
  EXPECT_NEAR(measure::student_t_quantile(0.995, 30), 2.749995652, 1e-7);
  EXPECT_NEAR(measure::student_t_quantile(0.025, 9), -2.262157163, 1e-7);
  EXPECT_NEAR(measure::student_t_quantile(0.975, 100000), 1.959963984540054 , 1e-4);
  EXPECT_THROW((void)measure::student_t_quantile(0.975, 0), tunekit::invalid_argument);
  EXPECT_THROW((void)measure::student_t_quantile(1.0, 5), tunekit::invalid_argument);
}

// ---------------------------------------------------------------- Mann-Whitney U

double brute_force_u(const std::vector<double>& a, const std::vector<double>& b) {
  double u = 0;
  for (double x : a)
    for (double y : b) u += y > x ? 1.0 : (y == x ? 0.5 : 0.0);
  return u;
}

// Exact one-sided p-values by enumerating every split of the pooled values
// into groups of the original sizes (the permutation null distribution).
std::pair<double, double> enumerated_p(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> pooled = a;
  pooled.insert(pooled.end(), b.begin(), b.end());
  const double observed = brute_force_u(a, b);
  std::vector<bool> in_b(pooled.size(), false);
  std::fill(in_b.end() - static_cast<std::ptrdiff_t>(b.size()), in_b.end(), true);
  double total = 0, at_least = 0, at_most = 0;
  do {
    std::vector<double> left, right;
    for (std::size_t i = 0; i < pooled.size(); ++i) (in_b[i] ? right : left).push_back(pooled[i]);
    const double u = brute_force_u(left, right);
    total += 1;
    at_least += u >= observed - 1e-9;
    at_most += u <= observed + 1e-9;
  } while (std::next_permutation(in_b.begin(), in_b.end()));
  return {at_least / total, at_most / total};
}

TEST(MannWhitney, UMatchesPairCountingWithTies) {
  lognormal_timer timer(10.0, 0.1, 21);
  for (int round = 0; round < 20; ++round) {
    auto a = timer.take(5 + static_cast<std::size_t>(round));
    auto b = timer.take(30 - static_cast<std::size_t>(round));
    for (auto& value : a) value = std::round(value);  // plenty of ties
    for (auto& value : b) value = std::round(value);
    EXPECT_DOUBLE_EQ(measure::mann_whitney(a, b).u, brute_force_u(a, b));
  }
}

TEST(MannWhitney, ExactForSmallSamplesMatchesEnumeration) {
  lognormal_timer timer(10.0, 0.1, 8);
  for (auto [n, m] : {std::pair{1, 1}, {1, 5}, {3, 3}, {4, 6}, {7, 5}, {2, 12}}) {
    const auto a = timer.take(static_cast<std::size_t>(n));
    const auto b = timer.take(static_cast<std::size_t>(m));
    const auto test = measure::mann_whitney(a, b);
    ASSERT_TRUE(test.exact);
    const auto [greater, less] = enumerated_p(a, b);
    EXPECT_NEAR(test.p_greater, greater, 1e-12) << n << "x" << m;
    EXPECT_NEAR(test.p_less, less, 1e-12) << n << "x" << m;
  }
  // Three against three, completely separated: the smallest p-value there is, 1/20.
  const auto separated = measure::mann_whitney(std::vector<double>{1, 2, 3}, std::vector<double>{4, 5, 6});
  EXPECT_NEAR(separated.p_greater, 0.05, 1e-12);
  EXPECT_NEAR(separated.p_less, 1.0, 1e-12);
  EXPECT_NEAR(separated.p_two_sided, 0.1, 1e-12);
}

TEST(MannWhitney, NormalApproximationIsCloseToExactFromEightSamples) {
  lognormal_timer timer(10.0, 0.1, 99);
  for (int round = 0; round < 4; ++round) {
    auto a = timer.take(8);
    auto b = timer.take(9);
    for (auto& value : b) value *= 1.0 + 0.03 * round;  // from no shift to a clear one
    const auto test = measure::mann_whitney(a, b);
    ASSERT_FALSE(test.exact);
    const auto [greater, less] = enumerated_p(a, b);
    EXPECT_NEAR(test.p_greater, greater, std::max(0.005, 0.15 * greater)) << round;
    EXPECT_NEAR(test.p_less, less, std::max(0.005, 0.15 * less)) << round;
  }
}

TEST(MannWhitney, TiesAndDegenerateInput) {
  const auto all_tied = measure::mann_whitney(std::vector<double>(10, 3.0), std::vector<double>(12, 3.0));
  EXPECT_EQ(all_tied.p_greater, 1.0);
  EXPECT_EQ(all_tied.p_less, 1.0);
  EXPECT_EQ(all_tied.u, 60.0);
  // Separated groups of tied values are strong evidence.
  const auto separated = measure::mann_whitney(std::vector<double>(20, 3.0), std::vector<double>(20, 4.0));
  EXPECT_LT(separated.p_greater, 1e-6);
  EXPECT_GT(separated.p_less, 0.99);
  EXPECT_THROW((void)measure::mann_whitney(std::vector<double>{}, std::vector<double>{1}), tunekit::invalid_argument);
  EXPECT_THROW((void)measure::mann_whitney(std::vector<double>{1}, std::vector<double>{NAN}), tunekit::invalid_argument);
}

// Under the null the one-sided p-value is (close to) uniform: rejections at
// 1% happen in about 1% of trials.
TEST(MannWhitney, FalsePositiveRateMatchesLevel) {
  int rejections = 0;
  const int trials = 4000;
  for (int trial = 0; trial < trials; ++trial) {
    lognormal_timer timer(10.0, 0.05, 50'000 + static_cast<std::uint64_t>(trial));
    const auto a = timer.take(30);
    const auto b = timer.take(30);
    rejections += measure::mann_whitney(a, b).p_greater <= 0.01;
  }
  EXPECT_NEAR(rejections / double(trials), 0.01, 0.006);
}

}  // namespace
