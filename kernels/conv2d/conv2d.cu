// conv2d: single-channel 2-D cross-correlation of an H x W float32 image with
// a K x K filter (K odd), stride 1, zero padding (K-1)/2, output H x W:
//
//   out[y][x] = sum over fy, fx < K of in[y + fy - r][x + fx - r] * filter[fy][fx],  r = (K-1)/2,
//   reading zeros outside the image.
//
// Bytes: 8 H W (one read, one write; the halo re-reads hit shared memory);
// FLOPs: 2 K^2 H W. K is a compile-time constant (the spec's -DK=...).
//
// A block of block_size_x x block_size_y threads computes a tile of
// (block_size_x * tile_size_x) x (block_size_y * tile_size_y) outputs from its
// input tile (with the halo) in dynamic shared memory; each thread
// accumulates tile_size_x x tile_size_y outputs spaced a block apart, so a
// warp reads consecutive shared words and writes coalesced rows.
//
// Tunable (each a -D define): block_size_x, block_size_y, tile_size_x,
// tile_size_y, use_padding (row stride padded to 16 mod 32 words), read_only
// (global loads through __ldg). Compiled by NVRTC: builtins only.

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

static_assert(K % 2 == 1, "K is odd");

#if read_only
#define CONV_LOAD(address) __ldg(address)
#else
#define CONV_LOAD(address) (*(address))
#endif

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
