#include "tunekit/measure/host_timer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <utility>

#include "tunekit/error.hpp"

namespace tunekit::measure {

namespace {

using clock = std::chrono::steady_clock;

double microseconds(clock::duration span) { return std::chrono::duration<double, std::micro>(span).count(); }

}  // namespace

host_timer::host_timer(std::function<void()> work) : work_(std::move(work)) {
  if (!work_) throw invalid_argument("host timer: no function to time");
}

void host_timer::do_warm_up(double seconds) {
  const auto start = clock::now();
  std::size_t calls = 0;
  do {
    work_();
    ++calls;
  } while (microseconds(clock::now() - start) < seconds * 1e6);
  estimate_us_ = std::max(microseconds(clock::now() - start) / static_cast<double>(calls), 1e-3);
}

std::size_t host_timer::do_batch_size(double seconds) const {
  return static_cast<std::size_t>(std::clamp(seconds * 1e6 / estimate_us_, 1.0, 1e6));
}

void host_timer::do_begin(std::size_t count) { pending_ = count; }

std::vector<double> host_timer::do_end() {
  std::vector<double> samples;
  samples.reserve(pending_);
  for (std::size_t i = 0; i < pending_; ++i) {
    const auto start = clock::now();
    work_();
    samples.push_back(microseconds(clock::now() - start));
  }
  pending_ = 0;
  return samples;
}

}  // namespace tunekit::measure
