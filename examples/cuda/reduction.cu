// The sum of n floats into one float, in one launch, for the cuda backend.
//
// Design. Each block sums a grid-stride share of the input, writes that
// partial sum to partials[blockIdx.x], and takes a ticket from the arrivals
// counter; the block that arrives last adds the partials up in a fixed order,
// writes total[0], and puts partials and arrivals back to zeros for the next
// launch (the "threadFenceReduction" pattern). Hence:
//   - total[0] is written with a plain store, never accumulated into: the
//     backend poisons outputs (0xA5 bytes) before a run and does not clear
//     them between timed launches, and a kernel that atomicAdd-ed into total
//     would add to whatever it found.
//   - No floating-point atomics: for one configuration every launch adds the
//     same numbers in the same order, so the result is deterministic and the
//     tolerance need only cover float32 rounding against the float64
//     reference (reduction.toml says how much that is).
//   - partials and arrivals are inout buffers that start as zeros and that
//     every launch leaves as zeros, so the reference (which leaves them as
//     zeros too) agrees with every configuration whatever num_blocks is, and
//     the timed launches in a row each start from a clean counter.
//     partials holds max_blocks floats, num_blocks of which a launch uses.
//   - Launches must not overlap: two at once would share the counter. The
//     backend's launches of a variant are ordered on one stream.
//
// Tunable (each a -D define):
//   block_size_x  threads of a block, a power of two from 64 to 1024
//   num_blocks    blocks of the grid (reduction.toml's grid; the kernel reads
//                 gridDim.x); each thread sums about n / (num_blocks * block_size_x) floats
//   vector_width  floats a load reads: 1 (float), 2 (float2) or 4 (float4)
//   unroll        independent loads in flight a thread, each with its own sum
//   use_shuffle   1: reduce a block with warp shuffles; 0: with a shared-memory tree
// Compiled by NVRTC: builtins only, no headers.

#ifndef block_size_x
#define block_size_x 256
#endif
#ifndef num_blocks
#define num_blocks 1024
#endif
#ifndef vector_width
#define vector_width 1
#endif
#ifndef unroll
#define unroll 1
#endif
#ifndef use_shuffle
#define use_shuffle 0
#endif

static_assert(block_size_x >= 64 && block_size_x <= 1024 && (block_size_x & (block_size_x - 1)) == 0,
              "block_size_x is a power of two from 64 to 1024");
static_assert(vector_width == 1 || vector_width == 2 || vector_width == 4, "vector_width is 1, 2 or 4");

// The sum of the vector_width floats of vector `index`.
__device__ __forceinline__ float vector_sum(const float* input, int index) {
#if vector_width == 4
  const float4 v = reinterpret_cast<const float4*>(input)[index];
  return (v.x + v.y) + (v.z + v.w);
#elif vector_width == 2
  const float2 v = reinterpret_cast<const float2*>(input)[index];
  return v.x + v.y;
#else
  return input[index];
#endif
}

// The sum of `value` over the block, valid in thread 0. `scratch` holds
// block_size_x floats; the block must call this together.
__device__ __forceinline__ float block_sum(float value, float* scratch) {
#if use_shuffle
  constexpr int warps = block_size_x / 32;
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffffu, value, offset);
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  if (warp == 0) {
    value = lane < warps ? scratch[lane] : 0.0f;
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffffu, value, offset);
  }
  __syncthreads();  // scratch may be reused at once
  return value;
#else
  scratch[threadIdx.x] = value;
  __syncthreads();
#pragma unroll
  for (int half = block_size_x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) scratch[threadIdx.x] += scratch[threadIdx.x + half];
    __syncthreads();
  }
  return scratch[0];
#endif
}

__global__ void __launch_bounds__(block_size_x)
    reduce_sum(const float* input, float* total, float* partials, unsigned int* arrivals, int n) {
  __shared__ float scratch[block_size_x];
  __shared__ bool last_block;

  // This thread's share: vectors i, i + threads, i + 2 * threads, ...,
  // `unroll` of them a step, each into its own sum.
  const int threads = gridDim.x * block_size_x;
  const int vectors = n / vector_width;
  int i = blockIdx.x * block_size_x + threadIdx.x;
  float sums[unroll];
#pragma unroll
  for (int u = 0; u < unroll; ++u) sums[u] = 0.0f;
  for (; i + (unroll - 1) * threads < vectors; i += unroll * threads) {
#pragma unroll
    for (int u = 0; u < unroll; ++u) sums[u] += vector_sum(input, i + u * threads);
  }
  for (; i < vectors; i += threads) sums[0] += vector_sum(input, i);
  float sum = 0.0f;
#pragma unroll
  for (int u = 0; u < unroll; ++u) sum += sums[u];
  // The floats after the last whole vector (none when vector_width divides n).
  const int rest = blockIdx.x * block_size_x + threadIdx.x;
  if (rest < n - vectors * vector_width) sum += input[vectors * vector_width + rest];

  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) {
    partials[blockIdx.x] = sum;
    __threadfence();  // the partial is visible everywhere before the ticket is taken
    last_block = atomicAdd(arrivals, 1u) == gridDim.x - 1;
    __threadfence();  // and the other blocks' partials are read after it
  }
  __syncthreads();
  if (!last_block) return;

  // The last block: every other block's partial is written. L1 is not
  // coherent, so they are read from L2 (__ldcg); then zeroed for the next launch.
  sum = 0.0f;
  for (int b = threadIdx.x; b < gridDim.x; b += block_size_x) {
    sum += __ldcg(partials + b);
    partials[b] = 0.0f;
  }
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) {
    total[0] = sum;
    *arrivals = 0u;
  }
}
