#!/usr/bin/env bash
# Runs the test executables of a build made elsewhere (e.g. carried to the GPU
# machine), gpu-labelled ones included. Test binaries are run directly rather
# than through ctest, whose files hold the absolute paths of the build machine.
#   scripts/gpu-test.sh [BUILD_DIR] [LOG_DIR]
set -uo pipefail
build_dir=${1:-build}
log_dir=${2:-$build_dir/gpu-test-logs}
mkdir -p "$log_dir"
failed=0
for test in "$build_dir"/tests/*_test; do
  name=$(basename "$test")
  if "$test" --gtest_output="json:$log_dir/$name.json" >"$log_dir/$name.log" 2>&1; then
    ok=$(grep -c '^\[       OK \]' "$log_dir/$name.log")
    skipped=$(grep -o '^\[  SKIPPED \] [A-Za-z0-9_/]*\.[A-Za-z0-9_/]*' "$log_dir/$name.log" | sort -u | wc -l)
    echo "PASS $name ($ok ok, $skipped skipped)"
  else
    echo "FAIL $name"; grep -E '^\[  FAILED  \]|Failure' "$log_dir/$name.log" | head -20
    failed=1
  fi
done
exit $failed
