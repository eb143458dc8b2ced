// tunekit_memory_bench --out DIR [--pipeline-gib G] [--chunk-mib M]
//
// The memory layer against its peers, in one run on one GPU, written to
// DIR/memory.json:
//   - alloc+free latency, 256 B to 64 MiB, and a random mixed-size workload:
//     tunekit's device pool, the CUDA async pool behind the same interface,
//     cudaMallocAsync/cudaFreeAsync called directly, cudaMalloc/cudaFree;
//   - pinned host memory: the pool's reuse vs cudaMallocHost/cudaFreeHost,
//     and pinning 64 MiB by cudaHostAlloc vs malloc + cudaHostRegister;
//   - plain pinned cudaMemcpy bandwidth each way (the pipeline's ceiling);
//   - the streaming pipeline over G GiB of host data with a kernel whose time
//     per chunk is calibrated to the chunk's copy time, at depths 1, 2 and 3,
//     pinned and pageable; every output element of a sample checked.
// PyTorch's caching allocator is measured by bench/memory/torch_alloc_peer.py
// in the same command (see the README).

#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tunekit/cuda/device.hpp"
#include "tunekit/cuda/memory/pinned_pool.hpp"
#include "tunekit/cuda/memory/resource.hpp"
#include "tunekit/cuda/pipeline.hpp"

namespace {

namespace tc = tunekit::cuda;
using json = nlohmann::ordered_json;
using clock_type = std::chrono::steady_clock;

void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  std::fprintf(stderr, "memory_bench: %s: %s\n", what, cudaGetErrorString(status));
  std::exit(1);
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const double rank = p / 100.0 * static_cast<double>(values.size() - 1);
  const auto low = static_cast<std::size_t>(rank);
  const auto high = std::min(low + 1, values.size() - 1);
  return values[low] + (values[high] - values[low]) * (rank - static_cast<double>(low));
}

// ns per call of `body`, per batch of `per_batch` calls, `batches` times.
template <typename Body>
std::vector<double> time_batches(std::size_t batches, std::size_t per_batch, Body&& body) {
  std::vector<double> out;
  for (std::size_t b = 0; b < batches; ++b) {
    const auto start = clock_type::now();
    for (std::size_t i = 0; i < per_batch; ++i) body();
    out.push_back(std::chrono::duration<double, std::nano>(clock_type::now() - start).count() /
                  static_cast<double>(per_batch));
  }
  return out;
}

json latency_row(const std::string& resource, std::size_t bytes, const std::vector<double>& ns, std::size_t per_batch) {
  return {{"resource", resource},
          {"bytes", bytes},
          {"median_ns", percentile(ns, 50)},
          {"p90_ns", percentile(ns, 90)},
          {"batches", ns.size()},
          {"calls_per_batch", per_batch}};
}

// cudaMallocAsync / cudaFreeAsync called directly on the device's default pool.
struct direct_async {
  cudaStream_t stream;
  void* allocate(std::size_t bytes) {
    void* p = nullptr;
    check(cudaMallocAsync(&p, bytes, stream), "cudaMallocAsync");
    return p;
  }
  void deallocate(void* p) { check(cudaFreeAsync(p, stream), "cudaFreeAsync"); }
};

// A random mixed-size workload: log-uniform sizes 256 B..16 MiB, up to 64
// live blocks, each step frees one at random or allocates; the same sequence
// for every resource.
struct mixed_step {
  bool allocate;
  std::size_t bytes;
  std::size_t victim;  // which live block to free
};

std::vector<mixed_step> mixed_workload(std::size_t steps) {
  std::mt19937_64 random(42);
  std::uniform_real_distribution<double> log_size(std::log(256.0), std::log(16.0 * (1 << 20)));
  std::vector<mixed_step> out;
  std::size_t live = 0;
  for (std::size_t s = 0; s < steps; ++s) {
    const bool allocate = live == 0 || (live < 64 && random() % 2 == 0);
    mixed_step step{allocate, static_cast<std::size_t>(std::exp(log_size(random))), 0};
    if (!allocate) step.victim = random() % live;
    live += allocate ? 1 : 0;
    live -= allocate ? 0 : 1;
    out.push_back(step);
  }
  return out;
}

template <typename Allocate, typename Free>
double run_mixed(const std::vector<mixed_step>& steps, Allocate&& allocate, Free&& deallocate) {
  std::vector<std::pair<void*, std::size_t>> live;
  const auto start = clock_type::now();
  for (const auto& step : steps) {
    if (step.allocate) {
      live.emplace_back(allocate(step.bytes), step.bytes);
    } else {
      std::swap(live[step.victim], live.back());
      deallocate(live.back().first, live.back().second);
      live.pop_back();
    }
  }
  for (auto& [p, bytes] : live) deallocate(p, bytes);
  return std::chrono::duration<double, std::nano>(clock_type::now() - start).count() / static_cast<double>(steps.size());
}

// The pipeline's kernel: `rounds` dependent FMAs per element, so its time
// per chunk can be set to the copy time.
__global__ void work_kernel(const float* in, float* out, std::size_t count, int rounds) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < count; i += std::size_t{gridDim.x} * blockDim.x) {
    float x = in[i];
    for (int r = 0; r < rounds; ++r) x = __fmaf_rn(x, 0.999f, 0.001f);
    out[i] = x;
  }
}

float host_work(float x, int rounds) {
  for (int r = 0; r < rounds; ++r) x = std::fmaf(x, 0.999f, 0.001f);
  return x;
}

double gbps(std::size_t bytes, double seconds) { return static_cast<double>(bytes) / seconds / 1e9; }

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path out_dir = ".";
  double pipeline_gib = 8.0;
  std::size_t chunk_mib = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string option = argv[i];
    if (option == "--out") out_dir = argv[i + 1];
    else if (option == "--pipeline-gib") pipeline_gib = std::atof(argv[i + 1]);
    else if (option == "--chunk-mib") chunk_mib = static_cast<std::size_t>(std::atol(argv[i + 1]));
    else {
      std::fprintf(stderr, "memory_bench: unknown option %s\n", option.c_str());
      return 2;
    }
  }
  if (tc::device_count() == 0) {
    std::fprintf(stderr, "memory_bench: no CUDA device\n");
    return 1;
  }
  std::filesystem::create_directories(out_dir);
  const auto device = tc::live_device(0);
  check(cudaSetDevice(0), "cudaSetDevice");
  cudaStream_t stream = nullptr;
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  const auto handle = reinterpret_cast<tc::stream_handle>(stream);
  json report;
  report["device"] = {{"name", device.name}, {"architecture", device.capability.architecture_name()}};

  // ---------------------------------------------------------------- device alloc+free
  auto pool = tc::make_device_pool({.device = 0, .maximum_bytes = 0, .checks = false});
  auto async_pool = tc::make_async_pool({.device = 0});
  auto plain = tc::make_plain_device_resource(0);
  direct_async direct{stream};
  json latency = json::array();
  for (std::size_t bytes = 256; bytes <= (std::size_t{64} << 20); bytes *= 4) {
    // Warm: the size is cached by the pools.
    for (int warm = 0; warm < 10; ++warm) {
      pool->deallocate(pool->allocate(bytes, handle), bytes, handle);
      async_pool->deallocate(async_pool->allocate(bytes, handle), bytes, handle);
      direct.deallocate(direct.allocate(bytes));
    }
    check(cudaStreamSynchronize(stream), "sync");
    latency.push_back(latency_row("tunekit device pool", bytes,
                                  time_batches(200, 1000, [&] { pool->deallocate(pool->allocate(bytes, handle), bytes, handle); }), 1000));
    latency.push_back(latency_row("tunekit async pool adaptor", bytes, time_batches(200, 1000, [&] {
                                    async_pool->deallocate(async_pool->allocate(bytes, handle), bytes, handle);
                                  }), 1000));
    latency.push_back(latency_row("cudaMallocAsync+cudaFreeAsync", bytes,
                                  time_batches(200, 1000, [&] { direct.deallocate(direct.allocate(bytes)); }), 1000));
    check(cudaStreamSynchronize(stream), "sync");
    latency.push_back(latency_row("cudaMalloc+cudaFree", bytes,
                                  time_batches(30, 10, [&] { plain->deallocate(plain->allocate(bytes, handle), bytes, handle); }), 10));
    std::printf("alloc+free %9zu B: pool %.0f ns, cudaMallocAsync %.0f ns, cudaMalloc %.0f ns\n", bytes,
                latency[latency.size() - 4]["median_ns"].get<double>(), latency[latency.size() - 2]["median_ns"].get<double>(),
                latency[latency.size() - 1]["median_ns"].get<double>());
  }
  report["alloc_free"] = latency;

  const auto steps = mixed_workload(20000);
  json mixed = json::array();
  const auto mixed_row = [&](const std::string& name, double ns) {
    mixed.push_back({{"resource", name}, {"steps", steps.size()}, {"mean_ns_per_step", ns}});
    std::printf("mixed workload: %-32s %.0f ns per step\n", name.c_str(), ns);
  };
  for (int repeat = 0; repeat < 2; ++repeat) {  // the second pass is the one a warmed-up program sees
    const double pool_ns = run_mixed(steps, [&](std::size_t b) { return pool->allocate(b, handle); },
                                     [&](void* p, std::size_t b) { pool->deallocate(p, b, handle); });
    const double async_ns = run_mixed(steps, [&](std::size_t b) { return async_pool->allocate(b, handle); },
                                      [&](void* p, std::size_t b) { async_pool->deallocate(p, b, handle); });
    const double direct_ns = run_mixed(steps, [&](std::size_t b) { return direct.allocate(b); },
                                       [&](void* p, std::size_t) { direct.deallocate(p); });
    if (repeat == 1) {
      mixed_row("tunekit device pool", pool_ns);
      mixed_row("tunekit async pool adaptor", async_ns);
      mixed_row("cudaMallocAsync+cudaFreeAsync", direct_ns);
    }
  }
  check(cudaStreamSynchronize(stream), "sync");
  const std::vector<mixed_step> short_steps(steps.begin(), steps.begin() + 2000);
  mixed_row("cudaMalloc+cudaFree (first 2000 steps)",
            run_mixed(short_steps, [&](std::size_t b) { return plain->allocate(b, handle); },
                      [&](void* p, std::size_t b) { plain->deallocate(p, b, handle); }));
  report["mixed"] = mixed;
  report["device_pool_statistics"] = {{"peak_bytes", pool->statistics().peak_bytes},
                                      {"hits", pool->statistics().hits},
                                      {"misses", pool->statistics().misses},
                                      {"current_bytes", pool->statistics().current_bytes}};

  // ---------------------------------------------------------------- pinned host memory
  {
    const std::size_t bytes = std::size_t{64} << 20;
    tc::pinned_pool staging;
    staging.deallocate(staging.allocate(bytes), bytes);
    const auto reuse = time_batches(200, 1000, [&] { staging.deallocate(staging.allocate(bytes), bytes); });
    const auto host_alloc = time_batches(10, 1, [&] {
      void* p = nullptr;
      check(cudaMallocHost(&p, bytes), "cudaMallocHost");
      check(cudaFreeHost(p), "cudaFreeHost");
    });
    const auto pin = [&](tc::pinned_pool_options::method how) {
      return time_batches(10, 1, [&] {
        tc::pinned_pool fresh({.maximum_bytes = 0, .pinning = how, .checks = false});
        fresh.deallocate(fresh.allocate(bytes), bytes);
      });
    };
    const auto by_alloc = pin(tc::pinned_pool_options::method::host_alloc);
    const auto by_register = pin(tc::pinned_pool_options::method::host_register);
    report["pinned"] = {{"bytes", bytes},
                        {"pool_reuse_median_ns", percentile(reuse, 50)},
                        {"pool_reuse_p90_ns", percentile(reuse, 90)},
                        {"cudaMallocHost_cudaFreeHost_median_ns", percentile(host_alloc, 50)},
                        {"new_pool_pin_and_free_host_alloc_median_ns", percentile(by_alloc, 50)},
                        {"new_pool_pin_and_free_host_register_median_ns", percentile(by_register, 50)}};
    std::printf("pinned 64 MiB: pool reuse %.0f ns, cudaMallocHost+Free %.0f ns; pin+free by HostAlloc %.0f ns, by register %.0f ns\n",
                percentile(reuse, 50), percentile(host_alloc, 50), percentile(by_alloc, 50), percentile(by_register, 50));
  }

  // ---------------------------------------------------------------- copy ceilings
  const std::size_t chunk_bytes = chunk_mib << 20;
  tc::pinned_pool staging;
  {
    const std::size_t bytes = std::size_t{256} << 20;
    void* host = staging.allocate(bytes);
    void* gpu = nullptr;
    check(cudaMalloc(&gpu, bytes), "cudaMalloc");
    std::memset(host, 1, bytes);
    cudaEvent_t start = nullptr;
    cudaEvent_t stop = nullptr;
    check(cudaEventCreate(&start), "event");
    check(cudaEventCreate(&stop), "event");
    const auto copy_rate = [&](cudaMemcpyKind kind) {
      std::vector<double> rates;
      for (int r = 0; r < 12; ++r) {
        check(cudaEventRecord(start, stream), "record");
        if (kind == cudaMemcpyHostToDevice) check(cudaMemcpyAsync(gpu, host, bytes, kind, stream), "copy");
        else check(cudaMemcpyAsync(host, gpu, bytes, kind, stream), "copy");
        check(cudaEventRecord(stop, stream), "record");
        check(cudaEventSynchronize(stop), "sync");
        float ms = 0.0F;
        check(cudaEventElapsedTime(&ms, start, stop), "elapsed");
        if (r >= 2) rates.push_back(gbps(bytes, ms / 1000.0));
      }
      return percentile(rates, 50);
    };
    const double h2d = copy_rate(cudaMemcpyHostToDevice);
    const double d2h = copy_rate(cudaMemcpyDeviceToHost);
    // Both directions at once, as a pipeline runs them: each on its own stream.
    void* host_back = staging.allocate(bytes);
    void* gpu_back = nullptr;
    check(cudaMalloc(&gpu_back, bytes), "cudaMalloc");
    cudaStream_t other = nullptr;
    check(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking), "stream");
    cudaEvent_t other_start = nullptr;
    cudaEvent_t other_stop = nullptr;
    check(cudaEventCreate(&other_start), "event");
    check(cudaEventCreate(&other_stop), "event");
    std::vector<double> both_h2d;
    std::vector<double> both_d2h;
    for (int r = 0; r < 12; ++r) {
      check(cudaEventRecord(start, stream), "record");
      check(cudaMemcpyAsync(gpu, host, bytes, cudaMemcpyHostToDevice, stream), "copy");
      check(cudaEventRecord(stop, stream), "record");
      check(cudaEventRecord(other_start, other), "record");
      check(cudaMemcpyAsync(host_back, gpu_back, bytes, cudaMemcpyDeviceToHost, other), "copy");
      check(cudaEventRecord(other_stop, other), "record");
      check(cudaDeviceSynchronize(), "sync");
      float ms = 0.0F;
      float other_ms = 0.0F;
      check(cudaEventElapsedTime(&ms, start, stop), "elapsed");
      check(cudaEventElapsedTime(&other_ms, other_start, other_stop), "elapsed");
      if (r >= 2) {
        both_h2d.push_back(gbps(bytes, ms / 1000.0));
        both_d2h.push_back(gbps(bytes, other_ms / 1000.0));
      }
    }
    report["copy_ceilings"] = {{"bytes", bytes},
                               {"pinned_h2d_gbps", h2d},
                               {"pinned_d2h_gbps", d2h},
                               {"concurrent_h2d_gbps", percentile(both_h2d, 50)},
                               {"concurrent_d2h_gbps", percentile(both_d2h, 50)}};
    std::printf("pinned cudaMemcpy 256 MiB: H2D %.1f GB/s, D2H %.1f GB/s; both at once: H2D %.1f, D2H %.1f GB/s\n", h2d,
                d2h, percentile(both_h2d, 50), percentile(both_d2h, 50));
    check(cudaEventDestroy(other_start), "event");
    check(cudaEventDestroy(other_stop), "event");
    check(cudaStreamDestroy(other), "stream");
    check(cudaFree(gpu_back), "cudaFree");
    staging.deallocate(host_back, bytes);
    check(cudaEventDestroy(start), "event");
    check(cudaEventDestroy(stop), "event");
    check(cudaFree(gpu), "cudaFree");
    staging.deallocate(host, bytes);
  }

  // ---------------------------------------------------------------- pipeline
  {
    const auto total = static_cast<std::size_t>(pipeline_gib * static_cast<double>(std::size_t{1} << 30)) / chunk_bytes * chunk_bytes;
    const std::size_t count = total / sizeof(float);
    // Calibrate: rounds such that one chunk's work takes its copy time.
    const double copy_seconds = static_cast<double>(chunk_bytes) / (report["copy_ceilings"]["pinned_h2d_gbps"].get<double>() * 1e9);
    float* gpu_in = nullptr;
    float* gpu_out = nullptr;
    check(cudaMalloc(&gpu_in, chunk_bytes), "cudaMalloc");
    check(cudaMalloc(&gpu_out, chunk_bytes), "cudaMalloc");
    check(cudaMemset(gpu_in, 0, chunk_bytes), "memset");
    const int probe_rounds = 256;
    cudaEvent_t start = nullptr;
    cudaEvent_t stop = nullptr;
    check(cudaEventCreate(&start), "event");
    check(cudaEventCreate(&stop), "event");
    const int blocks = device.multiprocessor_count * 8;
    const auto kernel_seconds = [&](int rounds) {
      std::vector<double> times;
      for (int r = 0; r < 5; ++r) {
        check(cudaEventRecord(start, stream), "record");
        work_kernel<<<blocks, 256, 0, stream>>>(gpu_in, gpu_out, chunk_bytes / sizeof(float), rounds);
        check(cudaEventRecord(stop, stream), "record");
        check(cudaEventSynchronize(stop), "sync");
        float ms = 0.0F;
        check(cudaEventElapsedTime(&ms, start, stop), "elapsed");
        times.push_back(ms / 1000.0);
      }
      return percentile(times, 50);
    };
    const double probe = kernel_seconds(probe_rounds);
    const int rounds = std::max(1, static_cast<int>(std::lround(probe_rounds * copy_seconds / probe)));
    const double calibrated = kernel_seconds(rounds);
    report["pipeline_kernel"] = {{"chunk_bytes", chunk_bytes}, {"rounds", rounds}, {"kernel_seconds_per_chunk", calibrated},
                                 {"copy_seconds_per_chunk_at_h2d_ceiling", copy_seconds}};
    std::printf("pipeline kernel: %d rounds, %.3f ms per chunk (copy %.3f ms)\n", rounds, calibrated * 1e3, copy_seconds * 1e3);
    check(cudaFree(gpu_in), "cudaFree");
    check(cudaFree(gpu_out), "cudaFree");

    auto* in = static_cast<float*>(staging.allocate(total));
    auto* out = static_cast<float*>(staging.allocate(total));
    for (std::size_t i = 0; i < count; ++i) in[i] = static_cast<float>(i % 4096) / 4096.0f;
    const auto work = [&](const tc::pipeline_chunk& chunk, tc::stream_handle s) {
      work_kernel<<<blocks, 256, 0, reinterpret_cast<cudaStream_t>(s)>>>(
          static_cast<const float*>(chunk.input), static_cast<float*>(chunk.output), chunk.input_bytes / sizeof(float), rounds);
    };
    const auto sample_wrong = [&](const float* input, const float* output) {
      std::size_t wrong = 0;
      for (std::size_t i = 0; i < count; i += 997) wrong += output[i] != host_work(input[i], rounds);
      wrong += output[count - 1] != host_work(input[count - 1], rounds);
      return wrong;
    };
    json runs = json::array();
    double serial_wall = 0.0;
    double triple_wall = 0.0;
    for (const std::size_t depth : {1, 2, 3}) {
      tc::stream_pipeline pipeline({.device = 0, .chunk_bytes = chunk_bytes, .depth = depth}, &staging);
      (void)pipeline.run(in, chunk_bytes * depth, out, chunk_bytes * depth, work);  // warm-up
      std::memset(out, 0xA5, total);
      const auto result = pipeline.run(in, total, out, total, work);
      const auto wrong = sample_wrong(in, out);
      auto row = json::parse(result.json());
      row["memory"] = "pinned";
      row["sampled_outputs_wrong"] = wrong;
      runs.push_back(row);
      if (depth == 1) serial_wall = result.wall_seconds;
      if (depth == 3) triple_wall = result.wall_seconds;
      std::printf("pipeline depth %zu pinned: wall %.3f s, H2D %.1f GB/s, D2H %.1f GB/s, eta %.3f, %.1f GB/s end to end, wrong %zu\n",
                  depth, result.wall_seconds, result.to_device_gbps(), result.to_host_gbps(), result.efficiency(),
                  result.throughput_gbps(), wrong);
    }
    // The chunk size and depth, tuned by tunekit's tuner over this run.
    {
      std::vector<std::size_t> sizes;
      for (std::size_t mib = 8; mib <= 256; mib *= 2) sizes.push_back(mib << 20);
      const auto tuned = tc::tune_pipeline({.device = 0}, in, total, out, total, work, sizes, {2, 3, 4}, "brute_force", 0, &staging);
      report["pipeline_tuning"] = {{"chunk_bytes", tuned.chunk_bytes}, {"depth", tuned.depth},
                                   {"wall_seconds", tuned.best.wall_seconds}, {"efficiency", tuned.best.efficiency()},
                                   {"evaluations", tuned.evaluations}, {"trials", json::parse(tuned.trials)},
                                   {"sampled_outputs_wrong", sample_wrong(in, out)}};
      std::printf("pipeline tuned: chunk %zu MiB, depth %zu, wall %.3f s, eta %.3f (%zu evaluations)\n",
                  tuned.chunk_bytes >> 20, tuned.depth, tuned.best.wall_seconds, tuned.best.efficiency(), tuned.evaluations);
    }
    staging.deallocate(in, total);
    staging.deallocate(out, total);
    staging.release();
    {
      // Pageable data: staged through pinned buffers by host threads.
      std::vector<float> pageable_in(count);
      std::vector<float> pageable_out(count);
      for (std::size_t i = 0; i < count; ++i) pageable_in[i] = static_cast<float>(i % 4096) / 4096.0f;
      tc::stream_pipeline pipeline({.device = 0, .chunk_bytes = chunk_bytes, .depth = 3, .staging_threads = 8}, &staging);
      const auto result = pipeline.run(pageable_in.data(), total, pageable_out.data(), total, work);
      const auto wrong = sample_wrong(pageable_in.data(), pageable_out.data());
      auto row = json::parse(result.json());
      row["memory"] = "pageable";
      row["sampled_outputs_wrong"] = wrong;
      runs.push_back(row);
      std::printf("pipeline depth 3 pageable: wall %.3f s, eta %.3f, %.1f GB/s end to end (staging %.3f s), wrong %zu\n",
                  result.wall_seconds, result.efficiency(), result.throughput_gbps(), result.staging_seconds, wrong);
    }
    report["pipeline"] = {{"total_bytes", total}, {"runs", runs}, {"depth3_over_depth1", serial_wall / triple_wall}};
  }
  report["pinned_pool_statistics_after"] = {{"current_bytes", staging.statistics().current_bytes},
                                            {"peak_bytes", staging.statistics().peak_bytes}};
  std::ofstream file(out_dir / "memory.json");
  file << report.dump(1) << '\n';
  std::printf("wrote %s\n", (out_dir / "memory.json").string().c_str());
  check(cudaStreamDestroy(stream), "stream");
  return 0;
}
