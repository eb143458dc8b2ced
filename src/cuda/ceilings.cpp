#include "tunekit/cuda/ceilings.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cuda/detail/cuda_check.hpp"
#include "cuda/detail/dynamic_library.hpp"
#include "cuda/detail/timer_kernels.hpp"
#include "tunekit/cuda/device.hpp"
#include "tunekit/cuda/telemetry.hpp"
#include "tunekit/cuda/timer.hpp"
#include "tunekit/measure/statistics.hpp"

namespace tunekit::cuda {

device_identity live_identity(int ordinal) {
  const auto properties = live_device(ordinal);
  std::string driver = nvml_driver_version();
  if (driver.empty()) {
    int version = 0;
    TUNEKIT_CUDA_CHECK(cudaDriverGetVersion(&version));
    driver = "cuda " + std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
  }
  return {properties.name, properties.capability.architecture_name(), std::move(driver)};
}

namespace {

using json = nlohmann::ordered_json;

// A device buffer that frees itself.
class device_buffer {
 public:
  explicit device_buffer(std::size_t bytes) { TUNEKIT_CUDA_CHECK(cudaMalloc(&pointer_, bytes)); }
  ~device_buffer() { TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaFree(pointer_)); }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  template <typename T>
  [[nodiscard]] T* as() const {
    return static_cast<T*>(pointer_);
  }

 private:
  void* pointer_ = nullptr;
};

// The part of cuBLAS's C interface used here, declared from its
// documentation; loaded with dlopen so tunekit runs where cuBLAS is absent.
struct cublas_api {
  using handle = struct cublas_context*;
  int (*create)(handle*) = nullptr;
  int (*destroy)(handle) = nullptr;
  int (*set_stream)(handle, cudaStream_t) = nullptr;
  int (*set_math_mode)(handle, int) = nullptr;
  int (*sgemm)(handle, int, int, int, int, int, const float*, const float*, int, const float*, int, const float*,
               float*, int) = nullptr;
  int (*gemm_ex)(handle, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int,
                 const void*, void*, int, int, int, int) = nullptr;
  static constexpr int operation_none = 0;
  static constexpr int default_math = 0;  // TF32 off for FP32 products
  static constexpr int real_32f = 0;
  static constexpr int real_16bf = 14;
  static constexpr int compute_32f = 68;
  static constexpr int gemm_default = -1;
};

// Loads cuBLAS; on failure returns false with the reason.
bool load_cublas(cublas_api& api, std::string& reason) {
  std::vector<std::string> names = {"libcublas.so.13", "libcublas.so.12", "libcublas.so"};
  for (const char* variable : {"CUDA_HOME", "CUDA_PATH"})
    if (const char* root = std::getenv(variable); root != nullptr && *root != '\0')
      names.push_back(std::string(root) + "/lib64/libcublas.so");
  names.emplace_back("/usr/local/cuda/lib64/libcublas.so");
  detail::dynamic_library library(names);
  if (!library.loaded()) {
    reason = "cuBLAS not found (libcublas.so on the library path or under $CUDA_HOME/lib64)";
    return false;
  }
  const auto bind = [&](auto& function, const char* name) { library.bind(function, name); };
  bind(api.create, "cublasCreate_v2");
  bind(api.destroy, "cublasDestroy_v2");
  bind(api.set_stream, "cublasSetStream_v2");
  bind(api.set_math_mode, "cublasSetMathMode");
  bind(api.sgemm, "cublasSgemm_v2");
  bind(api.gemm_ex, "cublasGemmEx");
  if (!library.complete()) reason = "cuBLAS lacks a function tunekit needs";
  return library.complete();
}

// Measures one launch function with the engine; returns the median (µs) and
// records the figures in `record`.
double measure_median(launch_function launch, int ordinal, json& record, const char* name) {
  event_timer timer(std::move(launch), {.device = ordinal, .mode = timing_mode::hot, .group_microseconds = 100.0});
  measure::relative_noise criterion({.min_samples = 10, .min_seconds = 0.2, .max_noise = 0.005,
                                     .timeout_seconds = 5.0});
  auto telemetry = open_nvml_telemetry(ordinal);
  const auto timing = measure::measure(timer, criterion, telemetry.source.get(), {.warmup_seconds = 0.2});
  const auto stats = measure::summarize(timing.samples_us, {0, 0.95, 0});
  record[name] = {{"median_us", stats.median},
                  {"cv", stats.cv},
                  {"samples", stats.count},
                  {"stop_reason", timing.stop_reason},
                  {"mean_sm_clock_mhz", timing.telemetry.mean_sm_clock_mhz}};
  return stats.median;
}

}  // namespace

ceiling_report measure_ceilings(int ordinal) {
  TUNEKIT_CUDA_CHECK(cudaSetDevice(ordinal));
  ceiling_report report;
  json detail;
  cudaStream_t fill_stream = nullptr;

  // Copy: large enough that L2 plays no part, small enough to fit anywhere.
  {
    std::size_t free_bytes = 0;
    std::size_t total_bytes = 0;
    TUNEKIT_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    const std::size_t bytes = std::min<std::size_t>(std::size_t{1} << 30, free_bytes / 4) / 16 * 16;
    device_buffer source(bytes);
    device_buffer target(bytes);
    detail::launch_fill_uniform(fill_stream, source.as<float>(), bytes / sizeof(float), 1, -1.0f, 1.0f);
    TUNEKIT_CUDA_CHECK(cudaDeviceSynchronize());
    const double median = measure_median(
        [&](stream_handle stream) {
          TUNEKIT_CUDA_CHECK(cudaMemcpyAsync(target.as<void>(), source.as<void>(), bytes, cudaMemcpyDeviceToDevice,
                                             reinterpret_cast<cudaStream_t>(stream)));
        },
        ordinal, detail, "copy");
    report.values.copy_gbps = 2.0 * static_cast<double>(bytes) / (median * 1e-6) / 1e9;
    detail["copy"]["bytes"] = bytes;
    detail["copy"]["gbps"] = *report.values.copy_gbps;
  }

  cublas_api cublas;
  std::string reason;
  if (!load_cublas(cublas, reason)) {
    detail["matmul_unavailable"] = reason;
    report.detail = detail.dump();
    return report;
  }
  cublas_api::handle handle = nullptr;
  if (const int status = cublas.create(&handle); status != 0) {
    detail["matmul_unavailable"] = "cublasCreate failed with status " + std::to_string(status);
    report.detail = detail.dump();
    return report;
  }
  struct handle_guard {
    cublas_api& api;
    cublas_api::handle handle;
    ~handle_guard() { api.destroy(handle); }
  } guard{cublas, handle};
  const auto check = [](int status, const char* call) {
    if (status != 0) throw error(std::string(call) + " failed with cuBLAS status " + std::to_string(status));
  };
  check(cublas.set_math_mode(handle, cublas_api::default_math), "cublasSetMathMode");

  constexpr int size = 8192;
  constexpr double flops = 2.0 * size * size * size;
  const std::size_t elements = std::size_t{size} * size;
  const float alpha = 1.0f;
  const float beta = 0.0f;
  // One size^3 product per precision (element_bytes 4: FP32, 2: BF16), inputs
  // uniform random; `product` enqueues C = A B.
  const auto rate = [&](const char* name, std::size_t element_bytes, std::uint64_t seed,
                        const std::function<void(float*, const float*, const float*)>& product) {
    device_buffer a(elements * element_bytes);
    device_buffer b(elements * element_bytes);
    device_buffer c(elements * element_bytes);
    for (const auto& [input, offset] : {std::pair{&a, 0}, std::pair{&b, 1}}) {
      if (element_bytes == sizeof(float))
        detail::launch_fill_uniform(fill_stream, input->as<float>(), elements, seed + offset, -1.0f, 1.0f);
      else
        detail::launch_fill_uniform_bf16(fill_stream, input->as<std::uint16_t>(), elements, seed + offset, -1.0f, 1.0f);
    }
    TUNEKIT_CUDA_CHECK(cudaDeviceSynchronize());
    const double median = measure_median(
        [&](stream_handle stream) {
          check(cublas.set_stream(handle, reinterpret_cast<cudaStream_t>(stream)), "cublasSetStream");
          product(c.as<float>(), a.as<float>(), b.as<float>());
        },
        ordinal, detail, name);
    const double tflops = flops / (median * 1e-6) / 1e12;
    detail[name]["size"] = size;
    detail[name]["tflops"] = tflops;
    return tflops;
  };
  report.values.fp32_tflops = rate("fp32", sizeof(float), 2, [&](float* c, const float* a, const float* b) {
    check(cublas.sgemm(handle, cublas_api::operation_none, cublas_api::operation_none, size, size, size, &alpha, a, size,
                       b, size, &beta, c, size),
          "cublasSgemm");
  });
  report.values.bf16_tflops = rate("bf16", 2, 4, [&](float* c, const float* a, const float* b) {
    // The buffers hold bfloat16: the pointers only carry the addresses.
    check(cublas.gemm_ex(handle, cublas_api::operation_none, cublas_api::operation_none, size, size, size, &alpha, a,
                         cublas_api::real_16bf, size, b, cublas_api::real_16bf, size, &beta, c, cublas_api::real_16bf,
                         size, cublas_api::compute_32f, cublas_api::gemm_default),
          "cublasGemmEx");
  });
  report.detail = detail.dump();
  return report;
}

measure::ceilings device_ceilings(results_store& store, int ordinal, bool remeasure) {
  const auto device = live_identity(ordinal);
  measure::ceilings values;
  if (!remeasure) {
    for (const auto& each : store.ceilings(device)) {
      if (each.name == "copy_gbps") values.copy_gbps = each.value;
      if (each.name == "fp32_tflops") values.fp32_tflops = each.value;
      if (each.name == "bf16_tflops") values.bf16_tflops = each.value;
    }
    if (values.copy_gbps) return values;
  }
  const auto report = measure_ceilings(ordinal);
  const auto keep = [&](const char* name, const std::optional<double>& value, const char* unit) {
    if (value) store.record_ceiling(device, {name, *value, unit, report.detail, {}});
  };
  keep("copy_gbps", report.values.copy_gbps, "GB/s");
  keep("fp32_tflops", report.values.fp32_tflops, "TFLOP/s");
  keep("bf16_tflops", report.values.bf16_tflops, "TFLOP/s");
  return report.values;
}

}  // namespace tunekit::cuda
