// conv2d's CPU reference: zero-padded k x k cross-correlation, float64 sums,
// rows split over the host's threads. k is the kernel's last argument.
#include "../common/reference.hpp"

extern "C" void conv2d_reference(void* const* args) {
  auto* out = static_cast<float*>(args[0]);
  const auto* in = static_cast<const float*>(args[1]);
  const auto* filter = static_cast<const float*>(args[2]);
  const int width = *static_cast<const int*>(args[3]);
  const int height = *static_cast<const int*>(args[4]);
  const int K = *static_cast<const int*>(args[5]);
  const int radius = (K - 1) / 2;
  const auto rows = [&](int begin, int end) {
    for (int y = begin; y < end; ++y)
      for (int x = 0; x < width; ++x) {
        double sum = 0.0;
        for (int fy = 0; fy < K; ++fy) {
          const int sy = y + fy - radius;
          if (sy < 0 || sy >= height) continue;
          for (int fx = 0; fx < K; ++fx) {
            const int sx = x + fx - radius;
            if (sx >= 0 && sx < width)
              sum += static_cast<double>(in[static_cast<long long>(sy) * width + sx]) * filter[fy * K + fx];
          }
        }
        out[static_cast<long long>(y) * width + x] = static_cast<float>(sum);
      }
  };
  reference::split_over_threads(height, rows);
}
