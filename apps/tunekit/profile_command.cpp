// tunekit profile [--suite seed|large|all] [--kernels a,b] [--json FILE] [--markdown FILE]
//                 [--baseline FILE] [--fail-on-regression] [--peers] ...
// Each workload of the suite: its tuned configuration for this device from
// the store (tuned now with a bounded budget when none is stored, and said
// so), measured with the measurement engine, judged (tunekit/profile.hpp)
// and reported as a result file (tunekit compare reads it) plus Markdown.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <ostream>
#include <set>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "tunekit/error.hpp"
#include "tunekit/measure/results.hpp"
#include "tunekit/profile.hpp"
#include "tunekit/runner.hpp"
#include "tunekit/spec.hpp"
#include "tunekit/tuner.hpp"
#if defined(TUNEKIT_HAS_CUDA)
#include "tunekit/cuda/backend.hpp"
#include "tunekit/cuda/ceilings.hpp"
#endif

namespace tunekit::app {

namespace {

using nlohmann::json;

struct profile_options {
  std::string suite = "all";
  std::string kernels;
  std::string json_file;
  std::string markdown;
  std::string baseline;
  bool fail_on_regression = false;
  bool peers = false;
  bool use_baseline_config = false;
  std::string manifest = "kernels/suite.toml";
  std::string budgets;
  std::string peer_script = "bench/workloads/torch_peer.py";
  std::string store;
  int device = 0;
  std::string tune_budget = "60";
  double min_seconds = 0.5;
};

std::set<std::string> split(const std::string& text) {
  std::set<std::string> out;
  std::istringstream items(text);
  for (std::string item; std::getline(items, item, ',');)
    if (!item.empty()) out.insert(item);
  return out;
}

std::string config_text(const timed_configuration& configuration) {
  std::string text;
  for (const auto& [name, value] : configuration.config) text += (text.empty() ? "" : ", ") + name + "=" + to_string(value);
  return text;
}

// The peers' entries (bench/workloads/torch_peer.py's JSON), run once for the workloads profiled.
json run_peers(const std::string& script, const std::set<std::string>& workloads) {
  std::string names;
  for (const auto& each : workloads) names += (names.empty() ? "" : ",") + each;
  const auto command = "PEERS=" + names + " python3 '" + script + "'";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) throw error("cannot run the peers: " + command);
  std::string text;
  char chunk[4096];
  for (std::size_t got; (got = fread(chunk, 1, sizeof chunk, pipe)) > 0;) text.append(chunk, got);
  if (pclose(pipe) != 0) throw error("the peers failed: " + command);
  return json::parse(text).at("workloads");
}

// The peer entries of a workload whose numbers agree with every problem value
// of the spec they name (other numbers, such as a rate the peer reports, are
// not sizes), at least one of them.
std::vector<json> peers_of(const json& entries, const std::string& workload, const kernel_spec& spec) {
  std::vector<json> found;
  for (const auto& entry : entries) {
    if (entry.value("name", "") != workload) continue;
    bool same = true;
    int sizes = 0;
    for (const auto& [key, value] : entry.items()) {
      const auto at = std::find_if(spec.problem.begin(), spec.problem.end(), [&](const auto& p) { return p.first == key; });
      if (at == spec.problem.end() || !value.is_number()) continue;
      ++sizes;
      same = same && at->second == value.get<double>();
    }
    if (same && sizes > 0) found.push_back(entry);
  }
  return found;
}

// The stored best of `spec`, measured; tuned first (bounded) when nothing is stored.
bench_report measure_tuned(const kernel_spec& spec, const profile_options& options, bool& tuned_now, std::ostream& out) {
  bench_options settings;
  settings.store = options.store;
  settings.min_seconds = options.min_seconds;
  settings.devices = {options.device};
  if (options.use_baseline_config)
    for (const auto& [name, value] : spec.baseline) settings.config.emplace_back(name, to_string(value));
  tuned_now = false;
  try {
    return run_bench(spec, settings);
  } catch (const no_stored_best&) {
  }
  out << fmt::format("{}: nothing stored for this device, tuning now (auto, budget {})\n", spec.path.stem().string(),
                     options.tune_budget);
  tune_options tuning;
  tuning.limit = budget::parse(options.tune_budget);
  tuning.store = options.store;
  tuning.devices = {options.device};
  (void)run_tuning(spec, tuning);
  tuned_now = true;
  return run_bench(spec, settings);
}

std::optional<double> number_at(const json& object, const char* section, const char* key) {
  if (!object.contains(section) || !object[section].contains(key) || !object[section][key].is_number()) return std::nullopt;
  return object[section][key].get<double>();
}

int run_profile(const profile_options& options, std::ostream& out) {
#if !defined(TUNEKIT_HAS_CUDA)
  (void)options;
  (void)out;
  throw error("tunekit profile measures GPU kernels: this build has no CUDA");
#else
  if (options.suite != "seed" && options.suite != "large" && options.suite != "all")
    throw invalid_argument("--suite '" + options.suite + "' is not seed, large or all");
  if (options.fail_on_regression && options.baseline.empty())
    throw invalid_argument("--fail-on-regression needs --baseline FILE");
  const std::filesystem::path manifest = options.manifest;
  auto suite = profile::load_suite(manifest);
  const auto wanted = split(options.kernels);
  std::set<std::string> known;
  for (const auto& entry : suite) known.insert(entry.workload);
  for (const auto& name : wanted)
    if (!known.contains(name)) throw invalid_argument("--kernels: no workload '" + name + "' in " + manifest.string());
  std::erase_if(suite, [&](const profile::suite_entry& entry) {
    return (!wanted.empty() && !wanted.contains(entry.workload)) || (options.suite != "all" && entry.size != options.suite);
  });
  const auto budgets = profile::load_budgets(options.budgets.empty() ? manifest.parent_path() / "budgets.toml"
                                                                    : std::filesystem::path(options.budgets));
  std::optional<measure::result_file> baseline;
  if (!options.baseline.empty()) baseline = measure::read_result_file(options.baseline);
  if (cuda::count_devices_without_context() <= options.device) throw error("tunekit profile: no GPU " + std::to_string(options.device) + " here");

  std::set<std::string> workloads;
  for (const auto& entry : suite) workloads.insert(entry.workload);
  json peer_entries = json::array();
  if (options.peers) peer_entries = run_peers(options.peer_script, workloads);

  // An empty kernel's time through the same engine: what launch-bound is measured against.
  bool ignored = false;
  const auto empty = load_spec(manifest.parent_path() / "launch_overhead" / "launch_overhead.toml");
  const auto overhead = measure_tuned(empty, options, ignored, out);
  std::optional<double> launch_us;
  if (overhead.outcome.status == evaluation_status::ok) launch_us = overhead.outcome.median_us;

  auto store = results_store::open(options.store.empty() ? default_store_path() : std::filesystem::path(options.store));
  const auto roof = cuda::device_ceilings(store, options.device);

  measure::result_file file;
  std::vector<profile::report_row> rows;
  json extras = json::array();
  std::string device_name;
  bool failed = false;
  for (const auto& entry : suite) {
    const auto spec = load_spec(entry.spec);
    const auto name = entry.spec.stem().string();
    profile::report_row row{.workload = entry.workload, .size = entry.size, .observed = {}, .verdict = {}, .config = {},
                            .tuned_now = false, .peer = {}};
    const auto report = measure_tuned(spec, options, row.tuned_now, out);
    device_name = report.device.name;
    if (report.outcome.status != evaluation_status::ok) {
      out << fmt::format("{}: failed: {}: {}\n", name, to_string(report.outcome.status), report.outcome.message);
      failed = true;
      continue;
    }
    measure::measurement_result result;
    result.name = name;
    for (const auto& [key, value] : spec.problem) result.params.emplace_back(key, json(value).dump());
    result.samples_us = report.outcome.samples_us;
    const auto detail = json::parse(report.outcome.detail);
    if (detail.contains("telemetry")) result.telemetry = detail["telemetry"].dump();
    measure::summarize_result(result);
    auto& observed = row.observed;
    observed.name = name;
    observed.statistics = result.statistics;
    if (const auto budget = budgets.find(name); budget != budgets.end()) observed.budget_us = budget->second;
    const auto space = search_space::enumerate(space_of(spec));
    if (const auto work = work_of(spec, space, report.index)) {
      observed.rate = measure::annotate(*work, result.statistics.median, roof);
      result.throughput = measure::throughput_json(*work, result.statistics.median, roof);
    }
    observed.launch_overhead_us = launch_us;
    if (detail.contains("occupancy")) {
      observed.occupancy_limiter = detail["occupancy"].value("limiter", "");
      observed.occupancy = number_at(detail, "occupancy", "occupancy");
    }
    observed.registers = number_at(detail, "resources", "registers");
    observed.local_bytes = number_at(detail, "resources", "local_bytes");
    json peers = json::array();
    for (const auto& peer : peers_of(peer_entries, entry.workload, spec)) {
      peers.push_back(peer);
      if (!observed.peer_us && !peer.value("cpu", false)) {
        observed.peer_us = 1000.0 * peer.at("median_ms").get<double>();
        row.peer = peer.value("peer", "");
      }
    }
    row.config = config_text(report.configuration);
    file.results.push_back(result);
    extras.push_back({{"workload", entry.workload}, {"size", entry.size}, {"config", row.config},
                      {"tuned_now", row.tuned_now}, {"peers", peers}});
    rows.push_back(std::move(row));
  }
  file.device = json{{"name", device_name}, {"launch_overhead_us", launch_us ? json(*launch_us) : json()},
                     {"ceilings", {{"copy_gbps", roof.copy_gbps ? json(*roof.copy_gbps) : json()},
                                   {"fp32_tflops", roof.fp32_tflops ? json(*roof.fp32_tflops) : json()},
                                   {"bf16_tflops", roof.bf16_tflops ? json(*roof.bf16_tflops) : json()}}}}
                    .dump();

  bool regressed = false;
  if (baseline) {
    const auto compared = measure::compare(*baseline, file);
    for (const auto& pair : compared.pairs)
      for (auto& row : rows)
        if (row.observed.name == pair.name) {
          row.observed.regression = std::string(measure::to_string(pair.outcome));
          row.observed.regression_change = pair.change;
        }
  }
  for (std::size_t r = 0; r < rows.size(); ++r) {
    rows[r].verdict = profile::assess(rows[r].observed);
    regressed = regressed || rows[r].observed.regression == "SLOWER";
    auto& extra = extras[r];
    extra["flags"] = rows[r].verdict.flags;
    extra["recommendations"] = rows[r].verdict.recommendations;
    if (rows[r].observed.budget_us) extra["budget_us"] = *rows[r].observed.budget_us;
    if (rows[r].observed.peer_us) {
      extra["peer_us"] = *rows[r].observed.peer_us;
      extra["speedup"] = *rows[r].observed.peer_us / rows[r].observed.statistics.median;
    }
    if (!rows[r].observed.regression.empty()) {
      extra["baseline_verdict"] = rows[r].observed.regression;
      extra["baseline_change"] = rows[r].observed.regression_change.value_or(0.0);
    }
  }

  std::ostringstream markdown;
  profile::write_markdown(markdown, device_name, rows);
  out << markdown.str();
  if (!options.markdown.empty()) {
    std::ofstream md(options.markdown);
    md << markdown.str();
    if (!md) throw error("cannot write '" + options.markdown + "'");
  }
  if (!options.json_file.empty()) {
    std::ostringstream text;
    measure::write_json(file, text);
    auto document = json::parse(text.str());
    for (std::size_t r = 0; r < extras.size() && r < document["results"].size(); ++r) document["results"][r]["profile"] = extras[r];
    std::ofstream json_out(options.json_file);
    json_out << document.dump(1) << '\n';
    if (!json_out) throw error("cannot write '" + options.json_file + "'");
  }
  if (regressed && options.fail_on_regression) {
    out << "regressed against " << options.baseline << "\n";
    return 1;
  }
  return failed ? 1 : 0;
#endif
}

}  // namespace

void add_profile_command(CLI::App& app, command_action& action, std::ostream& out) {
  auto options = std::make_shared<profile_options>();
  auto* command = app.add_subcommand(
      "profile", "Measure the workload suite's tuned kernels on this GPU: statistics, throughput against the device's "
                 "ceilings, the peers, flags (slow, noisy, outliers, launch-bound, regressed) and recommendations");
  command->add_option("--suite", options->suite, "seed, large or all (default all)");
  command->add_option("--kernels", options->kernels, "Workloads a,b,... (default: all of the suite)");
  command->add_option("--json", options->json_file, "Write the results (tunekit compare reads them) with the profile");
  command->add_option("--markdown", options->markdown, "Write the Markdown report");
  command->add_option("--baseline", options->baseline, "A result file to compare each kernel with");
  command->add_flag("--fail-on-regression", options->fail_on_regression, "Exit 1 when a kernel is SLOWER than the baseline");
  command->add_flag("--peers", options->peers, "Measure the PyTorch peers in the same run (needs PyTorch)");
  command->add_flag("--use-baseline-config", options->use_baseline_config,
                    "Measure each spec's baseline configuration instead of the tuned one (what tuning buys)");
  command->add_option("--manifest", options->manifest, "The suite manifest (default kernels/suite.toml)");
  command->add_option("--budgets", options->budgets, "The budget table (default: budgets.toml beside the manifest)");
  command->add_option("--peer-script", options->peer_script, "The peers' script (default bench/workloads/torch_peer.py)");
  command->add_option("--store", options->store, "Results store (default: $TUNEKIT_STORE or the XDG data directory)");
  command->add_option("--device", options->device, "GPU (default 0)");
  command->add_option("--tune-budget", options->tune_budget, "Budget when a kernel has nothing stored (default 60)");
  command->add_option("--min-seconds", options->min_seconds, "Least measuring time per kernel (default 0.5)");
  command->callback([options, &action, &out] { action = [options, &out] { return run_profile(*options, out); }; });
}

}  // namespace tunekit::app
