// The streaming pipeline on the GPU: every depth, pinned and pageable host
// memory, a last chunk shorter than the rest, an output of another size than
// the input; every element checked; nothing left allocated. Labelled gpu.
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "tunekit/cuda/device.hpp"
#include "tunekit/cuda/memory/pinned_pool.hpp"
#include "tunekit/cuda/pipeline.hpp"
#include "tunekit/error.hpp"

namespace {

namespace tc = tunekit::cuda;

__global__ void affine(const float* in, float* out, std::size_t count) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < count; i += std::size_t{gridDim.x} * blockDim.x)
    out[i] = 2.0f * in[i] + 1.0f;
}

__global__ void pair_sums(const float* in, float* out, std::size_t count) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < count; i += std::size_t{gridDim.x} * blockDim.x)
    out[i] = in[2 * i] + in[2 * i + 1];
}

void launch_affine(const tc::pipeline_chunk& chunk, tc::stream_handle stream) {
  affine<<<264, 256, 0, reinterpret_cast<cudaStream_t>(stream)>>>(static_cast<const float*>(chunk.input),
                                                                  static_cast<float*>(chunk.output),
                                                                  chunk.input_bytes / sizeof(float));
}

bool have_device() { return tc::device_count() > 0; }

struct host_buffers {
  float* input = nullptr;
  float* output = nullptr;
};

TEST(PipelineGpu, EveryDepthPinnedAndPageableGivesEveryElement) {
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  const std::size_t count = (std::size_t{5} << 20) + 12345;  // a last chunk shorter than the rest
  const std::size_t bytes = count * sizeof(float);
  tc::pinned_pool staging;
  std::vector<float> pageable_in(count);
  std::vector<float> pageable_out(count);
  for (std::size_t i = 0; i < count; ++i) pageable_in[i] = static_cast<float>(i % 1000) * 0.5f;
  auto* pinned_in = static_cast<float*>(staging.allocate(bytes));
  auto* pinned_out = static_cast<float*>(staging.allocate(bytes));
  std::copy(pageable_in.begin(), pageable_in.end(), pinned_in);
  for (const std::size_t depth : {1, 2, 3}) {
    for (const bool pinned : {false, true}) {
      tc::stream_pipeline pipeline({.chunk_bytes = std::size_t{1} << 22, .depth = depth}, &staging);
      float* in = pinned ? pinned_in : pageable_in.data();
      float* out = pinned ? pinned_out : pageable_out.data();
      std::fill(out, out + count, -7.0f);
      const auto report = pipeline.run(in, bytes, out, bytes, launch_affine);
      EXPECT_EQ(report.chunks, (bytes + (std::size_t{1} << 22) - 1) >> 22);
      EXPECT_EQ(report.depth, depth);
      EXPECT_EQ(report.bytes_to_device, bytes);
      EXPECT_EQ(report.bytes_to_host, bytes);
      EXPECT_EQ(report.input_staged, !pinned);
      EXPECT_EQ(report.output_staged, !pinned);
      EXPECT_GT(report.to_device_seconds, 0.0);
      EXPECT_GT(report.compute_seconds, 0.0);
      EXPECT_GT(report.to_host_seconds, 0.0);
      EXPECT_GT(report.efficiency(), 0.0);
      EXPECT_LE(report.efficiency(), 1.05);
      std::size_t wrong = 0;
      for (std::size_t i = 0; i < count; ++i) wrong += out[i] != 2.0f * in[i] + 1.0f;
      EXPECT_EQ(wrong, 0u) << "depth " << depth << (pinned ? " pinned" : " pageable");
    }
  }
  staging.deallocate(pinned_in, bytes);
  staging.deallocate(pinned_out, bytes);
  EXPECT_EQ(staging.statistics().current_bytes, 0u);
}

TEST(PipelineGpu, AnOutputHalfTheInputAndBadSizes) {
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  const std::size_t pairs = std::size_t{3} << 20;
  std::vector<float> in(2 * pairs);
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i % 97);
  std::vector<float> out(pairs, -1.0f);
  tc::stream_pipeline pipeline({.chunk_bytes = std::size_t{1} << 21, .depth = 3});
  const auto report = pipeline.run(in.data(), in.size() * sizeof(float), out.data(), out.size() * sizeof(float),
                                   [](const tc::pipeline_chunk& chunk, tc::stream_handle stream) {
                                     pair_sums<<<132, 256, 0, reinterpret_cast<cudaStream_t>(stream)>>>(
                                         static_cast<const float*>(chunk.input), static_cast<float*>(chunk.output),
                                         chunk.output_bytes / sizeof(float));
                                   });
  EXPECT_EQ(report.bytes_to_host * 2, report.bytes_to_device);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < pairs; ++i) wrong += out[i] != in[2 * i] + in[2 * i + 1];
  EXPECT_EQ(wrong, 0u);

  // One output byte per three input bytes: a 1 MiB chunk has no whole output.
  std::vector<char> odd_in(std::size_t{3} << 20);
  std::vector<char> odd_out(std::size_t{1} << 20);
  tc::stream_pipeline odd({.chunk_bytes = std::size_t{1} << 20, .depth = 3});
  EXPECT_THROW((void)odd.run(odd_in.data(), odd_in.size(), odd_out.data(), odd_out.size(), launch_affine),
               tunekit::invalid_argument);
  EXPECT_THROW(tc::stream_pipeline({.chunk_bytes = 0}), tunekit::invalid_argument);
  EXPECT_THROW(tc::stream_pipeline({.depth = 0}), tunekit::invalid_argument);
}

TEST(PipelineGpu, AFailingChunkFunctionPropagatesAndLeavesNothingAllocated) {
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  tc::pinned_pool staging;
  {
    tc::stream_pipeline pipeline({.chunk_bytes = std::size_t{1} << 20, .depth = 3}, &staging);
    std::vector<float> in(std::size_t{4} << 20, 1.0f);
    std::vector<float> out(in.size());
    EXPECT_THROW((void)pipeline.run(in.data(), in.size() * sizeof(float), out.data(), out.size() * sizeof(float),
                                    [](const tc::pipeline_chunk& chunk, tc::stream_handle stream) {
                                      if (chunk.index == 5) throw std::runtime_error("the work failed");
                                      launch_affine(chunk, stream);
                                    }),
                 std::runtime_error);
  }
  EXPECT_EQ(staging.statistics().current_bytes, 0u);
  EXPECT_EQ(staging.statistics().current_count, 0u);
}

TEST(PipelineGpu, AGeneratorFeedsChunksAndASinkTakesThemInOrder) {
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  const std::size_t chunk = std::size_t{1} << 20;
  const std::size_t total = 13 * chunk + 4096;  // 14 chunks, the last short
  tc::stream_pipeline pipeline({.chunk_bytes = chunk, .depth = 3});
  std::size_t produced = 0;
  std::size_t next_expected = 0;
  std::size_t wrong = 0;
  const auto report = pipeline.run(
      [&](std::size_t index, void* buffer, std::size_t capacity) -> std::size_t {
        const std::size_t bytes = std::min(capacity, total - produced);
        auto* values = static_cast<float*>(buffer);
        for (std::size_t i = 0; i < bytes / sizeof(float); ++i) values[i] = static_cast<float>((index * 7 + i) % 1000);
        produced += bytes;
        return bytes;
      },
      [&](const tc::pipeline_chunk& done, const void* output) {
        EXPECT_EQ(done.index, next_expected++);
        const auto* values = static_cast<const float*>(output);
        for (std::size_t i = 0; i < done.output_bytes / sizeof(float); ++i)
          wrong += values[i] != 2.0f * static_cast<float>((done.index * 7 + i) % 1000) + 1.0f;
      },
      launch_affine);
  EXPECT_EQ(report.chunks, 14u);
  EXPECT_EQ(next_expected, 14u);
  EXPECT_EQ(report.bytes_to_device, total);
  EXPECT_EQ(report.bytes_to_host, total);
  EXPECT_EQ(wrong, 0u);
}

TEST(PipelineGpu, TheTunerPicksAChunkSizeAndDepthThatOverlap) {
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  tc::pinned_pool staging;
  const std::size_t bytes = std::size_t{64} << 20;
  auto* in = static_cast<float*>(staging.allocate(bytes));
  auto* out = static_cast<float*>(staging.allocate(bytes));
  std::fill(in, in + bytes / sizeof(float), 1.5f);
  const auto tuned = tc::tune_pipeline({}, in, bytes, out, bytes, launch_affine,
                                       {std::size_t{1} << 20, std::size_t{4} << 20, std::size_t{16} << 20}, {1, 3},
                                       "brute_force", 0, &staging);
  EXPECT_EQ(tuned.evaluations, 6u);
  EXPECT_EQ(tuned.depth, 3u) << tuned.trials;  // overlapping beats serial for a copy-bound run
  EXPECT_GT(tuned.best.wall_seconds, 0.0);
  EXPECT_EQ(out[bytes / sizeof(float) - 1], 4.0f);
  staging.deallocate(in, bytes);
  staging.deallocate(out, bytes);
}

}  // namespace
