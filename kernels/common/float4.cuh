// float4.cuh: moving a float4's four words, shared by the suite's NVRTC
// kernels (matrix_multiply, gemm_nt.cuh). Inlined with constant offsets, the
// words stay in registers (their PTX is the same as with the four stores
// written out).
#pragma once

// to[0], to[step], to[2 step], to[3 step] = v.x, v.y, v.z, v.w: into a
// register array (step 1) or down a column of a shared-memory tile.
__device__ __forceinline__ void spread4(const float4& v, float* to, int step = 1) {
  to[0] = v.x;
  to[step] = v.y;
  to[2 * step] = v.z;
  to[3 * step] = v.w;
}
