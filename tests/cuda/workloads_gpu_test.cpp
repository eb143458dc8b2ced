// Every workload of the suite on the GPU: the seed spec's baseline and one
// more configuration compiled by NVRTC, run on fresh random inputs (each
// generated buffer's seed moved by a random amount, printed so a failure can
// be replayed) and checked against the float64 reference.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>

#include "temp_dir.hpp"
#include "tunekit/cuda/backend.hpp"
#include "tunekit/profile.hpp"
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

}  // namespace
