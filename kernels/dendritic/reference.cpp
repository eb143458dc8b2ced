// dendritic's CPU reference: the drives u summed in float64 (four interleaved
// partial sums per dot product), the nonlinearities, the sum over the
// dendrites and the tanh in float64, Y rounded to float32 once. Batch rows
// are split over the host's threads; each thread walks W neuron by neuron
// over a group of 16 batch rows, so W streams from memory once per group.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "../common/reference.hpp"

namespace {

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
            const double u = reference::dot(x + static_cast<std::size_t>(row0 + r) * inputs, weights, inputs) + bias[unit];
            sums[r] += activation(type[unit], u);
          }
        }
        for (int r = 0; r < rows; ++r)
          y[static_cast<std::size_t>(row0 + r) * neurons + n] = static_cast<float>(std::tanh(sums[r]));
      }
    }
  };
  reference::split_over_threads(groups, work);
}
