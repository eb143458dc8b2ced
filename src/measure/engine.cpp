#include "tunekit/measure/engine.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "tunekit/error.hpp"

namespace tunekit::measure {

// ---------------------------------------------------------------- sample_source

void sample_source::warm_up(double seconds) {
  if (!(seconds >= 0.0) || !std::isfinite(seconds))
    throw invalid_argument("warm-up time must be a finite number of seconds >= 0");
  if (running_ != 0) throw error("sample source: warm_up() while a batch is running");
  do_warm_up(seconds);
  warmed_up_ = true;
}

std::size_t sample_source::batch_size(double seconds) const {
  return std::max<std::size_t>(1, do_batch_size(seconds));
}

void sample_source::begin(std::size_t count) {
  if (!warmed_up_) throw error("sample source: begin() before warm_up()");
  if (running_ != 0) throw error("sample source: begin() while a batch is running");
  if (count == 0) throw invalid_argument("sample source: a batch needs at least one sample");
  do_begin(count);
  running_ = count;
}

std::vector<double> sample_source::end() {
  if (running_ == 0) throw error("sample source: end() without begin()");
  const auto expected = running_;
  running_ = 0;
  auto samples = do_end();
  if (samples.size() != expected)
    throw error("sample source '" + std::string(mode()) + "' returned " + std::to_string(samples.size()) +
                " samples for a batch of " + std::to_string(expected));
  return samples;
}

// ---------------------------------------------------------------- telemetry

std::vector<std::string> clock_event_names(std::uint64_t reasons) {
  static constexpr const char* names[] = {"gpu_idle",   "applications_clocks", "sw_power_cap",
                                          "hw_slowdown", "sync_boost",          "sw_thermal",
                                          "hw_thermal",  "hw_power_brake",      "display_clocks"};
  std::vector<std::string> out;
  for (unsigned bit = 0; bit < 64; ++bit) {
    if ((reasons >> bit & 1U) == 0) continue;
    if (bit < std::size(names)) {
      out.emplace_back(names[bit]);
    } else {
      std::string name = "bit_";
      name += std::to_string(bit);
      out.push_back(std::move(name));
    }
  }
  return out;
}

namespace {

using clock = std::chrono::steady_clock;

double seconds_since(clock::time_point start) {
  return std::chrono::duration<double>(clock::now() - start).count();
}

void check_options(const measure_options& options) {
  const auto fraction = [](double value) { return value >= 0.0 && value <= 1.0; };
  if (!(options.warmup_seconds >= 0.0) || !std::isfinite(options.warmup_seconds))
    throw invalid_argument("measure: warm-up time must be a finite number of seconds >= 0");
  if (!(options.batch_seconds > 0.0) || !std::isfinite(options.batch_seconds))
    throw invalid_argument("measure: batch time must be a positive finite number of seconds");
  if (!fraction(options.min_clock_fraction))
    throw invalid_argument("measure: the minimum clock fraction must lie in [0, 1]");
  if (!fraction(options.max_discard_fraction))
    throw invalid_argument("measure: the maximum discard fraction must lie in [0, 1]");
}

bool is_throttled(const telemetry_reading& reading, double max_sm_clock_mhz, double min_clock_fraction) {
  if ((reading.clock_event_reasons & slowdown_reasons) != 0) return true;
  // NaN clocks (unreadable) never count as throttled.
  return std::isfinite(max_sm_clock_mhz) && max_sm_clock_mhz > 0.0 &&
         reading.sm_clock_mhz < min_clock_fraction * max_sm_clock_mhz;
}

// Running means over the readings of kept batches.
struct telemetry_accumulator {
  std::size_t kept = 0;
  double sm_sum = 0.0;
  double memory_sum = 0.0;
  std::size_t power_count = 0;
  double power_sum = 0.0;

  void add(const telemetry_reading& reading, telemetry_summary& summary) {
    ++kept;
    sm_sum += reading.sm_clock_mhz;
    memory_sum += reading.memory_clock_mhz;
    summary.mean_sm_clock_mhz = sm_sum / static_cast<double>(kept);
    summary.mean_memory_clock_mhz = memory_sum / static_cast<double>(kept);
    summary.min_sm_clock_mhz = kept == 1 ? reading.sm_clock_mhz : std::min(summary.min_sm_clock_mhz, reading.sm_clock_mhz);
    if (std::isfinite(reading.power_watts)) {
      ++power_count;
      power_sum += reading.power_watts;
      summary.mean_power_watts = power_sum / static_cast<double>(power_count);
    }
  }
};

}  // namespace

timing measure(sample_source& source, stopping_criterion& criterion, telemetry_source* telemetry,
               const measure_options& options) {
  check_options(options);
  criterion.reset();
  source.warm_up(options.warmup_seconds);

  timing result;
  result.mode = std::string(source.mode());
  result.runs_per_sample = source.runs_per_sample();
  auto& summary = result.telemetry;
  std::optional<double> energy_at_start;
  if (telemetry != nullptr) {
    summary.available = true;
    summary.source = telemetry->description();
    summary.max_sm_clock_mhz = telemetry->max_sm_clock_mhz();
    energy_at_start = telemetry->energy_joules();
  } else {
    summary.source = "none";
  }
  telemetry_accumulator means;
  std::size_t taken = 0;

  const auto start = clock::now();
  while (!criterion.done()) {
    const auto count = source.batch_size(options.batch_seconds);
    source.begin(count);
    // Read while the batch runs, so clocks and power are those of the work.
    std::optional<telemetry_reading> reading;
    if (telemetry != nullptr) reading = telemetry->read();
    auto samples = source.end();
    const double elapsed = seconds_since(start);
    ++result.batches;
    taken += samples.size();

    bool throttled = false;
    if (reading) {
      reading->seconds = elapsed;
      ++summary.readings;
      summary.clock_event_reasons |= reading->clock_event_reasons;
      if (std::isfinite(reading->power_watts))
        summary.max_power_watts = std::max(summary.max_power_watts, reading->power_watts);
      if (std::isfinite(reading->temperature_celsius))
        summary.max_temperature_celsius = std::max(summary.max_temperature_celsius, reading->temperature_celsius);
      summary.per_batch.push_back(*reading);
      throttled = is_throttled(*reading, summary.max_sm_clock_mhz, options.min_clock_fraction);
    }
    if (throttled) {
      ++summary.throttled_batches;
      const double discarded_if = static_cast<double>(summary.discarded_samples + samples.size());
      if (options.discard_throttled && discarded_if <= options.max_discard_fraction * static_cast<double>(taken)) {
        summary.discarded_samples += samples.size();
        continue;
      }
      summary.throttled_kept += samples.size();
    }
    if (reading) means.add(*reading, summary);
    for (const double sample : samples) criterion.add(sample, elapsed);
  }
  result.seconds = seconds_since(start);
  if (telemetry != nullptr && energy_at_start) {
    if (const auto energy_at_end = telemetry->energy_joules(); energy_at_end && *energy_at_end >= *energy_at_start)
      summary.energy_joules = *energy_at_end - *energy_at_start;
  }
  const auto kept = criterion.samples();
  result.samples_us.assign(kept.begin(), kept.end());
  result.stop_reason = criterion.reason();
  return result;
}

std::string telemetry_json(const telemetry_summary& summary, std::size_t runs) {
  using json = nlohmann::ordered_json;
  // JSON has no NaN: an unreadable figure is null.
  const auto number = [](double value) { return std::isfinite(value) ? json(value) : json(nullptr); };
  json out;
  out["available"] = summary.available;
  out["source"] = summary.source;
  if (summary.available) {
    out["readings"] = summary.readings;
    out["max_sm_clock_mhz"] = number(summary.max_sm_clock_mhz);
    out["mean_sm_clock_mhz"] = number(summary.mean_sm_clock_mhz);
    out["min_sm_clock_mhz"] = number(summary.min_sm_clock_mhz);
    out["mean_memory_clock_mhz"] = number(summary.mean_memory_clock_mhz);
    out["mean_power_watts"] = number(summary.mean_power_watts);
    out["max_power_watts"] = number(summary.max_power_watts);
    out["max_temperature_celsius"] = number(summary.max_temperature_celsius);
    out["energy_joules"] = summary.energy_joules ? number(*summary.energy_joules) : json(nullptr);
    if (summary.energy_joules && runs > 0)
      out["energy_per_run_joules"] = number(*summary.energy_joules / static_cast<double>(runs));
    out["clock_event_reasons"] = clock_event_names(summary.clock_event_reasons);
    out["throttled_batches"] = summary.throttled_batches;
    out["discarded_samples"] = summary.discarded_samples;
    out["throttled_kept"] = summary.throttled_kept;
    // Parallel arrays, filled before they go into the object: the ordered
    // object keeps its members in a vector, so references into it would dangle.
    json seconds = json::array();
    json sm = json::array();
    json memory = json::array();
    json power = json::array();
    json temperature = json::array();
    json reasons = json::array();
    for (const auto& reading : summary.per_batch) {
      seconds.push_back(number(reading.seconds));
      sm.push_back(number(reading.sm_clock_mhz));
      memory.push_back(number(reading.memory_clock_mhz));
      power.push_back(number(reading.power_watts));
      temperature.push_back(number(reading.temperature_celsius));
      reasons.push_back(reading.clock_event_reasons);
    }
    json per_batch;
    per_batch["seconds"] = std::move(seconds);
    per_batch["sm_clock_mhz"] = std::move(sm);
    per_batch["memory_clock_mhz"] = std::move(memory);
    per_batch["power_watts"] = std::move(power);
    per_batch["temperature_celsius"] = std::move(temperature);
    per_batch["clock_event_reasons"] = std::move(reasons);
    out["per_batch"] = std::move(per_batch);
  }
  return out.dump();
}

}  // namespace tunekit::measure
