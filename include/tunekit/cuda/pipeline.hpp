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

  [[nodiscard]] const pipeline_options& options() const;

 private:
  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace tunekit::cuda
