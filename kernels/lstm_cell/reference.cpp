// lstm_cell's CPU reference: PyTorch LSTMCell's step, the gates summed in
// float64 (four interleaved partial sums per dot product), the update in
// float64, h' and c' rounded to float32 once. Batch rows are split over the
// host's threads; each thread walks W row by row over a group of 16 batch
// rows, so W streams from memory once per group.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "../common/reference.hpp"

namespace {

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

}  // namespace

extern "C" void lstm_cell_reference(void* const* args) {
  auto* h_out = static_cast<float*>(args[0]);
  auto* c_out = static_cast<float*>(args[1]);
  const auto* x = static_cast<const float*>(args[2]);
  const auto* h = static_cast<const float*>(args[3]);
  const auto* c = static_cast<const float*>(args[4]);
  const auto* w_ih = static_cast<const float*>(args[5]);
  const auto* w_hh = static_cast<const float*>(args[6]);
  const auto* b_ih = static_cast<const float*>(args[7]);
  const auto* b_hh = static_cast<const float*>(args[8]);
  const int batch = *static_cast<const int*>(args[9]);
  const int input = *static_cast<const int*>(args[10]);
  const int hidden = *static_cast<const int*>(args[11]);
  constexpr int group = 16;
  const int groups = (batch + group - 1) / group;

  const auto work = [&](int first_group, int end_group) {
    std::vector<double> gates(static_cast<std::size_t>(group) * 4 * hidden);
    for (int g = first_group; g < end_group; ++g) {
      const int row0 = g * group;
      const int rows = std::min(group, batch - row0);
      for (int n = 0; n < 4 * hidden; ++n) {
        const float* wi = w_ih + static_cast<std::size_t>(n) * input;
        const float* wh = w_hh + static_cast<std::size_t>(n) * hidden;
        const double bias = static_cast<double>(b_ih[n]) + b_hh[n];
        for (int r = 0; r < rows; ++r) {
          const std::size_t b = static_cast<std::size_t>(row0 + r);
          gates[static_cast<std::size_t>(r) * 4 * hidden + n] =
              reference::dot(x + b * input, wi, input) + reference::dot(h + b * hidden, wh, hidden) + bias;
        }
      }
      for (int r = 0; r < rows; ++r) {
        const double* gate = gates.data() + static_cast<std::size_t>(r) * 4 * hidden;
        const std::size_t b = static_cast<std::size_t>(row0 + r);
        for (int j = 0; j < hidden; ++j) {
          const double in_gate = sigmoid(gate[j]);
          const double forget_gate = sigmoid(gate[hidden + j]);
          const double cell_gate = std::tanh(gate[2 * hidden + j]);
          const double out_gate = sigmoid(gate[3 * hidden + j]);
          const double c_next = forget_gate * c[b * hidden + j] + in_gate * cell_gate;
          c_out[b * hidden + j] = static_cast<float>(c_next);
          h_out[b * hidden + j] = static_cast<float>(out_gate * std::tanh(c_next));
        }
      }
    }
  };
  reference::split_over_threads(groups, work);
}
