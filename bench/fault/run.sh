#!/usr/bin/env bash
# Fault suite bench run (issue #13): kill -9 of berthd, a shim or the
# runtime at random instants of pull, push, build, run, exec, rm, volume
# create and network create, until BERTH_FAULT_POINTS kills landed
# (default 225). Needs root and the fixture registry on 127.0.0.1:5000.
# BERTH_FAULT_SEED replays a run's draws. The report (kill points by
# operation x victim, failures with the seed) is printed and appended to
# target/fault-report.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
export BERTH_FAULT_POINTS="${BERTH_FAULT_POINTS:-225}"
export BERTH_FAULT_REPORT="${BERTH_FAULT_REPORT:-$PWD/target/fault-report.txt}"
{ date -u +"%F %T UTC"; git rev-parse --short HEAD; } >> "$BERTH_FAULT_REPORT"
cargo build -p berth-api -p berth-shim -p berth-runtime -p berth-network -p berth-cli
exec cargo nextest run -p berth-cli --test fault --run-ignored only fault_bench --no-capture
