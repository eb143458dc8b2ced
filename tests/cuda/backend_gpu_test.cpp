// The CUDA backend end to end on the GPU: the fault spec records every class
// and the session goes on past device faults and hangs (the worker process is
// started again); a rerun measures nothing; resources are read per variant.
// Labelled gpu, skipped where there is no device.
#include "tunekit/cuda/backend.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

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

TEST(CudaBackendGpu, AnInputPassedByValueReachesTheKernelAndItsSizeIsChecked) {
  if (tunekit::cuda::count_devices_without_context() == 0) GTEST_SKIP() << "no CUDA device";
  tunekit::test::temp_dir dir;
  // out[i] = in[i] * weights[i % 4]; the kernel's struct has TAPS weights, the
  // spec passes 4: TAPS = 5 must fail before the launch reads past them.
  std::ofstream(dir.path() / "taps.cu") << R"(
struct taps { float weights[TAPS]; };
extern "C" __global__ void scale(float* out, const float* in, const taps t, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = in[i] * t.weights[i % 4];
}
)";
  std::ofstream(dir.path() / "taps_reference.cpp") << R"(
extern "C" void taps_reference(void* const* args) {
  auto* out = static_cast<float*>(args[0]);
  const auto* in = static_cast<const float*>(args[1]);
  const auto* weights = static_cast<const float*>(args[2]);
  const int n = *static_cast<const int*>(args[3]);
  for (int i = 0; i < n; ++i) out[i] = in[i] * weights[i % 4];
}
)";
  std::ofstream(dir.path() / "taps.toml") << R"toml([kernel]
name = "taps"
backend = "cuda"
source = "taps.cu"
function = "scale"
[parameters]
TAPS = [4, 5]
[problem]
n = 100000
[launch]
grid = ["ceil(n / 256)"]
block = ["256"]
[[arguments]]
name = "out"
type = "float32"
count = "n"
direction = "out"
[[arguments]]
name = "in"
type = "float32"
count = "n"
init = { random = { seed = 1, low = -1.0, high = 1.0 } }
[[arguments]]
name = "weights"
type = "float32"
count = "4"
pass = "value"
init = { random = { seed = 2, low = 1.0, high = 2.0 } }
[[arguments]]
name = "n"
scalar = "int32"
value = "n"
[reference]
source = "taps_reference.cpp"
function = "taps_reference"
tolerance = { absolute = 0, relative = 0 }
)toml";
  tunekit::tune_options options;
  options.strategy = "brute_force";
  options.limit = tunekit::budget::parse("100%");
  options.store = dir.path() / "store.db";
  const auto report = tunekit::run_tuning(tunekit::load_spec(dir.path() / "taps.toml"), options);
  EXPECT_EQ(report.evaluations, 2u);
  ASSERT_TRUE(report.best.has_value()) << tunekit::to_json(report);
  EXPECT_EQ(std::get<std::int64_t>(report.best->config.at(0).second), 4) << "verified exactly";
  EXPECT_EQ(report.failures.count("launch_error"), 1u) << tunekit::to_json(report);

  auto store = tunekit::results_store::open(options.store, tunekit::store_access::read_only);
  bool saw_message = false;
  for (const auto& result : store.results(store.problems().at(0).key))
    if (result.status == tunekit::evaluation_status::launch_error) {
      EXPECT_NE(result.extra.find("has 20 bytes, the spec gives 16"), std::string::npos) << result.extra;
      saw_message = true;
    }
  EXPECT_TRUE(saw_message);
}

}  // namespace
