"""The peer of examples/cuda/conv2d.toml: cuDNN through PyTorch on the same
problem (a 4096 x 4096 float32 image, padded by 16, one 17 x 17 filter, one
channel), TF32 off so that the arithmetic is the kernel's float32. Prints one
JSON line: the median of 200 timed runs (hot, after warm-up), in ms."""
import json
import sys

import torch

torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.benchmark = True  # let cuDNN pick its fastest algorithm

width = height = 4096
taps = 17
image = torch.rand(1, 1, height + taps - 1, width + taps - 1, device="cuda")
weights = torch.rand(1, 1, taps, taps, device="cuda")
out = torch.nn.functional.conv2d(image, weights)
assert out.shape == (1, 1, height, width)
for _ in range(20):
    torch.nn.functional.conv2d(image, weights)
torch.cuda.synchronize()
times = []
for _ in range(200):
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    torch.nn.functional.conv2d(image, weights)
    stop.record()
    stop.synchronize()
    times.append(start.elapsed_time(stop))
times.sort()
json.dump({"peer": "torch.nn.functional.conv2d (cuDNN, fp32, TF32 off)", "torch": torch.__version__,
           "cudnn": torch.backends.cudnn.version(), "device": torch.cuda.get_device_name(),
           "median_ms": times[len(times) // 2], "min_ms": times[0]}, sys.stdout)
print()
