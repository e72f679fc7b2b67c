#!/usr/bin/env bash
# Runs Berth's cargo-fuzz targets (fuzz/) one at a time, SECONDS each
# (default 300), starting from the committed seeds in fuzz/corpus/<target>/.
# New inputs go to fuzz/runs/<target>/ and crashes to fuzz/artifacts/<target>/
# (both ignored by git); each run's log to fuzz/logs/<target>.log.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# CI does not run this (the instrumented build alone takes longer than the
# fuzz step's budget); scripts/test.sh runs every target over its committed
# corpus as ordinary tests instead.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-300}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(dockerfile reference image_json tar_unpack api_request dns)
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# cargo fuzz passes nightly -Z flags; the machine's toolchain is stable.
export RUSTC_BOOTSTRAP=1
cargo fuzz build
mkdir -p logs
failed=()
for t in "${targets[@]}"; do
    mkdir -p "runs/$t"
    echo "== $t: ${secs}s from $(ls "corpus/$t" | wc -l) seeds" >&2
    # -timeout: an input that takes 10 s is a finding (a hang), not slowness.
    cargo fuzz run "$t" "runs/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"logs/$t.log" 2>&1 || { failed+=("$t"); tail -30 "logs/$t.log" >&2; }
    grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)" "logs/$t.log" >&2 || true
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "crashed: ${failed[*]} (inputs in fuzz/artifacts/, logs in fuzz/logs/)" >&2
    exit 1
fi
