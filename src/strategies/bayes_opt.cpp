// bayes_opt: placeholder until its search lands; proposes uniformly at random.

#include "strategies/registry.hpp"

namespace tunekit::strategies {

namespace {

class placeholder final : public strategy {
  std::string_view do_name() const override { return "bayes_opt"; }
  std::optional<std::size_t> do_propose() override { return random_unevaluated(); }
};

}  // namespace

std::unique_ptr<strategy> make_bayes_opt() { return std::make_unique<placeholder>(); }

}  // namespace tunekit::strategies
