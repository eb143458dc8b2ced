// A tiled, threaded C = A * B (row-major, n x n) for the host backend.
// Tunable: TILE (block edge), THREADS (worker threads), ORDER (0: i-j-k
// inner loops, a dot product per element; 1: i-k-j, rows streamed, which the
// compiler vectorises). Arguments: a, b, c, n.
#include <algorithm>
#include <thread>
#include <vector>

#ifndef TILE
#define TILE 32
#endif
#ifndef THREADS
#define THREADS 1
#endif
#ifndef ORDER
#define ORDER 1
#endif

namespace {

void rows(const float* a, const float* b, float* c, int n, int first, int last) {
  for (int i0 = first; i0 < last; i0 += TILE)
    for (int k0 = 0; k0 < n; k0 += TILE)
      for (int j0 = 0; j0 < n; j0 += TILE) {
        const int i1 = std::min(i0 + TILE, last), k1 = std::min(k0 + TILE, n), j1 = std::min(j0 + TILE, n);
#if ORDER == 0
        for (int i = i0; i < i1; ++i)
          for (int j = j0; j < j1; ++j) {
            float sum = c[i * n + j];
            for (int k = k0; k < k1; ++k) sum += a[i * n + k] * b[k * n + j];
            c[i * n + j] = sum;
          }
#else
        for (int i = i0; i < i1; ++i)
          for (int k = k0; k < k1; ++k) {
            const float scale = a[i * n + k];
            for (int j = j0; j < j1; ++j) c[i * n + j] += scale * b[k * n + j];
          }
#endif
      }
}

}  // namespace

extern "C" void matmul(void* const* args) {
  const auto* a = static_cast<const float*>(args[0]);
  const auto* b = static_cast<const float*>(args[1]);
  auto* c = static_cast<float*>(args[2]);
  const int n = *static_cast<const int*>(args[3]);
  std::fill(c, c + static_cast<long>(n) * n, 0.0f);
  const int per_thread = (n + THREADS - 1) / THREADS;
  std::vector<std::thread> workers;
  for (int t = 1; t < THREADS; ++t) {
    const int first = t * per_thread, last = std::min(n, first + per_thread);
    if (first < last) workers.emplace_back(rows, a, b, c, n, first, last);
  }
  rows(a, b, c, n, 0, std::min(n, per_thread));
  for (auto& worker : workers) worker.join();
}

// The reference: float64 accumulation, no tiling.
extern "C" void matmul_reference(void* const* args) {
  const auto* a = static_cast<const float*>(args[0]);
  const auto* b = static_cast<const float*>(args[1]);
  auto* c = static_cast<float*>(args[2]);
  const int n = *static_cast<const int*>(args[3]);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      double sum = 0.0;
      for (int k = 0; k < n; ++k) sum += static_cast<double>(a[i * n + k]) * b[k * n + j];
      c[i * n + j] = static_cast<float>(sum);
    }
}
