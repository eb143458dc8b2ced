// random: uniform sampling without replacement, the baseline every other
// strategy must beat.

#include "strategies/registry.hpp"

namespace tunekit::strategies {

namespace {

class random_sampling final : public strategy {
  std::string_view do_name() const override { return "random"; }
  std::optional<std::size_t> do_propose() override { return random_unevaluated(); }
};

}  // namespace

std::unique_ptr<strategy> make_random() { return std::make_unique<random_sampling>(); }

}  // namespace tunekit::strategies
