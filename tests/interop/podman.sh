#!/usr/bin/env bash
# podman.sh — podman (4.x, conmon) with --runtime pointing at berth-runtime, storage under a private
# --root/--runroot/--tmpdir, cgroupfs manager, --network none, busybox pulled from the OCI layout.
#
#   BERTH_RUNTIME=/path/berth-runtime tests/interop/podman.sh
#
# Prints PASS:/FAIL: lines and "N passed, N failed"; exits non-zero on any failure. Every runtime call
# (podman/conmon -> runtime) is recorded by a wrapper (see lib.sh); on failure the evidence is kept
# in $ARTIFACTS.
#
# Note: podman keeps the runtime's state in the runtime's default --root (/run/berth-runtime): podman
# 4.3 drops --runtime-flag on `delete`, so a private root would leak state. Containers are removed
# at the end and the test checks the runtime no longer lists them.
set -uo pipefail
ENGINE=podman
source "$(dirname "$0")/lib.sh"
preflight
needs podman conmon skopeo script

W=$(mktemp -d /var/tmp/berth-interop-pod.XXXXXX)
ARTIFACTS=${ARTIFACTS:-/var/tmp/berth-interop-artifacts/podman-$(date +%Y%m%d-%H%M%S)}
CGPARENT=/berth-interop-podman-$$
KEEP_EVIDENCE=0
IMG=localhost/berth-interop/busybox:latest
PM=(podman --root "$W/root" --runroot "$W/runroot" --tmpdir "$W/tmp" --volumepath "$W/volumes"
    --runtime "$W/berth-wrap" --cgroup-manager cgroupfs --events-backend file --storage-driver overlay)
RUN=(--network none --cgroup-parent "$CGPARENT")

# Without CAP_SYS_RESOURCE (some sandboxes) no runtime (runc, crun, berth) may raise RLIMIT_NOFILE /
# RLIMIT_NPROC to podman's default 1048576: ask for limits the caller already has.
capeff=$(awk '/^CapEff/ {print $2}' /proc/self/status)
if (( (16#$capeff >> 24) & 1 )); then
  ULIMITS=()
else
  hn=$(ulimit -Hn); hu=$(ulimit -Hu); [ "$hu" = unlimited ] || [ "$hu" -gt 32768 ] && hu=32768
  ULIMITS=(--ulimit "nofile=$hn:$hn" --ulimit "nproc=$hu:$hu")
  say "no CAP_SYS_RESOURCE here: running containers with ${ULIMITS[*]}"
fi
RUN+=("${ULIMITS[@]}")

cleanup() {
  set +e
  local ids
  ids=$("${PM[@]}" ps -aq --no-trunc 2>/dev/null)
  if [ -n "$ids" ]; then
    "${PM[@]}" rm -f -t 0 $ids >/dev/null 2>&1
    for c in $ids; do "$BERTH_RUNTIME" delete -f "$c" >/dev/null 2>&1; done
  fi
  "${PM[@]}" rmi -af >/dev/null 2>&1
  kill_procs_matching "$W/"            # conmon of a container podman could not remove
  umount_under "$W"
  for d in /sys/fs/cgroup/*"$CGPARENT" /sys/fs/cgroup/unified"$CGPARENT"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  if [ "$KEEP_EVIDENCE" = 1 ]; then
    mkdir -p "$ARTIFACTS"
    cp -r "$W/log" "$ARTIFACTS/runtime-calls" 2>/dev/null
    echo "evidence kept in $ARTIFACTS" >&2
  fi
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

evidence() { KEEP_EVIDENCE=1; show_calls "$W/log" 6 >&2; }
make_wrapper "$W/berth-wrap" "$W/log"
ALL_IDS=()
remember() { local id; id=$("${PM[@]}" inspect -f '{{.Id}}' "$1" 2>/dev/null) && ALL_IDS+=("$id"); }

say "podman $("${PM[@]}" version --format '{{.Client.Version}}' 2>/dev/null) with storage in $W"
id=$("${PM[@]}" pull -q "oci:$FIXTURES/busybox" 2>&1 | tail -1)
"${PM[@]}" tag "$id" "$IMG" >/dev/null 2>&1
check "podman pull oci:$FIXTURES/busybox" sh -c "${PM[*]} image exists $IMG"

# 1. run --rm echo
out=$("${PM[@]}" run --rm "${RUN[@]}" "$IMG" echo hi); rc=$?
if [ "$rc" = 0 ] && [ "$out" = hi ]; then pass "podman --runtime berth run --rm echo hi"; else fail "podman run echo hi (rc=$rc out=$out)"; evidence; fi

# 2. exit code
"${PM[@]}" run --rm "${RUN[@]}" "$IMG" sh -c 'exit 42'; rc=$?
if [ "$rc" = 42 ]; then pass "exit code 42 propagates"; else fail "exit code 42 propagates (got $rc)"; evidence; fi

# 3. -i
out=$(echo piped-in | "${PM[@]}" run --rm -i "${RUN[@]}" "$IMG" cat); rc=$?
if [ "$rc" = 0 ] && [ "$out" = piped-in ]; then pass "podman run -i: stdin reaches the container"; else fail "podman run -i (rc=$rc out=$out)"; evidence; fi

# 4. -it (script provides the tty)
out=$(script -qec "${PM[*]} run --rm -it ${RUN[*]} $IMG sh -c 'tty; exit 4'" /dev/null </dev/null 2>&1); rc=$?
if [ "$rc" = 4 ] && grep -q '/dev/pts/' <<<"$out"; then pass "podman run -it gets a pty"; else fail "podman run -it (rc=$rc out=$out)"; evidence; fi

# 5. --network none: only loopback
out=$("${PM[@]}" run --rm "${RUN[@]}" "$IMG" ip -o link); rc=$?
if [ "$rc" = 0 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -q ': lo:' <<<"$out"; then pass "podman run --network none: only lo"; else fail "--network none (rc=$rc out=$out)"; evidence; fi

# 6. detached with --memory / --pids-limit
"${PM[@]}" run -d --name p-long --memory 64m --pids-limit 40 "${RUN[@]}" "$IMG" sleep 600 >/dev/null; rc=$?
remember p-long
pid=$("${PM[@]}" inspect -f '{{.State.Pid}}' p-long 2>/dev/null)
st=$("${PM[@]}" inspect -f '{{.State.Status}}' p-long 2>/dev/null)
if [ "$rc" = 0 ] && [ "$st" = running ]; then pass "podman run -d: running (pid $pid)"; else fail "podman run -d (rc=$rc status=$st)"; evidence; fi
if [ -n "$pid" ] && [ "$pid" != 0 ] && f=$(cgroup_file "$pid" memory memory.limit_in_bytes memory.max); then
  v=$(cat "$f")
  if [ "$v" = 67108864 ]; then pass "--memory 64m: $f = $v"; else fail "--memory 64m: $f = $v"; evidence; fi
else fail "--memory 64m: no memory cgroup for pid $pid"; evidence; fi
if [ -n "$pid" ] && [ "$pid" != 0 ] && f=$(cgroup_file "$pid" pids pids.max pids.max); then
  v=$(cat "$f")
  if [ "$v" = 40 ]; then pass "--pids-limit 40: $f = $v"; else fail "--pids-limit 40: $f = $v"; evidence; fi
else fail "--pids-limit: no pids cgroup for pid $pid"; evidence; fi
case $(grep -sE ':memory:' "/proc/$pid/cgroup") in
  *"$CGPARENT"/*) pass "container cgroup under --cgroup-parent $CGPARENT" ;;
  *) fail "container cgroup under $CGPARENT ($(grep -sE ':memory:' "/proc/$pid/cgroup"))"; evidence ;;
esac

# 7. exec
out=$("${PM[@]}" exec p-long sh -c 'echo exec-ok; cat /proc/1/cmdline | tr "\0" " "' 2>&1); rc=$?
if [ "$rc" = 0 ] && grep -q '^exec-ok' <<<"$out" && grep -q 'sleep 600' <<<"$out"; then pass "podman exec runs in the container"; else fail "podman exec (rc=$rc out=$out)"; evidence; fi
"${PM[@]}" exec p-long sh -c 'exit 3'; rc=$?
if [ "$rc" = 3 ]; then pass "podman exec exit code 3"; else fail "podman exec exit code 3 (got $rc)"; evidence; fi
out=$(echo exec-stdin | "${PM[@]}" exec -i p-long cat 2>&1); rc=$?
if [ "$rc" = 0 ] && [ "$out" = exec-stdin ]; then pass "podman exec -i stdin"; else fail "podman exec -i (rc=$rc out=$out)"; evidence; fi
out=$(script -qec "${PM[*]} exec -it p-long tty" /dev/null </dev/null 2>&1)
if grep -q '/dev/pts/' <<<"$out"; then pass "podman exec -it gets a pty"; else fail "podman exec -it (out=$out)"; evidence; fi
out=$("${PM[@]}" top p-long 2>&1)
if grep -q 'sleep 600' <<<"$out"; then pass "podman top"; else fail "podman top (out=$out)"; evidence; fi

# 8. pause / unpause
"${PM[@]}" pause p-long >/dev/null
st=$("${PM[@]}" inspect -f '{{.State.Status}}' p-long)
fz=$(cgroup_file "$pid" freezer freezer.state cgroup.freeze) && fz=$(cat "$fz")
if [ "$st" = paused ] && { [ "$fz" = FROZEN ] || [ "$fz" = 1 ]; }; then pass "podman pause (freezer $fz)"; else fail "podman pause (status $st, freezer $fz)"; evidence; fi
"${PM[@]}" unpause p-long >/dev/null
st=$("${PM[@]}" inspect -f '{{.State.Status}}' p-long)
if [ "$st" = running ]; then pass "podman unpause"; else fail "podman unpause (status $st)"; evidence; fi

# 9. stop: sleep as pid 1 ignores SIGTERM -> SIGKILL after the timeout
t0=$(date +%s%N)
"${PM[@]}" stop -t 2 p-long >/dev/null 2>&1; rc=$?
dt=$(( ($(date +%s%N) - t0) / 1000000 ))
ec=$("${PM[@]}" inspect -f '{{.State.Status}} {{.State.ExitCode}}' p-long)
if [ "$rc" = 0 ] && [ "$ec" = "exited 137" ] && [ "$dt" -ge 1900 ]; then pass "podman stop -t 2 kills a SIGTERM-ignoring container after the timeout (${dt} ms, $ec)"; else fail "podman stop -t 2 (rc=$rc, $ec, ${dt} ms)"; evidence; fi
"${PM[@]}" rm p-long >/dev/null
if ! kill -0 "$pid" 2>/dev/null; then pass "podman rm: container process gone"; else fail "podman rm: pid $pid still alive"; evidence; fi

# 10. stop: a container that traps SIGTERM exits by itself
"${PM[@]}" run -d --name p-term "${RUN[@]}" "$IMG" sh -c 'trap "echo got-term; exit 0" TERM; echo ready; while :; do sleep 0.1; done' >/dev/null
remember p-term
wait_for 10 sh -c "${PM[*]} logs p-term 2>&1 | grep -q ready"
t0=$(date +%s%N)
"${PM[@]}" stop -t 10 p-term >/dev/null; rc=$?
dt=$(( ($(date +%s%N) - t0) / 1000000 ))
ec=$("${PM[@]}" inspect -f '{{.State.Status}} {{.State.ExitCode}}' p-term)
logs=$("${PM[@]}" logs p-term 2>&1)
if [ "$rc" = 0 ] && [ "$ec" = "exited 0" ] && grep -q got-term <<<"$logs" && [ "$dt" -lt 5000 ]; then pass "podman stop delivers SIGTERM (${dt} ms, $ec)"; else fail "podman stop SIGTERM (rc=$rc, $ec, ${dt} ms, logs=$logs)"; evidence; fi
"${PM[@]}" rm p-term >/dev/null

# 11. kill
"${PM[@]}" run -d --name p-kill "${RUN[@]}" "$IMG" sleep 600 >/dev/null
remember p-kill
"${PM[@]}" kill p-kill >/dev/null; rc=$?
wait_for 10 sh -c "${PM[*]} inspect -f '{{.State.Status}}' p-kill | grep -qx exited"
ec=$("${PM[@]}" inspect -f '{{.State.Status}} {{.State.ExitCode}}' p-kill)
if [ "$rc" = 0 ] && [ "$ec" = "exited 137" ]; then pass "podman kill ($ec)"; else fail "podman kill (rc=$rc, $ec)"; evidence; fi
"${PM[@]}" rm p-kill >/dev/null

# 12. the runtime keeps no state of removed containers
listed=$("$BERTH_RUNTIME" list -q 2>/dev/null)
left=()
for id in "${ALL_IDS[@]}"; do grep -qx "$id" <<<"$listed" && left+=("$id"); done
if [ ${#left[@]} = 0 ]; then pass "podman rm leaves no runtime state"; else fail "runtime still lists ${left[*]}"; evidence; fi

if [ "$FAILS" -gt 0 ]; then failed_runtime_calls "$W/log"; fi
summary
[ "$FAILS" = 0 ]
