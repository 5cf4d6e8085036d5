"""Print a short table (group, case, median) from pytest-benchmark JSON files: ``python -m benchmarks.summarize a.json ...``."""

from __future__ import annotations

import json
import sys


def main(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        for b in data["benchmarks"]:
            extra = b.get("extra_info", {})
            rate = f"{extra['samples_per_s']:.3g} samples/s" if "samples_per_s" in extra else ""
            rows.append((b["group"] or "", b["name"], b["stats"]["median"], rate))
    rows.sort()
    width = max((len(r[0]) for r in rows), default=10)
    for group, name, median, rate in rows:
        print(f"{group:<{width}}  {name:<48} {median * 1e3:12.3f} ms  {rate}")


if __name__ == "__main__":
    main(sys.argv[1:])
