#!/usr/bin/env bash
# docker.sh — a private dockerd (own data-root, exec-root, socket, pidfile, cgroup parent; no bridge,
# no iptables) with berth-runtime registered as runtime "berth" runs busybox loaded from the OCI layout.
#
#   BERTH_RUNTIME=/path/berth-runtime tests/interop/docker.sh
#
# Prints PASS:/FAIL: lines and "N passed, N failed"; exits non-zero on any failure. Every runtime call
# (dockerd -> containerd -> runc shim -> runtime) is recorded by a wrapper (see lib.sh); on failure the
# evidence (argv, runtime log, config.json) is printed and kept in $ARTIFACTS.
set -uo pipefail
ENGINE=docker
source "$(dirname "$0")/lib.sh"
preflight
needs dockerd docker containerd containerd-shim-runc-v2 skopeo script

W=$(mktemp -d /var/tmp/berth-interop-dkr.XXXXXX)
ARTIFACTS=${ARTIFACTS:-/var/tmp/berth-interop-artifacts/docker-$(date +%Y%m%d-%H%M%S)}
SOCK=$W/docker.sock
CGPARENT=/berth-interop-docker-$$
KEEP_EVIDENCE=0
export DOCKER_CONFIG=$W/cli          # leave ~/.docker alone
unset DOCKER_HOST DOCKER_CONTEXT
DK=(docker -H "unix://$SOCK")
R=(--runtime berth)

cleanup() {
  set +e
  if [ -S "$SOCK" ]; then
    ids=$("${DK[@]}" ps -aq 2>/dev/null)
    [ -n "$ids" ] && "${DK[@]}" rm -f $ids >/dev/null 2>&1
  fi
  kill_pidfile "$W/dockerd.pid"
  kill_procs_matching "$W/exec/"       # its containerd and shims, if any survived
  for c in $("$BERTH_RUNTIME" --root "$W/exec/runtime-runc/moby" list -q 2>/dev/null); do
    "$BERTH_RUNTIME" --root "$W/exec/runtime-runc/moby" delete -f "$c" >/dev/null 2>&1
  done
  umount_under "$W"
  for d in /sys/fs/cgroup/*"$CGPARENT" /sys/fs/cgroup/unified"$CGPARENT"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  if [ "$KEEP_EVIDENCE" = 1 ]; then
    mkdir -p "$ARTIFACTS"
    cp -r "$W/log" "$ARTIFACTS/runtime-calls" 2>/dev/null
    cp "$W/dockerd.log" "$W/daemon.json" "$ARTIFACTS/" 2>/dev/null
    echo "evidence kept in $ARTIFACTS" >&2
  fi
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

evidence() { KEEP_EVIDENCE=1; show_calls "$W/log" 6 >&2; }

make_wrapper "$W/berth-wrap" "$W/log"
cat >"$W/daemon.json" <<EOF
{
  "runtimes": { "berth": { "path": "$W/berth-wrap" } },
  "cgroup-parent": "$CGPARENT",
  "bridge": "none",
  "iptables": false,
  "ip-forward": false,
  "ip-masq": false,
  "storage-driver": "overlay2"
}
EOF

say "starting dockerd ($W)"
setsid dockerd --config-file "$W/daemon.json" --data-root "$W/data" --exec-root "$W/exec" \
  -H "unix://$SOCK" --pidfile "$W/dockerd.pid" >"$W/dockerd.log" 2>&1 </dev/null &
if ! wait_for 30 "${DK[@]}" version; then
  fail "dockerd came up"; tail -20 "$W/dockerd.log"; summary; exit 1
fi
rts=$("${DK[@]}" info --format '{{range $k, $v := .Runtimes}}{{$k}} {{end}}')
if grep -qw berth <<<"$rts"; then pass "dockerd $("${DK[@]}" version --format '{{.Server.Version}}') up with runtime berth"; else fail "runtime berth registered (runtimes: $rts)"; fi

skopeo copy -q "oci:$FIXTURES/busybox" "docker-archive:$W/busybox.tar:busybox:latest" &&
  "${DK[@]}" load -q -i "$W/busybox.tar" >/dev/null
check "docker load busybox (docker-archive from the OCI layout)" sh -c "${DK[*]} image inspect busybox:latest >/dev/null"
rm -f "$W/busybox.tar"

run() { "${DK[@]}" run "${R[@]}" "$@" 2> >(grep -v 'IPv4 forwarding is disabled' >&2); }

# 1. run --rm echo
out=$(run --rm busybox echo hi); rc=$?
if [ "$rc" = 0 ] && [ "$out" = hi ]; then pass "docker run --runtime berth --rm busybox echo hi"; else fail "docker run echo hi (rc=$rc out=$out)"; evidence; fi

# 2. exit code
run --rm busybox sh -c 'exit 9'; rc=$?
if [ "$rc" = 9 ]; then pass "exit code 9 propagates"; else fail "exit code 9 propagates (got $rc)"; evidence; fi

# 3. -i stdin
out=$(echo piped-in | run --rm -i busybox cat); rc=$?
if [ "$rc" = 0 ] && [ "$out" = piped-in ]; then pass "docker run -i: stdin reaches the container"; else fail "docker run -i (rc=$rc out=$out)"; evidence; fi

# 4. -it (script provides the tty)
out=$(script -qec "${DK[*]} run ${R[*]} --rm -it busybox sh -c 'tty; exit 4'" /dev/null </dev/null 2>&1); rc=$?
if [ "$rc" = 4 ] && grep -q '/dev/pts/' <<<"$out"; then pass "docker run -it gets a pty"; else fail "docker run -it (rc=$rc out=$out)"; evidence; fi

# 5. --network none: only loopback
out=$(run --rm --network none busybox ip -o link); rc=$?
if [ "$rc" = 0 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -q ': lo:' <<<"$out"; then pass "docker run --network none: only lo"; else fail "--network none (rc=$rc out=$out)"; evidence; fi

# 6. detached container with --memory and --pids-limit
run -d --name d-long --memory 64m --pids-limit 40 busybox sleep 600 >/dev/null; rc=$?
pid=$("${DK[@]}" inspect -f '{{.State.Pid}}' d-long 2>/dev/null)
st=$("${DK[@]}" inspect -f '{{.State.Status}}' d-long 2>/dev/null)
if [ "$rc" = 0 ] && [ "$st" = running ]; then pass "docker run -d: running (pid $pid)"; else fail "docker run -d (rc=$rc status=$st)"; evidence; fi

if [ -n "$pid" ] && [ "$pid" != 0 ] && f=$(cgroup_file "$pid" memory memory.limit_in_bytes memory.max); then
  v=$(cat "$f")
  if [ "$v" = 67108864 ]; then pass "--memory 64m: $f = $v"; else fail "--memory 64m: $f = $v"; evidence; fi
else fail "--memory 64m: no memory cgroup for pid $pid"; evidence; fi
if [ -n "$pid" ] && [ "$pid" != 0 ] && f=$(cgroup_file "$pid" pids pids.max pids.max); then
  v=$(cat "$f")
  if [ "$v" = 40 ]; then pass "--pids-limit 40: $f = $v"; else fail "--pids-limit 40: $f = $v"; evidence; fi
else fail "--pids-limit: no pids cgroup for pid $pid"; evidence; fi
case $(grep -sE ":memory:" "/proc/$pid/cgroup") in
  *"$CGPARENT"/*) pass "container cgroup under --cgroup-parent $CGPARENT" ;;
  *) fail "container cgroup under $CGPARENT ($(grep -sE ":memory:" "/proc/$pid/cgroup"))"; evidence ;;
esac

# 7. exec
out=$("${DK[@]}" exec d-long sh -c 'echo exec-ok; cat /proc/1/cmdline | tr "\0" " "' 2>&1); rc=$?
if [ "$rc" = 0 ] && grep -q '^exec-ok' <<<"$out" && grep -q 'sleep 600' <<<"$out"; then pass "docker exec runs in the container"; else fail "docker exec (rc=$rc out=$out)"; evidence; fi
"${DK[@]}" exec d-long sh -c 'exit 3'; rc=$?
if [ "$rc" = 3 ]; then pass "docker exec exit code 3"; else fail "docker exec exit code 3 (got $rc)"; evidence; fi
out=$(echo exec-stdin | "${DK[@]}" exec -i d-long cat 2>&1); rc=$?
if [ "$rc" = 0 ] && [ "$out" = exec-stdin ]; then pass "docker exec -i stdin"; else fail "docker exec -i (rc=$rc out=$out)"; evidence; fi
out=$(script -qec "${DK[*]} exec -it d-long tty" /dev/null </dev/null 2>&1)
if grep -q '/dev/pts/' <<<"$out"; then pass "docker exec -it gets a pty"; else fail "docker exec -it (out=$out)"; evidence; fi
out=$("${DK[@]}" top d-long 2>&1)
if grep -q 'sleep 600' <<<"$out"; then pass "docker top"; else fail "docker top (out=$out)"; evidence; fi

# 8. pause / unpause
"${DK[@]}" pause d-long >/dev/null
st=$("${DK[@]}" inspect -f '{{.State.Status}}' d-long)
fz=$(cgroup_file "$pid" freezer freezer.state cgroup.freeze) && fz=$(cat "$fz")
if [ "$st" = paused ] && { [ "$fz" = FROZEN ] || [ "$fz" = 1 ]; }; then pass "docker pause (freezer $fz)"; else fail "docker pause (status $st, freezer $fz)"; evidence; fi
"${DK[@]}" unpause d-long >/dev/null
st=$("${DK[@]}" inspect -f '{{.State.Status}}' d-long)
if [ "$st" = running ]; then pass "docker unpause"; else fail "docker unpause (status $st)"; evidence; fi

# 9. stop: sleep as pid 1 ignores SIGTERM -> SIGKILL after the timeout
t0=$(date +%s%N)
"${DK[@]}" stop -t 2 d-long >/dev/null; rc=$?
dt=$(( ($(date +%s%N) - t0) / 1000000 ))
ec=$("${DK[@]}" inspect -f '{{.State.Status}} {{.State.ExitCode}}' d-long)
if [ "$rc" = 0 ] && [ "$ec" = "exited 137" ] && [ "$dt" -ge 1900 ]; then pass "docker stop -t 2 kills a SIGTERM-ignoring container after the timeout (${dt} ms, $ec)"; else fail "docker stop -t 2 (rc=$rc, $ec, ${dt} ms)"; evidence; fi
"${DK[@]}" rm d-long >/dev/null
left=$("$BERTH_RUNTIME" --root "$W/exec/runtime-runc/moby" list -q 2>/dev/null)
if [ -z "$left" ] && ! kill -0 "$pid" 2>/dev/null; then pass "docker rm leaves no runtime container"; else fail "docker rm (runtime still lists: $left)"; evidence; fi

# 10. stop: a container that traps SIGTERM exits by itself
run -d --name d-term busybox sh -c 'trap "echo got-term; exit 0" TERM; echo ready; while :; do sleep 0.1; done' >/dev/null
wait_for 10 sh -c "${DK[*]} logs d-term 2>&1 | grep -q ready"
t0=$(date +%s%N)
"${DK[@]}" stop -t 10 d-term >/dev/null; rc=$?
dt=$(( ($(date +%s%N) - t0) / 1000000 ))
ec=$("${DK[@]}" inspect -f '{{.State.Status}} {{.State.ExitCode}}' d-term)
logs=$("${DK[@]}" logs d-term 2>&1)
if [ "$rc" = 0 ] && [ "$ec" = "exited 0" ] && grep -q got-term <<<"$logs" && [ "$dt" -lt 5000 ]; then pass "docker stop delivers SIGTERM (${dt} ms, $ec)"; else fail "docker stop SIGTERM (rc=$rc, $ec, ${dt} ms, logs=$logs)"; evidence; fi
"${DK[@]}" rm d-term >/dev/null

# 11. docker kill
run -d --name d-kill busybox sleep 600 >/dev/null
"${DK[@]}" kill d-kill >/dev/null; rc=$?
wait_for 10 sh -c "${DK[*]} inspect -f '{{.State.Status}}' d-kill | grep -qx exited"
ec=$("${DK[@]}" inspect -f '{{.State.Status}} {{.State.ExitCode}}' d-kill)
if [ "$rc" = 0 ] && [ "$ec" = "exited 137" ]; then pass "docker kill ($ec)"; else fail "docker kill (rc=$rc, $ec)"; evidence; fi
"${DK[@]}" rm d-kill >/dev/null

if [ "$FAILS" -gt 0 ]; then failed_runtime_calls "$W/log"; fi
summary
[ "$FAILS" = 0 ]
