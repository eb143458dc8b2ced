// simulated_annealing: a Metropolis walk over one-parameter changes.
//
//   - Start from the best of a batch of random configurations (32, or about
//     the square root of the space size when that is smaller).
//   - A move changes one parameter: which one uniformly among those with
//     more than one value, then any other value of it uniformly (a Hamming
//     neighbour; configurations outside the space are redrawn).
//   - Moves are judged on log(value) differences: a better or equal
//     configuration is always taken, a worse one with probability
//     exp(-difference / T); failed configurations are never moved to.
//   - A neighbour whose result is already known is a free move: the walk
//     takes or rejects it without spending an evaluation, so a proposal is
//     the first unknown neighbour the walk wants to visit. A walk that keeps
//     meeting known neighbours evaluates an unknown one of its position, or,
//     when there is none, heats up again elsewhere.
//   - The strategy never knows the budget: the temperature falls
//     geometrically from t_hot to t_cold over a span of evaluations since the
//     last (re)heat proportional to the number of tunable parameters, then
//     stays cold. Cold and without a new best for a while, the walk reheats
//     from the best configuration found; after a few reheats that found
//     nothing better, it restarts from a fresh random batch.
// Failed configurations count as evaluations and are infinitely bad.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "strategies/registry.hpp"

namespace tunekit::strategies {

namespace {

constexpr std::size_t start_samples = 32;   ///< random configurations before the walk, at most
constexpr std::size_t restart_samples = 4;  ///< random configurations at a restart (at least 1)
constexpr double t_hot = 0.07;   ///< log-value units: a 7% worse move is taken with odds 1/e
constexpr double t_cold = 0.015;
constexpr double cooling_per_parameter = 6.0;  ///< evaluations from hot to cold, per tunable parameter
constexpr double stall_per_parameter = 1.0;    ///< evaluations cold without a new best before a reheat
constexpr std::size_t max_reheats = 2;         ///< fruitless reheats in a row before a restart
constexpr double infinity = std::numeric_limits<double>::infinity();

class simulated_annealing final : public strategy {
  std::string_view do_name() const override { return "simulated_annealing"; }

  void do_start() override {
    tunable_.clear();
    for (std::size_t p = 0; p < space().parameters().size(); ++p)
      if (space().parameters()[p].values.size() > 1) tunable_.push_back(p);
    const auto parameters = static_cast<double>(std::max<std::size_t>(tunable_.size(), 1));
    cooling_span_ = cooling_per_parameter * parameters;
    stall_limit_ = stall_per_parameter * parameters;
    current_.reset();
    pending_.reset();
    // A small space gets a smaller batch: about its square root.
    const auto root = static_cast<std::size_t>(std::sqrt(static_cast<double>(space().size())));
    samples_left_ = std::min(start_samples, 1 + root);
    batch_.clear();
    heat_started_ = 0;
    reheats_ = 0;
    best_at_heat_ = infinity;
    walk_best_ = infinity;
    walk_best_at_ = 0;
  }

  std::optional<std::size_t> do_propose() override {
    if (!current_) return next_sample();
    const std::size_t free_moves = 40 + 10 * tunable_.size();
    for (std::size_t step = 0; step < free_moves; ++step) {
      if (cold_and_stuck()) {
        reheat();
        if (!current_) return next_sample();
      }
      const auto move = random_neighbour(*current_);
      if (!move) break;
      if (!evaluated(*move)) {
        pending_ = move;
        return move;
      }
      if (accept(value_of(*current_), value_of(*move))) current_ = move;
    }
    if (const auto unknown = unknown_neighbour(*current_)) {
      pending_ = unknown;
      return unknown;
    }
    reheat();
    if (current_) {
      if (const auto unknown = unknown_neighbour(*current_)) {
        pending_ = unknown;
        return unknown;
      }
    }
    start_fresh();
    return next_sample();
  }

  void do_observe(std::size_t index, const evaluation_result& /*result*/) override {
    const double v = value_of(index);
    if (v < walk_best_) {
      walk_best_ = v;
      walk_best_at_ = evaluations();
    }
    if (pending_ && *pending_ == index) {
      pending_.reset();
      if (current_ && accept(value_of(*current_), v)) current_ = index;
    }
  }

  // Failed (and unknown) configurations are infinitely bad.
  double value_of(std::size_t index) const {
    const evaluation_result* outcome = result(index);
    if (outcome == nullptr || !outcome->ok() || std::isnan(outcome->value)) return infinity;
    return outcome->value;
  }

  double temperature() const {
    const double progress = std::min(1.0, static_cast<double>(evaluations() - heat_started_) / cooling_span_);
    return t_hot * std::pow(t_cold / t_hot, progress);
  }

  // Metropolis on log values (on relative differences where a value is not positive).
  bool accept(double from, double to) {
    if (to == infinity) return false;
    if (to <= from) return true;
    const double difference =
        from > 0.0 && to > 0.0 ? std::log(to / from) : (to - from) / std::max(std::abs(from), std::abs(to));
    return uniform_real() < std::exp(-difference / temperature());
  }

  bool cold_and_stuck() const {
    const auto spent = static_cast<double>(evaluations() - heat_started_);
    const auto stalled = static_cast<double>(evaluations() - std::max(walk_best_at_, heat_started_));
    return spent >= cooling_span_ && stalled >= stall_limit_;
  }

  // Hot again from the best configuration found, or a restart once several
  // reheats in a row found nothing better.
  void reheat() {
    if (best_value() < best_at_heat_) {
      best_at_heat_ = best_value();
      reheats_ = 0;
    } else {
      ++reheats_;
    }
    if (reheats_ > max_reheats || !best()) {
      start_fresh();
      return;
    }
    begin_walk(*best());
  }

  void begin_walk(std::size_t from) {
    current_ = from;
    heat_started_ = evaluations();
    walk_best_ = value_of(from);
    walk_best_at_ = evaluations();
  }

  void start_fresh() {
    current_.reset();
    samples_left_ = restart_samples;
    batch_.clear();
    reheats_ = 0;
    best_at_heat_ = infinity;
  }

  // Random configurations; once the batch is known the walk starts at its best.
  std::optional<std::size_t> next_sample() {
    if (samples_left_ == 0) {
      std::optional<std::size_t> start;
      for (const std::size_t each : batch_)
        if (value_of(each) < (start ? value_of(*start) : infinity)) start = each;
      if (start) {
        begin_walk(*start);
        return do_propose();  // samples_left_ > 0 on every path back here: no deep recursion
      }
      samples_left_ = 1;  // nothing ok yet: keep sampling
    }
    --samples_left_;
    const auto pick = random_unevaluated();
    if (pick) batch_.push_back(*pick);
    return pick;
  }

  // One parameter changed: which uniformly, then any other value uniformly.
  std::optional<std::size_t> random_neighbour(std::size_t from) {
    if (tunable_.empty()) return std::nullopt;
    configuration config = space().at(from);
    for (int attempt = 0; attempt < 32; ++attempt) {
      const std::size_t p = tunable_[uniform_index(tunable_.size())];
      const std::uint32_t own = config.value_indices[p];
      const auto count = static_cast<std::uint32_t>(space().parameters()[p].values.size());
      config.value_indices[p] = (own + 1 + static_cast<std::uint32_t>(uniform_index(count - 1))) % count;
      const auto found = space().find(config);
      config.value_indices[p] = own;
      if (found) return found;
    }
    return std::nullopt;
  }

  // Uniformly among the unknown Hamming neighbours of `from`.
  std::optional<std::size_t> unknown_neighbour(std::size_t from) {
    unknown_.clear();
    for (const std::size_t each : space().neighbours(from, neighbourhood::hamming))
      if (!evaluated(each)) unknown_.push_back(each);
    if (unknown_.empty()) return std::nullopt;
    return unknown_[uniform_index(unknown_.size())];
  }

  std::vector<std::size_t> tunable_;  ///< parameters with more than one value
  double cooling_span_ = 1.0;
  double stall_limit_ = 1.0;
  std::optional<std::size_t> current_;  ///< the walk's position
  std::optional<std::size_t> pending_;  ///< a proposed move waiting for its result
  std::size_t samples_left_ = 0;        ///< random configurations still to draw
  std::vector<std::size_t> batch_;      ///< this batch's random configurations
  std::size_t heat_started_ = 0;        ///< evaluations() at the last (re)heat
  std::size_t reheats_ = 0;             ///< reheats in a row without a new overall best
  double best_at_heat_ = infinity;      ///< the overall best at the last reheat
  double walk_best_ = infinity;         ///< the best value since the walk (re)started
  std::size_t walk_best_at_ = 0;
  std::vector<std::size_t> unknown_;
};

}  // namespace

std::unique_ptr<strategy> make_simulated_annealing() { return std::make_unique<simulated_annealing>(); }

}  // namespace tunekit::strategies
