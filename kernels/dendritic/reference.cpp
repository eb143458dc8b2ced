// dendritic's CPU reference: the drives u summed in float64 (four interleaved
// partial sums per dot product), the nonlinearities, the sum over the
// dendrites and the tanh in float64, Y rounded to float32 once. Batch rows
// are split over the host's threads; each thread walks W neuron by neuron
// over a group of 16 batch rows, so W streams from memory once per group.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <thread>
#include <vector>

namespace {

double dot(const float* a, const float* b, int n) {
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

double activation(int type, double u) {
  switch (type) {
    case 0: return 1.0 / (1.0 + std::exp(-u));                  // sigmoid
    case 1: return u / (1.0 + std::exp(-0.062 * u) / 3.57);     // nmda
    case 2: return u < 1.0 ? u : 1.0 + 2.0 * (u - 1.0);         // active_bp
    default: return u / (1.0 + std::exp(-u));                   // multiplicative: u sigmoid(u)
  }
}

}  // namespace

extern "C" void dendritic_reference(void* const* args) {
  auto* y = static_cast<float*>(args[0]);
  const auto* x = static_cast<const float*>(args[1]);
  const auto* w = static_cast<const float*>(args[2]);
  const auto* bias = static_cast<const float*>(args[3]);
  const auto* type = static_cast<const int*>(args[4]);
  const int batch = *static_cast<const int*>(args[5]);
  const int neurons = *static_cast<const int*>(args[6]);
  const int dendrites = *static_cast<const int*>(args[7]);
  const int inputs = *static_cast<const int*>(args[8]);
  constexpr int group = 16;
  const int groups = (batch + group - 1) / group;

  const auto work = [&](int first_group, int end_group) {
    std::vector<double> sums(group);
    for (int g = first_group; g < end_group; ++g) {
      const int row0 = g * group;
      const int rows = std::min(group, batch - row0);
      for (int n = 0; n < neurons; ++n) {
        std::fill(sums.begin(), sums.end(), 0.0);
        for (int d = 0; d < dendrites; ++d) {
          const std::size_t unit = static_cast<std::size_t>(n) * dendrites + d;
          const float* weights = w + unit * inputs;
          for (int r = 0; r < rows; ++r) {
            const double u = dot(x + static_cast<std::size_t>(row0 + r) * inputs, weights, inputs) + bias[unit];
            sums[r] += activation(type[unit], u);
          }
        }
        for (int r = 0; r < rows; ++r)
          y[static_cast<std::size_t>(row0 + r) * neurons + n] = static_cast<float>(std::tanh(sums[r]));
      }
    }
  };
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> workers;
  const int share = (groups + threads - 1) / threads;
  for (int t = 0; t < threads; ++t) {
    const int begin = t * share;
    const int end = std::min(groups, begin + share);
    if (begin < end) workers.emplace_back(work, begin, end);
  }
  for (auto& worker : workers) worker.join();
}
