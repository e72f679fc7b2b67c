#!/usr/bin/env bash
# run-all.sh — run the engine interop tests (docker, podman, containerd) against berth-runtime.
#
#   BERTH_RUNTIME=/path/berth-runtime tests/interop/run-all.sh        (default: target/release/berth-runtime)
#   INTEROP_ONLY="podman containerd" tests/interop/run-all.sh         (a subset)
#
# Needs root and the packages in packages.txt; each script starts its own private daemon, touches
# no address but loopback and cleans up after itself. Prints each script's PASS/FAIL lines, then
# one "N passed, N failed" line over all of them; exits non-zero if any check failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export BERTH_RUNTIME=${BERTH_RUNTIME:-$(cd "$here/../.." && pwd)/target/release/berth-runtime}
tests=${INTEROP_ONLY:-docker podman containerd}
tp=0 tf=0 bad=()
for t in $tests; do
  echo "=== interop: $t (runtime $BERTH_RUNTIME)"
  t0=$(date +%s)
  out=$(mktemp)
  # per-script timeout: a hung engine must not eat the CI budget
  timeout -k 10 300 bash "$here/$t.sh" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  p=$(grep -c '^PASS: ' "$out"); f=$(grep -c '^FAIL: ' "$out")
  rm -f "$out"
  [ "$rc" != 0 ] && [ "$f" = 0 ] && f=1      # died or timed out without a FAIL line
  tp=$((tp + p)); tf=$((tf + f))
  [ "$rc" = 0 ] || bad+=("$t(rc=$rc)")
  echo "=== interop: $t: $p passed, $f failed in $(( $(date +%s) - t0 ))s"
done
[ ${#bad[@]} = 0 ] || echo "interop: failing: ${bad[*]}"
echo "interop: $tp passed, $tf failed"
[ ${#bad[@]} = 0 ]
