"""What every benchmark case is made of: :class:`Case`, and the helpers the grids share."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import gpuvec
from gpuvec._core.backend import BackendName

__all__ = ["Case", "env", "installed", "quiet", "xp_of"]


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark: ``make()`` sets up and returns the zero-argument callable to time."""

    algorithm: str
    group: str
    method: str
    backend: str
    make: Callable[[], Callable[[], Any]]
    reference: bool = False
    rounds: int = 3
    items: int = 0  # samples produced per call, for a throughput column

    @property
    def id(self) -> str:
        return f"{self.group} | {self.method} [{self.backend}]".replace(" ", "_")


@contextlib.contextmanager
def env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


def quiet(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` with warnings silenced (fits stopped at max_iter warn by design here)."""

    def call() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()

    return call


def xp_of(backend: BackendName) -> Any:
    with gpuvec.use_backend(backend) as xp:
        return xp


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
