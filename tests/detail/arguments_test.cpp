// A spec's arguments made real: the random step rounds to its multiples, and
// blobs are smooth value noise over the rows of the width given.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "detail/arguments.hpp"
#include "temp_dir.hpp"
#include "tunekit/search_space.hpp"
#include "tunekit/spec.hpp"

namespace {

tunekit::kernel_spec spec_with(const tunekit::test::temp_dir& dir, const std::string& arguments) {
  std::ofstream(dir.path() / "k.cpp") << "extern \"C\" void k(void* const*) {}\n";
  const auto path = dir.path() / "k.toml";
  std::ofstream(path) << "[kernel]\nname = \"k\"\nsource = \"k.cpp\"\n[parameters]\nA = [1]\n[problem]\nw = 300\nh = 200\n"
                      << arguments
                      << "[[arguments]]\nname = \"out\"\ntype = \"float32\"\ncount = \"1\"\ndirection = \"out\"\n"
                         "[reference]\nfunction = \"k\"\n";
  return tunekit::load_spec(path);
}

TEST(Arguments, RandomWithAStepGivesOnlyItsMultiplesSpreadOverTheRange) {
  tunekit::test::temp_dir dir;
  const auto spec = spec_with(dir, "[[arguments]]\nname = \"a\"\ntype = \"float32\"\ncount = \"w * h\"\n"
                                   "init = { random = { seed = 5, low = -1.0, high = 1.0, step = 0.0078125 } }\n");
  const auto space = tunekit::search_space::enumerate(tunekit::space_of(spec));
  const tunekit::detail::argument_set arguments(spec, space, 0);
  const auto* a = reinterpret_cast<const float*>(arguments.storage[0].data());
  std::size_t distinct_low = 0;
  for (std::size_t i = 0; i < arguments.counts[0]; ++i) {
    const float scaled = a[i] * 128.0f;
    ASSERT_EQ(scaled, std::nearbyint(scaled)) << "element " << i << " is " << a[i];
    ASSERT_LE(std::fabs(a[i]), 1.0f);
    if (a[i] < -0.9f) ++distinct_low;
  }
  EXPECT_GT(distinct_low, arguments.counts[0] / 30);  // about 5% of uniform values lie below -0.9
}

TEST(Arguments, BlobsAreSmoothNoiseOverTheWholeByteRange) {
  tunekit::test::temp_dir dir;
  const auto spec = spec_with(dir, "[[arguments]]\nname = \"image\"\ntype = \"uint8\"\ncount = \"w * h\"\n"
                                   "init = { blobs = { seed = 9, scale = 16.0, width = \"w\" } }\n");
  const auto space = tunekit::search_space::enumerate(tunekit::space_of(spec));
  const tunekit::detail::argument_set arguments(spec, space, 0);
  const auto* image = arguments.storage[0].data();
  const std::size_t width = 300;
  const std::size_t height = 200;
  int lowest = 255;
  int highest = 0;
  long long step_sum = 0;
  long long jumps = 0;
  for (std::size_t y = 0; y < height; ++y)
    for (std::size_t x = 0; x < width; ++x) {
      const int v = image[y * width + x];
      lowest = std::min(lowest, v);
      highest = std::max(highest, v);
      if (x + 1 < width) step_sum += std::abs(v - image[y * width + x + 1]);
      if (y + 1 < height) step_sum += std::abs(v - image[(y + 1) * width + x]);
      if (x + 1 < width && std::abs(v - image[y * width + x + 1]) > 40) ++jumps;
    }
  EXPECT_LT(lowest, 70);
  EXPECT_GT(highest, 185);
  // Smooth: neighbours differ by a few levels on average (uniform noise: 85), never by a cliff.
  EXPECT_LT(static_cast<double>(step_sum) / (2.0 * width * height), 8.0);
  EXPECT_EQ(jumps, 0);
  // Another seed is another image.
  auto other = spec;
  other.arguments[0].init.seed = 10;
  const tunekit::detail::argument_set again(other, space, 0);
  EXPECT_NE(again.storage[0], arguments.storage[0]);
}

}  // namespace
