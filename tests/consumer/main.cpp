// Uses the installed tunekit: the occupancy answer for a known Hopper launch.
#include <cstdio>

#include "tunekit/error.hpp"
#ifdef TUNEKIT_HAS_CUDA
#include "tunekit/cuda/architecture.hpp"
#include "tunekit/cuda/occupancy.hpp"
#endif

int main() {
#ifdef TUNEKIT_HAS_CUDA
  const auto result = tunekit::cuda::compute_occupancy(tunekit::cuda::architecture("sm_90"), {64, 0, 1}, {256, 0});
  std::printf("sm_90, 256 threads, 64 registers: %d blocks/SM, limited by %s\n",
              result.active_blocks_per_multiprocessor, tunekit::cuda::to_string(result.limiter).data());
  return result.active_blocks_per_multiprocessor == 4 ? 0 : 1;
#else
  try {
    throw tunekit::invalid_argument("linked");
  } catch (const tunekit::error&) {
    std::puts("tunekit linked (no CUDA layer)");
    return 0;
  }
#endif
}
