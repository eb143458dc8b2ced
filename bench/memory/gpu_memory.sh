#!/usr/bin/env bash
# The memory layer's acceptance on a GPU machine (issue 6): the GPU tests of
# the pools and the pipeline, the same under compute-sanitizer memcheck and
# racecheck, the memory bench and PyTorch's caching allocator in the same run.
# Usage: bench/memory/gpu_memory.sh OUT_DIR   (BIN: the binaries, default .devrun/bin)
set -uo pipefail
out=$1
bin=${BIN:-.devrun/bin}
mkdir -p "$out"
status=0
tests=(cuda_resource_gpu_test cuda_pinned_pool_gpu_test cuda_pipeline_gpu_test)
echo "=== tests $(date +%T)"
for t in "${tests[@]}"; do
  "$bin/$t" 2>&1 | tail -4 || status=1
done
for tool in memcheck racecheck; do
  echo "=== compute-sanitizer --tool $tool $(date +%T)"
  for t in "${tests[@]}"; do
    # The absurd-size tests expect a failed allocation: not an error to report.
    compute-sanitizer --tool "$tool" --report-api-errors no --error-exitcode 99 "$bin/$t" > "$out/sanitizer_${tool}_$t.log" 2>&1
    code=$?
    echo "$t: exit $code; $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|PASSED|FAILED' "$out/sanitizer_${tool}_$t.log" | tr '\n' ' ')"
    [ $code -eq 0 ] || status=1
  done
done
echo "=== memory bench $(date +%T)"
"$bin/tunekit_memory_bench" --out "$out" --pipeline-gib "${PIPELINE_GIB:-8}" || status=1
echo "=== PyTorch caching allocator $(date +%T)"
python3 bench/memory/torch_alloc_peer.py > "$out/torch_alloc_peer.json" || status=1
echo "=== done $(date +%T), status $status"
exit $status
