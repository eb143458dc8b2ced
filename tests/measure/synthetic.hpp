#pragma once
// Synthetic timing samples for the measurement tests: log-normal noise of a
// chosen coefficient of variation from a fully specified generator
// (mt19937_64 and our own Box-Muller; std distributions differ between
// standard libraries), so every platform sees the same streams.

#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>
#include <vector>

#include "tunekit/measure/stopping.hpp"

namespace tunekit::testing {

class lognormal_timer {
 public:
  /// Samples with median `median` and coefficient of variation `cv`.
  lognormal_timer(double median, double cv, std::uint64_t seed)
      : median_(median), sigma_(std::sqrt(std::log1p(cv * cv))), engine_(seed) {}

  double operator()() { return median_ * std::exp(sigma_ * standard_normal()); }

  std::vector<double> take(std::size_t count) {
    std::vector<double> samples(count);
    for (auto& sample : samples) sample = (*this)();
    return samples;
  }

  /// A uniform double in (0, 1).
  double uniform() {
    return (static_cast<double>(engine_() >> 11U) + 0.5) * 0x1.0p-53;
  }

  double standard_normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double radius = std::sqrt(-2.0 * std::log(uniform()));
    const double angle = 2.0 * std::numbers::pi * uniform();
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
  }

 private:
  double median_;
  double sigma_;
  std::mt19937_64 engine_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

/// Drives `criterion` with a simulated kernel of median `kernel_us` and
/// noise `cv`: each launch costs its own time plus `overhead_us` of wall time.
/// Returns when the criterion is done (or after `limit` samples).
inline void simulate_measurement(measure::stopping_criterion& criterion, double kernel_us, double cv,
                                 std::uint64_t seed, double overhead_us = 5.0, std::size_t limit = 10'000'000) {
  lognormal_timer timer(kernel_us, cv, seed);
  double elapsed_us = 0.0;
  while (!criterion.done() && criterion.count() < limit) {
    const double sample = timer();
    elapsed_us += sample + overhead_us;
    criterion.add(sample, elapsed_us * 1e-6);
  }
}

}  // namespace tunekit::testing
