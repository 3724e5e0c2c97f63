#!/usr/bin/env bash
# Latency of the management API's cluster-wide client list (docs/management.md,
# "In a cluster"): 3 nodes on one private redis-server, 100 idle mosquitto_sub
# clients on each of nodes b and c, 50 requests to node a per case (median,
# p90); then node c paused (SIGSTOP: the per-node timeout) and killed
# (connection refused). Prints Redis' command counts at the end.
#
#   bench/management-cluster.sh            # ROOST_BIN=... for another build
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${ROOST_BIN:-$ROOT/target/debug/roost}
WORK=$(mktemp -d)
cd "$WORK"
RPORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
redis-server --save "" --appendonly no --bind 127.0.0.1 --port $RPORT >/dev/null 2>&1 &
RPID=$!
sleep 0.5
PIDS=()
for n in a b c; do
  mkdir -p d$n
  $BIN -p 0 --data-dir d$n --http-bind 127.0.0.1:0 --cluster-redis redis://127.0.0.1:$RPORT --node-id m$n > log$n 2>&1 &
  PIDS+=($!)
done
sleep 3
HA=$(grep -o 'management API listening on http://[0-9.:]*' loga | sed 's/.*http:/http:/')
MB=$(grep -o 'listening on mqtt://[0-9.:]*' logb | head -1 | sed 's/.*mqtt:\/\///')
MC=$(grep -o 'listening on mqtt://[0-9.:]*' logc | head -1 | sed 's/.*mqtt:\/\///')
K=$($BIN ctl --data-dir da api-key create --json | python3 -c 'import json,sys;d=json.load(sys.stdin);print(d["key"]+":"+d["secret"])')
# 100 idle clients on b and 100 on c
SUBS=()
for i in $(seq 1 100); do mosquitto_sub -h ${MB%:*} -p ${MB#*:} -i sb$i -t x >/dev/null 2>&1 & SUBS+=($!); done
for i in $(seq 1 100); do mosquitto_sub -h ${MC%:*} -p ${MC#*:} -i sc$i -t x >/dev/null 2>&1 & SUBS+=($!); done
sleep 3
t() { # url label
  python3 - "$1" "$2" "$K" <<'PY'
import sys,time,urllib.request,base64,json
url,label,key=sys.argv[1:]
h={"Authorization":"Basic "+base64.b64encode(key.encode()).decode()}
ts=[]
for i in range(50):
    t0=time.perf_counter()
    body=urllib.request.urlopen(urllib.request.Request(url,headers=h),timeout=30).read()
    ts.append((time.perf_counter()-t0)*1000)
ts.sort()
d=json.loads(body)
print(f"{label}: median {ts[25]:.1f} ms, p90 {ts[45]:.1f} ms, rows {len(d['data'])}, count {d['meta']['count']}, failed {d['meta'].get('failed_nodes')}")
PY
}
t "$HA/api/v1/clients?limit=100&node=ma" "node a only (local)"
t "$HA/api/v1/clients?limit=100&node=mb" "node b through a (forwarded)"
t "$HA/api/v1/clients?limit=100" "all 3 nodes, page 1 x 100"
t "$HA/api/v1/clients?limit=100&page=2" "all 3 nodes, page 2 x 100"
kill -STOP ${PIDS[2]}
python3 - "$HA" "$K" <<'PY'
import sys,time,urllib.request,base64,json
url,key=sys.argv[1:]
h={"Authorization":"Basic "+base64.b64encode(key.encode()).decode()}
t0=time.perf_counter()
d=json.loads(urllib.request.urlopen(urllib.request.Request(url+"/api/v1/clients?limit=100",headers=h),timeout=30).read())
print(f"node c paused (SIGSTOP): {(time.perf_counter()-t0)*1000:.0f} ms, count {d['meta']['count']}, failed {d['meta']['failed_nodes']}")
PY
kill -CONT ${PIDS[2]}
kill -9 ${PIDS[2]}
python3 - "$HA" "$K" <<'PY'
import sys,time,urllib.request,base64,json
url,key=sys.argv[1:]
h={"Authorization":"Basic "+base64.b64encode(key.encode()).decode()}
t0=time.perf_counter()
d=json.loads(urllib.request.urlopen(urllib.request.Request(url+"/api/v1/clients?limit=100",headers=h),timeout=30).read())
print(f"node c killed: {(time.perf_counter()-t0)*1000:.0f} ms, count {d['meta']['count']}, failed {d['meta']['failed_nodes']}")
PY
redis-cli -p $RPORT info commandstats | grep -E "cmdstat_(hset|evalsha|zrange)" 
kill ${SUBS[@]} 2>/dev/null
for p in ${PIDS[@]}; do kill $p 2>/dev/null; done
sleep 1; kill $RPID
rm -rf "$WORK"
