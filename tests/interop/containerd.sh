#!/usr/bin/env bash
# containerd.sh — a private containerd (own root/state/sockets under /var/tmp) runs busybox through
# the io.containerd.runc.v2 shim with berth-runtime as its runc binary (ctr --runc-binary).
#
#   BERTH_RUNTIME=/path/berth-runtime tests/interop/containerd.sh
#
# Prints PASS:/FAIL: lines and "N passed, N failed"; exits non-zero on any failure. Every runtime call
# the shim makes is recorded by a wrapper (see lib.sh); on failure the evidence is kept in $ARTIFACTS.
set -uo pipefail
ENGINE=containerd
source "$(dirname "$0")/lib.sh"
preflight
needs containerd ctr containerd-shim-runc-v2 skopeo script

W=$(mktemp -d /var/tmp/berth-interop-ctd.XXXXXX)
ARTIFACTS=${ARTIFACTS:-/var/tmp/berth-interop-artifacts/containerd-$(date +%Y%m%d-%H%M%S)}
NS=berthinterop$$            # containerd namespace; also the parent cgroup of the containers
SOCK=$W/containerd.sock
IMG=docker.io/library/busybox:latest
KEEP_EVIDENCE=0
CTR=(ctr -a "$SOCK" -n "$NS")
RUNC=(--runc-binary "$W/berth-wrap" --runc-root "$W/runc")

cleanup() {
  set +e
  if [ -S "$SOCK" ]; then
    for t in $("${CTR[@]}" task ls -q 2>/dev/null); do
      "${CTR[@]}" task kill -a -s SIGKILL "$t" >/dev/null 2>&1
    done
    sleep 0.3
    for t in $("${CTR[@]}" task ls -q 2>/dev/null); do "${CTR[@]}" task delete -f "$t" >/dev/null 2>&1; done
    for c in $("${CTR[@]}" containers ls -q 2>/dev/null); do "${CTR[@]}" containers rm "$c" >/dev/null 2>&1; done
    "${CTR[@]}" images rm "$IMG" >/dev/null 2>&1
  fi
  kill_pidfile "$W/containerd.pid"
  kill_procs_matching "$SOCK"          # shims of this containerd, if any survived
  # containers that escaped the engine (should not happen): kill through the runtime's own state
  for c in $("$BERTH_RUNTIME" --root "$W/runc/$NS" list -q 2>/dev/null); do
    "$BERTH_RUNTIME" --root "$W/runc/$NS" delete -f "$c" >/dev/null 2>&1
  done
  umount_under "$W"
  for d in /sys/fs/cgroup/*/"$NS" /sys/fs/cgroup/unified/"$NS"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  if [ "$KEEP_EVIDENCE" = 1 ]; then
    mkdir -p "$ARTIFACTS"
    cp -r "$W/log" "$ARTIFACTS/runtime-calls" 2>/dev/null
    cp "$W/containerd.log" "$W/config.toml" "$ARTIFACTS/" 2>/dev/null
    echo "evidence kept in $ARTIFACTS" >&2
  fi
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

make_wrapper "$W/berth-wrap" "$W/log"
cat >"$W/config.toml" <<EOF
version = 2
root = "$W/root"
state = "$W/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = "$W/debug.sock"
EOF

say "starting containerd ($W)"
setsid containerd --config "$W/config.toml" >"$W/containerd.log" 2>&1 </dev/null &
echo $! >"$W/containerd.pid"
if ! wait_for 20 "${CTR[@]}" version; then
  fail "containerd came up"; tail -20 "$W/containerd.log"; summary; exit 1
fi
pass "containerd $(containerd --version | awk '{print $3}') came up"

skopeo copy -q "oci:$FIXTURES/busybox" "oci-archive:$W/busybox.tar:$IMG" &&
  "${CTR[@]}" images import "$W/busybox.tar" >/dev/null
check "import busybox (oci-archive from the OCI layout)" sh -c "${CTR[*]} images check -q name==$IMG | grep -q busybox"
rm -f "$W/busybox.tar"

evidence() { # print the last runtime calls after a failed check
  KEEP_EVIDENCE=1; show_calls "$W/log" 6 >&2
}

# 1. run --rm echo
out=$("${CTR[@]}" run --rm "${RUNC[@]}" "$IMG" c-echo echo hi 2>&1); rc=$?
if [ "$rc" = 0 ] && [ "$out" = hi ]; then pass "ctr run --rm echo hi"; else fail "ctr run --rm echo hi (rc=$rc out=$out)"; evidence; fi

# 2. exit code propagation
"${CTR[@]}" run --rm "${RUNC[@]}" "$IMG" c-exit sh -c 'exit 7' >/dev/null 2>&1; rc=$?
if [ "$rc" = 7 ]; then pass "exit code 7 propagates"; else fail "exit code 7 propagates (got $rc)"; evidence; fi

# 3. stdin is forwarded (ctr 1.6 `run` never closes the task's stdin on EOF, with runc too: read one line)
out=$(echo piped-in | timeout -s KILL 30 "${CTR[@]}" run --rm "${RUNC[@]}" "$IMG" c-stdin sh -c 'read l; echo "got $l"' 2>&1); rc=$?
if [ "$rc" = 0 ] && [ "$out" = "got piped-in" ]; then pass "stdin reaches the container"; else fail "stdin reaches the container (rc=$rc out=$out)"; evidence; fi

# 4. tty (script provides the pty ctr wants)
out=$(script -qec "${CTR[*]} run --rm -t ${RUNC[*]} $IMG c-tty sh -c 'tty; exit 4'" /dev/null </dev/null 2>&1); rc=$?
if [ "$rc" = 4 ] && grep -q '/dev/pts/' <<<"$out"; then pass "ctr run -t gets a pty"; else fail "ctr run -t gets a pty (rc=$rc out=$out)"; evidence; fi

# 5. detached container with a memory limit; exec, ps, pause/resume, kill
"${CTR[@]}" run -d --null-io "${RUNC[@]}" --memory-limit 67108864 "$IMG" c-long sleep 600 >/dev/null 2>&1
st=$("${CTR[@]}" task ls 2>/dev/null | awk '$1=="c-long"{print $2, $3}')
pid=${st% *}
if [ "${st#* }" = RUNNING ]; then pass "ctr run -d: task RUNNING (pid $pid)"; else fail "ctr run -d: task RUNNING (got '$st')"; evidence; fi

if [ -n "$pid" ] && f=$(cgroup_file "$pid" memory memory.limit_in_bytes memory.max); then
  v=$(cat "$f")
  if [ "$v" = 67108864 ]; then pass "--memory-limit 64 MiB in $f"; else fail "--memory-limit: $f = $v"; evidence; fi
else fail "--memory-limit: no memory cgroup for pid $pid"; evidence; fi

out=$("${CTR[@]}" task exec --exec-id e1 c-long sh -c 'echo exec-ok; cat /proc/1/cmdline | tr "\0" " "' 2>&1); rc=$?
if [ "$rc" = 0 ] && grep -q '^exec-ok' <<<"$out" && grep -q 'sleep 600' <<<"$out"; then
  pass "ctr task exec sees the container's pid namespace"
else fail "ctr task exec (rc=$rc out=$out)"; evidence; fi

"${CTR[@]}" task exec --exec-id e2 c-long sh -c 'exit 3' >/dev/null 2>&1; rc=$?
if [ "$rc" = 3 ]; then pass "ctr task exec exit code 3"; else fail "ctr task exec exit code 3 (got $rc)"; evidence; fi

out=$(echo exec-stdin | "${CTR[@]}" task exec --exec-id e3 c-long cat 2>&1); rc=$?
if [ "$rc" = 0 ] && [ "$out" = exec-stdin ]; then pass "ctr task exec stdin"; else fail "ctr task exec stdin (rc=$rc out=$out)"; evidence; fi

out=$(script -qec "${CTR[*]} task exec -t --exec-id e4 c-long tty" /dev/null </dev/null 2>&1)
if grep -q '/dev/pts/' <<<"$out"; then pass "ctr task exec -t gets a pty"; else fail "ctr task exec -t (out=$out)"; evidence; fi

out=$("${CTR[@]}" task ps c-long 2>&1)
if grep -qw "$pid" <<<"$out"; then pass "ctr task ps lists the init pid"; else fail "ctr task ps (out=$out)"; evidence; fi

"${CTR[@]}" task pause c-long 2>&1
st=$("${CTR[@]}" task ls 2>/dev/null | awk '$1=="c-long"{print $3}')
fz=$(cgroup_file "$pid" freezer freezer.state cgroup.freeze) && fz=$(cat "$fz")
if [ "$st" = PAUSED ] && { [ "$fz" = FROZEN ] || [ "$fz" = 1 ]; }; then pass "ctr task pause (freezer $fz)"; else fail "ctr task pause (status $st, freezer $fz)"; evidence; fi
"${CTR[@]}" task resume c-long 2>&1
st=$("${CTR[@]}" task ls 2>/dev/null | awk '$1=="c-long"{print $3}')
if [ "$st" = RUNNING ]; then pass "ctr task resume"; else fail "ctr task resume (status $st)"; evidence; fi

"${CTR[@]}" task kill -s SIGKILL c-long 2>&1
if wait_for 10 sh -c "${CTR[*]} task ls | awk '\$1==\"c-long\"{print \$3}' | grep -qx STOPPED"; then
  pass "ctr task kill -s SIGKILL stops the task"
else fail "ctr task kill -s SIGKILL"; evidence; fi
"${CTR[@]}" task delete c-long >/dev/null 2>&1 && "${CTR[@]}" containers rm c-long >/dev/null 2>&1
left=$("$BERTH_RUNTIME" --root "$W/runc/$NS" list -q 2>/dev/null)
if [ -z "$left" ] && ! kill -0 "$pid" 2>/dev/null; then pass "task delete removes the runtime's container"; else fail "task delete (runtime still lists: $left)"; evidence; fi

# 6. SIGTERM reaches a foreground container that traps it; its exit code comes back
"${CTR[@]}" run --rm "${RUNC[@]}" "$IMG" c-term sh -c 'trap "echo got-term; exit 0" TERM; echo ready; while :; do sleep 0.1; done' >"$W/term.out" 2>&1 &
fg=$!
wait_for 10 grep -q ready "$W/term.out"
"${CTR[@]}" task kill c-term 2>&1
wait "$fg"; rc=$?
if [ "$rc" = 0 ] && grep -q got-term "$W/term.out"; then pass "ctr task kill (SIGTERM) is delivered and trapped"; else fail "ctr task kill SIGTERM (rc=$rc out=$(cat "$W/term.out"))"; evidence; fi

# 7. a failed create reports the runtime's error (bad cwd in the image config is not portable: use a missing binary)
out=$("${CTR[@]}" run --rm "${RUNC[@]}" "$IMG" c-bad /no/such/binary 2>&1); rc=$?
if [ "$rc" != 0 ] && grep -qi 'no such file\|not found\|exec' <<<"$out"; then pass "a missing binary fails with the runtime's error"; else fail "missing binary (rc=$rc out=$out)"; evidence; fi
"${CTR[@]}" containers rm c-bad >/dev/null 2>&1

if [ "$FAILS" -gt 0 ]; then failed_runtime_calls "$W/log"; fi
summary
[ "$FAILS" = 0 ]
