#include "tunekit/cuda/pipeline.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <numeric>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cuda/detail/cuda_check.hpp"
#include "tunekit/error.hpp"

namespace tunekit::cuda {

namespace {

using clock = std::chrono::steady_clock;

bool is_pinned(const void* pointer) {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, pointer) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return attributes.type == cudaMemoryTypeHost;
}

// memcpy split over `threads` host threads: one thread copies pageable
// memory at a third of what the bus takes.
void parallel_copy(void* to, const void* from, std::size_t bytes, std::size_t threads) {
  constexpr std::size_t least_per_thread = std::size_t{4} << 20;
  const std::size_t parts = std::max<std::size_t>(1, std::min(threads, bytes / least_per_thread));
  if (parts == 1) {
    std::memcpy(to, from, bytes);
    return;
  }
  const std::size_t share = (bytes / parts + 4095) / 4096 * 4096;
  std::vector<std::thread> helpers;
  for (std::size_t part = 1; part < parts; ++part) {
    const std::size_t begin = std::min(bytes, part * share);
    const std::size_t end = std::min(bytes, begin + share);
    if (begin < end)
      helpers.emplace_back([=] {
        std::memcpy(static_cast<char*>(to) + begin, static_cast<const char*>(from) + begin, end - begin);
      });
  }
  std::memcpy(to, from, std::min(bytes, share));
  for (auto& helper : helpers) helper.join();
}

double elapsed_seconds(cudaEvent_t start, cudaEvent_t end) {
  float milliseconds = 0.0F;
  TUNEKIT_CUDA_CHECK(cudaEventElapsedTime(&milliseconds, start, end));
  return milliseconds / 1000.0;
}

// One buffer set: a chunk's device memory, its pinned staging and the
// events that time and order its three stages.
struct slot {
  void* device_input = nullptr;
  void* device_output = nullptr;
  void* staging_input = nullptr;
  void* staging_output = nullptr;
  cudaEvent_t events[6] = {};  // to-device start/end, compute start/end, to-host start/end
  bool busy = false;
  pipeline_chunk chunk;
};

}  // namespace

double pipeline_report::efficiency() const {
  const double slowest = std::max({to_device_seconds, compute_seconds, to_host_seconds});
  return wall_seconds > 0.0 ? slowest / wall_seconds : 0.0;
}

double pipeline_report::to_device_gbps() const {
  return to_device_seconds > 0.0 ? static_cast<double>(bytes_to_device) / to_device_seconds / 1e9 : 0.0;
}

double pipeline_report::to_host_gbps() const {
  return to_host_seconds > 0.0 ? static_cast<double>(bytes_to_host) / to_host_seconds / 1e9 : 0.0;
}

double pipeline_report::throughput_gbps() const {
  return wall_seconds > 0.0 ? static_cast<double>(bytes_to_device) / wall_seconds / 1e9 : 0.0;
}

std::string pipeline_report::json() const {
  return nlohmann::ordered_json{{"chunks", chunks},
                                {"depth", depth},
                                {"bytes_to_device", bytes_to_device},
                                {"bytes_to_host", bytes_to_host},
                                {"to_device_seconds", to_device_seconds},
                                {"compute_seconds", compute_seconds},
                                {"to_host_seconds", to_host_seconds},
                                {"staging_seconds", staging_seconds},
                                {"wall_seconds", wall_seconds},
                                {"input_staged", input_staged},
                                {"output_staged", output_staged},
                                {"efficiency", efficiency()},
                                {"to_device_gbps", to_device_gbps()},
                                {"to_host_gbps", to_host_gbps()},
                                {"throughput_gbps", throughput_gbps()}}
      .dump();
}

struct stream_pipeline::state {
  pipeline_options options;
  pinned_pool* staging = nullptr;
  std::unique_ptr<pinned_pool> own_staging;
  device_memory_resource* device_memory = nullptr;
  cudaStream_t streams[3] = {};  // to device, compute, to host
};

stream_pipeline::stream_pipeline(const pipeline_options& options, pinned_pool* staging,
                                 device_memory_resource* device_memory)
    : state_(std::make_unique<state>()) {
  if (options.chunk_bytes == 0) throw invalid_argument("pipeline: chunk_bytes must be positive");
  if (options.depth == 0) throw invalid_argument("pipeline: depth must be at least 1");
  state_->options = options;
  state_->options.staging_threads = std::max<std::size_t>(1, options.staging_threads);
  state_->staging = staging;
  state_->device_memory = device_memory;
  TUNEKIT_CUDA_CHECK(cudaSetDevice(options.device));
  for (auto& stream : state_->streams) TUNEKIT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
}

stream_pipeline::~stream_pipeline() {
  for (auto& stream : state_->streams)
    if (stream != nullptr) TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaStreamDestroy(stream));
}

const pipeline_options& stream_pipeline::options() const { return state_->options; }

pipeline_report stream_pipeline::run(const void* input, std::size_t input_bytes, void* output,
                                     std::size_t output_bytes, const chunk_function& work) {
  auto& s = *state_;
  const auto& options = s.options;
  if (input_bytes == 0) return {};
  // Chunk outputs are output_bytes / input_bytes of their input: whole bytes each.
  const std::size_t common = std::gcd(input_bytes, output_bytes);
  const std::size_t per_in = input_bytes / common;  // output_bytes / input_bytes = per_out / per_in
  const std::size_t per_out = output_bytes / common;
  const auto output_of = [&](std::size_t bytes) -> std::size_t {
    if (bytes % per_in != 0)
      throw invalid_argument("pipeline: a chunk of " + std::to_string(bytes) + " input bytes has no whole number of output bytes");
    return bytes / per_in * per_out;
  };
  const std::size_t chunk_bytes = std::min(options.chunk_bytes, input_bytes);
  const std::size_t chunks = (input_bytes + chunk_bytes - 1) / chunk_bytes;
  const std::size_t chunk_output_bytes = output_of(chunk_bytes);
  (void)output_of(input_bytes - (chunks - 1) * chunk_bytes);
  const std::size_t depth = std::min(options.depth, chunks);
  TUNEKIT_CUDA_CHECK(cudaSetDevice(options.device));

  pipeline_report report;
  report.chunks = chunks;
  report.depth = depth;
  report.input_staged = !is_pinned(input);
  report.output_staged = output_bytes > 0 && !is_pinned(output);
  if ((report.input_staged || report.output_staged) && s.staging == nullptr) {
    s.own_staging = std::make_unique<pinned_pool>();
    s.staging = s.own_staging.get();
  }

  std::vector<slot> slots(depth);
  // Everything a slot holds goes back, whatever happens.
  const auto free_slots = [&] {
    for (auto& each : slots) {
      if (each.device_input != nullptr) {
        if (s.device_memory != nullptr) s.device_memory->deallocate(each.device_input, chunk_bytes, s.streams[1]);
        else TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaFree(each.device_input));
      }
      if (each.device_output != nullptr) {
        if (s.device_memory != nullptr) s.device_memory->deallocate(each.device_output, chunk_output_bytes, s.streams[1]);
        else TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaFree(each.device_output));
      }
      if (each.staging_input != nullptr) s.staging->deallocate(each.staging_input, chunk_bytes);
      if (each.staging_output != nullptr) s.staging->deallocate(each.staging_output, chunk_output_bytes);
      for (auto& event : each.events)
        if (event != nullptr) TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaEventDestroy(event));
    }
  };

  try {
    for (auto& each : slots) {
      if (s.device_memory != nullptr) {
        each.device_input = s.device_memory->allocate(chunk_bytes, s.streams[1]);
        if (chunk_output_bytes > 0) each.device_output = s.device_memory->allocate(chunk_output_bytes, s.streams[1]);
      } else {
        TUNEKIT_CUDA_CHECK(cudaMalloc(&each.device_input, chunk_bytes));
        if (chunk_output_bytes > 0) TUNEKIT_CUDA_CHECK(cudaMalloc(&each.device_output, chunk_output_bytes));
      }
      if (report.input_staged) each.staging_input = s.staging->allocate(chunk_bytes);
      if (report.output_staged) each.staging_output = s.staging->allocate(chunk_output_bytes);
      for (auto& event : each.events) TUNEKIT_CUDA_CHECK(cudaEventCreate(&event));
    }
    // Device memory from a pool may be in use on its stream until now.
    TUNEKIT_CUDA_CHECK(cudaStreamSynchronize(s.streams[1]));

    const auto started = clock::now();
    double staging_seconds = 0.0;
    // Waits for a slot's chunk, adds its stage times, drains staged output.
    const auto retire = [&](slot& each) {
      if (!each.busy) return;
      TUNEKIT_CUDA_CHECK(cudaEventSynchronize(each.events[5]));
      report.to_device_seconds += elapsed_seconds(each.events[0], each.events[1]);
      report.compute_seconds += elapsed_seconds(each.events[2], each.events[3]);
      if (each.chunk.output_bytes > 0) report.to_host_seconds += elapsed_seconds(each.events[4], each.events[5]);
      if (report.output_staged && each.chunk.output_bytes > 0) {
        const auto copy_start = clock::now();
        parallel_copy(static_cast<char*>(output) + each.chunk.output_offset, each.staging_output,
                      each.chunk.output_bytes, options.staging_threads);
        staging_seconds += std::chrono::duration<double>(clock::now() - copy_start).count();
      }
      each.busy = false;
    };

    for (std::size_t i = 0; i < chunks; ++i) {
      auto& each = slots[i % depth];
      retire(each);  // the slot's previous chunk is back: its buffers and events are free
      auto& chunk = each.chunk;
      chunk.index = i;
      chunk.input_offset = i * chunk_bytes;
      chunk.input_bytes = std::min(chunk_bytes, input_bytes - chunk.input_offset);
      chunk.output_offset = i * chunk_output_bytes;
      chunk.output_bytes = output_of(chunk.input_bytes);
      chunk.input = each.device_input;
      chunk.output = each.device_output;
      const auto* source = static_cast<const char*>(input) + chunk.input_offset;
      if (report.input_staged) {
        const auto copy_start = clock::now();
        parallel_copy(each.staging_input, source, chunk.input_bytes, options.staging_threads);
        staging_seconds += std::chrono::duration<double>(clock::now() - copy_start).count();
        source = static_cast<const char*>(each.staging_input);
      }
      auto* destination = report.output_staged ? static_cast<char*>(each.staging_output)
                                               : static_cast<char*>(output) + chunk.output_offset;
      // To the device, then the work once it is there, then back once done.
      TUNEKIT_CUDA_CHECK(cudaEventRecord(each.events[0], s.streams[0]));
      TUNEKIT_CUDA_CHECK(cudaMemcpyAsync(each.device_input, source, chunk.input_bytes, cudaMemcpyHostToDevice, s.streams[0]));
      TUNEKIT_CUDA_CHECK(cudaEventRecord(each.events[1], s.streams[0]));
      TUNEKIT_CUDA_CHECK(cudaStreamWaitEvent(s.streams[1], each.events[1], 0));
      TUNEKIT_CUDA_CHECK(cudaEventRecord(each.events[2], s.streams[1]));
      work(chunk, reinterpret_cast<stream_handle>(s.streams[1]));
      TUNEKIT_CUDA_CHECK(cudaGetLastError());
      TUNEKIT_CUDA_CHECK(cudaEventRecord(each.events[3], s.streams[1]));
      TUNEKIT_CUDA_CHECK(cudaStreamWaitEvent(s.streams[2], each.events[3], 0));
      TUNEKIT_CUDA_CHECK(cudaEventRecord(each.events[4], s.streams[2]));
      if (chunk.output_bytes > 0)
        TUNEKIT_CUDA_CHECK(
            cudaMemcpyAsync(destination, each.device_output, chunk.output_bytes, cudaMemcpyDeviceToHost, s.streams[2]));
      TUNEKIT_CUDA_CHECK(cudaEventRecord(each.events[5], s.streams[2]));
      each.busy = true;
      report.bytes_to_device += chunk.input_bytes;
      report.bytes_to_host += chunk.output_bytes;
    }
    // The last chunks, oldest first.
    for (std::size_t i = chunks > depth ? chunks - depth : 0; i < chunks; ++i) retire(slots[i % depth]);
    report.wall_seconds = std::chrono::duration<double>(clock::now() - started).count();
    report.staging_seconds = staging_seconds;
  } catch (...) {
    for (auto& stream : s.streams) (void)cudaStreamSynchronize(stream);
    free_slots();
    throw;
  }
  free_slots();
  return report;
}

}  // namespace tunekit::cuda
