#include "cli_runner.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

#ifdef TUNEKIT_HAS_CUDA
#include "occupancy_oracle.hpp"
#include "tunekit/cuda/device.hpp"
#endif

namespace {

using outcome = tunekit::testing::cli_outcome;
using tunekit::testing::count_lines;
using tunekit::testing::expect_bad_input;

outcome run(std::vector<std::string> arguments) { return tunekit::testing::run_cli(std::move(arguments)); }

}  // namespace

TEST(Cli, HelpAndVersionExitZero) {
  auto result = run({"--help"});
  EXPECT_EQ(result.code, 0);
  EXPECT_NE(result.out.find("occupancy"), std::string::npos);
  result = run({"occupancy", "--help"});
  EXPECT_EQ(result.code, 0);
  EXPECT_NE(result.out.find("--smem-static"), std::string::npos);
  result = run({"--version"});
  EXPECT_EQ(result.code, 0);
  EXPECT_FALSE(result.out.empty());
}

TEST(Cli, NoSubcommandOrUnknownOneIsBadInput) {
  expect_bad_input({});
  expect_bad_input({"frobnicate"});
  expect_bad_input({"devices", "--bogus"});
}

#ifdef TUNEKIT_HAS_CUDA

TEST(CliDevices, NoDeviceMeansOneLineOrEmptyJsonAndExitZero) {
  if (tunekit::cuda::device_count() > 0) GTEST_SKIP() << "this machine has a GPU";
  auto result = run({"devices"});
  EXPECT_EQ(result.code, 0);
  EXPECT_EQ(count_lines(result.out), 1);
  EXPECT_NE(result.out.find("no CUDA device"), std::string::npos);
  result = run({"devices", "--json"});
  EXPECT_EQ(result.code, 0);
  EXPECT_EQ(nlohmann::json::parse(result.out), nlohmann::json::array());
}

TEST(CliCeilings, WithoutADeviceSaysSoInOneLineAndBadArgumentsAreBadInput) {
  expect_bad_input({"ceilings", "--device", "x"});
  expect_bad_input({"ceilings", "--bogus"});
  if (tunekit::cuda::device_count() > 0) {
    expect_bad_input({"ceilings", "--device", "4096"});
    return;
  }
  const auto result = run({"ceilings"});
  EXPECT_EQ(result.code, 1) << "no device is a failure, not bad input";
  EXPECT_EQ(tunekit::testing::count_lines(result.err), 1) << result.err;
  EXPECT_NE(result.err.find("no device to measure"), std::string::npos) << result.err;
  EXPECT_TRUE(result.out.empty());
}

TEST(CliDevices, ArchitectureTableReportsHaveEveryField) {
  auto result = run({"devices", "--arch", "sm_90", "--json"});
  ASSERT_EQ(result.code, 0) << result.err;
  const auto list = nlohmann::json::parse(result.out);
  ASSERT_EQ(list.size(), 1u);
  const auto& hopper = list[0];
  for (const char* key :
       {"name", "arch", "compute_capability", "multiprocessor_count", "sm_clock_mhz", "memory_clock_mhz",
        "memory_bytes", "memory_bus_width_bits", "memory_bandwidth_gbps", "l2_cache_bytes",
        "shared_memory_per_multiprocessor_bytes", "shared_memory_per_block_bytes",
        "shared_memory_per_block_optin_bytes", "reserved_shared_memory_per_block_bytes",
        "registers_per_multiprocessor", "registers_per_block", "max_threads_per_block",
        "max_threads_per_multiprocessor", "max_blocks_per_multiprocessor", "copy_engines"})
    EXPECT_TRUE(hopper.contains(key)) << key;
  EXPECT_EQ(hopper["arch"], "sm_90");
  EXPECT_NEAR(hopper["memory_bandwidth_gbps"].get<double>(), 3352.32, 0.01);

  result = run({"devices", "--table", "--json"});
  ASSERT_EQ(result.code, 0);
  EXPECT_EQ(nlohmann::json::parse(result.out).size(), 8u);
  result = run({"devices", "--arch", "sm_86"});
  ASSERT_EQ(result.code, 0);
  EXPECT_NE(result.out.find("RTX 3090"), std::string::npos);
  expect_bad_input({"devices", "--arch", "sm_61"});
  expect_bad_input({"devices", "--arch", "sm_90", "--table"});
}

TEST(CliOccupancy, JsonCarriesTheContractKeys) {
  const auto result = run({"occupancy", "--arch", "sm_90", "--threads", "256", "--regs", "64", "--json"});
  ASSERT_EQ(result.code, 0) << result.err;
  const auto json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["arch"], "sm_90");
  EXPECT_EQ(json["threads_per_block"], 256);
  EXPECT_EQ(json["registers_per_thread"], 64);
  EXPECT_EQ(json["shared_bytes_per_block"], 0);
  EXPECT_EQ(json["active_blocks_per_sm"], 4);
  EXPECT_EQ(json["active_warps_per_sm"], 32);
  EXPECT_EQ(json["max_warps_per_sm"], 64);
  EXPECT_DOUBLE_EQ(json["occupancy"].get<double>(), 0.5);
  EXPECT_EQ(json["limiter"], "registers");
}

TEST(CliOccupancy, SharedBytesPerBlockIsStaticPlusDynamic) {
  const auto result = run({"occupancy", "--arch", "sm_80", "--threads", "128", "--regs", "32", "--smem", "40000",
                           "--smem-static", "8000", "--json"});
  ASSERT_EQ(result.code, 0) << result.err;
  const auto json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["shared_bytes_per_block"], 48000);
  EXPECT_EQ(json["active_blocks_per_sm"], oracle::occupancy(oracle::architectures[2], 128, 32, 8000, 40000).blocks);
}

TEST(CliOccupancy, CannotRunAnswersZeroBlocksWithTheForbiddingLimiterAndExitZero) {
  auto result = run({"occupancy", "--arch", "sm_90", "--threads", "1024", "--regs", "128", "--json"});
  ASSERT_EQ(result.code, 0) << result.err;
  auto json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["active_blocks_per_sm"], 0);
  EXPECT_EQ(json["limiter"], "registers");
  result = run({"occupancy", "--arch", "sm_75", "--threads", "64", "--regs", "32", "--smem", "70000", "--json"});
  ASSERT_EQ(result.code, 0) << result.err;
  json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["active_blocks_per_sm"], 0);
  EXPECT_EQ(json["limiter"], "shared_memory");
}

// The acceptance check: the CLI's JSON equals cuda_occupancy.h, fed limits
// written independently in the oracle, on every listed architecture.
TEST(CliOccupancy, JsonEqualsCudaOccupancyHeaderForRandomCombinationsOnEveryArchitecture) {
  std::mt19937 random(7);
  int checked = 0;
  for (const auto& arch : oracle::architectures) {
    for (int i = 0; i < 300; ++i) {
      const int threads = 1 + static_cast<int>(random() % 1024);
      const int registers = static_cast<int>(random() % 257);
      const auto static_smem = static_cast<std::size_t>(random() % 3 == 0 ? random() % 49153 : 0);
      const auto dynamic_smem = static_cast<std::size_t>(random() % 4 == 0 ? 0 : random() % (arch.smem_optin + 2048));
      const auto result = run({"occupancy", "--arch", arch.name, "--threads", std::to_string(threads), "--regs",
                               std::to_string(registers), "--smem", std::to_string(dynamic_smem), "--smem-static",
                               std::to_string(static_smem), "--json"});
      ASSERT_EQ(result.code, 0) << result.err;
      const auto json = nlohmann::json::parse(result.out);
      const auto expected = oracle::occupancy(arch, threads, registers, static_smem, dynamic_smem);
      ASSERT_EQ(json["active_blocks_per_sm"].get<int>(), expected.blocks)
          << arch.name << " " << threads << " " << registers << " " << static_smem << " " << dynamic_smem;
      const int warps = expected.blocks * ((threads + 31) / 32);
      ASSERT_EQ(json["active_warps_per_sm"].get<int>(), warps);
      ASSERT_DOUBLE_EQ(json["occupancy"].get<double>(), static_cast<double>(warps) / (arch.threads_per_sm / 32));
      ++checked;
    }
  }
  EXPECT_EQ(checked, 2400);
}

TEST(CliOccupancy, TableMarksTheBestAndRecommendsTheSmallestOfThem) {
  auto result = run({"occupancy", "--arch", "sm_90", "--regs", "32"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(count_lines(result.out), 2 + 32 + 1);
  EXPECT_NE(result.out.find("recommended: 64 threads"), std::string::npos) << result.out;

  result = run({"occupancy", "--arch", "sm_90", "--regs", "32", "--json"});
  ASSERT_EQ(result.code, 0);
  const auto json = nlohmann::json::parse(result.out);
  ASSERT_EQ(json["table"].size(), 32u);
  EXPECT_EQ(json["table"][0]["threads_per_block"], 32);
  EXPECT_EQ(json["table"][31]["threads_per_block"], 1024);
  EXPECT_EQ(json["recommended_threads_per_block"], 64);
  int best = 0;
  for (const auto& row : json["table"]) best += row["best"].get<bool>();
  EXPECT_GT(best, 1);
}

TEST(CliOccupancy, BadInputIsOneLineAndExitTwo) {
  expect_bad_input({"occupancy", "--arch", "sm_61", "--threads", "128", "--regs", "32"});
  expect_bad_input({"occupancy", "--arch", "banana", "--threads", "128", "--regs", "32"});
  expect_bad_input({"occupancy", "--arch", "sm_90", "--threads", "0", "--regs", "32"});
  expect_bad_input({"occupancy", "--arch", "sm_90", "--threads", "1025", "--regs", "32"});
  expect_bad_input({"occupancy", "--arch", "sm_90", "--threads", "-32", "--regs", "32"});
  expect_bad_input({"occupancy", "--arch", "sm_90", "--threads", "128", "--regs", "-1"});
  expect_bad_input({"occupancy", "--arch", "sm_90", "--threads", "128", "--regs", "32", "--smem", "-1"});
  expect_bad_input({"occupancy", "--arch", "sm_90", "--threads", "128", "--regs", "32", "--smem-static", "-4"});
  expect_bad_input({"occupancy", "--arch", "sm_90", "--threads", "abc", "--regs", "32"});
  expect_bad_input({"occupancy", "--arch", "sm_90", "--threads", "128"});
  expect_bad_input({"occupancy", "--arch", "sm_90", "--device", "0", "--threads", "128", "--regs", "32"});
  expect_bad_input({"occupancy", "--device", "-1", "--threads", "128", "--regs", "32"});
  expect_bad_input({"occupancy", "--arch", "sm_90", "--threads", "99999999999999999999", "--regs", "32"});
  if (tunekit::cuda::device_count() == 0)
    expect_bad_input({"occupancy", "--device", "0", "--threads", "128", "--regs", "32"});
}

// Argument fuzzing: whatever the combination, the CLI answers 0 with output or
// 2 with exactly one line, and never crashes or throws.
TEST(CliOccupancy, RandomArgumentCombinationsNeverCrash) {
  const std::vector<std::string> flags{"--arch", "--device", "--threads", "--regs", "--smem", "--smem-static",
                                       "--barriers", "--json", "--help", "--bogus", "-x", "--"};
  const std::vector<std::string> values{"sm_90",  "sm_70", "sm_120", "sm_61",      "0",    "1",   "-1",
                                        "32",     "1024",  "1025",   "2147483648", "-0",   "1e3", "",
                                        "256",    "255",   "65536",  "65537",      "0x20", "nan", "99999999999999999999999",
                                        "131072", "17",    "sm_90a", "9.0",        "=",    "--json"};
  std::mt19937 random(11);
  for (int i = 0; i < 3000; ++i) {
    std::vector<std::string> arguments{"occupancy"};
    const int count = static_cast<int>(random() % 10);
    for (int j = 0; j < count; ++j) {
      arguments.push_back(flags[random() % flags.size()]);
      if (random() % 4 != 0) arguments.push_back(values[random() % values.size()]);
    }
    const auto result = run(arguments);
    std::string shown;
    for (const auto& argument : arguments) shown += argument + " ";
    ASSERT_TRUE(result.code == 0 || result.code == 2) << shown << " -> " << result.code << " " << result.err;
    if (result.code == 2) {
      ASSERT_EQ(count_lines(result.err), 1) << shown << "\n" << result.err;
    } else {
      ASSERT_FALSE(result.out.empty()) << shown;
    }
  }
}

#endif  // TUNEKIT_HAS_CUDA

TEST(CliExportHeader, HelpNamesItsOptionsAndAMissingStoreIsBadInput) {
  auto result = run({"--help"});
  EXPECT_NE(result.out.find("export-header"), std::string::npos);
  result = run({"export-header", "--help"});
  EXPECT_EQ(result.code, 0);
  for (const char* option : {"--store", "--kernel", "--output", "--namespace", "--force"})
    EXPECT_NE(result.out.find(option), std::string::npos) << option;
  const auto missing = std::filesystem::temp_directory_path() / "tunekit_cli_test_no_such_store.db";
  std::filesystem::remove(missing);
  expect_bad_input({"export-header", "--store", missing.string()});
  expect_bad_input({"export-header", "--store", missing.string(), "--kernel", "matmul", "-o", "tuned.hpp"});
  EXPECT_FALSE(std::filesystem::exists(missing));
  EXPECT_FALSE(std::filesystem::exists("tuned.hpp"));
}

// The CLI beside this test in the build tree, so a build carried to another
// machine (the GPU machine) still finds it; else the path CMake recorded.
std::string cli_path() {
  std::error_code error;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error) {
    const auto beside = self.parent_path() / ".." / "apps" / "tunekit" / "tunekit";
    if (std::filesystem::exists(beside, error)) return beside.string();
  }
  return TUNEKIT_CLI_PATH;
}

// The built binary, as a user runs it: exit codes cross the process boundary.
TEST(CliBinary, ExitCodesOfTheRealExecutable) {
  auto status_of = [](const std::string& arguments) {
    const std::string command = cli_path() + " " + arguments + " >/dev/null 2>&1";
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  EXPECT_EQ(status_of("--help"), 0);
  EXPECT_EQ(status_of("devices"), 0);
  EXPECT_EQ(status_of("devices --json"), 0);
  EXPECT_EQ(status_of("occupancy --arch sm_61 --threads 128 --regs 32"), 2);
  EXPECT_EQ(status_of("occupancy --arch sm_90 --threads 0 --regs 32"), 2);
#ifdef TUNEKIT_HAS_CUDA
  EXPECT_EQ(status_of("occupancy --arch sm_90 --threads 128 --regs 32 --json"), 0);
#endif
}
