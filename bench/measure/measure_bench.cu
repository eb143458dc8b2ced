// The measurement engine on simple kernels (copy and triad at several sizes,
// and one of a couple of microseconds), in every timing mode, each case
// measured several times over. Answers the engine's acceptance questions
// with figures: do repeated medians agree, do cold and hot differ for an
// L2-resident input, does a graph beat launch-by-launch for a tiny kernel,
// is telemetry read. Every output is verified against a float64 reference
// before it counts.
//
//   tunekit_measure_bench --out DIR [--repeats 5] [--store PATH]
//
// Writes DIR/measure.json (the summary and the checks), and
// DIR/measure_results.{json,csv,md} (every measurement in the result-file
// contract, every sample included). Exit 0 when every check passes, 1 when
// one fails, 2 on bad arguments or no device.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tunekit/cuda/ceilings.hpp"
#include "tunekit/cuda/device.hpp"
#include "tunekit/cuda/telemetry.hpp"
#include "tunekit/cuda/timer.hpp"
#include "tunekit/error.hpp"
#include "tunekit/measure/engine.hpp"
#include "tunekit/measure/results.hpp"
#include "tunekit/measure/statistics.hpp"
#include "tunekit/measure/throughput.hpp"

namespace {

namespace tc = tunekit::cuda;
namespace measure = tunekit::measure;
using json = nlohmann::ordered_json;

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw tunekit::error(std::string(what) + ": " + cudaGetErrorString(status));
}

__global__ void copy_kernel(const float4* __restrict__ in, float4* __restrict__ out, std::size_t n4) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n4; i += std::size_t{gridDim.x} * blockDim.x)
    out[i] = in[i];
}

__global__ void triad_kernel(const float4* __restrict__ b, const float4* __restrict__ c, float4* __restrict__ a,
                             float scale, std::size_t n4) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n4; i += std::size_t{gridDim.x} * blockDim.x) {
    const float4 x = b[i];
    const float4 y = c[i];
    a[i] = make_float4(x.x + scale * y.x, x.y + scale * y.y, x.z + scale * y.z, x.w + scale * y.w);
  }
}

__global__ void fill_kernel(float* data, std::size_t n, unsigned seed) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n; i += std::size_t{gridDim.x} * blockDim.x) {
    unsigned x = static_cast<unsigned>(i) * 2654435761U ^ seed * 0x9e3779b9U ^ static_cast<unsigned>(i >> 32);
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    data[i] = static_cast<float>(x >> 8) * (2.0f / 16777216.0f) - 1.0f;  // uniform in [-1, 1)
  }
}

// Arrays of n floats (n a multiple of 4) on the device, random inputs.
struct arrays {
  std::size_t n = 0;
  std::vector<float*> device;

  arrays(std::size_t count, int how_many) : n(count) {
    for (int i = 0; i < how_many; ++i) {
      float* pointer = nullptr;
      check(cudaMalloc(&pointer, n * sizeof(float)), "cudaMalloc");
      device.push_back(pointer);
      fill_kernel<<<4096, 256>>>(pointer, n, 17U + static_cast<unsigned>(i));
    }
    check(cudaDeviceSynchronize(), "filling inputs");
  }
  ~arrays() {
    for (auto* pointer : device) cudaFree(pointer);
  }
  arrays(const arrays&) = delete;
  arrays& operator=(const arrays&) = delete;
};

int grid_for(std::size_t n4, int multiprocessors) {
  return static_cast<int>(std::clamp<std::size_t>((n4 + 255) / 256, 1, static_cast<std::size_t>(multiprocessors) * 8));
}

// The positions a check reads back: all of a small array, else its first
// and last million elements and every 4099th element between.
constexpr std::size_t check_edge = std::size_t{1} << 20;
constexpr std::size_t check_stride = 4099;

std::vector<std::size_t> positions(std::size_t n) {
  std::vector<std::size_t> out;
  if (n <= 4 * check_edge) {
    for (std::size_t i = 0; i < n; ++i) out.push_back(i);
    return out;
  }
  for (std::size_t i = 0; i < check_edge; ++i) out.push_back(i);
  for (std::size_t i = check_edge; i < n - check_edge; i += check_stride) out.push_back(i);
  for (std::size_t i = n - check_edge; i < n; ++i) out.push_back(i);
  return out;
}

// Reads back positions(n) of a device array, in the same order.
std::vector<float> gather(const float* pointer, std::size_t n) {
  std::vector<float> out(positions(n).size());
  if (n <= 4 * check_edge) {
    check(cudaMemcpy(out.data(), pointer, n * sizeof(float), cudaMemcpyDeviceToHost), "reading back");
    return out;
  }
  const std::size_t middle = (n - 2 * check_edge + check_stride - 1) / check_stride;
  check(cudaMemcpy(out.data(), pointer, check_edge * sizeof(float), cudaMemcpyDeviceToHost), "reading back");
  // One element per row of a pitched copy: the strided sample in one call.
  check(cudaMemcpy2D(out.data() + check_edge, sizeof(float), pointer + check_edge, check_stride * sizeof(float),
                     sizeof(float), middle, cudaMemcpyDeviceToHost),
        "reading back");
  check(cudaMemcpy(out.data() + check_edge + middle, pointer + (n - check_edge), check_edge * sizeof(float),
                   cudaMemcpyDeviceToHost),
        "reading back");
  return out;
}

struct case_spec {
  std::string kernel;  // "copy" or "triad"
  std::string label;   // "tiny", "l2_resident", "10us", "5ms", "bandwidth"
  std::size_t n = 0;
  std::vector<tc::timing_mode> modes;
  /// "default": a new timer per repeat, as a tuner makes one per variant
  /// (sharing the process's timing stream and flush buffer);
  /// "own_stream": the same, each timer with a new stream and flush buffer;
  /// "one_timer": one timer measures every repeat.
  std::string variant = "default";
};

struct case_outcome {
  json summary;
  bool verified = true;
};

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path out_dir = ".";
  int repeats = 5;
  std::string store_path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--out" && i + 1 < argc) {
      out_dir = argv[++i];
    } else if (arg == "--repeats" && i + 1 < argc) {
      repeats = std::atoi(argv[++i]);
    } else if (arg == "--store" && i + 1 < argc) {
      store_path = argv[++i];
    } else {
      std::cerr << "usage: tunekit_measure_bench --out DIR [--repeats N] [--store PATH]\n";
      return 2;
    }
  }
  if (repeats < 2) {
    std::cerr << "tunekit_measure_bench: --repeats must be at least 2\n";
    return 2;
  }
  if (tc::device_count() == 0) {
    std::cerr << "tunekit_measure_bench: no CUDA device\n";
    return 2;
  }
  try {
    std::filesystem::create_directories(out_dir);
    const auto device = tc::live_device(0);
    const auto identity = tc::live_identity(0);
    auto nvml = tc::open_nvml_telemetry(0);

    // Ceilings: cached in the store, so a second run reuses them.
    auto store = tunekit::results_store::open(store_path.empty() ? out_dir / "ceilings.db" : std::filesystem::path(store_path));
    const auto roof = tc::device_ceilings(store, 0);
    const double copy_gbps = roof.copy_gbps.value_or(2000.0);

    std::size_t free_bytes = 0;
    std::size_t total_bytes = 0;
    check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
    const auto round4 = [](double n) { return std::max<std::size_t>(4, static_cast<std::size_t>(n) / 4 * 4); };
    // Triad moves 12 bytes per element: n for a target time at the copy ceiling.
    const auto triad_n_for = [&](double microseconds) { return round4(microseconds * 1e-6 * copy_gbps * 1e9 / 12.0); };
    const std::size_t big_n = std::min(triad_n_for(5000.0), round4(0.8 * static_cast<double>(free_bytes) / 12.0));

    using enum tc::timing_mode;
    const std::vector<case_spec> cases = {
        {"triad", "tiny", 1 << 14, {hot, graph, stream}},
        {"triad", "l2_resident", round4(static_cast<double>(device.l2_cache_bytes) / 3.0 / 12.0), {cold, hot}},
        {"triad", "10us", triad_n_for(10.0), {cold, hot}},
        {"triad", "10us", triad_n_for(10.0), {cold, hot}, "own_stream"},
        {"triad", "10us", triad_n_for(10.0), {cold, hot}, "one_timer"},
        {"triad", "5ms", big_n, {hot}},
        {"copy", "bandwidth", std::size_t{1} << 20, {hot}},
        {"copy", "bandwidth", std::size_t{1} << 24, {hot}},
        {"copy", "bandwidth", std::size_t{1} << 28, {hot}},
    };

    measure::result_file results;
    {
      json device_json = {{"name", device.name},
                          {"architecture", device.capability.architecture_name()},
                          {"driver", identity.driver},
                          {"multiprocessor_count", device.multiprocessor_count},
                          {"l2_cache_bytes", device.l2_cache_bytes},
                          {"telemetry", nvml.source ? nvml.source->description() : "off: " + nvml.unavailable_reason}};
      results.device = device_json.dump();
    }
    json summary;
    summary["device"] = json::parse(results.device);
    summary["ceilings"] = {{"copy_gbps", roof.copy_gbps ? json(*roof.copy_gbps) : json(nullptr)},
                           {"fp32_tflops", roof.fp32_tflops ? json(*roof.fp32_tflops) : json(nullptr)},
                           {"bf16_tflops", roof.bf16_tflops ? json(*roof.bf16_tflops) : json(nullptr)}};
    summary["repeats"] = repeats;
    summary["criterion"] = "relative_noise: >= 10 samples, >= 0.5 s, 95% median interval within 0.5%, 5 s timeout";
    json& case_list = summary["cases"] = json::array();
    bool all_verified = true;
    bool any_telemetry = false;

    for (const auto& spec : cases) {
      arrays data(spec.n, spec.kernel == "copy" ? 2 : 3);
      const std::size_t n4 = spec.n / 4;
      const int grid = grid_for(n4, device.multiprocessor_count);
      const bool is_copy = spec.kernel == "copy";
      float* output = data.device.back();
      tc::launch_function launch = [&](tc::stream_handle stream) {
        const auto s = reinterpret_cast<cudaStream_t>(stream);
        if (is_copy) {
          copy_kernel<<<grid, 256, 0, s>>>(reinterpret_cast<const float4*>(data.device[0]),
                                            reinterpret_cast<float4*>(output), n4);
        } else {
          triad_kernel<<<grid, 256, 0, s>>>(reinterpret_cast<const float4*>(data.device[0]),
                                             reinterpret_cast<const float4*>(data.device[1]),
                                             reinterpret_cast<float4*>(output), 0.5f, n4);
        }
      };
      const measure::work work{.bytes_read = (is_copy ? 4.0 : 8.0) * static_cast<double>(spec.n),
                               .bytes_written = 4.0 * static_cast<double>(spec.n),
                               .flops = is_copy ? 0.0 : 2.0 * static_cast<double>(spec.n)};
      const auto checked = positions(spec.n);
      const auto input_b = gather(data.device[0], spec.n);
      const auto input_c = is_copy ? std::vector<float>{} : gather(data.device[1], spec.n);

      for (const auto mode : spec.modes) {
        json entry = {{"kernel", spec.kernel}, {"case", spec.label}, {"n", spec.n}, {"mode", tc::to_string(mode)},
                      {"variant", spec.variant}, {"bytes", work.bytes_read + work.bytes_written}};
        std::unique_ptr<tc::event_timer> shared_timer;
        if (spec.variant == "one_timer") shared_timer = std::make_unique<tc::event_timer>(launch, tc::timer_options{.mode = mode});
        std::vector<double> medians;
        json stop_reasons = json::array();
        json clocks = json::array();
        json groups = json::array();
        std::size_t discarded = 0;
        bool verified = true;
        // Poisoned once (NaN) before the first repeat: every repeat's output
        // is verified after it, and the first proves every element written.
        // Not before each repeat: a memset of the output moved the next
        // second's cold median of the ~10 us triad by up to 2.1% on an H200
        // (see "between_measurements"), a state of the GPU, not the engine.
        check(cudaMemset(output, 0xff, spec.n * sizeof(float)), "poisoning the output");
        check(cudaDeviceSynchronize(), "poisoning the output");
        for (int repeat = 0; repeat < repeats; ++repeat) {
          std::unique_ptr<tc::event_timer> own_timer;
          cudaStream_t own_stream = nullptr;
          if (!shared_timer) {
            tc::timer_options options{.mode = mode};
            if (spec.variant == "own_stream") {
              check(cudaStreamCreateWithFlags(&own_stream, cudaStreamNonBlocking), "cudaStreamCreate");
              options.stream = reinterpret_cast<tc::stream_handle>(own_stream);
              if (mode == cold) options.flush = std::make_shared<const tc::l2_flush>();
            }
            own_timer = std::make_unique<tc::event_timer>(launch, options);
          }
          auto& timer = shared_timer ? *shared_timer : *own_timer;
          // The engine's defaults, with the timeout cut to 5 s to bound the run.
          measure::relative_noise criterion({.timeout_seconds = 5.0});
          const auto timing = measure::measure(timer, criterion, nvml.source.get());
          if (timer.hold_timeouts() != 0) std::cerr << "warning: holding kernel timed out\n";
          // Verify what the last run wrote: every checked element, float64 reference.
          const auto got = gather(output, spec.n);
          for (std::size_t i = 0; i < checked.size() && verified; ++i) {
            const double expected = is_copy ? double{input_b[i]} : double{input_b[i]} + 0.5 * double{input_c[i]};
            if (!(std::abs(double{got[i]} - expected) <= 1e-6 * (1.0 + std::abs(expected)))) {
              std::cerr << "MISMATCH " << spec.kernel << " n=" << spec.n << " at " << checked[i] << ": " << got[i]
                        << " != " << expected << '\n';
              verified = false;
            }
          }
          measure::measurement_result result;
          result.name = spec.kernel;
          result.params = {{"n", std::to_string(spec.n)},
                           {"mode", "\"" + std::string(tc::to_string(mode)) + "\""},
                           {"variant", "\"" + spec.variant + "\""},
                           {"repeat", std::to_string(repeat)}};
          result.samples_us = timing.samples_us;
          measure::summarize_result(result);
          result.telemetry = measure::telemetry_json(timing.telemetry, timing.samples_us.size() * timing.runs_per_sample);
          result.throughput = measure::throughput_json(work, result.statistics.median, roof);
          medians.push_back(result.statistics.median);
          stop_reasons.push_back(timing.stop_reason);
          clocks.push_back(timing.telemetry.mean_sm_clock_mhz);
          groups.push_back(timer.group());
          discarded += timing.telemetry.discarded_samples;
          any_telemetry = any_telemetry || timing.telemetry.readings > 0;
          results.results.push_back(std::move(result));
          own_timer.reset();  // before its stream goes
          if (own_stream != nullptr) check(cudaStreamDestroy(own_stream), "cudaStreamDestroy");
        }
        const auto [low, high] = std::minmax_element(medians.begin(), medians.end());
        const double median_of_medians = measure::percentile(medians, 50.0);
        const auto figures = measure::annotate(work, median_of_medians, roof);
        entry["medians_us"] = medians;
        entry["median_us"] = median_of_medians;
        entry["spread"] = *high / *low - 1.0;
        entry["gbps"] = figures.gbps;
        if (figures.fraction_of_copy) entry["percent_of_copy"] = 100.0 * *figures.fraction_of_copy;
        entry["runs_per_sample"] = groups;
        entry["stop_reasons"] = stop_reasons;
        entry["mean_sm_clock_mhz"] = clocks;
        entry["discarded_samples"] = discarded;
        entry["verified"] = verified;
        all_verified = all_verified && verified;
        case_list.push_back(entry);
        std::printf("%-6s %-12s %-9s n=%-11zu %-6s median %10.3f us  spread %6.3f%%  %8.1f GB/s%s\n", spec.kernel.c_str(),
                    spec.label.c_str(), spec.variant.c_str(), spec.n, std::string(tc::to_string(mode)).c_str(), median_of_medians,
                    100.0 * (*high / *low - 1.0), figures.gbps, verified ? "" : "  WRONG");
        std::fflush(stdout);
      }
    }

    // Between-measurement variation: one cold timer on the ~10 us triad,
    // measured again and again with the GPU left idle for a while between
    // measurements. Within one measurement the median is steady; whether
    // the level moves between measurements, and with what, shows here.
    {
      const std::size_t n = triad_n_for(10.0);
      arrays data(n, 3);
      const std::size_t n4 = n / 4;
      const int grid = grid_for(n4, device.multiprocessor_count);
      const tc::launch_function timer_launch = [&](tc::stream_handle stream) {
        triad_kernel<<<grid, 256, 0, reinterpret_cast<cudaStream_t>(stream)>>>(
            reinterpret_cast<const float4*>(data.device[0]), reinterpret_cast<const float4*>(data.device[1]),
            reinterpret_cast<float4*>(data.device[2]), 0.5f, n4);
      };
      tc::event_timer timer(timer_launch, {.mode = cold});
      json& drift = summary["between_measurements"] = json::array();
      const auto study = [&](const std::string& what, int idle_ms, bool poison, bool read_back, double warmup,
                             bool new_timer) {
        std::vector<double> medians;
        std::vector<float> host(n);
        for (int repeat = 0; repeat < 8; ++repeat) {
          if (idle_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(idle_ms));
          if (poison) check(cudaMemset(data.device[2], 0xff, n * sizeof(float)), "poisoning");
          if (read_back)
            check(cudaMemcpy(host.data(), data.device[2], n * sizeof(float), cudaMemcpyDeviceToHost), "reading back");
          check(cudaDeviceSynchronize(), "synchronising");
          std::unique_ptr<tc::event_timer> fresh;
          if (new_timer) fresh = std::make_unique<tc::event_timer>(timer_launch, tc::timer_options{.mode = cold});
          measure::fixed_count criterion(4000);
          const auto timing = measure::measure(new_timer ? *fresh : timer, criterion, nullptr, {.warmup_seconds = warmup});
          medians.push_back(measure::percentile(timing.samples_us, 50.0));
        }
        const auto [low, high] = std::minmax_element(medians.begin(), medians.end());
        drift.push_back({{"between", what}, {"idle_ms", idle_ms}, {"medians_us", medians}, {"spread", *high / *low - 1.0}});
        std::printf("cold 10us, %-28s idle %3d ms: spread %6.3f%%  medians", what.c_str(), idle_ms,
                    100.0 * (*high / *low - 1.0));
        for (const double median : medians) std::printf(" %.3f", median);
        std::printf("\n");
        std::fflush(stdout);
      };
      study("nothing", 0, false, false, 0.01, false);
      study("nothing", 200, false, false, 0.01, false);
      study("poison", 0, true, false, 0.01, false);
      study("read back", 0, false, true, 0.01, false);
      study("poison + read back", 0, true, true, 0.01, false);
      study("50 ms warm-up", 0, false, false, 0.05, false);
      study("new timer", 0, false, false, 0.01, true);
      study("all of the above", 0, true, true, 0.05, true);
    }

    // The acceptance checks, from the cases above.
    const auto find = [&](const std::string& label, const std::string& mode,
                          const std::string& variant = "default") -> const json& {
      for (const auto& entry : case_list)
        if (entry["case"] == label && entry["mode"] == mode && entry["variant"] == variant) return entry;
      throw tunekit::error("no case " + label + " " + mode);
    };
    json checks;
    const auto stable = [&](const json& entry) {
      return json{{"case", entry["case"]}, {"mode", entry["mode"]}, {"variant", entry["variant"]}, {"median_us", entry["median_us"]},
                  {"spread", entry["spread"]}, {"limit", 0.01}, {"pass", entry["spread"].get<double>() <= 0.01}};
    };
    checks["repeat_medians_within_1pct_10us_cold"] = stable(find("10us", "cold"));
    checks["repeat_medians_within_1pct_10us_cold_one_timer"] = stable(find("10us", "cold", "one_timer"));
    checks["repeat_medians_within_1pct_5ms"] = stable(find("5ms", "hot"));
    {
      const double cold = find("l2_resident", "cold")["median_us"];
      const double hot = find("l2_resident", "hot")["median_us"];
      checks["cold_slower_than_hot_l2_resident"] = {{"cold_us", cold}, {"hot_us", hot}, {"ratio", cold / hot},
                                                    {"pass", cold > 1.15 * hot}};
    }
    {
      const double graph = find("tiny", "graph")["median_us"];
      const double stream = find("tiny", "stream")["median_us"];
      const double hot = find("tiny", "hot")["median_us"];
      checks["graph_faster_than_stream_tiny"] = {{"graph_us_per_launch", graph}, {"stream_us_per_launch", stream},
                                                 {"hot_us_per_launch", hot}, {"pass", graph < stream}};
    }
    checks["telemetry_recorded"] = {{"source", nvml.source ? nvml.source->description() : nvml.unavailable_reason},
                                    {"pass", any_telemetry}};
    checks["outputs_verified"] = {{"pass", all_verified}};
    summary["checks"] = checks;
    bool pass = true;
    for (const auto& [name, entry] : checks.items()) {
      std::printf("check %-40s %s\n", name.c_str(), entry["pass"].get<bool>() ? "pass" : "FAIL");
      pass = pass && entry["pass"].get<bool>();
    }

    std::ofstream(out_dir / "measure.json") << summary.dump(1) << '\n';
    measure::save_result_file(results, (out_dir / "measure_results.json").string());
    {
      std::ofstream csv(out_dir / "measure_results.csv");
      measure::write_csv(results, csv);
      std::ofstream markdown(out_dir / "measure_results.md");
      measure::write_markdown(results, markdown);
    }
    return pass ? 0 : 1;
  } catch (const std::exception& failure) {
    std::cerr << "tunekit_measure_bench: " << failure.what() << '\n';
    return 1;
  }
}
