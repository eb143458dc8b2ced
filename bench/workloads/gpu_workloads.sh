#!/usr/bin/env bash
# The suite's workloads on a GPU machine: each tuned by brute force at the
# seed and large sizes (every variant verified against the float64
# reference), the stored best measured with tunekit bench, the device's
# ceilings and the PyTorch peers in the same run.
# Usage: bench/workloads/gpu_workloads.sh OUT_DIR   (BIN: the binaries, default .devrun/bin)
set -uo pipefail
out=$1
bin=${BIN:-.devrun/bin}
store=${STORE:-$out/workloads.db}
mkdir -p "$out"
status=0
"$bin/tunekit" ceilings --store "$store" --json > "$out/ceilings.json" || status=1
for workload in ${WORKLOADS-vector_add dot_product}; do
  for size in seed large; do
    spec=kernels/$workload/$workload.toml
    [ "$size" = seed ] && spec=kernels/$workload/${workload}_seed.toml
    echo "=== $workload $size $(date +%T)"
    "$bin/tunekit" tune "$spec" --strategy brute_force --budget 100% --store "$store" \
      --json "$out/${workload}_${size}_tune.json" || status=1
    "$bin/tunekit" bench "$spec" --store "$store" --json "$out/${workload}_${size}_bench.json" || status=1
  done
done
# conv2d: a larger space, tuned with auto by its own script (the peers in OUT/conv2d/).
if [ -n "${CONV:-1}" ]; then
  SPECS="conv2d_seed conv2d conv2d_k5 conv2d_k7 conv2d_16k" BIN="$bin" STORE="$store" \
    bash bench/workloads/gpu_conv2d.sh "$out/conv2d" || status=1
fi
echo "=== peers $(date +%T)"
python3 bench/workloads/torch_peer.py > "$out/torch_peer.json" || status=1
echo "=== done $(date +%T), status $status"
exit $status
