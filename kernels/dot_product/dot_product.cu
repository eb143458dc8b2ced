// dot_product: s = sum of a_i * b_i over n float32, in one launch, to a
// relative error of 1e-5 against float64 at any n. Bytes: 8 n; FLOPs: 2 n.
//
// Each thread accumulates its grid-stride share in float64 (Hopper's FP64
// rate is half its FP32 rate: far above what the memory feeds), a block
// reduces its threads' sums with warp shuffles, writes partials[block] and
// takes a ticket; the last block to arrive adds the partials in a fixed
// order, writes s with a plain store and leaves partials and the counter at
// zero for the next launch (outputs are poisoned before a run, so nothing is
// accumulated into s). No floating-point atomics: one configuration always
// gives the same s.
//
// Tunable (each a -D define):
//   block_size_x   threads of a block (a multiple of 32)
//   num_blocks     blocks of the grid (at most max_blocks)
//   vector_width   floats per load: 1, 2 or 4
// Compiled by NVRTC: builtins only, no headers.

#ifndef block_size_x
#define block_size_x 256
#endif
#ifndef num_blocks
#define num_blocks 1024
#endif
#ifndef vector_width
#define vector_width 4
#endif

__device__ __forceinline__ double products(const float* a, const float* b, long long v) {
#if vector_width == 4
  const float4 x = __ldg(reinterpret_cast<const float4*>(a) + v);
  const float4 y = __ldg(reinterpret_cast<const float4*>(b) + v);
  return (static_cast<double>(x.x) * y.x + static_cast<double>(x.y) * y.y) +
         (static_cast<double>(x.z) * y.z + static_cast<double>(x.w) * y.w);
#elif vector_width == 2
  const float2 x = __ldg(reinterpret_cast<const float2*>(a) + v);
  const float2 y = __ldg(reinterpret_cast<const float2*>(b) + v);
  return static_cast<double>(x.x) * y.x + static_cast<double>(x.y) * y.y;
#else
  return static_cast<double>(__ldg(a + v)) * __ldg(b + v);
#endif
}

__device__ __forceinline__ double block_sum(double value) {
  __shared__ double warps[block_size_x / 32];
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffffu, value, offset);
  if (threadIdx.x % 32 == 0) warps[threadIdx.x / 32] = value;
  __syncthreads();
  value = 0.0;
  if (threadIdx.x < 32) {
    for (int w = threadIdx.x; w < block_size_x / 32; w += 32) value += warps[w];
    for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffffu, value, offset);
  }
  return value;  // in thread 0
}

extern "C" __global__ void __launch_bounds__(block_size_x)
    dot_product(double* s, const float* a, const float* b, double* partials, unsigned int* arrivals, int n) {
  const long long vectors = n / vector_width;
  double sum = 0.0;
  for (long long v = static_cast<long long>(blockIdx.x) * block_size_x + threadIdx.x; v < vectors;
       v += static_cast<long long>(num_blocks) * block_size_x)
    sum += products(a, b, v);
  if (blockIdx.x == 0 && threadIdx.x < n - vectors * vector_width) {
    const long long i = vectors * vector_width + threadIdx.x;
    sum += static_cast<double>(a[i]) * b[i];
  }
  sum = block_sum(sum);
  __shared__ bool last;
  if (threadIdx.x == 0) {
    partials[blockIdx.x] = sum;
    __threadfence();
    last = atomicAdd(arrivals, 1u) == num_blocks - 1;
  }
  __syncthreads();
  if (!last) return;
  // The last block: every partial is visible (each writer fenced before its ticket).
  double total = 0.0;
  for (int k = threadIdx.x; k < num_blocks; k += block_size_x) {
    total += static_cast<volatile double*>(partials)[k];
    partials[k] = 0.0;
  }
  __syncthreads();
  total = block_sum(total);
  if (threadIdx.x == 0) {
    s[0] = total;
    *arrivals = 0u;
  }
}
