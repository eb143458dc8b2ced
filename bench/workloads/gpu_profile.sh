#!/usr/bin/env bash
# The whole suite on a GPU machine, in two phases that fit the device's call
# limit (the store carries over between them):
#   tune     every spec of kernels/suite.toml tuned with auto (BUDGET_SEED /
#            BUDGET_LARGE evaluations, every variant verified against the
#            float64 reference), the device's ceilings measured into the store;
#   profile  the GPU workload tests on fresh inputs, tunekit workload --dump of
#            each workload checked with numpy, tunekit profile --suite all
#            --peers (profile.json, profile.md), then the regression check:
#            conv2d forced to its baseline configuration against profile.json
#            with --fail-on-regression must exit 1.
# Usage: PHASE=tune|profile|all bench/workloads/gpu_profile.sh OUT_DIR
#        (BIN: the binaries, default .devrun/bin; STORE: the results store)
set -uo pipefail
out=$1
bin=${BIN:-.devrun/bin}
store=${STORE:-$out/suite.db}
phase=${PHASE:-all}
mkdir -p "$out"
status=0
specs() {  # the suite's spec files of one size, in order
  python3 - "$1" <<'PY'
import sys, tomllib
suite = tomllib.load(open("kernels/suite.toml", "rb"))
for w in suite["workload"]:
    for spec in w[sys.argv[1]]:
        print("kernels/" + spec)
PY
}
if [ "$phase" = tune ] || [ "$phase" = all ]; then
  timeout 120 "$bin/tunekit" ceilings --store "$store" || status=1
  for size in seed large; do
    budget=${BUDGET_SEED:-40}
    [ "$size" = large ] && budget=${BUDGET_LARGE:-40}
    for spec in $(specs $size); do
      name=$(basename "$spec" .toml)
      echo "=== tune $name $(date +%T)"
      timeout 240 "$bin/tunekit" tune "$spec" --strategy auto --budget "$budget" --store "$store" \
        --json "$out/tune_$name.json" 2>&1 | tail -6 || status=1
    done
  done
fi
if [ "$phase" = profile ] || [ "$phase" = all ]; then
  echo "=== workload tests $(date +%T)"
  timeout 300 "$bin/cuda_workloads_gpu_test" > "$out/workloads_gpu_test.log" 2>&1 || status=1
  tail -3 "$out/workloads_gpu_test.log"
  echo "=== dumps $(date +%T)"
  for workload in $(python3 -c 'import tomllib; print(" ".join(w["name"] for w in tomllib.load(open("kernels/suite.toml","rb"))["workload"]))'); do
    timeout 120 "$bin/tunekit" workload "$workload" --seed 7 --dump "$out/dump/$workload" --store "$store" || status=1
  done
  python3 bench/workloads/check_dumps.py "$out/dump" > "$out/dump_check.json" || status=1
  echo "=== profile $(date +%T)"
  timeout 420 "$bin/tunekit" profile --suite all --peers --store "$store" --min-seconds "${MIN_SECONDS:-0.3}" \
    --json "$out/profile.json" --markdown "$out/profile.md" > "$out/profile.log" 2>&1 || status=1
  tail -40 "$out/profile.log"
  echo "=== regression check $(date +%T)"
  timeout 120 "$bin/tunekit" profile --suite large --kernels conv2d --use-baseline-config --store "$store" \
    --baseline "$out/profile.json" --fail-on-regression --json "$out/regressed.json" > "$out/regressed.log" 2>&1
  echo "exit code $? (1 expected: the baseline configuration is slower)" | tee -a "$out/regressed.log"
fi
echo "=== done $(date +%T), status $status"
exit $status
