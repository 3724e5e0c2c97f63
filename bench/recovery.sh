#!/usr/bin/env bash
# Start-up recovery time of a broker holding SESSIONS x PER_SESSION queued
# messages (default 1,000 x 1,000 = 1,000,000) for offline persistent sessions.
#
# The data set is built through the broker itself: SESSIONS persistent
# subscribers (Clean Start false, Session Expiry 1 day) subscribe to
# recovery/<i> at QoS 1 and go away, then SESSIONS publishers send
# SESSIONS x PER_SESSION QoS 1 messages of SIZE bytes to those topics; the
# broker is stopped with SIGTERM (a clean shutdown; STOP=kill: SIGKILL). Then, REPEAT times, a
# fresh broker process is started on that store and timed from exec to the
# first CONNACK; its RSS is read at that moment. Method: docs/performance.md,
# "Storage backends".
#
#   bench/recovery.sh                      disk store
#   STORE=redis bench/recovery.sh          redis store (a private redis-server)
#   STOP=kill bench/recovery.sh            the filling broker and every timed one
#                                          end with SIGKILL: recovery replays the
#                                          journal (a crash) instead of a checkpoint
#
# Environment: SESSIONS, PER_SESSION, SIZE, REPEAT, STORE (disk|redis),
# OUT (default bench/results/<date>-recovery-<store>.md), ROOST_BIN and BENCH_BIN
# (prebuilt binaries; both set: no build).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

SESSIONS=${SESSIONS:-1000}
PER_SESSION=${PER_SESSION:-1000}
SIZE=${SIZE:-100}
REPEAT=${REPEAT:-3}
STORE=${STORE:-disk}
STOP=${STOP:-term}
case $STOP in
    term) SIGNAL=TERM; CRASH="" ;;
    kill) SIGNAL=KILL; CRASH=-crash ;;
    *) echo "STOP must be term or kill" >&2; exit 1 ;;
esac
TOTAL=$((SESSIONS * PER_SESSION))
OUT=${OUT:-bench/results/$(date -u +%Y-%m-%d)-recovery-$STORE$CRASH.md}

log() { echo "recovery: $*" >&2; }

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
release_binaries

# On the repository's file system, not a tmpfs /tmp.
TMP=$(mktemp -d "$TARGET_DIR/bench-recovery.XXXXXX")
BROKER_PID=""
REDIS_PID=""
cleanup() {
    [ -n "$BROKER_PID" ] && stop_pid "$BROKER_PID"
    [ -n "$REDIS_PID" ] && stop_pid "$REDIS_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


case $STORE in
    disk)
        STORE_ARGS=(--store disk --data-dir "$TMP/data")
        ;;
    redis)
        command -v redis-server >/dev/null || { log "redis-server is not installed"; exit 1; }
        REDIS_PORT=$(free_port)
        mkdir -p "$TMP/redis"
        redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$TMP/redis" \
            --save "" --appendonly no >"$TMP/redis.log" 2>&1 &
        REDIS_PID=$!
        wait_listening "$REDIS_PID" "$REDIS_PORT" redis-server "$TMP/redis.log"
        STORE_ARGS=(--store redis --redis-url "redis://127.0.0.1:$REDIS_PORT")
        ;;
    *) log "STORE must be disk or redis"; exit 1 ;;
esac
# Room for every message in every session's queue (the default limit is 10,000).
export ROOST_MQTT__MAX_QUEUED_MESSAGES=$((PER_SESSION * 2))

# ---------------------------------------------------------------- data set
PORT=$(free_port)
"$ROOST" -p "$PORT" "${STORE_ARGS[@]}" 2>"$TMP/fill.log" &
BROKER_PID=$!
wait_listening "$BROKER_PID" "$PORT" roost "$TMP/fill.log"
log "creating $SESSIONS persistent sessions"
"$BENCH" sub -p "$PORT" -c "$SESSIONS" -i 0 --prefix rec-sub -t 'recovery/%i' -q 1 \
    --clean false -x 86400 --duration 1 >/dev/null 2>"$TMP/sub.log"
log "publishing $TOTAL QoS 1 messages of $SIZE B"
started=$(date +%s.%N)
"$BENCH" pub -p "$PORT" -c "$SESSIONS" -i 0 --prefix rec-pub -t 'recovery/%i' -q 1 \
    -s "$SIZE" -I 0 -F 64 -L "$TOTAL" >/dev/null 2>"$TMP/pub.log"
fill_s=$(printf "%.1f" "$(echo "$(date +%s.%N) - $started" | bc)")
log "published in ${fill_s} s; stopping the broker (SIG$SIGNAL)"
kill -s "$SIGNAL" "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null || true
BROKER_PID=""
if [ "$STORE" = disk ]; then
    STORE_SIZE="$(du -sh "$TMP/data" | cut -f1) on disk"
else
    STORE_SIZE="$(redis-cli -p "$REDIS_PORT" info memory | awk -F: '/^used_memory_human/ {print $2}' | tr -d '\r') used by redis, $(redis-cli -p "$REDIS_PORT" dbsize | tr -d '\r') keys"
fi

# ---------------------------------------------------------------- recovery
# Timed from just before exec to the first CONNACK (an MQTT 3.1.1 CONNECT
# with Clean Session); also when the "restored from the store" line came.
probe() {
    SIGNAL=$SIGNAL python3 - "$ROOST" "$(free_port)" "${STORE_ARGS[@]}" <<'EOF'
import os, signal, socket, subprocess, sys, threading, time

roost, port, store_args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
env = dict(os.environ, RUST_LOG="info", NO_COLOR="1")
t0 = time.monotonic()
proc = subprocess.Popen([roost, "-p", str(port), *store_args], env=env,
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
restored = {}
def read_log():
    for raw in proc.stderr:
        line = raw.decode(errors="replace")
        if "restored from the store" in line and not restored:
            restored["t"] = time.monotonic() - t0
            restored["line"] = line.strip()
threading.Thread(target=read_log, daemon=True).start()

CONNECT = bytes([0x10, 18, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 6]) + b"probe0"
deadline = t0 + 600
ready = None
while time.monotonic() < deadline and proc.poll() is None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(CONNECT)
            ack = s.recv(4)
            if len(ack) == 4 and ack[0] == 0x20 and ack[3] == 0:
                ready = time.monotonic() - t0
                break
    except OSError:
        time.sleep(0.002)
def status(key):
    with open(f"/proc/{proc.pid}/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
rss, hwm = (status("VmRSS:"), status("VmHWM:")) if ready is not None else (None, None)
proc.send_signal(getattr(signal, "SIG" + os.environ["SIGNAL"]))
proc.wait(timeout=120)
if ready is None:
    sys.exit("the broker did not answer CONNECT")
print(f"{ready:.3f} {restored.get('t', float('nan')):.3f} {rss} {hwm} {restored.get('line', '')}")
EOF
}

RESULTS=()
for r in $(seq "$REPEAT"); do
    line=$(probe)
    log "run $r: $line"
    RESULTS+=("$line")
done

{
    echo "# Recovery of $TOTAL queued messages, $STORE store, broker stopped with SIG$SIGNAL, $(date -u +%Y-%m-%d)"
    echo
    if [ -n "${ROOST_BIN:-}" ] && [ -n "${BENCH_BIN:-}" ]; then
        echo "- Commit: prebuilt binaries $ROOST_BIN, $BENCH_BIN (HEAD is $(git rev-parse --short HEAD))"
    elif [ -n "$(git status --porcelain -- crates Cargo.toml Cargo.lock)" ]; then
        echo "- Commit: $(git rev-parse --short HEAD) (built from a working tree with uncommitted changes)"
    else
        echo "- Commit: $(git rev-parse --short HEAD)"
    fi
    echo "- Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), kernel $(uname -r), $(df -T "$TARGET_DIR" | awk 'NR==2 {print $2}')"
    echo "- Data set: $SESSIONS offline persistent sessions x $PER_SESSION queued QoS 1 messages of $SIZE B, published through the broker in ${fill_s} s; store: $STORE_SIZE"
    echo "- Broker: \`ROOST_MQTT__MAX_QUEUED_MESSAGES=$((PER_SESSION * 2)) roost -p PORT ${STORE_ARGS[*]/#$TMP/\$TMP}\`"
    echo
    echo "| run | exec → CONNACK (s) | exec → 'restored' log line (s) | RSS at CONNACK (MiB) | peak RSS (MiB) |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    i=0
    for line in "${RESULTS[@]}"; do
        i=$((i + 1))
        read -r ready restored rss hwm _ <<<"$line"
        echo "| $i | $ready | $restored | $((rss / 1048576)) | $((hwm / 1048576)) |"
    done
    echo
    echo "Broker log: \`$(echo "${RESULTS[0]}" | cut -d' ' -f5- | sed 's/^.*INFO //')\`"
} >"$OUT"
cat "$OUT"
log "written to $OUT"
