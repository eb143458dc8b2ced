// The host backend and the runner, end to end on the examples: the matrix
// product tunes to a speedup over its baseline and resumes without measuring
// again; every failure class of the faults spec is a typed result and the
// session completes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "tunekit/host/backend.hpp"
#include "tunekit/runner.hpp"
#include "tunekit/search_space.hpp"
#include "tunekit/spec.hpp"

namespace {

namespace fs = std::filesystem;
const fs::path examples = TUNEKIT_SOURCE_DIR "/examples/host";

class scratch_store {
 public:
  scratch_store() {
    folder_ = fs::temp_directory_path() / ("tunekit_runner_test_" + std::to_string(::getpid()) + "_" +
                                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(folder_);
    fs::create_directories(folder_);
  }
  ~scratch_store() { fs::remove_all(folder_); }
  fs::path operator/(const std::string& name) const { return folder_ / name; }

 private:
  fs::path folder_;
};

TEST(HostRunner, MatmulFindsASpeedupAndASecondRunMeasuresNothing) {
  scratch_store dir;
  const auto store = (dir / "store.db").string();
  const auto first_json = (dir / "first.json").string();
  const auto spec = (examples / "matmul.toml").string();
  auto result = tunekit::testing::run_cli({"tune", spec, "--budget", "20", "--store", store, "--json", first_json});
  ASSERT_EQ(result.code, 0) << result.err;
  std::ifstream first_file(first_json);
  const auto first = nlohmann::json::parse(first_file);
  EXPECT_EQ(first["kernel"], "host_matmul");
  EXPECT_EQ(first["evaluations"], 20);
  EXPECT_GE(first["measured"].get<int>(), 20);
  EXPECT_GT(first["speedup"].get<double>(), 1.0);
  EXPECT_TRUE(first["failures"].empty());
  for (const char* key : {"device", "problem", "best", "baseline"}) EXPECT_TRUE(first.contains(key)) << key;
  EXPECT_GT(first["best"]["time_us"].get<double>(), 0.0);
  EXPECT_EQ(first["baseline"]["config"], nlohmann::json({{"ORDER", 0}, {"THREADS", 1}, {"TILE", 8}}));
  // The spec ranks by GFLOP/s = 2 n^3 / time: the best has the most, and the figure is the time's.
  EXPECT_EQ(first["objective"]["name"], "GFLOP/s");
  EXPECT_EQ(first["objective"]["goal"], "max");
  EXPECT_NEAR(first["objective"]["best"].get<double>(), 2.0 * 256 * 256 * 256 / (first["best"]["time_us"].get<double>() * 1e3),
              1e-9 * first["objective"]["best"].get<double>());
  EXPECT_GT(first["objective"]["best"].get<double>(), first["objective"]["baseline"].get<double>());

  const auto second_json = (dir / "second.json").string();
  result = tunekit::testing::run_cli({"tune", spec, "--budget", "20", "--store", store, "--json", second_json});
  ASSERT_EQ(result.code, 0) << result.err;
  std::ifstream second_file(second_json);
  const auto second = nlohmann::json::parse(second_file);
  EXPECT_EQ(second["measured"], 0) << "everything came from the store";
  EXPECT_EQ(second["best"], first["best"]);
}

TEST(HostRunner, ConfigurationIndexTakesTheNamedValuesAndTheBaselinesElsewhere) {
  const auto spec = tunekit::load_spec(examples / "matmul.toml");
  const auto space = tunekit::search_space::enumerate(tunekit::space_of(spec));
  EXPECT_EQ(tunekit::configuration_index(spec, space, {}), tunekit::baseline_index(spec, space));
  EXPECT_EQ(space.describe(tunekit::configuration_index(spec, space, {{"ORDER", "1"}, {"TILE", "32"}})),
            "ORDER=1, THREADS=1, TILE=32");
  EXPECT_THROW((void)tunekit::configuration_index(spec, space, {{"WIDTH", "8"}}), tunekit::invalid_argument);
  EXPECT_THROW((void)tunekit::configuration_index(spec, space, {{"TILE", "12"}}), tunekit::invalid_argument);
}

TEST(HostRunner, EveryFailureClassIsCountedAndTheSessionCompletes) {
  scratch_store dir;
  const auto spec = tunekit::load_spec(examples / "faults.toml");
  const auto report = tunekit::run_tuning(spec, {.strategy = "brute_force",
                                                 .limit = tunekit::budget::parse("100%"),
                                                 .store = dir / "store.db"});
  EXPECT_EQ(report.evaluations, 9u);
  for (const char* failure : {"compile_error", "resources", "launch_error", "device_fault", "timeout", "wrong_result",
                              "invalid_output"}) {
    const auto found = report.failures.find(failure);
    ASSERT_NE(found, report.failures.end()) << failure;
    EXPECT_EQ(found->second, 1u) << failure;
  }
  ASSERT_TRUE(report.best.has_value());
  EXPECT_EQ(std::get<std::int64_t>(report.best->config[0].second), 0) << "MODE=0 is the fast correct one";
  ASSERT_TRUE(report.speedup.has_value());
  EXPECT_GT(*report.speedup, 1.0) << "MODE=8 does the work four times";
  // Each failure was stored with its class: a resumed session measures nothing.
  const auto again = tunekit::run_tuning(spec, {.strategy = "brute_force",
                                                .limit = tunekit::budget::parse("100%"),
                                                .store = dir / "store.db"});
  EXPECT_EQ(again.measured, 0u);
  EXPECT_EQ(again.failures, report.failures);
}

TEST(HostRunner, TheLogHasALinePerEvaluationAndEachFailuresMessage) {
  scratch_store dir;
  const auto log_path = (dir / "tune.log").string();
  const auto result = tunekit::testing::run_cli({"tune", (examples / "faults.toml").string(), "--strategy", "brute_force",
                                                 "--budget", "100%", "--store", (dir / "store.db").string(), "--log",
                                                 log_path});
  ASSERT_EQ(result.code, 0) << result.err;
  std::ifstream file(log_path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(file, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 10u);  // the baseline first (for the speedup), then the nine of the space
  EXPECT_EQ(lines[0].rfind("[base] MODE=8: ", 0), 0u) << lines[0];
  std::size_t timed = 0;
  for (const auto& line : lines) {
    EXPECT_TRUE(line.rfind("[eval] MODE=", 0) == 0 || &line == &lines[0]) << line;
    if (line.size() > 3 && line.compare(line.size() - 3, 3, " us") == 0) {
      ++timed;
      continue;
    }
    // A failure: its class, then the message the backend gave.
    const auto colon = line.find(": ");
    ASSERT_NE(colon, std::string::npos) << line;
    const auto message = line.find(": ", colon + 2);
    ASSERT_NE(message, std::string::npos) << line;
    EXPECT_GT(line.size(), message + 2) << line;
  }
  EXPECT_EQ(timed, 3u);  // MODE=0 and MODE=8 (twice) run correctly; the seven others fail each their own way
  tunekit::testing::expect_bad_input({"tune", (examples / "faults.toml").string(), "--store",
                                      (dir / "store.db").string(), "--log", (dir / "no/such/dir/tune.log").string()});
}

TEST(HostRunner, BadSpecsAndBudgetsAreBadInput) {
  tunekit::testing::expect_bad_input({"tune", "/nonexistent.toml"});
  tunekit::testing::expect_bad_input({"tune", (examples / "matmul.toml").string(), "--budget", "soon"});
  tunekit::testing::expect_bad_input({"tune", (examples / "matmul.toml").string(), "--strategy", "oracle"});
}

TEST(HostRunner, AnInputFileShorterThanItsBufferIsASpecError) {
  scratch_store dir;
  std::ofstream(dir / "x.bin", std::ios::binary) << "tooshort";
  std::ifstream original(examples / "faults.toml");
  std::string text((std::istreambuf_iterator<char>(original)), std::istreambuf_iterator<char>());
  text.replace(text.find("faults.cpp"), 10, (examples / "faults.cpp").string());
  text.replace(text.find("init = \"sequence\""), 17, "init = { file = \"x.bin\" }");
  std::ofstream(dir / "short.toml") << text;
  const auto spec = tunekit::load_spec(dir / "short.toml");
  const auto space = tunekit::search_space::enumerate(tunekit::space_of(spec));
  EXPECT_THROW(tunekit::host::backend(spec, space, dir / "cache"), tunekit::spec_error);
}

TEST(HostCompiler, CachesByHashAndReportsCompileErrors) {
  scratch_store dir;
  const tunekit::host::compiler compiler(dir / "cache");
  EXPECT_FALSE(compiler.version().empty());
  const auto first = compiler.compile(examples / "faults.cpp", {{"MODE", "0"}}, {});
  ASSERT_TRUE(first.ok) << first.log;
  EXPECT_FALSE(first.cached);
  const auto second = compiler.compile(examples / "faults.cpp", {{"MODE", "0"}}, {});
  EXPECT_TRUE(second.cached);
  EXPECT_EQ(second.library, first.library);
  const auto broken = compiler.compile(examples / "faults.cpp", {{"MODE", "5"}}, {});
  EXPECT_FALSE(broken.ok);
  EXPECT_NE(broken.log.find("on purpose"), std::string::npos) << broken.log;
}

TEST(HostCompiler, AChangedIncludedHeaderIsANewCacheEntry) {
  scratch_store dir;
  const tunekit::host::compiler compiler(dir / "cache");
  std::filesystem::create_directories(dir / "src" / "common");
  std::ofstream(dir / "src" / "common" / "value.hpp") << "inline int value() { return 1; }\n";
  std::ofstream(dir / "src" / "k.cpp") << "#include \"common/value.hpp\"\nextern \"C\" int k() { return value(); }\n";
  const auto first = compiler.compile(dir / "src" / "k.cpp", {}, {});
  ASSERT_TRUE(first.ok) << first.log;
  EXPECT_TRUE(compiler.compile(dir / "src" / "k.cpp", {}, {}).cached);
  std::ofstream(dir / "src" / "common" / "value.hpp") << "inline int value() { return 2; }\n";
  const auto changed = compiler.compile(dir / "src" / "k.cpp", {}, {});
  ASSERT_TRUE(changed.ok) << changed.log;
  EXPECT_FALSE(changed.cached);
  EXPECT_NE(changed.library, first.library);
}

}  // namespace
