#pragma once
// Internal: one factory per strategy file; make_strategy() maps names to them.

#include <memory>

#include "tunekit/strategy.hpp"

namespace tunekit::strategies {

std::unique_ptr<strategy> make_auto();
std::unique_ptr<strategy> make_bayes_opt();
std::unique_ptr<strategy> make_brute_force();
std::unique_ptr<strategy> make_genetic_algorithm();
std::unique_ptr<strategy> make_greedy_ils();
std::unique_ptr<strategy> make_pso();
std::unique_ptr<strategy> make_random();
std::unique_ptr<strategy> make_simulated_annealing();

}  // namespace tunekit::strategies
