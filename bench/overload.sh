#!/usr/bin/env bash
# Overload sweep (issue 21): offered load from 0.5x to 10x of the measured
# peak, plus unpaced publishers, for fan-in 16 -> 1, fan-out 1 -> 100 and 100
# QoS 1 pairs; Roost (with and without back-pressure) and Mosquitto side by
# side in the same run, a fresh broker per run, brokers alternated. Writes a
# CSV (offered/s, delivered/s, lost, p50) and an SVG of delivered/s against
# offered/s per scenario (bench/overload_plot.py). Method: docs/performance.md,
# "Overload".
#
#   bench/overload.sh                       full sweep (5 s windows)
#   SCENARIOS=fanin MULTS="1 10" bench/overload.sh
#
# Environment:
#   SCENARIOS  subset of: fanin fanin-q1 fanout pairs (default: fanin fanout pairs)
#   MULTS      offered load as multiples of the peak; "max" = unpaced publishers
#              (no rate, no backlog bound): default "0.5 1 2 3 5 10 max"
#   BROKERS    subset of: roost roost-nobp mosquitto (roost-nobp: Roost with
#              back-pressure off, `limits.publisher_wait_ms = 0`)
#   PEAK_<SCENARIO>  the 1x load in deliveries/s (e.g. PEAK_FANIN=700000);
#              default: measured first, the higher of Roost's and Mosquitto's
#              delivered/s at maximum rate with a bounded backlog (the load
#              generator's `--rate 0`, 10,000 deliveries outstanding)
#   DURATION, WARMUP  measured seconds per run, and seconds before them (after
#              the window the run waits up to 20 s for what is still in
#              flight: with back-pressure the publishers' socket buffers hold
#              seconds of messages; what has not arrived by then counts as lost)
#   PIN        1 (default): broker on CPU 1, load generator on CPU 0
#   NICE       N: run broker and load generator at this nice value, and this
#              script's scheduler autogroup too (with autogroups, nice only
#              ranks processes within their session): e.g. -10 on a machine
#              busy with other sessions' builds; both brokers alike
#   OUT        output prefix (default bench/results/<date>-overload): .csv, .svg
#   ROOST_BIN, BENCH_BIN  prebuilt binaries (both set: no build)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

SCENARIOS=${SCENARIOS:-"fanin fanout pairs"}
MULTS=${MULTS:-"0.5 1 2 3 5 10 max"}
BROKERS=${BROKERS:-"roost roost-nobp mosquitto"}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-2}
PIN=${PIN:-1}
OUT=${OUT:-bench/results/$(date -u +%Y-%m-%d)-overload}

log() { echo "overload: $*" >&2; }

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
release_binaries

if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
    log "installing Debian mosquitto"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y mosquitto
fi
MOSQUITTO=$(command -v mosquitto 2>/dev/null || echo /usr/sbin/mosquitto)

BROKER_PIN=()
BENCH_PIN=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    BROKER_PIN=(taskset -c 1)
    BENCH_PIN=(taskset -c 0)
fi
if [ -n "${NICE:-}" ]; then
    if [ -w /proc/$$/autogroup ]; then
        AUTOGROUP_NICE=$(awk '{print $3}' /proc/$$/autogroup)
        echo "$NICE" >/proc/$$/autogroup || AUTOGROUP_NICE=""
    fi
    BROKER_PIN=(nice -n "$NICE" "${BROKER_PIN[@]}")
    BENCH_PIN=(nice -n "$NICE" "${BENCH_PIN[@]}")
fi

RUN_DIR="$ROOT/target/bench-overload/$(date -u +%Y%m%dT%H%M%S)"
mkdir -p "$RUN_DIR" "$(dirname "$OUT")"
TMP=$(mktemp -d)
BROKER_PID=""
cleanup() {
    if [ -n "$BROKER_PID" ]; then stop_pid "$BROKER_PID"; fi
    # The autogroup is the whole session's: give its nice value back.
    if [ -n "${AUTOGROUP_NICE:-}" ]; then echo "$AUTOGROUP_NICE" >/proc/$$/autogroup || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Settings as in bench/compare.sh: memory store, queues that do not drop in
# the 1x scenarios, 1,024 in flight, Nagle off.
start_broker() {
    local kind=$1 port log
    port=$(free_port)
    log="$TMP/$kind-$port.log"
    case $kind in
        roost | roost-nobp)
            local wait=100
            [ "$kind" = roost-nobp ] && wait=0
            ROOST_MQTT__MAX_QUEUED_MESSAGES=1000000 ROOST_MQTT__MAX_INFLIGHT=1024 \
                ROOST_LIMITS__PUBLISHER_WAIT_MS=$wait \
                "${BROKER_PIN[@]}" "$ROOST" -p "$port" --store memory 2>"$log" &
            ;;
        mosquitto)
            cat >"$TMP/mosquitto-$port.conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 1000000
max_inflight_messages 1024
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
EOF
            "${BROKER_PIN[@]}" "$MOSQUITTO" -c "$TMP/mosquitto-$port.conf" 2>"$log" &
            ;;
        *) log "unknown broker $kind"; return 1 ;;
    esac
    BROKER_PID=$!
    BROKER_PORT=$port
    wait_listening "$BROKER_PID" "$port" "$kind" "$log" 10 || { BROKER_PID=""; return 1; }
}

stop_broker() {
    if [ -n "$BROKER_PID" ]; then stop_pid "$BROKER_PID"; BROKER_PID=""; fi
}

# scenario_args SCENARIO: the pubsub flags (without rate).
scenario_args() {
    case $1 in
        fanin) echo --pubs 16 --subs 1 --topic-mode shared -q 0 -s 16 ;;
        fanin-q1) echo --pubs 16 --subs 1 --topic-mode shared -q 1 -s 16 ;;
        fanout) echo --pubs 1 --subs 100 --topic-mode fanout -q 0 -s 16 ;;
        # -F 1024 (the broker's Receive Maximum): with the default 64 in
        # flight a QoS 1 publisher waits for its PUBACKs and cannot offer
        # more than the broker routes.
        pairs) echo --pubs 100 --subs 100 --topic-mode pairs -q 1 -s 256 -F 1024 ;;
        *) log "unknown scenario $1"; return 1 ;;
    esac
}

# fan_of SCENARIO: deliveries per published message.
fan_of() {
    case $1 in
        fanout) echo 100 ;;
        *) echo 1 ;;
    esac
}

# run_one SCENARIO BROKER LABEL RATE_FLAGS...: one run, JSON to RUN_DIR.
run_one() {
    local scenario=$1 broker=$2 label=$3 args out
    shift 3
    read -r -a args <<<"$(scenario_args "$scenario")"
    out="$RUN_DIR/$scenario.$broker.$label.json"
    start_broker "$broker" || return 1
    log "$scenario on $broker ($label): roost-bench pubsub ${args[*]} $*"
    if ! "${BENCH_PIN[@]}" "$BENCH" pubsub "${args[@]}" "$@" --duration "$DURATION" --warmup "$WARMUP" -i 0 \
        --drain-timeout 20 -p "$BROKER_PORT" --broker-pid "$BROKER_PID" --json --quiet >"$out" 2>"$TMP/bench.log"; then
        log "roost-bench failed for $scenario on $broker ($label):"; tail -5 "$TMP/bench.log" >&2
        rm -f "$out"
    fi
    stop_broker
}

delivered_rate() {
    python3 -c 'import json, sys
try: print(int(json.load(open(sys.argv[1]))["receive"]["rate_per_s"]))
except Exception: print(0)' "$1"
}

order_for() {
    # Alternate which broker goes first from one load step to the next.
    if [ $(($1 % 2)) = 0 ]; then echo "$BROKERS"; else echo "$BROKERS" | awk '{for (i = NF; i > 0; i--) printf "%s ", $i}'; fi
}

for scenario in $SCENARIOS; do
    scenario_args "$scenario" >/dev/null
    var="PEAK_$(echo "$scenario" | tr 'a-z-' 'A-Z_')"
    peak=${!var:-}
    if [ -z "$peak" ]; then
        peak=0
        for broker in $BROKERS; do
            [ "$broker" = roost-nobp ] && continue
            run_one "$scenario" "$broker" peak --rate 0 || continue
            rate=$(delivered_rate "$RUN_DIR/$scenario.$broker.peak.json")
            [ "$rate" -gt "$peak" ] && peak=$rate
        done
    fi
    if [ "$peak" -le 0 ]; then log "no peak for $scenario; skipped"; continue; fi
    echo "$peak" >"$RUN_DIR/$scenario.peak"
    log "$scenario: 1x = $peak deliveries/s"
    step=0
    for mult in $MULTS; do
        step=$((step + 1))
        for broker in $(order_for "$step"); do
            if [ "$mult" = max ]; then
                run_one "$scenario" "$broker" "x$mult" --rate 0 --max-backlog 0 || true
            else
                # --rate is published messages/s; the fan-out multiplies them.
                rate=$(python3 -c "print(max(1, round($mult * $peak / $(fan_of "$scenario"))))")
                run_one "$scenario" "$broker" "x$mult" --rate "$rate" || true
            fi
        done
    done
done

python3 "$ROOT/bench/overload_plot.py" "$RUN_DIR" "$OUT.csv" "$OUT.svg"
log "written $OUT.csv and $OUT.svg (raw JSON: ${RUN_DIR#"$ROOT"/})"
