#pragma once
// The streaming pipeline: a host array larger than is convenient to hold on
// the GPU, processed chunk by chunk with the copies hidden behind the work.
// Chunk i is copied in on one stream while chunk i-1 is computed on a second
// and chunk i-2 copied back on a third (depth 3; depth 2 double-buffers, depth
// 1 runs each chunk's three stages one after another). Events order each
// chunk's stages and a slot is reused only once its previous chunk is back.
// Host memory that is not page-locked is staged through pinned buffers by
// host threads, so pageable data overlaps too. Plain C++: no CUDA header.
//
//   tunekit::cuda::stream_pipeline pipeline({.chunk_bytes = 64 << 20, .depth = 3});
//   auto report = pipeline.run(input, bytes, output, bytes,
//                              [&](const tunekit::cuda::pipeline_chunk& c, tunekit::cuda::stream_handle s) {
//                                saxpy<<<blocks(c.input_bytes / 4), 256, 0, s>>>(...);
//                              });
//   // report.efficiency(): max(stage totals) / wall time

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tunekit/cuda/memory/pinned_pool.hpp"
#include "tunekit/cuda/memory/resource.hpp"

namespace tunekit::cuda {

struct pipeline_options {
  int device = 0;
  std::size_t chunk_bytes = std::size_t{64} << 20;  ///< input bytes per chunk (the last may be shorter)
  std::size_t depth = 3;                            ///< chunks in flight: 1 serial, 2 double, 3 triple buffering
  std::size_t staging_threads = 4;                  ///< host threads copying pageable data to and from pinned buffers
};

/// One chunk as the kernel sees it: device buffers and where it lies.
struct pipeline_chunk {
  std::size_t index = 0;
  std::size_t input_offset = 0;  ///< bytes into the input
  std::size_t input_bytes = 0;
  std::size_t output_offset = 0;
  std::size_t output_bytes = 0;
  const void* input = nullptr;   ///< on the device
  void* output = nullptr;        ///< on the device
};

/// Queues the work of one chunk on `stream` (kernel launches; no synchronisation).
using chunk_function = std::function<void(const pipeline_chunk& chunk, stream_handle stream)>;

/// A generator of input: writes chunk `index` (at most `capacity` bytes) into
/// `buffer` (page-locked, the pipeline's) and returns its size; 0 ends the input.
using chunk_source = std::function<std::size_t(std::size_t index, void* buffer, std::size_t capacity)>;

/// Takes chunk's output, `chunk.output_bytes` at `output` (page-locked, valid
/// during the call only), in chunk order.
using chunk_sink = std::function<void(const pipeline_chunk& chunk, const void* output)>;

/// What one run did. Stage totals are GPU time from events around each
/// chunk's copy or work; staging is host time spent copying pageable data.
struct pipeline_report {
  std::size_t chunks = 0;
  std::size_t depth = 0;
  std::uint64_t bytes_to_device = 0;
  std::uint64_t bytes_to_host = 0;
  double to_device_seconds = 0.0;
  double compute_seconds = 0.0;
  double to_host_seconds = 0.0;
  double staging_seconds = 0.0;
  double wall_seconds = 0.0;
  bool input_staged = false;   ///< the input was pageable
  bool output_staged = false;  ///< the output was pageable

  /// max(stage totals) / wall time: 1 when the slowest stage never waits.
  [[nodiscard]] double efficiency() const;
  [[nodiscard]] double to_device_gbps() const;  ///< bytes / the copy stage's own time
  [[nodiscard]] double to_host_gbps() const;
  [[nodiscard]] double throughput_gbps() const;  ///< input bytes / wall time
  /// JSON object with every field and the derived figures.
  [[nodiscard]] std::string json() const;
};

class stream_pipeline {
 public:
  /// `staging` and `device_memory` (not owned, may be null: the pipeline
  /// makes its own pinned pool and uses plain cudaMalloc) must outlive it.
  /// Throws tunekit::invalid_argument for a zero chunk or depth.
  explicit stream_pipeline(const pipeline_options& options = {}, pinned_pool* staging = nullptr,
                           device_memory_resource* device_memory = nullptr);
  ~stream_pipeline();
  stream_pipeline(const stream_pipeline&) = delete;
  stream_pipeline& operator=(const stream_pipeline&) = delete;

  /// Runs `work` over `input` chunk by chunk; chunk i's output is
  /// output_bytes / input_bytes times its input (the ratio must give whole
  /// bytes per chunk). Returns when every chunk is back in `output`. Throws
  /// tunekit::invalid_argument for sizes that do not divide, tunekit::cuda_error
  /// when CUDA fails; errors of `work` propagate after the queued work drains.
  pipeline_report run(const void* input, std::size_t input_bytes, void* output, std::size_t output_bytes,
                      const chunk_function& work);

  /// Runs `work` over chunks a generator makes, handing each output to
  /// `sink`; a chunk's output is output_numerator / output_denominator times
  /// its input. The generator runs on this thread while earlier chunks are on
  /// the GPU, so making input overlaps the transfers and the work.
  pipeline_report run(const chunk_source& source, const chunk_sink& sink, const chunk_function& work,
                      std::size_t output_numerator = 1, std::size_t output_denominator = 1);

  [[nodiscard]] const pipeline_options& options() const;

 private:
  struct state;
  struct chunk_plan;
  pipeline_report run_chunks(const chunk_plan& plan, const chunk_function& work, std::size_t known_chunks);
  std::unique_ptr<state> state_;
};

/// What tune_pipeline found: the fastest chunk size and depth, its report,
/// and every trial as JSON ([{"chunk_bytes", "depth", "wall_seconds"}, ...]).
struct pipeline_tuning {
  std::size_t chunk_bytes = 0;
  std::size_t depth = 0;
  pipeline_report best;
  std::size_t evaluations = 0;
  std::string trials = "[]";
};

/// Tunes the chunk size and depth of a run with tunekit's tuner: `strategy`
/// (brute_force, auto, ...) over chunk_sizes x depths, at most `evaluations`
/// of them (0: every one), each timed by its second run (the first warms
/// buffers and pools). Chunk sizes giving no whole output are failures.
[[nodiscard]] pipeline_tuning tune_pipeline(const pipeline_options& base, const void* input, std::size_t input_bytes,
                                            void* output, std::size_t output_bytes, const chunk_function& work,
                                            const std::vector<std::size_t>& chunk_sizes,
                                            const std::vector<std::size_t>& depths,
                                            const std::string& strategy = "brute_force", std::size_t evaluations = 0,
                                            pinned_pool* staging = nullptr, device_memory_resource* device_memory = nullptr);

}  // namespace tunekit::cuda
