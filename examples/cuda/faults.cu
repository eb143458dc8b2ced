// Variants that fail in every way a CUDA variant can, beside good ones, for
// the cuda backend: y[i] = 2 * x[i] + 1. MODE:
//   0  correct
//   1  writes through a wild pointer: an illegal address, a sticky fault
//      that leaves the context unusable
//   2  hangs: one thread spins on a volatile read of memory that never changes
//   3  asks for too many resources: faults.toml's shared_memory is 300000
//      bytes for this mode, above any GPU's per-block limit (227 KiB on sm_90)
//   4  a wrong result (one element's sign flipped)
//   5  writes a NaN
//   6  does not compile
//   7  cannot launch: faults.toml's grid is 70000 blocks high for this mode,
//      above the 65535 limit: cuLaunchKernel answers CUDA_ERROR_INVALID_VALUE
//      (cudaLaunchKernel cudaErrorInvalidConfiguration), and the context lives on
//   8  correct, but each thread first waits some 20000 cycles: slower
// Compiled by NVRTC: builtins only, no headers.

#ifndef MODE
#define MODE 0
#endif

#if MODE == 6
static_assert(MODE != 6, "this variant does not compile, on purpose");
#endif

__global__ void faults(const float* x, float* y, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
#if MODE == 1
  // 2^18 * n floats (1 TiB for n = 2^20) past y: mapped by nothing. The
  // offset depends on n, so the compiler cannot see the store is wild.
  if (i == 0) y[static_cast<long long>(n) << 18] = 1.0f;
#elif MODE == 2
  if (i == 0) {
    const volatile unsigned int* watched = reinterpret_cast<const volatile unsigned int*>(x);
    const unsigned int first = *watched;
    while (*watched == first) {
    }
  }
#elif MODE == 8
  const long long start = clock64();
  while (clock64() - start < 20000) {
  }
#endif
  if (i >= n) return;
  float value = 2.0f * x[i] + 1.0f;
#if MODE == 4
  if (i == n / 2) value = -value;
#elif MODE == 5
  if (i == 0) value = __int_as_float(0x7fc00000);  // a quiet NaN
#endif
  y[i] = value;
}
