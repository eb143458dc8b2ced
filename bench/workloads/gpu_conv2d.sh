#!/usr/bin/env bash
# conv2d at its large sizes on a GPU machine: each spec tuned with auto
# (BUDGET evaluations, 60 at 16384^2; every variant verified against the
# float64 reference), its best measured with tunekit bench, and PyTorch's
# conv2d (cudnn.benchmark, then the defaults in a fresh process) in the same
# run; summary.json pairs each with its peers.
# Usage: bench/workloads/gpu_conv2d.sh OUT_DIR   (BIN: the binaries, default .devrun/bin;
#        STORE: the results store, default OUT_DIR/conv2d.db; BUDGET, default 300;
#        SPECS: which of kernels/conv2d/, default "conv2d conv2d_k5 conv2d_k7 conv2d_16k")
set -uo pipefail
out=$1
bin=${BIN:-.devrun/bin}
store=${STORE:-$out/conv2d.db}
mkdir -p "$out"
status=0
for spec in ${SPECS:-conv2d conv2d_k5 conv2d_k7 conv2d_16k}; do
  budget=${BUDGET:-300}
  [ "$spec" = conv2d_16k ] && budget=60
  echo "=== $spec $(date +%T)"
  "$bin/tunekit" tune "kernels/conv2d/$spec.toml" --strategy auto --budget "$budget" --store "$store" \
    --json "$out/${spec}_tune.json" || status=1
  "$bin/tunekit" bench "kernels/conv2d/$spec.toml" --store "$store" --json "$out/${spec}_bench.json" || status=1
done
echo "=== peers $(date +%T)"
python3 bench/workloads/torch_peer.py --conv2d > "$out/torch_conv2d.json" || status=1
python3 - "$out" <<'EOF' || status=1
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
peers = json.loads((out / "torch_conv2d.json").read_text())["workloads"]
rows = []
for bench in sorted(out.glob("conv2d*_bench.json")):
    report = json.loads(bench.read_text())
    problem = report["device"]["problem"]
    result = report["results"][0]
    ours_us = result["median_us"]
    row = {"spec": bench.name[:-len("_bench.json")], "problem": problem, "params": result["params"],
           "ours_us": ours_us, "peers": {}}
    for peer in peers:
        if (peer["width"], peer["height"], peer["k"]) == (problem["width"], problem["height"], problem["k"]):
            row["peers"][peer["peer"]] = {"us": peer["median_ms"] * 1000, "speedup": peer["median_ms"] * 1000 / ours_us}
    rows.append(row)
summary = {"device": report["device"]["name"], "rows": rows}
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
for row in rows:
    print(row["spec"], f'{row["ours_us"]:.1f} us',
          "; ".join(f'{name}: {p["us"]:.1f} us, {p["speedup"]:.2f}x' for name, p in row["peers"].items()))
EOF
echo "=== done $(date +%T), status $status"
exit $status
