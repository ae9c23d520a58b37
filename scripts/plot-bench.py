#!/usr/bin/env python3
"""Draws durable events/s against customers (log x axis), one line per remembered-identity count,
from the JSON lines of scripts/bench-matrix.sh, as an SVG with no dependencies beyond Python.

    python3 scripts/plot-bench.py bench-results.ndjson docs/ingest-vs-customers.svg
"""
import json
import math
import sys


def main(source, target):
    series = {}
    with open(source) as lines:
        for line in lines:
            line = line.strip()
            if not line:
                continue
            run = json.loads(line)
            if run.get("run", "matrix") != "matrix":
                continue
            series.setdefault(run["identities"], {})[run["customers"]] = run["events_per_s"]
    if not series:
        sys.exit(f"{source} holds no matrix runs")
    width, height, left, right, top, bottom = 720, 420, 80, 170, 40, 60
    xs = sorted({c for points in series.values() for c in points})
    y_max = max(v for points in series.values() for v in points.values())
    y_top = math.ceil(y_max / 100000) * 100000 or 100000
    x_low, x_high = math.log10(min(xs)), math.log10(max(xs))
    span = (x_high - x_low) or 1

    def x(customers):
        return left + (math.log10(customers) - x_low) / span * (width - left - right)

    def y(value):
        return top + (1 - value / y_top) * (height - top - bottom)

    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="14">Durable events/s against customers (random order, one firehose connection)</text>']
    for step in range(0, y_top + 1, max(50000, y_top // 8 // 50000 * 50000)):
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(step):.1f}" y2="{y(step):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 8}" y="{y(step) + 4:.1f}" text-anchor="end">{step // 1000}k</text>')
    for customers in xs:
        out.append(f'<line x1="{x(customers):.1f}" x2="{x(customers):.1f}" y1="{top}" y2="{height - bottom}" stroke="#eee"/>')
        label = f"{customers // 1000}k" if customers < 1000000 else f"{customers // 1000000}M"
        out.append(f'<text x="{x(customers):.1f}" y="{height - bottom + 18}" text-anchor="middle">{label}</text>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 15}" text-anchor="middle">customers (log scale)</text>')
    for index, (identities, points) in enumerate(sorted(series.items())):
        color = colors[index % len(colors)]
        coords = " ".join(f"{x(c):.1f},{y(points[c]):.1f}" for c in sorted(points))
        out.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>')
        for c in sorted(points):
            out.append(f'<circle cx="{x(c):.1f}" cy="{y(points[c]):.1f}" r="3" fill="{color}"/>')
        label = f"{identities / 1e6:g}M identities"
        out.append(f'<text x="{width - right + 12}" y="{top + 20 + 18 * index}" fill="{color}">{label}</text>')
    out.append("</svg>")
    with open(target, "w") as svg:
        svg.write("\n".join(out) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
