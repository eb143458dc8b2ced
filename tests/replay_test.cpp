#include "tunekit/replay.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <unistd.h>

#include "tunekit/error.hpp"

namespace {

const char* small_cache = R"({
  "device_name": "Test GPU", "kernel_name": "k", "objective": "time",
  "tune_params_keys": ["block_size_x", "tile", "alpha"],
  "tune_params": {"block_size_x": [32, 64], "tile": [1, 2], "alpha": [0.5, 1.0]},
  "cache": {
    "32,1,0.5": {"time": 2.0, "compile_time": 100.0, "verification_time": 1.0, "benchmark_time": 10.0},
    "64,2,1.0": {"time": 1.5, "compile_time": 90.0, "benchmark_time": 12.0},
    "64,1,0.5": {"time": "CompilationFailedConfig", "compile_time": 50.0},
    "32,2,1.0": {"time": "RuntimeFailedConfig"}
  }
})";

class ReplayFiles : public ::testing::Test {
 protected:
  std::filesystem::path directory = std::filesystem::temp_directory_path() /
                                    ("tunekit_replay_test_" + std::to_string(::getpid()));
  void SetUp() override { std::filesystem::create_directories(directory); }
  void TearDown() override { std::filesystem::remove_all(directory); }
  std::filesystem::path write(const std::string& name, const std::string& text) {
    const auto path = directory / name;
    std::ofstream(path) << text;
    return path;
  }
  std::filesystem::path write_gzip(const std::string& name, const std::string& text) {
    const auto path = directory / name;
    gzFile file = gzopen(path.c_str(), "wb");
    gzwrite(file, text.data(), static_cast<unsigned>(text.size()));
    gzclose(file);
    return path;
  }
};

void expect_small_cache(const tunekit::recorded_space& recorded) {
  EXPECT_EQ(recorded.device_name, "Test GPU");
  ASSERT_EQ(recorded.space.size(), 4u);
  ASSERT_EQ(recorded.results.size(), 4u);
  const auto best = recorded.space.find({{1, 1, 1}});
  ASSERT_TRUE(best.has_value());
  EXPECT_EQ(recorded.results[*best].status, tunekit::evaluation_status::ok);
  EXPECT_DOUBLE_EQ(recorded.results[*best].time, 1.5);
  EXPECT_DOUBLE_EQ(recorded.results[*best].cost(), 102.0);
  EXPECT_EQ(recorded.results[*recorded.space.find({{1, 0, 0}})].status, tunekit::evaluation_status::compile_error);
  EXPECT_EQ(recorded.results[*recorded.space.find({{0, 1, 1}})].status, tunekit::evaluation_status::launch_error);
  EXPECT_FALSE(recorded.space.find({{0, 0, 1}}).has_value());  // not recorded, not in the space
}

}  // namespace

TEST_F(ReplayFiles, ReadsPlainAndGzippedCaches) {
  expect_small_cache(tunekit::load_kernel_tuner_cache(write("small.json", small_cache)));
  expect_small_cache(tunekit::load_kernel_tuner_cache(write_gzip("small.json.gz", small_cache)));
}

TEST_F(ReplayFiles, CorruptOrForeignFilesAreInvalidArguments) {
  EXPECT_THROW((void)tunekit::load_kernel_tuner_cache(directory / "missing.json"), tunekit::invalid_argument);
  EXPECT_THROW((void)tunekit::load_kernel_tuner_cache(write("bad.json", "{\"tune_params\": ")), tunekit::invalid_argument);
  EXPECT_THROW((void)tunekit::load_kernel_tuner_cache(write("foreign.json", "{\"results\": []}")), tunekit::invalid_argument);
  std::string unknown_value = small_cache;
  unknown_value.replace(unknown_value.find("\"32,1,0.5\""), 10, "\"48,1,0.5\"");
  EXPECT_THROW((void)tunekit::load_kernel_tuner_cache(write("value.json", unknown_value)), tunekit::invalid_argument);
  std::string short_key = small_cache;
  short_key.replace(short_key.find("\"32,1,0.5\""), 10, "\"32,1\"");
  EXPECT_THROW((void)tunekit::load_kernel_tuner_cache(write("short.json", short_key)), tunekit::invalid_argument);
  std::string unknown_failure = small_cache;
  unknown_failure.replace(unknown_failure.find("RuntimeFailedConfig"), 19, "SomethingElse");
  EXPECT_THROW((void)tunekit::load_kernel_tuner_cache(write("failure.json", unknown_failure)), tunekit::invalid_argument);
  // Truncated gzip: a file cut in half must not parse.
  const auto whole = write_gzip("whole.json.gz", small_cache);
  std::ifstream in(whole, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  EXPECT_THROW((void)tunekit::load_kernel_tuner_cache(write("cut.json.gz", bytes.substr(0, bytes.size() / 2))),
               tunekit::invalid_argument);
}

// The recorded RTX 3090 spaces, where the checkout has them beside it.
TEST(RecordedSpaces, LoadEveryRecordedConfiguration) {
  const std::filesystem::path directory = TUNEKIT_SOURCE_DIR "/../shared/data/searchspaces";
  if (!std::filesystem::exists(directory)) GTEST_SKIP() << "no recorded spaces at " << directory;
  const std::map<std::string, std::size_t> expected{{"convolution_RTX_3090.json.gz", 6768},
                                                    {"gemm_RTX_3090.json.gz", 17956},
                                                    {"pnpoly_RTX_3090.json.gz", 4092}};
  for (const auto& [file, count] : expected) {
    const auto recorded = tunekit::load_kernel_tuner_cache(directory / file);
    EXPECT_EQ(recorded.space.size(), count) << file;
    EXPECT_EQ(recorded.device_name, "NVIDIA GeForce RTX 3090");
  }
}
