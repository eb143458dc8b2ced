"""lstm_cell's PyTorch peer: torch.nn.LSTMCell's forward step (cuBLAS float32
GEMMs with TF32 off, then ATen's fused pointwise LSTM kernel), under no_grad,
at the seed (batch 32, input 64, hidden 128) and large (1024, 1024, 1024)
sizes. Inputs U(-1, 1), the cell's own initialization (U(-1/sqrt(H),
1/sqrt(H))). Before timing, its output is checked against the function the
kernel computes, written out."""
import torch


def peers(median_ms):
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    out = []
    for batch, inputs, hidden in ((32, 64, 128), (1024, 1024, 1024)):
        cell = torch.nn.LSTMCell(inputs, hidden, device="cuda")
        x = torch.rand(batch, inputs, device="cuda") * 2 - 1
        h = torch.rand(batch, hidden, device="cuda") * 2 - 1
        c = torch.rand(batch, hidden, device="cuda") * 2 - 1
        with torch.no_grad():
            h_next, c_next = cell(x, (h, c))
            gates = x @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
            i, f, g, o = gates.chunk(4, dim=1)
            c_want = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h_want = torch.sigmoid(o) * torch.tanh(c_want)
            assert torch.allclose(c_next, c_want, rtol=0, atol=1e-4)
            assert torch.allclose(h_next, h_want, rtol=0, atol=1e-4)
            out.append({"name": "lstm_cell", "batch": batch, "input": inputs, "hidden": hidden,
                        "peer": "torch.nn.LSTMCell forward, no_grad (cuBLAS fp32 GEMMs, TF32 off, + fused pointwise)",
                        "median_ms": median_ms(lambda: cell(x, (h, c)))})
        del cell, x, h, c, h_next, c_next, gates, i, f, g, o, c_want, h_want
    torch.backends.cuda.matmul.allow_tf32 = saved
    return out
