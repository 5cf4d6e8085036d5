"""The ``gpuvec`` command: ``gpuvec info``, ``gpuvec demo``, ``gpuvec bench``.

Every argument is checked while parsing and the environment (``GPUVEC_BACKEND``,
``GPUVEC_REQUIRE_GPU``, ``GPUVEC_JIT``) before any work starts; a mistake in either
is one line on stderr (``gpuvec: error: ...``) and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from gpuvec._core import backend, dispatch, threads
from gpuvec.tools import bench, demo

# The caller's mistakes (arguments, settings, missing extras, unwritable paths): one line, status 2.
_USER_ERRORS = (ValueError, TypeError, ImportError, OSError)


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (the usage itself is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _checked(check: Callable[[str, str], Any], option: str) -> Callable[[str], Any]:
    """An argparse ``type`` from ``check(text, option)``, whose errors name ``option`` in a sentence."""

    def convert(text: str) -> Any:
        try:
            return check(text, option)
        except (ValueError, TypeError, ImportError) as exc:
            msg = " ".join(str(exc).split()).removeprefix(f"{option} ")  # argparse says "argument --size: " already
            raise argparse.ArgumentTypeError(msg) from None

    convert.__name__ = option.lstrip("-")  # argparse's fallback message names the type
    return convert


def _size(text: str, option: str) -> int:
    try:
        size = int(text)
    except ValueError:
        msg = f"{option} must be an integer from 1 to {demo.MAX_SIZE}; got {text!r}"
        raise ValueError(msg) from None
    demo.check_size(size, option)
    return size


def _only(text: str, option: str) -> list[str]:
    return bench.check_algorithms(text.split(","), option)


def _json_path(text: str, option: str) -> str:
    bench.check_output_path(text, option)
    return text


def _plot_path(text: str, option: str) -> str:
    bench.check_output_path(text, option)
    bench.check_plot_path(text, option)
    return text


def _compiled_line() -> str:
    """Whether compiled paths run, and which: the CUDA kernels on cupy data, numba loops on numpy data."""
    if not dispatch.compiled_enabled():
        return f"off (GPUVEC_JIT={os.environ.get('GPUVEC_JIT', '')!r}): the reference implementations run"
    if importlib.util.find_spec("numba") is None:
        return "on (CUDA kernels for cupy data); numba is not installed, so numpy data runs the numpy loops"
    return "on (CUDA kernels for cupy data, numba loops for numpy data; GPUVEC_JIT=0 turns them off)"


def _info(args: argparse.Namespace) -> int:
    print(backend.backend_info())
    print(f"compiled: {_compiled_line()}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    return demo.run(size=args.size)


def _bench(args: argparse.Namespace) -> int:
    return bench.main(quick=args.quick, algorithms=args.only, json_path=args.json, plot_path=args.plot)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gpuvec", description="Batched array algorithms on NVIDIA GPUs (CuPy) or the CPU (NumPy).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "info", help="print the backend, why it was chosen, the device, versions, compiled paths"
    ).set_defaults(func=_info)
    demo_parser = sub.add_parser(
        "demo", help="solve the questions gpuvec started from with gpuvec, and check the answers"
    )
    demo_parser.add_argument(
        "--size",
        type=_checked(_size, "--size"),
        default=1000,
        help=f"image side for the timed ray comparison, 1 to {demo.MAX_SIZE} (default 1000)",
    )
    demo_parser.set_defaults(func=_demo)
    bench_parser = sub.add_parser(
        "bench", help="time the comparison grid: the questions' own code, scipy/sklearn, gpuvec on numpy and cupy"
    )
    bench_parser.add_argument("--quick", action="store_true", help="CI-sized inputs (seconds)")
    bench_parser.add_argument(
        "--only",
        metavar="ALGOS",
        type=_checked(_only, "--only"),
        help=f"comma-separated subset of: {', '.join(bench.ALGORITHMS)}",
    )
    bench_parser.add_argument(
        "--json", metavar="PATH", type=_checked(_json_path, "--json"), help="save the results as JSON"
    )
    bench_parser.add_argument(
        "--plot",
        metavar="PATH",
        type=_checked(_plot_path, "--plot"),
        help="save a bar chart of the speed-ups (needs matplotlib)",
    )
    bench_parser.set_defaults(func=_bench)
    return parser


def _check_environment() -> None:
    """Read every setting now, so that a bad one is reported before any work starts."""
    backend.backend_info()  # GPUVEC_BACKEND, GPUVEC_REQUIRE_GPU: ValueError or BackendUnavailableError
    dispatch.compiled_enabled()  # GPUVEC_JIT
    threads.num_threads_setting()  # GPUVEC_NUM_THREADS


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gpuvec`` command line; returns the exit status.

    0: done; 1: the demo found a wrong answer; 2: a bad argument or setting, a missing extra or an
    unwritable output path (one line on stderr); 130: interrupted.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on bad usage
        return int(exc.code or 0)
    try:
        _check_environment()
        return args.func(args)
    except _USER_ERRORS as exc:
        print(f"gpuvec: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gpuvec: interrupted", file=sys.stderr)
        return 130
