// pso: placeholder until its search lands; proposes uniformly at random.

#include "strategies/registry.hpp"

namespace tunekit::strategies {

namespace {

class placeholder final : public strategy {
  std::string_view do_name() const override { return "pso"; }
  std::optional<std::size_t> do_propose() override { return random_unevaluated(); }
};

}  // namespace

std::unique_ptr<strategy> make_pso() { return std::make_unique<placeholder>(); }

}  // namespace tunekit::strategies
