#!/usr/bin/env bash
# What the management plane costs the broker: CPU per delivery in compare.sh's
# fan-out and QoS 1 pairs scenarios with everything off (no HTTP listener,
# no $SYS) against everything on (the HTTP listener, Prometheus scraping
# /metrics every second, $SYS published every second). Roost only; the two
# configurations alternate, ROUNDS times each, a fresh broker per run.
# Prints the median of each and the ratio (goal: within 3 %).
#
#   bench/management-cost.sh
#
# Environment: ROUNDS (default 3), DURATION/WARMUP (compare.sh's, default
# 10/3), SCENARIOS (default "fanout p2p-max"), ROOST_BIN/BENCH_BIN
# (prebuilt binaries; otherwise compare.sh builds them).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

ROUNDS=${ROUNDS:-3}
SCENARIOS=${SCENARIOS:-"fanout p2p-max"}
export DURATION=${DURATION:-10} WARMUP=${WARMUP:-3}
release_binaries
export ROOST_BIN=$ROOST BENCH_BIN=$BENCH

TMP=$(mktemp -d)
SCRAPER=""
cleanup() {
    if [ -n "$SCRAPER" ]; then stop_pid "$SCRAPER"; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

HTTP_PORT=$(free_port)
printf '[http]\nenabled = false\n[sys]\ninterval = 0\n' >"$TMP/off.toml"
printf '[http]\nbind = "127.0.0.1:%s"\n[sys]\ninterval = 1\n' "$HTTP_PORT" >"$TMP/on.toml"

# A Prometheus-like scraper: one GET /metrics a second, all along (it fails
# harmlessly while no broker runs, between runs).
scrape() {
    while true; do
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$HTTP_PORT/metrics" || true
        sleep 1
    done
}

run_mode() {
    local mode=$1 round=$2 out="$TMP/$1-$2.md"
    if [ "$mode" = on ]; then
        scrape &
        SCRAPER=$!
    fi
    QUICK=0 REPEAT=1 BROKERS=roost SCENARIOS=$SCENARIOS ROOST_TOML="$TMP/$mode.toml" OUT="$out" \
        bash "$ROOT/bench/compare.sh" >/dev/null
    if [ -n "$SCRAPER" ]; then stop_pid "$SCRAPER"; SCRAPER=""; fi
    # The run's raw JSON directory, named in the report.
    sed -n 's/^- Raw JSON: `\(.*\)`$/\1/p' "$out" >>"$TMP/$mode.dirs"
}

for r in $(seq "$ROUNDS"); do
    # Alternate which goes first, so drift on a shared machine hits both.
    if [ $((r % 2)) = 1 ]; then order="off on"; else order="on off"; fi
    for mode in $order; do
        echo "management-cost: round $r/$ROUNDS, management $mode" >&2
        run_mode "$mode" "$r"
    done
done

python3 - "$ROOT" "$TMP/off.dirs" "$TMP/on.dirs" $SCENARIOS <<'EOF'
import json, statistics, sys
from pathlib import Path

root, off_dirs, on_dirs, scenarios = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]

def cpu_per_million(dirs_file, scenario):
    values = []
    for d in Path(dirs_file).read_text().split():
        for f in (root / d).glob(f"{scenario}.roost.*.json"):
            broker = json.loads(f.read_text()).get("broker") or {}
            v = broker.get("cpu_s_per_million_msgs")
            if v:
                values.append(v)
    return values

print("| scenario | management off (CPU-s per M deliveries) | on: HTTP + scrape 1 s + $SYS 1 s | on / off |")
print("| --- | ---: | ---: | ---: |")
for s in scenarios:
    off, on = cpu_per_million(off_dirs, s), cpu_per_million(on_dirs, s)
    if not off or not on:
        print(f"| {s} | {off} | {on} | missing runs |")
        continue
    a, b = statistics.median(off), statistics.median(on)
    print(f"| {s} | {a:.3f} ({', '.join(f'{v:.3f}' for v in off)}) | {b:.3f} ({', '.join(f'{v:.3f}' for v in on)}) | {b / a:.3f} |")
EOF
