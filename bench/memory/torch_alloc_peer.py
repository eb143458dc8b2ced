"""PyTorch's CUDA caching allocator, the peer of tunekit's device pool:
alloc+free latency of cached sizes 256 B..64 MiB through
torch.cuda.caching_allocator_alloc / caching_allocator_delete (the calls with
the least Python around them), and the same through torch.empty + del.
Prints one JSON object; the Python call overhead is part of every figure."""
import json
import sys
import time

import torch


def per_call_ns(body, calls=1000, batches=100):
    samples = []
    for _ in range(batches):
        start = time.perf_counter_ns()
        for _ in range(calls):
            body()
        samples.append((time.perf_counter_ns() - start) / calls)
    samples.sort()
    return samples[len(samples) // 2]


def main():
    device = torch.device("cuda", 0)
    stream = torch.cuda.current_stream(device)
    rows = []
    size = 256
    noop_ns = per_call_ns(lambda: None)
    while size <= 64 << 20:
        def raw(bytes_=size):
            torch.cuda.caching_allocator_delete(torch.cuda.caching_allocator_alloc(bytes_, device, stream))

        def tensor(bytes_=size):
            t = torch.empty(bytes_, dtype=torch.uint8, device=device)
            del t

        raw()
        tensor()
        rows.append({"bytes": size, "caching_allocator_alloc_delete_median_ns": per_call_ns(raw),
                     "torch_empty_del_median_ns": per_call_ns(tensor)})
        size *= 4
    json.dump({"peer": "PyTorch CUDA caching allocator", "torch": torch.__version__,
               "device": torch.cuda.get_device_name(0), "python_empty_call_ns": noop_ns, "alloc_free": rows},
              sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
