#include "tunekit/cuda/pipeline.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <limits>
#include <numeric>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cuda/detail/cuda_check.hpp"
#include "tunekit/error.hpp"
#include "tunekit/search_space.hpp"
#include "tunekit/strategy.hpp"
#include "tunekit/tuner.hpp"

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

// What the core loop needs from a run over an array or a generator: chunk
// i's input (0 bytes: no more), and what to do with a staged output.
struct stream_pipeline::chunk_plan {
  std::size_t chunk_bytes = 0;   ///< input capacity of a chunk
  std::size_t per_in = 1;        ///< output bytes = input bytes / per_in * per_out
  std::size_t per_out = 1;
  bool stage_input = false;      ///< inputs arrive in the slot's pinned buffer
  bool stage_output = false;     ///< outputs land in the slot's pinned buffer
  /// Chunk `index`'s input: fills `chunk.input_bytes`/`input_offset` and
  /// returns where the bytes are (the slot's staging buffer when staged).
  std::function<const void*(pipeline_chunk& chunk, void* staging)> produce;
  /// Where chunk's output goes when not staged.
  std::function<void*(const pipeline_chunk& chunk)> destination;
  /// A staged output, back on the host.
  std::function<void(const pipeline_chunk& chunk, const void* staged)> consume;
};

pipeline_report stream_pipeline::run_chunks(const chunk_plan& plan, const chunk_function& work,
                                            std::size_t known_chunks) {
  auto& s = *state_;
  const auto& options = s.options;
  const auto output_of = [&](std::size_t bytes) -> std::size_t {
    if (bytes % plan.per_in != 0)
      throw invalid_argument("pipeline: a chunk of " + std::to_string(bytes) + " input bytes has no whole number of output bytes");
    return bytes / plan.per_in * plan.per_out;
  };
  const std::size_t chunk_bytes = plan.chunk_bytes;
  const std::size_t chunk_output_bytes = output_of(chunk_bytes);
  const std::size_t depth = std::max<std::size_t>(1, std::min(options.depth, known_chunks));
  TUNEKIT_CUDA_CHECK(cudaSetDevice(options.device));

  pipeline_report report;
  report.depth = depth;
  report.input_staged = plan.stage_input;
  report.output_staged = plan.stage_output;
  if ((plan.stage_input || plan.stage_output) && s.staging == nullptr) {
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
      if (plan.stage_input) each.staging_input = s.staging->allocate(chunk_bytes);
      if (plan.stage_output && chunk_output_bytes > 0) each.staging_output = s.staging->allocate(chunk_output_bytes);
      for (auto& event : each.events) TUNEKIT_CUDA_CHECK(cudaEventCreate(&event));
    }
    // Device memory from a pool may be in use on its stream until now.
    TUNEKIT_CUDA_CHECK(cudaStreamSynchronize(s.streams[1]));

    const auto started = clock::now();
    double staging_seconds = 0.0;
    const auto timed_host = [&](auto&& body) {
      const auto copy_start = clock::now();
      body();
      staging_seconds += std::chrono::duration<double>(clock::now() - copy_start).count();
    };
    // Waits for a slot's chunk, adds its stage times, hands staged output on.
    const auto retire = [&](slot& each) {
      if (!each.busy) return;
      TUNEKIT_CUDA_CHECK(cudaEventSynchronize(each.events[5]));
      report.to_device_seconds += elapsed_seconds(each.events[0], each.events[1]);
      report.compute_seconds += elapsed_seconds(each.events[2], each.events[3]);
      if (each.chunk.output_bytes > 0) report.to_host_seconds += elapsed_seconds(each.events[4], each.events[5]);
      if (plan.stage_output && each.chunk.output_bytes > 0)
        timed_host([&] { plan.consume(each.chunk, each.staging_output); });
      each.busy = false;
    };

    std::size_t i = 0;
    std::size_t output_offset = 0;
    for (;; ++i) {
      auto& each = slots[i % depth];
      retire(each);  // the slot's previous chunk is back: its buffers and events are free
      auto& chunk = each.chunk;
      chunk.index = i;
      chunk.input = each.device_input;
      chunk.output = each.device_output;
      const void* source = nullptr;
      if (plan.stage_input) timed_host([&] { source = plan.produce(chunk, each.staging_input); });
      else source = plan.produce(chunk, nullptr);
      if (chunk.input_bytes == 0) break;
      if (chunk.input_bytes > chunk_bytes) throw invalid_argument("pipeline: a chunk larger than chunk_bytes");
      chunk.output_offset = output_offset;
      chunk.output_bytes = output_of(chunk.input_bytes);
      output_offset += chunk.output_bytes;
      void* destination = plan.stage_output ? each.staging_output : plan.destination(chunk);
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
    report.chunks = i;
    // The last chunks, oldest first.
    for (std::size_t k = i > depth ? i - depth : 0; k < i; ++k) retire(slots[k % depth]);
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

pipeline_report stream_pipeline::run(const void* input, std::size_t input_bytes, void* output,
                                     std::size_t output_bytes, const chunk_function& work) {
  const auto& options = state_->options;
  if (input_bytes == 0) return {};
  chunk_plan plan;
  const std::size_t common = std::gcd(input_bytes, output_bytes);
  plan.per_in = input_bytes / common;  // output_bytes / input_bytes = per_out / per_in
  plan.per_out = output_bytes / common;
  plan.chunk_bytes = std::min(options.chunk_bytes, input_bytes);
  const std::size_t chunks = (input_bytes + plan.chunk_bytes - 1) / plan.chunk_bytes;
  // Every chunk, the last included, must have whole output bytes: checked before anything runs.
  for (const std::size_t bytes : {plan.chunk_bytes, input_bytes - (chunks - 1) * plan.chunk_bytes})
    if (bytes % plan.per_in != 0)
      throw invalid_argument("pipeline: a chunk of " + std::to_string(bytes) + " input bytes has no whole number of output bytes");
  plan.stage_input = !is_pinned(input);
  plan.stage_output = output_bytes > 0 && !is_pinned(output);
  const std::size_t threads = options.staging_threads;
  plan.produce = [&](pipeline_chunk& chunk, void* staging) -> const void* {
    chunk.input_offset = chunk.index * plan.chunk_bytes;
    chunk.input_bytes = chunk.input_offset < input_bytes ? std::min(plan.chunk_bytes, input_bytes - chunk.input_offset) : 0;
    const auto* from = static_cast<const char*>(input) + chunk.input_offset;
    if (staging == nullptr || chunk.input_bytes == 0) return from;
    parallel_copy(staging, from, chunk.input_bytes, threads);
    return staging;
  };
  plan.destination = [&](const pipeline_chunk& chunk) -> void* { return static_cast<char*>(output) + chunk.output_offset; };
  plan.consume = [&](const pipeline_chunk& chunk, const void* staged) {
    parallel_copy(static_cast<char*>(output) + chunk.output_offset, staged, chunk.output_bytes, threads);
  };
  return run_chunks(plan, work, chunks);
}

pipeline_report stream_pipeline::run(const chunk_source& source, const chunk_sink& sink, const chunk_function& work,
                                     std::size_t output_numerator, std::size_t output_denominator) {
  if (output_denominator == 0) throw invalid_argument("pipeline: an output ratio with denominator 0");
  chunk_plan plan;
  const std::size_t common = std::gcd(output_numerator, output_denominator);
  plan.per_in = output_denominator / std::max<std::size_t>(common, 1);
  plan.per_out = output_numerator / std::max<std::size_t>(common, 1);
  plan.chunk_bytes = state_->options.chunk_bytes;
  if (plan.chunk_bytes % plan.per_in != 0)
    throw invalid_argument("pipeline: chunk_bytes has no whole number of output bytes");
  plan.stage_input = true;
  plan.stage_output = plan.per_out > 0;
  std::size_t offset = 0;
  plan.produce = [&](pipeline_chunk& chunk, void* staging) -> const void* {
    chunk.input_offset = offset;
    chunk.input_bytes = source(chunk.index, staging, plan.chunk_bytes);
    offset += chunk.input_bytes;
    return staging;
  };
  plan.destination = [](const pipeline_chunk&) -> void* { return nullptr; };
  plan.consume = [&](const pipeline_chunk& chunk, const void* staged) { sink(chunk, staged); };
  return run_chunks(plan, work, state_->options.depth);
}

pipeline_tuning tune_pipeline(const pipeline_options& base, const void* input, std::size_t input_bytes, void* output,
                              std::size_t output_bytes, const chunk_function& work,
                              const std::vector<std::size_t>& chunk_sizes, const std::vector<std::size_t>& depths,
                              const std::string& strategy, std::size_t evaluations, pinned_pool* staging,
                              device_memory_resource* device_memory) {
  if (chunk_sizes.empty() || depths.empty()) throw invalid_argument("tune_pipeline: no chunk sizes or no depths");
  space_definition definition;
  const auto values = [](const std::vector<std::size_t>& from) {
    std::vector<parameter_value> out;
    for (const auto each : from) out.emplace_back(static_cast<std::int64_t>(each));
    return out;
  };
  definition.parameters = {{"chunk_bytes", values(chunk_sizes)}, {"depth", values(depths)}};
  const auto space = search_space::enumerate(definition);
  auto search = make_strategy(strategy);
  nlohmann::json trials = nlohmann::json::array();
  pipeline_tuning found;
  double best_wall = std::numeric_limits<double>::infinity();
  const auto evaluate = [&](std::size_t index) -> evaluation_result {
    const auto configuration = space.at(index);
    pipeline_options options = base;
    options.chunk_bytes = chunk_sizes[configuration.value_indices[0]];
    options.depth = depths[configuration.value_indices[1]];
    nlohmann::json trial = {{"chunk_bytes", options.chunk_bytes}, {"depth", options.depth}};
    try {
      stream_pipeline pipeline(options, staging, device_memory);
      (void)pipeline.run(input, input_bytes, output, output_bytes, work);
      const auto report = pipeline.run(input, input_bytes, output, output_bytes, work);
      trial["wall_seconds"] = report.wall_seconds;
      trial["efficiency"] = report.efficiency();
      trials.push_back(trial);
      if (report.wall_seconds < best_wall) {
        best_wall = report.wall_seconds;
        found.chunk_bytes = options.chunk_bytes;
        found.depth = options.depth;
        found.best = report;
      }
      return {evaluation_status::ok, report.wall_seconds * 1000.0, report.wall_seconds * 2000.0};
    } catch (const invalid_argument& problem) {
      trial["failed"] = problem.what();
      trials.push_back(trial);
      return {evaluation_status::launch_error, 0.0, 0.0};
    }
  };
  budget limit;
  if (evaluations > 0) limit.evaluations = evaluations;
  const auto run = tune(*search, space, evaluate, limit, 0);
  found.evaluations = run.evaluations;
  found.trials = trials.dump();
  if (found.depth == 0) throw invalid_argument("tune_pipeline: no chunk size and depth ran");
  return found;
}

}  // namespace tunekit::cuda
