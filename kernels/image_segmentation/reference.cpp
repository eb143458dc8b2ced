// image_segmentation's CPU reference: 8-connected components of the
// foreground {v > threshold} of an H x W uint8 image. labels[y W + x] is 0 on
// the background and 1 + the smallest linear index y W + x of the pixel's
// component elsewhere; count[0] is the number of components. Exact integers:
// the kernel must match every label.
//
// Union-find over the labels array itself, each entry the parent's index + 1,
// a parent always a smaller index than its child (the larger root is linked
// under the smaller, path halving moves a node to its grandparent), so every
// root is its tree's minimum. Rows are split into strips labelled on the
// host's threads (a strip touches only its own pixels); the rows where strips
// meet are then joined on one thread; last, each strip's thread sets its
// pixels to root + 1 and counts the roots. That entry is itself a valid
// parent, so a walk from another strip may read the old or the new value
// (relaxed atomic accesses). The scratch buffer is left as it came (zeros),
// as the kernel leaves it.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace {

struct forest {
  std::int32_t* parent;  // index + 1; 0 on the background

  std::int64_t find(std::int64_t x) const {
    for (;;) {
      const std::int64_t p = parent[x] - 1;
      if (p == x) return x;
      const std::int64_t g = parent[p] - 1;
      parent[x] = static_cast<std::int32_t>(g + 1);
      x = g;
    }
  }
  void unite(std::int64_t a, std::int64_t b) const {
    a = find(a);
    b = find(b);
    if (a == b) return;
    if (a < b) parent[b] = static_cast<std::int32_t>(a + 1);
    else parent[a] = static_cast<std::int32_t>(b + 1);
  }
};

}  // namespace

extern "C" void image_segmentation_reference(void* const* args) {
  auto* labels = static_cast<std::int32_t*>(args[0]);
  auto* count = static_cast<std::int32_t*>(args[1]);
  const auto* image = static_cast<const std::uint8_t*>(args[2]);
  // args[3]: the kernel's scratch, untouched.
  const std::int64_t width = *static_cast<const int*>(args[4]);
  const std::int64_t height = *static_cast<const int*>(args[5]);
  const int threshold = *static_cast<const int*>(args[6]);
  const forest uf{labels};
  const auto fg = [&](std::int64_t i) { return image[i] > threshold; };

  // Joins (x, y) with its foreground neighbours in row y - 1 (all three).
  const auto join_up = [&](std::int64_t x, std::int64_t y) {
    const std::int64_t i = y * width + x;
    for (std::int64_t dx = -1; dx <= 1; ++dx) {
      const std::int64_t nx = x + dx;
      if (nx >= 0 && nx < width && fg(i - width + dx)) uf.unite(i, i - width + dx);
    }
  };
  const auto strip = [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t y = begin; y < end; ++y)
      for (std::int64_t x = 0; x < width; ++x) {
        const std::int64_t i = y * width + x;
        if (!fg(i)) {
          labels[i] = 0;
          continue;
        }
        labels[i] = static_cast<std::int32_t>(i + 1);
        if (x > 0 && fg(i - 1)) uf.unite(i, i - 1);
        if (y > begin) join_up(x, y);
      }
  };
  const int threads = static_cast<int>(std::max<std::int64_t>(
      1, std::min<std::int64_t>(height, std::max(1u, std::thread::hardware_concurrency()))));
  const std::int64_t share = (height + threads - 1) / threads;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    const std::int64_t begin = t * share;
    const std::int64_t end = std::min(height, begin + share);
    if (begin < end) workers.emplace_back(strip, begin, end);
  }
  for (auto& worker : workers) worker.join();
  // The strips' first rows against the rows above them.
  for (std::int64_t begin = share; begin < height; begin += share)
    for (std::int64_t x = 0; x < width; ++x)
      if (fg(begin * width + x)) join_up(x, begin);
  std::vector<std::int64_t> roots(workers.size(), 0);
  const auto flatten = [&](std::size_t strip_index, std::int64_t begin, std::int64_t end) {
    const auto entry = [&](std::int64_t i) { return std::atomic_ref<std::int32_t>(labels[i]); };
    std::int64_t found = 0;
    for (std::int64_t i = begin * width; i < end * width; ++i) {
      std::int64_t x = entry(i).load(std::memory_order_relaxed) - 1;
      if (x < 0) continue;
      if (x == i) {
        ++found;
        continue;
      }
      for (std::int64_t p = entry(x).load(std::memory_order_relaxed) - 1; p != x;
           p = entry(x).load(std::memory_order_relaxed) - 1)
        x = p;
      entry(i).store(static_cast<std::int32_t>(x + 1), std::memory_order_relaxed);
    }
    roots[strip_index] = found;
  };
  workers.clear();
  for (int t = 0; t < threads; ++t) {
    const std::int64_t begin = t * share;
    const std::int64_t end = std::min(height, begin + share);
    if (begin < end) workers.emplace_back(flatten, workers.size(), begin, end);
  }
  for (auto& worker : workers) worker.join();
  std::int64_t total = 0;
  for (const auto each : roots) total += each;
  count[0] = static_cast<std::int32_t>(total);
}
