"""Cluster mode (docs/cluster.md): CONNECT latency of a parked persistent
session resumed on another node (kick, flush, answer, settle, load) against
on its own node, and the Redis commands per such resume (INFO commandstats
deltas). Needs redis-server, redis-cli and paho-mqtt.

    ROOST=target/debug/roost python3 bench/cluster-session-move.py [N]
"""
import os, socket, subprocess, sys, tempfile, time
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

BIN = os.environ.get("ROOST", "target/debug/roost")
TMP = tempfile.mkdtemp(prefix="roost-move-")
def free():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
rp = free()
redis = subprocess.Popen(["redis-server", "--port", str(rp), "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
time.sleep(0.5)
nodes = []
ports = []
for n in "ab":
    p = free(); ports.append(p)
    cfg = os.path.join(TMP, f"{n}.toml")
    open(cfg, "w").write(f'[cluster]\nenabled = true\nnode_id = "{n}"\nlease_ms = 3000\n[cluster.redis]\nurl = "redis://127.0.0.1:{rp}"\n[[listeners]]\nbind = "127.0.0.1:{p}"\n')
    nodes.append(subprocess.Popen([BIN, "-c", cfg], stdout=subprocess.DEVNULL, stderr=open(os.path.join(TMP, f"{n}.log"), "w")))
time.sleep(1.5)

def stats():
    out = subprocess.run(["redis-cli", "-p", str(rp), "INFO", "commandstats"], capture_output=True, text=True).stdout
    d = {}
    for line in out.splitlines():
        if line.startswith("cmdstat_"):
            name, rest = line.split(":", 1)
            d[name[8:]] = int(rest.split(",")[0].split("=")[1])
    return d

def connect(port, cid):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT); props.SessionExpiryInterval = 300
    done = {}
    c.on_connect = lambda cl, u, f, rc, p: done.setdefault("sp", f.session_present)
    t0 = time.perf_counter()
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    while "sp" not in done:
        c.loop(0.001)
    return c, time.perf_counter() - t0, done["sp"]

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50
same, moved = [], []
for i in range(N):
    cid = f"m{i}"
    c, _, _ = connect(ports[0], cid)
    c.subscribe("m/#", 1); c.loop(0.05)
    c.disconnect(); c.loop(0.01)
    c, t, sp = connect(ports[0], cid); same.append(t); assert sp
    c.disconnect(); c.loop(0.01)
time.sleep(0.3)
before = stats()
for i in range(N):
    c, t, sp = connect(ports[1], f"m{i}"); moved.append(t); assert sp, i
    c.disconnect(); c.loop(0.01)
after = stats()
time.sleep(0.3)
delta = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
same.sort(); moved.sort()
print(f"N={N} resume on own node: median {same[N//2]*1000:.1f} ms p90 {same[int(N*.9)]*1000:.1f} ms")
print(f"N={N} resume on other node: median {moved[N//2]*1000:.1f} ms p90 {moved[int(N*.9)]*1000:.1f} ms")
print("redis commands per moved resume (CONNECT+DISCONNECT, both nodes):", {k: round(v / N, 2) for k, v in sorted(delta.items())})
for p in nodes: p.terminate()
for p in nodes: p.wait()
redis.terminate()
