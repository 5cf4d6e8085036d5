"""The mixture-shapes grid's table and heatmap from its JSON rows: ``python -m benchmarks.shapes_report rows.json``.

Each row: N, D, K, ct (covariance type), dtype, sklearn and gpuvec seconds (3 EM iterations from the same
start), ratio (sklearn / gpuvec), lb_rel (lower bounds' relative difference), floor (the BLAS floor's
seconds) and over_floor (gpuvec / floor). Prints the markdown table of benchmarks/RESULTS.md; with
``--plot PATH`` also draws the heatmap of docs/mixture_shapes.png (needs matplotlib).
"""

from __future__ import annotations

import argparse
import json
import math


def table(rows: list[dict]) -> str:
    head = ("| type | dtype | N | D | K | sklearn s | gpuvec s | sklearn / gpuvec | lower bounds apart "
            "| gpuvec / BLAS floor |\n|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    lines = [
        f"| {r['ct']} | {r['dtype']} | {r['N']:,} | {r['D']} | {r['K']} | {r['sklearn']:.3f} | {r['gpuvec']:.3f} "
        f"| {r['ratio']:.2f}x | {r['lb_rel']:.0e} | {r['over_floor']:.1f} |"
        for r in rows
    ]
    return "\n".join([head, *lines])


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    columns = sorted({(r["D"], r["K"]) for r in rows})
    lines = sorted({(r["ct"], r["dtype"], r["N"]) for r in rows}, key=lambda t: (t[0], t[1], t[2]))
    grid = np.full((len(lines), len(columns)), np.nan)
    for r in rows:
        grid[lines.index((r["ct"], r["dtype"], r["N"])), columns.index((r["D"], r["K"]))] = r["ratio"]
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * len(columns), 0.9 + 0.42 * len(lines)))
    image = ax.imshow(np.log10(grid), cmap="RdYlGn", vmin=-math.log10(50), vmax=math.log10(50), aspect="auto")
    for i in range(len(lines)):
        for j in range(len(columns)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(columns)), [f"D={d}\nK={k}" for d, k in columns], fontsize=7)
    ax.set_yticks(range(len(lines)), [f"{ct} {dt} N={n:,}" for ct, dt, n in lines], fontsize=7)
    bar = fig.colorbar(image, ax=ax, fraction=0.03)
    ticks = [0.1, 0.5, 1, 2, 5, 10, 50]
    bar.set_ticks([math.log10(t) for t in ticks], labels=[f"{t:g}x" for t in ticks])
    ax.set_title("sklearn time / gpuvec time (same start, 3 EM iterations; >1: gpuvec faster)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", help="the grid's JSON rows")
    parser.add_argument("--plot", metavar="PATH", help="also draw the heatmap there")
    args = parser.parse_args()
    with open(args.rows) as f:
        rows = json.load(f)
    print(table(rows))
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
