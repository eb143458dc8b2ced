#pragma once
// The tuning runner: a spec, a strategy and a budget in; every evaluation
// compiled, run, verified, measured and written to the results store as it
// arrives; the best configuration, the baseline and the speedup out. A rerun
// of the same spec against the same store measures nothing twice.
//
// Pipelined: worker threads (all cores) compile the configurations the
// strategy proposes while the lanes (one per GPU, or the host) run and time
// those already compiled. The strategy is asked ahead of its results (a
// speculative batch of `window` proposals), and told them in the order it
// proposed, so a seed gives the same search however the timing falls.
//
//   auto spec = tunekit::load_spec("examples/host/matmul.toml");
//   auto report = tunekit::run_tuning(spec, {.strategy = "auto", .limit = tunekit::budget::parse("20")});
//   std::cout << tunekit::to_json(report) << '\n';

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tunekit/backend.hpp"
#include "tunekit/spec.hpp"
#include "tunekit/store.hpp"
#include "tunekit/tuner.hpp"

namespace tunekit {

struct tune_options {
  std::string strategy = "auto";
  budget limit = budget::parse("5%");
  std::uint64_t seed = 0;
  std::filesystem::path store = {};       ///< empty: default_store_path()
  std::filesystem::path compile_cache = {};  ///< empty: beside the store, "<store>.cache"
  /// GPUs to tune on (cuda specs), each a lane measuring in parallel into
  /// one store; empty: GPU 0. They must be one model.
  std::vector<int> devices = {};
  std::size_t compile_threads = 0;        ///< 0: the hardware threads
  /// Proposals that may await their results at once; 0: 2 per lane plus
  /// the compile threads, at most 8 of them. Part of what a seed means: the
  /// same window and seed give the same search.
  std::size_t window = 0;
  std::ostream* progress = nullptr;       ///< progress when set
  /// How progress looks: one status line rewritten in place (a terminal:
  /// evaluations, best so far, failures by class, ETA), or a line per evaluation.
  bool progress_is_terminal = false;
  /// When set: a line per evaluation, as it arrives, a failure's with its
  /// message ("[eval] name=value, ...: 12.3 us" or "...: wrong_result: ...").
  std::ostream* log = nullptr;
};

/// A configuration and its median time.
struct timed_configuration {
  std::vector<std::pair<std::string, parameter_value>> config;
  double time_us = 0.0;
};

struct tune_report {
  std::string kernel;
  std::string device;
  std::string problem;  ///< JSON object text
  std::size_t evaluations = 0;  ///< by the strategy, this run (stored ones answer at once)
  std::size_t measured = 0;     ///< new measurements this run, the baseline included
  std::map<std::string, std::size_t> failures;  ///< by class, over this run's evaluations
  std::optional<timed_configuration> best;
  std::optional<timed_configuration> baseline;
  std::optional<double> speedup;  ///< baseline time / best time
  double seconds = 0.0;           ///< wall time of the session
  /// The spec's objective (the time unless it names a metric or energy)
  /// and its values for the best configuration and the baseline.
  std::string objective = "time";
  bool maximize = false;
  std::optional<double> best_objective;
  std::optional<double> baseline_objective;

  /// The pipeline's account, over this run's new measurements.
  std::size_t compile_threads = 0;
  std::size_t lanes = 0;
  std::size_t window = 0;
  std::size_t compiled = 0;        ///< compiles that were not cache hits
  double compile_seconds = 0.0;    ///< summed compile time
  double measure_seconds = 0.0;    ///< summed time the lanes spent running, verifying and timing
  /// The wall-time bound: 1.2 x max(compile_seconds / compile_threads, measure_seconds / lanes).
  [[nodiscard]] double bound_seconds() const;
};

/// Tunes `spec` on its backend (host, or cuda where the CUDA layer is built).
/// Throws spec_error for a spec the run trips over (a reference that does not
/// compile or crashes), tunekit::error when no GPU answers.
[[nodiscard]] tune_report run_tuning(const kernel_spec& spec, const tune_options& options);

struct bench_options {
  /// name=value pairs; parameters not named take the baseline's values.
  /// Empty: the stored best for this device, kernel and problem.
  std::vector<std::pair<std::string, std::string>> config;
  std::filesystem::path store = {};          ///< empty: default_store_path()
  std::filesystem::path compile_cache = {};  ///< empty: beside the store
  std::vector<int> devices = {};             ///< the first is measured on; empty: GPU 0
  double min_seconds = 1.0;                  ///< a longer measurement than a tuning one
  double max_noise = 0.005;
  /// With no config and nothing stored: measure the baseline instead of
  /// throwing no_stored_best.
  bool baseline_when_untuned = false;
};

/// run_bench() was asked for the stored best and the store has none for
/// this device, kernel and problem.
class no_stored_best : public invalid_argument {
 public:
  using invalid_argument::invalid_argument;
};

struct bench_report {
  std::string kernel;
  device_identity device;
  std::string problem;  ///< JSON object text
  std::size_t index = 0;  ///< the configuration's index in the spec's space
  timed_configuration configuration;
  bool from_store = false;  ///< the configuration is the stored best
  variant_outcome outcome;
};

/// The index in `space` (the space of `spec`) of the configuration that
/// `assignments` names, name=value, the baseline's values elsewhere. Throws
/// tunekit::invalid_argument naming the first wrong name or value, or when the
/// configuration breaks a constraint.
[[nodiscard]] std::size_t configuration_index(const kernel_spec& spec, const search_space& space,
                                              const std::vector<std::pair<std::string, std::string>>& assignments);

/// Measures one configuration of `spec` (verified first) with the
/// measurement engine. Throws tunekit::invalid_argument for a configuration
/// outside the space, no_stored_best when there is no stored best to
/// default to (unless baseline_when_untuned).
[[nodiscard]] bench_report run_bench(const kernel_spec& spec, const bench_options& options);

/// The report as the JSON contract of `tunekit tune --json`:
/// {"kernel", "device", "problem": {...}, "evaluations", "measured", "failures": {class: count},
///  "best": {"config": {...}, "time_us"}, "baseline": {"config": {...}, "time_us"}, "speedup",
///  "objective": {"name", "goal", "best", "baseline"}, "seconds", "pipeline": {"compile_threads", "lanes", "compiled", "compile_seconds",
///  "measure_seconds", "bound_seconds", "wall_over_bound"}}.
[[nodiscard]] std::string to_json(const tune_report& report);

}  // namespace tunekit
