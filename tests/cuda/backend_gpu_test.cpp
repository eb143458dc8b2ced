// The CUDA backend end to end on the GPU: the fault spec records every class
// and the session goes on past device faults and hangs (the worker process is
// started again); a rerun measures nothing; resources are read per variant.
// Labelled gpu, skipped where there is no device.
#include "tunekit/cuda/backend.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "temp_dir.hpp"
#include "tunekit/runner.hpp"
#include "tunekit/store.hpp"

namespace {

// The source tree: where it was built, unless $TUNEKIT_SOURCE_DIR says it
// moved (a build carried to the GPU machine).
const std::filesystem::path examples = [] {
  const char* moved = std::getenv("TUNEKIT_SOURCE_DIR");
  return std::filesystem::path(moved != nullptr ? moved : TUNEKIT_SOURCE_DIR) / "examples/cuda";
}();

TEST(CudaBackendGpu, TheFaultSpecRecordsEveryClassAndTheSessionCompletes) {
  // Counted in a child: this process must not hold a context when the backend forks.
  if (tunekit::cuda::count_devices_without_context() == 0) GTEST_SKIP() << "no CUDA device";
  tunekit::test::temp_dir dir;
  const auto spec = tunekit::load_spec(examples / "faults.toml");
  tunekit::tune_options options;
  options.strategy = "brute_force";
  options.limit = tunekit::budget::parse("100%");
  options.store = dir.path() / "store.db";
  const auto report = tunekit::run_tuning(spec, options);
  EXPECT_EQ(report.evaluations, 9u);
  EXPECT_EQ(report.measured, 9u);
  for (const char* each : {"compile_error", "resources", "launch_error", "device_fault", "timeout", "wrong_result",
                           "invalid_output"})
    EXPECT_EQ(report.failures.count(each), 1u) << each << " missing in " << tunekit::to_json(report);
  ASSERT_TRUE(report.best.has_value());
  EXPECT_EQ(std::get<std::int64_t>(report.best->config.at(0).second), 0);  // MODE 0, the fast correct one
  ASSERT_TRUE(report.speedup.has_value());

  // What the store kept: the fault's message, and resources for what loaded.
  auto store = tunekit::results_store::open(options.store, tunekit::store_access::read_only);
  const auto problems = store.problems();
  ASSERT_EQ(problems.size(), 1u);
  bool saw_registers = false;
  for (const auto& result : store.results(problems[0].key)) {
    const auto extra = nlohmann::json::parse(result.extra);
    if (result.status == tunekit::evaluation_status::ok) {
      ASSERT_TRUE(extra.contains("resources")) << result.extra;
      EXPECT_GT(extra["resources"]["registers"].get<int>(), 0);
      saw_registers = true;
    } else {
      EXPECT_FALSE(extra.value("message", "").empty()) << tunekit::to_string(result.status);
    }
  }
  EXPECT_TRUE(saw_registers);

  const auto again = tunekit::run_tuning(spec, options);
  EXPECT_EQ(again.measured, 0u);
  EXPECT_EQ(again.failures, report.failures);
}

TEST(CudaBackendGpu, ReductionVariantsVerifyAndTime) {
  if (tunekit::cuda::count_devices_without_context() == 0) GTEST_SKIP() << "no CUDA device";
  tunekit::test::temp_dir dir;
  const auto spec = tunekit::load_spec(examples / "reduction.toml");
  tunekit::tune_options options;
  options.strategy = "random";
  options.limit = tunekit::budget::parse("12");
  options.store = dir.path() / "store.db";
  const auto report = tunekit::run_tuning(spec, options);
  EXPECT_EQ(report.evaluations, 12u);
  EXPECT_TRUE(report.failures.empty()) << tunekit::to_json(report);
  ASSERT_TRUE(report.best.has_value());
  EXPECT_GT(report.best->time_us, 0.0);
}

}  // namespace
