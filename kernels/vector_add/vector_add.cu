// vector_add: c = a + b over n float32 (the workload suite's first kernel).
// Bytes: 12 n (two reads, one write); FLOPs: n. At 2^28 elements it moves
// 3.2 GB, so the floor is 3.2 GB / the device's copy bandwidth.
//
// Tunable (each a -D define):
//   block_size_x    threads of a block
//   vector_width    floats per load and store: 1, 2 or 4 (float4)
//   items           vectors a thread handles, one block-stride apart
// The grid covers n / (block_size_x * vector_width * items) blocks; the tail
// that does not fill a vector is done element by element.
// Compiled by NVRTC: builtins only, no headers.

#ifndef block_size_x
#define block_size_x 256
#endif
#ifndef vector_width
#define vector_width 4
#endif
#ifndef items
#define items 1
#endif

#if vector_width == 4
typedef float4 vector_t;
__device__ __forceinline__ vector_t add(vector_t x, vector_t y) { return make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w); }
#elif vector_width == 2
typedef float2 vector_t;
__device__ __forceinline__ vector_t add(vector_t x, vector_t y) { return make_float2(x.x + y.x, x.y + y.y); }
#else
typedef float vector_t;
__device__ __forceinline__ vector_t add(vector_t x, vector_t y) { return x + y; }
#endif

extern "C" __global__ void __launch_bounds__(block_size_x) vector_add(float* c, const float* a, const float* b, int n) {
  const long long vectors = n / vector_width;
  const long long first = static_cast<long long>(blockIdx.x) * block_size_x * items + threadIdx.x;
  const vector_t* av = reinterpret_cast<const vector_t*>(a);
  const vector_t* bv = reinterpret_cast<const vector_t*>(b);
  vector_t* cv = reinterpret_cast<vector_t*>(c);
#pragma unroll
  for (int k = 0; k < items; ++k) {
    const long long v = first + static_cast<long long>(k) * block_size_x;
    if (v < vectors) cv[v] = add(__ldg(av + v), __ldg(bv + v));
  }
  // The last n % vector_width elements: the first threads of block 0.
  if (blockIdx.x == 0 && threadIdx.x < n - vectors * vector_width) {
    const long long i = vectors * vector_width + threadIdx.x;
    c[i] = a[i] + b[i];
  }
}
