#!/usr/bin/env bash
# bench/runtime/seccomp-profile.sh — regenerate seccomp-default.json: berth-runtime's
# default seccomp profile for Docker's default capability set, printed by
# `berth-runtime default-seccomp` (build it first). Usage: bench/runtime/seccomp-profile.sh [OUT]
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${1:-$HERE/seccomp-default.json}
BERTH=${BERTH:-$REPO/target/release/berth-runtime}
"$BERTH" default-seccomp >"$OUT"
jq -e '.syscalls | length > 0' "$OUT" >/dev/null
echo "wrote $OUT ($(jq '[.syscalls[].names | length] | add' "$OUT") syscall names in $(jq '.syscalls | length' "$OUT") rules)" >&2
