#!/usr/bin/env bash
# Cluster over Redis (issue 22): what crossing nodes costs. For each scenario,
# the same load three ways, alternated within each repetition, a fresh
# redis-server and fresh brokers for every run, medians over REPEAT runs:
#
#   single  one broker, no cluster                     (the baseline)
#   local   two nodes in cluster mode, publishers and subscribers on node A
#           (the cluster must cost nothing here: no Redis call per message)
#   cross   two nodes, publishers on node A, subscribers on node B
#           (every message crosses through B's inbox stream)
#
# Reported per run: delivered msg/s, CPU per million deliveries of the brokers
# AND redis-server together (roost-bench --broker-pid sums the processes over
# the measured window), the same split by process (node A, node B, Redis:
# which one the CPU is), redis-server's share over the whole run (its CPU
# divided by everything delivered), and Redis commands per delivered message
# (`INFO commandstats` before and after the run). Method: docs/cluster.md,
# "Benchmarks".
#
#   bench/cluster.sh                 REPEAT=3, 15 s windows after 3 s warm-up
#   QUICK=1 bench/cluster.sh         REPEAT=1, 3 s windows (smoke check)
#
# Environment:
#   REPEAT, DURATION, WARMUP   runs per mode; measured and warm-up seconds
#   SCENARIOS  subset of: p2p (100 QoS 1 pairs) fanin (16 QoS 1 publishers → 1
#              subscriber) fanout (1 QoS 0 publisher → 100 subscribers)
#   MODES      subset of: single local cross
#   DURABLE    true: the cluster nodes run in durable mode (`[cluster]
#              durable`; default false), e.g. NAME=cluster-durable DURABLE=true
#   SETTLE_MS  pause between the last SUBACK and the first PUBLISH (default
#              2000): node A learns node B's subscriptions from Redis after
#              their SUBACK; publishing before would reach nobody
#   BENCH_EXTRA more roost-bench options, e.g. "-C false -x 300": persistent
#              sessions (their queue rows are what durable mode waits for)
#   NAME, OUT  results name (default cluster) and summary file
#   ROOST_BIN, BENCH_BIN  prebuilt binaries (both set: no build)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    REPEAT=${REPEAT:-1}; DURATION=${DURATION:-3}; WARMUP=${WARMUP:-1}
    SUFFIX=${NAME:-cluster-quick}
else
    REPEAT=${REPEAT:-3}; DURATION=${DURATION:-15}; WARMUP=${WARMUP:-3}
    SUFFIX=${NAME:-cluster}
fi
SCENARIOS=${SCENARIOS:-"p2p fanin fanout"}
DURABLE=${DURABLE:-false}
SETTLE_MS=${SETTLE_MS:-2000}
MODES=${MODES:-"single local cross"}
STAMP=$(date -u +%Y-%m-%d)
OUT=${OUT:-bench/results/$STAMP-$SUFFIX.md}
RUN_DIR="$ROOT/bench/results/$STAMP-$SUFFIX"

log() { echo "cluster-bench: $*" >&2; }

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
release_binaries
command -v redis-server >/dev/null || { log "redis-server is not installed (scripts/install-test-deps.sh)"; exit 1; }

mkdir -p "$RUN_DIR" "$(dirname "$OUT")"
TMP=$(mktemp -d -t roost-cluster-bench.XXXXXX)
PIDS=()
cleanup() {
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The two nodes listen on different loopback addresses and one port, so
# roost-bench can aim publishers at one (-h) and subscribers at the other
# (--sub-host).
NODE_A=127.0.3.1
NODE_B=127.0.3.2

start_redis() {
    REDIS_PORT=$(free_port)
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
        --maxmemory-policy noeviction >"$TMP/redis.log" 2>&1 &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    wait_listening "$REDIS_PID" "$REDIS_PORT" redis-server "$TMP/redis.log"
}

# start_node NAME ADDR PORT [cluster]: one broker, memory store, the queue and
# inflight limits of bench/compare.sh. Sets NODE_PID.
start_node() {
    local name=$1 addr=$2 port=$3 cluster=${4:-} conf="$TMP/$1.toml"
    cat >"$conf" <<TOML
[[listeners]]
bind = "$addr:$port"

[store]
backend = "memory"

[mqtt]
max_queued_messages = 1000000
max_inflight = 1024
TOML
    if [ -n "$cluster" ]; then
        printf '\n[cluster]\nenabled = true\nnode_id = "%s"\ndurable = %s\n\n[cluster.redis]\nurl = "redis://127.0.0.1:%s"\n' \
            "$name" "$DURABLE" "$REDIS_PORT" >>"$conf"
    fi
    "$ROOST" -c "$conf" 2>"$TMP/$name.log" &
    NODE_PID=$!
    PIDS+=("$NODE_PID")
    wait_listening "$NODE_PID" "$port" "roost $name" "$TMP/$name.log"
}

stop_all() {
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
    PIDS=()
}

scenario_args() {
    case $1 in
        p2p)    echo "pubsub --pubs 100 --subs 100 --topic-mode pairs -q 1 -s 64" ;;
        fanin)  echo "pubsub --pubs 16 --subs 1 --topic-mode shared -q 1 -s 64" ;;
        fanout) echo "pubsub --pubs 1 --subs 100 --topic-mode fanout -q 0 -s 64" ;;
        *) log "unknown scenario $1"; return 1 ;;
    esac
}

cpu_of() { python3 - "$1" <<'EOF'
import os, sys
stat = open(f"/proc/{sys.argv[1]}/stat").read()
fields = stat[stat.rfind(")") + 2:].split()
print((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
EOF
}

run_one() {
    local scenario=$1 mode=$2 r=$3 out port pids pub_host sub_host redis_cpu0
    out="$RUN_DIR/$scenario.$mode.$r.json"
    port=$(free_port)
    start_redis || return 1
    case $mode in
        single) start_node a "$NODE_A" "$port"; pids=$NODE_PID
                pub_host=$NODE_A; sub_host=$NODE_A ;;
        local|cross)
                start_node a "$NODE_A" "$port" cluster; pids=$NODE_PID
                start_node b "$NODE_B" "$port" cluster; pids="$pids,$NODE_PID"
                pub_host=$NODE_A; sub_host=$([ "$mode" = cross ] && echo $NODE_B || echo $NODE_A) ;;
        *) log "unknown mode $mode"; return 1 ;;
    esac
    redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
    redis_cpu0=$(cpu_of "$REDIS_PID")
    # shellcheck disable=SC2046
    log "$scenario $mode (run $r/$REPEAT)"
    # shellcheck disable=SC2046,SC2086 # word splitting of the options wanted
    if ! "$BENCH" $(scenario_args "$scenario") ${BENCH_EXTRA:-} -h "$pub_host" --sub-host "$sub_host" -p "$port" \
        --duration "$DURATION" --warmup "$WARMUP" --settle-ms "$SETTLE_MS" -i 0 --broker-pid "$pids,$REDIS_PID" \
        --json >"$out" 2>"$TMP/bench.log"; then
        log "roost-bench failed ($scenario $mode):"; tail -20 "$TMP/bench.log" >&2
        rm -f "$out"
    else
        python3 -c "print($(cpu_of "$REDIS_PID") - $redis_cpu0)" >"$RUN_DIR/$scenario.$mode.$r.redis_cpu"
        redis-cli -p "$REDIS_PORT" info commandstats >"$RUN_DIR/$scenario.$mode.$r.commandstats"
    fi
    stop_all
}

for scenario in $SCENARIOS; do
    for r in $(seq "$REPEAT"); do
        read -r -a order <<<"$MODES"
        shift_by=$(( (r - 1) % ${#order[@]} ))
        order=("${order[@]:$shift_by}" "${order[@]:0:$shift_by}")
        for mode in "${order[@]}"; do
            run_one "$scenario" "$mode" "$r" || log "skipped $scenario $mode (run $r)"
        done
    done
done

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "${ROOST_BIN:-}" ] && COMMIT="prebuilt $ROOST_BIN (HEAD is $COMMIT)"
{
    echo "# Cluster over Redis: crossing nodes, $STAMP $( [ "$QUICK" = 1 ] && echo '(quick mode)')"
    echo
    echo "- Commit: $COMMIT; $(redis-server --version | awk '{print $1, $2, $3}'); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- Machine: $(nproc) CPUs, no pinning (three processes share the cores with the load generator)"
    echo "- Medians of $REPEAT run(s); ${DURATION} s windows after ${WARMUP} s warm-up; memory store; Redis without persistence"
    echo "- CPU: brokers + redis-server over the measured window, per million delivered messages"
    echo
    python3 - "$RUN_DIR" "$SCENARIOS" "$MODES" <<'EOF'
import json, statistics, sys
from pathlib import Path

run_dir, scenarios, modes = Path(sys.argv[1]), sys.argv[2].split(), sys.argv[3].split()

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

def commands(path):
    """Redis calls in an `INFO commandstats` dump, by command."""
    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("cmdstat_"):
            name, rest = line[len("cmdstat_"):].split(":", 1)
            calls = dict(kv.split("=") for kv in rest.split(","))["calls"]
            if name not in ("info", "config|resetstat", "ping"):
                out[name] = int(calls)
    return out

fmt = lambda v, d=0: "–" if v is None else f"{v:,.{d}f}"
print("| scenario | mode | delivered msg/s | CPU-s per million (brokers + Redis) | × single | of it node A / node B / Redis | Redis over the whole run | Redis commands per delivery | top commands per delivery |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for sc in scenarios:
    base = None
    for mode in modes:
        rates, cpus, redis_share, per_msg, tops, each = [], [], [], [], [], []
        for p in sorted(run_dir.glob(f"{sc}.{mode}.[0-9]*.json")):
            doc = json.loads(p.read_text())
            rates.append(doc["receive"]["rate_per_s"])
            cpus.append((doc.get("broker") or {}).get("cpu_s_per_million_msgs"))
            # --broker-pid lists node A, node B (not in single mode), Redis.
            split = (doc.get("broker") or {}).get("cpu_s_per_million_msgs_each") or []
            if len(split) == 2:
                split = [split[0], None, split[1]]
            if len(split) == 3:
                each.append(split)
            received = doc["receive"].get("received") or 0
            stem = str(p)[: -len(".json")]
            rc = Path(stem + ".redis_cpu")
            if rc.exists() and received:
                redis_share.append(float(rc.read_text()) * 1e6 / received)
            cs = Path(stem + ".commandstats")
            if cs.exists() and received:
                c = commands(cs)
                per_msg.append(sum(c.values()) / received)
                tops.append({k: v / received for k, v in c.items()})
        rate, cpu = med(rates), med(cpus)
        if mode == "single":
            base = cpu
        ratio = f"{cpu / base:.2f}" if cpu and base else "–"
        top = ""
        if tops:
            last = tops[-1]
            top = ", ".join(f"{k} {v:.3f}" for k, v in sorted(last.items(), key=lambda kv: -kv[1])[:4])
        parts = " / ".join(fmt(med([e[i] for e in each]), 3) for i in range(3)) if each else "–"
        print(f"| {sc} | {mode} | {fmt(rate)} | {fmt(cpu, 2)} | {ratio} | {parts} | {fmt(med(redis_share), 2)} | {fmt(med(per_msg), 3)} | {top} |")
EOF
} >"$OUT"
cat "$OUT"
log "written to $OUT"
