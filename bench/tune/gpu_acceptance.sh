#!/usr/bin/env bash
# The tuning runner's acceptance on a GPU machine (issue 5), in phases:
#   tests    the CUDA backend's GPU tests and NVRTC tests
#   faults   the CUDA fault spec, every configuration
#   brute    the convolution brute-forced (the optimum), exported as a Kernel Tuner cache file
#   auto     the convolution tuned with auto at 239 evaluations (9.97% of the space), three seeds, fresh caches
#   multi    the same on every GPU of the host at once (--device all), seed 1
#   kill     kill -9 mid-session, then a rerun: nothing measured twice
#   app      the example application (exact, nearest, fallback), tunekit bench, export-header, the cuDNN peer
# Usage: bench/tune/gpu_acceptance.sh OUT_DIR PHASE...   (BIN: the binaries, default build/apps/tunekit etc.)
set -uo pipefail
out=$1
shift
bin=${BIN:-.devrun/bin}
work=${WORK:-.devrun/work}
mkdir -p "$out" "$work"
export TUNEKIT_SOURCE_DIR=$PWD
tunekit() { "$bin/tunekit" "$@"; }

for phase in "$@"; do
  echo "=== $phase $(date +%T)"
  case $phase in
    tests)
      "$bin/cuda_nvrtc_test" 2>&1 | tail -3
      "$bin/cuda_backend_gpu_test" 2>&1 | tee "$out/backend_gpu_tests.log" | tail -12
      ;;
    faults)
      rm -f "$work"/faults.db*
      tunekit tune examples/cuda/faults.toml --strategy brute_force --budget 100% --store "$work/faults.db" \
        --json "$out/faults.json"
      ;;
    brute)
      # Resumes where an earlier, cut-off run stopped.
      timeout "${BRUTE_SECONDS:-500}" "$bin/tunekit" tune examples/cuda/conv2d.toml --strategy brute_force --budget 100% \
        --store "$work/brute.db" --json "$out/conv_brute.json"
      echo "brute exit $?"
      tunekit store export --kernel conv2d --store "$work/brute.db" -o "$out/conv2d_h_space.json.gz" --force
      ;;
    auto)
      for seed in 1 2 3; do
        rm -rf "$work/auto$seed.db"*
        tunekit tune examples/cuda/conv2d.toml --strategy auto --budget "${AUTO_BUDGET:-239}" --seed $seed \
          --store "$work/auto$seed.db" --json "$out/conv_auto_seed$seed.json"
      done
      ;;
    multi)
      rm -rf "$work/multi.db"*
      tunekit tune examples/cuda/conv2d.toml --strategy auto --budget "${AUTO_BUDGET:-239}" --seed 1 --device all \
        --store "$work/multi.db" --json "$out/conv_auto_all_gpus.json"
      ;;
    kill)
      rm -rf "$work/kill.db"*
      "$bin/tunekit" tune examples/cuda/conv2d.toml --strategy auto --budget 10% --seed 9 --store "$work/kill.db" \
        --json "$out/kill_first.json" &
      pid=$!
      sleep "${KILL_AFTER:-25}"
      kill -9 $pid
      wait $pid
      echo "killed: exit $?"
      python3 - "$work/kill.db" > "$out/kill_store_before.txt" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(db.execute("select count(*) from results").fetchone()[0])
PY
      tunekit tune examples/cuda/conv2d.toml --strategy auto --budget 10% --seed 9 --store "$work/kill.db" \
        --json "$out/kill_rerun.json"
      # The store holds one row per configuration (a unique key): a result
      # measured again would leave rows_after short of before + measured.
      python3 - "$work/kill.db" "$out/kill_store_before.txt" "$out/kill_first.json" "$out/kill_rerun.json" \
        > "$out/kill_check.json" <<'PY'
import json, os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("select count(*) from results").fetchone()[0]
before = int(open(sys.argv[2]).read())
first_finished = os.path.exists(sys.argv[3]) and os.path.getsize(sys.argv[3]) > 0
rerun = json.load(open(sys.argv[4]))
print(json.dumps({"first_run_finished": first_finished, "stored_before_rerun": before,
                  "measured_by_rerun": rerun["measured"], "evaluations_by_rerun": rerun["evaluations"],
                  "rows_after": rows, "measured_twice": before + rerun["measured"] - rows}))
PY
      cat "$out/kill_check.json"
      ;;
    app)
      "$bin/tunekit_conv_app" --store "$work/${APP_STORE:-auto1}.db" --source examples/cuda/conv2d.cu | tee "$out/app_exact.json"
      "$bin/tunekit_conv_app" --store "$work/${APP_STORE:-auto1}.db" --source examples/cuda/conv2d.cu --width 3000 --height 3000 \
        | tee "$out/app_nearest.json"
      "$bin/tunekit_conv_app" --source examples/cuda/conv2d.cu | tee "$out/app_fallback.json"
      tunekit bench examples/cuda/conv2d.toml --store "$work/${APP_STORE:-auto1}.db" --json "$out/bench_best.json"
      tunekit export-header --store "$work/${APP_STORE:-auto1}.db" --kernel conv2d --output "$out/conv2d_tuned.hpp" --force
      python3 bench/tune/conv_peer.py | tee "$out/conv_peer.json"
      ;;
    *) echo "unknown phase $phase"; exit 2 ;;
  esac
done
echo "=== done $(date +%T)"
