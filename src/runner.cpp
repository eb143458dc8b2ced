#include "tunekit/runner.hpp"

#include <chrono>
#include <fstream>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tunekit/host/backend.hpp"
#include "tunekit/strategy.hpp"

namespace tunekit {

namespace {

using json = nlohmann::ordered_json;

std::string file_text(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// The host as a "device": its processor, the architecture, the compiler.
device_identity host_identity(const std::string& compiler_version) {
  std::string model = "host";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
#if defined(__x86_64__)
  const char* architecture = "host-x86_64";
#elif defined(__aarch64__)
  const char* architecture = "host-aarch64";
#else
  const char* architecture = "host";
#endif
  return {model, architecture, compiler_version};
}

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

}  // namespace

tune_report run_tuning(const kernel_spec& spec, const tune_options& options) {
  if (spec.backend != backend_kind::host)
    throw spec_error(spec.path.string() + ": the cuda backend of the runner is not built yet; use backend = \"host\"");
  const auto started = std::chrono::steady_clock::now();
  auto search = make_strategy(options.strategy);
  const auto space = search_space::enumerate(space_of(spec));
  const auto store_path = options.store.empty() ? default_store_path() : options.store;
  auto store = results_store::open(store_path);
  auto cache = options.compile_cache;
  if (cache.empty()) cache = store_path.string() + ".cache";
  const host::backend backend(spec, space, cache);

  std::string options_text = "host";
  for (const auto& each : spec.compile_options) options_text += " " + each;
  const std::string sources = file_text(spec.source) + "\n//reference\n" + file_text(spec.reference_source);
  const store_key key{host_identity(backend.compiler_version()),
                      {spec.name, source_hash(sources, options_text + " " + spec.function + " " + spec.reference_function)},
                      spec.problem_text()};
  store.describe(key, spec.parameters, "time");

  tune_report report;
  report.kernel = spec.name;
  report.device = key.device.name;
  report.problem = spec.problem_text();

  // Store hit, else evaluate and record at once; failures counted per class.
  const auto evaluate = [&](std::size_t index, bool count) -> evaluation_result {
    const auto configuration = configuration_of(space, index);
    stored_result result;
    if (auto found = store.find(key, configuration)) {
      result = std::move(*found);
    } else {
      const auto outcome = backend.evaluate(index);
      result.configuration = configuration;
      result.status = outcome.status;
      result.compile_time = outcome.compile_ms;
      result.verification_time = outcome.verification_ms;
      result.benchmark_time = outcome.benchmark_ms;
      if (outcome.status == evaluation_status::ok) {
        result.value = outcome.median_us / 1000.0;
        for (const double sample : outcome.samples_us) result.samples.push_back(sample / 1000.0);
        result.measurements = {{"time", result.value, "ms"}};
      } else {
        result.value = std::numeric_limits<double>::quiet_NaN();
        result.extra = json{{"message", outcome.message}}.dump();
      }
      store.record(key, result);
      ++report.measured;
    }
    if (count && result.status != evaluation_status::ok) ++report.failures[std::string(to_string(result.status))];
    if (options.progress != nullptr) {
      *options.progress << "[" << (count ? "eval" : "base") << "] " << space.describe(index) << ": "
                        << (result.status == evaluation_status::ok ? std::to_string(result.value * 1000.0) + " us"
                                                                   : std::string(to_string(result.status)))
                        << '\n';
    }
    return result.evaluation();
  };

  const auto run = tune(*search, space, [&](std::size_t index) { return evaluate(index, true); }, options.limit,
                        options.seed);
  report.evaluations = run.evaluations;
  if (run.best_index) report.best = timed(space, *run.best_index, run.best);

  const auto baseline = baseline_index(spec, space);
  if (const auto result = evaluate(baseline, false); result.ok()) {
    report.baseline = timed(space, baseline, result.value);
    // The baseline may beat what the strategy found: then it is the best.
    if (!report.best || result.value < report.best->time_us / 1000.0) report.best = report.baseline;
  }
  if (report.best && report.baseline && report.best->time_us > 0.0)
    report.speedup = report.baseline->time_us / report.best->time_us;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
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
  out["seconds"] = report.seconds;
  return out.dump();
}

}  // namespace tunekit
