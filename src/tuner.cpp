#include "tunekit/tuner.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <string>

#include "tunekit/error.hpp"

namespace tunekit {

budget budget::parse(std::string_view text) {
  const std::string shown(text);
  budget parsed;
  if (!text.empty() && text.back() == '%') {
    text.remove_suffix(1);
    double percent = 0.0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), percent);
    if (error != std::errc{} || end != text.data() + text.size() || !(percent > 0.0) || percent > 100.0)
      throw invalid_argument("budget '" + shown + "' is not a percentage in (0, 100]");
    parsed.fraction = percent / 100.0;
    return parsed;
  }
  if (!text.empty() && text.back() == 's') {
    text.remove_suffix(1);
    double seconds = 0.0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (error != std::errc{} || end != text.data() + text.size() || !(seconds > 0.0) || !std::isfinite(seconds))
      throw invalid_argument("budget '" + shown + "' is not a positive number of seconds");
    parsed.time = seconds * 1000.0;
    return parsed;
  }
  std::size_t count = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), count);
  if (error != std::errc{} || end != text.data() + text.size() || count == 0)
    throw invalid_argument("budget '" + shown + "' is neither a positive count, a percentage such as 5% nor seconds such as 30s");
  parsed.evaluations = count;
  return parsed;
}

std::size_t budget::evaluation_limit(std::size_t size) const {
  std::size_t limit = size;
  if (evaluations) limit = std::min(limit, *evaluations);
  if (fraction) {
    const auto share = static_cast<std::size_t>(std::llround(*fraction * static_cast<double>(size)));
    limit = std::min(limit, std::max<std::size_t>(share, 1));
  }
  return std::max<std::size_t>(std::min(limit, size), size == 0 ? 0 : 1);
}

tuning_run tune(strategy& search, const search_space& space, const evaluator& evaluate, const budget& limits,
                std::uint64_t seed) {
  using clock = std::chrono::steady_clock;
  tuning_run run;
  run.seed = seed;
  const std::size_t limit = limits.evaluation_limit(space.size());
  clock::duration in_strategy{};
  auto started = clock::now();
  search.start(space, seed);
  in_strategy += clock::now() - started;
  while (run.evaluations < limit && (!limits.time || run.cost < *limits.time)) {
    started = clock::now();
    const std::optional<std::size_t> index = search.propose();
    in_strategy += clock::now() - started;
    if (!index) break;
    const evaluation_result outcome = evaluate(*index);
    started = clock::now();
    search.observe(*index, outcome);
    in_strategy += clock::now() - started;
    ++run.evaluations;
    run.cost += outcome.cost;
    run.order.push_back(*index);
    if (outcome.ok() && std::isfinite(outcome.value) && outcome.value < run.best) {
      run.best = outcome.value;
      run.best_index = *index;
      run.trace.push_back({run.evaluations, run.best});
    }
  }
  run.strategy_seconds = std::chrono::duration<double>(in_strategy).count();
  return run;
}

evaluator replay_evaluator(const recorded_space& recorded) {
  return [&recorded](std::size_t index) {
    const recorded_result& record = recorded.results.at(index);
    return evaluation_result{record.status, record.time, record.cost()};
  };
}

std::optional<double> expected_random_best(const std::vector<recorded_result>& results, std::size_t count) {
  std::vector<double> values;
  for (const auto& each : results)
    if (each.status == evaluation_status::ok && std::isfinite(each.time)) values.push_back(each.time);
  if (values.empty() || count == 0) return std::nullopt;
  std::sort(values.begin(), values.end());
  const std::size_t n = results.size();
  count = std::min(count, n);
  // P(the i-th smallest of n is the best of a uniform draw of `count`) =
  // C(n-1-i, count-1) / C(n, count), with failed configurations ranked last.
  const auto log_choose = [](double a, double b) {
    return std::lgamma(a + 1.0) - std::lgamma(b + 1.0) - std::lgamma(a - b + 1.0);
  };
  const double log_total = log_choose(static_cast<double>(n), static_cast<double>(count));
  double expected = 0.0;
  double probability_ok = 0.0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::size_t rest = n - 1 - i;
    if (rest < count - 1) break;
    const double p =
        std::exp(log_choose(static_cast<double>(rest), static_cast<double>(count - 1)) - log_total);
    expected += p * values[i];
    probability_ok += p;
  }
  if (!(probability_ok > 0.0)) return std::nullopt;
  return expected / probability_ok;
}

std::optional<double> recorded_optimum(const recorded_space& recorded) {
  std::optional<double> optimum;
  for (const auto& each : recorded.results)
    if (each.status == evaluation_status::ok && std::isfinite(each.time) && (!optimum || each.time < *optimum))
      optimum = each.time;
  return optimum;
}

namespace {

double median_of(std::vector<double> values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : 0.5 * (values[middle - 1] + values[middle]);
}

}  // namespace

replay_score score_replay(const recorded_space& recorded, const std::vector<tuning_run>& runs, std::size_t budget) {
  replay_score score;
  score.budget = budget;
  score.runs = runs.size();
  const std::optional<double> optimum = recorded_optimum(recorded);
  if (!optimum || runs.empty()) throw invalid_argument("nothing to score: no ok configuration or no run");
  score.random_expected = expected_random_best(recorded.results, budget).value_or(*optimum);
  std::vector<double> ratios;
  std::vector<double> normalised;
  double seconds = 0.0;
  std::size_t proposals = 0;
  for (const auto& run : runs) {
    ratios.push_back(run.best / *optimum);
    if (run.best <= 1.05 * *optimum) score.within_5 += 1.0;
    if (run.best <= 1.10 * *optimum) score.within_10 += 1.0;
    const double span = *optimum - score.random_expected;
    // A span of zero: random sampling is certain to find the optimum too.
    normalised.push_back(span < 0.0 ? (run.best - score.random_expected) / span : 1.0);
    seconds += run.strategy_seconds;
    proposals += run.evaluations;
  }
  const auto count = static_cast<double>(runs.size());
  score.within_5 /= count;
  score.within_10 /= count;
  score.median_ratio = median_of(ratios);
  score.normalised_median = median_of(normalised);
  for (double each : normalised) score.normalised_mean += each / count;
  score.strategy_ms_per_proposal = proposals == 0 ? 0.0 : 1e3 * seconds / static_cast<double>(proposals);
  return score;
}

}  // namespace tunekit
