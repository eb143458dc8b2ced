#include "tunekit/store.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_runner.hpp"
#include "tunekit/error.hpp"
#include "tunekit/replay.hpp"
#include "tunekit/strategy.hpp"
#include "tunekit/tuner.hpp"

namespace {

namespace fs = std::filesystem;
using tunekit::evaluation_status;
using tunekit::results_store;
using tunekit::store_key;
using tunekit::stored_result;

const fs::path fixture_directory = TUNEKIT_SOURCE_DIR "/tests/store";
const fs::path recorded_directory = TUNEKIT_SOURCE_DIR "/../shared/data/searchspaces";
const std::vector<std::string> recorded_names = {"convolution", "gemm", "pnpoly"};

// A fresh directory per use, removed afterwards.
class scratch {
 public:
  scratch() {
    static std::atomic<int> counter{0};
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = test != nullptr ? test->name() : "x";
    std::replace(name.begin(), name.end(), '/', '_');  // parameterised tests are named "Test/case"
    path_ = fs::temp_directory_path() /
            ("tunekit_store_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + name);
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~scratch() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  scratch(const scratch&) = delete;
  scratch& operator=(const scratch&) = delete;
  fs::path operator/(const std::string& name) const { return path_ / name; }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string file_bytes(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << file.rdbuf();
  return bytes.str();
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << bytes;
}

std::string gunzip(const fs::path& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) return {};
  std::string bytes;
  char buffer[1 << 16];
  int count = 0;
  while ((count = gzread(file, buffer, sizeof buffer)) > 0) bytes.append(buffer, static_cast<std::size_t>(count));
  gzclose(file);
  return bytes;
}

// Sets (or unsets, with nullopt) an environment variable for one scope.
class scoped_environment {
 public:
  scoped_environment(std::string name, const std::optional<std::string>& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    if (value) ::setenv(name_.c_str(), value->c_str(), 1);
    else ::unsetenv(name_.c_str());
  }
  ~scoped_environment() {
    if (old_) ::setenv(name_.c_str(), old_->c_str(), 1);
    else ::unsetenv(name_.c_str());
  }
  scoped_environment(const scoped_environment&) = delete;
  scoped_environment& operator=(const scoped_environment&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

using tunekit::testing::count_lines;
using tunekit::testing::expect_bad_input;

tunekit::testing::cli_outcome cli(std::vector<std::string> arguments) {
  return tunekit::testing::run_cli(std::move(arguments));
}

int lines(const std::string& text) { return count_lines(text); }

tunekit::parameter ints(const std::string& name, std::initializer_list<std::int64_t> values) {
  tunekit::parameter entry{name, {}};
  for (auto value : values) entry.values.emplace_back(value);
  return entry;
}

// A recorded space made up here, so crash and concurrency tests always run:
// ~700 configurations, a tenth failing, costs like a real session's.
tunekit::recorded_space synthetic_space() {
  tunekit::space_definition definition;
  definition.parameters = {ints("block_size_x", {16, 32, 64, 128, 256}), ints("block_size_y", {1, 2, 4, 8}),
                           ints("tile", {1, 2, 3, 4, 5, 6}),
                           {"unroll", {std::string("none"), std::string("x2"), std::string("x4")}},
                           {"ratio", {0.5, 1.0, 2.0}}};
  definition.constraints = {"block_size_x * block_size_y <= 512"};
  auto space = tunekit::search_space::enumerate(definition);
  std::vector<tunekit::recorded_result> results(space.size());
  std::mt19937_64 random(2024);
  for (std::size_t i = 0; i < space.size(); ++i) {
    auto& result = results[i];
    const double draw = std::uniform_real_distribution<double>(0.0, 1.0)(random);
    result.status = draw < 0.07 ? evaluation_status::compile_error
                    : draw < 0.10 ? evaluation_status::launch_error
                                  : evaluation_status::ok;
    const auto coordinates = space.coordinates(i);
    double time = 1.0;
    for (std::size_t p = 0; p < coordinates.size(); ++p)
      time += (coordinates[p] - 0.37 * static_cast<double>(p % 3)) * (coordinates[p] - 0.5) * static_cast<double>(p + 1);
    result.time = result.status == evaluation_status::ok ? time + 0.01 * draw : 0.0;
    result.compile_time = 50.0 + 100.0 * draw;
    result.verification_time = draw < 0.5 ? 0.0 : 1.25;
    result.benchmark_time = result.status == evaluation_status::ok ? 10.0 * time : 0.0;
  }
  return {"Synthetic GPU", "synthetic_kernel", "time", std::move(space), std::move(results)};
}

store_key synthetic_key(const std::string& kernel = "synthetic_kernel") {
  return {{"Synthetic GPU", "sm_90", "580.65.06"}, {kernel, tunekit::source_hash("__global__ void k() {}", "-O3")}, "[1024]"};
}

// Everything two tuning runs must agree on.
void expect_same_run(const tunekit::tuning_run& actual, const tunekit::tuning_run& expected) {
  EXPECT_EQ(actual.evaluations, expected.evaluations);
  EXPECT_EQ(actual.order, expected.order);
  EXPECT_EQ(actual.best_index, expected.best_index);
  EXPECT_EQ(actual.best, expected.best);
  EXPECT_EQ(actual.cost, expected.cost);
  ASSERT_EQ(actual.trace.size(), expected.trace.size());
  for (std::size_t i = 0; i < actual.trace.size(); ++i) {
    EXPECT_EQ(actual.trace[i].evaluation, expected.trace[i].evaluation);
    EXPECT_EQ(actual.trace[i].best, expected.trace[i].best);
  }
}

std::vector<std::uint64_t> read_log(const fs::path& path) {
  const std::string bytes = file_bytes(path);
  std::vector<std::uint64_t> indices(bytes.size() / sizeof(std::uint64_t));
  std::memcpy(indices.data(), bytes.data(), indices.size() * sizeof(std::uint64_t));
  return indices;
}

void append_log(int descriptor, std::uint64_t index) {
  if (::write(descriptor, &index, sizeof index) != static_cast<ssize_t>(sizeof index)) ::_exit(4);
  ::fsync(descriptor);
}

// Runs `body` in a child process; its exit code is body's (0 ok), 3 for an exception.
template <typename Body>
pid_t spawn(Body&& body) {
  const pid_t child = ::fork();
  if (child != 0) return child;
  int code = 3;
  try {
    code = body();
  } catch (const std::exception& failure) {
    std::fprintf(stderr, "child %d: %s\n", static_cast<int>(::getpid()), failure.what());
  }
  ::_exit(code);
}

int wait_exit_code(pid_t child) {
  int status = 0;
  if (::waitpid(child, &status, 0) != child) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

// The structure the T4 results schema (1.0.0) requires of a file.
void expect_valid_t4(const nlohmann::json& document) {
  ASSERT_TRUE(document.is_object());
  ASSERT_TRUE(document.contains("schema_version"));
  ASSERT_TRUE(document["schema_version"].is_string());
  EXPECT_TRUE(std::regex_match(document["schema_version"].get<std::string>(), std::regex("^[0-9]{1,}.[0-9]{1,}.[0-9]{1,}$")));
  ASSERT_TRUE(document.contains("results"));
  ASSERT_TRUE(document["results"].is_array());
  const std::set<std::string> invalidity = {"timeout", "compile", "runtime", "correctness", "constraints", "correct"};
  for (const auto& result : document["results"]) {
    ASSERT_TRUE(result.is_object());
    for (const char* required : {"configuration", "times", "invalidity", "correctness"})
      ASSERT_TRUE(result.contains(required)) << required << " in " << result.dump();
    EXPECT_TRUE(result["configuration"].is_object());
    ASSERT_TRUE(result["times"].is_object());
    EXPECT_TRUE(invalidity.count(result["invalidity"].get<std::string>()) == 1) << result["invalidity"];
    EXPECT_TRUE(result["correctness"].is_number());
    if (result.contains("timestamp")) {
      EXPECT_TRUE(result["timestamp"].is_string());
    }
    if (result.contains("objectives")) {
      EXPECT_TRUE(result["objectives"].is_array());
    }
    for (const char* number : {"compilation_time", "framework", "search_algorithm", "validation"}) {
      if (result["times"].contains(number)) {
        EXPECT_TRUE(result["times"][number].is_number()) << number;
      }
    }
    if (result["times"].contains("runtimes")) {
      EXPECT_TRUE(result["times"]["runtimes"].is_array());
    }
    if (result.contains("measurements")) {
      ASSERT_TRUE(result["measurements"].is_array());
      for (const auto& measured : result["measurements"]) {
        EXPECT_TRUE(measured["name"].is_string());
        EXPECT_TRUE(measured["value"].is_number() || measured["value"].is_string() || measured["value"].is_array());
        EXPECT_TRUE(measured["unit"].is_string());
      }
    }
  }
}

bool any_kept_whole(const std::vector<stored_result>& results) {
  return std::any_of(results.begin(), results.end(),
                     [](const stored_result& each) { return each.extra.find("\"record\"") != std::string::npos; });
}

// ================================================================ keys and records

TEST(StoreKeys, SourceHashIsSixteenHexDigitsOfFnv1a) {
  // FNV-1a 64 written out independently: source, a zero byte, options.
  const auto reference = [](const std::string& bytes) {
    std::uint64_t hash = 14695981039346656037ULL;
    for (unsigned char byte : bytes) {
      hash ^= byte;
      hash *= 1099511628211ULL;
    }
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
    return std::string(text);
  };
  EXPECT_EQ(tunekit::source_hash("kernel", "-O3"), reference(std::string("kernel") + '\0' + "-O3"));
  EXPECT_EQ(tunekit::source_hash(""), reference(std::string(1, '\0')));
  EXPECT_EQ(tunekit::source_hash("a", "b").size(), 16u);
  EXPECT_NE(tunekit::source_hash("ab", "c"), tunekit::source_hash("a", "bc"));
  EXPECT_NE(tunekit::source_hash("k", "-O3"), tunekit::source_hash("k", "-O2"));
  EXPECT_EQ(tunekit::source_hash("k", "-O3"), tunekit::source_hash("k", "-O3"));
}

TEST(StoreKeys, ConfigurationKeyIsNamesAndValueTextsWhateverTheOrderOrType) {
  const tunekit::stored_configuration a = {{"x", std::int64_t{64}}, {"layout", std::string("row")}};
  const tunekit::stored_configuration b = {{"layout", std::string("row")}, {"x", 64.0}};
  EXPECT_EQ(tunekit::configuration_key(a), tunekit::configuration_key(b));
  EXPECT_EQ(tunekit::configuration_key(a), R"({"layout":"row","x":"64"})");
  const tunekit::stored_configuration c = {{"x", std::int64_t{32}}, {"layout", std::string("row")}};
  EXPECT_NE(tunekit::configuration_key(a), tunekit::configuration_key(c));
  EXPECT_THROW((void)tunekit::configuration_key({{"x", std::int64_t{1}}, {"x", std::int64_t{2}}}), tunekit::invalid_argument);
}

TEST(Store, RecordsEveryFieldAndFindsItAgainInANewProcessView) {
  scratch dir;
  const auto key = synthetic_key();
  stored_result result;
  result.configuration = {{"block_size_x", std::int64_t{64}}, {"ratio", 0.5}, {"unroll", std::string("x2")}};
  result.status = evaluation_status::ok;
  result.value = 0.1 + 0.2;
  result.samples = {0.30000000000000004, 1e-300, 123456789.125, 5e-324};
  result.measurements = {{"time", 0.1 + 0.2, "ms"}, {"GFLOP/s", 1234.5, ""}};
  result.telemetry = R"({"sm_clock_mhz":[1980,1975],"power_w":[301.5,305.25]})";
  result.cost = 42.5;
  result.compile_time = 30.0;
  result.verification_time = 2.5;
  result.benchmark_time = 10.0;
  result.measured_at = "2025-01-02 03:04:05.000006+00:00";
  result.extra = R"({"note":"kept"})";
  {
    auto store = results_store::open(dir / "nested" / "dirs" / "store.db");
    EXPECT_TRUE(store.record(key, result));
    EXPECT_EQ(store.count(key), 1u);
  }
  const auto store = results_store::open(dir / "nested" / "dirs" / "store.db", tunekit::store_access::read_only);
  // The same configuration named in another order, with the integer as a double.
  const auto found = store.find(key, {{"unroll", std::string("x2")}, {"ratio", 0.5}, {"block_size_x", 64.0}});
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->configuration, result.configuration);
  EXPECT_EQ(found->status, result.status);
  EXPECT_EQ(found->value, result.value);
  EXPECT_EQ(found->samples, result.samples);
  ASSERT_EQ(found->measurements.size(), 2u);
  EXPECT_EQ(found->measurements[1].name, "GFLOP/s");
  EXPECT_EQ(found->measurements[1].value, 1234.5);
  EXPECT_EQ(nlohmann::json::parse(found->telemetry), nlohmann::json::parse(result.telemetry));
  EXPECT_EQ(found->cost, result.cost);
  EXPECT_EQ(found->compile_time, result.compile_time);
  EXPECT_EQ(found->verification_time, result.verification_time);
  EXPECT_EQ(found->benchmark_time, result.benchmark_time);
  EXPECT_FALSE(found->strategy_time.has_value());
  EXPECT_EQ(found->measured_at, result.measured_at);
  EXPECT_FALSE(found->recorded_at.empty());
  EXPECT_EQ(nlohmann::json::parse(found->extra), nlohmann::json::parse(result.extra));
  EXPECT_EQ(found->evaluation().cost, 42.5);
  EXPECT_FALSE(store.find(key, {{"block_size_x", std::int64_t{32}}, {"ratio", 0.5}, {"unroll", std::string("x2")}}));
  auto other_driver = key;
  other_driver.device.driver = "570.00";
  EXPECT_FALSE(store.find(other_driver, result.configuration));  // a new driver is a new device identity
  auto other_source = key;
  other_source.kernel.source_hash = tunekit::source_hash("changed", "-O3");
  EXPECT_FALSE(store.find(other_source, result.configuration));
  EXPECT_THROW((void)const_cast<results_store&>(store).record(key, result), tunekit::invalid_argument);
}

TEST(Store, KeepsTheFirstResultUnlessToldToReplaceAndReportsTheBest) {
  scratch dir;
  auto store = results_store::open(dir / "store.db");
  const auto key = synthetic_key();
  const auto make = [](std::int64_t x, evaluation_status status, double value) {
    stored_result result;
    result.configuration = {{"x", x}};
    result.status = status;
    result.value = value;
    result.compile_time = 1.0;
    result.benchmark_time = 2.0;
    return result;
  };
  EXPECT_TRUE(store.record(key, make(1, evaluation_status::ok, 5.0)));
  EXPECT_TRUE(store.record(key, make(2, evaluation_status::ok, 3.0)));
  EXPECT_TRUE(store.record(key, make(3, evaluation_status::compile_error, 0.0)));
  EXPECT_FALSE(store.record(key, make(1, evaluation_status::ok, 1.0)));  // kept
  EXPECT_EQ(store.find(key, {{"x", std::int64_t{1}}})->value, 5.0);
  EXPECT_TRUE(store.record(key, make(1, evaluation_status::ok, 1.0), tunekit::on_conflict::replace));
  EXPECT_EQ(store.find(key, {{"x", std::int64_t{1}}})->value, 1.0);
  const auto all = store.results(key);
  ASSERT_EQ(all.size(), 3u);  // replaced in place: order of first recording kept
  EXPECT_EQ(all[0].configuration, (tunekit::stored_configuration{{"x", std::int64_t{1}}}));
  EXPECT_TRUE(std::isnan(all[2].value));  // a failure has no objective
  EXPECT_EQ(all[2].evaluation().value, 0.0);
  EXPECT_EQ(all[2].evaluation().cost, 3.0);  // compile + verification + benchmark
  EXPECT_EQ(store.best(key)->value, 1.0);
  const auto problems = store.problems();
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].key, key);
  EXPECT_EQ(problems[0].results, 3u);
  EXPECT_EQ(problems[0].ok_results, 2u);
  EXPECT_EQ(problems[0].best_value, 1.0);
  EXPECT_EQ(store.count(), 3u);
  stored_result bad = make(9, evaluation_status::ok, 1.0);
  bad.telemetry = "not json";
  EXPECT_THROW((void)store.record(key, bad), tunekit::invalid_argument);
  bad.telemetry = "[1,2]";
  EXPECT_THROW((void)store.record(key, bad), tunekit::invalid_argument);
  EXPECT_EQ(store.count(), 3u);
}

TEST(Store, DescribeAddsParametersAndValuesInOrder) {
  scratch dir;
  auto store = results_store::open(dir / "store.db");
  const auto key = synthetic_key();
  store.describe(key, {ints("a", {1, 2}), {"b", {std::string("x")}}});
  store.describe(key, {ints("a", {2, 4}), ints("c", {7})});
  const auto problems = store.problems();
  ASSERT_EQ(problems.size(), 1u);
  const auto& parameters = problems[0].parameters;
  ASSERT_EQ(parameters.size(), 3u);
  EXPECT_EQ(parameters[0].name, "a");
  EXPECT_EQ(parameters[0].values, (std::vector<tunekit::parameter_value>{std::int64_t{1}, std::int64_t{2}, std::int64_t{4}}));
  EXPECT_EQ(parameters[1].name, "b");
  EXPECT_EQ(parameters[2].name, "c");
  EXPECT_EQ(problems[0].results, 0u);
}

// ================================================================ device ceilings

TEST(StoreCeilings, RecordsReplacesAndKeepsThemPerDevice) {
  scratch dir;
  const tunekit::device_identity h100{"NVIDIA H100 80GB HBM3", "sm_90", "580.65.06"};
  const tunekit::device_identity h200{"NVIDIA H200", "sm_90", "580.65.06"};
  {
    auto store = results_store::open(dir / "store.db");
    EXPECT_TRUE(store.ceilings(h100).empty());
    store.record_ceiling(h100, {"copy_gbps", 2900.0, "GB/s", R"({"bytes":1073741824})", "2026-11-21 10:00:00+00:00"});
    store.record_ceiling(h100, {"bf16_tflops", 650.0, "TFLOP/s", "{}", {}});
    store.record_ceiling(h200, {"copy_gbps", 4100.0, "GB/s", "{}", {}});
    store.record_ceiling(h100, {"copy_gbps", 3000.0, "GB/s", "{}", "2026-11-21 11:00:00+00:00"});  // remeasured
  }
  const auto store = results_store::open(dir / "store.db", tunekit::store_access::read_only);
  const auto ceilings = store.ceilings(h100);
  ASSERT_EQ(ceilings.size(), 2u);
  EXPECT_EQ(ceilings[0].name, "bf16_tflops");
  EXPECT_FALSE(ceilings[0].measured_at.empty()) << "filled in when not given";
  EXPECT_EQ(ceilings[1], (tunekit::stored_ceiling{"copy_gbps", 3000.0, "GB/s", "{}", "2026-11-21 11:00:00+00:00"}));
  ASSERT_EQ(store.ceilings(h200).size(), 1u);
  EXPECT_EQ(store.ceilings(h200)[0].value, 4100.0);
  EXPECT_EQ(store.count(), 0u) << "ceilings are not results";
}

TEST(StoreCeilings, RejectsBadCeilingsAndReadOnlyStores) {
  scratch dir;
  const tunekit::device_identity device{"gpu", "sm_90", "1"};
  {
    auto store = results_store::open(dir / "store.db");
    EXPECT_THROW(store.record_ceiling(device, {"", 1.0, "GB/s", "{}", {}}), tunekit::invalid_argument);
    EXPECT_THROW(store.record_ceiling(device, {"copy_gbps", 0.0, "GB/s", "{}", {}}), tunekit::invalid_argument);
    EXPECT_THROW(store.record_ceiling(device, {"copy_gbps", std::nan(""), "GB/s", "{}", {}}), tunekit::invalid_argument);
    EXPECT_THROW(store.record_ceiling(device, {"copy_gbps", 1.0, "GB/s", "[1]", {}}), tunekit::invalid_argument);
    EXPECT_TRUE(store.ceilings(device).empty());
  }
  auto read_only = results_store::open(dir / "store.db", tunekit::store_access::read_only);
  EXPECT_THROW(read_only.record_ceiling(device, {"copy_gbps", 1.0, "GB/s", "{}", {}}), tunekit::invalid_argument);
}

TEST(StoreCeilings, ARevisionOneStoreIsReadAsItIsAndUpgradedWhenWritten) {
  scratch dir;
  const auto path = dir / "old.db";
  {
    auto store = results_store::open(path);
    stored_result result;
    result.configuration = {{"x", std::int64_t{1}}};
    result.value = 2.0;
    store.record(synthetic_key(), result);
  }
  // What tunekit wrote before device ceilings existed.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE device_ceilings; PRAGMA user_version = 1", nullptr, nullptr, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_close(db), SQLITE_OK);
  const tunekit::device_identity device{"gpu", "sm_90", "1"};
  {
    const auto read_only = results_store::open(path, tunekit::store_access::read_only);
    EXPECT_TRUE(read_only.ceilings(device).empty());
    EXPECT_EQ(read_only.count(), 1u);
  }
  {
    auto store = results_store::open(path);
    store.record_ceiling(device, {"copy_gbps", 100.0, "GB/s", "{}", {}});
    EXPECT_EQ(store.count(), 1u) << "the upgrade keeps every result";
  }
  EXPECT_EQ(results_store::open(path, tunekit::store_access::read_only).ceilings(device).size(), 1u);
}

// ================================================================ location

TEST(StorePath, StoreVariableThenXdgDataHomeThenHome) {
  scoped_environment home("HOME", "/home/tester");
  {
    scoped_environment store("TUNEKIT_STORE", "/data/mine.db");
    scoped_environment xdg("XDG_DATA_HOME", "/xdg");
    EXPECT_EQ(tunekit::default_store_path(), fs::path("/data/mine.db"));
  }
  scoped_environment store("TUNEKIT_STORE", std::nullopt);
  {
    scoped_environment xdg("XDG_DATA_HOME", "/xdg");
    EXPECT_EQ(tunekit::default_store_path(), fs::path("/xdg/tunekit/tunekit.db"));
  }
  {
    scoped_environment xdg("XDG_DATA_HOME", "relative/path");  // the XDG specification says: ignore it
    EXPECT_EQ(tunekit::default_store_path(), fs::path("/home/tester/.local/share/tunekit/tunekit.db"));
  }
  {
    scoped_environment xdg("XDG_DATA_HOME", "");
    EXPECT_EQ(tunekit::default_store_path(), fs::path("/home/tester/.local/share/tunekit/tunekit.db"));
  }
  {
    scoped_environment empty_store("TUNEKIT_STORE", "");
    scoped_environment xdg("XDG_DATA_HOME", std::nullopt);
    EXPECT_EQ(tunekit::default_store_path(), fs::path("/home/tester/.local/share/tunekit/tunekit.db"));
  }
  {
    scoped_environment xdg("XDG_DATA_HOME", std::nullopt);
    scoped_environment no_home("HOME", std::nullopt);  // falls back to the password database, if it knows us
    try {
      const auto path = tunekit::default_store_path();
      EXPECT_EQ(path.filename(), "tunekit.db");
      EXPECT_TRUE(path.is_absolute()) << path;
    } catch (const tunekit::invalid_argument& refusal) {
      EXPECT_NE(std::string(refusal.what()).find("TUNEKIT_STORE"), std::string::npos);
    }
  }
}

TEST(StorePath, CliStoreOptionBeatsTunekitStoreWhichBeatsXdg) {
  scratch dir;
  scoped_environment xdg("XDG_DATA_HOME", dir.path().string());
  scoped_environment store_variable("TUNEKIT_STORE", std::nullopt);
  const auto listed_store = [](const std::vector<std::string>& arguments) {
    const auto result = cli(arguments);
    EXPECT_EQ(result.code, 0) << result.err;
    return nlohmann::json::parse(result.out)["store"].get<std::string>();
  };
  EXPECT_EQ(listed_store({"store", "list", "--json"}), (dir.path() / "tunekit" / "tunekit.db").string());
  {
    scoped_environment chosen("TUNEKIT_STORE", (dir / "variable.db").string());
    EXPECT_EQ(listed_store({"store", "list", "--json"}), (dir / "variable.db").string());
    EXPECT_EQ(listed_store({"store", "list", "--json", "--store", (dir / "option.db").string()}),
              (dir / "option.db").string());
    // And it is where an import lands.
    const auto result = cli({"store", "import", (fixture_directory / "kernel_tuner_cache.json").string()});
    ASSERT_EQ(result.code, 0) << result.err;
    EXPECT_TRUE(fs::exists(dir / "variable.db"));
    EXPECT_FALSE(fs::exists(dir.path() / "tunekit" / "tunekit.db"));
  }
  const auto result = cli({"store", "import", (fixture_directory / "kernel_tuner_cache.json").string()});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_TRUE(fs::exists(dir.path() / "tunekit" / "tunekit.db"));  // directories made on the way
}

// ================================================================ files: exact round trips

TEST(StoreFormats, KernelTunerFixtureRoundTripsByteForByte) {
  scratch dir;
  auto store = results_store::open(dir / "store.db");
  const auto path = fixture_directory / "kernel_tuner_cache.json";
  const auto file = tunekit::results_file::read(path);
  EXPECT_EQ(file.format(), tunekit::results_format::kernel_tuner);
  EXPECT_EQ(file.size(), 6u);
  const auto summary = tunekit::import_results(store, file);
  EXPECT_EQ(summary.added, 6u);
  EXPECT_EQ(summary.key.kernel.name, "fixture_kernel");
  EXPECT_EQ(summary.key.device.name, "Test GPU \xC3\x84 (fixture)");
  EXPECT_EQ(summary.key.problem_size, "[1024,768]");
  const std::string exported = tunekit::export_results(store, summary.key, tunekit::results_format::kernel_tuner);
  EXPECT_EQ(nlohmann::json::parse(exported), nlohmann::json::parse(file_bytes(path)));
  EXPECT_EQ(exported, file_bytes(path));  // Kernel Tuner's own layout, so Kernel Tuner can resume the file
  const auto results = store.results(summary.key);
  EXPECT_FALSE(any_kept_whole(results));  // every record reproduced from the store's columns

  // What the columns hold.
  ASSERT_EQ(results.size(), 6u);
  EXPECT_EQ(results[0].configuration,
            (tunekit::stored_configuration{{"block_size_x", std::int64_t{32}}, {"vector", 0.5},
                                           {"layout", std::string("row")}, {"use_shared", std::string("True")}}));
  EXPECT_EQ(results[0].value, 1.25);
  EXPECT_EQ(results[0].samples, (std::vector<double>{1.5, 1.25, 1.0}));
  EXPECT_EQ(results[0].measurements.size(), 2u);
  EXPECT_EQ(results[1].status, evaluation_status::compile_error);
  EXPECT_EQ(results[2].status, evaluation_status::launch_error);
  EXPECT_EQ(results[3].status, evaluation_status::resources);
  EXPECT_EQ(results[0].measured_at, "2024-03-01 10:00:00.000001+00:00");
  EXPECT_EQ(results[4].verification_time, 1.5);

  // Importing again adds nothing.
  const auto again = tunekit::import_results(store, tunekit::results_file::read(path));
  EXPECT_EQ(again.added, 0u);
  EXPECT_EQ(again.already_present, 6u);
  EXPECT_EQ(tunekit::export_results(store, summary.key, tunekit::results_format::kernel_tuner), file_bytes(path));
}

TEST(StoreFormats, RecordedKernelTunerFilesRoundTripExactly) {
  if (!fs::exists(recorded_directory)) GTEST_SKIP() << "no recorded spaces at " << recorded_directory;
  scratch dir;
  auto store = results_store::open(dir / "store.db");
  for (const auto& name : recorded_names) {
    const auto path = recorded_directory / (name + "_RTX_3090.json.gz");
    const std::string original = gunzip(path);
    ASSERT_FALSE(original.empty()) << path;
    const auto summary = tunekit::import_results(store, tunekit::results_file::read(path));
    const std::string exported = tunekit::export_results(store, summary.key, tunekit::results_format::kernel_tuner);
    EXPECT_TRUE(nlohmann::json::parse(exported) == nlohmann::json::parse(original)) << name;
    EXPECT_TRUE(exported == original) << name << ": not byte for byte";
    EXPECT_FALSE(any_kept_whole(store.results(summary.key))) << name;

    // The exported file replays exactly as the original does.
    tunekit::write_results_file(dir / (name + ".json.gz"), exported, false);
    const auto replayed = tunekit::load_kernel_tuner_cache(dir / (name + ".json.gz"));
    const auto recorded = tunekit::load_kernel_tuner_cache(path);
    ASSERT_EQ(replayed.results.size(), recorded.results.size());
    for (std::size_t i = 0; i < recorded.results.size(); ++i) {
      ASSERT_EQ(replayed.results[i].status, recorded.results[i].status);
      ASSERT_EQ(replayed.results[i].time, recorded.results[i].time);
      ASSERT_EQ(replayed.results[i].cost(), recorded.results[i].cost());
    }
  }
  EXPECT_EQ(store.problems().size(), recorded_names.size());
}

TEST(StoreFormats, T4FixtureRoundTripsByteForByteAndValidates) {
  scratch dir;
  auto store = results_store::open(dir / "store.db");
  const auto path = fixture_directory / "t4_results.json";
  tunekit::import_identity identity;
  identity.kernel_name = "fixture_kernel";
  identity.device_name = "A100";
  identity.architecture = "sm_80";
  identity.problem_size = "[1024,768]";
  const auto file = tunekit::results_file::read(path, std::nullopt, identity);
  EXPECT_EQ(file.format(), tunekit::results_format::t4);
  const auto summary = tunekit::import_results(store, file);
  EXPECT_EQ(summary.added, 7u);
  const std::string exported = tunekit::export_results(store, summary.key, tunekit::results_format::t4);
  EXPECT_EQ(nlohmann::json::parse(exported), nlohmann::json::parse(file_bytes(path)));
  EXPECT_EQ(exported, file_bytes(path));
  EXPECT_FALSE(any_kept_whole(store.results(summary.key)));
  expect_valid_t4(nlohmann::json::parse(exported));
  const auto results = store.results(summary.key);
  EXPECT_EQ(results[6].status, evaluation_status::wrong_result);
  EXPECT_EQ(results[0].samples, (std::vector<double>{1.5, 1.25, 1.0}));
  EXPECT_EQ(results[0].compile_time, 101.5);

  // Without a kernel and device a T4 file cannot be filed.
  EXPECT_THROW((void)tunekit::results_file::read(path), tunekit::invalid_argument);
}

TEST(StoreFormats, KernelTunerToT4IsWhatKernelTunersOwnT4WriterProduces) {
  scratch dir;
  auto store = results_store::open(dir / "store.db");
  const auto summary =
      tunekit::import_results(store, tunekit::results_file::read(fixture_directory / "kernel_tuner_cache.json"));
  const auto t4 = nlohmann::json::parse(tunekit::export_results(store, summary.key, tunekit::results_format::t4));
  expect_valid_t4(t4);
  auto expected = nlohmann::json::parse(file_bytes(fixture_directory / "t4_results.json"));
  expected["results"].erase(expected["results"].end() - 1);  // the fixture's extra result
  EXPECT_EQ(t4, expected);

  // And back: the T4 file's results as a Kernel Tuner cache are the original records.
  tunekit::import_identity identity;
  identity.kernel_name = "fixture_kernel";
  identity.device_name = "other";
  const auto from_t4 =
      tunekit::import_results(store, tunekit::results_file::read(fixture_directory / "t4_results.json", std::nullopt, identity));
  const auto cache = nlohmann::json::parse(tunekit::export_results(store, from_t4.key, tunekit::results_format::kernel_tuner));
  const auto original = nlohmann::json::parse(file_bytes(fixture_directory / "kernel_tuner_cache.json"));
  for (const auto& [cache_key, record] : original["cache"].items()) EXPECT_EQ(cache["cache"][cache_key], record) << cache_key;
  EXPECT_EQ(cache["tune_params"], original["tune_params"]);
}

TEST(StoreFormats, RecordedFilesExportAsValidT4AndRoundTripThroughIt) {
  if (!fs::exists(recorded_directory)) GTEST_SKIP() << "no recorded spaces at " << recorded_directory;
  scratch dir;
  auto store = results_store::open(dir / "store.db");
  const auto summary = tunekit::import_results(store, tunekit::results_file::read(recorded_directory / "pnpoly_RTX_3090.json.gz"));
  const std::string t4 = tunekit::export_results(store, summary.key, tunekit::results_format::t4);
  expect_valid_t4(nlohmann::json::parse(t4));
  tunekit::write_results_file(dir / "pnpoly.t4.json", t4, false);
  auto second = results_store::open(dir / "second.db");
  tunekit::import_identity identity;
  identity.kernel_name = "cn_pnpoly";
  identity.device_name = "NVIDIA GeForce RTX 3090";
  const auto imported = tunekit::import_results(second, tunekit::results_file::read(dir / "pnpoly.t4.json", std::nullopt, identity));
  EXPECT_EQ(imported.added, 4092u);
  EXPECT_EQ(tunekit::export_results(second, imported.key, tunekit::results_format::t4), t4);
  EXPECT_FALSE(any_kept_whole(second.results(imported.key)));
}

TEST(StoreFormats, AFileNothingElseReproducesIsKeptWholeAndStillExact) {
  scratch dir;
  // Key order unlike Kernel Tuner's, a key that is not the values' usual text,
  // an ok result with an empty sample list, a nested value in a record.
  const std::string odd = R"({"tune_params": {"a": [1, 2], "b": ["p", "q"]}, "kernel_name": "odd", "cache": {
"1,p": {"time": 1.5, "b": "p", "a": 1, "timestamp": "t"},
"2 ,q": {"a": 2, "b": "q", "time": 2.5, "times": [], "observer": {"nested": [1, 2.0]}}}, "device_name": "dev"})";
  write_bytes(dir / "odd.json", odd);
  auto store = results_store::open(dir / "store.db");
  const auto summary = tunekit::import_results(store, tunekit::results_file::read(dir / "odd.json"));
  const std::string exported = tunekit::export_results(store, summary.key, tunekit::results_format::kernel_tuner);
  EXPECT_EQ(nlohmann::ordered_json::parse(exported), nlohmann::ordered_json::parse(odd));
  const auto results = store.results(summary.key);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[1].value, 2.5);  // kept whole, yet the columns hold what it says
  EXPECT_EQ(results[0].measured_at, "t");
}

TEST(StoreFormats, ImportIsAllOrNothingAndForeignFilesAreRefused) {
  scratch dir;
  auto store = results_store::open(dir / "store.db");
  std::string broken = file_bytes(fixture_directory / "kernel_tuner_cache.json");
  const auto last = broken.rfind("\"time\": 0.75");
  ASSERT_NE(last, std::string::npos);
  broken.replace(last, 12, "\"time\": \"OutOfCheeseConfig\"");
  write_bytes(dir / "broken.json", broken);
  EXPECT_THROW((void)tunekit::results_file::read(dir / "broken.json"), tunekit::invalid_argument);
  EXPECT_EQ(store.count(), 0u);

  const auto refused = [&](const std::string& name, const std::string& bytes,
                           std::optional<tunekit::results_format> format = std::nullopt) {
    write_bytes(dir / name, bytes);
    EXPECT_THROW((void)tunekit::results_file::read(dir / name, format), tunekit::invalid_argument) << name;
  };
  refused("text.json", "this is not json");
  refused("array.json", "[1, 2, 3]");
  refused("other.json", R"({"name": "a package.json"})");
  refused("no_keys.json", R"({"tune_params": {}, "cache": {}})");
  refused("kt_as_t4.json", file_bytes(fixture_directory / "kernel_tuner_cache.json"), tunekit::results_format::t4);
  refused("t4_missing.json", R"({"schema_version": "1.0.0", "results": [{"configuration": {"a": 1}}]})");
  refused("gz_truncated.json.gz", [] {
    std::string bytes = file_bytes(fixture_directory / "kernel_tuner_cache.json");
    return std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00", 8) + bytes.substr(0, 40);
  }());
  EXPECT_THROW((void)tunekit::results_file::read(dir / "missing.json"), tunekit::invalid_argument);
  EXPECT_THROW((void)tunekit::results_file::read(dir.path()), tunekit::invalid_argument);
  EXPECT_EQ(store.count(), 0u);
}

TEST(StoreFormats, WritesGzipAndNeverReplacesAFileUnlessAsked) {
  scratch dir;
  tunekit::write_results_file(dir / "out.json.gz", "{\"a\": 1}", false);
  EXPECT_EQ(gunzip(dir / "out.json.gz"), "{\"a\": 1}");
  write_bytes(dir / "taken.json", "precious");
  EXPECT_THROW(tunekit::write_results_file(dir / "taken.json", "new", false), tunekit::invalid_argument);
  EXPECT_EQ(file_bytes(dir / "taken.json"), "precious");
  tunekit::write_results_file(dir / "taken.json", "new", true);
  EXPECT_EQ(file_bytes(dir / "taken.json"), "new");
  std::size_t files = 0;
  for (const auto& each : fs::directory_iterator(dir.path())) files += each.is_regular_file();
  EXPECT_EQ(files, 2u);  // no temporary left behind
}

// ================================================================ the store-backed evaluator

TEST(StoredEvaluator, SessionResultsExportAndReplayAsRecorded) {
  scratch dir;
  const auto recorded = synthetic_space();
  const auto key = synthetic_key();
  auto store = results_store::open(dir / "store.db");
  auto search = tunekit::make_strategy("random");
  tunekit::budget limits;
  limits.evaluations = 120;
  const auto run =
      tunekit::tune(*search, recorded.space, tunekit::stored_evaluator(store, key, recorded.space, tunekit::replay_evaluator(recorded)),
                    limits, 5);
  EXPECT_EQ(store.count(key), 120u);
  const std::string cache = tunekit::export_results(store, key, tunekit::results_format::kernel_tuner);
  tunekit::write_results_file(dir / "session.json", cache, false);
  // It replays: the same statuses and objectives, configuration by configuration.
  const auto reloaded = tunekit::load_kernel_tuner_cache(dir / "session.json");
  ASSERT_EQ(reloaded.space.size(), 120u);
  std::map<std::string, std::size_t> recorded_index;
  for (const auto index : run.order)
    recorded_index[tunekit::configuration_key(tunekit::configuration_of(recorded.space, index))] = index;
  for (std::size_t i = 0; i < reloaded.space.size(); ++i) {
    const auto found = recorded_index.find(tunekit::configuration_key(tunekit::configuration_of(reloaded.space, i)));
    ASSERT_NE(found, recorded_index.end());
    EXPECT_EQ(reloaded.results[i].status, recorded.results[found->second].status);
    EXPECT_EQ(reloaded.results[i].time, recorded.results[found->second].time);
  }
  // Every exported configuration carries the recorded status and time.
  const auto document = nlohmann::json::parse(cache);
  EXPECT_EQ(document["kernel_name"], "synthetic_kernel");
  EXPECT_EQ(document["tune_params_keys"].size(), 5u);
  std::size_t checked = 0;
  for (const auto index : run.order) {
    const auto configuration = tunekit::configuration_of(recorded.space, index);
    std::string cache_key;
    for (const auto& [name, value] : configuration) {
      if (!cache_key.empty()) cache_key += ',';
      const std::string text = tunekit::to_string(value);
      cache_key += std::holds_alternative<double>(value) && text.find('.') == std::string::npos ? text + ".0" : text;
    }
    ASSERT_TRUE(document["cache"].contains(cache_key)) << cache_key;
    const auto& record = document["cache"][cache_key];
    const auto& expected = recorded.results[index];
    if (expected.status == evaluation_status::ok) {
      EXPECT_EQ(record["time"].get<double>(), expected.time);
    } else {
      EXPECT_TRUE(record["time"].is_string());
    }
    ++checked;
  }
  EXPECT_EQ(checked, 120u);
  expect_valid_t4(nlohmann::json::parse(tunekit::export_results(store, key, tunekit::results_format::t4)));

  // The export imports into another store and exports unchanged.
  auto second = results_store::open(dir / "second.db");
  const auto summary = tunekit::import_results(second, tunekit::results_file::read(dir / "session.json"));
  EXPECT_EQ(tunekit::export_results(second, summary.key, tunekit::results_format::kernel_tuner), cache);
}

TEST(StoredEvaluator, AnImportedCacheAnswersEveryEvaluationExactlyAsReplay) {
  if (!fs::exists(recorded_directory)) GTEST_SKIP() << "no recorded spaces at " << recorded_directory;
  scratch dir;
  const auto path = recorded_directory / "pnpoly_RTX_3090.json.gz";
  const auto recorded = tunekit::load_kernel_tuner_cache(path);
  auto store = results_store::open(dir / "store.db");
  const auto summary = tunekit::import_results(store, tunekit::results_file::read(path));
  const auto never = [](std::size_t index) -> tunekit::evaluation_result {
    ADD_FAILURE() << "configuration " << index << " measured although the store has it";
    return {};
  };
  tunekit::budget limits;
  limits.evaluations = 400;
  auto first = tunekit::make_strategy("random");
  const auto replayed = tunekit::tune(*first, recorded.space, tunekit::replay_evaluator(recorded), limits, 3);
  auto second = tunekit::make_strategy("random");
  const auto stored = tunekit::tune(*second, recorded.space, tunekit::stored_evaluator(store, summary.key, recorded.space, never),
                                    limits, 3);
  expect_same_run(stored, replayed);
}

// ================================================================ kill -9 and resume

struct crash_case {
  std::string name;
  std::string strategy;
};

// How GoogleTest names a case in its output (not as 64 raw bytes).
[[maybe_unused]] void PrintTo(const crash_case& each, std::ostream* out) { *out << each.name << "/" << each.strategy; }

class StoreCrash : public ::testing::TestWithParam<crash_case> {};

// A session whose evaluator replays a recorded space and writes each result
// to the store is killed with SIGKILL midway; the resumed session must end
// exactly as an uninterrupted one, evaluating no configuration twice.
TEST_P(StoreCrash, KillNineMidSessionThenResumeEndsAsAnUninterruptedRun) {
  const auto& param = GetParam();
  const auto path = recorded_directory / (param.name + "_RTX_3090.json.gz");
  if (param.name != "synthetic" && !fs::exists(path)) GTEST_SKIP() << "no recorded space at " << path;
  const tunekit::recorded_space recorded =
      param.name == "synthetic" ? synthetic_space() : tunekit::load_kernel_tuner_cache(path);
  scratch dir;
  const auto key = synthetic_key(param.name);
  tunekit::budget limits;
  limits.evaluations = std::min<std::size_t>(240, recorded.space.size());
  const std::uint64_t seed = 17;

  // The uninterrupted run, through a store of its own.
  tunekit::tuning_run uninterrupted;
  {
    auto store = results_store::open(dir / "uninterrupted.db");
    auto search = tunekit::make_strategy(param.strategy);
    uninterrupted = tunekit::tune(*search, recorded.space,
                                  tunekit::stored_evaluator(store, key, recorded.space, tunekit::replay_evaluator(recorded)),
                                  limits, seed);
  }
  auto plain = tunekit::make_strategy(param.strategy);
  expect_same_run(tunekit::tune(*plain, recorded.space, tunekit::replay_evaluator(recorded), limits, seed), uninterrupted);

  // The session to kill: its log lists each index its inner evaluator measured,
  // written once the store has committed the result.
  const auto store_path = dir / "crash.db";
  const auto log_path = dir / "measured.log";
  const pid_t child = spawn([&] {
    auto store = results_store::open(store_path);
    const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log < 0) return 5;
    const auto replay = tunekit::replay_evaluator(recorded);
    bool measured = false;
    std::size_t measurements = 0;
    auto inner = [&](std::size_t index) {
      measured = true;
      // Slower in the second half, so the parent's kill lands well before the end.
      const bool second_half = ++measurements > *limits.evaluations / 2;
      std::this_thread::sleep_for(std::chrono::milliseconds(second_half ? 20 : 3));
      return replay(index);
    };
    auto stored = tunekit::stored_evaluator(store, key, recorded.space, inner);
    auto logged = [&](std::size_t index) {
      measured = false;
      const auto result = stored(index);  // returns after the commit
      if (measured) append_log(log, index);
      return result;
    };
    auto search = tunekit::make_strategy(param.strategy);
    (void)tunekit::tune(*search, recorded.space, logged, limits, seed);
    return 0;
  });
  ASSERT_GT(child, 0);
  const std::size_t kill_after = *limits.evaluations / 3;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::size_t seen = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(store_path)) {
      try {
        const auto watcher = results_store::open(store_path, tunekit::store_access::read_only);
        seen = watcher.count(key);
      } catch (const tunekit::invalid_argument&) {
        seen = 0;  // not initialised yet
      }
    }
    if (seen >= kill_after) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(child, SIGKILL);
  const int code = wait_exit_code(child);
  ASSERT_EQ(code, 128 + SIGKILL) << "the session ended before it was killed (" << seen << " stored)";
  ASSERT_GE(seen, kill_after);

  const auto logged = read_log(log_path);
  auto store = results_store::open(store_path);
  const std::size_t stored_before = store.count(key);
  ASSERT_LT(stored_before, uninterrupted.evaluations) << "killed too late to test a resume";
  // Each logged result was committed; at most one more was committed but not yet logged.
  EXPECT_GE(stored_before, logged.size());
  EXPECT_LE(stored_before, logged.size() + 1);
  for (const auto index : logged)
    EXPECT_TRUE(store.find(key, tunekit::configuration_of(recorded.space, index)).has_value()) << index;

  std::vector<std::size_t> resumed_measured;
  const auto replay = tunekit::replay_evaluator(recorded);
  auto counting = [&](std::size_t index) {
    resumed_measured.push_back(index);
    return replay(index);
  };
  auto search = tunekit::make_strategy(param.strategy);
  const auto resumed =
      tunekit::tune(*search, recorded.space, tunekit::stored_evaluator(store, key, recorded.space, counting), limits, seed);
  expect_same_run(resumed, uninterrupted);

  // No configuration measured twice across the killed and the resumed session.
  std::multiset<std::size_t> measured(logged.begin(), logged.end());
  measured.insert(resumed_measured.begin(), resumed_measured.end());
  for (const auto index : measured) EXPECT_EQ(measured.count(index), 1u) << "configuration " << index << " measured twice";
  EXPECT_FALSE(logged.empty());
  EXPECT_FALSE(resumed_measured.empty());
  EXPECT_EQ(resumed_measured.size(), uninterrupted.evaluations - stored_before);
  EXPECT_EQ(store.count(key), uninterrupted.evaluations);

  // A third run measures nothing at all.
  std::size_t third_measured = 0;
  auto search_again = tunekit::make_strategy(param.strategy);
  const auto third = tunekit::tune(*search_again, recorded.space,
                                   tunekit::stored_evaluator(store, key, recorded.space,
                                                             [&](std::size_t index) {
                                                               ++third_measured;
                                                               return replay(index);
                                                             }),
                                   limits, seed);
  expect_same_run(third, uninterrupted);
  EXPECT_EQ(third_measured, 0u);
}

INSTANTIATE_TEST_SUITE_P(Spaces, StoreCrash,
                         ::testing::Values(crash_case{"synthetic", "random"}, crash_case{"synthetic", "genetic_algorithm"},
                                           crash_case{"pnpoly", "random"}, crash_case{"convolution", "genetic_algorithm"}),
                         [](const ::testing::TestParamInfo<crash_case>& each) {
                           return each.param.name + "_" + each.param.strategy;
                         });

// ================================================================ concurrent writers

std::vector<std::size_t> read_indices(const fs::path& path) {
  std::vector<std::size_t> indices;
  std::ifstream file(path);
  std::size_t index = 0;
  while (file >> index) indices.push_back(index);
  return indices;
}

void write_indices(const fs::path& path, const std::vector<std::size_t>& indices) {
  std::ofstream file(path);
  for (auto index : indices) file << index << '\n';
}

TEST(StoreConcurrency, TwoProcessesTuningIntoOneNewStoreBothSucceed) {
  scratch dir;
  const auto recorded = synthetic_space();
  const auto store_path = dir / "shared" / "tunekit.db";  // neither process finds it: both create it
  int start[2];
  ASSERT_EQ(::pipe(start), 0);
  const auto writer = [&](const std::string& own_kernel, std::uint64_t seed, const std::string& tag) {
    return spawn([&, own_kernel, seed, tag] {
      ::close(start[1]);
      char go = 0;
      if (::read(start[0], &go, 1) != 1) return 6;
      auto store = results_store::open(store_path);
      const auto replay = tunekit::replay_evaluator(recorded);
      tunekit::budget limits;
      limits.evaluations = 400;
      auto own = tunekit::make_strategy("random");
      const auto own_run = tunekit::tune(*own, recorded.space,
                                         tunekit::stored_evaluator(store, synthetic_key(own_kernel), recorded.space, replay),
                                         limits, seed);
      auto shared = tunekit::make_strategy("random");
      const auto shared_run = tunekit::tune(*shared, recorded.space,
                                            tunekit::stored_evaluator(store, synthetic_key("shared"), recorded.space, replay),
                                            limits, seed);
      write_indices(dir / (tag + ".own"), own_run.order);
      write_indices(dir / (tag + ".shared"), shared_run.order);
      return 0;
    });
  };
  const pid_t first = writer("kernel_a", 1, "a");
  const pid_t second = writer("kernel_b", 2, "b");
  ::close(start[0]);
  ASSERT_EQ(::write(start[1], "gg", 2), 2);  // both start at once
  ::close(start[1]);
  EXPECT_EQ(wait_exit_code(first), 0);
  EXPECT_EQ(wait_exit_code(second), 0);

  const auto store = results_store::open(store_path, tunekit::store_access::read_only);
  const auto expect_rows = [&](const store_key& key, const std::set<std::size_t>& indices) {
    EXPECT_EQ(store.count(key), indices.size()) << key.kernel.name;
    for (const auto index : indices) {
      const auto found = store.find(key, tunekit::configuration_of(recorded.space, index));
      ASSERT_TRUE(found.has_value()) << key.kernel.name << " " << index;
      EXPECT_EQ(found->status, recorded.results[index].status);
      if (found->status == evaluation_status::ok) {
        EXPECT_EQ(found->value, recorded.results[index].time);
      }
    }
  };
  const auto a_own = read_indices(dir / "a.own");
  const auto b_own = read_indices(dir / "b.own");
  EXPECT_EQ(a_own.size(), 400u);
  EXPECT_EQ(b_own.size(), 400u);
  expect_rows(synthetic_key("kernel_a"), {a_own.begin(), a_own.end()});
  expect_rows(synthetic_key("kernel_b"), {b_own.begin(), b_own.end()});
  std::set<std::size_t> shared;
  for (const auto& tag : {"a", "b"})
    for (const auto index : read_indices(dir / (std::string(tag) + ".shared"))) shared.insert(index);
  expect_rows(synthetic_key("shared"), shared);
  EXPECT_EQ(store.problems().size(), 3u);
  store.check();
}

TEST(StoreConcurrency, FourProcessesRecordingOverlappingConfigurationsKeepOneResultEach) {
  scratch dir;
  const auto store_path = dir / "store.db";
  const auto key = synthetic_key();
  std::vector<pid_t> children;
  for (int writer = 0; writer < 4; ++writer)
    children.push_back(spawn([&, writer] {
      auto store = results_store::open(store_path);
      for (int i = 0; i < 300; ++i) {
        stored_result result;
        result.configuration = {{"x", std::int64_t{(i * 7 + writer * 50) % 500}}};
        result.value = static_cast<double>(writer);
        store.record(key, result);
      }
      return 0;
    }));
  for (const auto child : children) EXPECT_EQ(wait_exit_code(child), 0);
  std::set<std::int64_t> expected;
  for (int writer = 0; writer < 4; ++writer)
    for (int i = 0; i < 300; ++i) expected.insert((i * 7 + writer * 50) % 500);
  const auto store = results_store::open(store_path, tunekit::store_access::read_only);
  const auto all = store.results(key);
  EXPECT_EQ(all.size(), expected.size());
  std::set<std::string> keys;
  for (const auto& each : all) keys.insert(tunekit::configuration_key(each.configuration));
  EXPECT_EQ(keys.size(), all.size());
}

// ================================================================ corrupt and foreign stores

void make_sqlite_file(const fs::path& path, const std::vector<std::string>& statements) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  for (const auto& sql : statements) ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sql;
  ASSERT_EQ(sqlite3_close(db), SQLITE_OK);
}

void fill_store(const fs::path& path, int rows) {
  auto store = results_store::open(path);
  tunekit::import_results(store, tunekit::results_file::read(fixture_directory / "kernel_tuner_cache.json"));
  const auto key = synthetic_key();
  for (int i = 0; i < rows; ++i) {
    stored_result result;
    result.configuration = {{"x", std::int64_t{i}}, {"padding", std::string(200, 'p')}};
    result.value = i;
    result.samples.assign(20, 1.0 + i);
    store.record(key, result);
  }
}

std::map<std::string, fs::path> foreign_and_corrupt_files(const scratch& dir) {
  std::map<std::string, fs::path> files;
  std::mt19937 random(11);
  std::string noise(8192, '\0');
  for (auto& byte : noise) byte = static_cast<char>(random());
  write_bytes(dir / "random.db", noise);
  files["random bytes"] = dir / "random.db";
  write_bytes(dir / "text.db", "id,name\n1,hello\n");
  files["a text file"] = dir / "text.db";
  make_sqlite_file(dir / "foreign.db", {"CREATE TABLE people (name TEXT)", "INSERT INTO people VALUES ('ada')"});
  files["a foreign SQLite database"] = dir / "foreign.db";
  make_sqlite_file(dir / "foreign_wal.db",
                   {"PRAGMA journal_mode = WAL", "CREATE TABLE results (x)", "INSERT INTO results VALUES (1)"});
  files["a foreign SQLite database in WAL mode"] = dir / "foreign_wal.db";
  make_sqlite_file(dir / "other_app.db", {"PRAGMA application_id = 1234", "CREATE TABLE t (x)"});
  files["SQLite of another application"] = dir / "other_app.db";
  make_sqlite_file(dir / "empty_marked.db", {"PRAGMA user_version = 7"});
  files["SQLite with a user version"] = dir / "empty_marked.db";
  fill_store(dir / "newer.db", 10);
  make_sqlite_file(dir / "newer.db", {"PRAGMA user_version = 99"});
  files["a store from a newer tunekit"] = dir / "newer.db";
  fill_store(dir / "truncated.db", 3000);
  fs::resize_file(dir / "truncated.db", fs::file_size(dir / "truncated.db") / 2);
  files["a truncated store"] = dir / "truncated.db";
  fill_store(dir / "header_only.db", 3000);
  fs::resize_file(dir / "header_only.db", 100);
  files["a store cut to its header"] = dir / "header_only.db";
  return files;
}

TEST(StoreOpen, RefusesForeignAndCorruptFilesAndLeavesThemByteIdentical) {
  scratch dir;
  for (const auto& [what, path] : foreign_and_corrupt_files(dir)) {
    const std::string before = file_bytes(path);
    for (const auto access : {tunekit::store_access::read_write, tunekit::store_access::read_only}) {
      try {
        (void)results_store::open(path, access);
        ADD_FAILURE() << what << " opened as a store";
      } catch (const tunekit::invalid_argument& refusal) {
        const std::string message = refusal.what();
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
        EXPECT_NE(message.find(path.string()), std::string::npos) << message;
      } catch (const std::exception& other) {
        ADD_FAILURE() << what << ": not invalid_argument: " << other.what();
      }
    }
    EXPECT_TRUE(file_bytes(path) == before) << what << " was modified";
    EXPECT_FALSE(fs::exists(path.string() + "-journal")) << what;
  }
  // Not a file at all.
  EXPECT_THROW((void)results_store::open(dir.path()), tunekit::invalid_argument);
  // Read-only never creates.
  EXPECT_THROW((void)results_store::open(dir / "absent.db", tunekit::store_access::read_only), tunekit::invalid_argument);
  EXPECT_FALSE(fs::exists(dir / "absent.db"));
  // An empty file is an empty database: it becomes a store.
  write_bytes(dir / "empty.db", "");
  EXPECT_NO_THROW((void)results_store::open(dir / "empty.db"));
}

TEST(StoreOpen, ADamagedPageIsReportedAsCorruptByCheck) {
  scratch dir;
  fill_store(dir / "damaged.db", 3000);
  auto bytes = file_bytes(dir / "damaged.db");
  ASSERT_GT(bytes.size(), 40u * 4096u);
  for (std::size_t i = 20 * 4096; i < 30 * 4096; ++i) bytes[i] = static_cast<char>(0x5a);
  write_bytes(dir / "damaged.db", bytes);
  const auto store = results_store::open(dir / "damaged.db", tunekit::store_access::read_only);
  EXPECT_THROW(store.check(), tunekit::invalid_argument);
  EXPECT_TRUE(file_bytes(dir / "damaged.db") == bytes);
  const auto result = cli({"store", "check", "--store", (dir / "damaged.db").string()});
  EXPECT_EQ(result.code, 2);
  EXPECT_EQ(lines(result.err), 1);
  EXPECT_TRUE(file_bytes(dir / "damaged.db") == bytes);
}

// ================================================================ CLI

TEST(StoreCli, ImportListExportRoundTrip) {
  scratch dir;
  const std::string store = (dir / "store.db").string();
  const std::string fixture = (fixture_directory / "kernel_tuner_cache.json").string();
  auto result = cli({"store", "import", fixture, "--store", store});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_NE(result.out.find("6 added"), std::string::npos) << result.out;
  EXPECT_EQ(lines(result.out), 1);

  result = cli({"store", "list", "--store", store});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_NE(result.out.find("fixture_kernel"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("6 (3)"), std::string::npos) << result.out;
  result = cli({"store", "list", "--store", store, "--json"});
  ASSERT_EQ(result.code, 0) << result.err;
  const auto listed = nlohmann::json::parse(result.out);
  ASSERT_EQ(listed["problems"].size(), 1u);
  const auto& problem = listed["problems"][0];
  EXPECT_EQ(problem["kernel"]["name"], "fixture_kernel");
  EXPECT_EQ(problem["results"], 6);
  EXPECT_EQ(problem["ok_results"], 3);
  EXPECT_EQ(problem["best_value"], 0.75);
  EXPECT_EQ(problem["best_configuration"]["block_size_x"], 128);
  EXPECT_EQ(problem["parameters"], nlohmann::json::parse(R"(["block_size_x", "vector", "layout", "use_shared"])"));

  const std::string output = (dir / "exported.json").string();
  result = cli({"store", "export", "--kernel", "fixture_kernel", "--output", output, "--store", store});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(file_bytes(output), file_bytes(fixture));

  // An existing output is never replaced without --force.
  write_bytes(output, "precious");
  expect_bad_input({"store", "export", "--kernel", "fixture_kernel", "--output", output, "--store", store});
  EXPECT_EQ(file_bytes(output), "precious");
  result = cli({"store", "export", "--kernel", "fixture_kernel", "--output", output, "--store", store, "--force"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(file_bytes(output), file_bytes(fixture));

  // T4, and gzip by name.
  const std::string t4 = (dir / "exported.t4.json.gz").string();
  result = cli({"store", "export", "--kernel", "fixture_kernel", "--format", "t4", "-o", t4, "--store", store});
  ASSERT_EQ(result.code, 0) << result.err;
  expect_valid_t4(nlohmann::json::parse(gunzip(t4)));
  result = cli({"store", "import", t4, "--kernel", "fixture_kernel", "--device", "copy", "--store", store});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_NE(result.out.find("(t4)"), std::string::npos);

  // Two problems now share the kernel name: export must be told which.
  expect_bad_input({"store", "export", "--kernel", "fixture_kernel", "--output", (dir / "x.json").string(), "--store", store});
  EXPECT_FALSE(fs::exists(dir / "x.json"));
  result = cli({"store", "export", "--kernel", "fixture_kernel", "--device", "copy", "--format", "t4", "-o",
                (dir / "copy.json").string(), "--store", store});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(file_bytes(dir / "copy.json"), gunzip(t4));

  result = cli({"store", "check", "--store", store});
  EXPECT_EQ(result.code, 0) << result.err;
}

TEST(StoreCli, BadInputIsOneLineAndExitTwo) {
  scratch dir;
  const std::string store = (dir / "store.db").string();
  const std::string fixture = (fixture_directory / "kernel_tuner_cache.json").string();
  expect_bad_input({"store"});
  expect_bad_input({"store", "frobnicate"});
  expect_bad_input({"store", "import"});
  expect_bad_input({"store", "import", (dir / "missing.json").string(), "--store", store});
  EXPECT_FALSE(fs::exists(store));  // a bad file creates no store
  expect_bad_input({"store", "import", fixture, "--format", "xml", "--store", store});
  expect_bad_input({"store", "import", (fixture_directory / "t4_results.json").string(), "--store", store});
  expect_bad_input({"store", "import", fixture, "--format", "t4", "--store", store});
  EXPECT_FALSE(fs::exists(store));
  expect_bad_input({"store", "export", "--output", (dir / "o.json").string(), "--store", store});
  expect_bad_input({"store", "export", "--kernel", "k", "--store", store});
  expect_bad_input({"store", "export", "--kernel", "k", "--output", (dir / "o.json").string(), "--store", store});
  expect_bad_input({"store", "list", "--bogus"});
  ASSERT_EQ(cli({"store", "import", fixture, "--store", store}).code, 0);
  expect_bad_input({"store", "export", "--kernel", "nope", "--output", (dir / "o.json").string(), "--store", store});
  expect_bad_input({"store", "export", "--kernel", "fixture_kernel", "--format", "csv", "--output",
                    (dir / "o.json").string(), "--store", store});
  EXPECT_FALSE(fs::exists(dir / "o.json"));
}

TEST(StoreCli, CorruptOrForeignStoreIsOneLineExitTwoAndUntouched) {
  scratch dir;
  const std::string fixture = (fixture_directory / "kernel_tuner_cache.json").string();
  for (const auto& [what, path] : foreign_and_corrupt_files(dir)) {
    const std::string before = file_bytes(path);
    const std::string store = path.string();
    expect_bad_input({"store", "import", fixture, "--store", store});
    expect_bad_input({"store", "list", "--store", store});
    expect_bad_input({"store", "list", "--json", "--store", store});
    expect_bad_input({"store", "export", "--kernel", "fixture_kernel", "-o", (dir / "out.json").string(), "--store", store});
    expect_bad_input({"store", "check", "--store", store});
    EXPECT_TRUE(file_bytes(path) == before) << what << " was modified";
    EXPECT_FALSE(fs::exists(dir / "out.json"));
  }
}

TEST(StoreCli, HelpNamesTheSubcommands) {
  auto result = cli({"store", "--help"});
  EXPECT_EQ(result.code, 0);
  for (const char* word : {"import", "export", "list", "check"}) EXPECT_NE(result.out.find(word), std::string::npos) << word;
  result = cli({"store", "export", "--help"});
  EXPECT_EQ(result.code, 0);
  EXPECT_NE(result.out.find("--force"), std::string::npos);
}

// ================================================================ performance

TEST(StorePerformance, TenThousandResultsOneTransactionEach) {
  scratch dir;
  auto store = results_store::open(dir / "store.db");
  const auto key = synthetic_key();
  std::vector<stored_result> results(10000);
  for (std::size_t i = 0; i < results.size(); ++i) {
    auto& result = results[i];
    result.configuration = {{"block_size_x", std::int64_t{32} * static_cast<std::int64_t>(i % 32 + 1)},
                            {"tile", static_cast<std::int64_t>(i / 32)}, {"layout", std::string(i % 2 ? "row" : "col")}};
    result.value = 1.0 + static_cast<double>(i) * 1e-3;
    result.samples.assign(10, result.value);
    result.compile_time = 100.0;
    result.benchmark_time = 10.0;
  }
  const auto started = std::chrono::steady_clock::now();
  for (const auto& result : results) ASSERT_TRUE(store.record(key, result));
  const double record_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const auto lookups = std::chrono::steady_clock::now();
  for (const auto& result : results) ASSERT_TRUE(store.find(key, result.configuration).has_value());
  const double find_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - lookups).count();
  EXPECT_EQ(store.count(key), 10000u);
  RecordProperty("record_10000_seconds", std::to_string(record_seconds));
  RecordProperty("find_10000_seconds", std::to_string(find_seconds));
  std::printf("[ timing   ] 10000 results recorded, one WAL transaction each: %.3f s (%.1f us each); "
              "10000 lookups: %.3f s\n",
              record_seconds, 1e6 * record_seconds / 10000.0, find_seconds);
  EXPECT_LT(record_seconds, 10.0);
}

}  // namespace
