// ar_forecast's CPU reference, in float64: per series the mean, the biased
// autocorrelations r_0..r_p of the centred series, Levinson-Durbin (a
// reflection of 0 where the prediction error is not positive) and h recursive
// forecasts, the mean added back. Series split over the host's threads.
#include <algorithm>
#include <vector>

#include "../common/reference.hpp"

extern "C" void ar_forecast_reference(void* const* args) {
  auto* forecast = static_cast<float*>(args[0]);
  const auto* x = static_cast<const float*>(args[1]);
  const int series = *static_cast<const int*>(args[2]);
  const int n = *static_cast<const int*>(args[3]);
  const int order = *static_cast<const int*>(args[4]);
  const int steps = *static_cast<const int*>(args[5]);

  const auto some = [&](int begin, int end) {
    std::vector<double> z(n);
    std::vector<double> r(order + 1);
    std::vector<double> phi(order + 1);
    std::vector<double> next(order + 1);
    std::vector<double> history;
    for (int s = begin; s < end; ++s) {
      const float* row = x + static_cast<long long>(s) * n;
      double sum = 0.0;
      for (int t = 0; t < n; ++t) sum += row[t];
      const double mean = sum / n;
      for (int t = 0; t < n; ++t) z[t] = static_cast<double>(row[t]) - mean;
      for (int k = 0; k <= order; ++k) {
        double acc = 0.0;
        for (int t = 0; t + k < n; ++t) acc += z[t] * z[t + k];
        r[k] = acc / n;
      }
      std::fill(phi.begin(), phi.end(), 0.0);
      double error = r[0];
      for (int k = 1; k <= order; ++k) {
        double a = r[k];
        for (int j = 1; j < k; ++j) a -= phi[j] * r[k - j];
        const double reflection = error > 0.0 ? a / error : 0.0;
        for (int j = 1; j < k; ++j) next[j] = phi[j] - reflection * phi[k - j];
        for (int j = 1; j < k; ++j) phi[j] = next[j];
        phi[k] = reflection;
        error *= 1.0 - reflection * reflection;
      }
      // history: the centred series' last `order` points, then the forecasts.
      history.assign(z.end() - order, z.end());
      for (int j = 0; j < steps; ++j) {
        double f = 0.0;
        for (int i = 1; i <= order; ++i) f += phi[i] * history[history.size() - i];
        history.push_back(f);
        forecast[static_cast<long long>(s) * steps + j] = static_cast<float>(mean + f);
      }
    }
  };
  reference::split_over_threads(series, some);
}
