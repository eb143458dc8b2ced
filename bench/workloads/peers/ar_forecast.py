"""ar_forecast's PyTorch peer: the same function as kernels/ar_forecast, batched
over the series in PyTorch. Per series: the mean, the biased autocorrelations
r_k = (1/n) sum_t z_t z_t+k of the centred series (float32 slicing products,
k = 0..p), Levinson-Durbin batched over the series in float64 (a reflection
of 0 where the prediction error is not positive), then h recursive forecasts
from the last p centred points, the mean added back. Sizes: the spec's seed
(1 series) and large (100000 series), n = 1000, p = 5, h = 10."""
import torch


def ar_forecast(x, p, h):
    n = x.shape[1]
    mean = x.mean(1, keepdim=True)
    z = x - mean
    r = torch.stack([(z[:, :n - k] * z[:, k:]).sum(1) for k in range(p + 1)], 1).double() / n
    phi = torch.zeros(x.shape[0], p + 1, dtype=torch.float64, device=x.device)  # phi[:, 1..p]
    error = r[:, 0].clone()
    for k in range(1, p + 1):
        a = r[:, k] - (phi[:, 1:k] * r[:, 1:k].flip(1)).sum(1)  # sum_j phi_j r_{k-j}
        reflection = torch.where(error > 0, a / error, torch.zeros_like(a))
        updated = phi.clone()
        updated[:, 1:k] = phi[:, 1:k] - reflection[:, None] * phi[:, 1:k].flip(1)  # phi_j - k phi_{k-j}
        updated[:, k] = reflection
        phi = updated
        error = error * (1 - reflection * reflection)
    history = z[:, n - p:].double()  # oldest first
    weights = phi[:, 1:].flip(1)     # phi_p .. phi_1, against the history's order
    forecasts = []
    for _ in range(h):
        f = (weights * history).sum(1)
        history = torch.cat([history[:, 1:], f[:, None]], 1)
        forecasts.append(f)
    return (torch.stack(forecasts, 1) + mean.double()).float()


def peers(median_ms):
    out = []
    for series in (1, 100_000):
        x = torch.rand(series, 1000, device="cuda")
        result = ar_forecast(x, 5, 10)
        assert result.shape == (series, 10)
        out.append({"name": "ar_forecast", "series": series, "n": 1000, "p": 5, "h": 10,
                    "peer": "batched torch: mean, slicing-product autocorrelations (fp32), Levinson-Durbin and forecasts (fp64)",
                    "median_ms": median_ms(lambda: ar_forecast(x, 5, 10))})
        del x, result
        torch.cuda.empty_cache()
    return out
