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
// output row it contributes to) from registers, the K^2 weights read from the
// constant bank (the filter is passed by value): about (tile_size_y + K - 1)
// (tile_size_x + 8) / (4 tile_size_x tile_size_y) shared loads per output
// instead of K^2. The tile is copied from
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
// With bulk_copy = 1 (path 1) the copy engine fills the shared rows: a block of
// block_size_x x block_size_y computing threads plus one copying warp (one
// dimension). The copying warp's lane 0 copies each tile row inside the image
// with one cp.async.bulk (global to shared, completing an mbarrier's bytes),
// stages - 1 tiles ahead of the computing warps, into a ring of stages tiles'
// rows (stacked tiles share their K - 1 halo rows; with interleave = 1 tile t
// is the image's tile row blockIdx.y + t gridDim.y, so the whole grid moves
// down the image as one band, and each tile copies its halo too). Per ring
// slot a `full` mbarrier (the rows landed) and an `empty` one (every computing
// warp is done), so no block-wide barrier after the start: a few instructions
// per 1 KB row instead of ~45 per 16 bytes with cp.async. Rows are not
// permuted (a bulk copy is linear), which costs bank conflicts only at
// tile_size_x = 8, 16.
//
// Without cp.async or the ring (aligned images), a block's tiles are read
// through registers, every row of a tile in flight at once and no bounds test
// at all in the tiles inside the image; with tiles_per_block > 1 the next
// tile's reads are issued before this tile's FMAs (a prefetch). max_registers
// > 0 caps each thread's registers near that many (through the launch bounds'
// resident blocks), which also changes ptxas's scheduling: at K = 5, 128
// threads, 4 x 4 outputs a thread, a cap of 64 gave 48 registers and 36.96 us
// on the H200, ptxas's own choice (40 registers from nvcc 13) 38.11 us
// (bench/results/h200/conv2d/explore, run 8; with the filter read through a
// pointer the same two took 40.03 and 40.45 us, run 7). As a memory engine
// (K = 1, a copy, H200, 4096^2) single tiles read by the threads took 33.2 us
// (the loader before this one), the bulk copies 38.8 us: the copy engine's
// rows arrive later than the loads of many small blocks.
//
// Tunable (each a -D define): block_size_x, block_size_y, tile_size_x,
// tile_size_y, use_padding (path 0: row stride padded to 16 mod 32 words),
// read_only (global loads through __ldg), sliding_window, tiles_per_block,
// cp_async, halo_reuse, bulk_copy, stages, interleave and max_registers (path 1).
// Compiled by NVRTC: builtins only.

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
#ifndef bulk_copy
#define bulk_copy 0
#endif
#ifndef stages
#define stages 2
#endif
#ifndef interleave
#define interleave 0
#endif
#ifndef max_registers
#define max_registers 0
#endif

static_assert(K % 2 == 1, "K is odd");

// The filter, passed by value (the spec's pass = "value"): its K^2 weights lie
// in the kernel's parameter space, a constant bank, from which ptxas moves them
// into uniform registers (ULDC) for FFMA's operands: none of a thread's own
// registers and no global loads for them. Read through a pointer they took 25
// of the 90 registers of the K = 5 best (4 x 8 outputs a thread, nvcc 13).
struct conv2d_filter {
  float weights[K * K];
};

#if read_only
#define CONV_LOAD(address) __ldg(address)
#else
#define CONV_LOAD(address) (*(address))
#endif

#if !sliding_window

extern "C" __global__ void __launch_bounds__(block_size_x * block_size_y)
    conv2d(float* output, const float* input, const conv2d_filter filter, int width, int height, int k) {
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
  for (int w = 0; w < K * K; ++w) weights[w] = filter.weights[w];

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

// A tile moved piece by piece (aligned images): thread (tx, ty) moves tile
// rows ty, ty + block_size_y, ... and in each the run / 4 pieces tx,
// tx + block_size_x, ... of the outputs' columns (coalesced); the 2 margin / 4
// halo pieces of each row, left and right of them, are shared out over all the
// threads (one each, mostly). No index division, pointers stepped a row at a
// time, and bounds tests only in the tiles the image's edges cut (Inside: none
// at all). Through registers (read, then write: every row in flight at once;
// with several tiles a block the next tile's reads overlap this tile's FMAs),
// or with cp.async straight into shared memory (copy: no registers held).
struct staged_tile {
  static constexpr int body = run / 4;  // pieces a thread moves per row, of the outputs' columns
  static constexpr int halo = margin / 4;  // pieces of halo left (and right) of them
  static constexpr int per_thread = (tile_rows + block_size_y - 1) / block_size_y;  // rows a thread moves
  static constexpr int row_pieces = halo > 0 ? 2 * halo : 1;  // halo pieces per row (K = 1: none)
  static constexpr int halo_pieces = tile_rows * 2 * halo;
  static constexpr int halo_per_thread = (halo_pieces + threads - 1) / threads;
  static constexpr int slots = per_thread * body + halo_per_thread;
  float4 held[slots];

  // Tile column of halo piece c (< 2 halo) of a row: left of the outputs, else right.
  __device__ static int halo_column(int c) { return c < halo ? 4 * c : output_columns + 4 * c; }

  __device__ static bool inside(int width, int height, int first_column, int first_row) {
    return first_column >= margin && first_column + output_columns + margin <= width && first_row >= radius &&
           first_row + output_rows + radius <= height;
  }

  // Calls piece(slot, word, from, exists, in_image) for each piece this thread
  // moves: its register slot, its word in the tile, its address in the image,
  // whether the tile has it (the last rows of threads may have none) and
  // whether it lies inside the image (else it is zeros).
  template <bool Inside, class Piece>
  __device__ static void for_each_piece(const float* input, int width, int height, int first_column, int first_row,
                                        Piece piece) {
    const int tx = threadIdx.x;
    const int ty = threadIdx.y;
    const bool edge_x = !Inside && first_column + output_columns > width;
    const long long step = static_cast<long long>(block_size_y) * width;
    const float* at = input + static_cast<long long>(first_row - radius + ty) * width + first_column + 4 * tx;
#pragma unroll
    for (int i = 0; i < per_thread; ++i, at += step) {
      const int r = ty + i * block_size_y;
      const int y = first_row - radius + r;
      const bool exists = tile_rows % block_size_y == 0 || r < tile_rows;
      const bool row_inside = Inside || (y >= 0 && y < height);
#pragma unroll
      for (int m = 0; m < body; ++m)
        piece(i * body + m, r * stride + word_of(margin + 4 * (tx + m * block_size_x)), at + 4 * m * block_size_x,
              exists, row_inside && (!edge_x || first_column + 4 * (tx + m * block_size_x) < width));
    }
    const int thread = ty * block_size_x + tx;
#pragma unroll
    for (int j = 0; j < halo_per_thread; ++j) {
      const int p = thread + j * threads;
      const int y = first_row - radius + p / row_pieces;
      const int x = first_column - margin + halo_column(p % row_pieces);
      piece(per_thread * body + j, p / row_pieces * stride + word_of(halo_column(p % row_pieces)),
            input + static_cast<long long>(y) * width + x, halo_pieces % threads == 0 || p < halo_pieces,
            Inside || (y >= 0 && y < height && x >= 0 && x < width));
    }
  }

  template <bool Inside>
  __device__ void read_from(const float* input, int width, int height, int first_column, int first_row) {
    for_each_piece<Inside>(input, width, height, first_column, first_row,
                           [&](int slot, int, const float* from, bool exists, bool in_image) {
                             held[slot] = exists && in_image ? CONV_LOAD(reinterpret_cast<const float4*>(from))
                                                             : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                           });
  }

  __device__ void read(const float* input, int width, int height, int first_column, int first_row) {
    if (inside(width, height, first_column, first_row))
      read_from<true>(input, width, height, first_column, first_row);
    else
      read_from<false>(input, width, height, first_column, first_row);
  }

  __device__ void write(float* to) const {
    // (Inside: no image address is used, so none is computed.)
    for_each_piece<true>(nullptr, 0, 0, 0, 0, [&](int slot, int word, const float*, bool exists, bool) {
      if (exists) *reinterpret_cast<float4*>(to + word) = held[slot];
    });
  }

  template <bool Inside>
  __device__ static void copy_from(float* to, const float* input, int width, int height, int first_column,
                                   int first_row) {
    for_each_piece<Inside>(input, width, height, first_column, first_row,
                           [&](int, int word, const float* from, bool exists, bool in_image) {
                             if (exists) copy_async16(to + word, in_image ? from : input, in_image ? 16 : 0);
                           });
  }

  __device__ static void copy(float* to, const float* input, int width, int height, int first_column, int first_row) {
    if (inside(width, height, first_column, first_row))
      copy_from<true>(to, input, width, height, first_column, first_row);
    else
      copy_from<false>(to, input, width, height, first_column, first_row);
  }
};

// The arithmetic of one tile for one thread: its input row q (of rows + K - 1)
// starts at `row(q)` in shared memory, its 16-byte loads at `offsets` words
// from there; input row q feeds output row i with filter row q - i.
template <class Row>
__device__ __forceinline__ void accumulate(float (&sum)[rows][run], Row row, const int (&offsets)[window_quads],
                                           const float (&weights)[K * K]) {
#pragma unroll
  for (int i = 0; i < rows; ++i)
#pragma unroll
    for (int j = 0; j < run; ++j) sum[i][j] = 0.0f;
#pragma unroll
  for (int q = 0; q < rows + K - 1; ++q) {
    const float* const line = row(q);
    float window[4 * window_quads];
#pragma unroll
    for (int n = 0; n < window_quads; ++n) {
      const float4 piece = *reinterpret_cast<const float4*>(line + offsets[n]);
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
}

// Stores a thread's rows x run outputs, the first at (y, x0), inside the image.
__device__ __forceinline__ void store_outputs(float* output, const float (&sum)[rows][run], int y, int x0, int width,
                                              int height, bool aligned) {
  if (aligned && y + rows <= height && x0 + run <= width) {  // all inside: no test per row
    float* line = output + static_cast<long long>(y) * width + x0;
#pragma unroll
    for (int i = 0; i < rows; ++i, line += width)
#pragma unroll
      for (int n = 0; n < run / 4; ++n)
        *reinterpret_cast<float4*>(line + 4 * n) =
            make_float4(sum[i][4 * n], sum[i][4 * n + 1], sum[i][4 * n + 2], sum[i][4 * n + 3]);
    return;
  }
#pragma unroll
  for (int i = 0; i < rows; ++i) {
    if (y + i < height) {
      float* const line = output + static_cast<long long>(y + i) * width;
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
}

// bulk_copy = 1: the shared-memory address (32 bits) of a generic pointer into shared memory.
__device__ __forceinline__ unsigned shared_address(const void* pointer) {
  unsigned address;
  asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(address) : "l"(pointer));
  return address;
}

// An mbarrier whose phase completes after `count` arrivals (and the bytes they expect).
__device__ __forceinline__ void barrier_init(unsigned barrier, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(barrier), "r"(count) : "memory");
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

__device__ __forceinline__ void barrier_arrive(unsigned barrier) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(barrier) : "memory");
}

__device__ __forceinline__ void barrier_arrive_expecting(unsigned barrier, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(barrier), "r"(bytes) : "memory");
}

__device__ __forceinline__ void barrier_wait(unsigned barrier, unsigned parity) {
  unsigned done = 0;
  do {
    asm volatile(
        "{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
        : "=r"(done)
        : "r"(barrier), "r"(parity)
        : "memory");
  } while (!done);
}

// Copies `bytes` (a multiple of 16, both addresses 16-byte aligned) from global to
// shared memory with the copy engine; their arrival completes `barrier`'s bytes.
__device__ __forceinline__ void bulk_copy_row(unsigned to, const float* from, unsigned bytes, unsigned barrier) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(to),
               "l"(from), "r"(bytes), "r"(barrier)
               : "memory");
}

// Orders this thread's earlier shared-memory accesses before later bulk copies (another proxy).
__device__ __forceinline__ void fence_for_bulk_copies() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

}  // namespace conv2d_window

#if !bulk_copy

// max_registers > 0: the launch bounds ask for as many resident blocks as
// that many registers a thread allow, so ptxas keeps to about that many.
#if max_registers > 0
#define CONV_BOUNDS \
  __launch_bounds__(block_size_x * block_size_y, 65536 / (block_size_x * block_size_y * max_registers))
#else
#define CONV_BOUNDS __launch_bounds__(block_size_x * block_size_y)
#endif

extern "C" __global__ void CONV_BOUNDS
    conv2d(float* output, const float* input, const conv2d_filter filter, int width, int height, int k) {
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
  for (int w = 0; w < K * K; ++w) weights[w] = filter.weights[w];

  // Word offsets (within a row) of this thread's 16-byte loads.
  int offsets[window_quads];
#pragma unroll
  for (int n = 0; n < window_quads; ++n) offsets[n] = word_of(threadIdx.x * run + 4 * n);
  const int x0 = first_column + threadIdx.x * run;

  if (!cp_async && !ring && aligned) {
    // Through registers: tile t + 1's rows are read while tile t is computed.
    staged_tile staged;
    staged.read(input, width, height, first_column, first_row);
    for (int t = 0; t < tiles; ++t) {
      const int tile_first_row = first_row + t * output_rows;
      staged.write(tile);
      __syncthreads();
      if (t + 1 < tiles) staged.read(input, width, height, first_column, tile_first_row + output_rows);
      float sum[rows][run];
      const float* const mine = tile + threadIdx.y * rows * stride;
      accumulate(sum, [&](int q) { return mine + q * stride; }, offsets, weights);
      store_outputs(output, sum, tile_first_row + threadIdx.y * rows, x0, width, height, aligned);
      if (t + 1 < tiles) __syncthreads();  // before the next tile's rows overwrite these
    }
    return;
  }
  // Tiles without the ring: with cp.async, aligned, moved piece by piece as above.
  const auto load_whole = [&](float* to, int tile_first_row) {
    if (cp_async && aligned)
      staged_tile::copy(to, input, width, height, first_column, tile_first_row);
    else
      load_tile<0>(to, 0, input, width, height, first_column, tile_first_row, aligned);
  };
  load_whole(tile, first_row);
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
        load_whole(tile + ((t + 1) % buffers) * tile_words, tile_first_row + output_rows);
    }
    if (cp_async) {
      copy_commit();  // (an empty group after the last tile)
      copy_wait_all_but_newest();
    }
    __syncthreads();

    const float* mine = tile + (t % buffers) * tile_words + threadIdx.y * rows * stride;  // without the ring
    const int my_start = start + threadIdx.y * rows;  // ring: shared row of the thread's input row 0 (unwrapped)
    float sum[rows][run];
    accumulate(
        sum,
        [&](int q) {
          return ring ? tile + (my_start + q >= ring_rows ? my_start + q - ring_rows : my_start + q) * stride
                      : mine + q * stride;
        },
        offsets, weights);
    store_outputs(output, sum, tile_first_row + threadIdx.y * rows, x0, width, height, aligned);
    if (t + 1 < tiles) __syncthreads();  // before the next iteration's copy overwrites this buffer
    start = next_start;
  }
}

#else  // bulk_copy

namespace conv2d_window {
// interleave = 0: the block's tiles are stacked (tile t's output rows follow
// tile t - 1's), tile row q of the block (image row first_row - radius + q) is
// ring row q % bulk_rows, and a tile copies only its output_rows new rows.
// interleave = 1: tile t of block row b is the image's tile row b + t *
// gridDim.y, so the grid sweeps down the image together (the rows being read
// and written at any time are one band, not gridDim.y of them), and each tile
// copies all its rows into slot t % stages of whole tiles (the halo rows come
// from L2: the tile above was read at the same time).
constexpr bool strided = interleave == 1;
constexpr int bulk_rows = strided ? stages * tile_rows : stages * output_rows + K - 1;
constexpr int consumer_warps = threads / 32;
static_assert(stages >= 2 && threads % 32 == 0, "whole warps compute; the copies run ahead by up to stages - 1 tiles");
}  // namespace conv2d_window

extern "C" __global__ void __launch_bounds__(conv2d_window::threads + 32)
    conv2d(float* output, const float* input, const conv2d_filter filter, int width, int height, int k) {
  using namespace conv2d_window;
  (void)k;  // K, the compile-time extent, is what the code uses; k names it for the reference
  extern __shared__ float4 tile_storage[];  // bulk_rows x stride words, tile column c at word c
  // Per ring slot (tile t uses slot t % stages): `full` completes when tile t's
  // rows have landed, `empty` when every computing warp is done with tile t.
  __shared__ unsigned long long full[stages];
  __shared__ unsigned long long empty[stages];
  float* const ring = reinterpret_cast<float*>(tile_storage);

  const int first_column = blockIdx.x * output_columns;
  const int first_row = blockIdx.y * (output_rows * (strided ? 1 : tiles_per_block));  // of tile 0
  if (first_row >= height) return;  // the whole block (the grid is rounded up to whole blocks)
  // Output rows from one of the block's tiles to the next.
  const int tile_step = strided ? static_cast<int>(gridDim.y) * output_rows : output_rows;
  const int tiles = min(tiles_per_block, (height - first_row + tile_step - 1) / tile_step);
  const bool aligned = width % 4 == 0 &&
                       (reinterpret_cast<unsigned long long>(input) | reinterpret_cast<unsigned long long>(output)) % 16 == 0;
  // A one-dimensional block: the `threads` computing threads (block_size_x x
  // block_size_y, x fastest), then the copying warp.
  const int thread = threadIdx.x;
  const int left = first_column - margin;  // image column of tile column 0
  // The tile columns inside the image: [inside_begin, inside_end), multiples of 4 when aligned.
  const int inside_begin = max(0, -left);
  const int inside_end = min(tile_columns, width - left);

  if (thread == 0)
    for (int s = 0; s < stages; ++s) {
      barrier_init(shared_address(full + s), 32);
      barrier_init(shared_address(empty + s), consumer_warps);
    }
  if (aligned && (inside_begin > 0 || inside_end < tile_columns)) {
    // The columns outside the image stay zero: the copies only write those inside.
    for (int item = thread; item < bulk_rows * tile_columns; item += threads + 32) {
      const int c = item % tile_columns;
      if (c < inside_begin || c >= inside_end) ring[(item / tile_columns) * stride + c] = 0.0f;
    }
    fence_for_bulk_copies();
  }
  float weights[K * K];
#pragma unroll
  for (int w = 0; w < K * K; ++w) weights[w] = filter.weights[w];
  __syncthreads();  // the last block-wide barrier: the warps part here

  // The last warp copies (threads is a multiple of 32: no warp does both; the
  // shuffle says so to the compiler, which keeps the computing code uniform).
  if (__shfl_sync(0xffffffffu, static_cast<int>(thread >= threads), 0)) {
    // The copying warp: tile t's rows (stacked, the output_rows new ones, all
    // of tile 0's; interleaved, all) once every computing warp is done with
    // tile t - stages, whose rows they replace. Lane 0 copies each row inside the image with one bulk copy;
    // rows outside the image are zeros stored by the lanes. Every lane arrives
    // on `full` after its stores, lane 0 expecting the copies' bytes.
    const int lane = thread - threads;
    const unsigned row_bytes = 4u * static_cast<unsigned>(inside_end - inside_begin);
    for (int t = 0; t < tiles; ++t) {
      const int slot = t % stages;
      if (t >= stages) barrier_wait(shared_address(empty + slot), (t / stages - 1) & 1);
      // Tile t's rows to copy, [q_begin, q_end) of its tile rows (image rows
      // top + q); tile row q_begin goes to ring row first_slot_row, and the
      // next ones follow it (around the ring when stacked).
      const int top = first_row + t * tile_step - radius;
      const int q_begin = strided || t == 0 ? 0 : K - 1;
      const int q_end = tile_rows;
      const int first_slot_row = strided ? slot * tile_rows : (t * output_rows + q_begin) % bulk_rows;
      const auto next_row = [](int row) { return strided || row + 1 < bulk_rows ? row + 1 : 0; };
      if (aligned) {
        const int y_begin = max(top + q_begin, 0);
        const int y_end = min(top + q_end, height);
        if (y_begin > top + q_begin || y_end < top + q_end) {
          for (int q = q_begin, row = first_slot_row; q < q_end; ++q, row = next_row(row))
            if (top + q < 0 || top + q >= height)
              for (int c = lane; c < tile_columns; c += 32) ring[row * stride + c] = 0.0f;
          fence_for_bulk_copies();
        }
        if (lane == 0) {
          const unsigned barrier = shared_address(full + slot);
          barrier_arrive_expecting(barrier, y_end > y_begin ? static_cast<unsigned>(y_end - y_begin) * row_bytes : 0u);
          const float* from = input + static_cast<long long>(y_begin) * width + left + inside_begin;
          int row = first_slot_row;
          for (int y = top + q_begin; y < y_begin; ++y) row = next_row(row);
          for (int y = y_begin; y < y_end; ++y, from += width, row = next_row(row))
            bulk_copy_row(shared_address(ring + row * stride + inside_begin), from, row_bytes, barrier);
        } else {
          barrier_arrive(shared_address(full + slot));
        }
      } else {
        int row = first_slot_row;
        for (int q = q_begin; q < q_end; ++q, row = next_row(row))
          for (int c = lane; c < tile_columns; c += 32) {
            const int y = top + q;
            const int x = left + c;
            float value = 0.0f;
            if (y >= 0 && y < height && x >= 0 && x < width) value = input[static_cast<long long>(y) * width + x];
            ring[row * stride + c] = value;
          }
        barrier_arrive(shared_address(full + slot));
      }
    }
    return;
  }

  // The computing warps: tile by tile as the copies land.
  const int tx = thread % block_size_x;
  const int ty = thread / block_size_x;
  int offsets[window_quads];
#pragma unroll
  for (int n = 0; n < window_quads; ++n) offsets[n] = tx * run + 4 * n;
  const int x0 = first_column + tx * run;
  int base = ty * rows;  // ring row of the thread's input row 0 in tile t
  for (int t = 0; t < tiles; ++t) {
    const int slot = t % stages;
    barrier_wait(shared_address(full + slot), (t / stages) & 1);
    if (strided) base = slot * tile_rows + ty * rows;
    const float* const mine = ring + base * stride;
    // The thread's input rows from this one on start the ring again (stacked tiles).
    const int wrap = strided ? tile_rows : bulk_rows - base;
    float sum[rows][run];
    accumulate(
        sum, [&](int q) { return q < wrap ? mine + q * stride : mine + (q - bulk_rows) * stride; }, offsets, weights);
    store_outputs(output, sum, first_row + t * tile_step + ty * rows, x0, width, height, aligned);
    // The slot goes back to the copies only after the stores, which use every
    // value read from it, and a proxy fence, which orders this lane's reads
    // before the copy engine's writes. Arriving right after the arithmetic
    // gave wrong outputs on the H200 (K = 3, tile_size_x = 16: 22 of 441
    // configurations, always the last output of a thread's run, a refill
    // racing a read); with both, none of them.
    fence_for_bulk_copies();
    __syncwarp();
    if (thread % 32 == 0) barrier_arrive(shared_address(empty + slot));
    base = base + output_rows >= bulk_rows ? base + output_rows - bulk_rows : base + output_rows;
  }
}

#endif  // bulk_copy

#endif  // sliding_window
