#!/usr/bin/env bash
# bench/runtime/run.sh — container start latency: berth-runtime vs crun vs runc.
#
# Builds one OCI bundle from the busybox fixture (`runc spec` defaults: pid, net,
# ipc, uts, mount namespaces + cgroup ns, /proc /dev /dev/pts /dev/shm /dev/mqueue
# /sys(ro) /sys/fs/cgroup(ro), runc's masked/readonly paths; args ["/bin/true"],
# terminal false) and times `RUNTIME run` of it, alternating berth, crun, runc,
# berth, crun, runc, ... RUNS times each, fresh container id per run, one --root
# state dir per runtime. Every run must exit 0 (else the script aborts and shows
# the run's stderr). Prints median / p10 / p90 per runtime and the ratios of the
# medians. Then (SPLIT=1, default) the same alternation for the split lifecycle
# create → start → init exited → delete, and berth-runtime alone on the host's
# cgroup layout as it is.
# SECCOMP=1 (default): the split lifecycle again with the realistic bundle: the same
# config plus Docker's default capability set and the Docker-equivalent default
# seccomp profile (bench/runtime/seccomp-default.json: berth-runtime's built-in
# profile, made by bench/runtime/seccomp-profile.sh), all namespaces incl. cgroup.
# Phases are prefixed "sc-" in the report.
# EXEC=1 (default): `exec` latency: one long-running container per runtime
# (`run -d`, `sleep 1000`, terminal false), then `RUNTIME exec ID /bin/true`
# alternating berth, crun, runc, RUNS times each (WARMUP untimed first).
#
# Hybrid cgroup hosts (v1 controllers + cgroup2 at /sys/fs/cgroup/unified): crun
# refuses them, so the comparison runs for all three runtimes inside a private
# mount namespace (`unshare -m --propagation private`) with
# /sys/fs/cgroup/unified unmounted; the script re-execs itself there.
#
# Usage (root):  bench/runtime/run.sh
# Env:  RUNS=30         runs per runtime
#       WARMUP=3        untimed runs per runtime first
#       SPLIT=1         also time create/start/wait/delete (0: skip)
#       SECCOMP=1       also time create/start/wait/delete with the default seccomp
#                       profile and Docker's capabilities (0: skip)
#       SECCOMP_PROFILE=bench/runtime/seccomp-default.json   (an OCI linux.seccomp object)
#       EXEC=1          also time exec into a running container (0: skip)
#       HOST_LAYOUT=1   also time berth-runtime on the cgroup layout as is (0: skip)
#       ROTATE=0        1: rotate the order berth/crun/runc every iteration (each runtime
#                       then follows each other equally often; with 0 berth always
#                       follows runc, crun follows berth, runc follows crun)
#       GAP=0           seconds to sleep (untimed) before every timed run; e.g. GAP=0.3
#                       shows the latency of an isolated start (see README: the first
#                       cgroup v1 attach after an idle period waits for an RCU grace period)
#       IDLE_WAIT=120   wait up to this many seconds for the host to be idle (>=85% idle
#                       CPU over 2 s) before measuring; 0: don't wait. The report shows
#                       the load either way: other work on the host skews absolute times
#       NICE=0          e.g. NICE=-19: run everything at that nice level, so that other
#                       CPU load on the host (builds...) disturbs the timings less
#       PROFILE=0       1: `strace -c -f` and `perf stat` of one berth-runtime run
#       BERTH=<repo>/target/release/berth-runtime   CRUN=crun   RUNC=runc
#       FIXTURE=/var/tmp/berth-fixtures/busybox     (OCI layout)
#       BERTH_UNSEALED=1  passed through: berth-runtime skips its protective re-exec
#                       from a read-only image (CVE-2019-5736), which it does only for
#                       containers holding CAP_SYS_PTRACE without a user namespace; none
#                       of the bundles here do, so this changes nothing for them
#       KEEP=0          1: keep the temp dir (raw timings in $WORK/*.ns)
set -euo pipefail

REPO=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
SPLIT=${SPLIT:-1}
SECCOMP=${SECCOMP:-1}
EXEC=${EXEC:-1}
SECCOMP_PROFILE=${SECCOMP_PROFILE:-$REPO/bench/runtime/seccomp-default.json}
HOST_LAYOUT=${HOST_LAYOUT:-1}
PROFILE=${PROFILE:-0}
GAP=${GAP:-0}
ROTATE=${ROTATE:-0}
IDLE_WAIT=${IDLE_WAIT:-120}
NICE=${NICE:-0}
KEEP=${KEEP:-0}
FIXTURE=${FIXTURE:-/var/tmp/berth-fixtures/busybox}
BERTH=${BERTH:-$REPO/target/release/berth-runtime}
CRUN=${CRUN:-$(command -v crun || echo /usr/bin/crun)}
RUNC=${RUNC:-$(command -v runc || echo /usr/sbin/runc)}
export ROTATE RUNS WARMUP SPLIT SECCOMP EXEC SECCOMP_PROFILE HOST_LAYOUT PROFILE GAP IDLE_WAIT NICE KEEP FIXTURE BERTH CRUN RUNC

log() { printf '%s\n' "$*" >&2; }
die() { log "run.sh: $*"; exit 1; }

# ---------------------------------------------------------------- helpers ----

now_ns() {  # wall clock in ns, without forking (bash 5 $EPOCHREALTIME, µs resolution)
    local t=$EPOCHREALTIME
    REPLY=$(( ${t%.*} * 1000000000 + 10#${t#*.} * 1000 ))
}

# rt_cmd NAME → RT array: the runtime binary plus its --root
rt_cmd() {
    case $1 in
        berth|berth-host) RT=("$BERTH" --root "$WORK/state/$1") ;;
        crun) RT=("$CRUN" --root "$WORK/state/crun") ;;
        runc) RT=("$RUNC" --root "$WORK/state/runc") ;;
    esac
}

fail_run() {  # NAME ID WHAT
    log "run.sh: $1 $3 of container $2 failed (exit $RC); its stderr:"
    sed 's/^/    /' "$WORK/err" >&2 || true
    exit 1
}

SEQ=0
gap() { [ "$GAP" = 0 ] || sleep "$GAP"; }

cpu_ticks() {  # REPLY="busy total" from /proc/stat's cpu line
    local _c user nice sys idle iow irq sirq steal _rest
    read -r _c user nice sys idle iow irq sirq steal _rest </proc/stat
    REPLY="$((user + nice + sys + irq + sirq + steal)) $((user + nice + sys + idle + iow + irq + sirq + steal))"
}
busy_pct() {  # BEFORE AFTER (each "busy total") → % busy of all CPUs in between
    local b0 t0 b1 t1
    read -r b0 t0 <<<"$1"; read -r b1 t1 <<<"$2"
    echo $(( t1 > t0 ? 100 * (b1 - b0) / (t1 - t0) : 0 ))
}
wait_idle() {
    [ "$IDLE_WAIT" -gt 0 ] || return 0
    local end=$((SECONDS + IDLE_WAIT)) a b p
    while :; do
        cpu_ticks; a=$REPLY; sleep 2; cpu_ticks; b=$REPLY
        p=$(busy_pct "$a" "$b")
        [ "$p" -le 15 ] && { log "host idle enough (${p}% CPU busy)"; return 0; }
        [ $SECONDS -ge $end ] && { log "WARNING: host still ${p}% busy after ${IDLE_WAIT}s; measuring anyway"; return 0; }
        log "host ${p}% busy; waiting for it to settle (IDLE_WAIT=${IDLE_WAIT}s)"
    done
}
# order I → ORD: the runtimes in the order for iteration I: berth crun runc, or with
# ROTATE=1 rotated by I, so that each one follows each other equally often (the
# cost of a cgroup v1 attach depends on how long ago the previous attach was)
order() {
    ORD=(berth crun runc)
    if [ "$ROTATE" = 1 ]; then
        local r=$(($1 % 3))
        ORD=("${ORD[@]:r}" "${ORD[@]:0:r}")
    fi
}
next_id() { SEQ=$((SEQ + 1)); ID="$IDPFX-$1-$SEQ"; }

# time_run NAME → appends ns to $WORK/NAME.run.ns
time_run() {
    local name=$1 t0
    rt_cmd "$name"; next_id "$name"
    gap
    now_ns; t0=$REPLY
    RC=0; "${RT[@]}" run --bundle "$WORK/bundle" "$ID" </dev/null >/dev/null 2>"$WORK/err" || RC=$?
    now_ns
    [ "$RC" = 0 ] || fail_run "$name" "$ID" run
    echo $((REPLY - t0)) >>"$WORK/$name.run.ns"
}

# time_split NAME [BUNDLE PREFIX] → create / start / wait (init exited) / delete /
# total, ns each, into $WORK/NAME.PREFIXcreate.ns etc.
time_split() {
    local name=$1 bundle=${2:-$WORK/bundle} pfx=${3:-} t0 t1 t2 t3 t4 pid st
    rt_cmd "$name"; next_id "$name"
    gap
    now_ns; t0=$REPLY
    RC=0; "${RT[@]}" create --bundle "$bundle" "$ID" </dev/null >/dev/null 2>"$WORK/err" || RC=$?
    now_ns; t1=$REPLY
    [ "$RC" = 0 ] || fail_run "$name" "$ID" create
    # the init's host pid, read untimed; after `start` we wait (no forks) until it
    # has exited: /proc/PID gone or a zombie
    local t_state0 t_state1
    now_ns; t_state0=$REPLY
    pid=$("${RT[@]}" state "$ID" 2>"$WORK/err" | jq -r .pid) || { RC=$?; fail_run "$name" "$ID" state; }
    now_ns; t_state1=$REPLY
    [ "$pid" -gt 0 ] 2>/dev/null || { RC=0; echo "state pid: $pid" >"$WORK/err"; fail_run "$name" "$ID" state; }
    now_ns; t1=$REPLY
    RC=0; "${RT[@]}" start "$ID" </dev/null >/dev/null 2>"$WORK/err" || RC=$?
    now_ns; t2=$REPLY
    [ "$RC" = 0 ] || fail_run "$name" "$ID" start
    while [ -r "/proc/$pid/stat" ]; do
        st=$(<"/proc/$pid/stat") 2>/dev/null || break
        st=${st##*) }; [ "${st%% *}" = Z ] && break
    done
    now_ns; t3=$REPLY
    RC=0; "${RT[@]}" delete "$ID" </dev/null >/dev/null 2>"$WORK/err" || RC=$?
    now_ns; t4=$REPLY
    [ "$RC" = 0 ] || fail_run "$name" "$ID" delete
    local create=$((t_state0 - t0))
    echo "$create" >>"$WORK/$name.${pfx}create.ns"
    echo $((t2 - t1)) >>"$WORK/$name.${pfx}start.ns"
    echo $((t3 - t2)) >>"$WORK/$name.${pfx}wait.ns"
    echo $((t4 - t3)) >>"$WORK/$name.${pfx}delete.ns"
    echo $((create + t4 - t1)) >>"$WORK/$name.${pfx}total.ns"
}

# exec_setup NAME → a long-running container ($WORK/bundle-sleep) for time_exec
exec_setup() {
    local name=$1
    rt_cmd "$name"; ID="$IDPFX-$name-exec"
    RC=0; "${RT[@]}" run -d --bundle "$WORK/bundle-sleep" "$ID" </dev/null >/dev/null 2>"$WORK/err" || RC=$?
    [ "$RC" = 0 ] || fail_run "$name" "$ID" "run -d"
}

# time_exec NAME → appends ns of `exec ID /bin/true` to $WORK/NAME.exec.ns
time_exec() {
    local name=$1 t0
    rt_cmd "$name"; ID="$IDPFX-$name-exec"
    gap
    now_ns; t0=$REPLY
    RC=0; "${RT[@]}" exec "$ID" /bin/true </dev/null >/dev/null 2>"$WORK/err" || RC=$?
    now_ns
    [ "$RC" = 0 ] || fail_run "$name" "$ID" exec
    echo $((REPLY - t0)) >>"$WORK/$name.exec.ns"
}

exec_teardown() {
    local name=$1
    rt_cmd "$name"; ID="$IDPFX-$name-exec"
    "${RT[@]}" kill "$ID" KILL >/dev/null 2>&1 || true
    local k
    for k in 1 2 3 4 5 6 7 8 9 10; do
        "${RT[@]}" delete "$ID" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    "${RT[@]}" delete -f "$ID" >/dev/null 2>&1 || true
}

# stats FILE → "median p10 p90" in ms (linear interpolation between order stats)
stats() {
    sort -n "$1" | awk '
        { v[NR] = $1 }
        function q(p,   h, lo) { h = (NR - 1) * p + 1; lo = int(h)
            return (lo >= NR) ? v[NR] : v[lo] + (h - lo) * (v[lo + 1] - v[lo]) }
        END { printf "%.2f %.2f %.2f %d\n", q(0.5) / 1e6, q(0.1) / 1e6, q(0.9) / 1e6, NR }'
}

table() {  # PHASE NAME... → rows "| phase | runtime | median | p10 | p90 | n |"
    local phase=$1; shift
    local n
    for n in "$@"; do
        [ -s "$WORK/$n.$phase.ns" ] || continue
        read -r med p10 p90 cnt < <(stats "$WORK/$n.$phase.ns")
        printf '| %-9s | %-22s | %8s | %8s | %8s | %3s |\n' "$phase" "$(label "$n")" "$med" "$p10" "$p90" "$cnt"
    done
}

label() {
    case $1 in
        berth) echo "berth-runtime" ;;
        berth-host) echo "berth-runtime (hybrid)" ;;
        *) echo "$1" ;;
    esac
}

ratio() {  # PHASE A B → median(A)/median(B)
    [ -s "$WORK/$2.$1.ns" ] && [ -s "$WORK/$3.$1.ns" ] || { echo "n/a"; return; }
    local a b
    a=$(stats "$WORK/$2.$1.ns" | cut -d' ' -f1); b=$(stats "$WORK/$3.$1.ns" | cut -d' ' -f1)
    awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }'
}

# delete whatever is left in our state dirs, and (inner namespace) the leftovers
# crun writes into the plain directory /sys/fs/cgroup/unified when it is unmounted
cleanup_containers() {
    local name id
    for name in berth berth-host crun runc; do
        [ -d "$WORK/state/$name" ] || continue
        rt_cmd "$name"
        for id in $("${RT[@]}" list -q 2>/dev/null); do
            "${RT[@]}" kill "$id" KILL >/dev/null 2>&1 || true
            "${RT[@]}" delete -f "$id" >/dev/null 2>&1 || "${RT[@]}" delete "$id" >/dev/null 2>&1 || true
        done
    done
    if [ "${INNER:-0}" = 1 ] && [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" != cgroup2fs ]; then
        for id in /sys/fs/cgroup/unified/"$IDPFX"-*; do
            [ -d "$id" ] || continue
            rm -f "$id"/* 2>/dev/null; rmdir "$id" 2>/dev/null || true
        done
    fi
}

# ------------------------------------------------------------ inner phase ----
# runs inside the private mount namespace, /sys/fs/cgroup/unified unmounted

inner() {
    INNER=1
    trap 'ftrace_off; cleanup_containers' EXIT
    local i n
    log "comparison (private mount ns, cgroup layout: $(cg_layout)): warm-up $WARMUP, then $RUNS x run each, alternating"
    cpu_ticks; local c0=$REPLY
    for ((i = 0; i < WARMUP; i++)); do
        order $i; for n in "${ORD[@]}"; do time_run "$n"; done
    done
    rm -f "$WORK"/berth.run.ns "$WORK"/crun.run.ns "$WORK"/runc.run.ns
    for ((i = 1; i <= RUNS; i++)); do
        order $i; for n in "${ORD[@]}"; do time_run "$n"; done
        [ $((i % 10)) = 0 ] && log "  run: $i/$RUNS"
    done
    if [ "$SPLIT" = 1 ]; then
        log "split create/start/wait/delete: $RUNS each, alternating"
        for ((i = 1; i <= RUNS; i++)); do
            order $i; for n in "${ORD[@]}"; do time_split "$n"; done
            [ $((i % 10)) = 0 ] && log "  split: $i/$RUNS"
        done
    fi
    if [ "$SECCOMP" = 1 ]; then
        log "split with default seccomp + Docker caps: warm-up $WARMUP, then $RUNS each, alternating"
        for ((i = 0; i < WARMUP; i++)); do
            order $i; for n in "${ORD[@]}"; do time_split "$n" "$WORK/bundle-sc" sc-; done
        done
        for n in berth crun runc; do rm -f "$WORK/$n".sc-*.ns; done
        for ((i = 1; i <= RUNS; i++)); do
            order $i; for n in "${ORD[@]}"; do time_split "$n" "$WORK/bundle-sc" sc-; done
            [ $((i % 10)) = 0 ] && log "  seccomp split: $i/$RUNS"
        done
    fi
    if [ "$EXEC" = 1 ]; then
        log "exec: one sleeping container per runtime, warm-up $WARMUP, then $RUNS x exec each, alternating"
        for n in berth crun runc; do exec_setup "$n"; done
        for ((i = 0; i < WARMUP; i++)); do
            order $i; for n in "${ORD[@]}"; do time_exec "$n"; done
        done
        rm -f "$WORK"/berth.exec.ns "$WORK"/crun.exec.ns "$WORK"/runc.exec.ns
        for ((i = 1; i <= RUNS; i++)); do
            order $i; for n in "${ORD[@]}"; do time_exec "$n"; done
            [ $((i % 10)) = 0 ] && log "  exec: $i/$RUNS"
        done
        for n in berth crun runc; do exec_teardown "$n"; done
    fi
    cpu_ticks; echo "$(busy_pct "$c0" "$REPLY")" >"$WORK/busy.inner"
    if [ "$PROFILE" = 1 ]; then
        profile
    fi
}

profile() {
    rt_cmd berth
    log "PROFILE: strace -c -f of one berth-runtime run"
    next_id berth
    strace -c -f -o "$WORK/strace-c.txt" "${RT[@]}" run --bundle "$WORK/bundle" "$ID" </dev/null >/dev/null 2>&1
    if command -v perf >/dev/null; then
        log "PROFILE: perf stat of 10 berth-runtime runs"
        local j
        : >"$WORK/perf-stat.txt"
        for j in 1 2 3 4 5 6 7 8 9 10; do
            next_id berth
            perf stat -e task-clock,context-switches,cpu-migrations,page-faults -x, \
                -o "$WORK/perf-one.txt" "${RT[@]}" run --bundle "$WORK/bundle" "$ID" </dev/null >/dev/null 2>&1 || true
            cat "$WORK/perf-one.txt" >>"$WORK/perf-stat.txt"
        done
    fi
    # ftrace (own instance, kernel ring buffer, ~1 µs per event, unlike strace's
    # ~80 µs per syscall here): raw syscalls + fork/exec/exit + sched of 5 runs, each
    # right after an untraced run, like the back-to-back runs timed above
    local I=/sys/kernel/tracing/instances/berth-bench-$$ e k
    if [ -d /sys/kernel/tracing/instances ] && mkdir "$I" 2>/dev/null; then
        log "PROFILE: ftrace of 5 berth-runtime runs"
        FTRACE_INSTANCE=$I
        echo 16384 >"$I/buffer_size_kb"; echo 1 >"$I/options/event-fork"
        for e in raw_syscalls/sys_enter raw_syscalls/sys_exit sched/sched_process_fork \
                 sched/sched_process_exec sched/sched_process_exit sched/sched_switch sched/sched_wakeup; do
            echo 1 >"$I/events/$e/enable"
        done
        for k in 1 2 3 4 5; do
            next_id berth; "${RT[@]}" run --bundle "$WORK/bundle" "$ID" </dev/null >/dev/null 2>&1
            next_id berth; echo >"$I/trace"
            bash -c 'echo $$ >"$1/set_event_pid"; echo 1 >"$1/tracing_on"; shift; exec "$@"' x "$I" \
                "${RT[@]}" run --bundle "$WORK/bundle" "$ID" </dev/null >/dev/null 2>&1 || true
            echo 0 >"$I/tracing_on"
            cat "$I/trace" >"$WORK/ftrace-$k.txt"
        done
        ftrace_off
    fi
}

ftrace_off() {
    local I=${FTRACE_INSTANCE:-}
    [ -n "$I" ] && [ -d "$I" ] || return 0
    echo 0 >"$I/tracing_on"; echo 0 >"$I/events/enable"; echo >"$I/set_event_pid"
    rmdir "$I" 2>/dev/null || true
    FTRACE_INSTANCE=
}

# ftrace_summary FILE... → per-syscall totals / slowest calls / off-CPU time, averaged
ftrace_summary() {
    local unistd=/usr/include/x86_64-linux-gnu/asm/unistd_64.h
    awk -v nfiles=$# -v unistd="$unistd" '
        BEGIN { while ((getline l < unistd) > 0) if (l ~ /^#define __NR_/) { split(l, a, " "); sub("__NR_", "", a[2]); nm[a[3]] = a[2] } }
        FNR == 1 { t0 = 0; delete ent; delete off }
        /^#/ { next }
        { match($0, /-[0-9]+ +\[/); pid = substr($0, RSTART + 1, RLENGTH - 1); sub(/ +\[/, "", pid)
          match($0, /[0-9]+\.[0-9]+: /); t = substr($0, RSTART, RLENGTH - 2) + 0
          ev = substr($0, RSTART + RLENGTH); split(ev, w, " "); kind = w[1]; sub(":", "", kind) }
        kind == "sched_process_exec" && !t0 { t0 = t; first = pid }
        !t0 { next }
        kind == "sys_enter" { ent[pid] = t; nr[pid] = w[3] }
        kind == "sys_exit" && (pid in ent) { n = (w[3] in nm) ? nm[w[3]] : "nr" w[3]; d = t - ent[pid]
            tot[n] += d; cnt[n]++; if (d > mx[n]) mx[n] = d; delete ent[pid] }
        kind == "sched_switch" { match(ev, /prev_pid=[0-9]+/); pp = substr(ev, RSTART + 9, RLENGTH - 9)
            match(ev, /next_pid=[0-9]+/); np = substr(ev, RSTART + 9, RLENGTH - 9)
            match(ev, /prev_state=[A-Z+]+/); st = substr(ev, RSTART + 11, RLENGTH - 11)
            if (pp in seen || pp == first) { off[pp] = t; ost[pp] = st }
            if (np in off) { d = t - off[np]; s = (ost[np] ~ /^R/) ? "runnable (waiting for a CPU)" : "blocked (" ost[np] ")"; offt[s] += d; delete off[np] } }
        kind == "sched_process_fork" { match(ev, /child_pid=[0-9]+/); seen[substr(ev, RSTART + 10, RLENGTH - 10)] = 1 }
        kind == "sched_process_exit" && pid == first { span += t - t0 }
        END {
            printf "  wall time per run (exec to exit): %.2f ms\n", 1000 * span / nfiles
            printf "  off-CPU time per run, all its processes:\n"
            for (s in offt) printf "    %-30s %7.2f ms\n", s, 1000 * offt[s] / nfiles
            printf "  syscalls by total time per run (ms, calls per run, slowest single ms):\n"
            for (n in tot) printf "    %-16s %7.3f %6.1f %7.3f\n", n, 1000 * tot[n] / nfiles, cnt[n] / nfiles, 1000 * mx[n] | "sort -k2 -rn | head -14"
        }' "$@"
}

cg_layout() {
    case $(stat -f -c %T /sys/fs/cgroup) in
        cgroup2fs) echo "v2" ;;
        tmpfs) if [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then echo "hybrid"; else echo "v1"; fi ;;
        *) echo "unknown" ;;
    esac
}

if [ "${1:-}" = __inner ]; then
    WORK=$2 IDPFX=$3
    inner
    exit 0
fi

# ------------------------------------------------------------ outer phase ----

[ "$(id -u)" = 0 ] || die "needs root"
if [ "$NICE" != 0 ] && [ "${BENCH_NICED:-}" != 1 ]; then
    BENCH_NICED=1 exec nice -n "$NICE" "$(readlink -f "$0")" "$@"
fi
for b in "$BERTH" "$CRUN" "$RUNC"; do [ -x "$b" ] || die "missing runtime binary: $b"; done
for t in jq tar unshare awk; do command -v $t >/dev/null || die "missing tool: $t"; done
[ -f "$FIXTURE/index.json" ] || die "no OCI layout at $FIXTURE"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench-rt.XXXXXX")
IDPFX="bb$$"
cleanup() {
    local rc=$?
    cleanup_containers
    if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/bundle/rootfs" "$WORK/state"

# bundle: the fixture's (single) layer, runc's default spec, /bin/true
blob() { echo "$FIXTURE/blobs/${1%%:*}/${1#*:}"; }
manifest=$(blob "$(jq -r '.manifests[0].digest' "$FIXTURE/index.json")")
jq -r '.layers[].digest' "$manifest" | while read -r d; do tar -xzf "$(blob "$d")" -C "$WORK/bundle/rootfs"; done
(cd "$WORK/bundle" && "$RUNC" spec)
jq '.process.terminal = false | .process.args = ["/bin/true"]
    | .linux.namespaces |= (if any(.type == "cgroup") then . else . + [{"type": "cgroup"}] end)' \
    "$WORK/bundle/config.json" >"$WORK/config.json"
mv "$WORK/config.json" "$WORK/bundle/config.json"
# same rootfs (read-only), by absolute path, for the other two bundles
mkdir -p "$WORK/bundle-sleep" "$WORK/bundle-sc"
jq --arg root "$WORK/bundle/rootfs" '.root.path = $root | .process.args = ["/bin/sleep", "1000"]' \
    "$WORK/bundle/config.json" >"$WORK/bundle-sleep/config.json"
if [ "$SECCOMP" = 1 ]; then
    [ -f "$SECCOMP_PROFILE" ] || die "no seccomp profile at $SECCOMP_PROFILE (bench/runtime/seccomp-profile.sh makes it)"
    # Docker's default capabilities (moby oci/caps/defaults.go), in the sets runc spec fills
    jq --arg root "$WORK/bundle/rootfs" --slurpfile sc "$SECCOMP_PROFILE" '
        ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
         "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
         "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"] as $caps
        | .root.path = $root
        | .process.capabilities |= with_entries(.value = $caps)
        | .linux.seccomp = $sc[0]' \
        "$WORK/bundle/config.json" >"$WORK/bundle-sc/config.json"
fi

# a private copy of berth-runtime, so a concurrent rebuild can't change it mid-run
mkdir -p "$WORK/bin"
cp "$BERTH" "$WORK/bin/berth-runtime"
BERTH_SRC=$BERTH BERTH=$WORK/bin/berth-runtime
BERTH_REV=${BERTH_REV:-$(git -C "$(dirname "$BERTH_SRC")" rev-parse --short HEAD 2>/dev/null || echo "?")}
BERTH_SUM=$(sha256sum "$BERTH" | cut -c1-12)
export BERTH

LAYOUT=$(cg_layout)
wait_idle
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
log "berth-runtime: $BERTH_SRC (repo HEAD $BERTH_REV, sha256 $BERTH_SUM)"
log "bundle: $WORK/bundle (namespaces: $(jq -r '[.linux.namespaces[].type] | join(",")' "$WORK/bundle/config.json"))"
[ "$SECCOMP" = 1 ] && log "seccomp bundle: $WORK/bundle-sc ($(jq -r '"\(.linux.seccomp.syscalls | length) rules, \([.linux.seccomp.syscalls[].names | length] | add) names, default \(.linux.seccomp.defaultAction); caps: \(.process.capabilities.bounding | length)"' "$WORK/bundle-sc/config.json"))"

# berth-runtime on the cgroup layout as it is (on a hybrid host crun can't do this)
if [ "$HOST_LAYOUT" = 1 ]; then
    log "berth-runtime on the host cgroup layout ($LAYOUT): warm-up $WARMUP, $RUNS x run"
    for ((i = 0; i < WARMUP; i++)); do time_run berth-host; done
    rm -f "$WORK/berth-host.run.ns"
    for ((i = 0; i < RUNS; i++)); do time_run berth-host; done
fi

# the comparison, in a private mount namespace without /sys/fs/cgroup/unified
umount_unified=:
if [ "$LAYOUT" = hybrid ]; then umount_unified="umount /sys/fs/cgroup/unified"; fi
unshare -m --propagation private -- \
    sh -c "$umount_unified"' && exec "$0" __inner "$1" "$2"' "$(readlink -f "$0")" "$WORK" "$IDPFX"

LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
# ------------------------------------------------------------------ report ----
echo
echo "container start latency: \`RUNTIME run\` of busybox /bin/true, $RUNS runs each (ms)"
echo "host cgroups: $LAYOUT; comparison rows in a private mount ns$([ "$LAYOUT" = hybrid ] && echo " without /sys/fs/cgroup/unified")"
echo "berth-runtime: $BERTH_SRC, repo HEAD $BERTH_REV, sha256 $BERTH_SUM$([ -n "${BERTH_UNSEALED:-}" ] && echo ", BERTH_UNSEALED=1"); $("$CRUN" --version | head -1); $("$RUNC" --version | head -1)"
echo "order: $([ "$ROTATE" = 1 ] && echo "rotated every iteration" || echo "berth, crun, runc"); gap between runs: ${GAP}s; nice: $(nice); loadavg before: $LOAD0, after: $LOAD1; CPU busy during the comparison: $(cat "$WORK/busy.inner" 2>/dev/null || echo '?')% of $(nproc) CPUs (this script included)"
echo
echo "| phase     | runtime                |   median |      p10 |      p90 |   n |"
echo "|-----------|------------------------|---------:|---------:|---------:|----:|"
table run berth crun runc berth-host
if [ "$SPLIT" = 1 ]; then
    for ph in create start wait delete total; do table "$ph" berth crun runc; done
fi
if [ "$SECCOMP" = 1 ]; then
    for ph in create start wait delete total; do table "sc-$ph" berth crun runc; done
fi
if [ "$EXEC" = 1 ]; then table exec berth crun runc; fi
echo
echo "ratios of medians (run): berth/crun = $(ratio run berth crun), berth/runc = $(ratio run berth runc)"
if [ "$SPLIT" = 1 ]; then
    echo "ratios of medians (create+start+wait+delete): berth/crun = $(ratio total berth crun), berth/runc = $(ratio total berth runc)"
fi
if [ "$SECCOMP" = 1 ]; then
    echo "ratios of medians (create+start+wait+delete, default seccomp + Docker caps): berth/crun = $(ratio sc-total berth crun), berth/runc = $(ratio sc-total berth runc)"
fi
if [ "$EXEC" = 1 ]; then
    echo "ratios of medians (exec): berth/crun = $(ratio exec berth crun), berth/runc = $(ratio exec berth runc)"
fi
if [ "$PROFILE" = 1 ]; then
    echo
    echo "PROFILE: strace -c -f, one berth-runtime run (top 15 by time)"
    sed -n '1,2p' "$WORK/strace-c.txt"; sed -n '3,$p' "$WORK/strace-c.txt" | grep -v -- '------\|total' | head -15
    grep total "$WORK/strace-c.txt" || true
    if [ -s "$WORK/perf-stat.txt" ]; then
        echo
        echo "PROFILE: perf stat over 10 berth-runtime runs (mean per run)"
        awk -F, '$1 ~ /^[0-9.]+$/ { s[$3] += $1; n[$3]++; u[$3] = $2 }
            END { for (k in s) printf "  %-18s %10.2f %s\n", k, s[k] / n[k], u[k] }' "$WORK/perf-stat.txt"
    fi
    if ls "$WORK"/ftrace-*.txt >/dev/null 2>&1; then
        echo
        echo "PROFILE: ftrace of 5 berth-runtime runs (mean per run; sleeping in recvfrom/accept4 = waiting for the other process)"
        ftrace_summary "$WORK"/ftrace-*.txt
        echo "(raw traces: \$WORK/ftrace-*.txt, kept with KEEP=1)"
    fi
fi
