// genetic_algorithm: an elitist (mu + lambda) genetic algorithm over the
// parameters' value indices.
//
//   - The first population is drawn uniformly at random.
//   - Each child has two parents chosen by tournament; uniform crossover mixes
//     them (most of the time), and mutation changes about one gene: to the
//     first or last value of its parameter's list (tuning optima often sit at
//     the edge of a range), to a neighbouring value, or to any value.
//   - A child outside the space is repaired by the smallest single-gene change
//     that makes it valid (a random one among equals), or dropped.
//   - A child whose result is already known costs nothing: it joins the
//     generation with that result and another child is bred. Only unknown
//     children are proposed.
//   - Once a generation is complete, parents and children compete: the best
//     distinct individuals survive.
//   - Failed configurations rank below every ok one.
//   - Should breeding keep producing known or duplicate children, a random
//     unevaluated configuration keeps the search moving.
// Fitness is the objective itself (lower is better); only its order matters.

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "strategies/registry.hpp"

namespace tunekit::strategies {

namespace {

// Tuned on the recorded gemm, convolution and pnpoly spaces at 2% and 5% budgets.
constexpr std::size_t population_size = 12;
constexpr std::size_t tournament_size = 4;
constexpr double crossover_rate = 0.8;
constexpr double mutated_genes = 1.0;   // expected per child; at least one is mutated
constexpr double boundary_share = 0.5;  // mutations to the first or the last value,
constexpr double adjacent_share = 0.3;  // to a neighbouring value, the rest to any value
constexpr std::size_t breeding_attempts = 200;  // per proposal, before a random one

class genetic_algorithm final : public strategy {
  struct individual {
    std::size_t index;
    double fitness;  // the objective; +inf for a failed configuration
  };

  std::string_view do_name() const override { return "genetic_algorithm"; }

  void do_start() override {
    population_.clear();
    children_.clear();
    in_generation_.assign(space().size(), 0);
    genes_.clear();
    for (std::size_t p = 0; p < space().parameters().size(); ++p)
      if (space().parameters()[p].values.size() > 1) genes_.push_back(p);
  }

  std::optional<std::size_t> do_propose() override {
    if (population_.size() < population_size || genes_.empty()) return random_unevaluated();
    for (std::size_t attempt = 0; attempt < breeding_attempts; ++attempt) {
      if (children_.size() >= population_size) next_generation();
      const std::optional<std::size_t> child = breed();
      if (!child || in_generation_[*child] != 0) continue;
      if (!evaluated(*child)) return child;
      add(children_, *child);  // known: its fitness is free, breed another
    }
    return random_unevaluated();
  }

  // Proposed children, the random first population and results from
  // elsewhere all join the current generation.
  void do_observe(std::size_t index, const evaluation_result&) override {
    if (in_generation_[index] != 0) return;
    add(population_.size() < population_size ? population_ : children_, index);
  }

  double fitness(std::size_t index) const {
    const evaluation_result* known = result(index);
    if (known == nullptr || !known->ok() || !std::isfinite(known->value))
      return std::numeric_limits<double>::infinity();
    return known->value;
  }

  void add(std::vector<individual>& group, std::size_t index) {
    in_generation_[index] = 1;
    group.push_back({index, fitness(index)});
  }

  // Parents and children compete; the best distinct ones survive.
  void next_generation() {
    std::vector<individual> all = population_;
    all.insert(all.end(), children_.begin(), children_.end());
    std::sort(all.begin(), all.end(), [](const individual& a, const individual& b) {
      return a.fitness < b.fitness || (a.fitness == b.fitness && a.index < b.index);
    });
    for (const auto& each : all) in_generation_[each.index] = 0;
    population_.clear();
    children_.clear();
    for (const auto& each : all) {
      if (population_.size() == population_size) break;
      add(population_, each.index);
    }
  }

  std::size_t select() {
    std::size_t winner = uniform_index(population_.size());
    for (std::size_t round = 1; round < tournament_size; ++round) {
      const std::size_t rival = uniform_index(population_.size());
      if (population_[rival].fitness < population_[winner].fitness) winner = rival;
    }
    return population_[winner].index;
  }

  void mutate(configuration& config, std::size_t p) {
    const auto count = static_cast<std::uint32_t>(space().parameters()[p].values.size());
    std::uint32_t& value = config.value_indices[p];
    const double kind = uniform_real();
    if (kind < boundary_share) {
      value = uniform_real() < 0.5 ? 0 : count - 1;
    } else if (kind < boundary_share + adjacent_share) {
      if (value == 0) value = 1;
      else if (value + 1 == count) value = count - 2;
      else value = uniform_real() < 0.5 ? value - 1 : value + 1;
    } else {
      const auto other = static_cast<std::uint32_t>(uniform_index(count - 1));
      value = other >= value ? other + 1 : other;
    }
  }

  std::optional<std::size_t> breed() {
    configuration child = space().at(select());
    if (uniform_real() < crossover_rate) {
      const std::size_t other = select();
      for (const std::size_t p : genes_)
        if (uniform_real() < 0.5) child.value_indices[p] = space().value_index(other, p);
    }
    const double rate = mutated_genes / static_cast<double>(genes_.size());
    bool mutated = false;
    for (const std::size_t p : genes_)
      if (uniform_real() < rate) {
        mutate(child, p);
        mutated = true;
      }
    if (!mutated) mutate(child, genes_[uniform_index(genes_.size())]);
    if (const auto found = space().find(child)) return found;
    return repair(child);
  }

  // Of the valid configurations one gene away from `config`, one of those
  // nearest in value position; nullopt when there is none.
  std::optional<std::size_t> repair(configuration& config) {
    std::optional<std::size_t> chosen;
    std::uint32_t nearest = std::numeric_limits<std::uint32_t>::max();
    std::size_t ties = 0;
    for (const std::size_t p : genes_) {
      const std::uint32_t original = config.value_indices[p];
      const auto count = static_cast<std::uint32_t>(space().parameters()[p].values.size());
      for (std::uint32_t value = 0; value < count; ++value) {
        const std::uint32_t distance = value > original ? value - original : original - value;
        if (distance == 0 || distance > nearest) continue;
        config.value_indices[p] = value;
        if (const auto found = space().find(config)) {
          if (distance < nearest) {
            nearest = distance;
            ties = 0;
          }
          if (uniform_index(++ties) == 0) chosen = found;  // uniform among the nearest
        }
      }
      config.value_indices[p] = original;
    }
    return chosen;
  }

  std::vector<std::size_t> genes_;  // parameters with more than one value
  std::vector<individual> population_;
  std::vector<individual> children_;
  std::vector<std::uint8_t> in_generation_;  // index -> in population_ or children_
};

}  // namespace

std::unique_ptr<strategy> make_genetic_algorithm() { return std::make_unique<genetic_algorithm>(); }

}  // namespace tunekit::strategies
