#include "tunekit/dispatch.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_runner.hpp"
#include "tunekit/error.hpp"
#include "tunekit/store.hpp"

namespace {

namespace fs = std::filesystem;
using tunekit::device_identity;
using tunekit::dispatcher;
using tunekit::evaluation_status;
using tunekit::kernel_identity;
using tunekit::problem_dimensions;
using tunekit::results_store;
using tunekit::stored_configuration;
using tunekit::tuned_choice;
using source = tunekit::tuned_choice::source;
using tunekit::testing::expect_bad_input;
using tunekit::testing::run_cli;

// A fresh directory per use, removed afterwards.
class scratch {
 public:
  scratch() {
    static std::atomic<int> counter{0};
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("tunekit_dispatch_test_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(counter++) + "_" + (test != nullptr ? test->name() : "x"));
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

const device_identity h100{"NVIDIA H100 80GB HBM3", "sm_90", "580.65"};
const device_identity h100_new_driver{"NVIDIA H100 80GB HBM3", "sm_90", "590.10"};
const device_identity h200{"NVIDIA H200", "sm_90", "580.65"};
// Lexically the old version sorts after the new one, so only recency can pick the new one.
const kernel_identity conv_old{"conv", "ffff000000000000"};
const kernel_identity conv_new{"conv", "1111000000000000"};
const kernel_identity conv_newest_failing{"conv", "5555000000000000"};

const std::string size_1024 = R"({"image_width":1024,"image_height":1024})";
const std::string size_2500 = R"({"image_width":2500,"image_height":2500})";
const std::string size_4096 = R"({"image_width":4096,"image_height":4096})";
const std::string size_8192 = R"({"image_width":8192,"image_height":8192})";

problem_dimensions square(double side) { return {{"image_width", side}, {"image_height", side}}; }

stored_configuration block(std::int64_t x, std::int64_t y) { return {{"block_x", x}, {"block_y", y}}; }

void record(results_store& store, const device_identity& device, const kernel_identity& kernel,
            const std::string& problem, stored_configuration configuration, double time_ms,
            evaluation_status status = evaluation_status::ok) {
  tunekit::stored_result result;
  result.configuration = std::move(configuration);
  result.status = status;
  result.value = status == evaluation_status::ok ? time_ms : std::numeric_limits<double>::quiet_NaN();
  ASSERT_TRUE(store.record({device, kernel, problem}, result));
}

// recorded_at has microseconds; a pause makes "recorded later" unambiguous.
void wait_a_moment() { std::this_thread::sleep_for(std::chrono::milliseconds(3)); }

// Two devices, two kernel versions (the newer recorded later), several results
// per problem size, failed results, a newer version with only failures.
void fill(results_store& store) {
  record(store, h100, conv_old, size_1024, block(8, 8), 1.0);
  record(store, h100, conv_old, size_4096, block(8, 8), 10.0);
  record(store, h200, conv_old, size_1024, block(4, 4), 0.5);
  wait_a_moment();
  record(store, h100, conv_new, size_1024, block(16, 16), 0.9);
  record(store, h100, conv_new, size_1024, block(32, 8), 0.7);  // the best of 1024
  record(store, h100, conv_new, size_1024, block(64, 64), 0.0, evaluation_status::resources);
  record(store, h100, conv_new, size_4096, block(32, 32), 8.0);
  record(store, h100, conv_new, size_4096, block(64, 16), 8.5);
  record(store, h100, conv_new, size_4096, block(128, 8), 0.0, evaluation_status::wrong_result);
  record(store, h100, conv_new, size_2500, block(16, 8), 0.0, evaluation_status::timeout);  // only failures
  record(store, h100_new_driver, conv_new, size_8192, block(64, 8), 30.0);  // after a driver update
  wait_a_moment();
  record(store, h100, conv_newest_failing, size_1024, block(1, 1), 0.0, evaluation_status::compile_error);
  record(store, h100, conv_newest_failing, size_4096, block(1, 1), 0.0, evaluation_status::launch_error);
}

const stored_configuration occupancy_default = block(2, 2);

}  // namespace

// ================================================================ dispatcher

TEST(Dispatch, ExactProblemSizeAnswersItsBestOkConfigurationWhateverTheNameOrder) {
  scratch dir;
  auto store = results_store::open(dir / "store.db");
  fill(store);
  const dispatcher tuned(store);
  auto choice = tuned.best(h100.name, "conv", square(1024), occupancy_default);
  EXPECT_EQ(choice.from, source::exact);
  EXPECT_EQ(choice.config, block(32, 8));
  ASSERT_TRUE(choice.time_ms);
  EXPECT_EQ(*choice.time_ms, 0.7);
  EXPECT_EQ(choice.problem, size_1024);
  EXPECT_EQ(choice.source_hash, conv_new.source_hash);

  choice = tuned.best(h100.name, "conv", {{"image_height", 4096}, {"image_width", 4096}}, occupancy_default);
  EXPECT_EQ(choice.from, source::exact);
  EXPECT_EQ(choice.config, block(32, 32));
  EXPECT_EQ(choice.problem, size_4096);
  EXPECT_EQ(tunekit::to_string(choice.from), "exact");
}

TEST(Dispatch, OtherProblemSizesTakeTheNearestInLogSpace) {
  scratch dir;
  auto store = results_store::open(dir / "store.db");
  fill(store);
  const dispatcher tuned(store);
  // 3000 is 0.31 from 4096 in ln, 1.07 from 1024.
  auto choice = tuned.best(h100.name, "conv", square(3000), occupancy_default);
  EXPECT_EQ(choice.from, source::nearest);
  EXPECT_EQ(choice.config, block(32, 32));
  EXPECT_EQ(choice.problem, size_4096);
  EXPECT_EQ(*choice.time_ms, 8.0);
  choice = tuned.best(h100.name, "conv", square(1500), occupancy_default);
  EXPECT_EQ(choice.from, source::nearest);
  EXPECT_EQ(choice.config, block(32, 8));
  // Linear distance would pick 4096 for (100, 6000); in log space 1024 is nearer.
  choice = tuned.best(h100.name, "conv", {{"image_width", 100}, {"image_height", 6000}}, occupancy_default);
  EXPECT_EQ(choice.problem, size_1024);
  // Far beyond every tuned size: still the nearest, 8192 (recorded under another driver).
  choice = tuned.best(h100.name, "conv", square(1 << 20), occupancy_default);
  EXPECT_EQ(choice.from, source::nearest);
  EXPECT_EQ(choice.problem, size_8192);
  EXPECT_EQ(choice.config, block(64, 8));
}

TEST(Dispatch, NothingTunedAnswersTheFallbackCalledOnlyThen) {
  scratch dir;
  auto store = results_store::open(dir / "store.db");
  fill(store);
  const dispatcher tuned(store);
  int calls = 0;
  const auto occupancy = [&calls] {
    ++calls;
    return block(3, 3);
  };
  auto choice = tuned.best(h100.name, "conv", square(1024), occupancy);
  EXPECT_EQ(choice.from, source::exact);
  EXPECT_EQ(calls, 0);

  for (const auto& [device, kernel, problem] :
       std::vector<std::tuple<std::string, std::string, problem_dimensions>>{
           {"NVIDIA A100-SXM4-80GB", "conv", square(1024)},       // unknown device
           {h100.name, "gemm", square(1024)},                     // unknown kernel
           {h100.name, "conv", {{"n", 1024}}},                     // other dimension names
           {h100.name, "conv", {{"image_width", 1024}}},           // fewer dimensions
           {"nvidia h100 80gb hbm3", "conv", square(1024)},        // names match exactly
       }) {
    const int before = calls;
    choice = tuned.best(device, kernel, problem, occupancy);
    EXPECT_EQ(choice.from, source::fallback) << device << " " << kernel;
    EXPECT_EQ(choice.config, block(3, 3));
    EXPECT_FALSE(choice.time_ms);
    EXPECT_TRUE(choice.source_hash.empty());
    EXPECT_EQ(calls, before + 1);
    EXPECT_FALSE(tuned.find(device, kernel, problem)) << device << " " << kernel;
  }
  choice = tuned.best("unknown", "conv", square(640), occupancy_default);
  EXPECT_EQ(choice.from, source::fallback);
  EXPECT_EQ(choice.config, occupancy_default);
  EXPECT_EQ(choice.problem, R"({"image_width":640,"image_height":640})");

  const dispatcher nothing;
  EXPECT_TRUE(nothing.empty());
  EXPECT_EQ(nothing.best(h100.name, "conv", square(1024), occupancy_default).from, source::fallback);
}

TEST(Dispatch, TheMostRecentlyRecordedKernelVersionWinsPerDevice) {
  scratch dir;
  auto store = results_store::open(dir / "store.db");
  fill(store);
  {
    const dispatcher tuned(store);
    // The old version had 8x8 at both sizes; the new one (recorded later, lexically smaller) answers.
    EXPECT_EQ(tuned.best(h100.name, "conv", square(1024), occupancy_default).config, block(32, 8));
    EXPECT_EQ(tuned.best(h100.name, "conv", square(4096), occupancy_default).source_hash, conv_new.source_hash);
    // The H200 only has the old version: it still answers there.
    const auto choice = tuned.best(h200.name, "conv", square(1024), occupancy_default);
    EXPECT_EQ(choice.from, source::exact);
    EXPECT_EQ(choice.config, block(4, 4));
    EXPECT_EQ(choice.source_hash, conv_old.source_hash);
    // The old version's 4096 result does not leak into the new version's table.
    EXPECT_EQ(tuned.best(h200.name, "conv", square(4096), occupancy_default).problem, size_1024);
  }
  // An ok result of the old version recorded now makes it the newest.
  wait_a_moment();
  record(store, h100, conv_old, size_1024, block(8, 16), 2.0);
  const dispatcher tuned(store);
  const auto choice = tuned.best(h100.name, "conv", square(1024), occupancy_default);
  EXPECT_EQ(choice.source_hash, conv_old.source_hash);
  EXPECT_EQ(choice.config, block(8, 8));  // still the old version's best, not its newest
  EXPECT_EQ(tuned.best(h100.name, "conv", square(8192), occupancy_default).problem, size_4096);
}

TEST(Dispatch, FailedResultsAreIgnored) {
  scratch dir;
  auto store = results_store::open(dir / "store.db");
  fill(store);
  const dispatcher tuned(store);
  // The newest version has only failures: it does not displace the one before it.
  EXPECT_EQ(tuned.best(h100.name, "conv", square(4096), occupancy_default).source_hash, conv_new.source_hash);
  // 2500 has only a timeout: not tuned, so the nearest (4096) answers.
  const auto choice = tuned.best(h100.name, "conv", square(2500), occupancy_default);
  EXPECT_EQ(choice.from, source::nearest);
  EXPECT_EQ(choice.problem, size_4096);
  // A kernel with nothing but failures is not tuned at all.
  record(store, h200, {"broken", "0"}, size_1024, block(1, 1), 0.0, evaluation_status::device_fault);
  EXPECT_FALSE(dispatcher(store).find(h200.name, "broken", square(1024)));
  EXPECT_FALSE(dispatcher(store, "broken").find(h200.name, "broken", square(1024)));
  EXPECT_TRUE(dispatcher(store, "broken").empty());
}

TEST(Dispatch, DeviceIsMatchedByNameWhateverTheDriver) {
  scratch dir;
  auto store = results_store::open(dir / "store.db");
  fill(store);
  const dispatcher tuned(store);
  // 8192 was tuned under driver 590.10, 1024 under 580.65: one table for the name.
  auto choice = tuned.best(h100.name, "conv", square(8192), occupancy_default);
  EXPECT_EQ(choice.from, source::exact);
  EXPECT_EQ(choice.config, block(64, 8));
  EXPECT_EQ(tuned.best(h100.name, "conv", square(1024), occupancy_default).from, source::exact);
  // The same problem size under both drivers: the faster answers.
  record(store, h100_new_driver, conv_new, size_1024, block(24, 24), 0.6);
  record(store, h100_new_driver, conv_new, size_4096, block(48, 48), 9.0);
  const dispatcher updated(store);
  EXPECT_EQ(updated.best(h100.name, "conv", square(1024), occupancy_default).config, block(24, 24));
  EXPECT_EQ(updated.best(h100.name, "conv", square(4096), occupancy_default).config, block(32, 32));
  // Another device's tables are its own.
  EXPECT_EQ(updated.best(h200.name, "conv", square(1024), occupancy_default).config, block(4, 4));
}

TEST(Dispatch, AGivenArchitectureIsPreferredWhenTheNameHasSeveral) {
  scratch dir;
  auto store = results_store::open(dir / "store.db");
  // An imported file (no architecture) and a tunekit run, same kernel version.
  const kernel_identity kernel{"reduce", "abcd"};
  record(store, {"NVIDIA A100", "", ""}, kernel, R"({"n":1024})", {{"threads", std::int64_t{256}}}, 1.0);
  record(store, {"NVIDIA A100", "sm_80", "550.1"}, kernel, R"({"n":1024})", {{"threads", std::int64_t{128}}}, 2.0);
  record(store, {"NVIDIA A100", "sm_80", "550.1"}, kernel, R"({"n":65536})", {{"threads", std::int64_t{512}}}, 3.0);
  const dispatcher tuned(store);
  const stored_configuration none;
  // No architecture: every architecture of the name, the fastest per size.
  EXPECT_EQ(tuned.best("NVIDIA A100", "reduce", {{"n", 1024}}, none).config,
            (stored_configuration{{"threads", std::int64_t{256}}}));
  EXPECT_EQ(tuned.best("NVIDIA A100", "reduce", {{"n", 1024}}, none, "sm_80").config,
            (stored_configuration{{"threads", std::int64_t{128}}}));
  // An architecture the store does not know for the name: every architecture again.
  EXPECT_EQ(tuned.best("NVIDIA A100", "reduce", {{"n", 1024}}, none, "sm_86").config,
            (stored_configuration{{"threads", std::int64_t{256}}}));
  EXPECT_EQ(tuned.best("NVIDIA A100", "reduce", {{"n", 60000}}, none, "").config,
            (stored_configuration{{"threads", std::int64_t{512}}}));
  // The header's tables are the architecture-free ones.
  ASSERT_EQ(tuned.tables().size(), 1u);
  EXPECT_TRUE(tuned.tables()[0].architecture.empty());
}

TEST(Dispatch, EquidistantProblemSizesGoToTheSmallerInValueOrder) {
  scratch dir;
  auto store = results_store::open(dir / "store.db");
  const kernel_identity kernel{"tile", "0"};
  // Mirror images about (2048, 2048): exactly equal distances, added in either order.
  record(store, h100, kernel, R"({"image_width":4096,"image_height":1024})", block(1, 4), 1.0);
  record(store, h100, kernel, R"({"image_width":1024,"image_height":4096})", block(4, 1), 1.0);
  const dispatcher tuned(store);
  // Dimensions sorted by name: (image_height, image_width); (1024, 4096) comes first.
  const auto choice = tuned.best(h100.name, "tile", square(2048), occupancy_default);
  EXPECT_EQ(choice.from, source::nearest);
  EXPECT_EQ(choice.problem, R"({"image_width":4096,"image_height":1024})");
  ASSERT_EQ(tuned.tables().size(), 1u);
  EXPECT_EQ(tuned.tables()[0].dimensions, (std::vector<std::string>{"image_height", "image_width"}));
}

TEST(Dispatch, ProblemSizesNotNamedNumbersAndNonTimeObjectivesAreLeftOut) {
  scratch dir;
  auto store = results_store::open(dir / "store.db");
  record(store, h100, {"kt", ""}, "[4096,4096]", block(1, 1), 1.0);
  record(store, h100, {"kt", ""}, R"({"n":"large"})", block(1, 1), 1.0);
  const tunekit::store_key rate{h100, {"rate", ""}, R"({"n":10})"};
  store.describe(rate, {}, "GFLOP/s");  // larger is better: "smallest" would pick the worst
  record(store, h100, {"rate", ""}, R"({"n":10})", block(1, 1), 100.0);
  record(store, h100, {"plain", ""}, "{}", block(7, 7), 1.0);
  const dispatcher tuned(store);
  EXPECT_FALSE(tuned.find(h100.name, "kt", {{"n", 4096}}));
  EXPECT_FALSE(tuned.find(h100.name, "rate", {{"n", 10}}));
  // A kernel without a problem size: the empty one matches exactly.
  const auto plain = tuned.find(h100.name, "plain", {});
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->from, source::exact);
  EXPECT_EQ(plain->config, block(7, 7));
  ASSERT_EQ(tuned.tables().size(), 1u);
}

TEST(Dispatch, BadQueriesAndMissingStoresThrowInvalidArgument) {
  scratch dir;
  EXPECT_THROW((void)dispatcher::open(dir / "missing.db"), tunekit::invalid_argument);
  EXPECT_FALSE(fs::exists(dir / "missing.db"));
  write_bytes(dir / "foreign.db", "not a database at all, not even close to one, but long enough to be read as one");
  EXPECT_THROW((void)dispatcher::open(dir / "foreign.db"), tunekit::invalid_argument);
  {
    auto store = results_store::open(dir / "store.db");
    fill(store);
  }
  const auto tuned = dispatcher::open(dir / "store.db", "conv");
  EXPECT_FALSE(tuned.empty());
  EXPECT_THROW((void)tuned.find(h100.name, "conv", {{"n", 1}, {"n", 2}}), tunekit::invalid_argument);
  EXPECT_THROW((void)tuned.best(h100.name, "conv", {{"n", 1}}, tunekit::dispatcher::fallback_function{}),
               tunekit::invalid_argument);
}

// ================================================================ export-header

namespace {

struct query {
  std::string device;
  std::string kernel;
  problem_dimensions problem;
};

// An independent C string literal: every byte that is not alphanumeric as an octal escape.
std::string c_literal(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == ' ' || c == '_') {
      out += c;
    } else {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\%03o", byte);
      out += escape;
    }
  }
  return out + "\"";
}

std::string number(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

// One line per query, as the compiled program prints it.
std::string expected_answers(const dispatcher& tuned, const std::vector<query>& queries) {
  std::string out;
  for (const auto& each : queries) {
    std::optional<tuned_choice> choice;
    try {
      choice = tuned.find(each.device, each.kernel, each.problem);
    } catch (const tunekit::invalid_argument&) {
      // A dimension named twice: the dispatcher refuses it, the header (which cannot throw) finds nothing.
    }
    if (!choice) {
      out += "none\n";
      continue;
    }
    out += std::string(to_string(choice->from)) + " " + choice->problem + " " + number(*choice->time_ms);
    for (const auto& [name, value] : choice->config) {
      out += " " + name + "=";
      if (const auto* integer = std::get_if<std::int64_t>(&value)) out += std::to_string(*integer);
      else if (const auto* real = std::get_if<double>(&value)) out += number(*real);
      else out += "'" + std::get<std::string>(value) + "'";
    }
    out += "\n";
  }
  return out;
}

std::string program_for(const std::vector<query>& queries) {
  std::string text = R"(#include "tuned.hpp"
#include <cstdio>

static void print(const tunekit_tuned::configuration* tuned, bool exact) {
  if (tuned == nullptr) {
    std::printf("none\n");
    return;
  }
  std::printf("%s %s %.17g", exact ? "exact" : "nearest", tuned->problem, tuned->time_ms);
  for (std::size_t i = 0; i < tuned->parameter_count; ++i) {
    const tunekit_tuned::parameter& each = tuned->parameters[i];
    if (each.kind == tunekit_tuned::value_kind::integer) std::printf(" %s=%lld", each.name, each.integer);
    else if (each.kind == tunekit_tuned::value_kind::real) std::printf(" %s=%.17g", each.name, each.real);
    else std::printf(" %s='%s'", each.name, each.text);
  }
  std::printf("\n");
}

int main() {
  bool exact = false;
)";
  for (const auto& each : queries) {
    text += "  {\n    const tunekit_tuned::dimension problem[] = {";
    for (const auto& [name, value] : each.problem) {
      text += '{';
      text += c_literal(name);
      text += ", ";
      text += number(value);
      text += "}, ";
    }
    text += "{\"\", 0.0}};\n";
    text += "    const tunekit_tuned::configuration* tuned = tunekit_tuned::lookup(" + c_literal(each.device) + ", " +
            c_literal(each.kernel) + ", problem, " + std::to_string(each.problem.size()) + ", &exact);\n";
    text += "    print(tuned, exact);\n  }\n";
  }
  text += "  return 0;\n}\n";
  return text;
}

bool have_compiler() { return std::system("c++ --version >/dev/null 2>&1") == 0; }

// Compiles `program` (beside the headers in `dir`) with the strictest common warnings, runs it, returns its output.
std::string compile_and_run(const fs::path& dir, const std::string& program, std::string& log) {
  write_bytes(dir / "main.cpp", program);
  const std::string compile = "c++ -std=c++17 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror -o '" +
                              (dir / "program").string() + "' '" + (dir / "main.cpp").string() + "' > '" +
                              (dir / "compile.log").string() + "' 2>&1";
  if (std::system(compile.c_str()) != 0) {
    log = file_bytes(dir / "compile.log");
    return {};
  }
  const std::string run = "'" + (dir / "program").string() + "' > '" + (dir / "answers.txt").string() + "'";
  if (std::system(run.c_str()) != 0) {
    log = "the program failed";
    return {};
  }
  return file_bytes(dir / "answers.txt");
}

const device_identity odd_device{"Odd \"GPU\" \\ \xc3\xbcnic\xc3\xb6" "de\nline ?\?= */", "sm_90", ""};

// Everything the header must carry: strings, reals, integers at the edges, odd names.
void fill_for_header(results_store& store) {
  fill(store);
  const kernel_identity mixed{"mixed", "77"};
  record(store, h200, mixed, R"({"n":1000,"m":0.5})",
         {{"layout", std::string("row \"major\"\n")}, {"alpha", 0.1}, {"big", std::numeric_limits<std::int64_t>::min()}},
         0.25);
  record(store, h200, mixed, R"({"n":1e6,"m":2})",
         {{"layout", std::string("col")}, {"alpha", -1e-300}, {"big", std::numeric_limits<std::int64_t>::max()}},
         123456.789);
  record(store, odd_device, {"odd \\kernel\"", "1"}, R"({"size\"\\":-3})", {{"p", std::int64_t{-7}}}, 1e-9);
  record(store, h100, {"plain", "2"}, "{}", {}, 0.125);
  // Mirror images about (2048, 2048): a tie the header must break as the dispatcher does.
  record(store, h100, {"tile", "0"}, R"({"image_width":4096,"image_height":1024})", block(1, 4), 1.0);
  record(store, h100, {"tile", "0"}, R"({"image_width":1024,"image_height":4096})", block(4, 1), 1.0);
}

std::vector<query> header_queries() {
  return {
      {h100.name, "conv", square(1024)},
      {h100.name, "conv", {{"image_height", 4096}, {"image_width", 4096}}},
      {h100.name, "conv", square(3000)},
      {h100.name, "conv", square(1500)},
      {h100.name, "conv", square(2500)},
      {h100.name, "conv", {{"image_width", 100}, {"image_height", 6000}}},
      {h100.name, "conv", square(1 << 20)},
      {h100.name, "conv", square(0)},
      {h100.name, "conv", square(-5)},
      {h200.name, "conv", square(1024)},
      {h200.name, "conv", square(4096)},
      {"NVIDIA A100", "conv", square(1024)},
      {h100.name, "gemm", square(1024)},
      {h100.name, "conv", {{"n", 1024}}},
      {h100.name, "conv", {{"image_width", 1024}}},
      {h100.name, "conv", {{"image_width", 1024}, {"image_width", 1024}}},
      {h200.name, "mixed", {{"m", 0.5}, {"n", 1000}}},
      {h200.name, "mixed", {{"n", 1e6}, {"m", 2}}},
      {h200.name, "mixed", {{"n", 3e4}, {"m", 1}}},
      {h200.name, "mixed", {{"n", 1e5}, {"m", 1}}},
      {odd_device.name, "odd \\kernel\"", {{"size\"\\", -3}}},
      {odd_device.name, "odd \\kernel\"", {{"size\"\\", 100}}},
      {h100.name, "plain", {}},
      {h100.name, "tile", square(2048)},
      {h100.name, "tile", {{"image_width", 1024}, {"image_height", 4096}}},
  };
}

}  // namespace

TEST(ExportHeader, CompiledAloneItAnswersEveryQueryAsTheDispatcherDoes) {
  if (!have_compiler()) GTEST_SKIP() << "no system C++ compiler (c++)";
  scratch dir;
  const auto store_path = dir / "store.db";
  {
    auto store = results_store::open(store_path);
    fill_for_header(store);
  }
  const auto result = run_cli({"export-header", "--store", store_path.string(), "--output", (dir / "tuned.hpp").string()});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_NE(result.out.find("wrote 10 tuned configurations (6 device and kernel tables)"), std::string::npos)
      << result.out;
  const std::string header = file_bytes(dir / "tuned.hpp");
  EXPECT_EQ(header.find("tunekit/"), std::string::npos) << "the header must stand alone";
  EXPECT_EQ(header.find("cuda"), std::string::npos);

  const auto queries = header_queries();
  const std::string expected = expected_answers(dispatcher::open(store_path), queries);
  // The comparison means something only if every kind of answer occurs.
  for (const char* kind : {"exact ", "nearest ", "none\n", "layout='row \"major\"\n'", "big=-9223372036854775808",
                           "alpha=-1e-300"})
    EXPECT_NE(expected.find(kind), std::string::npos) << kind << " in\n" << expected;

  std::string log;
  const std::string answers = compile_and_run(dir / "", program_for(queries), log);
  ASSERT_TRUE(log.empty()) << log;
  EXPECT_EQ(answers, expected);
}

TEST(ExportHeader, TwoHeadersWithTheirOwnNamespacesLiveInOneProgram) {
  if (!have_compiler()) GTEST_SKIP() << "no system C++ compiler (c++)";
  scratch dir;
  const auto store_path = (dir / "store.db").string();
  {
    auto store = results_store::open(store_path);
    fill_for_header(store);
  }
  ASSERT_EQ(run_cli({"export-header", "--store", store_path, "--kernel", "conv", "-o", (dir / "tuned.hpp").string()}).code, 0);
  const auto second = run_cli({"export-header", "--store", store_path, "--kernel", "mixed", "--namespace",
                               "app::mixed_tuned", "-o", (dir / "mixed.hpp").string()});
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_EQ(file_bytes(dir / "tuned.hpp").find("mixed"), std::string::npos) << "--kernel conv holds conv only";
  const std::string program = R"(#include "tuned.hpp"
#include "mixed.hpp"
#include <cstdio>
int main() {
  bool exact = false;
  const tunekit_tuned::configuration* conv = tunekit_tuned::lookup("NVIDIA H100 80GB HBM3", "conv",
                                                                   {{"image_width", 3000}, {"image_height", 3000}}, &exact);
  const app::mixed_tuned::configuration* mixed = app::mixed_tuned::lookup("NVIDIA H200", "mixed", {{"n", 1000}, {"m", 0.5}});
  const tunekit_tuned::configuration* wrong = tunekit_tuned::lookup("NVIDIA H200", "mixed", {{"n", 1000}, {"m", 0.5}});
  std::printf("%lld %lld %d %s %g %s %d\n", conv->integer("block_x", -1), conv->integer("block_y", -1), exact ? 1 : 0,
              mixed->text("layout", "?"), mixed->real("alpha", 0.0), mixed->text("alpha", "not text"), wrong == nullptr ? 1 : 0);
  return 0;
}
)";
  std::string log;
  const std::string answers = compile_and_run(dir / "", program, log);
  ASSERT_TRUE(log.empty()) << log;
  EXPECT_EQ(answers, "32 32 0 row \"major\"\n 0.1 not text 1\n");
}

TEST(ExportHeader, OutputIsSortedAndTheSameWhateverTheOrderResultsWereRecorded) {
  scratch dir;
  // One kernel version per device, so recording order cannot change what is chosen.
  const kernel_identity kernel{"conv", "abc"};
  std::vector<std::tuple<device_identity, std::string, stored_configuration, double>> rows = {
      {h200, size_4096, block(8, 8), 4.0},       {h100, size_1024, block(16, 16), 1.0},
      {h100, size_4096, block(32, 32), 3.0},     {h200, size_1024, block(4, 4), 0.5},
      {h100, size_1024, block(8, 8), 2.0},       {h100_new_driver, size_8192, block(64, 64), 9.0},
      {h200, R"({"n":7})", block(1, 1), 0.1},
  };
  std::vector<std::string> headers;
  for (int pass = 0; pass < 2; ++pass) {
    const auto path = dir / ("store" + std::to_string(pass) + ".db");
    {
      auto store = results_store::open(path);
      for (const auto& [device, problem, configuration, time] : rows) record(store, device, kernel, problem, configuration, time);
    }
    const auto result = run_cli({"export-header", "--store", path.string()});
    ASSERT_EQ(result.code, 0) << result.err;
    EXPECT_EQ(result.out.rfind("// Tuned configurations", 0), 0u) << "the header goes to stdout";
    EXPECT_NE(result.out.find("#pragma once"), std::string::npos);
    headers.push_back(result.out);
    std::reverse(rows.begin(), rows.end());
  }
  EXPECT_EQ(headers[0], headers[1]);
  const std::string& header = headers[0];
  // Devices in name order, problem sizes smallest first within a table, one entry per size.
  EXPECT_LT(header.find("\"NVIDIA H100 80GB HBM3\", \"conv\""), header.find("\"NVIDIA H200\", \"conv\""));
  EXPECT_LT(header.find(R"("{\"image_width\":1024,\"image_height\":1024}", problem_0_0)"),
            header.find(R"("{\"image_width\":4096,\"image_height\":4096}", problem_0_1)"));
  EXPECT_NE(header.find(R"("{\"image_width\":8192,\"image_height\":8192}", problem_0_2)"), std::string::npos);
  EXPECT_EQ(header.find("problem_0_3"), std::string::npos);
  EXPECT_NE(header.find("{\"block_x\", value_kind::integer, 16LL, 0.0, \"\"}"), std::string::npos) << header;
  EXPECT_EQ(header.find("store0.db"), std::string::npos) << "no paths: the same store gives the same bytes anywhere";
}

TEST(ExportHeader, BadInputIsOneLineAndExitTwo) {
  scratch dir;
  const auto store_path = (dir / "store.db").string();
  expect_bad_input({"export-header", "--store", (dir / "missing.db").string()});
  EXPECT_FALSE(fs::exists(dir / "missing.db")) << "exporting never creates a store";
  {
    auto store = results_store::open(store_path);
    record(store, h100, conv_new, size_1024, block(1, 1), 0.0, evaluation_status::compile_error);
  }
  expect_bad_input({"export-header", "--store", store_path});  // nothing but failures
  {
    auto store = results_store::open(store_path);
    fill(store);
  }
  expect_bad_input({"export-header", "--store", store_path, "--kernel", "gemm"});
  expect_bad_input({"export-header", "--store", store_path, "--namespace", "not a namespace"});
  expect_bad_input({"export-header", "--store", store_path, "--namespace", "a::"});
  expect_bad_input({"export-header", "--store", store_path, "--bogus"});
  write_bytes(dir / "tuned.hpp", "precious");
  expect_bad_input({"export-header", "--store", store_path, "--output", (dir / "tuned.hpp").string()});
  EXPECT_EQ(file_bytes(dir / "tuned.hpp"), "precious");
  const auto result = run_cli({"export-header", "--store", store_path, "-o", (dir / "tuned.hpp").string(), "--force"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(file_bytes(dir / "tuned.hpp"), run_cli({"export-header", "--store", store_path}).out);
  write_bytes(dir / "foreign.db", std::string(200, 'x'));
  expect_bad_input({"export-header", "--store", (dir / "foreign.db").string()});
}
