// The profiler's judgement: the shipped suite and budget table read, each
// malformed manifest is one spec_error with its line, and every flag and
// recommendation fires on the measurements that call for it and only then.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "temp_dir.hpp"
#include "tunekit/profile.hpp"
#include "tunekit/spec.hpp"

namespace {

namespace tp = tunekit::profile;

bool has(const std::vector<std::string>& items, const std::string& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

bool mentions(const std::vector<std::string>& sentences, const std::string& words) {
  return std::any_of(sentences.begin(), sentences.end(),
                     [&](const std::string& each) { return each.find(words) != std::string::npos; });
}

// A quiet, well-placed kernel: nothing to flag.
tp::observation quiet() {
  tp::observation o;
  o.name = "k";
  o.statistics.count = 100;
  o.statistics.median = 100.0;
  o.statistics.mean = 101.0;
  o.statistics.stddev = 1.0;
  o.statistics.cv = 0.01;
  o.statistics.min = 99.0;
  o.statistics.max = 110.0;
  o.statistics.p99 = 108.0;
  o.budget_us = 150.0;
  o.launch_overhead_us = 4.0;
  return o;
}

TEST(ProfileSuite, TheShippedSuiteNamesNineWorkloadsWhoseSpecsLoad) {
  const std::filesystem::path kernels = TUNEKIT_SOURCE_DIR "/kernels";
  const auto suite = tp::load_suite(kernels / "suite.toml");
  std::set<std::string> workloads;
  std::size_t seeds = 0;
  for (const auto& entry : suite) {
    workloads.insert(entry.workload);
    seeds += entry.size == "seed" ? 1 : 0;
    const auto spec = tunekit::load_spec(entry.spec);
    EXPECT_TRUE(spec.model.has_value()) << entry.spec << " has no [model]";
  }
  EXPECT_EQ(workloads.size(), 9u);
  EXPECT_EQ(seeds, 9u);
  const auto budgets = tp::load_budgets(kernels / "budgets.toml");
  for (const auto& [name, value] : budgets) {
    EXPECT_TRUE(std::any_of(suite.begin(), suite.end(), [&](const auto& e) { return e.spec.stem() == name; }))
        << "budget for '" << name << "', which the suite does not hold";
    EXPECT_GT(value, 0.0);
  }
  (void)tunekit::load_spec(kernels / "launch_overhead" / "launch_overhead.toml");
}

TEST(ProfileSuite, EachMalformedManifestIsOneErrorNamingTheLine) {
  tunekit::test::temp_dir dir;
  std::ofstream(dir.path() / "a.toml") << "x";
  const auto error_of = [&](const std::string& text) -> std::string {
    std::ofstream(dir.path() / "suite.toml") << text;
    try {
      (void)tp::load_suite(dir.path() / "suite.toml");
    } catch (const tunekit::spec_error& problem) {
      return problem.what();
    }
    return "(no error)";
  };
  EXPECT_NE(error_of("").find("no [[workload]]"), std::string::npos);
  EXPECT_NE(error_of("[[workload]]\nname = \"w\"\nseed = [\"a.toml\"]\n").find("needs large"), std::string::npos);
  EXPECT_NE(error_of("[[workload]]\nname = \"w\"\nseed = [\"a.toml\"]\nlarge = [\"b.toml\"]\n").find(":4: spec 'b.toml' not found"),
            std::string::npos);
  EXPECT_NE(error_of("[[workload]]\nname = \"w\"\nsize = 1\n").find(":3: unknown key 'size'"), std::string::npos);
  EXPECT_NE(error_of("[[workload]\n").find("not valid TOML"), std::string::npos);
  EXPECT_NE(error_of("[[workload]]\nseed = []\nlarge = []\n").find("needs a name"), std::string::npos);
  std::ofstream(dir.path() / "budgets.toml") << "[budget_us]\nk = -3\n";
  EXPECT_THROW((void)tp::load_budgets(dir.path() / "budgets.toml"), tunekit::spec_error);
  std::ofstream(dir.path() / "budgets.toml") << "[budgets]\nk = 3\n";
  EXPECT_THROW((void)tp::load_budgets(dir.path() / "budgets.toml"), tunekit::spec_error);
}

TEST(ProfileAssess, AQuietKernelWithinBudgetHasNoFlag) {
  const auto verdict = tp::assess(quiet());
  EXPECT_TRUE(verdict.flags.empty());
}

TEST(ProfileAssess, EachFlagFiresOnItsMeasurement) {
  auto slow = quiet();
  slow.statistics.median = 151.0;
  EXPECT_EQ(tp::assess(slow).flags, std::vector<std::string>{"slow"});

  auto noisy = quiet();
  noisy.statistics.cv = 0.08;
  EXPECT_EQ(tp::assess(noisy).flags, std::vector<std::string>{"high_variance"});

  auto spiky = quiet();
  spiky.statistics.max = 2.1 * spiky.statistics.mean;
  const auto spikes = tp::assess(spiky);
  EXPECT_EQ(spikes.flags, std::vector<std::string>{"outliers"});
  EXPECT_TRUE(mentions(spikes.recommendations, "p99"));

  auto tiny = quiet();
  tiny.statistics.median = 10.0;
  const auto launch = tp::assess(tiny);
  EXPECT_EQ(launch.flags, std::vector<std::string>{"launch_bound"});
  EXPECT_TRUE(mentions(launch.recommendations, "CUDA graph"));
  tiny.statistics.median = 12.5;  // beyond 3 x 4 us
  EXPECT_FALSE(has(tp::assess(tiny).flags, "launch_bound"));

  auto worse = quiet();
  worse.regression = "SLOWER";
  worse.regression_change = 0.3;
  const auto regressed = tp::assess(worse);
  EXPECT_EQ(regressed.flags, std::vector<std::string>{"regressed"});
  EXPECT_TRUE(mentions(regressed.recommendations, "30%"));
  worse.regression = "UNSURE";
  EXPECT_TRUE(tp::assess(worse).flags.empty());
}

TEST(ProfileAssess, RecommendationsFollowTheCeilingsTheOccupancyAndThePeer) {
  auto at_limit = quiet();
  at_limit.rate = tunekit::measure::throughput{.gbps = 4200.0, .tflops = 0.3, .fraction_of_copy = 0.93, .fraction_of_flops = 0.01};
  EXPECT_TRUE(mentions(tp::assess(at_limit).recommendations, "93% of the measured copy bandwidth: at the limit"));

  auto compute = quiet();
  compute.rate = tunekit::measure::throughput{.gbps = 50.0, .tflops = 45.0, .fraction_of_copy = 0.01, .fraction_of_flops = 0.9};
  EXPECT_TRUE(mentions(tp::assess(compute).recommendations, "Compute-bound at 90%"));

  auto near = quiet();
  near.rate = tunekit::measure::throughput{.gbps = 60.0, .tflops = 36.4, .fraction_of_copy = 0.014, .fraction_of_flops = 0.71};
  const auto between = tp::assess(near);
  EXPECT_TRUE(mentions(between.recommendations, "Near a ceiling: 1.4% of copy bandwidth, 71% of the matrix-product rate"));
  EXPECT_FALSE(mentions(between.recommendations, "Room left"));
  EXPECT_FALSE(mentions(between.recommendations, "at the limit"));

  auto room = quiet();
  room.rate = tunekit::measure::throughput{.gbps = 800.0, .tflops = 1.0, .fraction_of_copy = 0.2, .fraction_of_flops = 0.02};
  room.occupancy = 0.125;
  room.occupancy_limiter = "registers";
  room.registers = 168;
  room.local_bytes = 48;
  room.peer_us = 80.0;
  const auto verdict = tp::assess(room);
  EXPECT_TRUE(mentions(verdict.recommendations, "Room left: 20% of copy bandwidth"));
  EXPECT_TRUE(mentions(verdict.recommendations, "limited by registers (168 per thread)"));
  EXPECT_TRUE(mentions(verdict.recommendations, "Spills 48 bytes"));
  EXPECT_TRUE(mentions(verdict.recommendations, "The peer is faster"));
  EXPECT_TRUE(verdict.flags.empty());

  // A launch-bound kernel's ceilings and occupancy say nothing: only the launch advice.
  auto tiny = room;
  tiny.statistics.median = 5.0;
  const auto launch = tp::assess(tiny);
  EXPECT_FALSE(mentions(launch.recommendations, "Room left"));
  EXPECT_FALSE(mentions(launch.recommendations, "Occupancy"));
}

TEST(ProfileReport, MarkdownHasARowPerKernelAndItsRecommendations) {
  tp::report_row row{.workload = "vector_add", .size = "large", .observed = quiet(), .verdict = {}, .config = "block_size_x=256",
                     .tuned_now = true, .peer = "torch.add"};
  row.observed.name = "vector_add";
  row.observed.peer_us = 120.0;
  row.observed.rate = tunekit::measure::throughput{.gbps = 4000.0, .tflops = 0.1, .fraction_of_copy = 0.9, .fraction_of_flops = {}};
  row.verdict = tp::assess(row.observed);
  std::ostringstream text;
  tp::write_markdown(text, "NVIDIA H200", {row});
  const auto markdown = text.str();
  EXPECT_NE(markdown.find("# tunekit profile on NVIDIA H200"), std::string::npos);
  EXPECT_NE(markdown.find("| vector_add | large | 100 |"), std::string::npos) << markdown;
  EXPECT_NE(markdown.find("4000 GB/s"), std::string::npos) << markdown;
  EXPECT_NE(markdown.find("90% copy"), std::string::npos) << markdown;
  EXPECT_NE(markdown.find("1.2x"), std::string::npos) << markdown;
  EXPECT_NE(markdown.find("## vector_add (tuned in this run)"), std::string::npos);
  EXPECT_NE(markdown.find("at the limit"), std::string::npos);
}

}  // namespace
