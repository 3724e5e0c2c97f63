#!/usr/bin/env bash
# QoS 1 point-to-point throughput with persistent sessions, per store backend:
# memory, disk (durability async), disk (durability sync), redis (async).
# Every publisher and subscriber connects with Clean Start false and a Session
# Expiry Interval, so each message is written to the store (enqueued for the
# subscriber's session, then removed on its PUBACK). A fresh broker process
# (and a fresh data directory / redis-server) for every run, modes alternated
# within each repetition, medians over REPEAT runs. Method: docs/performance.md,
# "Storage backends".
#
#   bench/storage.sh                  REPEAT=3, 15 s windows after 3 s warm-up
#   QUICK=1 bench/storage.sh          REPEAT=1, 3 s windows (smoke check)
#
# Environment:
#   REPEAT, DURATION, WARMUP   runs per mode; measured and warm-up seconds
#   PAIRS      publisher/subscriber pairs (default 100)
#   MODES      subset of: memory disk-async disk-sync redis
#   PIN        1 (default) = broker on CPU 1, load generator on CPU 0; 0 = none
#   SYSCALLS   1 = also count the broker's fsync/fdatasync calls during the
#              measured window (perf stat on syscall tracepoints; needs perf)
#   NAME       results name (default storage): bench/results/<date>-NAME.md and
#              the raw JSON in bench/results/<date>-NAME/
#   OUT        summary file (default bench/results/<date>-NAME.md)
#   ROOST_BIN, BENCH_BIN  prebuilt binaries (both set: no build)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    REPEAT=${REPEAT:-1}; DURATION=${DURATION:-3}; WARMUP=${WARMUP:-1}
    SUFFIX=${NAME:-storage-quick}
else
    REPEAT=${REPEAT:-3}; DURATION=${DURATION:-15}; WARMUP=${WARMUP:-3}
    SUFFIX=${NAME:-storage}
fi
PAIRS=${PAIRS:-100}
MODES=${MODES:-"memory disk-async disk-sync redis"}
PIN=${PIN:-1}
SYSCALLS=${SYSCALLS:-0}
STAMP=$(date -u +%Y-%m-%d)
OUT=${OUT:-bench/results/$STAMP-$SUFFIX.md}
RUN_DIR="$ROOT/bench/results/$STAMP-$SUFFIX"

log() { echo "storage: $*" >&2; }

# ---------------------------------------------------------------- build
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
release_binaries
command -v redis-server >/dev/null || { log "redis-server is not installed (scripts/install-test-deps.sh)"; exit 1; }

if [ "$SYSCALLS" = 1 ] && [ "$DURATION" -le 2 ]; then
    log "SYSCALLS=1 counts over DURATION - 2 s: use DURATION > 2"; exit 1
fi

BROKER_PIN=()
BENCH_PIN=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    BROKER_PIN=(taskset -c 1)
    BENCH_PIN=(taskset -c 0)
fi

mkdir -p "$RUN_DIR" "$(dirname "$OUT")"
# The data directories live on the same file system as the repository (not a
# tmpfs /tmp, where fsync costs nothing).
TMP=$(mktemp -d "$TARGET_DIR/bench-storage.XXXXXX")
BROKER_PID=""
REDIS_PID=""
cleanup() {
    [ -n "$BROKER_PID" ] && stop_pid "$BROKER_PID"
    [ -n "$REDIS_PID" ] && stop_pid "$REDIS_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM



# Redis with its append-only file fsynced every second (its usual durable
# setting), in a directory of its own.
start_redis() {
    local port
    port=$(free_port)
    mkdir -p "$TMP/redis-$port"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$TMP/redis-$port" \
        --save "" --appendonly yes --appendfsync everysec \
        >"$TMP/redis-$port.log" 2>&1 &
    REDIS_PID=$!
    REDIS_PORT=$port
    wait_listening "$REDIS_PID" "$port" redis-server "$TMP/redis-$port.log"
}

# Same queue and inflight limits as bench/compare.sh.
start_broker() {
    local mode=$1 port logf store_args
    port=$(free_port)
    logf="$TMP/roost-$mode-$port.log"
    case $mode in
        memory)     store_args=(--store memory) ;;
        disk-async) store_args=(--store disk --data-dir "$TMP/data-$port" --durability async) ;;
        disk-sync)  store_args=(--store disk --data-dir "$TMP/data-$port" --durability sync) ;;
        redis)      start_redis || return 1
                    store_args=(--store redis --redis-url "redis://127.0.0.1:$REDIS_PORT" --durability async) ;;
        *) log "unknown mode $mode"; return 1 ;;
    esac
    ROOST_MQTT__MAX_QUEUED_MESSAGES=1000000 ROOST_MQTT__MAX_INFLIGHT=1024 \
        "${BROKER_PIN[@]}" "$ROOST" -p "$port" "${store_args[@]}" 2>"$logf" &
    BROKER_PID=$!
    BROKER_PORT=$port
    wait_listening "$BROKER_PID" "$port" roost "$logf"
}

stop_all() {
    if [ -n "$BROKER_PID" ]; then stop_pid "$BROKER_PID"; BROKER_PID=""; fi
    if [ -n "$REDIS_PID" ]; then stop_pid "$REDIS_PID"; REDIS_PID=""; fi
}

BENCH_ARGS=(pubsub --pubs "$PAIRS" --subs "$PAIRS" --topic-mode pairs -q 1 -s 256
    --clean false --session-expiry 3600 --duration "$DURATION" --warmup "$WARMUP" -i 0)

run_one() {
    local mode=$1 r=$2 out perf_pid=""
    out="$RUN_DIR/$mode.$r.json"
    start_broker "$mode" || return 1
    log "$mode (run $r/$REPEAT): roost-bench ${BENCH_ARGS[*]}"
    if [ "$SYSCALLS" = 1 ]; then
        # Count the broker's fsyncs over the measured window only (the bench
        # connects clients for a moment first; 2 s margin, then WARMUP).
        ( sleep $((WARMUP + 2)); exec perf stat -x, -p "$BROKER_PID" \
            -e 'syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync' \
            -o "$RUN_DIR/$mode.$r.syscalls.csv" -- sleep "$((DURATION - 2))" ) &
        perf_pid=$!
    fi
    if ! "${BENCH_PIN[@]}" "$BENCH" "${BENCH_ARGS[@]}" -p "$BROKER_PORT" --broker-pid "$BROKER_PID" \
        --json >"$out" 2>"$TMP/bench.log"; then
        log "roost-bench failed for $mode:"; tail -20 "$TMP/bench.log" >&2
        rm -f "$out"
    fi
    [ -n "$perf_pid" ] && wait "$perf_pid" 2>/dev/null || true
    stop_all
}

for r in $(seq "$REPEAT"); do
    # Rotate the order so drift on a shared machine hits every mode.
    read -r -a order <<<"$MODES"
    shift_by=$(( (r - 1) % ${#order[@]} ))
    order=("${order[@]:$shift_by}" "${order[@]:0:$shift_by}")
    for mode in "${order[@]}"; do
        run_one "$mode" "$r" || log "skipped $mode (run $r)"
    done
done

# ---------------------------------------------------------------- report
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "${ROOST_BIN:-}" ] && [ -n "${BENCH_BIN:-}" ]; then
    COMMIT="prebuilt binaries $ROOST_BIN, $BENCH_BIN (HEAD is $COMMIT)"
elif [ -n "$(git status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    COMMIT="$COMMIT (built from a working tree with uncommitted changes)"
fi
{
    echo "# Storage backends, $STAMP $( [ "$QUICK" = 1 ] && echo '(quick mode)')"
    echo
    echo "- Commit: $COMMIT; $(redis-server --version | awk '{print $1, $2, $3}')"
    echo "- Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), kernel $(uname -r), data on $(df -T "$TARGET_DIR" | awk 'NR==2 {print $2}')"
    echo "- Medians of $REPEAT run(s); ${DURATION} s windows after ${WARMUP} s warm-up; pinning: $( [ ${#BROKER_PIN[@]} -gt 0 ] && echo 'broker on CPU 1, load generator on CPU 0, redis-server not pinned' || echo none)"
    echo "- Load: \`roost-bench ${BENCH_ARGS[*]} -p PORT --broker-pid PID --json\`"
    echo "- Broker: \`ROOST_MQTT__MAX_QUEUED_MESSAGES=1000000 ROOST_MQTT__MAX_INFLIGHT=1024 roost -p PORT --store memory | --store disk --data-dir DIR --durability async|sync | --store redis --redis-url URL --durability async\`"
    echo "- Raw JSON: \`${RUN_DIR#"$ROOT"/}\`"
    echo
    SYSCALL_WINDOW=$((DURATION - 2)) python3 - "$RUN_DIR" $MODES <<'EOF'
import json, os, statistics, sys
from pathlib import Path

run_dir, modes = Path(sys.argv[1]), sys.argv[2:]

def get(doc, path):
    for key in path.split("."):
        if not isinstance(doc, dict) or doc.get(key) is None:
            return None
        doc = doc[key]
    return doc

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

def syscalls(mode):
    """fsync + fdatasync calls per run, from perf stat's CSV."""
    counts = []
    for f in sorted(run_dir.glob(f"{mode}.*.syscalls.csv")):
        total = 0
        for line in f.read_text().splitlines():
            parts = line.split(",")
            if len(parts) > 2 and parts[2].startswith("syscalls:") and parts[0].isdigit():
                total += int(parts[0])
        counts.append(total)
    return counts

rows = {}
for mode in modes:
    docs = [json.loads(p.read_text()) for p in sorted(run_dir.glob(f"{mode}.[0-9]*.json"))]
    rows[mode] = {
        "runs": [get(d, "receive.rate_per_s") for d in docs],
        "rate": median([get(d, "receive.rate_per_s") for d in docs]),
        "p50": median([get(d, "receive.latency_us.p50_us") for d in docs]),
        "p99": median([get(d, "receive.latency_us.p99_us") for d in docs]),
        "lost": median([get(d, "receive.lost") for d in docs]),
        "cpu": median([get(d, "broker.cpu_s_per_million_msgs") for d in docs]),
        "fsyncs": syscalls(mode),
    }
memory = rows.get("memory", {}).get("rate")
fmt = lambda v, scale=1: "–" if v is None else f"{v * scale:,.0f}" if v * scale >= 100 else f"{v * scale:.3g}"
print("| store | delivered msg/s (median) | runs | vs memory | latency p50 (ms) | p99 (ms) | lost | broker CPU-s per million |")
print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
for mode, r in rows.items():
    ratio = f"{r['rate'] / memory:.2f}" if memory and r["rate"] else "–"
    runs = " / ".join(fmt(v) for v in r["runs"])
    print(f"| {mode} | {fmt(r['rate'])} | {runs} | {ratio} | {fmt(r['p50'], 1e-3)} | {fmt(r['p99'], 1e-3)} | {fmt(r['lost'])} | {fmt(r['cpu'])} |")
if any(r["fsyncs"] for r in rows.values()):
    print()
    window = float(os.environ["SYSCALL_WINDOW"])
    print(f"fsync + fdatasync calls by the broker per second ({window:g} s inside the measured window, perf stat), per run:")
    print()
    for mode, r in rows.items():
        if r["fsyncs"]:
            print(f"- {mode}: {', '.join(f'{n / window:,.0f}/s' for n in r['fsyncs'])}")
EOF
} >"$OUT"
cat "$OUT"
log "written to $OUT"
