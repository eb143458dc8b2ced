"""pixel_entropy's PyTorch peer: the same function as kernels/pixel_entropy,
written the way PyTorch offers it. The bins min(15, floor(16 v)) become 16
one-hot float32 planes; avg_pool2d with count_include_pad=False over the
window (kernel w, stride 1, padding w/2, the first H x W outputs: rows
y - w/2 .. y + w/2 - 1) gives p = count / (pixels of the clipped window);
the entropy is -sum p log2 p with xlogy(0, 0) = 0. Sizes: the spec's seed
(512^2, w = 16) and large (4096^2, w = 16 and 32)."""
import math

import torch
import torch.nn.functional as F


def local_entropy(image, w):
    height, width = image.shape
    bins = torch.clamp(torch.floor(image * 16), 0, 15)
    levels = torch.arange(16, device=image.device, dtype=image.dtype).view(16, 1, 1)
    planes = (bins.unsqueeze(0) == levels).to(image.dtype).unsqueeze(0)  # 1 x 16 x H x W
    p = F.avg_pool2d(planes, w, stride=1, padding=w // 2, count_include_pad=False)[0, :, :height, :width]
    return torch.special.xlogy(p, p).sum(0) * (-1.0 / math.log(2.0))


def peers(median_ms):
    out = []
    for size, w in ((512, 16), (4096, 16), (4096, 32)):
        image = torch.rand(size, size, device="cuda")
        result = local_entropy(image, w)
        assert result.shape == (size, size)
        out.append({"name": "pixel_entropy", "width": size, "height": size, "w": w,
                    "peer": "one-hot planes + avg_pool2d(count_include_pad=False) + xlogy (fp32)",
                    "median_ms": median_ms(lambda: local_entropy(image, w))})
        del image, result
        torch.cuda.empty_cache()
    return out
