// dendritic: dendritic integration of N neurons with D dendrites each, for a
// batch of B input vectors, in one launch (float32, FP32 FMA, no TF32):
//
//   u[b][n][d] = sum over i < I of X[b][i] W[n][d][i] + bias[n][d]
//   a = f_type[n][d](u), with type 0..3:
//     0 sigmoid          1 / (1 + e^-u)
//     1 nmda             u / (1 + e^(-0.062 u) / 3.57)
//     2 active_bp        u if u < 1, else 1 + 2 (u - 1)
//     3 multiplicative   u sigmoid(u)
//   Y[b][n] = tanh(sum over d of a[b][n][d])
//
// X is B x I, W is N x D x I, bias and type (int32) are N x D, Y is B x N.
//
// FLOPs: 2 B N D I for the drives (the nonlinearities are O(B N D) and, with
// one exponential each, far below the FMA work); bytes at least
// 4 (B I + N D I + 2 N D + B N). At the large size (B = 4096, N = 1024, D = 8,
// I = 256) that is 17.2 GFLOP against 29 MB: compute-bound, the floor is the
// FP32 FMA rate (132 SMs x 128 FMA/clock x 2 x 1.98 GHz = 66.9 TFLOP/s on an
// H100/H200 SXM: 0.26 ms).
//
// The drives are the GEMM of kernels/common/gemm_nt.cuh with A = X and
// B = W seen as (N D) x I. A block computes BM batch rows x BNN neurons; its
// BN = D BNN rows of W are laid out in shared memory so that each thread
// holds all D dendrites of TNN neurons for TM batch rows: the nonlinearity,
// the sum over the dendrites and the tanh happen in registers and u is never
// stored.
//
// D is a compile-time constant (the spec's -DDENDRITES=..., a multiple of 4);
// BK must divide I (the spec's constraints), and I must be a multiple of 4.
// Rows past the batch and neurons past N are clamped to the last one on load
// and not stored.
//
// Tunable (each a -D define):
//   BM        batch rows per block
//   BNN       neurons per block (BN = D BNN columns of u)
//   TM        batch rows per thread (4 or 8)
//   TNN       neurons per thread (TN = D TNN columns of u)
//   BK        k per shared-memory step
//   WARP_N    a warp's threads along the neurons (32 / WARP_N along the batch)
//   PAD       floats of padding per shared row
//   LOAD_ORDER  0: global float4 loads run along k, 1: along rows
//   MIN_BLOCKS  blocks per SM asked of the register allocator (__launch_bounds__)
// Threads per block: (BM / TM) (BNN / TNN). Dynamic shared memory: 8 BK (BM + D BNN + 2 PAD) bytes.
// Compiled by NVRTC: builtins only.

#ifndef DENDRITES
#define DENDRITES 8
#endif
#ifndef BM
#define BM 64
#endif
#ifndef BNN
#define BNN 8
#endif
#ifndef TM
#define TM 4
#endif
#ifndef TNN
#define TNN 1
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

static_assert(DENDRITES % 4 == 0, "a neuron's dendrites come in float4s");

#include "../common/gemm_nt.cuh"

using dendritic_tile = gemm_nt::tile<BM, DENDRITES * BNN, BK, TM, DENDRITES * TNN, WARP_N, PAD, LOAD_ORDER>;

// The four nonlinearities without branches (the dendrites of a warp's
// neurons have mixed types): types 0, 1 and 3 are top / (1 + weight e^(scale u))
// with top 1 (sigmoid) or u (nmda, multiplicative), type 2 is piecewise
// linear. The coefficients depend only on the dendrite: set once per thread.
struct nonlinearity {
  float scale, weight;
  bool top_is_one, linear;
  __device__ __forceinline__ void set(int type) {
    scale = type == 1 ? -0.062f : -1.0f;
    weight = type == 1 ? 1.0f / 3.57f : 1.0f;
    top_is_one = type == 0;
    linear = type == 2;
  }
  __device__ __forceinline__ float operator()(float u) const {
    const float smooth = (top_is_one ? 1.0f : u) / fmaf(weight, expf(scale * u), 1.0f);
    const float piecewise = u < 1.0f ? u : fmaf(2.0f, u - 1.0f, 1.0f);
    return linear ? piecewise : smooth;
  }
};

extern "C" __global__ void __launch_bounds__(dendritic_tile::threads, MIN_BLOCKS)
    dendritic_integration(float* y, const float* x, const float* w, const float* bias, const int* type, int batch,
                          int neurons, int dendrites, int inputs) {
  (void)dendrites;  // DENDRITES, the compile-time count, is what the code uses; dendrites names it for the reference
  extern __shared__ float4 shared_words[];
  float* shared = reinterpret_cast<float*>(shared_words);
  constexpr int threads_n = dendritic_tile::threads_n;
  constexpr int chunks = DENDRITES / 4;  // float4 chunks of one neuron's dendrites
  const dendritic_tile tile;
  const int n0 = blockIdx.x * BNN;
  const int m0 = blockIdx.y * BM;

  // Shared position p of the B slice: chunk p / (4 threads_n) of thread
  // (p / 4) % threads_n; the chunk is neuron chunk / chunks of the thread
  // (neuron n0 + (chunk / chunks) threads_n + thread), dendrites
  // 4 (chunk % chunks) + p % 4.
  const auto row_b = [=](int p) {
    const int chunk = p / (4 * threads_n);
    const int neuron = min(n0 + (chunk / chunks) * threads_n + (p / 4) % threads_n, neurons - 1);
    return neuron * DENDRITES + (chunk % chunks) * 4 + p % 4;
  };
  const auto row_a = [=](int p) { return min(m0 + p, batch - 1); };

  float acc[TM][DENDRITES * TNN];
  const gemm_nt::operand drives_x{x, inputs, x, inputs, inputs};
  const gemm_nt::operand drives_w{w, inputs, w, inputs, inputs};
  tile.multiply(acc, drives_x, row_a, drives_w, row_b, inputs, shared);

#pragma unroll
  for (int t = 0; t < TNN; ++t) {
    const int neuron = n0 + t * threads_n + tile.tx;  // acc[.][D t + d] is dendrite d of this neuron
    if (neuron >= neurons) continue;
    float offset[DENDRITES];
    nonlinearity f[DENDRITES];
#pragma unroll
    for (int d = 0; d < DENDRITES; ++d) {
      offset[d] = __ldg(bias + neuron * DENDRITES + d);
      f[d].set(__ldg(type + neuron * DENDRITES + d));
    }
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const int row = m0 + tile.a_position(i);
      if (row >= batch) continue;
      float sum = 0.0f;
#pragma unroll
      for (int d = 0; d < DENDRITES; ++d) sum += f[d](acc[i][DENDRITES * t + d] + offset[d]);
      y[static_cast<long long>(row) * neurons + neuron] = tanhf(sum);
    }
  }
}
