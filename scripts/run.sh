#!/usr/bin/env bash
# `make run`: the device report and the occupancy table of the GPU found here,
# or of sm_90 from the architecture table when there is none; the tuning core
# replayed over recorded search spaces; the host examples tuned end to end;
# a workload's data dumped for numpy; on a GPU the CUDA examples tuned, the
# example application, tunekit bench, the device ceilings, the workload suite
# profiled (tunekit profile) and the measure bench.
set -euo pipefail
build_dir=${1:-build}
tunekit="$build_dir/apps/tunekit/tunekit"

echo "== tunekit devices"
"$tunekit" devices
if [ "$("$tunekit" devices --json)" = "[]" ]; then
  echo
  echo "== architecture table entry used instead: tunekit devices --arch sm_90"
  "$tunekit" devices --arch sm_90
  target=(--arch sm_90)
else
  target=(--device 0)
fi
echo
echo "== tunekit occupancy ${target[*]} --regs 32 (a kernel using 32 registers per thread)"
"$tunekit" occupancy "${target[@]}" --regs 32
echo
echo "== tunekit occupancy ${target[*]} --regs 64 --smem 49152 (64 registers, 48 KiB dynamic shared memory)"
"$tunekit" occupancy "${target[@]}" --regs 64 --smem 49152

# The tuning core on the host: strategies replayed over recorded search spaces.
recorded_dir="$(dirname "$0")/../../shared/data/searchspaces"
if ls "$recorded_dir"/*.json.gz >/dev/null 2>&1; then
  caches=("$recorded_dir"/*.json.gz)
else
  caches=("$(dirname "$0")/../tests/store/kernel_tuner_cache.json")
fi
for cache in "${caches[@]}"; do
  echo
  echo "== tunekit replay --cache $(basename "$cache") --strategy auto --budget 2% --budget 5% --seeds 5 --score"
  "$tunekit" replay --cache "$cache" --strategy auto --budget 2% --budget 5% --seeds 5 --score
  echo "== the same with random sampling, the baseline"
  "$tunekit" replay --cache "$cache" --strategy random --budget 2% --budget 5% --seeds 5 --score
done
store="$build_dir/run-store.db"
rm -f "$store" "$store-wal" "$store-shm"
echo
echo "== tunekit replay --cache $(basename "${caches[0]}") --budget 2% --store $store  (every result recorded as it arrives)"
"$tunekit" replay --cache "${caches[0]}" --budget 2% --store "$store" >/dev/null
"$tunekit" store list --store "$store"

# The runner on the host backend: a matrix product tuned end to end, then the
# faults spec, every failure class a typed result.
examples_dir="$(dirname "$0")/../examples/host"
echo
echo "== tunekit tune examples/host/matmul.toml --budget 20 --store $store"
"$tunekit" tune "$examples_dir/matmul.toml" --budget 20 --store "$store"
echo
echo "== tunekit tune examples/host/faults.toml --strategy brute_force --budget 100% --store $store"
"$tunekit" tune "$examples_dir/faults.toml" --strategy brute_force --budget 100% --store "$store"

# The workload suite's data: a workload's inputs and outputs as .npy files (the
# GPU's outputs where there is one, else the float64 reference's).
echo
echo "== tunekit workload conv2d --dump $build_dir/workload-conv2d  (inputs and outputs for numpy)"
"$tunekit" workload conv2d --dump "$build_dir/workload-conv2d" --store "$store"

# On a GPU: the CUDA examples tuned (NVRTC variants, a worker process per GPU),
# the fault spec, the example application picking the tuned configuration at
# run time and tunekit bench on it; then the device's ceilings (measured once,
# then from the store) and the measurement engine's own checks.
if [ "${target[0]}" = "--device" ]; then
  cuda_examples="$(dirname "$0")/../examples/cuda"
  echo
  echo "== tunekit tune examples/cuda/conv2d.toml --strategy auto --budget 10% --store $store"
  "$tunekit" tune "$cuda_examples/conv2d.toml" --strategy auto --budget 10% --store "$store"
  echo
  echo "== tunekit tune examples/cuda/faults.toml --strategy brute_force --budget 100% --store $store"
  "$tunekit" tune "$cuda_examples/faults.toml" --strategy brute_force --budget 100% --store "$store"
  if [ -x "$build_dir/tunekit_conv_app" ]; then
    echo
    echo "== tunekit_conv_app --store $store  (the tuned configuration, chosen at run time)"
    "$build_dir/tunekit_conv_app" --store "$store" --source "$cuda_examples/conv2d.cu"
  fi
  echo
  echo "== tunekit bench examples/cuda/conv2d.toml --store $store  (the stored best, measured longer)"
  "$tunekit" bench "$cuda_examples/conv2d.toml" --store "$store"
  echo
  echo "== tunekit ceilings --store $store"
  "$tunekit" ceilings --store "$store"
  memory_bench="$build_dir/bench/tunekit_memory_bench"
  if [ -x "$memory_bench" ]; then
    echo
    echo "== tunekit_memory_bench --pipeline-gib 2 --out $build_dir/memory  (pools vs cudaMalloc/cudaMallocAsync, the streaming pipeline)"
    "$memory_bench" --pipeline-gib 2 --out "$build_dir/memory"
  fi
  echo
  peers=()
  if python3 -c "import torch" 2>/dev/null; then peers=(--peers); fi
  echo "== tunekit profile --suite all ${peers[*]} --store $store  (each workload tuned when nothing is stored, measured, judged)"
  "$tunekit" profile --suite all "${peers[@]}" --store "$store" --json "$build_dir/profile.json" \
    --markdown "$build_dir/profile.md"
  measure_bench="$build_dir/bench/tunekit_measure_bench"
  if [ -x "$measure_bench" ]; then
    echo
    echo "== tunekit_measure_bench --repeats 3 --out $build_dir/measure  (every output verified; checks at the end)"
    "$measure_bench" --repeats 3 --out "$build_dir/measure" --store "$store"
  fi
fi
