"""The table of ``gpuvec bench`` from pytest-benchmark JSON files: ``python -m benchmarks.summarize a.json ...``."""

from __future__ import annotations

import json
import sys

from gpuvec.tools import bench


def records(paths):
    """gpuvec.tools.bench records from the JSON that benchmarks/test_bench.py writes."""
    out = []
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        for b in data["benchmarks"]:
            extra = b.get("extra_info", {})
            median = b["stats"]["median"]
            out.append(
                {
                    "group": b["group"] or "",
                    "method": extra.get("method", b["name"]),
                    "backend": extra.get("backend", "?"),
                    "reference": extra.get("reference", False),
                    "median_s": median,
                    "items": extra.get("items_per_s", 0) * median,
                }
            )
    return bench.add_speedups(out)


if __name__ == "__main__":
    print(bench.format_table(records(sys.argv[1:])))
