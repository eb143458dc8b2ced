#include "tunekit/measure/stopping.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "tunekit/error.hpp"
#include "tunekit/measure/statistics.hpp"

namespace tunekit::measure {

namespace {

void require(bool condition, const std::string& message) {
  if (!condition) throw invalid_argument(message);
}

// Merges samples[sorted.size() ..] into `sorted`: O(k log k + n) for k new ones.
void catch_up(std::vector<double>& sorted, std::span<const double> samples) {
  const auto old_size = static_cast<std::ptrdiff_t>(sorted.size());
  sorted.insert(sorted.end(), samples.begin() + old_size, samples.end());
  std::sort(sorted.begin() + old_size, sorted.end());
  std::inplace_merge(sorted.begin(), sorted.begin() + old_size, sorted.end());
}

bool minimums_met(std::size_t count, double elapsed, std::size_t min_samples, double min_seconds) {
  return count >= min_samples && elapsed >= min_seconds;
}

}  // namespace

// ---------------------------------------------------------------- base

void stopping_criterion::add(double sample, double elapsed_seconds) {
  if (!std::isfinite(sample) || sample < 0.0)
    throw invalid_argument("stopping criterion: a sample must be a finite number >= 0, got " +
                           std::to_string(sample));
  if (!std::isfinite(elapsed_seconds) || elapsed_seconds < elapsed_seconds_)
    throw invalid_argument("stopping criterion: elapsed time must be finite and never decrease, got " +
                           std::to_string(elapsed_seconds) + " s after " + std::to_string(elapsed_seconds_) + " s");
  samples_.push_back(sample);
  elapsed_seconds_ = elapsed_seconds;
  if (reason_.empty()) reason_ = do_check();
}

void stopping_criterion::reset() {
  samples_.clear();
  elapsed_seconds_ = 0.0;
  reason_.clear();
  do_reset();
}

// ---------------------------------------------------------------- fixed_count

fixed_count::fixed_count(std::size_t count, double timeout_seconds)
    : count_(count), timeout_seconds_(timeout_seconds) {
  require(count >= 1, "fixed_count: count must be at least 1");
  require(timeout_seconds > 0.0, "fixed_count: timeout must be positive");
}

std::string fixed_count::do_check() {
  if (elapsed_seconds() >= timeout_seconds_) return "timeout";
  return this->count() >= count_ ? "count" : "";
}

// ---------------------------------------------------------------- relative_noise

relative_noise::relative_noise(noise_options options) : options_(options) {
  require(options_.max_noise > 0.0, "relative_noise: max_noise must be positive");
  require(options_.min_seconds >= 0.0, "relative_noise: min_seconds must be >= 0");
  require(options_.timeout_seconds > 0.0, "relative_noise: timeout must be positive");
  require(options_.confidence > 0.0 && options_.confidence < 1.0, "relative_noise: confidence must be in (0, 1)");
}

void relative_noise::do_reset() {
  sorted_.clear();
  next_check_ = 0;
  noise_ = std::numeric_limits<double>::infinity();
  running_mean_ = 0.0;
  running_squares_ = 0.0;
}

std::string relative_noise::do_check() {
  const std::size_t n = count();
  const double sample = samples().back();
  const double delta = sample - running_mean_;
  running_mean_ += delta / static_cast<double>(n);
  running_squares_ += delta * (sample - running_mean_);

  if (elapsed_seconds() >= options_.timeout_seconds) return "timeout";
  if (!minimums_met(n, elapsed_seconds(), options_.min_samples, options_.min_seconds)) return "";

  if (options_.measure == noise_measure::relative_stddev) {
    const double stddev = n > 1 ? std::sqrt(running_squares_ / static_cast<double>(n - 1)) : 0.0;
    noise_ = running_mean_ > 0.0 ? stddev / running_mean_ : std::numeric_limits<double>::infinity();
  } else {
    if (n < next_check_) return "";
    next_check_ = n + std::max<std::size_t>(1, n / 64);
    catch_up(sorted_, samples());
    const double median = sorted_percentile(sorted_, 50.0);
    const interval bounds = median_rank_interval(sorted_, options_.confidence);
    noise_ = median > 0.0 ? 0.5 * (bounds.high - bounds.low) / median : std::numeric_limits<double>::infinity();
  }
  return noise_ <= options_.max_noise ? "noise" : "";
}

// ---------------------------------------------------------------- stability

namespace {

// The median of values[begin, end), reordering that range.
double median_of_range(std::vector<double>& values, std::size_t begin, std::size_t end) {
  const auto first = values.begin() + static_cast<std::ptrdiff_t>(begin);
  const auto last = values.begin() + static_cast<std::ptrdiff_t>(end);
  const auto middle = first + static_cast<std::ptrdiff_t>((end - begin) / 2);
  std::nth_element(first, middle, last);
  if ((end - begin) % 2 == 1) return *middle;
  const double below = *std::max_element(first, middle);
  return below + 0.5 * (*middle - below);
}

}  // namespace

stability::stability(stability_options options) : options_(options), t_quantile_(0.0) {
  require(options_.max_noise > 0.0, "stability: max_noise must be positive");
  require(options_.blocks >= 2, "stability: needs at least 2 blocks");
  require(options_.min_seconds >= 0.0, "stability: min_seconds must be >= 0");
  require(options_.timeout_seconds > 0.0, "stability: timeout must be positive");
  require(options_.confidence > 0.0 && options_.confidence < 1.0, "stability: confidence must be in (0, 1)");
  t_quantile_ = student_t_quantile(0.5 + 0.5 * options_.confidence, options_.blocks - 1);
}

void stability::do_reset() {
  next_check_ = 0;
  noise_ = std::numeric_limits<double>::infinity();
}

std::string stability::do_check() {
  if (elapsed_seconds() >= options_.timeout_seconds) return "timeout";
  const std::size_t n = count();
  const std::size_t blocks = options_.blocks;
  if (n < blocks || !minimums_met(n, elapsed_seconds(), options_.min_samples, options_.min_seconds)) return "";
  if (n < next_check_) return "";
  next_check_ = n + std::max<std::size_t>(1, n / 64);

  const auto all = samples();
  scratch_.assign(all.begin(), all.end());
  // Block b holds samples [b n / blocks, (b + 1) n / blocks): sizes differ by at most one.
  block_medians_.clear();
  for (std::size_t block = 0; block < blocks; ++block)
    block_medians_.push_back(median_of_range(scratch_, block * n / blocks, (block + 1) * n / blocks));
  const double median = median_of_range(scratch_, 0, n);  // blocks reordered only within themselves
  double mean = 0.0;
  for (double each : block_medians_) mean += each;
  mean /= static_cast<double>(blocks);
  double squares = 0.0;
  for (double each : block_medians_) squares += (each - mean) * (each - mean);
  const double spread = std::sqrt(squares / static_cast<double>(blocks - 1));
  noise_ = median > 0.0 ? t_quantile_ * spread / std::sqrt(static_cast<double>(blocks)) / median
                        : std::numeric_limits<double>::infinity();
  return noise_ <= options_.max_noise ? "stable" : "";
}

}  // namespace tunekit::measure
