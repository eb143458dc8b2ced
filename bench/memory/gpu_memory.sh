#!/usr/bin/env bash
# The memory layer's acceptance on a GPU machine (issue 6): the memory bench
# and PyTorch's caching allocator in the same run, the GPU tests of the pools
# and the pipeline, and the same under compute-sanitizer memcheck and
# racecheck. Every step has a time limit and its own log.
# Usage: bench/memory/gpu_memory.sh OUT_DIR [STEP...]   (BIN: the binaries, default .devrun/bin)
#   steps: bench peer tests memcheck racecheck (default: all)
set -uo pipefail
out=$1
shift
steps=${*:-bench peer tests memcheck racecheck}
bin=${BIN:-.devrun/bin}
mkdir -p "$out"
status=0
tests=(${TESTS:-cuda_pipeline_gpu_test cuda_pinned_pool_gpu_test cuda_resource_gpu_test})
limited() {  # limited SECONDS LOG command...
  local seconds=$1 log=$2
  shift 2
  timeout "$seconds" "$@" > "$log" 2>&1
  local code=$?
  echo "$(basename "$log" .log): exit $code; $(grep -E '^\[  (PASSED|FAILED) |ERROR SUMMARY|RACECHECK SUMMARY|Timeout' "$log" | tr '\n' ' ')"
  [ $code -eq 0 ] || status=1
}
for step in $steps; do
  echo "=== $step $(date +%T)"
  case $step in
    bench) limited 240 "$out/memory_bench.log" "$bin/tunekit_memory_bench" --out "$out" --pipeline-gib "${PIPELINE_GIB:-8}"
           grep -E "^(alloc|mixed|pinned|pipeline)" "$out/memory_bench.log" ;;
    peer) timeout 90 python3 bench/memory/torch_alloc_peer.py > "$out/torch_alloc_peer.json" 2> "$out/torch_alloc_peer.log" || status=1 ;;
    tests) for t in "${tests[@]}"; do limited "${TEST_SECONDS:-90}" "$out/$t.log" "$bin/$t"; done ;;
    memcheck|racecheck)
      # The absurd-size tests expect a failed allocation: not an error to report.
      for t in "${tests[@]}"; do
        limited "${SANITIZER_SECONDS:-120}" "$out/sanitizer_${step}_$t.log" \
          compute-sanitizer --tool "$step" --report-api-errors no --error-exitcode 99 "$bin/$t" ${SANITIZER_FILTER:-}
      done ;;
    *) echo "unknown step $step"; exit 2 ;;
  esac
done
echo "=== done $(date +%T), status $status"
exit $status
