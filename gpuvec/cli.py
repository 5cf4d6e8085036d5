"""The ``gpuvec`` command: ``gpuvec info``, ``gpuvec demo``, ``gpuvec bench``."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence


def _info(args: argparse.Namespace) -> int:
    import gpuvec

    print(gpuvec.backend_info())
    return 0


def _demo(args: argparse.Namespace) -> int:
    from gpuvec import demo

    return demo.run(size=args.size)


def _bench(args: argparse.Namespace) -> int:
    from gpuvec import bench

    only = None if args.only is None else [a.strip() for a in args.only.split(",") if a.strip()]
    return bench.main(quick=args.quick, algorithms=only, json_path=args.json, plot_path=args.plot)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpuvec", description="Batched array algorithms on NVIDIA GPUs (CuPy) or the CPU (NumPy)."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("info", help="print the backend, why it was chosen, the device and versions").set_defaults(
        func=_info
    )
    demo = sub.add_parser("demo", help="solve the seed questions with gpuvec and check the answers")
    demo.add_argument("--size", type=int, default=1000, help="image side for the timed ray comparison (default 1000)")
    demo.set_defaults(func=_demo)
    bench = sub.add_parser("bench", help="time the comparison grid: seed code, scipy/sklearn, gpuvec on numpy and cupy")
    bench.add_argument("--quick", action="store_true", help="CI-sized inputs (seconds)")
    bench.add_argument("--only", metavar="ALGOS", help="comma-separated subset of: rays, rotations, random, mixture")
    bench.add_argument("--json", metavar="PATH", help="save the results as JSON")
    bench.add_argument("--plot", metavar="PATH", help="save a PNG bar chart of the speed-ups (needs matplotlib)")
    bench.set_defaults(func=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gpuvec`` command line; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on bad usage
        return int(exc.code or 0)
    try:
        return args.func(args)
    except (ImportError, ValueError) as exc:  # a bad GPUVEC_BACKEND, an unusable cupy
        print(f"gpuvec: error: {exc}", file=sys.stderr)
        return 2
