#!/usr/bin/env bash
# Installs Berth's build and test dependencies (apt) and builds the test
# fixture images. Idempotent; needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[setup %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
[ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }

PKGS=(
  build-essential pkg-config jq tar curl util-linux iproute2 procps
  busybox-static umoci skopeo                 # fixtures
  runc crun                                   # peer runtimes (interop, benchmarks)
  libseccomp-dev                              # seccomp in berth-runtime
  docker-registry                             # reference registry fixture
  nftables iptables                           # Berth's packet rules (crates/network firewall)
  wget                                        # network tests fetch published ports from the host
  tini                                        # --init: static /usr/bin/tini-static bind-mounted as /sbin/docker-init
)
# Peers for the interop tests (docker, podman, containerd).
while read -r p; do
  [ -n "$p" ] && PKGS+=("$p")
done < tests/interop/packages.txt
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { log "cargo not found (install Rust stable with rustup)"; exit 1; }
if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest >/dev/null
fi

# The shared fixtures live beside the checkout (../shared) on our machines.
SHARED=""
for cand in "${BERTH_SHARED:-}" ../shared ../../shared /work/shared; do
  if [ -n "$cand" ] && [ -f "$cand/fixtures/make-images.sh" ]; then SHARED=$cand; break; fi
done
[ -f "$SHARED/fixtures/make-images.sh" ] || { log "shared fixtures not found (set BERTH_SHARED)"; exit 1; }
log "fixtures from $SHARED/fixtures"
# make-images.sh finds its Debian mirror by grepping /etc/apt/sources.list
# under pipefail, which fails on machines that only have deb822
# sources.list.d/*.sources files: hand it the mirror ourselves.
if [ -z "${MIRROR:-}" ]; then
  MIRROR=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}' | grep -v -- '-security' | head -n1 || true)
  [ -n "$MIRROR" ] || MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '/^deb / {print $2}' | grep -v -- '-security' | head -n1 || true)
  [ -n "$MIRROR" ] || { log "no Debian mirror in apt's sources (set MIRROR)"; exit 1; }
  export MIRROR
fi
# registry.sh pushes all three images and stops if one is missing.
ONLY="${BERTH_FIXTURE_IMAGES:-busybox debian multilayer}" bash "$SHARED/fixtures/make-images.sh" >/dev/null
bash "$SHARED/fixtures/registry.sh" start >/dev/null
# A dockerd (no bridge, busybox loaded) for the tests that compare with or
# talk through Docker (registry push/pull, builder comparison).
bash "$SHARED/fixtures/dockerd.sh" start >/dev/null
log "setup done"
