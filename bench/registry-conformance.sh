#!/usr/bin/env bash
# registry-conformance.sh — OCI distribution-spec conformance (all four workflows)
# against Berth's registry and the reference registry (distribution 2.8, Debian's
# docker-registry), each fresh on its own loopback port, same run.
#
# Usage: bench/registry-conformance.sh
# Env:   DSPEC_DIR   clone of opencontainers/distribution-spec (default /var/tmp/distribution-spec)
#        DSPEC_REV   commit to build (default aae3b8e: the last ginkgo suite before the
#                    Go 1.24 redesign; builds with Debian's Go 1.19)
#        GOMODS      dir with reggie v0.6.1, ginkgo v2.11.0, gomega v1.27.8 checkouts
#                    (default /var/tmp/gomods); other deps come from Debian golang-*-dev
#        CONFORMANCE_BIN  prebuilt suite binary (skips the build)
#        BERTH_REGISTRY   berth-registry binary (default target/debug/berth-registry)
# Output: a table of pass counts; per-registry logs and junit under $OUT (default /var/tmp/registry-conformance).
# The suite's code is never copied into this repository: it is built in DSPEC_DIR.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
DSPEC_DIR=${DSPEC_DIR:-/var/tmp/distribution-spec}
DSPEC_REV=${DSPEC_REV:-aae3b8e}
GOMODS=${GOMODS:-/var/tmp/gomods}
OUT=${OUT:-/var/tmp/registry-conformance}
BIN=${CONFORMANCE_BIN:-$OUT/conformance.test}
BERTH=${BERTH_REGISTRY:-$HERE/target/debug/berth-registry}
BERTH_ADDR=127.0.0.1:5013
REF_ADDR=127.0.0.1:5014
mkdir -p "$OUT"
log() { printf '[conformance] %s\n' "$*" >&2; }

build_suite() {
  [ -x "$BIN" ] && return
  command -v go >/dev/null || apt-get install -y golang-go >/dev/null
  # No Go module proxy here: vendor the suite's deps from Debian packages and from
  # checkouts of the three modules Debian lacks.
  apt-get install -y golang-github-google-uuid-dev golang-github-opencontainers-go-digest-dev \
    golang-github-go-resty-resty-dev golang-github-asaskevich-govalidator-dev \
    golang-github-mitchellh-mapstructure-dev golang-golang-x-net-dev golang-golang-x-sys-dev \
    golang-golang-x-text-dev golang-golang-x-tools-dev golang-gopkg-yaml.v3-dev \
    golang-github-google-go-cmp-dev golang-github-go-logr-logr-dev golang-github-google-pprof-dev >/dev/null
  local c="$DSPEC_DIR/conformance" S=/usr/share/gocode/src
  git -C "$DSPEC_DIR" checkout -q "$DSPEC_REV"
  rm -rf "$c/vendor"; mkdir -p "$c/vendor"
  local -A src=(
    [github.com/bloodorangeio/reggie]=$GOMODS/reggie [github.com/onsi/ginkgo/v2]=$GOMODS/ginkgo
    [github.com/onsi/gomega]=$GOMODS/gomega [github.com/google/uuid]=$S/github.com/google/uuid
    [github.com/opencontainers/go-digest]=$S/github.com/opencontainers/go-digest
    [github.com/asaskevich/govalidator]=$S/github.com/asaskevich/govalidator
    [github.com/go-logr/logr]=$S/github.com/go-logr/logr [github.com/go-resty/resty/v2]=$S/github.com/go-resty/resty
    [github.com/google/go-cmp]=$S/github.com/google/go-cmp [github.com/google/pprof]=$S/github.com/google/pprof
    [github.com/mitchellh/mapstructure]=$S/github.com/mitchellh/mapstructure
    [golang.org/x/net]=$S/golang.org/x/net [golang.org/x/sys]=$S/golang.org/x/sys
    [golang.org/x/text]=$S/golang.org/x/text [golang.org/x/tools]=$S/golang.org/x/tools
    [gopkg.in/yaml.v3]=$S/gopkg.in/yaml.v3 )
  for m in "${!src[@]}"; do mkdir -p "$c/vendor/$(dirname "$m")"; cp -r "${src[$m]}" "$c/vendor/$m"; done
  awk '/^require \(/{r=1;next} r&&/^\)/{r=0} r&&NF>=2{print "# "$1" "$2"\n## explicit"}' "$c/go.mod" >"$c/vendor/modules.txt"
  (cd "$c" && GOFLAGS=-mod=vendor GOPROXY=off go test -c -o "$BIN" .)
}

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_up() { for _ in $(seq 100); do curl -s -o /dev/null "http://$1/v2/" && return; sleep 0.1; done; log "$1 did not come up"; exit 1; }

start_berth() {
  rm -rf "$OUT/berth-root"
  "$BERTH" serve --addr "$BERTH_ADDR" --root "$OUT/berth-root" >"$OUT/berth.log" 2>&1 &
  PIDS+=($!); wait_up "$BERTH_ADDR"
}

start_reference() {
  rm -rf "$OUT/ref"; mkdir -p "$OUT/ref/data"
  cat >"$OUT/ref/config.yml" <<YML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $OUT/ref/data}
  delete: {enabled: true}
http: {addr: $REF_ADDR}
YML
  /usr/bin/docker-registry serve "$OUT/ref/config.yml" >"$OUT/ref.log" 2>&1 &
  PIDS+=($!); wait_up "$REF_ADDR"
}

run_suite() { # name addr
  mkdir -p "$OUT/$1"
  (cd "$OUT/$1" && OCI_ROOT_URL="http://$2" OCI_NAMESPACE=conformance/test \
    OCI_CROSSMOUNT_NAMESPACE=conformance/other OCI_AUTOMATIC_CROSSMOUNT=false \
    OCI_TEST_PULL=1 OCI_TEST_PUSH=1 OCI_TEST_CONTENT_DISCOVERY=1 OCI_TEST_CONTENT_MANAGEMENT=1 \
    OCI_REPORT_DIR="$OUT/$1" timeout 600 "$BIN" -test.v >"$OUT/$1/out.txt" 2>&1) || true
  # "Ran 75 of 79 Specs ... 75 Passed | 0 Failed | 0 Pending | 4 Skipped"
  sed 's/\x1b\[[0-9;]*m//g' "$OUT/$1/out.txt" | grep -E 'Ran [0-9]+ of [0-9]+ Specs|Passed \|' | tr '\n' ' '
}

build_suite
[ -x "$BERTH" ] || (cd "$HERE" && cargo build -p berth-registry)
start_berth
start_reference
b=$(run_suite berth "$BERTH_ADDR")
r=$(run_suite reference "$REF_ADDR")
printf '%-34s %s\n' "registry" "result" "berth ($BERTH_ADDR)" "$b" "distribution 2.8 ($REF_ADDR)" "$r"
sed 's/\x1b\[[0-9;]*m//g' "$OUT/reference/out.txt" | grep '\[FAIL\]' | sed 's/^/  reference /' || true
sed 's/\x1b\[[0-9;]*m//g' "$OUT/berth/out.txt" | grep '\[FAIL\]' | sed 's/^/  berth /' || true
