#!/usr/bin/env python3
"""Median table of a bench/compare.sh run.

Usage: summarize.py RUN_DIR BROKER_A [BROKER_B]

RUN_DIR holds <scenario>.<broker>.<run>.json files written by `roost-bench
--json`. For every scenario and metric the table shows each broker's median
over the runs and the ratio A / B, with which side is better; with one broker
(`BROKERS=roost`), its medians only.
"""

import json
import statistics
import sys
from pathlib import Path

MIB = 1024 * 1024

# (label, JSON path, scale, which direction is better: "higher", "lower" or None)
MESSAGE_METRICS = [
    ("delivered msg/s", "receive.rate_per_s", 1, "higher"),
    ("latency p50 (ms)", "receive.latency_us.p50_us", 1e-3, "lower"),
    ("latency p99 (ms)", "receive.latency_us.p99_us", 1e-3, "lower"),
    ("latency p99.9 (ms)", "receive.latency_us.p999_us", 1e-3, "lower"),
    ("lost messages", "receive.lost", 1, "lower"),
    ("broker CPU-s per million deliveries", "broker.cpu_s_per_million_msgs", 1, "lower"),
    ("broker CPU use (cores)", "broker.cpu_cores_window", 1, None),
    ("broker waiting for a CPU (cores)", "broker.cpu_wait_cores_window", 1, None),
    ("broker RSS at end (MiB)", "broker.rss_end_bytes", 1 / MIB, "lower"),
    ("load generator CPU-s", "loadgen_cpu_s", 1, None),
    ("load generator waiting for a CPU (s)", "loadgen_wait_s", 1, None),
]

# Paced runs: how well the load generator kept its schedule. Evenly spread
# sends have gaps near the planned one (50 µs at 20,000 msg/s); gaps of a few
# µs at p10/p50 mean the sends were bunched and the latency includes the
# load generator's own queueing.
PACED_METRICS = MESSAGE_METRICS + [
    ("send lag behind schedule p50 (µs)", "publish.pacing.lag_us.p50_us", 1, None),
    ("send lag behind schedule p99 (µs)", "publish.pacing.lag_us.p99_us", 1, None),
    ("gap between sends p10 (µs)", "publish.pacing.gap_us.p10_us", 1, None),
    ("gap between sends p50 (µs)", "publish.pacing.gap_us.p50_us", 1, None),
]

METRICS = {
    "fanin": MESSAGE_METRICS,
    "fanout": MESSAGE_METRICS,
    "p2p-max": MESSAGE_METRICS,
    "p2p-20k": PACED_METRICS,
    "conn": [
        ("connected", "connect.ok", 1, "higher"),
        ("connect rate (conn/s)", "connect.rate_per_s", 1, "higher"),
        ("CONNACK p50 (ms)", "connect.latency_us.p50_us", 1e-3, "lower"),
        ("CONNACK p99 (ms)", "connect.latency_us.p99_us", 1e-3, "lower"),
        ("broker CPU-ms per connection", "broker.cpu_ms_per_connection", 1, "lower"),
        ("broker RSS per connection, just connected (bytes)", "broker.rss_per_connection_bytes", 1, "lower"),
        ("broker RSS per idle connection, end of the hold (bytes)", "broker.rss_per_idle_connection_bytes", 1, "lower"),
    ],
    "conn-paced": [
        ("connected", "connect.ok", 1, "higher"),
        ("connect rate (conn/s)", "connect.rate_per_s", 1, "higher"),
        ("CONNACK p50 (ms)", "connect.latency_us.p50_us", 1e-3, "lower"),
        ("CONNACK p99 (ms)", "connect.latency_us.p99_us", 1e-3, "lower"),
        ("CONNACK p99.9 (ms)", "connect.latency_us.p999_us", 1e-3, "lower"),
        ("broker CPU-ms per connection", "broker.cpu_ms_per_connection", 1, "lower"),
    ],
    "sub": [
        ("subscriptions granted", "subscribe.ok", 1, "higher"),
        ("SUBACK/s", "subscribe.rate_per_s", 1, "higher"),
        ("SUBACK p99 (ms)", "subscribe.latency_us.p99_us", 1e-3, "lower"),
        ("broker CPU-µs per subscription", "broker.cpu_us_per_subscription", 1, "lower"),
        ("broker RSS per subscription (bytes)", "broker.rss_per_subscription_bytes", 1, "lower"),
    ],
}

TITLES = {
    "fanin": "fan-in 16 → 1, QoS 0, 16 B, max rate",
    "fanout": "fan-out 1 → 100, QoS 0, 16 B, max rate",
    "p2p-max": "100 pairs, QoS 1, 256 B, max rate",
    "p2p-20k": "100 pairs, QoS 1, 256 B, 20,000 msg/s",
    "conn": "connect clients at max rate",
    "conn-paced": "connect clients at 20,000/s",
    "sub": "subscribers, one filter each",
}


def lookup(doc, path):
    for key in path.split("."):
        if not isinstance(doc, dict) or doc.get(key) is None:
            return None
        doc = doc[key]
    return doc if isinstance(doc, (int, float)) else None


def fmt(value):
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    run_dir = Path(sys.argv[1])
    a = sys.argv[2]
    b = sys.argv[3] if len(sys.argv) > 3 else None
    results = {}
    for path in sorted(run_dir.glob("*.json")):
        scenario, broker, _run = path.stem.rsplit(".", 2)
        try:
            results.setdefault((scenario, broker), []).append(json.loads(path.read_text()))
        except json.JSONDecodeError as e:
            print(f"<!-- unreadable {path.name}: {e} -->")

    if b is None:
        print(f"| scenario | metric | {a} |")
        print("| --- | --- | ---: |")
    else:
        print(f"| scenario | metric | {a} | {b} | {a} / {b} | better |")
        print("| --- | --- | ---: | ---: | ---: | --- |")
    for scenario, metrics in METRICS.items():
        if (scenario, a) not in results and (scenario, b) not in results:
            continue
        title = TITLES.get(scenario, scenario)
        for label, path, scale, better in metrics:
            medians = []
            for broker in (a, b) if b is not None else (a,):
                values = [lookup(doc, path) for doc in results.get((scenario, broker), [])]
                values = [v * scale for v in values if v is not None]
                medians.append(statistics.median(values) if values else None)
            if b is None:
                if medians[0] is not None:
                    print(f"| {title} | {label} | {fmt(medians[0])} |")
                    title = ""
                continue
            va, vb = medians
            ratio = va / vb if va is not None and vb not in (None, 0) else None
            winner = ""
            if better and va is not None and vb is not None and va != vb:
                a_wins = va > vb if better == "higher" else va < vb
                winner = a if a_wins else b
            print(f"| {title} | {label} | {fmt(va)} | {fmt(vb)} | "
                  f"{'–' if ratio is None else f'{ratio:.2f}'} | {winner} |")
            title = ""
    runs = sorted({len(v) for v in results.values()})
    print()
    print(f"Runs per cell: {', '.join(map(str, runs)) if runs else 0}. "
          "Errors reported by the load generator, if any:")
    print()
    any_errors = False
    for (scenario, broker), docs in sorted(results.items()):
        for doc in docs:
            for message, count in (doc.get("errors") or {}).items():
                any_errors = True
                print(f"- {scenario} on {broker}: {count} × {message}")
    if not any_errors:
        print("- none")


if __name__ == "__main__":
    main()
