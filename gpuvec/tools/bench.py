"""``gpuvec bench``: time the benchmark grid, print the table, save JSON and a bar chart.

The cases themselves (sizes, methods, backends, the setup of each) are defined in
:mod:`gpuvec.tools.bench_grid`; this module runs them (:func:`run_cases`: one warm-up,
then timed calls synchronised with the device), sets each case's ratio against its
group's reference, formats and plots the results, and checks the output paths before
anything runs. The grid's public names (:class:`Case`, :func:`cases`, ...) are
re-exported here, so ``gpuvec.tools.bench`` is the one entry point for the CLI and
for ``benchmarks/``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from typing import Any, TextIO

import gpuvec
from gpuvec._core.dispatch import compiled_enabled
from gpuvec.tools.bench_grid import (
    ALGORITHMS,
    Case,
    available_backends,
    cases,
    check_algorithms,
    skipped_references,
)

__all__ = [
    "ALGORITHMS",
    "Case",
    "available_backends",
    "cases",
    "check_algorithms",
    "check_output_path",
    "check_plot_path",
    "main",
    "run_cases",
    "skipped_references",
]


# --------------------------------------------------------------------------- output paths, checked first


def check_output_path(path: str | os.PathLike, name: str = "path") -> None:
    """Raise ValueError unless a file can be written at ``path`` (checked before any case runs)."""
    text = os.fspath(path)
    folder = os.path.dirname(text) or "."
    if not text:
        msg = f"{name} must be a file path; got an empty string"
        raise ValueError(msg)
    if os.path.isdir(text):
        example = os.path.join(text, "bench.json")
        msg = f"{name} must be a file path; got the folder {text!r}: add a file name, e.g. {example!r}"
        raise ValueError(msg)
    if not os.path.isdir(folder):
        state = "is a file, not a folder" if os.path.exists(folder) else "does not exist: create it first (mkdir -p {})"
        msg = (
            f"{name} must be a path in an existing folder; got {text!r}, whose folder {folder!r} {state.format(folder)}"
        )
        raise ValueError(msg)
    if not os.access(folder, os.W_OK) or (os.path.exists(text) and not os.access(text, os.W_OK)):
        msg = f"{name} must be a writable path; got {text!r}, which this user cannot write: choose another place"
        raise ValueError(msg)
    # Permission bits are not the whole story (root passes every os.access check, and a read-only filesystem or
    # a kernel folder such as /proc refuses new files whatever they say): a file is really created there.
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        msg = (
            f"{name} must be a writable path; got {text!r}, but no file can be created in its folder {folder!r} "
            f"({exc.strerror or exc}): choose another place"
        )
        raise ValueError(msg) from None


def _pyplot(name: str = "plot_path") -> types.ModuleType:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        msg = f"{name} needs matplotlib (pip install 'gpuvec[plot]'); importing it failed: {exc}"
        raise ImportError(msg) from exc
    return plt


def check_plot_path(path: str | os.PathLike, name: str = "plot_path") -> None:
    """Raise unless matplotlib imports and can write ``path``'s format (checked before any case runs)."""
    _pyplot(name)
    from matplotlib.backend_bases import FigureCanvasBase

    ext = os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if ext and ext not in formats:
        known = ", ".join(sorted(formats))
        msg = f"{name} must end in a format matplotlib writes ({known}); got {os.fspath(path)!r}: try a .png"
        raise ValueError(msg)


# --------------------------------------------------------------------------- running


def synced(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` followed by a device synchronisation, so a timer sees the work, not the launch."""

    def call() -> Any:
        out = fn()
        gpuvec.sync()
        return out

    return call


def run_cases(selected: list[Case], progress: TextIO | None = None) -> list[dict[str, Any]]:
    """Time each case (one warm-up, then ``case.rounds`` timed calls); returns one record per case.

    Progress lines go to ``progress`` (default: the current ``sys.stderr``).
    """
    progress = sys.stderr if progress is None else progress
    records = []
    for i, case in enumerate(selected, 1):
        print(f"[{i}/{len(selected)}] {case.group}: {case.method} [{case.backend}]", file=progress, flush=True)
        fn = synced(case.make())
        fn()
        times = []
        for _ in range(case.rounds):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        records.append(
            {
                "algorithm": case.algorithm,
                "group": case.group,
                "method": case.method,
                "backend": case.backend,
                "reference": case.reference,
                "median_s": statistics.median(times),
                "rounds": case.rounds,
                "items": case.items,
            }
        )
    return add_speedups(records)


def add_speedups(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set each record's ``speedup_vs_reference`` (None where its group has no reference)."""
    for group in {r["group"] for r in records}:
        ref = [r for r in records if r["group"] == group and r["reference"]]
        for r in records:
            if r["group"] == group:
                r["speedup_vs_reference"] = ref[0]["median_s"] / r["median_s"] if ref else None
    return records


def format_table(records: list[dict[str, Any]]) -> str:
    """Medians and ratios against each group's reference, as aligned text."""
    lines = []
    width = max((len(r["group"]) for r in records), default=5)
    for group in dict.fromkeys(r["group"] for r in records):
        for r in (r for r in records if r["group"] == group):
            ratio = r.get("speedup_vs_reference")
            ratio = "reference" if r["reference"] else ("" if ratio is None else f"{ratio:.1f}x")
            rate = f"  {r['items'] / r['median_s']:.3g}/s" if r["items"] else ""
            lines.append(
                f"{group:<{width}}  {r['method'] + ' [' + r['backend'] + ']':<36} "
                f"{r['median_s'] * 1e3:12.3f} ms  {ratio:>10}{rate}"
            )
    return "\n".join(lines)


def plot(records: list[dict[str, Any]], path: str) -> None:
    """A bar chart of speed-ups against each group's reference (needs matplotlib: gpuvec[plot])."""
    plt = _pyplot()
    rows = [r for r in records if not r["reference"] and r.get("speedup_vs_reference")]
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(rows) + 1.5))
    labels = [f"{r['group']}: {r['method']} [{r['backend']}]" for r in rows]
    ax.barh(
        labels,
        [r["speedup_vs_reference"] for r in rows],
        color=["tab:green" if r["backend"] == "cupy" else "tab:blue" for r in rows],
    )
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xlabel("speed-up vs the group's reference (log scale)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(
    quick: bool = False, algorithms: list[str] | None = None, json_path: str | None = None, plot_path: str | None = None
) -> int:
    """``gpuvec bench``: run the grid, print the table, optionally save JSON and a PNG.

    Everything that could fail after the run is checked first: the settings (a bad
    ``GPUVEC_BACKEND``, or ``GPUVEC_BACKEND=cupy`` with no GPU, raises rather than
    timing numpy alone), the algorithm names, the output paths and matplotlib.
    Reference cases whose library is not installed are skipped with a note on stderr.
    """
    gpuvec.backend_info()
    compiled_enabled()
    if json_path is not None:
        check_output_path(json_path, "json_path")
    if plot_path is not None:
        check_output_path(plot_path, "plot_path")
        check_plot_path(plot_path, "plot_path")
    for note in skipped_references(algorithms):
        print(note, file=sys.stderr)
    selected = cases(quick=quick, algorithms=algorithms)
    records = run_cases(selected)
    info = gpuvec.backend_info()
    print(f"\n{info.name} backend; {info.reason}; " + ", ".join(f"{k} {v}" for k, v in info.versions.items()))
    print(format_table(records))
    if json_path is not None:
        with open(json_path, "w") as f:
            json.dump(
                {
                    "backend": info.name,
                    "versions": info.versions,
                    "device": info.device,
                    "quick": quick,
                    "cases": records,
                },
                f,
                indent=1,
            )
    if plot_path is not None:
        plot(records, plot_path)
    return 0
