#include "tunekit/measure/statistics.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "tunekit/error.hpp"

namespace tunekit::measure {

namespace {

void check_samples(std::span<const double> samples, const char* what) {
  if (samples.empty()) throw invalid_argument(std::string(what) + ": no samples");
  for (double each : samples)
    if (!std::isfinite(each)) throw invalid_argument(std::string(what) + ": a sample is not a finite number");
}

void check_confidence(double confidence, const char* what) {
  if (!(confidence > 0.0 && confidence < 1.0))
    throw invalid_argument(std::string(what) + ": confidence must be in (0, 1), got " + std::to_string(confidence));
}

// splitmix64: tiny, fast and fully specified, so bootstrap intervals are the
// same on every standard library (std distributions are not).
struct splitmix64 {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31U);
  }
  // Modulo bias is below n / 2^64: irrelevant for sample counts.
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
};

// The median of values, reordering them; linear interpolation for even n.
double median_in_place(std::vector<double>& values) {
  const std::size_t n = values.size();
  const auto middle = values.begin() + static_cast<std::ptrdiff_t>(n / 2);
  std::nth_element(values.begin(), middle, values.end());
  if (n % 2 == 1) return *middle;
  const double below = *std::max_element(values.begin(), middle);
  return below + 0.5 * (*middle - below);
}

// Exact null distribution of U for samples of sizes `small` and `large`
// without ties: P(U = u), u = 0 .. small * large. Recurrence on which group
// holds the largest value: with probability i / (i + j) it is one of the i,
// which then beats all j others.
std::vector<double> exact_u_distribution(std::size_t small, std::size_t large) {
  // column[i] holds P_{i, j} for the current j.
  std::vector<std::vector<double>> column(small + 1, std::vector<double>{1.0});
  for (std::size_t j = 1; j <= large; ++j) {
    std::vector<std::vector<double>> next(small + 1);
    next[0] = {1.0};
    for (std::size_t i = 1; i <= small; ++i) {
      std::vector<double> distribution(i * j + 1, 0.0);
      const double share_i = static_cast<double>(i) / static_cast<double>(i + j);
      const double share_j = 1.0 - share_i;
      const auto& largest_in_i = next[i - 1];  // P_{i-1, j}, shifted by j
      for (std::size_t u = 0; u < largest_in_i.size(); ++u) distribution[u + j] += share_i * largest_in_i[u];
      const auto& largest_in_j = column[i];  // P_{i, j-1}
      for (std::size_t u = 0; u < largest_in_j.size(); ++u) distribution[u] += share_j * largest_in_j[u];
      next[i] = std::move(distribution);
    }
    column = std::move(next);
  }
  return column[small];
}

}  // namespace

double normal_upper_tail(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }

double normal_quantile(double probability) {
  if (!(probability > 0.0 && probability < 1.0))
    throw invalid_argument("normal quantile: probability must be in (0, 1), got " + std::to_string(probability));
  // The tail falls monotonically in z; |z| < 40 covers every double probability.
  double low = -40.0;
  double high = 40.0;
  for (int step = 0; step < 100 && high - low > 1e-13; ++step) {
    const double middle = 0.5 * (low + high);
    if (normal_upper_tail(-middle) < probability)  // P(Z <= middle), exact in the lower tail
      low = middle;
    else
      high = middle;
  }
  return 0.5 * (low + high);
}

namespace {

// P(|T| <= t) for Student's t with integer degrees of freedom: the classic
// finite series in theta = atan(t / sqrt(degrees)).
double student_t_central(double t, std::size_t degrees) {
  const double theta = std::atan(t / std::sqrt(static_cast<double>(degrees)));
  const double cosine_squared = std::cos(theta) * std::cos(theta);
  const double sine = std::sin(theta);
  if (degrees % 2 == 0) {
    // sin(theta) (1 + 1/2 cos^2 + (1 3)/(2 4) cos^4 + ... up to cos^(degrees - 2))
    double term = 1.0;
    double sum = 1.0;
    for (std::size_t k = 2; k + 2 <= degrees; k += 2) {
      term *= cosine_squared * static_cast<double>(k - 1) / static_cast<double>(k);
      sum += term;
    }
    return sine * sum;
  }
  // (2 / pi) (theta + sin cos (1 + 2/3 cos^2 + (2 4)/(3 5) cos^4 + ... up to cos^(degrees - 3)))
  double series = 0.0;
  if (degrees > 1) {
    double term = 1.0;
    series = 1.0;
    for (std::size_t k = 3; k + 2 <= degrees; k += 2) {
      term *= cosine_squared * static_cast<double>(k - 1) / static_cast<double>(k);
      series += term;
    }
  }
  return 2.0 / std::numbers::pi * (theta + sine * std::cos(theta) * series);
}

}  // namespace

double student_t_quantile(double probability, std::size_t degrees) {
  if (!(probability > 0.0 && probability < 1.0))
    throw invalid_argument("t quantile: probability must be in (0, 1), got " + std::to_string(probability));
  if (degrees == 0) throw invalid_argument("t quantile: needs at least one degree of freedom");
  if (probability < 0.5) return -student_t_quantile(1.0 - probability, degrees);
  const double central = 2.0 * probability - 1.0;  // P(|T| <= t) for the t we want
  double low = 0.0;
  double high = 1.0;
  while (student_t_central(high, degrees) < central && high < 1e300) high *= 2.0;
  for (int step = 0; step < 200 && high - low > 1e-12 * high; ++step) {
    const double middle = 0.5 * (low + high);
    if (student_t_central(middle, degrees) < central)
      low = middle;
    else
      high = middle;
  }
  return 0.5 * (low + high);
}

double sorted_percentile(std::span<const double> sorted, double q) {
  if (sorted.empty()) throw invalid_argument("percentile: no samples");
  if (!(q >= 0.0 && q <= 100.0)) throw invalid_argument("percentile: q must be in [0, 100], got " + std::to_string(q));
  const double rank = static_cast<double>(sorted.size() - 1) * q / 100.0;
  const auto below = static_cast<std::size_t>(std::floor(rank));
  if (below + 1 >= sorted.size()) return sorted[sorted.size() - 1];
  const double fraction = rank - static_cast<double>(below);
  return sorted[below] + fraction * (sorted[below + 1] - sorted[below]);
}

double percentile(std::span<const double> samples, double q) {
  check_samples(samples, "percentile");
  std::vector<double> sorted(samples.begin(), samples.end());
  std::sort(sorted.begin(), sorted.end());
  return sorted_percentile(sorted, q);
}

interval bootstrap_median_interval(std::span<const double> samples, std::size_t resamples, double confidence,
                                   std::uint64_t seed) {
  check_samples(samples, "bootstrap");
  check_confidence(confidence, "bootstrap");
  if (resamples == 0) throw invalid_argument("bootstrap: needs at least one resample");
  const std::size_t n = samples.size();
  splitmix64 random{seed};
  std::vector<double> resample(n);
  std::vector<double> medians(resamples);
  for (auto& median : medians) {
    for (auto& value : resample) value = samples[random.below(n)];
    median = median_in_place(resample);
  }
  std::sort(medians.begin(), medians.end());
  const double tail = 50.0 * (1.0 - confidence);
  return {sorted_percentile(medians, tail), sorted_percentile(medians, 100.0 - tail), confidence};
}

interval median_rank_interval(std::span<const double> sorted, double confidence) {
  if (sorted.empty()) throw invalid_argument("median interval: no samples");
  check_confidence(confidence, "median interval");
  const std::size_t n = sorted.size();
  const double tail = 0.5 * (1.0 - confidence);
  // j: the 1-based rank of the lower bound; the upper bound is rank n - j + 1.
  std::size_t j = 0;
  double level = confidence;
  if (n <= 1000) {
    // The largest j with P(B <= j - 1) <= tail, B ~ Binomial(n, 1/2): walk j
    // up while the cdf allows. 2^-n stays a normal double for n <= 1000.
    double pmf = std::ldexp(1.0, -static_cast<int>(n));
    double cdf = pmf;             // P(B <= j)
    double accepted_cdf = 1.0;    // P(B <= j - 1) of the accepted j
    while (j + 1 <= (n + 1) / 2 && cdf <= tail) {
      ++j;
      accepted_cdf = cdf;
      pmf *= static_cast<double>(n - j + 1) / static_cast<double>(j);
      cdf += pmf;
    }
    if (j == 0) {  // too few samples for the requested coverage
      j = 1;
      accepted_cdf = std::ldexp(1.0, -static_cast<int>(n));
    }
    level = std::max(0.0, 1.0 - 2.0 * accepted_cdf);
  } else {
    const double z = normal_quantile(1.0 - tail);
    const double half = 0.5 * static_cast<double>(n);
    const double below = std::floor(half - 0.5 - z * std::sqrt(static_cast<double>(n)) / 2.0);
    j = static_cast<std::size_t>(std::max(below, 0.0)) + 1;
  }
  return {sorted[j - 1], sorted[n - j], level};
}

summary summarize(std::span<const double> samples, const summary_options& options) {
  check_samples(samples, "summary");
  std::vector<double> sorted(samples.begin(), samples.end());
  std::sort(sorted.begin(), sorted.end());
  const std::size_t n = sorted.size();
  summary result;
  result.count = n;
  // Two passes over sorted values: small values first keeps the sum accurate.
  const double mean = std::accumulate(sorted.begin(), sorted.end(), 0.0) / static_cast<double>(n);
  double squares = 0.0;
  for (double value : sorted) squares += (value - mean) * (value - mean);
  result.mean = mean;
  result.stddev = n > 1 ? std::sqrt(squares / static_cast<double>(n - 1)) : 0.0;
  result.cv = mean != 0.0 ? result.stddev / mean : 0.0;
  result.min = sorted.front();
  result.max = sorted.back();
  result.p1 = sorted_percentile(sorted, 1.0);
  result.p5 = sorted_percentile(sorted, 5.0);
  result.p50 = sorted_percentile(sorted, 50.0);
  result.median = result.p50;
  result.p90 = sorted_percentile(sorted, 90.0);
  result.p99 = sorted_percentile(sorted, 99.0);
  result.p99_9 = sorted_percentile(sorted, 99.9);
  result.iqr = sorted_percentile(sorted, 75.0) - sorted_percentile(sorted, 25.0);
  if (options.bootstrap_resamples > 0)
    result.median_interval =
        bootstrap_median_interval(sorted, options.bootstrap_resamples, options.confidence, options.seed);
  return result;
}

rank_test mann_whitney(std::span<const double> a, std::span<const double> b) {
  check_samples(a, "Mann-Whitney U");
  check_samples(b, "Mann-Whitney U");
  const std::size_t n = a.size();
  const std::size_t m = b.size();
  const std::size_t total = n + m;
  // Pool both samples, rank with midranks for ties.
  std::vector<std::pair<double, bool>> pooled;  // value, is it from b
  pooled.reserve(total);
  for (double value : a) pooled.emplace_back(value, false);
  for (double value : b) pooled.emplace_back(value, true);
  std::sort(pooled.begin(), pooled.end(),
            [](const auto& left, const auto& right) { return left.first < right.first; });
  double rank_sum_b = 0.0;
  double tie_term = 0.0;  // sum of t^3 - t over groups of t tied values
  for (std::size_t start = 0; start < total;) {
    std::size_t end = start + 1;
    while (end < total && pooled[end].first == pooled[start].first) ++end;
    const double midrank = 0.5 * static_cast<double>(start + 1 + end);  // mean of ranks start+1 .. end
    const auto tied = static_cast<double>(end - start);
    tie_term += tied * tied * tied - tied;
    for (std::size_t k = start; k < end; ++k)
      if (pooled[k].second) rank_sum_b += midrank;
    start = end;
  }
  const double size_a = static_cast<double>(n);
  const double size_b = static_cast<double>(m);
  rank_test result;
  result.u = rank_sum_b - size_b * (size_b + 1.0) / 2.0;

  const std::size_t small = std::min(n, m);
  const std::size_t large = std::max(n, m);
  if (tie_term == 0.0 && small < 8 && large <= 1000) {
    // U of b has the same null distribution for sizes (n, m) and (m, n).
    const auto distribution = exact_u_distribution(small, large);
    const auto observed = static_cast<std::size_t>(std::llround(result.u));
    double at_most = 0.0;
    for (std::size_t u = 0; u <= observed; ++u) at_most += distribution[u];
    double at_least = 0.0;
    for (std::size_t u = observed; u < distribution.size(); ++u) at_least += distribution[u];
    result.p_greater = std::min(at_least, 1.0);
    result.p_less = std::min(at_most, 1.0);
    result.exact = true;
  } else {
    const double pooled_size = size_a + size_b;
    const double variance =
        size_a * size_b / 12.0 * ((pooled_size + 1.0) - tie_term / (pooled_size * (pooled_size - 1.0)));
    if (variance > 0.0) {
      const double sigma = std::sqrt(variance);
      const double centred = result.u - size_a * size_b / 2.0;
      result.z = centred / sigma;
      result.p_greater = std::min(normal_upper_tail((centred - 0.5) / sigma), 1.0);
      result.p_less = std::min(normal_upper_tail(-(centred + 0.5) / sigma), 1.0);
    }  // every value tied: no evidence either way, both p-values stay 1
  }
  result.p_two_sided = std::min(1.0, 2.0 * std::min(result.p_greater, result.p_less));
  return result;
}

}  // namespace tunekit::measure
