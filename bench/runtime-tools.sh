#!/usr/bin/env bash
# Run the OCI runtime-tools validation suite against one or more
# runc-compatible runtimes and print a per-test pass/fail table.
#
#   bench/runtime-tools.sh /usr/sbin/runc /usr/bin/crun target/release/berth-runtime
#
# Needs root, go (Debian's golang-go is fine), tar, timeout, setsid, unshare.
# runtime-tools itself is NOT part of this repo: point RUNTIME_TOOLS_DIR at a
# checkout of github.com/opencontainers/runtime-tools (it vendors its deps).
#
# Environment:
#   RUNTIME_TOOLS_DIR  runtime-tools checkout            (default /var/tmp/runtime-tools)
#   RUNTIME_TOOLS_REF  git ref of that checkout to build instead of its work
#                      tree. If unset and the checkout's go.mod needs a newer Go
#                      than installed, the last Go-1.19-compatible commit
#                      (260e151, 2025-03) is used automatically.
#   BUILD_DIR          where binaries are built          (default /var/tmp/rt-build)
#   OUT_DIR            results root; raw TAP goes to OUT_DIR/<runtime-name>/<test>.tap
#                                                        (default /var/tmp/rt-results)
#   TEST_TIMEOUT       seconds per test binary           (default 60)
#   TESTS              space-separated subset of tests (dir names under validation/)
#   CGROUP_MODE        nounified (default): on a hybrid cgroup host, run everything
#                      in a private mount namespace with /sys/fs/cgroup/unified
#                      unmounted (crun refuses hybrid mode). host: run as is.
#   SKIP_BUILD=1       reuse binaries already in BUILD_DIR
#
# A runtime is passed to the tests via $RUNTIME and called with no global
# flags (default --root). If yours needs flags, pass a wrapper script.
set -uo pipefail

RUNTIME_TOOLS_DIR=${RUNTIME_TOOLS_DIR:-/var/tmp/runtime-tools}
BUILD_DIR=${BUILD_DIR:-/var/tmp/rt-build}
OUT_DIR=${OUT_DIR:-/var/tmp/rt-results}
TEST_TIMEOUT=${TEST_TIMEOUT:-60}
CGROUP_MODE=${CGROUP_MODE:-nounified}
GO119_FALLBACK_REF=260e151

die() { echo "runtime-tools.sh: $*" >&2; exit 2; }
log() { echo "== $*" >&2; }

[ $# -ge 1 ] || die "usage: $0 RUNTIME_PATH [RUNTIME_PATH...]"
[ "$(id -u)" = 0 ] || die "must run as root"

# ---------------------------------------------------------------- namespace
# Always run inside a private mount namespace: some tests (linux_ns_itype with
# no mount ns) make the runtime mount proc/sys/dev into the bundle in *our*
# namespace; those mounts must die with the namespace, never leak to the host.
if [ -z "${_RT_IN_NS:-}" ]; then
    export _RT_IN_NS=1
    umount_unified=:
    if [ "$CGROUP_MODE" = nounified ] \
       && [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] \
       && [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
        log "hybrid cgroups: running without /sys/fs/cgroup/unified (private mount namespace)"
        umount_unified="umount /sys/fs/cgroup/unified"
    fi
    exec unshare -m --propagation private -- \
        sh -c "$umount_unified"' && exec "$0" "$@"' "$(readlink -f "$0")" "$@"
fi

# ---------------------------------------------------------------- runtimes
RUNTIMES=()
NAMES=()
for r in "$@"; do
    p=$(command -v "$r" 2>/dev/null) || die "runtime not found: $r"
    p=$(readlink -f "$p")
    [ -x "$p" ] || die "not executable: $p"
    n=$(basename "$p")
    for o in "${NAMES[@]:-}"; do [ "$o" = "$n" ] && n="$n-${#NAMES[@]}"; done
    RUNTIMES+=("$p"); NAMES+=("$n")
done

# ---------------------------------------------------------------- build
go_minor() { go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/'; }
mod_minor() { sed -nE 's/^go 1\.([0-9]+).*/\1/p' "$1" | head -1; }

build() {
    [ -d "$RUNTIME_TOOLS_DIR" ] || die "no runtime-tools checkout at $RUNTIME_TOOLS_DIR"
    command -v go >/dev/null || die "go not found (apt-get install golang-go)"
    local ref=${RUNTIME_TOOLS_REF:-} src="$RUNTIME_TOOLS_DIR"
    if [ -z "$ref" ]; then
        local need have
        need=$(mod_minor "$RUNTIME_TOOLS_DIR/go.mod"); have=$(go_minor)
        if [ -n "$need" ] && [ "$have" -lt "$need" ]; then
            git -C "$RUNTIME_TOOLS_DIR" cat-file -e "$GO119_FALLBACK_REF^{commit}" 2>/dev/null \
                || die "checkout needs go 1.$need, have go 1.$have; set RUNTIME_TOOLS_REF"
            log "checkout needs go 1.$need but go is 1.$have: building runtime-tools $GO119_FALLBACK_REF instead"
            ref=$GO119_FALLBACK_REF
        fi
    fi
    rm -rf "$BUILD_DIR"; mkdir -p "$BUILD_DIR/tests"
    if [ -n "$ref" ]; then
        src="$BUILD_DIR/src"; mkdir -p "$src"
        git -C "$RUNTIME_TOOLS_DIR" archive "$ref" | tar -x -C "$src" || die "git archive $ref failed"
        git -C "$RUNTIME_TOOLS_DIR" rev-parse "$ref" > "$BUILD_DIR/commit"
    else
        { git -C "$src" describe --always --dirty --long --tags 2>/dev/null || echo unknown; } > "$BUILD_DIR/commit"
    fi
    export GOFLAGS=-mod=vendor GOTOOLCHAIN=local CGO_ENABLED=${CGO_ENABLED:-1}
    log "building runtimetest + validation tests from $src ($(cat "$BUILD_DIR/commit"))"
    (cd "$src" && go build -tags "netgo osusergo" -ldflags "-extldflags -static" \
        -o "$BUILD_DIR/runtimetest" ./cmd/runtimetest) || die "building runtimetest failed"
    local d n
    for d in "$src"/validation/*/; do
        n=$(basename "$d"); [ "$n" = util ] && continue
        ls "$d"*.go >/dev/null 2>&1 || continue
        (cd "$src" && go build -o "$BUILD_DIR/tests/$n.t" "./validation/$n/") \
            || { echo "build of $n failed" >&2; continue; }
    done
    cp "$src"/rootfs-*.tar.gz "$BUILD_DIR/" || die "no rootfs tarballs in $src"
}
[ -n "${SKIP_BUILD:-}" ] && [ -x "$BUILD_DIR/runtimetest" ] || build

ALL_TESTS=$(cd "$BUILD_DIR/tests" && ls *.t | sed 's/\.t$//')
TEST_LIST=${TESTS:-$ALL_TESTS}

# ---------------------------------------------------------------- helpers
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
# container ids known to the runtime (default root); `list -q`, else parse table
list_ids() {
    local out
    if out=$("$1" list -q 2>/dev/null); then printf '%s\n' "$out"
    else "$1" list 2>/dev/null | awk 'NR>1 {print $1}'; fi
}

# kill everything left in session $1 (the test's setsid), e.g. `unshare sleep`
kill_session() {
    local pids
    pids=$(ps -eo pid=,sid= | awk -v s="$1" '$2==s && $1!=s {print $1}')
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
    return 0
}

# unmount whatever a runtime left mounted below $1 (deepest first), then
# remove it without ever crossing into another filesystem
safe_rm() {
    local m
    for m in $(awk -v p="$1/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
        umount -l "$m" 2>/dev/null
    done
    rm -rf --one-file-system "$1" 2>/dev/null
    [ ! -e "$1" ]
}

# ---------------------------------------------------------------- run
WORK=$(mktemp -d /var/tmp/rt-work.XXXXXX)
trap 'safe_rm "$WORK"' EXIT
# a real file: the tests copy it with fileutils.CopyFile, which keeps symlinks as symlinks
cp "$BUILD_DIR/runtimetest" "$WORK/runtimetest"
for f in "$BUILD_DIR"/rootfs-*.tar.gz; do ln -s "$f" "$WORK/"; done

case "$(stat -f -c %T /sys/fs/cgroup)" in
    cgroup2fs) cgdesc="v2 (unified)" ;;
    tmpfs) if [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then cgdesc="hybrid (v1 + /sys/fs/cgroup/unified)"
           else cgdesc="v1 (legacy)"; fi ;;
    *) cgdesc="unknown" ;;
esac
START=$(date +%s)

for i in "${!RUNTIMES[@]}"; do
    rt=${RUNTIMES[$i]}; name=${NAMES[$i]}
    out="$OUT_DIR/$name"; rm -rf "$out"; mkdir -p "$out"
    { echo "runtime: $rt"; "$rt" --version 2>&1 | head -3; echo "runtime-tools: $(cat "$BUILD_DIR/commit")"
      echo "cgroups: $cgdesc (CGROUP_MODE=$CGROUP_MODE)"; echo "kernel: $(uname -r)"; date -u; } > "$out/info.txt"
    printf 'test\tok\tnot_ok\tskip\tplanned\tyaml_errors\texit\tseconds\tverdict\n' > "$out/summary.tsv"
    log "runtime $name ($rt)"
    for t in $TEST_LIST; do
        bin="$BUILD_DIR/tests/$t.t"
        [ -x "$bin" ] || { echo "no such test: $t" >&2; continue; }
        tmp="$WORK/tmp/$name/$t"; mkdir -p "$tmp"
        before=$(list_ids "$rt")
        t0=$(date +%s.%N)
        # setsid -w: own session (so leftovers can be found), wait for exit code
        (cd "$WORK" && RUNTIME="$rt" TMPDIR="$tmp" exec setsid -w \
            timeout -k 5 "$TEST_TIMEOUT" "$bin" ) > "$out/$t.tap" 2> "$out/$t.stderr" < /dev/null &
        spid=$!
        wait $spid; rc=$?
        kill_session "$spid"
        secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
        # clean containers this test left behind (new uuid-named ids only)
        for id in $(comm -13 <(printf '%s\n' "$before" | sort) <(list_ids "$rt" | sort) | grep -E "$UUID_RE"); do
            echo "cleanup: $rt delete --force $id" >> "$out/$t.stderr"
            timeout 20 "$rt" kill "$id" KILL >/dev/null 2>&1
            timeout 20 "$rt" delete --force "$id" >> "$out/$t.stderr" 2>&1
        done
        nm=$(awk -v p="$tmp/" 'index($5, p) == 1' /proc/self/mountinfo | wc -l)
        [ "$nm" -gt 0 ] && echo "cleanup: $nm mounts left below the bundle dir; unmounting" >> "$out/$t.stderr"
        safe_rm "$tmp" || echo "cleanup: could not remove $tmp" >> "$out/$t.stderr"
        # TAP: count top-level results only (runtimetest output nested in YAML
        # is indented). Some tests (hooks, prestart, poststart...) never emit
        # ok/not ok, only a YAML {"error": ...} block and "1..0": count those
        # YAML errors separately.
        read -r ok nok skip plan diag < <(awk '
            /^ok( |$)/ { if (tolower($0) ~ /# *skip/) s++; else o++ }
            /^not ok( |$)/ { n++ }
            /^1\.\.[0-9]+/ { split($1, a, "\\.\\."); p = a[2] }
            /^    "error": / { d++ }
            END { printf "%d %d %d %s %d\n", o, n, s, (p == "" ? "-" : p), d }' "$out/$t.tap")
        if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
            verdict=TIMEOUT; echo "TIMEOUT after ${TEST_TIMEOUT}s" >> "$out/$t.stderr"
        elif [ "$nok" -gt 0 ] || [ "$rc" != 0 ] \
             || { [ "$plan" != - ] && [ $((ok + nok + skip)) -lt "$plan" ]; } \
             || { [ $((ok + nok + skip)) = 0 ] && [ "$diag" -gt 0 ]; }; then
            verdict=FAIL
        else
            verdict=PASS
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$ok" "$nok" "$skip" "$plan" "$diag" "$rc" "$secs" "$verdict" >> "$out/summary.tsv"
        printf '  %-40s %-7s ok=%-3s not_ok=%-3s skip=%-2s plan=%-3s yaml_err=%s exit=%-3s %6ss\n' \
            "$t" "$verdict" "$ok" "$nok" "$skip" "$plan" "$diag" "$rc" "$secs" >&2
    done
done
ELAPSED=$(( $(date +%s) - START ))

# ---------------------------------------------------------------- report
# summary.tsv columns: 1 test 2 ok 3 not_ok 4 skip 5 planned 6 yaml_errors 7 exit 8 seconds 9 verdict
{
    printf '%-32s' "test"; for n in "${NAMES[@]}"; do printf ' %-24s' "$n"; done; echo
    for t in $TEST_LIST; do
        [ -x "$BUILD_DIR/tests/$t.t" ] || continue
        printf '%-32s' "$t"
        for n in "${NAMES[@]}"; do
            cell=$(awk -F'\t' -v t="$t" '$1==t {
                c = sprintf("%-4s %d/%d", ($9 == "TIMEOUT" ? "TIME" : $9), $2, $3)
                if ($4 > 0) c = c " +" $4 "s"
                f = ""
                if ($7 != 0 && $9 != "TIMEOUT") f = f "E"
                if ($5 != "-" && $2 + $3 + $4 < $5) f = f "M"
                if ($2 + $3 + $4 == 0) f = f ($6 > 0 ? "Y" : "N")
                if (f != "") c = c " " f
                print c }' "$OUT_DIR/$n/summary.tsv")
            printf ' %-24s' "${cell:--}"
        done; echo
    done
    echo
    echo "cells: verdict ok/not_ok [+N skipped] [flags]. verdict: PASS, FAIL, TIME (killed after ${TEST_TIMEOUT}s)."
    echo "flags: E test binary exited non-zero (util.Fatal: usually create failed, or a *_fail test's runtime did NOT fail),"
    echo "       M fewer results than planned, Y no ok/not ok lines but a YAML \"error\" diagnostic (counted as FAIL),"
    echo "       N no results and no error (a *_fail test whose runtime correctly refused, or a hook test that passed)"
    for n in "${NAMES[@]}"; do
        awk -F'\t' -v n="$n" 'NR>1 { o+=$2; f+=$3; s+=$4; b++; v[$9]++ }
            END { printf "%s: %d passed, %d failed, %d skipped (TAP assertions); test binaries: %d PASS, %d FAIL, %d TIMEOUT of %d\n",
                  n, o, f, s, v["PASS"], v["FAIL"], v["TIMEOUT"], b }' "$OUT_DIR/$n/summary.tsv"
    done
    echo "runtime-tools $(cat "$BUILD_DIR/commit"); cgroups: $cgdesc; tests took ${ELAPSED}s"
    echo "raw TAP + stderr: $OUT_DIR/<runtime>/<test>.tap|.stderr; per-runtime summary.tsv"
} | tee "$OUT_DIR/summary.txt"
