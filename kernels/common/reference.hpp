// reference.hpp: what the suite's float64 CPU references share. They are
// compiled by the host compiler at run time (the compile cache's key
// includes this file's text), so this header is plain C++ with no library.
#ifndef TUNEKIT_KERNELS_REFERENCE_HPP
#define TUNEKIT_KERNELS_REFERENCE_HPP

#include <algorithm>
#include <thread>
#include <vector>

namespace reference {

/// Calls work(begin, end) for contiguous equal shares of [0, count), one per
/// hardware thread, and returns when every share is done.
template <typename Index, typename Work>
void split_over_threads(Index count, Work work) {
  const Index threads = static_cast<Index>(std::max(1u, std::thread::hardware_concurrency()));
  const Index share = (count + threads - 1) / threads;
  std::vector<std::thread> workers;
  for (Index t = 0; t < threads; ++t) {
    const Index begin = t * share;
    const Index end = std::min(count, begin + share);
    if (begin < end) workers.emplace_back(work, begin, end);
  }
  for (auto& worker : workers) worker.join();
}

/// The float64 dot product of n float32 pairs, in four interleaved partial sums.
inline double dot(const float* a, const float* b, int n) {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  int k = 0;
  for (; k + 4 <= n; k += 4) {
    s0 += static_cast<double>(a[k]) * b[k];
    s1 += static_cast<double>(a[k + 1]) * b[k + 1];
    s2 += static_cast<double>(a[k + 2]) * b[k + 2];
    s3 += static_cast<double>(a[k + 3]) * b[k + 3];
  }
  for (; k < n; ++k) s0 += static_cast<double>(a[k]) * b[k];
  return (s0 + s1) + (s2 + s3);
}

}  // namespace reference

#endif
