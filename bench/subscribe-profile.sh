#!/usr/bin/env bash
# Broker CPU of the subscribe phase alone (docs/performance.md §5, "Subscribe"):
# starts one broker pinned to CPU 1, runs `roost-bench sub` pinned to CPU 0, and
# attaches `perf stat` (task-clock, ns resolution) or `perf record -g` to the
# broker with counting enabled only between "clients connected" and
# "subscriptions granted" on the load generator's stderr.
#
#   bench/subscribe-profile.sh roost|mosquitto OUT [extra roost flags]
#
# Environment:
#   MODE       stat (default) or record
#   FREQ       perf record frequency (default 20000)
#   CONNS      subscribers (default 10000)
#   BENCH_ARGS extra roost-bench flags (e.g. "-C false -x 3600")
#   ROOST_BIN, BENCH_BIN  prebuilt binaries (both set: no build)
# Extra roost flags default to `--store memory`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
release_binaries

kind=$1 out=$2
shift 2
[ $# -gt 0 ] || set -- --store memory
MODE=${MODE:-stat}
TMP=$(mktemp -d)
BROKER_PID="" PERF_PID=""
cleanup() {
    [ -z "$PERF_PID" ] || stop_pid "$PERF_PID"
    [ -z "$BROKER_PID" ] || stop_pid "$BROKER_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT

port=$(free_port)
case $kind in
    roost)
        ROOST_MQTT__MAX_QUEUED_MESSAGES=1000000 ROOST_MQTT__MAX_INFLIGHT=1024 \
            taskset -c 1 "$ROOST" -p "$port" "$@" 2>"$TMP/broker.log" &
        ;;
    mosquitto)
        printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\nmax_inflight_messages 1024\nset_tcp_nodelay true\n' \
            "$port" >"$TMP/mosquitto.conf"
        taskset -c 1 mosquitto -c "$TMP/mosquitto.conf" 2>"$TMP/broker.log" &
        ;;
    *) echo "unknown broker $kind" >&2; exit 2 ;;
esac
BROKER_PID=$!
wait_listening "$BROKER_PID" "$port" "$kind" "$TMP/broker.log" 10

mkfifo "$TMP/ctl" "$TMP/ack"
if [ "$MODE" = record ]; then
    perf record -F "${FREQ:-20000}" -g -D -1 --control "fifo:$TMP/ctl,$TMP/ack" \
        -p "$BROKER_PID" -o "$out" 2>"$TMP/perf.log" &
else
    perf stat -D -1 --control "fifo:$TMP/ctl,$TMP/ack" -e task-clock \
        -p "$BROKER_PID" -o "$out" 2>"$TMP/perf.log" &
fi
PERF_PID=$!
exec 3>"$TMP/ctl" 4<"$TMP/ack"
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
taskset -c 0 "$BENCH" sub -c "${CONNS:-10000}" -i 0 -t 'bench/%i' -q 1 --duration 1 ${BENCH_ARGS:-} \
    -p "$port" --broker-pid "$BROKER_PID" --json 2>&1 >"$TMP/bench.json" |
    while IFS= read -r line; do
        case $line in
            *"clients connected"*) echo enable >&3; read -r _ <&4 ;;
            *"subscriptions granted"*) echo disable >&3; read -r _ <&4 ;;
        esac
        echo "$line" >&2
    done
kill -INT "$PERF_PID"; wait "$PERF_PID" || true; PERF_PID=""
[ "$MODE" = record ] || grep -E 'task-clock' "$out"
