"""The PyTorch peers of the suite's workloads, measured on the GPU the tuned
kernels ran on: torch.add (c = a + b) and torch.dot (float32) at the seed and
large sizes, and cuDNN's conv2d at the conv2d workload's sizes. Median of 200 launches timed with CUDA events, after
warm-up; the inputs are uniform random. The other workloads' peers live in
bench/workloads/peers/NAME.py, each with peers(median_ms) returning its
entries. Prints one JSON object; PEERS=a,b limits the run to those modules;
--conv2d prints only the conv2d entries."""
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import torch


def median_ms(body, runs=200):
    for _ in range(20):
        body()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        body()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2]


def conv2d_entries(benchmark):
    """conv2d at the workload's sizes: one channel, zero padding (k-1)/2,
    cuDNN in fp32 with TF32 off."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = benchmark
    how = "cudnn.benchmark" if benchmark else "PyTorch defaults, cudnn.benchmark off"
    entries = []
    for size, k in ((256, 3), (4096, 3), (4096, 5), (4096, 7), (16384, 3)):
        image = torch.rand(1, 1, size, size, device="cuda")
        weights = torch.rand(1, 1, k, k, device="cuda") * 2 - 1
        result = torch.nn.functional.conv2d(image, weights, padding=(k - 1) // 2)
        assert result.shape == (1, 1, size, size)
        entries.append({"name": "conv2d", "width": size, "height": size, "k": k,
                        "peer": f"torch.nn.functional.conv2d (cuDNN, fp32, TF32 off, {how})",
                        "median_ms": median_ms(lambda: torch.nn.functional.conv2d(image, weights,
                                                                                  padding=(k - 1) // 2))})
        del image, weights, result
    return entries


def conv2d_both_ways():
    """The fastest algorithm (cudnn.benchmark), listed first as the
    profiler's primary peer, then PyTorch's defaults (the algorithm cuDNN's
    heuristics pick) timed in a fresh process: PyTorch caches one algorithm
    per shape, whichever way it was chosen first."""
    entries = conv2d_entries(benchmark=True)
    defaults = subprocess.run([sys.executable, __file__, "--conv2d-defaults"], capture_output=True, check=True, text=True)
    return entries + json.loads(defaults.stdout)


def main():
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "workloads": []}
    for n in (100_000, 2 ** 28):
        a = torch.rand(n, device="cuda") * 2 - 1
        b = torch.rand(n, device="cuda") * 2 - 1
        c = torch.empty_like(a)
        out["workloads"].append({"name": "vector_add", "n": n, "peer": "torch.add(a, b, out=c)",
                                 "median_ms": median_ms(lambda: torch.add(a, b, out=c))})
        out["workloads"].append({"name": "dot_product", "n": n, "peer": "torch.dot(a, b) (float32)",
                                 "median_ms": median_ms(lambda: torch.dot(a, b))})
        del a, b, c
    out["workloads"].extend(conv2d_both_ways())
    wanted = [name for name in os.environ.get("PEERS", "").split(",") if name]
    for path in sorted((pathlib.Path(__file__).parent / "peers").glob("*.py")):
        if wanted and path.stem not in wanted:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out["workloads"].extend(module.peers(median_ms))
        torch.cuda.empty_cache()
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    if sys.argv[1:] == ["--conv2d-defaults"]:
        json.dump(conv2d_entries(benchmark=False), sys.stdout)
    elif sys.argv[1:] == ["--conv2d"]:  # the conv2d entries alone, as main() lists them
        json.dump({"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                   "workloads": conv2d_both_ways()}, sys.stdout, indent=1)
        print()
    else:
        main()
