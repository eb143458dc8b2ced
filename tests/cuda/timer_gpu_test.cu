// The CUDA side of the measurement engine on a live device: every timing
// mode gives sane samples; cold is slower than hot for an input that fits in
// L2; a graph beats launch-by-launch for a kernel of a few microseconds;
// NVML telemetry is read; ceilings are measured, stored and read back; the
// flush buffer is freed. Labelled gpu; skipped where there is no device.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "tunekit/cuda/ceilings.hpp"
#include "tunekit/cuda/device.hpp"
#include "tunekit/cuda/telemetry.hpp"
#include "tunekit/cuda/timer.hpp"
#include "tunekit/error.hpp"
#include "tunekit/measure/statistics.hpp"

namespace {

namespace tc = tunekit::cuda;
namespace measure = tunekit::measure;

#define EXPECT_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call

__global__ void triad(const float* b, const float* c, float* a, float scale, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n; i += std::size_t{gridDim.x} * blockDim.x)
    a[i] = b[i] + scale * c[i];
}

// Three device arrays of n floats with random inputs and a triad launcher.
class triad_data {
 public:
  explicit triad_data(std::size_t n) : n_(n) {
    for (auto*& pointer : arrays_) {
      if (cudaMalloc(&pointer, n * sizeof(float)) != cudaSuccess) throw tunekit::error("cudaMalloc failed");
    }
    std::mt19937 engine(11);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    std::vector<float> host(n);
    for (int array = 0; array < 2; ++array) {
      for (auto& value : host) value = uniform(engine);
      cudaMemcpy(arrays_[array], host.data(), n * sizeof(float), cudaMemcpyHostToDevice);
    }
  }
  ~triad_data() {
    for (auto* pointer : arrays_) cudaFree(pointer);
  }
  triad_data(const triad_data&) = delete;
  triad_data& operator=(const triad_data&) = delete;

  [[nodiscard]] tc::launch_function launcher() const {
    return [this](tc::stream_handle stream) {
      const int blocks = static_cast<int>(std::min<std::size_t>((n_ + 255) / 256, 132 * 16));
      triad<<<blocks, 256, 0, reinterpret_cast<cudaStream_t>(stream)>>>(arrays_[0], arrays_[1], arrays_[2], 0.5f, n_);
    };
  }
  [[nodiscard]] std::vector<float> output() const {
    std::vector<float> host(n_);
    cudaMemcpy(host.data(), arrays_[2], n_ * sizeof(float), cudaMemcpyDeviceToHost);
    return host;
  }
  [[nodiscard]] std::vector<float> input(int array) const {
    std::vector<float> host(n_);
    cudaMemcpy(host.data(), arrays_[array], n_ * sizeof(float), cudaMemcpyDeviceToHost);
    return host;
  }
  void poison_output() const { cudaMemset(arrays_[2], 0xff, n_ * sizeof(float)); }

 private:
  std::size_t n_;
  float* arrays_[3] = {nullptr, nullptr, nullptr};
};

double median_of(tc::timing_mode mode, const tc::launch_function& launch) {
  tc::event_timer timer(launch, {.mode = mode});
  measure::relative_noise criterion({.min_samples = 10, .min_seconds = 0.1, .max_noise = 0.01, .timeout_seconds = 5});
  const auto timing = measure::measure(timer, criterion, nullptr, {.warmup_seconds = 0.02});
  EXPECT_EQ(timer.hold_timeouts(), 0u);
  return measure::summarize(timing.samples_us, {0, 0.95, 0}).median;
}

class TimerGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (tc::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_F(TimerGpu, EveryModeTimesTheWorkItWasGivenAndTheWorkIsDone) {
  triad_data data(1 << 20);
  for (const auto mode : {tc::timing_mode::cold, tc::timing_mode::hot, tc::timing_mode::graph, tc::timing_mode::stream}) {
    SCOPED_TRACE(std::string(tc::to_string(mode)));
    data.poison_output();
    tc::event_timer timer(data.launcher(), {.mode = mode});
    measure::fixed_count criterion(50);
    const auto timing = measure::measure(timer, criterion, nullptr, {.warmup_seconds = 0.01});
    EXPECT_EQ(timing.mode, tc::to_string(mode));
    ASSERT_GE(timing.samples_us.size(), 50u);
    for (const double sample : timing.samples_us) {
      EXPECT_GT(sample, 0.5) << "a 12 MB triad takes microseconds";
      EXPECT_LT(sample, 5000.0);
    }
    if (mode == tc::timing_mode::cold) {
      EXPECT_EQ(timer.group(), 1u);
    } else {
      EXPECT_GE(static_cast<double>(timer.group()) * timer.warm_up_estimate_us(), 100.0 * 0.99);
    }
    // The work really ran: every output element is b + 0.5 c.
    const auto a = data.output();
    const auto b = data.input(0);
    const auto c = data.input(1);
    for (std::size_t i = 0; i < a.size(); i += 997) ASSERT_FLOAT_EQ(a[i], b[i] + 0.5f * c[i]) << i;
  }
}

TEST_F(TimerGpu, ColdIsSlowerThanHotForAnInputThatFitsInL2) {
  const auto device = tc::live_device(0);
  // Three arrays filling about a third of L2: hot runs find them there.
  const std::size_t n = device.l2_cache_bytes / 3 / 3 / sizeof(float);
  triad_data data(n);
  const double cold = median_of(tc::timing_mode::cold, data.launcher());
  const double hot = median_of(tc::timing_mode::hot, data.launcher());
  EXPECT_GT(cold, 1.15 * hot) << "cold " << cold << " us, hot " << hot << " us";
}

TEST_F(TimerGpu, AGraphBeatsLaunchByLaunchForATinyKernel) {
  triad_data data(1 << 14);  // 196 KB: a couple of microseconds at most
  const double graph = median_of(tc::timing_mode::graph, data.launcher());
  const double stream = median_of(tc::timing_mode::stream, data.launcher());
  EXPECT_LT(graph, stream) << "graph " << graph << " us, stream " << stream << " us per launch";
}

TEST_F(TimerGpu, RepeatedMeasurementsAgree) {
  triad_data data(1 << 24);  // 192 MB: memory-bound, beyond L2
  std::vector<double> medians;
  for (int repeat = 0; repeat < 3; ++repeat) medians.push_back(median_of(tc::timing_mode::hot, data.launcher()));
  const auto [low, high] = std::minmax_element(medians.begin(), medians.end());
  EXPECT_LT(*high / *low - 1.0, 0.02) << "medians " << *low << " .. " << *high;
}

TEST_F(TimerGpu, TelemetryReadsClocksPowerAndReasons) {
  auto nvml = tc::open_nvml_telemetry(0);
  if (!nvml.source) GTEST_SKIP() << "NVML unavailable: " << nvml.unavailable_reason;
  EXPECT_GT(nvml.source->max_sm_clock_mhz(), 500.0);
  EXPECT_FALSE(tc::nvml_driver_version().empty());
  triad_data data(1 << 24);
  tc::event_timer timer(data.launcher(), {.mode = tc::timing_mode::hot});
  measure::relative_noise criterion({.min_seconds = 0.2});
  const auto timing = measure::measure(timer, criterion, nvml.source.get());
  const auto& summary = timing.telemetry;
  EXPECT_TRUE(summary.available);
  EXPECT_GT(summary.readings, 0u);
  EXPECT_GT(summary.mean_sm_clock_mhz, 300.0);
  EXPECT_LE(summary.mean_sm_clock_mhz, summary.max_sm_clock_mhz + 1.0);
  EXPECT_GT(summary.mean_memory_clock_mhz, 100.0);
  EXPECT_GT(summary.mean_power_watts, 20.0);
  EXPECT_GT(summary.max_temperature_celsius, 10.0);
  ASSERT_TRUE(summary.energy_joules.has_value());
  EXPECT_GT(*summary.energy_joules, 0.0);
  const auto text = nlohmann::json::parse(measure::telemetry_json(summary, timing.samples_us.size()));
  EXPECT_EQ(text["per_batch"]["sm_clock_mhz"].size(), summary.readings);
}

TEST_F(TimerGpu, TheFlushBufferIsTwiceL2AndIsFreed) {
  std::size_t free_before = 0;
  std::size_t free_during = 0;
  std::size_t free_after = 0;
  std::size_t total = 0;
  EXPECT_CUDA(cudaSetDevice(0));
  EXPECT_CUDA(cudaFree(nullptr));
  EXPECT_CUDA(cudaMemGetInfo(&free_before, &total));
  {
    tc::l2_flush flush;
    EXPECT_GE(flush.bytes(), 2 * tc::live_device(0).l2_cache_bytes);
    flush.flush(nullptr);
    EXPECT_CUDA(cudaDeviceSynchronize());
    EXPECT_CUDA(cudaMemGetInfo(&free_during, &total));
    EXPECT_LE(free_during + flush.bytes(), free_before);
    tc::l2_flush moved = std::move(flush);
    EXPECT_THROW(flush.flush(nullptr), tunekit::error) << "a moved-from flush refuses";
  }
  EXPECT_CUDA(cudaMemGetInfo(&free_after, &total));
  EXPECT_EQ(free_after, free_before);
  // The process-wide buffer is made once and handed to every cold timer.
  const auto shared = tc::l2_flush::shared();
  EXPECT_EQ(tc::l2_flush::shared(), shared);
  EXPECT_GE(shared->bytes(), 2 * tc::live_device(0).l2_cache_bytes);
  // So is the timing stream.
  EXPECT_NE(tc::shared_timing_stream(0), nullptr);
  EXPECT_EQ(tc::shared_timing_stream(0), tc::shared_timing_stream(0));
}

TEST_F(TimerGpu, CeilingsAreMeasuredOnceAndKeptInTheStore) {
  const auto path = std::filesystem::temp_directory_path() / "tunekit_ceilings_gpu_test.db";
  std::filesystem::remove(path);
  {
    auto store = tunekit::results_store::open(path);
    const auto first = tc::device_ceilings(store, 0);
    ASSERT_TRUE(first.copy_gbps.has_value());
    EXPECT_GT(*first.copy_gbps, 200.0);
    if (first.fp32_tflops) {
      EXPECT_GT(*first.fp32_tflops, 5.0);
      ASSERT_TRUE(first.bf16_tflops.has_value());
      EXPECT_GT(*first.bf16_tflops, *first.fp32_tflops) << "tensor cores outrun FP32";
    }
    const auto stored = store.ceilings(tc::live_identity(0));
    EXPECT_EQ(stored.size(), first.fp32_tflops ? 3u : 1u);
    const auto again = tc::device_ceilings(store, 0);
    EXPECT_EQ(again, first) << "the second call reads the store";
  }
  std::filesystem::remove(path);
}

TEST_F(TimerGpu, BadOptionsAndLaunchErrorsAreReported) {
  triad_data data(1024);
  EXPECT_THROW(tc::event_timer(tc::launch_function{}), tunekit::invalid_argument);
  EXPECT_THROW(tc::event_timer(data.launcher(), {.group_microseconds = 0.0}), tunekit::invalid_argument);
  EXPECT_THROW(tc::event_timer(data.launcher(), {.max_group = 0}), tunekit::invalid_argument);
  EXPECT_THROW(tc::event_timer(data.launcher(), {.device = 1000}), tunekit::cuda_error);
  // A launch with too many threads per block fails at launch, not later.
  tc::event_timer bad([](tc::stream_handle stream) {
    triad<<<1, 4096, 0, reinterpret_cast<cudaStream_t>(stream)>>>(nullptr, nullptr, nullptr, 0.0f, 0);
  });
  measure::fixed_count criterion(5);
  EXPECT_THROW((void)measure::measure(bad, criterion), tunekit::cuda_error);
  EXPECT_EQ(tc::parse_timing_mode("graph"), tc::timing_mode::graph);
  EXPECT_THROW((void)tc::parse_timing_mode("warm"), tunekit::invalid_argument);
}

}  // namespace
