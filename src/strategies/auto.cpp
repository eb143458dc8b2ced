// auto: the default, chosen by measurement (bench/strategies/README.md). On
// every recorded space at 2% and 5% budgets bayes_opt scored best, so auto
// runs bayes_opt; past `handover` evaluations, where the model's cost per
// proposal grows with every observation, it hands the search, with every
// result seen so far, to greedy_ils.

#include "strategies/registry.hpp"

namespace tunekit::strategies {

namespace {

constexpr std::size_t handover = 2048;

class automatic final : public strategy {
  std::string_view do_name() const override { return "auto"; }

  void do_start() override {
    model_ = make_bayes_opt();
    local_.reset();
    history_.clear();
    const std::uint64_t seed = rng()();
    model_->start(space(), seed);
  }

  std::optional<std::size_t> do_propose() override {
    if (!local_ && evaluations() >= handover) {
      local_ = make_greedy_ils();
      local_->start(space(), rng()());
      for (const auto& [index, outcome] : history_) local_->observe(index, outcome);
      history_.clear();
      model_.reset();
    }
    return active().propose();
  }

  void do_observe(std::size_t index, const evaluation_result& outcome) override {
    active().observe(index, outcome);
    if (!local_) history_.emplace_back(index, outcome);
  }

  strategy& active() { return local_ ? *local_ : *model_; }

  std::unique_ptr<strategy> model_;
  std::unique_ptr<strategy> local_;
  std::vector<std::pair<std::size_t, evaluation_result>> history_;
};

}  // namespace

std::unique_ptr<strategy> make_auto() { return std::make_unique<automatic>(); }

}  // namespace tunekit::strategies
