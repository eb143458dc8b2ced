#!/usr/bin/env bash
# `make run`: the device report and the occupancy table of the GPU found here,
# or of sm_90 from the architecture table when there is none.
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
