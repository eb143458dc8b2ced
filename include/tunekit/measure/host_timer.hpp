#pragma once
// Host-clock timing for the host backend: each sample is one call of a
// function, timed with the steady clock. Plain C++.
//
//   tunekit::measure::host_timer timer([&] { saxpy(n, a, x, y); });
//   auto timing = tunekit::measure::measure(timer, criterion);

#include <functional>

#include "tunekit/measure/engine.hpp"

namespace tunekit::measure {

class host_timer final : public sample_source {
 public:
  /// Throws tunekit::invalid_argument for an empty function.
  explicit host_timer(std::function<void()> work);

 private:
  std::string_view do_mode() const override { return "host"; }
  void do_warm_up(double seconds) override;
  std::size_t do_batch_size(double seconds) const override;
  void do_begin(std::size_t count) override;
  std::vector<double> do_end() override;

  std::function<void()> work_;
  double estimate_us_ = 1.0;  ///< one call, from the warm-up
  std::size_t pending_ = 0;
};

}  // namespace tunekit::measure
