// Every workload of the suite on the GPU: the seed spec's baseline and one
// more configuration compiled by NVRTC, run on fresh random inputs (each
// generated buffer's seed moved by a random amount, printed so a failure can
// be replayed) and checked against the float64 reference.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "temp_dir.hpp"
#include "tunekit/cuda/backend.hpp"
#include "tunekit/profile.hpp"
#include "tunekit/runner.hpp"
#include "tunekit/search_space.hpp"
#include "tunekit/spec.hpp"

namespace {

TEST(WorkloadsGpu, EverySeedSpecVerifiesOnFreshInputs) {
  if (tunekit::cuda::count_devices_without_context() == 0) GTEST_SKIP() << "no CUDA device";
  tunekit::test::temp_dir dir;
  const auto suite = tunekit::profile::load_suite(TUNEKIT_SOURCE_DIR "/kernels/suite.toml");
  std::random_device entropy;
  std::size_t checked = 0;
  for (const auto& entry : suite) {
    if (entry.size != "seed") continue;
    auto spec = tunekit::load_spec(entry.spec);
    const std::uint64_t shift = (static_cast<std::uint64_t>(entropy()) << 20) + 1;
    for (auto& argument : spec.arguments) argument.init.seed += shift;
    const auto space = tunekit::search_space::enumerate(tunekit::space_of(spec));
    auto backend = tunekit::cuda::make_backend(spec, space, dir.path() / "cache", {0});
    const auto baseline = tunekit::baseline_index(spec, space);
    for (const auto index : {baseline, (baseline + space.size() / 2) % space.size()}) {
      const auto outcome = backend->evaluate(index);
      // A configuration may exceed the GPU's resources; a wrong answer never passes.
      EXPECT_TRUE(outcome.status == tunekit::evaluation_status::ok ||
                  (index != baseline && outcome.status == tunekit::evaluation_status::resources))
          << entry.spec.filename() << " configuration " << index << " seeds moved by " << shift << ": "
          << to_string(outcome.status) << ": " << outcome.message;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 9u);
}

// conv2d's sliding-window copy paths (cp.async with the ring of halo rows,
// __ldg, and the bulk copies at 2 to 4 stages, stacked or interleaved tiles)
// at K = 3, 5, 7 on images whose edges cut tiles: a width that is not a
// multiple of the tile (the right edge copied short), one that is not a
// multiple of 4 (the word-by-word copy), a height that leaves a partial last
// tile, and an image narrower than a tile; at K = 3 also the large image.
TEST(WorkloadsGpu, Conv2dEveryCopyPathVerifiesWhereTheImageCutsTiles) {
  if (tunekit::cuda::count_devices_without_context() == 0) GTEST_SKIP() << "no CUDA device";
  tunekit::test::temp_dir dir;
  using assignments = std::vector<std::pair<std::string, std::string>>;
  const std::vector<assignments> configurations = {
      {{"sliding_window", "1"}, {"tile_size_x", "4"}, {"tile_size_y", "4"}, {"block_size_x", "64"},
       {"block_size_y", "2"}, {"cp_async", "1"}, {"halo_reuse", "1"}, {"tiles_per_block", "8"}},
      {{"sliding_window", "1"}, {"tile_size_x", "4"}, {"tile_size_y", "4"}, {"block_size_x", "32"},
       {"block_size_y", "4"}, {"read_only", "1"}},
      {{"sliding_window", "1"}, {"tile_size_x", "4"}, {"tile_size_y", "4"}, {"block_size_x", "32"},
       {"block_size_y", "4"}, {"max_registers", "40"}},
      {{"sliding_window", "1"}, {"tile_size_x", "4"}, {"tile_size_y", "8"}, {"block_size_x", "32"},
       {"block_size_y", "2"}, {"read_only", "1"}, {"max_registers", "64"}},
      // Tiles through registers, the next one's reads in flight during this one's FMAs.
      {{"sliding_window", "1"}, {"tile_size_x", "4"}, {"tile_size_y", "4"}, {"block_size_x", "32"},
       {"block_size_y", "4"}, {"tiles_per_block", "4"}},
      {{"sliding_window", "1"}, {"tile_size_x", "8"}, {"tile_size_y", "2"}, {"block_size_x", "16"},
       {"block_size_y", "4"}, {"tiles_per_block", "2"}, {"max_registers", "128"}},
      // Whole tiles by cp.async, piece by piece, the next one's copies in flight during this one's FMAs.
      {{"sliding_window", "1"}, {"tile_size_x", "4"}, {"tile_size_y", "8"}, {"block_size_x", "32"},
       {"block_size_y", "2"}, {"cp_async", "1"}, {"tiles_per_block", "4"}},
      {{"sliding_window", "1"}, {"tile_size_x", "8"}, {"tile_size_y", "4"}, {"block_size_x", "16"},
       {"block_size_y", "4"}, {"cp_async", "1"}, {"tiles_per_block", "2"}, {"max_registers", "128"}},
      {{"sliding_window", "1"}, {"bulk_copy", "1"}, {"tile_size_x", "4"}, {"tile_size_y", "2"}, {"block_size_x", "32"},
       {"block_size_y", "4"}},
      {{"sliding_window", "1"}, {"bulk_copy", "1"}, {"stages", "2"}, {"tiles_per_block", "4"}, {"tile_size_x", "4"},
       {"tile_size_y", "4"}, {"block_size_x", "64"}, {"block_size_y", "2"}},
      {{"sliding_window", "1"}, {"bulk_copy", "1"}, {"stages", "3"}, {"tiles_per_block", "8"}, {"tile_size_x", "8"},
       {"tile_size_y", "2"}, {"block_size_x", "32"}, {"block_size_y", "4"}},
      {{"sliding_window", "1"}, {"bulk_copy", "1"}, {"interleave", "1"}, {"stages", "3"}, {"tiles_per_block", "4"},
       {"tile_size_x", "4"}, {"tile_size_y", "4"}, {"block_size_x", "64"}, {"block_size_y", "1"}},
      {{"sliding_window", "1"}, {"bulk_copy", "1"}, {"stages", "4"}, {"tiles_per_block", "16"}, {"tile_size_x", "16"},
       {"tile_size_y", "1"}, {"block_size_x", "16"}, {"block_size_y", "8"}},
      {{"sliding_window", "1"}, {"bulk_copy", "1"}, {"interleave", "1"}, {"stages", "3"}, {"tiles_per_block", "8"},
       {"tile_size_x", "16"}, {"tile_size_y", "1"}, {"block_size_x", "16"}, {"block_size_y", "16"}},
  };
  std::random_device entropy;
  for (const int k : {3, 5, 7}) {
    std::vector<std::pair<int, int>> sizes = {{1000, 37}, {998, 35}, {64, 9}};
    // The full image, where a slot given back before its last reads completed
    // once showed (K = 3, 16 outputs a thread): many blocks, many refills.
    if (k == 3) sizes.emplace_back(4096, 4096);
    for (const auto& [width, height] : sizes) {
      auto spec = tunekit::load_spec(TUNEKIT_SOURCE_DIR "/kernels/conv2d/conv2d.toml");
      spec.compile_options = {"-DK=" + std::to_string(k)};
      for (auto& [name, value] : spec.problem) {
        if (name == "k") value = k;
        if (name == "width") value = width;
        if (name == "height") value = height;
      }
      const std::uint64_t shift = (static_cast<std::uint64_t>(entropy()) << 20) + 1;
      for (auto& argument : spec.arguments) argument.init.seed += shift;
      const auto space = tunekit::search_space::enumerate(tunekit::space_of(spec));
      auto backend = tunekit::cuda::make_backend(spec, space, dir.path() / "cache", {0});
      for (const auto& config : configurations) {
        const auto index = tunekit::configuration_index(spec, space, config);
        const auto outcome = backend->evaluate(index);
        EXPECT_EQ(outcome.status, tunekit::evaluation_status::ok)
            << "K=" << k << " " << width << "x" << height << " " << space.describe(index) << " seeds moved by " << shift
            << ": " << to_string(outcome.status) << ": " << outcome.message;
      }
    }
  }
}

}  // namespace
