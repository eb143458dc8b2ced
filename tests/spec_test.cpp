// Tuning specs: a good spec reads into every field; each kind of mistake is
// one spec_error naming the file and the line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <variant>

#include "tunekit/search_space.hpp"
#include "tunekit/spec.hpp"

namespace {

namespace fs = std::filesystem;

// A folder with a kernel source beside the spec, as specs expect.
class spec_folder {
 public:
  spec_folder() {
    path_ = fs::temp_directory_path() / ("tunekit_spec_test_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(path_);
    std::ofstream(path_ / "k.cpp") << "extern \"C\" void k(void* const*) {}\n";
  }
  ~spec_folder() { fs::remove_all(path_); }
  fs::path spec_path() const { return path_ / "k.toml"; }

 private:
  fs::path path_;
};

const std::string good = R"(# a comment
[kernel]
name = "k"
source = "k.cpp"

[parameters]
A = [1, 2, 4]
B = ["x", "y"]

[search]
constraints = ["A <= n"]
baseline = { A = 2 }

[problem]
n = 8

[launch]
threads = "A"

[[arguments]]
name = "in"
type = "float32"
count = "n * A"
init = { random = { seed = 3, low = -2.0, high = 2.0 } }

[[arguments]]
name = "out"
type = "float64"
count = "n"
direction = "out"

[[arguments]]
name = "n"
scalar = "int32"
value = "n"

[reference]
function = "ref"
tolerance = { absolute = 1e-3, relative = 0 }
)";

// The line of the first occurrence of `needle` in `text`, 1-based.
int line_of(const std::string& text, const std::string& needle) {
  const auto at = text.find(needle);
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
}

std::string error_of(const std::string& text, const fs::path& path) {
  try {
    (void)tunekit::parse_spec(text, path);
  } catch (const tunekit::spec_error& problem) {
    return problem.what();
  }
  return "(no error)";
}

// Whether the error of `text` names the line of `needle` and says `what` there.
::testing::AssertionResult fails_at(const std::string& text, const fs::path& path, const std::string& needle,
                                    const std::string& what) {
  const auto message = error_of(text, path);
  if (message.find(":" + std::to_string(line_of(text, needle)) + ": " + what) != std::string::npos)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << message;
}

TEST(Spec, ReadsEveryField) {
  spec_folder folder;
  const auto spec = tunekit::parse_spec(good, folder.spec_path());
  EXPECT_EQ(spec.name, "k");
  EXPECT_EQ(spec.function, "k") << "defaults to the name";
  EXPECT_EQ(spec.backend, tunekit::backend_kind::host);
  ASSERT_EQ(spec.parameters.size(), 2u);
  EXPECT_EQ(spec.parameters[1].values, (std::vector<tunekit::parameter_value>{std::string("x"), std::string("y")}));
  EXPECT_EQ(spec.problem_text(), R"({"n":8})");
  ASSERT_EQ(spec.baseline.size(), 2u);
  EXPECT_EQ(spec.baseline[0], (std::pair<std::string, tunekit::parameter_value>{"A", std::int64_t{2}}));
  EXPECT_EQ(spec.baseline[1].second, tunekit::parameter_value{std::string("x")}) << "unnamed: the first value";
  ASSERT_EQ(spec.arguments.size(), 3u);
  EXPECT_EQ(spec.arguments[0].init.seed, 3u);
  EXPECT_EQ(spec.arguments[0].init.low, -2.0);
  EXPECT_EQ(spec.arguments[1].direction, tunekit::argument_direction::out);
  EXPECT_TRUE(spec.arguments[2].scalar);
  EXPECT_EQ(spec.arguments[2].line, line_of(good, "name = \"n\"") - 1);
  EXPECT_EQ(spec.accuracy.absolute, 1e-3);
  const auto space = tunekit::search_space::enumerate(tunekit::space_of(spec));
  EXPECT_EQ(space.size(), 6u);
  EXPECT_EQ(space.describe(tunekit::baseline_index(spec, space)), "A=2, B=x");
}

TEST(Spec, EachMistakeIsOneLineNamingFileAndLine) {
  spec_folder folder;
  const auto path = folder.spec_path().string();
  struct mistake {
    std::string from, to, expected;
  };
  const std::vector<mistake> mistakes = {
      {"A = [1, 2, 4]", "A = [1, 2, 4]\ntile_size = 3\n[oops]\nx = 1", "unknown key 'oops'"},
      {"source = \"k.cpp\"", "source = \"missing.cpp\"", "kernel source 'missing.cpp' not found"},
      {"count = \"n * A\"", "count = \"n * C\"", "count of 'in'"},
      {"constraints = [\"A <= n\"]", "constraints = [\"A <= m\"]", "constraint 'A <= m'"},
      {"baseline = { A = 2 }", "baseline = { A = 3 }", "baseline A = 3 is not one of its values"},
      {"baseline = { A = 2 }", "baseline = { Z = 3 }", "baseline names 'Z'"},
      {"type = \"float64\"", "type = \"float16\"", "unknown type 'float16'"},
      {"direction = \"out\"", "direction = \"sideways\"", "direction must be in, out or inout"},
      {"direction = \"out\"", "", "no argument is an output"},
      {"count = \"n * A\"", "count = \"n * A\"\npass = \"value\"", "pass = \"value\" is for cuda kernels"},
      {"direction = \"out\"", "direction = \"out\"\npass = \"copy\"", "pass must be pointer or value"},
      {"init = { random = { seed = 3, low = -2.0, high = 2.0 } }", "init = { random = { seed = 3, low = 2.0, high = -2.0 } }", "low < high"},
      {"high = 2.0 } }", "high = 2.0, step = -1 } }", "step must be a number > 0"},
      {"init = { random = { seed = 3, low = -2.0, high = 2.0 } }", "init = { blobs = { seed = 3 } }", "init.blobs needs width"},
      {"init = { random = { seed = 3, low = -2.0, high = 2.0 } }", "init = { blobs = { width = \"q\" } }", "blobs width of 'in'"},
      {"init = { random = { seed = 3, low = -2.0, high = 2.0 } }", "init = { blobs = { scale = 1.0, width = \"n\" } }", "scale >= 4"},
      {"name = \"k\"\nsource", "name = 5\nsource", "'name' in [kernel] must be a string"},
      {"[reference]", "[nothing]", "unknown key 'nothing'"},
      {"A = [1, 2, 4]", "A = [1, 2, 4\n", "not valid TOML"},
      {"constraints = [\"A <= n\"]", "constraints = [\"A > 100\"]", "no configuration satisfies the constraints"},
      {"[reference]", "[objective]\nmetric = \"n / time_ms\"\n[reference]", "metric: "},
      {"[reference]", "[objective]\nkind = \"speed\"\n[reference]", "unknown objective kind 'speed'"},
      {"[reference]", "[model]\nflops = \"n * Q\"\n[reference]", "[model] flops"},
      {"[reference]", "[model]\nbytes = \"n\"\n[reference]", "unknown key 'bytes'"},
      {"[reference]", "[objective]\nkind = \"energy\"\n[reference]", "an energy objective needs the cuda backend"},
      {"[reference]", "[objective]\ngoal = \"max\"\n[reference]", "only a metric can be maximised"},
      {"[reference]", "[objective]\nmetric = \"n / time_us\"\ngoal = \"up\"\n[reference]", "goal is min or max"},
      {"[reference]", "[objective]\nkind = \"metric\"\n[reference]", "needs metric ="},
  };
  for (const auto& each : mistakes) {
    auto text = good;
    const auto at = text.find(each.from);
    ASSERT_NE(at, std::string::npos) << each.from;
    text.replace(at, each.from.size(), each.to);
    const auto message = error_of(text, folder.spec_path());
    EXPECT_NE(message.find(each.expected), std::string::npos) << message;
    EXPECT_EQ(message.rfind(path + ":", 0), 0u) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(Spec, AMetricObjectiveReadsTheProblemTheParametersAndTheTime) {
  spec_folder folder;
  auto text = good;
  text.replace(text.find("[reference]"), 11,
               "[objective]\nname = \"GB/s\"\nmetric = \"4 * n * A / (time_us * 1e3)\"\ngoal = \"max\"\n[reference]");
  const auto spec = tunekit::parse_spec(text, folder.spec_path());
  EXPECT_EQ(spec.objective.how, tunekit::objective_spec::kind::metric);
  EXPECT_EQ(spec.objective.name, "GB/s");
  EXPECT_EQ(spec.objective.expression, "4 * n * A / (time_us * 1e3)");
  EXPECT_TRUE(spec.objective.maximize);
  EXPECT_EQ(tunekit::parse_spec(good, folder.spec_path()).objective.how, tunekit::objective_spec::kind::time);
}

TEST(Spec, AModelGivesEachConfigurationsWork) {
  spec_folder folder;
  auto text = good;
  text.replace(text.find("[reference]"), 11,
               "[model]\nbytes_read = \"4 * n * A\"\nbytes_written = \"8 * n\"\nflops = \"2 * n\"\nbf16_when = \"A == 4\"\n[reference]");
  const auto spec = tunekit::parse_spec(text, folder.spec_path());
  const auto space = tunekit::search_space::enumerate(tunekit::space_of(spec));
  ASSERT_EQ(space.size(), 6u);  // A in {1, 2, 4} x B in {x, y}
  bool saw_bf16 = false;
  for (std::size_t i = 0; i < space.size(); ++i) {
    const auto work = tunekit::work_of(spec, space, i);
    ASSERT_TRUE(work.has_value());
    const auto a = std::get<std::int64_t>(space.parameters()[0].values[space.at(i).value_indices[0]]);
    EXPECT_EQ(work->bytes_read, 32.0 * static_cast<double>(a));
    EXPECT_EQ(work->bytes_written, 64.0);
    EXPECT_EQ(work->flops, 16.0);
    EXPECT_EQ(work->flop_type, a == 4 ? "bf16" : "fp32");
    saw_bf16 = saw_bf16 || a == 4;
  }
  EXPECT_TRUE(saw_bf16);
  EXPECT_FALSE(tunekit::work_of(tunekit::parse_spec(good, folder.spec_path()), space, 0).has_value());
}

TEST(Spec, ACudaInputCanBePassedByValue) {
  spec_folder folder;
  auto text = good;
  text.replace(text.find("source = \"k.cpp\""), 16, "backend = \"cuda\"\nsource = \"k.cpp\"");
  text.replace(text.find("threads = \"A\""), 13, "grid = [\"n\"]\nblock = [\"A\"]");
  EXPECT_FALSE(tunekit::parse_spec(text, folder.spec_path()).arguments[0].by_value) << "pointers by default";
  auto by_value = text;
  by_value.insert(by_value.find("init = { random"), "pass = \"value\"\n");
  const auto spec = tunekit::parse_spec(by_value, folder.spec_path());
  EXPECT_TRUE(spec.arguments[0].by_value);
  EXPECT_FALSE(spec.arguments[1].by_value);
  auto output = text;
  output.insert(output.find("direction = \"out\""), "pass = \"value\"\n");
  EXPECT_TRUE(fails_at(output, folder.spec_path(), "pass = \"value\"", "pass = \"value\" is for inputs"));
}

TEST(Spec, UnknownKeysPointAtTheirLine) {
  spec_folder folder;
  auto text = good;
  text.insert(text.find("[problem]"), "typo = 1\n");
  EXPECT_TRUE(fails_at(text, folder.spec_path(), "typo = 1", "unknown key 'typo' in [search]"));
}

TEST(Spec, ABaselineOutsideTheConstraintsPointsAtItsLine) {
  spec_folder folder;
  auto text = good;
  text.replace(text.find("baseline = { A = 2 }"), 20, "baseline = { A = 4 }");
  text.replace(text.find("\"A <= n\""), 8, "\"A <= 2\"");
  const auto message = error_of(text, folder.spec_path());
  EXPECT_EQ(message, folder.spec_path().string() + ":" + std::to_string(line_of(text, "baseline = {")) +
                         ": the baseline violates the constraints");
}

TEST(Spec, AMissingFileIsASpecError) {
  EXPECT_THROW((void)tunekit::load_spec("/nonexistent/spec.toml"), tunekit::spec_error);
}

// Random damage to a good spec never escapes as anything but spec_error.
TEST(Spec, MangledSpecsFailCleanly) {
  spec_folder folder;
  std::uint64_t state = 12345;
  const auto next = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
  };
  for (int trial = 0; trial < 400; ++trial) {
    auto text = good;
    for (int edit = 0; edit < 3; ++edit) {
      const auto at = next() % text.size();
      switch (next() % 3) {
        case 0: text.erase(at, 1 + next() % 4); break;
        case 1: text.insert(at, 1, "[]{}=\"#,.0a\n"[next() % 12]); break;
        default: std::swap(text[at], text[next() % text.size()]); break;
      }
    }
    try {
      (void)tunekit::parse_spec(text, folder.spec_path());
    } catch (const tunekit::spec_error&) {
    } catch (const std::exception& other) {
      ADD_FAILURE() << "not a spec_error: " << other.what() << "\n" << text;
    }
  }
}

}  // namespace
