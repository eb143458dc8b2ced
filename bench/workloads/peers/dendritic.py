"""dendritic's PyTorch peer: dendritic integration written as a PyTorch user
would, u = X W^T + b over the N D dendrites (one cuBLAS float32 GEMM, TF32
off), the four nonlinearities selected per dendrite with torch.where, the sum
over the dendrites and tanh; under no_grad, at the seed (B 1, N 10, D 8, I 16)
and large (B 4096, N 1024, D 8, I 256) sizes. X U(-1, 1), W U(-2/sqrt(I),
2/sqrt(I)), b U(-1/sqrt(I), 1/sqrt(I)), types uniform in 0..3."""
import torch


def dendritic_integration(X, W, b, types):
    """Y (B x N) = tanh(sum over d of f_type[n][d](X W[n][d] + b[n][d]))."""
    N, D, I = W.shape
    u = (X @ W.view(N * D, I).T + b.view(N * D)).view(-1, N, D)
    sigmoid = torch.sigmoid(u)
    nmda = u / (1 + torch.exp(-0.062 * u) / 3.57)
    active_bp = torch.where(u < 1, u, 1 + 2 * (u - 1))
    multiplicative = u * sigmoid
    a = torch.where(types == 0, sigmoid,
                    torch.where(types == 1, nmda,
                                torch.where(types == 2, active_bp, multiplicative)))
    return torch.tanh(a.sum(dim=-1))


def peers(median_ms):
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    out = []
    for batch, neurons, dendrites, inputs in ((1, 10, 8, 16), (4096, 1024, 8, 256)):
        scale = inputs ** -0.5
        X = torch.rand(batch, inputs, device="cuda") * 2 - 1
        W = (torch.rand(neurons, dendrites, inputs, device="cuda") * 2 - 1) * 2 * scale
        b = (torch.rand(neurons, dendrites, device="cuda") * 2 - 1) * scale
        types = torch.randint(0, 4, (neurons, dendrites), device="cuda", dtype=torch.int32)
        with torch.no_grad():
            Y = dendritic_integration(X, W, b, types)
            assert Y.shape == (batch, neurons)
            out.append({"name": "dendritic", "batch": batch, "neurons": neurons, "dendrites": dendrites,
                        "inputs": inputs,
                        "peer": "PyTorch: X @ W.view(N*D, I).T + b (cuBLAS fp32, TF32 off), torch.where over the "
                                "four nonlinearities, sum over D, tanh; no_grad",
                        "median_ms": median_ms(lambda: dendritic_integration(X, W, b, types))})
        del X, W, b, types, Y
    torch.backends.cuda.matmul.allow_tf32 = saved
    return out
