// matrix_multiply: C = A B for square row-major float32 matrices, M = N = K = n:
//
//   C[i][j] = sum over k < n of A[i][k] * B[k][j].
//
// FLOPs: 2 n^3. Bytes: 12 n^2 at the least (A and B read once, C written once);
// at n = 4096 that is 201 MB against 137 GFLOP, so the floor is the arithmetic
// rate of whichever units the variant uses, and the tile sizes decide how
// close it gets (each block re-reads block_m x n of A and n x block_n of B
// from L2: 4 n^3 (1 / block_m + 1 / block_n) bytes in all).
//
// One source, two variants, picked by the tunable `variant` (the tuner
// chooses; there is no size threshold):
//
//   variant = 0: FP32 on the SIMT cores, fmaf in float32 (no TF32). A block
//     of (block_m / thread_m) x (block_n / thread_n) threads computes a
//     block_m x block_n tile of C; each thread keeps a thread_m x thread_n
//     tile in registers, as float4 groups spaced 4 * (threads along that
//     side) apart, so its shared-memory reads are float4 and a warp's reads
//     are contiguous. The A tile is stored transposed in shared memory
//     (A^T[k][m], rows padded by 4 floats, which spreads the transposing
//     stores over the banks) so that the inner loop reads A as float4 too.
//
//   variant = 1: tensor cores, mma.sync m16n8k16 with bf16 inputs and float32
//     accumulation. The float32 tiles are rounded to bf16 (cvt.rn.bf16x2.f32)
//     on their way into shared memory: A as [m][k], B as [k][n], rows padded
//     by 8 bf16 (16 bytes) so that the eight 16-byte rows an ldmatrix phase
//     reads fall in distinct banks. A warp computes a warp_m x warp_n tile:
//     (warp_m / 16) x (warp_n / 8) mma per 16 of k, its A fragments from
//     ldmatrix.x4 and its B fragments from ldmatrix.x4.trans. Products of
//     bf16 values are exact and are summed in float32, so on inputs that are
//     exact in bf16 (the specs' 1/128 grid) both variants compute the same.
//
// Both variants: global loads are float4 (n % 4 == 0), the next K step is
// fetched into registers while the current one is computed, and
//   double_buffer = 1: two shared-memory stages, one barrier per K step;
//   double_buffer = 0: one stage (half the shared memory), two barriers.
// Blocks are rasterised in groups of group_m tile rows, so that the blocks
// resident at one time share B's column panels in L2 (1 = row by row).
//
// Tunable (each a -D define):
//   variant          0 FP32 SIMT, 1 bf16 tensor cores
//   block_m, block_n the block's tile of C
//   block_k          the K step: columns of A and rows of B per shared tile
//                    (a multiple of 4; of 16 for variant 1)
//   thread_m/_n      variant 0: the thread's register tile (multiples of 4)
//   warp_m/_n        variant 1: the warp's tile (multiples of 16)
//   double_buffer    0 or 1, as above
//   group_m          tile rows per rasterisation group
// The spec's constraints keep n a multiple of block_m, block_n and block_k
// (the kernel has no edge code) and pin the other variant's parameters, and
// its launch gives (n / block_m) * (n / block_n) blocks of
// `threads` = variant 0: (block_m / thread_m) (block_n / thread_n),
//             variant 1: 32 (block_m / warp_m) (block_n / warp_n)
// with the shared memory stages * bytes per stage that the code below uses.
// Compiled by NVRTC: builtins and inline PTX only.

#ifndef variant
#define variant 0
#endif
#ifndef block_m
#define block_m 128
#endif
#ifndef block_n
#define block_n 128
#endif
#ifndef block_k
#define block_k 16
#endif
#ifndef thread_m
#define thread_m 8
#endif
#ifndef thread_n
#define thread_n 8
#endif
#ifndef warp_m
#define warp_m 64
#endif
#ifndef warp_n
#define warp_n 64
#endif
#ifndef double_buffer
#define double_buffer 1
#endif
#ifndef group_m
#define group_m 8
#endif

#if variant == 0
#define MM_THREADS ((block_m / thread_m) * (block_n / thread_n))
#else
#define MM_THREADS (32 * (block_m / warp_m) * (block_n / warp_n))
#endif

#include "../common/float4.cuh"

namespace {

constexpr int stages = double_buffer ? 2 : 1;
constexpr int threads = MM_THREADS;
// float4 pieces of the A and B tiles, and how many each thread carries.
constexpr int a_vectors = block_m * block_k / 4;
constexpr int b_vectors = block_k * block_n / 4;
constexpr int a_loads = (a_vectors + threads - 1) / threads;
constexpr int b_loads = (b_vectors + threads - 1) / threads;

static_assert(block_k % 4 == 0 && block_n % 4 == 0, "float4 tiles");

// The tile of C this block computes: groups of group_m tile rows, column by
// column within a group.
__device__ __forceinline__ void block_tile(int n, int& tile_row, int& tile_column) {
  const int tiles_m = n / block_m;
  const int tiles_n = n / block_n;
  const int per_group = group_m * tiles_n;
  const int group = static_cast<int>(blockIdx.x) / per_group;
  const int first = group * group_m;
  const int rows = min(tiles_m - first, group_m);
  const int within = static_cast<int>(blockIdx.x) - group * per_group;
  tile_row = first + within % rows;
  tile_column = within / rows;
}

// The next K step's A and B pieces, into registers: A piece v is row
// v / (block_k / 4), columns 4 (v % (block_k / 4)) + 0..3 of the tile; B
// piece v is row v / (block_n / 4), columns 4 (v % (block_n / 4)) + 0..3.
struct fetched {
  float4 a[a_loads];
  float4 b[b_loads];
};

__device__ __forceinline__ void fetch(fetched& next, const float* a_panel, const float* b_panel, int n, int k0) {
#pragma unroll
  for (int l = 0; l < a_loads; ++l) {
    const int v = static_cast<int>(threadIdx.x) + l * threads;
    if (a_vectors % threads == 0 || v < a_vectors) {
      const int row = v / (block_k / 4);
      const int column = 4 * (v % (block_k / 4));
      next.a[l] = *reinterpret_cast<const float4*>(a_panel + static_cast<long long>(row) * n + k0 + column);
    }
  }
#pragma unroll
  for (int l = 0; l < b_loads; ++l) {
    const int v = static_cast<int>(threadIdx.x) + l * threads;
    if (b_vectors % threads == 0 || v < b_vectors) {
      const int row = v / (block_n / 4);
      const int column = 4 * (v % (block_n / 4));
      next.b[l] = *reinterpret_cast<const float4*>(b_panel + static_cast<long long>(k0 + row) * n + column);
    }
  }
}

// The K loop of both variants: step t multiplies the tiles in shared memory
// while step t + 1's pieces are fetched into registers, then stores them
// (double_buffer: into the other stage, one barrier per step; else into the
// same stage, between two barriers). `store` writes fetched pieces into a
// stage of the variant's tiles, `step` multiplies one stage.
template <typename Tile, typename Store, typename Step>
__device__ __forceinline__ void k_loop(const float* a_panel, const float* b_panel, int n, Tile* a_tiles, Tile* b_tiles,
                                       int a_stage, int b_stage, Store store, Step step) {
  const int k_steps = n / block_k;
  fetched next;
  fetch(next, a_panel, b_panel, n, 0);
  store(next, a_tiles, b_tiles);
  __syncthreads();
#if double_buffer
  for (int t = 0; t < k_steps; ++t) {
    const int stage = t & 1;
    if (t + 1 < k_steps) fetch(next, a_panel, b_panel, n, (t + 1) * block_k);
    step(a_tiles + stage * a_stage, b_tiles + stage * b_stage);
    // The other stage was last read in step t - 1, before the barrier that ended it.
    if (t + 1 < k_steps) store(next, a_tiles + (stage ^ 1) * a_stage, b_tiles + (stage ^ 1) * b_stage);
    __syncthreads();
  }
#else
  for (int t = 0; t < k_steps; ++t) {
    if (t + 1 < k_steps) fetch(next, a_panel, b_panel, n, (t + 1) * block_k);
    step(a_tiles, b_tiles);
    if (t + 1 < k_steps) {
      __syncthreads();
      store(next, a_tiles, b_tiles);
      __syncthreads();
    }
  }
#endif
}

}  // namespace

extern __shared__ __align__(16) unsigned char matrix_multiply_shared[];

#if variant == 0
// ---------------------------------------------------------------- FP32 SIMT

namespace {

static_assert(thread_m % 4 == 0 && thread_n % 4 == 0, "float4 register tiles");
constexpr int threads_n = block_n / thread_n;  // threads along a row of C
constexpr int threads_m = block_m / thread_m;
constexpr int a_stride = block_m + 4;           // floats per row of A^T[k][m]
constexpr int a_stage = block_k * a_stride;     // floats
constexpr int b_stage = block_k * block_n;

__device__ __forceinline__ void stash(const fetched& next, float* a_tile, float* b_tile) {
#pragma unroll
  for (int l = 0; l < a_loads; ++l) {
    const int v = static_cast<int>(threadIdx.x) + l * threads;
    if (a_vectors % threads == 0 || v < a_vectors) {
      const int row = v / (block_k / 4);
      const int column = 4 * (v % (block_k / 4));
      float* to = a_tile + column * a_stride + row;
      spread4(next.a[l], to, a_stride);
    }
  }
#pragma unroll
  for (int l = 0; l < b_loads; ++l) {
    const int v = static_cast<int>(threadIdx.x) + l * threads;
    if (b_vectors % threads == 0 || v < b_vectors) {
      const int row = v / (block_n / 4);
      const int column = 4 * (v % (block_n / 4));
      *reinterpret_cast<float4*>(b_tile + row * block_n + column) = next.b[l];
    }
  }
}

}  // namespace

extern "C" __global__ void __launch_bounds__(MM_THREADS)
    matrix_multiply(float* c, const float* a, const float* b, int n) {
  float* a_tiles = reinterpret_cast<float*>(matrix_multiply_shared);  // stages x A^T tile
  float* b_tiles = a_tiles + stages * a_stage;                        // stages x B tile
  int tile_row = 0;
  int tile_column = 0;
  block_tile(n, tile_row, tile_column);
  const float* a_panel = a + static_cast<long long>(tile_row) * block_m * n;
  const float* b_panel = b + static_cast<long long>(tile_column) * block_n;
  const int tx = static_cast<int>(threadIdx.x) % threads_n;
  const int ty = static_cast<int>(threadIdx.x) / threads_n;

  float sum[thread_m][thread_n];
#pragma unroll
  for (int i = 0; i < thread_m; ++i)
#pragma unroll
    for (int j = 0; j < thread_n; ++j) sum[i][j] = 0.0f;

  // Row i = 4 p + r of the thread's tile is row 4 (p threads_m + ty) + r of
  // the block's; column j = 4 q + s is column 4 (q threads_n + tx) + s.
  const auto step = [&](const float* a_tile, const float* b_tile) {
#pragma unroll
    for (int k = 0; k < block_k; ++k) {
      float x[thread_m];
      float y[thread_n];
#pragma unroll
      for (int p = 0; p < thread_m / 4; ++p) {
        spread4(*reinterpret_cast<const float4*>(a_tile + k * a_stride + 4 * (p * threads_m + ty)), x + 4 * p);
      }
#pragma unroll
      for (int q = 0; q < thread_n / 4; ++q) {
        spread4(*reinterpret_cast<const float4*>(b_tile + k * block_n + 4 * (q * threads_n + tx)), y + 4 * q);
      }
#pragma unroll
      for (int i = 0; i < thread_m; ++i)
#pragma unroll
        for (int j = 0; j < thread_n; ++j) sum[i][j] = fmaf(x[i], y[j], sum[i][j]);
    }
  };

  k_loop(a_panel, b_panel, n, a_tiles, b_tiles, a_stage, b_stage,
         [](const fetched& next, float* a_tile, float* b_tile) { stash(next, a_tile, b_tile); }, step);

#pragma unroll
  for (int i = 0; i < thread_m; ++i) {
    const int row = tile_row * block_m + 4 * ((i / 4) * threads_m + ty) + i % 4;
    float* out = c + static_cast<long long>(row) * n + tile_column * block_n;
#pragma unroll
    for (int q = 0; q < thread_n / 4; ++q)
      *reinterpret_cast<float4*>(out + 4 * (q * threads_n + tx)) =
          make_float4(sum[i][4 * q], sum[i][4 * q + 1], sum[i][4 * q + 2], sum[i][4 * q + 3]);
  }
}

#else
// ------------------------------------------------ bf16 tensor cores (mma.sync)

namespace {

static_assert(block_k % 16 == 0 && warp_m % 16 == 0 && warp_n % 16 == 0, "mma and ldmatrix shapes");
constexpr int warps_n = block_n / warp_n;
constexpr int a_stride = block_k + 8;  // bf16 per row of A[m][k]: rows 16 bytes apart mod 128
constexpr int b_stride = block_n + 8;  // bf16 per row of B[k][n]
constexpr int a_stage = block_m * a_stride;  // bf16
constexpr int b_stage = block_k * b_stride;
constexpr int fragments_m = warp_m / 16;
constexpr int fragments_n = warp_n / 8;

// Two float32 -> one register of two bf16, `low` in the low half (round to nearest even).
__device__ __forceinline__ unsigned int bf16x2(float low, float high) {
  unsigned int packed;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(packed) : "f"(high), "f"(low));
  return packed;
}

__device__ __forceinline__ unsigned int shared_address(const void* pointer) {
  unsigned int address;
  asm("{ .reg .u64 wide; cvta.to.shared.u64 wide, %1; cvt.u32.u64 %0, wide; }" : "=r"(address) : "l"(pointer));
  return address;
}

// The thread's float4 pieces of one tile (`vectors` of them in rows of
// `columns` floats) as bf16 into a tile of `stride` bf16 per row.
template <int vectors, int loads, int columns, int stride>
__device__ __forceinline__ void stash_bf16(const float4 (&pieces)[loads], unsigned short* tile) {
#pragma unroll
  for (int l = 0; l < loads; ++l) {
    const int v = static_cast<int>(threadIdx.x) + l * threads;
    if (vectors % threads == 0 || v < vectors) {
      const int row = v / (columns / 4);
      const int column = 4 * (v % (columns / 4));
      *reinterpret_cast<uint2*>(tile + row * stride + column) =
          make_uint2(bf16x2(pieces[l].x, pieces[l].y), bf16x2(pieces[l].z, pieces[l].w));
    }
  }
}

__device__ __forceinline__ void stash(const fetched& next, unsigned short* a_tile, unsigned short* b_tile) {
  stash_bf16<a_vectors, a_loads, block_k, a_stride>(next.a, a_tile);
  stash_bf16<b_vectors, b_loads, block_n, b_stride>(next.b, b_tile);
}

// Four 8 x 8 bf16 matrices; lanes 8 q .. 8 q + 7 give the row addresses of matrix q.
__device__ __forceinline__ void load_matrices(unsigned int (&r)[4], unsigned int address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

__device__ __forceinline__ void load_matrices_transposed(unsigned int (&r)[4], unsigned int address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

// d = a b + d for a 16 x 16 A fragment, a 16 x 8 B fragment and a 16 x 8 float32 D.
__device__ __forceinline__ void mma(float (&d)[4], const unsigned int (&a)[4], unsigned int b0, unsigned int b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

}  // namespace

extern "C" __global__ void __launch_bounds__(MM_THREADS)
    matrix_multiply(float* c, const float* a, const float* b, int n) {
  auto* a_tiles = reinterpret_cast<unsigned short*>(matrix_multiply_shared);  // stages x A[m][k], bf16
  unsigned short* b_tiles = a_tiles + stages * a_stage;                       // stages x B[k][n], bf16
  int tile_row = 0;
  int tile_column = 0;
  block_tile(n, tile_row, tile_column);
  const float* a_panel = a + static_cast<long long>(tile_row) * block_m * n;
  const float* b_panel = b + static_cast<long long>(tile_column) * block_n;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int warp_row = (warp / warps_n) * warp_m;  // the warp's tile within the block's
  const int warp_column = (warp % warps_n) * warp_n;

  float sum[fragments_m][fragments_n][4];
#pragma unroll
  for (int i = 0; i < fragments_m; ++i)
#pragma unroll
    for (int j = 0; j < fragments_n; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) sum[i][j][e] = 0.0f;

  // ldmatrix row addresses (bf16 offsets within a stage): matrix q = lane / 8
  // holds rows 8 (q % 2) + lane % 8 and columns 8 (q / 2) .. +7 of the 16 x 16
  // piece, which makes the x4 registers the mma's A fragment (A[m][k]), and
  // with .trans two B fragments (B[k][n]: k 0-7, 8-15 of columns 0-7, then of 8-15).
  const int piece_row = lane % 8 + 8 * ((lane / 8) % 2);
  const int piece_column = 8 * (lane / 16);
  const int a_offset = (warp_row + piece_row) * a_stride + piece_column;
  const int b_offset = piece_row * b_stride + warp_column + piece_column;

  const auto step = [&](const unsigned short* a_tile, const unsigned short* b_tile) {
    const unsigned int a_base = shared_address(a_tile) + 2 * a_offset;
    const unsigned int b_base = shared_address(b_tile) + 2 * b_offset;
#pragma unroll
    for (int k = 0; k < block_k; k += 16) {
      unsigned int x[fragments_m][4];
      unsigned int y[fragments_n / 2][4];
#pragma unroll
      for (int i = 0; i < fragments_m; ++i) load_matrices(x[i], a_base + 2 * (i * 16 * a_stride + k));
#pragma unroll
      for (int j = 0; j < fragments_n / 2; ++j) load_matrices_transposed(y[j], b_base + 2 * (k * b_stride + j * 16));
#pragma unroll
      for (int i = 0; i < fragments_m; ++i)
#pragma unroll
        for (int j = 0; j < fragments_n; ++j) mma(sum[i][j], x[i], y[j / 2][2 * (j % 2)], y[j / 2][2 * (j % 2) + 1]);
    }
  };

  k_loop(a_panel, b_panel, n, a_tiles, b_tiles, a_stage, b_stage,
         [](const fetched& next, unsigned short* a_tile, unsigned short* b_tile) { stash(next, a_tile, b_tile); },
         step);

  // D fragment: lane holds rows lane / 4 and lane / 4 + 8, columns 2 (lane % 4) + 0, 1.
  const int row0 = tile_row * block_m + warp_row + lane / 4;
  const int column0 = tile_column * block_n + warp_column + 2 * (lane % 4);
#pragma unroll
  for (int i = 0; i < fragments_m; ++i)
#pragma unroll
    for (int j = 0; j < fragments_n; ++j) {
      float* out = c + static_cast<long long>(row0 + 16 * i) * n + column0 + 8 * j;
      *reinterpret_cast<float2*>(out) = make_float2(sum[i][j][0], sum[i][j][1]);
      *reinterpret_cast<float2*>(out + 8LL * n) = make_float2(sum[i][j][2], sum[i][j][3]);
    }
}

#endif
