#pragma once
// Search strategies: one interface, ask/tell. A strategy proposes the next
// configuration of a search space to evaluate and is told each result; the
// base class guarantees what every strategy promises:
//   - deterministic for a given seed,
//   - never proposes a configuration it has seen a result for,
//   - failed configurations count as evaluations and are remembered.
//
//   auto search = tunekit::make_strategy("genetic_algorithm");
//   search->start(space, /*seed=*/7);
//   while (auto index = search->propose()) search->observe(*index, evaluate(*index));

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tunekit/evaluation.hpp"
#include "tunekit/search_space.hpp"

namespace tunekit {

/// The result of evaluating one configuration. Lower values are better.
struct evaluation_result {
  evaluation_status status = evaluation_status::ok;
  double value = 0.0;  ///< the objective, meaningful when status is ok
  double cost = 0.0;   ///< what the evaluation took (ms), charged to time budgets

  [[nodiscard]] bool ok() const { return status == evaluation_status::ok; }
};

class strategy {
 public:
  virtual ~strategy() = default;
  strategy() = default;
  strategy(const strategy&) = delete;
  strategy& operator=(const strategy&) = delete;

  [[nodiscard]] std::string_view name() const { return do_name(); }

  /// Begins a search of `space` (which must outlive it), forgetting any earlier one.
  void start(const search_space& space, std::uint64_t seed);
  /// The next configuration to evaluate, one never observed before and not
  /// awaiting its result; nullopt once every configuration has been observed
  /// or is awaiting its result. Several proposals may be out at once (a
  /// pipelined runner asks ahead while results are pending): one the strategy
  /// proposes again before its result arrives is replaced by a uniform pick
  /// among the configurations neither observed nor awaited.
  [[nodiscard]] std::optional<std::size_t> propose();
  /// Tells the strategy the result for `index`: a proposed configuration or
  /// one known from elsewhere (a results store). A second result for the same
  /// index is ignored.
  void observe(std::size_t index, const evaluation_result& result);

  [[nodiscard]] std::size_t evaluations() const { return evaluations_; }
  /// The best configuration observed with status ok, if any.
  [[nodiscard]] std::optional<std::size_t> best() const { return best_; }

 protected:
  [[nodiscard]] const search_space& space() const { return *space_; }
  [[nodiscard]] std::mt19937_64& rng() { return rng_; }
  [[nodiscard]] bool evaluated(std::size_t index) const { return evaluated_[index] != 0; }
  /// The observed result of `index`, nullptr when none.
  [[nodiscard]] const evaluation_result* result(std::size_t index) const;
  [[nodiscard]] std::size_t remaining() const { return unevaluated_.size(); }
  /// Uniformly among the configurations not observed yet; nullopt when none is left.
  [[nodiscard]] std::optional<std::size_t> random_unevaluated();
  /// The objective of the best ok result, +inf before there is one.
  [[nodiscard]] double best_value() const;
  /// A uniform index in [0, count).
  [[nodiscard]] std::size_t uniform_index(std::size_t count);
  /// A uniform real in [0, 1).
  [[nodiscard]] double uniform_real();

  [[nodiscard]] virtual std::string_view do_name() const = 0;
  /// Called by start() after the shared state is reset; space() and rng() are ready.
  virtual void do_start() {}
  /// The next index to evaluate. It must not be evaluated(); returning nullopt
  /// hands the choice to a uniform random pick among the unevaluated.
  [[nodiscard]] virtual std::optional<std::size_t> do_propose() = 0;
  /// Called after the shared state recorded the result of `index`.
  virtual void do_observe(std::size_t /*index*/, const evaluation_result& /*result*/) {}

 private:
  const search_space* space_ = nullptr;
  std::mt19937_64 rng_;
  std::vector<std::uint8_t> evaluated_;
  std::vector<std::uint8_t> awaited_;              ///< proposed, result not observed yet
  std::size_t awaited_count_ = 0;
  std::vector<evaluation_result> results_;
  std::vector<std::size_t> unevaluated_;           ///< unordered set of indices, O(1) removal
  std::vector<std::size_t> position_;              ///< index -> its slot in unevaluated_
  std::size_t evaluations_ = 0;
  std::optional<std::size_t> best_;
};

/// The strategies tunekit ships, by name: brute_force, random,
/// simulated_annealing, genetic_algorithm, pso, greedy_ils, bayes_opt, auto.
[[nodiscard]] std::vector<std::string> strategy_names();

/// Throws tunekit::invalid_argument naming the known strategies for an unknown name.
[[nodiscard]] std::unique_ptr<strategy> make_strategy(std::string_view name);

}  // namespace tunekit
