#pragma once
// Statistics of timing samples: order statistics, a summary of a sample set,
// confidence intervals of the median, and the Mann-Whitney U test that
// `compare` builds its verdicts on. Plain C++, no CUDA.
//
//   const auto stats = tunekit::measure::summarize(samples_us);
//   fmt::print("{} us +- {:.2f}%\n", stats.median, 100 * stats.cv);
//
// Percentiles interpolate linearly between the closest ranks, numpy's default
// ("linear", type 7 of Hyndman and Fan): for n sorted samples x[0..n-1] the
// q-th percentile sits at rank h = (n - 1) q / 100 and is
// x[floor(h)] + (h - floor(h)) (x[floor(h) + 1] - x[floor(h)]).
// Every function throws tunekit::invalid_argument for empty input, a
// non-finite sample, or an argument out of range.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace tunekit::measure {

/// A two-sided confidence interval; `level` is its nominal coverage (0.95).
struct interval {
  double low = 0.0;
  double high = 0.0;
  double level = 0.0;

  friend bool operator==(const interval&, const interval&) = default;
};

/// The q-th percentile (q in [0, 100]) of samples, in any order.
[[nodiscard]] double percentile(std::span<const double> samples, double q);

/// As percentile(), for samples already sorted ascending (not checked): O(1).
[[nodiscard]] double sorted_percentile(std::span<const double> sorted, double q);

/// How summarize() computes the bootstrap interval of the median.
struct summary_options {
  /// Bootstrap resamples; 0 skips the interval (summary::median_interval stays empty).
  std::size_t bootstrap_resamples = 2000;
  double confidence = 0.95;  ///< coverage of the interval, in (0, 1)
  std::uint64_t seed = 0x7475'6e65'6b69'74ULL;  ///< the same seed and samples give the same interval
};

/// What a sample set says. Units are the samples' own.
struct summary {
  std::size_t count = 0;
  double median = 0.0;
  double mean = 0.0;
  double stddev = 0.0;  ///< sample standard deviation (n - 1 denominator); 0 for one sample
  double cv = 0.0;      ///< stddev / mean; 0 when the mean is 0
  double min = 0.0;
  double max = 0.0;
  double p1 = 0.0;
  double p5 = 0.0;
  double p50 = 0.0;  ///< equals median
  double p90 = 0.0;
  double p99 = 0.0;
  double p99_9 = 0.0;
  double iqr = 0.0;  ///< p75 - p25
  /// Bootstrap percentile interval of the median (see bootstrap_median_interval).
  std::optional<interval> median_interval;
};

/// Summarises samples (any order). Throws for empty input or a non-finite sample.
[[nodiscard]] summary summarize(std::span<const double> samples, const summary_options& options = {});

/// Percentile-method bootstrap interval of the median: `resamples` resamples
/// of size n drawn with replacement, each one's median, and the
/// (1 - confidence)/2 and (1 + confidence)/2 percentiles of those medians.
/// Deterministic: a splitmix64 stream from `seed`, no std distributions, so
/// every platform gives the same interval. O(resamples * n).
[[nodiscard]] interval bootstrap_median_interval(std::span<const double> samples, std::size_t resamples,
                                                 double confidence, std::uint64_t seed);

/// Distribution-free interval of the median from order statistics: the
/// j-th smallest and j-th largest sample with the largest j such that
/// P(Binomial(n, 1/2) < j) <= (1 - confidence) / 2 (exact for n <= 1000, the
/// normal approximation above). Its coverage is at least `confidence`; with
/// too few samples for any such j (n < 6 at 95%) it is [min, max] and
/// `level` reports the lower coverage that interval actually has.
/// `sorted` must be ascending (not checked). O(1) for n > 1000.
[[nodiscard]] interval median_rank_interval(std::span<const double> sorted, double confidence);

/// P(Z > z) for a standard normal Z, accurate in the far tail (through erfc).
[[nodiscard]] double normal_upper_tail(double z);

/// The z with P(Z <= z) = probability, probability in (0, 1). Bisection on
/// the tail function: correct to about 1e-12, a few microseconds.
[[nodiscard]] double normal_quantile(double probability);

/// The t with P(T <= t) = probability for Student's t with `degrees`
/// degrees of freedom (>= 1): the closed-form distribution for integer
/// degrees, inverted by bisection.
[[nodiscard]] double student_t_quantile(double probability, std::size_t degrees);

/// Result of a Mann-Whitney U test of two independent samples a and b.
struct rank_test {
  double u = 0.0;  ///< U of b: pairs (a_i, b_j) with b_j > a_i, ties counting 1/2
  double z = 0.0;  ///< standardised U (0 when exact or when every value ties)
  double p_greater = 1.0;  ///< one-sided p-value against "b tends to be larger than a"
  double p_less = 1.0;     ///< one-sided p-value against "b tends to be smaller than a"
  double p_two_sided = 1.0;  ///< min(1, 2 min(p_greater, p_less))
  bool exact = false;        ///< p-values from the exact null distribution
};

/// Mann-Whitney U test (Wilcoxon rank-sum) of a against b.
///
/// Large samples use the normal approximation with the tie correction of the
/// variance and a continuity correction; it is accurate to a few percent of
/// the p-value once both sides have 8 or more samples. Small samples without
/// ties (either side under 8, the other at most 1000) use the exact null
/// distribution of U instead, so that 3 against 3 samples can never look
/// significant at 1%: the smallest one-sided p-value there is 1/20. Small
/// samples with ties keep the normal approximation, the best cheap option.
/// Both sides must be non-empty. O((n + m) log(n + m)).
[[nodiscard]] rank_test mann_whitney(std::span<const double> a, std::span<const double> b);

}  // namespace tunekit::measure
