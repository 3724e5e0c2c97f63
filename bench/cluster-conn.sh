#!/usr/bin/env bash
# Cluster over Redis (issue 22): many idle connections on one host. NODES
# cluster nodes serve ONE port with SO_REUSEPORT (the kernel spreads the
# connections over them); roost-bench opens CONNS connections from PROCS
# processes and several 127.0.5.x source addresses (a process may open at most
# 20,000 files, a source address has ~28k ephemeral ports). Reported: the
# connect rate, CONNACK latency, and broker RSS per idle connection summed
# over the nodes (roost-bench --broker-pid sums them), against one node
# without the cluster holding CONNS / NODES connections in the same run.
#
#   bench/cluster-conn.sh                   100,000 connections over 6 nodes
#   CONNS=20000 NODES=3 bench/cluster-conn.sh
#
# Environment:
#   CONNS      connections in the cluster run (default 100000)
#   NODES      cluster nodes (default 6; CONNS / NODES must stay under ~19,000)
#   RATE       connections per second asked of roost-bench (default 0: as fast as it goes)
#   EXTRA      more roost-bench arguments for both runs, e.g. "-C false -x 300"
#              (persistent sessions: Clean Start 0, expiry 300 s)
#   NAME, OUT  results name (default cluster-conn) and summary file
#   ROOST_BIN, BENCH_BIN  prebuilt binaries (both set: no build)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

CONNS=${CONNS:-100000}
NODES=${NODES:-6}
RATE=${RATE:-0}
EXTRA=${EXTRA:-}
STAMP=$(date -u +%Y-%m-%d)
SUFFIX=${NAME:-cluster-conn}
OUT=${OUT:-bench/results/$STAMP-$SUFFIX.md}
RUN_DIR="$ROOT/bench/results/$STAMP-$SUFFIX"

log() { echo "cluster-conn: $*" >&2; }

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
release_binaries
command -v redis-server >/dev/null || { log "redis-server is not installed (scripts/install-test-deps.sh)"; exit 1; }
per_node=$(( (CONNS + NODES - 1) / NODES ))
if [ "$per_node" -gt 19000 ]; then
    log "CONNS / NODES = $per_node: a node may hold at most ~19,000 (20,000 files per process)"; exit 1
fi

mkdir -p "$RUN_DIR" "$(dirname "$OUT")"
TMP=$(mktemp -d -t roost-cluster-conn.XXXXXX)
PIDS=()
stop_all() {
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
    PIDS=()
}
trap 'stop_all; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# One roost-bench process per ~17,000 connections, one source address per
# ~25,000.
procs=$(( (CONNS + 16999) / 17000 ))
sources=$(( (CONNS + 24999) / 25000 ))
IFADDR=$(seq -s, -f '127.0.5.%g' 1 "$sources")
ulimit -n 20000 2>/dev/null || true

# start_node NAME PORT [REDIS_PORT]: a broker with the memory store; with a
# Redis port, a cluster node sharing PORT. Appends its pid to NODE_PIDS.
start_node() {
    local name=$1 port=$2 redis_port=${3:-} conf="$TMP/$1.toml"
    printf '[[listeners]]\nbind = "127.0.0.1:%s"\nreuse_port = true\n\n[store]\nbackend = "memory"\n\n[limits]\nmax_connections = 0\n' \
        "$port" >"$conf"
    if [ -n "$redis_port" ]; then
        printf '\n[cluster]\nenabled = true\nnode_id = "%s"\n\n[cluster.redis]\nurl = "redis://127.0.0.1:%s"\n' \
            "$name" "$redis_port" >>"$conf"
    fi
    "$ROOST" -c "$conf" 2>"$TMP/$name.log" &
    PIDS+=("$!")
    NODE_PIDS="${NODE_PIDS:+$NODE_PIDS,}$!"
    # With SO_REUSEPORT the port listens as soon as the first node does:
    # wait for this node's own log line instead.
    for _ in $(seq 600); do
        grep -q "listening" "$TMP/$name.log" 2>/dev/null && return 0
        kill -0 "${PIDS[-1]}" 2>/dev/null || { log "$name exited:"; cat "$TMP/$name.log" >&2; return 1; }
        sleep 0.05
    done
    log "$name did not start"; cat "$TMP/$name.log" >&2; return 1
}

bench_conn() {
    local count=$1 port=$2 out=$3 nprocs
    nprocs=$(( (count + 16999) / 17000 ))
    # shellcheck disable=SC2086 # EXTRA is split into arguments on purpose
    "$BENCH" conn -c "$count" -p "$port" -l --procs "$nprocs" --ifaddr "$IFADDR" \
        $([ "$RATE" -gt 0 ] && echo "-R $RATE" || echo "-i 0") --duration 5 $EXTRA \
        --broker-pid "$NODE_PIDS" --json >"$out" 2>"$TMP/bench.log" || {
        log "roost-bench failed:"; tail -20 "$TMP/bench.log" >&2; return 1; }
}

# Single node, no cluster, CONNS / NODES connections.
port=$(free_port); NODE_PIDS=""
start_node single "$port"
log "single node: $per_node connections"
bench_conn "$per_node" "$port" "$RUN_DIR/single.json"
stop_all

# The cluster.
REDIS_PORT=$(free_port)
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --maxmemory-policy noeviction >"$TMP/redis.log" 2>&1 &
PIDS+=("$!")
wait_listening "${PIDS[-1]}" "$REDIS_PORT" redis-server "$TMP/redis.log"
port=$(free_port); NODE_PIDS=""
for i in $(seq "$NODES"); do start_node "node$i" "$port" "$REDIS_PORT"; done
log "cluster of $NODES nodes on port $port: $CONNS connections from $procs processes, sources $IFADDR"
# How the kernel spreads them: the most descriptors each node held, sampled
# every second while roost-bench runs.
( while :; do
      line=""
      for pid in ${NODE_PIDS//,/ }; do line="$line $(ls /proc/"$pid"/fd 2>/dev/null | wc -l)"; done
      echo "$line"; sleep 1
  done ) >"$TMP/fds" &
sampler=$!
bench_conn "$CONNS" "$port" "$RUN_DIR/cluster.json"
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
spread=$(python3 -c 'import sys; rows=[list(map(int,l.split())) for l in open(sys.argv[1]) if l.strip()]; print(" ".join(str(max(c)) for c in zip(*rows)) if rows else "")' "$TMP/fds")
stop_all

{
    echo "# Cluster: $CONNS idle connections over $NODES nodes on one port, $STAMP"
    echo
    echo "- Commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)${ROOST_BIN:+ (prebuilt $ROOST_BIN)}; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- \`roost-bench conn -c N -l --procs P --ifaddr $IFADDR --duration 5${EXTRA:+ $EXTRA} --broker-pid <all nodes>\`; memory store; SO_REUSEPORT"
    echo "- Most file descriptors open per node during the cluster run (connections + a few):$spread"
    echo
    python3 - "$RUN_DIR" <<'EOF'
import json, sys
from pathlib import Path
d = Path(sys.argv[1])
print("| run | connections | connect rate /s | CONNACK p50 (ms) | p99 (ms) | broker RSS per idle connection (bytes, all nodes) | brokers' RSS at the end (MiB) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for name in ("single", "cluster"):
    p = d / f"{name}.json"
    if not p.exists():
        continue
    doc = json.loads(p.read_text())
    c, b = doc["connect"], doc.get("broker") or {}
    lat = c.get("latency_us") or {}
    rss = b.get("rss_per_idle_connection_bytes")
    end = b.get("rss_connected_bytes")
    print(f"| {name} | {c['ok']:,} | {c['rate_per_s']:,.0f} | {(lat.get('p50_us') or 0) / 1e3:.2f} | {(lat.get('p99_us') or 0) / 1e3:.2f} | "
          f"{'–' if rss is None else f'{rss:,.0f}'} | {'–' if end is None else f'{end / 2**20:,.1f}'} |")
EOF
} >"$OUT"
cat "$OUT"
log "written to $OUT"
