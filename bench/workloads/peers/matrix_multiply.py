"""matrix_multiply's PyTorch peers: C = A B for n x n row-major float32
matrices at the seed (n = 256) and large (n = 4096) sizes, the inputs on the
specs' grid (uniform in [-1, 1], multiples of 1/128).

- "torch.matmul float32 (cuBLAS, TF32 off)": the FP32 peer of variant 0 and
  of matrix_multiply_fp32.toml (allow_tf32 = False for the measurement).
- "torch.matmul(a.bfloat16(), b.bfloat16()) ...": the tensor-core peer of
  variant 1. It starts, as the kernel does, from the float32 matrices, so
  the two conversions are inside the timing; its result is bf16 (the kernel
  writes float32). Reduced-precision bf16 reductions are turned off so that
  cuBLAS accumulates in float32, as the kernel does.
- where torch.mm takes out_dtype (newer PyTorch): the same product with a
  float32 result, which is exactly the kernel's function on these inputs.
"""
import sys

import torch


def _grid_matrix(n, seed):
    generator = torch.Generator(device="cuda").manual_seed(seed)
    values = torch.rand(n, n, device="cuda", generator=generator) * 2 - 1
    return torch.round(values * 128) / 128


def peers(median_ms):
    out = []
    matmul = torch.backends.cuda.matmul
    saved = (matmul.allow_tf32, matmul.allow_bf16_reduced_precision_reduction)
    matmul.allow_tf32 = False
    matmul.allow_bf16_reduced_precision_reduction = False
    try:
        for n in (256, 4096):
            a = _grid_matrix(n, 1)
            b = _grid_matrix(n, 2)
            c = torch.empty(n, n, device="cuda")
            torch.matmul(a, b, out=c)
            expected = a.double() @ b.double()
            if not torch.equal(c.double(), expected):  # exact on this grid unless TF32 is in use
                print(f"matrix_multiply peer: float32 matmul at n = {n} is not exact: TF32?", file=sys.stderr)
            out.append({"name": "matrix_multiply", "n": n, "peer": "torch.matmul float32 (cuBLAS, TF32 off)",
                        "median_ms": median_ms(lambda: torch.matmul(a, b, out=c))})
            out.append({"name": "matrix_multiply", "n": n,
                        "peer": "torch.matmul(a.bfloat16(), b.bfloat16()) (cuBLAS bf16, float32 accumulation, "
                                "conversions timed, bf16 result)",
                        "median_ms": median_ms(lambda: torch.matmul(a.bfloat16(), b.bfloat16()))})
            try:
                wide = torch.mm(a.bfloat16(), b.bfloat16(), out_dtype=torch.float32)
            except (TypeError, RuntimeError):
                wide = None
            if wide is not None and torch.equal(wide.double(), expected):
                out.append({"name": "matrix_multiply", "n": n,
                            "peer": "torch.mm(a.bfloat16(), b.bfloat16(), out_dtype=torch.float32) "
                                    "(cuBLAS bf16, conversions timed, float32 result)",
                            "median_ms": median_ms(lambda: torch.mm(a.bfloat16(), b.bfloat16(),
                                                                    out_dtype=torch.float32))})
            del a, b, c, expected, wide
            torch.cuda.empty_cache()
    finally:
        matmul.allow_tf32, matmul.allow_bf16_reduced_precision_reduction = saved
    return out
