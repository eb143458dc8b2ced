// conv2d: single-channel 2-D cross-correlation of an H x W float32 image with
// a K x K filter (K odd), stride 1, zero padding (K-1)/2, output H x W:
//
//   out[y][x] = sum over fy, fx < K of in[y + fy - r][x + fx - r] * filter[fy][fx],  r = (K-1)/2,
//   reading zeros outside the image.
//
// Bytes: 8 H W (one read, one write; the halo re-reads hit shared memory);
// FLOPs: 2 K^2 H W. K is a compile-time constant (the spec's -DK=...).
//
// Two paths, chosen by sliding_window. Both sum each output's K^2 products
// in the same order (filter row by filter row, left to right), so they give
// bit-identical results.
//
// sliding_window = 0 (the original path): a block of block_size_x x
// block_size_y threads computes a tile of (block_size_x * tile_size_x) x
// (block_size_y * tile_size_y) outputs from its input tile (with the halo) in
// dynamic shared memory; each thread accumulates tile_size_x x tile_size_y
// outputs spaced a block apart, so a warp reads consecutive shared words and
// writes coalesced rows. It reads K^2 shared words per output, so at large K
// it is bound by shared-memory bandwidth.
//
// sliding_window = 1: each thread computes tile_size_y consecutive output rows
// of tile_size_x (4, 8 or 16) consecutive outputs. For each of the
// tile_size_y + K - 1 input rows it needs, it loads the row's
// tile_size_x + K - 1 values once from shared memory into registers (16-byte
// loads) and does every FMA that input row feeds (up to K * tile_size_x per
// output row it contributes to) from registers, the K^2 weights also held in
// registers: about (tile_size_y + K - 1) (tile_size_x + 8) / (4 tile_size_x
// tile_size_y) shared loads per output instead of K^2. The tile is copied from
// global memory in 16-byte pieces (float4, coalesced) whose columns start
// 4 * ceil(r / 4) left of the block's first output column, so that every piece
// is 16-byte aligned in both memories; each shared row's 16-byte slots are
// permuted within groups of 8 (slot ^= group & (tile_size_x / 4 - 1)) so that
// the 16-byte loads of a quarter warp, whose threads are tile_size_x words
// apart, fall in distinct banks. A block handles tiles_per_block tiles stacked
// vertically; with cp_async = 1 it copies them with cp.async (zero-filling the
// padding) into two shared buffers, the next tile's copy overlapping the
// current tile's arithmetic; with cp_async = 0 the tile is read into registers
// (__ldg with read_only) and stored to shared memory. Images whose width is not
// a multiple of 4 (or unaligned buffers) take a scalar copy of the same tile.
// With halo_reuse = 1 (tiles_per_block > 1) the stacked tiles share one ring of
// 2 * output rows + K - 1 shared rows instead of two whole tile buffers: the
// next tile's first K - 1 input rows are the current tile's last K - 1, already
// in the ring, so moving down copies only the output-rows new rows (into the
// ring rows the previous tile alone used; with cp_async, overlapping the current
// tile's FMAs) and the vertical halo is read from global memory once per block,
// not once per tile: (block rows + K - 1) / block rows of the outputs' bytes,
// a block's rows being tile rows x tiles_per_block (up to 16 tiles).
//
// Tunable (each a -D define): block_size_x, block_size_y, tile_size_x,
// tile_size_y, use_padding (path 0: row stride padded to 16 mod 32 words),
// read_only (global loads through __ldg), sliding_window, tiles_per_block,
// cp_async and halo_reuse (path 1). Compiled by NVRTC: builtins only.

#ifndef K
#define K 3
#endif
#ifndef block_size_x
#define block_size_x 32
#endif
#ifndef block_size_y
#define block_size_y 8
#endif
#ifndef tile_size_x
#define tile_size_x 1
#endif
#ifndef tile_size_y
#define tile_size_y 1
#endif
#ifndef use_padding
#define use_padding 0
#endif
#ifndef read_only
#define read_only 0
#endif
#ifndef sliding_window
#define sliding_window 0
#endif
#ifndef tiles_per_block
#define tiles_per_block 1
#endif
#ifndef cp_async
#define cp_async 0
#endif
#ifndef halo_reuse
#define halo_reuse 0
#endif

static_assert(K % 2 == 1, "K is odd");

#if read_only
#define CONV_LOAD(address) __ldg(address)
#else
#define CONV_LOAD(address) (*(address))
#endif

#if !sliding_window

extern "C" __global__ void __launch_bounds__(block_size_x * block_size_y)
    conv2d(float* output, const float* input, const float* filter, int width, int height, int k) {
  (void)k;  // K, the compile-time extent, is what the code uses; k names it for the reference
  constexpr int radius = (K - 1) / 2;
  constexpr int output_columns = block_size_x * tile_size_x;
  constexpr int output_rows = block_size_y * tile_size_y;
  constexpr int tile_columns = output_columns + K - 1;
  constexpr int tile_rows = output_rows + K - 1;
  constexpr int stride = use_padding ? tile_columns + (48 - tile_columns % 32) % 32 : tile_columns;
  extern __shared__ float tile[];  // tile_rows x stride

  const int first_column = blockIdx.x * output_columns;
  const int first_row = blockIdx.y * output_rows;
  for (int row = threadIdx.y; row < tile_rows; row += block_size_y) {
    const int y = first_row + row - radius;
    for (int column = threadIdx.x; column < tile_columns; column += block_size_x) {
      const int x = first_column + column - radius;
      float value = 0.0f;
      if (y >= 0 && y < height && x >= 0 && x < width) value = CONV_LOAD(input + static_cast<long long>(y) * width + x);
      tile[row * stride + column] = value;
    }
  }
  __syncthreads();

  float weights[K * K];
#pragma unroll
  for (int w = 0; w < K * K; ++w) weights[w] = CONV_LOAD(filter + w);

  float sum[tile_size_y][tile_size_x];
#pragma unroll
  for (int i = 0; i < tile_size_y; ++i)
#pragma unroll
    for (int j = 0; j < tile_size_x; ++j) sum[i][j] = 0.0f;

  const float* origin = tile + threadIdx.y * stride + threadIdx.x;
#pragma unroll
  for (int fy = 0; fy < K; ++fy)
#pragma unroll
    for (int fx = 0; fx < K; ++fx)
#pragma unroll
      for (int i = 0; i < tile_size_y; ++i)
#pragma unroll
        for (int j = 0; j < tile_size_x; ++j)
          sum[i][j] = fmaf(origin[(i * block_size_y + fy) * stride + j * block_size_x + fx], weights[fy * K + fx], sum[i][j]);

#pragma unroll
  for (int i = 0; i < tile_size_y; ++i) {
    const int y = first_row + threadIdx.y + i * block_size_y;
#pragma unroll
    for (int j = 0; j < tile_size_x; ++j) {
      const int x = first_column + threadIdx.x + j * block_size_x;
      if (y < height && x < width) output[static_cast<long long>(y) * width + x] = sum[i][j];
    }
  }
}

#else  // sliding_window

namespace conv2d_window {

constexpr int radius = (K - 1) / 2;
constexpr int run = tile_size_x;   // consecutive outputs of a thread along a row
constexpr int rows = tile_size_y;  // consecutive output rows of a thread
constexpr int threads = block_size_x * block_size_y;
constexpr int output_columns = block_size_x * run;
constexpr int output_rows = block_size_y * rows;  // of one tile
constexpr int margin = 4 * ((radius + 3) / 4);    // tile columns left (and right) of the outputs, a multiple of 4
constexpr int tile_columns = output_columns + 2 * margin;
constexpr int tile_rows = output_rows + K - 1;
constexpr int stride = (tile_columns + 31) / 32 * 32;  // words per shared row; the slot permutation stays inside
constexpr int tile_words = tile_rows * stride;
constexpr int quads = tile_columns / 4;  // 16-byte pieces per tile row
constexpr int pieces = tile_rows * quads;
constexpr int spread = run / 4;  // a thread's first column, in 16-byte slots
constexpr int lead = margin - radius;  // a thread's first needed column within its first 16-byte slot
constexpr int window_quads = (lead + run + K - 1 + 3) / 4;  // 16-byte loads per input row
constexpr int buffers = tiles_per_block > 1 ? 2 : 1;
// halo_reuse: shared rows of the ring (the current tile's and the next tile's new ones).
constexpr int ring_rows = tiles_per_block > 1 ? tile_rows + output_rows : tile_rows;
constexpr bool ring = halo_reuse && tiles_per_block > 1;

static_assert(run == 4 || run == 8 || run == 16, "tile_size_x is 4, 8 or 16 with sliding_window");
static_assert(lead >= 0 && lead < 4, "the halo is rounded up to whole 16-byte pieces");

// The shared word of tile column `column` within its row: 16-byte slots are
// permuted within each group of 8 (32 columns) by XOR with the group's index,
// so a thread's window (run words after its neighbour's) lands in other banks.
__device__ __forceinline__ int word_of(int column) { return column ^ (((column >> 5) & (spread - 1)) << 2); }

__device__ __forceinline__ void copy_async16(float* to, const float* from, int bytes) {
#if defined(__CUDA_ARCH__)
  unsigned address;
  asm volatile("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(address) : "l"(to));
  // Copies `bytes` (16 or 0) and fills the rest of the 16 with zeros.
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(address), "l"(from), "r"(bytes) : "memory");
#else
  for (int i = 0; i < 4; ++i) to[i] = bytes > 0 ? from[i] : 0.0f;
#endif
}

__device__ __forceinline__ void copy_commit() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}

// Waits for every copy group but the newest.
__device__ __forceinline__ void copy_wait_all_but_newest() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.wait_group 1;" ::: "memory");
#endif
}

// The shared row (of `to`) of tile row q whose row 0 is shared row `start`:
// start + q, wrapped around the ring with halo_reuse (start < ring_rows,
// q < tile_rows <= ring_rows).
__device__ __forceinline__ int ring_row(int start, int q) {
  const int row = start + q;
  return ring && row >= ring_rows ? row - ring_rows : row;
}

// Copies rows first_q.. of the input tile of the output rows first_row.. into
// `to`: tile row q is image row first_row - radius + q (stored in shared row
// ring_row(start, q)), tile column c is image column first_column - margin + c,
// zeros outside the image.
template <int first_q>
__device__ __forceinline__ void load_tile(float* to, int start, const float* input, int width, int height,
                                          int first_column, int first_row, bool aligned) {
  constexpr int pieces = (tile_rows - first_q) * quads;  // of these rows
  const int thread = threadIdx.y * block_size_x + threadIdx.x;
  if (aligned) {
    // A 16-byte piece starts at a multiple of 4 columns and the width is a
    // multiple of 4: it lies wholly inside the image or wholly outside.
#if cp_async
#pragma unroll
    for (int i = 0; i < (pieces + threads - 1) / threads; ++i) {
      const int piece = thread + i * threads;
      if (pieces % threads == 0 || piece < pieces) {
        const int p = piece / quads;
        const int q = first_q + p;
        const int c = 4 * (piece - p * quads);
        const int y = first_row - radius + q;
        const int x = first_column - margin + c;
        const bool inside = y >= 0 && y < height && x >= 0 && x < width;
        copy_async16(to + ring_row(start, q) * stride + word_of(c),
                     inside ? input + static_cast<long long>(y) * width + x : input, inside ? 16 : 0);
      }
    }
#else
    constexpr int batch = 8;  // pieces in flight per thread
#pragma unroll
    for (int first = 0; first < (pieces + threads - 1) / threads; first += batch) {
      float4 staged[batch];
#pragma unroll
      for (int i = 0; i < batch; ++i) {
        const int piece = thread + (first + i) * threads;
        staged[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (first + i < (pieces + threads - 1) / threads && (pieces % threads == 0 || piece < pieces)) {
          const int p = piece / quads;
          const int q = first_q + p;
          const int c = 4 * (piece - p * quads);
          const int y = first_row - radius + q;
          const int x = first_column - margin + c;
          if (y >= 0 && y < height && x >= 0 && x < width)
            staged[i] = CONV_LOAD(reinterpret_cast<const float4*>(input + static_cast<long long>(y) * width + x));
        }
      }
#pragma unroll
      for (int i = 0; i < batch; ++i) {
        const int piece = thread + (first + i) * threads;
        if (first + i < (pieces + threads - 1) / threads && (pieces % threads == 0 || piece < pieces)) {
          const int p = piece / quads;
          const int c = 4 * (piece - p * quads);
          *reinterpret_cast<float4*>(to + ring_row(start, first_q + p) * stride + word_of(c)) = staged[i];
        }
      }
    }
#endif
  } else {
    for (int item = thread; item < (tile_rows - first_q) * tile_columns; item += threads) {
      const int p = item / tile_columns;
      const int q = first_q + p;
      const int c = item - p * tile_columns;
      const int y = first_row - radius + q;
      const int x = first_column - margin + c;
      float value = 0.0f;
      if (y >= 0 && y < height && x >= 0 && x < width) value = CONV_LOAD(input + static_cast<long long>(y) * width + x);
      to[ring_row(start, q) * stride + word_of(c)] = value;
    }
  }
}

}  // namespace conv2d_window

extern "C" __global__ void __launch_bounds__(block_size_x * block_size_y)
    conv2d(float* output, const float* input, const float* filter, int width, int height, int k) {
  using namespace conv2d_window;
  (void)k;  // K, the compile-time extent, is what the code uses; k names it for the reference
  extern __shared__ float4 tile_storage[];  // buffers x tile_rows (or ring_rows with the ring) x stride words
  float* const tile = reinterpret_cast<float*>(tile_storage);

  const int first_column = blockIdx.x * output_columns;
  const int first_row = blockIdx.y * (output_rows * tiles_per_block);
  if (first_row >= height) return;  // the whole block (the grid is rounded up to whole blocks)
  const int tiles = min(tiles_per_block, (height - first_row + output_rows - 1) / output_rows);
  const bool aligned = width % 4 == 0 &&
                       (reinterpret_cast<unsigned long long>(input) | reinterpret_cast<unsigned long long>(output)) % 16 == 0;

  float weights[K * K];
#pragma unroll
  for (int w = 0; w < K * K; ++w) weights[w] = CONV_LOAD(filter + w);

  // Word offsets (within a row) of this thread's 16-byte loads.
  int offsets[window_quads];
#pragma unroll
  for (int n = 0; n < window_quads; ++n) offsets[n] = word_of(threadIdx.x * run + 4 * n);
  const int x0 = first_column + threadIdx.x * run;

  load_tile<0>(tile, 0, input, width, height, first_column, first_row, aligned);
  if (cp_async) copy_commit();
  int start = 0;  // ring: the shared row of the current tile's row 0
  for (int t = 0; t < tiles; ++t) {
    const int tile_first_row = first_row + t * output_rows;
    // ring: the next tile's row 0 is this tile's row output_rows, and its rows
    // from K - 1 on fall in the ring rows only the previous tile used.
    const int next_start = start + output_rows >= ring_rows ? start + output_rows - ring_rows : start + output_rows;
    if (t + 1 < tiles) {
      if (ring)
        load_tile<K - 1>(tile, next_start, input, width, height, first_column, tile_first_row + output_rows, aligned);
      else
        load_tile<0>(tile + ((t + 1) % buffers) * tile_words, 0, input, width, height, first_column,
                     tile_first_row + output_rows, aligned);
    }
    if (cp_async) {
      copy_commit();  // (an empty group after the last tile)
      copy_wait_all_but_newest();
    }
    __syncthreads();

    const float* mine = tile + (t % buffers) * tile_words + threadIdx.y * rows * stride;  // without the ring
    const int my_start = start + threadIdx.y * rows;  // ring: shared row of the thread's input row 0 (unwrapped)
    float sum[rows][run];
#pragma unroll
    for (int i = 0; i < rows; ++i)
#pragma unroll
      for (int j = 0; j < run; ++j) sum[i][j] = 0.0f;

    // Input row q of the thread's rows + K - 1 feeds output row i with filter row q - i.
#pragma unroll
    for (int q = 0; q < rows + K - 1; ++q) {
      float window[4 * window_quads];
#pragma unroll
      for (int n = 0; n < window_quads; ++n) {
        const float4 piece = *reinterpret_cast<const float4*>(
            ring ? tile + (my_start + q >= ring_rows ? my_start + q - ring_rows : my_start + q) * stride + offsets[n]
                 : mine + q * stride + offsets[n]);
        window[4 * n] = piece.x;
        window[4 * n + 1] = piece.y;
        window[4 * n + 2] = piece.z;
        window[4 * n + 3] = piece.w;
      }
#pragma unroll
      for (int i = 0; i < rows; ++i) {
        const int fy = q - i;
        if (fy >= 0 && fy < K) {
#pragma unroll
          for (int fx = 0; fx < K; ++fx)
#pragma unroll
            for (int j = 0; j < run; ++j) sum[i][j] = fmaf(window[lead + j + fx], weights[fy * K + fx], sum[i][j]);
        }
      }
    }

#pragma unroll
    for (int i = 0; i < rows; ++i) {
      const int y = tile_first_row + threadIdx.y * rows + i;
      if (y < height) {
        float* const line = output + static_cast<long long>(y) * width;
        if (aligned) {
#pragma unroll
          for (int n = 0; n < run / 4; ++n)
            if (x0 + 4 * n < width)
              *reinterpret_cast<float4*>(line + x0 + 4 * n) =
                  make_float4(sum[i][4 * n], sum[i][4 * n + 1], sum[i][4 * n + 2], sum[i][4 * n + 3]);
        } else {
#pragma unroll
          for (int j = 0; j < run; ++j)
            if (x0 + j < width) line[x0 + j] = sum[i][j];
        }
      }
    }
    if (t + 1 < tiles) __syncthreads();  // before the next iteration's copy overwrites this buffer
    start = next_start;
  }
}

#endif  // sliding_window
