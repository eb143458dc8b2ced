// pixel_entropy's CPU reference: bin = min(15, max(0, floor(16 v))); for each
// pixel the entropy in bits, in float64, of the 16-bin histogram of the window
// rows y - w/2 .. y + w/2 - 1, columns x - w/2 .. x + w/2 - 1 clipped to the
// image. Each host thread takes a band of rows and slides the column counts
// down it and the window counts along each row (exact integer counts).
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "../common/reference.hpp"

extern "C" void pixel_entropy_reference(void* const* args) {
  auto* out = static_cast<float*>(args[0]);
  const auto* in = static_cast<const float*>(args[1]);
  const int width = *static_cast<const int*>(args[2]);
  const int height = *static_cast<const int*>(args[3]);
  const int side = *static_cast<const int*>(args[4]);
  const int half = side / 2;

  std::vector<unsigned char> bins(static_cast<std::size_t>(width) * height);
  for (std::size_t i = 0; i < bins.size(); ++i)
    bins[i] = static_cast<unsigned char>(std::clamp(std::floor(16.0 * static_cast<double>(in[i])), 0.0, 15.0));
  const auto bin = [&](int y, int x) { return bins[static_cast<std::size_t>(y) * width + x]; };

  const auto band = [&](int begin, int end) {
    std::vector<std::array<int, 16>> columns(width);  // counts of rows [top, bottom) per column
    for (auto& c : columns) c.fill(0);
    int top = std::max(0, begin - half);
    int bottom = top;
    for (int y = begin; y < end; ++y) {
      const int want_top = std::max(0, y - half);
      const int want_bottom = std::min(height, y + half);
      for (; bottom < want_bottom; ++bottom)
        for (int x = 0; x < width; ++x) ++columns[x][bin(bottom, x)];
      for (; top < want_top; ++top)
        for (int x = 0; x < width; ++x) --columns[x][bin(top, x)];
      std::array<long long, 16> window{};
      int left = 0;
      int right = 0;
      for (int x = 0; x < width; ++x) {
        const int want_left = std::max(0, x - half);
        const int want_right = std::min(width, x + half);
        for (; right < want_right; ++right)
          for (int b = 0; b < 16; ++b) window[b] += columns[right][b];
        for (; left < want_left; ++left)
          for (int b = 0; b < 16; ++b) window[b] -= columns[left][b];
        long long total = 0;
        for (const auto c : window) total += c;
        double entropy = 0.0;
        for (const auto c : window)
          if (c > 0) {
            const double p = static_cast<double>(c) / static_cast<double>(total);
            entropy -= p * std::log2(p);
          }
        out[static_cast<std::size_t>(y) * width + x] = static_cast<float>(entropy);
      }
    }
  };
  reference::split_over_threads(height, band);
}
