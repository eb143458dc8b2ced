// gemm_nt.cuh: the main loop of a float32 "NT" matrix product on CUDA cores
// (FP32 FMA, no tensor cores, no TF32), shared by the kernels whose epilogue
// needs a whole tile of products in one thread (lstm_cell, dendritic).
//
//   C[m][n] = sum over k < K of A[m][k] * B[n][k]
//
// Both operands are row-major with k contiguous (PyTorch's x and W in
// x W^T). A block computes a block_m x block_n tile of C in registers: each
// of its threads_m x threads_n = (block_m / thread_m) x (block_n / thread_n)
// threads holds thread_m x thread_n sums. Per step of block_k it loads a
// block_m x block_k slice of A and a block_n x block_k slice of B with float4
// loads along k, stores them transposed (k-major) into shared memory, and
// each thread then reads, per k, its thread_m values of A and thread_n values
// of B as float4s and does thread_m thread_n FMAs. Two shared buffers and
// one slice in registers: the global loads of step t + 1 are in flight while
// step t is multiplied, one barrier per step.
//
// Which rows of A and B a block uses is the caller's: row_a(p) and row_b(p)
// give the global row for shared position p (0 <= p < block_m, resp.
// block_n). The caller clamps rows past the end to a valid row and discards
// their sums. A thread's sums are acc[i][j] for the shared positions
//   a_position(i) = (i / 4) * 4 * threads_m + ty * 4 + i % 4
//   b_position(j) = (j / 4) * 4 * threads_n + tx * 4 + j % 4
// (a thread's float4s sit 4 * threads apart, so a warp reads consecutive
// words); the caller lays its columns out so that what one epilogue needs
// (the four gates of a hidden unit, the dendrites of a neuron) lands in one
// thread.
//
// k may come from two row-major sources, [0, k_split) from `first` and
// [k_split, K) from `second` (LSTM: x | h and W_ih | W_hh); block_k must
// divide k_split and K, and each source's row stride must be a multiple of 4
// (float4 alignment). Offsets are 32-bit: each source holds fewer than 2^31 floats.
//
// Template parameters (the callers' tunables):
//   block_m, block_n, block_k   the block tile and the k step
//   thread_m, thread_n          a thread's sums, each a multiple of 4
//   warp_n       a warp's threads along n (the rest, 32 / warp_n, along m):
//                the shape of the warp's reads of shared memory
//   pad          floats added to each shared row (bank spread of the
//                transposing stores)
//   load_order   0: a thread's float4 loads run along k (coalesced rows);
//                1: along rows (consecutive threads, consecutive rows:
//                conflict-free transposing stores)
// Shared memory: two buffers of block_k (block_m + block_n + 2 pad) floats,
// tile<...>::shared_bytes, in the kernel's dynamic shared memory.
// NVRTC, builtins only; includes float4.cuh beside it.
#ifndef TUNEKIT_GEMM_NT_CUH
#define TUNEKIT_GEMM_NT_CUH

#include "float4.cuh"

namespace gemm_nt {

/// An operand: rows of K floats, k < k_split from `first`, the rest from `second`.
struct operand {
  const float* first;
  int first_stride;
  const float* second;
  int second_stride;
  int k_split;
};

template <int block_m, int block_n, int block_k, int thread_m, int thread_n, int warp_n, int pad, int load_order>
struct tile {
  static constexpr int threads_m = block_m / thread_m;
  static constexpr int threads_n = block_n / thread_n;
  static constexpr int threads = threads_m * threads_n;
  static constexpr int stride_a = block_m + pad;  // floats per k row of the A slice
  static constexpr int stride_b = block_n + pad;
  static constexpr int buffer_floats = block_k * (stride_a + stride_b);
  /// Dynamic shared memory a block needs, in bytes.
  static constexpr int shared_bytes = 2 * buffer_floats * 4;
  static constexpr int vectors_a = block_m * block_k / 4;  // float4s of one A slice
  static constexpr int vectors_b = block_n * block_k / 4;
  static constexpr int loads_a = (vectors_a + threads - 1) / threads;  // per thread
  static constexpr int loads_b = (vectors_b + threads - 1) / threads;

  static_assert(thread_m % 4 == 0 && thread_n % 4 == 0, "a thread's sums come in float4s");
  static_assert(block_m % thread_m == 0 && block_n % thread_n == 0, "the threads tile the block");
  static_assert(block_k % 4 == 0, "k steps in float4s");
  static_assert(pad % 4 == 0, "shared rows stay float4-aligned");
  static_assert(32 % warp_n == 0 && threads_n % warp_n == 0 && threads_m % (32 / warp_n) == 0,
                "whole warps of warp_n x (32 / warp_n) threads");

  int tid, tx, ty;

  __device__ __forceinline__ tile() {
    tid = static_cast<int>(threadIdx.x);
    const int lane = tid % 32;
    const int warp = tid / 32;
    constexpr int warps_n = threads_n / warp_n;
    tx = (warp % warps_n) * warp_n + lane % warp_n;
    ty = (warp / warps_n) * (32 / warp_n) + lane / warp_n;
  }

  __device__ __forceinline__ int a_position(int i) const { return (i / 4) * 4 * threads_m + ty * 4 + i % 4; }
  __device__ __forceinline__ int b_position(int j) const { return (j / 4) * 4 * threads_n + tx * 4 + j % 4; }

  // The slice position (row p, float4 q along k) of this thread's s-th load.
  template <int rows>
  __device__ __forceinline__ static void slot(int l, int& p, int& q) {
    if (load_order == 0) {
      p = l / (block_k / 4);
      q = l % (block_k / 4);
    } else {
      p = l % rows;
      q = l / rows;
    }
  }

  template <class RowA, class RowB>
  __device__ __forceinline__ void multiply(float (&acc)[thread_m][thread_n], const operand& a, RowA row_a, const operand& b,
                                           RowB row_b, int k_total, float* shared) const {
#pragma unroll
    for (int i = 0; i < thread_m; ++i)
#pragma unroll
      for (int j = 0; j < thread_n; ++j) acc[i][j] = 0.0f;

    // Element offsets of this thread's loads in each source, at k = 0.
    int a_first[loads_a], a_second[loads_a], b_first[loads_b], b_second[loads_b];
#pragma unroll
    for (int s = 0; s < loads_a; ++s) {
      int p, q;
      slot<block_m>(min(tid + s * threads, vectors_a - 1), p, q);
      const int row = row_a(p);
      a_first[s] = row * a.first_stride + q * 4;
      a_second[s] = row * a.second_stride + q * 4;
    }
#pragma unroll
    for (int s = 0; s < loads_b; ++s) {
      int p, q;
      slot<block_n>(min(tid + s * threads, vectors_b - 1), p, q);
      const int row = row_b(p);
      b_first[s] = row * b.first_stride + q * 4;
      b_second[s] = row * b.second_stride + q * 4;
    }

    float4 staged_a[loads_a], staged_b[loads_b];
    const auto fetch = [&](int step) {
      const int k = step * block_k;
      const bool in_first_a = k < a.k_split;
      const float* base_a = in_first_a ? a.first + k : a.second + (k - a.k_split);
#pragma unroll
      for (int s = 0; s < loads_a; ++s)
        staged_a[s] = __ldg(reinterpret_cast<const float4*>(base_a + (in_first_a ? a_first[s] : a_second[s])));
      const bool in_first_b = k < b.k_split;
      const float* base_b = in_first_b ? b.first + k : b.second + (k - b.k_split);
#pragma unroll
      for (int s = 0; s < loads_b; ++s)
        staged_b[s] = __ldg(reinterpret_cast<const float4*>(base_b + (in_first_b ? b_first[s] : b_second[s])));
    };
    const auto stash = [&](int buffer) {
      float* slice_a = shared + buffer * buffer_floats;
      float* slice_b = slice_a + block_k * stride_a;
#pragma unroll
      for (int s = 0; s < loads_a; ++s) {
        const int l = tid + s * threads;
        if (vectors_a % threads == 0 || l < vectors_a) {
          int p, q;
          slot<block_m>(l, p, q);
          float* to = slice_a + q * 4 * stride_a + p;
          spread4(staged_a[s], to, stride_a);
        }
      }
#pragma unroll
      for (int s = 0; s < loads_b; ++s) {
        const int l = tid + s * threads;
        if (vectors_b % threads == 0 || l < vectors_b) {
          int p, q;
          slot<block_n>(l, p, q);
          float* to = slice_b + q * 4 * stride_b + p;
          spread4(staged_b[s], to, stride_b);
        }
      }
    };

    // Step t multiplies buffer t % 2 while the registers hold slice t + 1,
    // loaded one whole step earlier: each slice's global loads are issued
    // just before a barrier and have the next step's FMAs to arrive in.
    // Unconditional (past the end, the last slice is fetched again and
    // stored unused): behind a branch the compiler sinks the loads towards
    // their stores, where their latency shows.
    const int steps = k_total / block_k;
    fetch(0);
    stash(0);
    fetch(min(1, steps - 1));
    __syncthreads();
    for (int step = 0; step < steps; ++step) {
      const int buffer = step & 1;
      const float* slice_a = shared + buffer * buffer_floats + ty * 4;
      const float* slice_b = shared + buffer * buffer_floats + block_k * stride_a + tx * 4;
#pragma unroll
      for (int k = 0; k < block_k; ++k) {
        float fa[thread_m], fb[thread_n];
#pragma unroll
        for (int i = 0; i < thread_m; i += 4) {
          spread4(*reinterpret_cast<const float4*>(slice_a + k * stride_a + i * threads_m), fa + i);
        }
#pragma unroll
        for (int j = 0; j < thread_n; j += 4) {
          spread4(*reinterpret_cast<const float4*>(slice_b + k * stride_b + j * threads_n), fb + j);
        }
#pragma unroll
        for (int i = 0; i < thread_m; ++i)
#pragma unroll
          for (int j = 0; j < thread_n; ++j) acc[i][j] = fmaf(fa[i], fb[j], acc[i][j]);
      }
      // The other buffer was last read in the previous step, before the
      // barrier that ended it.
      stash(buffer ^ 1);
      fetch(min(step + 2, steps - 1));
      __syncthreads();
    }
  }
};

}  // namespace gemm_nt

#endif  // TUNEKIT_GEMM_NT_CUH
