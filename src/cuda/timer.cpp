#include "tunekit/cuda/timer.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cuda/detail/cuda_check.hpp"
#include "cuda/detail/timer_kernels.hpp"
#include "tunekit/error.hpp"

namespace tunekit::cuda {

std::string_view to_string(timing_mode mode) {
  switch (mode) {
    case timing_mode::cold: return "cold";
    case timing_mode::hot: return "hot";
    case timing_mode::graph: return "graph";
    case timing_mode::stream: return "stream";
  }
  return "unknown";
}

timing_mode parse_timing_mode(std::string_view text) {
  for (const auto mode : {timing_mode::cold, timing_mode::hot, timing_mode::graph, timing_mode::stream})
    if (text == to_string(mode)) return mode;
  throw invalid_argument("unknown timing mode '" + std::string(text) + "' (cold, hot, graph or stream)");
}

// ---------------------------------------------------------------- l2_flush

l2_flush::l2_flush() {
  int device = 0;
  TUNEKIT_CUDA_CHECK(cudaGetDevice(&device));
  int l2_bytes = 0;
  int multiprocessors = 0;
  TUNEKIT_CUDA_CHECK(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device));
  TUNEKIT_CUDA_CHECK(cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device));
  // Twice the L2, at least 1 MiB, whole 16-byte words, plus a word for the sink.
  bytes_ = std::max<std::size_t>(2 * static_cast<std::size_t>(l2_bytes), std::size_t{1} << 20);
  bytes_ = (bytes_ + 15) / 16 * 16;
  TUNEKIT_CUDA_CHECK(cudaMalloc(&buffer_, bytes_ + 16));
  // Defined contents, once: the flush reads them on every call.
  TUNEKIT_CUDA_CHECK(cudaMemset(buffer_, 0, bytes_ + 16));
  blocks_ = std::max(1, multiprocessors) * 4;
}

std::shared_ptr<const l2_flush> l2_flush::shared() {
  int device = 0;
  TUNEKIT_CUDA_CHECK(cudaGetDevice(&device));
  static std::mutex guard;
  // Deliberately never destroyed: freeing device memory from a static
  // destructor races the runtime's own teardown at exit.
  static auto* buffers = new std::map<int, std::shared_ptr<const l2_flush>>();
  const std::lock_guard lock(guard);
  auto& buffer = (*buffers)[device];
  if (buffer == nullptr) buffer = std::make_shared<const l2_flush>();
  return buffer;
}

l2_flush::~l2_flush() {
  if (buffer_ != nullptr) TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaFree(buffer_));
}

l2_flush::l2_flush(l2_flush&& other) noexcept
    : buffer_(std::exchange(other.buffer_, nullptr)), bytes_(std::exchange(other.bytes_, 0)),
      blocks_(std::exchange(other.blocks_, 0)) {}

l2_flush& l2_flush::operator=(l2_flush&& other) noexcept {
  if (this != &other) {
    if (buffer_ != nullptr) TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaFree(buffer_));
    buffer_ = std::exchange(other.buffer_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    blocks_ = std::exchange(other.blocks_, 0);
  }
  return *this;
}

void l2_flush::flush(stream_handle stream) const {
  if (buffer_ == nullptr) throw error("l2_flush: used after being moved from");
  detail::launch_flush_read(stream, buffer_, bytes_, blocks_,
                            reinterpret_cast<float*>(static_cast<char*>(buffer_) + bytes_));
}

// ---------------------------------------------------------------- shared stream

stream_handle shared_timing_stream(int ordinal) {
  static std::mutex guard;
  // Deliberately never destroyed, like the shared flush buffers.
  static auto* streams = new std::map<int, cudaStream_t>();
  const std::lock_guard lock(guard);
  auto& stream = (*streams)[ordinal];
  if (stream == nullptr) {
    int current = 0;
    TUNEKIT_CUDA_CHECK(cudaGetDevice(&current));
    TUNEKIT_CUDA_CHECK(cudaSetDevice(ordinal));
    const cudaError_t status = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    TUNEKIT_CUDA_CHECK(cudaSetDevice(current));
    if (status != cudaSuccess) {
      streams->erase(ordinal);
      TUNEKIT_CUDA_CHECK(status);
    }
  }
  return reinterpret_cast<stream_handle>(stream);
}

// ---------------------------------------------------------------- event_timer

namespace {

// Commands (launches, event records) queued behind the holding kernel in one
// batch. The runtime queues about a thousand before a launch call blocks;
// blocking while the holding kernel waits for the host would stall until its
// timeout, so batches stay well under that, and halve after a timeout.
constexpr std::size_t initial_queue_budget = 512;
constexpr std::uint64_t hold_timeout_ns = 1'000'000'000;

}  // namespace

struct event_timer::state {
  launch_function launch;
  timer_options options;
  cudaStream_t stream = nullptr;
  std::vector<cudaEvent_t> events;
  std::shared_ptr<const l2_flush> flush;
  cudaGraphExec_t graph = nullptr;
  int* host_flags = nullptr;  ///< [0] release, [1] timed out; pinned and mapped
  std::size_t group = 1;
  double estimate_us = 0.0;
  double flush_us = 0.0;
  std::size_t queue_budget = initial_queue_budget;
  std::size_t hold_timeouts = 0;
  std::size_t in_flight = 0;
  bool holding = false;

  ~state() {
    if (stream != nullptr) TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaStreamSynchronize(stream));
    for (auto* event : events) TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaEventDestroy(event));
    if (graph != nullptr) TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaGraphExecDestroy(graph));
    if (host_flags != nullptr) TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaFreeHost(host_flags));
  }

  void ensure_events(std::size_t count) {
    while (events.size() < count) {
      cudaEvent_t event = nullptr;
      TUNEKIT_CUDA_CHECK(cudaEventCreate(&event));
      events.push_back(event);
    }
  }

  void run_once() {
    launch(reinterpret_cast<stream_handle>(stream));
    TUNEKIT_CUDA_CHECK(cudaGetLastError());
  }

  // Queues the holding kernel; release() lets it go.
  void hold() {
    std::atomic_ref<int>(host_flags[0]).store(0, std::memory_order_relaxed);
    std::atomic_ref<int>(host_flags[1]).store(0, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    detail::launch_hold(stream, &host_flags[0], &host_flags[1], hold_timeout_ns);
    holding = true;
  }

  void release() {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    std::atomic_ref<int>(host_flags[0]).store(1, std::memory_order_release);
  }

  float elapsed_us(cudaEvent_t from, cudaEvent_t to) const {
    float ms = 0.0f;
    TUNEKIT_CUDA_CHECK(cudaEventElapsedTime(&ms, from, to));
    return ms * 1000.0f;
  }

  // Times `runs` back-to-back runs behind the holding kernel: one run's time.
  double time_runs(std::size_t runs) {
    ensure_events(2);
    hold();
    TUNEKIT_CUDA_CHECK(cudaEventRecord(events[0], stream));
    for (std::size_t i = 0; i < runs; ++i) run_once();
    TUNEKIT_CUDA_CHECK(cudaEventRecord(events[1], stream));
    release();
    TUNEKIT_CUDA_CHECK(cudaEventSynchronize(events[1]));
    holding = false;
    return elapsed_us(events[0], events[1]) / static_cast<double>(runs);
  }

  void capture_graph() {
    cudaGraph_t captured = nullptr;
    TUNEKIT_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    try {
      for (std::size_t i = 0; i < group; ++i) launch(reinterpret_cast<stream_handle>(stream));
    } catch (...) {
      cudaGraph_t abandoned = nullptr;
      TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaStreamEndCapture(stream, &abandoned));
      if (abandoned != nullptr) TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaGraphDestroy(abandoned));
      throw;
    }
    TUNEKIT_CUDA_CHECK(cudaStreamEndCapture(stream, &captured));
    const cudaError_t status = cudaGraphInstantiate(&graph, captured, 0);
    TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaGraphDestroy(captured));
    TUNEKIT_CUDA_CHECK(status);
    TUNEKIT_CUDA_CHECK(cudaGraphUpload(graph, stream));
    TUNEKIT_CUDA_CHECK(cudaGraphLaunch(graph, stream));
    TUNEKIT_CUDA_CHECK(cudaStreamSynchronize(stream));
  }

  // Queue entries one sample needs, for sizing batches behind the hold.
  [[nodiscard]] std::size_t commands_per_sample() const {
    switch (options.mode) {
      case timing_mode::cold: return 4;  // flush, event, run, event
      case timing_mode::hot: return group + 1;
      case timing_mode::graph: return 2;  // graph, event
      case timing_mode::stream: return group + 1;
    }
    return 1;
  }

  [[nodiscard]] double sample_us() const {
    switch (options.mode) {
      case timing_mode::cold: return estimate_us + flush_us;
      case timing_mode::hot:
      case timing_mode::graph:
      case timing_mode::stream: return estimate_us * static_cast<double>(group);
    }
    return estimate_us;
  }
};

event_timer::event_timer(launch_function launch, timer_options options) : state_(std::make_unique<state>()) {
  if (!launch) throw invalid_argument("event timer: no launch function");
  if (!(options.group_microseconds > 0.0) || !std::isfinite(options.group_microseconds))
    throw invalid_argument("event timer: group time must be a positive number of microseconds");
  if (options.max_group == 0) throw invalid_argument("event timer: max_group must be at least 1");
  state_->launch = std::move(launch);
  state_->options = options;
  TUNEKIT_CUDA_CHECK(cudaSetDevice(options.device));
  state_->stream = reinterpret_cast<cudaStream_t>(options.stream != nullptr ? options.stream
                                                                            : shared_timing_stream(options.device));
  void* flags = nullptr;
  TUNEKIT_CUDA_CHECK(cudaHostAlloc(&flags, 2 * sizeof(int), cudaHostAllocMapped | cudaHostAllocPortable));
  state_->host_flags = static_cast<int*>(flags);
  state_->host_flags[0] = 1;
  state_->host_flags[1] = 0;
  if (options.mode == timing_mode::cold)
    state_->flush = options.flush != nullptr ? options.flush : l2_flush::shared();
  state_->ensure_events(2);
}

event_timer::~event_timer() = default;

const timer_options& event_timer::options() const { return state_->options; }
std::size_t event_timer::group() const { return state_->group; }
double event_timer::warm_up_estimate_us() const { return state_->estimate_us; }
std::size_t event_timer::hold_timeouts() const { return state_->hold_timeouts; }

std::string_view event_timer::do_mode() const { return to_string(state_->options.mode); }

std::size_t event_timer::do_runs_per_sample() const {
  return state_->options.mode == timing_mode::cold ? 1 : state_->group;
}

void event_timer::do_warm_up(double seconds) {
  auto& s = *state_;
  TUNEKIT_CUDA_CHECK(cudaSetDevice(s.options.device));
  if (s.graph != nullptr) {
    TUNEKIT_CUDA_CHECK_NOEXCEPT(cudaGraphExecDestroy(s.graph));
    s.graph = nullptr;
  }
  const auto start = std::chrono::steady_clock::now();
  // The first run loads modules and touches the data: untimed.
  s.run_once();
  TUNEKIT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  // Double the runs timed together until they last a millisecond (or the
  // queue budget is reached): one run's time, launch gaps excluded.
  std::size_t runs = 1;
  double estimate = s.time_runs(runs);
  while (estimate * static_cast<double>(runs) < 1000.0 && runs * 2 <= s.queue_budget / 2) {
    runs *= 2;
    estimate = s.time_runs(runs);
  }
  // Then keep running until the warm-up time is spent (clocks ramp up).
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds)
    estimate = s.time_runs(runs);
  s.estimate_us = std::max(estimate, 1e-3);
  if (s.flush) {
    s.ensure_events(2);
    TUNEKIT_CUDA_CHECK(cudaEventRecord(s.events[0], s.stream));
    s.flush->flush(reinterpret_cast<stream_handle>(s.stream));
    TUNEKIT_CUDA_CHECK(cudaEventRecord(s.events[1], s.stream));
    TUNEKIT_CUDA_CHECK(cudaEventSynchronize(s.events[1]));
    s.flush_us = s.elapsed_us(s.events[0], s.events[1]);
  }
  s.group = 1;
  if (s.options.mode != timing_mode::cold) {
    const double wanted = std::ceil(s.options.group_microseconds / s.estimate_us);
    s.group = static_cast<std::size_t>(std::clamp(wanted, 1.0, static_cast<double>(s.options.max_group)));
  }
  if (s.options.mode == timing_mode::graph) s.capture_graph();
}

std::size_t event_timer::do_batch_size(double seconds) const {
  const auto& s = *state_;
  const double wanted = seconds * 1e6 / std::max(s.sample_us(), 1e-3);
  double limit = 1e5;
  if (s.options.mode != timing_mode::stream)
    limit = static_cast<double>(std::max<std::size_t>(1, s.queue_budget / s.commands_per_sample()));
  return static_cast<std::size_t>(std::clamp(wanted, 1.0, limit));
}

void event_timer::do_begin(std::size_t count) {
  auto& s = *state_;
  const auto stream = reinterpret_cast<stream_handle>(s.stream);
  const bool cold = s.options.mode == timing_mode::cold;
  s.ensure_events(cold ? 2 * count : count + 1);
  if (s.options.mode != timing_mode::stream) s.hold();
  switch (s.options.mode) {
    case timing_mode::cold:
      for (std::size_t i = 0; i < count; ++i) {
        s.flush->flush(stream);
        TUNEKIT_CUDA_CHECK(cudaEventRecord(s.events[2 * i], s.stream));
        s.run_once();
        TUNEKIT_CUDA_CHECK(cudaEventRecord(s.events[2 * i + 1], s.stream));
      }
      break;
    case timing_mode::graph:
      TUNEKIT_CUDA_CHECK(cudaEventRecord(s.events[0], s.stream));
      for (std::size_t i = 0; i < count; ++i) {
        TUNEKIT_CUDA_CHECK(cudaGraphLaunch(s.graph, s.stream));
        TUNEKIT_CUDA_CHECK(cudaEventRecord(s.events[i + 1], s.stream));
      }
      break;
    case timing_mode::hot:
    case timing_mode::stream:
      TUNEKIT_CUDA_CHECK(cudaEventRecord(s.events[0], s.stream));
      for (std::size_t i = 0; i < count; ++i) {
        for (std::size_t run = 0; run < s.group; ++run) s.run_once();
        TUNEKIT_CUDA_CHECK(cudaEventRecord(s.events[i + 1], s.stream));
      }
      break;
  }
  if (s.holding) s.release();
  s.in_flight = count;
}

std::vector<double> event_timer::do_end() {
  auto& s = *state_;
  const bool cold = s.options.mode == timing_mode::cold;
  const std::size_t count = s.in_flight;
  s.in_flight = 0;
  TUNEKIT_CUDA_CHECK(cudaEventSynchronize(s.events[cold ? 2 * count - 1 : count]));
  if (s.holding) {
    s.holding = false;
    if (std::atomic_ref<int>(s.host_flags[1]).load(std::memory_order_acquire) != 0) {
      ++s.hold_timeouts;
      s.queue_budget = std::max<std::size_t>(8, s.queue_budget / 2);
    }
  }
  std::vector<double> samples(count);
  const double per_sample = cold ? 1.0 : static_cast<double>(s.group);
  for (std::size_t i = 0; i < count; ++i) {
    const auto from = cold ? s.events[2 * i] : s.events[i];
    const auto to = cold ? s.events[2 * i + 1] : s.events[i + 1];
    samples[i] = static_cast<double>(s.elapsed_us(from, to)) / per_sample;
  }
  return samples;
}

}  // namespace tunekit::cuda
