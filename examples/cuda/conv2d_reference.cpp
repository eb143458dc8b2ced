// The reference for conv2d.cu on the host: the same arguments (output, input,
// filter, width, height), accumulated in float64. Rows are shared among the
// host's threads; each row accumulates filter tap by filter tap over a
// contiguous run of the input, which the compiler vectorises.
#include <algorithm>
#include <thread>
#include <vector>

#ifndef FILTER_WIDTH
#define FILTER_WIDTH 17
#endif
#ifndef FILTER_HEIGHT
#define FILTER_HEIGHT 17
#endif

namespace {

void rows(float* output, const float* input, const float* filter, int width, int first, int last) {
  const long input_width = width + FILTER_WIDTH - 1;
  std::vector<double> sum(static_cast<std::size_t>(width));
  for (int y = first; y < last; ++y) {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (int fy = 0; fy < FILTER_HEIGHT; ++fy) {
      const float* line = input + (y + fy) * input_width;
      for (int fx = 0; fx < FILTER_WIDTH; ++fx) {
        const double weight = filter[fy * FILTER_WIDTH + fx];
        const float* run = line + fx;
        for (int x = 0; x < width; ++x) sum[static_cast<std::size_t>(x)] += weight * static_cast<double>(run[x]);
      }
    }
    float* out = output + static_cast<long>(y) * width;
    for (int x = 0; x < width; ++x) out[x] = static_cast<float>(sum[static_cast<std::size_t>(x)]);
  }
}

}  // namespace

extern "C" void conv2d_reference(void* const* args) {
  auto* output = static_cast<float*>(args[0]);
  const auto* input = static_cast<const float*>(args[1]);
  const auto* filter = static_cast<const float*>(args[2]);
  const int width = *static_cast<const int*>(args[3]);
  const int height = *static_cast<const int*>(args[4]);
  const int workers = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1U, 64U));
  const int per_worker = (height + workers - 1) / workers;
  std::vector<std::thread> threads;
  for (int w = 1; w < workers; ++w) {
    const int first = w * per_worker, last = std::min(height, first + per_worker);
    if (first < last) threads.emplace_back(rows, output, input, filter, width, first, last);
  }
  rows(output, input, filter, width, 0, std::min(height, per_worker));
  for (auto& thread : threads) thread.join();
}
