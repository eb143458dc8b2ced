// pso: particle swarm optimisation over the parameters' value positions.
//
//   - Each particle has a real position and velocity with one coordinate per
//     parameter of more than one value: the value's position in its list,
//     0 .. count-1. The swarm starts at random configurations.
//   - A move: v = w*v + c1*r1*(own best - x) + c2*r2*(swarm's best - x), with
//     r1, r2 uniform per coordinate and |v| at most half the coordinate's range
//     (the full range drove particles to the ends and lost to random sampling
//     on a bowl with a mid-range optimum);
//     x += v, clamped to the range. Turbulence then sets about one coordinate
//     per move to a random value, so that unordered parameters get explored.
//   - The position is snapped to the nearest valid configuration: the rounded
//     one if valid, else the nearest that changes one parameter, else two,
//     else the nearest of a random sample of the space.
//   - A snapped configuration with a known result costs nothing: the particle
//     takes it and the next one moves. A particle that lands on known
//     configurations several moves in a row restarts at a random new one.
//   - Failed configurations rank below every ok one.

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "strategies/registry.hpp"

namespace tunekit::strategies {

namespace {

// Tuned on the recorded gemm, convolution and pnpoly spaces at 2% and 5% budgets.
constexpr std::size_t swarm_size = 10;
constexpr double inertia = 0.7;
constexpr double cognitive = 2.0;          // pull towards the particle's own best
constexpr double social = 1.5;             // pull towards the swarm's best
constexpr double turbulence = 1.0;         // expected coordinates set at random per move
constexpr std::size_t stall_limit = 5;     // known configurations in a row before a restart
constexpr std::size_t snap_sample = 64;    // last resort of snapping: the nearest of this many
constexpr std::size_t moves_per_proposal = 50 * swarm_size;  // before a random proposal

class particle_swarm final : public strategy {
  struct particle {
    std::vector<double> position;
    std::vector<double> velocity;
    std::size_t best = 0;
    double best_fitness = std::numeric_limits<double>::infinity();
    std::size_t stalled = 0;  // moves in a row onto known configurations
  };

  std::string_view do_name() const override { return "pso"; }

  void do_start() override {
    genes_.clear();
    ranges_.clear();
    for (std::size_t p = 0; p < space().parameters().size(); ++p)
      if (space().parameters()[p].values.size() > 1) {
        genes_.push_back(p);
        ranges_.push_back(static_cast<double>(space().parameters()[p].values.size() - 1));
      }
    particles_.clear();
    pending_.reset();
    turn_ = 0;
  }

  std::optional<std::size_t> do_propose() override {
    pending_.reset();
    if (genes_.empty() || particles_.size() < swarm_size) return random_unevaluated();
    for (std::size_t move_count = 0; move_count < moves_per_proposal; ++move_count) {
      const std::size_t which = turn_;
      turn_ = (turn_ + 1) % particles_.size();
      particle& each = particles_[which];
      const std::optional<std::size_t> index =
          each.stalled >= stall_limit ? random_unevaluated() : std::optional<std::size_t>(move(each));
      if (!index) return std::nullopt;
      if (!evaluated(*index)) {
        pending_ = {which, *index};
        return index;
      }
      settle(each, *index);
      ++each.stalled;
    }
    return random_unevaluated();
  }

  void do_observe(std::size_t index, const evaluation_result&) override {
    if (genes_.empty()) return;
    if (particles_.size() < swarm_size) {
      particles_.push_back(spawn(index));
      return;
    }
    if (!pending_ || pending_->second != index) return;  // a result from elsewhere
    particle& each = particles_[pending_->first];
    pending_.reset();
    if (each.stalled >= stall_limit) {
      each = spawn(index);  // the restart
      return;
    }
    settle(each, index);
    each.stalled = 0;
  }

  double fitness(std::size_t index) const {
    const evaluation_result* known = result(index);
    if (known == nullptr || !known->ok() || !std::isfinite(known->value))
      return std::numeric_limits<double>::infinity();
    return known->value;
  }

  double coordinate(std::size_t index, std::size_t g) const {
    return static_cast<double>(space().value_index(index, genes_[g]));
  }

  particle spawn(std::size_t index) {
    particle fresh;
    fresh.position.resize(genes_.size());
    fresh.velocity.resize(genes_.size());
    for (std::size_t g = 0; g < genes_.size(); ++g) {
      fresh.position[g] = coordinate(index, g);
      fresh.velocity[g] = (2.0 * uniform_real() - 1.0) * ranges_[g];
    }
    fresh.best = index;
    fresh.best_fitness = fitness(index);
    return fresh;
  }

  // The particle is at `index`: remember it if it is its best.
  void settle(particle& each, std::size_t index) {
    const double value = fitness(index);
    if (value < each.best_fitness) {
      each.best_fitness = value;
      each.best = index;
    }
  }

  // One velocity and position update; returns the snapped configuration.
  std::size_t move(particle& each) {
    const std::optional<std::size_t> leader = best();
    const double chaos = turbulence / static_cast<double>(genes_.size());
    for (std::size_t g = 0; g < genes_.size(); ++g) {
      const double x = each.position[g];
      double v = inertia * each.velocity[g] + cognitive * uniform_real() * (coordinate(each.best, g) - x);
      if (leader) v += social * uniform_real() * (coordinate(*leader, g) - x);
      v = std::clamp(v, -0.5 * ranges_[g], 0.5 * ranges_[g]);
      each.velocity[g] = v;
      each.position[g] = std::clamp(x + v, 0.0, ranges_[g]);
      if (uniform_real() < chaos)
        each.position[g] = static_cast<double>(uniform_index(static_cast<std::size_t>(ranges_[g]) + 1));
    }
    return snap(each.position);
  }

  double distance(const std::vector<double>& position, const configuration& config) const {
    double sum = 0.0;
    for (std::size_t g = 0; g < genes_.size(); ++g) {
      const double d = position[g] - config.value_indices[genes_[g]];
      sum += d * d;
    }
    return sum;
  }

  // The nearest valid configuration to `position`, as far as cheaply found.
  std::size_t snap(const std::vector<double>& position) {
    configuration config = space().at(0);  // for the parameters of one value
    for (std::size_t g = 0; g < genes_.size(); ++g)
      config.value_indices[genes_[g]] = static_cast<std::uint32_t>(std::lround(position[g]));
    if (const auto found = space().find(config)) return *found;

    std::optional<std::size_t> chosen;
    double nearest = std::numeric_limits<double>::infinity();
    const auto consider = [&] {
      const double d = distance(position, config);
      if (d >= nearest) return;
      if (const auto found = space().find(config)) {
        nearest = d;
        chosen = found;
      }
    };
    const auto values = [&](std::size_t g) { return static_cast<std::uint32_t>(ranges_[g]) + 1; };
    // One parameter changed.
    for (std::size_t g = 0; g < genes_.size(); ++g) {
      const std::uint32_t original = config.value_indices[genes_[g]];
      for (std::uint32_t value = 0; value < values(g); ++value) {
        if (value == original) continue;
        config.value_indices[genes_[g]] = value;
        consider();
      }
      config.value_indices[genes_[g]] = original;
    }
    if (chosen) return *chosen;
    // Two parameters changed.
    for (std::size_t g = 0; g < genes_.size(); ++g) {
      const std::uint32_t first = config.value_indices[genes_[g]];
      for (std::uint32_t a = 0; a < values(g); ++a) {
        if (a == first) continue;
        config.value_indices[genes_[g]] = a;
        for (std::size_t h = g + 1; h < genes_.size(); ++h) {
          const std::uint32_t second = config.value_indices[genes_[h]];
          for (std::uint32_t b = 0; b < values(h); ++b) {
            if (b == second) continue;
            config.value_indices[genes_[h]] = b;
            consider();
          }
          config.value_indices[genes_[h]] = second;
        }
      }
      config.value_indices[genes_[g]] = first;
    }
    if (chosen) return *chosen;
    // Far from anything valid: the nearest of a random sample.
    std::size_t pick = uniform_index(space().size());
    nearest = distance(position, space().at(pick));
    for (std::size_t s = 1; s < snap_sample; ++s) {
      const std::size_t candidate = uniform_index(space().size());
      const double d = distance(position, space().at(candidate));
      if (d < nearest) {
        nearest = d;
        pick = candidate;
      }
    }
    return pick;
  }

  std::vector<std::size_t> genes_;  // parameters with more than one value
  std::vector<double> ranges_;      // their value counts - 1
  std::vector<particle> particles_;
  std::optional<std::pair<std::size_t, std::size_t>> pending_;  // particle, index awaiting its result
  std::size_t turn_ = 0;
};

}  // namespace

std::unique_ptr<strategy> make_pso() { return std::make_unique<particle_swarm>(); }

}  // namespace tunekit::strategies
