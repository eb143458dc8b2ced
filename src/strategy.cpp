#include "tunekit/strategy.hpp"

#include <cmath>
#include <stdexcept>

#include "strategies/registry.hpp"
#include "tunekit/error.hpp"

namespace tunekit {

void strategy::start(const search_space& space, std::uint64_t seed) {
  space_ = &space;
  rng_.seed(seed);
  evaluated_.assign(space.size(), 0);
  awaited_.assign(space.size(), 0);
  awaited_count_ = 0;
  results_.assign(space.size(), evaluation_result{});
  unevaluated_.resize(space.size());
  position_.resize(space.size());
  for (std::size_t i = 0; i < space.size(); ++i) unevaluated_[i] = position_[i] = i;
  evaluations_ = 0;
  best_.reset();
  do_start();
}

std::optional<std::size_t> strategy::propose() {
  if (space_ == nullptr) throw std::logic_error("strategy::propose before start");
  if (unevaluated_.size() <= awaited_count_) return std::nullopt;
  std::optional<std::size_t> index = do_propose();
  if (index && (*index >= space_->size() || evaluated(*index)))
    throw std::logic_error(std::string(name()) + " proposed a configuration it has already seen");
  if (!index || awaited_[*index] != 0) {
    // Rejection sampling while most are free; a scan of the rest otherwise.
    index.reset();
    if (awaited_count_ * 2 < unevaluated_.size()) {
      while (!index) {
        const std::size_t pick = unevaluated_[uniform_index(unevaluated_.size())];
        if (awaited_[pick] == 0) index = pick;
      }
    } else {
      std::vector<std::size_t> free;
      for (const std::size_t each : unevaluated_)
        if (awaited_[each] == 0) free.push_back(each);
      index = free[uniform_index(free.size())];
    }
  }
  awaited_[*index] = 1;
  ++awaited_count_;
  return index;
}

void strategy::observe(std::size_t index, const evaluation_result& outcome) {
  if (space_ == nullptr) throw std::logic_error("strategy::observe before start");
  if (index >= space_->size()) throw std::out_of_range("strategy::observe: index outside the space");
  if (evaluated(index)) return;
  if (awaited_[index] != 0) {
    awaited_[index] = 0;
    --awaited_count_;
  }
  evaluated_[index] = 1;
  results_[index] = outcome;
  ++evaluations_;
  // Swap-remove from the unevaluated set.
  const std::size_t slot = position_[index];
  const std::size_t last = unevaluated_.back();
  unevaluated_[slot] = last;
  position_[last] = slot;
  unevaluated_.pop_back();
  if (outcome.ok() && std::isfinite(outcome.value) && (!best_ || outcome.value < results_[*best_].value))
    best_ = index;
  do_observe(index, outcome);
}

const evaluation_result* strategy::result(std::size_t index) const {
  return evaluated(index) ? &results_[index] : nullptr;
}

std::optional<std::size_t> strategy::random_unevaluated() {
  if (unevaluated_.empty()) return std::nullopt;
  return unevaluated_[uniform_index(unevaluated_.size())];
}

double strategy::best_value() const {
  return best_ ? results_[*best_].value : std::numeric_limits<double>::infinity();
}

// Our own mappings rather than std::uniform_*_distribution, whose output is
// implementation-defined: a seed gives the same search with every library.
std::size_t strategy::uniform_index(std::size_t count) {
  if (count <= 1) return 0;
  const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() -
                              std::numeric_limits<std::uint64_t>::max() % count;
  std::uint64_t draw = rng_();
  while (draw >= limit) draw = rng_();
  return static_cast<std::size_t>(draw % count);
}

double strategy::uniform_real() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

std::vector<std::string> strategy_names() {
  return {"auto", "bayes_opt", "brute_force", "genetic_algorithm", "greedy_ils", "pso", "random",
          "simulated_annealing"};
}

std::unique_ptr<strategy> make_strategy(std::string_view name) {
  using namespace strategies;
  if (name == "auto") return make_auto();
  if (name == "bayes_opt") return make_bayes_opt();
  if (name == "brute_force") return make_brute_force();
  if (name == "genetic_algorithm") return make_genetic_algorithm();
  if (name == "greedy_ils") return make_greedy_ils();
  if (name == "pso") return make_pso();
  if (name == "random") return make_random();
  if (name == "simulated_annealing") return make_simulated_annealing();
  std::string known;
  for (const auto& each : strategy_names()) known += (known.empty() ? "" : ", ") + each;
  throw invalid_argument("unknown strategy '" + std::string(name) + "' (known: " + known + ")");
}

}  // namespace tunekit
