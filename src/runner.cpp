#include "tunekit/runner.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <condition_variable>
#include <deque>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <ostream>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "detail/arguments.hpp"
#include "detail/kernel_tuner_files.hpp"
#include "tunekit/backend.hpp"
#include "tunekit/expression.hpp"
#include "tunekit/host/backend.hpp"
#include "tunekit/strategy.hpp"
#if defined(TUNEKIT_HAS_CUDA)
#include "tunekit/cuda/backend.hpp"
#endif

namespace tunekit {

namespace {

using json = nlohmann::ordered_json;
using clock = std::chrono::steady_clock;

json value_json(const parameter_value& value) {
  if (const auto* integer = std::get_if<std::int64_t>(&value)) return *integer;
  if (const auto* real = std::get_if<double>(&value)) return *real;
  return std::get<std::string>(value);
}

timed_configuration timed(const search_space& space, std::size_t index, double time_ms) {
  timed_configuration out;
  out.config = configuration_of(space, index);
  out.time_us = time_ms * 1000.0;
  return out;
}

std::unique_ptr<variant_backend> make_backend(const kernel_spec& spec, const search_space& space,
                                              const std::filesystem::path& cache, const tune_options& options) {
  if (spec.backend == backend_kind::host) return std::make_unique<host::backend>(spec, space, cache);
#if defined(TUNEKIT_HAS_CUDA)
  return cuda::make_backend(spec, space, cache, options.devices.empty() ? std::vector<int>{0} : options.devices);
#else
  (void)options;
  throw spec_error(spec.path.string() + ": a cuda spec needs tunekit built with its CUDA layer");
#endif
}

stored_result result_of(const search_space& space, std::size_t index, const variant_outcome& outcome) {
  stored_result result;
  result.configuration = configuration_of(space, index);
  result.status = outcome.status;
  result.compile_time = outcome.compile_ms;
  result.verification_time = outcome.verification_ms;
  result.benchmark_time = outcome.benchmark_ms;
  auto extra = json::parse(outcome.detail);
  if (!outcome.message.empty()) extra["message"] = outcome.message;
  if (extra.contains("telemetry")) {
    result.telemetry = extra["telemetry"].dump();
    extra.erase("telemetry");
  }
  result.extra = extra.dump();
  if (outcome.status == evaluation_status::ok) {
    result.value = outcome.median_us / 1000.0;
    for (const double sample : outcome.samples_us) result.samples.push_back(sample / 1000.0);
    result.measurements = {{"time", result.value, "ms"}};
  } else {
    result.value = std::numeric_limits<double>::quiet_NaN();
  }
  return result;
}

// The compile threads and the lanes, fed through queues; the caller (the
// strategy's thread) submits indices and collects outcomes.
class pipeline {
 public:
  pipeline(variant_backend& backend, std::size_t compile_threads) : backend_(backend) {
    for (std::size_t t = 0; t < compile_threads; ++t) threads_.emplace_back([this] { compile_loop(); });
    for (std::size_t lane = 0; lane < backend.lanes(); ++lane) threads_.emplace_back([this, lane] { run_loop(lane); });
  }

  ~pipeline() {
    {
      const std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    work_.notify_all();
    for (auto& thread : threads_) thread.join();
  }

  pipeline(const pipeline&) = delete;
  pipeline& operator=(const pipeline&) = delete;

  void submit(std::size_t index) {
    {
      const std::lock_guard lock(mutex_);
      to_compile_.push_back(index);
      ++in_flight_;
    }
    work_.notify_all();
  }

  struct finished {
    std::size_t index;
    compiled_variant compiled;
    variant_outcome outcome;
    double run_seconds;
  };

  /// The next finished evaluation; rethrows what a thread threw.
  finished collect() {
    std::unique_lock lock(mutex_);
    done_changed_.wait(lock, [this] { return !done_.empty() || failure_; });
    if (failure_) std::rethrow_exception(failure_);
    auto next = std::move(done_.front());
    done_.pop_front();
    --in_flight_;
    return next;
  }

  [[nodiscard]] std::size_t in_flight() const {
    const std::lock_guard lock(mutex_);
    return in_flight_;
  }

 private:
  void compile_loop() {
    for (;;) {
      std::size_t index = 0;
      {
        std::unique_lock lock(mutex_);
        work_.wait(lock, [this] { return stopping_ || !to_compile_.empty(); });
        if (stopping_) return;
        index = to_compile_.front();
        to_compile_.pop_front();
      }
      try {
        auto compiled = backend_.compile(index);
        {
          const std::lock_guard lock(mutex_);
          to_run_.push_back(std::move(compiled));
        }
        work_.notify_all();
      } catch (...) {
        fail(std::current_exception());
        return;
      }
    }
  }

  void run_loop(std::size_t lane) {
    for (;;) {
      compiled_variant compiled;
      {
        std::unique_lock lock(mutex_);
        work_.wait(lock, [this] { return stopping_ || !to_run_.empty(); });
        if (stopping_) return;
        compiled = std::move(to_run_.front());
        to_run_.pop_front();
      }
      try {
        const auto started = clock::now();
        auto outcome = backend_.run(lane, compiled);
        const double seconds = std::chrono::duration<double>(clock::now() - started).count();
        {
          const std::lock_guard lock(mutex_);
          done_.push_back({compiled.index, std::move(compiled), std::move(outcome), seconds});
        }
        done_changed_.notify_all();
      } catch (...) {
        fail(std::current_exception());
        return;
      }
    }
  }

  void fail(std::exception_ptr problem) {
    {
      const std::lock_guard lock(mutex_);
      if (!failure_) failure_ = std::move(problem);
    }
    done_changed_.notify_all();
  }

  variant_backend& backend_;
  mutable std::mutex mutex_;
  std::condition_variable work_;
  std::condition_variable done_changed_;
  std::deque<std::size_t> to_compile_;
  std::deque<compiled_variant> to_run_;
  std::deque<finished> done_;
  std::size_t in_flight_ = 0;
  bool stopping_ = false;
  std::exception_ptr failure_;
  std::vector<std::thread> threads_;  // last: joined before the queues go
};

std::string config_text(const search_space& space, std::size_t index) { return space.describe(index); }

// "12.345 us"
std::string microseconds_text(double milliseconds) {
  char text[64];
  std::snprintf(text, sizeof text, "%.3f us", milliseconds * 1000.0);
  return text;
}

// A result's objective: `value` as shown, `rank` as the strategy sees it
// (smaller is better: the value, or its reciprocal for a maximised metric).
struct objective_reading {
  double value = 0.0;
  double rank = 0.0;
};

std::optional<objective_reading> objective_of(const kernel_spec& spec, const search_space& space, std::size_t index,
                                              const stored_result& result) {
  switch (spec.objective.how) {
    case objective_spec::kind::time:
      return objective_reading{result.value, result.value};
    case objective_spec::kind::metric: {
      variable_table names;
      detail::name_configuration(names, spec, space, index);
      names.add("time_us", result.value * 1000.0);
      const double value = expression(spec.objective.expression, names).evaluate();
      if (!(value > 0.0) || !std::isfinite(value)) return std::nullopt;
      return objective_reading{value, spec.objective.maximize ? 1.0 / value : value};
    }
    case objective_spec::kind::energy: {
      const auto telemetry = json::parse(result.telemetry, nullptr, false);
      if (!telemetry.is_object() || !telemetry.contains("energy_per_run_joules") ||
          !telemetry["energy_per_run_joules"].is_number())
        return std::nullopt;
      const double joules = telemetry["energy_per_run_joules"].get<double>();
      if (!(joules > 0.0)) return std::nullopt;
      return objective_reading{joules, joules};
    }
  }
  return std::nullopt;
}

// The store's key of a session: a changed source, reference, option or
// compiler is a new kernel.
store_key session_key(const kernel_spec& spec, const variant_backend& backend) {
  std::string options_text = (spec.backend == backend_kind::host ? "host " : "cuda ") + backend.compiler_version();
  for (const auto& each : spec.compile_options) options_text += " " + each;
  const std::string sources = detail::read_maybe_gzipped(spec.source) + "\n//reference\n" + detail::read_maybe_gzipped(spec.reference_source);
  return {backend.identity(),
          {spec.name, source_hash(sources, options_text + " " + spec.function + " " + spec.reference_function)},
          spec.problem_text()};
}

}  // namespace

std::size_t configuration_index(const kernel_spec& spec, const search_space& space,
                                const std::vector<std::pair<std::string, std::string>>& assignments) {
  auto wanted = configuration_of(space, baseline_index(spec, space));
  for (const auto& [name, text] : assignments) {
    const auto slot = std::find_if(wanted.begin(), wanted.end(), [&](const auto& each) { return each.first == name; });
    if (slot == wanted.end()) throw invalid_argument("--config: '" + name + "' is not a parameter of " + spec.name);
    const auto& values = std::find_if(space.parameters().begin(), space.parameters().end(),
                                      [&](const parameter& each) { return each.name == name; })->values;
    const auto value = std::find_if(values.begin(), values.end(), [&](const parameter_value& each) {
      if (to_string(each) == text) return true;
      char* end = nullptr;
      const double number = std::strtod(text.c_str(), &end);
      const auto* integer = std::get_if<std::int64_t>(&each);
      const auto* real = std::get_if<double>(&each);
      return end != text.c_str() && *end == '\0' &&
             ((integer != nullptr && static_cast<double>(*integer) == number) || (real != nullptr && *real == number));
    });
    if (value == values.end()) throw invalid_argument("--config: " + name + "=" + text + " is not among its values");
    slot->second = *value;
  }
  for (std::size_t index = 0; index < space.size(); ++index)
    if (configuration_of(space, index) == wanted) return index;
  throw invalid_argument("--config: that configuration breaks a constraint of " + spec.name);
}

double tune_report::bound_seconds() const {
  const double compile = compile_threads > 0 ? compile_seconds / static_cast<double>(compile_threads) : 0.0;
  const double measure = lanes > 0 ? measure_seconds / static_cast<double>(lanes) : 0.0;
  return 1.2 * std::max(compile, measure);
}

tune_report run_tuning(const kernel_spec& spec, const tune_options& options) {
  const auto started = clock::now();
  auto search = make_strategy(options.strategy);
  const auto space = search_space::enumerate(space_of(spec));
  const auto store_path = options.store.empty() ? default_store_path() : options.store;
  auto cache = options.compile_cache;
  if (cache.empty()) cache = store_path.string() + ".cache";
  // The backend first: the CUDA one forks its worker launcher while this
  // process is still one thread with nothing open but the spec.
  auto backend = make_backend(spec, space, cache, options);
  auto store = results_store::open(store_path);

  const store_key key = session_key(spec, *backend);
  store.describe(key, spec.parameters, "time");

  tune_report report;
  report.kernel = spec.name;
  report.device = key.device.name;
  report.problem = spec.problem_text();
  report.lanes = backend->lanes();
  report.compile_threads =
      options.compile_threads > 0 ? options.compile_threads : std::max(1U, std::thread::hardware_concurrency());

  const std::size_t limit = options.limit.evaluation_limit(space.size());
  const auto baseline = baseline_index(spec, space);
  std::optional<double> baseline_ms;
  double cost = 0.0;
  std::optional<std::size_t> best_index;
  double best_ms = std::numeric_limits<double>::infinity();
  std::optional<objective_reading> best_objective;
  std::optional<objective_reading> baseline_objective;

  // "[eval] name=value, ...: 12.3 us", or the failure's class and message.
  const auto evaluation_line = [&](std::size_t index, const stored_result& result, bool counted) {
    std::string line = std::string(counted ? "[eval] " : "[base] ") + config_text(space, index) + ": ";
    if (result.status == evaluation_status::ok) return line + microseconds_text(result.value);
    line += to_string(result.status);
    const auto extra = json::parse(result.extra, nullptr, false);
    if (extra.is_object() && extra.contains("message") && extra["message"].is_string())
      line += ": " + extra["message"].get<std::string>();
    return line;
  };
  const auto progress = [&](std::size_t index, const stored_result& result, bool counted) {
    if (options.log != nullptr) *options.log << evaluation_line(index, result, counted) << std::endl;
    if (options.progress == nullptr) return;
    if (!options.progress_is_terminal) {
      *options.progress << evaluation_line(index, result, counted) << '\n';
      return;
    }
    std::size_t failed = 0;
    std::string failures;
    for (const auto& [name, count] : report.failures) {
      failures += " " + name + " " + std::to_string(count);
      failed += count;
    }
    const double elapsed = std::chrono::duration<double>(clock::now() - started).count();
    const std::size_t done = report.evaluations;
    const double eta = done > 0 ? elapsed / static_cast<double>(done) * static_cast<double>(limit - std::min(limit, done)) : 0.0;
    *options.progress << "\r\x1b[K" << done << "/" << limit << " evaluated, best "
                      << (best_index ? microseconds_text(best_ms) : std::string("none")) << ", failures " << failed
                      << failures << ", ETA " << static_cast<long long>(std::lround(eta)) << " s" << std::flush;
  };

  // A result, stored or new: its objective computed, counted, told to the
  // strategy, kept if best. An ok result whose objective cannot be had (a
  // metric that is not positive, no energy reading) is a failure to the
  // strategy, counted as "no_objective"; the store keeps it as measured.
  const auto settle = [&](std::size_t index, const stored_result& result, bool counted) {
    auto evaluation = result.evaluation();
    std::optional<objective_reading> reading;
    if (result.status == evaluation_status::ok) {
      reading = objective_of(spec, space, index, result);
      if (reading) evaluation.value = reading->rank;
      else evaluation.status = evaluation_status::invalid_output;
    }
    if (counted) search->observe(index, evaluation);
    if (index == baseline && reading) {
      baseline_ms = result.value;
      baseline_objective = *reading;
    }
    if (counted) {
      ++report.evaluations;
      cost += evaluation.cost;
      if (result.status != evaluation_status::ok) ++report.failures[std::string(to_string(result.status))];
      else if (!reading) ++report.failures["no_objective"];
      if (reading && std::isfinite(reading->rank) && (!best_objective || reading->rank < best_objective->rank)) {
        best_ms = result.value;
        best_objective = *reading;
        best_index = index;
      }
    }
    progress(index, result, counted);
  };

  // The strategy sees one fixed sequence of calls whatever the timing: it
  // is asked until `window` proposals await their results, then told the
  // oldest, then asked again. Results that finish early wait their turn, so
  // a rerun answered by the store makes the same proposals as the run that
  // measured them, and measures nothing.
  const std::size_t window = options.window > 0 ? options.window
                                                : 2 * report.lanes + std::min<std::size_t>(report.compile_threads, 8);
  report.window = window;
  std::vector<std::size_t> order;                           // proposals, in order
  std::size_t told = 0;                                     // order[0, told) observed
  std::unordered_map<std::size_t, stored_result> finished;  // results waiting their turn
  std::unordered_map<std::size_t, bool> flying;             // index -> proposed (the baseline flies unproposed)
  bool exhausted = false;

  search->start(space, options.seed);
  {
    pipeline workers(*backend, report.compile_threads);
    // The baseline first, stored or measured, beside the strategy's proposals.
    if (auto found = store.find(key, configuration_of(space, baseline))) {
      settle(baseline, *found, false);
    } else {
      flying[baseline] = false;
      workers.submit(baseline);
    }
    for (;;) {
      while (!exhausted && order.size() - told < window && order.size() < limit &&
             (!options.limit.time || cost < *options.limit.time)) {
        const auto index = search->propose();
        if (!index) {
          exhausted = order.size() == told;  // else results may free more
          break;
        }
        order.push_back(*index);
        if (const auto in_flight = flying.find(*index); in_flight != flying.end()) {
          in_flight->second = true;  // the baseline, now the strategy's too
        } else if (auto found = store.find(key, configuration_of(space, *index))) {
          finished.emplace(*index, std::move(*found));
        } else {
          flying[*index] = true;
          workers.submit(*index);
        }
      }
      if (told < order.size()) {
        const std::size_t next = order[told];
        if (const auto ready = finished.find(next); ready != finished.end()) {
          settle(next, ready->second, true);
          finished.erase(ready);
          ++told;
          exhausted = false;
          continue;
        }
      } else if (workers.in_flight() == 0) {
        break;  // every proposal told and nothing flies: the budget or the space is spent
      }
      auto done = workers.collect();
      const bool proposed = flying.at(done.index);
      flying.erase(done.index);
      auto result = result_of(space, done.index, done.outcome);
      store.record(key, result);
      ++report.measured;
      report.measure_seconds += done.run_seconds;
      if (!done.compiled.cached && done.compiled.compile_ms > 0.0) {
        ++report.compiled;
        report.compile_seconds += done.compiled.compile_ms / 1000.0;
      }
      if (proposed) {
        finished.emplace(done.index, std::move(result));
      } else {
        settle(done.index, result, false);
      }
    }
  }
  if (options.progress != nullptr && options.progress_is_terminal) *options.progress << '\n';

  if (best_index) report.best = timed(space, *best_index, best_ms);
  if (best_objective) report.best_objective = best_objective->value;
  if (baseline_ms) {
    report.baseline = timed(space, baseline, *baseline_ms);
    report.baseline_objective = baseline_objective->value;
    // The baseline may beat what the strategy found: then it is the best.
    if (!best_objective || baseline_objective->rank < best_objective->rank) {
      report.best = report.baseline;
      report.best_objective = report.baseline_objective;
    }
  }
  report.objective = spec.objective.name;
  report.maximize = spec.objective.maximize;
  if (report.best && report.baseline && report.best->time_us > 0.0)
    report.speedup = report.baseline->time_us / report.best->time_us;
  report.seconds = std::chrono::duration<double>(clock::now() - started).count();
  return report;
}

bench_report run_bench(const kernel_spec& given, const bench_options& options) {
  kernel_spec spec = given;
  spec.measurement.min_seconds = std::max(spec.measurement.min_seconds, options.min_seconds);
  spec.measurement.max_noise = std::min(spec.measurement.max_noise, options.max_noise);
  spec.measurement.timeout_seconds = std::max(spec.measurement.timeout_seconds, 4.0 * spec.measurement.min_seconds);
  const auto space = search_space::enumerate(space_of(spec));
  const auto store_path = options.store.empty() ? default_store_path() : options.store;
  auto cache = options.compile_cache;
  if (cache.empty()) cache = store_path.string() + ".cache";
  tune_options settings;
  settings.devices = options.devices.empty() ? std::vector<int>{0} : std::vector<int>{options.devices.front()};
  auto backend = make_backend(spec, space, cache, settings);
  const auto key = session_key(spec, *backend);

  bench_report report;
  report.kernel = spec.name;
  report.device = key.device;
  report.problem = spec.problem_text();
  std::size_t index = 0;
  if (options.config.empty()) {
    const auto store = results_store::open(store_path, store_access::read_only);
    const auto best = store.best(key);
    if (!best && !options.baseline_when_untuned)
      throw no_stored_best("no stored best of " + spec.name + " on " + key.device.name +
                           " for this problem: tune it first or give --config");
    index = baseline_index(spec, space);
    if (best)
      for (std::size_t i = 0; i < space.size(); ++i)
        if (configuration_of(space, i) == best->configuration) index = i;
    report.from_store = best.has_value();
  } else {
    index = configuration_index(spec, space, options.config);
  }
  report.index = index;
  report.outcome = backend->evaluate(index);
  report.configuration = timed(space, index, report.outcome.median_us / 1000.0);
  return report;
}

std::string to_json(const tune_report& report) {
  json out;
  out["kernel"] = report.kernel;
  out["device"] = report.device;
  out["problem"] = json::parse(report.problem);
  out["evaluations"] = report.evaluations;
  out["measured"] = report.measured;
  out["failures"] = json::object();
  for (const auto& [name, count] : report.failures) out["failures"][name] = count;
  const auto configuration = [](const std::optional<timed_configuration>& each) -> json {
    if (!each) return nullptr;
    json config = json::object();
    for (const auto& [name, value] : each->config) config[name] = value_json(value);
    return {{"config", config}, {"time_us", each->time_us}};
  };
  out["best"] = configuration(report.best);
  out["baseline"] = configuration(report.baseline);
  out["speedup"] = report.speedup ? json(*report.speedup) : json(nullptr);
  out["objective"] = {{"name", report.objective},
                      {"goal", report.maximize ? "max" : "min"},
                      {"best", report.best_objective ? json(*report.best_objective) : json(nullptr)},
                      {"baseline", report.baseline_objective ? json(*report.baseline_objective) : json(nullptr)}};
  out["seconds"] = report.seconds;
  const double bound = report.bound_seconds();
  out["pipeline"] = {{"compile_threads", report.compile_threads},
                     {"lanes", report.lanes},
                     {"window", report.window},
                     {"compiled", report.compiled},
                     {"compile_seconds", report.compile_seconds},
                     {"measure_seconds", report.measure_seconds},
                     {"bound_seconds", bound},
                     {"wall_over_bound", bound > 0.0 ? json(report.seconds / bound) : json(nullptr)}};
  return out.dump();
}

}  // namespace tunekit
