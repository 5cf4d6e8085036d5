"""The ``gpuvec`` command: ``gpuvec info``, ``gpuvec demo``."""

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
