// A tiled 2D convolution for the cuda backend: output (width x height) from
// an input padded by the filter's border ((width + 16) x (height + 16)) and a
// 17 x 17 filter, all float32, row-major:
//
//   output[y][x] = sum over fy, fx of input[y + fy][x + fx] * filter[fy][fx]
//
// A block of block_size_x x block_size_y threads computes a tile of
// (block_size_x * tile_size_x) x (block_size_y * tile_size_y) outputs; it first
// copies the input the tile needs into dynamic shared memory, (tile rows + 16)
// rows of (tile columns + 16) floats, then each thread accumulates
// tile_size_x x tile_size_y outputs spaced a block apart, so that the threads
// of a warp read consecutive shared-memory words and write coalesced rows.
//
// Tunable (each also a -D define):
//   block_size_x, block_size_y  threads of a block
//   tile_size_x, tile_size_y    outputs per thread; template arguments too:
//                               the spec's function is "conv2d<tile_size_x, tile_size_y>"
//   use_padding                 1: the shared-memory row stride is padded to
//                               16 (mod 32) words. With block_size_x * tile_size_x
//                               = 16 (mod 32) the unpadded stride is 0 (mod 32), and the
//                               two rows a warp reads when a block row is narrower than
//                               a warp (or straddles warps) hit the same banks.
//   read_only                   1: global loads through the read-only path (__ldg)
//
// The dynamic shared memory a launch needs is
//   4 * (block_size_y * tile_size_y + 16) * row_stride   bytes,
// which conv2d.toml's [launch] shared_memory repeats; keep the two in step.
// Compiled by NVRTC: builtins only, no headers.

#ifndef block_size_x
#define block_size_x 16
#endif
#ifndef block_size_y
#define block_size_y 16
#endif
#ifndef use_padding
#define use_padding 0
#endif
#ifndef read_only
#define read_only 0
#endif

// The filter's extent is part of the kernel, not of the call: the shared tile
// and the unrolled loops are sized by it. conv2d.toml's problem repeats it.
#ifndef FILTER_WIDTH
#define FILTER_WIDTH 17
#endif
#ifndef FILTER_HEIGHT
#define FILTER_HEIGHT 17
#endif

#if read_only
#define CONV2D_LOAD(address) __ldg(address)
#else
#define CONV2D_LOAD(address) (*(address))
#endif

// The row stride of the shared tile: its width, padded to 16 (mod 32) words when asked.
__device__ constexpr int conv2d_row_stride(int tile_columns) {
  return use_padding ? tile_columns + (48 - tile_columns % 32) % 32 : tile_columns;
}

template <int TileWidth, int TileHeight>
__global__ void __launch_bounds__(block_size_x * block_size_y)
    conv2d(float* output, const float* input, const float* filter, int width, int height) {
#if defined(tile_size_x) && defined(tile_size_y)
  // The name expression and the defines come from the same configuration.
  static_assert(TileWidth == tile_size_x && TileHeight == tile_size_y,
                "conv2d<...> was instantiated with other tile sizes than the defines name");
#endif
  constexpr int output_columns = block_size_x * TileWidth;
  constexpr int output_rows = block_size_y * TileHeight;
  constexpr int tile_columns = output_columns + FILTER_WIDTH - 1;
  constexpr int tile_rows = output_rows + FILTER_HEIGHT - 1;
  constexpr int stride = conv2d_row_stride(tile_columns);
  extern __shared__ float tile[];  // tile_rows x stride

  const int input_width = width + FILTER_WIDTH - 1;
  const int input_height = height + FILTER_HEIGHT - 1;
  const int first_column = blockIdx.x * output_columns;
  const int first_row = blockIdx.y * output_rows;

  // The input under this block's outputs, zeros beyond the image's edge
  // (a last block may reach past it when its tile does not divide the image).
  for (int row = threadIdx.y; row < tile_rows; row += block_size_y) {
    const int y = first_row + row;
    for (int column = threadIdx.x; column < tile_columns; column += block_size_x) {
      const int x = first_column + column;
      float value = 0.0f;
      if (y < input_height && x < input_width) value = CONV2D_LOAD(input + static_cast<long long>(y) * input_width + x);
      tile[row * stride + column] = value;
    }
  }
  __syncthreads();

  float sum[TileHeight][TileWidth];
#pragma unroll
  for (int i = 0; i < TileHeight; ++i)
#pragma unroll
    for (int j = 0; j < TileWidth; ++j) sum[i][j] = 0.0f;

  const float* origin = tile + threadIdx.y * stride + threadIdx.x;
  for (int fy = 0; fy < FILTER_HEIGHT; ++fy) {
#pragma unroll
    for (int fx = 0; fx < FILTER_WIDTH; ++fx) {
      // The same weight for the whole block: a broadcast from L1.
      const float weight = CONV2D_LOAD(filter + fy * FILTER_WIDTH + fx);
#pragma unroll
      for (int i = 0; i < TileHeight; ++i)
#pragma unroll
        for (int j = 0; j < TileWidth; ++j)
          sum[i][j] = fmaf(origin[(i * block_size_y + fy) * stride + j * block_size_x + fx], weight, sum[i][j]);
    }
  }

#pragma unroll
  for (int i = 0; i < TileHeight; ++i) {
    const int y = first_row + threadIdx.y + i * block_size_y;
#pragma unroll
    for (int j = 0; j < TileWidth; ++j) {
      const int x = first_column + threadIdx.x + j * block_size_x;
      if (y < height && x < width) output[static_cast<long long>(y) * width + x] = sum[i][j];
    }
  }
}
