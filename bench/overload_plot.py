#!/usr/bin/env python3
"""CSV and SVG plot of a bench/overload.sh run (no dependencies).

Usage: overload_plot.py RUN_DIR OUT.csv OUT.svg

RUN_DIR holds <scenario>.<broker>.<label>.json files written by `roost-bench
--json` (label: peak, x0.5 ... x10, xmax) and <scenario>.peak (the 1x load in
deliveries/s). The CSV has one row per run; the SVG one panel per scenario
with delivered/s against the nominal offered load (the multiple of the peak;
log-scaled) for every broker, the unpaced run at 15x. The CSV also has the
rate the publishers managed to write ("offered_per_s"), which a broker that
pushes back through TCP holds below the nominal load.
"""

import csv
import json
import sys
from pathlib import Path

FAN = {"fanout": 100}
# Where the unpaced runs sit on the plot's axis, in multiples of the peak.
UNPACED_AT = 15
COLORS = {"roost": "#d62728", "roost-nobp": "#ff9896", "mosquitto": "#1f77b4"}
TITLES = {
    "fanin": "fan-in 16 → 1, QoS 0, 16 B",
    "fanin-q1": "fan-in 16 → 1, QoS 1, 16 B",
    "fanout": "fan-out 1 → 100, QoS 0, 16 B",
    "pairs": "100 pairs, QoS 1, 256 B",
}


def get(d, path, default=0.0):
    for key in path.split("."):
        if not isinstance(d, dict) or key not in d:
            return default
        d = d[key]
    return d if d is not None else default


def load(run_dir):
    rows = []
    for f in sorted(Path(run_dir).glob("*.json")):
        scenario, broker, label = f.stem.split(".", 2)
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        peak_file = Path(run_dir) / f"{scenario}.peak"
        peak = float(peak_file.read_text()) if peak_file.exists() else 0.0
        fan = FAN.get(scenario, 1)
        offered = get(data, "publish.rate_per_s") * fan
        delivered = get(data, "receive.rate_per_s")
        try:
            nominal = float(label.lstrip("x")) * peak
        except ValueError:
            nominal = UNPACED_AT * peak if label == "xmax" else 0.0
        rows.append({
            "scenario": scenario,
            "broker": broker,
            "load": label,
            "nominal_per_s": round(nominal),
            "offered_per_s": round(offered),
            "delivered_per_s": round(delivered),
            "delivered_of_peak": round(delivered / peak, 3) if peak else "",
            "lost": int(get(data, "receive.lost")),
            "p50_ms": round(get(data, "receive.latency_us.p50_us") / 1000, 2),
            "broker_cpu_cores": round(get(data, "broker.cpu_cores_window"), 2),
            "broker_rss_mib": round(get(data, "broker.rss_end_bytes") / 2**20, 1),
            "peak_per_s": round(peak),
        })
    order = {"peak": -1, "xmax": 1e9}

    def mult(label):
        if label in order:
            return order[label]
        try:
            return float(label.lstrip("x"))
        except ValueError:
            return 0

    rows.sort(key=lambda r: (r["scenario"], mult(r["load"]), r["broker"]))
    return rows


def svg(rows, path):
    scenarios = sorted({r["scenario"] for r in rows}, key=lambda s: list(TITLES).index(s) if s in TITLES else 99)
    brokers = [b for b in COLORS if any(r["broker"] == b for r in rows)]
    pw, ph, margin = 420, 300, 70
    width = pw * max(1, len(scenarios)) + margin
    height = ph + 2 * margin
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    import math
    for i, scenario in enumerate(scenarios):
        pts = [r for r in rows if r["scenario"] == scenario and r["load"] != "peak" and r["nominal_per_s"] > 0]
        if not pts:
            continue
        x0, y0 = margin + i * pw, margin
        w, h = pw - margin, ph - 20
        xmin = min(r["nominal_per_s"] for r in pts) / 1.3
        xmax = max(r["nominal_per_s"] for r in pts) * 1.3
        ymax = max(max(r["delivered_per_s"] for r in pts), 1) * 1.1

        def sx(v):
            return x0 + w * (math.log10(v) - math.log10(xmin)) / (math.log10(xmax) - math.log10(xmin))

        def sy(v):
            return y0 + h - h * v / ymax

        out.append(f'<text x="{x0 + w / 2}" y="{y0 - 12}" text-anchor="middle" font-size="13">{TITLES.get(scenario, scenario)}</text>')
        out.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#888"/>')
        for k in range(6):
            v = ymax * k / 5
            out.append(f'<line x1="{x0}" x2="{x0 + w}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" stroke="#eee"/>')
            out.append(f'<text x="{x0 - 4}" y="{sy(v) + 4:.1f}" text-anchor="end">{v / 1e3:,.0f}k</text>')
        decade = 10 ** math.floor(math.log10(xmin))
        while decade <= xmax:
            for m in (1, 2, 5):
                v = decade * m
                if xmin <= v <= xmax:
                    out.append(f'<line x1="{sx(v):.1f}" x2="{sx(v):.1f}" y1="{y0}" y2="{y0 + h}" stroke="#eee"/>')
                    out.append(f'<text x="{sx(v):.1f}" y="{y0 + h + 14}" text-anchor="middle">{v / 1e3:,.0f}k</text>')
            decade *= 10
        peak = pts[0]["peak_per_s"]
        if peak and xmin <= peak <= xmax:
            out.append(f'<line x1="{sx(peak):.1f}" x2="{sx(peak):.1f}" y1="{y0}" y2="{y0 + h}" stroke="#999" stroke-dasharray="4 3"/>')
            out.append(f'<text x="{sx(peak) + 3:.1f}" y="{y0 + 12}" fill="#666">1×</text>')
        out.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 30}" text-anchor="middle">offered deliveries/s, nominal (log; ■ unpaced)</text>')
        if i == 0:
            out.append(f'<text transform="translate({x0 - 50},{y0 + h / 2}) rotate(-90)" text-anchor="middle">delivered/s</text>')
        for broker in brokers:
            line = sorted((r["nominal_per_s"], r["delivered_per_s"], r["load"]) for r in pts if r["broker"] == broker)
            if not line:
                continue
            color = COLORS[broker]
            d = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _ in line)
            out.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="2"/>')
            for x, y, label in line:
                shape = "rect" if label == "xmax" else "circle"
                if shape == "rect":
                    out.append(f'<rect x="{sx(x) - 4:.1f}" y="{sy(y) - 4:.1f}" width="8" height="8" fill="{color}"/>')
                else:
                    out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}"/>')
    ly = height - 18
    for j, broker in enumerate(brokers):
        lx = margin + j * 200
        name = {"roost-nobp": "roost, back-pressure off"}.get(broker, broker)
        out.append(f'<line x1="{lx}" x2="{lx + 20}" y1="{ly}" y2="{ly}" stroke="{COLORS[broker]}" stroke-width="2"/>')
        out.append(f'<text x="{lx + 25}" y="{ly + 4}">{name}</text>')
    out.append(f'<text x="{margin + len(brokers) * 200}" y="{ly + 4}" fill="#666">■ = unpaced publishers</text>')
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    rows = load(sys.argv[1])
    with open(sys.argv[2], "w", newline="") as f:
        fields = ["scenario", "broker", "load", "nominal_per_s", "offered_per_s", "delivered_per_s", "delivered_of_peak",
                  "lost", "p50_ms", "broker_cpu_cores", "broker_rss_mib", "peak_per_s"]
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    svg(rows, sys.argv[3])


if __name__ == "__main__":
    main()
