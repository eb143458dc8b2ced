// greedy_ils: iterated local search over one-parameter changes.
//
//   1. Start from the best of a batch of random configurations (40, or about
//      the square root of the space size when that is smaller).
//   2. Descent, first improvement over the Hamming neighbourhood (any one
//      parameter changed). Known results are free: if a known neighbour beats
//      the current configuration the walk moves to the best such one at once.
//      Otherwise it evaluates unknown neighbours, taking the parameters in a
//      shuffled round (for each an unknown value next to the current one
//      first, else any unknown value), until one beats the current
//      configuration. A configuration counts as a local optimum once a full
//      round found nothing better, or when no neighbour is unknown.
//   3. A local optimum that beats the home (the best local optimum of this
//      run) becomes the home. A kick moves the home to one of its neighbours
//      (next-value neighbours first, each one once) and the kicked parameter
//      stays frozen during the next descent, until that descent gains more
//      than a sliver or beats the home: the descent cannot simply undo the
//      kick, so the kick plus descent explores two- and more-parameter moves
//      around the home. Between kicks that fail, the walk goes back to the
//      home for another round over its unknown neighbours.
//   4. After several kicks in a row that fail to beat the home, or once the
//      home has no neighbour left to kick to, restart from the best unused
//      random configuration after drawing a few more.
// Failed configurations count as evaluations and rank below every ok one.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "strategies/registry.hpp"

namespace tunekit::strategies {

namespace {

constexpr std::size_t start_samples = 40;   ///< random configurations before the first descent, at most
constexpr std::size_t restart_samples = 4;  ///< fresh random configurations drawn at a restart
constexpr std::size_t max_failed_kicks = 10;  ///< kicks of a home in a row that fail before a restart
constexpr double unfreeze_gain = 0.002;     ///< a descent step this much better frees the kicked parameters
constexpr double infinity = std::numeric_limits<double>::infinity();
constexpr std::size_t none = std::numeric_limits<std::size_t>::max();

class greedy_ils final : public strategy {
  std::string_view do_name() const override { return "greedy_ils"; }

  void do_start() override {
    tunable_.clear();
    for (std::size_t p = 0; p < space().parameters().size(); ++p)
      if (space().parameters()[p].values.size() > 1) tunable_.push_back(p);
    frozen_.assign(space().parameters().size(), 0);
    current_.reset();
    home_.reset();
    failed_kicks_ = 0;
    polishing_ = false;
    scanned_ = none;
    misses_ = 0;
    tried_kicks_.clear();
    samples_.clear();
    // A small space gets a smaller batch: about its square root.
    const auto root = static_cast<std::size_t>(std::sqrt(static_cast<double>(space().size())));
    samples_left_ = std::min(start_samples, 1 + root);
  }

  std::optional<std::size_t> do_propose() override {
    // Each pass returns an unknown configuration or moves the search on for
    // free (a strictly better known neighbour, a kick, a restart); the guard
    // only keeps a pathological space from spinning.
    for (int guard = 0; guard < 4096; ++guard) {
      if (!current_) {
        if (const auto sample = next_sample()) return sample;
        if (!current_) return std::nullopt;
        continue;
      }
      const std::size_t here = *current_;
      if (!evaluated(here)) return here;  // a kick waiting for its result
      if (here != scanned_) {  // a new point: a new round over the parameters
        scanned_ = here;
        misses_ = 0;
        shuffle_round();
      }
      collect_neighbours(here);
      std::optional<std::size_t> better;
      double better_value = value_of(here);
      for (const auto& [p, each] : around_) {
        if (evaluated(each) && value_of(each) < better_value) {
          better = each;
          better_value = value_of(each);
        }
      }
      if (better) {
        if (better_value < value_of(here) * (1.0 - unfreeze_gain) || (home_ && better_value < value_of(*home_)))
          std::fill(frozen_.begin(), frozen_.end(), std::uint8_t{0});
        current_ = better;
        continue;
      }
      if (misses_ < tunable_.size()) {
        if (const auto next = next_in_round()) {
          ++misses_;
          return next;
        }
      }
      local_optimum(here);
    }
    return std::nullopt;
  }

  // Failed (and unknown) configurations rank below every ok one.
  double value_of(std::size_t index) const {
    const evaluation_result* outcome = result(index);
    if (outcome == nullptr || !outcome->ok() || std::isnan(outcome->value)) return infinity;
    return outcome->value;
  }

  // Random configurations to evaluate; once they are known the descent
  // starts at the best unused one.
  std::optional<std::size_t> next_sample() {
    if (samples_left_ == 0) {
      std::size_t slot = none;
      for (std::size_t i = 0; i < samples_.size(); ++i)
        if (value_of(samples_[i]) < (slot == none ? infinity : value_of(samples_[slot]))) slot = i;
      if (slot != none) {
        begin_descent(samples_[slot]);
        samples_.erase(samples_.begin() + static_cast<std::ptrdiff_t>(slot));
        return std::nullopt;
      }
      samples_left_ = 1;  // nothing ok yet: keep sampling
    }
    --samples_left_;
    const auto pick = random_unevaluated();
    if (pick) samples_.push_back(*pick);
    return pick;
  }

  void begin_descent(std::size_t from) {
    std::fill(frozen_.begin(), frozen_.end(), std::uint8_t{0});
    current_ = from;
    scanned_ = none;
  }

  void restart() {
    current_.reset();
    home_.reset();
    failed_kicks_ = 0;
    polishing_ = false;
    samples_left_ = restart_samples;
  }

  // The descent stopped at `here`: update the home, then polish it or kick it.
  void local_optimum(std::size_t here) {
    const bool was_polishing = polishing_;
    polishing_ = false;
    if (!home_ || value_of(here) < value_of(*home_)) {
      home_ = here;
      failed_kicks_ = 0;
      tried_kicks_.clear();
    } else if (!was_polishing) {
      if (++failed_kicks_ >= max_failed_kicks) {
        restart();
        return;
      }
      if (has_unknown_neighbour(*home_)) {
        begin_descent(*home_);
        polishing_ = true;
        return;
      }
    }
    if (value_of(*home_) == infinity) {
      restart();
      return;
    }
    const auto kicked = kick(*home_);
    if (!kicked) {
      restart();
      return;
    }
    begin_descent(*kicked);
    for (const std::size_t p : tunable_)
      frozen_[p] = space().value_index(*kicked, p) != space().value_index(*home_, p) ? 1 : 0;
  }

  // The Hamming neighbours of `here` through parameters not frozen, as
  // (parameter changed, index).
  void collect_neighbours(std::size_t here) {
    around_.clear();
    configuration config = space().at(here);
    for (const std::size_t p : tunable_) {
      if (frozen_[p] != 0) continue;
      const std::uint32_t own = config.value_indices[p];
      const auto count = static_cast<std::uint32_t>(space().parameters()[p].values.size());
      for (std::uint32_t v = 0; v < count; ++v) {
        if (v == own) continue;
        config.value_indices[p] = v;
        if (const auto found = space().find(config)) around_.emplace_back(p, *found);
      }
      config.value_indices[p] = own;
    }
  }

  void shuffle_round() {
    round_ = tunable_;
    for (std::size_t i = round_.size(); i > 1; --i) std::swap(round_[i - 1], round_[uniform_index(i)]);
    cursor_ = 0;
  }

  static bool next_to(std::uint32_t a, std::uint32_t b) { return a + 1 == b || b + 1 == a; }

  // An unknown neighbour through the next parameter in the round that has
  // one: a value next to the current one if possible, else any.
  std::optional<std::size_t> next_in_round() {
    for (std::size_t k = 0; k < round_.size(); ++k) {
      const std::size_t p = round_[(cursor_ + k) % round_.size()];
      unknown_.clear();
      near_.clear();
      const std::uint32_t own = space().value_index(scanned_, p);
      for (const auto& [changed, each] : around_) {
        if (changed != p || evaluated(each)) continue;
        unknown_.push_back(each);
        if (next_to(space().value_index(each, p), own)) near_.push_back(each);
      }
      if (unknown_.empty()) continue;
      cursor_ = (cursor_ + k + 1) % round_.size();
      const auto& pool = near_.empty() ? unknown_ : near_;
      return pool[uniform_index(pool.size())];
    }
    return std::nullopt;
  }

  bool has_unknown_neighbour(std::size_t index) const {
    for (const std::size_t each : space().neighbours(index, neighbourhood::hamming))
      if (!evaluated(each)) return true;
    return false;
  }

  // A neighbour of the home not kicked to before and not known to fail:
  // one with a parameter moved to a next value if any is left, else any.
  std::optional<std::size_t> kick(std::size_t origin) {
    std::vector<std::size_t> candidates;
    std::vector<std::size_t> steps;  ///< the candidates with a parameter moved to a next value
    for (const std::size_t each : space().neighbours(origin, neighbourhood::hamming)) {
      if (std::find(tried_kicks_.begin(), tried_kicks_.end(), each) != tried_kicks_.end()) continue;
      if (evaluated(each) && value_of(each) == infinity) continue;
      candidates.push_back(each);
      for (const std::size_t p : tunable_)
        if (next_to(space().value_index(each, p), space().value_index(origin, p))) steps.push_back(each);
    }
    if (candidates.empty()) return std::nullopt;
    const auto& pool = steps.empty() ? candidates : steps;
    const std::size_t pick = pool[uniform_index(pool.size())];
    tried_kicks_.push_back(pick);
    return pick;
  }

  std::vector<std::size_t> tunable_;    ///< parameters with more than one value
  std::vector<std::uint8_t> frozen_;    ///< per parameter: set by the last kick
  std::optional<std::size_t> current_;  ///< where the descent stands
  std::optional<std::size_t> home_;     ///< the best local optimum of this run
  std::size_t failed_kicks_ = 0;        ///< kicks in a row that did not beat the home
  std::vector<std::size_t> tried_kicks_;  ///< kicks already made from the home
  bool polishing_ = false;              ///< the descent went back home between kicks
  std::size_t scanned_ = none;          ///< the point the round and misses_ belong to
  std::size_t misses_ = 0;              ///< its unknown neighbours evaluated, none better
  std::vector<std::size_t> round_;      ///< parameters in the order this round tries them
  std::size_t cursor_ = 0;
  std::vector<std::size_t> samples_;    ///< random configurations not yet used as a start
  std::size_t samples_left_ = 0;        ///< random configurations still to draw
  std::vector<std::pair<std::size_t, std::size_t>> around_;
  std::vector<std::size_t> unknown_;
  std::vector<std::size_t> near_;
};

}  // namespace

std::unique_ptr<strategy> make_greedy_ils() { return std::make_unique<greedy_ils>(); }

}  // namespace tunekit::strategies
