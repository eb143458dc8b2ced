#pragma once
// The production profiler's judgement, apart from the GPU: which workloads
// the suite holds (a manifest), what each may take (a budget table), and,
// from one measured kernel, its flags (slow, noisy, outliers, launch-bound,
// regressed) and recommendations derived from the measurements. The
// `tunekit profile` command measures; this decides and reports. Plain C++.
//
//   const auto suite = tunekit::profile::load_suite("kernels/suite.toml");
//   const auto budgets = tunekit::profile::load_budgets("kernels/budgets.toml");
//   const auto verdict = tunekit::profile::assess(observed, {});

#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "tunekit/measure/statistics.hpp"
#include "tunekit/measure/throughput.hpp"

namespace tunekit::profile {

/// One spec of the suite: workload "conv2d", size "large", the spec file.
struct suite_entry {
  std::string workload;
  std::string size;  ///< "seed" or "large"
  std::filesystem::path spec;
};

/// Reads a suite manifest:
///   [[workload]]
///   name = "conv2d"
///   seed = ["conv2d/conv2d_seed.toml"]
///   large = ["conv2d/conv2d.toml", "conv2d/conv2d_k5.toml"]
/// Paths are relative to the manifest. Throws tunekit::spec_error (file and
/// line) for a malformed manifest or a spec file that does not exist.
[[nodiscard]] std::vector<suite_entry> load_suite(const std::filesystem::path& manifest);

/// Reads a budget table, `[budget_us]` of spec name (its file's stem) ->
/// microseconds. Throws tunekit::spec_error.
[[nodiscard]] std::map<std::string, double> load_budgets(const std::filesystem::path& file);

/// When a measurement is flagged.
struct thresholds {
  double max_cv = 0.05;             ///< high variance above this coefficient of variation
  double outlier_ratio = 2.0;       ///< outliers: max > ratio x mean
  double launch_bound_ratio = 3.0;  ///< launch-bound: median < ratio x the measured launch overhead
  double at_limit = 0.85;           ///< at the limit: >= this fraction of a ceiling
  double far_from_limit = 0.5;      ///< room left: below this fraction of every ceiling
};

/// What was measured of one kernel.
struct observation {
  std::string name;  ///< the spec's stem
  measure::summary statistics;
  std::optional<double> budget_us;
  std::optional<measure::throughput> rate;  ///< from the spec's [model] and the device's ceilings
  std::optional<double> launch_overhead_us; ///< an empty kernel's median, same engine, same run
  std::string occupancy_limiter;            ///< "registers", "shared_memory", ... ("" unknown)
  std::optional<double> occupancy;          ///< theoretical, 0..1
  std::optional<double> registers;          ///< per thread
  std::optional<double> local_bytes;        ///< spills
  std::optional<double> peer_us;            ///< the peer's median, same run
  std::string regression;                   ///< compare's verdict against a baseline ("SLOWER", ...), "" none
  std::optional<double> regression_change;  ///< median change against the baseline
};

struct assessment {
  std::vector<std::string> flags;            ///< "slow", "high_variance", "outliers", "launch_bound", "regressed"
  std::vector<std::string> recommendations;  ///< one sentence each, quoting the figures behind it
};

[[nodiscard]] assessment assess(const observation& observed, const thresholds& limits = {});

/// One row of the report.
struct report_row {
  std::string workload;
  std::string size;
  observation observed;
  assessment verdict;
  std::string config;  ///< "name=value, ..."
  bool tuned_now = false;
  std::string peer;    ///< what the peer ran
};

/// The Markdown report: a table (median, p99, CV, throughput, % of ceiling,
/// peer, speedup, flags) and each kernel's recommendations.
void write_markdown(std::ostream& out, const std::string& device, const std::vector<report_row>& rows);

}  // namespace tunekit::profile
