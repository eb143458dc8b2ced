#pragma once
// Timing CUDA work with events: the sample source of the measurement engine
// for the CUDA backend. Plain C++ header: streams travel as the runtime's
// opaque handle type, so no CUDA header is needed to include this.
//
//   tunekit::cuda::event_timer timer([&](tunekit::cuda::stream_handle stream) {
//     triad<<<grid, block, 0, stream>>>(a, b, c, n);
//   }, {.mode = tunekit::cuda::timing_mode::cold});
//   tunekit::measure::relative_noise criterion;
//   const auto timing = tunekit::measure::measure(timer, criterion, telemetry.get());
//
// Modes (see timing_mode) differ in what a sample includes. Every mode but
// stream queues a batch behind a kernel that holds the stream until the whole
// batch is queued, so the host's launch rate never shows in a sample.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "tunekit/measure/engine.hpp"

struct CUstream_st;

namespace tunekit::cuda {

/// cudaStream_t, without the CUDA header.
using stream_handle = CUstream_st*;

/// Enqueues one run of the work on the stream (kernel launches, copies).
/// It must only enqueue: no synchronisation, no allocation, the same work
/// every call (graph mode captures it). Errors it raises propagate.
using launch_function = std::function<void(stream_handle)>;

enum class timing_mode {
  /// One run per sample, the L2 cache flushed before each: the work finds
  /// its inputs in device memory, as a kernel does after other work ran.
  cold,
  /// Back-to-back runs with the data left in L2 by the run before; one
  /// sample is a group of runs between two events, divided by the group.
  hot,
  /// A group of runs captured once into a CUDA graph; one sample is one
  /// replay divided by the group. For kernels of a few microseconds, where
  /// launch gaps inside a stream are a large part of the time.
  graph,
  /// Groups of runs launched one by one as the host gets to them, with no
  /// holding kernel: the per-launch time an application issuing launches
  /// one after another sees, launch overhead included.
  stream,
};

/// "cold", "hot", "graph", "stream".
[[nodiscard]] std::string_view to_string(timing_mode mode);
/// The inverse of to_string; throws tunekit::invalid_argument otherwise.
[[nodiscard]] timing_mode parse_timing_mode(std::string_view text);

/// Flushes the L2 cache: reads a device buffer twice the L2's size, so no
/// earlier data survives, and leaves the cache clean (reads, not writes, so
/// the timed work pays no write-backs). Owns the buffer; move-only.
class l2_flush {
 public:
  /// On the current device. Throws tunekit::cuda_error when allocation fails.
  l2_flush();
  ~l2_flush();
  l2_flush(l2_flush&&) noexcept;
  l2_flush& operator=(l2_flush&&) noexcept;
  l2_flush(const l2_flush&) = delete;
  l2_flush& operator=(const l2_flush&) = delete;

  /// The process's flush buffer for the current device, made on first use
  /// and kept for the life of the process (never freed: the driver reclaims
  /// it at exit). Timers made one after another flush through it instead of
  /// allocating (and clearing) 2 x L2 each: on an H200 a memset before a
  /// measurement moved the cold median of a 13.5 us triad by up to 2.1% for
  /// the next second, and timers with buffers of their own gave medians 1.7%
  /// apart where shared ones agreed to 0.0% (bench/results/h200/measure.json).
  [[nodiscard]] static std::shared_ptr<const l2_flush> shared();

  /// Enqueues the flush on the stream.
  void flush(stream_handle stream) const;
  [[nodiscard]] std::size_t bytes() const { return bytes_; }

 private:
  void* buffer_ = nullptr;
  std::size_t bytes_ = 0;
  int blocks_ = 0;
};

struct timer_options {
  int device = 0;
  timing_mode mode = timing_mode::hot;
  /// hot, graph and stream modes: a group lasts at least this long, so that
  /// the timestamps' resolution (32 ns on an H200) and the cost of recording
  /// events stay a negligible part of a sample. Groups are 1 to max_group runs.
  double group_microseconds = 100.0;
  std::size_t max_group = 1000;
  /// The stream to run on; null: shared_timing_stream() of the device.
  stream_handle stream = nullptr;
  /// cold mode: the flush buffer to use (it is only read, so timers may
  /// share one); null: l2_flush::shared() of the device.
  std::shared_ptr<const l2_flush> flush = nullptr;
};

/// The process's timing stream for device `ordinal`: made on first use and
/// kept for the life of the process, so timers made one per variant cost no
/// stream creation. Timers share it unless given a stream; timers sharing it
/// must not measure at the same time, which would spoil both measurements.
[[nodiscard]] stream_handle shared_timing_stream(int ordinal);

/// The event timer. Not copyable; one batch at a time, from one thread.
class event_timer final : public measure::sample_source {
 public:
  /// Makes the device current, creates the events (and stream, flush buffer
  /// or graph as the mode needs). Throws tunekit::invalid_argument for an
  /// empty function or options out of range, tunekit::cuda_error when CUDA fails.
  event_timer(launch_function launch, timer_options options = {});
  ~event_timer() override;
  event_timer(const event_timer&) = delete;
  event_timer& operator=(const event_timer&) = delete;

  [[nodiscard]] const timer_options& options() const;
  /// Runs per group, set by warm_up(); 1 before it and in cold mode.
  [[nodiscard]] std::size_t group() const;
  /// One run's time seen in the warm-up (µs), the basis of group().
  [[nodiscard]] double warm_up_estimate_us() const;
  /// Batches whose holding kernel gave up waiting (it waits at most a second):
  /// their samples may include host gaps. The timer shrinks its batches
  /// when this happens; a non-zero count after measure() deserves a look.
  [[nodiscard]] std::size_t hold_timeouts() const;

 private:
  std::string_view do_mode() const override;
  void do_warm_up(double seconds) override;
  std::size_t do_batch_size(double seconds) const override;
  std::size_t do_runs_per_sample() const override;
  void do_begin(std::size_t count) override;
  std::vector<double> do_end() override;

  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace tunekit::cuda
