#pragma once
// Stopping criteria: when has a measurement seen enough samples? One
// interface, three criteria:
//
//   fixed_count     a set number of samples (reason "count");
//   relative_noise  the median is known to within a relative precision: the
//                   95% interval of the median, or the relative standard
//                   deviation, under a threshold (reason "noise");
//   stability       the medians of consecutive blocks of the record agree to
//                   within a threshold: noise and drift both settled
//                   (reason "stable").
//
// Every criterion also stops at its timeout (reason "timeout"), checked first,
// even before the minimum sample count is reached: a timeout is a promise
// about wall time.
//
// The caller feeds each sample with the elapsed time of the whole measurement
// so far, in seconds (wall time since the first launch, overheads included:
// what the user waits for). Passing time in, rather than reading a clock,
// keeps criteria deterministic and testable. Samples may be in any unit, the
// same for all; criteria only use relative quantities.
//
//   tunekit::measure::relative_noise criterion;          // the defaults below
//   const auto start = clock::now();
//   while (!criterion.done())
//     criterion.add(time_one_launch_us(), seconds_since(start));
//   use(criterion.samples(), criterion.reason());
//
// Defaults (noise_options, stability_options), chosen so that kernels from
// microseconds to a tenth of a second finish quickly:
//   - min_samples 10 (20 for stability, see there): below 6 samples the 95%
//     interval of the median is the whole range of the samples, at 10 it is
//     the 2nd to the 9th; 10 costs a 100 ms kernel only 1 s;
//   - min_seconds 0.5: a 10 us kernel runs ~30,000 times, averaging over
//     clock changes and launch jitter that a few samples would miss; a long
//     kernel meets it within its first 10 samples (0.5 s / 100 ms = 5), so it
//     never costs a long kernel extra samples;
//   - max_noise 0.5%: the median is known to +-0.5% at 95%: differences of
//     2% (compare's default threshold) are resolved with room to spare;
//     a 100 ms kernel at 0.3% noise stops after 10-20 samples, at 1% noise
//     after ~30 (10-60; the median interval narrows as 1/sqrt(n)), and five
//     such measurements give medians within 1% of each other in ~96% of
//     cases (tests/measure/stopping_test.cpp);
//   - timeout 15 s: bounds the cost of a kernel too noisy for 0.5% (at 3%
//     noise a 100 ms kernel would need ~220 samples) while still collecting
//     enough for compare to judge.

#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tunekit::measure {

/// Decides when a measurement has enough samples. Public non-virtual
/// methods keep the shared bookkeeping (validation, elapsed time, the
/// samples, latching the decision); derived criteria implement do_*.
class stopping_criterion {
 public:
  virtual ~stopping_criterion() = default;

  [[nodiscard]] std::string_view name() const { return do_name(); }

  /// Records one sample (finite, >= 0) taken when the measurement had run
  /// `elapsed_seconds` in all (finite, never decreasing). Throws
  /// tunekit::invalid_argument otherwise. Once done() the decision stays;
  /// later samples are still recorded.
  void add(double sample, double elapsed_seconds);

  /// True once the criterion is met; reason() says which way.
  [[nodiscard]] bool done() const { return !reason_.empty(); }
  /// "count", "noise", "stable" or "timeout"; empty while not done.
  [[nodiscard]] const std::string& reason() const { return reason_; }

  [[nodiscard]] std::size_t count() const { return samples_.size(); }
  [[nodiscard]] double elapsed_seconds() const { return elapsed_seconds_; }
  /// Every sample, in the order added.
  [[nodiscard]] std::span<const double> samples() const { return samples_; }

  /// Forgets every sample and the decision, for the next measurement.
  void reset();

 protected:
  stopping_criterion() = default;
  // Copies only as a whole derived criterion, never sliced through the base.
  stopping_criterion(const stopping_criterion&) = default;
  stopping_criterion& operator=(const stopping_criterion&) = default;

  [[nodiscard]] virtual std::string_view do_name() const = 0;
  /// Called after each add() while not done, with the sample already in
  /// samples(); returns the reason to stop, or an empty string to go on.
  [[nodiscard]] virtual std::string do_check() = 0;
  /// Called by reset() after the shared state is cleared.
  virtual void do_reset() {}

 private:
  std::vector<double> samples_;
  double elapsed_seconds_ = 0.0;
  std::string reason_;
};

/// Stops after `count` samples (reason "count"), or at the timeout.
class fixed_count final : public stopping_criterion {
 public:
  /// count >= 1; timeout_seconds > 0 (infinite: none).
  explicit fixed_count(std::size_t count,
                       double timeout_seconds = std::numeric_limits<double>::infinity());

 private:
  std::string_view do_name() const override { return "fixed_count"; }
  std::string do_check() override;

  std::size_t count_;
  double timeout_seconds_;
};

/// What relative_noise measures as the noise of the estimate.
enum class noise_measure {
  /// Half the width of the distribution-free 95% interval of the median
  /// (median_rank_interval), over the median. It narrows as 1/sqrt(n), so
  /// any stationary noise level converges; robust to outliers.
  median_interval,
  /// Sample standard deviation over mean (the CV). It does not shrink with
  /// more samples: it stops only kernels whose own noise is below the
  /// threshold, and otherwise runs to the timeout. For "is this quiet?".
  relative_stddev,
};

struct noise_options {
  std::size_t min_samples = 10;
  double min_seconds = 0.5;
  double max_noise = 0.005;  ///< relative, 0.005 = 0.5%
  double timeout_seconds = 15.0;
  noise_measure measure = noise_measure::median_interval;
  double confidence = 0.95;  ///< of the median interval
};

/// Stops once the relative noise is at most max_noise, and both min_samples
/// and min_seconds are reached (reason "noise"); else at the timeout.
/// The median interval needs the samples in order: it is checked each time
/// the count has grown by 1/64 (at least one sample), merging the new
/// samples into a sorted copy, so the cost per sample stays O(log n) and a
/// measurement runs at most 1.6% past the first moment it qualified.
class relative_noise final : public stopping_criterion {
 public:
  /// Throws tunekit::invalid_argument for max_noise <= 0, min_seconds < 0,
  /// timeout_seconds <= 0 or confidence outside (0, 1).
  explicit relative_noise(noise_options options = {});

  [[nodiscard]] const noise_options& options() const { return options_; }
  /// The noise at the last check; +inf before the first.
  [[nodiscard]] double noise() const { return noise_; }

 private:
  std::string_view do_name() const override { return "relative_noise"; }
  std::string do_check() override;
  void do_reset() override;

  noise_options options_;
  std::vector<double> sorted_;
  std::size_t next_check_ = 0;
  double noise_ = std::numeric_limits<double>::infinity();
  // Welford's running mean and sum of squared deviations, for relative_stddev.
  double running_mean_ = 0.0;
  double running_squares_ = 0.0;
};

struct stability_options {
  /// Two samples per block at least: with single-sample blocks the spread
  /// estimate is noisy enough that 1 in 8 measurements of a 1%-noise kernel
  /// stops on a lucky draw (medians of five repeats then spread past 1%).
  std::size_t min_samples = 20;
  double min_seconds = 0.5;
  double max_noise = 0.005;  ///< relative half-width of the batch-median interval
  /// Consecutive blocks the record is cut into (>= 2); 10 gives the spread
  /// estimate 9 degrees of freedom, stable enough not to stop on a lucky draw.
  std::size_t blocks = 10;
  double confidence = 0.95;
  double timeout_seconds = 15.0;
};

/// The stability criterion: stop when the answer no longer depends on *when*
/// the samples were taken. The record, in arrival order, is cut into
/// `blocks` consecutive blocks of equal size; each block's median is an
/// estimate of the kernel's time. If the kernel is stable those estimates
/// agree, and their spread gives the precision of the overall median (the
/// batch-means method of simulation output analysis, with medians):
///
///   noise = t(confidence, blocks - 1) * stddev(block medians) / sqrt(blocks) / median
///
/// It stops (reason "stable") once noise <= max_noise, after min_samples and
/// min_seconds; else at the timeout. Checked each time the count grows by
/// 1/64 once the minimums are met, O(n) per check.
///
/// Why this design: relative_noise trusts the samples to be independent and
/// identically distributed. GPU timings often are not: clocks ramp up, the
/// chip heats and throttles, a neighbour process comes and goes. Such drift
/// or slow correlation moves the block medians apart, so this criterion keeps
/// measuring until the kernel settles (or the timeout), where an interval
/// computed from the pooled samples would call a drifting kernel precise.
/// For independent noise it behaves like relative_noise: the spread of the
/// block medians shrinks as 1/sqrt(n), so noisier kernels stop later (about
/// 9x the samples for 3x the noise). Simpler stability rules were tried and
/// rejected: "the running median moved less than x over the last window"
/// stops far too early, because nested running medians are strongly
/// correlated and a flat stretch happens by chance; a histogram's entropy
/// needs a bin width and says nothing in the unit we report.
class stability final : public stopping_criterion {
 public:
  /// Throws tunekit::invalid_argument for max_noise <= 0, blocks < 2,
  /// min_seconds < 0, timeout_seconds <= 0 or confidence outside (0, 1).
  explicit stability(stability_options options = {});

  [[nodiscard]] const stability_options& options() const { return options_; }
  /// The noise at the last check; +inf before the first.
  [[nodiscard]] double noise() const { return noise_; }

 private:
  std::string_view do_name() const override { return "stability"; }
  std::string do_check() override;
  void do_reset() override;

  stability_options options_;
  double t_quantile_;              ///< two-sided Student t for `blocks - 1` degrees of freedom
  std::vector<double> scratch_;    ///< reused for the medians, no allocation per check
  std::vector<double> block_medians_;
  std::size_t next_check_ = 0;
  double noise_ = std::numeric_limits<double>::infinity();
};

}  // namespace tunekit::measure
