#pragma once
// Driving a strategy over a space under a budget: the loop every tuning
// session runs, whether the evaluator measures a GPU, replays a recorded
// space, or reads a results store first.

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string_view>
#include <vector>

#include "tunekit/replay.hpp"
#include "tunekit/strategy.hpp"

namespace tunekit {

/// How much a session may evaluate. Every set limit applies; the first reached
/// ends the session. Evaluations count distinct configurations, failed ones included.
struct budget {
  std::optional<std::size_t> evaluations;
  std::optional<double> fraction;  ///< of the space's configurations, in (0, 1]
  std::optional<double> time;      ///< total evaluation cost (ms); the one that crosses it is the last

  /// "100" (evaluations), "5%" (fraction) or "30s" (time: seconds of
  /// evaluation cost, stored in ms). Throws tunekit::invalid_argument.
  [[nodiscard]] static budget parse(std::string_view text);
  /// The evaluation limit for a space of `size` configurations: the smaller of
  /// `evaluations` and round(fraction * size), at least 1, at most `size`.
  [[nodiscard]] std::size_t evaluation_limit(std::size_t size) const;
};

/// Evaluates configuration `index` of the space being tuned.
using evaluator = std::function<evaluation_result(std::size_t index)>;

struct trace_point {
  std::size_t evaluation;  ///< 1-based count of evaluations when the best improved
  double best;
};

struct tuning_run {
  std::uint64_t seed = 0;
  std::size_t evaluations = 0;
  double cost = 0.0;                          ///< summed evaluation cost
  std::optional<std::size_t> best_index;      ///< none when nothing evaluated ok
  double best = std::numeric_limits<double>::infinity();
  std::vector<trace_point> trace;             ///< one point per improvement
  std::vector<std::size_t> order;             ///< indices in evaluation order
  double strategy_seconds = 0.0;              ///< wall time spent in propose/observe
};

/// Runs `search` over `space` from `seed` until the budget is spent or the
/// space is exhausted.
[[nodiscard]] tuning_run tune(strategy& search, const search_space& space, const evaluator& evaluate,
                              const budget& limits, std::uint64_t seed);

/// Replays `recorded`: each evaluation returns the recorded result, costing the
/// recorded compile + verification + benchmark time. Holds a reference:
/// `recorded` must outlive the evaluator.
[[nodiscard]] evaluator replay_evaluator(const recorded_space& recorded);

/// The exact expected best of `count` configurations drawn uniformly without
/// replacement from `results`, failed ones included, given that at least one
/// drawn is ok. nullopt when no result is ok.
[[nodiscard]] std::optional<double> expected_random_best(const std::vector<recorded_result>& results,
                                                         std::size_t count);

/// How a strategy did on a recorded space at one budget, over several seeds.
struct replay_score {
  std::size_t budget = 0;
  std::size_t runs = 0;
  double median_ratio = 0.0;      ///< median over runs of best / optimum (+inf when a run found nothing ok)
  double within_5 = 0.0;          ///< fraction of runs with best <= 1.05 * optimum
  double within_10 = 0.0;         ///< fraction of runs with best <= 1.10 * optimum
  double random_expected = 0.0;   ///< exact expected best of random sampling at this budget
  double normalised_median = 0.0; ///< median of (best - random_expected) / (optimum - random_expected)
  double normalised_mean = 0.0;
  double strategy_ms_per_proposal = 0.0;  ///< mean over every proposal of every run
};

/// Scores `runs` (made with the same budget) against the optimum of `recorded`.
[[nodiscard]] replay_score score_replay(const recorded_space& recorded, const std::vector<tuning_run>& runs,
                                        std::size_t budget);

/// The best ok objective of a recorded space, nullopt when none is ok.
[[nodiscard]] std::optional<double> recorded_optimum(const recorded_space& recorded);

}  // namespace tunekit
