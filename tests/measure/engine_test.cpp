// The measurement loop on scripted sources and telemetry: warm-up first,
// batches sized by the source, throttled batches set aside and re-taken up
// to the limit, telemetry summarised and written as JSON; the host timer;
// throughput annotations.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <deque>
#include <limits>
#include <thread>

#include <nlohmann/json.hpp>

#include "synthetic.hpp"
#include "tunekit/error.hpp"
#include "tunekit/measure/engine.hpp"
#include "tunekit/measure/host_timer.hpp"
#include "tunekit/measure/throughput.hpp"

namespace {

namespace measure = tunekit::measure;
using json = nlohmann::json;

// Log-normal samples with a known median; records the protocol it saw.
class scripted_source final : public measure::sample_source {
 public:
  explicit scripted_source(double median_us, double cv = 0.01) : timer_(median_us, cv, 7), median_(median_us) {}

  std::size_t warm_ups = 0;
  std::size_t begun = 0;
  std::size_t samples_given = 0;
  std::size_t fixed_batch = 0;  ///< when set, every batch has this many samples

 private:
  std::string_view do_mode() const override { return "scripted"; }
  void do_warm_up(double) override { ++warm_ups; }
  std::size_t do_batch_size(double seconds) const override {
    return fixed_batch != 0 ? fixed_batch : static_cast<std::size_t>(seconds * 1e6 / median_);
  }
  std::size_t do_runs_per_sample() const override { return 3; }
  void do_begin(std::size_t count) override {
    ++begun;
    pending_ = count;
  }
  std::vector<double> do_end() override {
    samples_given += pending_;
    return timer_.take(pending_);
  }

  tunekit::testing::lognormal_timer timer_;
  double median_;
  std::size_t pending_ = 0;
};

// Hands out readings from a script, then repeats the last one.
class scripted_telemetry final : public measure::telemetry_source {
 public:
  std::deque<measure::telemetry_reading> script;
  double energy = 100.0;
  std::size_t reads = 0;

 private:
  std::string do_description() const override { return "scripted"; }
  double do_max_sm_clock_mhz() const override { return 2000.0; }
  std::optional<measure::telemetry_reading> do_read() override {
    ++reads;
    energy += 0.5;
    if (script.size() > 1) {
      auto reading = script.front();
      script.pop_front();
      return reading;
    }
    return script.front();
  }
  std::optional<double> do_energy_joules() override { return energy; }
};

measure::telemetry_reading at_clock(double sm_mhz, std::uint64_t reasons = 0) {
  measure::telemetry_reading reading;
  reading.sm_clock_mhz = sm_mhz;
  reading.memory_clock_mhz = 2600.0;
  reading.power_watts = 300.0;
  reading.temperature_celsius = 50.0;
  reading.clock_event_reasons = reasons;
  return reading;
}

TEST(MeasureEngine, WarmsUpOnceThenSamplesUntilTheCriterionIsDone) {
  scripted_source source(10.0);
  measure::fixed_count criterion(500);
  const auto timing = measure::measure(source, criterion);
  EXPECT_EQ(source.warm_ups, 1u);
  EXPECT_EQ(timing.mode, "scripted");
  EXPECT_EQ(timing.runs_per_sample, 3u);
  EXPECT_EQ(timing.stop_reason, "count");
  EXPECT_GE(timing.samples_us.size(), 500u);
  // Batches of 10 ms / 10 us = 1000 samples: one batch does it.
  EXPECT_EQ(timing.batches, 1u);
  EXPECT_EQ(source.samples_given, timing.samples_us.size());
  EXPECT_FALSE(timing.telemetry.available);
  EXPECT_EQ(timing.telemetry.source, "none");
}

TEST(MeasureEngine, ResetsTheCriterionBeforeMeasuring) {
  scripted_source source(10.0);
  measure::fixed_count criterion(20);
  for (int i = 0; i < 20; ++i) criterion.add(1.0, 0.0);
  ASSERT_TRUE(criterion.done());
  source.fixed_batch = 5;
  const auto timing = measure::measure(source, criterion);
  EXPECT_EQ(timing.samples_us.size(), 20u);
  EXPECT_EQ(timing.batches, 4u);
  for (const double sample : timing.samples_us) EXPECT_NE(sample, 1.0);
}

TEST(MeasureEngine, DiscardsThrottledBatchesAndTakesThemAgain) {
  scripted_source source(10.0);
  source.fixed_batch = 10;
  scripted_telemetry telemetry;
  // Batch 2 runs at 60% of the highest clock, batch 4 with a thermal slowdown.
  telemetry.script = {at_clock(1980), at_clock(1200), at_clock(1980), at_clock(1980, 0x20), at_clock(1980)};
  measure::fixed_count criterion(40);
  const auto timing = measure::measure(source, criterion, &telemetry);
  EXPECT_EQ(timing.samples_us.size(), 40u);
  EXPECT_EQ(timing.batches, 6u) << "four kept batches and two set aside";
  EXPECT_EQ(source.samples_given, 60u);
  const auto& summary = timing.telemetry;
  EXPECT_TRUE(summary.available);
  EXPECT_EQ(summary.readings, 6u);
  EXPECT_EQ(summary.throttled_batches, 2u);
  EXPECT_EQ(summary.discarded_samples, 20u);
  EXPECT_EQ(summary.throttled_kept, 0u);
  EXPECT_DOUBLE_EQ(summary.mean_sm_clock_mhz, 1980.0) << "only kept batches count";
  EXPECT_DOUBLE_EQ(summary.min_sm_clock_mhz, 1980.0);
  EXPECT_EQ(summary.clock_event_reasons, 0x20u);
  ASSERT_TRUE(summary.energy_joules.has_value());
  EXPECT_DOUBLE_EQ(*summary.energy_joules, 3.0) << "six reads of 0.5 J each";
  EXPECT_EQ(summary.per_batch.size(), 6u);
}

TEST(MeasureEngine, KeepsThrottledSamplesOnceTheDiscardLimitIsReached) {
  // A chip throttled for good: discarding forever would never end.
  scripted_source source(10.0);
  source.fixed_batch = 10;
  scripted_telemetry telemetry;
  telemetry.script = {at_clock(1000, 0x4)};
  measure::fixed_count criterion(100);
  const auto timing = measure::measure(source, criterion, &telemetry, {.max_discard_fraction = 0.5});
  EXPECT_EQ(timing.samples_us.size(), 100u);
  const auto& summary = timing.telemetry;
  EXPECT_GT(summary.discarded_samples, 0u);
  EXPECT_LE(static_cast<double>(summary.discarded_samples), 0.5 * static_cast<double>(source.samples_given));
  EXPECT_EQ(summary.throttled_kept, 100u);
  EXPECT_DOUBLE_EQ(summary.mean_sm_clock_mhz, 1000.0);
}

TEST(MeasureEngine, KeepsThrottledSamplesWhenToldNotToDiscard) {
  scripted_source source(10.0);
  source.fixed_batch = 10;
  scripted_telemetry telemetry;
  telemetry.script = {at_clock(1000)};
  measure::fixed_count criterion(30);
  const auto timing = measure::measure(source, criterion, &telemetry, {.discard_throttled = false});
  EXPECT_EQ(source.samples_given, 30u);
  EXPECT_EQ(timing.telemetry.discarded_samples, 0u);
  EXPECT_EQ(timing.telemetry.throttled_kept, 30u);
}

TEST(MeasureEngine, UnreadableClocksAndIdleReasonsAreNotThrottling) {
  scripted_source source(10.0);
  source.fixed_batch = 10;
  scripted_telemetry telemetry;
  auto reading = at_clock(std::numeric_limits<double>::quiet_NaN(), 0x1 | 0x2);  // idle, application clocks
  reading.power_watts = std::numeric_limits<double>::quiet_NaN();
  telemetry.script = {reading};
  measure::fixed_count criterion(30);
  const auto timing = measure::measure(source, criterion, &telemetry);
  EXPECT_EQ(timing.telemetry.throttled_batches, 0u);
  const auto text = json::parse(measure::telemetry_json(timing.telemetry, 90));
  EXPECT_TRUE(text["mean_sm_clock_mhz"].is_null()) << "NaN is written as null";
  EXPECT_EQ(text["clock_event_reasons"], json({"gpu_idle", "applications_clocks"}));
}

TEST(MeasureEngine, RejectsOptionsOutOfRange) {
  scripted_source source(10.0);
  measure::fixed_count criterion(10);
  EXPECT_THROW((void)measure::measure(source, criterion, nullptr, {.warmup_seconds = -1.0}), tunekit::invalid_argument);
  EXPECT_THROW((void)measure::measure(source, criterion, nullptr, {.batch_seconds = 0.0}), tunekit::invalid_argument);
  EXPECT_THROW((void)measure::measure(source, criterion, nullptr, {.min_clock_fraction = 1.5}),
               tunekit::invalid_argument);
  EXPECT_THROW((void)measure::measure(source, criterion, nullptr, {.max_discard_fraction = -0.1}),
               tunekit::invalid_argument);
  EXPECT_EQ(source.warm_ups, 0u) << "nothing runs on bad options";
}

TEST(MeasureEngine, SourceProtocolIsEnforced) {
  scripted_source source(10.0);
  EXPECT_THROW(source.begin(1), tunekit::error) << "begin before warm-up";
  source.warm_up(0.0);
  EXPECT_THROW(source.begin(0), tunekit::invalid_argument);
  EXPECT_THROW((void)source.end(), tunekit::error) << "end without begin";
  source.begin(4);
  EXPECT_THROW(source.begin(4), tunekit::error) << "two batches at once";
  EXPECT_EQ(source.end().size(), 4u);
}

TEST(MeasureEngine, TelemetryJsonCarriesTheSummaryAndEveryBatch) {
  scripted_source source(10.0);
  source.fixed_batch = 10;
  scripted_telemetry telemetry;
  telemetry.script = {at_clock(1980), at_clock(1500, 0x4), at_clock(1900)};
  measure::fixed_count criterion(20);
  const auto timing = measure::measure(source, criterion, &telemetry);
  const auto text = json::parse(measure::telemetry_json(timing.telemetry, 60));
  EXPECT_EQ(text["available"], true);
  EXPECT_EQ(text["source"], "scripted");
  EXPECT_DOUBLE_EQ(text["mean_sm_clock_mhz"].get<double>(), 1940.0);
  EXPECT_DOUBLE_EQ(text["max_sm_clock_mhz"].get<double>(), 2000.0);
  EXPECT_EQ(text["clock_event_reasons"], json({"sw_power_cap"}));
  EXPECT_EQ(text["throttled_batches"], 1);
  EXPECT_EQ(text["discarded_samples"], 10);
  EXPECT_DOUBLE_EQ(text["energy_per_run_joules"].get<double>(), text["energy_joules"].get<double>() / 60.0);
  EXPECT_EQ(text["per_batch"]["sm_clock_mhz"], json({1980.0, 1500.0, 1900.0}));
  EXPECT_EQ(text["per_batch"]["clock_event_reasons"], json({0, 4, 0}));
  const auto off = json::parse(measure::telemetry_json({}));
  EXPECT_EQ(off["available"], false);
  EXPECT_FALSE(off.contains("per_batch"));
}

TEST(ClockEventNames, NamesEveryKnownBitAndNumbersTheRest) {
  EXPECT_TRUE(measure::clock_event_names(0).empty());
  EXPECT_EQ(measure::clock_event_names(0x1FF).size(), 9u);
  EXPECT_EQ(measure::clock_event_names(0x80), std::vector<std::string>{"hw_power_brake"});
  EXPECT_EQ(measure::clock_event_names(1ULL << 40), std::vector<std::string>{"bit_40"});
}

// ---------------------------------------------------------------- host timer

TEST(HostTimer, TimesEachCallWithTheSteadyClock) {
  int calls = 0;
  measure::host_timer timer([&] {
    ++calls;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  });
  measure::fixed_count criterion(20);
  const auto timing = measure::measure(timer, criterion, nullptr, {.warmup_seconds = 0.0});
  EXPECT_EQ(timing.mode, "host");
  ASSERT_GE(timing.samples_us.size(), 20u);
  for (const double sample : timing.samples_us) EXPECT_GE(sample, 200.0);
  EXPECT_GE(calls, static_cast<int>(timing.samples_us.size()) + 1) << "warm-up runs at least once";
  EXPECT_THROW(measure::host_timer(std::function<void()>{}), tunekit::invalid_argument);
}

// ---------------------------------------------------------------- throughput

TEST(Throughput, DerivesRatesAndFractionsOfTheCeilings) {
  const measure::work triad{.bytes_read = 8e9, .bytes_written = 4e9, .flops = 2e9, .flop_type = "fp32"};
  const measure::ceilings roof{.copy_gbps = 3000.0, .fp32_tflops = 50.0, .bf16_tflops = 700.0};
  const auto figures = measure::annotate(triad, 5000.0, roof);  // 12 GB in 5 ms
  EXPECT_DOUBLE_EQ(figures.gbps, 2400.0);
  EXPECT_DOUBLE_EQ(figures.tflops, 0.4);
  ASSERT_TRUE(figures.fraction_of_copy && figures.fraction_of_flops);
  EXPECT_DOUBLE_EQ(*figures.fraction_of_copy, 0.8);
  EXPECT_DOUBLE_EQ(*figures.fraction_of_flops, 0.008);
  const auto bf16 = measure::annotate({.flops = 7e12, .flop_type = "bf16"}, 2e4, roof);
  EXPECT_DOUBLE_EQ(*bf16.fraction_of_flops, 0.5);
  const auto text = json::parse(measure::throughput_json(triad, 5000.0, roof));
  EXPECT_DOUBLE_EQ(text["percent_of_copy"].get<double>(), 80.0);
  EXPECT_EQ(text["flop_type"], "fp32");
}

TEST(Throughput, LeavesFractionsOutWhenNothingWasMeasured) {
  const auto text = json::parse(measure::throughput_json({.bytes_read = 1e6}, 10.0, {}));
  EXPECT_DOUBLE_EQ(text["gbps"].get<double>(), 100.0);
  EXPECT_FALSE(text.contains("percent_of_copy"));
  EXPECT_FALSE(text.contains("percent_of_flops"));
}

TEST(Throughput, RejectsBadInput) {
  EXPECT_THROW((void)measure::annotate({}, 0.0, {}), tunekit::invalid_argument);
  EXPECT_THROW((void)measure::annotate({}, std::nan(""), {}), tunekit::invalid_argument);
  EXPECT_THROW((void)measure::annotate({.bytes_read = -1.0}, 1.0, {}), tunekit::invalid_argument);
  EXPECT_THROW((void)measure::annotate({.flop_type = "fp8"}, 1.0, {}), tunekit::invalid_argument);
}

}  // namespace
