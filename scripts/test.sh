#!/usr/bin/env bash
# The full test suite: formatting, lints, unit and root-only integration tests.
# Run as root after scripts/setup.sh (CI runs both through .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[test %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
log "cargo nextest"
# setup.sh started the shared dockerd: run the Docker comparison tests too.
BERTH_DOCKER_TESTS=1 BERTH_DOCKER_COMPARE=1 cargo nextest run --workspace --no-fail-fast "$@"
log "fuzz targets over their committed corpus (fuzz/; long runs: scripts/fuzz.sh)"
# As ordinary tests on stable, in the main target dir so the workspace's
# build is reused; cargo fuzz's instrumented build would not fit CI's budget.
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
CARGO_TARGET_DIR="$PWD/target" cargo clippy --manifest-path fuzz/Cargo.toml \
    --no-default-features --features builder,api --all-targets -- -D warnings
CARGO_TARGET_DIR="$PWD/target" cargo nextest run --manifest-path fuzz/Cargo.toml \
    --no-default-features --features builder,api
log "interop: docker, podman and containerd with berth-runtime"
BERTH_RUNTIME="$PWD/target/debug/berth-runtime" bash tests/interop/run-all.sh
