// ar_forecast: for each of `series` float32 series of N points (row-major,
// series x N), fit AR(P) by Yule-Walker and forecast H steps:
//
//   mean m; biased autocorrelations r_k = (1/N) sum_{t < N-k} (x_t - m)(x_{t+k} - m), k = 0..P;
//   phi_1..phi_P from r by Levinson-Durbin (a reflection of 0 where the
//   prediction error is not positive, so a constant series forecasts its mean);
//   z_t = x_t - m; z_{N+j} = sum_i phi_i z_{N+j-i}, j = 0..H-1, earlier forecasts
//   used as they come; forecast[s][j] = m + z_{N+j}.
//
// N, P and H are compile-time constants (the spec's -DN, -DP, -DH: the series
// lives in registers, Levinson is unrolled); n, p, h repeat them for the reference.
// Bytes: 4 series N read + 4 series H written (the floor, at copy bandwidth);
// FLOPs about 2 (P + 2) N per series, plus O(P^2 + P H) in float64.
//
// A team of `team` lanes (a warp or a part of one) takes a series: lane l
// loads vectors of vector_width floats at l * vector_width + j * team *
// vector_width (coalesced), so it holds ceil(N / (team vector_width))
// vectors. The mean and the centred lag products are summed per lane in
// float32 and across the team in float64 (shuffles); the P values after a
// lane's vector come from the next lanes (and the next chunk, past the team's
// last lane) by shuffles. Every lane of the team runs Levinson-Durbin and the
// forecasts in float64 (the same values everywhere, no divergence), lane j
// stores forecast j.
//
// Tunable (each a -D define):
//   block_size    threads per block (block_size / team series per block)
//   team          lanes per series: 8, 16 or 32
//   vector_width  floats per load: 1, 2 or 4 (N a multiple of it)
//   load_hint     0: ld.global.nc; 1: ld.global.nc.L1::no_allocate;
//                 2: ld.global.cs (evict first); 3: ld.global.nc.L2::256B (prefetch)
//   min_blocks    __launch_bounds__' blocks per SM to fit (0: none)
// Compiled by NVRTC: builtins only, no headers.

#ifndef N
#define N 1000
#endif
#ifndef P
#define P 5
#endif
#ifndef H
#define H 10
#endif
#ifndef block_size
#define block_size 256
#endif
#ifndef team
#define team 32
#endif
#ifndef vector_width
#define vector_width 4
#endif
#ifndef load_hint
#define load_hint 0
#endif
#ifndef min_blocks
#define min_blocks 0
#endif

static_assert(team == 8 || team == 16 || team == 32, "team is 8, 16 or 32 lanes");
static_assert(block_size % 32 == 0, "whole warps");
static_assert(vector_width == 1 || vector_width == 2 || vector_width == 4, "vector_width is 1, 2 or 4");
static_assert(N % vector_width == 0, "N is a multiple of vector_width");
static_assert(P >= 1 && P < N && 1 + (P - 1) / vector_width < team, "the lags reach at most the next chunk");

#if load_hint == 0
#define AR_LOAD "ld.global.nc"
#elif load_hint == 1
#define AR_LOAD "ld.global.nc.L1::no_allocate"
#elif load_hint == 2
#define AR_LOAD "ld.global.cs"
#else
#define AR_LOAD "ld.global.nc.L2::256B"
#endif

#if min_blocks > 0
#define AR_BOUNDS __launch_bounds__(block_size, min_blocks)
#else
#define AR_BOUNDS __launch_bounds__(block_size)
#endif

namespace {

constexpr int kChunk = team * vector_width;              // floats a team loads at once
constexpr int kChunks = (N + kChunk - 1) / kChunk;       // vectors per lane

__device__ __forceinline__ void load(const float* address, float (&v)[vector_width]) {
#if vector_width == 4
  asm(AR_LOAD ".v4.f32 {%0, %1, %2, %3}, [%4];" : "=f"(v[0]), "=f"(v[1]), "=f"(v[2]), "=f"(v[3]) : "l"(address));
#elif vector_width == 2
  asm(AR_LOAD ".v2.f32 {%0, %1}, [%2];" : "=f"(v[0]), "=f"(v[1]) : "l"(address));
#else
  asm(AR_LOAD ".f32 %0, [%1];" : "=f"(v[0]) : "l"(address));
#endif
}

// The sum over the team, in every lane (a butterfly: each step adds the same
// two values in each pair of lanes, so all lanes hold the same bits).
__device__ __forceinline__ double team_sum(double value, unsigned mask) {
#pragma unroll
  for (int offset = team / 2; offset > 0; offset /= 2) value += __shfl_xor_sync(mask, value, offset, team);
  return value;
}

}  // namespace

extern "C" __global__ void AR_BOUNDS ar_forecast(float* forecast, const float* x, int series, int n, int p, int h) {
  (void)n;  // N, P, H, the compile-time sizes, are what the code uses; n, p, h name them for the reference
  (void)p;
  (void)h;
  const int lane = threadIdx.x % team;
  const long long s = static_cast<long long>(blockIdx.x) * (block_size / team) + threadIdx.x / team;
  if (s >= series) return;  // whole teams leave; the shuffles name only their team's lanes
  const unsigned mask = team == 32 ? 0xffffffffu : ((1u << team) - 1u) << (threadIdx.x % 32 / team * team);
  const float* row = x + s * N;

  float v[kChunks][vector_width];
#pragma unroll
  for (int j = 0; j < kChunks; ++j) {
    const int t = j * kChunk + lane * vector_width;
    if (j + 1 < kChunks || t < N) {
      load(row + t, v[j]);
    } else {
#pragma unroll
      for (int e = 0; e < vector_width; ++e) v[j][e] = 0.0f;
    }
  }

  // The mean.
  float lane_sum = 0.0f;
#pragma unroll
  for (int j = 0; j < kChunks; ++j)
#pragma unroll
    for (int e = 0; e < vector_width; ++e) lane_sum += v[j][e];
  const double mean = team_sum(static_cast<double>(lane_sum), mask) / N;

  // The last P points, for the forecasts (z[0] = x_{N-1} - m, ...).
  double z[P];
#pragma unroll
  for (int i = 0; i < P; ++i) {
    constexpr int kLast = N - 1;
    const int t = kLast - i;
    z[i] = static_cast<double>(__shfl_sync(mask, v[t / kChunk][t % vector_width], t % kChunk / vector_width, team)) - mean;
  }

  // Centre (the points past N stay 0, so their products vanish).
  const float m = static_cast<float>(mean);
#pragma unroll
  for (int j = 0; j < kChunks; ++j) {
    const bool inside = j + 1 < kChunks || j * kChunk + lane * vector_width < N;
#pragma unroll
    for (int e = 0; e < vector_width; ++e) v[j][e] = inside ? v[j][e] - m : 0.0f;
  }

  // Lag products: a lane's vector, then the P points after it from the
  // next lanes (past the team's last lane: the next chunk's first lanes).
  float products[P + 1];
#pragma unroll
  for (int k = 0; k <= P; ++k) products[k] = 0.0f;
#pragma unroll
  for (int j = 0; j < kChunks; ++j) {
    float e[vector_width + P];
#pragma unroll
    for (int i = 0; i < vector_width; ++i) e[i] = v[j][i];
#pragma unroll
    for (int q = 0; q < P; ++q) {
      const int ahead = 1 + q / vector_width;  // lanes ahead
      const float next = j + 1 < kChunks ? v[j + 1 < kChunks ? j + 1 : j][q % vector_width] : 0.0f;
      const float send = lane < ahead ? next : v[j][q % vector_width];
      e[vector_width + q] = __shfl_sync(mask, send, lane + ahead, team);
    }
#pragma unroll
    for (int i = 0; i < vector_width; ++i)
#pragma unroll
      for (int k = 0; k <= P; ++k) products[k] = fmaf(e[i], e[i + k], products[k]);
  }
  double r[P + 1];
#pragma unroll
  for (int k = 0; k <= P; ++k) r[k] = team_sum(static_cast<double>(products[k]), mask) / N;

  // Levinson-Durbin.
  double phi[P + 1];
#pragma unroll
  for (int k = 0; k <= P; ++k) phi[k] = 0.0;
  double error = r[0];
#pragma unroll
  for (int k = 1; k <= P; ++k) {
    double a = r[k];
#pragma unroll
    for (int j = 1; j < k; ++j) a -= phi[j] * r[k - j];
    const double reflection = error > 0.0 ? a / error : 0.0;
    double next[P + 1];
#pragma unroll
    for (int j = 1; j < k; ++j) next[j] = phi[j] - reflection * phi[k - j];
#pragma unroll
    for (int j = 1; j < k; ++j) phi[j] = next[j];
    phi[k] = reflection;
    error *= 1.0 - reflection * reflection;
  }

  // Forecasts; lane j % team keeps forecast j, stored a team's worth at a time.
  float* out = forecast + s * H;
  float mine = 0.0f;
#pragma unroll
  for (int step = 0; step < H; ++step) {
    double f = 0.0;
#pragma unroll
    for (int i = 0; i < P; ++i) f += phi[i + 1] * z[i];
#pragma unroll
    for (int i = P - 1; i > 0; --i) z[i] = z[i - 1];
    z[0] = f;
    if (step % team == lane) mine = static_cast<float>(mean + f);
    if (step % team == team - 1 || step == H - 1) {
      if (lane <= step % team) out[step - step % team + lane] = mine;
    }
  }
}
