#!/usr/bin/env bash
# bench/runtime/seccomp-profile.sh — regenerate seccomp-default.json: berth-runtime's
# default seccomp profile for Docker's default capability set, produced by the
# library itself (seccomp-profile.rs linked against target/release/deps; run
# `cargo build --release -p berth-runtime` first). Usage: bench/runtime/seccomp-profile.sh [OUT]
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${1:-$HERE/seccomp-default.json}
D=$REPO/target/release/deps
lib=$(ls -t "$D"/libberth_runtime-*.rlib | head -1)
json=$(ls -t "$D"/libserde_json-*.rlib | head -1)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# the release profile aborts on panic; the rlibs must be linked the same way
rustc --edition 2021 -O -C panic=abort "$HERE/seccomp-profile.rs" -o "$tmp/gen" -L "$D" \
    --extern berth_runtime="$lib" --extern serde_json="$json"
# Docker's default bounding set (moby oci/caps/defaults.go)
"$tmp/gen" CAP_CHOWN CAP_DAC_OVERRIDE CAP_FSETID CAP_FOWNER CAP_MKNOD CAP_NET_RAW \
    CAP_SETGID CAP_SETUID CAP_SETFCAP CAP_SETPCAP CAP_NET_BIND_SERVICE CAP_SYS_CHROOT \
    CAP_KILL CAP_AUDIT_WRITE >"$OUT"
jq -e '.syscalls | length > 0' "$OUT" >/dev/null
echo "wrote $OUT ($(jq '[.syscalls[].names | length] | add' "$OUT") syscall names in $(jq '.syscalls | length' "$OUT") rules)" >&2
