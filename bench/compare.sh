#!/usr/bin/env bash
# Roost vs Mosquitto on this machine: same load generator (roost-bench), same
# scenarios, alternating brokers, a fresh broker process for every run, medians
# over REPEAT runs. Prints a table (both figures and the ratio) and writes it to
# bench/results/<date>.md. Method: docs/performance.md.
#
#   bench/compare.sh                 full run (REPEAT=3, 20 s windows, 10,000 clients)
#   QUICK=1 bench/compare.sh         smoke check (REPEAT=1, 3 s windows, 2,000 clients)
#
# Environment:
#   REPEAT     runs per scenario and broker (median reported)
#   DURATION   measured seconds of the message scenarios; WARMUP seconds before it
#   CONNS      clients of the conn and sub scenarios
#   SCENARIOS  subset of: fanin fanout p2p-max p2p-20k conn conn-paced sub
#              (conn-paced: the same clients at 20,000 conn/s, below the load generator's
#              saturation, so the CONNACK percentiles are the brokers' and not its queue)
#   BROKERS    subset of: roost mosquitto
#   PIN        1 (default) = broker on CPU 1, load generator on CPU 0 (taskset); 0 = no pinning
#   RT_PRIO    N > 0: run broker and load generator of the fixed-rate scenario (p2p-20k) as
#              SCHED_FIFO priority N (chrt), so that other work on a shared machine does not
#              put its time slices into the latency tail; 0 (default) = normal scheduling.
#              Only the paced scenario: at max rate a real-time pair would starve the machine.
#   TRANSPORT  tcp (default), tls, ws or wss: the clients' transport. TLS uses a self-signed
#              P-256 certificate made with openssl (both brokers: TLS 1.3, same cipher suite);
#              Debian's mosquitto is built without WebSocket support, so ws and wss run
#              with BROKERS=roost only.
#   ROOST_TOML a TOML file appended to Roost's configuration, e.g. bench/acl/checked-100.toml
#              (a 100-rule ACL whose deny makes every fan-out delivery checked per message)
#   OUT        results file (default bench/results/<date>[-quick][-TRANSPORT].md)
#   ROOST_BIN, BENCH_BIN  prebuilt binaries to run (both set: no build)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    REPEAT=${REPEAT:-1}; DURATION=${DURATION:-3}; WARMUP=${WARMUP:-1}; CONNS=${CONNS:-2000}
    DEFAULT_OUT="bench/results/$(date -u +%Y-%m-%d)-quick.md"
else
    REPEAT=${REPEAT:-3}; DURATION=${DURATION:-20}; WARMUP=${WARMUP:-5}; CONNS=${CONNS:-10000}
    DEFAULT_OUT="bench/results/$(date -u +%Y-%m-%d).md"
fi
SCENARIOS=${SCENARIOS:-"fanin fanout p2p-max p2p-20k conn conn-paced sub"}
BROKERS=${BROKERS:-"roost mosquitto"}
PIN=${PIN:-1}
RT_PRIO=${RT_PRIO:-0}
TRANSPORT=${TRANSPORT:-tcp}
case $TRANSPORT in
    tcp) BENCH_TRANSPORT=() ;;
    tls) BENCH_TRANSPORT=(-S) ;;
    ws) BENCH_TRANSPORT=(--ws) ;;
    wss) BENCH_TRANSPORT=(--ws -S) ;;
    *) echo "compare: TRANSPORT must be tcp, tls, ws or wss, not $TRANSPORT" >&2; exit 2 ;;
esac
if [ "$TRANSPORT" != tcp ]; then DEFAULT_OUT="${DEFAULT_OUT%.md}-$TRANSPORT.md"; fi
OUT=${OUT:-$DEFAULT_OUT}

log() { echo "compare: $*" >&2; }

# ---------------------------------------------------------------- build & tools
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
case " $BROKERS " in
    *" mosquitto "*)
        if [ "$TRANSPORT" = ws ] || [ "$TRANSPORT" = wss ]; then
            log "TRANSPORT=$TRANSPORT: Debian's mosquitto has no WebSocket support; run with BROKERS=roost"
            exit 2
        fi ;;
esac
if { [ "$TRANSPORT" = tls ] || [ "$TRANSPORT" = wss ]; } && ! command -v openssl >/dev/null 2>&1; then
    log "installing openssl (test certificate)"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y openssl
fi
MOSQUITTO_VERSION=$({ "$MOSQUITTO" -h 2>&1 || true; } | awk 'NR==1 {print $3}')

# Broker on CPU 1, load generator on CPU 0: they do not fight over one core,
# and the broker's CPU-seconds per message are comparable across brokers.
BROKER_PIN=()
BENCH_PIN=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    BROKER_PIN=(taskset -c 1)
    BENCH_PIN=(taskset -c 0)
fi

RUN_DIR="$ROOT/target/bench-compare/$(date -u +%Y%m%dT%H%M%S)"
mkdir -p "$RUN_DIR" "$(dirname "$OUT")"
TMP=$(mktemp -d)
BROKER_PID=""
RT=()  # chrt prefix of the current run (RT_PRIO, paced scenario only)
cleanup() {
    if [ -n "$BROKER_PID" ]; then
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# TLS: one self-signed certificate for both brokers. Roost gets a listener
# table of the transport's kind (`-p PORT` moves the first listener to PORT).
CERT="$TMP/tls/server.crt"
KEY="$TMP/tls/server.key"
ROOST_CONFIG=()
if [ "$TRANSPORT" = tls ] || [ "$TRANSPORT" = wss ]; then
    # Readable by all: Mosquitto started as root reads them as user mosquitto.
    # A throwaway key for a loopback benchmark.
    mkdir -m 755 "$TMP/tls"
    chmod 755 "$TMP"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$KEY" -out "$CERT" \
        -subj /CN=localhost -days 2 -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
    chmod 644 "$CERT" "$KEY"
fi
if [ "$TRANSPORT" != tcp ]; then
    printf '[[listeners]]\nkind = "%s"\nbind = "127.0.0.1:0"\n' "$TRANSPORT" >"$TMP/roost.toml"
    if [ "$TRANSPORT" = tls ] || [ "$TRANSPORT" = wss ]; then
        printf '[listeners.tls]\ncert_file = "%s"\nkey_file = "%s"\n' "$CERT" "$KEY" >>"$TMP/roost.toml"
    fi
    ROOST_CONFIG=(-c "$TMP/roost.toml")
fi
if [ -n "${ROOST_TOML:-}" ]; then
    cat "$ROOST_TOML" >>"$TMP/roost.toml"
    ROOST_CONFIG=(-c "$TMP/roost.toml")
fi

# ---------------------------------------------------------------- brokers
# Equivalent settings: loopback listener, anonymous clients, no persistence,
# queues large enough not to drop in these scenarios, 1024 QoS 1/2 messages in
# flight per client, Nagle off (Roost always sets TCP_NODELAY; Mosquitto's
# default would add up to 40 ms of delayed-ACK latency per delivery).
start_broker() {
    local kind=$1 port log
    port=$(free_port)
    log="$TMP/$kind-$port.log"
    case $kind in
        roost)
            # No persistence on either side: the roost server defaults to its
            # disk store, Mosquitto runs with `persistence false`.
            ROOST_MQTT__MAX_QUEUED_MESSAGES=1000000 ROOST_MQTT__MAX_INFLIGHT=1024 \
                "${RT[@]}" "${BROKER_PIN[@]}" "$ROOST" "${ROOST_CONFIG[@]}" -p "$port" --store memory 2>"$log" &
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
            if [ "$TRANSPORT" = tls ]; then
                printf 'certfile %s\nkeyfile %s\n' "$CERT" "$KEY" >>"$TMP/mosquitto-$port.conf"
            fi
            "${RT[@]}" "${BROKER_PIN[@]}" "$MOSQUITTO" -c "$TMP/mosquitto-$port.conf" 2>"$log" &
            ;;
        *) log "unknown broker $kind"; return 1 ;;
    esac
    BROKER_PID=$!
    BROKER_PORT=$port
    for _ in $(seq 100); do
        if ! kill -0 "$BROKER_PID" 2>/dev/null; then
            log "$kind exited at start-up:"; cat "$log" >&2; BROKER_PID=""; return 1
        fi
        if [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
            return 0
        fi
        sleep 0.1
    done
    log "$kind is not listening on $port after 10 s"; cat "$log" >&2
    return 1
}

stop_broker() {
    if [ -n "$BROKER_PID" ]; then
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
        BROKER_PID=""
    fi
}

# ---------------------------------------------------------------- scenarios
scenario_args() {
    local window=(--duration "$DURATION" --warmup "$WARMUP" -i 0)
    case $1 in
        fanin)   echo pubsub --pubs 16 --subs 1 --topic-mode shared -q 0 -s 16 "${window[@]}" ;;
        fanout)  echo pubsub --pubs 1 --subs 100 --topic-mode fanout -q 0 -s 16 "${window[@]}" ;;
        p2p-max) echo pubsub --pubs 100 --subs 100 --topic-mode pairs -q 1 -s 256 "${window[@]}" ;;
        p2p-20k) echo pubsub --pubs 100 --subs 100 --topic-mode pairs -q 1 -s 256 --rate 20000 "${window[@]}" ;;
        conn)    echo conn -c "$CONNS" -i 0 --duration 2 ;;
        conn-paced) echo conn -c "$CONNS" -R 20000 --duration 2 ;;
        sub)     echo sub -c "$CONNS" -i 0 -t 'bench/%i' -q 1 --duration 1 ;;
        *) log "unknown scenario $1"; return 1 ;;
    esac
}

run_one() {
    local scenario=$1 broker=$2 r=$3 args out
    read -r -a args <<<"$(scenario_args "$scenario")"
    out="$RUN_DIR/$scenario.$broker.$r.json"
    RT=()
    if [ "$RT_PRIO" -gt 0 ] && [ "$scenario" = p2p-20k ]; then RT=(chrt -f "$RT_PRIO"); fi
    start_broker "$broker" || return 1
    log "$scenario on $broker (run $r/$REPEAT): roost-bench ${args[*]}"
    if ! "${RT[@]}" "${BENCH_PIN[@]}" "$BENCH" "${args[@]}" "${BENCH_TRANSPORT[@]}" -p "$BROKER_PORT" --broker-pid "$BROKER_PID" --json \
        >"$out" 2>"$TMP/bench.log"; then
        log "roost-bench failed for $scenario on $broker:"; tail -20 "$TMP/bench.log" >&2
        rm -f "$out"
    fi
    stop_broker
}

for r in $(seq "$REPEAT"); do
    # Alternate which broker goes first, so drift on a shared machine hits both.
    order=$BROKERS
    if [ $((r % 2)) = 0 ]; then order=$(echo "$BROKERS" | awk '{for (i = NF; i > 0; i--) printf "%s ", $i}'); fi
    for scenario in $SCENARIOS; do
        for broker in $order; do
            run_one "$scenario" "$broker" "$r" || log "skipped $scenario on $broker (run $r)"
        done
    done
done

# ---------------------------------------------------------------- report
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    COMMIT="$COMMIT (built from a working tree with uncommitted changes)"
fi
if [ -n "${ROOST_BIN:-}" ]; then
    COMMIT="prebuilt roost binary $ROOST_BIN (ROOST_BIN; scripts at $COMMIT)"
fi
{
    echo "# Roost vs Mosquitto, $(date -u +%Y-%m-%d) $( [ "$QUICK" = 1 ] && echo '(quick mode)')"
    echo
    echo "- Commit: $COMMIT; Mosquitto $MOSQUITTO_VERSION (Debian); load generator \`roost-bench\` (release)"
    echo "- Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), kernel $(uname -r), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM"
    echo "- Medians of $REPEAT run(s) per cell; message windows ${DURATION} s after ${WARMUP} s warm-up; conn/sub with $CONNS clients"
    echo "- Pinning: $( [ ${#BROKER_PIN[@]} -gt 0 ] && echo 'broker on CPU 1, load generator on CPU 0' || echo 'none')"
    echo "- Scheduling: $( [ "$RT_PRIO" -gt 0 ] && echo "p2p-20k broker and load generator SCHED_FIFO $RT_PRIO (RT_PRIO)" || echo 'normal')"
    echo "- Transport: $TRANSPORT$( { [ "$TRANSPORT" = tls ] || [ "$TRANSPORT" = wss ]; } && echo ' (self-signed P-256 certificate, not verified by the clients)')"
    echo "- Load generator: $BENCH"
    echo "- Raw JSON: \`${RUN_DIR#"$ROOT"/}\`"
    echo
    python3 "$ROOT/bench/summarize.py" "$RUN_DIR" $BROKERS
    echo
    echo "Commands (each against a fresh broker, with \`-p PORT --broker-pid PID --json\`):"
    echo
    for scenario in $SCENARIOS; do
        echo "- $scenario: \`roost-bench $(scenario_args "$scenario")\`"
    done
} >"$OUT"
cat "$OUT"
log "written to $OUT"
