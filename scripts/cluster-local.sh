#!/usr/bin/env bash
# Starts N local Roost nodes as one cluster (docs/cluster.md) serving ONE
# port with SO_REUSEPORT, against a redis-server: for trying the cluster out,
# tests and benchmarks. Stops everything it started (by PID) on Ctrl-C/exit.
#
# Usage: scripts/cluster-local.sh N [PORT]
#   N      nodes (default 3)
#   PORT   the shared MQTT port (default 1883)
# Environment:
#   REDIS_URL=redis://host:port   use this Redis instead of starting one (also
#                                 redis+cluster://h1:p1,h2:p2,… or
#                                 redis+sentinel://s1:26379/<master>: docs/cluster.md)
#   ROOST=path/to/roost           the binary (default target/debug/roost, built if missing)
#   WORK=dir                      where configs, data and logs go (default: a temporary dir)
set -euo pipefail

n=${1:-3}
port=${2:-1883}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
roost=${ROOST:-$root/target/debug/roost}
work=${WORK:-$(mktemp -d -t roost-cluster.XXXXXX)}
pids=()

cleanup() {
    # Newest first: the nodes leave the cluster while Redis still answers.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill "${pids[i]}" 2>/dev/null || true
        wait "${pids[i]}" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

if [ ! -x "$roost" ]; then
    (cd "$root" && CARGO_INCREMENTAL=0 cargo build -p roost)
fi

if [ -z "${REDIS_URL:-}" ]; then
    command -v redis-server >/dev/null || {
        echo "cluster-local: redis-server not found (apt-get install redis-server), or set REDIS_URL" >&2
        exit 1
    }
    redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
        --maxmemory-policy noeviction >"$work/redis.log" 2>&1 &
    pids+=("$!")
    REDIS_URL="redis://127.0.0.1:$redis_port"
    for _ in $(seq 100); do
        redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
        sleep 0.05
    done
fi

for i in $(seq "$n"); do
    mkdir -p "$work/node-$i"
    cat >"$work/node-$i/roost.toml" <<TOML
[[listeners]]
bind = "127.0.0.1:$port"
reuse_port = true

[store]
data_dir = "$work/node-$i/data"

[cluster]
enabled = true
node_id = "local-$i"

[cluster.redis]
url = "$REDIS_URL"
TOML
    "$roost" -c "$work/node-$i/roost.toml" >"$work/node-$i/roost.log" 2>&1 &
    pids+=("$!")
done

echo "cluster-local: $n nodes on 127.0.0.1:$port, Redis $REDIS_URL"
echo "cluster-local: configs and logs in $work (Ctrl-C stops everything)"
wait -n "${pids[@]}" || true
echo "cluster-local: a process exited; stopping the others" >&2
