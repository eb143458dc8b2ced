// tunekit workload NAME --dump DIR: the inputs and outputs as .npy files that
// numpy reads (checked here by parsing the format), the outputs the
// workload's function of the inputs, bad input one line and exit code 2.
#include "cli_runner.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "temp_dir.hpp"

namespace {

const std::string manifest = TUNEKIT_SOURCE_DIR "/kernels/suite.toml";

// A one-dimensional .npy file: its dtype text and its elements' bytes.
struct npy {
  std::string descr;
  std::size_t count = 0;
  std::vector<char> bytes;
};

npy read_npy(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::vector<char> all{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
  npy out;
  EXPECT_GE(all.size(), 10u) << path;
  if (all.size() < 10) return out;
  EXPECT_EQ(std::string(all.begin() + 1, all.begin() + 6), "NUMPY");
  const std::size_t header = static_cast<unsigned char>(all[8]) | (static_cast<std::size_t>(static_cast<unsigned char>(all[9])) << 8);
  EXPECT_EQ((10 + header) % 64, 0u) << "the data starts on a 64-byte boundary";
  const std::string text(all.begin() + 10, all.begin() + 10 + static_cast<long>(header));
  EXPECT_EQ(text.back(), '\n');
  const auto descr = text.find("'descr': '");
  out.descr = text.substr(descr + 10, 3);
  const auto shape = text.find("'shape': (");
  out.count = std::stoull(text.substr(shape + 10));
  out.bytes.assign(all.begin() + 10 + static_cast<long>(header), all.end());
  return out;
}

std::vector<float> floats(const npy& file) {
  std::vector<float> out(file.count);
  EXPECT_EQ(file.bytes.size(), file.count * 4);
  std::memcpy(out.data(), file.bytes.data(), std::min(file.bytes.size(), out.size() * 4));
  return out;
}

TEST(WorkloadCommand, VectorAddDumpsInputsAndOutputsThatAddUp) {
  tunekit::test::temp_dir dir;
  const auto dump = dir.path() / "dump";
  const auto result = tunekit::testing::run_cli({"workload", "vector_add", "--dump", dump.string(), "--manifest", manifest,
                                                 "--store", (dir.path() / "store.db").string()});
  ASSERT_EQ(result.code, 0) << result.err << result.out;
  const auto a = read_npy(dump / "a.npy");
  const auto b = read_npy(dump / "b.npy");
  const auto c = read_npy(dump / "c.npy");
  const auto reference = read_npy(dump / "c_reference.npy");
  EXPECT_EQ(a.descr, "<f4");
  ASSERT_EQ(a.count, 100000u);
  ASSERT_EQ(c.count, a.count);
  const auto x = floats(a);
  const auto y = floats(b);
  const auto sum = floats(c);
  const auto want = floats(reference);
  std::size_t nonzero = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(sum[i], x[i] + y[i]) << "element " << i;
    ASSERT_EQ(want[i], sum[i]) << "element " << i;
    nonzero += x[i] != 0.0f ? 1 : 0;
  }
  EXPECT_GT(nonzero, x.size() / 2);  // never checked on zeros
  const auto params = nlohmann::json::parse(std::ifstream(dump / "params.json"));
  EXPECT_EQ(params["workload"], "vector_add");
  EXPECT_EQ(params["problem"]["n"], 100000);
  EXPECT_EQ(params["files"].size(), 4u);

  // --seed moves the inputs: other numbers, the same function.
  const auto other = dir.path() / "other";
  ASSERT_EQ(tunekit::testing::run_cli({"workload", "vector_add", "--seed", "3", "--dump", other.string(), "--manifest",
                                       manifest, "--store", (dir.path() / "store.db").string()})
                .code,
            0);
  const auto moved = floats(read_npy(other / "a.npy"));
  EXPECT_NE(moved, x);
}

TEST(WorkloadCommand, SizeOverridesTheSeedProblem) {
  tunekit::test::temp_dir dir;
  const auto dump = dir.path() / "dump";
  const auto result = tunekit::testing::run_cli({"workload", "conv2d", "--size", "width=40,height=24", "--dump", dump.string(),
                                                 "--manifest", manifest, "--store", (dir.path() / "store.db").string()});
  ASSERT_EQ(result.code, 0) << result.err << result.out;
  EXPECT_EQ(read_npy(dump / "output.npy").count, 40u * 24u);
  EXPECT_EQ(read_npy(dump / "input.npy").count, 40u * 24u);
}

TEST(WorkloadCommand, BadInputIsOneLineAndExitTwo) {
  tunekit::test::temp_dir dir;
  const auto dump = (dir.path() / "dump").string();
  tunekit::testing::expect_bad_input({"workload", "no_such_workload", "--dump", dump, "--manifest", manifest});
  tunekit::testing::expect_bad_input({"workload", "vector_add", "--size", "m=3", "--dump", dump, "--manifest", manifest});
  tunekit::testing::expect_bad_input({"workload", "vector_add", "--size", "n=three", "--dump", dump, "--manifest", manifest});
  tunekit::testing::expect_bad_input({"workload", "vector_add", "--dump", dump, "--manifest", dump + "/missing.toml"});
  tunekit::testing::expect_bad_input({"profile", "--kernels", "nope", "--manifest", manifest});
  tunekit::testing::expect_bad_input({"profile", "--suite", "medium", "--manifest", manifest});
  tunekit::testing::expect_bad_input({"profile", "--fail-on-regression", "--manifest", manifest});
}

}  // namespace
