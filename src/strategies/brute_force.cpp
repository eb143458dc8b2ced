// brute_force: every configuration in index order. The reference a budgeted
// search is scored against, and the right choice for tiny spaces.

#include "strategies/registry.hpp"

namespace tunekit::strategies {

namespace {

class brute_force final : public strategy {
  std::string_view do_name() const override { return "brute_force"; }
  void do_start() override { next_ = 0; }
  std::optional<std::size_t> do_propose() override {
    while (next_ < space().size() && evaluated(next_)) ++next_;
    if (next_ == space().size()) return std::nullopt;
    return next_;
  }
  std::size_t next_ = 0;
};

}  // namespace

std::unique_ptr<strategy> make_brute_force() { return std::make_unique<brute_force>(); }

}  // namespace tunekit::strategies
