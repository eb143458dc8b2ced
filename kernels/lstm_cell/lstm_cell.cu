// lstm_cell: one step of PyTorch's LSTMCell (float32, FP32 FMA, no TF32) in
// one launch, the gate GEMM and the pointwise update fused:
//
//   gates = x W_ih^T + b_ih + h W_hh^T + b_hh        (B x 4H; gate order i, f, g, o)
//   c'    = sigmoid(f) * c + sigmoid(i) * tanh(g)
//   h'    = sigmoid(o) * tanh(c')
//
// x is B x I, h and c are B x H, W_ih is 4H x I and W_hh is 4H x H (row-major,
// as PyTorch stores them), h' and c' are B x H.
//
// FLOPs: 2 B 4H (I + H) for the gates (the pointwise part is O(B H)); bytes
// at least 4 (B (I + 2H) + 4H (I + H) + 8H + 2 B H). At the large size
// (B = I = H = 1024) that is 17.2 GFLOP against 55 MB: compute-bound, the
// floor is the FP32 FMA rate (132 SMs x 128 FMA/clock x 2 x 1.98 GHz = 66.9
// TFLOP/s on an H100/H200 SXM: 0.26 ms).
//
// The gate GEMM is kernels/common/gemm_nt.cuh with A = [x | h] (k < I from
// x, the rest from h) and B = [W_ih | W_hh]. A block computes a BM x BJ tile
// of (batch row, hidden unit) for all four gates: its BN = 4 BJ rows of W are
// j0 + jj + g H, laid out in shared memory so that each thread holds the four
// gates of TJ hidden units for TM batch rows (acc[i][4 t + g]); the update is
// then local to the thread and the gates never leave registers.
//
// Rows past the batch and hidden units past H (partial tiles) are clamped to
// the last one on load and not stored. BK must divide I and H (the spec's
// constraints), and I and H must be multiples of 4.
//
// Tunable (each a -D define):
//   BM        batch rows per block
//   BJ        hidden units per block (BN = 4 BJ gate columns)
//   TM        batch rows per thread (4 or 8)
//   TJ        hidden units per thread (TN = 4 TJ gate columns)
//   BK        k per shared-memory step
//   WARP_N    a warp's threads along the hidden units (32 / WARP_N along the batch)
//   PAD       floats of padding per shared row
//   LOAD_ORDER  0: global float4 loads run along k, 1: along rows
//   MIN_BLOCKS  blocks per SM asked of the register allocator (__launch_bounds__)
// Threads per block: (BM / TM) (BJ / TJ). Dynamic shared memory: 8 BK (BM + 4 BJ + 2 PAD) bytes.
// Compiled by NVRTC: builtins only.

#ifndef BM
#define BM 64
#endif
#ifndef BJ
#define BJ 16
#endif
#ifndef TM
#define TM 4
#endif
#ifndef TJ
#define TJ 1
#endif
#ifndef BK
#define BK 8
#endif
#ifndef WARP_N
#define WARP_N 8
#endif
#ifndef PAD
#define PAD 0
#endif
#ifndef LOAD_ORDER
#define LOAD_ORDER 0
#endif
#ifndef MIN_BLOCKS
#define MIN_BLOCKS 1
#endif

#include "../common/gemm_nt.cuh"

using lstm_tile = gemm_nt::tile<BM, 4 * BJ, BK, TM, 4 * TJ, WARP_N, PAD, LOAD_ORDER>;

__device__ __forceinline__ float sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

extern "C" __global__ void __launch_bounds__(lstm_tile::threads, MIN_BLOCKS)
    lstm_cell_forward(float* h_out, float* c_out, const float* x, const float* h, const float* c, const float* w_ih,
                      const float* w_hh, const float* b_ih, const float* b_hh, int batch, int input, int hidden) {
  extern __shared__ float4 shared_words[];
  float* shared = reinterpret_cast<float*>(shared_words);
  constexpr int threads_n = lstm_tile::threads_n;
  const lstm_tile tile;
  const int j0 = blockIdx.x * BJ;
  const int m0 = blockIdx.y * BM;

  // Shared position p of the B slice: chunk p / (4 threads_n) of thread
  // (p / 4) % threads_n, gate p % 4; hidden unit j0 + chunk * threads_n + thread.
  const auto row_b = [=](int p) {
    const int chunk = p / (4 * threads_n);
    const int unit = min(j0 + chunk * threads_n + (p / 4) % threads_n, hidden - 1);
    return (p % 4) * hidden + unit;
  };
  const auto row_a = [=](int p) { return min(m0 + p, batch - 1); };

  float acc[TM][4 * TJ];
  tile.multiply(acc, gemm_nt::operand{x, input, h, hidden, input}, row_a,
                gemm_nt::operand{w_ih, input, w_hh, hidden, input}, row_b, input + hidden, shared);

#pragma unroll
  for (int t = 0; t < TJ; ++t) {
    const int unit = j0 + t * threads_n + tile.tx;  // acc[.][4 t + g] is gate g of this unit
    if (unit >= hidden) continue;
    float bias[4];
#pragma unroll
    for (int g = 0; g < 4; ++g) bias[g] = __ldg(b_ih + g * hidden + unit) + __ldg(b_hh + g * hidden + unit);
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const int row = m0 + tile.a_position(i);
      if (row >= batch) continue;
      const long long at = static_cast<long long>(row) * hidden + unit;
      const float in_gate = sigmoid(acc[i][4 * t] + bias[0]);
      const float forget_gate = sigmoid(acc[i][4 * t + 1] + bias[1]);
      const float cell_gate = tanhf(acc[i][4 * t + 2] + bias[2]);
      const float out_gate = sigmoid(acc[i][4 * t + 3] + bias[3]);
      const float c_next = fmaf(forget_gate, __ldg(c + at), in_gate * cell_gate);
      c_out[at] = c_next;
      h_out[at] = out_gate * tanhf(c_next);
    }
  }
}
