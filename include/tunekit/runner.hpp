#pragma once
// The tuning runner: a spec, a strategy and a budget in; every evaluation
// compiled, run, verified, measured and written to the results store as it
// arrives; the best configuration, the baseline and the speedup out. A rerun
// of the same spec against the same store measures nothing twice.
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
  std::ostream* progress = nullptr;       ///< one line per evaluation when set
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
};

/// Tunes `spec` (host backend; the CUDA backend is not built yet and is
/// refused with tunekit::spec_error). Throws spec_error for a spec the run
/// trips over (a reference that does not compile or crashes).
[[nodiscard]] tune_report run_tuning(const kernel_spec& spec, const tune_options& options);

/// The report as the JSON contract of `tunekit tune --json`:
/// {"kernel", "device", "problem": {...}, "evaluations", "measured", "failures": {class: count},
///  "best": {"config": {...}, "time_us"}, "baseline": {"config": {...}, "time_us"}, "speedup"}.
[[nodiscard]] std::string to_json(const tune_report& report);

}  // namespace tunekit
