// pixel_entropy: the local Shannon entropy of an H x W float32 image with
// values in [0, 1). Each pixel falls in bin b = min(15, floor(16 v)) (clamped
// to [0, 15]); the output at (y, x) is the entropy in bits of the 16-bin
// histogram of the pixels in rows y - W/2 .. y + W/2 - 1 and columns
// x - W/2 .. x + W/2 - 1, clipped to the image:
//
//   out[y][x] = log2(N) - (1/N) * sum over bins of c log2 c,   N = sum of the counts c,
//
// (0 log 0 = 0; N = W^2 inside, fewer at the borders). W, the even window
// side, is a compile-time constant (the spec's -DW=...); width and height are
// arguments; w repeats W for the reference.
//
// Floor: 8 H W bytes (one read, one write). Work per pixel, as done here:
// about (2 + W / column_rows)(1 + (W - 1) / tile_x) one-hot updates of column
// histograms, one add and subtract of 16-bin histograms (the sliding window)
// and 16 terms c log2 c: integer-ALU and SFU (or shared-memory) bound, far
// above the bytes floor.
//
// A block computes a tile_x x tile_y tile of outputs in three phases:
//  1. the bins of the tile and its halo, (tile_y + W - 1) x (tile_x + W - 1),
//     go to shared memory as bytes (16 marks a pixel outside the image), read
//     as float4s where rows allow;
//  2. column histograms: for each halo column and output row, the counts of
//     the W bins above and below it (rows y - W/2 .. y + W/2 - 1), 16 counts
//     of 8 bits packed in a uint4, slid down runs of column_rows rows (add
//     the entering row, remove the leaving one);
//  3. each thread slides a window histogram (16 counts of 16 bits in 8 words)
//     along a run of pixels_x outputs of one row: add the entering column
//     histogram, remove the leaving one, and evaluates the entropy.
// The c log2 c terms come from lg2.approx (the SFU) or from a table of
// c log2 c, c = 0 .. W^2, in shared memory (log2f, accurate), per bin.
//
// Tunable (each a -D define):
//   block_size     threads per block
//   tile_x, tile_y the output tile of a block (tile_x even)
//   pixels_x       outputs a thread slides over in phase 3 (divides tile_x)
//   column_rows    rows a thread slides a column histogram over in phase 2 (divides tile_y)
//   table_bins     bins whose c log2 c comes from the table, the others from
//                  lg2.approx: 0, 4, 8 or 16 (balances the SFU against shared memory)
//   stage_output   1: the tile's results go through shared memory and leave in
//                  coalesced rows; 0: each thread stores its own (rows apart)
// Compiled by NVRTC: builtins only, no headers.

#ifndef W
#define W 16
#endif
#ifndef block_size
#define block_size 256
#endif
#ifndef tile_x
#define tile_x 64
#endif
#ifndef tile_y
#define tile_y 32
#endif
#ifndef pixels_x
#define pixels_x 8
#endif
#ifndef column_rows
#define column_rows 16
#endif
#ifndef table_bins
#define table_bins 0
#endif
#ifndef stage_output
#define stage_output 1
#endif

static_assert(W % 2 == 0 && W >= 2 && W <= 64, "W is even, at most 64 (8-bit column counts, 16-bit window counts)");
static_assert(tile_x % 2 == 0 && tile_x % pixels_x == 0, "pixels_x divides tile_x, which is even");
static_assert(tile_y % column_rows == 0, "column_rows divides tile_y");
static_assert(table_bins == 0 || table_bins == 4 || table_bins == 8 || table_bins == 16, "table_bins is 0, 4, 8 or 16");
// The window counts carry a bias of 128 per slide (see slide()): W^2 + 128 (pixels_x - 1) < 2^16.
static_assert(W * W + 128 * pixels_x < 65536, "window counts fit 16 bits");

namespace {

constexpr int kHalf = W / 2;
constexpr int kColumns = tile_x + W - 1;  // halo columns; odd, so rows of uint4 hit all bank groups
constexpr int kRows = tile_y + W - 1;     // halo rows
constexpr int kBinStride = (kColumns + 3) / 4 * 4;
constexpr int kResultStride = tile_x + 1;  // odd: threads of consecutive rows hit distinct banks
constexpr int kTable = W * W + 4;          // c log2 c for c = 0 .. W^2, padded to 16 bytes
constexpr int kGroup = 255 / W;            // column histograms that add up in 8-bit fields

__device__ __forceinline__ unsigned permute(unsigned a, unsigned b, unsigned selector) {
  unsigned d;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(selector));
  return d;
}

__device__ __forceinline__ float fast_log2(float a) {
  float d;
  asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(d) : "f"(a));
  return d;
}

__device__ __forceinline__ unsigned bin_of(float v) {
  const int b = static_cast<int>(v * 16.0f);  // truncation is floor for v >= 0; clamped below
  return static_cast<unsigned>(min(15, max(0, b)));
}

// The 128-bit one-hot of bin b as a packed column histogram (bin 4k + j in
// byte j of word k); b = 16, a pixel outside the image, gives zeros. Word k
// is 1 << (8 b - 32 k), the funnel shift clamping shifts of 32 or more (and
// the negative ones, as unsigned) to 0.
__device__ __forceinline__ unsigned shift_one(unsigned amount) {
  unsigned d;
  asm("shf.l.clamp.b32 %0, %1, %2, %3;" : "=r"(d) : "r"(0u), "r"(1u), "r"(amount));
  return d;
}

__device__ __forceinline__ uint4 one_hot(unsigned b) {
  const unsigned amount = 8u * b;
  return make_uint4(shift_one(amount), shift_one(amount - 32u), shift_one(amount - 64u), shift_one(amount - 96u));
}

// The window histogram: bins 4k, 4k+1 in the 16-bit halves of window[2k],
// bins 4k+2, 4k+3 in those of window[2k+1].
__device__ __forceinline__ void widen_add(unsigned (&window)[8], const uint4& h) {
  const unsigned words[4] = {h.x, h.y, h.z, h.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    window[2 * k] += permute(words[k], 0u, 0x4140u);
    window[2 * k + 1] += permute(words[k], 0u, 0x4342u);
  }
}

// window += entering - leaving, bytewise: entering + 0x80 - leaving is in
// [128 - W, 128 + W] per byte (no carries), so every window count grows by
// a bias of 128 per slide, which the entropy takes off again.
__device__ __forceinline__ void slide(unsigned (&window)[8], const uint4& entering, const uint4& leaving) {
  uint4 difference;
  difference.x = entering.x + 0x80808080u - leaving.x;
  difference.y = entering.y + 0x80808080u - leaving.y;
  difference.z = entering.z + 0x80808080u - leaving.z;
  difference.w = entering.w + 0x80808080u - leaving.w;
  widen_add(window, difference);
}

// sum over bins of c log2 c, from window counts biased by `bias` each.
__device__ __forceinline__ float sum_c_log_c(const unsigned (&window)[8], const float* table, int bias) {
  float partial[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    if (k < table_bins / 2) {
      // Bins 2k, 2k+1 (in word k's halves) from the table.
      const int low = static_cast<int>(window[k] & 0xffffu) - bias;
      const int high = static_cast<int>(window[k] >> 16) - bias;
      partial[k % 4] += table[low] + table[high];
    } else {
      // 2^23 + count, exactly, by writing the count under the exponent of 2^23.
      const float low = __int_as_float(static_cast<int>(permute(window[k], 0x4b000000u, 0x7610u))) - (8388608.0f + static_cast<float>(bias));
      const float high = __int_as_float(static_cast<int>(permute(window[k], 0x4b000000u, 0x7632u))) - (8388608.0f + static_cast<float>(bias));
      // + 1e-30: log2 of a zero count is finite (-99.7), 0 times it 0; other counts stay exact.
      partial[k % 4] = fmaf(low, fast_log2(low + 1e-30f), partial[k % 4]);
      partial[k % 4] = fmaf(high, fast_log2(high + 1e-30f), partial[k % 4]);
    }
  }
  return (partial[0] + partial[1]) + (partial[2] + partial[3]);
}

// Phase 3 for one run: pixels x0 + first .. x0 + first + pixels_x - 1 of row y.
// Border: some windows are clipped, N varies per pixel.
template <bool Border>
__device__ __forceinline__ void run_pixels(const uint4* histograms, const float* table, float* result, float* output,
                                           int first, int x_first, int rows_in, int width) {
  unsigned window[8] = {0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u};
#pragma unroll
  for (int g = 0; g < W; g += kGroup) {
    uint4 group = histograms[first + g];
#pragma unroll
    for (int c = g + 1; c < g + kGroup && c < W; ++c) {
      const uint4 h = histograms[first + c];
      group.x += h.x;
      group.y += h.y;
      group.z += h.z;
      group.w += h.w;
    }
    widen_add(window, group);
  }
  const float interior_log = log2f(static_cast<float>(W * W));
  constexpr float kInteriorInverse = 1.0f / (W * W);
#pragma unroll
  for (int i = 0; i < pixels_x; ++i) {
    const float s = sum_c_log_c(window, table, 128 * i);
    float entropy;
    if (Border) {
      const int x = x_first + i;
      const int columns_in = min(x + kHalf, width) - max(x - kHalf, 0);
      const float n = static_cast<float>(rows_in * max(columns_in, 1));
      entropy = log2f(n) - s / n;
    } else {
      entropy = interior_log - s * kInteriorInverse;
    }
#if stage_output
    result[first + i] = entropy;
#else
    if (x_first + i < width) output[x_first + i] = entropy;
#endif
    if (i + 1 < pixels_x) slide(window, histograms[first + i + W], histograms[first + i]);
  }
}

}  // namespace

extern "C" __global__ void __launch_bounds__(block_size)
    pixel_entropy(float* output, const float* input, int width, int height, int w) {
  (void)w;  // W, the compile-time side, is what the code uses; w names it for the reference
  extern __shared__ uint4 shared[];
  uint4* histograms = shared;                                                       // tile_y x kColumns
  float* table = reinterpret_cast<float*>(shared + tile_y * kColumns);               // kTable
  unsigned char* bins = reinterpret_cast<unsigned char*>(table + kTable);            // kRows x kBinStride
  float* result = reinterpret_cast<float*>(table + kTable);                          // tile_y x kResultStride (after phase 2)
  (void)result;

  const int x0 = blockIdx.x * tile_x;
  const int y0 = blockIdx.y * tile_y;

  // 1. Bins of the tile and its halo: float4s and four bins a word where the
  // halo rows start 16-byte aligned (W / 2 and width multiples of 4), else one by one.
  if (kHalf % 4 == 0 && width % 4 == 0) {
    constexpr int kVectors = kBinStride / 4;  // covers the kColumns halo columns
    for (int e = threadIdx.x; e < kRows * kVectors; e += block_size) {
      const int row = e / kVectors;
      const int vector = e - row * kVectors;
      const int y = y0 - kHalf + row;
      const int x = x0 - kHalf + 4 * vector;  // a multiple of 4: the float4 is all inside or all outside
      unsigned packed = 0x10101010u;
      if (y >= 0 && y < height && x >= 0 && x < width) {
        const float4 v = __ldg(reinterpret_cast<const float4*>(input + static_cast<long long>(y) * width + x));
        packed = bin_of(v.x) | bin_of(v.y) << 8 | bin_of(v.z) << 16 | bin_of(v.w) << 24;
      }
      reinterpret_cast<unsigned*>(bins + row * kBinStride)[vector] = packed;
    }
  } else {
    for (int e = threadIdx.x; e < kRows * kColumns; e += block_size) {
      const int row = e / kColumns;
      const int column = e - row * kColumns;
      const int y = y0 - kHalf + row;
      const int x = x0 - kHalf + column;
      unsigned b = 16u;
      if (y >= 0 && y < height && x >= 0 && x < width) b = bin_of(__ldg(input + static_cast<long long>(y) * width + x));
      bins[row * kBinStride + column] = static_cast<unsigned char>(b);
    }
  }
#if table_bins > 0
  for (int c = threadIdx.x; c <= W * W; c += block_size)
    table[c] = c == 0 ? 0.0f : static_cast<float>(c) * log2f(static_cast<float>(c));
#endif
  __syncthreads();

  // 2. Column histograms, slid down runs of column_rows output rows.
  constexpr int kRuns = tile_y / column_rows;
  for (int item = threadIdx.x; item < kColumns * kRuns; item += block_size) {
    const int column = item % kColumns;
    const int top = item / kColumns * column_rows;
    const unsigned char* source = bins + top * kBinStride + column;
    uint4 h = make_uint4(0u, 0u, 0u, 0u);
#pragma unroll
    for (int k = 0; k < W; ++k) {
      const uint4 one = one_hot(source[k * kBinStride]);
      h.x += one.x;
      h.y += one.y;
      h.z += one.z;
      h.w += one.w;
    }
    histograms[top * kColumns + column] = h;
#pragma unroll 4
    for (int r = 1; r < column_rows; ++r) {
      // The leaving bin is counted in h, so no byte borrows.
      const uint4 entering = one_hot(source[(r - 1 + W) * kBinStride]);
      const uint4 leaving = one_hot(source[(r - 1) * kBinStride]);
      h.x = h.x + entering.x - leaving.x;
      h.y = h.y + entering.y - leaving.y;
      h.z = h.z + entering.z - leaving.z;
      h.w = h.w + entering.w - leaving.w;
      histograms[(top + r) * kColumns + column] = h;
    }
  }
  __syncthreads();

  // 3. Window histograms slid along runs of pixels_x outputs; consecutive
  // threads take consecutive rows.
  constexpr int kRunsPerRow = tile_x / pixels_x;
  for (int item = threadIdx.x; item < tile_y * kRunsPerRow; item += block_size) {
    const int r = item % tile_y;
    const int first = item / tile_y * pixels_x;
    const int y = y0 + r;
    if (y >= height) continue;
    const int x_first = x0 + first;
    const int rows_in = min(y + kHalf, height) - max(y - kHalf, 0);
#if stage_output
    float* row_result = result + r * kResultStride;
    float* row_output = nullptr;
#else
    float* row_result = nullptr;
    float* row_output = output + static_cast<long long>(y) * width;
#endif
    const uint4* row_histograms = histograms + r * kColumns;
    if (rows_in == W && x_first >= kHalf && x_first + pixels_x - 1 + kHalf <= width)
      run_pixels<false>(row_histograms, table, row_result, row_output, first, x_first, rows_in, width);
    else
      run_pixels<true>(row_histograms, table, row_result, row_output, first, x_first, rows_in, width);
  }

#if stage_output
  __syncthreads();
  for (int e = threadIdx.x; e < tile_y * tile_x; e += block_size) {
    const int r = e / tile_x;
    const int i = e - r * tile_x;
    const int y = y0 + r;
    const int x = x0 + i;
    if (y < height && x < width) output[static_cast<long long>(y) * width + x] = result[r * kResultStride + i];
  }
#endif
}
